/*
 * table.c: the shared-memory sandbox table (see sandbox-table.h).
 *
 * Open addressing with linear probing over a power-of-two number of slots,
 * hashed with FNV-1a.  Removal leaves a tombstone; when tombstones and live
 * entries together fill three quarters of the table, an insert first
 * rehashes the live entries in place (through a private copy).
 *
 * Writes are ordered so that a holder that dies mid-update leaves the table
 * readable: an entry's fields are written before its state makes it live,
 * and its state is cleared before anything else on removal.  The counters
 * are the only derived data; sbx_table_lock() rebuilds them after a death.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sandbox-table.h"

#define TABLE_MAGIC 0x53425854u /* "SBXT" */

struct table_header {
	uint32_t magic;		  /* TABLE_MAGIC */
	uint32_t version;	  /* SBX_TABLE_VERSION */
	uint32_t nslots;	  /* a power of two */
	uint32_t slot_size;	  /* sizeof(struct sbx_slot) when written */
	uint32_t used;		  /* live entries */
	uint32_t tombstones;	  /* removed entries still in probe chains */
	uint32_t last_generation; /* the newest generation handed out */
	pthread_mutex_t lock;
	/* Padding to a cache line; the slots follow at the next 64-byte boundary. */
};

struct sbx_table {
	struct table_header *hdr;
	struct sbx_slot *slots;
	size_t map_size;
};

static size_t
header_size(void)
{
	return (sizeof(struct table_header) + 63) & ~(size_t)63;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t
hash_id(const char *id, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)id[i]) * 16777619u;
	return h;
}

bool
sbx_slot_live(const struct sbx_slot *s)
{
	return s->state != SBX_SLOT_FREE && s->state != SBX_SLOT_TOMBSTONE;
}

static int
init_header(struct table_header *h, uint32_t nslots)
{
	pthread_mutexattr_t attr;
	int r;

	memset(h, 0, sizeof(*h));
	if ((r = pthread_mutexattr_init(&attr)) != 0)
		return -r;
	if ((r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) != 0 ||
	    (r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) != 0 ||
	    (r = pthread_mutex_init(&h->lock, &attr)) != 0) {
		pthread_mutexattr_destroy(&attr);
		return -r;
	}
	pthread_mutexattr_destroy(&attr);
	h->nslots = nslots;
	h->slot_size = sizeof(struct sbx_slot);
	h->version = SBX_TABLE_VERSION;
	/* Last: a crash before this line leaves a file that the next open redoes. */
	__atomic_store_n(&h->magic, TABLE_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int
sbx_table_open(const char *path, uint32_t nslots, struct sbx_table **ret, bool *ret_fresh)
{
	struct sbx_table *t;
	struct stat st;
	uint32_t n = 16;
	size_t size;
	void *map;
	bool fresh;
	int fd, r;

	if (nslots == 0 || nslots > (1u << 20))
		return -EINVAL;
	/* Room for nslots at a load of at most three quarters, as a power of two. */
	while ((uint64_t)n * 3 / 4 < nslots)
		n <<= 1;
	size = header_size() + (size_t)n * sizeof(struct sbx_slot);

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	fresh = (size_t)st.st_size != size;
	if (fresh && ftruncate(fd, 0) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r = -errno;
	close(fd);
	if (map == MAP_FAILED)
		return r;

	t = calloc(1, sizeof(*t));
	if (!t) {
		munmap(map, size);
		return -ENOMEM;
	}
	t->hdr = map;
	t->slots = (struct sbx_slot *)((char *)map + header_size());
	t->map_size = size;
	if (!fresh && (t->hdr->magic != TABLE_MAGIC || t->hdr->version != SBX_TABLE_VERSION ||
		       t->hdr->nslots != n || t->hdr->slot_size != sizeof(struct sbx_slot)))
		fresh = true;
	if (fresh) {
		memset(map, 0, size);
		r = init_header(t->hdr, n);
		if (r < 0) {
			sbx_table_close(t);
			return r;
		}
	}
	*ret = t;
	if (ret_fresh)
		*ret_fresh = fresh;
	return 0;
}

void
sbx_table_close(struct sbx_table *t)
{
	if (!t)
		return;
	munmap(t->hdr, t->map_size);
	free(t);
}

static void
recount(struct sbx_table *t)
{
	uint32_t used = 0, tomb = 0;

	for (uint32_t i = 0; i < t->hdr->nslots; i++) {
		if (t->slots[i].state == SBX_SLOT_TOMBSTONE)
			tomb++;
		else if (sbx_slot_live(&t->slots[i]))
			used++;
	}
	t->hdr->used = used;
	t->hdr->tombstones = tomb;
}

int
sbx_table_lock(struct sbx_table *t)
{
	int r = pthread_mutex_lock(&t->hdr->lock);

	if (r == EOWNERDEAD) {
		/* The holder died; the entries are whole (see the top of this file), the
		 * counters may be off by one. */
		pthread_mutex_consistent(&t->hdr->lock);
		recount(t);
		return 1;
	}
	return r == 0 ? 0 : -r;
}

void
sbx_table_unlock(struct sbx_table *t)
{
	pthread_mutex_unlock(&t->hdr->lock);
}

uint32_t
sbx_table_capacity(const struct sbx_table *t)
{
	return t->hdr->nslots;
}

uint32_t
sbx_table_count(const struct sbx_table *t)
{
	return t->hdr->used;
}

struct sbx_slot *
sbx_table_slot(struct sbx_table *t, int index)
{
	return &t->slots[index];
}

static bool
id_equal(const struct sbx_slot *s, const char *id, size_t len)
{
	return strncmp(s->id, id, len) == 0 && s->id[len] == '\0';
}

int
sbx_table_find(struct sbx_table *t, const char *id, size_t len)
{
	uint32_t mask = t->hdr->nslots - 1, i;

	if (len == 0 || len > SBX_TABLE_ID_MAX)
		return -ENOENT;
	i = hash_id(id, len) & mask;
	for (uint32_t probes = 0; probes < t->hdr->nslots; probes++, i = (i + 1) & mask) {
		const struct sbx_slot *s = &t->slots[i];

		if (s->state == SBX_SLOT_FREE)
			return -ENOENT;
		if (sbx_slot_live(s) && id_equal(s, id, len))
			return (int)i;
	}
	return -ENOENT;
}

/* Reinserts every live entry, dropping the tombstones. */
static int
rehash(struct sbx_table *t)
{
	uint32_t n = t->hdr->nslots, mask = n - 1;
	struct sbx_slot *copy = malloc((size_t)n * sizeof(*copy));

	if (!copy)
		return -ENOMEM;
	memcpy(copy, t->slots, (size_t)n * sizeof(*copy));
	/* From here until the loop ends a death would lose entries; the window is
	 * a memset and a copy loop, with no system call in it. */
	memset(t->slots, 0, (size_t)n * sizeof(*copy));
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i;

		if (!sbx_slot_live(&copy[k]))
			continue;
		i = hash_id(copy[k].id, strlen(copy[k].id)) & mask;
		while (t->slots[i].state != SBX_SLOT_FREE)
			i = (i + 1) & mask;
		t->slots[i] = copy[k];
	}
	free(copy);
	t->hdr->tombstones = 0;
	return 0;
}

int
sbx_table_insert(struct sbx_table *t, const char *id, size_t len, int *ret_existing)
{
	uint32_t n = t->hdr->nslots, mask = n - 1, i;
	int found = sbx_table_find(t, id, len), r;
	struct sbx_slot *s;

	if (len == 0 || len > SBX_TABLE_ID_MAX || memchr(id, '\0', len))
		return -EINVAL;
	if (found >= 0) {
		if (ret_existing)
			*ret_existing = found;
		return -EEXIST;
	}
	if ((uint64_t)(t->hdr->used + 1) * 4 > (uint64_t)n * 3)
		return -ENOSPC;
	if ((uint64_t)(t->hdr->used + t->hdr->tombstones + 1) * 4 > (uint64_t)n * 3) {
		r = rehash(t);
		if (r < 0)
			return r;
	}
	i = hash_id(id, len) & mask;
	while (sbx_slot_live(&t->slots[i]))
		i = (i + 1) & mask;
	s = &t->slots[i];
	if (s->state == SBX_SLOT_TOMBSTONE)
		t->hdr->tombstones--;
	memset(s, 0, sizeof(*s));
	memcpy(s->id, id, len);
	s->generation = ++t->hdr->last_generation;
	s->owner_pid = (int32_t)getpid();
	s->created_ms = s->last_active_ms = now_ms();
	/* Live last: a holder that dies before this line leaves no half entry. */
	__atomic_store_n(&s->state, SBX_SLOT_CREATING, __ATOMIC_RELEASE);
	t->hdr->used++;
	return (int)i;
}

void
sbx_table_remove(struct sbx_table *t, int index)
{
	struct sbx_slot *s = &t->slots[index];

	if (!sbx_slot_live(s))
		return;
	__atomic_store_n(&s->state, SBX_SLOT_TOMBSTONE, __ATOMIC_RELEASE);
	s->agent_pid = 0;
	s->owner_pid = 0;
	t->hdr->used--;
	t->hdr->tombstones++;
}

uint32_t
sbx_table_next_generation(struct sbx_table *t)
{
	return ++t->hdr->last_generation;
}

uint32_t
sbx_table_bump(struct sbx_table *t, int index)
{
	return t->slots[index].generation = ++t->hdr->last_generation;
}

int
sbx_table_reclaim(struct sbx_table *t, pid_t pid)
{
	int touched = 0;

	if (pid <= 0)
		return 0;
	for (uint32_t i = 0; i < t->hdr->nslots; i++) {
		struct sbx_slot *s = &t->slots[i];

		if (!sbx_slot_live(s) || s->owner_pid != (int32_t)pid)
			continue;
		if (s->state == SBX_SLOT_CREATING)
			sbx_table_remove(t, (int)i);
		else
			s->owner_pid = 0;
		touched++;
	}
	return touched;
}
