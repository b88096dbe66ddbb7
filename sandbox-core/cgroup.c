/*
 * cgroup.c: one cgroup per uid slot, under a "sandboxd" parent, on cgroup v2
 * or on the v1 memory, pids and cpu hierarchies.
 *
 * A slot's cgroup is created the first time the slot is used and kept for the
 * next sandbox of that slot: mkdir and rmdir of a memory cgroup cost more than
 * the rest of a sandbox's start, and an empty cgroup costs nothing.  OOM kills
 * are detected by comparing the cgroup's oom_kill counter with its value at
 * spawn.  Everything under the parent is killed and removed at start-up (what
 * a crashed run left) and at shutdown.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "sandbox-private.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

#define CG_MOUNT "/sys/fs/cgroup"
static const char *const v1_names[SBX_CG__MAX] = { "memory", "pids", "cpu" };

void
sbx_cg_name(uint32_t slot, char buf[static 24])
{
	snprintf(buf, 24, "run-%" PRIu32, slot);
}

static int
write_at(int dirfd, const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, r = 0;

	fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	close(fd);
	return r;
}

static ssize_t
read_at(int dirfd, const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

/* Finds this process's cgroup path in the hierarchy that carries controller
 * (NULL: the v2 hierarchy) from /proc/self/cgroup. */
static int
own_cgroup(const char *controller, char *buf, size_t size)
{
	char line[1024];
	FILE *f;
	int r = -ENOENT;

	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *ctrls, *path, *nl;

		ctrls = strchr(line, ':');
		if (!ctrls)
			continue;
		ctrls++;
		path = strchr(ctrls, ':');
		if (!path)
			continue;
		*path++ = '\0';
		nl = strchr(path, '\n');
		if (nl)
			*nl = '\0';
		if (controller) {
			bool found = false;
			for (char *tok = strtok(ctrls, ","); tok; tok = strtok(NULL, ","))
				if (strcmp(tok, controller) == 0)
					found = true;
			if (!found)
				continue;
		} else if (strncmp(line, "0::", 3) != 0) {
			continue;
		}
		if ((size_t)snprintf(buf, size, "%s", path) >= size)
			r = -ENAMETOOLONG;
		else
			r = 0;
		break;
	}
	fclose(f);
	return r;
}

/* True if word is one of the space-separated words of list ("cpu" is not "cpuset"). */
static bool
has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
	return false;
}

static bool
is_fs(const char *path, long magic)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == magic;
}

/* Kills every process listed in dirfd/name/cgroup.procs until none is left. */
static void
kill_procs_v1(int dirfd, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/cgroup.procs", name);
	/* With a pid namespace per sandbox one pass normally suffices; the loop covers
	 * processes forked while we were reading.  pids.max bounds how many exist.
	 * The file is read through stdio, number by number, so that a long list is
	 * never cut in the middle of a pid (a cut pid could name a host process). */
	for (int pass = 0; pass < 64; pass++) {
		int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
		bool any = false;
		FILE *f;
		long pid;

		if (fd < 0)
			return;
		f = fdopen(fd, "re");
		if (!f) {
			close(fd);
			return;
		}
		while (fscanf(f, "%ld", &pid) == 1)
			if (pid > 0) {
				kill((pid_t)pid, SIGKILL);
				any = true;
			}
		fclose(f);
		if (!any)
			return;
	}
}

static int
kill_slot_dir(struct sbx_host *host, int dirfd, const char *name)
{
	char path[64];

	if (host->cg_v2) {
		snprintf(path, sizeof(path), "%s/cgroup.kill", name);
		if (write_at(dirfd, path, "1") == 0)
			return 0;
		/* cgroup.kill arrived in Linux 5.14; older kernels take the v1 road. */
	}
	kill_procs_v1(dirfd, name);
	return 0;
}

/* Kills and removes every run-* cgroup under one parent: leftovers of a run of
 * sandboxd that ended without cleaning up, or ours at shutdown. */
static void
sweep_parent(struct sbx_host *host, int dirfd)
{
	DIR *d;
	struct dirent *de;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "run-", 4) != 0 || de->d_type != DT_DIR)
			continue;
		kill_slot_dir(host, dirfd, de->d_name);
		/* A killed task leaves its cgroup a moment after SIGKILL; rmdir says EBUSY
		 * until then.  Bounded retries: a stuck cgroup is left, not waited on. */
		for (int i = 0; i < 1000; i++) {
			if (unlinkat(dirfd, de->d_name, AT_REMOVEDIR) == 0 || errno != EBUSY)
				break;
			kill_slot_dir(host, dirfd, de->d_name);
			usleep(1000);
		}
	}
	closedir(d);
}

/* The parent's name: "sandboxd-" and a hash of the state directory, so that two
 * instances on one host (say, a test stack beside a dev stack) never sweep each
 * other's cgroups, while a restart of one instance finds its own leftovers. */
static void
parent_name(const struct sbx_host *host, char buf[static 24])
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = host->state_dir; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(buf, 24, "sandboxd-%08x", h);
}

static int
open_parent(struct sbx_cg_dir *cg, const char *fmt_mount, const char *own)
{
	if ((size_t)snprintf(cg->path, sizeof(cg->path), "%s%s", fmt_mount, own) >=
	    sizeof(cg->path))
		return -ENAMETOOLONG;
	if (mkdir(cg->path, 0755) < 0 && errno != EEXIST)
		return -errno;
	cg->dirfd = open(cg->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cg->dirfd < 0)
		return -errno;
	return 0;
}

/*
 * cgroup v2 forbids controllers in the subtree of a cgroup that holds
 * processes ("no internal processes").  When sandboxd is started inside its own
 * delegated cgroup X (systemd Delegate=yes, or a container's cgroup namespace),
 * the master moves itself to the leaf X/supervisor, enables the controllers
 * in X and creates X/sandboxd-<hash> for the sandboxes.
 */
static int
init_v2(struct sbx_host *host, const char *cgroup_root)
{
	char own[PATH_MAX], rel[PATH_MAX], buf[512], pid[24], name[24];
	int ownfd, r;

	if (cgroup_root) {
		r = open_parent(&host->cg[0], CG_MOUNT, cgroup_root);
		if (r < 0)
			return r;
		return write_at(host->cg[0].dirfd, "cgroup.subtree_control", "+memory +pids +cpu");
	}

	r = own_cgroup(NULL, own, sizeof(own));
	if (r < 0)
		return r;
	if (strcmp(own, "/") == 0)
		own[0] = '\0';
	snprintf(rel, sizeof(rel), "%s%s", CG_MOUNT, own);
	ownfd = open(rel, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ownfd < 0)
		return -errno;
	if (read_at(ownfd, "cgroup.controllers", buf, sizeof(buf)) < 0 ||
	    !has_word(buf, "memory") || !has_word(buf, "pids") || !has_word(buf, "cpu")) {
		close(ownfd);
		return -EOPNOTSUPP;
	}
	r = write_at(ownfd, "cgroup.subtree_control", "+memory +pids +cpu");
	if (r == -EBUSY) {
		if (mkdirat(ownfd, "supervisor", 0755) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		r = write_at(ownfd, "supervisor/cgroup.procs", pid);
		if (r < 0)
			goto out;
		r = write_at(ownfd, "cgroup.subtree_control", "+memory +pids +cpu");
	}
	if (r < 0)
		goto out;
	parent_name(host, name);
	snprintf(rel, sizeof(rel), "%s/%s", own, name);
	r = open_parent(&host->cg[0], CG_MOUNT, rel);
	if (r < 0)
		goto out;
	r = write_at(host->cg[0].dirfd, "cgroup.subtree_control", "+memory +pids +cpu");
out:
	close(ownfd);
	return r;
}

static int
init_v1(struct sbx_host *host, const char *cgroup_root)
{
	char mnt[64], own[PATH_MAX], rel[PATH_MAX], name[24];
	int r;

	parent_name(host, name);
	for (int c = 0; c < SBX_CG__MAX; c++) {
		snprintf(mnt, sizeof(mnt), CG_MOUNT "/%s", v1_names[c]);
		if (!is_fs(mnt, CGROUP_SUPER_MAGIC)) {
			if (c != SBX_CG_CPU)
				return -EOPNOTSUPP;
			snprintf(mnt, sizeof(mnt), CG_MOUNT "/cpu,cpuacct");
			if (!is_fs(mnt, CGROUP_SUPER_MAGIC))
				return -EOPNOTSUPP;
		}
		if (cgroup_root) {
			snprintf(rel, sizeof(rel), "%s", cgroup_root);
		} else {
			r = own_cgroup(v1_names[c], own, sizeof(own));
			if (r < 0)
				return r;
			if (strcmp(own, "/") == 0)
				own[0] = '\0';
			snprintf(rel, sizeof(rel), "%s/%s", own, name);
		}
		r = open_parent(&host->cg[c], mnt, rel);
		if (r < 0)
			return r;
	}
	host->cg_memsw = faccessat(host->cg[SBX_CG_MEMORY].dirfd, "memory.memsw.limit_in_bytes",
				   F_OK, 0) == 0;
	return 0;
}

int
sbx_cg_init(struct sbx_host *host, const char *cgroup_root)
{
	int r;

	for (int c = 0; c < SBX_CG__MAX; c++)
		host->cg[c].dirfd = -1;
	host->cg_made = calloc(host->uid_slots, 1);
	if (!host->cg_made)
		return -ENOMEM;

	host->cg_v2 = is_fs(CG_MOUNT, CGROUP2_SUPER_MAGIC);
	r = host->cg_v2 ? init_v2(host, cgroup_root) : init_v1(host, cgroup_root);
	if (r < 0)
		return r;
	for (int c = 0; c < SBX_CG__MAX; c++)
		if (host->cg[c].dirfd >= 0)
			sweep_parent(host, host->cg[c].dirfd);
	return 0;
}

void
sbx_cg_fini(struct sbx_host *host)
{
	for (int c = 0; c < SBX_CG__MAX; c++) {
		if (host->cg[c].dirfd < 0)
			continue;
		sweep_parent(host, host->cg[c].dirfd);
		close(host->cg[c].dirfd);
		host->cg[c].dirfd = -1;
		/* The parent goes too when it is ours and empty; EBUSY or ENOTEMPTY leave it. */
		rmdir(host->cg[c].path);
	}
	free(host->cg_made);
	host->cg_made = NULL;
}

static int
cg_dirfd(struct sbx_host *host, int c)
{
	return host->cg_v2 ? host->cg[0].dirfd : host->cg[c].dirfd;
}

int
sbx_cg_create(struct sbx_host *host, uint32_t slot, const struct sbx_limits *lim)
{
	char name[24], path[96], val[64];
	int mem = cg_dirfd(host, SBX_CG_MEMORY), pids = cg_dirfd(host, SBX_CG_PIDS),
	    cpu = cg_dirfd(host, SBX_CG_CPU);
	int r;

	sbx_cg_name(slot, name);
	/* Someone (an administrator, a cleanup script) may have removed a kept cgroup:
	 * check that it is still there, cheaply, before writing into it. */
	if (host->cg_made[slot] && faccessat(mem, name, F_OK, 0) < 0)
		host->cg_made[slot] = 0;
	if (!host->cg_made[slot]) {
		for (int c = 0; c < (host->cg_v2 ? 1 : SBX_CG__MAX); c++)
			if (mkdirat(host->cg[c].dirfd, name, 0755) < 0 && errno != EEXIST)
				return -errno;
		host->cg_made[slot] = 1;
	}

#define SET(fd, file, fmt, v)                                                                      \
	do {                                                                                       \
		snprintf(path, sizeof(path), "%s/" file, name);                                    \
		snprintf(val, sizeof(val), fmt, v);                                                \
		r = write_at(fd, path, val);                                                       \
		if (r < 0)                                                                         \
			return r;                                                                  \
	} while (0)

	if (host->cg_v2) {
		SET(mem, "memory.max", "%" PRIu64, lim->memory_bytes);
		/* No swap accounting (no memory.swap.max): there is no swap to deny. */
		snprintf(path, sizeof(path), "%s/memory.swap.max", name);
		r = write_at(mem, path, "0");
		if (r < 0 && r != -ENOENT)
			return r;
		SET(pids, "pids.max", "%" PRIu32, lim->pids);
		SET(cpu, "cpu.max", "%" PRIu64 " 100000", (uint64_t)lim->cpu_millis * 100);
	} else {
		/* memsw must stay >= the memory limit, so its order depends on the old
		 * value; writing memory first then memsw, and retrying memory once,
		 * works whether the limit grows or shrinks. */
		snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", name);
		snprintf(val, sizeof(val), "%" PRIu64, lim->memory_bytes);
		r = write_at(mem, path, val);
		if (host->cg_memsw) {
			snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", name);
			int r2 = write_at(mem, path, val);

			if (r2 < 0)
				return r2;
			if (r < 0)
				SET(mem, "memory.limit_in_bytes", "%" PRIu64, lim->memory_bytes);
		} else {
			if (r < 0)
				return r;
			/* No swap accounting: keep the cgroup's pages out of swap instead. */
			SET(mem, "memory.swappiness", "%d", 0);
		}
		SET(pids, "pids.max", "%" PRIu32, lim->pids);
		SET(cpu, "cpu.cfs_period_us", "%d", 100000);
		SET(cpu, "cpu.cfs_quota_us", "%" PRIu64, (uint64_t)lim->cpu_millis * 100);
	}
#undef SET
	return 0;
}

int
sbx_cg_procs_paths(struct sbx_host *host, uint32_t slot, char ret[SBX_CG__MAX][PATH_MAX])
{
	char name[24];

	sbx_cg_name(slot, name);
	for (int c = 0; c < SBX_CG__MAX; c++) {
		ret[c][0] = '\0';
		if (c > 0 && host->cg_v2)
			continue;
		if ((size_t)snprintf(ret[c], PATH_MAX, "%s/%s/cgroup.procs", host->cg[c].path,
				     name) >= PATH_MAX)
			return -ENAMETOOLONG;
	}
	return 0;
}

int
sbx_cg_kill(struct sbx_host *host, uint32_t slot)
{
	char name[24];

	sbx_cg_name(slot, name);
	return kill_slot_dir(host, cg_dirfd(host, SBX_CG_PIDS), name);
}

uint64_t
sbx_cg_oom_count(struct sbx_host *host, uint32_t slot)
{
	char name[24], path[64], buf[1024];
	const char *p;

	sbx_cg_name(slot, name);
	snprintf(path, sizeof(path), "%s/%s", name,
		 host->cg_v2 ? "memory.events" : "memory.oom_control");
	if (read_at(cg_dirfd(host, SBX_CG_MEMORY), path, buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "oom_kill ");
	return p ? strtoull(p + 9, NULL, 10) : 0;
}

int
sbx_cg_remove(struct sbx_host *host, uint32_t slot)
{
	char name[24];
	int r = 0;

	sbx_cg_name(slot, name);
	for (int c = 0; c < (host->cg_v2 ? 1 : SBX_CG__MAX); c++)
		if (unlinkat(host->cg[c].dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			r = -errno;
	if (r == 0)
		host->cg_made[slot] = 0;
	return r;
}
