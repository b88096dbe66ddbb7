/*
 * sandbox-agent: the init (pid 1) of every sandbox, exec'd by contain()
 * once the sandbox is built (see agent-proto.h for what it is handed).
 *
 * It waits for its program, puts the code file in /tmp, forks the program
 * through the last containment steps (rlimits, capabilities, uid 1000,
 * no_new_privs, seccomp, execve), reaps every process the pid namespace
 * hands it, and reports the program's status.  When it exits, the kernel
 * kills whatever is left in the namespace.
 *
 * Small and static: libc only, no allocation.  It trusts nothing it
 * receives: the program message is checked field by field.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../agent-proto.h"

/* The program once received: pointers into msgbuf. */
struct program {
	const char *argv[SBX_ARGS_MAX + 1];
	const char *envp[SBX_ARGS_MAX + 1];
	char code_path[sizeof(((struct go_hdr *)0)->code_path)];
	int stdin_fd, stdout_fd, stderr_fd, code_fd;
};

static char msgbuf[GO_MAX];
static struct sock_filter filter[BPF_MAXINSNS];
static struct sock_fprog seccomp_prog;
static struct rlimit lim_nofile, lim_fsize, lim_nproc;

static _Noreturn void
fail(enum sbx_step step)
{
	struct report rep = { REPORT_MAGIC, (int32_t)step, errno, 0, 0 };

	(void)!write(AGENT_FD_REPORT, &rep, sizeof(rep));
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

	if (argc != 4 || parse_u64(argv[1], &nofile) < 0 || parse_u64(argv[2], &fsize) < 0 ||
	    parse_u64(argv[3], &pids) < 0) {
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

/*
 * Waits for the program from sbx_exec() and checks it: every count and
 * length against the message, every string NUL-terminated.  Returns 0, 1
 * when the parent closed the socket instead (a warm sandbox no longer
 * needed), or -1 with errno.
 */
static int
receive_program(struct program *p)
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
	struct go_hdr h;
	int fds[4], nfds = 0, want;
	ssize_t n;
	size_t off;

	do
		n = recvmsg(AGENT_FD_CTL, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 1;
	if (n < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			if (nfds > 4)
				nfds = 4;
			memcpy(fds, CMSG_DATA(cm), (size_t)nfds * sizeof(int));
		}
	errno = EBADMSG;
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(h))
		return -1;
	memcpy(&h, msgbuf, sizeof(h));
	want = 2 + !!(h.flags & GO_HAS_STDIN) + !!(h.flags & GO_HAS_CODE);
	if (h.magic != GO_MAGIC || nfds != want || h.argc < 1 || h.argc > SBX_ARGS_MAX ||
	    h.envc > SBX_ARGS_MAX)
		return -1;
	off = sizeof(h);
	for (uint32_t i = 0; i < h.argc + h.envc; i++) {
		const char *str, *end;

		if (off >= (size_t)n)
			return -1;
		str = msgbuf + off;
		end = memchr(str, '\0', (size_t)n - off);
		if (!end)
			return -1;
		if (i < h.argc)
			p->argv[i] = str;
		else
			p->envp[i - h.argc] = str;
		off = (size_t)(end - msgbuf) + 1;
	}
	p->argv[h.argc] = NULL;
	p->envp[h.envc] = NULL;
	if (p->argv[0][0] != '/')
		return -1;
	p->stdout_fd = fds[0];
	p->stderr_fd = fds[1];
	p->stdin_fd = h.flags & GO_HAS_STDIN ? fds[2] : -1;
	p->code_fd = h.flags & GO_HAS_CODE ? fds[want - 1] : -1;
	if (p->code_fd >= 0) {
		memcpy(p->code_path, h.code_path, sizeof(p->code_path));
		p->code_path[sizeof(p->code_path) - 1] = '\0';
		if (!agent_valid_code_path(p->code_path))
			return -1;
	}
	return 0;
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
	syscall(SYS_close_range, 3, AGENT_FD_REPORT - 1, 0);
	syscall(SYS_close_range, AGENT_FD_REPORT + 1, ~0u, 0);

	/* RLIMIT_NPROC counts per host uid, and each sandbox has its own, so it
	 * backs up pids.max without touching other sandboxes. */
	if (setrlimit(RLIMIT_CORE, &core) < 0 || setrlimit(RLIMIT_NOFILE, &lim_nofile) < 0 ||
	    setrlimit(RLIMIT_FSIZE, &lim_fsize) < 0 || setrlimit(RLIMIT_NPROC, &lim_nproc) < 0)
		fail(SBX_STEP_RLIMIT);
	if (chdir("/workspace") < 0)
		fail(SBX_STEP_STDIO);

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

int
main(int argc, char **argv)
{
	struct report rep = { REPORT_MAGIC, SBX_STEP_NONE, 0, 0, 0 };
	static struct program p;
	pid_t program;
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
	 * reach the program, and the report pipe must close at its execve. */
	if (fcntl(AGENT_FD_REPORT, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(AGENT_FD_CTL, F_SETFD, FD_CLOEXEC) < 0)
		fail(SBX_STEP_PROGRAM);
	if (setup(argc, argv) < 0)
		fail(SBX_STEP_PROGRAM);

	/* Ready: wait for the program (a warm sandbox waits here). */
	r = receive_program(&p);
	if (r == 1)
		_exit(0);
	if (r < 0)
		fail(SBX_STEP_PROGRAM);
	close(AGENT_FD_CTL);
	if (p.code_fd >= 0 && copy_code(&p) < 0)
		fail(SBX_STEP_CODE);

	program = fork();
	if (program < 0)
		fail(SBX_STEP_FORK);
	if (program == 0)
		exec_program(&p);
	close(p.stdout_fd);
	close(p.stderr_fd);
	if (p.stdin_fd >= 0)
		close(p.stdin_fd);
	if (p.code_fd >= 0)
		close(p.code_fd);
	/* The init keeps no capability and gains none: it only waits. */
	if (drop_caps() < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(SBX_STEP_CAPS);

	/* Reap every orphan the pid namespace hands us until the program ends. */
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
	(void)!write(AGENT_FD_REPORT, &rep, sizeof(rep));
	return 0;
}
