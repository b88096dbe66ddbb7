/* id.c: see id.h.  The pattern is compiled once, with a match limit. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <string.h>

#include "id.h"

#define ID_MAX 63

static pcre2_code *id_re;
static pcre2_match_context *id_mctx;

int
id_init(void)
{
	int err;
	PCRE2_SIZE off;

	if (id_re)
		return 0;
	id_re = pcre2_compile((PCRE2_SPTR) "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
			      PCRE2_ZERO_TERMINATED, PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK,
			      &err, &off, NULL);
	if (!id_re)
		return -EINVAL;
	id_mctx = pcre2_match_context_create(NULL);
	if (!id_mctx)
		return -ENOMEM;
	pcre2_set_match_limit(id_mctx, 10000);
	return 0;
}

bool
id_check(const char *id, size_t len, const char **ret_reason)
{
	static const char *const reserved[] = { "www", "api", "admin", "root", "system" };
	pcre2_match_data *md;
	int rc;

	if (len == 0 || len > ID_MAX) {
		*ret_reason = "a sandbox ID is 1 to 63 characters long";
		return false;
	}
	md = pcre2_match_data_create(1, NULL);
	if (!md) {
		*ret_reason = "out of memory";
		return false;
	}
	rc = pcre2_match(id_re, (PCRE2_SPTR)id, len, 0, 0, md, id_mctx);
	pcre2_match_data_free(md);
	if (rc < 0) {
		*ret_reason = "a sandbox ID is lowercase letters, digits and '-', starting and "
			      "ending with a letter or digit (a DNS label)";
		return false;
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strlen(reserved[i]) == len && memcmp(id, reserved[i], len) == 0) {
			*ret_reason = "www, api, admin, root and system are reserved";
			return false;
		}
	return true;
}
