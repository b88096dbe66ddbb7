/*
 * test_conf.c: unit tests of fcgi-app/conf.c: defaults, the file parser, the
 * SANDBOXD_* environment overrides, the cross-field checks, file loading, and
 * an allocation-failure loop over every entry point that allocates.
 *
 * The test binary is linked with -Wl,--wrap for malloc, realloc, strdup,
 * strndup and free, so that the wrappers below see every allocation conf.c
 * makes: they count live blocks (to find leaks), fail the Nth allocation on
 * request, and check that API keys are wiped before they are freed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

#define ERRLEN 512

/* The allocator wrappers' state.  fail_at < 0: never fail. */
static long alloc_count;
static long alloc_fail_at = -1;
static long alloc_live;
static bool alloc_failed;

/* A block that must be all zero bytes when it is freed (an API key). */
static const void *watch_ptr;
static size_t watch_len;
static int watch_seen;	/* times the watched block was freed */
static int watch_wiped; /* of which, times it was zero */

void *__real_malloc(size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void __wrap_free(void *p);

/* True if this allocation is the one the test asked to fail. */
static bool
inject_failure(void)
{
	if (alloc_fail_at >= 0 && alloc_count++ == alloc_fail_at) {
		alloc_failed = true;
		errno = ENOMEM;
		return true;
	}
	return false;
}

void *
__wrap_malloc(size_t size)
{
	void *p;

	if (inject_failure())
		return NULL;
	p = __real_malloc(size);
	if (p)
		alloc_live++;
	return p;
}

void *
__wrap_realloc(void *p, size_t size)
{
	void *n;

	if (inject_failure())
		return NULL;
	n = __real_realloc(p, size);
	if (n && !p)
		alloc_live++;
	return n;
}

char *
__wrap_strdup(const char *s)
{
	char *p;

	if (inject_failure())
		return NULL;
	p = __real_strdup(s);
	if (p)
		alloc_live++;
	return p;
}

char *
__wrap_strndup(const char *s, size_t n)
{
	char *p;

	if (inject_failure())
		return NULL;
	p = __real_strndup(s, n);
	if (p)
		alloc_live++;
	return p;
}

void
__wrap_free(void *p)
{
	if (!p)
		return;
	if (p == watch_ptr) {
		const unsigned char *b = p;
		size_t i = 0;

		while (i < watch_len && b[i] == 0)
			i++;
		watch_seen++;
		watch_wiped += i == watch_len;
		watch_ptr = NULL;
	}
	alloc_live--;
	__real_free(p);
}

/* Arms the allocator to fail allocation number n (0-based) from now on. */
static void
alloc_fail_nth(long n)
{
	alloc_count = 0;
	alloc_fail_at = n;
	alloc_failed = false;
}

static void
alloc_never_fail(void)
{
	alloc_fail_at = -1;
}

/* Per-test state: a conf filled with the defaults, and the live count before it. */
struct fixture {
	struct conf c;
	long live_before;
	char err[ERRLEN];
};

static int
setup(void **state)
{
	/* malloc, not calloc: the wrappers count blocks, and calloc is not wrapped. */
	struct fixture *f = malloc(sizeof(*f));

	if (!f)
		return -1;
	memset(f, 0, sizeof(*f));
	alloc_never_fail();
	f->live_before = alloc_live;
	if (conf_defaults(&f->c) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	conf_free(&f->c);
	alloc_never_fail();
	free(f);
	return 0;
}

/* Frees the test's conf and asserts that no block of conf.c's is left behind. */
static void
assert_no_leak(struct fixture *f)
{
	conf_free(&f->c);
	if (alloc_live != f->live_before)
		fail_msg("leak: %ld blocks still allocated", alloc_live - f->live_before);
}

/*
 * Defines a test that gets a fixture with the defaults in f, and checks for
 * leaks after the body returns (a body that fails an assertion never
 * returns; the teardown frees what it left).
 */
#define CONF_TEST(name)                                                                            \
	static void name##_body(struct fixture *f);                                                \
	static void name(void **state)                                                             \
	{                                                                                          \
		name##_body(*state);                                                               \
		assert_no_leak(*state);                                                            \
	}                                                                                          \
	static void name##_body(struct fixture *f)

static int
parse(struct fixture *f, const char *text)
{
	f->err[0] = '\0';
	return conf_parse(&f->c, text, strlen(text), f->err, sizeof(f->err));
}

static int
apply_env(struct fixture *f, char *const *envp)
{
	f->err[0] = '\0';
	return conf_apply_env(&f->c, envp, f->err, sizeof(f->err));
}

static int
check(struct fixture *f)
{
	f->err[0] = '\0';
	return conf_check(&f->c, f->err, sizeof(f->err));
}

/* Asserts that the error message contains needle. */
static void
assert_err_has(const struct fixture *f, const char *needle)
{
	if (!strstr(f->err, needle))
		fail_msg("error message \"%s\" does not contain \"%s\"", f->err, needle);
}

/* A key of n copies of ch, in a static buffer that the next call overwrites. */
static const char *
key_of(char ch, size_t n)
{
	static char buf[512];

	assert_true(n < sizeof(buf));
	memset(buf, ch, n);
	buf[n] = '\0';
	return buf;
}

/* Writes text to a new temporary file; returns its malloc'd path. */
static char *
write_temp(const char *text, size_t len)
{
	char tmpl[] = "/tmp/test_conf.XXXXXX";
	int fd = mkstemp(tmpl);
	size_t off = 0;
	char *path;

	assert_true(fd >= 0);
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	close(fd);
	path = strdup(tmpl);
	assert_non_null(path);
	return path;
}

static void
remove_temp(char *path)
{
	unlink(path);
	free(path);
}

/* conf_defaults */

CONF_TEST(defaults_have_documented_values)
{
	assert_string_equal(f->c.socket, "/run/sandboxd/fcgi.sock");
	assert_string_equal(f->c.state_dir, "/var/lib/sandboxd");
	assert_string_equal(f->c.user, "sandboxd");
	assert_string_equal(f->c.socket_group, "www-data");
	assert_null(f->c.cgroup_root);
	assert_int_equal(f->c.workers, 8);
	assert_int_equal(f->c.uid_slots, 1024);
	assert_int_equal(f->c.n_api_keys, 0);
	assert_int_equal(f->c.exec_timeout_ms, 30000);
	assert_int_equal(f->c.exec_timeout_max_ms, 600000);
	assert_int_equal(f->c.max_body_bytes, 32ull << 20);
	assert_int_equal(f->c.output_max_bytes, 1ull << 20);
	assert_int_equal(f->c.log_debug, 0);
}

CONF_TEST(defaults_pass_conf_check)
{
	assert_int_equal(check(f), 0);
}

/* conf_parse: syntax */

CONF_TEST(parse_empty_input_changes_nothing)
{
	assert_int_equal(conf_parse(&f->c, "", 0, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->c.workers, 8);
}

CONF_TEST(parse_skips_comments_and_blank_lines)
{
	assert_int_equal(parse(f, "# sandboxd.conf\n"
				  "\n"
				  "   \n"
				  "\t\n"
				  "   # an indented comment: workers = 99\n"
				  "#workers = 2\n"
				  "workers = 4\n"
				  "\n"),
			 0);
	assert_int_equal(f->c.workers, 4);
}

CONF_TEST(parse_accepts_spaces_around_equals)
{
	assert_int_equal(parse(f, "workers=3\n"), 0);
	assert_int_equal(f->c.workers, 3);
	assert_int_equal(parse(f, "  workers   =   5   \n"), 0);
	assert_int_equal(f->c.workers, 5);
	assert_int_equal(parse(f, "\tworkers\t=\t6\t\n"), 0);
	assert_int_equal(f->c.workers, 6);
}

CONF_TEST(parse_accepts_crlf_and_missing_final_newline)
{
	assert_int_equal(parse(f, "workers = 7\r\npids = 64\r\n"), 0);
	assert_int_equal(f->c.workers, 7);
	assert_int_equal(f->c.pids, 64);
	assert_int_equal(parse(f, "workers = 9"), 0);
	assert_int_equal(f->c.workers, 9);
}

CONF_TEST(parse_later_line_wins)
{
	assert_int_equal(parse(f, "workers = 2\nworkers = 12\n"), 0);
	assert_int_equal(f->c.workers, 12);
}

CONF_TEST(parse_unknown_key_names_the_line)
{
	assert_int_equal(parse(f, "workers = 4\n# comment\nbogus_key = 1\n"), -EINVAL);
	assert_err_has(f, "line 3");
	assert_err_has(f, "bogus_key");
}

CONF_TEST(parse_key_prefix_is_not_a_key)
{
	/* find_key() compares lengths: "work" and "workersx" must not match "workers". */
	assert_int_equal(parse(f, "work = 4\n"), -EINVAL);
	assert_err_has(f, "line 1");
	assert_int_equal(parse(f, "workersx = 4\n"), -EINVAL);
	assert_int_equal(parse(f, "= 4\n"), -EINVAL);
	assert_int_equal(f->c.workers, 8);
}

CONF_TEST(parse_line_without_equals_names_the_line)
{
	assert_int_equal(parse(f, "\n\nworkers 4\n"), -EINVAL);
	assert_err_has(f, "line 3");
}

CONF_TEST(parse_stops_at_the_first_bad_line)
{
	assert_int_equal(parse(f, "workers = 0\nuid_slots = 5\n"), -EINVAL);
	assert_err_has(f, "line 1");
	assert_int_equal(f->c.uid_slots, 1024);
}

/* conf_parse: numbers */

CONF_TEST(parse_number_bounds_are_inclusive)
{
	assert_int_equal(parse(f, "workers = 1\n"), 0);
	assert_int_equal(f->c.workers, 1);
	assert_int_equal(parse(f, "workers = 256\n"), 0);
	assert_int_equal(f->c.workers, 256);
	assert_int_equal(parse(f, "log_debug = 0\nlog_debug = 1\n"), 0);
	assert_int_equal(f->c.log_debug, 1);
	assert_int_equal(parse(f, "workers = 0007\n"), 0);
	assert_int_equal(f->c.workers, 7);
}

CONF_TEST(parse_number_out_of_range_is_refused)
{
	static const char *const bad[] = {
		"workers = 0\n",
		"workers = 257\n",
		"uid_slots = 0\n",
		"uid_slots = 16385\n",
		"uid_base = 65535\n",
		"log_debug = 2\n",
		"pids = 7\n",
		"cpu_millis = 9\n",
		"exec_timeout_ms = 0\n",
		"exec_timeout_ms = 3600001\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(f, bad[i]) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_err_has(f, "line 1");
		assert_err_has(f, "out of range");
	}
	assert_int_equal(f->c.workers, 8);
	assert_int_equal(f->c.uid_slots, 1024);
}

CONF_TEST(parse_number_rejects_non_digits)
{
	static const char *const bad[] = {
		"workers = 4x\n",   "workers = x4\n",	"workers = -1\n",   "workers = +4\n",
		"workers = 0x10\n", "workers = 4 4\n",	"workers = 1e2\n",  "workers = 4.0\n",
		"workers =\n",	    "workers = four\n", "workers = ' 4'\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(f, bad[i]) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_err_has(f, "line 1");
		assert_err_has(f, "workers");
	}
	assert_int_equal(f->c.workers, 8);
}

CONF_TEST(parse_number_overflow_is_refused)
{
	/* 2^64 overflows strtoull; 2^32 + 4 would wrap to 4 if cast before the range check. */
	assert_int_equal(parse(f, "workers = 18446744073709551616\n"), -EINVAL);
	assert_int_equal(parse(f, "workers = 4294967300\n"), -EINVAL);
	assert_int_equal(f->c.workers, 8);
}

CONF_TEST(parse_u32_above_int_max)
{
	assert_int_equal(parse(f, "uid_base = 3000000000\n"), 0);
	assert_int_equal(f->c.uid_base, 3000000000u);
	assert_int_equal(parse(f, "uid_base = 3000000001\n"), -EINVAL);
	assert_int_equal(f->c.uid_base, 3000000000u);
}

CONF_TEST(parse_u64_fields)
{
	/* The 64-bit fields take their whole range.  max_body_bytes stops at nginx's
	 * own 32 MiB limit. */
	assert_int_equal(parse(f, "max_body_bytes = 33554432\n"
				  "output_max_bytes = 67108864\n"
				  "memory_mb = 1048576\n"
				  "tmp_mb = 1\n"
				  "workspace_mb = 16777216\n"),
			 0);
	assert_true(f->c.max_body_bytes == 33554432ull);
	assert_true(f->c.output_max_bytes == 67108864ull);
	assert_true(f->c.memory_mb == 1048576ull);
	assert_true(f->c.tmp_mb == 1ull);
	assert_true(f->c.workspace_mb == 16777216ull);

	assert_int_equal(parse(f, "max_body_bytes = 33554433\n"), -EINVAL);
	assert_int_equal(parse(f, "max_body_bytes = 1023\n"), -EINVAL);
	assert_int_equal(parse(f, "output_max_bytes = 67108865\n"), -EINVAL);
	assert_int_equal(parse(f, "memory_mb = 15\n"), -EINVAL);
	assert_int_equal(parse(f, "workspace_mb = 16777217\n"), -EINVAL);
	assert_true(f->c.max_body_bytes == 33554432ull);
	assert_true(f->c.memory_mb == 1048576ull);
}

/* conf_parse: strings */

CONF_TEST(parse_string_fields)
{
	assert_int_equal(parse(f, "socket = /tmp/sbx test.sock\n"
				  "state_dir=/srv/sandboxd\n"
				  "cgroup_root = /sys/fs/cgroup/sbx\n"
				  "user = nobody\n"
				  "socket_group = nginx\n"),
			 0);
	/* Inner spaces are kept, outer ones trimmed. */
	assert_string_equal(f->c.socket, "/tmp/sbx test.sock");
	assert_string_equal(f->c.state_dir, "/srv/sandboxd");
	assert_string_equal(f->c.cgroup_root, "/sys/fs/cgroup/sbx");
	assert_string_equal(f->c.user, "nobody");
	assert_string_equal(f->c.socket_group, "nginx");
	/* A second value replaces the first (the teardown checks the old one was freed). */
	assert_int_equal(parse(f, "socket = /run/other.sock\n"), 0);
	assert_string_equal(f->c.socket, "/run/other.sock");
}

CONF_TEST(parse_string_value_keeps_equals_and_hash)
{
	/* Only the first '=' splits; '#' starts a comment only at the start of a line. */
	assert_int_equal(parse(f, "user = a=b#c\n"), 0);
	assert_string_equal(f->c.user, "a=b#c");
}

CONF_TEST(parse_string_length_limits)
{
	char line[5000];
	size_t prefix = strlen("state_dir = /");

	assert_int_equal(parse(f, "user =   \n"), -EINVAL);
	assert_err_has(f, "line 1");
	assert_err_has(f, "user");
	assert_string_equal(f->c.user, "sandboxd");

	/* "/" and 4095 more bytes: 4096, the longest value. */
	memcpy(line, "state_dir = /", prefix);
	memset(line + prefix, 'd', 4095);
	memcpy(line + prefix + 4095, "\n", 2);
	assert_int_equal(parse(f, line), 0);
	assert_int_equal(strlen(f->c.state_dir), 4096);

	memset(line + prefix, 'e', 4096);
	memcpy(line + prefix + 4096, "\n", 2);
	assert_int_equal(parse(f, line), -EINVAL);
	assert_int_equal(strlen(f->c.state_dir), 4096);
	assert_int_equal(f->c.state_dir[1], 'd');
}

CONF_TEST(parse_string_with_nul_is_refused)
{
	static const char text[] = "user = bad\0name\n";

	assert_int_equal(conf_parse(&f->c, text, sizeof(text) - 1, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_err_has(f, "line 1");
	assert_string_equal(f->c.user, "sandboxd");
}

/* conf_parse: api_keys */

CONF_TEST(parse_api_keys_list)
{
	const char *a = "aaaaaaaaaaaaaaaa", *b = "B-0123456789abcdef!", *c = "c.c.c.c.c.c.c.c.c";
	char line[256];

	snprintf(line, sizeof(line), "api_keys = %s ,  %s,%s,\n", a, b, c);
	assert_int_equal(parse(f, line), 0);
	assert_int_equal(f->c.n_api_keys, 3);
	assert_string_equal(f->c.api_keys[0], a);
	assert_string_equal(f->c.api_keys[1], b);
	assert_string_equal(f->c.api_keys[2], c);
}

CONF_TEST(parse_api_keys_empty_entries_are_skipped)
{
	assert_int_equal(parse(f, "api_keys = , ,aaaaaaaaaaaaaaaa,,\n"), 0);
	assert_int_equal(f->c.n_api_keys, 1);
	assert_string_equal(f->c.api_keys[0], "aaaaaaaaaaaaaaaa");
}

CONF_TEST(parse_api_keys_length_limits)
{
	char line[600];

	snprintf(line, sizeof(line), "api_keys = %s\n", key_of('k', 15));
	assert_int_equal(parse(f, line), -EINVAL);
	assert_err_has(f, "line 1");
	assert_err_has(f, "16");
	assert_int_equal(f->c.n_api_keys, 0);

	snprintf(line, sizeof(line), "api_keys = %s\n", key_of('k', 16));
	assert_int_equal(parse(f, line), 0);
	assert_int_equal(f->c.n_api_keys, 1);

	snprintf(line, sizeof(line), "api_keys = %s\n", key_of('k', 256));
	assert_int_equal(parse(f, line), 0);
	assert_int_equal(f->c.n_api_keys, 1);
	assert_int_equal(strlen(f->c.api_keys[0]), 256);

	snprintf(line, sizeof(line), "api_keys = %s\n", key_of('k', 257));
	assert_int_equal(parse(f, line), -EINVAL);
	assert_int_equal(f->c.n_api_keys, 0);
}

CONF_TEST(parse_api_keys_short_key_among_good_ones)
{
	assert_int_equal(parse(f, "api_keys = aaaaaaaaaaaaaaaa, short, bbbbbbbbbbbbbbbb\n"),
			 -EINVAL);
	assert_err_has(f, "api_keys");
}

CONF_TEST(parse_api_keys_refuse_inner_spaces_and_controls)
{
	static const char text[] = "api_keys = aaaaaaaa\x01"
				   "aaaaaaaa\n";

	assert_int_equal(parse(f, "api_keys = aaaaaaaa aaaaaaaa\n"), -EINVAL);
	assert_err_has(f, "line 1");
	assert_int_equal(parse(f, "api_keys = aaaaaaaa\taaaaaaaa\n"), -EINVAL);
	assert_int_equal(conf_parse(&f->c, text, sizeof(text) - 1, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_int_equal(f->c.n_api_keys, 0);
}

CONF_TEST(parse_api_keys_at_most_conf_max)
{
	size_t cap = 32 + (CONF_MAX_API_KEYS + 1) * 20;
	char *line = malloc(cap);
	size_t n;

	assert_non_null(line);
	n = (size_t)snprintf(line, cap, "api_keys = ");
	for (int i = 0; i < CONF_MAX_API_KEYS; i++)
		n += (size_t)snprintf(line + n, cap - n, "%skey-%012d", i ? "," : "", i);
	assert_int_equal(parse(f, line), 0);
	assert_int_equal(f->c.n_api_keys, CONF_MAX_API_KEYS);
	assert_string_equal(f->c.api_keys[CONF_MAX_API_KEYS - 1], "key-000000000063");

	snprintf(line + n, cap - n, ",key-%012d", CONF_MAX_API_KEYS);
	assert_int_equal(parse(f, line), -EINVAL);
	assert_err_has(f, "line 1");
	assert_err_has(f, "at most");
	assert_true(f->c.n_api_keys <= CONF_MAX_API_KEYS);
	free(line);
}

CONF_TEST(parse_api_keys_replace_the_previous_list)
{
	assert_int_equal(parse(f, "api_keys = aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb\n"
				  "api_keys = cccccccccccccccc\n"),
			 0);
	assert_int_equal(f->c.n_api_keys, 1);
	assert_string_equal(f->c.api_keys[0], "cccccccccccccccc");
}

CONF_TEST(free_wipes_api_keys)
{
	assert_int_equal(parse(f, "api_keys = secret-secret-secret\n"), 0);
	assert_int_equal(f->c.n_api_keys, 1);
	watch_ptr = f->c.api_keys[0];
	watch_len = strlen(f->c.api_keys[0]);
	watch_seen = watch_wiped = 0;
	conf_free(&f->c);
	watch_ptr = NULL;
	assert_int_equal(watch_seen, 1);
	assert_int_equal(watch_wiped, 1);
	assert_int_equal(f->c.n_api_keys, 0);
	assert_null(f->c.socket);
}

/* conf_apply_env */

CONF_TEST(env_sets_workers)
{
	char *envp[] = { "PATH=/usr/bin:/bin", "SANDBOXD_WORKERS=4", "HOME=/root", NULL };

	assert_int_equal(apply_env(f, envp), 0);
	assert_int_equal(f->c.workers, 4);
}

CONF_TEST(env_sets_strings_and_u64)
{
	char *envp[] = { "SANDBOXD_SOCKET=/tmp/env.sock", "SANDBOXD_MEMORY_MB=2048",
			 "SANDBOXD_EXEC_TIMEOUT_MS=1500", NULL };

	assert_int_equal(apply_env(f, envp), 0);
	assert_string_equal(f->c.socket, "/tmp/env.sock");
	assert_true(f->c.memory_mb == 2048);
	assert_int_equal(f->c.exec_timeout_ms, 1500);
}

CONF_TEST(env_ignores_unknown_sandboxd_vars)
{
	char *envp[] = { "SANDBOXD_LLM_URL=http://127.0.0.1:1/",
			 "SANDBOXD_=1",
			 "SANDBOXD_WORKERSX=3",
			 "SANDBOXD_WORK=3",
			 "SANDBOXD_NO_EQUALS",
			 "SANDBOXD_LLM_KEY=not a number",
			 NULL };

	assert_int_equal(apply_env(f, envp), 0);
	assert_int_equal(f->c.workers, 8);
}

CONF_TEST(env_ignores_other_vars)
{
	char *envp[] = { "WORKERS=3",	      "XSANDBOXD_WORKERS=3", "sandboxd_workers=3",
			 "SANDBOX_WORKERS=3", "SANDBOXDWORKERS=3",   NULL };

	assert_int_equal(apply_env(f, envp), 0);
	assert_int_equal(f->c.workers, 8);
}

CONF_TEST(env_null_and_empty_envp)
{
	char *empty[] = { NULL };

	assert_int_equal(apply_env(f, NULL), 0);
	assert_int_equal(apply_env(f, empty), 0);
	assert_int_equal(f->c.workers, 8);
}

CONF_TEST(env_api_keys_comma_list)
{
	char *envp[] = { "SANDBOXD_API_KEYS=first-key-0123456789, second-key-0123456789", NULL };

	assert_int_equal(apply_env(f, envp), 0);
	assert_int_equal(f->c.n_api_keys, 2);
	assert_string_equal(f->c.api_keys[0], "first-key-0123456789");
	assert_string_equal(f->c.api_keys[1], "second-key-0123456789");
}

CONF_TEST(env_wins_over_file)
{
	char *envp[] = { "SANDBOXD_WORKERS=6", "SANDBOXD_API_KEYS=env-key-0123456789", NULL };

	assert_int_equal(parse(f, "workers = 4\napi_keys = file-key-aaaaaaaa, file-key-bbbbbbbb\n"),
			 0);
	assert_int_equal(apply_env(f, envp), 0);
	assert_int_equal(f->c.workers, 6);
	assert_int_equal(f->c.n_api_keys, 1);
	assert_string_equal(f->c.api_keys[0], "env-key-0123456789");
}

CONF_TEST(env_bad_value_is_refused)
{
	char *zero[] = { "SANDBOXD_WORKERS=0", NULL };
	char *word[] = { "SANDBOXD_WORKERS=many", NULL };
	char *short_key[] = { "SANDBOXD_API_KEYS=tooshort", NULL };

	assert_int_equal(apply_env(f, zero), -EINVAL);
	assert_err_has(f, "workers");
	assert_int_equal(apply_env(f, word), -EINVAL);
	assert_err_has(f, "workers");
	assert_int_equal(apply_env(f, short_key), -EINVAL);
	assert_err_has(f, "api_keys");
	assert_int_equal(f->c.workers, 8);
}

/* conf_check */

CONF_TEST(check_timeout_above_max_is_refused)
{
	f->c.exec_timeout_ms = 5000;
	f->c.exec_timeout_max_ms = 5000;
	assert_int_equal(check(f), 0);
	f->c.exec_timeout_ms = 5001;
	assert_int_equal(check(f), -EINVAL);
	assert_err_has(f, "exec_timeout_ms");
}

CONF_TEST(check_timeout_above_max_from_file)
{
	assert_int_equal(parse(f, "exec_timeout_ms = 60000\nexec_timeout_max_ms = 10000\n"), 0);
	assert_int_equal(check(f), -EINVAL);
}

CONF_TEST(check_uid_range_past_largest_uid)
{
	/* 4000000000 + 16384 * 65536 is past 2^32: the uids would wrap. */
	f->c.uid_base = 4000000000u;
	f->c.uid_slots = 16384;
	assert_int_equal(check(f), -EINVAL);
	assert_err_has(f, "uid_base");
	/* A range that ends well below (uid_t)-1 is fine. */
	f->c.uid_base = 4000000000u;
	f->c.uid_slots = 4096;
	assert_int_equal(check(f), 0);
	/* Just past: the last uid would be (uid_t)-1, which means "no uid". */
	f->c.uid_base = 4294967296ull - 65536;
	f->c.uid_slots = 1;
	assert_int_equal(check(f), -EINVAL);
	assert_err_has(f, "uid_base");
}

CONF_TEST(check_relative_socket_is_refused)
{
	assert_int_equal(parse(f, "socket = run/sandboxd.sock\n"), 0);
	assert_int_equal(check(f), -EINVAL);
	assert_err_has(f, "socket");
	free(f->c.socket);
	f->c.socket = NULL;
	assert_int_equal(check(f), -EINVAL);
	assert_err_has(f, "socket");
}

CONF_TEST(check_relative_state_dir_is_refused)
{
	assert_int_equal(parse(f, "state_dir = var/lib/sandboxd\n"), 0);
	assert_int_equal(check(f), -EINVAL);
	assert_err_has(f, "state_dir");
}

/* conf_load_file */

CONF_TEST(load_file_missing_gives_enoent_and_message)
{
	const char *path = "/nonexistent-sandboxd-test/sandboxd.conf";

	f->err[0] = '\0';
	assert_int_equal(conf_load_file(&f->c, path, f->err, sizeof(f->err)), -ENOENT);
	assert_err_has(f, path);
	assert_err_has(f, strerror(ENOENT));
}

CONF_TEST(load_file_directory_gives_eisdir)
{
	f->err[0] = '\0';
	assert_int_equal(conf_load_file(&f->c, "/", f->err, sizeof(f->err)), -EISDIR);
	assert_true(f->err[0] != '\0');
}

CONF_TEST(load_file_applies_settings)
{
	static const char text[] = "# test\nworkers = 3\nsocket = /tmp/t.sock\n"
				   "api_keys = file-key-0123456789\n";
	char *path = write_temp(text, sizeof(text) - 1);

	f->err[0] = '\0';
	assert_int_equal(conf_load_file(&f->c, path, f->err, sizeof(f->err)), 0);
	remove_temp(path);
	assert_int_equal(f->c.workers, 3);
	assert_string_equal(f->c.socket, "/tmp/t.sock");
	assert_int_equal(f->c.n_api_keys, 1);
}

CONF_TEST(load_file_error_names_the_line)
{
	static const char text[] = "workers = 3\n\nnope = 1\n";
	char *path = write_temp(text, sizeof(text) - 1);

	f->err[0] = '\0';
	assert_int_equal(conf_load_file(&f->c, path, f->err, sizeof(f->err)), -EINVAL);
	remove_temp(path);
	assert_err_has(f, "line 3");
	assert_err_has(f, "nope");
}

/* A file of n bytes of comment lines, the last setting workers = 5 if it fits. */
static char *
big_conf(size_t n)
{
	static const char tail[] = "workers = 5\n";
	char *text = malloc(n);

	assert_non_null(text);
	assert_true(n > sizeof(tail));
	memset(text, '#', n);
	for (size_t i = 63; i < n; i += 64)
		text[i] = '\n';
	memcpy(text + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	text[n - sizeof(tail)] = '\n';
	return text;
}

CONF_TEST(load_file_reads_across_buffer_growth)
{
	size_t n = 300000;
	char *text = big_conf(n);
	char *path = write_temp(text, n);

	free(text);
	f->err[0] = '\0';
	assert_int_equal(conf_load_file(&f->c, path, f->err, sizeof(f->err)), 0);
	remove_temp(path);
	assert_int_equal(f->c.workers, 5);
}

CONF_TEST(load_file_of_exactly_1mib_is_accepted)
{
	size_t n = 1u << 20;
	char *text = big_conf(n);
	char *path = write_temp(text, n);

	free(text);
	f->err[0] = '\0';
	/* The refusal says "larger than 1 MiB": a file of exactly 1 MiB is not. */
	if (conf_load_file(&f->c, path, f->err, sizeof(f->err)) != 0) {
		remove_temp(path);
		fail_msg("a file of exactly 1048576 bytes was refused: %s", f->err);
	}
	remove_temp(path);
	assert_int_equal(f->c.workers, 5);
}

CONF_TEST(load_file_larger_than_1mib_is_refused)
{
	size_t n = (1u << 20) + 1;
	char *text = big_conf(n);
	char *path = write_temp(text, n);

	free(text);
	f->err[0] = '\0';
	assert_int_equal(conf_load_file(&f->c, path, f->err, sizeof(f->err)), -EINVAL);
	remove_temp(path);
	assert_err_has(f, "1 MiB");
	assert_int_equal(f->c.workers, 8);
}

/* Allocation failures: each allocation in turn fails; the call must return
 * -ENOMEM (never succeed having lost a value, never crash) and conf_free()
 * must release everything that was allocated. */

static void
alloc_failure_in_defaults(void **state)
{
	long n, live = alloc_live;

	(void)state;
	for (n = 0;; n++) {
		struct conf c;
		int r;

		alloc_fail_nth(n);
		r = conf_defaults(&c);
		alloc_never_fail();
		if (!alloc_failed) {
			assert_int_equal(r, 0);
			conf_free(&c);
			break;
		}
		assert_int_equal(r, -ENOMEM);
		/* conf_defaults() cleaned up after itself; a second conf_free() is harmless. */
		assert_int_equal(alloc_live, live);
		conf_free(&c);
	}
	assert_int_equal(alloc_live, live);
	assert_true(n >= 4);
}

/* Runs op on a fresh default conf with allocation n failing, for every n. */
static void
alloc_failure_loop(int (*op)(struct conf *c, char *err, size_t errlen),
		   void (*verify)(struct conf *c))
{
	long n, live = alloc_live;

	for (n = 0;; n++) {
		struct conf c;
		char err[ERRLEN];
		int r;

		assert_int_equal(conf_defaults(&c), 0);
		alloc_fail_nth(n);
		r = op(&c, err, sizeof(err));
		alloc_never_fail();
		if (!alloc_failed) {
			assert_int_equal(r, 0);
			verify(&c);
			conf_free(&c);
			assert_int_equal(alloc_live, live);
			break;
		}
		if (r != -ENOMEM)
			fail_msg("allocation %ld failed and the call returned %d, not -ENOMEM", n,
				 r);
		conf_free(&c);
		assert_int_equal(alloc_live, live);
	}
	/* The loop really went through failures. */
	assert_true(n >= 3);
}

static const char alloc_text[] = "socket = /tmp/a.sock\n"
				 "api_keys = key-aaaaaaaaaaaaaaaa, key-bbbbbbbbbbbbbbbb\n"
				 "state_dir = /tmp/state\n"
				 "api_keys = key-cccccccccccccccc, key-dddddddddddddddd, "
				 "key-eeeeeeeeeeeeeeee\n";

static void
verify_alloc_text(struct conf *c)
{
	assert_string_equal(c->socket, "/tmp/a.sock");
	assert_string_equal(c->state_dir, "/tmp/state");
	assert_int_equal(c->n_api_keys, 3);
	assert_string_equal(c->api_keys[2], "key-eeeeeeeeeeeeeeee");
}

static int
op_parse(struct conf *c, char *err, size_t errlen)
{
	return conf_parse(c, alloc_text, sizeof(alloc_text) - 1, err, errlen);
}

static void
alloc_failure_in_parse(void **state)
{
	(void)state;
	alloc_failure_loop(op_parse, verify_alloc_text);
}

static int
op_env(struct conf *c, char *err, size_t errlen)
{
	char *envp[] = { "SANDBOXD_SOCKET=/tmp/a.sock", "SANDBOXD_STATE_DIR=/tmp/state",
			 "SANDBOXD_API_KEYS=key-aaaaaaaaaaaaaaaa,key-bbbbbbbbbbbbbbbb,"
			 "key-eeeeeeeeeeeeeeee",
			 NULL };

	return conf_apply_env(c, envp, err, errlen);
}

static void
verify_env(struct conf *c)
{
	assert_string_equal(c->socket, "/tmp/a.sock");
	assert_string_equal(c->state_dir, "/tmp/state");
	assert_int_equal(c->n_api_keys, 3);
	assert_string_equal(c->api_keys[2], "key-eeeeeeeeeeeeeeee");
}

static void
alloc_failure_in_env(void **state)
{
	(void)state;
	alloc_failure_loop(op_env, verify_env);
}

static char *alloc_file_path;

static int
op_load_file(struct conf *c, char *err, size_t errlen)
{
	return conf_load_file(c, alloc_file_path, err, errlen);
}

static void
alloc_failure_in_load_file(void **state)
{
	size_t n = 20000;
	char *text = big_conf(n);

	(void)state;
	/* Over 4 KiB, so that the read buffer grows at least once. */
	memcpy(text, alloc_text, sizeof(alloc_text) - 1);
	alloc_file_path = write_temp(text, n);
	free(text);
	alloc_failure_loop(op_load_file, verify_alloc_text);
	remove_temp(alloc_file_path);
	alloc_file_path = NULL;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(defaults_have_documented_values),
		T(defaults_pass_conf_check),
		T(parse_empty_input_changes_nothing),
		T(parse_skips_comments_and_blank_lines),
		T(parse_accepts_spaces_around_equals),
		T(parse_accepts_crlf_and_missing_final_newline),
		T(parse_later_line_wins),
		T(parse_unknown_key_names_the_line),
		T(parse_key_prefix_is_not_a_key),
		T(parse_line_without_equals_names_the_line),
		T(parse_stops_at_the_first_bad_line),
		T(parse_number_bounds_are_inclusive),
		T(parse_number_out_of_range_is_refused),
		T(parse_number_rejects_non_digits),
		T(parse_number_overflow_is_refused),
		T(parse_u32_above_int_max),
		T(parse_u64_fields),
		T(parse_string_fields),
		T(parse_string_value_keeps_equals_and_hash),
		T(parse_string_length_limits),
		T(parse_string_with_nul_is_refused),
		T(parse_api_keys_list),
		T(parse_api_keys_empty_entries_are_skipped),
		T(parse_api_keys_length_limits),
		T(parse_api_keys_short_key_among_good_ones),
		T(parse_api_keys_refuse_inner_spaces_and_controls),
		T(parse_api_keys_at_most_conf_max),
		T(parse_api_keys_replace_the_previous_list),
		T(free_wipes_api_keys),
		T(env_sets_workers),
		T(env_sets_strings_and_u64),
		T(env_ignores_unknown_sandboxd_vars),
		T(env_ignores_other_vars),
		T(env_null_and_empty_envp),
		T(env_api_keys_comma_list),
		T(env_wins_over_file),
		T(env_bad_value_is_refused),
		T(check_timeout_above_max_is_refused),
		T(check_timeout_above_max_from_file),
		T(check_uid_range_past_largest_uid),
		T(check_relative_socket_is_refused),
		T(check_relative_state_dir_is_refused),
		T(load_file_missing_gives_enoent_and_message),
		T(load_file_directory_gives_eisdir),
		T(load_file_applies_settings),
		T(load_file_error_names_the_line),
		T(load_file_reads_across_buffer_growth),
		T(load_file_of_exactly_1mib_is_accepted),
		T(load_file_larger_than_1mib_is_refused),
		cmocka_unit_test(alloc_failure_in_defaults),
		cmocka_unit_test(alloc_failure_in_parse),
		cmocka_unit_test(alloc_failure_in_env),
		cmocka_unit_test(alloc_failure_in_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
