/*
 * contexts.c: the code interpreter: contexts (/api/contexts), cells as a
 * stream (/api/execute/code, the SDK's route) and as one result
 * (/v1/sandboxes/{id}/run-code, ours).
 *
 * A context is a driver process in the sandbox, kept by its agent
 * (sandbox-core/agent/context.c).  For a cell we borrow the driver's pipes
 * from the agent: we write the request, then read the cell's output and the
 * driver's events as they come, and send them on at once (Cloudflare sends
 * a cell's output when it ends).  Everything the driver writes is the
 * sandbox's, so untrusted: lines are bounded, JSON is parsed, and a cell's
 * output, results and error together are capped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "output.h"
#include "sandbox-exec.h"
#include "sandboxes-private.h"

#define START_TIMEOUT_MS 30000
#define PING_MS 15000
#define DRAIN_MS 5000			    /* after the driver died: its pipes' end, at most */
#define GIVE_UP_MS 30000		    /* past a cell's timeout and the agent's grace */
#define CODE_MAX (8 << 20)		    /* bytes of a cell's code */
#define LINE_SLACK 65536		    /* an event line read whatever the cap */
#define EVENT_NODES_MAX 131072		    /* values in an event line we parse (<= ~30 MiB) */
#define CELL_NODES_MAX EVENT_NODES_MAX	    /* of run-code's kept results (one notice) */
#define READS_MAX 16			    /* reads of the events pipe per wake-up */
#define NOTE_STOPPED (SBX_CELL_DELETED + 1) /* ours: the agent went away */

struct language {
	const char *name;
	const char *aliases[3];
	const char *interpreter;
	const char *argv[5]; /* before the driver's source */
	const char *driver;  /* under drivers_dir */
	const char *env[4];  /* the driver's own, over the sandbox's */
};

static const struct language languages[] = {
	{ "python",
	  { "python3", "py", NULL },
	  "/usr/bin/python3",
	  { "/usr/bin/python3", "-u", "-c", NULL },
	  "python/sbx_driver.py",
	  { "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "MPLBACKEND=module://sbx_mpl",
	    NULL } },
	{ "javascript",
	  { "js", "node", NULL },
	  "/usr/bin/node",
	  { "/usr/bin/node", "--experimental-vm-modules", "-e", NULL },
	  "javascript/sbx_driver.js",
	  { NULL } },
	{ "typescript",
	  { "ts", NULL },
	  "/usr/bin/node",
	  { "/usr/bin/node", "--experimental-vm-modules", "-e", NULL },
	  "javascript/sbx_driver.js",
	  { "SBX_DRIVER_LANGUAGE=typescript", NULL } },
};
#define N_LANGUAGES (sizeof(languages) / sizeof(languages[0]))

static const struct language *
find_language(const char *name)
{
	for (size_t i = 0; i < N_LANGUAGES; i++) {
		if (strcmp(name, languages[i].name) == 0)
			return &languages[i];
		for (int a = 0; languages[i].aliases[a]; a++)
			if (strcmp(name, languages[i].aliases[a]) == 0)
				return &languages[i];
	}
	return NULL;
}

/*
 * The driver's source as a sealed memfd ending in a NUL (the agent hands it
 * to the interpreter as one argument), read once per worker.  The fd, or a
 * negative errno.
 */
static int
driver_source(const struct conf *conf, const struct language *l)
{
	static int fds[N_LANGUAGES] = { -1, -1, -1 };
	size_t i = (size_t)(l - languages);
	char path[PATH_MAX], *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd, r;

	if (fds[i] >= 0)
		return fds[i];
	if (snprintf(path, sizeof(path), "%s/%s", conf->drivers_dir, l->driver) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > 120 * 1024) {
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size || memchr(buf, '\0', (size_t)n)) {
		free(buf);
		return -EIO;
	}
	buf[n] = '\0';
	r = sandboxes_memfd("driver", buf, (size_t)n + 1);
	free(buf);
	if (r >= 0)
		fds[i] = r;
	return r;
}

/* [A-Za-z0-9._-]{1,63}, not beginning with . or -, as the agent wants it
 * (and a file name of its own). */
static bool
context_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > SBX_CONTEXT_ID_MAX || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void
new_uuid(char buf[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		memset(b, 0, sizeof(b)); /* never: getrandom() does not fail for 16 bytes */
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* ---- definitions kept on disk ----
 *
 * A context's driver ends with its sandbox's agent (sleep, sandboxd's
 * restart); its definition stays in STATE/contexts/ID/CID, so that its next
 * cell starts it again, as a context reaped when idle is, instead of a 404.
 * The master removes the directory with the sandbox.
 */

static void
def_path(const struct api_req *req, const char *id, const char *cid, char *buf, size_t size)
{
	if (cid)
		snprintf(buf, size, "%s/contexts/%s/%s", req->conf->state_dir, id, cid);
	else
		snprintf(buf, size, "%s/contexts/%s", req->conf->state_dir, id);
}

/* Writes cid's definition (atomically).  Failures are logged only: the
 * context works, it will just not outlive a sleep. */
static void
def_store(struct api_req *req, const char *id, const char *cid, const struct language *l,
	  const char *cwd, const json_t *vars)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *d = json_pack("{s:s, s:s, s:O?}", "language", l->name, "cwd", cwd, "env_vars",
			      (json_t *)vars);
	int r = -ENOMEM;

	def_path(req, id, NULL, path, sizeof(path));
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	def_path(req, id, cid, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (d && json_dump_file(d, tmp, JSON_COMPACT) == 0)
		r = rename(tmp, path) < 0 ? -errno : 0;
out:
	if (r < 0)
		log_warn("req %s: sandbox %s: keeping context %s: %s", req->id, id, cid,
			 strerror(-r));
	json_decref(d);
}

/* Reads cid's definition.  0 (*ret_vars is the caller's), or -ENOENT. */
static int
def_load(struct api_req *req, const char *id, const char *cid, const struct language **ret_l,
	 char *cwd, size_t cwd_size, json_t **ret_vars)
{
	char path[PATH_MAX];
	json_t *d, *vars;
	const char *lang, *dir;

	def_path(req, id, cid, path, sizeof(path));
	d = json_load_file(path, 0, NULL);
	lang = json_string_value(json_object_get(d, "language"));
	dir = json_string_value(json_object_get(d, "cwd"));
	vars = json_object_get(d, "env_vars");
	if (json_is_null(vars))
		vars = NULL;
	if (!lang || !dir || dir[0] != '/' || strlen(dir) >= cwd_size || !find_language(lang) ||
	    (vars && (!json_is_object(vars) || env_check_object(vars)))) {
		json_decref(d);
		return -ENOENT;
	}
	*ret_l = find_language(lang);
	snprintf(cwd, cwd_size, "%s", dir);
	*ret_vars = json_incref(vars);
	json_decref(d);
	return 0;
}

/* Forgets cid's definition.  0, or -ENOENT when there was none. */
static int
def_forget(struct api_req *req, const char *id, const char *cid)
{
	char path[PATH_MAX];

	def_path(req, id, cid, path, sizeof(path));
	return unlink(path) < 0 ? -errno : 0;
}

/* ---- creating ---- */

/*
 * Creates context cid of language l in sandbox id: cwd absolute, vars the
 * caller's env_vars (checked).  0, or the HTTP status of the error sent.
 * With quiet_exists, an existing cid is no error (a default context).
 */
static int
create_context(struct api_req *req, const char *id, const char *cid, const struct language *l,
	       const char *cwd, const json_t *vars, bool quiet_exists)
{
	struct envlist env = { .n = 0 };
	char detail[SBX_CONTEXT_DETAIL_MAX];
	const char *key;
	json_t *v;
	int e, conn = -1, from_master = 0, src, status = 0;

	if (access(l->interpreter, X_OK) < 0)
		return api_error(req, 501, "LANGUAGE_NOT_AVAILABLE",
				 json_pack("{s:s}", "language", l->name),
				 "%s is not installed on this host (%s)", l->name, l->interpreter);
	src = driver_source(req->conf, l);
	if (src < 0) {
		log_error("req %s: the %s driver in %s: %s", req->id, l->name,
			  req->conf->drivers_dir, strerror(-src));
		return api_error(req, 500, "INTERNAL_ERROR", NULL,
				 "the %s driver is missing from this installation", l->name);
	}
	/* The sandbox's environment, the driver's own, then the caller's. */
	e = sandboxes_base_env(req, id, &env);
	for (int i = 0; e == 0 && l->env[i]; i++) {
		char name[64];
		const char *eq = strchr(l->env[i], '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - l->env[i]), l->env[i]);
		e = envlist_set(&env, name, eq + 1);
	}
	json_object_foreach((json_t *)vars, key, v)
	{
		if (e == 0 && json_is_string(v))
			e = envlist_set(&env, key, json_string_value(v));
	}
	if (e < 0) {
		envlist_free(&env);
		return api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
				 "the context's environment passes %d variables", ENV_MAX);
	}

	e = sandboxes_connect(req, id, &conn, &from_master);
	if (e == 0 && !from_master) {
		struct sbx_context_spec spec = { .id = cid,
						 .language = l->name,
						 .cwd = cwd,
						 .argv = l->argv,
						 .envp = (const char *const *)env.v,
						 .source_fd = src,
						 .start_timeout_ms = START_TIMEOUT_MS,
						 .idle_s = req->conf->context_idle_s };

		sandboxes_count(req, id, api_wall_ms() + START_TIMEOUT_MS + MASTER_WAIT_MS);
		e = sbx_context_create(conn, &spec, detail, sizeof(detail));
		sandboxes_count(req, id, 0);
		close(conn);
	}
	envlist_free(&env);
	if (from_master)
		return sandboxes_agent_error(req, id, from_master, 0);
	switch (e) {
	case 0: def_store(req, id, cid, l, cwd, vars); break;
	case -EEXIST:
		if (!quiet_exists)
			status = api_error(req, 409, "CONTEXT_EXISTS",
					   json_pack("{s:s}", "contextId", cid),
					   "context '%s' exists already", cid);
		break;
	case -EUSERS:
		status = api_error(req, 503, "CAPACITY_EXCEEDED", NULL,
				   "a sandbox has at most %d code contexts; delete one",
				   SBX_CONTEXTS_MAX);
		break;
	case -ENOTDIR:
		status = api_error(req, 400, "VALIDATION_FAILED",
				   json_pack("{s:s, s:s}", "cwd", cwd, "error", detail),
				   "the context cannot run in '%s': %s", cwd, detail);
		break;
	case -E2BIG:
		status = api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
				   "the context's environment passes %d bytes", SBX_STRINGS_MAX);
		break;
	case -ETIMEDOUT:
	case -ENOEXEC:
		log_warn("req %s: sandbox %s: a %s context did not start: %s", req->id, id, l->name,
			 detail);
		status = api_error(req, 500, "INTERPRETER_FAILED",
				   json_pack("{s:s, s:s}", "language", l->name, "detail", detail),
				   "the %s interpreter did not start: %s", l->name, detail);
		break;
	default: status = sandboxes_agent_error(req, id, 0, e);
	}
	return status;
}

/* Reads the language of a body ("python" when absent).  NULL after a 400. */
static const struct language *
body_language(struct api_req *req, const json_t *root, int *status)
{
	const json_t *v = json_object_get(root, "language");
	const struct language *l;

	*status = 0;
	if (!v || json_is_null(v))
		return &languages[0];
	l = json_is_string(v) ? find_language(json_string_value(v)) : NULL;
	if (!l)
		*status = api_error(req, 400, "VALIDATION_FAILED",
				    json_pack("{s:O}", "language", (json_t *)v),
				    "'language' must be python, javascript or typescript "
				    "(or python3, js, node, ts)");
	return l;
}

/* env_vars (the SDK's name) or envVars: an object of strings.  NULL with
 * *status 0 when absent. */
static const json_t *
body_vars(struct api_req *req, const json_t *root, int *status)
{
	const json_t *v = json_object_get(root, "env_vars");
	const char *why;

	*status = 0;
	if (!v || json_is_null(v))
		v = json_object_get(root, "envVars");
	if (!v || json_is_null(v))
		return NULL;
	why = json_is_object(v) ? env_check_object(v) : "it must be an object";
	if (!why) {
		const char *key;
		const json_t *s;

		json_object_foreach((json_t *)v, key, s)
		{
			if (!json_is_string(s)) {
				why = "every value must be a string";
				break;
			}
		}
	}
	if (why)
		*status = api_error(req, 400, "VALIDATION_FAILED", NULL, "env_vars: %s", why);
	return v;
}

static int
post_context(struct api_req *req, const char *id)
{
	json_t *root = api_parse_body(req), *body;
	const struct language *l;
	const json_t *vars;
	char cid[37], cwd[256] = "/workspace";
	int status;

	if (!root)
		return 400;
	l = body_language(req, root, &status);
	if (!status)
		vars = body_vars(req, root, &status);
	if (!status && json_object_get(root, "cwd") && !json_is_null(json_object_get(root, "cwd")))
		status = sandboxes_cwd(req, json_object_get(root, "cwd"), "cwd", cwd, sizeof(cwd));
	if (status)
		goto out;
	new_uuid(cid);
	status = create_context(req, id, cid, l, cwd, vars, false);
	if (status)
		goto out;
	body = sandboxes_ok(
		json_pack("{s:s, s:s, s:s}", "contextId", cid, "language", l->name, "cwd", cwd));
	status = api_send_json(req, 200, body);
out:
	json_decref(root);
	return status;
}

static const char *
state_name(uint32_t s)
{
	switch (s) {
	case SBX_CONTEXT_STARTING: return "starting";
	case SBX_CONTEXT_IDLE: return "idle";
	case SBX_CONTEXT_BUSY: return "busy";
	case SBX_CONTEXT_STOPPED: return "stopped";
	default: return "unknown";
	}
}

/* Adds to list the contexts that ended with an earlier agent of sandbox id
 * (kept definitions the agent does not have): stopped, started at their
 * next cell. */
static void
list_kept(struct api_req *req, const char *id, const struct sbx_context_info *info, unsigned count,
	  json_t *list)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	def_path(req, id, NULL, path, sizeof(path));
	d = opendir(path);
	if (!d)
		return;
	while (list && (e = readdir(d))) {
		const struct language *l;
		char cwd[256], when[32];
		json_t *vars = NULL;
		struct stat st;
		unsigned i;

		if (!context_id_ok(e->d_name) || strstr(e->d_name, ".tmp"))
			continue;
		for (i = 0; i < count && strcmp(info[i].id, e->d_name); i++)
			;
		if (i < count || def_load(req, id, e->d_name, &l, cwd, sizeof(cwd), &vars) < 0)
			continue;
		json_decref(vars);
		api_iso_time(fstatat(dirfd(d), e->d_name, &st, 0) == 0
				     ? (int64_t)st.st_mtim.tv_sec * 1000 +
					       st.st_mtim.tv_nsec / 1000000
				     : 0,
			     when);
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "id",
						      e->d_name, "language", l->name, "cwd", cwd,
						      "state", "stopped", "executionCount", 0,
						      "createdAt", when, "lastUsed", when));
	}
	closedir(d);
}

static int
list_contexts(struct api_req *req, const char *id)
{
	struct sbx_context_info info[SBX_CONTEXTS_MAX];
	unsigned count = 0;
	int e, conn = -1, from_master = 0;
	json_t *list;

	e = sandboxes_connect(req, id, &conn, &from_master);
	if (e == 0 && !from_master) {
		e = sbx_context_list(conn, info, SBX_CONTEXTS_MAX, &count);
		close(conn);
	}
	if (from_master || e < 0)
		return sandboxes_agent_error(req, id, from_master, e);
	list = json_array();
	for (unsigned i = 0; i < count && list; i++) {
		char created[32], used[32];

		api_iso_time(info[i].created_ms, created);
		api_iso_time(info[i].last_used_ms, used);
		json_array_append_new(list,
				      json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "id",
						info[i].id, "language", info[i].language, "cwd",
						info[i].cwd, "state", state_name(info[i].state),
						"executionCount", (int)info[i].executions,
						"createdAt", created, "lastUsed", used));
	}
	list_kept(req, id, info, count, list);
	return api_send_json(req, 200, sandboxes_ok(json_pack("{s:o}", "contexts", list)));
}

static int
delete_context(struct api_req *req, const char *id, const char *cid)
{
	int e, conn = -1, from_master = 0;

	if (!context_id_ok(cid))
		return api_error(req, 404, "CONTEXT_NOT_FOUND",
				 json_pack("{s:s}", "contextId", cid),
				 "no context '%s' in this sandbox", cid);
	e = sandboxes_connect(req, id, &conn, &from_master);
	if (e == 0 && !from_master) {
		/* The definition first: a cell that finds the context gone from
		 * the agent must not find it here and bring it back.  It may be
		 * all there is (the context ended with an earlier agent). */
		bool forgot = def_forget(req, id, cid) == 0;

		e = sbx_context_delete(conn, cid);
		close(conn);
		if (e == -ENOENT && forgot)
			e = 0;
	}
	if (e == -ENOENT)
		return api_error(req, 404, "CONTEXT_NOT_FOUND",
				 json_pack("{s:s}", "contextId", cid),
				 "no context '%s' in this sandbox", cid);
	if (from_master || e < 0)
		return sandboxes_agent_error(req, id, from_master, e);
	return api_send_json(req, 200, sandboxes_ok(json_pack("{s:s}", "contextId", cid)));
}

/* ---- a cell ---- */

struct cell {
	struct api_req *req;
	bool stream; /* SSE; else gathered into the json_t below */
	json_t *results, *out_chunks, *err_chunks;
	json_t *error; /* {name, value, traceback} */
	json_int_t execution_count;
	uint32_t exec_id, timeout_ms;
	uint64_t results_bytes, max;
	size_t nodes; /* of the results kept (run-code), by json_nodes() */
	bool truncated, ended, interrupted, timed_out, cancelled;
	bool costly;   /* an event line dropped for its many values */
	bool oom;      /* the kernel's OOM killer ran in the sandbox when it died */
	uint32_t note; /* enum sbx_cell_note_kind, 0: none */
	int wstatus;
	char *line; /* the event line being read */
	size_t line_len, line_cap;
	bool skip_line; /* past the cap: dropped up to its newline */
	bool over_cap;	/* the line being handled passes the cap */
	bool logged;	/* a protocol error of the driver's was logged */
	struct output o;
};

static json_t *
event(const char *type)
{
	char ts[32];

	api_timestamp(ts);
	return json_pack("{s:s, s:s}", "type", type, "timestamp", ts);
}

/* Sends text as stdout (1) or stderr (2): an event, or a chunk kept. */
static int
cell_text(struct cell *c, int stream, const char *data, size_t len)
{
	size_t clen;
	char *clean = api_utf8_clean(data, len, &clen);
	json_t *s = clean ? json_stringn_nocheck(clean, clen) : NULL, *ev;

	free(clean);
	if (!s)
		return -ENOMEM;
	if (!c->stream)
		return json_array_append_new(stream == 1 ? c->out_chunks : c->err_chunks, s)
			       ? -ENOMEM
			       : 0;
	ev = event(stream == 1 ? "stdout" : "stderr");
	if (!ev) {
		json_decref(s);
		return -ENOMEM;
	}
	json_object_set_new(ev, "text", s);
	return api_stream_event(c->req, ev);
}

static int
on_chunk(void *ctx, int stream, const char *data, size_t len)
{
	return cell_text(ctx, stream, data, len);
}

/* Says something of sandboxd's own on the cell's stderr. */
static int cell_notice(struct cell *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
cell_notice(struct cell *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return 0;
	return cell_text(c, 2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* The mime types a result carries as fields of their own (the SDK's). */
static const struct {
	const char *mime, *field;
} mimes[] = {
	{ "text/plain", "text" },	 { "text/html", "html" },
	{ "image/png", "png" },		 { "image/jpeg", "jpeg" },
	{ "image/svg+xml", "svg" },	 { "text/latex", "latex" },
	{ "text/markdown", "markdown" }, { "application/javascript", "javascript" },
	{ "application/json", "json" },
};

/* A driver's result event as the API's result: {text, html, png, ...}. */
static json_t *
result_json(const json_t *ev)
{
	const json_t *data = json_object_get(ev, "data"), *meta = json_object_get(ev, "metadata");
	json_t *r = json_object(), *extra = NULL, *v;
	const char *key;

	if (!r || !json_is_object(data)) {
		json_decref(r);
		return NULL;
	}
	json_object_foreach((json_t *)data, key, v)
	{
		size_t i;

		for (i = 0; i < sizeof(mimes) / sizeof(mimes[0]); i++)
			if (strcmp(key, mimes[i].mime) == 0)
				break;
		if (i < sizeof(mimes) / sizeof(mimes[0])) {
			if (strcmp(mimes[i].field, "json") == 0 || json_is_string(v))
				json_object_set(r, mimes[i].field, v);
			continue;
		}
		if (!extra)
			extra = json_object();
		if (extra)
			json_object_set(extra, key, v);
	}
	if (extra)
		json_object_set_new(r, "extra", extra);
	json_object_set_new(r, "isMainResult",
			    json_boolean(json_is_true(json_object_get(ev, "main"))));
	if (json_is_object(meta) && json_object_size(meta))
		json_object_set(r, "metadata", (json_t *)meta);
	return r;
}

/* The values a parse of JSON text s makes, near enough: its arrays, objects
 * and commas outside strings.  Each costs 40 (a number) to 230 bytes (an
 * object) parsed, against a byte or three of text. */
static size_t
json_nodes(const char *s, size_t n)
{
	size_t nodes = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_str = false;
		} else if (s[i] == '"') {
			in_str = true;
		} else if (s[i] == '[' || s[i] == '{' || s[i] == ',') {
			nodes++;
		}
	}
	return nodes;
}

/* One event line from the driver. */
static int
cell_event(struct cell *c, const char *line, size_t len)
{
	json_t *ev, *v;
	const char *type;
	int r = 0;
	size_t nodes = json_nodes(line, len);

	if (nodes > EVENT_NODES_MAX) {
		/* Not one of our drivers' events: a cell writing here can make
		 * a line whose parse would take a hundred times its size. */
		c->costly = true;
		return 0;
	}
	ev = json_loadb(line, len, 0, NULL);
	if (!json_is_object(ev) || !json_is_string(json_object_get(ev, "type"))) {
		json_decref(ev);
		return 0; /* not ours to understand: a cell can write here */
	}
	type = json_string_value(json_object_get(ev, "type"));
	v = json_object_get(ev, "id");
	if (v && (!json_is_integer(v) || json_integer_value(v) != c->exec_id) &&
	    strcmp(type, "protocol_error") != 0) {
		json_decref(ev);
		return 0; /* an earlier cell's */
	}
	if (strcmp(type, "result") == 0 && c->over_cap) {
		c->truncated = true;
	} else if (strcmp(type, "result") == 0 && !c->stream && c->nodes + nodes > CELL_NODES_MAX) {
		c->costly = true; /* kept, its values would pass the bound */
	} else if (strcmp(type, "result") == 0) {
		json_t *res = result_json(ev);

		if (res && !c->stream) {
			c->nodes += nodes;
			json_array_append_new(c->results, res);
		} else if (res) {
			json_t *out = event("result");

			json_object_update(out, res);
			json_decref(res);
			r = api_stream_event(c->req, out);
		}
	} else if (strcmp(type, "error") == 0 && !c->error) {
		json_t *tb = json_object_get(ev, "traceback"), *lines = json_array();
		const json_t *name = json_object_get(ev, "name"),
			     *value = json_object_get(ev, "value");
		size_t i;
		json_t *t;

		json_array_foreach(tb, i, t)
		{
			if (json_is_string(t))
				json_array_append(lines, t);
		}
		c->error = json_pack("{s:s, s:s, s:o}", "name",
				     json_is_string(name) ? json_string_value(name) : "Error",
				     "value", json_is_string(value) ? json_string_value(value) : "",
				     "traceback", lines);
	} else if (strcmp(type, "end") == 0 && v) {
		v = json_object_get(ev, "execution_count");
		c->execution_count = json_is_integer(v) ? json_integer_value(v) : 0;
		c->ended = true;
	} else if (strcmp(type, "protocol_error") == 0 && !c->logged) {
		/* The cell itself can write this: once a cell, clipped (and the
		 * log makes it one line). */
		v = json_object_get(ev, "message");
		log_warn("req %s: the driver did not understand a request: %.200s", c->req->id,
			 json_is_string(v) ? json_string_value(v) : "?");
		c->logged = true;
	}
	json_decref(ev);
	return r;
}

/* Reads the events pipe (up to READS_MAX reads: a cell writing there without
 * end must not keep us from its timeout); every complete line goes to
 * cell_event() after the output written before it.  0, 1 at end of file, or
 * a negative errno. */
static int
read_events(struct cell *c, int fd)
{
	char buf[65536];

	for (int reads = 0; reads < READS_MAX; reads++) {
		ssize_t n = read(fd, buf, sizeof(buf));
		size_t start = 0;
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			return 1;
		/* The driver flushes its output before each event: what is in the
		 * output pipes now comes first. */
		if ((!c->o.out.eof && (r = output_read(&c->o, 1)) < 0) ||
		    (!c->o.err.eof && (r = output_read(&c->o, 2)) < 0))
			return r;
		for (ssize_t i = 0; i <= n; i++) {
			size_t piece;

			if (i < n && buf[i] != '\n')
				continue;
			piece = (size_t)i - start;
			if (!c->skip_line && piece) {
				/* Past the cap, a line may still be small: the "end" and
				 * "error" that close the cell always fit. */
				if (c->line_len + piece > LINE_SLACK &&
				    c->results_bytes + c->line_len + piece > c->max) {
					c->skip_line = true;
					c->truncated = true;
				} else {
					if (c->line_len + piece > c->line_cap) {
						size_t cap = (c->line_len + piece) * 2;
						char *p = realloc(c->line, cap);

						if (!p)
							return -ENOMEM;
						c->line = p;
						c->line_cap = cap;
					}
					memcpy(c->line + c->line_len, buf + start, piece);
					c->line_len += piece;
				}
			}
			if (i == n)
				break;
			/* A whole line. */
			if (!c->skip_line && c->line_len) {
				c->over_cap = c->results_bytes + c->line_len > c->max;
				c->results_bytes += c->line_len;
				r = cell_event(c, c->line, c->line_len);
				if (r < 0)
					return r;
			}
			c->line_len = 0;
			c->skip_line = false;
			start = (size_t)i + 1;
		}
	}
	return 0; /* more to read: poll says so again */
}

/* Writes what is left of the request.  0 (more to write later), 1 (all
 * written), or a negative errno. */
static int
write_request(int fd, const char *req, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = write(fd, req + *off, len - *off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		*off += (size_t)n;
	}
	return 1;
}

/*
 * Runs code on the borrowed pipes of cell (conn: the agent).  0 when the
 * cell ended, or after a note that it cannot (c->note); -ECANCELED when the
 * client went away; another negative errno.
 */
static int
run_cell(struct cell *c, int conn, const struct sbx_cell *cell, const char *line, size_t len)
{
	size_t off = cell->written < len ? cell->written : len;
	uint64_t now = output_now_ms(), give_up = now + c->timeout_ms + GIVE_UP_MS,
		 next_tick = c->stream ? now + PING_MS : UINT64_MAX, drain_until = UINT64_MAX;
	bool written = false, ev_eof = false, agent_gone = false;
	int r = 0;

	c->o.out_r = cell->out;
	c->o.err_r = cell->err;
	/* What the agent did not write (most requests it did): no poll round
	 * for what fits the pipe now. */
	r = write_request(cell->requests, line, len, &off);
	if (r < 0 && r != -EPIPE)
		return r;
	written = r != 0;
	r = 0;
	while (!c->ended) {
		struct pollfd p[6] = {
			{ agent_gone ? -1 : conn, POLLIN, 0 },
			{ c->o.out.eof ? -1 : cell->out, POLLIN, 0 },
			{ c->o.err.eof ? -1 : cell->err, POLLIN, 0 },
			{ ev_eof ? -1 : cell->events, POLLIN, 0 },
			{ written ? -1 : cell->requests, POLLOUT, 0 },
			{ c->req->client_fd, POLLRDHUP, 0 },
		};
		uint64_t until = give_up < next_tick ? give_up : next_tick;
		int n;

		if (drain_until < until)
			until = drain_until;
		now = output_now_ms();
		/* The driver is gone (a note said so, or the agent is): done once
		 * its pipes are at their end. */
		if ((c->note || agent_gone) &&
		    ((c->o.out.eof && c->o.err.eof && ev_eof) || now >= drain_until))
			break;
		if (now >= give_up) {
			r = -ETIMEDOUT;
			break;
		}
		if (now >= next_tick) {
			if ((r = api_stream_comment(c->req, "ping")) < 0)
				break;
			next_tick = now + PING_MS;
			continue;
		}
		n = poll(p, 6, (int)(until - now));
		if (n < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (n <= 0)
			continue;
		if (p[5].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			c->cancelled = true;
			r = -ECANCELED;
			break;
		}
		if (p[4].revents) {
			r = write_request(cell->requests, line, len, &off);
			if (r < 0 && r != -EPIPE)
				break;
			written = true;
			if (r == 0)
				written = false;
			r = 0;
		}
		if (p[1].revents && (r = output_read(&c->o, 1)) < 0)
			break;
		if (p[2].revents && (r = output_read(&c->o, 2)) < 0)
			break;
		if (p[3].revents) {
			r = read_events(c, cell->events);
			if (r < 0)
				break;
			ev_eof = r == 1;
			r = 0;
		}
		if (p[0].revents) {
			uint32_t kind;
			int ws;

			r = sbx_cell_note(conn, &kind, &ws);
			if (r == -EPIPE || r == -EBADMSG || r == -ECONNRESET) {
				agent_gone = true;
				drain_until = output_now_ms() + DRAIN_MS;
			} else if (r < 0) {
				break;
			} else if (kind == SBX_CELL_INTERRUPTED) {
				c->interrupted = true;
			} else {
				c->note = kind;
				c->wstatus = ws;
				drain_until = output_now_ms() + DRAIN_MS;
			}
			r = 0;
		}
		if (c->stream && n > 0)
			next_tick = output_now_ms() + PING_MS;
	}
	if (r < 0)
		return r;
	if (c->ended) {
		/* What the cell wrote before its end is in the pipes now. */
		if ((!c->o.out.eof && (r = output_read(&c->o, 1)) < 0) ||
		    (!c->o.err.eof && (r = output_read(&c->o, 2)) < 0))
			return r;
		/* Done with the pipes: the context is free.  Now, not once the
		 * answer is out: a slow client must not keep the agent from
		 * knowing that the cell ended (at its deadline it would kill the
		 * driver, and lose the context's state, for a cell that ended). */
		sbx_cell_done(conn);
	} else if (agent_gone && !c->note) {
		c->note = NOTE_STOPPED; /* the sandbox stopped */
	}
	return 0;
}

/* The error of a cell that did not end by itself, as {name, value, traceback}. */
static json_t *
death_error(const struct cell *c)
{
	char msg[512];
	const char *name = "ContextDied";

	switch (c->note) {
	case SBX_CELL_KILLED:
		name = "TimeoutError";
		snprintf(msg, sizeof(msg),
			 "the cell ran past its timeout of %u ms and did not stop when "
			 "interrupted, so its context was restarted: its state (variables, "
			 "imports) is lost",
			 c->timeout_ms);
		break;
	case SBX_CELL_DELETED:
		snprintf(msg, sizeof(msg), "the context was deleted while the cell ran");
		name = "ContextDeleted";
		break;
	case SBX_CELL_DIED:
		if (c->oom) {
			name = "OutOfMemoryError";
			snprintf(
				msg, sizeof(msg),
				"the context's process was killed by the out-of-memory killer: the "
				"sandbox reached its memory limit.  The context restarts at its next "
				"cell, and its state (variables, imports) is lost");
		} else if (WIFSIGNALED(c->wstatus)) {
			snprintf(msg, sizeof(msg),
				 "the context's process was killed by signal %d: the context "
				 "restarts at its next cell, and its state is lost",
				 WTERMSIG(c->wstatus));
		} else {
			snprintf(
				msg, sizeof(msg),
				"the context's process exited with status %d: the context restarts "
				"at its next cell, and its state is lost",
				WIFEXITED(c->wstatus) ? WEXITSTATUS(c->wstatus) : -1);
		}
		break;
	default:
		name = "SandboxStopped";
		snprintf(msg, sizeof(msg), "the sandbox stopped while the cell ran");
	}
	return json_pack("{s:s, s:s, s:[]}", "name", name, "value", msg, "traceback");
}

/* The cell's error as the driver gave it, or as its end explains it. */
static json_t *
final_error(struct cell *c)
{
	if (c->note) {
		json_decref(c->error);
		c->error = NULL;
		return death_error(c);
	}
	if (c->error && c->interrupted) {
		/* The interrupt of the timeout: the driver's KeyboardInterrupt (or
		 * its like), traceback kept, named for what it was. */
		char msg[256];

		snprintf(msg, sizeof(msg),
			 "the cell ran past its timeout of %u ms and was interrupted; the "
			 "context and its state are kept",
			 c->timeout_ms);
		json_object_set_new(c->error, "name", json_string("TimeoutError"));
		json_object_set_new(c->error, "value", json_string(msg));
	}
	return json_incref(c->error);
}

/* Tells the cell why its context started afresh before it. */
static int
restart_notice(struct cell *c, const struct sbx_cell *cell)
{
	switch (cell->restarted) {
	case SBX_CONTEXT_REAPED:
		return cell_notice(
			c,
			"[sandboxd] this context was unused for %u s and was stopped; it "
			"has started again, so its earlier state (variables, imports) is "
			"gone\n",
			cell->idle_s);
	case SBX_CONTEXT_DIED:
		return cell_notice(
			c,
			"[sandboxd] this context's process ended after its last cell "
			"(wait status %d); it has started again, so its earlier state is "
			"gone\n",
			cell->wstatus);
	case SBX_CONTEXT_TIMED_OUT:
		return cell_notice(c,
				   "[sandboxd] this context's last cell was abandoned and did not "
				   "stop when interrupted; the context has started again, so its "
				   "earlier state is gone\n");
	case SBX_CONTEXT_CLOSED:
		return cell_notice(c,
				   "[sandboxd] this context's process had closed its output or "
				   "its channel to sandboxd (a cell did, or it was exiting), so it "
				   "could run no more cells; it has started again, so its earlier "
				   "state is gone\n");
	default: return 0;
	}
}

/*
 * Asks for context cid of sandbox id and waits, watching the client, until
 * the agent hands over its pipes.  0 with *ret_conn, or the HTTP status of
 * the error sent (499 when the client went away).  A context the agent does
 * not have is started first when its definition was kept (*restored: it ended
 * with an earlier agent), or when it is a default one (create_l).
 */
static int
get_cell(struct api_req *req, const char *id, const char *cid, const struct language *create_l,
	 uint32_t timeout_ms, const char *line, size_t len, int *ret_conn, struct sbx_cell *cell,
	 bool *restored)
{
	char detail[SBX_CONTEXT_DETAIL_MAX];

	for (int attempt = 0;; attempt++) {
		int e, conn = -1, from_master = 0, status;

		e = sandboxes_connect(req, id, &conn, &from_master);
		if (from_master || e < 0)
			return sandboxes_agent_error(req, id, from_master, e);
		e = sbx_cell_send(conn, cid, timeout_ms, line, len);
		for (;;) {
			struct pollfd p[2] = { { conn, POLLIN, 0 },
					       { req->client_fd, POLLRDHUP, 0 } };

			if (e < 0)
				break;
			if (poll(p, 2, -1) < 0 && errno != EINTR) {
				e = -errno;
				break;
			}
			if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
				close(conn);
				return 499;
			}
			if (p[0].revents) {
				e = sbx_cell_recv(conn, cell, detail, sizeof(detail));
				break;
			}
		}
		if (e == 0) {
			*ret_conn = conn;
			return 0;
		}
		close(conn);
		if ((e == -ENOENT || (e == -ECANCELED && create_l)) && attempt == 0) {
			/* Not in the agent: a context that ended with the agent (its
			 * definition is kept), or a default context not made yet (or
			 * deleted while this cell waited: made anew). */
			const struct language *l = create_l;
			char cwd[256] = "/workspace";
			json_t *vars = NULL;

			if (e == -ENOENT &&
			    def_load(req, id, cid, &l, cwd, sizeof(cwd), &vars) == 0)
				*restored = true;
			if (l) {
				status = create_context(req, id, cid, l, cwd, vars, true);
				json_decref(vars);
				if (status)
					return status;
				continue;
			}
		}
		if (e == -ENOENT)
			return api_error(req, 404, "CONTEXT_NOT_FOUND",
					 json_pack("{s:s}", "contextId", cid),
					 "no context '%s' in this sandbox", cid);
		if (e == -ECANCELED)
			return api_error(
				req, 404, "CONTEXT_NOT_FOUND", json_pack("{s:s}", "contextId", cid),
				"context '%s' was deleted while this cell waited for it", cid);
		if (e == -ENOEXEC)
			return api_error(
				req, 500, "INTERPRETER_FAILED",
				json_pack("{s:s, s:s}", "contextId", cid, "detail", detail),
				"the context's interpreter did not start again: %s", detail);
		if (e == -EAGAIN)
			return api_error(req, 503, "CAPACITY_EXCEEDED", NULL,
					 "too many calls wait for this sandbox's contexts; retry");
		return sandboxes_agent_error(req, id, 0, e);
	}
}

static void
close_cell(struct sbx_cell *cell)
{
	close(cell->out);
	close(cell->err);
	close(cell->events);
	close(cell->requests);
}

struct cell_args {
	const char *code;
	size_t code_len;
	char cid[SBX_CONTEXT_ID_MAX + 1];
	const struct language *create_l; /* a default context, made when missing */
	uint32_t timeout_ms;
};

/* The timeout field: milliseconds, 1..exec_timeout_max_ms. */
static int
body_timeout(struct api_req *req, const json_t *v, const char *name, uint32_t *ret)
{
	*ret = req->conf->exec_timeout_ms;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > req->conf->exec_timeout_max_ms)
		return api_error(req, 400, "VALIDATION_FAILED", NULL,
				 "'%s' must be milliseconds, 1 to %u", name,
				 req->conf->exec_timeout_max_ms);
	*ret = (uint32_t)json_integer_value(v);
	return 0;
}

/* code, and the context: named (ctx_field), or the language's default. */
static int
decode_cell(struct api_req *req, const json_t *root, const char *ctx_field,
	    const char *timeout_field, struct cell_args *a)
{
	const json_t *code = json_object_get(root, "code"), *ctx = json_object_get(root, ctx_field);
	const struct language *l;
	int status;

	if (!json_is_string(code))
		return api_error(req, 400, "VALIDATION_FAILED", NULL, "'code' must be a string");
	a->code = json_string_value(code);
	a->code_len = json_string_length(code);
	if (a->code_len > CODE_MAX)
		return api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL, "'code' passes %d bytes",
				 CODE_MAX);
	if ((status = body_timeout(req, json_object_get(root, timeout_field), timeout_field,
				   &a->timeout_ms)))
		return status;
	if (ctx && json_is_object(ctx))
		ctx = json_object_get(ctx, "id"); /* a whole CodeContext */
	if (ctx && !json_is_null(ctx)) {
		if (!json_is_string(ctx) || !context_id_ok(json_string_value(ctx)))
			return api_error(req, 404, "CONTEXT_NOT_FOUND",
					 json_pack("{s:O}", "contextId", (json_t *)ctx),
					 "no such context in this sandbox");
		snprintf(a->cid, sizeof(a->cid), "%s", json_string_value(ctx));
		return 0;
	}
	l = body_language(req, root, &status);
	if (status)
		return status;
	snprintf(a->cid, sizeof(a->cid), "default-%s", l->name);
	a->create_l = l;
	return 0;
}

static int
cell_prepare(struct api_req *req, struct cell *c, bool stream)
{
	*c = (struct cell){ .req = req, .stream = stream, .max = req->conf->cell_output_max_bytes };
	/* No pipes of ours: the driver's come from the agent. */
	c->o = (struct output){
		.out_r = -1, .err_r = -1, .out_w = -1, .err_w = -1, .watch_fd = -1
	};
	c->o.out.max = c->o.err.max = c->max;
	c->o.on_chunk = on_chunk;
	c->o.stream_ctx = c;
	if (getrandom(&c->exec_id, sizeof(c->exec_id), 0) != sizeof(c->exec_id))
		c->exec_id = (uint32_t)getpid();
	c->exec_id &= 0x7fffffff;
	if (!stream) {
		c->results = json_array();
		c->out_chunks = json_array();
		c->err_chunks = json_array();
		if (!c->results || !c->out_chunks || !c->err_chunks)
			return -ENOMEM;
	}
	return 0;
}

static void
cell_free(struct cell *c)
{
	c->o.out_r = c->o.err_r = -1; /* the cell's, closed by close_cell() */
	output_close(&c->o);
	json_decref(c->results);
	json_decref(c->out_chunks);
	json_decref(c->err_chunks);
	json_decref(c->error);
	free(c->line);
	/* A big cell's many small values went back to the heap: to the
	 * system too, or the worker keeps its peak for good. */
	if (c->results_bytes > (1u << 20))
		malloc_trim(0);
}

/* Runs a decoded cell: gets the context, runs, says what went wrong in it. */
static int
cell_go(struct api_req *req, const char *id, struct cell *c, const struct cell_args *a, bool *began)
{
	struct sbx_cell cell;
	bool restored = false;
	struct wire_sbx_reply before, after;
	uint32_t oom_seq = 0;
	bool oom_asked;
	int status, conn = -1, e;

	char *line;
	size_t len;
	json_t *rq;

	c->timeout_ms = a->timeout_ms;
	/* The driver's request line, which the agent writes for us when it can. */
	rq = json_pack("{s:s, s:I, s:s%}", "type", "execute", "id", (json_int_t)c->exec_id, "code",
		       a->code, a->code_len);
	line = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
	json_decref(rq);
	if (!line)
		return api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
	len = strlen(line);
	line[len++] = '\n'; /* over the NUL: json_dumps() leaves no newline */
	status = get_cell(req, id, a->cid, a->create_l, a->timeout_ms, line, len, &conn, &cell,
			  &restored);
	if (status) {
		free(line);
		return status;
	}
	if (c->stream && api_stream_begin(req) < 0) {
		free(line);
		close_cell(&cell);
		close(conn);
		return 499;
	}
	*began = true;
	sandboxes_count(req, id, api_wall_ms() + a->timeout_ms + GIVE_UP_MS + MASTER_WAIT_MS);
	/* The sandbox's OOM kills so far, asked now and read when the cell is
	 * over: the master answers long before a cell has allocated its way to
	 * a kill. */
	oom_asked = sandboxes_master_send(req, WIRE_SBX_OOM, 0, id, 0, false, &oom_seq) == 0;
	e = restored ? cell_notice(c, "[sandboxd] this context ended with its sandbox's last run "
				      "(the sandbox slept, or sandboxd restarted); it has started "
				      "again, so its earlier state (variables, imports) is gone\n")
		     : restart_notice(c, &cell);
	if (e == 0)
		e = run_cell(c, conn, &cell, line, len);
	free(line);
	close_cell(&cell);
	/* Closing before CTX_DONE (client gone, a failure here) interrupts the
	 * cell. */
	close(conn);
	sandboxes_count(req, id, 0);
	/* Read the answer in any case, so that answers never pile up in our
	 * socket (the master does not wait on a full one: it drops them). */
	oom_asked = oom_asked && sandboxes_master_wait(req, oom_seq, &before) == 0 &&
		    before.status == 0;
	if (e == -ECANCELED)
		return 499;
	if (e < 0) {
		log_error("req %s: sandbox %s: a cell: %s", req->id, id, strerror(-e));
		c->note = NOTE_STOPPED;
	}
	if (c->note == SBX_CELL_DIED && WIFSIGNALED(c->wstatus) && WTERMSIG(c->wstatus) == SIGKILL)
		/* Killed, and not by sandboxd: by the OOM killer, or the sandbox's
		 * own code?  The cgroup's count tells. */
		c->oom = oom_asked &&
			 sandboxes_ask_master(req, WIRE_SBX_OOM, 0, id, 0, false, &after) == 0 &&
			 after.status == 0 && after.oom_kills > before.oom_kills;
	c->truncated = c->truncated || c->o.out.truncated || c->o.err.truncated;
	if (c->truncated)
		cell_notice(c,
			    "[sandboxd] this cell's output passed %llu bytes; the rest was "
			    "dropped\n",
			    (unsigned long long)c->max);
	if (c->costly)
		cell_notice(c,
			    "[sandboxd] this cell's results held more than %d JSON values "
			    "together; those past it were dropped\n",
			    CELL_NODES_MAX);
	c->truncated = c->truncated || c->costly;
	return 200;
}

static int
execute_code(struct api_req *req, const char *id)
{
	json_t *root = api_parse_body(req), *err, *ev;
	struct cell_args a = { 0 };
	struct cell c;
	bool began = false;
	int status;

	if (!root)
		return 400;
	if ((status = decode_cell(req, root, "context_id", "timeout_ms", &a)))
		goto out;
	if (cell_prepare(req, &c, true) < 0) {
		status = api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
		goto out;
	}
	status = cell_go(req, id, &c, &a, &began);
	if (began && status == 200) {
		/* The stream's last event: the error, or the count. */
		err = final_error(&c);
		if (err) {
			ev = event("error");
			json_object_set(ev, "ename", json_object_get(err, "name"));
			json_object_set(ev, "evalue", json_object_get(err, "value"));
			json_object_set(ev, "traceback", json_object_get(err, "traceback"));
			json_decref(err);
		} else {
			ev = event("execution_complete");
		}
		json_object_set_new(ev, "execution_count", json_integer(c.execution_count));
		if (c.truncated)
			json_object_set_new(ev, "truncated", json_true());
		api_stream_event(req, ev);
	}
	cell_free(&c);
out:
	json_decref(root);
	return status;
}

static int
run_code(struct api_req *req, const char *id)
{
	static const char *const fields[] = { "code", "language", "context", "timeoutMs" };
	json_t *root = api_parse_body(req), *err, *body, *v;
	struct cell_args a = { 0 };
	struct cell c;
	bool began = false;
	const char *key;
	int status;

	if (!root)
		return 400;
	json_object_foreach(root, key, v)
	{
		size_t i;

		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (strcmp(key, fields[i]) == 0)
				break;
		if (i == sizeof(fields) / sizeof(fields[0])) {
			status = api_error(
				req, 400, "VALIDATION_FAILED", json_pack("{s:s}", "field", key),
				"unknown field '%s' (code, language, context, timeoutMs)", key);
			goto out;
		}
	}
	if ((status = decode_cell(req, root, "context", "timeoutMs", &a)))
		goto out;
	if (cell_prepare(req, &c, false) < 0) {
		status = api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
		goto out;
	}
	status = cell_go(req, id, &c, &a, &began);
	if (began && status == 200) {
		err = final_error(&c);
		if (err)
			json_object_set(err, "message", json_object_get(err, "value"));
		body = sandboxes_ok(json_pack(
			"{s:s%, s:s, s:O, s:{s:O, s:O}, s:o, s:I, s:b}", "code", a.code, a.code_len,
			"contextId", a.cid, "results", c.results, "logs", "stdout", c.out_chunks,
			"stderr", c.err_chunks, "error", err ? err : json_null(), "executionCount",
			(json_int_t)c.execution_count, "truncated", c.truncated));
		status = api_send_json(req, 200, body);
	}
	cell_free(&c);
out:
	json_decref(root);
	return status;
}

int
contexts_route(struct api_req *req, const char *id, const char *rest)
{
	if (strcmp(rest, "/api/contexts") == 0) {
		if (strcmp(req->method, "POST") == 0)
			return post_context(req, id);
		if (strcmp(req->method, "GET") == 0)
			return list_contexts(req, id);
		return sandboxes_only(req, "GET, POST");
	}
	if (strncmp(rest, "/api/contexts/", 14) == 0 && rest[14] && !strchr(rest + 14, '/')) {
		if (strcmp(req->method, "DELETE") == 0)
			return delete_context(req, id, rest + 14);
		return sandboxes_only(req, "DELETE");
	}
	if (strcmp(rest, "/api/execute/code") == 0) {
		if (strcmp(req->method, "POST") == 0)
			return execute_code(req, id);
		return sandboxes_only(req, "POST");
	}
	if (strcmp(rest, "/run-code") == 0) {
		if (strcmp(req->method, "POST") == 0)
			return run_code(req, id);
		return sandboxes_only(req, "POST");
	}
	return 0;
}
