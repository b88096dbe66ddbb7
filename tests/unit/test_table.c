/*
 * test_table.c: the shared-memory sandbox table: lookups, tombstones and
 * rehashing, persistence across opens, versioning, and the robust lock when
 * a holder dies (in a forked child, as a worker would).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox-table.h"

struct fixture {
	char path[64];
	struct sbx_table *t;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	bool fresh = false;
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/sbx-table-test-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sbx_table_open(f->path, 64, &f->t, &fresh), 0);
	assert_true(fresh);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	sbx_table_close(f->t);
	unlink(f->path);
	free(f);
	return 0;
}

static int
insert(struct sbx_table *t, const char *id)
{
	return sbx_table_insert(t, id, strlen(id), NULL);
}

static int
find(struct sbx_table *t, const char *id)
{
	return sbx_table_find(t, id, strlen(id));
}

static void
insert_find_remove(void **state)
{
	struct fixture *f = *state;
	int a, b, again;

	assert_int_equal(sbx_table_lock(f->t), 0);
	a = insert(f->t, "alpha");
	b = insert(f->t, "beta");
	assert_true(a >= 0 && b >= 0 && a != b);
	assert_int_equal(find(f->t, "alpha"), a);
	assert_int_equal(find(f->t, "beta"), b);
	assert_int_equal(find(f->t, "gamma"), -ENOENT);
	/* A prefix of an ID is another ID. */
	assert_int_equal(find(f->t, "alph"), -ENOENT);
	assert_int_equal(sbx_table_count(f->t), 2);
	assert_int_equal(sbx_table_slot(f->t, a)->state, SBX_SLOT_CREATING);
	assert_int_equal(sbx_table_slot(f->t, a)->owner_pid, getpid());
	assert_true(sbx_table_slot(f->t, a)->created_ms > 0);

	assert_int_equal(sbx_table_insert(f->t, "alpha", 5, &again), -EEXIST);
	assert_int_equal(again, a);

	sbx_table_remove(f->t, a);
	assert_int_equal(find(f->t, "alpha"), -ENOENT);
	assert_int_equal(find(f->t, "beta"), b);
	assert_int_equal(sbx_table_count(f->t), 1);
	sbx_table_unlock(f->t);
}

static void
bad_ids_are_refused(void **state)
{
	struct fixture *f = *state;
	char long_id[SBX_TABLE_ID_MAX + 2];

	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(sbx_table_lock(f->t), 0);
	assert_int_equal(sbx_table_insert(f->t, "", 0, NULL), -EINVAL);
	assert_int_equal(sbx_table_insert(f->t, long_id, strlen(long_id), NULL), -EINVAL);
	assert_int_equal(sbx_table_insert(f->t, "a\0b", 3, NULL), -EINVAL);
	/* The longest ID fits, NUL-terminated. */
	long_id[SBX_TABLE_ID_MAX] = '\0';
	assert_true(insert(f->t, long_id) >= 0);
	assert_true(find(f->t, long_id) >= 0);
	sbx_table_unlock(f->t);
}

static void
generations_are_never_reused(void **state)
{
	struct fixture *f = *state;
	uint32_t g1, g2, g3;
	int i;

	assert_int_equal(sbx_table_lock(f->t), 0);
	i = insert(f->t, "same");
	g1 = sbx_table_slot(f->t, i)->generation;
	sbx_table_remove(f->t, i);
	i = insert(f->t, "same");
	g2 = sbx_table_slot(f->t, i)->generation;
	g3 = sbx_table_bump(f->t, i);
	sbx_table_unlock(f->t);
	assert_true(g1 < g2 && g2 < g3);
}

static void
fills_to_capacity_and_rehashes_tombstones(void **state)
{
	struct fixture *f = *state;
	char id[16];
	int n = 0;

	assert_int_equal(sbx_table_lock(f->t), 0);
	/* 64 requested: every one of them fits. */
	for (;; n++) {
		int r;

		snprintf(id, sizeof(id), "s%d", n);
		r = insert(f->t, id);
		if (r == -ENOSPC)
			break;
		assert_true(r >= 0);
	}
	assert_true(n >= 64);
	assert_int_equal(sbx_table_count(f->t), (uint32_t)n);
	/* Churn: remove and add many times; tombstones must not fill the table. */
	for (int round = 0; round < 20 * n; round++) {
		int victim = round % n, k;

		snprintf(id, sizeof(id), "s%d", victim);
		k = find(f->t, id);
		assert_true(k >= 0);
		sbx_table_remove(f->t, k);
		assert_true(insert(f->t, id) >= 0);
	}
	for (int k = 0; k < n; k++) {
		snprintf(id, sizeof(id), "s%d", k);
		assert_true(find(f->t, id) >= 0);
	}
	assert_int_equal(sbx_table_count(f->t), (uint32_t)n);
	sbx_table_unlock(f->t);
}

static void
reopen_keeps_entries_and_other_version_starts_afresh(void **state)
{
	struct fixture *f = *state;
	struct sbx_table *t2;
	bool fresh = true;
	int i;

	assert_int_equal(sbx_table_lock(f->t), 0);
	i = insert(f->t, "kept");
	sbx_table_slot(f->t, i)->state = SBX_SLOT_SLEEPING;
	sbx_table_slot(f->t, i)->sleep_after_s = 600;
	sbx_table_unlock(f->t);

	/* A second mapping of the same file sees the same entry. */
	assert_int_equal(sbx_table_open(f->path, 64, &t2, &fresh), 0);
	assert_false(fresh);
	assert_int_equal(sbx_table_lock(t2), 0);
	i = find(t2, "kept");
	assert_true(i >= 0);
	assert_int_equal(sbx_table_slot(t2, i)->state, SBX_SLOT_SLEEPING);
	assert_int_equal(sbx_table_slot(t2, i)->sleep_after_s, 600);
	sbx_table_unlock(t2);
	sbx_table_close(t2);

	/* A table of another size is started afresh, not misread. */
	assert_int_equal(sbx_table_open(f->path, 1000, &t2, &fresh), 0);
	assert_true(fresh);
	assert_int_equal(sbx_table_lock(t2), 0);
	assert_int_equal(find(t2, "kept"), -ENOENT);
	assert_int_equal(sbx_table_count(t2), 0);
	sbx_table_unlock(t2);
	sbx_table_close(t2);
}

static void
holder_killed_with_the_lock_does_not_wedge_the_table(void **state)
{
	struct fixture *f = *state;
	int st, i;
	pid_t child;

	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* A worker that takes the lock, starts creating a sandbox and dies. */
		if (sbx_table_lock(f->t) != 0)
			_exit(2);
		if (insert(f->t, "orphan") < 0)
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	/* The next locker is told, and can reclaim what the dead one owned. */
	assert_int_equal(sbx_table_lock(f->t), 1);
	i = find(f->t, "orphan");
	assert_true(i >= 0);
	assert_int_equal(sbx_table_slot(f->t, i)->owner_pid, child);
	assert_int_equal(sbx_table_reclaim(f->t, child), 1);
	assert_int_equal(find(f->t, "orphan"), -ENOENT);
	assert_int_equal(sbx_table_count(f->t), 0);
	sbx_table_unlock(f->t);
	/* And the lock works as usual afterwards. */
	assert_int_equal(sbx_table_lock(f->t), 0);
	sbx_table_unlock(f->t);
}

static void
reclaim_keeps_what_was_not_being_created(void **state)
{
	struct fixture *f = *state;
	int run, des;

	assert_int_equal(sbx_table_lock(f->t), 0);
	run = insert(f->t, "running");
	sbx_table_slot(f->t, run)->state = SBX_SLOT_RUNNING;
	des = insert(f->t, "destroying");
	sbx_table_slot(f->t, des)->state = SBX_SLOT_DESTROYING;
	assert_int_equal(sbx_table_reclaim(f->t, getpid()), 2);
	assert_int_equal(find(f->t, "running"), run);
	assert_int_equal(sbx_table_slot(f->t, run)->owner_pid, 0);
	assert_int_equal(sbx_table_slot(f->t, des)->state, SBX_SLOT_DESTROYING);
	assert_int_equal(sbx_table_slot(f->t, des)->owner_pid, 0);
	assert_int_equal(sbx_table_reclaim(f->t, getpid()), 0);
	sbx_table_unlock(f->t);
}

static void
two_processes_insert_concurrently(void **state)
{
	struct fixture *f = *state;
	pid_t kids[2];
	char id[16];

	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			for (int i = 0; i < 24; i++) {
				snprintf(id, sizeof(id), "p%d-%d", k, i);
				if (sbx_table_lock(f->t) != 0 || insert(f->t, id) < 0)
					_exit(1);
				sbx_table_unlock(f->t);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st;

		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(sbx_table_lock(f->t), 0);
	assert_int_equal(sbx_table_count(f->t), 48);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 24; i++) {
			snprintf(id, sizeof(id), "p%d-%d", k, i);
			assert_true(find(f->t, id) >= 0);
		}
	sbx_table_unlock(f->t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(insert_find_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_ids_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(generations_are_never_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(fills_to_capacity_and_rehashes_tombstones, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			reopen_keeps_entries_and_other_version_starts_afresh, setup, teardown),
		cmocka_unit_test_setup_teardown(
			holder_killed_with_the_lock_does_not_wedge_the_table, setup, teardown),
		cmocka_unit_test_setup_teardown(reclaim_keeps_what_was_not_being_created, setup,
						teardown),
		cmocka_unit_test_setup_teardown(two_processes_insert_concurrently, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
