/*
 * api.h: what every handler uses: the request, JSON responses and the error
 * body of API.md, timestamps, and UTF-8 clean-up of program output.
 */
#ifndef SANDBOXD_API_H
#define SANDBOXD_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "sandbox-table.h"

struct api_req {
	void *fcgx; /* FCGX_Request *, for worker.c only */
	const struct conf *conf;
	int master;		 /* socket to the master */
	int client_fd;		 /* the FastCGI connection from nginx, to watch for hang-ups */
	struct sbx_table *table; /* persistent sandboxes (read; last_active_ms written) */
	const char *method;	 /* "GET" */
	const char *path;	 /* decoded path, no query */
	const char *remote_addr; /* client address as nginx saw it */
	const char *auth;	 /* Authorization header or NULL */
	const char *content_type;
	char *body; /* NUL-terminated request body (NULL if none) */
	size_t body_len;
	char id[20]; /* request id, for the log and X-Request-Id */
};

/* Sends status with the JSON body (a reference is stolen).  Returns status. */
int api_send_json(struct api_req *req, int status, json_t *body);

/* Sends status with extra header lines (each "Name: value\r\n") and a raw body. */
int api_send_raw(struct api_req *req, int status, const char *headers, const char *body,
		 size_t len);

/*
 * Sends the error body of API.md: {code, message, context, httpStatus,
 * timestamp}.  context may be NULL (a reference is stolen).  Returns status.
 */
int api_error(struct api_req *req, int status, const char *code, json_t *context, const char *fmt,
	      ...) __attribute__((format(printf, 5, 6)));

/* api_error() with extra header lines ("Allow: GET\r\n"). */
int api_send_raw_error(struct api_req *req, int status, const char *headers, const char *code,
		       json_t *context, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * A raw response: api_raw_begin() sends the status and headers (Content-Type
 * content_type, and extra lines "Name: value\r\n"), api_raw_write() the
 * body, piece by piece.  Each returns 0, or -ECANCELED once the client is gone.
 */
int api_raw_begin(struct api_req *req, int status, const char *content_type, const char *headers);
int api_raw_write(struct api_req *req, const void *data, size_t len);

/*
 * Server-sent events (text/event-stream).  api_stream_begin() sends the
 * 200 headers (and tells nginx not to buffer); api_stream_event() sends one
 * event whose data is the JSON object given (a reference is stolen);
 * api_stream_comment() sends a comment line such as ": ping".  Each flushes,
 * and returns 0 or -ECANCELED once the client is gone.
 */
int api_stream_begin(struct api_req *req);
int api_stream_event(struct api_req *req, json_t *event);
int api_stream_comment(struct api_req *req, const char *text);

/* Builds the error body; NULL only on allocation failure. */
json_t *api_error_body(int status, const char *code, const char *message, json_t *context);

/* A new object {"success": true, "timestamp": now}; NULL on allocation failure. */
json_t *api_ok(void);

/* The time of day (CLOCK_REALTIME) in milliseconds since the epoch. */
uint64_t api_wall_ms(void);

/* Writes ms (since the epoch) as "2026-11-22T02:07:16.123Z"; a time before
 * 1970 or after 9999 as the epoch. */
void api_iso_time(int64_t ms, char buf[static 32]);

/* Writes the current UTC time as "2026-11-22T02:07:16.123Z". */
void api_timestamp(char buf[static 32]);

/* The reason phrase of an HTTP status ("Not Found"); "Unknown" if not ours. */
const char *api_reason(int status);

/*
 * Returns a malloc'd copy of buf (len bytes) that is valid UTF-8: invalid or
 * truncated sequences and NUL bytes become U+FFFD.  *ret_len gets the length.
 * NULL on allocation failure.
 */
char *api_utf8_clean(const char *buf, size_t len, size_t *ret_len);

/* Parses the body as a JSON object; on failure sends 400 INVALID_JSON and returns NULL. */
json_t *api_parse_body(struct api_req *req);

#endif
