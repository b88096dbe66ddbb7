/*
 * output.h: a program's stdout and stderr, captured by a worker through two
 * pipes whose write ends go to the sandbox.  Each stream keeps up to a cap
 * and reads and drops the rest, so a program that writes a lot is never
 * blocked on a full pipe.
 */
#ifndef SANDBOXD_OUTPUT_H
#define SANDBOXD_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outbuf {
	char *data;	/* allocated on the first byte */
	size_t len;	/* bytes kept */
	size_t max;	/* the cap */
	bool truncated; /* bytes past the cap were dropped */
	bool eof;
};

struct output {
	int out_r, err_r; /* read ends, non-blocking */
	int out_w, err_w; /* write ends, until output_handed() */
	struct outbuf out, err;
	/* Streaming (optional): each kept chunk goes to on_chunk as it is read
	 * (stream 1 stdout, 2 stderr), cut only between UTF-8 characters, and
	 * nothing is kept in out/err.  on_tick runs every tick_ms while idle. */
	int (*on_chunk)(void *ctx, int stream, const char *data, size_t len);
	int (*on_tick)(void *ctx);
	void *stream_ctx;
	uint32_t tick_ms;
	char carry[2][4]; /* an incomplete UTF-8 sequence held back, per stream */
	size_t carry_len[2];
	/* >= 0: nginx's connection; its hang-up (nginx closes it when the client
	 * goes away) ends the pump with -ECANCELED.  output_open() sets -1. */
	int watch_fd;
};

/* Makes the pipes; max is the cap of each stream.  0 or a negative errno. */
int output_open(struct output *o, size_t max);

/* Closes our copies of the write ends once they are handed over: only the
 * sandbox may hold them, or end-of-file would never come. */
void output_handed(struct output *o);

/*
 * Reads both pipes until both are at end-of-file and on_sock() has said
 * it is done.  sock is polled meanwhile; when it is readable, on_sock(ctx)
 * returns 1 (done: stop polling sock), 0 (not yet) or a negative errno
 * (give up).  Returns 0, the negative errno of a failure, or -ETIMEDOUT at
 * give_up_ms (CLOCK_MONOTONIC milliseconds).
 */
int output_pump(struct output *o, int sock, uint64_t give_up_ms, int (*on_sock)(void *ctx),
		void *ctx);

/* Reads what stream (1: out_r, 2: err_r) holds now, as output_pump()
 * does; at its end sets eof.  0 or a negative errno. */
int output_read(struct output *o, int stream);

/* Closes every fd and frees the buffers. */
void output_close(struct output *o);

/* The stream as a JSON string, invalid UTF-8 and NUL replaced; NULL on ENOMEM. */
json_t *output_text(const struct outbuf *b);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t output_now_ms(void);

#endif
