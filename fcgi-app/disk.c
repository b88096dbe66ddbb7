/* disk.c: see disk.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk.h"

#define LOOP_MAJOR_NR 7

/* Makes image (which must not exist), bytes long and sparse, with an empty
 * ext4 filesystem whose root belongs to root. */
static int
make_fs(const char *image, uint64_t bytes)
{
	const char *argv[] = {
		"mkfs.ext4", "-q",  "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1",
		"--",	     image, NULL
	};
	const char *envp[] = { "PATH=/usr/sbin:/sbin:/usr/bin:/bin", "LC_ALL=C", NULL };
	int fd, st = 0, r;
	pid_t pid;

	fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0) {
		r = -errno;
		close(fd);
		unlink(image);
		return r;
	}
	close(fd);
	/* Lazy initialisation: a sparse image is made in milliseconds, and what
	 * it holds is only what was written. */
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execve("/usr/sbin/mkfs.ext4", (char *const *)argv, (char *const *)envp);
		execve("/sbin/mkfs.ext4", (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	if (pid < 0) {
		r = -errno;
		unlink(image);
		return r;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		unlink(image);
		return WIFEXITED(st) && WEXITSTATUS(st) == 127 ? -ENOENT : -EIO;
	}
	return 0;
}

/* Copies the extents of data of from into to, which has from's size: the
 * holes stay holes. */
static int
copy_sparse(int from, int to, off_t size)
{
	off_t data = 0;

	for (;;) {
		off_t hole, pos;

		data = lseek(from, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno; /* no more data */
		hole = lseek(from, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		pos = data;
		while (pos < hole) {
			loff_t in = pos, out = pos;
			ssize_t n = copy_file_range(from, &in, to, &out, (size_t)(hole - pos), 0);

			if (n <= 0)
				return n < 0 ? -errno : -EIO;
			pos += n;
		}
		data = hole;
		if (data >= size)
			return 0;
	}
}

int
disk_create(const char *image, uint64_t bytes)
{
	char tmpl[PATH_MAX], tmp[PATH_MAX + 16];
	const char *slash = strrchr(image, '/');
	int from, to, r;

	/* One filesystem made by mkfs per size, beside the images; each new
	 * image is a sparse copy of it, without mkfs's own start-up. */
	snprintf(tmpl, sizeof(tmpl), "%.*s/.template-%llu.img", slash ? (int)(slash - image) : 1,
		 slash ? image : ".", (unsigned long long)bytes);
	if (access(tmpl, F_OK) < 0) {
		snprintf(tmp, sizeof(tmp), "%s.%ld", tmpl, (long)getpid());
		unlink(tmp);
		r = make_fs(tmp, bytes);
		if (r < 0)
			return r;
		if (rename(tmp, tmpl) < 0) {
			r = -errno;
			unlink(tmp);
			return r;
		}
	}
	from = open(tmpl, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (from < 0)
		return -errno;
	to = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (to < 0) {
		r = -errno;
		close(from);
		return r;
	}
	r = ftruncate(to, (off_t)bytes) < 0 ? -errno : copy_sparse(from, to, (off_t)bytes);
	close(from);
	if (close(to) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(image);
	return r;
}

/* Opens /dev/loopN, making the node if this /dev lacks it. */
static int
open_loop(int n)
{
	char dev[32];
	int fd;

	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT &&
	    mknod(dev, S_IFBLK | 0600, makedev(LOOP_MAJOR_NR, (unsigned)n)) == 0)
		fd = open(dev, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int
mount_loop(int n, const char *dir)
{
	char dev[32];

	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	/* noinit_itable: no thread zeroing inode tables behind the sandbox's back,
	 * which would grow every image by its tables (16 MiB a GiB) for nothing. */
	return mount(dev, dir, "ext4", MS_NOSUID | MS_NODEV, "noinit_itable") < 0 ? -errno : 0;
}

/*
 * A loop device that still carries image (its filesystem outlives a mount
 * detached while a sandbox's last processes were ending): mounting a second
 * device on the same file would run two filesystems on the same blocks, so
 * its own device is mounted again.  Holding the device open while checking
 * keeps it from being cleared and given to another image meanwhile.
 * Returns 0 with the device mounted at dir, -ENOENT when there is none, or
 * a negative errno.
 */
static int
mount_existing(const char *image, const struct stat *img, const char *dir, int *ret_loop)
{
	char real[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int r = -ENOENT;

	/* The kernel names the backing file by its canonical path. */
	if (!realpath(image, real) || !(d = opendir("/sys/block")))
		return -ENOENT;
	while (r == -ENOENT && (de = readdir(d))) {
		struct loop_info64 info;
		char path[300], backing[4096];
		char *end;
		ssize_t len;
		long n;
		int fd;

		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		n = strtol(de->d_name + 4, &end, 10);
		if (end == de->d_name + 4 || *end || n < 0 || n > 1 << 20)
			continue;
		/* Only a bound device has a backing file; its name is a cheap first
		 * test (a free device's open would cost more than the rest). */
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, backing, sizeof(backing) - 1);
		close(fd);
		if (len <= 0)
			continue;
		backing[len] = '\0';
		backing[strcspn(backing, "\n")] = '\0';
		if (strcmp(backing, real) != 0)
			continue;
		fd = open_loop((int)n);
		if (fd < 0)
			continue;
		if (ioctl(fd, LOOP_GET_STATUS64, &info) == 0 && info.lo_inode == img->st_ino &&
		    info.lo_device == img->st_dev) {
			r = mount_loop((int)n, dir);
			if (r == 0)
				*ret_loop = (int)n;
		}
		close(fd);
	}
	closedir(d);
	return r;
}

int
disk_mount(const char *image, const char *dir, bool fresh, int *ret_loop)
{
	struct loop_config cfg = { .info.lo_flags = LO_FLAGS_AUTOCLEAR };
	struct stat st;
	int ctl, img, loop = -1, n = -1, r = -EBUSY;

	img = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (img < 0)
		return -errno;
	if (fstat(img, &st) < 0 ||
	    (!fresh && (r = mount_existing(image, &st, dir, ret_loop)) != -ENOENT)) {
		if (r == -EBUSY)
			r = -errno;
		close(img);
		return r;
	}
	r = -EBUSY;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		r = -errno;
		close(img);
		return r;
	}
	cfg.fd = (uint32_t)img;
	/* Another process may take the free device between our two calls. */
	for (int tries = 0; tries < 16 && r == -EBUSY; tries++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			r = -errno;
			break;
		}
		loop = open_loop(n);
		if (loop < 0) {
			r = loop;
			break;
		}
		r = ioctl(loop, LOOP_CONFIGURE, &cfg) < 0 ? -errno : 0;
		if (r < 0) {
			close(loop);
			loop = -1;
		}
	}
	close(ctl);
	close(img);
	if (r < 0)
		return r;
	r = mount_loop(n, dir);
	if (r < 0)
		ioctl(loop, LOOP_CLR_FD, 0);
	/* Autoclear: from here the mount holds the device, and its last
	 * unmount frees it. */
	close(loop);
	if (r == 0)
		*ret_loop = n;
	return r;
}

int
disk_mount_again(int loop, const char *dir)
{
	return mount_loop(loop, dir);
}

int
disk_unmount(const char *dir)
{
	if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return -errno;
	return 0;
}

/* Undoes the escapes of /proc/self/mountinfo ("\040" for a space) in place. */
static void
unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

int
disk_unmount_below(const char *dir)
{
	size_t len = strlen(dir);
	int count = 0;

	/* Deepest first is not needed: a lazy detach takes what is below too. */
	for (;;) {
		FILE *f = fopen("/proc/self/mountinfo", "re");
		char line[4096], found[4096] = "";

		if (!f)
			return count;
		while (fgets(line, sizeof(line), f)) {
			char *mnt = NULL, *save = NULL, *tok = strtok_r(line, " ", &save);

			/* The fifth field is the mount point. */
			for (int i = 0; tok && i < 4; i++)
				mnt = tok = strtok_r(NULL, " ", &save);
			if (!mnt)
				continue;
			unescape(mnt);
			if (strncmp(mnt, dir, len) == 0 && mnt[len] == '/') {
				snprintf(found, sizeof(found), "%s", mnt);
				break;
			}
		}
		fclose(f);
		if (!found[0] || umount2(found, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			return count;
		count++;
	}
}
