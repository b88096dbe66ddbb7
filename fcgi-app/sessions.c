/*
 * sessions.c: a sandbox's sessions (/api/session/create|list|delete), its
 * own environment variables (POST /v1/sandboxes/{id}/env), and the SDK's
 * utility routes (/api/ping, /api/version).
 *
 * Sessions live in the sandbox's agent: a session is a cwd and an exported
 * environment that its commands, run one at a time, carry from one to the
 * next.  They end with the agent (sleep, crash, restart).  The sandbox's own
 * variables are configuration: kept on disk (env.c), added to every command's
 * environment, and pushed to the sessions of a running agent when they change.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "sandbox-exec.h"
#include "sandboxes-private.h"

/* Connects to the agent of sandbox id only if it is running: nothing here
 * is worth waking a sandbox for.  The fd, or -1. */
static int
connect_if_running(struct api_req *req, const char *id)
{
	struct sbx_slot s;

	if (sandboxes_entry(req, id, &s) < 0 || s.state != SBX_SLOT_RUNNING)
		return -1;
	return sandboxes_agent_connect(req, s.uid_slot, s.generation);
}

int
sandboxes_env_apply(struct api_req *req, const char *id, json_t *vars)
{
	struct envlist set = { .n = 0 }, base = { .n = 0 };
	const char *key;
	json_t *v;
	int r, conn;

	r = env_sandbox_update(req->conf->state_dir, id, vars);
	if (r == -E2BIG)
		return api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
				 "a sandbox keeps at most %d variables of at most %d bytes in all",
				 ENV_SANDBOX_MAX, ENV_SANDBOX_BYTES);
	if (r < 0) {
		log_error("req %s: sandbox %s: saving its variables: %s", req->id, id,
			  strerror(-r));
		return api_error(req, 500, "INTERNAL_ERROR", NULL,
				 "the sandbox's variables could not be saved: %s", strerror(-r));
	}
	/* Sessions that have an environment of their own get the change too;
	 * new ones start from the file. */
	conn = connect_if_running(req, id);
	if (conn < 0)
		return 0;
	/* What a new command would now start from, so that an unset gives back
	 * a default (PATH) rather than nothing. */
	r = sandboxes_base_env(req, id, &base);
	json_object_foreach(vars, key, v)
	{
		const char *now = r == 0 ? envlist_get(&base, key) : NULL;

		if (r < 0)
			break;
		(void)v;
		r = now ? envlist_set(&set, key, now) : envlist_unset_mark(&set, key);
	}
	if (r == 0)
		r = sbx_session(conn, SBX_SESSION_SETENV, NULL, NULL, (const char *const *)set.v,
				NULL, 0, NULL);
	if (r < 0)
		log_warn("req %s: sandbox %s: variables not pushed to its sessions: %s", req->id,
			 id, strerror(-r));
	close(conn);
	envlist_free(&set);
	envlist_free(&base);
	return 0;
}

/* POST /v1/sandboxes/{id}/env {envVars: {NAME: "value" | null}} */
static int
post_env(struct api_req *req, const char *id)
{
	json_t *root = api_parse_body(req), *vars;
	struct sbx_slot s;
	const char *key, *why;
	json_t *v;
	int r;

	if (!root)
		return 400;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "envVars") != 0) {
			char k[64];

			snprintf(k, sizeof(k), "%s", key);
			json_decref(root);
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "unknown field '%s'; this route takes envVars", k);
		}
	}
	vars = json_object_get(root, "envVars");
	why = vars ? env_check_object(vars) : "is required";
	if (why) {
		json_decref(root);
		return api_error(req, 400, "VALIDATION_FAILED", NULL, "'envVars' %s", why);
	}
	/* Created lazily, like every route that names a sandbox; not woken. */
	if (sandboxes_entry(req, id, &s) < 0 || s.state == SBX_SLOT_DESTROYING) {
		struct wire_sbx_reply reply;
		int e = sandboxes_ask_master(req, WIRE_SBX_ENSURE, WIRE_SBX_CREATE, id, 0, false,
					     &reply);

		if (e == 0)
			e = reply.status;
		if (e < 0) {
			json_decref(root);
			return sandboxes_master_error(req, id, "started", e);
		}
	}
	r = sandboxes_env_apply(req, id, vars);
	json_decref(root);
	return r ? r : api_send_json(req, 200, api_ok());
}

/* Runs one session request against sandbox id's agent (waking it).  0 with
 * the agent's answer in *ret_err (0 or a negative errno), or the HTTP status
 * of the error already sent. */
static int
ask_sessions(struct api_req *req, const char *id, enum sbx_session_op op, const char *name,
	     const char *cwd, const char *const *env, struct sbx_session *list, unsigned *ret_count,
	     int *ret_err)
{
	int conn = -1, from_master = 0, e;

	e = sandboxes_connect(req, id, &conn, &from_master);
	if (from_master || e < 0)
		return sandboxes_agent_error(req, id, from_master, e);
	e = sbx_session(conn, op, name, cwd, env, list, list ? SBX_SESSIONS_MAX : 0, ret_count);
	close(conn);
	if (e == -EPIPE || e == -ECONNRESET || e == -EBADMSG)
		return sandboxes_agent_error(req, id, 0, e == -EBADMSG ? -EIO : e);
	*ret_err = e;
	return 0;
}

static json_t *
session_json(const char *name, const char *cwd)
{
	size_t len;
	/* The cwd is the sandbox shell's word: bytes that are not UTF-8 become
	 * U+FFFD.  The name was checked when it was given. */
	char *clean = api_utf8_clean(cwd[0] ? cwd : "/workspace",
				     strlen(cwd[0] ? cwd : "/workspace"), &len);
	json_t *j =
		json_pack("{s:s, s:s%}", "id", name, "cwd", clean ? clean : "", clean ? len : 0);

	free(clean);
	return j;
}

static int
session_create(struct api_req *req, const char *id)
{
	struct envlist env = { .n = 0 };
	char name[SBX_SESSION_NAME_MAX + 1], cwd[256] = "";
	json_t *root = api_parse_body(req), *v, *body;
	int status = 0, err = 0;

	if (!root)
		return 400;
	v = json_object_get(root, "id");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || !sandboxes_session_ok(json_string_value(v))) {
			status = api_error(req, 400, "VALIDATION_FAILED", NULL,
					   "'id' must be 1 to %d of [A-Za-z0-9._-]",
					   SBX_SESSION_NAME_MAX);
			goto out;
		}
		snprintf(name, sizeof(name), "%s", json_string_value(v));
	} else {
		uint8_t rnd[6] = { 0 };

		(void)!getrandom(rnd, sizeof(rnd), 0);
		snprintf(name, sizeof(name), "session_%llu_%02x%02x%02x%02x%02x%02x",
			 (unsigned long long)api_wall_ms(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
			 rnd[5]);
	}
	v = json_object_get(root, "cwd");
	if (v && !json_is_null(v) && (status = sandboxes_cwd(req, v, "cwd", cwd, sizeof(cwd))))
		goto out;
	if (sandboxes_base_env(req, id, &env) < 0) {
		status = api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
		goto out;
	}
	v = json_object_get(root, "env");
	if (v && !json_is_null(v)) {
		const char *key, *why = env_check_object(v);
		json_t *val;

		if (why) {
			status = api_error(req, 400, "VALIDATION_FAILED", NULL, "'env' %s", why);
			goto out;
		}
		json_object_foreach(v, key, val)
		{
			if (envlist_set(&env, key,
					json_is_string(val) ? json_string_value(val) : NULL) < 0) {
				status = api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
						   "too many environment variables");
				goto out;
			}
		}
	}
	status = ask_sessions(req, id, SBX_SESSION_CREATE, name, cwd, (const char *const *)env.v,
			      NULL, NULL, &err);
	if (status)
		goto out;
	switch (err) {
	case 0:
		body = sandboxes_ok(json_pack("{s:s, s:s, s:s, s:o, s:n}", "sessionId", name, "id",
					      name, "cwd", cwd[0] ? cwd : "/workspace", "data",
					      session_json(name, cwd), "containerPlacementId"));
		status = api_send_json(req, 200, body);
		break;
	case -EEXIST:
		status = api_error(req, 409, "SESSION_ALREADY_EXISTS",
				   json_pack("{s:s}", "sessionId", name),
				   "session '%s' already exists", name);
		break;
	case -EUSERS:
		status = api_error(req, 503, "CAPACITY_EXCEEDED", NULL,
				   "a sandbox has at most %d sessions; delete one",
				   SBX_SESSIONS_MAX);
		break;
	case -E2BIG:
		status = api_error(req, 413, "PAYLOAD_TOO_LARGE", NULL,
				   "the session's environment is too large");
		break;
	default: status = sandboxes_agent_error(req, id, 0, err);
	}
out:
	envlist_free(&env);
	json_decref(root);
	return status;
}

static int
session_list(struct api_req *req, const char *id)
{
	static struct sbx_session list[SBX_SESSIONS_MAX];
	json_t *names, *full, *body;
	unsigned count = 0;
	int status, err = 0;

	status = ask_sessions(req, id, SBX_SESSION_LIST, NULL, NULL, NULL, list, &count, &err);
	if (status)
		return status;
	if (err)
		return sandboxes_agent_error(req, id, 0, err);
	names = json_array();
	full = json_array();
	for (unsigned i = 0; i < count; i++) {
		json_t *one = session_json(list[i].name, list[i].cwd);

		json_object_set_new(one, "busy", json_boolean(list[i].busy));
		json_array_append_new(names, json_string(list[i].name));
		json_array_append_new(full, one);
	}
	body = sandboxes_ok(
		json_pack("{s:o, s:o, s:i}", "data", names, "sessions", full, "count", (int)count));
	return api_send_json(req, 200, body);
}

static int
session_delete(struct api_req *req, const char *id)
{
	json_t *root = api_parse_body(req), *v, *body;
	char name[SBX_SESSION_NAME_MAX + 1];
	int status, err = 0;

	if (!root)
		return 400;
	v = json_object_get(root, "sessionId");
	if (!json_is_string(v) || !sandboxes_session_ok(json_string_value(v))) {
		json_decref(root);
		return api_error(req, 400, "VALIDATION_FAILED", NULL,
				 "'sessionId' is required: 1 to %d of [A-Za-z0-9._-]",
				 SBX_SESSION_NAME_MAX);
	}
	snprintf(name, sizeof(name), "%s", json_string_value(v));
	json_decref(root);
	status = ask_sessions(req, id, SBX_SESSION_DELETE, name, NULL, NULL, NULL, NULL, &err);
	if (status)
		return status;
	if (err == -ENOENT)
		return api_error(req, 404, "SESSION_NOT_FOUND",
				 json_pack("{s:s}", "sessionId", name),
				 "no session '%s' in sandbox '%s'", name, id);
	if (err)
		return sandboxes_agent_error(req, id, 0, err);
	body = sandboxes_ok(json_pack("{s:s}", "sessionId", name));
	return api_send_json(req, 200, body);
}

/* GET /api/ping: the sandbox's agent answers (the sandbox is woken, or
 * created, as by any route that names it). */
static int
ping(struct api_req *req, const char *id)
{
	int conn = -1, from_master = 0, e = sandboxes_connect(req, id, &conn, &from_master);

	if (from_master || e < 0)
		return sandboxes_agent_error(req, id, from_master, e);
	close(conn);
	return api_send_json(
		req, 200,
		sandboxes_ok(json_pack("{s:s, s:s}", "status", "healthy", "message", "pong")));
}

static int
version(struct api_req *req)
{
	return api_send_json(req, 200,
			     sandboxes_ok(json_pack("{s:s}", "version", PACKAGE_VERSION)));
}

int
sessions_route(struct api_req *req, const char *id, const char *rest)
{
	bool post = strcmp(req->method, "POST") == 0, get = strcmp(req->method, "GET") == 0;

	if (strcmp(rest, "/api/ping") == 0)
		return get ? ping(req, id) : sandboxes_only(req, "GET");
	if (strcmp(rest, "/api/version") == 0)
		return get ? version(req) : sandboxes_only(req, "GET");
	if (strcmp(rest, "/env") == 0)
		return post ? post_env(req, id) : sandboxes_only(req, "POST");
	if (strcmp(rest, "/api/session/create") == 0)
		return post ? session_create(req, id) : sandboxes_only(req, "POST");
	if (strcmp(rest, "/api/session/delete") == 0)
		return post ? session_delete(req, id) : sandboxes_only(req, "POST");
	if (strcmp(rest, "/api/session/list") == 0)
		return get ? session_list(req, id) : sandboxes_only(req, "GET");
	return 0;
}
