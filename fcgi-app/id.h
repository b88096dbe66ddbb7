/*
 * id.h: sandbox IDs.  An ID is a DNS label, so that every ID works in a
 * preview hostname: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$, and not one of the
 * reserved names.
 */
#ifndef SANDBOXD_ID_H
#define SANDBOXD_ID_H

#include <stdbool.h>
#include <stddef.h>

/* Compiles the ID pattern; call once at start-up, before id_check().  0 or -ENOMEM/-EINVAL. */
int id_init(void);

/*
 * Returns true if id (len bytes, not necessarily NUL-terminated) is a valid
 * sandbox ID.  Otherwise sets *ret_reason to a static sentence that says why.
 */
bool id_check(const char *id, size_t len, const char **ret_reason);

#endif
