/* SPDX-License-Identifier: MIT */
/*
 * test_sup_door.c — the supervisor's per-address front door
 * (daemon/sup/sup_door.c): the connection cap holds per address and frees
 * on release, the accept bucket refills at its rate, addresses are told
 * apart without their ports, and a full table fails open.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "sup/sup_door.h"

START_TEST(address_without_port)
{
	char ip[SUP_DOOR_IP_MAX];

	sup_door_ip("ipv4:10.0.0.7:5555", ip);
	ck_assert_str_eq(ip, "10.0.0.7");
	sup_door_ip("ipv6:[::1]:443", ip);
	ck_assert_str_eq(ip, "[::1]");
	sup_door_ip("", ip);
	ck_assert_str_eq(ip, "");
}
END_TEST

START_TEST(cap_per_address)
{
	int i;

	sup_door_init(3, 0, 1);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(sup_door_admit("127.0.0.2", 1000), SUP_DOOR_OK);
	ck_assert_int_eq(sup_door_admit("127.0.0.2", 1000), SUP_DOOR_PER_IP_LIMIT);
	/* Another address is not affected. */
	ck_assert_int_eq(sup_door_admit("127.0.0.3", 1000), SUP_DOOR_OK);
	ck_assert_int_eq(sup_door_conns("127.0.0.2"), 3);
	sup_door_release("127.0.0.2");
	ck_assert_int_eq(sup_door_admit("127.0.0.2", 1000), SUP_DOOR_OK);
	ck_assert_int_eq(sup_door_admit("127.0.0.2", 1000), SUP_DOOR_PER_IP_LIMIT);
	/* Releasing an address never seen, or more often than admitted, is
	 * harmless. */
	sup_door_release("10.9.9.9");
	for (i = 0; i < 10; i++)
		sup_door_release("127.0.0.3");
	ck_assert_int_eq(sup_door_conns("127.0.0.3"), 0);
}
END_TEST

START_TEST(accept_rate_bucket)
{
	int64_t t = 5000;
	int i, ok = 0;

	sup_door_init(0, 10, 20); /* 10/s, burst 20, no cap */
	for (i = 0; i < 100; i++)
		ok += sup_door_admit("127.0.0.4", t) == SUP_DOOR_OK;
	ck_assert_int_eq(ok, 20);
	ck_assert_int_eq(sup_door_admit("127.0.0.4", t), SUP_DOOR_RATE);
	/* 500 ms later: 5 more tokens. */
	t += 500;
	for (i = 0, ok = 0; i < 100; i++)
		ok += sup_door_admit("127.0.0.4", t) == SUP_DOOR_OK;
	ck_assert_int_eq(ok, 5);
	/* Admitted connections released: the rate still applies. */
	for (i = 0; i < 25; i++)
		sup_door_release("127.0.0.4");
	ck_assert_int_eq(sup_door_admit("127.0.0.4", t), SUP_DOOR_RATE);
	/* Another address has its own bucket. */
	ck_assert_int_eq(sup_door_admit("127.0.0.5", t), SUP_DOOR_OK);
}
END_TEST

START_TEST(no_limits_configured)
{
	int i;

	sup_door_init(0, 0, 1);
	for (i = 0; i < 10000; i++)
		ck_assert_int_eq(sup_door_admit("127.0.0.6", 1), SUP_DOOR_OK);
}
END_TEST

START_TEST(full_table_fails_open)
{
	char ip[SUP_DOOR_IP_MAX];
	int i, refused = 0;

	sup_door_init(1, 0, 1);
	/* 5000 addresses each holding a connection: more than the table. */
	for (i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		refused += sup_door_admit(ip, 1) != SUP_DOOR_OK;
	}
	ck_assert_int_eq(refused, 0);
	ck_assert_uint_gt(sup_door_overflow(), 0);
	/* Addresses that got a slot are still capped. */
	ck_assert_int_eq(sup_door_admit("10.0.0.1", 1), SUP_DOOR_PER_IP_LIMIT);
}
END_TEST

Suite *
sup_door_suite(void)
{
	Suite *s = suite_create("sup_door");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, address_without_port);
	tcase_add_test(tc, cap_per_address);
	tcase_add_test(tc, accept_rate_bucket);
	tcase_add_test(tc, no_limits_configured);
	tcase_add_test(tc, full_table_fails_open);
	suite_add_tcase(s, tc);
	return s;
}
