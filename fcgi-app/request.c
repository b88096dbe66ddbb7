/* request.c: see request.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lang.h"
#include "request.h"

static int
refuse(struct api_fail *f, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	f->status = status;
	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
run_decode(const json_t *root, const struct conf *conf, struct run_req *ret,
	   struct api_fail *ret_fail)
{
	struct run_req r = { .language = LANG_PYTHON, .timeout_ms = conf->exec_timeout_ms };
	const char *key;
	json_t *val;
	bool have_code = false;

	json_object_foreach((json_t *)root, key, val)
	{
		if (strcmp(key, "code") == 0) {
			if (!json_is_string(val))
				return refuse(ret_fail, 400, "VALIDATION_FAILED",
					      "'code' must be a string");
			r.code = json_string_value(val);
			r.code_len = json_string_length(val);
			have_code = true;
		} else if (strcmp(key, "language") == 0) {
			char names[64];

			lang_names(names, sizeof(names));
			if (!json_is_string(val))
				return refuse(ret_fail, 400, "VALIDATION_FAILED",
					      "'language' must be a string: one of %s", names);
			r.language = lang_find(json_string_value(val));
			if (r.language < 0)
				return refuse(ret_fail, 400, "VALIDATION_FAILED",
					      "unknown language '%.32s'; use one of %s",
					      json_string_value(val), names);
		} else if (strcmp(key, "timeout") == 0) {
			json_int_t t;

			if (!json_is_integer(val) || (t = json_integer_value(val)) < 1 ||
			    t > (json_int_t)conf->exec_timeout_max_ms)
				return refuse(
					ret_fail, 400, "VALIDATION_FAILED",
					"'timeout' must be a whole number of milliseconds from 1 to %u",
					conf->exec_timeout_max_ms);
			r.timeout_ms = (uint32_t)t;
		} else {
			return refuse(
				ret_fail, 400, "VALIDATION_FAILED",
				"unknown field '%.64s'; this route takes code, language and timeout",
				key);
		}
	}
	if (!have_code)
		return refuse(ret_fail, 400, "VALIDATION_FAILED", "'code' is required");
	if (r.code_len == 0)
		return refuse(ret_fail, 400, "VALIDATION_FAILED", "'code' is empty");
	if (!lang_available(r.language))
		return refuse(ret_fail, 501, "LANGUAGE_NOT_AVAILABLE",
			      "%s is not installed on this host (%s is missing)",
			      lang_get(r.language)->name, lang_get(r.language)->interpreter);
	*ret = r;
	return 0;
}
