/* SPDX-License-Identifier: MIT */
/*
 * fuzz_env.c — libFuzzer harness for the .env parser, cfg_parse_env_buf()
 * (daemon/config.c), which reads an operator-supplied file before anything
 * else runs.
 *
 * Contract: never crashes, leaks or trips ASan/UBSan, for any bytes; and
 * aborts (a finding) if
 *  - it fails without a NUL-terminated, non-empty message, or leaves a
 *    string setting unterminated;
 *  - an accepted file leaves a numeric setting outside the range
 *    config.c declares (the daemon trusts validated values);
 *  - parsing is not deterministic (same bytes, same result and config).
 * The real environment is not consulted (skip_env = 0), so runs are
 * reproducible.
 */
#include "common/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_strings(const struct config *c)
{
	if (!memchr(c->database_url, '\0', sizeof(c->database_url)) ||
	    !memchr(c->redis_url, '\0', sizeof(c->redis_url)) ||
	    !memchr(c->brokers, '\0', sizeof(c->brokers)) ||
	    !memchr(c->grpc_host, '\0', sizeof(c->grpc_host)) ||
	    !memchr(c->metrics_host, '\0', sizeof(c->metrics_host)) ||
	    !memchr(c->user, '\0', sizeof(c->user)) ||
	    !memchr(c->chroot_dir, '\0', sizeof(c->chroot_dir)) ||
	    !memchr(c->rate_limits, '\0', sizeof(c->rate_limits)) ||
	    !memchr(c->topic_prefix, '\0', sizeof(c->topic_prefix)) ||
	    !memchr(c->journal_path, '\0', sizeof(c->journal_path)) ||
	    !memchr(c->migrations_dir, '\0', sizeof(c->migrations_dir)))
		abort();
}

/* Member by member (keep in step with struct config): memcmp() would also
 * compare padding and the bytes after each string's NUL, which parsing
 * leaves undefined. Strings are terminated (check_strings). */
static int
same_config(const struct config *a, const struct config *b)
{
#define S_(f) (strcmp(a->f, b->f) == 0)
#define I_(f) (a->f == b->f)
#define D_(f) (a->f == b->f || (a->f != a->f && b->f != b->f)) /* NaN matches NaN */
	return S_(database_url) && S_(redis_url) && S_(brokers) && S_(grpc_host) && I_(grpc_port) &&
	    I_(max_workers) && I_(worker_pool_size) && I_(worker_idle_timeout_s) &&
	    I_(worker_max_age_s) && I_(shutdown_grace_s) && I_(max_concurrent_streams) &&
	    I_(idempotency_ttl_s) && I_(db_retry_max) && I_(log_level) && I_(log_format) &&
	    I_(metrics_port) && S_(metrics_host) && S_(user) && S_(chroot_dir) && I_(sandbox) &&
	    I_(sandbox_debug) && I_(rate_limit_enabled) && I_(rate_limit_fail_open) &&
	    I_(rate_limit_window_s) && S_(rate_limits) && I_(rate_limit_default) &&
	    I_(outbox_batch_size) && D_(outbox_poll_interval_s) && I_(outbox_max_retries) &&
	    D_(outbox_base_delay_s) && D_(outbox_max_delay_s) && S_(topic_prefix) &&
	    S_(journal_path) && I_(relay_metrics_port) && S_(migrations_dir);
#undef S_
#undef I_
#undef D_
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config c, c2;
	char err[512], err2[512];
	int rc, rc2;

	cfg_defaults(&c);
	memset(err, 'X', sizeof(err));
	rc = cfg_parse_env_buf(&c, (const char *)data, size, 0, err, sizeof(err));
	if (rc != 0 && rc != -1)
		abort();
	/* config.h promises a message naming the line; value errors from
	 * cfg_set() name the variable instead (reported separately), so only
	 * a terminated, non-empty message is required here. */
	if (rc < 0 && (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0'))
		abort();
	check_strings(&c);
	if (rc == 0) {
		if (c.grpc_port < 1 || c.grpc_port > 65535 || c.max_workers < 1 ||
		    c.max_workers > 4096 || c.worker_pool_size < 0 || c.worker_pool_size > 4096 ||
		    c.max_concurrent_streams < 1 || c.max_concurrent_streams > 10000 ||
		    c.metrics_port < 0 || c.metrics_port > 65535 ||
		    (c.sandbox != 0 && c.sandbox != 1) ||
		    (c.rate_limit_enabled != 0 && c.rate_limit_enabled != 1) ||
		    !(c.outbox_poll_interval_s >= 0.001 && c.outbox_poll_interval_s <= 3600) ||
		    !(c.outbox_base_delay_s >= 0.001 && c.outbox_max_delay_s <= 86400) ||
		    c.log_level < 0 || c.log_level > 4)
			abort();
	}
	cfg_defaults(&c2);
	rc2 = cfg_parse_env_buf(&c2, (const char *)data, size, 0, err2, sizeof(err2));
	check_strings(&c2);
	if (rc2 != rc || !same_config(&c, &c2) || (rc < 0 && strcmp(err, err2) != 0))
		abort();
	return 0;
}
