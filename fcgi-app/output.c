/* output.c: see output.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "output.h"

uint64_t
output_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
output_open(struct output *o, size_t max)
{
	int po[2], pe[2];

	*o = (struct output){ .out_r = -1, .err_r = -1, .out_w = -1, .err_w = -1 };
	o->out.max = o->err.max = max;
	if (pipe2(po, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		int r = -errno;

		close(po[0]);
		close(po[1]);
		return r;
	}
	o->out_r = po[0];
	o->out_w = po[1];
	o->err_r = pe[0];
	o->err_w = pe[1];
	fcntl(o->out_r, F_SETFL, O_NONBLOCK);
	fcntl(o->err_r, F_SETFL, O_NONBLOCK);
	return 0;
}

void
output_handed(struct output *o)
{
	if (o->out_w >= 0)
		close(o->out_w);
	if (o->err_w >= 0)
		close(o->err_w);
	o->out_w = o->err_w = -1;
}

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
				/* Allocated on first output: most programs print little. */
				b->data = malloc(b->max);
				if (!b->data)
					return -ENOMEM;
			}
			memcpy(b->data + b->len, chunk, keep);
			b->len += keep;
		}
	}
}

int
output_pump(struct output *o, int sock, uint64_t give_up_ms, int (*on_sock)(void *ctx), void *ctx)
{
	bool done = false;
	int r;

	while (!done || !o->out.eof || !o->err.eof) {
		struct pollfd p[3] = { { o->out.eof ? -1 : o->out_r, POLLIN, 0 },
				       { o->err.eof ? -1 : o->err_r, POLLIN, 0 },
				       { done ? -1 : sock, POLLIN, 0 } };
		uint64_t now = output_now_ms();

		if (now >= give_up_ms)
			return -ETIMEDOUT;
		if (poll(p, 3, (int)(give_up_ms - now)) < 0 && errno != EINTR)
			return -errno;
		if (p[0].revents && (r = drain(o->out_r, &o->out)) < 0)
			return r;
		if (p[1].revents && (r = drain(o->err_r, &o->err)) < 0)
			return r;
		if (p[2].revents) {
			r = on_sock(ctx);
			if (r < 0)
				return r;
			done = r == 1;
		}
	}
	return 0;
}

void
output_close(struct output *o)
{
	output_handed(o);
	if (o->out_r >= 0)
		close(o->out_r);
	if (o->err_r >= 0)
		close(o->err_r);
	o->out_r = o->err_r = -1;
	free(o->out.data);
	free(o->err.data);
	o->out.data = o->err.data = NULL;
}

json_t *
output_text(const struct outbuf *b)
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
