/* SPDX-License-Identifier: MIT */
/*
 * test_config.c — daemon/common/config.c: defaults, ranges and the
 * environment-file parser.
 */
#include <check.h>
#include <string.h>

#include "unit.h"
#include "tests/lib/testlib.h"
#include "common/config.h"
#include "common/log.h"

START_TEST(config_defaults_and_ranges)
{
	struct config c;
	char err[256];

	cfg_defaults(&c);
	ck_assert_int_eq(c.grpc_port, 50051);
	ck_assert_int_eq(c.outbox_batch_size, 100);
	ck_assert(c.outbox_poll_interval_s == 1.0);
	ck_assert_int_eq(c.outbox_max_retries, 5);
	ck_assert_str_eq(c.redis_url, "redis://localhost:6379/0");
	ck_assert_int_eq(cfg_set(&c, "GRPC_PORT", "70000", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "GRPC_PORT"));
	ck_assert_ptr_nonnull(strstr(err, "1..65535"));
	ck_assert_int_eq(cfg_set(&c, "GRPC_PORT", "12x", err, sizeof(err)), -1);
	ck_assert_int_eq(cfg_set(&c, "LOG_LEVEL", "loud", err, sizeof(err)), -1);
	ck_assert_int_eq(cfg_set(&c, "LOG_LEVEL", "debug", err, sizeof(err)), 0);
	ck_assert_int_eq(c.log_level, LOG_DEBUG);
	ck_assert_int_eq(cfg_set(&c, "SANDBOX", "maybe", err, sizeof(err)), -1);
	ck_assert_int_eq(cfg_set(&c, "OUTBOX_POLL_INTERVAL_SECONDS", "nan", err, sizeof(err)), -1);
	ck_assert_int_eq(cfg_set(&c, "NOT_OURS", "x", err, sizeof(err)), 1);
}
END_TEST

START_TEST(config_env_file_parsing)
{
	struct config c;
	char err[256];
	const char *env = "# comment\n"
	                  "export GRPC_PORT=6000\n"
	                  "LOG_FORMAT = console\n"
	                  "REDIS_URL=\"redis://h:1/2\"\n"
	                  "KAFKA_TOPIC_PREFIX=pay # trailing comment\n"
	                  "UNRELATED=whatever\n"
	                  "\r\n";

	cfg_defaults(&c);
	ck_assert_int_eq(cfg_parse_env_buf(&c, env, strlen(env), 0, err, sizeof(err)), 0);
	ck_assert_int_eq(c.grpc_port, 6000);
	ck_assert_int_eq(c.log_format, LOG_FORMAT_CONSOLE);
	ck_assert_str_eq(c.redis_url, "redis://h:1/2");
	ck_assert_str_eq(c.topic_prefix, "pay");
	ck_assert_int_eq(cfg_parse_env_buf(&c, "GRPC_PORT=0\n", 12, 0, err, sizeof(err)), -1);
	ck_assert_int_eq(cfg_parse_env_buf(&c, "JUSTAWORD\n", 10, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "line 1"));
	ck_assert_int_eq(cfg_parse_env_buf(&c, "REDIS_URL=\"open\n", 16, 0, err, sizeof(err)), -1);
}
END_TEST

Suite *
config_suite(void)
{
	const TTest *const tests[] = {
		config_defaults_and_ranges,
		config_env_file_parsing,
		NULL,
	};

	return tl_suite("config", 0, tests);
}
