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
#include "run.h"
#include "sandbox.h"
#include "wire.h"

struct outbuf {
	char *data;
	size_t len;
	size_t max;
	bool truncated;
	bool eof;
};

/* Reads what the pipe has; keeps up to max bytes and drops the rest. */
static int
drain(int fd, struct outbuf *b)
{
	char chunk[65536];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		size_t keep;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0) {
			b->eof = true;
			return 0;
		}
		keep = b->max - b->len < (size_t)n ? b->max - b->len : (size_t)n;
		if (keep < (size_t)n)
			b->truncated = true;
		if (keep) {
			if (!b->data) {
				/* Allocated on first output: most runs print little. */
				b->data = malloc(b->max);
				if (!b->data)
					return -ENOMEM;
			}
			memcpy(b->data + b->len, chunk, keep);
			b->len += keep;
		}
	}
}

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

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the request through the master; fills *done and the two buffers. */
static int
execute(struct api_req *req, const struct run_req *r, struct wire_run_done *done,
	struct outbuf *out, struct outbuf *err)
{
	static uint32_t seq;
	struct wire_run msg = { .hdr = { WIRE_VERSION, WIRE_RUN, sizeof(msg) },
				.seq = ++seq,
				.language = (uint32_t)r->language,
				.timeout_ms = r->timeout_ms };
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, code = -1, fds[3], rc;
	bool have_done = false;
	/* The master kills the sandbox at timeout_ms; past this, the master is wedged. */
	uint64_t give_up = mono_ms() + r->timeout_ms + 30000;

	code = make_code_fd(r);
	if (code < 0)
		return code;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	fds[0] = code;
	fds[1] = po[1];
	fds[2] = pe[1];
	rc = wire_send(req->master, &msg, sizeof(msg), fds, 3);
	/* Only the sandbox may hold the write ends, or EOF would never come. */
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (rc < 0)
		goto out;

	while (!have_done || !out->eof || !err->eof) {
		struct pollfd p[3] = { { out->eof ? -1 : po[0], POLLIN, 0 },
				       { err->eof ? -1 : pe[0], POLLIN, 0 },
				       { have_done ? -1 : req->master, POLLIN, 0 } };
		uint64_t now = mono_ms();
		int n;

		if (now >= give_up) {
			rc = -ETIMEDOUT;
			goto out;
		}
		n = poll(p, 3, (int)(give_up - now));
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		if (p[0].revents && (rc = drain(po[0], out)) < 0)
			goto out;
		if (p[1].revents && (rc = drain(pe[0], err)) < 0)
			goto out;
		if (p[2].revents) {
			int junk[WIRE_MAX_FDS];
			unsigned nj = 0;
			ssize_t len = wire_recv(req->master, done, sizeof(*done), junk, &nj);

			for (unsigned i = 0; i < nj; i++)
				close(junk[i]);
			if (len <= 0 || wire_check(done, len, WIRE_RUN_DONE, sizeof(*done)) < 0) {
				rc = -EPIPE;
				goto out;
			}
			if (done->seq != msg.seq)
				continue; /* the answer to a request we already gave up on */
			have_done = true;
			if (done->stopped)
				done->status = -ESHUTDOWN;
			if (done->status < 0) {
				rc = 0;
				goto out;
			}
		}
	}
	rc = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	close(code);
	return rc;
}

static json_t *
text(const struct outbuf *b)
{
	size_t len;
	char *clean = api_utf8_clean(b->data ? b->data : "", b->len, &len);
	json_t *s;

	if (!clean)
		return NULL;
	s = json_stringn_nocheck(clean, len);
	free(clean);
	return s;
}

int
run_handle(struct api_req *req)
{
	struct run_req r;
	struct api_fail f;
	struct wire_run_done done = { 0 };
	struct outbuf out = { .max = req->conf->output_max_bytes },
		      err = { .max = req->conf->output_max_bytes };
	json_t *root, *body;
	int rc, status;

	root = api_parse_body(req);
	if (!root)
		return 400;
	if (run_decode(root, req->conf, &r, &f) < 0) {
		json_decref(root);
		return api_error(req, f.status, f.code, NULL, "%s", f.message);
	}
	rc = execute(req, &r, &done, &out, &err);
	json_decref(root);
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
		json_object_set_new(body, "output", text(&out));
		json_object_set_new(body, "errors", text(&err));
		json_object_set_new(body, "exitCode", json_integer(done.exit_code));
		json_object_set_new(body, "executionTime",
				    json_integer((json_int_t)(done.wall_us / 1000)));
		json_object_set_new(body, "timedOut", json_boolean(done.timed_out));
		json_object_set_new(body, "truncated",
				    json_boolean(out.truncated || err.truncated));
		json_object_set_new(body, "oomKilled", json_boolean(done.oom_killed));
		json_object_set_new(body, "signal",
				    done.signal ? json_integer(done.signal) : json_null());
	}
	status = api_send_json(req, 200, body);
out:
	free(out.data);
	free(err.data);
	return status;
}
