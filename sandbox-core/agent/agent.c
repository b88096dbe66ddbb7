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
 * sandboxd's workers, one request per connection.  A command runs under an
 * init of its own in a nested pid namespace: killing that init (timeout, or
 * the worker hanging up) ends the command's whole tree, and nothing can slip
 * out of it by setsid() or double forks.  A command in a session waits for
 * the session's previous one (session.c).  A file operation runs in a child
 * that has become the sandbox's user (files.c).
 *
 * Small and static: libc only, no allocation.  It trusts nothing it
 * receives: every message is checked field by field.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

#include "agent.h"
#include "sandbox-fd.h"

#define STATIC_BASH "/usr/bin/bash-static"

#define MSG_MAX (EXEC_MAX > GO_MAX ? EXEC_MAX : GO_MAX)
static char msgbuf[MSG_MAX > sizeof(struct file_req) ? MSG_MAX : sizeof(struct file_req)];
int report_fd = AGENT_FD_REPORT;
static struct sock_filter filter[BPF_MAXINSNS];
static struct sock_fprog seccomp_prog;
static struct rlimit lim_nofile, lim_fsize, lim_nproc;
static bool filter_loaded; /* by the agent itself, in serve mode */

_Noreturn void
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
	unsigned nfds = 0;
	ssize_t n = sbx_recv_fds(sock, msgbuf, sizeof(msgbuf), fds, 4, &nfds);

	*ret_nfds = (int)nfds;
	if (n < 0) {
		errno = n == -EMSGSIZE ? EBADMSG : (int)-n;
		return -1;
	}
	return n;
}

/* Points v[0..count) at the next count strings in msgbuf, from *off; every
 * one must end inside the n bytes received.  v[count] = NULL. */
static int
take_strings(size_t *off, ssize_t n, uint32_t count, const char **v)
{
	errno = EBADMSG;
	if (count > SBX_ARGS_MAX)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		const char *end;

		if (*off >= (size_t)n)
			return -1;
		end = memchr(msgbuf + *off, '\0', (size_t)n - *off);
		if (!end)
			return -1;
		v[i] = msgbuf + *off;
		*off = (size_t)(end - msgbuf) + 1;
	}
	v[count] = NULL;
	return 0;
}

/* Points argv and envp of p at the argc + envc strings that follow the header
 * (hdr bytes) in msgbuf. */
static int
parse_strings(size_t hdr, ssize_t n, uint32_t argc, uint32_t envc, struct program *p)
{
	size_t off = hdr;

	errno = EBADMSG;
	if (argc < 1 || take_strings(&off, n, argc, p->argv) < 0 ||
	    take_strings(&off, n, envc, p->envp) < 0)
		return -1;
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
	p->cwd_fallback = false;
	p->n_extra = 0;
	p->forward_sigint = false;
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

enum sbx_step
become_user(void)
{
	struct rlimit core = { 0, 0 };

	/* RLIMIT_NPROC counts per host uid, and each sandbox has its own, so it
	 * backs up pids.max without touching other sandboxes. */
	if (setrlimit(RLIMIT_CORE, &core) < 0 || setrlimit(RLIMIT_NOFILE, &lim_nofile) < 0 ||
	    setrlimit(RLIMIT_FSIZE, &lim_fsize) < 0 || setrlimit(RLIMIT_NPROC, &lim_nproc) < 0)
		return SBX_STEP_RLIMIT;

	/* Capabilities: empty the bounding and ambient sets, then leave uid 0.  A
	 * change from uid 0 to non-zero clears the permitted and effective sets. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return SBX_STEP_CAPS;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return SBX_STEP_CAPS;
	if (setgroups(0, NULL) < 0 || setresgid(SBX_USER_GID, SBX_USER_GID, SBX_USER_GID) < 0 ||
	    setresuid(SBX_USER_UID, SBX_USER_UID, SBX_USER_UID) < 0)
		return SBX_STEP_CAPS;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return SBX_STEP_NO_NEW_PRIVS;
	/* Last: the filter also binds everything above.  A persistent sandbox's
	 * agent loaded its own when it began to serve, and it binds us already. */
	if (!filter_loaded && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &seccomp_prog) < 0)
		return SBX_STEP_SECCOMP;
	return SBX_STEP_NONE;
}

/* The program's side of the fork: the last containment steps, then execve(). */
static _Noreturn void
exec_program(const struct program *p)
{
	enum sbx_step step;
	int in = p->stdin_fd;

	if (setsid() < 0)
		fail(SBX_STEP_STDIO);
	if (in < 0 && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		fail(SBX_STEP_STDIO);
	/* The received fds are above 5: recvmsg hands out the lowest free numbers,
	 * and 0-5 are taken. */
	if (dup2(in, 0) < 0 || dup2(p->stdout_fd, 1) < 0 || dup2(p->stderr_fd, 2) < 0)
		fail(SBX_STEP_STDIO);
	/* Only 0-2 and the extra fds (a session's state fd, a driver's protocol
	 * pipes) reach the program; the report pipe is CLOEXEC and goes at
	 * execve.  No extra fd sits where another one goes (see agent.h). */
	{
		int keep[1 + PROGRAM_EXTRA_MAX] = { report_fd };

		for (int i = 0; i < p->n_extra; i++) {
			/* dup2() onto itself would keep close-on-exec. */
			if (p->extra_fd[i] == p->extra_to[i]
				    ? fcntl(p->extra_fd[i], F_SETFD, 0) < 0
				    : dup2(p->extra_fd[i], p->extra_to[i]) < 0)
				fail(SBX_STEP_STDIO);
			keep[1 + i] = p->extra_to[i];
		}
		agent_close_except(keep, 1 + p->n_extra);
	}
	{
		/* The agent blocks SIGCHLD for its signalfd; the mask survives execve. */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	step = become_user();
	if (step != SBX_STEP_NONE)
		fail(step);
	/* As the sandbox's user: a directory it may not enter is refused. */
	if (chdir(p->cwd[0] ? p->cwd : "/workspace") < 0 &&
	    !(p->cwd_fallback && chdir("/workspace") == 0))
		fail(SBX_STEP_CWD);
	execve(p->path ? p->path : p->argv[0], (char *const *)p->argv, (char *const *)p->envp);
	fail(SBX_STEP_EXEC);
}

/* Drops every capability, or all but CAP_KILL (an init that forwards SIGINT
 * to a program of another uid; it sees no process but its own tree). */
static int
drop_caps(bool keep_kill)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (keep_kill)
		data[0].effective = data[0].permitted = 1u << CAP_KILL;
	return (int)syscall(SYS_capset, &hdr, data);
}

static volatile pid_t sigint_target;

static void
forward_sigint(int sig)
{
	if (sigint_target > 0)
		kill(sigint_target, sig);
}

/*
 * Forks the program and stays as its init: closes the program's fds, keeps
 * no capability, reaps everything the pid namespace hands it until the
 * program ends, writes the program's status to report_fd and exits.  When
 * it exits, the kernel kills whatever is left in its pid namespace.
 */
static int
program_main(void *p)
{
	exec_program(p);
}

_Noreturn void
run_as_init(struct program *p)
{
	/* The program's side runs on a stack of its own in our memory, and we
	 * wait (CLONE_VFORK) until it has executed its program or failed: no
	 * copy of our address space to make and throw away at every command. */
	static char stack[64 * 1024] __attribute__((aligned(16)));
	struct report rep = { REPORT_MAGIC, SBX_STEP_NONE, 0, 0, 0 };
	pid_t program =
		clone(program_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, p);

	if (program < 0)
		fail(SBX_STEP_FORK);
	if (p->forward_sigint) {
		/* pid 1 of a namespace gets from outside only the signals it
		 * handles: SIGINT is the driver's interrupt. */
		struct sigaction sa = { .sa_handler = forward_sigint, .sa_flags = SA_RESTART };
		sigset_t intr;

		sigint_target = program;
		sigaction(SIGINT, &sa, NULL);
		sigemptyset(&intr);
		sigaddset(&intr, SIGINT);
		sigprocmask(SIG_UNBLOCK, &intr, NULL);
	}
	close(p->stdout_fd);
	close(p->stderr_fd);
	if (p->stdin_fd >= 0)
		close(p->stdin_fd);
	if (p->code_fd >= 0)
		close(p->code_fd);
	for (int i = 0; i < p->n_extra; i++)
		close(p->extra_fd[i]);
	if (drop_caps(p->forward_sigint) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
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

enum cmd_state {
	CMD_FREE,
	CMD_NEW,     /* accepted; its request not read yet */
	CMD_WAITING, /* a command for a busy session: left in the socket meanwhile */
	CMD_RUNNING, /* a command's init or a file operation's child runs */
};

/* A worker's connection, and what it asked for. */
struct cmd {
	enum cmd_state state;
	bool is_file; /* a file operation, not a command */
	int conn;     /* -1: free */
	int pfd;      /* its conn's index in this round's pollfds, or -1 */
	pid_t init;   /* the command's init (pid 1 of its own pid namespace), or the child */
	int status_r; /* read end of its report pipe */
	int state_fd; /* a session command's state memfd, or -1 */
	int session;  /* a session command's session, or -1 */
	uint32_t session_gen;
	uint64_t seq;	      /* accept order: a session's commands run in it */
	uint64_t start_ns;    /* CLOCK_MONOTONIC at the start */
	uint64_t deadline_ns; /* 0: none */
	bool timed_out;
	bool reaped; /* its init (or child) is reaped: its pid may be another's now */
};

static struct cmd cmds[MAX_CMDS];
static struct program prog;
static bool have_static_bash; /* looked for once: /usr is read-only */

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
free_cmd(struct cmd *c)
{
	*c = (struct cmd){ .conn = -1, .pfd = -1, .status_r = -1, .state_fd = -1, .session = -1 };
}

static void release_session(int idx);

/* Closes c, and lets its session's next command run. */
static void
end_cmd(struct cmd *c)
{
	int idx = -1;

	if (c->session >= 0 && session_generation(c->session) == c->session_gen) {
		idx = c->session;
		if (session_running(idx) == (int)(c - cmds) && c->state_fd >= 0)
			session_end(idx, c->state_fd);
		else if (session_running(idx) == (int)(c - cmds))
			session_set_running(idx, -1);
	}
	if (c->conn >= 0)
		close(c->conn);
	if (c->status_r >= 0)
		close(c->status_r);
	if (c->state_fd >= 0)
		close(c->state_fd);
	free_cmd(c);
	if (idx >= 0)
		release_session(idx);
}

static void
answer(struct cmd *c, const struct report *rep)
{
	struct exec_done d = { .magic = EXEC_MAGIC,
			       .timed_out = c->timed_out,
			       .wall_us = c->start_ns ? (now_ns() - c->start_ns) / 1000 : 0 };

	if (rep && rep->magic == REPORT_MAGIC) {
		d.step = rep->step;
		d.err = rep->err;
		d.have_status = rep->have_status;
		d.wstatus = rep->wstatus;
	}
	(void)!send(c->conn, &d, sizeof(d), MSG_NOSIGNAL);
	end_cmd(c);
}

/* Answers a command that never started: step failed with err. */
static void
refuse(struct cmd *c, enum sbx_step step, int err)
{
	struct report rep = { REPORT_MAGIC, (int32_t)step, err, 0, 0 };

	answer(c, &rep);
}

static void
close_program_fds(const struct program *p)
{
	close(p->stdout_fd);
	close(p->stderr_fd);
	if (p->stdin_fd >= 0)
		close(p->stdin_fd);
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

static const char *const proc_ro[] = { "/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
				       "/proc/bus" };
static bool proc_ro_there[sizeof(proc_ro) / sizeof(proc_ro[0])]; /* looked for once */

/*
 * A command's own /proc: its init is pid 1 of a new pid namespace, and
 * tools such as ps must find themselves in /proc.  The kernel knobs stay
 * read-only, as in the sandbox's own /proc.
 */
int
command_proc(void)
{
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(proc_ro) / sizeof(proc_ro[0]); i++)
		if (proc_ro_there[i] && ro_self_bind(proc_ro[i]) < 0)
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
		/* The worker waits for end-of-file on its pipes: let go of them. */
		close_program_fds(p);
		refuse(c, SBX_STEP_FORK, errno);
		return;
	}
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		/* The command's init.  Nothing of the agent's but the command's own fds
		 * and its report pipe. */
		int keep[5] = { p->stdout_fd, p->stderr_fd, p->stdin_fd, st[1],
				p->n_extra ? p->extra_fd[0] : -1 };

		report_fd = st[1];
		agent_close_except(keep, 5);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			fail(SBX_STEP_CREDS);
		if (command_proc() < 0)
			fail(SBX_STEP_MOUNT_PROC);
		run_as_init(p);
	}
	close(st[1]);
	close_program_fds(p);
	if (pid < 0) {
		close(st[0]);
		refuse(c, SBX_STEP_FORK, errno);
		return;
	}
	c->state = CMD_RUNNING;
	c->init = pid;
	c->status_r = st[0];
}

/* Receives c's command (its session, if any, is free) and starts it. */
static void
start_exec(struct cmd *c)
{
	static const char *base[SBX_ARGS_MAX + 1], *ov[SBX_ARGS_MAX + 1];
	struct program *p = &prog;
	struct exec_hdr h;
	int fds[4], nfds, want;
	ssize_t n = recv_msg(c->conn, fds, &nfds);
	size_t off = sizeof(h);
	bool detached;

	if (n <= 0) {
		end_cmd(c); /* the worker is gone */
		return;
	}
	if ((size_t)n < sizeof(h))
		goto bad;
	memcpy(&h, msgbuf, sizeof(h));
	want = 2 + !!(h.flags & GO_HAS_STDIN);
	h.cwd[sizeof(h.cwd) - 1] = '\0';
	h.session[sizeof(h.session) - 1] = '\0';
	if (h.magic != EXEC_MAGIC || nfds != want)
		goto bad;
	p->stdout_fd = fds[0];
	p->stderr_fd = fds[1];
	p->stdin_fd = h.flags & GO_HAS_STDIN ? fds[2] : -1;
	p->code_fd = -1;
	p->n_extra = 0;
	p->forward_sigint = false;
	p->cwd_fallback = false;
	p->path = NULL;
	memcpy(p->cwd, h.cwd, sizeof(p->cwd));
	c->start_ns = now_ns();
	c->deadline_ns = h.timeout_ms ? c->start_ns + h.timeout_ms * 1000000ull : 0;
	if (!(h.flags & EXEC_SESSION)) {
		if (h.ovc || h.cwd[0] != '/' || parse_strings(sizeof(h), n, h.argc, h.envc, p) < 0)
			goto bad;
		start_command(c, p);
		return;
	}

	/* A session's command: bash runs it in the shell itself (session.c). */
	if (c->session < 0 || h.argc != 1 || (h.cwd[0] && h.cwd[0] != '/') ||
	    take_strings(&off, n, 1, &p->argv[4]) < 0 || take_strings(&off, n, h.envc, base) < 0 ||
	    take_strings(&off, n, h.ovc, ov) < 0)
		goto bad;
	detached = (h.flags & EXEC_DETACHED) != 0;
	if (session_begin(c->session, base, h.envc, ov, h.ovc, h.cwd[0] != '\0', !detached, p->envp,
			  sizeof(p->envp) / sizeof(p->envp[0])) < 0) {
		close_program_fds(p);
		refuse(c, SBX_STEP_PROGRAM, errno);
		return;
	}
	/* bash-static when there is one: the same bash, started without the
	 * dynamic loader's work, which is most of the cost of a short command.
	 * Named "bash", it finds itself as /usr/bin/bash in $BASH. */
	p->path = have_static_bash ? STATIC_BASH : "/bin/bash";
	p->argv[0] = "bash";
	p->argv[1] = "-c";
	p->argv[2] = session_wrapper;
	p->argv[3] = "bash";
	p->argv[5] = NULL;
	if (!h.cwd[0]) {
		snprintf(p->cwd, sizeof(p->cwd), "%s", session_cwd(c->session));
		p->cwd_fallback = true;
	}
	if (detached) {
		/* The command alone, and the session is none of its business. */
		p->argv[2] = p->argv[4];
		p->argv[4] = NULL;
		c->session = -1;
		start_command(c, p);
		return;
	}
	c->state_fd = memfd_create("session", MFD_CLOEXEC);
	if (c->state_fd < 0) {
		session_end(c->session, -1);
		close_program_fds(p);
		refuse(c, SBX_STEP_FORK, errno);
		return;
	}
	p->extra_fd[0] = c->state_fd;
	p->extra_to[0] = AGENT_STATE_FD;
	p->n_extra = 1;
	session_set_running(c->session, (int)(c - cmds));
	start_command(c, p);
	return;
bad:
	close_fds(fds, nfds);
	refuse(c, SBX_STEP_PROGRAM, EBADMSG);
}

/* The session is free: its oldest waiting command runs. */
static void
release_session(int idx)
{
	struct cmd *next = NULL;

	if (session_running(idx) >= 0)
		return;
	for (int i = 0; i < MAX_CMDS; i++) {
		struct cmd *c = &cmds[i];

		if (c->state == CMD_WAITING && c->session == idx &&
		    c->session_gen == session_generation(idx) && (!next || c->seq < next->seq))
			next = c;
	}
	if (next) {
		next->pfd = -1; /* not polled as a running command this round */
		start_exec(next);
	}
}

/* Answers a question about sessions. */
static void
do_session(struct cmd *c)
{
	static const char *env[SBX_ARGS_MAX + 1];
	static struct {
		struct sess_reply r;
		struct sess_info info[AGENT_SESSIONS_MAX];
	} out;
	struct sess_req h;
	int fds[4], nfds, idx;
	ssize_t n = recv_msg(c->conn, fds, &nfds);
	size_t off = sizeof(h), len = sizeof(out.r);

	close_fds(fds, nfds);
	out.r = (struct sess_reply){ .magic = SESS_MAGIC };
	if (n < (ssize_t)sizeof(h) || nfds) {
		out.r.err = EBADMSG;
		goto reply;
	}
	memcpy(&h, msgbuf, sizeof(h));
	h.name[sizeof(h.name) - 1] = '\0';
	h.cwd[sizeof(h.cwd) - 1] = '\0';
	if (take_strings(&off, n, h.envc, env) < 0) {
		out.r.err = EBADMSG;
		goto reply;
	}
	switch (h.op) {
	case SESS_CREATE:
		if (!h.name[0] || (h.cwd[0] && h.cwd[0] != '/'))
			out.r.err = EINVAL;
		else if (session_create(h.name, h.cwd, env, h.envc) < 0)
			out.r.err = errno;
		break;
	case SESS_LIST:
		out.r.count = session_list(out.info, AGENT_SESSIONS_MAX);
		len += out.r.count * sizeof(out.info[0]);
		break;
	case SESS_DELETE: {
		uint32_t gen;
		int running;

		idx = session_find(h.name);
		if (idx < 0) {
			out.r.err = ENOENT;
			break;
		}
		/* Forgotten first, so that nothing more starts in it. */
		gen = session_generation(idx);
		running = session_running(idx);
		session_delete(idx);
		if (running >= 0 && !cmds[running].reaped)
			kill(cmds[running].init, SIGKILL);
		for (int i = 0; i < MAX_CMDS; i++)
			if (cmds[i].state == CMD_WAITING && cmds[i].session == idx &&
			    cmds[i].session_gen == gen)
				refuse(&cmds[i], SBX_STEP_PROGRAM, ESRCH);
		break;
	}
	case SESS_SETENV:
		if (session_setenv(env, h.envc) < 0)
			out.r.err = errno;
		break;
	default: out.r.err = EINVAL;
	}
reply:
	(void)!send(c->conn, &out, len, MSG_NOSIGNAL);
	end_cmd(c);
}

/* Answers a file operation whose child ended: its answer, or EIO. */
static void
answer_file(struct cmd *c)
{
	union {
		struct file_done d;
		struct report rep;
	} in = { 0 };
	struct file_done d = { .magic = FILE_MAGIC, .err = EIO };
	ssize_t r = read(c->status_r, &in, sizeof(in));

	if (r == (ssize_t)sizeof(in.d) && in.d.magic == FILE_MAGIC)
		d = in.d;
	else if (r == (ssize_t)sizeof(in.rep) && in.rep.magic == REPORT_MAGIC && in.rep.err)
		d.err = in.rep.err; /* it failed to become the sandbox's user */
	(void)!send(c->conn, &d, sizeof(d), MSG_NOSIGNAL);
	end_cmd(c);
}

/* Receives a file operation and starts its child. */
static void
start_file(struct cmd *c)
{
	static struct file_req r;
	int fds[4], nfds, st[2], want;
	ssize_t n = recv_msg(c->conn, fds, &nfds);
	pid_t pid;

	if (n <= 0) {
		end_cmd(c);
		return;
	}
	c->is_file = true;
	memcpy(&r, msgbuf, n < (ssize_t)sizeof(r) ? (size_t)n : sizeof(r));
	r.path[sizeof(r.path) - 1] = '\0';
	r.path2[sizeof(r.path2) - 1] = '\0';
	want = r.op == SBX_FILE_READ || r.op == SBX_FILE_WRITE || r.op == SBX_FILE_LIST;
	if (n != (ssize_t)sizeof(r) || r.magic != FILE_MAGIC || r.op < SBX_FILE_STAT ||
	    r.op > SBX_FILE_LIST || nfds != want || r.path[0] != '/' ||
	    (r.op == SBX_FILE_RENAME && r.path2[0] != '/') || pipe2(st, O_CLOEXEC) < 0) {
		struct file_done d = { .magic = FILE_MAGIC, .err = EBADMSG };

		close_fds(fds, nfds);
		(void)!send(c->conn, &d, sizeof(d), MSG_NOSIGNAL);
		end_cmd(c);
		return;
	}
	pid = fork();
	if (pid == 0) {
		int data = want ? fds[0] : -1;
		enum sbx_step step;
		sigset_t none;

		int keep[2] = { data, st[1] };

		report_fd = st[1];
		agent_close_except(keep, 2);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			fail(SBX_STEP_CREDS);
		if (chdir("/workspace") < 0)
			fail(SBX_STEP_CWD);
		step = become_user();
		if (step != SBX_STEP_NONE)
			fail(step);
		files_run(&r, data);
	}
	close(st[1]);
	close_fds(fds, nfds);
	if (pid < 0) {
		struct file_done d = { .magic = FILE_MAGIC, .err = errno };

		close(st[0]);
		(void)!send(c->conn, &d, sizeof(d), MSG_NOSIGNAL);
		end_cmd(c);
		return;
	}
	c->state = CMD_RUNNING;
	c->init = pid;
	c->status_r = st[0];
	c->start_ns = now_ns();
}

/* Reads the header of c's request, without taking it, and acts on it. */
static void
intake(struct cmd *c)
{
	union {
		uint32_t magic;
		struct exec_hdr e;
	} h;
	ssize_t n = recv(c->conn, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < (ssize_t)sizeof(h.magic)) {
		end_cmd(c); /* hung up, or nothing we understand */
		return;
	}
	if (h.magic == SESS_MAGIC) {
		do_session(c);
		return;
	}
	if (h.magic == FILE_MAGIC) {
		start_file(c);
		return;
	}
	if (h.magic == CTX_MAGIC) {
		/* context.c's from here on. */
		ctx_accept(c->conn);
		c->conn = -1;
		end_cmd(c);
		return;
	}
	if (h.magic == EXEC_MAGIC && n == (ssize_t)sizeof(h.e) && (h.e.flags & EXEC_SESSION)) {
		h.e.session[sizeof(h.e.session) - 1] = '\0';
		c->session = h.e.session[0] ? session_get(h.e.session) : -1;
		if (c->session < 0) {
			int fds[4], nfds;

			if (recv_msg(c->conn, fds, &nfds) > 0)
				close_fds(fds, nfds);
			refuse(c, SBX_STEP_PROGRAM, h.e.session[0] ? EUSERS : EBADMSG);
			return;
		}
		c->session_gen = session_generation(c->session);
		if (session_running(c->session) >= 0 && !(h.e.flags & EXEC_DETACHED)) {
			c->state = CMD_WAITING;
			return;
		}
	}
	start_exec(c);
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
	static struct pollfd pfd[3 + 2 * MAX_CMDS + CTX_POLL_MAX];
	uint64_t seq = 0;
	sigset_t mask;
	int sigfd;

	for (int i = 0; i < MAX_CMDS; i++)
		free_cmd(&cmds[i]);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0 || fcntl(AGENT_FD_LISTEN, F_SETFD, FD_CLOEXEC) < 0)
		fail(SBX_STEP_PROGRAM);
	have_static_bash = access(STATIC_BASH, X_OK) == 0;
	for (size_t i = 0; i < sizeof(proc_ro) / sizeof(proc_ro[0]); i++)
		proc_ro_there[i] = access(proc_ro[i], F_OK) == 0;
	/* The filter, once, for the agent and everything it will start: compiled
	 * (and JITed) by the kernel here instead of for every command.  This
	 * variant (SBX_SCMP_AGENT) leaves the agent mount() and clone() with
	 * CLONE_NEWPID and CLONE_NEWNS for each command's namespaces; what the
	 * commands run has no capability to use them with.  We hold
	 * CAP_SYS_ADMIN in our user namespace, so no_new_privs is not needed
	 * for the load; the commands set it themselves. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &seccomp_prog) < 0)
		fail(SBX_STEP_SECCOMP);
	filter_loaded = true;
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
		int n = 0, nfree = 0, nctx, timeout;

		pfd[n++] = (struct pollfd){ sigfd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ ctl_open ? AGENT_FD_CTL : -1, POLLIN, 0 };
		for (int i = 0; i < MAX_CMDS; i++)
			nfree += cmds[i].state == CMD_FREE;
		pfd[n++] = (struct pollfd){ nfree ? AGENT_FD_LISTEN : -1, POLLIN, 0 };
		for (int i = 0; i < MAX_CMDS; i++) {
			struct cmd *c = &cmds[i];

			c->pfd = -1;
			if (c->state == CMD_FREE)
				continue;
			if (c->state == CMD_RUNNING && c->deadline_ns && !c->timed_out) {
				if (c->deadline_ns <= now) {
					c->timed_out = true;
					if (!c->reaped)
						kill(c->init, SIGKILL);
				} else if (c->deadline_ns < next) {
					next = c->deadline_ns;
				}
			}
			/* A new request: its message.  Otherwise hang-ups only (events 0
			 * still reports POLLHUP), and a running one's report. */
			c->pfd = n;
			pfd[n++] = (struct pollfd){ c->conn, c->state == CMD_NEW ? POLLIN : 0, 0 };
			pfd[n++] = (struct pollfd){ c->state == CMD_RUNNING ? c->status_r : -1,
						    POLLIN, 0 };
		}
		nctx = n;
		n += ctx_fill(pfd + n, now, &next);
		timeout = next == UINT64_MAX		      ? -1
			  : next <= now			      ? 0
			  : (next - now) / 1000000 >= INT_MAX ? INT_MAX
							      : (int)((next - now) / 1000000) + 1;
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			fail(SBX_STEP_PROGRAM);

		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sigfd, &si, sizeof(si)) == sizeof(si))
				;
			pid_t pid;

			/* Reap the inits and children; their report pipes say the rest.
			 * A reaped pid is never signalled again. */
			while ((pid = waitpid(-1, NULL, WNOHANG | __WALL)) > 0) {
				for (int i = 0; i < MAX_CMDS; i++)
					if (cmds[i].state == CMD_RUNNING && cmds[i].init == pid)
						cmds[i].reaped = true;
				ctx_reaped(pid);
			}
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
		/* Before the requests, which may change what the contexts polled for. */
		ctx_handle(pfd + nctx, n - nctx, now_ns());
		for (int i = 0; i < MAX_CMDS; i++) {
			struct cmd *c = &cmds[i];
			short conn_ev, st_ev;

			/* Skipped: free, or changed since the poll (a session's next). */
			if (c->pfd < 0)
				continue;
			conn_ev = pfd[c->pfd].revents;
			st_ev = pfd[c->pfd + 1].revents;
			if (c->state == CMD_NEW && (conn_ev & (POLLIN | POLLHUP | POLLERR))) {
				intake(c);
			} else if (c->state == CMD_WAITING && (conn_ev & (POLLHUP | POLLERR))) {
				end_cmd(c); /* the worker gave up waiting */
			} else if (c->state == CMD_RUNNING && (st_ev & (POLLIN | POLLHUP))) {
				/* The init has written its report or died (timeout, hang-up). */
				if (c->is_file) {
					answer_file(c);
				} else {
					struct report rep = { 0 };
					ssize_t r = read(c->status_r, &rep, sizeof(rep));

					answer(c, r == (ssize_t)sizeof(rep) ? &rep : NULL);
				}
			} else if (c->state == CMD_RUNNING && (conn_ev & (POLLHUP | POLLERR))) {
				/* The worker is gone: so is what it started. */
				if (!c->reaped)
					kill(c->init, SIGKILL);
			}
		}
		if (pfd[2].revents & POLLIN) {
			int conn = accept4(AGENT_FD_LISTEN, NULL, NULL, SOCK_CLOEXEC);

			for (int i = 0; conn >= 0 && i < MAX_CMDS; i++)
				if (cmds[i].state == CMD_FREE) {
					free_cmd(&cmds[i]);
					cmds[i].state = CMD_NEW;
					cmds[i].conn = conn;
					cmds[i].seq = ++seq;
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
