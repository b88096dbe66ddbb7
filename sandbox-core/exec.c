/* exec.c: the client side of the agent's command protocol (sandbox-exec.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-proto.h"
#include "sandbox-fd.h"
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
	/* Not blocking while connecting: an agent whose backlog is full answers
	 * EAGAIN at once, instead of holding the caller until it accepts. */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || fcntl(fd, F_SETFL, 0) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Receives one answer of at most len bytes.  Its length, or -errno (-EPIPE at
 * end of file). */
static ssize_t
recv_answer(int conn, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(conn, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -EPIPE : n;
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
	int fds[3] = { req->stdout_fd, req->stderr_fd, req->stdin_fd }, nfds = 2, r;
	size_t off = sizeof(h);

	if (!req->argv || !req->argv[0] || req->stdout_fd < 0 || req->stderr_fd < 0)
		return -EINVAL;
	if (req->session) {
		size_t len = strlen(req->session);

		if (len == 0 || len >= sizeof(h.session) || req->argv[1])
			return -EINVAL;
		memcpy(h.session, req->session, len + 1);
		h.flags |= EXEC_SESSION | (req->detached ? EXEC_DETACHED : 0);
		cwd = req->cwd ? req->cwd : "";
		if (cwd[0] && cwd[0] != '/')
			return -EINVAL;
	} else if (req->argv[0][0] != '/' || req->overlay || cwd[0] != '/') {
		return -EINVAL;
	}
	if (strlen(cwd) >= sizeof(h.cwd))
		return -EINVAL;
	memcpy(h.cwd, cwd, strlen(cwd) + 1);
	if ((r = pack(buf, &off, req->argv, &h.argc)) < 0 ||
	    (r = pack(buf, &off, req->envp, &h.envc)) < 0 ||
	    (r = pack(buf, &off, req->overlay, &h.ovc)) < 0)
		return r;
	if (req->stdin_fd >= 0) {
		h.flags |= GO_HAS_STDIN;
		nfds = 3;
	}
	memcpy(buf, &h, sizeof(h));
	return sbx_send_fds(conn, buf, off, fds, nfds);
}

int
sbx_exec_recv(int conn, struct sbx_exec_result *ret)
{
	struct exec_done d;
	ssize_t n = recv_answer(conn, &d, sizeof(d));

	if (n < 0)
		return (int)n;
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

int
sbx_session(int conn, enum sbx_session_op op, const char *name, const char *cwd,
	    const char *const *env, struct sbx_session *ret, unsigned max, unsigned *ret_count)
{
	static char buf[EXEC_MAX];
	static struct {
		struct sess_reply r;
		struct sess_info info[AGENT_SESSIONS_MAX];
	} in;
	struct sess_req h = { .magic = SESS_MAGIC, .op = (uint32_t)op };
	size_t off = sizeof(h);
	ssize_t n;
	int r;

	if (name && strlen(name) >= sizeof(h.name))
		return -EINVAL;
	if (cwd && strlen(cwd) >= sizeof(h.cwd))
		return -EINVAL;
	if (name)
		memcpy(h.name, name, strlen(name) + 1);
	if (cwd)
		memcpy(h.cwd, cwd, strlen(cwd) + 1);
	if ((r = pack(buf, &off, env, &h.envc)) < 0)
		return r;
	memcpy(buf, &h, sizeof(h));
	r = sbx_send_fds(conn, buf, off, NULL, 0);
	if (r < 0)
		return r;
	n = recv_answer(conn, &in, sizeof(in));
	if (n < 0)
		return (int)n;
	if ((size_t)n < sizeof(in.r) || in.r.magic != SESS_MAGIC ||
	    in.r.count > AGENT_SESSIONS_MAX ||
	    (size_t)n != sizeof(in.r) + in.r.count * sizeof(in.info[0]))
		return -EBADMSG;
	if (in.r.err)
		return -in.r.err;
	for (unsigned i = 0; i < in.r.count && i < max; i++) {
		in.info[i].name[sizeof(in.info[i].name) - 1] = '\0';
		in.info[i].cwd[sizeof(in.info[i].cwd) - 1] = '\0';
		memcpy(ret[i].name, in.info[i].name, sizeof(ret[i].name));
		ret[i].name[sizeof(ret[i].name) - 1] = '\0';
		memcpy(ret[i].cwd, in.info[i].cwd, sizeof(ret[i].cwd));
		ret[i].busy = in.info[i].busy != 0;
	}
	if (ret_count)
		*ret_count = in.r.count < max ? in.r.count : max;
	return 0;
}

int
sbx_file_send(int conn, const struct sbx_file_req *req)
{
	static struct file_req r;
	bool has_fd =
		req->op == SBX_FILE_READ || req->op == SBX_FILE_WRITE || req->op == SBX_FILE_LIST;

	if (!req->path || req->path[0] != '/' || strlen(req->path) >= sizeof(r.path) ||
	    (has_fd && req->fd < 0))
		return -EINVAL;
	if (req->op == SBX_FILE_RENAME &&
	    (!req->path2 || req->path2[0] != '/' || strlen(req->path2) >= sizeof(r.path2)))
		return -EINVAL;
	memset(&r, 0, sizeof(r));
	r.magic = FILE_MAGIC;
	r.op = (uint32_t)req->op;
	r.flags = req->flags;
	r.size = req->size;
	memcpy(r.path, req->path, strlen(req->path) + 1);
	if (req->op == SBX_FILE_RENAME)
		memcpy(r.path2, req->path2, strlen(req->path2) + 1);
	return sbx_send_fds(conn, &r, sizeof(r), &req->fd, has_fd);
}

int
sbx_file_recv(int conn, struct sbx_file_result *ret)
{
	struct file_done d;
	ssize_t n = recv_answer(conn, &d, sizeof(d));

	if (n < 0)
		return (int)n;
	if ((size_t)n != sizeof(d) || d.magic != FILE_MAGIC || d.err < 0)
		return -EBADMSG;
	*ret = (struct sbx_file_result){ .err = d.err, .info = d.info, .count = d.count };
	return 0;
}

int
sbx_file_meta_check(const struct sbx_file_meta *m)
{
	return m->magic == FILE_MAGIC && m->err >= 0 && m->info.type <= SBX_FILE_OTHER ? 0
										       : -EBADMSG;
}

/* ---- code-interpreter contexts ---- */

/* Sends a context request with id (may be NULL) and no strings. */
static int
ctx_send(int conn, uint32_t op, const char *id, uint32_t timeout_ms)
{
	struct ctx_req r = { .magic = CTX_MAGIC, .op = op, .timeout_ms = timeout_ms };

	if (id) {
		if (strlen(id) >= sizeof(r.id))
			return -EINVAL;
		memcpy(r.id, id, strlen(id) + 1);
	}
	return sbx_send_fds(conn, &r, sizeof(r), NULL, 0);
}

/* Checks a reply; copies its detail.  -err of the reply, 0, or -EBADMSG. */
static int
ctx_reply_check(struct ctx_reply *r, ssize_t n, size_t want, char *detail, size_t detail_size)
{
	if (n < 0)
		return (int)n;
	if ((size_t)n < sizeof(*r) || r->magic != CTX_MAGIC)
		return -EBADMSG;
	r->detail[sizeof(r->detail) - 1] = '\0';
	if (detail && detail_size) {
		size_t len = strlen(r->detail);

		if (len >= detail_size)
			len = detail_size - 1;
		memcpy(detail, r->detail, len);
		detail[len] = '\0';
	}
	if (r->err)
		return r->err > 0 ? -r->err : -EBADMSG;
	return (size_t)n == want ? 0 : -EBADMSG;
}

int
sbx_context_create(int conn, const struct sbx_context_spec *s, char *detail, size_t detail_size)
{
	static char buf[EXEC_MAX];
	struct ctx_req h = { .magic = CTX_MAGIC,
			     .op = CTX_CREATE,
			     .timeout_ms = s->start_timeout_ms,
			     .idle_s = s->idle_s };
	struct ctx_reply r;
	const char *cwd = s->cwd ? s->cwd : "/workspace";
	size_t off = sizeof(h);
	int e;

	if (detail && detail_size)
		detail[0] = '\0';
	if (!s->id || strlen(s->id) >= sizeof(h.id) || !s->language ||
	    strlen(s->language) >= sizeof(h.language) || cwd[0] != '/' ||
	    strlen(cwd) >= sizeof(h.cwd) || !s->argv || !s->argv[0] || s->argv[0][0] != '/' ||
	    s->source_fd < 0)
		return -EINVAL;
	memcpy(h.id, s->id, strlen(s->id) + 1);
	memcpy(h.language, s->language, strlen(s->language) + 1);
	memcpy(h.cwd, cwd, strlen(cwd) + 1);
	if ((e = pack(buf, &off, s->argv, &h.argc)) < 0 ||
	    (e = pack(buf, &off, s->envp, &h.envc)) < 0)
		return e;
	memcpy(buf, &h, sizeof(h));
	e = sbx_send_fds(conn, buf, off, &s->source_fd, 1);
	if (e < 0)
		return e;
	return ctx_reply_check(&r, recv_answer(conn, &r, sizeof(r)), sizeof(r), detail,
			       detail_size);
}

int
sbx_context_delete(int conn, const char *id)
{
	struct ctx_reply r;
	int e = ctx_send(conn, CTX_DELETE, id, 0);

	if (e < 0)
		return e;
	return ctx_reply_check(&r, recv_answer(conn, &r, sizeof(r)), sizeof(r), NULL, 0);
}

int
sbx_context_list(int conn, struct sbx_context_info *ret, unsigned max, unsigned *ret_count)
{
	static struct {
		struct ctx_reply r;
		struct sbx_context_info info[SBX_CONTEXTS_MAX];
	} in;
	ssize_t n;
	int e = ctx_send(conn, CTX_LIST, NULL, 0);

	if (e < 0)
		return e;
	n = recv_answer(conn, &in, sizeof(in));
	if (n >= (ssize_t)sizeof(in.r) && in.r.count > SBX_CONTEXTS_MAX)
		return -EBADMSG;
	e = ctx_reply_check(&in.r, n, n < 0 ? 0 : sizeof(in.r) + in.r.count * sizeof(in.info[0]),
			    NULL, 0);
	if (e < 0)
		return e;
	for (unsigned i = 0; i < in.r.count && i < max; i++) {
		ret[i] = in.info[i];
		ret[i].id[sizeof(ret[i].id) - 1] = '\0';
		ret[i].language[sizeof(ret[i].language) - 1] = '\0';
		ret[i].cwd[sizeof(ret[i].cwd) - 1] = '\0';
	}
	*ret_count = in.r.count < max ? in.r.count : max;
	return 0;
}

int
sbx_cell_send(int conn, const char *id, uint32_t timeout_ms, const void *request, size_t len)
{
	static char buf[sizeof(struct ctx_req) + SBX_CELL_INLINE_MAX];
	struct ctx_req r = { .magic = CTX_MAGIC, .op = CTX_EXEC, .timeout_ms = timeout_ms };

	if (!id || strlen(id) >= sizeof(r.id))
		return -EINVAL;
	memcpy(r.id, id, strlen(id) + 1);
	if (len > SBX_CELL_INLINE_MAX)
		len = 0; /* the worker writes it all */
	memcpy(buf, &r, sizeof(r));
	if (len)
		memcpy(buf + sizeof(r), request, len);
	return sbx_send_fds(conn, buf, sizeof(r) + len, NULL, 0);
}

int
sbx_cell_recv(int conn, struct sbx_cell *ret, char *detail, size_t detail_size)
{
	struct ctx_reply r;
	int fds[4];
	unsigned nfds = 0;
	ssize_t n = sbx_recv_fds(conn, &r, sizeof(r), fds, 4, &nfds);
	int e;

	if (n == 0)
		n = -EPIPE;
	e = ctx_reply_check(&r, n, sizeof(r), detail, detail_size);
	if (e == 0 && nfds != 4)
		e = -EBADMSG;
	if (e < 0) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return e;
	}
	*ret = (struct sbx_cell){ .out = fds[0],
				  .err = fds[1],
				  .events = fds[2],
				  .requests = fds[3],
				  .restarted = r.restarted,
				  .wstatus = r.wstatus,
				  .idle_s = r.idle_s,
				  .written = r.written };
	return 0;
}

int
sbx_cell_note(int conn, uint32_t *kind, int *wstatus)
{
	struct ctx_note n;
	ssize_t r = recv_answer(conn, &n, sizeof(n));

	if (r < 0)
		return (int)r;
	if (r != (ssize_t)sizeof(n) || n.magic != CTX_MAGIC || n.kind < SBX_CELL_INTERRUPTED ||
	    n.kind > SBX_CELL_DELETED)
		return -EBADMSG;
	*kind = n.kind;
	*wstatus = n.wstatus;
	return 0;
}

int
sbx_cell_done(int conn)
{
	char b = CTX_DONE;

	return send(conn, &b, 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}
