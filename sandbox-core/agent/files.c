/*
 * files.c: file operations, done in a child of the agent that has already
 * become the sandbox's user (uid 1000, no capabilities, no_new_privs, the
 * seccomp filter, the sandbox's rlimits).  Paths resolve in the sandbox's
 * own mount namespace and root, so a symlink planted by the sandbox's code
 * leads, at worst, somewhere else in the same sandbox; what the user may
 * not touch, the kernel refuses.
 *
 * The child is killed if the worker hangs up, so blocking is safe, but
 * nothing here opens what could block for ever (FIFOs are refused).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

#define LIST_MAX 100000	    /* entries one listing sends */
#define LIST_BYTES 16777216 /* and bytes: what the worker takes (files.c there) */
#define DEPTH_MAX 128	    /* directories deep, for listing and removal */
#define COPY_CHUNK 65536    /* bytes per read when writing */

static struct file_done done = { .magic = FILE_MAGIC };
static uint64_t list_bytes; /* sent by this listing */

static _Noreturn void
finish(int err)
{
	done.err = err;
	(void)!write(report_fd, &done, sizeof(done));
	_exit(0);
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
info_of(const struct stat *st, int dirfd, const char *name, struct sbx_file_info *ret)
{
	*ret = (struct sbx_file_info){ .mode = st->st_mode & 07777,
				       .size = (uint64_t)st->st_size,
				       .mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 +
						   st->st_mtim.tv_nsec / 1000000 };
	if (S_ISREG(st->st_mode))
		ret->type = SBX_FILE_REG;
	else if (S_ISDIR(st->st_mode))
		ret->type = SBX_FILE_DIR;
	else if (S_ISLNK(st->st_mode))
		ret->type = SBX_FILE_LNK;
	else
		ret->type = SBX_FILE_OTHER;
	/* What the sandbox's user may do with it: we are that user. */
	if (faccessat(dirfd, name, R_OK, AT_EACCESS) == 0)
		ret->perms |= SBX_FILE_PERM_R;
	if (faccessat(dirfd, name, W_OK, AT_EACCESS) == 0)
		ret->perms |= SBX_FILE_PERM_W;
	if (faccessat(dirfd, name, X_OK, AT_EACCESS) == 0)
		ret->perms |= SBX_FILE_PERM_X;
}

static _Noreturn void
op_stat(const char *path)
{
	struct stat st;

	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		finish(errno);
	info_of(&st, AT_FDCWD, path, &done.info);
	finish(0);
}

/* Opens a regular file without blocking on a FIFO or a device.  fd or -1. */
static int
open_regular(int dirfd, const char *name, int flags, struct stat *st)
{
	int fd = openat(dirfd, name, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		int e = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;

		close(fd);
		errno = e;
		return -1;
	}
	if (fcntl(fd, F_SETFL, flags & O_ACCMODE) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static _Noreturn void
op_read(const char *path, int out, uint64_t max)
{
	struct sbx_file_meta meta = { .magic = FILE_MAGIC };
	struct stat st;
	uint64_t limit, sent = 0;
	int fd = open_regular(AT_FDCWD, path, O_RDONLY, &st);

	if (fd < 0)
		meta.err = errno;
	else if ((uint64_t)st.st_size > max)
		meta.err = EFBIG;
	else
		info_of(&st, AT_FDCWD, path, &meta.info);
	if (write_all(out, &meta, sizeof(meta)) < 0)
		finish(errno);
	if (meta.err)
		finish(meta.err);
	done.info = meta.info;
	/* Exactly the size announced; a file without one (in /proc) up to max. */
	limit = st.st_size > 0 ? (uint64_t)st.st_size : max;
	while (sent < limit) {
		ssize_t n =
			sendfile(out, fd, NULL,
				 limit - sent > (1u << 20) ? (1u << 20) : (size_t)(limit - sent));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			finish(errno);
		if (n == 0)
			break;
		sent += (uint64_t)n;
	}
	done.count = sent;
	/* A file that shrank under us cannot fill the length announced; one
	 * without a length that goes on past max is too large, not cut short. */
	if (st.st_size == 0 && sent == limit) {
		char c;

		if (read(fd, &c, 1) == 1)
			finish(EFBIG);
	}
	finish(st.st_size > 0 && sent != (uint64_t)st.st_size ? EIO : 0);
}

/* Copies exactly size bytes from in to out.  0, or an errno. */
static int
copy_in(int in, int out, uint64_t size)
{
	static char buf[COPY_CHUNK];
	uint64_t got = 0;

	while (got < size) {
		ssize_t n = read(in, buf,
				 size - got > sizeof(buf) ? sizeof(buf) : (size_t)(size - got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return ECANCELED; /* the upload was cut short */
		if (write_all(out, buf, (size_t)n) < 0)
			return errno;
		got += (uint64_t)n;
	}
	return 0;
}

/* Splits an absolute path into its directory (opened) and last name. */
static int
open_parent(const char *path, char *dir, const char **ret_base)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash == path ? 1 : (size_t)(slash - path);
	int fd;

	*ret_base = slash + 1;
	if (!slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0) {
		errno = EISDIR;
		return -1;
	}
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) /* a directory we may write but not list */
		fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd;
}

/* Creates the temporary file tmp in dfd, replacing a leftover of an earlier
 * child that had our pid.  fd or -1. */
static int
create_named(int dfd, const char *tmp)
{
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 && errno == EEXIST && unlinkat(dfd, tmp, 0) == 0)
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd;
}

/*
 * Writes size bytes from in to a temporary file beside the target, flushes
 * it, and renames it over the target: the old content stays whole until
 * the new one is on disk.  Through a symlink (inside the sandbox) the file
 * it points to is written in place.
 */
static _Noreturn void
op_write(const char *path, int in, uint64_t size)
{
	static char dir[SBX_FILE_PATH_MAX];
	char tmp[64];
	const char *base;
	struct stat st;
	mode_t mode = 0644;
	bool named = true;
	int dfd, fd, e;

	dfd = open_parent(path, dir, &base);
	if (dfd < 0)
		finish(errno);
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			finish(EISDIR);
		if (S_ISLNK(st.st_mode)) {
			fd = open_regular(dfd, base, O_WRONLY, &st);
			if (fd < 0)
				finish(errno);
			if (ftruncate(fd, 0) < 0)
				finish(errno);
			e = copy_in(in, fd, size);
			if (!e && fsync(fd) < 0)
				e = errno;
			finish(e);
		}
		if (!S_ISREG(st.st_mode))
			finish(EINVAL);
		mode = st.st_mode & 07777;
	} else if (errno != ENOENT) {
		finish(errno);
	}
	snprintf(tmp, sizeof(tmp), ".sbx-write-%ld", (long)getpid());
	/* Unnamed until it is whole: a write cut short (the worker hung up and
	 * we were killed) leaves nothing behind. */
	fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		fd = create_named(dfd, tmp);
	else
		named = false;
	/* The directory is there (dfd): a filesystem without new files (/proc)
	 * says ENOENT, which would read as "no such path". */
	if (fd < 0)
		finish(errno == ENOENT ? EACCES : errno);
	e = copy_in(in, fd, size);
	if (!e && fchmod(fd, mode) < 0)
		e = errno;
	if (!e && fsync(fd) < 0)
		e = errno;
	if (!e && !named) {
		char self[64];

		/* A name for it at last, then the rename over the target. */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		unlinkat(dfd, tmp, 0); /* a leftover of an earlier child of this pid */
		if (linkat(AT_FDCWD, self, dfd, tmp, AT_SYMLINK_FOLLOW) < 0)
			e = errno;
		else
			named = true;
	}
	if (close(fd) < 0 && !e)
		e = errno;
	if (!e && renameat(dfd, tmp, dfd, base) < 0)
		e = errno;
	if (e) {
		if (named)
			unlinkat(dfd, tmp, 0);
		finish(e);
	}
	(void)fsync(dfd); /* the rename itself; fails harmlessly on an O_PATH fd */
	done.count = size;
	finish(0);
}

static _Noreturn void
op_mkdir(char *path, bool recursive)
{
	struct stat st;

	if (!recursive)
		finish(mkdir(path, 0755) < 0 ? errno : 0);
	for (char *p = path + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 &&
		    (errno != EEXIST || stat(path, &st) < 0 || !S_ISDIR(st.st_mode)))
			finish(errno == EEXIST ? ENOTDIR : errno);
		*p = c;
		if (c == '\0' || p[1] == '\0')
			break;
	}
	finish(0);
}

/* Removes name in dirfd and, for a directory, everything under it, never
 * following a symlink.  0, or an errno. */
static int
remove_tree(int dirfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, e = 0;

	if (unlinkat(dirfd, name, 0) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return errno;
	if (depth >= DEPTH_MAX)
		return ELOOP;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	d = fdopendir(fd);
	if (!d) {
		e = errno;
		close(fd);
		return e;
	}
	while (!e && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			e = remove_tree(fd, de->d_name, depth + 1);
	closedir(d);
	if (!e && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		e = errno;
	return e;
}

static _Noreturn void
op_delete(const char *path, bool recursive)
{
	static const char *const keep[] = { "/", "/workspace", "/tmp" };
	struct stat st, k;

	if (lstat(path, &st) < 0)
		finish(errno);
	/* However it is spelled ("/workspace/.", "sub/.."), the root of a
	 * filesystem the sandbox stands on stays. */
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (stat(keep[i], &k) == 0 && k.st_dev == st.st_dev && k.st_ino == st.st_ino)
			finish(EBUSY);
	if (!S_ISDIR(st.st_mode))
		finish(unlink(path) < 0 ? errno : 0);
	if (!recursive)
		finish(EISDIR);
	finish(remove_tree(AT_FDCWD, path, 0));
}

/* A regular file moved to another filesystem (/workspace to /tmp): copied,
 * flushed, renamed into place, then the original removed. */
static int
move_across(const char *from, const char *to)
{
	static char dir[SBX_FILE_PATH_MAX];
	char tmp[64];
	const char *base;
	struct stat st;
	int in, out, dfd, e;

	in = open_regular(AT_FDCWD, from, O_RDONLY, &st);
	if (in < 0)
		return errno == EISDIR ? EXDEV : errno;
	dfd = open_parent(to, dir, &base);
	if (dfd < 0)
		return errno;
	snprintf(tmp, sizeof(tmp), ".sbx-move-%ld", (long)getpid());
	out = create_named(dfd, tmp);
	if (out < 0)
		return errno;
	if (fchmod(out, st.st_mode & 07777) < 0) {
		e = errno;
		close(out);
		unlinkat(dfd, tmp, 0);
		return e;
	}
	e = copy_in(in, out, (uint64_t)st.st_size);
	if (!e && fsync(out) < 0)
		e = errno;
	close(out);
	if (!e && renameat(dfd, tmp, dfd, base) < 0)
		e = errno;
	if (e) {
		unlinkat(dfd, tmp, 0);
		return e;
	}
	return unlink(from) < 0 ? errno : 0;
}

static _Noreturn void
op_rename(const char *from, const char *to)
{
	if (rename(from, to) == 0)
		finish(0);
	if (errno != EXDEV)
		finish(errno);
	finish(move_across(from, to));
}

/* Sends the entries of the directory open at fd, named prefix (relative to
 * the listed path, "" at the top), and below when recursive. */
static int
list_dir(int fd, char *prefix, size_t plen, int out, uint32_t flags, int depth)
{
	struct dirent *de;
	DIR *d = fdopendir(fd);
	int e = 0;

	if (!d) {
		e = errno;
		close(fd);
		return e;
	}
	while (!e && (de = readdir(d))) {
		struct {
			struct sbx_file_info info;
			char name[SBX_FILE_PATH_MAX];
		} rec;
		size_t nlen = strlen(de->d_name), len;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] == '.' && !(flags & SBX_FILE_HIDDEN))
			continue;
		if (plen + 1 + nlen >= SBX_FILE_PATH_MAX)
			continue; /* too deep to name */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (done.count == LIST_MAX ||
		    list_bytes + sizeof(rec.info) + nlen + plen + 1 > LIST_BYTES) {
			e = EOVERFLOW;
			break;
		}
		info_of(&st, dirfd(d), de->d_name, &rec.info);
		len = plen ? (size_t)snprintf(rec.name, sizeof(rec.name), "%s/%s", prefix,
					      de->d_name)
			   : (size_t)snprintf(rec.name, sizeof(rec.name), "%s", de->d_name);
		rec.info.namelen = (uint32_t)len;
		if (write_all(out, &rec, sizeof(rec.info) + len) < 0) {
			e = errno;
			break;
		}
		list_bytes += sizeof(rec.info) + len;
		done.count++;
		if (S_ISDIR(st.st_mode) && (flags & SBX_FILE_RECURSIVE) && depth < DEPTH_MAX) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0) {
				memcpy(prefix, rec.name, len + 1);
				e = list_dir(sub, prefix, len, out, flags, depth + 1);
				prefix[plen] = '\0';
			}
		}
	}
	closedir(d);
	return e;
}

static _Noreturn void
op_list(const char *path, int out, uint32_t flags)
{
	static char prefix[SBX_FILE_PATH_MAX];
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		finish(errno);
	prefix[0] = '\0';
	finish(list_dir(fd, prefix, 0, out, flags, 0));
}

void
files_run(const struct file_req *r, int fd)
{
	static char path[SBX_FILE_PATH_MAX];

	/* A write past RLIMIT_FSIZE fails with EFBIG, and a worker that hung up
	 * with EPIPE, instead of killing us without an answer. */
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	memcpy(path, r->path, sizeof(path));
	switch (r->op) {
	case SBX_FILE_STAT: op_stat(path);
	case SBX_FILE_READ: op_read(path, fd, r->size);
	case SBX_FILE_WRITE: op_write(path, fd, r->size);
	case SBX_FILE_MKDIR: op_mkdir(path, r->flags & SBX_FILE_RECURSIVE);
	case SBX_FILE_DELETE: op_delete(path, r->flags & SBX_FILE_RECURSIVE);
	case SBX_FILE_RENAME: op_rename(path, r->path2);
	case SBX_FILE_LIST: op_list(path, fd, r->flags);
	}
	finish(EINVAL);
}
