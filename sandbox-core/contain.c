/*
 * contain.c: creating a sandbox.  contain() is the one ordered function that
 * takes a freshly cloned process from "host root in new namespaces" to "user
 * code in a sandbox"; an auditor reads it top to bottom to learn the order.
 *
 * A sandbox is built in two halves.  sbx_spawn() clones it; it attaches
 * itself to its cgroup, builds its root and network, and waits.  sbx_exec()
 * sends it a program (argv, envp, code, stdio fds) over a socketpair; its
 * init then forks the program, which takes the last steps and execs.  A warm
 * pool is sandboxes that have done the first half ahead of need, which takes
 * the costly part (the cgroup migration waits for an RCU grace period, the
 * mounts and namespaces take milliseconds) off the request path.
 *
 * Between clone() and execve() nothing allocates or logs: the parent prepares
 * every string and the seccomp program beforehand, the program arrives in a
 * static buffer (the child's own copy of the parent's memory), and a failing step writes a fixed-size report to a
 * CLOEXEC pipe and calls _exit().
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-proto.h"
#include "sandbox-private.h"

/* Everything the child needs, prepared by the parent before clone(). */
struct child_args {
	const struct sbx_host *host;
	const struct sbx_spec *spec;
	const struct sbx_limits *lim;
	int sync_fd;   /* read end: one byte once the uid and gid maps are written */
	int report_fd; /* write end of the report pipe */
	int ctl_fd;    /* the child's end of the program socketpair */
	char tmp_opts[SBX_OPTS_LEN];
	char shm_opts[SBX_OPTS_LEN];
	char ws_opts[SBX_OPTS_LEN];
	char cg_procs[SBX_CG__MAX][PATH_MAX]; /* cgroup.procs files to join; "" if unused */
	char agent_args[3][24];		      /* nofile, fsize, pids for sandbox-agent */
	int listen_fd;			      /* serve mode: the agent's listening socket */
};

static const char passwd[] = "root:x:0:0:root:/root:/usr/sbin/nologin\n"
			     "user:x:1000:1000:user:/workspace:/bin/bash\n"
			     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char group[] = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";
static const char nsswitch[] = "passwd: files\ngroup: files\nhosts: files dns\n";

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static _Noreturn void
fail(const struct child_args *a, enum sbx_step step)
{
	struct report rep = { REPORT_MAGIC, (int32_t)step, errno, 0, 0 };

	(void)!write(a->report_fd, &rep, sizeof(rep));
	_exit(125);
}

/* Writes a whole small buffer; the files of a fresh tmpfs take it at once. */
static int
write_file(const char *path, const char *a, const char *b, const char *c)
{
	const char *parts[3] = { a, b, c };
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		size_t len = parts[i] ? strlen(parts[i]) : 0;

		if (len && write(fd, parts[i], len) != (ssize_t)len) {
			close(fd);
			return -1;
		}
	}
	return close(fd);
}

/* Creates an empty file or directory to bind something onto. */
static int
mountpoint(const char *path, bool dir)
{
	int fd;

	if (dir)
		return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	return fd < 0 ? -1 : close(fd);
}

/*
 * Binds src onto dst read-only, nosuid and nodev.  Inside a user namespace a
 * remount must keep the flags the kernel locked on the source mount (atime
 * and noexec among them), so those are read back and kept.
 */
static int
bind_ro(const char *src, const char *dst, bool rec)
{
	unsigned long keep = 0;
	struct statvfs sv;

	if (mount(src, dst, NULL, MS_BIND | (rec ? MS_REC : 0), NULL) < 0)
		return -1;
	if (statvfs(dst, &sv) < 0)
		return -1;
	if (sv.f_flag & ST_NOEXEC)
		keep |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		keep |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		keep |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		keep |= MS_RELATIME;
	return mount(NULL, dst, NULL,
		     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | keep, NULL);
}

static int
build_etc(const struct child_args *a)
{
	const struct sbx_host *h = a->host;

	if (mkdir("etc", 0755) < 0)
		return -1;
	if (write_file("etc/passwd", passwd, NULL, NULL) < 0 ||
	    write_file("etc/group", group, NULL, NULL) < 0 ||
	    write_file("etc/nsswitch.conf", nsswitch, NULL, NULL) < 0 ||
	    write_file("etc/hostname", a->spec->hostname, "\n", NULL) < 0 ||
	    write_file("etc/hosts", "127.0.0.1\tlocalhost ", a->spec->hostname,
		       "\n::1\tlocalhost ip6-localhost ip6-loopback\n") < 0 ||
	    /* No name server: lookups fail at once instead of timing out. */
	    write_file("etc/resolv.conf", "", NULL, NULL) < 0)
		return -1;
	for (unsigned i = 0; i < h->n_etc; i++)
		if (mountpoint(h->etc[i] + 1, h->etc_is_dir[i]) < 0 ||
		    bind_ro(h->etc[i], h->etc[i] + 1, true) < 0)
			return -1;
	return 0;
}

static int
build_dev(const struct child_args *a)
{
	static const char *const nodes[] = { "/dev/null",   "/dev/zero",    "/dev/full",
					     "/dev/random", "/dev/urandom", "/dev/tty" };

	if (mkdir("dev", 0755) < 0 || mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
					    "size=64k,nr_inodes=64,mode=0755") < 0)
		return -1;
	/* Device nodes cannot be created in a user namespace; bind the host's. */
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
		if (mountpoint(nodes[i] + 1, false) < 0 ||
		    mount(nodes[i], nodes[i] + 1, NULL, MS_BIND, NULL) < 0)
			return -1;
	if (mkdir("dev/pts", 0755) < 0 ||
	    mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0 ||
	    symlink("pts/ptmx", "dev/ptmx") < 0)
		return -1;
	if (mkdir("dev/shm", 01777) < 0 ||
	    mount("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, a->shm_opts) < 0)
		return -1;
	if (symlink("/proc/self/fd", "dev/fd") < 0 || symlink("/proc/self/fd/0", "dev/stdin") < 0 ||
	    symlink("/proc/self/fd/1", "dev/stdout") < 0 ||
	    symlink("/proc/self/fd/2", "dev/stderr") < 0)
		return -1;
	return mount(NULL, "dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
		     "size=64k,nr_inodes=64,mode=0755");
}

static int
build_proc(void)
{
	/* Kernel knobs and interrupt routing stay readable but not writable. */
	static const char *const ro[] = { "proc/sys", "proc/sysrq-trigger", "proc/irq",
					  "proc/bus" };

	if (mkdir("proc", 0555) < 0 ||
	    mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		if (access(ro[i], F_OK) == 0 && bind_ro(ro[i], ro[i], true) < 0)
			return -1;
	return 0;
}

static int
loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = -1;

	if (fd < 0)
		return -1;
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return r;
}

/*
 * Puts the program socket, the report pipe and the seccomp memfd at the fd
 * numbers sandbox-agent expects (3, 4, 5), open across execve, /dev/null on
 * 0-2 (not the parent's log), and closes everything else but the agent
 * binary's own fd, whose new number it returns.
 */
static int
place_agent_fds(struct child_args *a)
{
	const struct sbx_host *h = a->host;
	/* A persistent sandbox's agent loads its own filter (SBX_SCMP_AGENT). */
	int filter = a->listen_fd >= 0 ? h->seccomp_agent_fd : h->seccomp_fd;
	int src[4] = { a->ctl_fd, a->report_fd, filter, a->listen_fd }, high[4], agent;
	int n = a->listen_fd >= 0 ? 4 : 3;

	/* Move everything out of the way first, so that no dup2() lands on a source. */
	agent = fcntl(h->agent_fd, F_DUPFD_CLOEXEC, 64);
	if (agent < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		high[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64);
		if (high[i] < 0)
			return -1;
	}
	/* dup2() leaves the new fd without FD_CLOEXEC: these survive the exec. */
	for (int i = 0; i < n; i++)
		if (dup2(high[i], AGENT_FD_CTL + i) < 0)
			return -1;
	a->report_fd = AGENT_FD_REPORT;
	syscall(SYS_close_range, AGENT_FD_CTL + n, agent - 1, 0);
	syscall(SYS_close_range, agent + 1, ~0u, 0);
	{
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			return -1;
		close(null);
	}
	return agent;
}

/*
 * Every containment step, in order.  Runs in the cloned child: host root
 * (kuid 0) with all capabilities in new user, mount, pid, net, ipc and uts
 * namespaces, as pid 1 of its pid namespace.
 */
static _Noreturn void
contain(struct child_args *a)
{
	const struct sbx_host *h = a->host;
	const struct sbx_spec *s = a->spec;
	int keep[7] = { a->sync_fd,    a->report_fd,	    a->ctl_fd,	 h->agent_fd,
			h->seccomp_fd, h->seccomp_agent_fd, a->listen_fd };
	int agent;
	char c;

	/* 1. Nothing of the parent's but what we were given (a worker's socket, the
	 *    FastCGI listener and other sandboxes' pipes stay out). */
	agent_close_except(keep, 7);

	/* 2. Join our cgroup before doing anything that costs memory or CPU.  We are
	 *    still host root (kuid 0), which owns the cgroup files.  The migration
	 *    waits for an RCU grace period: better here, in the child, than in the
	 *    parent's event loop. */
	for (int i = 0; i < SBX_CG__MAX; i++) {
		int fd;

		if (!a->cg_procs[i][0])
			continue;
		fd = open(a->cg_procs[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			fail(a, SBX_STEP_CGROUP);
		close(fd);
	}

	/* 3. Wait until the parent has written our uid and gid maps.  EOF means the
	 *    parent gave up on us. */
	if (read(a->sync_fd, &c, 1) != 1)
		fail(a, SBX_STEP_SYNC);
	close(a->sync_fd);

	/* 4. Become root of the new user namespace: host uid uid_base + slot * span,
	 *    never host root.  Drop the host's supplementary groups. */
	if (setresgid(0, 0, 0) < 0 || setgroups(0, NULL) < 0 || setresuid(0, 0, 0) < 0)
		fail(a, SBX_STEP_CREDS);
	/*    The credential change cleared any parent-death signal; set it now.  If
	 *    the parent is already gone, the report pipe has no reader. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(a, SBX_STEP_CREDS);
	{
		struct pollfd pf = { a->report_fd, 0, 0 };
		if (poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR))
			_exit(125);
	}

	/* 5. A cgroup namespace rooted at our own cgroup. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		fail(a, SBX_STEP_CGROUPNS);

	/* 6. The filesystem: private propagation, then a tmpfs root built piece by
	 *    piece, relative to itself. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(a, SBX_STEP_MOUNT_PRIVATE);
	if (mount("tmpfs", h->root_dir, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=1m,nr_inodes=512,mode=0755") < 0 ||
	    chdir(h->root_dir) < 0)
		fail(a, SBX_STEP_MOUNT_ROOT);
	if (mkdir("usr", 0755) < 0 || bind_ro("/usr", "usr", true) < 0)
		fail(a, SBX_STEP_MOUNT_USR);
	for (unsigned i = 0; i < h->n_toplinks; i++) {
		const struct sbx_toplink *t = &h->toplinks[i];

		if (t->target[0] ? symlink(t->target, t->path + 1) < 0
				 : mkdir(t->path + 1, 0755) < 0 ||
					   bind_ro(t->path, t->path + 1, true) < 0)
			fail(a, SBX_STEP_MOUNT_USR);
	}
	if (build_etc(a) < 0)
		fail(a, SBX_STEP_MOUNT_ETC);
	if (mkdir("tmp", 01777) < 0 ||
	    mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, a->tmp_opts) < 0)
		fail(a, SBX_STEP_MOUNT_TMP);
	if (mkdir("workspace", 0755) < 0 ||
	    (s->workspace_dir
		     ? mount(s->workspace_dir, "workspace", NULL, MS_BIND, NULL) < 0 ||
			       mount(NULL, "workspace", NULL,
				     MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, NULL) < 0
		     : mount("tmpfs", "workspace", "tmpfs", MS_NOSUID | MS_NODEV, a->ws_opts) < 0))
		fail(a, SBX_STEP_MOUNT_WORKSPACE);
	if (build_dev(a) < 0)
		fail(a, SBX_STEP_MOUNT_DEV);
	if (build_proc() < 0)
		fail(a, SBX_STEP_MOUNT_PROC);

	/* 7. Swap roots; the old one is detached and gone from view.  No /sys. */
	if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		fail(a, SBX_STEP_PIVOT);
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
	    0)
		fail(a, SBX_STEP_PIVOT);

	/* 8. Names and network: our own hostname; loopback up and nothing else. */
	if (sethostname(s->hostname, strlen(s->hostname)) < 0 ||
	    setdomainname("sandbox", sizeof("sandbox") - 1) < 0)
		fail(a, SBX_STEP_HOSTNAME);
	if (loopback_up() < 0)
		fail(a, SBX_STEP_LOOPBACK);

	/* 9. Become sandbox-agent: the sandbox's init, with none of the parent's
	 *    memory (its configuration, its keys).  It waits for the program and
	 *    takes the last steps; see agent/agent.c. */
	agent = place_agent_fds(a);
	if (agent < 0)
		fail(a, SBX_STEP_PROGRAM);
	{
		const char *argv[] = { "sandbox-agent",	 a->listen_fd >= 0 ? "serve" : "once",
				       a->agent_args[0], a->agent_args[1],
				       a->agent_args[2], NULL };
		const char *envp[] = { NULL };

		syscall(SYS_execveat, agent, "", argv, envp, AT_EMPTY_PATH);
	}
	fail(a, SBX_STEP_EXEC);
}

static int
write_map(pid_t pid, const char *file, uid_t base)
{
	char path[64], map[64];
	int fd, len, r = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	len = snprintf(map, sizeof(map), "0 %u %u\n", (unsigned)base, SBX_UID_SPAN);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, map, (size_t)len) != len)
		r = -errno;
	close(fd);
	return r;
}

static bool
valid_spec(const struct sbx_host *host, const struct sbx_spec *s)
{
	size_t hl = s->hostname ? strlen(s->hostname) : 0;

	/* fd 0 is never a listening socket: a zeroed spec that forgot -1. */
	return hl > 0 && hl <= 63 && s->slot < host->uid_slots && s->listen_fd != 0;
}

int
sbx_spawn(struct sbx_host *host, const struct sbx_spec *spec, struct sbx_proc *ret,
	  struct sbx_err *reterr)
{
	struct sbx_limits lim = spec->limits;
	struct child_args a = {
		.host = host, .spec = spec, .lim = &lim, .listen_fd = spec->listen_fd
	};
	int syncp[2] = { -1, -1 }, repp[2] = { -1, -1 }, ctl[2] = { -1, -1 };
	enum sbx_step step = SBX_STEP_PIPE;
	uint64_t start = now_ns(), oom_base;
	uid_t base;
	pid_t pid = -1;
	int r;

	if (!valid_spec(host, spec))
		return -EINVAL;
	sbx_limits_fill(&lim);
	base = host->uid_base + spec->slot * SBX_UID_SPAN;
	snprintf(a.agent_args[0], sizeof(a.agent_args[0]), "%u", lim.nofile);
	snprintf(a.agent_args[1], sizeof(a.agent_args[1]), "%llu",
		 (unsigned long long)lim.fsize_bytes);
	snprintf(a.agent_args[2], sizeof(a.agent_args[2]), "%u", lim.pids);
	snprintf(a.tmp_opts, sizeof(a.tmp_opts), "size=%llu,nr_inodes=%llu,mode=1777",
		 (unsigned long long)lim.tmp_bytes, (unsigned long long)(lim.tmp_bytes >> 12));
	snprintf(a.shm_opts, sizeof(a.shm_opts), "size=%llu,nr_inodes=4096,mode=1777",
		 (unsigned long long)(lim.tmp_bytes / 4));
	snprintf(a.ws_opts, sizeof(a.ws_opts), "size=%llu,nr_inodes=%llu,mode=0755,uid=%d,gid=%d",
		 (unsigned long long)lim.workspace_bytes,
		 (unsigned long long)(lim.workspace_bytes >> 12), SBX_USER_UID, SBX_USER_GID);

	if (pipe2(syncp, O_CLOEXEC) < 0 || pipe2(repp, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		r = -errno;
		goto fail;
	}
	a.sync_fd = syncp[0];
	a.report_fd = repp[1];
	a.ctl_fd = ctl[1];

	step = SBX_STEP_CGROUP;
	r = sbx_cg_create(host, spec->slot, &lim);
	if (r < 0)
		goto fail;
	r = sbx_cg_procs_paths(host, spec->slot, a.cg_procs);
	if (r < 0)
		goto fail;
	oom_base = sbx_cg_oom_count(host, spec->slot);

	step = SBX_STEP_CLONE;
	/* A raw clone() without a stack behaves like fork(): the child runs on a
	 * copy of our stack, where *a lives. */
	pid = (pid_t)syscall(SYS_clone,
			     CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
				     CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD,
			     0, 0, 0, 0);
	if (pid < 0) {
		r = -errno;
		goto fail;
	}
	if (pid == 0)
		contain(&a);
	close(syncp[0]);
	syncp[0] = -1;
	close(repp[1]);
	repp[1] = -1;
	close(ctl[1]);
	ctl[1] = -1;

	step = SBX_STEP_UIDMAP;
	r = write_map(pid, "uid_map", base);
	if (r < 0)
		goto fail;
	r = write_map(pid, "gid_map", base);
	if (r < 0)
		goto fail;
	step = SBX_STEP_SYNC;
	if (write(syncp[1], "x", 1) != 1) {
		r = -errno;
		goto fail;
	}
	close(syncp[1]);

	*ret = (struct sbx_proc){ .pid = pid,
				  .report_fd = repp[0],
				  .ctl_fd = ctl[0],
				  .slot = spec->slot,
				  .start_ns = start,
				  .oom_base = oom_base };
	return 0;
fail:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, __WALL);
	}
	for (int i = 0; i < 2; i++) {
		if (syncp[i] >= 0)
			close(syncp[i]);
		if (repp[i] >= 0)
			close(repp[i]);
		if (ctl[i] >= 0)
			close(ctl[i]);
	}
	if (reterr) {
		reterr->step = step;
		reterr->err = -r;
	}
	return r;
}

int
sbx_exec(struct sbx_host *host, struct sbx_proc *proc, const struct sbx_prog *prog)
{
	static char buf[GO_MAX];
	struct go_hdr h = { .magic = GO_MAGIC };
	int fds[4], nfds = 0, r;
	size_t off = sizeof(h);

	(void)host;
	if (proc->ctl_fd < 0)
		return -EALREADY;
	if (!prog->argv || !prog->argv[0] || prog->argv[0][0] != '/' || !prog->envp ||
	    prog->stdout_fd < 0 || prog->stderr_fd < 0)
		return -EINVAL;
	for (const char *const *v = prog->argv; *v; v++, h.argc++) {
		size_t len = strlen(*v) + 1;

		if (h.argc == SBX_ARGS_MAX || len > GO_MAX - off)
			return -E2BIG;
		memcpy(buf + off, *v, len);
		off += len;
	}
	for (const char *const *v = prog->envp; *v; v++, h.envc++) {
		size_t len = strlen(*v) + 1;

		if (h.envc == SBX_ARGS_MAX || len > GO_MAX - off)
			return -E2BIG;
		memcpy(buf + off, *v, len);
		off += len;
	}
	fds[nfds++] = prog->stdout_fd;
	fds[nfds++] = prog->stderr_fd;
	if (prog->stdin_fd >= 0) {
		h.flags |= GO_HAS_STDIN;
		fds[nfds++] = prog->stdin_fd;
	}
	if (prog->code_fd >= 0) {
		if (!prog->code_path || strlen(prog->code_path) >= sizeof(h.code_path) ||
		    !agent_valid_code_path(prog->code_path))
			return -EINVAL;
		h.flags |= GO_HAS_CODE;
		memcpy(h.code_path, prog->code_path, strlen(prog->code_path) + 1);
		fds[nfds++] = prog->code_fd;
	}
	memcpy(buf, &h, sizeof(h));

	{
		union {
			struct cmsghdr align;
			char b[CMSG_SPACE(4 * sizeof(int))];
		} cbuf;
		struct iovec iov = { buf, off };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf.b,
				     .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int)) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		ssize_t n;

		memset(cbuf.b, 0, sizeof(cbuf.b));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
		do
			n = sendmsg(proc->ctl_fd, &mh, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		r = n < 0 ? -errno : (size_t)n == off ? 0 : -EIO;
	}
	/* Once is all: the sandbox stops listening after the first program. */
	close(proc->ctl_fd);
	proc->ctl_fd = -1;
	if (r < 0)
		return r;
	proc->start_ns = now_ns();
	return 0;
}

int
sbx_set_hostname(struct sbx_proc *proc, const char *name)
{
	struct host_msg m = { .magic = HOST_MAGIC };
	size_t len = strlen(name);
	ssize_t n;

	if (proc->ctl_fd < 0)
		return -EPIPE;
	if (len == 0 || len >= sizeof(m.name))
		return -EINVAL;
	memcpy(m.name, name, len + 1);
	n = send(proc->ctl_fd, &m, sizeof(m), MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(m) ? 0 : -EIO;
}

bool
sbx_ready(struct sbx_proc *proc)
{
	char c;

	if (!proc->ready && proc->ctl_fd >= 0 && recv(proc->ctl_fd, &c, 1, MSG_DONTWAIT) == 1 &&
	    c == AGENT_READY)
		proc->ready = true;
	return proc->ready;
}

int
sbx_kill(struct sbx_host *host, struct sbx_proc *proc)
{
	proc->killed = true;
	/* Killing the init ends the pid namespace; the cgroup catches anything that
	 * could outlive it. */
	kill(proc->pid, SIGKILL);
	return sbx_cg_kill(host, proc->slot);
}

void
sbx_reap(struct sbx_host *host, struct sbx_proc *proc, int wstatus, struct sbx_result *ret)
{
	struct report rep = { 0 };
	ssize_t n;

	*ret = (struct sbx_result){ 0 };
	do
		n = read(proc->report_fd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	close(proc->report_fd);
	proc->report_fd = -1;
	if (proc->ctl_fd >= 0) {
		close(proc->ctl_fd);
		proc->ctl_fd = -1;
	}

	if (n == (ssize_t)sizeof(rep) && rep.magic == REPORT_MAGIC && rep.step != SBX_STEP_NONE) {
		ret->setup.step = (enum sbx_step)rep.step;
		ret->setup.err = rep.err;
		ret->exit_code = 125;
	} else if (n == (ssize_t)sizeof(rep) && rep.magic == REPORT_MAGIC && rep.have_status) {
		wstatus = rep.wstatus;
		ret->ran = true;
	}
	if (ret->setup.step == SBX_STEP_NONE) {
		if (WIFEXITED(wstatus)) {
			ret->exit_code = WEXITSTATUS(wstatus);
		} else if (WIFSIGNALED(wstatus)) {
			ret->signal = WTERMSIG(wstatus);
			ret->exit_code = 128 + ret->signal;
		}
	}
	ret->oom_killed = sbx_cg_oom_count(host, proc->slot) > proc->oom_base;
	ret->killed = proc->killed;
	ret->wall_us = (now_ns() - proc->start_ns) / 1000;
	/* The pid namespace died with its init; this only catches the impossible. */
	sbx_cg_kill(host, proc->slot);
}

int
sbx_run(struct sbx_host *host, const struct sbx_spec *spec, const struct sbx_prog *prog,
	uint32_t timeout_ms, struct sbx_result *ret, struct sbx_err *reterr)
{
	struct sbx_proc proc;
	struct pollfd p;
	int st, pidfd, r;

	r = sbx_spawn(host, spec, &proc, reterr);
	if (r < 0)
		return r;
	r = sbx_exec(host, &proc, prog);
	if (r < 0) {
		/* The sandbox died before it took the program; its report says why. */
		if (reterr) {
			reterr->step = SBX_STEP_PROGRAM;
			reterr->err = -r;
		}
	}
	pidfd = (int)syscall(SYS_pidfd_open, proc.pid, 0);
	if (pidfd >= 0) {
		p = (struct pollfd){ pidfd, POLLIN, 0 };
		while ((r = poll(&p, 1, timeout_ms ? (int)timeout_ms : -1)) < 0 && errno == EINTR)
			;
		if (r == 0)
			sbx_kill(host, &proc);
		close(pidfd);
	}
	while (waitpid(proc.pid, &st, __WALL) < 0)
		if (errno != EINTR) {
			st = 0;
			break;
		}
	sbx_reap(host, &proc, st, ret);
	return 0;
}

uint64_t
sbx_oom_kills(struct sbx_host *host, const struct sbx_proc *proc)
{
	uint64_t n = sbx_cg_oom_count(host, proc->slot);

	return n > proc->oom_base ? n - proc->oom_base : 0;
}
