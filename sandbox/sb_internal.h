/* SPDX-License-Identifier: MIT */
/*
 * sb_internal.h — the policy table shared by sb_policy.c (what each
 * profile allows, and why) and sb_seccomp.c (which turns it into a
 * filter). Not part of the public API.
 *
 * Keeping rules as data, not as code, is what lets sandbox_policy() list
 * exactly what the kernel enforces: docs/sandbox.md and the systemd
 * compatibility test are checked against this table, so a rule cannot be
 * added without being documented.
 */
#ifndef PAYMENTD_SB_INTERNAL_H
#define PAYMENTD_SB_INTERNAL_H

#include <seccomp.h>
#include "sandbox.h"

#define SB_W (1u << SANDBOX_WORKER)
#define SB_R (1u << SANDBOX_RELAY)
#define SB_E (1u << SANDBOX_EXPORTER)
#define SB_L (1u << SANDBOX_LOGFWD)
/* The three profiles of processes that run library code; the log
 * forwarder's profile is listed row by row. */
#define SB_ALL (SB_W | SB_R | SB_E)

/* cmp[0].datum_a is replaced by getpid() when the filter is built. */
#define SB_SELF_PID 0x1u

struct sb_rule {
	const char *name; /* libseccomp name: resolved per architecture */
	unsigned prof;    /* SB_W / SB_R / SB_E */
	int err;          /* 0: allow; otherwise fail with this errno */
	unsigned flags;   /* SB_SELF_PID */
	unsigned ncmp;    /* argument comparisons, all must match */
	struct scmp_arg_cmp cmp[2];
	const char *cond; /* the comparisons in words ("" if none) */
	const char *why;
};

extern const struct sb_rule sb_rules[];
extern const int sb_nrules;

const char *sb_errname(int err);

#endif
