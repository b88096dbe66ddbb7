/* route.c: see route.h. */
#include <stdio.h>
#include <string.h>

#include "route.h"
#include "run.h"
#include "sandboxes.h"

struct route {
	const char *method;
	const char *path; /* exact path, or a prefix when it ends with '/' and prefix is set */
	bool prefix;
	bool open; /* served without an API key */
	route_handler handler;
};

static int
healthz(struct api_req *req)
{
	json_t *body = api_ok();

	if (body)
		json_object_set_new(body, "status", json_string("healthy"));
	return api_send_json(req, 200, body);
}

extern const unsigned char app_openapi_json[];
extern const size_t app_openapi_json_len;

/* The OpenAPI document, docs/openapi.json compiled in. */
static int
openapi(struct api_req *req)
{
	return api_send_raw(req, 200, NULL, (const char *)app_openapi_json, app_openapi_json_len);
}

static const struct route routes[] = {
	{ "GET", "/healthz", false, true, healthz },
	{ "HEAD", "/healthz", false, true, healthz },
	{ "POST", "/", false, false, run_handle },
	{ "POST", "/v1/run", false, false, run_handle },
	{ "GET", "/v1/openapi.json", false, false, openapi },
	{ "GET", "/v1/sandboxes", false, false, sandboxes_list },
	{ "GET", "/v1/sandboxes/", true, false, sandboxes_route },
	{ "PUT", "/v1/sandboxes/", true, false, sandboxes_route },
	{ "POST", "/v1/sandboxes/", true, false, sandboxes_route },
	{ "DELETE", "/v1/sandboxes/", true, false, sandboxes_route },
};

static bool
path_matches(const struct route *r, const char *path)
{
	if (r->prefix)
		return strncmp(path, r->path, strlen(r->path)) == 0 &&
		       path[strlen(r->path)] != '\0';
	return strcmp(path, r->path) == 0;
}

/* Compares without an early exit, so timing does not tell how much of a key matched. */
static bool
key_equal(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < blen; i++)
		diff |= (unsigned char)(i < alen ? a[i] : 0) ^ (unsigned char)b[i];
	return diff == 0;
}

static bool
is_loopback(const char *addr)
{
	return addr && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
			strncmp(addr, "::ffff:127.", 11) == 0);
}

bool
route_authorized(const struct conf *conf, const char *auth, const char *remote_addr)
{
	const char *tok;
	size_t len;
	bool ok = false;

	if (conf->n_api_keys == 0)
		return is_loopback(remote_addr);
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	tok = auth + 7;
	while (*tok == ' ')
		tok++;
	len = strlen(tok);
	while (len && tok[len - 1] == ' ')
		len--;
	for (uint32_t i = 0; i < conf->n_api_keys; i++)
		ok |= key_equal(tok, len, conf->api_keys[i]);
	return ok;
}

route_handler
route_resolve(struct api_req *req, int *ret_status)
{
	char allow[64] = "";
	bool path_known = false;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		if (!path_matches(r, req->path))
			continue;
		if (strcmp(r->method, req->method) != 0) {
			if (!strstr(allow, r->method)) {
				size_t n = strlen(allow);
				snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
					 r->method);
			}
			path_known = true;
			continue;
		}
		if (!r->open && !route_authorized(req->conf, req->auth, req->remote_addr)) {
			*ret_status = api_error(
				req, 401, "UNAUTHORIZED", NULL, "%s",
				req->conf->n_api_keys
					? "a valid API key is required: Authorization: Bearer <key>"
					: "no API keys are configured, so only loopback clients are served");
			return NULL;
		}
		return r->handler;
	}
	if (path_known) {
		char hdr[96];
		json_t *ctx = json_pack("{s:s, s:s}", "method", req->method, "allow", allow);

		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
		*ret_status = api_send_raw_error(req, 405, hdr, "METHOD_NOT_ALLOWED", ctx,
						 "this route does not accept that method");
		return NULL;
	}
	*ret_status =
		api_error(req, 404, "NOT_FOUND",
			  json_pack("{s:s%}", "path", req->path,
				    strlen(req->path) > 128 ? (size_t)128 : strlen(req->path)),
			  "no such route");
	return NULL;
}
