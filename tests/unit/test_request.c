/*
 * test_request.c: unit tests of request handling that needs no FastCGI
 * connection: run_decode() (fcgi-app/request.c), api_utf8_clean(),
 * api_error_body(), api_ok(), api_reason() and api_timestamp()
 * (fcgi-app/api.c), and route_authorized() (fcgi-app/route.c).
 *
 * run_decode() checks that the interpreter exists on the host: these tests
 * need /usr/bin/python3, /usr/bin/node and /bin/bash, and fail when one is
 * missing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "conf.h"
#include "lang.h"
#include "route.h"
#include "run.h"

/* run_decode */

struct decode_fixture {
	struct conf conf;
	struct run_req req;
	struct api_fail fail;
	json_t *root;
};

static int
decode_setup(void **state)
{
	struct decode_fixture *f = calloc(1, sizeof(*f));

	if (!f || conf_defaults(&f->conf) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
decode_teardown(void **state)
{
	struct decode_fixture *f = *state;

	json_decref(f->root);
	conf_free(&f->conf);
	free(f);
	return 0;
}

/* Decodes root (a reference is stolen); the request or the failure lands in *f. */
static int
decode_json(struct decode_fixture *f, json_t *root)
{
	assert_non_null(root);
	json_decref(f->root);
	f->root = root;
	/* A sentinel, to see that nothing is written to ret on failure. */
	memset(&f->req, 0xa5, sizeof(f->req));
	memset(&f->fail, 0, sizeof(f->fail));
	return run_decode(f->root, &f->conf, &f->req, &f->fail);
}

/* Parses body as api_parse_body() does and decodes it. */
static int
decode(struct decode_fixture *f, const char *body)
{
	json_error_t jerr;
	json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);

	if (!root)
		fail_msg("test body is not JSON: %s: %s", body, jerr.text);
	return decode_json(f, root);
}

/* Asserts that body is refused with status and code, the message containing needle. */
static void
assert_refused(struct decode_fixture *f, const char *body, int status, const char *code,
	       const char *needle)
{
	struct run_req sentinel;

	if (decode(f, body) != -EINVAL)
		fail_msg("accepted: %s", body);
	assert_int_equal(f->fail.status, status);
	assert_non_null(f->fail.code);
	assert_string_equal(f->fail.code, code);
	if (needle && !strstr(f->fail.message, needle))
		fail_msg("message \"%s\" for %s does not contain \"%s\"", f->fail.message, body,
			 needle);
	memset(&sentinel, 0xa5, sizeof(sentinel));
	assert_memory_equal(&f->req, &sentinel, sizeof(sentinel));
}

static void
decode_accepts_good_body(void **state)
{
	struct decode_fixture *f = *state;

	assert_int_equal(decode(f, "{\"code\": \"print(1)\", \"language\": \"python\", "
				   "\"timeout\": 5000}"),
			 0);
	assert_int_equal(f->req.code_len, 8);
	assert_memory_equal(f->req.code, "print(1)", 8);
	assert_int_equal(f->req.language, LANG_PYTHON);
	assert_int_equal(f->req.timeout_ms, 5000);
}

static void
decode_defaults_come_from_conf(void **state)
{
	struct decode_fixture *f = *state;

	f->conf.exec_timeout_ms = 1234;
	assert_int_equal(decode(f, "{\"code\": \"echo hi\"}"), 0);
	assert_int_equal(f->req.language, LANG_PYTHON);
	assert_int_equal(f->req.timeout_ms, 1234);
}

static void
decode_code_length_counts_embedded_nul(void **state)
{
	struct decode_fixture *f = *state;

	/* The code goes to a file whole: its length is the JSON string's, not strlen().
	 * (api_parse_body() refuses \u0000 today; run_decode() must not rely on it.) */
	assert_int_equal(decode_json(f, json_pack("{s:s%}", "code", "a\0b", (size_t)3)), 0);
	assert_int_equal(f->req.code_len, 3);
}

static void
decode_missing_code_is_refused(void **state)
{
	struct decode_fixture *f = *state;

	assert_refused(f, "{}", 400, "VALIDATION_FAILED", "code");
	assert_refused(f, "{\"language\": \"python\", \"timeout\": 100}", 400, "VALIDATION_FAILED",
		       "code");
}

static void
decode_empty_code_is_refused(void **state)
{
	struct decode_fixture *f = *state;

	assert_refused(f, "{\"code\": \"\"}", 400, "VALIDATION_FAILED", "code");
}

static void
decode_code_not_a_string_is_refused(void **state)
{
	struct decode_fixture *f = *state;
	static const char *const bodies[] = {
		"{\"code\": 42}",      "{\"code\": null}",	 "{\"code\": true}",
		"{\"code\": [\"x\"]}", "{\"code\": {\"a\": 1}}", "{\"code\": 1.5}",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_refused(f, bodies[i], 400, "VALIDATION_FAILED", "code");
}

static void
decode_unknown_field_is_refused(void **state)
{
	struct decode_fixture *f = *state;

	assert_refused(f, "{\"code\": \"x\", \"stdin\": \"y\"}", 400, "VALIDATION_FAILED", "stdin");
	/* Field names are case-sensitive: "Code" is not "code". */
	assert_refused(f, "{\"Code\": \"x\"}", 400, "VALIDATION_FAILED", "Code");
}

static void
decode_language_names_and_aliases(void **state)
{
	struct decode_fixture *f = *state;
	static const struct {
		const char *name;
		int lang;
	} cases[] = {
		{ "python", LANG_PYTHON }, { "python3", LANG_PYTHON },
		{ "py", LANG_PYTHON },	   { "javascript", LANG_JAVASCRIPT },
		{ "js", LANG_JAVASCRIPT }, { "node", LANG_JAVASCRIPT },
		{ "bash", LANG_BASH },	   { "sh", LANG_BASH },
		{ "shell", LANG_BASH },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[128];

		snprintf(body, sizeof(body), "{\"code\": \"x\", \"language\": \"%s\"}",
			 cases[i].name);
		if (decode(f, body) != 0)
			fail_msg("language '%s' refused: %d %s", cases[i].name, f->fail.status,
				 f->fail.message);
		assert_int_equal(f->req.language, cases[i].lang);
	}
}

static void
decode_unknown_language_is_refused(void **state)
{
	struct decode_fixture *f = *state;

	assert_refused(f, "{\"code\": \"x\", \"language\": \"cobol\"}", 400, "VALIDATION_FAILED",
		       "cobol");
	/* The message lists what is accepted. */
	assert_non_null(strstr(f->fail.message, "python"));
	/* Names are case-sensitive. */
	assert_refused(f, "{\"code\": \"x\", \"language\": \"Python\"}", 400, "VALIDATION_FAILED",
		       NULL);
	assert_refused(f, "{\"code\": \"x\", \"language\": \"\"}", 400, "VALIDATION_FAILED", NULL);
	assert_refused(f, "{\"code\": \"x\", \"language\": 3}", 400, "VALIDATION_FAILED",
		       "language");
	assert_refused(f, "{\"code\": \"x\", \"language\": null}", 400, "VALIDATION_FAILED",
		       "language");
}

static void
decode_timeout_bounds(void **state)
{
	struct decode_fixture *f = *state;
	char body[128];

	f->conf.exec_timeout_max_ms = 60000;
	assert_int_equal(decode(f, "{\"code\": \"x\", \"timeout\": 1}"), 0);
	assert_int_equal(f->req.timeout_ms, 1);
	assert_int_equal(decode(f, "{\"code\": \"x\", \"timeout\": 60000}"), 0);
	assert_int_equal(f->req.timeout_ms, 60000);

	assert_refused(f, "{\"code\": \"x\", \"timeout\": 60001}", 400, "VALIDATION_FAILED",
		       "timeout");
	/* The message gives the configured maximum. */
	assert_non_null(strstr(f->fail.message, "60000"));
	assert_refused(f, "{\"code\": \"x\", \"timeout\": 0}", 400, "VALIDATION_FAILED", "timeout");
	assert_refused(f, "{\"code\": \"x\", \"timeout\": -1}", 400, "VALIDATION_FAILED",
		       "timeout");
	/* Values that would wrap to something small if truncated to 32 bits. */
	assert_refused(f, "{\"code\": \"x\", \"timeout\": 4294967297}", 400, "VALIDATION_FAILED",
		       "timeout");
	snprintf(body, sizeof(body), "{\"code\": \"x\", \"timeout\": %lld}", (long long)INT64_MIN);
	assert_refused(f, body, 400, "VALIDATION_FAILED", "timeout");
}

static void
decode_timeout_must_be_an_integer(void **state)
{
	struct decode_fixture *f = *state;
	static const char *const bodies[] = {
		"{\"code\": \"x\", \"timeout\": 1000.0}",
		"{\"code\": \"x\", \"timeout\": 1.5}",
		"{\"code\": \"x\", \"timeout\": \"1000\"}",
		"{\"code\": \"x\", \"timeout\": true}",
		"{\"code\": \"x\", \"timeout\": null}",
		"{\"code\": \"x\", \"timeout\": [1000]}",
		"{\"code\": \"x\", \"timeout\": 1e3}",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_refused(f, bodies[i], 400, "VALIDATION_FAILED", "timeout");
}

static void
decode_not_an_object_has_no_code(void **state)
{
	struct decode_fixture *f = *state;

	assert_refused(f, "[\"code\"]", 400, "VALIDATION_FAILED", "code");
}

/* api_utf8_clean */

#define FFFD "\xef\xbf\xbd"

static char *
clean(const char *in, size_t len, size_t *ret_len)
{
	char *out = api_utf8_clean(in, len, ret_len);

	assert_non_null(out);
	/* Always NUL-terminated at the reported length. */
	assert_int_equal(out[*ret_len], '\0');
	return out;
}

static void
assert_clean_unchanged(const char *in, size_t len)
{
	size_t olen = (size_t)-1;
	char *out = clean(in, len, &olen);

	assert_int_equal(olen, len);
	assert_memory_equal(out, in, len);
	free(out);
}

/*
 * Asserts that prefix + bad + suffix comes out as prefix, then one to
 * strlen(bad) replacement characters, then suffix: the bad bytes are all
 * gone, and no good byte around them is lost.
 */
static void
assert_clean_replaced(const char *prefix, const char *bad, size_t badlen, const char *suffix)
{
	char in[64];
	size_t pl = strlen(prefix), sl = strlen(suffix), olen, k;
	char *out;

	assert_true(pl + badlen + sl <= sizeof(in));
	memcpy(in, prefix, pl);
	memcpy(in + pl, bad, badlen);
	memcpy(in + pl + badlen, suffix, sl);
	out = clean(in, pl + badlen + sl, &olen);
	assert_true(olen >= pl + 3 + sl);
	assert_memory_equal(out, prefix, pl);
	assert_memory_equal(out + olen - sl, suffix, sl);
	k = olen - pl - sl;
	if (k % 3 != 0 || k / 3 > badlen)
		fail_msg("%zu bytes between prefix and suffix for %zu bad bytes", k, badlen);
	for (size_t i = 0; i < k; i += 3)
		if (memcmp(out + pl + i, FFFD, 3) != 0)
			fail_msg("byte %zu of the replacement is not U+FFFD", i);
	free(out);
}

static void
utf8_clean_keeps_ascii(void **state)
{
	static const char text[] = "hello, world\n\ttab ~!@#$%^&*()_+{}|:\"<>?\x7f\x01";

	(void)state;
	assert_clean_unchanged(text, sizeof(text) - 1);
}

static void
utf8_clean_keeps_valid_multibyte(void **state)
{
	/* Each boundary of RFC 3629's table, plus ordinary text. */
	static const char *const ok[] = {
		"h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e", /* héllo € 𝄞 */
		"\xc2\x80",				      /* U+0080 */
		"\xdf\xbf",				      /* U+07FF */
		"\xe0\xa0\x80",				      /* U+0800 */
		"\xed\x9f\xbf",				      /* U+D7FF, below the surrogates */
		"\xee\x80\x80",				      /* U+E000, above them */
		"\xef\xbf\xbf",				      /* U+FFFF */
		"\xf0\x90\x80\x80",			      /* U+10000 */
		"\xf4\x8f\xbf\xbf",			      /* U+10FFFF, the last code point */
		FFFD,					      /* U+FFFD itself */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_clean_unchanged(ok[i], strlen(ok[i]));
}

static void
utf8_clean_empty_input(void **state)
{
	size_t olen = 99;
	char *out = clean("", 0, &olen);

	(void)state;
	assert_int_equal(olen, 0);
	free(out);
}

static void
utf8_clean_replaces_each_invalid_byte(void **state)
{
	/* Bytes that can never start a sequence: one byte in, exactly one U+FFFD out. */
	static const unsigned char bad[] = { 0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xf8, 0xfe, 0xff };

	(void)state;
	for (size_t i = 0; i < sizeof(bad); i++) {
		char in[3] = { 'a', (char)bad[i], 'b' };
		size_t olen;
		char *out = clean(in, 3, &olen);

		assert_int_equal(olen, 5);
		assert_memory_equal(out, "a" FFFD "b", 5);
		free(out);
	}
}

static void
utf8_clean_replaces_overlong_encodings(void **state)
{
	(void)state;
	/* "/" and NUL as overlong forms: the classic path-traversal and C-string tricks. */
	assert_clean_replaced("a", "\xc0\xaf", 2, "b");
	assert_clean_replaced("a", "\xc0\x80", 2, "b");
	assert_clean_replaced("a", "\xc1\xbf", 2, "b");
	assert_clean_replaced("a", "\xe0\x80\xaf", 3, "b");
	assert_clean_replaced("a", "\xe0\x9f\xbf", 3, "b");
	assert_clean_replaced("a", "\xf0\x80\x80\xaf", 4, "b");
	assert_clean_replaced("a", "\xf0\x8f\xbf\xbf", 4, "b");
}

static void
utf8_clean_replaces_surrogates_and_beyond_max(void **state)
{
	(void)state;
	assert_clean_replaced("a", "\xed\xa0\x80", 3, "b");		/* U+D800 */
	assert_clean_replaced("a", "\xed\xbf\xbf", 3, "b");		/* U+DFFF */
	assert_clean_replaced("a", "\xed\xa0\xbd\xed\xb8\x80", 6, "b"); /* CESU-8 pair */
	assert_clean_replaced("a", "\xf4\x90\x80\x80", 4, "b");		/* U+110000 */
	assert_clean_replaced("a", "\xf7\xbf\xbf\xbf", 4, "b");
}

static void
utf8_clean_replaces_truncated_sequences(void **state)
{
	(void)state;
	/* At the very end of the buffer: nothing may be read past it. */
	assert_clean_replaced("ab", "\xc3", 1, "");
	assert_clean_replaced("ab", "\xe2\x82", 2, "");
	assert_clean_replaced("ab", "\xf0\x9f\x98", 3, "");
	/* Cut short by an ASCII byte, which must survive. */
	assert_clean_replaced("a", "\xe2\x82", 2, "Z");
	assert_clean_replaced("a", "\xf0\x9f", 2, "Zz");
	/* A lone continuation byte after a valid sequence. */
	assert_clean_replaced("\xc3\xa9", "\xa9", 1, "x");
}

static void
utf8_clean_replaces_nul(void **state)
{
	size_t olen;
	char *out = clean("a\0b\0", 4, &olen);

	(void)state;
	assert_int_equal(olen, 8);
	assert_memory_equal(out, "a" FFFD "b" FFFD, 8);
	free(out);
}

static void
utf8_clean_refuses_overflowing_length(void **state)
{
	size_t olen = 7;

	(void)state;
	/* len * 3 would wrap: refused before anything is read. */
	assert_null(api_utf8_clean("x", SIZE_MAX, &olen));
	assert_null(api_utf8_clean("x", SIZE_MAX / 3 + 1, &olen));
	assert_int_equal(olen, 7);
}

/* api_error_body, api_ok, api_timestamp, api_reason */

/* Asserts that ts looks like "2026-11-22T02:07:16.123Z" and is close to now. */
static void
assert_timestamp(const char *ts)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	struct tm tm = { 0 };
	time_t t, now = time(NULL);

	assert_int_equal(strlen(ts), strlen(shape));
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (ts[i] < '0' || ts[i] > '9') : ts[i] != shape[i])
			fail_msg("timestamp \"%s\" differs from %s at %zu", ts, shape, i);
	assert_true(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	/* UTC, not local time: within a minute of now either way. */
	assert_true(t >= now - 60 && t <= now + 60);
}

static void
timestamp_format_is_utc_iso8601_millis(void **state)
{
	char ts[32];

	(void)state;
	memset(ts, 'x', sizeof(ts));
	api_timestamp(ts);
	assert_timestamp(ts);
}

static void
error_body_shape(void **state)
{
	json_t *body = api_error_body(404, "NOT_FOUND", "no such route", NULL);
	json_t *v;

	(void)state;
	assert_non_null(body);
	assert_true(json_is_object(body));
	assert_int_equal(json_object_size(body), 5);
	v = json_object_get(body, "code");
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), "NOT_FOUND");
	v = json_object_get(body, "message");
	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), "no such route");
	v = json_object_get(body, "context");
	assert_true(json_is_object(v));
	assert_int_equal(json_object_size(v), 0);
	v = json_object_get(body, "httpStatus");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), 404);
	v = json_object_get(body, "timestamp");
	assert_true(json_is_string(v));
	assert_timestamp(json_string_value(v));
	json_decref(body);
}

static void
error_body_keeps_context(void **state)
{
	json_t *ctx = json_pack("{s:s, s:i}", "path", "/nope", "line", 3);
	json_t *body, *v;

	(void)state;
	assert_non_null(ctx);
	body = api_error_body(400, "INVALID_JSON", "bad", ctx);
	assert_non_null(body);
	v = json_object_get(body, "context");
	assert_ptr_equal(v, ctx);
	/* The reference was stolen: only the body holds the context now. */
	assert_int_equal(ctx->refcount, 1);
	assert_string_equal(json_string_value(json_object_get(v, "path")), "/nope");
	assert_int_equal(json_integer_value(json_object_get(body, "httpStatus")), 400);
	json_decref(body);
}

static void
ok_body_shape(void **state)
{
	json_t *body = api_ok();

	(void)state;
	assert_non_null(body);
	assert_int_equal(json_object_size(body), 2);
	assert_true(json_is_true(json_object_get(body, "success")));
	assert_timestamp(json_string_value(json_object_get(body, "timestamp")));
	json_decref(body);
}

static void
reason_phrases(void **state)
{
	static const struct {
		int status;
		const char *reason;
	} cases[] = {
		{ 200, "OK" },
		{ 201, "Created" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 409, "Conflict" },
		{ 410, "Gone" },
		{ 413, "Content Too Large" },
		{ 429, "Too Many Requests" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
		{ 0, "Unknown" },
		{ -1, "Unknown" },
		{ 418, "Unknown" },
		{ 999, "Unknown" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(api_reason(cases[i].status), cases[i].reason);
}

/* route_authorized */

#define KEY1 "k1-0123456789abcdef"
#define KEY2 "k2-ZYXWVUTSRQPONMLK"

static int
auth_setup(void **state)
{
	struct conf *c = calloc(1, sizeof(*c));

	if (!c || conf_defaults(c) < 0) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int
auth_teardown(void **state)
{
	conf_free(*state);
	free(*state);
	return 0;
}

/* Configures KEY1 and KEY2 through the real parser. */
static void
with_keys(struct conf *c)
{
	static const char text[] = "api_keys = " KEY1 ", " KEY2 "\n";
	char err[256];

	assert_int_equal(conf_parse(c, text, sizeof(text) - 1, err, sizeof(err)), 0);
	assert_int_equal(c->n_api_keys, 2);
}

static void
auth_no_keys_allows_loopback(void **state)
{
	struct conf *c = *state;
	static const char *const addrs[] = { "127.0.0.1", "127.1.2.3", "127.255.255.254", "::1",
					     "::ffff:127.0.0.1" };

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		if (!route_authorized(c, NULL, addrs[i]))
			fail_msg("loopback %s refused", addrs[i]);
		/* A header does not matter without keys. */
		assert_true(route_authorized(c, "Bearer whatever", addrs[i]));
	}
}

static void
auth_no_keys_refuses_other_addresses(void **state)
{
	struct conf *c = *state;
	static const char *const addrs[] = {
		"10.0.0.1",
		"192.168.1.1",
		"1.2.3.4",
		"0.0.0.0",
		"::",
		"::2",
		"::10",
		"::1:1",
		"127",
		"1127.0.0.1",
		"::ffff:10.0.0.1",
		"2001:db8::1",
		"fe80::1",
		"",
		"::ffff:128.0.0.1",
	};

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		if (route_authorized(c, NULL, addrs[i]))
			fail_msg("non-loopback \"%s\" allowed", addrs[i]);
}

static void
auth_no_keys_refuses_null_address(void **state)
{
	struct conf *c = *state;

	assert_false(route_authorized(c, NULL, NULL));
	assert_false(route_authorized(c, "Bearer " KEY1, NULL));
}

static void
auth_key_accepted(void **state)
{
	struct conf *c = *state;

	with_keys(c);
	assert_true(route_authorized(c, "Bearer " KEY1, "203.0.113.9"));
	assert_true(route_authorized(c, "Bearer " KEY2, "203.0.113.9"));
	assert_true(route_authorized(c, "Bearer " KEY1, NULL));
}

static void
auth_wrong_key_refused(void **state)
{
	struct conf *c = *state;

	with_keys(c);
	assert_false(route_authorized(c, "Bearer k1-0123456789abcdeX", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer K1-0123456789ABCDEF", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer " KEY1 "," KEY2, "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer " KEY1 " " KEY2, "203.0.113.9"));
}

static void
auth_prefix_or_extension_of_key_refused(void **state)
{
	struct conf *c = *state;

	with_keys(c);
	assert_false(route_authorized(c, "Bearer k1-0123456789abcde", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer k1", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer " KEY1 "x", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer x" KEY1, "203.0.113.9"));
}

static void
auth_missing_or_malformed_header_refused(void **state)
{
	struct conf *c = *state;

	with_keys(c);
	assert_false(route_authorized(c, NULL, "203.0.113.9"));
	assert_false(route_authorized(c, "", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer ", "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer    ", "203.0.113.9"));
	assert_false(route_authorized(c, KEY1, "203.0.113.9"));
	assert_false(route_authorized(c, "Basic " KEY1, "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer:" KEY1, "203.0.113.9"));
	assert_false(route_authorized(c, "Bearer" KEY1, "203.0.113.9"));
}

static void
auth_with_keys_loopback_needs_a_key(void **state)
{
	struct conf *c = *state;

	with_keys(c);
	assert_false(route_authorized(c, NULL, "127.0.0.1"));
	assert_false(route_authorized(c, NULL, "::1"));
	assert_true(route_authorized(c, "Bearer " KEY1, "127.0.0.1"));
}

static void
auth_scheme_is_case_insensitive(void **state)
{
	struct conf *c = *state;

	/* RFC 7235 section 2.1: the auth-scheme is a case-insensitive token. */
	with_keys(c);
	assert_true(route_authorized(c, "bearer " KEY1, "203.0.113.9"));
	assert_true(route_authorized(c, "BEARER " KEY1, "203.0.113.9"));
	assert_true(route_authorized(c, "BeArEr " KEY2, "203.0.113.9"));
}

static void
auth_extra_spaces_are_tolerated(void **state)
{
	struct conf *c = *state;

	/* RFC 7235: 1*SP between scheme and credentials; trailing OWS is not part of the key. */
	with_keys(c);
	assert_true(route_authorized(c, "Bearer    " KEY1, "203.0.113.9"));
	assert_true(route_authorized(c, "Bearer " KEY1 "   ", "203.0.113.9"));
	assert_true(route_authorized(c, "Bearer   " KEY2 "  ", "203.0.113.9"));
	/* Spaces inside the key still make it a different key. */
	assert_false(route_authorized(c, "Bearer k1-01234 56789abcdef", "203.0.113.9"));
}

#define D(name) cmocka_unit_test_setup_teardown(name, decode_setup, decode_teardown)
#define A(name) cmocka_unit_test_setup_teardown(name, auth_setup, auth_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		D(decode_accepts_good_body),
		D(decode_defaults_come_from_conf),
		D(decode_code_length_counts_embedded_nul),
		D(decode_missing_code_is_refused),
		D(decode_empty_code_is_refused),
		D(decode_code_not_a_string_is_refused),
		D(decode_unknown_field_is_refused),
		D(decode_language_names_and_aliases),
		D(decode_unknown_language_is_refused),
		D(decode_timeout_bounds),
		D(decode_timeout_must_be_an_integer),
		D(decode_not_an_object_has_no_code),
		cmocka_unit_test(utf8_clean_keeps_ascii),
		cmocka_unit_test(utf8_clean_keeps_valid_multibyte),
		cmocka_unit_test(utf8_clean_empty_input),
		cmocka_unit_test(utf8_clean_replaces_each_invalid_byte),
		cmocka_unit_test(utf8_clean_replaces_overlong_encodings),
		cmocka_unit_test(utf8_clean_replaces_surrogates_and_beyond_max),
		cmocka_unit_test(utf8_clean_replaces_truncated_sequences),
		cmocka_unit_test(utf8_clean_replaces_nul),
		cmocka_unit_test(utf8_clean_refuses_overflowing_length),
		cmocka_unit_test(timestamp_format_is_utc_iso8601_millis),
		cmocka_unit_test(error_body_shape),
		cmocka_unit_test(error_body_keeps_context),
		cmocka_unit_test(ok_body_shape),
		cmocka_unit_test(reason_phrases),
		A(auth_no_keys_allows_loopback),
		A(auth_no_keys_refuses_other_addresses),
		A(auth_no_keys_refuses_null_address),
		A(auth_key_accepted),
		A(auth_wrong_key_refused),
		A(auth_prefix_or_extension_of_key_refused),
		A(auth_missing_or_malformed_header_refused),
		A(auth_with_keys_loopback_needs_a_key),
		A(auth_scheme_is_case_insensitive),
		A(auth_extra_spaces_are_tolerated),
	};

	/* A local time zone five hours from UTC (a POSIX TZ, no tzdata needed), so that
	 * timestamps made with local time instead of UTC fail the tests. */
	if (setenv("TZ", "SBX+5", 1) < 0)
		return 1;
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
