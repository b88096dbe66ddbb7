/* env.c: see env.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"

bool
env_name_ok(const char *n)
{
	if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_'))
		return false;
	for (n++; *n; n++)
		if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_' ||
		      (*n >= '0' && *n <= '9')))
			return false;
	return true;
}

/* Removes any string of name. */
static void
drop(struct envlist *e, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < e->n; i++)
		if (strncmp(e->v[i], name, n) == 0 && (e->v[i][n] == '=' || e->v[i][n] == '\0')) {
			free(e->v[i]);
			e->v[i] = e->v[--e->n];
			e->v[e->n] = NULL;
			return;
		}
}

static int
add(struct envlist *e, char *s)
{
	if (!s)
		return -ENOMEM;
	if (e->n == ENV_MAX) {
		free(s);
		return -E2BIG;
	}
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
	return 0;
}

int
envlist_set(struct envlist *e, const char *name, const char *value)
{
	char *kv;

	drop(e, name);
	if (!value)
		return 0;
	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return -ENOMEM;
	return add(e, kv);
}

const char *
envlist_get(const struct envlist *e, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < e->n; i++)
		if (strncmp(e->v[i], name, n) == 0 && e->v[i][n] == '=')
			return e->v[i] + n + 1;
	return NULL;
}

int
envlist_unset_mark(struct envlist *e, const char *name)
{
	drop(e, name);
	return add(e, strdup(name));
}

void
envlist_free(struct envlist *e)
{
	for (unsigned i = 0; i < e->n; i++)
		free(e->v[i]);
	e->n = 0;
	e->v[0] = NULL;
}

static void
path_of(char *buf, size_t size, const char *state_dir, const char *id)
{
	snprintf(buf, size, "%s/env/%s", state_dir, id);
}

/* Reads the file at path into e: NAME=value strings, each NUL-terminated.
 * A missing file is an empty list. */
static int
read_file(const char *path, struct envlist *e)
{
	static char buf[ENV_SANDBOX_BYTES + 1];
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf))
			break;
	}
	close(fd);
	if (len > ENV_SANDBOX_BYTES || (len && buf[len - 1] != '\0'))
		return -EBADMSG;
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
		char *eq = strchr(buf + off, '=');
		int r;

		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		r = env_name_ok(buf + off) ? envlist_set(e, buf + off, eq + 1) : -EBADMSG;
		*eq = '=';
		if (r < 0)
			return r;
	}
	return 0;
}

int
env_sandbox_load(const char *state_dir, const char *id, struct envlist *e)
{
	char path[PATH_MAX];

	path_of(path, sizeof(path), state_dir, id);
	return read_file(path, e);
}

int
env_sandbox_update(const char *state_dir, const char *id, json_t *vars)
{
	struct envlist e = { .n = 0 };
	char path[PATH_MAX], tmp[PATH_MAX + 16], dir[PATH_MAX];
	const char *key;
	json_t *v;
	size_t bytes = 0;
	int dfd, fd = -1, r;

	snprintf(dir, sizeof(dir), "%s/env", state_dir);
	path_of(path, sizeof(path), state_dir, id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* One writer at a time, across workers: read, merge, replace. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (flock(dfd, LOCK_EX) < 0) {
		r = -errno;
		goto out;
	}
	r = read_file(path, &e);
	if (r < 0)
		goto out;
	json_object_foreach(vars, key, v)
	{
		r = envlist_set(&e, key, json_is_string(v) ? json_string_value(v) : NULL);
		if (r < 0)
			goto out;
	}
	for (unsigned i = 0; i < e.n; i++)
		bytes += strlen(e.v[i]) + 1;
	if (e.n > ENV_SANDBOX_MAX || bytes > ENV_SANDBOX_BYTES) {
		r = -E2BIG;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	for (unsigned i = 0; i < e.n; i++) {
		size_t len = strlen(e.v[i]) + 1;

		if (write(fd, e.v[i], len) != (ssize_t)len) {
			r = -EIO;
			goto out;
		}
	}
	if (fsync(fd) < 0 || rename(tmp, path) < 0 || fsync(dfd) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
out:
	if (fd >= 0) {
		close(fd);
		if (r < 0)
			unlink(tmp);
	}
	close(dfd); /* and the lock with it */
	envlist_free(&e);
	return r;
}

const char *
env_check_object(const json_t *vars)
{
	const char *key;
	json_t *v;

	if (!json_is_object(vars) || json_object_size(vars) > ENV_SANDBOX_MAX)
		return "must be an object of at most 128 names";
	json_object_foreach((json_t *)vars, key, v)
	{
		if (!env_name_ok(key))
			return "names are [A-Za-z_][A-Za-z0-9_]*";
		if (!json_is_string(v) && !json_is_null(v))
			return "values are strings (null unsets)";
		if (json_is_string(v) && memchr(json_string_value(v), '\0', json_string_length(v)))
			return "values may not contain a NUL byte";
	}
	return NULL;
}
