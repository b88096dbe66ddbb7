/*
 * conf.c: the configuration table, its file parser and its environment
 * overrides.  Every key is one row of keys[]; the parser, the environment and
 * the documentation all follow that table.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#ifndef SANDBOXD_DRIVERS_DIR
#define SANDBOXD_DRIVERS_DIR "/usr/local/share/sandboxd/drivers"
#endif
#ifndef SANDBOXD_AGENT_PATH
#define SANDBOXD_AGENT_PATH "/usr/local/libexec/sandboxd/sandbox-agent"
#endif

#define CONF_FILE_MAX (1u << 20) /* bytes */

enum conf_type { T_STR, T_U32, T_U64, T_KEYS };

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;
	uint64_t min, max; /* for numbers */
};

#define K(n, t, f, lo, hi)                                                                         \
	{                                                                                          \
		n, t, offsetof(struct conf, f), lo, hi                                             \
	}
static const struct conf_key keys[] = {
	K("socket", T_STR, socket, 0, 0),
	K("socket_group", T_STR, socket_group, 0, 0),
	K("user", T_STR, user, 0, 0),
	K("state_dir", T_STR, state_dir, 0, 0),
	K("agent", T_STR, agent, 0, 0),
	K("drivers_dir", T_STR, drivers_dir, 0, 0),
	K("cgroup_root", T_STR, cgroup_root, 0, 0),
	K("workers", T_U32, workers, 1, 256),
	K("uid_base", T_U32, uid_base, 65536, 3000000000u),
	K("uid_slots", T_U32, uid_slots, 1, 16384),
	K("warm_pool", T_U32, warm_pool, 0, 256),
	K("warm_sandboxes", T_U32, warm_sandboxes, 0, 256),
	K("api_keys", T_KEYS, api_keys, 0, 0),
	/* nginx refuses bodies over 32 MiB (client_max_body_size) before they reach us. */
	K("max_body_bytes", T_U64, max_body_bytes, 1024, 32ull << 20),
	K("output_max_bytes", T_U64, output_max_bytes, 1024, 64ull << 20),
	/* At most 10 minutes: nginx waits 660 s for an answer (fastcgi_read_timeout). */
	K("exec_timeout_ms", T_U32, exec_timeout_ms, 1, 600000),
	K("exec_timeout_max_ms", T_U32, exec_timeout_max_ms, 1, 600000),
	K("memory_mb", T_U64, memory_mb, 16, 1ull << 20),
	K("pids", T_U32, pids, 8, 1u << 20),
	K("cpu_millis", T_U32, cpu_millis, 10, 1024000),
	K("tmp_mb", T_U64, tmp_mb, 1, 1ull << 20),
	K("workspace_mb", T_U64, workspace_mb, 1, 1ull << 24),
	K("context_idle_s", T_U32, context_idle_s, 0, 30 * 86400),
	K("cell_output_max_bytes", T_U64, cell_output_max_bytes, 4096, 1ull << 30),
	K("log_debug", T_U32, log_debug, 0, 1),
};
#undef K

static int
fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
conf_defaults(struct conf *c)
{
	*c = (struct conf){
		.workers = 8,
		.uid_base = 200000000u,
		.uid_slots = 1024,
		.warm_pool = 4,
		.warm_sandboxes = 2,
		.max_body_bytes = 32ull << 20,
		.output_max_bytes = 1ull << 20,
		.exec_timeout_ms = 30000,
		.exec_timeout_max_ms = 600000,
		.memory_mb = 512,
		.pids = 256,
		.cpu_millis = 1000,
		.tmp_mb = 256,
		.workspace_mb = 1024,
		.context_idle_s = 1800,
		.cell_output_max_bytes = 16ull << 20,
	};
	c->socket = strdup("/run/sandboxd/fcgi.sock");
	c->state_dir = strdup("/var/lib/sandboxd");
	c->agent = strdup(SANDBOXD_AGENT_PATH);
	c->drivers_dir = strdup(SANDBOXD_DRIVERS_DIR);
	c->user = strdup("sandboxd");
	c->socket_group = strdup("www-data");
	if (!c->socket || !c->state_dir || !c->user || !c->socket_group || !c->agent ||
	    !c->drivers_dir) {
		conf_free(c);
		return -ENOMEM;
	}
	return 0;
}

static void
clear_keys(struct conf *c)
{
	for (uint32_t i = 0; i < c->n_api_keys; i++) {
		/* Keys are secrets: wipe before freeing. */
		explicit_bzero(c->api_keys[i], strlen(c->api_keys[i]));
		free(c->api_keys[i]);
		c->api_keys[i] = NULL;
	}
	c->n_api_keys = 0;
}

void
conf_free(struct conf *c)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].type == T_STR) {
			char **p = (char **)((char *)c + keys[i].off);
			free(*p);
			*p = NULL;
		}
	clear_keys(c);
}

static const struct conf_key *
find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == len && strncasecmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

/* Splits a comma-separated list of keys; each key is 16..256 printable, non-space bytes. */
static int
set_keys(struct conf *c, const char *val, size_t len, char *errbuf, size_t errlen)
{
	size_t i = 0;

	clear_keys(c);
	while (i < len) {
		size_t start = i, end;

		while (i < len && val[i] != ',')
			i++;
		end = i++;
		while (start < end && isspace((unsigned char)val[start]))
			start++;
		while (end > start && isspace((unsigned char)val[end - 1]))
			end--;
		if (start == end)
			continue;
		if (end - start < 16 || end - start > 256)
			return fail(errbuf, errlen,
				    "api_keys: each key must be 16 to 256 characters");
		for (size_t j = start; j < end; j++)
			if (!isgraph((unsigned char)val[j]))
				return fail(errbuf, errlen,
					    "api_keys: keys must be printable, without spaces");
		if (c->n_api_keys == CONF_MAX_API_KEYS)
			return fail(errbuf, errlen, "api_keys: at most %d keys", CONF_MAX_API_KEYS);
		c->api_keys[c->n_api_keys] = strndup(val + start, end - start);
		if (!c->api_keys[c->n_api_keys])
			return -ENOMEM;
		c->n_api_keys++;
	}
	return 0;
}

static int
set_value(struct conf *c, const struct conf_key *k, const char *val, size_t len, char *errbuf,
	  size_t errlen)
{
	void *field = (char *)c + k->off;
	char num[32], *end;
	unsigned long long v;

	switch (k->type) {
	case T_STR: {
		char *s;

		if (len == 0 || len > 4096)
			return fail(errbuf, errlen, "%s: value must be 1 to 4096 characters",
				    k->name);
		if (memchr(val, '\0', len))
			return fail(errbuf, errlen, "%s: value contains a NUL byte", k->name);
		s = strndup(val, len);
		if (!s)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	}
	case T_KEYS: return set_keys(c, val, len, errbuf, errlen);
	case T_U32:
	case T_U64:
		if (len == 0 || len >= sizeof(num))
			return fail(errbuf, errlen, "%s: not a number", k->name);
		memcpy(num, val, len);
		num[len] = '\0';
		for (size_t i = 0; i < len; i++)
			if (!isdigit((unsigned char)num[i]))
				return fail(errbuf, errlen, "%s: '%s' is not a whole number",
					    k->name, num);
		errno = 0;
		v = strtoull(num, &end, 10);
		if (errno || *end || v < k->min || v > k->max)
			return fail(errbuf, errlen, "%s: %s is out of range %llu..%llu", k->name,
				    num, (unsigned long long)k->min, (unsigned long long)k->max);
		if (k->type == T_U32)
			*(uint32_t *)field = (uint32_t)v;
		else
			*(uint64_t *)field = v;
		return 0;
	}
	return -EINVAL;
}

int
conf_parse(struct conf *c, const char *buf, size_t len, char *errbuf, size_t errlen)
{
	size_t pos = 0;
	unsigned lineno = 0;

	while (pos < len) {
		const char *line = buf + pos, *eq, *kend, *vstart, *vend;
		size_t linelen;
		const struct conf_key *k;
		int r;

		lineno++;
		while (pos < len && buf[pos] != '\n')
			pos++;
		linelen = (size_t)(buf + pos - line);
		pos++;
		while (linelen && isspace((unsigned char)*line)) {
			line++;
			linelen--;
		}
		while (linelen && isspace((unsigned char)line[linelen - 1]))
			linelen--;
		if (linelen == 0 || line[0] == '#')
			continue;
		eq = memchr(line, '=', linelen);
		if (!eq)
			return fail(errbuf, errlen, "line %u: expected 'key = value'", lineno);
		kend = eq;
		while (kend > line && isspace((unsigned char)kend[-1]))
			kend--;
		vstart = eq + 1;
		vend = line + linelen;
		while (vstart < vend && isspace((unsigned char)*vstart))
			vstart++;
		k = find_key(line, (size_t)(kend - line));
		if (!k)
			return fail(errbuf, errlen, "line %u: unknown key '%.*s'", lineno,
				    (int)((kend - line) > 64 ? 64 : (kend - line)), line);
		r = set_value(c, k, vstart, (size_t)(vend - vstart), errbuf, errlen);
		if (r == -EINVAL) {
			char msg[256];

			snprintf(msg, sizeof(msg), "%s", errbuf);
			return fail(errbuf, errlen, "line %u: %s", lineno, msg);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int
conf_load_file(struct conf *c, const char *path, char *errbuf, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		fail(errbuf, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			/* Room for one byte past the limit, so that a file of exactly the
			 * limit reads to EOF and a larger one is caught. */
			cap = cap ? cap * 2 : 4096;
			if (cap > CONF_FILE_MAX + 1)
				cap = CONF_FILE_MAX + 1;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			free(buf);
			close(fd);
			fail(errbuf, errlen, "%s: %s", path, strerror(-r));
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONF_FILE_MAX) {
			free(buf);
			close(fd);
			return fail(errbuf, errlen, "%s: larger than 1 MiB", path);
		}
	}
	close(fd);
	r = conf_parse(c, buf, len, errbuf, errlen);
	free(buf);
	return r;
}

int
conf_apply_env(struct conf *c, char *const *envp, char *errbuf, size_t errlen)
{
	for (; envp && *envp; envp++) {
		const char *e = *envp, *eq;
		const struct conf_key *k;
		int r;

		if (strncmp(e, "SANDBOXD_", 9) != 0)
			continue;
		eq = strchr(e, '=');
		if (!eq)
			continue;
		k = find_key(e + 9, (size_t)(eq - e - 9));
		if (!k)
			continue; /* other SANDBOXD_ variables (LLM settings) belong elsewhere */
		r = set_value(c, k, eq + 1, strlen(eq + 1), errbuf, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int
conf_check(const struct conf *c, char *errbuf, size_t errlen)
{
	if (c->exec_timeout_ms > c->exec_timeout_max_ms)
		return fail(errbuf, errlen, "exec_timeout_ms (%u) exceeds exec_timeout_max_ms (%u)",
			    c->exec_timeout_ms, c->exec_timeout_max_ms);
	if ((uint64_t)c->uid_base + (uint64_t)c->uid_slots * 65536u > 4294967294ull)
		return fail(errbuf, errlen, "uid_base + uid_slots * 65536 passes the largest uid");
	if ((uint64_t)c->warm_pool + c->warm_sandboxes >= c->uid_slots)
		return fail(errbuf, errlen,
			    "warm_pool + warm_sandboxes (%u) must be smaller than uid_slots (%u)",
			    c->warm_pool + c->warm_sandboxes, c->uid_slots);
	if (!c->socket || c->socket[0] != '/')
		return fail(errbuf, errlen, "socket: an absolute path is required");
	if (c->cgroup_root && c->cgroup_root[0] != '/')
		return fail(errbuf, errlen,
			    "cgroup_root: a path from the hierarchy's root, starting with '/'");
	if (!c->agent || c->agent[0] != '/')
		return fail(errbuf, errlen, "agent: an absolute path is required");
	if (!c->drivers_dir || c->drivers_dir[0] != '/')
		return fail(errbuf, errlen, "drivers_dir: an absolute path is required");
	if (!c->state_dir || c->state_dir[0] != '/')
		return fail(errbuf, errlen, "state_dir: an absolute path is required");
	return 0;
}
