/*
 * env.h: environment lists, and a sandbox's own variables (set by
 * POST /v1/sandboxes/{id}/env or PUT's envVars), kept in STATE/env/ID so
 * that they outlive the sandbox's sleep and sandboxd's restarts.
 */
#ifndef SANDBOXD_ENV_H
#define SANDBOXD_ENV_H

#include <jansson.h>
#include <stdbool.h>

#define ENV_MAX 512		/* strings in a list */
#define ENV_SANDBOX_MAX 128	/* a sandbox's own variables */
#define ENV_SANDBOX_BYTES 32768 /* and their bytes */

/* NAME=value strings (or a bare NAME: an unset, in an overlay), malloc'd. */
struct envlist {
	char *v[ENV_MAX + 1]; /* NULL-terminated */
	unsigned n;
};

/* [A-Za-z_][A-Za-z0-9_]* */
bool env_name_ok(const char *name);

/* Sets name to value (NULL removes it).  0, -E2BIG or -ENOMEM. */
int envlist_set(struct envlist *e, const char *name, const char *value);

/* The value of name, or NULL. */
const char *envlist_get(const struct envlist *e, const char *name);

/* Adds a bare name (replacing a value of it).  0, -E2BIG or -ENOMEM. */
int envlist_unset_mark(struct envlist *e, const char *name);

void envlist_free(struct envlist *e);

/* Adds sandbox id's own variables to e.  0, or a negative errno. */
int env_sandbox_load(const char *state_dir, const char *id, struct envlist *e);

/*
 * Merges vars ({NAME: "value" | null}, already checked) into sandbox id's own
 * variables and writes them, atomically and flushed, under a lock shared by
 * every worker.  0, -E2BIG past ENV_SANDBOX_MAX or ENV_SANDBOX_BYTES, or a
 * negative errno.
 */
int env_sandbox_update(const char *state_dir, const char *id, json_t *vars);

/* Checks an env object (at most ENV_SANDBOX_MAX names): NULL, or what is
 * wrong with it, for a 400. */
const char *env_check_object(const json_t *vars);

#endif
