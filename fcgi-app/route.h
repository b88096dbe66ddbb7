/*
 * route.h: the routing table: which handler serves a method and path, who
 * must present an API key, and the answers for everything else (404, 405).
 */
#ifndef SANDBOXD_ROUTE_H
#define SANDBOXD_ROUTE_H

#include <stdbool.h>

#include "api.h"

/* Serves one request; returns the HTTP status sent. */
int route_dispatch(struct api_req *req);

/*
 * True if the request may proceed: a configured API key in a Bearer
 * Authorization header or, with no keys configured, a loopback client.
 */
bool route_authorized(const struct conf *conf, const char *auth, const char *remote_addr);

#endif
