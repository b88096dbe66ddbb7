/*
 * lang.h: the languages a one-shot run accepts, and how each one runs
 * inside a sandbox.
 */
#ifndef SANDBOXD_LANG_H
#define SANDBOXD_LANG_H

#include <stdbool.h>

enum lang { LANG_PYTHON, LANG_JAVASCRIPT, LANG_BASH, LANG__MAX };

struct lang_info {
	const char *name;	 /* canonical name in the API */
	const char *aliases[4];	 /* other accepted names, NULL-terminated */
	const char *interpreter; /* absolute path, inside the sandbox and on the host */
	const char *code_path;	 /* where the code file goes inside the sandbox */
};

/* Looks a language up by name or alias (case-sensitive); -1 if unknown. */
int lang_find(const char *name);

/* The table row of a language; l must be a valid enum lang. */
const struct lang_info *lang_get(enum lang l);

/* True if the interpreter exists on this host (checked once, then cached). */
bool lang_available(enum lang l);

/* Writes the list of canonical names ("python, javascript, bash") to buf. */
void lang_names(char *buf, unsigned size);

#endif
