/*
 * sandbox-agent: the init (pid 1) of every sandbox, exec'd by contain()
 * once the sandbox is built (see agent-proto.h for what it is handed).
 *
 * In "once" mode it waits for its program, puts the code file in /tmp,
 * forks the program through the last containment steps (rlimits,
 * capabilities, uid 1000, no_new_privs, seccomp, execve), reaps every process
 * the pid namespace hands it, and reports the program's status.  When it
 * exits, the kernel kills whatever is left in the namespace.
 *
 * In "serve" mode (a persistent sandbox) it accepts connections from
 * sandboxd's workers and runs one command per connection, each under an init
 * of its own in a nested pid namespace: killing that init (timeout, or the
 * worker hanging up) ends the command's whole tree, and nothing can slip out
 * of it by setsid() or double forks.
 *
 * Small and static: libc only, no allocation.  It trusts nothing it
 * receives: the program message is checked field by field.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../agent-proto.h"

/* A program once received: pointers into msgbuf. */
struct program {
	const char *argv[SBX_ARGS_MAX + 1];
	const char *envp[SBX_ARGS_MAX + 1];
	char code_path[sizeof(((struct go_hdr *)0)->code_path)];
	char cwd[EXEC_CWD_MAX];
	int stdin_fd, stdout_fd, stderr_fd, code_fd;
};

static char msgbuf[EXEC_MAX > GO_MAX ? EXEC_MAX : GO_MAX];
/* Where fail() reports: the sandbox's report pipe, or a command's own pipe. */
static int report_fd = AGENT_FD_REPORT;
static struct sock_filter filter[BPF_MAXINSNS];
static struct sock_fprog seccomp_prog;
static struct rlimit lim_nofile, lim_fsize, lim_nproc;

static _Noreturn void
fail(enum sbx_step step)
{
	struct report rep = { REPORT_MAGIC, (int32_t)step, errno, 0, 0 };

	(void)!write(report_fd, &rep, sizeof(rep));
	_exit(125);
}

static int
parse_u64(const char *s, uint64_t *ret)
{
	char *end;

	errno = 0;
	*ret = strtoull(s, &end, 10);
	return errno || end == s || *end ? -1 : 0;
}

static int
setup(int argc, char **argv)
{
	uint64_t nofile, fsize, pids;
	struct stat st;

	if (argc != 5 || parse_u64(argv[2], &nofile) < 0 || parse_u64(argv[3], &fsize) < 0 ||
	    parse_u64(argv[4], &pids) < 0) {
		errno = EINVAL;
		return -1;
	}
	lim_nofile = (struct rlimit){ nofile, nofile };
	lim_fsize = (struct rlimit){ fsize, fsize };
	lim_nproc = (struct rlimit){ pids, pids };

	/* The seccomp program, read once into our own memory. */
	if (fstat(AGENT_FD_SECCOMP, &st) < 0)
		return -1;
	if (st.st_size <= 0 || (size_t)st.st_size > sizeof(filter) ||
	    st.st_size % (off_t)sizeof(struct sock_filter)) {
		errno = EINVAL;
		return -1;
	}
	if (pread(AGENT_FD_SECCOMP, filter, (size_t)st.st_size, 0) != st.st_size)
		return -1;
	seccomp_prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	seccomp_prog.filter = filter;
	close(AGENT_FD_SECCOMP);
	return 0;
}

/* Receives one message with up to 4 fds into msgbuf.  Returns its length, 0
 * on EOF, or -1 with errno. */
static ssize_t
recv_msg(int sock, int *fds, int *ret_nfds)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	struct iovec iov = { msgbuf, sizeof(msgbuf) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm;
	ssize_t n;

	*ret_nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int count = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (int i = 0; i < count; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + (size_t)i * sizeof(int), sizeof(int));
				if (*ret_nfds < 4)
					fds[(*ret_nfds)++] = fd;
				else
					close(fd);
			}
		}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		errno = EBADMSG;
		return -1;
	}
	return n;
}

/* Points argv and envp of p at the argc + envc strings that follow the header
 * (hdr bytes) in msgbuf; every one must end inside the n bytes received. */
static int
parse_strings(size_t hdr, ssize_t n, uint32_t argc, uint32_t envc, struct program *p)
{
	size_t off = hdr;

	errno = EBADMSG;
	if (argc < 1 || argc > SBX_ARGS_MAX || envc > SBX_ARGS_MAX)
		return -1;
	for (uint32_t i = 0; i < argc + envc; i++) {
		const char *str, *end;

		if (off >= (size_t)n)
			return -1;
		str = msgbuf + off;
		end = memchr(str, '\0', (size_t)n - off);
		if (!end)
			return -1;
		if (i < argc)
			p->argv[i] = str;
		else
			p->envp[i - argc] = str;
		off = (size_t)(end - msgbuf) + 1;
	}
	p->argv[argc] = NULL;
	p->envp[envc] = NULL;
	return p->argv[0][0] == '/' ? 0 : -1;
}

static void
close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Once mode: waits for the program from sbx_exec() and checks it as
 * untrusted input.  Returns 0, 1 when the parent closed the socket instead
 * (a warm sandbox no longer needed), or -1 with errno.
 */
static int
receive_program(struct program *p)
{
	struct go_hdr h;
	int fds[4], nfds, want;
	ssize_t n = recv_msg(AGENT_FD_CTL, fds, &nfds);

	if (n == 0)
		return 1;
	if (n < 0)
		return -1;
	errno = EBADMSG;
	if ((size_t)n < sizeof(h))
		goto bad;
	memcpy(&h, msgbuf, sizeof(h));
	want = 2 + !!(h.flags & GO_HAS_STDIN) + !!(h.flags & GO_HAS_CODE);
	if (h.magic != GO_MAGIC || nfds != want ||
	    parse_strings(sizeof(h), n, h.argc, h.envc, p) < 0)
		goto bad;
	p->stdout_fd = fds[0];
	p->stderr_fd = fds[1];
	p->stdin_fd = h.flags & GO_HAS_STDIN ? fds[2] : -1;
	p->code_fd = h.flags & GO_HAS_CODE ? fds[want - 1] : -1;
	p->cwd[0] = '\0';
	if (p->code_fd >= 0) {
		memcpy(p->code_path, h.code_path, sizeof(p->code_path));
		p->code_path[sizeof(p->code_path) - 1] = '\0';
		if (!agent_valid_code_path(p->code_path))
			goto bad;
	}
	return 0;
bad:
	close_fds(fds, nfds);
	errno = EBADMSG;
	return -1;
}

/* Serve mode: reads a command from a worker's connection.  0 or -1 (errno). */
static int
receive_command(int conn, struct program *p, uint32_t *ret_timeout_ms)
{
	struct exec_hdr h;
	int fds[4], nfds, want;
	ssize_t n = recv_msg(conn, fds, &nfds);

	if (n <= 0) {
		errno = n == 0 ? EPIPE : errno;
		return -1;
	}
	if ((size_t)n < sizeof(h))
		goto bad;
	memcpy(&h, msgbuf, sizeof(h));
	want = 2 + !!(h.flags & GO_HAS_STDIN);
	h.cwd[sizeof(h.cwd) - 1] = '\0';
	if (h.magic != EXEC_MAGIC || nfds != want || h.cwd[0] != '/' ||
	    parse_strings(sizeof(h), n, h.argc, h.envc, p) < 0)
		goto bad;
	p->stdout_fd = fds[0];
	p->stderr_fd = fds[1];
	p->stdin_fd = h.flags & GO_HAS_STDIN ? fds[2] : -1;
	p->code_fd = -1;
	memcpy(p->cwd, h.cwd, sizeof(p->cwd));
	*ret_timeout_ms = h.timeout_ms;
	return 0;
bad:
	close_fds(fds, nfds);
	errno = EBADMSG;
	return -1;
}

static int
copy_code(const struct program *p)
{
	struct stat st;
	off_t off = 0;
	int fd;

	if (fstat(p->code_fd, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	fd = open(p->code_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	while (off < st.st_size) {
		ssize_t n = sendfile(fd, p->code_fd, &off, (size_t)(st.st_size - off));

		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			close(fd);
			return -1;
		}
	}
	return close(fd);
}

/* The program's side of the fork: the last containment steps, then execve(). */
static _Noreturn void
exec_program(const struct program *p)
{
	struct rlimit core = { 0, 0 };
	int in = p->stdin_fd;

	if (setsid() < 0)
		fail(SBX_STEP_STDIO);
	if (in < 0 && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		fail(SBX_STEP_STDIO);
	/* The received fds are above 5: recvmsg hands out the lowest free numbers,
	 * and 0-5 are taken. */
	if (dup2(in, 0) < 0 || dup2(p->stdout_fd, 1) < 0 || dup2(p->stderr_fd, 2) < 0)
		fail(SBX_STEP_STDIO);
	/* Only 0-2 reach the program; the report pipe is CLOEXEC and goes at execve. */
	if (report_fd > 3)
		syscall(SYS_close_range, 3, report_fd - 1, 0);
	syscall(SYS_close_range, report_fd + 1, ~0u, 0);
	{
		/* The agent blocks SIGCHLD for its signalfd; the mask survives execve. */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}

	/* RLIMIT_NPROC counts per host uid, and each sandbox has its own, so it
	 * backs up pids.max without touching other sandboxes. */
	if (setrlimit(RLIMIT_CORE, &core) < 0 || setrlimit(RLIMIT_NOFILE, &lim_nofile) < 0 ||
	    setrlimit(RLIMIT_FSIZE, &lim_fsize) < 0 || setrlimit(RLIMIT_NPROC, &lim_nproc) < 0)
		fail(SBX_STEP_RLIMIT);
	if (chdir(p->cwd[0] ? p->cwd : "/workspace") < 0)
		fail(SBX_STEP_CWD);

	/* Capabilities: empty the bounding and ambient sets, then leave uid 0.  A
	 * change from uid 0 to non-zero clears the permitted and effective sets. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			fail(SBX_STEP_CAPS);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		fail(SBX_STEP_CAPS);
	if (setgroups(0, NULL) < 0 || setresgid(SBX_USER_GID, SBX_USER_GID, SBX_USER_GID) < 0 ||
	    setresuid(SBX_USER_UID, SBX_USER_UID, SBX_USER_UID) < 0)
		fail(SBX_STEP_CAPS);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(SBX_STEP_NO_NEW_PRIVS);
	/* Last before execve: the filter also binds everything above. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &seccomp_prog) < 0)
		fail(SBX_STEP_SECCOMP);
	execve(p->argv[0], (char *const *)p->argv, (char *const *)p->envp);
	fail(SBX_STEP_EXEC);
}

static int
drop_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	return (int)syscall(SYS_capset, &hdr, data);
}

/*
 * Forks the program and stays as its init: closes the program's fds, keeps
 * no capability, reaps everything the pid namespace hands it until the
 * program ends, writes the program's status to report_fd and exits.  When
 * it exits, the kernel kills whatever is left in its pid namespace.
 */
static _Noreturn void
run_as_init(struct program *p)
{
	struct report rep = { REPORT_MAGIC, SBX_STEP_NONE, 0, 0, 0 };
	pid_t program = fork();

	if (program < 0)
		fail(SBX_STEP_FORK);
	if (program == 0)
		exec_program(p);
	close(p->stdout_fd);
	close(p->stderr_fd);
	if (p->stdin_fd >= 0)
		close(p->stdin_fd);
	if (p->code_fd >= 0)
		close(p->code_fd);
	if (drop_caps() < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(SBX_STEP_CAPS);
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, __WALL);

		if (w == program) {
			rep.have_status = 1;
			rep.wstatus = st;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
	}
	(void)!write(report_fd, &rep, sizeof(rep));
	_exit(0);
}

/* ---- serve mode ---------------------------------------------------------- */

#define MAX_CMDS 64

/* A worker's connection, and the command it asked for. */
struct cmd {
	int conn;	   /* -1: free */
	pid_t init;	   /* the command's init (pid 1 of its own pid namespace); 0: not started */
	int status_r;	   /* read end of the init's report pipe */
	uint64_t start_ns; /* CLOCK_MONOTONIC at the request */
	uint64_t deadline_ns; /* 0: none */
	bool timed_out;
};

static struct cmd cmds[MAX_CMDS];

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
answer(struct cmd *c, const struct report *rep)
{
	struct exec_done d = { .magic = EXEC_MAGIC,
			       .timed_out = c->timed_out,
			       .wall_us = (now_ns() - c->start_ns) / 1000 };

	if (rep && rep->magic == REPORT_MAGIC) {
		d.step = rep->step;
		d.err = rep->err;
		d.have_status = rep->have_status;
		d.wstatus = rep->wstatus;
	}
	(void)!send(c->conn, &d, sizeof(d), MSG_NOSIGNAL);
	close(c->conn);
	if (c->status_r >= 0)
		close(c->status_r);
	*c = (struct cmd){ .conn = -1, .status_r = -1 };
}

/* Binds path onto itself read-only (kept flags as in contain.c's bind_ro()). */
static int
ro_self_bind(const char *path)
{
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -1;
	return mount(NULL, path, NULL,
		     MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/*
 * A command's own /proc: its init is pid 1 of a new pid namespace, and
 * tools such as ps must find themselves in /proc.  The kernel knobs stay
 * read-only, as in the sandbox's own /proc.
 */
static int
command_proc(void)
{
	static const char *const ro[] = { "/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
					  "/proc/bus" };

	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		if (access(ro[i], F_OK) == 0 && ro_self_bind(ro[i]) < 0)
			return -1;
	return 0;
}

/* Starts c's command under an init of its own, in new pid and mount
 * namespaces (for its /proc). */
static void
start_command(struct cmd *c, struct program *p)
{
	int st[2];
	pid_t pid;

	if (pipe2(st, O_CLOEXEC) < 0) {
		struct report rep = { REPORT_MAGIC, SBX_STEP_FORK, errno, 0, 0 };

		/* The worker waits for end-of-file on its pipes: let go of them. */
		close(p->stdout_fd);
		close(p->stderr_fd);
		if (p->stdin_fd >= 0)
			close(p->stdin_fd);
		answer(c, &rep);
		return;
	}
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		/* The command's init.  Nothing of the agent's but the command's own fds
		 * and its report pipe. */
		int keep[4] = { p->stdout_fd, p->stderr_fd, p->stdin_fd, st[1] };

		report_fd = st[1];
		for (int fd = 3; fd < 1024; fd++) {
			bool k = false;

			for (int i = 0; i < 4; i++)
				k |= keep[i] == fd;
			if (!k)
				close(fd);
		}
		syscall(SYS_close_range, 1024, ~0u, 0);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			fail(SBX_STEP_CREDS);
		if (command_proc() < 0)
			fail(SBX_STEP_MOUNT_PROC);
		run_as_init(p);
	}
	close(st[1]);
	close(p->stdout_fd);
	close(p->stderr_fd);
	if (p->stdin_fd >= 0)
		close(p->stdin_fd);
	if (pid < 0) {
		struct report rep = { REPORT_MAGIC, SBX_STEP_FORK, errno, 0, 0 };

		close(st[0]);
		answer(c, &rep);
		return;
	}
	c->init = pid;
	c->status_r = st[0];
}

/* Writes path (in the read-only root, made writable for the moment) afresh. */
static void
rewrite(const char *path, const char *a, const char *b, const char *c)
{
	const char *parts[3] = { a, b, c };
	int fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (parts[i])
			(void)!write(fd, parts[i], strlen(parts[i]));
	close(fd);
}

/*
 * A spare built before its ID was known takes the ID's name: the kernel's
 * hostname, and /etc/hostname and /etc/hosts (which name it too), in the
 * root that is read-only for everyone else.  The root tmpfs was mounted in
 * our own user namespace, so we may remount it.
 */
static void
rename_sandbox(const char *name)
{
	(void)!sethostname(name, strlen(name));
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV, NULL) < 0)
		return;
	rewrite("/etc/hostname", name, "\n", NULL);
	rewrite("/etc/hosts", "127.0.0.1\tlocalhost ", name,
		"\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	(void)!mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
		     NULL);
}

static _Noreturn void
serve(void)
{
	static struct pollfd pfd[3 + 2 * MAX_CMDS];
	static struct program p;
	sigset_t mask;
	int sigfd;

	for (int i = 0; i < MAX_CMDS; i++)
		cmds[i] = (struct cmd){ .conn = -1, .status_r = -1 };
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0 || fcntl(AGENT_FD_LISTEN, F_SETFD, FD_CLOEXEC) < 0)
		fail(SBX_STEP_PROGRAM);
	/* In serve mode the program socket carries the parent's settings (the
	 * hostname of a sandbox built before its ID was known).  A persistent
	 * sandbox is ended by SIGKILL. */
	bool ctl_open = true;

	/* Tell the parent we are built and serving. */
	{
		char ready = AGENT_READY;

		(void)!send(AGENT_FD_CTL, &ready, 1, MSG_NOSIGNAL);
	}

	for (;;) {
		uint64_t now = now_ns(), next = UINT64_MAX;
		int n = 0, nfree = 0, timeout;

		pfd[n++] = (struct pollfd){ sigfd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ ctl_open ? AGENT_FD_CTL : -1, POLLIN, 0 };
		for (int i = 0; i < MAX_CMDS; i++)
			nfree += cmds[i].conn < 0;
		pfd[n++] = (struct pollfd){ nfree ? AGENT_FD_LISTEN : -1, POLLIN, 0 };
		for (int i = 0; i < MAX_CMDS; i++) {
			struct cmd *c = &cmds[i];

			if (c->conn < 0)
				continue;
			if (c->init && c->deadline_ns && !c->timed_out) {
				if (c->deadline_ns <= now) {
					c->timed_out = true;
					kill(c->init, SIGKILL);
				} else if (c->deadline_ns < next) {
					next = c->deadline_ns;
				}
			}
			/* Before the command starts: its request.  After: hang-ups only
			 * (events 0 still reports POLLHUP), and the init's report. */
			pfd[n++] = (struct pollfd){ c->conn, c->init ? 0 : POLLIN, 0 };
			pfd[n++] = (struct pollfd){ c->init ? c->status_r : -1, POLLIN, 0 };
		}
		timeout = next == UINT64_MAX ? -1 : (int)((next - now) / 1000000) + 1;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			fail(SBX_STEP_PROGRAM);

		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sigfd, &si, sizeof(si)) == sizeof(si))
				;
			/* Reap the commands' inits; their report pipes say the rest. */
			while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
				;
		}
		if (pfd[1].revents) {
			struct host_msg hm;
			ssize_t r = recv(AGENT_FD_CTL, &hm, sizeof(hm), 0);

			if (r == (ssize_t)sizeof(hm) && hm.magic == HOST_MAGIC &&
			    memchr(hm.name, '\0', sizeof(hm.name)) && hm.name[0])
				rename_sandbox(hm.name);
			else if (r <= 0)
				ctl_open = false; /* the parent is gone, or never speaks */
		}
		for (int i = 0, k = 3; i < MAX_CMDS; i++) {
			struct cmd *c = &cmds[i];
			short conn_ev, st_ev;

			if (c->conn < 0)
				continue;
			conn_ev = pfd[k++].revents;
			st_ev = pfd[k++].revents;
			if (!c->init && (conn_ev & (POLLIN | POLLHUP | POLLERR))) {
				uint32_t timeout_ms = 0;

				if (receive_command(c->conn, &p, &timeout_ms) < 0) {
					struct report rep = { REPORT_MAGIC, SBX_STEP_PROGRAM, errno,
							      0, 0 };

					answer(c, &rep);
					continue;
				}
				c->start_ns = now_ns();
				c->deadline_ns =
					timeout_ms ? c->start_ns + timeout_ms * 1000000ull : 0;
				start_command(c, &p);
				continue;
			}
			if (c->init && (st_ev & (POLLIN | POLLHUP))) {
				struct report rep = { 0 };
				ssize_t r = read(c->status_r, &rep, sizeof(rep));

				/* The init has written its report or died (timeout, hang-up). */
				answer(c, r == (ssize_t)sizeof(rep) ? &rep : NULL);
				continue;
			}
			if (c->init && (conn_ev & (POLLHUP | POLLERR)))
				/* The worker is gone: so is its command. */
				kill(c->init, SIGKILL);
		}
		if (pfd[2].revents & POLLIN) {
			int conn = accept4(AGENT_FD_LISTEN, NULL, NULL, SOCK_CLOEXEC);

			for (int i = 0; conn >= 0 && i < MAX_CMDS; i++)
				if (cmds[i].conn < 0) {
					cmds[i] = (struct cmd){ .conn = conn, .status_r = -1 };
					conn = -1;
				}
			if (conn >= 0)
				close(conn);
		}
	}
}

int
main(int argc, char **argv)
{
	static struct program p;
	bool serve_mode;
	int r;

	/* The exec kept the parent-death signal (no credential change); set it again
	 * all the same, and give up if the parent is already gone. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(SBX_STEP_CREDS);
	{
		struct pollfd pf = { AGENT_FD_REPORT, 0, 0 };
		if (poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR))
			_exit(125);
	}
	/* Our fds arrived open across the exec; from here on nothing of ours may
	 * reach a program, and the report pipe must close at its execve. */
	if (fcntl(AGENT_FD_REPORT, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(AGENT_FD_CTL, F_SETFD, FD_CLOEXEC) < 0)
		fail(SBX_STEP_PROGRAM);
	if (setup(argc, argv) < 0)
		fail(SBX_STEP_PROGRAM);
	serve_mode = strcmp(argv[1], "serve") == 0;
	if (!serve_mode && strcmp(argv[1], "once") != 0) {
		errno = EINVAL;
		fail(SBX_STEP_PROGRAM);
	}
	if (serve_mode)
		serve();

	/* Ready: wait for the program (a warm sandbox waits here). */
	r = receive_program(&p);
	if (r == 1)
		_exit(0);
	if (r < 0)
		fail(SBX_STEP_PROGRAM);
	close(AGENT_FD_CTL);
	if (p.code_fd >= 0 && copy_code(&p) < 0)
		fail(SBX_STEP_CODE);
	run_as_init(&p);
}
