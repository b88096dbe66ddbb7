/*
 * wire.h: the messages between a FastCGI worker and the master, over a
 * SOCK_SEQPACKET socketpair.  Fixed size, versioned, checked field by field
 * by the receiver (bubblewrap's privileged_op, in spirit): a worker is less
 * trusted than the master, which runs as root.
 */
#ifndef SANDBOXD_WIRE_H
#define SANDBOXD_WIRE_H

#include <stdint.h>
#include <sys/types.h>

#define WIRE_VERSION 1
#define WIRE_MAX_FDS 3

enum wire_type {
	WIRE_RUN = 1,	     /* worker -> master: run code in a throw-away sandbox */
	WIRE_RUN_DONE = 2,   /* master -> worker: its result */
	WIRE_SBX = 3,	     /* worker -> master: a persistent sandbox operation */
	WIRE_SBX_REPLY = 4,  /* master -> worker: its answer */
	WIRE_RUN_CANCEL = 5, /* worker -> master: the client went away; kill that run */
};

struct wire_hdr {
	uint16_t version; /* WIRE_VERSION */
	uint16_t type;	  /* enum wire_type */
	uint32_t size;	  /* size of the whole message */
};

/* Sent with three fds: the code (a sealed memfd), stdout and stderr (pipe write ends). */
struct wire_run {
	struct wire_hdr hdr;
	uint32_t seq;	     /* echoed in the reply, so a late reply is never mistaken */
	uint32_t language;   /* enum lang */
	uint32_t timeout_ms; /* 1..exec_timeout_max_ms */
};

struct wire_run_done {
	struct wire_hdr hdr;
	uint32_t seq;	    /* the request's */
	int32_t status;	    /* 0, or a negative errno: the sandbox could not be run */
	int32_t setup_step; /* enum sbx_step that failed, or 0 */
	int32_t setup_err;  /* its errno */
	int32_t exit_code;
	int32_t signal;
	uint32_t timed_out;  /* 0 or 1 */
	uint32_t oom_killed; /* 0 or 1 */
	uint32_t stopped;    /* 0 or 1: killed because sandboxd is stopping */
	uint32_t reserved;   /* 0 */
	uint64_t wall_us;
};

/* Sent without fds; the run's WIRE_RUN_DONE still follows. */
struct wire_run_cancel {
	struct wire_hdr hdr;
	uint32_t seq; /* the run's request */
};

enum wire_sbx_op {
	WIRE_SBX_ENSURE = 1,  /* make it run (waking or, with CREATE, creating it) */
	WIRE_SBX_DESTROY = 2, /* kill it, wipe its workspace, forget it */
	WIRE_SBX_OOM = 3,     /* how many of its processes the OOM killer has ended */
};

#define WIRE_SBX_CREATE 1u /* ENSURE: create it when missing */
#define WIRE_SBX_SLEEP 2u  /* ENSURE: set its sleep_after_s */
#define WIRE_SBX_KEEP 4u   /* ENSURE: set its keep_alive */

struct wire_sbx {
	struct wire_hdr hdr;
	uint32_t seq;
	uint32_t op;		/* enum wire_sbx_op */
	uint32_t flags;		/* WIRE_SBX_* */
	uint32_t sleep_after_s; /* with SLEEP: idle seconds before sleeping */
	uint32_t keep_alive;	/* with KEEP: 1: never sleeps */
	char id[64];		/* NUL-terminated sandbox ID, checked by both sides */
};

struct wire_sbx_reply {
	struct wire_hdr hdr;
	uint32_t seq;
	int32_t status;	     /* 0, -ENOENT, -EAGAIN (no room), -EBUSY (being deleted),
				-ESHUTDOWN, -EINVAL, -EIO */
	uint32_t created;    /* 1: this call created it */
	uint32_t uid_slot;   /* its agent listens on STATE/agents/SLOT-GENERATION.sock */
	uint32_t generation; /* of its current agent */
	uint32_t oom_kills;  /* WIRE_SBX_OOM: the answer */
};

/*
 * Sends msg (size bytes, starting with a wire_hdr) with nfds fds attached.
 * Returns 0 or a negative errno.
 */
int wire_send(int sock, const void *msg, size_t size, const int *fds, unsigned nfds);

/*
 * Receives one message of at most size bytes into msg and up to WIRE_MAX_FDS
 * fds (CLOEXEC) into fds, setting *ret_nfds.  Returns the message length, 0
 * on EOF, or a negative errno.  Fds that arrive with a malformed message are
 * the caller's to close, as are all others.
 */
ssize_t wire_recv(int sock, void *msg, size_t size, int *fds, unsigned *ret_nfds);

/* Checks a received header against the expected type and size. */
int wire_check(const void *msg, ssize_t len, enum wire_type type, size_t size);

#endif
