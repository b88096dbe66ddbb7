/*
 * run.h: POST / and POST /v1/run: code in a fresh, throw-away sandbox.
 */
#ifndef SANDBOXD_RUN_H
#define SANDBOXD_RUN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "request.h"

/* The handler: returns the HTTP status it sent. */
int run_handle(struct api_req *req);

#endif
