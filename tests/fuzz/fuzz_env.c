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
	    !memchr(c->user, '\0', sizeof(c->user)) ||
	    !memchr(c->chroot_dir, '\0', sizeof(c->chroot_dir)) ||
	    !memchr(c->rate_limits, '\0', sizeof(c->rate_limits)) ||
	    !memchr(c->topic_prefix, '\0', sizeof(c->topic_prefix)) ||
	    !memchr(c->journal_path, '\0', sizeof(c->journal_path)) ||
	    !memchr(c->migrations_dir, '\0', sizeof(c->migrations_dir)))
		abort();
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
		if (c.grpc_port < 1 || c.grpc_port > 65535 || c.max_workers < 1 || c.max_workers > 4096 ||
		    c.worker_pool_size < 0 || c.worker_pool_size > 4096 ||
		    c.max_concurrent_streams < 1 || c.max_concurrent_streams > 10000 ||
		    c.metrics_port < 0 || c.metrics_port > 65535 ||
		    (c.sandbox != 0 && c.sandbox != 1) || (c.rate_limit_enabled != 0 && c.rate_limit_enabled != 1) ||
		    !(c.outbox_poll_interval_s >= 0.001 && c.outbox_poll_interval_s <= 3600) ||
		    !(c.outbox_base_delay_s >= 0.001 && c.outbox_max_delay_s <= 86400) ||
		    c.log_level < 0 || c.log_level > 4)
			abort();
	}
	cfg_defaults(&c2);
	rc2 = cfg_parse_env_buf(&c2, (const char *)data, size, 0, err2, sizeof(err2));
	if (rc2 != rc || memcmp(&c, &c2, sizeof(c)) != 0 || (rc < 0 && strcmp(err, err2) != 0))
		abort();
	return 0;
}
