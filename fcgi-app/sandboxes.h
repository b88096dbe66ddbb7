/*
 * sandboxes.h: the routes of persistent sandboxes (see sandboxes.c).
 */
#ifndef SANDBOXD_SANDBOXES_H
#define SANDBOXD_SANDBOXES_H

#include "api.h"

/* GET /v1/sandboxes.  Returns the HTTP status sent. */
int sandboxes_list(struct api_req *req);

/* Everything under /v1/sandboxes/{id}.  Returns the HTTP status sent. */
int sandboxes_route(struct api_req *req);

#endif
