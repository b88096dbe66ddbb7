/*
 * run.c: one-shot runs.  The worker validates the request, puts the code in
 * a sealed memfd and asks the master for a sandbox, handing it the code and
 * the write ends of two pipes; it reads the program's output itself, with a
 * cap, while the master watches the clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lang.h"
#include "log.h"
#include "output.h"
#include "run.h"
#include "sandbox.h"
#include "wire.h"

static int
make_code_fd(const struct run_req *r)
{
	size_t off = 0;
	int fd = memfd_create("code", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	while (off < r->code_len) {
		ssize_t n = write(fd, r->code + off, r->code_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -EIO;
		}
		off += (size_t)n;
	}
	/* Sealed: the master and the sandbox read what was validated here, nothing else. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* The master's answer, waited for by output_pump(). */
struct wait_done {
	int master;
	uint32_t seq;
	struct wire_run_done *done;
};

static int
on_master(void *ctx)
{
	struct wait_done *w = ctx;
	union {
		struct wire_run_done d;
		char raw[256];
	} in;
	int junk[WIRE_MAX_FDS];
	unsigned nj = 0;
	ssize_t len = wire_recv(w->master, &in, sizeof(in), junk, &nj);

	for (unsigned i = 0; i < nj; i++)
		close(junk[i]);
	if (len <= 0)
		return -EPIPE;
	/* A late answer to a request we already gave up on, of whatever kind. */
	if (wire_check(&in, len, WIRE_RUN_DONE, sizeof(in.d)) < 0 || in.d.seq != w->seq)
		return 0;
	*w->done = in.d;
	if (w->done->stopped)
		w->done->status = -ESHUTDOWN;
	/* A refusal comes with no output: the pipes' write ends were closed with
	 * the master's copies, so they are at end-of-file too. */
	return 1;
}

/* Runs the request through the master; fills *done and the output. */
static int
execute(struct api_req *req, const struct run_req *r, struct wire_run_done *done, struct output *o)
{
	static uint32_t seq;
	struct wire_run msg = { .hdr = { WIRE_VERSION, WIRE_RUN, sizeof(msg) },
				.seq = ++seq,
				.language = (uint32_t)r->language,
				.timeout_ms = r->timeout_ms };
	struct wait_done w = { req->master, msg.seq, done };
	int code, fds[3], rc;

	code = make_code_fd(r);
	if (code < 0)
		return code;
	fds[0] = code;
	fds[1] = o->out_w;
	fds[2] = o->err_w;
	rc = wire_send(req->master, &msg, sizeof(msg), fds, 3);
	output_handed(o);
	close(code);
	if (rc < 0)
		return rc;
	/* The master kills the sandbox at timeout_ms; past this, the master is wedged. */
	rc = output_pump(o, req->master, output_now_ms() + r->timeout_ms + 30000, on_master, &w);
	if (rc == -ECANCELED) {
		/* The client went away: have the run killed now rather than at its
		 * timeout, and take its answer, so that the next request starts clean. */
		struct wire_run_cancel c = { .hdr = { WIRE_VERSION, WIRE_RUN_CANCEL, sizeof(c) },
					     .seq = msg.seq };

		if (wire_send(req->master, &c, sizeof(c), NULL, 0) == 0) {
			o->watch_fd = -1;
			output_pump(o, req->master, output_now_ms() + 30000, on_master, &w);
		}
	}
	return rc;
}

int
run_handle(struct api_req *req)
{
	struct run_req r;
	struct api_fail f;
	struct wire_run_done done = { 0 };
	struct output o;
	json_t *root, *body;
	int rc, status;

	root = api_parse_body(req);
	if (!root)
		return 400;
	if (run_decode(root, req->conf, &r, &f) < 0) {
		json_decref(root);
		return api_error(req, f.status, f.code, NULL, "%s", f.message);
	}
	rc = output_open(&o, req->conf->output_max_bytes);
	/* A client that goes away takes its run with it. */
	o.watch_fd = req->client_fd;
	if (rc == 0)
		rc = execute(req, &r, &done, &o);
	json_decref(root);
	if (rc == -ECANCELED) {
		status = 499; /* nobody to answer: nginx's "client closed request" */
		goto out;
	}
	if (rc < 0 || done.status < 0) {
		int e = rc < 0 ? rc : done.status;

		if (e == -EAGAIN)
			status = api_error(req, 503, "CAPACITY_EXCEEDED", NULL,
					   "every sandbox slot is busy; retry shortly");
		else if (e == -ESHUTDOWN)
			status =
				api_error(req, 503, "SERVICE_UNAVAILABLE", NULL,
					  "sandboxd is stopping; the run was ended; retry shortly");
		else if (done.setup_step)
			status = api_error(req, 500, "INTERNAL_ERROR",
					   json_pack("{s:s, s:s}", "step",
						     sbx_step_name((enum sbx_step)done.setup_step),
						     "error", strerror(done.setup_err)),
					   "the sandbox could not be set up");
		else
			status = api_error(req, 500, "INTERNAL_ERROR", NULL,
					   "the run failed inside sandboxd: %s", strerror(-e));
		if (status == 500)
			log_error("req %s: run failed: %s (setup step %s: %s)", req->id,
				  strerror(-e), sbx_step_name((enum sbx_step)done.setup_step),
				  strerror(done.setup_err));
		goto out;
	}
	body = api_ok();
	if (body) {
		json_object_set_new(body, "success",
				    json_boolean(done.exit_code == 0 && !done.timed_out));
		json_object_set_new(body, "output", output_text(&o.out));
		json_object_set_new(body, "errors", output_text(&o.err));
		json_object_set_new(body, "exitCode", json_integer(done.exit_code));
		json_object_set_new(body, "executionTime",
				    json_integer((json_int_t)(done.wall_us / 1000)));
		json_object_set_new(body, "timedOut", json_boolean(done.timed_out));
		json_object_set_new(body, "truncated",
				    json_boolean(o.out.truncated || o.err.truncated));
		json_object_set_new(body, "oomKilled", json_boolean(done.oom_killed));
		json_object_set_new(body, "signal",
				    done.signal ? json_integer(done.signal) : json_null());
	}
	status = api_send_json(req, 200, body);
out:
	output_close(&o);
	return status;
}
