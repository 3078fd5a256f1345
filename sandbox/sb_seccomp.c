/* SPDX-License-Identifier: MIT */
/*
 * sb_seccomp.c — turns the policy table (sb_policy.c) into a seccomp
 * filter and loads it on every thread of the process.
 *
 * Contract: sandbox_seccomp() returns 0 only when the whole filter is
 * loaded on all threads; otherwise -1 with err, and nothing is loaded.
 * Default action: kill the whole process (SCMP_ACT_KILL_PROCESS), so a
 * compromised grpc thread cannot survive its violation alone. TSYNC:
 * grpc's threads exist before the worker locks down; TSYNC applies the
 * filter to them atomically or fails (threads created later inherit it).
 * Only the native architecture is allowed; a syscall made through another
 * ABI (int 0x80, x32) kills the process too.
 *
 * Debug mode (SANDBOX_DEBUG=on): the default becomes SCMP_ACT_TRAP and a
 * SIGSYS handler reports "seccomp(debug): blocked syscall N" on stderr and
 * makes the call fail with ENOSYS, so one run shows every missing entry.
 * (SCMP_ACT_LOG would need the kernel audit log, which containers and CI
 * often cannot read, and would let the call succeed.)
 */
#include "sb_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <ucontext.h>

/* Async-signal-safe: only write(2) and stack formatting. */
static size_t
fmt_uint(char *dst, unsigned long v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && n < sizeof(tmp));
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

static void
on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	static const char a[] = "seccomp(debug): blocked syscall ";
	static const char b[] = " (pid ";
	static const char c[] = "); failing it with ENOSYS\n";
	char buf[128];
	size_t n = 0;
	ucontext_t *uc = uc_;
	int saved = errno;

	(void)sig;
	memcpy(buf + n, a, sizeof(a) - 1);
	n += sizeof(a) - 1;
	n += fmt_uint(buf + n, (unsigned long)(unsigned)si->si_syscall);
	memcpy(buf + n, b, sizeof(b) - 1);
	n += sizeof(b) - 1;
	n += fmt_uint(buf + n, (unsigned long)getpid());
	memcpy(buf + n, c, sizeof(c) - 1);
	n += sizeof(c) - 1;
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* stderr gone: nothing else is safe to do here */
	}
	errno = saved;
	/* The trapped syscall did not run; its return value is whatever the
	 * handler leaves in the return register. */
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#else
	(void)uc;
	_exit(159); /* cannot fake a return value here: stop like a kill would */
#endif
}

static int
install_reporter(char *err, size_t errlen)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, errlen, "sigaction(SIGSYS): %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
sandbox_seccomp(enum sandbox_profile p, int debug, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = NULL;
	struct scmp_arg_cmp cmp[2];
	const struct sb_rule *r;
	int rc = -1, e, i, nr;

	if (p != SANDBOX_WORKER && p != SANDBOX_RELAY && p != SANDBOX_EXPORTER &&
	    p != SANDBOX_LOGFWD && p != SANDBOX_KEYHOLDER && p != SANDBOX_JANITOR) {
		snprintf(err, errlen, "seccomp: unknown profile %d", (int)p);
		goto out;
	}
	if (debug && install_reporter(err, errlen) < 0)
		goto out;
	ctx = seccomp_init(debug ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		goto out;
	}
	/* Foreign ABIs are never legitimate here, even in debug mode. */
	if ((e = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0 ||
	    (e = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0) {
		snprintf(err, errlen, "seccomp attributes: %s", strerror(-e));
		goto out;
	}
	for (i = 0; i < sb_nrules; i++) {
		r = &sb_rules[i];
		if (!(r->prof & (1u << p)))
			continue;
		/* Names missing on this architecture (open on aarch64)
		 * resolve to negative pseudo numbers: nothing to allow. */
		nr = seccomp_syscall_resolve_name(r->name);
		if (nr < 0)
			continue;
		memcpy(cmp, r->cmp, sizeof(cmp));
		if (r->flags & SB_SELF_PID)
			cmp[0].datum_a = (scmp_datum_t)getpid();
		e = seccomp_rule_add_array(ctx,
		    r->err ? SCMP_ACT_ERRNO((uint32_t)r->err) : SCMP_ACT_ALLOW, nr, r->ncmp,
		    r->ncmp ? cmp : NULL);
		if (e < 0) {
			snprintf(err, errlen, "seccomp rule %s (%s): %s", r->name,
			    r->cond[0] ? r->cond : "any", strerror(-e));
			goto out;
		}
	}
	/* With TSYNC a positive return names a thread that could not be
	 * synchronised; libseccomp maps every failure to a negative errno. */
	errno = 0;
	if ((e = seccomp_load(ctx)) != 0) {
		/* libseccomp reports kernel refusals as ECANCELED; errno has
		 * the kernel's reason (EPERM: an outer filter, e.g. a unit's
		 * SystemCallFilter=, denies seccomp(2)). */
		snprintf(err, errlen, "seccomp_load (TSYNC): %s (kernel: %s)",
		    strerror(e < 0 ? -e : ESRCH), errno ? strerror(errno) : "-");
		goto out;
	}
	rc = 0;
out:
	if (ctx != NULL)
		seccomp_release(ctx);
	return rc;
}
