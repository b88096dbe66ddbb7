/*
 * master-private.h: the master's state, shared by master.c (workers,
 * one-shot runs, the event loop) and persist.c (persistent sandboxes).
 */
#ifndef SANDBOXD_MASTER_PRIVATE_H
#define SANDBOXD_MASTER_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "sandbox-table.h"
#include "sandbox.h"
#include "wire.h"

struct worker {
	pid_t pid; /* 0: not running */
	int sock;  /* master's end of the socketpair, -1 when not running */
	int run;   /* slot of its sandbox in flight, -1 for none */
};

enum run_state {
	RUN_FREE,   /* the slot is unused */
	RUN_WARM,   /* a sandbox of the warm pool, waiting for a program */
	RUN_ACTIVE, /* running a worker's program */
	RUN_AGENT,  /* a persistent sandbox's agent runs (persist.c) */
	RUN_PARKED, /* the uid slot of a persistent sandbox that sleeps */
	RUN_WIPE,   /* wiping a deleted persistent sandbox's workspace */
	RUN_SPARE,  /* a persistent sandbox built ahead of a new ID (persist.c) */
	RUN_DISK,   /* a spare's disk being made by a child of ours (persist.c) */
};

struct run {
	enum run_state state;
	struct sbx_proc proc;
	int worker;	      /* who waits for the result; -1 once that worker died */
	uint32_t seq;	      /* that worker's request number, echoed in the reply */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
	bool timed_out;
	bool stopped;	     /* killed because sandboxd is stopping */
	char id[64];	     /* RUN_AGENT, RUN_PARKED, RUN_WIPE: the persistent sandbox's ID */
	uint32_t generation; /* RUN_AGENT: the agent's generation in the table */
	bool mounted;	     /* its workspace's disk is mounted on the host */
	int loop;	     /* and through this loop device */
	pid_t disk_pid;	     /* RUN_DISK: the child making the disk */
	int disk_fd;	     /* RUN_DISK: where it tells its loop device */
};

struct master {
	const struct conf *conf;
	struct sbx_host *host;
	int listen_fd;
	int epfd;
	int sigfd;
	uid_t wuid;
	gid_t wgid;
	struct worker *workers;
	struct run *runs; /* indexed by uid slot */
	bool stopping;
	uint64_t stop_deadline_ns;
	uint64_t respawn_at_ns; /* 0: no respawn pending */
	uint32_t warm;		/* sandboxes in the warm pool */
	uint64_t pool_retry_ns; /* after a failure, refill no earlier than this */
	unsigned crash_burst;	/* worker deaths in the current second */
	uint64_t crash_window_ns;
	struct sbx_table *table; /* persistent sandboxes, shared with the workers */
	uint64_t idle_check_ns;	 /* next look for idle persistent sandboxes */
	uint64_t wipe_retry_ns;	 /* next retry of a failed wipe */
	uint32_t spares;	 /* RUN_SPARE sandboxes */
};

uint64_t master_now_ns(void);

/* The lowest free uid slot, or -ENOSPC. */
int master_alloc_slot(struct master *m);

/* persist.c */

/* Opens the table (in the state directory) and reserves the uid slots of the
 * sandboxes it holds; their agents died with the last master. */
int persist_open(struct master *m);
void persist_close(struct master *m);

/* A worker's WIRE_SBX request; answers it. */
void persist_request(struct master *m, int wi, const struct wire_sbx *req);

/* A RUN_AGENT or RUN_WIPE sandbox of slot ended and was reaped. */
void persist_reaped(struct master *m, int slot, const struct sbx_result *res);

/* Builds spare persistent sandboxes up to warm_sandboxes.  0, or a negative
 * errno after a failure (the caller pauses before trying again). */
int persist_refill(struct master *m);

/* The child making a spare's disk in slot ended with status (RUN_DISK). */
void persist_disk_done(struct master *m, int slot, int status);

/* Puts idle sandboxes to sleep; returns the time of the next check. */
uint64_t persist_tick(struct master *m, uint64_t now);

#endif
