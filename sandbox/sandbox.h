/* SPDX-License-Identifier: MIT */
/*
 * sandbox.h — privilege separation for paymentd's untrusted-input
 * processes (workers) and its unprivileged helper (the outbox relay).
 *
 * Contract: sandbox_resolve() looks the user up (call it before any
 * chroot: getpwnam needs /etc). sandbox_enter() locks the calling process
 * down, in this order: setgroups/setgid, chroot to an empty directory,
 * chdir("/"), permanent setuid (then checks that uid 0 and capabilities
 * cannot be regained), rlimits, PR_SET_NO_NEW_PRIVS, then a seccomp
 * allowlist applied to every existing thread (TSYNC). It returns 0, or -1
 * with err filled; callers treat -1 as fatal (fail closed) — a half-applied
 * sandbox is never reported as success.
 *
 * Not running as root, the identity steps are impossible: sandbox_enter()
 * then fails unless the process already runs as ids->uid/ids->gid, in
 * which case it skips chroot/setuid and applies the rest.
 *
 * Every syscall a profile allows is listed, with the reason, in
 * sandbox/sb_policy.c and docs/sandbox.md (a test keeps the two in step).
 */
#ifndef PAYMENTD_SANDBOX_H
#define PAYMENTD_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

struct sandbox_ids {
	uid_t uid;
	gid_t gid;
	char user[64];
};

enum sandbox_profile {
	SANDBOX_WORKER,    /* serves one client: no files, no new sockets */
	SANDBOX_RELAY,     /* outbox relay: its journal files, broker sockets */
	SANDBOX_EXPORTER,  /* metrics HTTP: accepts on a socket it was given,
				 * one Postgres connection per scrape, reads
				 * (never writes) files such as resolv.conf */
	SANDBOX_LOGFWD,    /* log forwarder: copies a pipe to a file it
				 * was given; read, write, exit, nothing else */
	SANDBOX_KEYHOLDER, /* key-holder: signs for workers over channels it
				 * is handed; no sockets, no files */
	SANDBOX_JANITOR,   /* janitor: SQL over the one Postgres connection
				 * it opened before the lock-down; no new
				 * sockets, no files, chrooted */
};

struct sandbox_opts {
	enum sandbox_profile profile;
	/* Workers: an empty, root-owned directory nobody else can write
	 * (e.g. /var/lib/paymentd/empty); required for SANDBOX_WORKER (and
	 * the key-holder and janitor) when running as root. Relay and exporter: NULL (no chroot: they resolve
	 * host names through /etc; see docs/sandbox.md). */
	const char *chroot_dir;
	/* 1: violations are reported on stderr ("seccomp(debug): ...") and
	 * the call fails with ENOSYS instead of killing the process. For
	 * building the allowlist only — never in production. */
	int debug;
	int max_fds; /* RLIMIT_NOFILE; <= 0 keeps the current one */
	/* RLIMIT_AS in MiB; <= 0 keeps the current one. Not set under
	 * AddressSanitizer, whose shadow memory needs terabytes of address
	 * space. */
	int max_as_mb;
};

int sandbox_resolve(const char *user, struct sandbox_ids *ids, char *err, size_t errlen);
int sandbox_enter(
    const struct sandbox_ids *ids, const struct sandbox_opts *o, char *err, size_t errlen);

/* For a process about to exec an image that will call sandbox_enter()
 * itself (paymentd-worker): as root, drops groups, gid and uid for good
 * but keeps CAP_SYS_CHROOT, alone, as an ambient capability, so the new
 * image starts unprivileged and can still chroot in sandbox_drop(), which
 * then removes that last capability. Not root: does nothing. 0 or -1. */
int sandbox_pre_exec(const struct sandbox_ids *ids, char *err, size_t errlen);

/* The steps of sandbox_enter(), for tests and tools. sandbox_drop() does
 * everything but the seccomp filter; sandbox_seccomp() installs only the
 * filter (it needs no_new_privs or CAP_SYS_ADMIN, as the kernel does). */
int
sandbox_drop(const struct sandbox_ids *ids, const struct sandbox_opts *o, char *err, size_t errlen);
int sandbox_seccomp(enum sandbox_profile p, int debug, char *err, size_t errlen);

/* One entry of a profile's policy, as documented. action is "allow" or
 * the errno a soft denial returns ("EACCES", "ENOSYS", ...); cond is the
 * argument condition ("" for none). */
struct sandbox_rule_info {
	const char *name;
	const char *action;
	const char *cond;
	const char *why;
};
/* Fills up to max entries (out may be NULL) and returns how many the
 * profile has. Names may repeat (one syscall, several conditions). */
int sandbox_policy(enum sandbox_profile p, struct sandbox_rule_info *out, int max);
/* Number of distinct syscalls the profile lets through (action "allow"). */
int sandbox_allowlist_size(enum sandbox_profile p);

#endif
