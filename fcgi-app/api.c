/* api.c: see api.h.  Everything here but api_send_* is free of FastCGI. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"

const char *
api_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Unknown";
}

uint64_t
api_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
api_iso_time(int64_t ms, char buf[static 32])
{
	time_t t;
	struct tm tm;
	size_t n;

	/* Past the years that four digits hold (a value from a sandbox's agent
	 * can be anything): the epoch, rather than a malformed date. */
	if (ms < 0 || ms > 253402300799999)
		ms = 0;
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%03uZ", (unsigned)(ms - (int64_t)t * 1000));
}

void
api_timestamp(char buf[static 32])
{
	api_iso_time((int64_t)api_wall_ms(), buf);
}

json_t *
api_ok(void)
{
	char ts[32];

	api_timestamp(ts);
	return json_pack("{s:b, s:s}", "success", 1, "timestamp", ts);
}

json_t *
api_error_body(int status, const char *code, const char *message, json_t *context)
{
	char ts[32];

	api_timestamp(ts);
	if (!context)
		context = json_object();
	return json_pack("{s:s, s:s, s:o, s:i, s:s}", "code", code, "message", message, "context",
			 context, "httpStatus", status, "timestamp", ts);
}

int
api_error(struct api_req *req, int status, const char *code, json_t *context, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_send_json(req, status, api_error_body(status, code, msg, context));
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if there is none. */
static size_t
utf8_seq(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;

	if (c >= 0x01 && c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

char *
api_utf8_clean(const char *buf, size_t len, size_t *ret_len)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0, o = 0;
	char *out;

	/* Each bad byte becomes three; check the worst case before multiplying. */
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);

		if (n) {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	*ret_len = o;
	return out;
}

json_t *
api_parse_body(struct api_req *req)
{
	json_error_t jerr;
	json_t *root;

	if (!req->body || req->body_len == 0) {
		api_error(req, 400, "INVALID_JSON", NULL,
			  "the request body is empty; a JSON object is required");
		return NULL;
	}
	root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		api_error(req, 400, "INVALID_JSON",
			  json_pack("{s:i, s:i}", "line", jerr.line, "column", jerr.column),
			  "the request body is not valid JSON: %s", jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		api_error(req, 400, "INVALID_JSON", NULL, "the request body must be a JSON object");
		return NULL;
	}
	return root;
}
