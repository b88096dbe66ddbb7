/*
 * host.c: what every sandbox of a host shares: the state and root
 * directories, the cgroup parent, the seccomp program, and the host entries
 * that each sandbox's root exposes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox-private.h"

/* Host /etc entries a sandbox sees read-only: what the dynamic loader, libc,
 * Python (Debian keeps sitecustomize and matplotlibrc here), TLS clients and
 * coreutils need.  Nothing secret: no shadow, no ssh, no sandboxd config. */
static const char *const etc_allow[] = {
	"alternatives",
	"ld.so.cache",
	"ld.so.conf",
	"ld.so.conf.d",
	"ssl",
	"ca-certificates",
	"ca-certificates.conf",
	"localtime",
	"timezone",
	"mime.types",
	"matplotlibrc",
	"python3",
	"python3.11",
	"python3.12",
	"fonts",
	"protocols",
	"services",
	"inputrc",
	"bash.bashrc",
	"gai.conf",
	"magic",
	"magic.mime",
	"debian_version",
	"os-release",
};

static const char *const top_entries[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };

static const char *const step_names[SBX_STEP__MAX] = {
	[SBX_STEP_NONE] = "none",
	[SBX_STEP_PIPE] = "create pipes",
	[SBX_STEP_CLONE] = "clone namespaces",
	[SBX_STEP_CGROUP] = "set up cgroup",
	[SBX_STEP_UIDMAP] = "write uid/gid map",
	[SBX_STEP_SYNC] = "wait for parent",
	[SBX_STEP_CREDS] = "become sandbox root",
	[SBX_STEP_CGROUPNS] = "enter cgroup namespace",
	[SBX_STEP_MOUNT_PRIVATE] = "make mounts private",
	[SBX_STEP_MOUNT_ROOT] = "mount root tmpfs",
	[SBX_STEP_MOUNT_USR] = "bind /usr",
	[SBX_STEP_MOUNT_ETC] = "build /etc",
	[SBX_STEP_MOUNT_TMP] = "mount /tmp",
	[SBX_STEP_MOUNT_WORKSPACE] = "mount /workspace",
	[SBX_STEP_MOUNT_DEV] = "build /dev",
	[SBX_STEP_MOUNT_PROC] = "mount /proc",
	[SBX_STEP_PROGRAM] = "receive program",
	[SBX_STEP_CODE] = "copy code",
	[SBX_STEP_PIVOT] = "pivot_root",
	[SBX_STEP_HOSTNAME] = "set hostname",
	[SBX_STEP_LOOPBACK] = "bring up loopback",
	[SBX_STEP_FORK] = "fork program",
	[SBX_STEP_STDIO] = "set up stdio",
	[SBX_STEP_CWD] = "enter the working directory",
	[SBX_STEP_RLIMIT] = "set rlimits",
	[SBX_STEP_CAPS] = "drop privileges",
	[SBX_STEP_NO_NEW_PRIVS] = "set no_new_privs",
	[SBX_STEP_SECCOMP] = "load seccomp filter",
	[SBX_STEP_EXEC] = "execve",
};

const char *
sbx_step_name(enum sbx_step step)
{
	if ((unsigned)step >= SBX_STEP__MAX || !step_names[step])
		return "unknown";
	return step_names[step];
}

void
sbx_limits_fill(struct sbx_limits *lim)
{
	if (!lim->memory_bytes)
		lim->memory_bytes = 512ull << 20;
	if (!lim->pids)
		lim->pids = 256;
	if (!lim->cpu_millis)
		lim->cpu_millis = 1000;
	if (!lim->tmp_bytes)
		lim->tmp_bytes = 256ull << 20;
	if (!lim->workspace_bytes)
		lim->workspace_bytes = 1024ull << 20;
	if (!lim->fsize_bytes)
		lim->fsize_bytes = 1024ull << 20;
	if (!lim->nofile)
		lim->nofile = 1024;
}

static void
scan_host(struct sbx_host *host)
{
	struct stat st;
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(top_entries) / sizeof(top_entries[0]); i++) {
		struct sbx_toplink *t = &host->toplinks[host->n_toplinks];
		ssize_t n;

		snprintf(path, sizeof(path), "/%s", top_entries[i]);
		if (lstat(path, &st) < 0)
			continue;
		snprintf(t->path, sizeof(t->path), "/%s", top_entries[i]);
		if (S_ISLNK(st.st_mode)) {
			n = readlink(path, t->target, sizeof(t->target) - 1);
			if (n <= 0)
				continue;
			t->target[n] = '\0';
		} else if (S_ISDIR(st.st_mode)) {
			t->target[0] = '\0';
		} else {
			continue;
		}
		host->n_toplinks++;
	}
	for (size_t i = 0; i < sizeof(etc_allow) / sizeof(etc_allow[0]); i++) {
		snprintf(path, sizeof(path), "/etc/%s", etc_allow[i]);
		/* stat, not lstat: a bind follows the link, and /etc/localtime is one. */
		if (stat(path, &st) < 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
			continue;
		snprintf(host->etc[host->n_etc], sizeof(host->etc[0]), "/etc/%s", etc_allow[i]);
		host->etc_is_dir[host->n_etc] = S_ISDIR(st.st_mode);
		host->n_etc++;
	}
}

/* The filter, in a sealed memfd: sandbox-agent reads it from there. */
static int
seccomp_memfd(const struct sock_fprog *prog, int *ret)
{
	size_t size = prog->len * sizeof(struct sock_filter);
	int fd = memfd_create("sbx-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (write(fd, prog->filter, size) != (ssize_t)size ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		close(fd);
		return -EIO;
	}
	*ret = fd;
	return 0;
}

int
sbx_host_new(const struct sbx_host_config *cfg, struct sbx_host **ret, struct sbx_err *reterr)
{
	struct sbx_host *host;
	struct stat st;
	/* Failures before the seccomp and cgroup steps concern the state directory,
	 * where every sandbox's root is mounted. */
	enum sbx_step step = SBX_STEP_MOUNT_ROOT;
	int r;

	if (!cfg->state_dir || cfg->uid_base == 0 || cfg->uid_slots == 0 ||
	    (uint64_t)cfg->uid_base + (uint64_t)cfg->uid_slots * SBX_UID_SPAN > UINT32_MAX - 1)
		return -EINVAL;
	host = calloc(1, sizeof(*host));
	if (!host)
		return -ENOMEM;
	for (int c = 0; c < SBX_CG__MAX; c++)
		host->cg[c].dirfd = -1;
	host->agent_fd = host->seccomp_fd = host->seccomp_agent_fd = -1;
	host->uid_base = cfg->uid_base;
	host->uid_slots = cfg->uid_slots;
	/* The canonical path: it names this instance (its cgroup parent is derived
	 * from it), so "/var/lib/sandboxd/" and "/var/lib/sandboxd" must agree. */
	if (!realpath(cfg->state_dir, host->state_dir)) {
		r = -errno;
		goto fail;
	}
	if (strlen(host->state_dir) + sizeof("/root") > sizeof(host->state_dir) ||
	    (size_t)snprintf(host->root_dir, sizeof(host->root_dir), "%s/root", host->state_dir) >=
		    sizeof(host->root_dir)) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	/* Every sandbox mounts its own root tmpfs on this directory inside its own mount
	 * namespace, so one empty directory serves them all.  The sandbox's root is not
	 * host root, so the path must be searchable by others. */
	if (stat(host->state_dir, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if ((st.st_mode & S_IXOTH) == 0) {
		r = -EACCES;
		goto fail;
	}
	if (mkdir(host->root_dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	scan_host(host);

	step = SBX_STEP_EXEC;
	host->agent_fd = cfg->agent_path ? open(cfg->agent_path, O_PATH | O_CLOEXEC) : -1;
	if (host->agent_fd < 0) {
		r = cfg->agent_path ? -errno : -EINVAL;
		goto fail;
	}

	step = SBX_STEP_SECCOMP;
	r = sbx_scmp_build(&host->seccomp, SBX_SCMP_PROGRAM);
	if (r < 0)
		goto fail;
	r = seccomp_memfd(&host->seccomp, &host->seccomp_fd);
	if (r < 0)
		goto fail;
	r = sbx_scmp_build(&host->seccomp_agent, SBX_SCMP_AGENT);
	if (r < 0)
		goto fail;
	r = seccomp_memfd(&host->seccomp_agent, &host->seccomp_agent_fd);
	if (r < 0)
		goto fail;

	step = SBX_STEP_CGROUP;
	r = sbx_cg_init(host, cfg->cgroup_root);
	if (r < 0)
		goto fail;

	*ret = host;
	return 0;
fail:
	if (reterr) {
		reterr->step = step;
		reterr->err = -r;
	}
	sbx_host_free(host);
	return r;
}

void
sbx_host_free(struct sbx_host *host)
{
	if (!host)
		return;
	sbx_cg_fini(host);
	sbx_scmp_free(&host->seccomp);
	if (host->seccomp_fd >= 0)
		close(host->seccomp_fd);
	sbx_scmp_free(&host->seccomp_agent);
	if (host->seccomp_agent_fd >= 0)
		close(host->seccomp_agent_fd);
	if (host->agent_fd >= 0)
		close(host->agent_fd);
	free(host);
}

const char *
sbx_host_cgroup_version(const struct sbx_host *host)
{
	return host->cg_v2 ? "v2" : "v1";
}
