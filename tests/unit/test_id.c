/*
 * test_id.c: unit tests of fcgi-app/id.c: sandbox IDs are DNS labels
 * (^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$) and not one of the reserved names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "id.h"

static int
group_setup(void **state)
{
	(void)state;
	return id_init() == 0 ? 0 : -1;
}

/* Asserts that the len bytes at id are a valid ID. */
static void
assert_valid(const char *id, size_t len)
{
	const char *why = NULL;

	if (!id_check(id, len, &why))
		fail_msg("\"%.*s\" (%zu bytes) refused: %s", (int)len, id, len,
			 why ? why : "(null)");
	/* ret_reason is only written on failure. */
	assert_null(why);
}

/* Asserts that the len bytes at id are refused, with a reason. */
static void
assert_invalid(const char *id, size_t len)
{
	const char *why = NULL;

	if (id_check(id, len, &why))
		fail_msg("\"%.*s\" (%zu bytes) accepted", (int)len, id, len);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
}

/* A string of n copies of ch; static, overwritten by the next call. */
static const char *
repeat(char ch, size_t n)
{
	static char buf[128];

	assert_true(n < sizeof(buf));
	memset(buf, ch, n);
	buf[n] = '\0';
	return buf;
}

static void
init_is_idempotent(void **state)
{
	(void)state;
	assert_int_equal(id_init(), 0);
	assert_int_equal(id_init(), 0);
	assert_valid("abc", 3);
}

static void
single_characters_are_valid(void **state)
{
	(void)state;
	assert_valid("a", 1);
	assert_valid("z", 1);
	assert_valid("0", 1);
	assert_valid("9", 1);
}

static void
ordinary_ids_are_valid(void **state)
{
	(void)state;
	assert_valid("abc-123", 7);
	assert_valid("a-b", 3);
	assert_valid("a--b", 4);
	assert_valid("123", 3);
	assert_valid("my-sandbox-01", 13);
}

static void
sixty_three_characters_are_valid(void **state)
{
	char id[64];

	(void)state;
	memcpy(id, repeat('a', 63), 64);
	assert_valid(id, 63);
	/* With hyphens inside, ending in a digit. */
	memset(id + 1, '-', 61);
	id[62] = '7';
	assert_valid(id, 63);
}

static void
empty_id_is_invalid(void **state)
{
	(void)state;
	assert_invalid("", 0);
	assert_invalid("abc", 0);
}

static void
sixty_four_characters_are_invalid(void **state)
{
	(void)state;
	assert_invalid(repeat('a', 64), 64);
	assert_invalid(repeat('b', 100), 100);
}

static void
uppercase_is_invalid(void **state)
{
	(void)state;
	assert_invalid("A", 1);
	assert_invalid("Abc", 3);
	assert_invalid("abC", 3);
	assert_invalid("ABC-123", 7);
}

static void
leading_or_trailing_hyphen_is_invalid(void **state)
{
	(void)state;
	assert_invalid("-", 1);
	assert_invalid("-abc", 4);
	assert_invalid("abc-", 4);
	assert_invalid("-abc-", 5);
	assert_invalid("--", 2);
}

static void
punctuation_is_invalid(void **state)
{
	static const char *const bad[] = {
		"a_b", "a.b", "a/b",   "..",   ".",   "/",  "a b", "a\tb",
		"a:b", "a@b", "a%2fb", "a\\b", "a+b", "a*", "*",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_invalid(bad[i], strlen(bad[i]));
}

static void
trailing_newline_is_invalid(void **state)
{
	(void)state;
	/* A plain '$' would match before a final newline; the pattern must not. */
	assert_invalid("abc\n", 4);
	assert_invalid("\nabc", 4);
}

static void
unicode_is_invalid(void **state)
{
	(void)state;
	assert_invalid("caf\xc3\xa9", 5); /* café */
	assert_invalid("\xd0\xb0", 2);	  /* Cyrillic a, a homograph of "a" */
	assert_invalid("a\xe2\x80\x8b"
		       "b",
		       5);	   /* a zero-width space b */
	assert_invalid("\xff", 1); /* not UTF-8 at all */
}

static void
nul_inside_explicit_length_is_invalid(void **state)
{
	(void)state;
	/* The length is what counts, not the first NUL: "ab" must not pass as "ab\0cd". */
	assert_invalid("ab\0cd", 5);
	assert_invalid("ab\0", 3);
	assert_invalid("\0ab", 3);
	/* And bytes past len are not looked at. */
	assert_valid("ab\0cd", 2);
	assert_valid("abc-", 3);
}

static void
reserved_names_are_invalid(void **state)
{
	static const char *const reserved[] = { "www", "api", "admin", "root", "system" };

	(void)state;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		assert_invalid(reserved[i], strlen(reserved[i]));
}

static void
names_containing_reserved_words_are_valid(void **state)
{
	(void)state;
	/* Only the exact names are reserved. */
	assert_valid("www1", 4);
	assert_valid("api-2", 5);
	assert_valid("myadmin", 7);
	assert_valid("roots", 5);
	assert_valid("system-x", 8);
	assert_valid("ww", 2);
	/* A reserved name as the first len bytes of a longer string. */
	assert_valid("wwwx", 4);
	assert_invalid("wwwx", 3);
}

static void
reason_differs_for_length_and_pattern(void **state)
{
	const char *too_long = NULL, *bad = NULL, *res = NULL;

	(void)state;
	assert_false(id_check(repeat('a', 64), 64, &too_long));
	assert_false(id_check("A", 1, &bad));
	assert_false(id_check("root", 4, &res));
	assert_non_null(too_long);
	assert_non_null(bad);
	assert_non_null(res);
	/* Each reason says what is wrong, so the three differ. */
	assert_string_not_equal(too_long, bad);
	assert_string_not_equal(bad, res);
	assert_string_not_equal(too_long, res);
	assert_non_null(strstr(too_long, "63"));
	assert_non_null(strstr(res, "reserved"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_is_idempotent),
		cmocka_unit_test(single_characters_are_valid),
		cmocka_unit_test(ordinary_ids_are_valid),
		cmocka_unit_test(sixty_three_characters_are_valid),
		cmocka_unit_test(empty_id_is_invalid),
		cmocka_unit_test(sixty_four_characters_are_invalid),
		cmocka_unit_test(uppercase_is_invalid),
		cmocka_unit_test(leading_or_trailing_hyphen_is_invalid),
		cmocka_unit_test(punctuation_is_invalid),
		cmocka_unit_test(trailing_newline_is_invalid),
		cmocka_unit_test(unicode_is_invalid),
		cmocka_unit_test(nul_inside_explicit_length_is_invalid),
		cmocka_unit_test(reserved_names_are_invalid),
		cmocka_unit_test(names_containing_reserved_words_are_valid),
		cmocka_unit_test(reason_differs_for_length_and_pattern),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
