/* SPDX-License-Identifier: MIT */
/*
 * test_rl.c — the rate limiter (daemon/rl.c) against a real Redis.
 *
 * Needs REDIS_URL (tests/run-all exports its private Redis). Parsing and
 * identity cases need no server. Cases that need Redis to fail start
 * their own redis-server (or a socket that never answers) on a free
 * loopback port and stop it themselves. Each case uses client ids unique
 * to its process, so runs never share budgets with each other or with a
 * paymentd using the same Redis.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <hiredis/hiredis.h>

#include "common/config.h"
#include "common/log.h"
#include "rl/rl.h"
#include "common/util.h"
#include "tests/lib/testlib.h"

/* ---- helpers ---------------------------------------------------------- */

static void
base_cfg(struct config *c, const char *limits, int def)
{
	const char *u = getenv("REDIS_URL");

	ck_assert_msg(u != NULL, "REDIS_URL is not set: run through tests/run-all or export it");
	cfg_defaults(c);
	snprintf(c->redis_url, sizeof(c->redis_url), "%s", u);
	snprintf(c->rate_limits, sizeof(c->rate_limits), "%s", limits);
	c->rate_limit_default = def;
	c->rate_limit_window_s = 1;
	c->rate_limit_enabled = 1;
	c->rate_limit_fail_open = 1;
}

static void
uniq(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "t-%s-%d-%lld", tag, (int)getpid(), (long long)util_realtime_ms());
}

static struct rl *
open_ok(const struct config *c)
{
	struct rl *r = NULL;
	char err[256] = "";

	ck_assert_msg(rl_open(c, &r, err, sizeof(err)) == 0, "rl_open: %s", err);
	ck_assert_ptr_nonnull(r);
	return r;
}

/* A second connection to the test Redis, for looking behind rl's back. */
static redisContext *
admin(void)
{
	struct rl_url u;
	char err[256];
	redisContext *c;
	redisReply *rep;

	ck_assert_int_eq(rl_parse_url(getenv("REDIS_URL"), &u, err, sizeof(err)), 0);
	c = redisConnect(u.host, u.port);
	ck_assert_msg(c != NULL && !c->err, "admin connect failed");
	if (u.password[0]) {
		rep = redisCommand(c, "AUTH %s", u.password);
		freeReplyObject(rep);
	}
	rep = redisCommand(c, "SELECT %d", u.db);
	ck_assert_ptr_nonnull(rep);
	freeReplyObject(rep);
	return c;
}

static long long
admin_int(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *rep = redisCommand(c, fmt, arg);
	long long v;

	ck_assert_ptr_nonnull(rep);
	ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
	v = rep->integer;
	freeReplyObject(rep);
	return v;
}

/* Starts a private redis-server on 127.0.0.1:port; waits until it answers. */
static pid_t
start_redis(int port, const char *pass)
{
	char ps[16];
	char *argv[] = { "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", "/tmp", "--requirepass", (char *)pass, NULL };
	pid_t pid;
	int i;

	snprintf(ps, sizeof(ps), "%d", port);
	if (pass == NULL)
		argv[11] = NULL; /* no --requirepass */
	pid = tl_spawn(argv, NULL, NULL, NULL);
	ck_assert_int_ge(pid, 0);
	for (i = 0; i < 100; i++) {
		redisContext *c = redisConnect("127.0.0.1", port);
		if (c && !c->err) {
			redisReply *rep = redisCommand(c, "PING");
			int ok = rep != NULL; /* PONG, or NOAUTH: it is up */
			freeReplyObject(rep);
			redisFree(c);
			if (ok)
				return pid;
		} else if (c) {
			redisFree(c);
		}
		usleep(50000);
	}
	tl_stop(pid, SIGKILL, 5000, NULL);
	ck_abort_msg("private redis-server on port %d did not start", port);
	return -1;
}

static void
stop_redis(pid_t pid)
{
	int st;

	ck_assert_int_eq(tl_stop(pid, SIGKILL, 5000, &st), 0);
}

/* ---- parsing (no server) ------------------------------------------------ */

START_TEST(parse_limits_valid)
{
	int l[RL_NMETHODS];
	char err[256];

	ck_assert_int_eq(
	    rl_parse_limits("AuthorizePayment=100,GetPayment=500", 1000, l, err, sizeof(err)), 0);
	ck_assert_int_eq(l[RL_M_AUTHORIZE_PAYMENT], 100);
	ck_assert_int_eq(l[RL_M_GET_PAYMENT], 500);
	ck_assert_int_eq(l[RL_M_GET_ACCOUNT_BALANCE], 1000);

	ck_assert_int_eq(rl_parse_limits("", 7, l, err, sizeof(err)), 0);
	ck_assert_int_eq(l[RL_M_AUTHORIZE_PAYMENT], 7);
	ck_assert_int_eq(l[RL_M_GET_PAYMENT], 7);
	ck_assert_int_eq(l[RL_M_GET_ACCOUNT_BALANCE], 7);

	ck_assert_int_eq(rl_parse_limits(" GetAccountBalance = 0 ,\tAuthorizePayment=100000000 ", 3,
	                     l, err, sizeof(err)),
	    0);
	ck_assert_int_eq(l[RL_M_AUTHORIZE_PAYMENT], 100000000);
	ck_assert_int_eq(l[RL_M_GET_PAYMENT], 3);
	ck_assert_int_eq(l[RL_M_GET_ACCOUNT_BALANCE], 0);
}
END_TEST

START_TEST(parse_limits_errors)
{
	static const struct {
		const char *spec, *needle;
	} bad[] = {
		{ "Foo=1", "unknown method \"Foo\"" },
		{ "authorizepayment=1", "unknown method" },
		{ "HealthCheck=1", "unknown method" },
		{ "AuthorizePayment", "expected Method=N" },
		{ "AuthorizePayment=", "missing limit" },
		{ "AuthorizePayment=abc", "invalid limit" },
		{ "AuthorizePayment=-1", "invalid limit" },
		{ "AuthorizePayment=1e3", "invalid limit" },
		{ "AuthorizePayment=100000001", "invalid limit" },
		{ "AuthorizePayment=99999999999999999999999", "invalid limit" },
		{ "AuthorizePayment=1,", "expected Method=N" },
		{ ",AuthorizePayment=1", "expected Method=N" },
		{ "AuthorizePayment=1,,GetPayment=2", "expected Method=N" },
		{ "AuthorizePayment=1;GetPayment=2", "invalid limit" },
		{ "AuthorizePayment=1,AuthorizePayment=2", "given twice" },
		{ "AuthorizePayment=1 2", "invalid limit" },
	};
	int l[RL_NMETHODS];
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(rl_parse_limits(bad[i].spec, 5, l, err, sizeof(err)) == -1,
		    "accepted \"%s\"", bad[i].spec);
		ck_assert_msg(
		    strncmp(err, "RATE_LIMITS: ", 13) == 0, "\"%s\": %s", bad[i].spec, err);
		ck_assert_msg(strstr(err, bad[i].needle) != NULL, "\"%s\": %s", bad[i].spec, err);
	}
}
END_TEST

START_TEST(parse_url_forms)
{
	struct rl_url u;
	char err[256];

	ck_assert_int_eq(rl_parse_url("redis://localhost:6379/0", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "localhost");
	ck_assert_int_eq(u.port, 6379);
	ck_assert_int_eq(u.db, 0);
	ck_assert_str_eq(u.password, "");

	ck_assert_int_eq(rl_parse_url("redis://10.1.2.3", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "10.1.2.3");
	ck_assert_int_eq(u.port, 6379);
	ck_assert_int_eq(u.db, 0);

	ck_assert_int_eq(
	    rl_parse_url("redis://:s3cr%40t@redis.internal:7000/5", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "redis.internal");
	ck_assert_int_eq(u.port, 7000);
	ck_assert_int_eq(u.db, 5);
	ck_assert_str_eq(u.user, "");
	ck_assert_str_eq(u.password, "s3cr@t");

	ck_assert_int_eq(rl_parse_url("redis://app:pw@[::1]:6380/2", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "::1");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, 2);
	ck_assert_str_eq(u.user, "app");
	ck_assert_str_eq(u.password, "pw");

	ck_assert_int_eq(rl_parse_url("redis://h/", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.db, 0);
}
END_TEST

START_TEST(parse_url_errors)
{
	static const char *const bad[] = {
		"http://localhost:6379/0",
		"rediss://h:6379/0",
		"redis://",
		"redis://:6379/0",
		"redis://h:0/0",
		"redis://h:65536/0",
		"redis://h:abc/0",
		"redis://h:6379/x",
		"redis://h:6379/0?timeout=1",
		"redis://pw@h:6379/0",
		"redis://[::1:6379/0",
		"redis://[::1]x/0",
		"redis://h o:1/0",
		"redis://:%zz@h/0",
		"redis://:%00@h/0",
		"localhost:6379",
	};
	struct rl_url u;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(
		    rl_parse_url(bad[i], &u, err, sizeof(err)) == -1, "accepted %s", bad[i]);
		ck_assert_msg(strncmp(err, "REDIS_URL: ", 11) == 0, "%s: %s", bad[i], err);
	}
}
END_TEST

START_TEST(config_errors)
{
	struct config c;
	struct rl *r = (struct rl *)1;
	char err[256];

	base_cfg(&c, "AuthorizePayment=10,Bogus=3", 5);
	ck_assert_int_eq(rl_config_check(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "RATE_LIMITS"));
	ck_assert_int_eq(rl_open(&c, &r, err, sizeof(err)), -1);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(err, "Bogus"));

	base_cfg(&c, "AuthorizePayment=10", 5);
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://h:99999/0");
	ck_assert_int_eq(rl_config_check(&c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "REDIS_URL"));
	ck_assert_int_eq(rl_open(&c, &r, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "REDIS_URL"));

	base_cfg(&c, "AuthorizePayment=10", 5);
	ck_assert_int_eq(rl_config_check(&c, err, sizeof(err)), 0);
}
END_TEST

START_TEST(identity_rules)
{
	char out[RL_CLIENT_MAX], small[8], id64[65], id65[66];

	ck_assert_int_eq(
	    rl_client_identity("mobile-app/1.2@tenant_7", "ipv4:10.0.0.1:5555", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "mobile-app/1.2@tenant_7");
	/* Not sane: spaces, braces (Redis Cluster hash tags), control bytes,
	 * empty, too long -> the peer address. */
	ck_assert_int_eq(rl_client_identity("bad id", "ipv4:10.0.0.1:5555", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "10.0.0.1");
	ck_assert_int_eq(rl_client_identity("a{b}", "ipv4:10.0.0.2:1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "10.0.0.2");
	ck_assert_int_eq(rl_client_identity("x\ny", "ipv4:10.0.0.3:1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "10.0.0.3");
	ck_assert_int_eq(rl_client_identity("", "ipv4:10.0.0.4:1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "10.0.0.4");
	memset(id64, 'a', 64);
	id64[64] = '\0';
	memset(id65, 'a', 65);
	id65[65] = '\0';
	ck_assert_int_eq(rl_client_identity(id64, "ipv4:10.0.0.5:1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, id64);
	ck_assert_int_eq(rl_client_identity(id65, "ipv4:10.0.0.5:1", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "10.0.0.5");

	ck_assert_int_eq(rl_client_identity(NULL, "ipv6:[::1]:5555", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "::1");
	ck_assert_int_eq(
	    rl_client_identity(NULL, "ipv6:%5B2001:db8:0:0::7%5D:443", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "2001:db8::7");
	ck_assert_int_eq(
	    rl_client_identity(NULL, "ipv6:[::ffff:192.0.2.9]:80", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "192.0.2.9");
	ck_assert_int_eq(rl_client_identity(NULL, "ipv6:[fe80::1%25eth0]:80", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "fe80::1");
	ck_assert_int_eq(rl_client_identity(NULL, "unix:/run/paymentd.sock", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "unix");

	/* Unusable: what grpc reports for fd-added channels, junk, nothing. */
	ck_assert_int_eq(rl_client_identity(NULL, "fd:7", out, sizeof(out)), -1);
	ck_assert_str_eq(out, "unknown");
	ck_assert_int_eq(rl_client_identity(NULL, "ipv4:999.1.1.1:5", out, sizeof(out)), -1);
	ck_assert_str_eq(out, "unknown");
	ck_assert_int_eq(rl_client_identity(NULL, "ipv4:1.2.3.4", out, sizeof(out)), -1);
	ck_assert_int_eq(rl_client_identity(NULL, NULL, out, sizeof(out)), -1);
	ck_assert_str_eq(out, "unknown");
	ck_assert_int_eq(
	    rl_client_identity("", "", out, sizeof(out)), -1); /* no peer handed over */
	ck_assert_str_eq(out, "unknown");
	ck_assert_int_eq(rl_client_identity("ok", "ipv4:1.2.3.4:5", small, sizeof(small)), -1);
}
END_TEST

START_TEST(peer_from_real_socket)
{
	struct sockaddr_in a;
	socklen_t sl = sizeof(a);
	char peer[128], want[128], id[RL_CLIENT_MAX];
	int ls, cs, ss, port;

	ls = tl_listen(&port);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cs = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(cs, (struct sockaddr *)&a, sizeof(a)), 0);
	ss = accept(ls, NULL, NULL);
	ck_assert_int_ge(ss, 0);
	sl = sizeof(a);
	ck_assert_int_eq(getsockname(cs, (struct sockaddr *)&a, &sl), 0);
	snprintf(want, sizeof(want), "ipv4:127.0.0.1:%u", (unsigned)ntohs(a.sin_port));

	ck_assert_int_eq(rl_peer_from_fd(ss, peer, sizeof(peer)), 0);
	ck_assert_str_eq(peer, want);
	ck_assert_int_eq(rl_client_identity(NULL, peer, id, sizeof(id)), 0);
	ck_assert_str_eq(id, "127.0.0.1");
	ck_assert_int_eq(rl_peer_from_fd(ss, peer, 8), -1);            /* does not fit */
	ck_assert_int_eq(rl_peer_from_fd(ls, peer, sizeof(peer)), -1); /* not connected */
	close(ss);
	close(cs);
	close(ls);
}
END_TEST

START_TEST(disabled_allows_without_redis)
{
	struct config c;
	struct rl *r;
	int64_t ra = -1;
	int i;

	base_cfg(&c, "AuthorizePayment=1", 1);
	c.rate_limit_enabled = 0;
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://127.0.0.1:%d/0", tl_free_port());
	r = open_ok(&c);
	ck_assert_int_eq(rl_down(r), 0);
	ck_assert_int_eq(rl_fd(r), -1); /* never connected */
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(rl_check(r, "AuthorizePayment", "anyone", &ra), RL_ALLOW);
	ck_assert_int_eq(ra, 0);
	rl_close(r);
}
END_TEST

/* ---- against the real Redis ---------------------------------------------- */

START_TEST(allows_exactly_n_then_denies)
{
	struct config c;
	struct rl *r;
	redisContext *a;
	char client[64], key[128];
	int64_t ra = 0;
	long long pttl;
	int i;

	base_cfg(&c, "AuthorizePayment=5", 1000);
	r = open_ok(&c);
	ck_assert_int_eq(rl_down(r), 0);
	uniq(client, sizeof(client), "n");
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(rl_check(r, "AuthorizePayment", client, &ra), RL_ALLOW);
		ck_assert_int_eq(ra, 0);
	}
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(rl_check(r, "AuthorizePayment", client, &ra), RL_DENY);
		ck_assert_msg(ra >= 1 && ra <= 1000, "retry_after_ms %lld", (long long)ra);
	}
	/* The log holds exactly the admitted requests and expires with the
	 * window. */
	a = admin();
	snprintf(key, sizeof(key), "ratelimit:AuthorizePayment:%s", client);
	ck_assert_int_eq(admin_int(a, "ZCARD %s", key), 5);
	pttl = admin_int(a, "PTTL %s", key);
	ck_assert_msg(pttl > 0 && pttl <= 1000, "PTTL %lld", pttl);
	/* Later in the window the wait is shorter. */
	usleep(300000);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", client, &ra), RL_DENY);
	ck_assert_msg(ra >= 1 && ra <= 750, "retry_after_ms %lld after 300 ms", (long long)ra);
	redisFree(a);
	rl_close(r);
}
END_TEST

START_TEST(rejected_requests_do_not_consume_quota)
{
	struct config c;
	struct rl *r;
	redisContext *a;
	char client[64], key[128];
	int64_t ra = 0, t0;
	int i, allowed;

	base_cfg(&c, "GetPayment=5", 1000);
	r = open_ok(&c);
	uniq(client, sizeof(client), "q");
	snprintf(key, sizeof(key), "ratelimit:GetPayment:%s", client);
	t0 = util_now_ms();
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(rl_check(r, "GetPayment", client, &ra), RL_ALLOW);
	/* Hammer it for most of the window: all refused. Had refusals been
	 * logged, the late ones would still fill the next window. */
	while (util_now_ms() - t0 < 800) {
		ck_assert_int_eq(rl_check(r, "GetPayment", client, &ra), RL_DENY);
		usleep(20000);
	}
	a = admin();
	ck_assert_int_eq(admin_int(a, "ZCARD %s", key), 5);
	/* Wait out the retry-after the limiter itself announced. */
	ck_assert_int_eq(rl_check(r, "GetPayment", client, &ra), RL_DENY);
	usleep((useconds_t)(ra + 60) * 1000);
	for (allowed = 0, i = 0; i < 8; i++)
		allowed += rl_check(r, "GetPayment", client, &ra) == RL_ALLOW;
	ck_assert_int_eq(allowed, 5);
	ck_assert_int_eq(admin_int(a, "ZCARD %s", key), 5);
	redisFree(a);
	rl_close(r);
}
END_TEST

START_TEST(separate_budgets_per_client_and_method)
{
	struct config c;
	struct rl *r;
	redisContext *a;
	char ca[64], cb[64], key[160];
	int64_t ra;
	int i;

	base_cfg(&c, "AuthorizePayment=3,GetPayment=3,GetAccountBalance=0", 2);
	r = open_ok(&c);
	uniq(ca, sizeof(ca), "a");
	uniq(cb, sizeof(cb), "b");
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(rl_check(r, "AuthorizePayment", ca, &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", ca, &ra), RL_DENY);
	/* Another client: its own budget. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(rl_check(r, "AuthorizePayment", cb, &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", cb, &ra), RL_DENY);
	/* Same client, another method: its own budget. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(rl_check(r, "GetPayment", ca, &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(r, "GetPayment", ca, &ra), RL_DENY);
	/* 0 = unlimited, and no Redis key at all. */
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(rl_check(r, "GetAccountBalance", ca, &ra), RL_ALLOW);
	a = admin();
	snprintf(key, sizeof(key), "ratelimit:GetAccountBalance:%s", ca);
	ck_assert_int_eq(admin_int(a, "EXISTS %s", key), 0);
	/* A method RATE_LIMITS cannot name uses RATE_LIMIT_DEFAULT (2). */
	ck_assert_int_eq(rl_check(r, "TestSyscall", ca, &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(r, "TestSyscall", ca, &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(r, "TestSyscall", ca, &ra), RL_DENY);
	snprintf(key, sizeof(key), "ratelimit:TestSyscall:%s", ca);
	ck_assert_int_eq(admin_int(a, "ZCARD %s", key), 2);
	redisFree(a);
	rl_close(r);
}
END_TEST

static long long
evals_count(redisContext *a)
{
	redisReply *rep = redisCommand(a, "INFO commandstats");
	const char *p;
	long long n = 0;

	ck_assert_ptr_nonnull(rep);
	ck_assert_int_eq(rep->type, REDIS_REPLY_STRING);
	p = strstr(rep->str, "cmdstat_eval:calls=");
	if (p) {
		char *end;

		p += strlen("cmdstat_eval:calls=");
		errno = 0;
		n = strtoll(p, &end, 10);
		ck_assert_msg(end != p && *end == ',' && errno == 0, "INFO commandstats: %.40s", p);
	}
	freeReplyObject(rep);
	return n;
}

START_TEST(script_reloaded_after_flush)
{
	struct config c;
	struct rl *r;
	redisContext *a;
	redisReply *rep;
	char client[64];
	int64_t ra;
	long long before;

	base_cfg(&c, "AuthorizePayment=3", 1000);
	r = open_ok(&c);
	uniq(client, sizeof(client), "f");
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", client, &ra), RL_ALLOW);
	a = admin();
	rep = redisCommand(a, "SCRIPT FLUSH");
	ck_assert_ptr_nonnull(rep);
	ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
	freeReplyObject(rep);
	before = evals_count(a);
	/* NOSCRIPT -> EVAL: still a real decision, and the count carries on. */
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", client, &ra), RL_ALLOW);
	ck_assert_int_eq(rl_down(r), 0);
	ck_assert_int_ge(evals_count(a), before + 1);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", client, &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", client, &ra), RL_DENY);
	ck_assert_int_eq(rl_down(r), 0);
	redisFree(a);
	rl_close(r);
}
END_TEST

START_TEST(unreachable_redis_fails_open_or_closed)
{
	struct config c;
	struct rl *r;
	int64_t ra = -1, t0;
	int port = tl_free_port();

	base_cfg(&c, "AuthorizePayment=1,GetAccountBalance=0", 1);
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://127.0.0.1:%d/0", port);
	t0 = util_now_ms();
	r = open_ok(&c);
	ck_assert_int_lt(util_now_ms() - t0, 1000);
	ck_assert_int_eq(rl_down(r), 1);
	ck_assert_int_eq(rl_fd(r), -1);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", "c1", &ra), RL_UNAVAILABLE_ALLOW);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", "c1", &ra), RL_UNAVAILABLE_ALLOW);
	ck_assert_int_eq(ra, 0);
	/* Unlimited methods never need Redis. */
	ck_assert_int_eq(rl_check(r, "GetAccountBalance", "c1", &ra), RL_ALLOW);
	rl_close(r);

	c.rate_limit_fail_open = 0;
	r = open_ok(&c);
	ck_assert_int_eq(rl_down(r), 1);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", "c1", &ra), RL_UNAVAILABLE_DENY);
	ck_assert_int_eq(rl_check(r, "GetPayment", "c1", &ra), RL_UNAVAILABLE_DENY);
	rl_close(r);
}
END_TEST

START_TEST(redis_dies_while_open)
{
	struct config c;
	struct rl *open_r, *closed_r;
	int64_t ra, t0;
	int port = tl_free_port();
	pid_t srv = start_redis(port, NULL);

	base_cfg(&c, "AuthorizePayment=100", 100);
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://127.0.0.1:%d/0", port);
	open_r = open_ok(&c);
	c.rate_limit_fail_open = 0;
	closed_r = open_ok(&c);
	ck_assert_int_eq(rl_down(open_r), 0);
	ck_assert_int_eq(rl_check(open_r, "AuthorizePayment", "c", &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(closed_r, "AuthorizePayment", "c", &ra), RL_ALLOW);
	{
		/* Idle, the socket stays quiet; when Redis goes, it turns
		 * readable (EOF): what an idle pool worker polls for. */
		struct pollfd p = { rl_fd(open_r), POLLIN, 0 };
		ck_assert_int_ge(p.fd, 0);
		ck_assert_int_eq(poll(&p, 1, 100), 0);
		stop_redis(srv);
		ck_assert_int_eq(poll(&p, 1, 2000), 1);
	}

	t0 = util_now_ms();
	ck_assert_int_eq(rl_check(open_r, "AuthorizePayment", "c", &ra), RL_UNAVAILABLE_ALLOW);
	ck_assert_int_eq(rl_check(closed_r, "AuthorizePayment", "c", &ra), RL_UNAVAILABLE_DENY);
	ck_assert_int_eq(rl_down(open_r), 1);
	ck_assert_int_eq(rl_down(closed_r), 1);
	ck_assert_int_eq(rl_fd(open_r), -1);
	/* Down for good: no reconnect attempt, so it stays fast. */
	ck_assert_int_eq(rl_check(open_r, "AuthorizePayment", "c", &ra), RL_UNAVAILABLE_ALLOW);
	ck_assert_int_lt(util_now_ms() - t0, 3 * (int64_t)RL_TIMEOUT_MS);
	rl_close(open_r);
	rl_close(closed_r);
}
END_TEST

START_TEST(silent_redis_times_out)
{
	struct config c;
	struct rl *r;
	int64_t ra, t0;
	int port;
	/* Listening but never accepting: connect succeeds (the kernel
	 * completes the handshake), every command then times out. */
	int ls = tl_listen(&port);

	base_cfg(&c, "AuthorizePayment=1", 1);
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://127.0.0.1:%d/0", port);
	t0 = util_now_ms();
	r = open_ok(&c);
	ck_assert_int_ge(util_now_ms() - t0, RL_TIMEOUT_MS - 20);
	ck_assert_int_lt(util_now_ms() - t0, 3 * (int64_t)RL_TIMEOUT_MS);
	ck_assert_int_eq(rl_down(r), 1);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", "c", &ra), RL_UNAVAILABLE_ALLOW);
	rl_close(r);
	close(ls);
}
END_TEST

START_TEST(password_and_db_from_url)
{
	struct config c;
	struct rl *r;
	redisContext *a;
	redisReply *rep;
	int64_t ra;
	int port = tl_free_port();
	pid_t srv = start_redis(port, "s3cr@t");

	base_cfg(&c, "AuthorizePayment=1", 1);
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://:s3cr%%40t@127.0.0.1:%d/3", port);
	r = open_ok(&c);
	ck_assert_int_eq(rl_down(r), 0);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", "pw-client", &ra), RL_ALLOW);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", "pw-client", &ra), RL_DENY);
	rl_close(r);

	/* The key landed in db 3. */
	a = redisConnect("127.0.0.1", port);
	ck_assert(a != NULL && !a->err);
	rep = redisCommand(a, "AUTH s3cr@t");
	freeReplyObject(rep);
	rep = redisCommand(a, "SELECT 3");
	freeReplyObject(rep);
	rep = redisCommand(a, "EXISTS ratelimit:AuthorizePayment:pw-client");
	ck_assert_int_eq(rep->integer, 1);
	freeReplyObject(rep);
	redisFree(a);

	/* A wrong password: down, fail open. */
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://:wrong@127.0.0.1:%d/3", port);
	r = open_ok(&c);
	ck_assert_int_eq(rl_down(r), 1);
	ck_assert_int_eq(rl_check(r, "AuthorizePayment", "pw-client", &ra), RL_UNAVAILABLE_ALLOW);
	rl_close(r);
	stop_redis(srv);
}
END_TEST

START_TEST(warning_logged_at_most_once_per_interval)
{
	struct config c;
	struct rl *r;
	char buf[65536], *p;
	int pfd[2], i, lines = 0;
	ssize_t n;
	int64_t ra;

	ck_assert_int_eq(pipe2(pfd, O_NONBLOCK), 0);
	log_set_fd(pfd[1]);
	base_cfg(&c, "AuthorizePayment=1", 1);
	snprintf(c.redis_url, sizeof(c.redis_url), "redis://127.0.0.1:%d/0", tl_free_port());
	r = open_ok(&c);
	for (i = 0; i < 200; i++)
		ck_assert_int_eq(rl_check(r, "AuthorizePayment", "c", &ra), RL_UNAVAILABLE_ALLOW);
	log_set_fd(2);
	n = read(pfd[0], buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, "rate limiter down")) != NULL; p++)
		lines++;
	ck_assert_int_eq(lines, 1);
	ck_assert_ptr_nonnull(strstr(buf, "Connection refused"));
	rl_close(r);
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tp = tcase_create("parsing");
	TCase *tr = tcase_create("redis");

	log_init("test_rl", LOG_WARNING, LOG_FORMAT_JSON);
	tcase_add_test(tp, parse_limits_valid);
	tcase_add_test(tp, parse_limits_errors);
	tcase_add_test(tp, parse_url_forms);
	tcase_add_test(tp, parse_url_errors);
	tcase_add_test(tp, config_errors);
	tcase_add_test(tp, identity_rules);
	tcase_add_test(tp, peer_from_real_socket);
	tcase_add_test(tp, disabled_allows_without_redis);
	suite_add_tcase(s, tp);

	tcase_set_timeout(tr, 30);
	tcase_add_test(tr, allows_exactly_n_then_denies);
	tcase_add_test(tr, rejected_requests_do_not_consume_quota);
	tcase_add_test(tr, separate_budgets_per_client_and_method);
	tcase_add_test(tr, script_reloaded_after_flush);
	tcase_add_test(tr, unreachable_redis_fails_open_or_closed);
	tcase_add_test(tr, redis_dies_while_open);
	tcase_add_test(tr, silent_redis_times_out);
	tcase_add_test(tr, password_and_db_from_url);
	tcase_add_test(tr, warning_logged_at_most_once_per_interval);
	suite_add_tcase(s, tr);
	return tl_run(s, CK_NORMAL, 0);
}
