/*
 * context.c: the code interpreter's contexts.  A context is one long-lived
 * driver process (drivers/ in the source tree: python3 or node running a
 * script we hand it) under an init of its own, in new pid and mount
 * namespaces, as a command runs: the same user, rlimits and seccomp filter.
 *
 * The driver's protocol is its own channel: fd 3 carries its events (NDJSON)
 * to us, fd 4 our requests to it; fds 1 and 2 are its raw output.  We hold
 * the other ends of the four pipes for the context's life.  A cell borrows
 * them: the worker asking for it gets copies of our ends, writes its request,
 * reads the output and events itself (we copy nothing), and gives them back
 * with CTX_DONE once it has read the driver's "end".  Between cells we read
 * and drop what the driver writes (a thread's late output), so that it
 * never blocks on a full pipe.
 *
 * One cell at a time per context; others wait in their connections.  A
 * cell's timeout sends SIGINT (the driver turns it into KeyboardInterrupt or
 * its like, keeping its state); a cell still running GRACE_NS later is
 * killed with the driver.  A driver that dies (OOM, a crash, os._exit) is
 * not started again until the context's next cell, which is told why (as is
 * one stopped after idle_s unused).
 *
 * We scan the events only for two lines of our own drivers: the first,
 * {"type":"ready"..., and, after a worker hung up in the middle of a cell,
 * the {"type":"end"... that says the interrupted cell is over.  The worker
 * parses the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "sandbox-fd.h"

#define CALLS_MAX 32			/* connections about contexts, waiting or served */
#define GRACE_NS (2000ull * 1000000ull) /* from a timeout's SIGINT to the kill */
#define ARGC_MAX 8			/* the driver's argv before its source */
#define SOURCE_MAX (120 * 1024)		/* Linux takes 128 KiB in one argv string */
#define READS_MAX 16 /* reads of a pipe per wake-up: a busy writer does not pin us */
#define SPAWNS_MAX 3 /* starts in a row without a cell run: the driver cannot run one */

enum ctx_state {
	CTX_FREE,
	CTX_STARTING, /* the driver runs; its "ready" has not come */
	CTX_IDLE,
	CTX_BUSY,     /* a worker has the pipes for a cell */
	CTX_DRAINING, /* its worker hung up mid-cell: interrupted, waiting for "end" */
	CTX_STOPPED,  /* no driver; started again at the next cell */
};

struct ctx {
	enum ctx_state state;
	uint32_t gen; /* changes when the slot is freed */
	char id[SBX_CONTEXT_ID_MAX + 1];
	char language[CTX_LANGUAGE_MAX];
	char cwd[EXEC_CWD_MAX];
	uint32_t argc, envc, idle_s, start_timeout_ms;
	int src_fd; /* the driver's source */

	pid_t init;
	bool reaped;
	int status_r, out_r, err_r, ev_r, req_w;
	int call;	   /* the call it serves: a cell, or its creator; -1 */
	uint64_t deadline; /* STARTING: ready by; BUSY: interrupt, then kill; DRAINING: kill */
	bool interrupted;
	uint32_t dying;	 /* we killed it: why (enum sbx_context_down) */
	uint32_t spawns; /* started again since its last cell began */

	char head[16]; /* the start of the event line being read */
	uint32_t head_len;
	char errtail[CTX_DETAIL_MAX]; /* the end of its stderr while it starts */
	size_t errtail_len;

	uint32_t restarted; /* to tell the next cell: enum sbx_context_down */
	int32_t wstatus;
	uint32_t executions;
	int64_t created_ms, last_used_ms;
	uint64_t last_used_ns;
	int pfd;
};

struct call {
	int conn; /* -1: free */
	int ctx;
	uint32_t gen;
	uint32_t op; /* CTX_CREATE or CTX_EXEC */
	uint32_t timeout_ms;
	uint64_t seq;
	bool active; /* the context serves it (not waiting) */
	int pfd;
};

static struct ctx ctxs[SBX_CONTEXTS_MAX];
/* Each context's argc + envc NUL-terminated strings.  Apart from the table,
 * which is reset by assignment: these pages are touched only when used, so a
 * sandbox without contexts does not pay for them. */
static char ctx_strings[SBX_CONTEXTS_MAX][SBX_STRINGS_MAX];
static struct call calls[CALLS_MAX];
static uint64_t call_seq;
static bool inited;

static void
init_tables(void)
{
	if (inited)
		return;
	for (int i = 0; i < SBX_CONTEXTS_MAX; i++)
		ctxs[i] = (struct ctx){ .state = CTX_FREE,
					.src_fd = -1,
					.status_r = -1,
					.out_r = -1,
					.err_r = -1,
					.ev_r = -1,
					.req_w = -1,
					.call = -1,
					.pfd = -1 };
	for (int i = 0; i < CALLS_MAX; i++)
		calls[i] = (struct call){ .conn = -1, .ctx = -1, .pfd = -1 };
	inited = true;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static bool
valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > SBX_CONTEXT_ID_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int
find(const char *id)
{
	for (int i = 0; i < SBX_CONTEXTS_MAX; i++)
		if (ctxs[i].state != CTX_FREE && strcmp(ctxs[i].id, id) == 0)
			return i;
	return -1;
}

/* ---- answers ---- */

static void
reply(int conn, int err, const char *detail, const struct ctx *x)
{
	struct ctx_reply r = { .magic = CTX_MAGIC, .err = err };

	if (detail)
		snprintf(r.detail, sizeof(r.detail), "%s", detail);
	if (x) {
		r.restarted = x->restarted;
		r.wstatus = x->wstatus;
		r.idle_s = x->idle_s;
	}
	(void)!send(conn, &r, sizeof(r), MSG_NOSIGNAL);
}

static void
free_call(struct call *c)
{
	close_fd(&c->conn);
	*c = (struct call){ .conn = -1, .ctx = -1, .pfd = -1 };
}

static void
note(struct call *c, uint32_t kind, int wstatus)
{
	struct ctx_note n = { .magic = CTX_MAGIC, .kind = kind, .wstatus = wstatus };

	(void)!send(c->conn, &n, sizeof(n), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ---- the driver's pipes ---- */

#define SEEN_READY 1u
#define SEEN_END 2u
#define SEEN_EOF 4u

static unsigned
classify(const struct ctx *x)
{
	static const char ready[] = "{\"type\":\"ready\"", end[] = "{\"type\":\"end\"";

	if (x->head_len >= sizeof(ready) - 1 && memcmp(x->head, ready, sizeof(ready) - 1) == 0)
		return SEEN_READY;
	if (x->head_len >= sizeof(end) - 1 && memcmp(x->head, end, sizeof(end) - 1) == 0)
		return SEEN_END;
	return 0;
}

/* Reads what the events pipe holds, noting the lines we look for. */
static unsigned
scan_events(struct ctx *x)
{
	static char buf[65536];
	unsigned seen = 0;

	for (int reads = 0; reads < READS_MAX; reads++) {
		ssize_t n = read(x->ev_r, buf, sizeof(buf));

		if (n == 0) {
			close_fd(&x->ev_r);
			return seen | SEEN_EOF;
		}
		if (n < 0)
			return seen;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				seen |= classify(x);
				x->head_len = 0;
			} else if (x->head_len < sizeof(x->head)) {
				x->head[x->head_len++] = buf[i];
			}
		}
	}
	return seen; /* more to read: poll says so again */
}

/* Reads and drops what fd holds (up to READS_MAX reads); at end of file
 * closes it.  With tail, keeps the last bytes (a starting driver's stderr,
 * for the error it causes). */
static void
drop_output(struct ctx *x, int *fd, bool tail)
{
	static char buf[65536];

	for (int reads = 0; reads < READS_MAX; reads++) {
		ssize_t n = read(*fd, buf, sizeof(buf));

		if (n == 0)
			close_fd(fd);
		if (n <= 0)
			return;
		if (!tail)
			continue;
		if ((size_t)n >= sizeof(x->errtail) - 1) {
			memcpy(x->errtail, buf + n - (sizeof(x->errtail) - 1),
			       sizeof(x->errtail) - 1);
			x->errtail_len = sizeof(x->errtail) - 1;
		} else {
			size_t keep = sizeof(x->errtail) - 1 - (size_t)n;

			if (x->errtail_len > keep) {
				memmove(x->errtail, x->errtail + x->errtail_len - keep, keep);
				x->errtail_len = keep;
			}
			memcpy(x->errtail + x->errtail_len, buf, (size_t)n);
			x->errtail_len += (size_t)n;
		}
		x->errtail[x->errtail_len] = '\0';
	}
}

/* Drops what the driver wrote between cells.  Whether it has closed one of
 * its pipes: then it can run no cell (its output would be lost, or its end
 * never come). */
static bool
drain(struct ctx *x)
{
	if (x->out_r >= 0)
		drop_output(x, &x->out_r, false);
	if (x->err_r >= 0)
		drop_output(x, &x->err_r, false);
	if (x->ev_r >= 0)
		scan_events(x);
	return x->out_r < 0 || x->err_r < 0 || x->ev_r < 0;
}

/* ---- the driver's process ---- */

/* A fd moved above the numbers the program's fds go to. */
static int
lift(int fd)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 16);

	if (hi < 0)
		fail(SBX_STEP_STDIO);
	close(fd);
	return hi;
}

/* The driver's init, in the child: its program laid out, then run_as_init(). */
static _Noreturn void
driver_init(struct ctx *x, int out_w, int err_w, int ev_w, int req_r, int st_w)
{
	static struct program p;
	int keep[6] = { out_w, err_w, ev_w, req_r, st_w, x->src_fd };
	const char *s = ctx_strings[x - ctxs], *src;
	struct stat st;
	uint32_t i;

	agent_close_except(keep, 6);
	report_fd = lift(st_w);
	/* The protocol pipes are the driver's, so that it may open them anew
	 * through /proc/self/fd (Node's way of moving them off 3 and 4). */
	if (fchown(ev_w, SBX_USER_UID, SBX_USER_GID) < 0 ||
	    fchown(req_r, SBX_USER_UID, SBX_USER_GID) < 0)
		fail(SBX_STEP_STDIO);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(SBX_STEP_CREDS);
	if (command_proc() < 0)
		fail(SBX_STEP_MOUNT_PROC);
	/* The source: one string, NUL-terminated, in a memfd sealed by the worker. */
	if (fstat(x->src_fd, &st) < 0)
		fail(SBX_STEP_PROGRAM);
	errno = EINVAL;
	if (st.st_size < 2 || st.st_size > SOURCE_MAX)
		fail(SBX_STEP_PROGRAM);
	src = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, x->src_fd, 0);
	if (src == MAP_FAILED)
		fail(SBX_STEP_PROGRAM);
	errno = EINVAL;
	if (memchr(src, '\0', (size_t)st.st_size) != src + st.st_size - 1)
		fail(SBX_STEP_PROGRAM);
	close(x->src_fd);

	p = (struct program){ .stdin_fd = -1, .code_fd = -1, .forward_sigint = true };
	for (i = 0; i < x->argc; i++, s += strlen(s) + 1)
		p.argv[i] = s;
	p.argv[i++] = src;
	p.argv[i] = NULL;
	for (i = 0; i < x->envc; i++, s += strlen(s) + 1)
		p.envp[i] = s;
	p.envp[i] = NULL;
	memcpy(p.cwd, x->cwd, sizeof(p.cwd));
	p.stdout_fd = lift(out_w);
	p.stderr_fd = lift(err_w);
	p.extra_fd[0] = lift(ev_w);
	p.extra_to[0] = 3;
	p.extra_fd[1] = lift(req_r);
	p.extra_to[1] = 4;
	p.n_extra = 2;
	run_as_init(&p);
}

/* Starts x's driver.  0, or -1 with errno. */
static int
spawn(struct ctx *x)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, ev[2] = { -1, -1 }, rq[2] = { -1, -1 },
	    st[2] = { -1, -1 };
	pid_t pid;
	int e;

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(ev, O_CLOEXEC) < 0 ||
	    pipe2(rq, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0)
		goto fail;
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		driver_init(x, out[1], err[1], ev[1], rq[0], st[1]);
	if (pid < 0)
		goto fail;
	close(out[1]);
	close(err[1]);
	close(ev[1]);
	close(rq[0]);
	close(st[1]);
	/* Non-blocking: the file descriptions, which the cells' workers share. */
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	fcntl(ev[0], F_SETFL, O_NONBLOCK);
	fcntl(rq[1], F_SETFL, O_NONBLOCK);
	x->out_r = out[0];
	x->err_r = err[0];
	x->ev_r = ev[0];
	x->req_w = rq[1];
	x->status_r = st[0];
	x->init = pid;
	x->reaped = false;
	x->dying = 0;
	x->interrupted = false;
	x->head_len = 0;
	x->errtail_len = 0;
	x->errtail[0] = '\0';
	x->state = CTX_STARTING;
	x->deadline = now_ns() + (uint64_t)x->start_timeout_ms * 1000000ull;
	x->executions = 0; /* as the new driver counts */
	return 0;
fail:
	e = errno;
	for (int i = 0; i < 2; i++) {
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&ev[i]);
		close_fd(&rq[i]);
		close_fd(&st[i]);
	}
	errno = e;
	return -1;
}

static void
kill_driver(struct ctx *x, uint32_t why)
{
	if (x->init > 0 && !x->reaped) {
		kill(x->init, SIGKILL);
		if (!x->dying)
			x->dying = why;
	}
}

static void
close_pipes(struct ctx *x)
{
	close_fd(&x->status_r);
	close_fd(&x->out_r);
	close_fd(&x->err_r);
	close_fd(&x->ev_r);
	close_fd(&x->req_w);
	x->init = 0;
}

static void dispatch(int idx);

/* Fails every call waiting for context idx with err. */
static void
fail_waiting(int idx, int err, const char *detail)
{
	for (int i = 0; i < CALLS_MAX; i++) {
		struct call *c = &calls[i];

		if (c->conn >= 0 && c->ctx == idx && c->gen == ctxs[idx].gen && !c->active) {
			reply(c->conn, err, detail, NULL);
			free_call(c);
		}
	}
}

static void
free_ctx(struct ctx *x)
{
	uint32_t gen = x->gen + 1;

	close_pipes(x);
	close_fd(&x->src_fd);
	*x = (struct ctx){ .state = CTX_FREE,
			   .gen = gen,
			   .src_fd = -1,
			   .status_r = -1,
			   .out_r = -1,
			   .err_r = -1,
			   .ev_r = -1,
			   .req_w = -1,
			   .call = -1,
			   .pfd = -1 };
}

/* Why a driver that was starting ended, for the caller. */
static void
start_failure(const struct ctx *x, const struct report *rep, bool have, char *buf, size_t size)
{
	if (x->dying)
		snprintf(buf, size, "the driver was not ready within %u ms%s%s",
			 x->start_timeout_ms, x->errtail_len ? ": " : "", x->errtail);
	else if (have && rep->step == SBX_STEP_CWD)
		snprintf(buf, size, "cannot enter %s: %s", x->cwd, strerror(rep->err));
	else if (have && rep->step != SBX_STEP_NONE)
		snprintf(buf, size, "the driver could not be started (step %d: %s)", rep->step,
			 strerror(rep->err));
	else if (have && WIFEXITED(rep->wstatus))
		snprintf(buf, size, "the driver exited with status %d before it was ready%s%s",
			 WEXITSTATUS(rep->wstatus), x->errtail_len ? ": " : "", x->errtail);
	else if (have && WIFSIGNALED(rep->wstatus))
		snprintf(buf, size, "the driver was killed by signal %d before it was ready%s%s",
			 WTERMSIG(rep->wstatus), x->errtail_len ? ": " : "", x->errtail);
	else
		snprintf(buf, size, "the driver ended before it was ready%s%s",
			 x->errtail_len ? ": " : "", x->errtail);
}

/* Whether the worker of cell c has said it is done (CTX_DONE, unread yet)
 * or hung up: it listens no more. */
static bool
cell_over(const struct call *c)
{
	char b = 0;
	ssize_t r = recv(c->conn, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return r == 0 || (r == 1 && b == CTX_DONE);
}

/* x's init has ended (its report, or its death, on status_r). */
static void
ended(int idx)
{
	struct ctx *x = &ctxs[idx];
	struct report rep = { 0 };
	bool have = read(x->status_r, &rep, sizeof(rep)) == (ssize_t)sizeof(rep) &&
		    rep.magic == REPORT_MAGIC;
	int wstatus = have && rep.have_status ? rep.wstatus : SIGKILL; /* killed: no report */
	/* Killed for a closed pipe, after it had ended by itself: it died. */
	uint32_t why = x->dying && !(x->dying == SBX_CONTEXT_CLOSED && have && rep.have_status)
			       ? x->dying
			       : SBX_CONTEXT_DIED;
	struct call *c = x->call >= 0 ? &calls[x->call] : NULL;
	char detail[CTX_DETAIL_MAX];

	if (x->state == CTX_STARTING) {
		drop_output(x, &x->err_r, true);
		start_failure(x, &rep, have, detail, sizeof(detail));
		close_pipes(x);
		if (c && c->op == CTX_CREATE) {
			/* Never ready: the context was never made. */
			reply(c->conn,
			      x->dying				 ? ETIMEDOUT
			      : have && rep.step == SBX_STEP_CWD ? ENOTDIR
								 : ENOEXEC,
			      detail, NULL);
			free_call(c);
			fail_waiting(idx, ENOENT, NULL);
			free_ctx(x);
			return;
		}
		/* Started again for a cell, and failed: its waiting cells hear why;
		 * the context stays, stopped, for a later try or a delete. */
		x->state = CTX_STOPPED;
		x->call = -1;
		x->dying = 0;
		x->spawns = 0; /* they heard why: the next cell tries afresh */
		fail_waiting(idx, ENOEXEC, detail);
		return;
	}
	close_pipes(x);
	if (x->state == CTX_BUSY && c && !cell_over(c)) {
		/* The cell's worker is told, and so the next cell need not be. */
		note(c, why == SBX_CONTEXT_TIMED_OUT ? SBX_CELL_KILLED : SBX_CELL_DIED, wstatus);
		free_call(c);
		x->restarted = SBX_CONTEXT_UP;
	} else {
		/* Between cells, or just after one whose worker is done with it
		 * (unread yet): the next cell hears it. */
		if (c)
			free_call(c);
		x->restarted = why;
		x->wstatus = wstatus;
	}
	x->call = -1;
	x->dying = 0;
	x->state = CTX_STOPPED;
	dispatch(idx);
}

/* x's driver said it is ready. */
static void
ready(int idx)
{
	struct ctx *x = &ctxs[idx];

	if (x->dying)
		return; /* too late (its start timed out): ended() tells its creator */
	if (x->call >= 0) {
		/* Its creator. */
		reply(calls[x->call].conn, 0, NULL, NULL);
		free_call(&calls[x->call]);
		x->call = -1;
	}
	x->state = CTX_IDLE;
	x->last_used_ns = now_ns();
	dispatch(idx);
	if (x->state == CTX_IDLE && !x->dying)
		x->spawns = 0; /* ready, and no cell waited for it: no crash loop */
}

/* The request line that came with call line_call, while ctx_accept() runs. */
static int line_call = -1;
static const char *line;
static size_t line_len;

/* Hands x's pipes to call ci for a cell. */
static void
start_cell(int idx, int ci)
{
	struct ctx *x = &ctxs[idx];
	struct call *c = &calls[ci];
	struct ctx_reply r = { .magic = CTX_MAGIC,
			       .restarted = x->restarted,
			       .wstatus = x->wstatus,
			       .idle_s = x->idle_s };
	int fds[4] = { x->out_r, x->err_r, x->ev_r, x->req_w };

	if (drain(x)) {
		/* The driver closed its ends: on its way out (its report says
		 * how), or a cell closed them.  The cell waits for a new one. */
		kill_driver(x, SBX_CONTEXT_CLOSED);
		return;
	}
	if (ci == line_call && line_len) {
		/* The driver is waiting for it: it starts now, while the answer
		 * goes to the worker, which writes what did not fit. */
		ssize_t w = write(x->req_w, line, line_len);

		r.written = w > 0 ? (uint32_t)w : 0;
	}
	if (sbx_send_fds(c->conn, &r, sizeof(r), fds, 4) < 0) {
		/* A request written without its worker: the driver runs it and
		 * its output is drained, as a cell whose worker hung up. */
		free_call(c);
		if (r.written) {
			x->state = CTX_DRAINING;
			x->head_len = 0;
			x->deadline = now_ns() + GRACE_NS;
			if (x->init > 0 && !x->reaped)
				kill(x->init, SIGINT);
		} else {
			dispatch(idx); /* the next in line */
		}
		return;
	}
	x->spawns = 0;
	x->restarted = SBX_CONTEXT_UP;
	x->state = CTX_BUSY;
	x->call = ci;
	x->interrupted = false;
	x->deadline = c->timeout_ms ? now_ns() + (uint64_t)c->timeout_ms * 1000000ull : 0;
	x->executions++;
	x->last_used_ms = wall_ms();
	c->active = true;
}

/* The context is free, or stopped: its oldest waiting cell goes ahead. */
static void
dispatch(int idx)
{
	struct ctx *x = &ctxs[idx];
	int next = -1;

	if ((x->state != CTX_IDLE && x->state != CTX_STOPPED) || x->dying)
		return; /* busy, or killed: ended() dispatches */
	for (int i = 0; i < CALLS_MAX; i++) {
		struct call *c = &calls[i];

		if (c->conn >= 0 && c->ctx == idx && c->gen == x->gen && !c->active &&
		    (next < 0 || c->seq < calls[next].seq))
			next = i;
	}
	if (next < 0)
		return;
	if (x->state == CTX_STOPPED) {
		char detail[96];

		if (x->spawns >= SPAWNS_MAX) {
			/* Ready, then gone (or deaf) before a cell could start. */
			snprintf(detail, sizeof(detail),
				 "the driver was started %d times and ended each time before "
				 "it could run a cell",
				 SPAWNS_MAX);
			x->spawns = 0;
			fail_waiting(idx, ENOEXEC, detail);
		} else if (spawn(x) < 0) {
			snprintf(detail, sizeof(detail), "could not start the driver: %s",
				 strerror(errno));
			fail_waiting(idx, ENOEXEC, detail);
		} else {
			x->spawns++;
		}
		return; /* the cell waits for "ready" */
	}
	start_cell(idx, next);
}

static void
delete_ctx(int idx)
{
	struct ctx *x = &ctxs[idx];

	if (x->call >= 0) {
		struct call *c = &calls[x->call];

		if (c->op == CTX_EXEC)
			note(c, SBX_CELL_DELETED, 0);
		else
			reply(c->conn, ENOENT, "the context was deleted while it started", NULL);
		free_call(c);
		x->call = -1;
	}
	/* Not ENOENT, on which a worker would bring it back from its definition. */
	fail_waiting(idx, ECANCELED, NULL);
	kill_driver(x, SBX_CONTEXT_DIED);
	free_ctx(x);
}

/* ---- requests ---- */

/* Checks that count strings, all NUL-terminated, fill buf[off..n). */
static bool
strings_ok(const char *buf, size_t off, size_t n, uint32_t count, const char **first)
{
	*first = buf + off;
	for (uint32_t i = 0; i < count; i++) {
		const char *end;

		if (off >= n)
			return false;
		end = memchr(buf + off, '\0', n - off);
		if (!end)
			return false;
		off = (size_t)(end - buf) + 1;
	}
	return off == n;
}

static int
new_call(int conn, uint32_t op, int idx, uint32_t timeout_ms)
{
	for (int i = 0; i < CALLS_MAX; i++)
		if (calls[i].conn < 0) {
			calls[i] = (struct call){ .conn = conn,
						  .ctx = idx,
						  .gen = ctxs[idx].gen,
						  .op = op,
						  .timeout_ms = timeout_ms,
						  .seq = ++call_seq,
						  .pfd = -1 };
			return i;
		}
	return -1;
}

static int
create(int conn, const struct ctx_req *r, const char *buf, size_t n, int src_fd)
{
	const char *strings;
	struct ctx *x = NULL;
	int idx = -1, ci;

	if (r->argc < 1 || r->argc > ARGC_MAX || r->envc > SBX_ARGS_MAX || !r->language[0] ||
	    r->cwd[0] != '/' || !strings_ok(buf, sizeof(*r), n, r->argc + r->envc, &strings) ||
	    strings[0] != '/')
		return EINVAL;
	if (find(r->id) >= 0)
		return EEXIST;
	for (int i = 0; i < SBX_CONTEXTS_MAX && idx < 0; i++)
		if (ctxs[i].state == CTX_FREE)
			idx = i;
	if (idx < 0)
		return EUSERS;
	x = &ctxs[idx];
	ci = new_call(conn, CTX_CREATE, idx, 0);
	if (ci < 0)
		return EAGAIN;
	memcpy(x->id, r->id, sizeof(x->id));
	memcpy(x->language, r->language, sizeof(x->language));
	memcpy(x->cwd, r->cwd, sizeof(x->cwd));
	x->argc = r->argc;
	x->envc = r->envc;
	x->idle_s = r->idle_s;
	x->start_timeout_ms = r->timeout_ms ? r->timeout_ms : 30000;
	memcpy(ctx_strings[idx], strings, n - sizeof(*r));
	x->src_fd = src_fd;
	x->created_ms = x->last_used_ms = wall_ms();
	x->executions = 0;
	x->restarted = SBX_CONTEXT_UP;
	x->state = CTX_STOPPED; /* taken */
	if (spawn(x) < 0) {
		int e = errno;

		x->src_fd = -1; /* the caller closes it */
		calls[ci].conn = -1;
		free_call(&calls[ci]);
		free_ctx(x);
		return e;
	}
	x->call = ci;
	calls[ci].active = true;
	return 0;
}

static void
list(int conn)
{
	static struct {
		struct ctx_reply r;
		struct sbx_context_info info[SBX_CONTEXTS_MAX];
	} out;
	size_t len = sizeof(out.r);

	memset(&out, 0, sizeof(out));
	out.r.magic = CTX_MAGIC;
	for (int i = 0; i < SBX_CONTEXTS_MAX; i++) {
		const struct ctx *x = &ctxs[i];
		struct sbx_context_info *in = &out.info[out.r.count];

		if (x->state == CTX_FREE)
			continue;
		memcpy(in->id, x->id, sizeof(in->id));
		memcpy(in->language, x->language, sizeof(in->language));
		memcpy(in->cwd, x->cwd, sizeof(in->cwd));
		in->state = x->state == CTX_STARTING  ? SBX_CONTEXT_STARTING
			    : x->state == CTX_IDLE    ? SBX_CONTEXT_IDLE
			    : x->state == CTX_STOPPED ? SBX_CONTEXT_STOPPED
						      : SBX_CONTEXT_BUSY;
		in->executions = x->executions;
		in->created_ms = x->created_ms;
		in->last_used_ms = x->last_used_ms;
		out.r.count++;
	}
	len += out.r.count * sizeof(out.info[0]);
	(void)!send(conn, &out, len, MSG_NOSIGNAL);
}

void
ctx_accept(int conn)
{
	static char buf[sizeof(struct ctx_req) + SBX_STRINGS_MAX];
	struct ctx_req r;
	unsigned nfds = 0;
	int fds[2] = { -1, -1 }, err = 0, idx, ci;
	ssize_t n;

	init_tables();
	n = sbx_recv_fds(conn, buf, sizeof(buf), fds, 2, &nfds);
	if (n < (ssize_t)sizeof(r)) {
		err = EBADMSG;
		goto answer;
	}
	memcpy(&r, buf, sizeof(r));
	r.id[sizeof(r.id) - 1] = '\0';
	r.language[sizeof(r.language) - 1] = '\0';
	r.cwd[sizeof(r.cwd) - 1] = '\0';
	if (r.magic != CTX_MAGIC || (r.op != CTX_LIST && !valid_id(r.id)) ||
	    nfds != (r.op == CTX_CREATE ? 1u : 0u) ||
	    (r.op != CTX_CREATE && r.op != CTX_EXEC && n != sizeof(r))) {
		err = EBADMSG;
		goto answer;
	}
	switch (r.op) {
	case CTX_CREATE:
		err = create(conn, &r, buf, (size_t)n, fds[0]);
		if (!err)
			return; /* answered when ready */
		break;
	case CTX_EXEC:
		idx = find(r.id);
		if (idx < 0) {
			err = ENOENT;
			break;
		}
		ci = new_call(conn, CTX_EXEC, idx, r.timeout_ms);
		if (ci < 0) {
			err = EAGAIN;
			break;
		}
		/* The request line, for start_cell() if the cell starts now. */
		line_call = ci;
		line = buf + sizeof(r);
		line_len = (size_t)n - sizeof(r);
		dispatch(idx);
		line_call = -1;
		return;
	case CTX_DELETE:
		idx = find(r.id);
		if (idx < 0) {
			err = ENOENT;
			break;
		}
		delete_ctx(idx);
		break;
	case CTX_LIST:
		list(conn);
		close(conn);
		return;
	default: err = EBADMSG;
	}
answer:
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	reply(conn, err, NULL, NULL);
	close(conn);
}

/* ---- the event loop's part ---- */

static void cell_conn(int idx);

/* Acts on x's deadline, if it has passed. */
static void
deadline(int idx, uint64_t now)
{
	struct ctx *x = &ctxs[idx];

	switch (x->state) {
	case CTX_STARTING:
		if (now >= x->deadline)
			kill_driver(x, SBX_CONTEXT_TIMED_OUT);
		break;
	case CTX_BUSY:
		if (!x->deadline || now < x->deadline)
			break;
		/* Its worker may be done, and its word not read yet. */
		cell_conn(idx);
		if (x->state != CTX_BUSY || !x->deadline || now < x->deadline)
			break;
		if (!x->interrupted) {
			/* The driver's init passes it on to the driver. */
			if (x->init > 0 && !x->reaped)
				kill(x->init, SIGINT);
			note(&calls[x->call], SBX_CELL_INTERRUPTED, 0);
			x->interrupted = true;
			x->deadline = now + GRACE_NS;
		} else {
			kill_driver(x, SBX_CONTEXT_TIMED_OUT);
			x->deadline = 0;
		}
		break;
	case CTX_DRAINING:
		if (x->deadline && now >= x->deadline) {
			kill_driver(x, SBX_CONTEXT_TIMED_OUT);
			x->deadline = 0;
		}
		break;
	case CTX_IDLE:
		if (x->idle_s && now >= x->last_used_ns + (uint64_t)x->idle_s * 1000000000ull)
			kill_driver(x, SBX_CONTEXT_REAPED);
		break;
	default: break;
	}
}

static uint64_t
next_deadline(const struct ctx *x)
{
	if (x->dying)
		return UINT64_MAX; /* killed: its end comes on status_r */
	switch (x->state) {
	case CTX_STARTING: return x->deadline;
	case CTX_BUSY:
	case CTX_DRAINING: return x->deadline ? x->deadline : UINT64_MAX;
	case CTX_IDLE:
		return x->idle_s ? x->last_used_ns + (uint64_t)x->idle_s * 1000000000ull
				 : UINT64_MAX;
	default: return UINT64_MAX;
	}
}

int
ctx_fill(struct pollfd *pfd, uint64_t now, uint64_t *next)
{
	int n = 0;

	if (!inited)
		return 0; /* no context yet: nothing of ours is touched */
	for (int i = 0; i < SBX_CONTEXTS_MAX; i++) {
		struct ctx *x = &ctxs[i];
		bool pipes;
		uint64_t d;

		x->pfd = -1;
		if (x->state == CTX_FREE || x->state == CTX_STOPPED)
			continue;
		if (!x->dying)
			deadline(i, now);
		d = next_deadline(x);
		if (d < *next)
			*next = d;
		/* Between cells, and while a hung-up cell ends, we read the pipes;
		 * during a cell its worker does. */
		pipes = x->state != CTX_BUSY;
		x->pfd = n;
		pfd[n++] = (struct pollfd){ x->status_r, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ pipes ? x->out_r : -1, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ pipes ? x->err_r : -1, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ pipes ? x->ev_r : -1, POLLIN, 0 };
		pfd[n++] = (struct pollfd){
			x->state == CTX_BUSY && x->call >= 0 ? calls[x->call].conn : -1, POLLIN, 0
		};
	}
	for (int i = 0; i < CALLS_MAX; i++) {
		struct call *c = &calls[i];

		c->pfd = -1;
		if (c->conn < 0 || c->active)
			continue;
		/* A waiting call: only its hang-up matters. */
		c->pfd = n;
		pfd[n++] = (struct pollfd){ c->conn, 0, 0 };
	}
	return n;
}

/* The worker of x's cell spoke or hung up. */
static void
cell_conn(int idx)
{
	struct ctx *x = &ctxs[idx];
	struct call *c = &calls[x->call];
	char b = 0;
	ssize_t r = recv(c->conn, &b, 1, MSG_DONTWAIT);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	free_call(c);
	x->call = -1;
	x->last_used_ns = now_ns();
	x->last_used_ms = wall_ms();
	if (r == 1 && b == CTX_DONE) {
		x->state = CTX_IDLE;
		dispatch(idx);
		return;
	}
	/* Gone in the middle of the cell (its client went away): interrupt it,
	 * and read on until its "end", or kill it after the grace. */
	if (!x->interrupted && x->init > 0 && !x->reaped)
		kill(x->init, SIGINT);
	x->state = CTX_DRAINING;
	x->head_len = 0;
	x->deadline = now_ns() + GRACE_NS;
}

void
ctx_handle(const struct pollfd *pfd, int n, uint64_t now)
{
	(void)now;
	if (!inited)
		return;
	for (int i = 0; i < SBX_CONTEXTS_MAX; i++) {
		struct ctx *x = &ctxs[i];
		const struct pollfd *p;

		if (x->pfd < 0 || x->pfd + 5 > n)
			continue;
		p = pfd + x->pfd;
		if (p[0].revents) {
			ended(i);
			continue;
		}
		switch (x->state) {
		case CTX_STARTING:
			if (p[1].revents)
				drop_output(x, &x->out_r, false);
			if (p[2].revents)
				drop_output(x, &x->err_r, true);
			if (p[3].revents && (scan_events(x) & SEEN_READY))
				ready(i);
			break;
		case CTX_IDLE:
			/* A pipe at its end: the driver is on its way out (and its
			 * report comes), or a cell closed it (the next cell kills). */
			if (p[1].revents || p[2].revents || p[3].revents)
				drain(x);
			break;
		case CTX_DRAINING:
			if (p[1].revents)
				drop_output(x, &x->out_r, false);
			if (p[2].revents)
				drop_output(x, &x->err_r, false);
			if (p[3].revents && (scan_events(x) & SEEN_END)) {
				x->state = CTX_IDLE;
				dispatch(i);
			}
			break;
		case CTX_BUSY:
			if (p[4].revents)
				cell_conn(i);
			break;
		default: break;
		}
	}
	for (int i = 0; i < CALLS_MAX; i++) {
		struct call *c = &calls[i];

		if (c->pfd >= 0 && c->pfd < n && c->conn >= 0 && !c->active &&
		    (pfd[c->pfd].revents & (POLLHUP | POLLERR)))
			free_call(c); /* it gave up waiting */
	}
}

void
ctx_reaped(pid_t pid)
{
	if (!inited)
		return;
	for (int i = 0; i < SBX_CONTEXTS_MAX; i++)
		if (ctxs[i].state != CTX_FREE && ctxs[i].init == pid)
			ctxs[i].reaped = true;
}
