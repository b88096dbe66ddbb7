/*
 * master.c: the master's event loop.  One thread, one epoll set: a signalfd
 * (SIGCHLD, SIGTERM, SIGINT, SIGHUP) and one SOCK_SEQPACKET socket per worker.
 * Sandboxes are the master's children, never a worker's, so a worker that
 * dies takes no sandbox with it; a worker that dies is replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lang.h"
#include "log.h"
#include "master-private.h"
#include "master.h"
#include "sandbox.h"
#include "wire.h"
#include "worker.h"

#define EV_SIGNAL (~0ull)
#define SHUTDOWN_GRACE_NS (5ull * 1000000000ull)

static const char *const run_env[] = {
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"HOME=/workspace",
	"USER=user",
	"LOGNAME=user",
	"HOSTNAME=sandbox",
	"LANG=C.UTF-8",
	"TERM=dumb",
	"TMPDIR=/tmp",
	"PYTHONDONTWRITEBYTECODE=1",
	"MPLBACKEND=Agg",
	NULL,
};

/* Whether the slot's proc names a live child of ours (PARKED and FREE slots
 * keep a stale one). */
static bool
run_has_process(const struct run *run)
{
	return run->state == RUN_WARM || run->state == RUN_ACTIVE || run->state == RUN_AGENT ||
	       run->state == RUN_WIPE || run->state == RUN_SPARE;
}

uint64_t
master_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
open_listener(const struct conf *conf, gid_t group)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(conf->socket) >= sizeof(sa.sun_path)) {
		log_error("socket path too long: %s", conf->socket);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, conf->socket, strlen(conf->socket) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (unlink(conf->socket) < 0 && errno != ENOENT)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	/* Only root and nginx's group may speak FastCGI to us: the params (REMOTE_ADDR)
	 * decide who needs an API key, so no one else may forge them. */
	if (chown(conf->socket, 0, group) < 0 || chmod(conf->socket, 0660) < 0)
		goto fail;
	if (listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:
	log_error("listen on %s: %s", conf->socket, strerror(errno));
	close(fd);
	return -errno;
}

static void
reply(struct master *m, int wi, uint32_t seq, struct wire_run_done *done)
{
	struct worker *w = &m->workers[wi];
	int r;

	done->seq = seq;
	if (w->sock < 0)
		return;
	r = wire_send(w->sock, done, sizeof(*done), NULL, 0);
	if (r < 0)
		log_warn("worker %d: reply lost: %s", (int)w->pid, strerror(-r));
}

/* Refuses a request; a run the worker may have in flight is not touched. */
static void
reply_error(struct master *m, int wi, uint32_t seq, int status)
{
	struct wire_run_done d = { .hdr = { WIRE_VERSION, WIRE_RUN_DONE, sizeof(d) },
				   .status = status };

	reply(m, wi, seq, &d);
}

/* The lowest free slot: low slots stay warm (their cgroups exist already), and
 * a one-shot sandbox leaves nothing behind that its uids could reach. */
int
master_alloc_slot(struct master *m)
{
	for (uint32_t s = 0; s < m->conf->uid_slots; s++)
		if (m->runs[s].state == RUN_FREE)
			return (int)s;
	return -ENOSPC;
}

/* Builds a sandbox in a free slot; it sets itself up while we go on. */
static int
spawn_sandbox(struct master *m, enum run_state state)
{
	const struct conf *c = m->conf;
	struct sbx_spec spec = { .hostname = "sandbox", .listen_fd = -1 };
	struct sbx_err err = { 0 };
	int slot = master_alloc_slot(m), r;

	if (slot < 0)
		return slot; /* -ENOSPC: every uid slot is in use: capacity, not failure */
	spec.slot = (uint32_t)slot;
	spec.limits = (struct sbx_limits){
		.memory_bytes = c->memory_mb << 20,
		.pids = c->pids,
		.cpu_millis = c->cpu_millis,
		.tmp_bytes = c->tmp_mb << 20,
		.workspace_bytes = c->workspace_mb << 20,
	};
	r = sbx_spawn(m->host, &spec, &m->runs[slot].proc, &err);
	if (r < 0) {
		log_error("sandbox spawn failed at %s: %s", sbx_step_name(err.step), strerror(-r));
		return r;
	}
	m->runs[slot].state = state;
	m->runs[slot].worker = -1;
	m->runs[slot].timed_out = false;
	m->runs[slot].stopped = false;
	if (state == RUN_WARM)
		m->warm++;
	return slot;
}

/* Tops the warm pool up, unless a recent failure asks for a pause. */
static void
refill_pool(struct master *m)
{
	if (m->stopping || master_now_ns() < m->pool_retry_ns)
		return;
	while (m->warm < m->conf->warm_pool)
		if (spawn_sandbox(m, RUN_WARM) < 0) {
			m->pool_retry_ns = master_now_ns() + 1000000000ull;
			return;
		}
	if (m->table && persist_refill(m) < 0)
		m->pool_retry_ns = master_now_ns() + 1000000000ull;
}

/* A warm sandbox if there is one, else a new one.  Returns the slot. */
static int
take_sandbox(struct master *m)
{
	for (uint32_t s = 0; s < m->conf->uid_slots && m->warm; s++)
		if (m->runs[s].state == RUN_WARM) {
			m->runs[s].state = RUN_ACTIVE;
			m->warm--;
			return (int)s;
		}
	return spawn_sandbox(m, RUN_ACTIVE);
}

/* The code memfd must be sealed against change: what the worker validated is
 * what the sandbox reads. */
static bool
sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	int need = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;

	return seals >= 0 && (seals & need) == need;
}

static bool
fd_is(int fd, mode_t type, off_t max_size)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != type)
		return false;
	return max_size < 0 || st.st_size <= max_size;
}

/* A worker asks for a run.  Every field and fd is checked: the worker is not root. */
static void
handle_run(struct master *m, int wi, const struct wire_run *req, const int *fds, unsigned nfds)
{
	const struct conf *c = m->conf;
	const struct lang_info *li;
	struct sbx_prog prog = { 0 };
	const char *argv[3];
	struct run *run;
	int slot, r;

	if (m->stopping) {
		reply_error(m, wi, req->seq, -ESHUTDOWN);
		return;
	}
	if (m->workers[wi].run >= 0) {
		/* It gave up on its last run (the master looked wedged) and asks again. */
		reply_error(m, wi, req->seq, -EBUSY);
		return;
	}
	if (nfds != 3 || req->language >= LANG__MAX || !lang_available(req->language) ||
	    req->timeout_ms == 0 || req->timeout_ms > c->exec_timeout_max_ms ||
	    !fd_is(fds[0], S_IFREG, (off_t)c->max_body_bytes) || !fd_is(fds[1], S_IFIFO, -1) ||
	    !fd_is(fds[2], S_IFIFO, -1) || !sealed(fds[0])) {
		log_warn("worker %d: malformed run request refused", (int)m->workers[wi].pid);
		reply_error(m, wi, req->seq, -EINVAL);
		return;
	}
	li = lang_get(req->language);
	argv[0] = li->interpreter;
	argv[1] = li->code_path;
	argv[2] = NULL;
	prog.argv = argv;
	prog.envp = run_env;
	prog.code_fd = fds[0];
	prog.code_path = li->code_path;
	prog.stdin_fd = -1;
	prog.stdout_fd = fds[1];
	prog.stderr_fd = fds[2];

	/* A warm sandbox that died meanwhile refuses the program (EPIPE): try the
	 * next one, then a fresh one. */
	for (int attempt = 0;; attempt++) {
		slot = take_sandbox(m);
		if (slot < 0) {
			reply_error(m, wi, req->seq, slot == -ENOSPC ? -EAGAIN : -EIO);
			return;
		}
		run = &m->runs[slot];
		r = sbx_exec(m->host, &run->proc, &prog);
		if (r == 0)
			break;
		sbx_kill(m->host, &run->proc);
		if (attempt == 2) {
			log_error("sandbox did not take its program: %s", strerror(-r));
			reply_error(m, wi, req->seq, -EIO);
			return;
		}
	}
	run->worker = wi;
	run->seq = req->seq;
	run->deadline_ns = master_now_ns() + (uint64_t)req->timeout_ms * 1000000ull;
	m->workers[wi].run = slot;
	refill_pool(m);
}

static void
worker_readable(struct master *m, int wi)
{
	struct worker *w = &m->workers[wi];
	union {
		struct wire_run run;
		struct wire_sbx sbx;
		struct wire_run_cancel cancel;
		char raw[256];
	} msg;
	int fds[WIRE_MAX_FDS];
	unsigned nfds = 0;
	ssize_t n;

	n = wire_recv(w->sock, &msg, sizeof(msg), fds, &nfds);
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n <= 0) {
		/* The worker is gone or going; SIGCHLD does the rest. */
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, w->sock, NULL);
		close(w->sock);
		w->sock = -1;
	} else if (wire_check(&msg, n, WIRE_RUN, sizeof(msg.run)) == 0) {
		handle_run(m, wi, &msg.run, fds, nfds);
	} else if (wire_check(&msg, n, WIRE_SBX, sizeof(msg.sbx)) == 0 && nfds == 0) {
		persist_request(m, wi, &msg.sbx);
	} else if (wire_check(&msg, n, WIRE_RUN_CANCEL, sizeof(msg.cancel)) == 0 && nfds == 0) {
		/* Only the worker's own run in flight, and only the one it names. */
		int slot = w->run;

		if (slot >= 0 && m->runs[slot].state == RUN_ACTIVE &&
		    m->runs[slot].seq == msg.cancel.seq)
			sbx_kill(m->host, &m->runs[slot].proc);
	} else {
		log_warn("worker %d: malformed message refused", (int)w->pid);
		/* Echo its seq if it got that far, so that the worker stops waiting. */
		reply_error(m, wi,
			    n >= (ssize_t)(offsetof(struct wire_run, seq) + sizeof(uint32_t))
				    ? msg.run.seq
				    : 0,
			    -EBADMSG);
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

static int
spawn_worker(struct master *m, int wi)
{
	struct worker *w = &m->workers[wi];
	struct epoll_event ev = { .events = EPOLLIN };
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (pid == 0) {
		sigset_t none;

		/* worker_main() closes every other fd of ours it inherited. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		_exit(worker_main(m->conf, m->table, m->listen_fd, sv[1], m->wuid, m->wgid));
	}
	close(sv[1]);
	/* The master never waits on a worker: a worker that does not read its
	 * answers loses them (logged), it does not stop the master, which may
	 * hold the table's lock. */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	w->pid = pid;
	w->sock = sv[0];
	w->run = -1;
	ev.data.u64 = (uint64_t)wi;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, w->sock, &ev) < 0)
		return -errno;
	return 0;
}

static void
respawn_workers(struct master *m)
{
	for (uint32_t i = 0; i < m->conf->workers; i++) {
		int r;

		if (m->workers[i].pid == 0 && (r = spawn_worker(m, (int)i)) < 0)
			log_error("could not start worker: %s", strerror(-r));
	}
	m->respawn_at_ns = 0;
}

static void
worker_died(struct master *m, int wi, int status)
{
	struct worker *w = &m->workers[wi];
	uint64_t now = master_now_ns();

	if (!m->stopping)
		log_warn("worker %d %s %d; replacing it", (int)w->pid,
			 WIFSIGNALED(status) ? "killed by signal" : "exited with",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	if (w->run >= 0) {
		/* No one waits for that result any more. */
		m->runs[w->run].worker = -1;
		sbx_kill(m->host, &m->runs[w->run].proc);
	}
	if (w->sock >= 0) {
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, w->sock, NULL);
		close(w->sock);
	}
	*w = (struct worker){ .pid = 0, .sock = -1, .run = -1 };
	if (m->stopping)
		return;
	/* Restart at once, unless workers die in a burst (a bad config or a crash
	 * on every request): then once a second. */
	if (now - m->crash_window_ns > 1000000000ull) {
		m->crash_window_ns = now;
		m->crash_burst = 0;
	}
	m->crash_burst++;
	m->respawn_at_ns = m->crash_burst > 2 * m->conf->workers ? now + 1000000000ull : now;
}

static void
run_done(struct master *m, int slot, int status)
{
	struct run *run = &m->runs[slot];
	struct sbx_result res;
	struct wire_run_done d = { .hdr = { WIRE_VERSION, WIRE_RUN_DONE, sizeof(d) } };

	sbx_reap(m->host, &run->proc, status, &res);
	if (res.setup.step != SBX_STEP_NONE) {
		log_error("sandbox setup failed at %s: %s", sbx_step_name(res.setup.step),
			  strerror(res.setup.err));
		/* Whatever broke will break the next one too: do not spin. */
		m->pool_retry_ns = master_now_ns() + 1000000000ull;
	}
	if (run->state == RUN_AGENT || run->state == RUN_WIPE || run->state == RUN_SPARE) {
		persist_reaped(m, slot, &res);
		return;
	}
	if (run->state == RUN_WARM) {
		if (!m->stopping && res.setup.step == SBX_STEP_NONE)
			log_warn("a warm sandbox (slot %d) exited before use", slot);
		m->warm--;
		run->state = RUN_FREE;
		refill_pool(m);
		return;
	}
	d.setup_step = (int32_t)res.setup.step;
	d.setup_err = res.setup.err;
	d.status = res.setup.step != SBX_STEP_NONE ? -EIO : 0;
	d.exit_code = res.exit_code;
	d.signal = res.signal;
	d.timed_out = run->timed_out;
	d.oom_killed = res.oom_killed;
	d.stopped = run->stopped;
	d.wall_us = res.wall_us;
	if (run->worker >= 0) {
		if (m->workers[run->worker].run == slot)
			m->workers[run->worker].run = -1;
		reply(m, run->worker, run->seq, &d);
	}
	run->state = RUN_FREE;
	refill_pool(m);
}

static void
reap_children(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
		bool found = false;

		for (uint32_t s = 0; s < m->conf->uid_slots && !found; s++)
			if (m->runs[s].state == RUN_DISK && m->runs[s].disk_pid == pid) {
				persist_disk_done(m, (int)s, status);
				found = true;
			}
		for (uint32_t i = 0; i < m->conf->workers && !found; i++)
			if (m->workers[i].pid == pid) {
				worker_died(m, (int)i, status);
				found = true;
			}
		for (uint32_t s = 0; s < m->conf->uid_slots && !found; s++)
			if (run_has_process(&m->runs[s]) && m->runs[s].proc.pid == pid) {
				run_done(m, (int)s, status);
				found = true;
			}
	}
}

static void
begin_stop(struct master *m)
{
	if (m->stopping)
		return;
	log_info("stopping");
	m->stopping = true;
	m->stop_deadline_ns = master_now_ns() + SHUTDOWN_GRACE_NS;
	for (uint32_t i = 0; i < m->conf->workers; i++)
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, SIGTERM);
	for (uint32_t s = 0; s < m->conf->uid_slots; s++)
		if (run_has_process(&m->runs[s])) {
			m->runs[s].stopped = true;
			sbx_kill(m->host, &m->runs[s].proc);
		}
	/* A disk being made is let finish (a few milliseconds) and dropped. */
}

static void
handle_signals(struct master *m)
{
	struct signalfd_siginfo si;

	while (read(m->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD: break; /* reaped below, all at once */
		case SIGTERM:
		case SIGINT: begin_stop(m); break;
		case SIGHUP:
			log_info(
				"SIGHUP: configuration reload is not supported yet; restart instead");
			break;
		}
	}
	reap_children(m);
}

/* Kills the sandboxes past their deadline; returns the ms until the next deadline. */
static int
check_deadlines(struct master *m)
{
	uint64_t now = master_now_ns(), next = UINT64_MAX;

	for (uint32_t s = 0; s < m->conf->uid_slots; s++) {
		struct run *run = &m->runs[s];

		if ((run->state != RUN_ACTIVE && run->state != RUN_WIPE) || run->proc.killed)
			continue;
		if (run->deadline_ns <= now) {
			run->timed_out = true;
			sbx_kill(m->host, &run->proc);
		} else if (run->deadline_ns < next) {
			next = run->deadline_ns;
		}
	}
	{
		uint64_t idle = persist_tick(m, now);

		if (idle < next)
			next = idle;
	}
	if ((m->warm < m->conf->warm_pool || m->spares < m->conf->warm_sandboxes) && !m->stopping) {
		if (m->pool_retry_ns <= now)
			refill_pool(m);
		else if (m->pool_retry_ns < next)
			next = m->pool_retry_ns;
	}
	if (m->respawn_at_ns) {
		if (m->respawn_at_ns <= now)
			respawn_workers(m);
		else if (m->respawn_at_ns < next)
			next = m->respawn_at_ns;
	}
	if (m->stopping) {
		if (now >= m->stop_deadline_ns) {
			for (uint32_t i = 0; i < m->conf->workers; i++)
				if (m->workers[i].pid > 0)
					kill(m->workers[i].pid, SIGKILL);
		} else if (m->stop_deadline_ns < next) {
			next = m->stop_deadline_ns;
		}
	}
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now) / 1000000ull) + 1;
}

static bool
anything_alive(const struct master *m)
{
	for (uint32_t i = 0; i < m->conf->workers; i++)
		if (m->workers[i].pid > 0)
			return true;
	for (uint32_t s = 0; s < m->conf->uid_slots; s++)
		if (run_has_process(&m->runs[s]) || m->runs[s].state == RUN_DISK)
			return true;
	return false;
}

static int
resolve_user(struct master *m)
{
	const struct conf *c = m->conf;
	struct passwd *pw = getpwnam(c->user);

	if (!pw || pw->pw_uid == 0) {
		log_error("user '%s' %s; create it (useradd --system %s) or set 'user'", c->user,
			  pw ? "is root" : "does not exist", c->user);
		return -EINVAL;
	}
	m->wuid = pw->pw_uid;
	m->wgid = pw->pw_gid;
	return 0;
}

static gid_t
socket_gid(const struct conf *c)
{
	struct group *gr = c->socket_group ? getgrnam(c->socket_group) : NULL;

	if (c->socket_group && !gr)
		log_warn("socket_group '%s' does not exist; the socket stays root's only",
			 c->socket_group);
	return gr ? gr->gr_gid : 0;
}

int
master_run(const struct conf *conf)
{
	struct master m = { .conf = conf, .listen_fd = -1, .epfd = -1, .sigfd = -1 };
	struct sbx_host_config hc = { .agent_path = conf->agent,
				      .state_dir = conf->state_dir,
				      .cgroup_root = conf->cgroup_root,
				      .uid_base = conf->uid_base,
				      .uid_slots = conf->uid_slots };
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_SIGNAL };
	struct sbx_err err = { 0 };
	sigset_t mask;
	int r;

	r = resolve_user(&m);
	if (r < 0)
		return r;
	if (mkdir(conf->state_dir, 0711) < 0 && errno != EEXIST) {
		r = -errno;
		log_error("state_dir %s: %s", conf->state_dir, strerror(errno));
		return r;
	}
	r = sbx_host_new(&hc, &m.host, &err);
	if (r < 0) {
		log_error("sandbox host set-up failed at %s: %s%s", sbx_step_name(err.step),
			  strerror(-r),
			  err.step == SBX_STEP_CGROUP
				  ? " (sandboxd needs the memory, pids and cpu cgroup controllers; "
				    "see docs/ARCHITECTURE.md)"
				  : "");
		return r;
	}
	log_info("cgroup %s, %u workers, warm pool %u, uids %u..%u, state in %s",
		 sbx_host_cgroup_version(m.host), conf->workers, conf->warm_pool, conf->uid_base,
		 conf->uid_base + conf->uid_slots * SBX_UID_SPAN - 1, conf->state_dir);
	if (conf->n_api_keys == 0)
		log_warn("no api_keys configured: serving loopback clients only");

	m.workers = calloc(conf->workers, sizeof(*m.workers));
	m.runs = calloc(conf->uid_slots, sizeof(*m.runs));
	if (!m.workers || !m.runs) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < conf->workers; i++)
		m.workers[i] = (struct worker){ .pid = 0, .sock = -1, .run = -1 };

	r = persist_open(&m);
	if (r < 0)
		goto out;
	m.listen_fd = open_listener(conf, socket_gid(conf));
	if (m.listen_fd < 0) {
		r = m.listen_fd;
		goto out;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	m.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	m.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m.sigfd < 0 || m.epfd < 0 || epoll_ctl(m.epfd, EPOLL_CTL_ADD, m.sigfd, &ev) < 0) {
		r = -errno;
		goto out;
	}
	respawn_workers(&m);
	refill_pool(&m);
	log_info("listening on %s", conf->socket);
	r = 0;

	while (!m.stopping || anything_alive(&m)) {
		struct epoll_event evs[32];
		int timeout = check_deadlines(&m), n;

		n = epoll_wait(m.epfd, evs, 32, timeout);
		if (n < 0 && errno != EINTR) {
			r = -errno;
			log_error("epoll_wait: %s", strerror(errno));
			begin_stop(&m);
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == EV_SIGNAL)
				handle_signals(&m);
			else
				worker_readable(&m, (int)evs[i].data.u64);
		}
	}
out:
	if (m.listen_fd >= 0) {
		close(m.listen_fd);
		unlink(conf->socket);
	}
	if (m.sigfd >= 0)
		close(m.sigfd);
	if (m.epfd >= 0)
		close(m.epfd);
	if (m.table)
		persist_close(&m);
	free(m.workers);
	free(m.runs);
	sbx_host_free(m.host);
	log_info("stopped");
	return r;
}
