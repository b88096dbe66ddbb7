/*
 * run.h: POST / and POST /v1/run: code in a fresh, throw-away sandbox.
 */
#ifndef SANDBOXD_RUN_H
#define SANDBOXD_RUN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

/* A decoded /v1/run request; code points into the JSON document. */
struct run_req {
	const char *code;
	size_t code_len;
	int language; /* enum lang */
	uint32_t timeout_ms;
};

/* Why a request was refused: an HTTP status, an API error code and a message. */
struct api_fail {
	int status;
	const char *code;
	char message[256];
};

/*
 * Decodes and validates a /v1/run body (our own route: unknown fields are
 * refused).  Returns 0, or -EINVAL with *ret_fail filled in.
 */
int run_decode(const json_t *root, const struct conf *conf, struct run_req *ret,
	       struct api_fail *ret_fail);

/* The handler: returns the HTTP status it sent. */
int run_handle(struct api_req *req);

#endif
