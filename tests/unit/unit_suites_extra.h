/* SPDX-License-Identifier: MIT */
/*
 * unit_suites_extra.h — libcheck suites of the shared libc-only helpers
 * in daemon/common/ (utf8, backoff, sqlstate), one per file in
 * tests/unit/, for the unit test binary's main to add to its runner.
 */
#ifndef PAYMENTD_UNIT_SUITES_EXTRA_H
#define PAYMENTD_UNIT_SUITES_EXTRA_H

#include <check.h>

Suite *utf8_suite(void);
Suite *backoff_suite(void);
Suite *sqlstate_suite(void);
/* test_front_h2guard.c: daemon/front/front_h2guard.c */
Suite *front_h2guard_suite(void);
Suite *metrics_suite(void);  /* test_metrics.c: daemon/metrics/metrics.c */
Suite *http_min_suite(void); /* test_http_min.c: daemon/common/http_min.c */
Suite *pay_wire_suite(void); /* test_pay_wire.c: daemon/ledger/pay_wire.c */
/* test_auth_token.c: daemon/auth/auth_token.c */
Suite *auth_token_suite(void);
/* test_page_token.c: daemon/ledger/page_token.c */
Suite *page_token_suite(void);
/* test_acct_validate.c: daemon/ledger/acct_validate.c */
Suite *acct_validate_suite(void);

#endif
