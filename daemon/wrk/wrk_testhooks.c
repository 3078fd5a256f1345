/* SPDX-License-Identifier: MIT */
/*
 * wrk_testhooks.c — TEST-ONLY method that makes a sandboxed worker attempt
 * a forbidden operation, so tests can prove the seccomp policy holds.
 *
 * "spin" never returns (it proves the supervisor's CPU budget).
 *
 * Compiled only into build/paymentd-testhooks (-DPAYMENTD_TEST_HOOKS);
 * the paymentd binary users run does not contain it. The request payload
 * is the operation's name as raw bytes; the reply (if the worker survives)
 * is "errno=N".
 */
#include "wrk.h"
#include "common/log.h"
#include "common/util.h"
#include "tls/tls_remotekey.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static void *
noop(void *arg)
{
	return arg;
}

void
wrk_test_syscall(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	char op[32], out[64];
	int rc = 0, e = 0;

	(void)ctx;
	snprintf(op, sizeof(op), "%.*s", (int)(len < 31 ? len : 31), (const char *)req);
	errno = 0;
	if (strcmp(op, "open") == 0) {
		rc = open("/etc/passwd", O_RDONLY);
	} else if (strcmp(op, "open_write") == 0) {
		rc = open("/tmp/pwned", O_WRONLY | O_CREAT, 0600);
	} else if (strcmp(op, "execve") == 0) {
		char *argv[] = { (char *)"/bin/sh", NULL };
		rc = execve("/bin/sh", argv, NULL);
	} else if (strcmp(op, "socket") == 0) {
		rc = socket(AF_INET, SOCK_STREAM, 0);
	} else if (strcmp(op, "fork") == 0) {
		rc = (int)syscall(SYS_fork);
	} else if (strcmp(op, "mmap_exec") == 0) {
		void *p = mmap(
		    NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rc = p == MAP_FAILED ? -1 : 0;
	} else if (strcmp(op, "thread") == 0) {
		pthread_t t;
		rc = pthread_create(&t, NULL, noop, NULL);
		if (rc == 0)
			pthread_join(t, NULL);
		e = rc;
	} else if (strcmp(op, "setuid0") == 0) {
		rc = setuid(0);
	} else if (strcmp(op, "spin") == 0) {
		/* Burns CPU inside an RPC that never completes, as a worker
		 * stuck on hostile input would: the supervisor's CPU budget
		 * (WORKER_CPU_BUDGET_SECONDS) must kill it. */
		volatile unsigned long n = 0;
		for (;;)
			n++;
	} else {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "unknown op %s", op);
		return;
	}
	if (e == 0)
		e = rc < 0 ? errno : 0;
	snprintf(out, sizeof(out), "rc=%d errno=%d", rc, e);
	rep->len = strlen(out);
	rep->body = xmalloc(rep->len);
	memcpy(rep->body, out, rep->len);
	rep->status = GRPC_STATUS_OK;
}

void
wrk_test_after_handshake(int kh_fd)
{
	const char *n = getenv("PAYMENTD_TEST_KH_PROBE");
	int64_t want = 0;
	int i, ok = 0;

	if (n != NULL && util_parse_i64(n, 0, 1000, &want) < 0)
		want = 0;

	for (i = 0; i < want; i++)
		if (tls_remotekey_probe(kh_fd) == 0)
			ok++;
	if (want > 0)
		log_warn("test hook: asked the key-holder for extra signatures",
		    LF_I("asked", want), LF_I("signed", ok));
}
