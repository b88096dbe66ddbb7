/* exec.c: the client side of the agent's command protocol (sandbox-exec.h). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-proto.h"
#include "sandbox-exec.h"

int
sbx_exec_connect(const char *socket_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(socket_path);
	int fd, r;

	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, socket_path, len + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int
pack(char *buf, size_t *off, const char *const *v, uint32_t *count)
{
	for (; v && *v; v++) {
		size_t len = strlen(*v) + 1;

		if (*count == SBX_ARGS_MAX || len > EXEC_MAX - *off)
			return -E2BIG;
		memcpy(buf + *off, *v, len);
		*off += len;
		(*count)++;
	}
	return 0;
}

int
sbx_exec_send(int conn, const struct sbx_exec_req *req)
{
	static char buf[EXEC_MAX];
	struct exec_hdr h = { .magic = EXEC_MAGIC, .timeout_ms = req->timeout_ms };
	const char *cwd = req->cwd ? req->cwd : "/workspace";
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(3 * sizeof(int))];
	} cbuf;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b };
	struct cmsghdr *cm;
	int fds[3] = { req->stdout_fd, req->stderr_fd, req->stdin_fd }, nfds = 2, r;
	size_t off = sizeof(h);
	ssize_t n;

	if (!req->argv || !req->argv[0] || req->argv[0][0] != '/' || req->stdout_fd < 0 ||
	    req->stderr_fd < 0)
		return -EINVAL;
	if (cwd[0] != '/' || strlen(cwd) >= sizeof(h.cwd))
		return -EINVAL;
	memcpy(h.cwd, cwd, strlen(cwd) + 1);
	if ((r = pack(buf, &off, req->argv, &h.argc)) < 0 ||
	    (r = pack(buf, &off, req->envp, &h.envc)) < 0)
		return r;
	if (req->stdin_fd >= 0) {
		h.flags |= GO_HAS_STDIN;
		nfds = 3;
	}
	memcpy(buf, &h, sizeof(h));
	iov = (struct iovec){ buf, off };
	memset(cbuf.b, 0, sizeof(cbuf.b));
	mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	do
		n = sendmsg(conn, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == off ? 0 : -EIO;
}

int
sbx_exec_recv(int conn, struct sbx_exec_result *ret)
{
	struct exec_done d;
	ssize_t n;

	do
		n = recv(conn, &d, sizeof(d), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n != sizeof(d) || d.magic != EXEC_MAGIC)
		return -EBADMSG;
	*ret = (struct sbx_exec_result){ .timed_out = d.timed_out != 0, .wall_us = d.wall_us };
	if (d.step != SBX_STEP_NONE) {
		ret->setup.step = (enum sbx_step)d.step;
		ret->setup.err = d.err;
		ret->exit_code = 125;
	} else if (d.have_status && WIFEXITED(d.wstatus)) {
		ret->exit_code = WEXITSTATUS(d.wstatus);
	} else if (d.have_status && WIFSIGNALED(d.wstatus)) {
		ret->signal = WTERMSIG(d.wstatus);
		ret->exit_code = 128 + ret->signal;
	} else {
		/* The command's init was killed (timeout, or the connection closed). */
		ret->signal = SIGKILL;
		ret->exit_code = 128 + SIGKILL;
	}
	return 0;
}
