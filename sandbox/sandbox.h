/*
 * sandbox.h — privilege separation for paymentd's untrusted-input
 * processes (workers) and its unprivileged helpers (relay).
 *
 * Contract: sandbox_resolve() looks the user up (call it before any
 * chroot). sandbox_enter() locks the calling process down, in this order:
 * setgroups/setgid, chroot to an empty directory, chdir("/"), permanent
 * setuid (and checks that uid 0 cannot be regained), rlimits,
 * PR_SET_NO_NEW_PRIVS, then a seccomp allowlist applied to every thread
 * (TSYNC). It returns 0, or -1 with err filled; callers treat -1 as fatal
 * (fail closed). Run as a non-root user it can only narrow: if the process
 * already runs as ids->uid it skips the identity steps and applies the
 * rest; otherwise it fails.
 */
#ifndef PAYMENTD_SANDBOX_H
#define PAYMENTD_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

struct sandbox_ids {
	uid_t uid;
	gid_t gid;
	char  user[64];
};

enum sandbox_profile {
	SANDBOX_WORKER,		/* serves one client: no files, no new sockets */
	SANDBOX_RELAY,		/* relay: its journal files and broker sockets */
	SANDBOX_EXPORTER,	/* metrics HTTP: accepts on a listening socket */
};

struct sandbox_opts {
	enum sandbox_profile profile;
	const char *chroot_dir;	/* empty directory, or NULL for no chroot */
	int         debug;	/* 1: report violations (SIGSYS) and fail the
				 * syscall with ENOSYS instead of killing */
	int         max_fds;	/* RLIMIT_NOFILE */
};

int sandbox_resolve(const char *user, struct sandbox_ids *ids, char *err, size_t errlen);
int sandbox_enter(const struct sandbox_ids *ids, const struct sandbox_opts *o,
    char *err, size_t errlen);
/* Installs only the seccomp filter of a profile (used by sandbox_enter and
 * by tests); 0 or -1 with err. */
int sandbox_seccomp(enum sandbox_profile p, int debug, char *err, size_t errlen);
/* Number of syscalls the profile allows (for docs and tests). */
int sandbox_allowlist_size(enum sandbox_profile p);

#endif
