/* SPDX-License-Identifier: MIT */
/*
 * test_sqlstate.c — daemon/common/sqlstate.c: each class with the codes
 * Postgres sends for it, the neighbours that must not fall into it, and
 * codes that are not SQLSTATEs at all.
 */
#include <check.h>
#include <stddef.h>

#include "common/sqlstate.h"
#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"

struct want {
	const char *code;
	enum sqlstate_class cls;
};

static void
check_all(const struct want *w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		ck_assert_msg(sqlstate_classify(w[i].code) == w[i].cls, "%s: class %d, want %d",
		    w[i].code ? w[i].code : "(null)", (int)sqlstate_classify(w[i].code),
		    (int)w[i].cls);
}

START_TEST(classes)
{
	static const struct want w[] = {
		{ "40001", SQLSTATE_RETRY },    /* serialization_failure */
		{ "40P01", SQLSTATE_RETRY },    /* deadlock_detected */
		{ "40000", SQLSTATE_ROLLBACK }, /* transaction_rollback */
		{ "40002", SQLSTATE_ROLLBACK }, /* integrity violation at commit */
		{ "40003", SQLSTATE_ROLLBACK }, /* statement_completion_unknown */
		{ "57014", SQLSTATE_TIMEOUT },  /* query_canceled */
		{ "22001", SQLSTATE_INVALID },  /* string_data_right_truncation */
		{ "22003", SQLSTATE_INVALID },  /* numeric_value_out_of_range */
		{ "22P02", SQLSTATE_INVALID },  /* invalid_text_representation */
		{ "08000", SQLSTATE_CONNECTION },
		{ "08006", SQLSTATE_CONNECTION }, /* connection_failure */
		{ "57P01", SQLSTATE_CONNECTION }, /* admin_shutdown */
		{ "57P03", SQLSTATE_CONNECTION }, /* cannot_connect_now */
		{ "53100", SQLSTATE_CONNECTION }, /* disk_full */
		{ "53300", SQLSTATE_CONNECTION }, /* too_many_connections */
		{ "23505", SQLSTATE_OTHER },      /* unique_violation */
		{ "42P01", SQLSTATE_OTHER },      /* undefined_table */
		{ "57000", SQLSTATE_OTHER },      /* operator_intervention, not 57P */
		{ "P0001", SQLSTATE_OTHER },      /* raise_exception */
		{ "XX000", SQLSTATE_OTHER },      /* internal_error */
	};

	check_all(w, sizeof(w) / sizeof(w[0]));
}
END_TEST

START_TEST(not_a_sqlstate)
{
	static const struct want w[] = {
		{ NULL, SQLSTATE_OTHER },
		{ "", SQLSTATE_OTHER },
		{ "40", SQLSTATE_OTHER },
		{ "4000", SQLSTATE_OTHER },
		{ "400010", SQLSTATE_OTHER },
		{ "40p01", SQLSTATE_OTHER },
		{ "22 01", SQLSTATE_OTHER },
	};

	check_all(w, sizeof(w) / sizeof(w[0]));
}
END_TEST

Suite *
sqlstate_suite(void)
{
	const TTest *const tests[] = { classes, not_a_sqlstate, NULL };

	return tl_suite("sqlstate", 0, tests);
}
