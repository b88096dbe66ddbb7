/*
 * request.h: decoding request bodies into typed structs at the boundary.
 * Pure functions of the JSON document and the configuration: the rest of
 * the code never sees a client's raw JSON.  Fuzzed (tests/fuzz).
 */
#ifndef SANDBOXD_REQUEST_H
#define SANDBOXD_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

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

#endif
