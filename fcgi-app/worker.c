/*
 * worker.c: the FastCGI side of a worker: accept, read the params and the
 * body with their caps, dispatch, write the response.  The only file that
 * knows libfcgi.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api.h"
#include "id.h"
#include "log.h"
#include "route.h"
#include "worker.h"

int
api_raw_begin(struct api_req *req, int status, const char *content_type, const char *headers)
{
	FCGX_Request *rq = req->fcgx;

	if (FCGX_FPrintF(rq->out,
			 "Status: %d %s\r\n"
			 "Content-Type: %s\r\n"
			 "Cache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "X-Request-Id: %s\r\n"
			 "%s"
			 "\r\n",
			 status, api_reason(status), content_type, req->id,
			 headers ? headers : "") < 0)
		return -ECANCELED;
	return 0;
}

int
api_raw_write(struct api_req *req, const void *data, size_t len)
{
	FCGX_Request *rq = req->fcgx;

	while (len) {
		int chunk = len > (1u << 30) ? 1 << 30 : (int)len;

		if (FCGX_PutStr(data, chunk, rq->out) != chunk)
			return -ECANCELED;
		data = (const char *)data + chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static void
send_response(struct api_req *req, int status, const char *headers, const char *body, size_t len)
{
	FCGX_Request *rq = req->fcgx;

	FCGX_FPrintF(rq->out,
		     "Status: %d %s\r\n"
		     "Content-Type: application/json\r\n"
		     "Cache-Control: no-store\r\n"
		     "X-Request-Id: %s\r\n"
		     "%s"
		     "\r\n",
		     status, api_reason(status), req->id, headers ? headers : "");
	if (len && strcmp(req->method, "HEAD") != 0)
		FCGX_PutStr(body, (int)len, rq->out);
}

int
api_send_raw(struct api_req *req, int status, const char *headers, const char *body, size_t len)
{
	send_response(req, status, headers, body, len);
	return status;
}

static int
send_json_headers(struct api_req *req, int status, const char *headers, json_t *body)
{
	static const char oom[] = "{\"code\":\"INTERNAL_ERROR\",\"message\":\"out of memory\","
				  "\"httpStatus\":500}\n";
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	if (!text)
		return api_send_raw(req, 500, NULL, oom, sizeof(oom) - 1);
	send_response(req, status, headers, text, strlen(text));
	FCGX_PutStr("\n", 1, ((FCGX_Request *)req->fcgx)->out);
	free(text);
	return status;
}

int
api_send_json(struct api_req *req, int status, json_t *body)
{
	return send_json_headers(req, status, NULL, body);
}

int
api_send_raw_error(struct api_req *req, int status, const char *headers, const char *code,
		   json_t *context, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return send_json_headers(req, status, headers, api_error_body(status, code, msg, context));
}

int
api_stream_begin(struct api_req *req)
{
	FCGX_Request *rq = req->fcgx;

	/* X-Accel-Buffering: nginx passes each event on as it comes. */
	if (FCGX_FPrintF(rq->out,
			 "Status: 200 OK\r\n"
			 "Content-Type: text/event-stream\r\n"
			 "Cache-Control: no-store\r\n"
			 "X-Accel-Buffering: no\r\n"
			 "X-Request-Id: %s\r\n"
			 "\r\n",
			 req->id) < 0 ||
	    FCGX_FFlush(rq->out) < 0)
		return -ECANCELED;
	return 0;
}

int
api_stream_event(struct api_req *req, json_t *event)
{
	FCGX_Request *rq = req->fcgx;
	char *text = event ? json_dumps(event, JSON_COMPACT) : NULL;
	int r = 0;

	json_decref(event);
	if (!text)
		return -ENOMEM;
	/* JSON_COMPACT output has no newline, so it fits on one data: line. */
	if (FCGX_PutStr("data: ", 6, rq->out) < 0 ||
	    FCGX_PutStr(text, (int)strlen(text), rq->out) < 0 ||
	    FCGX_PutStr("\n\n", 2, rq->out) < 0 || FCGX_FFlush(rq->out) < 0)
		r = -ECANCELED;
	free(text);
	return r;
}

int
api_stream_comment(struct api_req *req, const char *text)
{
	FCGX_Request *rq = req->fcgx;

	if (FCGX_FPrintF(rq->out, ": %s\n\n", text) < 0 || FCGX_FFlush(rq->out) < 0)
		return -ECANCELED;
	return 0;
}

/* Parses CONTENT_LENGTH strictly: digits only, no sign, no overflow. */
static int
content_length(const char *s, size_t *ret)
{
	size_t v = 0;

	if (!s || !*s) {
		*ret = 0;
		return 0;
	}
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (SIZE_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (size_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

static void
serve(FCGX_Request *rq, const struct conf *conf, struct sbx_table *table, int master,
      unsigned long nreq)
{
	struct api_req req = {
		.fcgx = rq, .conf = conf, .table = table, .master = master, .client_fd = rq->ipcFd
	};
	const char *uri;
	route_handler handler;
	size_t len;
	int status;

	snprintf(req.id, sizeof(req.id), "%x-%lx", (unsigned)getpid(), nreq);
	req.method = FCGX_GetParam("REQUEST_METHOD", rq->envp);
	uri = FCGX_GetParam("DOCUMENT_URI", rq->envp);
	if (!uri)
		uri = FCGX_GetParam("SCRIPT_NAME", rq->envp);
	req.path = uri ? uri : "/";
	req.remote_addr = FCGX_GetParam("REMOTE_ADDR", rq->envp);
	req.auth = FCGX_GetParam("HTTP_AUTHORIZATION", rq->envp);
	req.content_type = FCGX_GetParam("CONTENT_TYPE", rq->envp);
	if (!req.method)
		req.method = "GET";

	handler = route_resolve(&req, &status);
	if (!handler)
		goto done;
	if (content_length(FCGX_GetParam("CONTENT_LENGTH", rq->envp), &len) < 0) {
		status = api_error(&req, 400, "VALIDATION_FAILED", NULL, "bad Content-Length");
		goto done;
	}
	if (len > conf->max_body_bytes) {
		status = api_error(&req, 413, "PAYLOAD_TOO_LARGE",
				   json_pack("{s:I}", "limit", (json_int_t)conf->max_body_bytes),
				   "the request body is larger than %llu bytes",
				   (unsigned long long)conf->max_body_bytes);
		goto done;
	}
	if (len) {
		size_t got = 0;

		req.body = malloc(len + 1);
		if (!req.body) {
			status = api_error(&req, 500, "INTERNAL_ERROR", NULL, "out of memory");
			goto done;
		}
		while (got < len) {
			int chunk = len - got > (1u << 30) ? 1 << 30 : (int)(len - got);
			int n = FCGX_GetStr(req.body + got, chunk, rq->in);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got != len) {
			status = api_error(&req, 400, "VALIDATION_FAILED", NULL,
					   "the request body ended early");
			goto done;
		}
		req.body[len] = '\0';
		req.body_len = len;
	}
	status = handler(&req);
done:
	log_debug("req %s: %s %.200s -> %d", req.id, req.method, req.path, status);
	free(req.body);
}

static void
close_inherited(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 3)
		syscall(SYS_close_range, 3, lo - 1, 0);
	if (hi > lo + 1)
		syscall(SYS_close_range, lo + 1, hi - 1, 0);
	syscall(SYS_close_range, hi + 1, ~0u, 0);
}

int
worker_main(const struct conf *conf, struct sbx_table *table, int listen_fd, int master_sock,
	    uid_t uid, gid_t gid)
{
	FCGX_Request rq;
	unsigned long nreq = 0;

	/* Nothing of the master's but the listener and our own socket: not the other
	 * workers' sockets, not the cgroup directories. */
	close_inherited(listen_fd, master_sock);
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		log_error("worker: cannot drop to uid %u: %s", (unsigned)uid, strerror(errno));
		return 1;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() == 1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (id_init() < 0 || FCGX_Init() != 0 || FCGX_InitRequest(&rq, listen_fd, 0) != 0) {
		log_error("worker: FastCGI set-up failed");
		return 1;
	}
	while (FCGX_Accept_r(&rq) >= 0) {
		serve(&rq, conf, table, master_sock, ++nreq);
		FCGX_Finish_r(&rq);
	}
	return 0;
}
