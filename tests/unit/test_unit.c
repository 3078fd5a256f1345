/*
 * test_unit.c — unit tests of the pure logic: request validation,
 * fingerprints, ULIDs, correlation ids, config parsing, log escaping and
 * protobuf round trips. No servers needed.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "ledger/pay_validate.h"
#include "common/util.h"
#include "payment/v1/payment.pb-c.h"

static struct pay_request
good_req(void)
{
	struct pay_request r = { "key-1", "acc-payer-001", "acc-payee-002", 5000, "USD", "Coffee" };
	return r;
}

START_TEST(validate_accepts_good_request)
{
	struct pay_request r = good_req();
	char msg[256];

	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	r.amount_cents = 0;	/* a decline, not a bad request */
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	r.amount_cents = -5;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(validate_rejects_missing_fields)
{
	struct pay_request r;
	char msg[256];

	r = good_req(); r.idempotency_key = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "idempotency_key is required");
	r = good_req(); r.payer = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "payer_account_id is required");
	r = good_req(); r.payee = NULL;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "payee_account_id is required");
	r = good_req(); r.currency = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "currency is required");
}
END_TEST

START_TEST(validate_rejects_malformed_fields)
{
	struct pay_request r;
	char msg[256], big[2048];

	r = good_req(); r.currency = "usd";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "ISO 4217"));
	r = good_req(); r.currency = "USDX";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	r = good_req(); r.payer = "acc payer";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "payer_account_id"));
	memset(big, 'a', 200); big[200] = '\0';
	r = good_req(); r.idempotency_key = big;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "too long"));
	r = good_req(); r.idempotency_key = "k\x01";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	r = good_req(); r.description = "bad \xff utf8";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "description must be valid UTF-8");
	memset(big, 'd', 2000); big[2000] = '\0';
	r = good_req(); r.description = big;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	r = good_req(); r.description = "caf\xc3\xa9 \xe2\x98\x95";	/* café ☕ */
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(utf8_rejects_overlong_and_surrogates)
{
	ck_assert_int_eq(pay_utf8_valid("plain"), 1);
	ck_assert_int_eq(pay_utf8_valid("\xc0\xaf"), 0);		/* overlong '/' */
	ck_assert_int_eq(pay_utf8_valid("\xed\xa0\x80"), 0);	/* U+D800 */
	ck_assert_int_eq(pay_utf8_valid("\xf4\x90\x80\x80"), 0);	/* > U+10FFFF */
	ck_assert_int_eq(pay_utf8_valid("\xf0\x9f\x92\xb3"), 1);	/* 💳 */
	ck_assert_int_eq(pay_utf8_valid("\xe2\x82"), 0);		/* truncated */
}
END_TEST

START_TEST(fingerprint_is_stable_and_field_sensitive)
{
	struct pay_request a = good_req(), b = good_req();
	uint8_t fa[32], fb[32];

	pay_fingerprint(&a, fa);
	pay_fingerprint(&b, fb);
	ck_assert_mem_eq(fa, fb, 32);
	b.idempotency_key = "other-key";	/* the key is not part of it */
	pay_fingerprint(&b, fb);
	ck_assert_mem_eq(fa, fb, 32);
	b = good_req(); b.amount_cents = 5001;
	pay_fingerprint(&b, fb);
	ck_assert(memcmp(fa, fb, 32) != 0);
	b = good_req(); b.description = "Coffee ";
	pay_fingerprint(&b, fb);
	ck_assert(memcmp(fa, fb, 32) != 0);
	/* Length prefixes: moving a character across a field boundary
	 * must change the fingerprint. */
	a.payer = "ab"; a.payee = "c";
	b = good_req(); b.payer = "a"; b.payee = "bc";
	pay_fingerprint(&a, fa);
	pay_fingerprint(&b, fb);
	ck_assert(memcmp(fa, fb, 32) != 0);
}
END_TEST

START_TEST(ulid_encoding)
{
	uint8_t zero[10] = { 0 }, ones[10];
	char u[PAY_ULID_LEN + 1], v[PAY_ULID_LEN + 1];

	memset(ones, 0xff, sizeof(ones));
	ck_assert_int_eq(pay_ulid_at(0, zero, u), 0);
	ck_assert_str_eq(u, "00000000000000000000000000");
	ck_assert_int_eq(pay_ulid_at(0xFFFFFFFFFFFFLL, ones, u), 0);
	ck_assert_str_eq(u, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
	/* Known vector: 1469918176385 ms is 01ARYZ6S41 in the time part. */
	ck_assert_int_eq(pay_ulid_at(1469918176385LL, zero, u), 0);
	ck_assert_int_eq(strncmp(u, "01ARYZ6S41", 10), 0);
	ck_assert_int_eq(pay_ulid_at(-1, zero, u), -1);
	ck_assert_int_eq(pay_ulid(u), 0);
	ck_assert_int_eq(pay_ulid(v), 0);
	ck_assert_int_eq((int)strlen(u), 26);
	ck_assert_str_ne(u, v);
}
END_TEST

START_TEST(correlation_id_sanitized)
{
	char out[PAY_CORR_MAX + 1];

	pay_correlation_id("req-42.abc", out);
	ck_assert_str_eq(out, "req-42.abc");
	pay_correlation_id("evil\"\nline", out);
	ck_assert_int_eq((int)strlen(out), 32);
	ck_assert_ptr_null(strchr(out, '"'));
	pay_correlation_id(NULL, out);
	ck_assert_int_eq((int)strlen(out), 32);
	ck_assert_int_eq((int)strspn(out, "0123456789abcdef"), 32);
}
END_TEST

/* util_random() keeps a pool; a forked child must never hand out the
 * bytes its parent will (two workers minting the same payment ids). */
START_TEST(random_pool_not_shared_across_fork)
{
	unsigned char a[16], b[16], warm[8];
	int pfd[2], st;
	pid_t pid;

	ck_assert_int_eq(util_random(warm, sizeof(warm)), 0);	/* pool filled */
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		unsigned char c[16];
		if (util_random(c, sizeof(c)) < 0 || write(pfd[1], c, sizeof(c)) != sizeof(c))
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(util_random(a, sizeof(a)), 0);
	ck_assert_int_eq((int)read(pfd[0], b, sizeof(b)), (int)sizeof(b));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	/* Successive draws differ too, across a pool refill. */
	for (int i = 0; i < 40; i++) {
		ck_assert_int_eq(util_random(b, sizeof(b)), 0);
		ck_assert(memcmp(a, b, sizeof(a)) != 0);
		memcpy(a, b, sizeof(a));
	}
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

START_TEST(error_code_mapping)
{
	ck_assert_int_eq(pay_error_code_from_name("INSUFFICIENT_FUNDS"),
	    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_INSUFFICIENT_FUNDS);
	ck_assert_int_eq(pay_error_code_from_name("ACCOUNT_INACTIVE"), 7);
	ck_assert_int_eq(pay_error_code_from_name("nope"), 0);
	ck_assert_int_eq(pay_status_from_name("DECLINED"), 2);
	ck_assert_int_eq(pay_status_from_name(""), 0);
}
END_TEST

START_TEST(proto_round_trip_matches_seed_wire_format)
{
	Payment__V1__AuthorizePaymentRequest r = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT, *d;
	uint8_t buf[256];
	size_t n;
	/* Bytes a protoc-generated client produces for
	 * {idempotency_key:"k", payer:"a", payee:"b", amount_cents:5000,
	 *  currency:"USD", description:"c"}: field numbers 1..6. */
	static const uint8_t expect[] = {
		0x0a, 0x01, 'k', 0x12, 0x01, 'a', 0x1a, 0x01, 'b',
		0x20, 0x88, 0x27, 0x2a, 0x03, 'U', 'S', 'D', 0x32, 0x01, 'c',
	};

	r.idempotency_key = "k"; r.payer_account_id = "a"; r.payee_account_id = "b";
	r.amount_cents = 5000; r.currency = "USD"; r.description = "c";
	n = protobuf_c_message_pack(&r.base, buf);
	ck_assert_uint_eq(n, sizeof(expect));
	ck_assert_mem_eq(buf, expect, sizeof(expect));
	d = payment__v1__authorize_payment_request__unpack(NULL, n, buf);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->currency, "USD");
	ck_assert_int_eq(d->amount_cents, 5000);
	payment__v1__authorize_payment_request__free_unpacked(d, NULL);
	/* Truncated input must fail cleanly. */
	ck_assert_ptr_null(payment__v1__authorize_payment_request__unpack(NULL, n - 1, buf));
}
END_TEST

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
	const char *env =
	    "# comment\n"
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

START_TEST(log_escape_and_truncate)
{
	char out[64];

	log_json_escape(out, sizeof(out), "a\"b\\c\nd\x01", 100);
	ck_assert_str_eq(out, "a\\\"b\\\\c\\nd\\u0001");
	log_json_escape(out, sizeof(out), "abcdefghij", 4);
	ck_assert_str_eq(out, "abcd...");
	log_json_escape(out, sizeof(out), "x\xffy", 100);
	ck_assert_str_eq(out, "x\\ufffdy");
	log_json_escape(out, sizeof(out), "caf\xc3\xa9", 100);
	ck_assert_str_eq(out, "caf\xc3\xa9");
	log_json_escape(out, 8, "0123456789", 100);	/* bounded by dst */
	ck_assert(strlen(out) < 8);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("unit");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, validate_accepts_good_request);
	tcase_add_test(tc, validate_rejects_missing_fields);
	tcase_add_test(tc, validate_rejects_malformed_fields);
	tcase_add_test(tc, utf8_rejects_overlong_and_surrogates);
	tcase_add_test(tc, fingerprint_is_stable_and_field_sensitive);
	tcase_add_test(tc, ulid_encoding);
	tcase_add_test(tc, correlation_id_sanitized);
	tcase_add_test(tc, random_pool_not_shared_across_fork);
	tcase_add_test(tc, error_code_mapping);
	tcase_add_test(tc, proto_round_trip_matches_seed_wire_format);
	tcase_add_test(tc, config_defaults_and_ranges);
	tcase_add_test(tc, config_env_file_parsing);
	tcase_add_test(tc, log_escape_and_truncate);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
