/*
 * route.h: the routing table: which handler serves a method and path, who
 * must present an API key, and the answers for everything else (404, 405).
 */
#ifndef SANDBOXD_ROUTE_H
#define SANDBOXD_ROUTE_H

#include <stdbool.h>

#include "api.h"

/* A route's handler: serves the request and returns the HTTP status it sent. */
typedef int (*route_handler)(struct api_req *req);

/*
 * Finds the handler for the request's method and path and checks the API
 * key, before the body is read: a client without a key costs no body.
 * Returns the handler, or NULL after sending 404, 405 or 401 (its status in
 * *ret_status).
 */
route_handler route_resolve(struct api_req *req, int *ret_status);

/*
 * True if the request may proceed: a configured API key in a Bearer
 * Authorization header or, with no keys configured, a loopback client.
 */
bool route_authorized(const struct conf *conf, const char *auth, const char *remote_addr);

#endif
