/*
 * sandboxes-private.h: what the routes of persistent sandboxes share
 * (sandboxes.c: lifecycle and commands; sessions.c; files.c).
 */
#ifndef SANDBOXD_SANDBOXES_PRIVATE_H
#define SANDBOXD_SANDBOXES_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "env.h"
#include "wire.h"

#define MASTER_WAIT_MS 30000 /* a master that does not answer by then is wedged */

/* Sends a request to the master (its number in *ret_seq), and waits for
 * the answer to request seq: a request whose answer is not waited for is
 * skipped by the next wait.  0 or a negative errno. */
int sandboxes_master_send(struct api_req *req, uint32_t op, uint32_t flags, const char *id,
			  uint32_t sleep_s, bool keep_alive, uint32_t *ret_seq);
int sandboxes_master_wait(struct api_req *req, uint32_t seq, struct wire_sbx_reply *ret);

/* Asks the master for op on id and waits for the answer to this request. */
int sandboxes_ask_master(struct api_req *req, uint32_t op, uint32_t flags, const char *id,
			 uint32_t sleep_s, bool keep_alive, struct wire_sbx_reply *ret);

/* Sends the error for a master's answer (or failure to answer) to what. */
int sandboxes_master_error(struct api_req *req, const char *id, const char *what, int e);

/* body plus the success and timestamp fields of every answer. */
json_t *sandboxes_ok(json_t *body);

/* Copies the table entry of id under the lock.  0, or -ENOENT. */
int sandboxes_entry(struct api_req *req, const char *id, struct sbx_slot *ret);

/* Counts a request to the agent in (deadline_ms != 0) or out (0): the idle
 * reaper leaves a sandbox so busy alone, until the latest deadline. */
void sandboxes_count(struct api_req *req, const char *id, uint64_t deadline_ms);

/*
 * Wakes or creates sandbox id and connects to its agent.  A failure of the
 * master's comes back in *ret_master (the return value is then 0); else 0
 * with *ret_conn, or -EHOSTDOWN.
 */
int sandboxes_connect(struct api_req *req, const char *id, int *ret_conn, int *ret_master);

/* Connects to the agent of uid slot slot and generation (its socket in
 * STATE/agents).  The fd, or a negative errno. */
int sandboxes_agent_connect(struct api_req *req, uint32_t slot, uint32_t generation);

/* The error for a failure to reach the agent (from_master, or e). */
int sandboxes_agent_error(struct api_req *req, const char *id, int from_master, int e);

/* A session name the caller may use: 1..SBX_SESSION_NAME_MAX of [A-Za-z0-9._-]. */
bool sandboxes_session_ok(const char *name);

/* Adds the environment every command of sandbox id starts from: the
 * defaults, HOSTNAME, then the sandbox's own variables.  0 or -ENOMEM. */
int sandboxes_base_env(struct api_req *req, const char *id, struct envlist *e);

/* Decodes a path field (what names it, for the message): relative to
 * /workspace unless absolute, into buf.  0, or the HTTP status of the 400
 * sent. */
int sandboxes_cwd(struct api_req *req, const json_t *v, const char *what, char *buf, size_t size);

/* Saves vars ({NAME: "value" | null}, checked) as sandbox id's own variables
 * and pushes them to the sessions of its agent if it runs.  0, or the HTTP
 * status of the error sent (413 past the limits, 500). */
int sandboxes_env_apply(struct api_req *req, const char *id, json_t *vars);

/* A sealed memfd holding len bytes of data, at offset 0: a writer that
 * cannot stall or die.  The fd (close-on-exec), or a negative errno. */
int sandboxes_memfd(const char *name, const void *data, size_t len);

/* Sends the 405 of a route that takes only methods ("GET, PUT"). */
int sandboxes_only(struct api_req *req, const char *methods);

/* Routes under /v1/sandboxes/{id}: rest is what follows the ID.  Each
 * returns the HTTP status sent, or 0 when rest is not one of its routes. */
int sessions_route(struct api_req *req, const char *id, const char *rest);
int files_route(struct api_req *req, const char *id, const char *rest);
int contexts_route(struct api_req *req, const char *id, const char *rest);

#endif
