/* SPDX-License-Identifier: MIT */
/*
 * sb_drop.c — identity and resource lock-down, and sandbox_enter() which
 * adds the seccomp filter on top (see sandbox.h for the contract).
 *
 * The order matters:
 *  - the capability bounding set is emptied first, while CAP_SETPCAP is
 *    still there (it does not touch the effective set the next steps use);
 *  - groups and gid while still root (CAP_SETGID);
 *  - chroot while still root (CAP_SYS_CHROOT) and before setuid, through
 *    the descriptor that was checked, so the checked directory is the one
 *    we land in; then chdir("/") so no handle to the old root remains;
 *  - setuid last of the identity steps; then verify it is permanent (all
 *    three uids and gids, setuid(0) refused, no capabilities left), and
 *    re-arm a parent-death signal the uid change cleared;
 *  - rlimits and no_new_privs before the seccomp filter, so the filter
 *    need not allow setrlimit or prctl(PR_SET_NO_NEW_PRIVS).
 * Every failure returns -1 with err: nothing here "mostly" succeeds.
 */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

int
sandbox_resolve(const char *user, struct sandbox_ids *ids, char *err, size_t errlen)
{
	struct passwd *pw;
	int rc = -1;

	if (user == NULL || user[0] == '\0' || strlen(user) >= sizeof(ids->user)) {
		snprintf(err, errlen, "sandbox user: empty or too long");
		goto out;
	}
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen, "sandbox user %s: %s", user,
		    errno ? strerror(errno)
		          : "no such user (create it: scripts/install-deps or systemd-sysusers)");
		goto out;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen, "sandbox user %s: refusing uid/gid 0", user);
		goto out;
	}
	ids->uid = pw->pw_uid;
	ids->gid = pw->pw_gid;
	snprintf(ids->user, sizeof(ids->user), "%s", user);
	rc = 0;
out:
	return rc;
}

/* Opens the chroot directory and checks it is a jail, not a workspace:
 * a directory owned by root, writable by nobody else and (for workers)
 * empty. Returns the open descriptor we will chroot through, or -1. */
static int
open_jail(const char *dir, int must_be_empty, char *err, size_t errlen)
{
	struct stat st;
	struct dirent *de;
	DIR *d = NULL;
	int fd = -1, dfd = -1, rc = -1;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "chroot dir %s: %s", dir, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "chroot dir %s: %s", dir, strerror(errno));
		goto out;
	}
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen,
		    "chroot dir %s: must be owned by root and writable by "
		    "nobody else (tmpfiles.d/paymentd.conf creates it 0555 root)",
		    dir);
		goto out;
	}
	if (must_be_empty) {
		/* A second descriptor: closedir() closes the one it reads. */
		if ((dfd = dup(fd)) < 0 || (d = fdopendir(dfd)) == NULL) {
			snprintf(err, errlen, "chroot dir %s: %s", dir, strerror(errno));
			goto out;
		}
		dfd = -1;
		while ((errno = 0, de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
				snprintf(
				    err, errlen, "chroot dir %s: not empty (%s)", dir, de->d_name);
				goto out;
			}
		}
		if (errno != 0) {
			snprintf(err, errlen, "chroot dir %s: %s", dir, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	if (dfd >= 0)
		close(dfd);
	if (rc < 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Empties the bounding set, so no exec of a file with capabilities could
 * ever grant one again. Needs CAP_SETPCAP: under systemd the unit's own
 * CapabilityBoundingSet already bounds us and lacks it, which is fine —
 * no_new_privs and the filter (no execve) make the bounding set moot. */
static int
drop_bounding_set(char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	unsigned long cap;
	int rc = -1;

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0) {
		snprintf(err, errlen, "capget: %s", strerror(errno));
		goto out;
	}
	if (!(d[CAP_SETPCAP / 32].effective & (1u << (CAP_SETPCAP % 32)))) {
		rc = 0;
		goto out;
	}
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			snprintf(err, errlen, "PR_CAPBSET_DROP(%lu): %s", cap, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/* Drops every remaining capability (always permitted: it only narrows)
 * and verifies, through the kernel, that none is left in any set. setresuid() from root already
 * cleared them unless someone set SECBIT_KEEP_CAPS; we do not rely on it. */
static int
drop_capabilities(char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	int rc = -1, i;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		snprintf(err, errlen, "PR_CAP_AMBIENT_CLEAR_ALL: %s", strerror(errno));
		goto out;
	}
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0) {
		snprintf(err, errlen, "capget: %s", strerror(errno));
		goto out;
	}
	/* capset only when something is left: systemd units that deny
	 * @privileged (capset) then still work for an unprivileged relay. */
	for (i = 0; i < 2; i++) {
		if (d[i].effective || d[i].permitted || d[i].inheritable) {
			memset(d, 0, sizeof(d));
			if (syscall(SYS_capset, &h, d) < 0) {
				snprintf(err, errlen, "capset(none): %s", strerror(errno));
				goto out;
			}
			break;
		}
	}
	if (syscall(SYS_capget, &h, d) < 0) {
		snprintf(err, errlen, "capget: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < 2; i++) {
		if (d[i].effective || d[i].permitted || d[i].inheritable) {
			snprintf(err, errlen, "capabilities left after the drop");
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

/* 1 if cap is in the effective set. */
static int
have_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[cap / 32].effective & (1u << (cap % 32))) != 0;
}

int
sandbox_pre_exec(const struct sandbox_ids *ids, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uid_t ruid, euid, suid;
	unsigned long cap;
	int rc = -1;

	if (ids->uid == 0 || ids->gid == 0) {
		snprintf(err, errlen, "sandbox: refusing to run as uid/gid 0");
		goto out;
	}
	if (geteuid() != 0) {
		/* Not root: nothing to drop here; sandbox_drop() in the new
		 * image checks that we already run as the sandbox user. */
		rc = 0;
		goto out;
	}
	/* Bounding set: everything but CAP_SYS_CHROOT (needs CAP_SETPCAP;
	 * under systemd the unit's bounding set already lacks it). */
	if (have_cap(CAP_SETPCAP)) {
		for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
			if (cap == CAP_SYS_CHROOT)
				continue;
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
				snprintf(
				    err, errlen, "PR_CAPBSET_DROP(%lu): %s", cap, strerror(errno));
				goto out;
			}
		}
	}
	if (setgroups(0, NULL) < 0) {
		snprintf(err, errlen, "setgroups(none): %s", strerror(errno));
		goto out;
	}
	if (setresgid(ids->gid, ids->gid, ids->gid) < 0) {
		snprintf(err, errlen, "setresgid(%u): %s", (unsigned)ids->gid, strerror(errno));
		goto out;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
		goto out;
	}
	if (setresuid(ids->uid, ids->uid, ids->uid) < 0) {
		snprintf(err, errlen, "setresuid(%u): %s", (unsigned)ids->uid, strerror(errno));
		goto out;
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_KEEPCAPS(0): %s", strerror(errno));
		goto out;
	}
	if (getresuid(&ruid, &euid, &suid) < 0 || ruid != ids->uid || euid != ids->uid ||
	    suid != ids->uid) {
		snprintf(err, errlen, "identity not fully dropped before exec");
		goto out;
	}
	/* Keep CAP_SYS_CHROOT, alone, across the exec: permitted, effective
	 * and inheritable, then ambient (ambient survives execve of a file
	 * without capabilities). */
	memset(d, 0, sizeof(d));
	d[CAP_SYS_CHROOT / 32].permitted = d[CAP_SYS_CHROOT / 32].effective =
	    d[CAP_SYS_CHROOT / 32].inheritable = 1u << (CAP_SYS_CHROOT % 32);
	if (syscall(SYS_capset, &h, d) < 0) {
		snprintf(err, errlen, "capset(CAP_SYS_CHROOT): %s", strerror(errno));
		goto out;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_CHROOT, 0, 0) < 0) {
		snprintf(err, errlen, "PR_CAP_AMBIENT_RAISE(CAP_SYS_CHROOT): %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static int
set_limit(int res, rlim_t v, const char *name, char *err, size_t errlen)
{
	struct rlimit rl;
	int rc = -1;

	if (getrlimit(res, &rl) < 0) {
		snprintf(err, errlen, "getrlimit(%s): %s", name, strerror(errno));
		goto out;
	}
	/* Only ever lower: raising a hard limit needs a privilege we lack. */
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < v)
		v = rl.rlim_max;
	rl.rlim_cur = rl.rlim_max = v;
	if (setrlimit(res, &rl) < 0) {
		snprintf(err, errlen, "setrlimit(%s): %s", name, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
sandbox_drop(const struct sandbox_ids *ids, const struct sandbox_opts *o, char *err, size_t errlen)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int jail = -1, rc = -1, pdeath = 0;

	if (ids == NULL || o == NULL ||
	    (o->profile != SANDBOX_WORKER && o->profile != SANDBOX_RELAY &&
	        o->profile != SANDBOX_EXPORTER && o->profile != SANDBOX_LOGFWD &&
	        o->profile != SANDBOX_KEYHOLDER && o->profile != SANDBOX_JANITOR)) {
		snprintf(err, errlen, "sandbox: bad arguments");
		goto out;
	}
	if (ids->uid == 0 || ids->gid == 0) {
		snprintf(err, errlen, "sandbox: refusing to run as uid/gid 0");
		goto out;
	}
	/* The kernel clears the parent-death signal when the uid changes;
	 * a caller that armed one (workers: die with the supervisor) keeps it. */
	if (prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_GET_PDEATHSIG: %s", strerror(errno));
		goto out;
	}
	if (geteuid() == 0) {
		if ((o->profile == SANDBOX_WORKER || o->profile == SANDBOX_KEYHOLDER ||
		        o->profile == SANDBOX_JANITOR) &&
		    o->chroot_dir == NULL) {
			snprintf(err, errlen, "sandbox: a worker needs its empty chroot directory");
			goto out;
		}
		if (o->chroot_dir != NULL &&
		    (jail = open_jail(o->chroot_dir,
		         o->profile == SANDBOX_WORKER || o->profile == SANDBOX_LOGFWD ||
		             o->profile == SANDBOX_KEYHOLDER || o->profile == SANDBOX_JANITOR,
		         err, errlen)) < 0)
			goto out;
		if (drop_bounding_set(err, errlen) < 0)
			goto out;
		if (setgroups(0, NULL) < 0) {
			snprintf(err, errlen, "setgroups(none): %s", strerror(errno));
			goto out;
		}
		if (setresgid(ids->gid, ids->gid, ids->gid) < 0) {
			snprintf(
			    err, errlen, "setresgid(%u): %s", (unsigned)ids->gid, strerror(errno));
			goto out;
		}
		if (jail >= 0 && (fchdir(jail) < 0 || chroot(".") < 0)) {
			snprintf(err, errlen, "chroot(%s): %s", o->chroot_dir, strerror(errno));
			goto out;
		}
		if (chdir("/") < 0) {
			snprintf(err, errlen, "chdir(/): %s", strerror(errno));
			goto out;
		}
		if (setresuid(ids->uid, ids->uid, ids->uid) < 0) {
			snprintf(
			    err, errlen, "setresuid(%u): %s", (unsigned)ids->uid, strerror(errno));
			goto out;
		}
	} else if (geteuid() == ids->uid && getegid() == ids->gid && o->chroot_dir != NULL &&
	    have_cap(CAP_SYS_CHROOT)) {
		/* Exec'd by sandbox_pre_exec() (or, the janitor, forked and
		 * dropped by it): already unprivileged, holding CAP_SYS_CHROOT
		 * alone for this step; drop_capabilities() below takes it away. */
		if ((jail = open_jail(o->chroot_dir,
		         o->profile == SANDBOX_WORKER || o->profile == SANDBOX_KEYHOLDER ||
		             o->profile == SANDBOX_JANITOR,
		         err, errlen)) < 0)
			goto out;
		if (fchdir(jail) < 0 || chroot(".") < 0) {
			snprintf(err, errlen, "chroot(%s): %s", o->chroot_dir, strerror(errno));
			goto out;
		}
		if (chdir("/") < 0) {
			snprintf(err, errlen, "chdir(/): %s", strerror(errno));
			goto out;
		}
	} else if (geteuid() != ids->uid || getegid() != ids->gid) {
		snprintf(err, errlen,
		    "running as uid %u gid %u: cannot become %s (uid %u gid %u) "
		    "without root",
		    (unsigned)geteuid(), (unsigned)getegid(), ids->user[0] ? ids->user : "?",
		    (unsigned)ids->uid, (unsigned)ids->gid);
		goto out;
	}
	/* Permanent? Every id must be the target. */
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0) {
		snprintf(err, errlen, "getresuid/getresgid: %s", strerror(errno));
		goto out;
	}
	if (ruid != ids->uid || euid != ids->uid || suid != ids->uid || rgid != ids->gid ||
	    egid != ids->gid || sgid != ids->gid) {
		snprintf(err, errlen, "identity not fully dropped (uids %u/%u/%u gids %u/%u/%u)",
		    (unsigned)ruid, (unsigned)euid, (unsigned)suid, (unsigned)rgid, (unsigned)egid,
		    (unsigned)sgid);
		goto out;
	}
	if (pdeath != 0 && prctl(PR_SET_PDEATHSIG, pdeath, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_PDEATHSIG: %s", strerror(errno));
		goto out;
	}
	if (drop_capabilities(err, errlen) < 0)
		goto out;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
		snprintf(err, errlen, "root could be regained after the drop");
		goto out;
	}

	if (set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", err, errlen) < 0)
		goto out;
	/* Workers and the exporter write no files (logs go to a pipe): a
	 * write that slips through fails with EFBIG. The relay writes its
	 * journal, the log forwarder the log file it was handed. */
	if (o->profile != SANDBOX_RELAY && o->profile != SANDBOX_LOGFWD &&
	    set_limit(RLIMIT_FSIZE, 0, "RLIMIT_FSIZE", err, errlen) < 0)
		goto out;
	if (o->max_fds > 0 &&
	    set_limit(RLIMIT_NOFILE, (rlim_t)o->max_fds, "RLIMIT_NOFILE", err, errlen) < 0)
		goto out;
#if !defined(__SANITIZE_ADDRESS__)
	if (o->max_as_mb > 0 &&
	    set_limit(RLIMIT_AS, (rlim_t)o->max_as_mb * 1024 * 1024, "RLIMIT_AS", err, errlen) < 0)
		goto out;
#endif
	/* RLIMIT_NPROC is deliberately left alone: it counts threads, and
	 * grpc starts threads on demand. The filter forbids forks instead. */

	/* Not dumpable: no core, no ptrace or /proc/PID/mem by the same uid
	 * (another worker), /proc/PID files owned by root. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_DUMPABLE: %s", strerror(errno));
		goto out;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (jail >= 0)
		close(jail);
	return rc;
}

int
sandbox_enter(const struct sandbox_ids *ids, const struct sandbox_opts *o, char *err, size_t errlen)
{
	int rc = -1;

	if (sandbox_drop(ids, o, err, errlen) < 0)
		goto out;
	if (sandbox_seccomp(o->profile, o->debug, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	return rc;
}
