/* SPDX-License-Identifier: MIT */
/*
 * it_sandbox.c — proves the worker sandbox on a real paymentd: the
 * credentials a worker ends up with, and that forbidden syscalls kill only
 * the offending worker (SIGSYS) while the supervisor and other connections
 * carry on. Runs build/paymentd-testhooks (a test-only build with a method
 * that attempts syscalls on request) on a private port. Needs root.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <pwd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common/util.h"
#include "ctl/gcli.h"
#include "grpc/grpc_util.h"
#include "sandbox/sandbox.h"
#include "tests/lib/testlib.h"

static pid_t sup;
static char target[64], logpath[512];

static int
rpc(grpc_channel *ch, const char *method, const char *payload, struct gcli_result *res)
{
	return gcli_unary(
	    ch, method, (const uint8_t *)payload, strlen(payload), 5000, NULL, 0, res);
}

static int
health_ok(grpc_channel *ch)
{
	struct gcli_result r;
	int ok = rpc(ch, "/grpc.health.v1.Health/Check", "", &r) == 0 &&
	    r.status == GRPC_STATUS_OK && r.len == 2 && r.body[1] == 1;

	gcli_result_free(&r);
	return ok;
}

static int
start_daemon(void)
{
	const char *build = getenv("BUILD_DIR"), *logdir = getenv("TEST_LOG_DIR");
	/* A free port of the harness's block, so this daemon never collides
	 * with another. */
	int port = tl_free_port();
	char bin[512], portenv[32], tail[2048];
	char *argv[3];
	FILE *f;
	size_t n;
	int i, st;

	snprintf(bin, sizeof(bin), "%s/paymentd-testhooks", build ? build : "build");
	snprintf(logpath, sizeof(logpath), "%s/sandbox-paymentd.log", logdir ? logdir : "/tmp");
	snprintf(portenv, sizeof(portenv), "%d", port);
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	setenv("GRPC_PORT", portenv, 1);
	setenv("METRICS_PORT", "0", 1);
	setenv("WORKER_POOL_SIZE", "1", 1);
	setenv("SANDBOX", "on", 1);
	setenv("SANDBOX_DEBUG", "off", 1);
	/* Short, so a spinning worker is killed within the test's patience. */
	setenv("WORKER_CPU_BUDGET_SECONDS", "2", 1);
	argv[0] = bin;
	argv[1] = (char *)"serve";
	argv[2] = NULL;
	if ((sup = tl_spawn(argv, NULL, NULL, logpath)) < 0)
		return -1;
	for (i = 0; i < 100; i++) {
		grpc_channel *ch = gcli_channel(target, 1);
		int ok = health_ok(ch);
		grpc_channel_destroy(ch);
		if (ok)
			return 0;
		if (tl_wait(sup, 0, &st) == 0) { /* it exited: say why */
			sup = 0;
			break;
		}
		usleep(100000);
	}
	fprintf(stderr, "paymentd-testhooks did not become healthy on %s; end of %s:\n", target,
	    logpath);
	if ((f = fopen(logpath, "r")) != NULL) {
		if (fseek(f, -2000, SEEK_END) != 0)
			rewind(f);
		while ((n = fread(tail, 1, sizeof(tail), f)) > 0)
			fwrite(tail, 1, n, stderr);
		fclose(f);
	}
	return -1;
}

static void
stop_daemon(void)
{
	if (sup > 0)
		tl_stop(sup, SIGTERM, 60000, NULL);
}

/* Worker pids: children of the supervisor except the log forwarder and the
 * janitor. */
static int
workers(pid_t *out, int max)
{
	return tl_children(sup, "paymentd-log|paymentd-jan", out, max);
}

static int
status_field(pid_t pid, const char *field, char *val, size_t len)
{
	char path[64], line[512];
	FILE *f;
	size_t fl = strlen(field);

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			char *v = line + fl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = 0;
			snprintf(val, len, "%s", v);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -1;
}

START_TEST(worker_credentials_after_drop)
{
	grpc_channel *ch = gcli_channel(target, 1);
	struct passwd *pw = getpwnam("paymentd");
	pid_t pids[64];
	char v[256], want[128], root[256];
	int n, i, ready = 0;
	ssize_t rl;

	ck_assert_ptr_nonnull(pw);
	ck_assert(health_ok(ch)); /* one worker now holds our connection */
	n = workers(pids, 64);
	ck_assert_int_gt(n, 0);
	for (i = 0; i < n; i++) {
		char rp[64];
		/* A worker is sandboxed from READY on; one still starting may not be. */
		if (status_field(pids[i], "Seccomp", v, sizeof(v)) < 0 || strcmp(v, "2") != 0)
			continue;
		ready++;
		snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_uid, pw->pw_uid, pw->pw_uid,
		    pw->pw_uid);
		ck_assert_int_eq(status_field(pids[i], "Uid", v, sizeof(v)), 0);
		ck_assert_str_eq(v, want);
		snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_gid, pw->pw_gid, pw->pw_gid,
		    pw->pw_gid);
		ck_assert_int_eq(status_field(pids[i], "Gid", v, sizeof(v)), 0);
		ck_assert_str_eq(v, want);
		ck_assert_int_eq(status_field(pids[i], "Groups", v, sizeof(v)), 0);
		ck_assert_str_eq(v, "");
		ck_assert_int_eq(status_field(pids[i], "CapEff", v, sizeof(v)), 0);
		ck_assert_str_eq(v, "0000000000000000");
		ck_assert_int_eq(status_field(pids[i], "CapPrm", v, sizeof(v)), 0);
		ck_assert_str_eq(v, "0000000000000000");
		ck_assert_int_eq(status_field(pids[i], "NoNewPrivs", v, sizeof(v)), 0);
		ck_assert_str_eq(v, "1");
		snprintf(rp, sizeof(rp), "/proc/%d/root", (int)pids[i]);
		rl = readlink(rp, root, sizeof(root) - 1);
		ck_assert_int_gt(rl, 0);
		root[rl] = 0;
		ck_assert_str_eq(root, "/var/lib/paymentd/empty");
	}
	ck_assert_int_gt(ready, 0);
	printf("checked %d sandboxed workers: uid/gid %u, no groups, no capabilities, "
	       "NoNewPrivs 1, Seccomp 2, root /var/lib/paymentd/empty\n",
	    ready, pw->pw_uid);
	grpc_channel_destroy(ch);
}
END_TEST

static void
expect_survives(grpc_channel *ch, const char *op, const char *want)
{
	struct gcli_result r;
	char body[64];

	ck_assert_int_eq(rpc(ch, "/paymentd.test.Hooks/Syscall", op, &r), 0);
	ck_assert_msg(r.status == GRPC_STATUS_OK, "%s: %s", op, r.details);
	snprintf(body, sizeof(body), "%.*s", (int)r.len, (const char *)r.body);
	ck_assert_msg(strcmp(body, want) == 0, "%s: got %s, want %s", op, body, want);
	gcli_result_free(&r);
}

START_TEST(soft_denials_and_allowed_operations)
{
	grpc_channel *ch = gcli_channel(target, 1);
	char want[64];

	snprintf(want, sizeof(want), "rc=-1 errno=%d", EACCES);
	expect_survives(ch, "open", want); /* read-only probes: soft denial */
	expect_survives(ch, "thread", "rc=0 errno=0");
	ck_assert(health_ok(ch));
	grpc_channel_destroy(ch);
}
END_TEST

static int
count_in_log(const char *needle)
{
	char line[4096];
	FILE *f = fopen(logpath, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

START_TEST(forbidden_syscalls_kill_only_that_worker)
{
	/* setuid is not in the allowlist at all: trying to regain root is
	 * itself a violation; so is opening a file for writing. */
	static const char *ops[] = { "execve", "socket", "fork", "mmap_exec", "setuid0",
		"open_write" };
	grpc_channel *bystander = gcli_channel(target, 1);
	size_t i;
	int before = count_in_log("\"reason\":\"seccomp\""), after = 0, k;

	ck_assert(health_ok(bystander));
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		grpc_channel *ch = gcli_channel(target, 1);
		struct gcli_result r;

		ck_assert_int_eq(rpc(ch, "/paymentd.test.Hooks/Syscall", ops[i], &r), 0);
		ck_assert_msg(r.status == GRPC_STATUS_UNAVAILABLE,
		    "%s: worker survived (status %s, %.*s)", ops[i], gu_status_name(r.status),
		    (int)r.len, r.body ? (const char *)r.body : "");
		gcli_result_free(&r);
		grpc_channel_destroy(ch);
	}
	for (k = 0; k < 50; k++) { /* the supervisor logs each death */
		after = count_in_log("\"reason\":\"seccomp\"");
		if (after - before >= (int)(sizeof(ops) / sizeof(ops[0])))
			break;
		usleep(100000);
	}
	ck_assert_int_eq(after - before, (int)(sizeof(ops) / sizeof(ops[0])));
	ck_assert_int_eq(kill(sup, 0), 0);
	ck_assert(health_ok(bystander)); /* other connection unaffected */
	grpc_channel_destroy(bystander);
	{
		grpc_channel *fresh = gcli_channel(target, 1);
		ck_assert(health_ok(fresh)); /* and new ones are served */
		grpc_channel_destroy(fresh);
	}
	printf(
	    "execve, socket, fork, PROT_EXEC mmap, setuid(0) and open-for-write each killed their worker by SIGSYS; "
	    "supervisor and a bystander connection carried on\n");
}
END_TEST

/* Last: restarts the daemon with the test hook that makes every worker die
 * on its first hand-off before acknowledging the fd (as a pool worker
 * leaving because Redis or Postgres went away may). The supervisor must
 * hand each connection on, so every client is still served. */
/* A worker that burns its CPU budget inside an RPC that never completes
 * is killed by the supervisor (from /proc, not on the worker's word) and
 * counted; the client's call fails instead of hanging to its deadline. */
START_TEST(cpu_budget_kills_a_spinning_worker)
{
	grpc_channel *ch = gcli_channel(target, 1);
	struct gcli_result r;
	int64_t t0 = util_now_ms(), took;
	int before = count_in_log("\"reason\":\"cpu_budget\""), after = 0, k;

	ck_assert_int_eq(rpc(ch, "/paymentd.test.Hooks/Syscall", "spin", &r), 0);
	took = util_now_ms() - t0;
	ck_assert_msg(
	    r.status == GRPC_STATUS_UNAVAILABLE, "spin: status %s", gu_status_name(r.status));
	gcli_result_free(&r);
	grpc_channel_destroy(ch);
	for (k = 0; k < 50; k++) {
		after = count_in_log("\"reason\":\"cpu_budget\"");
		if (after > before)
			break;
		usleep(100000);
	}
	ck_assert_int_eq(after - before, 1);
	/* Budget 2 s, checked every second: killed after 2..4 s of CPU. */
	ck_assert_msg(took >= 2000 && took < 8000, "killed after %lld ms", (long long)took);
	printf("a worker spinning inside an RPC was killed after %lld ms (budget 2 s of CPU)\n",
	    (long long)took);
	ck_assert_int_eq(kill(sup, 0), 0);
}
END_TEST

START_TEST(connection_in_flight_survives_its_worker)
{
	int before, after, i, ok = 0;

	stop_daemon();
	setenv("PAYMENTD_TEST_HANDOFF_DIE", "1", 1);
	ck_assert_int_eq(start_daemon(), 0); /* its health probes already went through it */
	before = count_in_log("handing it on");
	for (i = 0; i < 20; i++) {
		grpc_channel *ch = gcli_channel(target, 1);
		ok += health_ok(ch);
		grpc_channel_destroy(ch);
	}
	for (i = 0; i < 50; i++) {
		after = count_in_log("handing it on");
		if (after - before >= 20)
			break;
		usleep(100000);
	}
	unsetenv("PAYMENTD_TEST_HANDOFF_DIE");
	ck_assert_int_eq(ok, 20);
	ck_assert_int_ge(after - before, 20);
	ck_assert_int_ge(count_in_log("took a connection handed on"), 20);
	printf(
	    "20 connections whose first worker died before taking them were all served by the next (%d hand-offs)\n",
	    after - before);
}
END_TEST

/* Connects from 127.0.0.2, sends the HTTP/2 preface and SETTINGS, and
 * returns how long (ms) until the server ends the connection, -1 if it
 * did not within limit_ms. */
static int64_t
preface_until_closed(int port, int limit_ms)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	                              "\0\0\0\4\0\0\0\0\0"; /* + empty SETTINGS */
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	int64_t t0 = util_now_ms(), took = -1;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(s, 0);
	inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	dst.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&src, sizeof(src)), 0);
	ck_assert_int_eq(connect(s, (struct sockaddr *)&dst, sizeof(dst)), 0);
	ck_assert_int_eq(
	    send(s, preface, sizeof(preface) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(preface) - 1);
	while (util_now_ms() - t0 < limit_ms) {
		struct pollfd p = { s, POLLIN, 0 };
		char buf[256];
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(s, buf, sizeof(buf), 0);
		if (n <= 0) {
			took = util_now_ms() - t0;
			break;
		}
	}
	close(s);
	return took;
}

/* A worker that dies right after taking a connection (its SUP_MSG_BUSY
 * often still unread when the supervisor reaps it) took bytes of it with
 * it: the supervisor must end the connection, not hand it to another
 * worker, which would wait HANDSHAKE_TIMEOUT_SECONDS for a preface the
 * dead one had read. Thirty such connections, from 127.0.0.2 (the
 * hook's address), each must end at once, and the hook must have fired
 * exactly once per connection: a connection handed on would reach a
 * second worker, which dies the same way (without the supervisor's
 * read of the dead worker's channel, 1 in 10 was). 127.0.0.1 is served
 * as usual. */
START_TEST(worker_dying_after_taking_a_connection_ends_it)
{
	int before_hook, before_handoff, i, port;
	int64_t worst = 0;

	stop_daemon();
	setenv("PAYMENTD_TEST_BUSY_DIE_ADDR", "127.0.0.2", 1);
	setenv("HANDSHAKE_TIMEOUT_SECONDS", "10", 1);
	ck_assert_int_eq(start_daemon(), 0);
	port = (int)strtol(strchr(target, ':') + 1, NULL, 10);
	before_hook = count_in_log("test hook: dying after taking the connection");
	before_handoff = count_in_log("handing it on");
	for (i = 0; i < 30; i++) {
		int64_t took = preface_until_closed(port, 8000);

		ck_assert_msg(took >= 0 && took < 3000,
		    "connection %d: ended after %lld ms (handed on to a worker waiting for a preface?)",
		    i, (long long)took);
		if (took > worst)
			worst = took;
		usleep(100000); /* under CONNECTION_RATE_PER_IP */
	}
	for (i = 0; i < 50 &&
	     count_in_log("test hook: dying after taking the connection") - before_hook < 30;
	     i++)
		usleep(100000);
	ck_assert_int_eq(
	    count_in_log("test hook: dying after taking the connection") - before_hook, 30);
	ck_assert_int_eq(count_in_log("handing it on") - before_handoff, 0);
	{
		grpc_channel *ch = gcli_channel(target, 1);
		ck_assert(health_ok(ch));
		grpc_channel_destroy(ch);
	}
	unsetenv("PAYMENTD_TEST_BUSY_DIE_ADDR");
	unsetenv("HANDSHAKE_TIMEOUT_SECONDS");
	printf(
	    "30 connections whose worker died right after taking them were ended within %lld ms, none handed on\n",
	    (long long)worst);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc = tcase_create("worker");
	int rc;

	if (geteuid() != 0) {
		printf("sandbox tests need root\n0 passed, 1 failed\n");
		return 1;
	}
	gcli_global_init();
	if (start_daemon() < 0) {
		printf("0 passed, 1 failed\n");
		stop_daemon();
		return 1;
	}
	tcase_add_test(tc, worker_credentials_after_drop);
	tcase_add_test(tc, soft_denials_and_allowed_operations);
	tcase_add_test(tc, forbidden_syscalls_kill_only_that_worker);
	tcase_add_test(tc, connection_in_flight_survives_its_worker);
	tcase_add_test(tc, worker_dying_after_taking_a_connection_ends_it);
	tcase_add_test(tc, cpu_budget_kills_a_spinning_worker);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	rc = tl_run(s, CK_VERBOSE, 1);
	stop_daemon();
	return rc;
}
