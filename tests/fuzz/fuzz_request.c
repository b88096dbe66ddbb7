/*
 * fuzz_request.c: libFuzzer target for what a client controls in a run
 * request: the JSON body through run_decode(), and program output through
 * api_utf8_clean(), whose result must always be valid UTF-8 to jansson.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* api.c's senders live in worker.c, with libfcgi; nothing is sent here. */
int
api_send_json(struct api_req *req, int status, json_t *body)
{
	(void)req;
	json_decref(body);
	return status;
}

int
api_send_raw(struct api_req *req, int status, const char *headers, const char *body, size_t len)
{
	(void)req, (void)headers, (void)body, (void)len;
	return status;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf conf;
	static int ready;
	struct run_req req;
	struct api_fail fail;
	json_t *root, *s;
	size_t clen;
	char *clean;

	if (!ready) {
		if (conf_defaults(&conf) < 0)
			abort();
		ready = 1;
	}
	root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (root && json_is_object(root)) {
		memset(&fail, 0, sizeof(fail));
		if (run_decode(root, &conf, &req, &fail) == 0) {
			if (!req.code || req.code_len == 0 || req.timeout_ms == 0 ||
			    req.timeout_ms > conf.exec_timeout_max_ms)
				abort();
		} else if (!fail.code || !fail.message[0] || fail.status < 400) {
			abort();
		}
	}
	json_decref(root);

	clean = api_utf8_clean((const char *)data, size, &clen);
	if (!clean)
		abort();
	s = json_stringn(clean, clen);
	if (!s || memchr(clean, '\0', clen))
		abort();
	json_decref(s);
	free(clean);
	return 0;
}
