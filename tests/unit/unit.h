/* SPDX-License-Identifier: MIT */
/*
 * unit.h — the unit tests (build/test_unit): one file per module,
 * mirroring the source layout, each giving its suite; test_main.c runs
 * them all in one runner. No servers needed.
 *
 *   test_config.c        daemon/common/config.c
 *   test_log.c           daemon/common/log.c
 *   test_util.c          daemon/common/util.c
 *   test_utf8.c          daemon/common/utf8.c      (suites in unit_suites_extra.h)
 *   test_backoff.c       daemon/common/backoff.c
 *   test_sqlstate.c      daemon/common/sqlstate.c
 *   test_pay_validate.c  daemon/ledger/pay_validate.c
 *   test_pay_wire.c      daemon/ledger/pay_wire.c  (suite in unit_suites_extra.h)
 *   test_auth_token.c    daemon/auth/auth_token.c  (suite in unit_suites_extra.h)
 *   test_sup_proto.c     daemon/sup/sup_proto.c
 *   test_payment_proto.c proto/payment/v1/payment.proto (generated code)
 *   test_testlib.c       tests/lib/testlib.c (the helpers of these programs)
 */
#ifndef UNIT_H
#define UNIT_H

#include <check.h>

Suite *config_suite(void);
Suite *log_suite(void);
Suite *util_suite(void);
Suite *pay_validate_suite(void);
Suite *sup_proto_suite(void);
Suite *sup_door_suite(void);
Suite *payment_proto_suite(void);
Suite *testlib_suite(void);

#endif
