/* SPDX-License-Identifier: MIT */
/*
 * test_main.c — build/test_unit: every module's unit tests (see unit.h) in
 * one runner, so Check prints one summary line.
 */
#include "unit.h"
#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"

int
main(void)
{
	Suite *const suites[] = {
		config_suite(),
		log_suite(),
		util_suite(),
		pay_validate_suite(),
		pay_wire_suite(),
		auth_token_suite(),
		page_token_suite(),
		acct_validate_suite(),
		utf8_suite(),
		backoff_suite(),
		sqlstate_suite(),
		front_h2guard_suite(),
		metrics_suite(),
		http_min_suite(),
		sup_proto_suite(),
		sup_door_suite(),
		payment_proto_suite(),
		testlib_suite(),
	};

	return tl_run_suites(suites, (int)(sizeof(suites) / sizeof(suites[0])), CK_NORMAL, 0);
}
