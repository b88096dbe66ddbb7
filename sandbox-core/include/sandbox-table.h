/*
 * sandbox-table.h: the shared-memory table of persistent sandboxes, keyed by
 * sandbox ID.
 *
 * The master maps it before forking the workers, so every process of
 * sandboxd sees the same table, and the same ID reaches the same sandbox
 * whichever worker takes the request.  The table is a file (in the state
 * directory) mapped MAP_SHARED: fixed-size slots, no pointers, a versioned
 * header, and one robust, process-shared mutex.  A process that dies while
 * holding the lock does not wedge the table: the next locker is told, the
 * counters are rebuilt, and the master reclaims the slots that the dead
 * process was in the middle of changing (owner_pid).
 *
 * Slot indexes are only meaningful while the lock is held (a rehash moves
 * entries); across an unlock, name a sandbox by its ID and generation.
 */
#ifndef SANDBOX_TABLE_H
#define SANDBOX_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

#define SBX_TABLE_VERSION 2
#define SBX_TABLE_ID_MAX 63 /* a DNS label */
#define SBX_TABLE_PORTS 16  /* exposed ports per sandbox */

enum sbx_slot_state {
	SBX_SLOT_FREE = 0,   /* never used since the last rehash */
	SBX_SLOT_TOMBSTONE,  /* removed; probing continues past it */
	SBX_SLOT_CREATING,   /* inserted, its sandbox is being set up (owner_pid does it) */
	SBX_SLOT_RUNNING,    /* its agent runs */
	SBX_SLOT_SLEEPING,   /* no processes; workspace and config kept */
	SBX_SLOT_DESTROYING, /* being deleted (owner_pid does it) */
};

struct sbx_port_entry {
	uint16_t port;	/* 1024..65535; 0: unused entry */
	uint16_t flags; /* reserved, 0 */
	char token[17]; /* preview URL token, NUL-terminated */
	char name[45];	/* caller's name for the port, NUL-terminated */
};

struct sbx_slot {
	char id[SBX_TABLE_ID_MAX + 1]; /* NUL-terminated; valid unless FREE or TOMBSTONE */
	uint32_t state;		       /* enum sbx_slot_state */
	uint32_t generation;	       /* table-wide counter: new on every create and agent start */
	int32_t agent_pid;	       /* host pid of the sandbox's init; 0: none */
	int32_t owner_pid;	       /* process in the middle of a transition; 0: none */
	uint64_t created_ms;	       /* CLOCK_REALTIME, milliseconds */
	uint64_t last_active_ms;       /* CLOCK_REALTIME, milliseconds */
	uint32_t sleep_after_s;	       /* idle seconds before sleeping */
	uint32_t keep_alive;	       /* 1: never sleeps */
	uint32_t active_cmds;	       /* commands running now (workers count them) */
	uint64_t busy_until_ms;	       /* the latest deadline of those commands */
	uint32_t uid_slot;	       /* its range of host uids */
	struct sbx_limits limits;
	struct sbx_port_entry ports[SBX_TABLE_PORTS];
};

struct sbx_table;

/*
 * Opens the table file at path with room for nslots sandboxes, creating it
 * when missing and starting it afresh when its header is of another version
 * or size.  On success *ret owns the mapping; *ret_fresh says whether the
 * table was started afresh.  Returns 0 or a negative errno.
 */
int sbx_table_open(const char *path, uint32_t nslots, struct sbx_table **ret, bool *ret_fresh);

/* Unmaps the table.  NULL is fine. */
void sbx_table_close(struct sbx_table *t);

/*
 * Takes the table's lock.  Returns 0, or 1 when the previous holder died
 * holding it: the lock is made consistent again and the counters rebuilt, and
 * the caller should reclaim what that process owned (sbx_table_reclaim()).
 * Negative errno on failure.
 */
int sbx_table_lock(struct sbx_table *t);

/* Releases the lock. */
void sbx_table_unlock(struct sbx_table *t);

/* With the lock held: the index of id (len bytes), or -ENOENT. */
int sbx_table_find(struct sbx_table *t, const char *id, size_t len);

/*
 * With the lock held: adds id (len bytes, 1..SBX_TABLE_ID_MAX) in state
 * CREATING, owned by the calling process, with a new generation.  Returns
 * its index, -EEXIST (with *ret_existing set to that index when not NULL),
 * -ENOSPC when the table is full, or -EINVAL for a bad length.
 */
int sbx_table_insert(struct sbx_table *t, const char *id, size_t len, int *ret_existing);

/* With the lock held: gives the slot a new generation (an agent restart) and returns it. */
uint32_t sbx_table_bump(struct sbx_table *t, int index);

/* With the lock held: a new generation, for an agent that has no entry yet. */
uint32_t sbx_table_next_generation(struct sbx_table *t);

/* With the lock held: removes the entry at index. */
void sbx_table_remove(struct sbx_table *t, int index);

/* With the lock held: the slot at index (0..capacity-1). */
struct sbx_slot *sbx_table_slot(struct sbx_table *t, int index);

/* The number of slots (indexes run from 0 to this - 1). */
uint32_t sbx_table_capacity(const struct sbx_table *t);

/* The number of live entries (any state but FREE and TOMBSTONE). */
uint32_t sbx_table_count(const struct sbx_table *t);

/* True if the slot holds a sandbox (any state but FREE and TOMBSTONE). */
bool sbx_slot_live(const struct sbx_slot *s);

/*
 * With the lock held: undoes what the dead process pid left half done.  A
 * sandbox it was creating is removed; one it was destroying stays
 * DESTROYING with no owner, for the master to finish; any other slot it
 * owned just loses its owner.  Returns how many slots it touched.
 */
int sbx_table_reclaim(struct sbx_table *t, pid_t pid);

#endif
