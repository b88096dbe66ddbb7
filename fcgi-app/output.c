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

#define DRAIN_READS 16 /* of 64 KiB: as much as a pipe can hold */

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

	*o = (struct output){ .out_r = -1, .err_r = -1, .out_w = -1, .err_w = -1, .watch_fd = -1 };
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

/* How many bytes at the end of buf (len bytes) begin a UTF-8 sequence that
 * is not complete yet: those wait for the next chunk. */
static size_t
incomplete_tail(const char *buf, size_t len)
{
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = (unsigned char)buf[len - back];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back */
		need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		return need > back ? back : 0;
	}
	return 0;
}

/* Hands a chunk to on_chunk, holding back an incomplete trailing character. */
static int
emit(struct output *o, int stream, const char *data, size_t len)
{
	char buf[65536 + 4];
	size_t *cl = &o->carry_len[stream - 1], n = *cl, tail;

	memcpy(buf, o->carry[stream - 1], n);
	memcpy(buf + n, data, len);
	n += len;
	tail = incomplete_tail(buf, n);
	memcpy(o->carry[stream - 1], buf + n - tail, tail);
	*cl = tail;
	return n - tail ? o->on_chunk(o->stream_ctx, stream, buf, n - tail) : 0;
}

/* Reads what the pipe has, up to DRAIN_READS reads (a program writing
 * without end must not keep its caller from its timeout and its client:
 * poll says there is more); keeps up to max bytes and drops the rest. */
static int
drain(struct output *o, int fd, struct outbuf *b, int stream)
{
	char chunk[65536];

	for (int reads = 0; reads < DRAIN_READS; reads++) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		size_t keep;
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0) {
			b->eof = true;
			/* A character cut short by the end of output goes out as it is. */
			if (o->on_chunk && o->carry_len[stream - 1]) {
				r = o->on_chunk(o->stream_ctx, stream, o->carry[stream - 1],
						o->carry_len[stream - 1]);
				o->carry_len[stream - 1] = 0;
				if (r < 0)
					return r;
			}
			return 0;
		}
		keep = b->max - b->len < (size_t)n ? b->max - b->len : (size_t)n;
		if (keep < (size_t)n)
			b->truncated = true;
		if (!keep)
			continue;
		if (o->on_chunk) {
			/* Streamed: counted against the cap, never kept. */
			b->len += keep;
			r = emit(o, stream, chunk, keep);
			if (r < 0)
				return r;
			continue;
		}
		if (!b->data) {
			/* Allocated on first output: most programs print little. */
			b->data = malloc(b->max);
			if (!b->data)
				return -ENOMEM;
		}
		memcpy(b->data + b->len, chunk, keep);
		b->len += keep;
	}
	return 0;
}

int
output_pump(struct output *o, int sock, uint64_t give_up_ms, int (*on_sock)(void *ctx), void *ctx)
{
	bool done = false;
	uint64_t next_tick = o->on_tick ? output_now_ms() + o->tick_ms : UINT64_MAX;
	int r;

	while (!done || !o->out.eof || !o->err.eof) {
		struct pollfd p[4] = { { o->out.eof ? -1 : o->out_r, POLLIN, 0 },
				       { o->err.eof ? -1 : o->err_r, POLLIN, 0 },
				       { done ? -1 : sock, POLLIN, 0 },
				       { o->watch_fd, POLLRDHUP, 0 } };
		uint64_t now = output_now_ms(),
			 until = give_up_ms < next_tick ? give_up_ms : next_tick;
		int n;

		if (now >= give_up_ms)
			return -ETIMEDOUT;
		if (now >= next_tick) {
			r = o->on_tick(o->stream_ctx);
			if (r < 0)
				return r;
			next_tick = now + o->tick_ms;
			continue;
		}
		n = poll(p, 4, (int)(until - now));
		if (n < 0 && errno != EINTR)
			return -errno;
		/* Not POLLIN: the end of the request's stdin may still be unread there. */
		if (p[3].revents & (POLLRDHUP | POLLHUP | POLLERR))
			return -ECANCELED;
		if (n > 0 && o->on_tick)
			next_tick = output_now_ms() + o->tick_ms; /* idle means nothing sent */
		if (p[0].revents && (r = drain(o, o->out_r, &o->out, 1)) < 0)
			return r;
		if (p[1].revents && (r = drain(o, o->err_r, &o->err, 2)) < 0)
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

int
output_read(struct output *o, int stream)
{
	return stream == 1 ? drain(o, o->out_r, &o->out, 1) : drain(o, o->err_r, &o->err, 2);
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
