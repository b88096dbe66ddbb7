/*
 * sandboxes.c: persistent sandboxes, on the worker's side: the lifecycle
 * routes (PUT, GET, DELETE /v1/sandboxes/{id}, GET /v1/sandboxes) and
 * commands (POST /v1/sandboxes/{id}/api/execute).
 *
 * The master creates, wakes and deletes sandboxes (WIRE_SBX); reading the
 * table needs no master.  A command goes from the worker straight to the
 * sandbox's agent, over the agent's socket, with the pipes of its stdio.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "env.h"
#include "id.h"
#include "log.h"
#include "output.h"
#include "sandbox-exec.h"
#include "sandboxes-private.h"
#include "sandboxes.h"
#include "wire.h"

#define EXEC_CWD_LEN 255 /* bytes of cwd */

static uint32_t master_seq = 0x80000000u; /* apart from run.c's numbers */

int
sandboxes_master_send(struct api_req *req, uint32_t op, uint32_t flags, const char *id,
		      uint32_t sleep_s, bool keep_alive, uint32_t *ret_seq)
{
	struct wire_sbx msg = { .hdr = { WIRE_VERSION, WIRE_SBX, sizeof(msg) },
				.seq = ++master_seq,
				.op = op,
				.flags = flags,
				.sleep_after_s = sleep_s,
				.keep_alive = keep_alive };

	snprintf(msg.id, sizeof(msg.id), "%s", id);
	*ret_seq = msg.seq;
	return wire_send(req->master, &msg, sizeof(msg), NULL, 0);
}

int
sandboxes_master_wait(struct api_req *req, uint32_t seq, struct wire_sbx_reply *ret)
{
	uint64_t give_up = output_now_ms() + MASTER_WAIT_MS;

	for (;;) {
		union {
			struct wire_sbx_reply r;
			char raw[256];
		} in;
		struct pollfd p = { req->master, POLLIN, 0 };
		uint64_t now = output_now_ms();
		int fds[WIRE_MAX_FDS];
		unsigned nfds = 0;
		ssize_t n;

		if (now >= give_up)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(give_up - now)) <= 0)
			continue;
		n = wire_recv(req->master, &in, sizeof(in), fds, &nfds);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		if (n <= 0)
			return -EPIPE;
		/* Late answers to requests given up on are skipped, whatever their type. */
		if (wire_check(&in, n, WIRE_SBX_REPLY, sizeof(in.r)) < 0 || in.r.seq != seq)
			continue;
		*ret = in.r;
		return 0;
	}
}

/* Asks the master for op on id and waits for the answer to this request. */
int
sandboxes_ask_master(struct api_req *req, uint32_t op, uint32_t flags, const char *id,
		     uint32_t sleep_s, bool keep_alive, struct wire_sbx_reply *ret)
{
	uint32_t seq;
	int r = sandboxes_master_send(req, op, flags, id, sleep_s, keep_alive, &seq);

	return r < 0 ? r : sandboxes_master_wait(req, seq, ret);
}

/* Sends the error for a master's answer (or failure to answer) to op. */
int
sandboxes_master_error(struct api_req *req, const char *id, const char *what, int e)
{
	switch (e) {
	case -ENOENT:
		return api_error(req, 404, "SANDBOX_NOT_FOUND", json_pack("{s:s}", "id", id),
				 "no sandbox '%s'", id);
	case -EAGAIN:
		return api_error(req, 503, "CAPACITY_EXCEEDED", NULL,
				 "no room for another sandbox; delete one or retry later");
	case -EBUSY:
		return api_error(req, 503, "CAPACITY_EXCEEDED", json_pack("{s:s}", "id", id),
				 "sandbox '%s' is being deleted; retry shortly", id);
	case -ESHUTDOWN:
		return api_error(req, 503, "SERVICE_UNAVAILABLE", NULL, "sandboxd is stopping");
	}
	log_error("req %s: sandbox %s: %s: %s", req->id, id, what, strerror(-e));
	return api_error(req, 500, "INTERNAL_ERROR", NULL, "the sandbox could not be %s: %s", what,
			 strerror(-e));
}

/* body plus the success and timestamp fields of every answer. */
json_t *
sandboxes_ok(json_t *body)
{
	json_t *ok = api_ok();

	if (body && ok)
		json_object_update(body, ok);
	json_decref(ok);
	return body;
}

static const char *
state_name(uint32_t state)
{
	switch (state) {
	case SBX_SLOT_RUNNING: return "running";
	case SBX_SLOT_SLEEPING: return "sleeping";
	case SBX_SLOT_CREATING: return "creating";
	case SBX_SLOT_DESTROYING: return "destroying";
	}
	return "unknown";
}

static json_t *
sandbox_json(const struct sbx_slot *s)
{
	char created[32], active[32];
	api_iso_time((int64_t)s->created_ms, created);
	api_iso_time((int64_t)s->last_active_ms, active);
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:{s:I, s:f, s:i, s:I}, s:[]}", "id",
			 s->id, "state", state_name(s->state), "createdAt", created, "lastActiveAt",
			 active, "sleepAfter", (int)s->sleep_after_s, "keepAlive",
			 s->keep_alive != 0, "limits", "memoryMB",
			 (json_int_t)(s->limits.memory_bytes >> 20), "cpus",
			 s->limits.cpu_millis / 1000.0, "pids", (int)s->limits.pids, "tmpMB",
			 (json_int_t)(s->limits.tmp_bytes >> 20), "exposedPorts");
}

/* Copies the table entry of id under the lock.  0, or -ENOENT. */
int
sandboxes_entry(struct api_req *req, const char *id, struct sbx_slot *ret)
{
	int idx;

	if (sbx_table_lock(req->table) < 0)
		return -EIO;
	idx = sbx_table_find(req->table, id, strlen(id));
	if (idx >= 0)
		*ret = *sbx_table_slot(req->table, idx);
	sbx_table_unlock(req->table);
	return idx >= 0 ? 0 : -ENOENT;
}

/*
 * Counts a command in (deadline_ms != 0) or out (0).  The idle reaper leaves
 * a sandbox with commands running alone, until the latest of their
 * deadlines: a worker that dies mid-command cannot keep it awake for ever.
 */
void
sandboxes_count(struct api_req *req, const char *id, uint64_t deadline_ms)
{
	int idx;

	if (sbx_table_lock(req->table) < 0)
		return;
	idx = sbx_table_find(req->table, id, strlen(id));
	if (idx >= 0) {
		struct sbx_slot *s = sbx_table_slot(req->table, idx);

		if (deadline_ms) {
			s->active_cmds++;
			if (s->busy_until_ms < deadline_ms)
				s->busy_until_ms = deadline_ms;
		} else if (s->active_cmds > 0) {
			s->active_cmds--;
		}
		s->last_active_ms = api_wall_ms();
	}
	sbx_table_unlock(req->table);
}

/* "10m", "30s", "1h", "90" (seconds) or a number of seconds. */
static int
parse_duration(const json_t *v, uint32_t *ret)
{
	const char *s;
	char *end;
	unsigned long long n;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 1 || json_integer_value(v) > 7 * 86400)
			return -EINVAL;
		*ret = (uint32_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	if (*s < '0' || *s > '9')
		return -EINVAL; /* no sign, no space */
	errno = 0;
	n = strtoull(s, &end, 10);
	/* Bound before scaling, so that no multiplication can wrap. */
	if (errno || n == 0 || n > 7 * 86400 || (*end && end[1]))
		return -EINVAL;
	if (*end == 'm')
		n *= 60;
	else if (*end == 'h')
		n *= 3600;
	else if (*end != 's' && *end != '\0')
		return -EINVAL;
	if (n > 7 * 86400)
		return -EINVAL;
	*ret = (uint32_t)n;
	return 0;
}

static int
put_sandbox(struct api_req *req, const char *id)
{
	struct wire_sbx_reply r;
	struct sbx_slot s;
	uint32_t sleep_s = 600, flags = WIRE_SBX_CREATE;
	bool keep = false;
	json_t *root = NULL, *body, *vars = NULL;
	int e;

	if (req->body_len) {
		const char *key;
		json_t *v;

		root = api_parse_body(req);
		if (!root)
			return 400;
		json_object_foreach(root, key, v)
		{
			if (strcmp(key, "sleepAfter") == 0) {
				if (parse_duration(v, &sleep_s) < 0) {
					json_decref(root);
					return api_error(
						req, 400, "VALIDATION_FAILED", NULL,
						"'sleepAfter' must be seconds or a duration "
						"such as \"30s\", \"10m\", \"1h\" (at most 7 days)");
				}
				flags |= WIRE_SBX_SLEEP;
			} else if (strcmp(key, "keepAlive") == 0) {
				if (!json_is_boolean(v)) {
					json_decref(root);
					return api_error(req, 400, "VALIDATION_FAILED", NULL,
							 "'keepAlive' must be true or false");
				}
				keep = json_is_true(v);
				flags |= WIRE_SBX_KEEP;
			} else if (strcmp(key, "envVars") == 0) {
				const char *why = env_check_object(v);

				if (why) {
					json_decref(root);
					return api_error(req, 400, "VALIDATION_FAILED", NULL,
							 "'envVars' %s", why);
				}
				vars = v;
			} else {
				char k[64];

				snprintf(k, sizeof(k), "%s", key);
				json_decref(root);
				return api_error(req, 400, "VALIDATION_FAILED", NULL,
						 "unknown field '%s'; this route takes sleepAfter, "
						 "keepAlive and envVars",
						 k);
			}
		}
	}
	e = sandboxes_ask_master(req, WIRE_SBX_ENSURE, flags, id, sleep_s, keep, &r);
	if (e == 0)
		e = r.status;
	if (e < 0) {
		json_decref(root);
		return sandboxes_master_error(req, id, "started", e);
	}
	e = vars ? sandboxes_env_apply(req, id, vars) : 0;
	json_decref(root);
	if (e)
		return e;
	if (sandboxes_entry(req, id, &s) < 0)
		return sandboxes_master_error(req, id, "found", -ENOENT);
	body = sandboxes_ok(sandbox_json(&s));
	return api_send_json(req, r.created ? 201 : 200, body);
}

static int
get_sandbox(struct api_req *req, const char *id)
{
	struct sbx_slot s;

	if (sandboxes_entry(req, id, &s) < 0 || s.state == SBX_SLOT_DESTROYING)
		return sandboxes_master_error(req, id, "found", -ENOENT);
	return api_send_json(req, 200, sandboxes_ok(sandbox_json(&s)));
}

static int
delete_sandbox(struct api_req *req, const char *id)
{
	struct wire_sbx_reply r;
	json_t *body;
	int e = sandboxes_ask_master(req, WIRE_SBX_DESTROY, 0, id, 0, false, &r);

	if (e == 0)
		e = r.status;
	if (e < 0)
		return sandboxes_master_error(req, id, "deleted", e);
	body = api_ok();
	if (body)
		json_object_set_new(body, "id", json_string(id));
	return api_send_json(req, 200, body);
}

int
sandboxes_list(struct api_req *req)
{
	json_t *list = json_array(), *body;

	if (!list || sbx_table_lock(req->table) < 0) {
		json_decref(list);
		return api_error(req, 500, "INTERNAL_ERROR", NULL,
				 "the sandbox table is unavailable");
	}
	for (uint32_t i = 0; i < sbx_table_capacity(req->table); i++) {
		const struct sbx_slot *s = sbx_table_slot(req->table, (int)i);

		if (sbx_slot_live(s) && s->state != SBX_SLOT_DESTROYING)
			json_array_append_new(list, sandbox_json(s));
	}
	sbx_table_unlock(req->table);
	body = api_ok();
	if (body) {
		json_object_set_new(body, "count", json_integer((json_int_t)json_array_size(list)));
		json_object_set_new(body, "sandboxes", list);
	} else {
		json_decref(list);
	}
	return api_send_json(req, 200, body);
}

/* ---- commands ------------------------------------------------------------- */

#define FAST_MARGIN_MS 5000		   /* see connect_running() */
#define SESSION_NONE "__DISABLE_SESSION__" /* the SDK's word for "no session" */

struct exec_args {
	const char *command;
	const char *session; /* as the caller named it ("default" when not) */
	bool in_session;     /* false for SESSION_NONE */
	bool detached;	     /* a stream: from the session's state, apart from it */
	bool has_cwd;
	char cwd[EXEC_CWD_LEN + 1];
	const char *stdin_data;
	size_t stdin_len;
	uint32_t timeout_ms;
	struct envlist env;	/* the whole environment, or a new session's */
	struct envlist overlay; /* in a session: this command's own variables */
};

bool
sandboxes_session_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > SBX_SESSION_NAME_MAX || strcmp(s, SESSION_NONE) == 0)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	       len;
}

int
sandboxes_base_env(struct api_req *req, const char *id, struct envlist *e)
{
	static const char *const base[] = { "PATH=/usr/local/bin:/usr/bin:/bin",
					    "HOME=/workspace",
					    "USER=user",
					    "LOGNAME=user",
					    "LANG=C.UTF-8",
					    "TERM=dumb",
					    "TMPDIR=/tmp",
					    "MPLBACKEND=Agg" };
	int r;

	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		char name[16];
		const char *eq = strchr(base[i], '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - base[i]), base[i]);
		if ((r = envlist_set(e, name, eq + 1)) < 0)
			return r;
	}
	if ((r = envlist_set(e, "HOSTNAME", id)) < 0)
		return r;
	/* The sandbox's own variables come last, over the defaults. */
	r = env_sandbox_load(req->conf->state_dir, id, e);
	if (r < 0)
		log_warn("req %s: sandbox %s: its variables: %s", req->id, id, strerror(-r));
	return 0;
}

int
sandboxes_cwd(struct api_req *req, const json_t *v, const char *what, char *buf, size_t size)
{
	const char *c = json_is_string(v) ? json_string_value(v) : NULL;
	int n;

	if (!c || !*c || memchr(c, '\0', json_string_length(v)))
		return api_error(req, 400, "VALIDATION_FAILED", NULL,
				 "'%s' must be a non-empty path", what);
	n = c[0] == '/' ? snprintf(buf, size, "%s", c) : snprintf(buf, size, "/workspace/%s", c);
	if (n < 0 || (size_t)n >= size)
		return api_error(req, 400, "VALIDATION_FAILED", NULL,
				 "'%s' is longer than %zu bytes", what, size - 1);
	return 0;
}

/* Decodes the body of /api/execute (a compatibility route: unknown fields are
 * ignored, as the SDK sends a few).  0, or an HTTP status already sent. */
static int
decode_exec(struct api_req *req, const json_t *root, const char *id, struct exec_args *a)
{
	const json_t *v;
	int status;

	v = json_object_get(root, "command");
	if (!json_is_string(v) || json_string_length(v) == 0)
		return api_error(req, 400, "VALIDATION_FAILED", NULL,
				 "'command' is required: a non-empty string");
	if (memchr(json_string_value(v), '\0', json_string_length(v)))
		return api_error(req, 400, "VALIDATION_FAILED", NULL,
				 "'command' contains a NUL byte");
	a->command = json_string_value(v);

	a->session = "default";
	a->in_session = true;
	v = json_object_get(root, "sessionId");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || (!sandboxes_session_ok(json_string_value(v)) &&
					   strcmp(json_string_value(v), SESSION_NONE) != 0))
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "'sessionId' must be 1 to %d of [A-Za-z0-9._-]",
					 SBX_SESSION_NAME_MAX);
		a->session = json_string_value(v);
		a->in_session = strcmp(a->session, SESSION_NONE) != 0;
	}

	snprintf(a->cwd, sizeof(a->cwd), "/workspace");
	v = json_object_get(root, "cwd");
	if (v && !json_is_null(v)) {
		status = sandboxes_cwd(req, v, "cwd", a->cwd, sizeof(a->cwd));
		if (status)
			return status;
		a->has_cwd = true;
	}

	a->timeout_ms = req->conf->exec_timeout_ms;
	v = json_object_get(root, "timeoutMs");
	if (!v)
		v = json_object_get(root, "timeout");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > (json_int_t)req->conf->exec_timeout_max_ms)
			return api_error(
				req, 400, "VALIDATION_FAILED", NULL,
				"'timeoutMs' must be a whole number of milliseconds from 1 "
				"to %u",
				req->conf->exec_timeout_max_ms);
		a->timeout_ms = (uint32_t)json_integer_value(v);
	}

	v = json_object_get(root, "stdin");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "'stdin' must be a string");
		a->stdin_data = json_string_value(v);
		a->stdin_len = json_string_length(v);
	}

	if (sandboxes_base_env(req, id, &a->env) < 0)
		return api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
	v = json_object_get(root, "env");
	if (v && !json_is_null(v)) {
		const char *key, *why = env_check_object(v);
		json_t *val;

		if (why)
			return api_error(req, 400, "VALIDATION_FAILED", NULL, "'env' %s", why);
		json_object_foreach((json_t *)v, key, val)
		{
			const char *value = json_is_string(val) ? json_string_value(val) : NULL;
			int r;

			/* In a session, this command's own: undone when it ends. */
			if (a->in_session)
				r = value ? envlist_set(&a->overlay, key, value)
					  : envlist_unset_mark(&a->overlay, key);
			else
				r = envlist_set(&a->env, key, value);
			if (r < 0)
				return api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
						 "too many environment variables");
		}
	}
	return 0;
}

static void
free_exec_args(struct exec_args *a)
{
	envlist_free(&a->env);
	envlist_free(&a->overlay);
}

int
sandboxes_memfd(const char *name, const void *data, size_t len)
{
	size_t off = 0;
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), e;

	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);

		if (n <= 0) {
			close(fd);
			return -EIO;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int
sandboxes_only(struct api_req *req, const char *methods)
{
	char allow[48];

	snprintf(allow, sizeof(allow), "Allow: %s\r\n", methods);
	return api_send_raw_error(req, 405, allow, "METHOD_NOT_ALLOWED", NULL,
				  "this route does not accept that method");
}

struct agent_wait {
	int conn;
	struct sbx_exec_result *res;
};

static int
on_agent(void *ctx)
{
	struct agent_wait *w = ctx;
	int r = sbx_exec_recv(w->conn, w->res);

	return r < 0 ? r : 1;
}

int
sandboxes_agent_connect(struct api_req *req, uint32_t slot, uint32_t generation)
{
	char sock[PATH_MAX];

	snprintf(sock, sizeof(sock), "%s/agents/%u-%u.sock", req->conf->state_dir, slot,
		 generation);
	return sbx_exec_connect(sock);
}

/*
 * The fast way to a running agent: straight to the socket the table names,
 * without asking the master, and marked active at once.  Only for a sandbox
 * used in the last moments, which the idle reaper is nowhere near putting to
 * sleep (the master's ENSURE is what keeps the reaper and a wake from
 * crossing).  The connection, or -1 to go the master's way.
 */
static int
connect_running(struct api_req *req, const char *id)
{
	uint64_t now = api_wall_ms();
	uint32_t slot = 0, gen = 0;
	bool found = false;
	int idx, conn;

	/* The names under the lock; the connect, which talks to the sandbox's
	 * agent, outside it. */
	if (sbx_table_lock(req->table) < 0)
		return -1;
	idx = sbx_table_find(req->table, id, strlen(id));
	if (idx >= 0) {
		struct sbx_slot *s = sbx_table_slot(req->table, idx);
		uint64_t idle = now > s->last_active_ms ? now - s->last_active_ms : 0;

		if (s->state == SBX_SLOT_RUNNING && s->agent_pid &&
		    (s->keep_alive || idle + FAST_MARGIN_MS < (uint64_t)s->sleep_after_s * 1000))
			slot = s->uid_slot, gen = s->generation, found = true;
	}
	sbx_table_unlock(req->table);
	if (!found)
		return -1;
	conn = sandboxes_agent_connect(req, slot, gen);
	if (conn < 0)
		return -1;
	/* Active from now: the margin above covers the moment in between. */
	if (sbx_table_lock(req->table) == 0) {
		idx = sbx_table_find(req->table, id, strlen(id));
		if (idx >= 0)
			sbx_table_slot(req->table, idx)->last_active_ms = api_wall_ms();
		sbx_table_unlock(req->table);
	}
	return conn;
}

/* Wakes or creates sandbox id and connects to its agent.  A failure of the
 * master's comes back in *ret_master (the return value is then 0). */
int
sandboxes_connect(struct api_req *req, const char *id, int *ret_conn, int *ret_master)
{
	struct wire_sbx_reply r;
	int e, conn = connect_running(req, id);

	*ret_master = 0;
	if (conn >= 0) {
		*ret_conn = conn;
		return 0;
	}
	/* An agent can end between the master's answer and our connect (it slept
	 * or crashed): then ask again, once. */
	for (int attempt = 0;; attempt++) {
		e = sandboxes_ask_master(req, WIRE_SBX_ENSURE, WIRE_SBX_CREATE, id, 0, false, &r);
		if (e == 0)
			e = r.status;
		if (e < 0) {
			*ret_master = e;
			return 0;
		}
		conn = sandboxes_agent_connect(req, r.uid_slot, r.generation);
		if (conn >= 0 || attempt == 1)
			break;
	}
	if (conn < 0)
		return -EHOSTDOWN; /* the agent is not answering */
	*ret_conn = conn;
	return 0;
}

/* Runs the command on an agent connection (which it closes), its output into o. */
static int
run_on(struct api_req *req, const char *id, struct exec_args *a, struct output *o, int conn,
       struct sbx_exec_result *res)
{
	const char *shell[] = { "/bin/bash", "-c", a->command, NULL };
	const char *cmd[] = { a->command, NULL };
	struct sbx_exec_req er = { .argv = a->in_session ? cmd : shell,
				   .envp = (const char *const *)a->env.v,
				   .overlay =
					   a->in_session ? (const char *const *)a->overlay.v : NULL,
				   .session = a->in_session ? a->session : NULL,
				   .detached = a->detached,
				   .cwd = a->in_session && !a->has_cwd ? NULL : a->cwd,
				   .timeout_ms = a->timeout_ms,
				   .stdin_fd = -1 };
	struct agent_wait w = { conn, res };
	int e;

	if (a->stdin_data) {
		/* stdin as a sealed memfd: any size, no writer to keep alive. */
		er.stdin_fd = sandboxes_memfd("stdin", a->stdin_data, a->stdin_len);
		if (er.stdin_fd < 0) {
			close(conn);
			return er.stdin_fd;
		}
	}
	er.stdout_fd = o->out_w;
	er.stderr_fd = o->err_w;
	sandboxes_count(req, id, api_wall_ms() + a->timeout_ms + MASTER_WAIT_MS);
	e = sbx_exec_send(conn, &er);
	output_handed(o);
	if (er.stdin_fd >= 0)
		close(er.stdin_fd);
	if (e == 0)
		e = output_pump(o, conn, output_now_ms() + a->timeout_ms + MASTER_WAIT_MS, on_agent,
				&w);
	/* Closing the connection early (client gone, a failure here) kills the
	 * command's whole tree: the agent sees the hang-up. */
	close(conn);
	sandboxes_count(req, id, 0);
	return e;
}

int
sandboxes_agent_error(struct api_req *req, const char *id, int from_master, int e)
{
	if (from_master)
		return sandboxes_master_error(req, id, "started", from_master);
	if (e == -EPIPE || e == -ECONNRESET || e == -EHOSTDOWN)
		/* The agent went away before or during the request: the sandbox was
		 * deleted, it slept, or sandboxd is stopping. */
		return api_error(req, 503, "SERVICE_UNAVAILABLE", NULL,
				 "the sandbox ended while it was being asked (deleted, or "
				 "sandboxd stopping); retry");
	log_error("req %s: sandbox %s: the agent: %s", req->id, id, strerror(-e));
	return api_error(req, 500, "INTERNAL_ERROR", NULL, "the request failed inside sandboxd: %s",
			 strerror(-e));
}

/* Why a command never started, in a few words (a stream's error event). */
static const char *
setup_failure(const struct sbx_exec_result *res)
{
	if (res->setup.step == SBX_STEP_CWD)
		return "cannot run in that working directory";
	if (res->setup.step == SBX_STEP_PROGRAM && res->setup.err == EUSERS)
		return "no room for another session in this sandbox; delete one";
	if (res->setup.step == SBX_STEP_PROGRAM && res->setup.err == ESRCH)
		return "the session was deleted while the command waited for it";
	if (res->setup.step == SBX_STEP_PROGRAM && res->setup.err == E2BIG)
		return "the session's environment and the command's pass the limit";
	return sbx_step_name(res->setup.step);
}

/* Sends the error for a failure before any output, as JSON. */
static int
exec_error(struct api_req *req, const char *id, const struct exec_args *a, int from_master, int e,
	   const struct sbx_exec_result *res)
{
	if (e == -E2BIG)
		return api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
				 "the command and its environment pass %d bytes", SBX_STRINGS_MAX);
	if (from_master || e < 0)
		return sandboxes_agent_error(req, id, from_master, e);
	if (res->setup.step == SBX_STEP_CWD)
		/* The one set-up step the caller controls. */
		return api_error(
			req, 400, "VALIDATION_FAILED",
			json_pack("{s:s, s:s}", "cwd", a->cwd, "error", strerror(res->setup.err)),
			"cannot run in '%s': %s", a->cwd, strerror(res->setup.err));
	if (res->setup.step == SBX_STEP_PROGRAM && res->setup.err == EUSERS)
		return api_error(req, 503, "CAPACITY_EXCEEDED",
				 json_pack("{s:s}", "sessionId", a->session),
				 "no room for session '%s': a sandbox has at most %d; delete one",
				 a->session, SBX_SESSIONS_MAX);
	if (res->setup.step == SBX_STEP_PROGRAM && res->setup.err == ESRCH)
		return api_error(
			req, 410, "SESSION_DESTROYED", json_pack("{s:s}", "sessionId", a->session),
			"session '%s' was deleted while the command waited for it", a->session);
	if (res->setup.step == SBX_STEP_PROGRAM && res->setup.err == E2BIG)
		return api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
				 "the session's environment and the command's pass the limit");
	return api_error(req, 500, "INTERNAL_ERROR",
			 json_pack("{s:s, s:s}", "step", sbx_step_name(res->setup.step), "error",
				   strerror(res->setup.err)),
			 "the command could not be started");
}

/* Decodes the body and opens the output pipes.  0, or an HTTP status sent. */
static int
exec_prepare(struct api_req *req, const char *id, json_t **ret_root, struct exec_args *a,
	     struct output *o)
{
	int status;

	*ret_root = api_parse_body(req);
	if (!*ret_root)
		return 400;
	status = decode_exec(req, *ret_root, id, a);
	if (status)
		return status;
	if (output_open(o, req->conf->output_max_bytes) < 0)
		return api_error(req, 500, "INTERNAL_ERROR", NULL, "out of pipes");
	/* A client that goes away takes its command with it. */
	o->watch_fd = req->client_fd;
	return 0;
}

static int
execute(struct api_req *req, const char *id)
{
	struct exec_args a = { 0 };
	struct sbx_exec_result res = { 0 };
	struct output o = { .out_r = -1, .err_r = -1, .out_w = -1, .err_w = -1 };
	json_t *root = NULL, *body;
	char ts[32];
	uint64_t t0 = output_now_ms();
	int status, e, from_master = 0, conn = -1;

	api_timestamp(ts);
	status = exec_prepare(req, id, &root, &a, &o);
	if (status)
		goto out;
	e = sandboxes_connect(req, id, &conn, &from_master);
	if (e == 0 && !from_master)
		e = run_on(req, id, &a, &o, conn, &res);
	if (e == -ECANCELED) {
		status = 499; /* nobody to answer: nginx's "client closed request" */
		goto out;
	}
	if (from_master || e < 0 || res.setup.step != SBX_STEP_NONE) {
		status = exec_error(req, id, &a, from_master, e, &res);
		goto out;
	}
	body = json_pack("{s:b, s:i, s:o, s:o, s:s, s:I, s:s, s:s, s:b, s:b, s:o}", "success",
			 res.exit_code == 0 && !res.timed_out, "exitCode", res.exit_code, "stdout",
			 output_text(&o.out), "stderr", output_text(&o.err), "command", a.command,
			 "duration", (json_int_t)(output_now_ms() - t0), "timestamp", ts,
			 "sessionId", a.session, "timedOut", res.timed_out, "truncated",
			 o.out.truncated || o.err.truncated, "signal",
			 res.signal ? json_integer(res.signal) : json_null());
	status = api_send_json(req, 200, body);
out:
	output_close(&o);
	free_exec_args(&a);
	json_decref(root);
	return status;
}

/* ---- streaming (SSE) ------------------------------------------------------ */

#define PING_MS 15000

static json_t *
event(const char *type)
{
	char ts[32];

	api_timestamp(ts);
	return json_pack("{s:s, s:s}", "type", type, "timestamp", ts);
}

static int
on_chunk(void *ctx, int stream, const char *data, size_t len)
{
	struct api_req *req = ctx;
	json_t *ev = event(stream == 1 ? "stdout" : "stderr");
	size_t clen;
	char *clean = api_utf8_clean(data, len, &clen);

	if (!ev || !clean) {
		json_decref(ev);
		free(clean);
		return -ENOMEM;
	}
	json_object_set_new(ev, "data", json_stringn_nocheck(clean, clen));
	free(clean);
	return api_stream_event(req, ev);
}

static int
on_tick(void *ctx)
{
	return api_stream_comment(ctx, "ping");
}

static int
execute_stream(struct api_req *req, const char *id)
{
	struct exec_args a = { 0 };
	struct sbx_exec_result res = { 0 };
	struct output o = { .out_r = -1, .err_r = -1, .out_w = -1, .err_w = -1 };
	json_t *root = NULL, *ev;
	int status, e, from_master = 0, conn = -1;

	status = exec_prepare(req, id, &root, &a, &o);
	if (status)
		goto out;
	/* Failures before the command starts are plain HTTP errors; after the
	 * headers, every stream ends with a "complete" or an "error" event. */
	e = sandboxes_connect(req, id, &conn, &from_master);
	if (from_master || e < 0) {
		status = exec_error(req, id, &a, from_master, e, &res);
		goto out;
	}
	status = 200;
	ev = event("start");
	if (ev)
		json_object_set_new(ev, "command", json_string(a.command));
	if (api_stream_begin(req) < 0 || api_stream_event(req, ev) < 0) {
		close(conn);
		goto out;
	}
	/* As the SDK's execStream: a stream starts from its session's cwd and
	 * environment, runs beside the session's other calls, and leaves the
	 * session as it was. */
	a.detached = true;
	o.on_chunk = on_chunk;
	o.on_tick = on_tick;
	o.stream_ctx = req;
	o.tick_ms = PING_MS;
	e = run_on(req, id, &a, &o, conn, &res);
	if (e == -ECANCELED)
		goto out; /* the client is gone; the command died with the connection */
	if (e < 0 || res.setup.step != SBX_STEP_NONE) {
		ev = event("error");
		if (ev)
			json_object_set_new(
				ev, "error",
				json_string(e < 0 ? strerror(-e) : setup_failure(&res)));
	} else {
		ev = event("complete");
		if (ev) {
			json_object_set_new(ev, "exitCode", json_integer(res.exit_code));
			json_object_set_new(ev, "timedOut", json_boolean(res.timed_out));
			json_object_set_new(ev, "truncated",
					    json_boolean(o.out.truncated || o.err.truncated));
			json_object_set_new(ev, "signal",
					    res.signal ? json_integer(res.signal) : json_null());
		}
	}
	api_stream_event(req, ev);
out:
	output_close(&o);
	free_exec_args(&a);
	json_decref(root);
	return status;
}

int
sandboxes_route(struct api_req *req)
{
	const char *p = req->path + strlen("/v1/sandboxes/");
	size_t len = strcspn(p, "/");
	const char *rest = p + len, *why;
	char id[64];
	int status;

	if (!id_check(p, len, &why))
		return api_error(req, 400, "INVALID_SANDBOX_ID",
				 json_pack("{s:s%}", "id", p, len > 64 ? (size_t)64 : len),
				 "invalid sandbox ID: %s", why);
	memcpy(id, p, len);
	id[len] = '\0';

	if (*rest == '\0') {
		if (strcmp(req->method, "PUT") == 0)
			return put_sandbox(req, id);
		if (strcmp(req->method, "GET") == 0)
			return get_sandbox(req, id);
		if (strcmp(req->method, "DELETE") == 0)
			return delete_sandbox(req, id);
		return sandboxes_only(req, "GET, PUT, DELETE");
	}
	if (strcmp(rest, "/api/execute/stream") == 0) {
		if (strcmp(req->method, "POST") == 0)
			return execute_stream(req, id);
		return sandboxes_only(req, "POST");
	}
	if (strcmp(rest, "/api/execute") == 0) {
		if (strcmp(req->method, "POST") == 0)
			return execute(req, id);
		return sandboxes_only(req, "POST");
	}
	status = sessions_route(req, id, rest);
	if (!status)
		status = files_route(req, id, rest);
	if (!status)
		status = contexts_route(req, id, rest);
	if (status)
		return status;
	return api_error(req, 404, "NOT_FOUND", json_pack("{s:s}", "path", req->path),
			 "no such sandbox route");
}
