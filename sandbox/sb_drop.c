/*
 * sb_drop.c — identity and resource lock-down (see sandbox.h).
 *
 * The order matters: groups and gid while still root; chroot while still
 * root (it needs CAP_SYS_CHROOT) and before setuid; setuid last of the
 * identity steps, then verify it is permanent; rlimits and no_new_privs
 * before the seccomp filter so the filter need not allow setrlimit/prctl.
 */
#include "sandbox.h"

#include <errno.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

int
sandbox_resolve(const char *user, struct sandbox_ids *ids, char *err, size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen, "PAYMENTD_USER %s: no such user%s%s", user,
		    errno ? ": " : " (create it: scripts/install-deps or systemd-sysusers)",
		    errno ? strerror(errno) : "");
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen, "PAYMENTD_USER %s: refusing to sandbox as uid/gid 0", user);
		return -1;
	}
	ids->uid = pw->pw_uid;
	ids->gid = pw->pw_gid;
	snprintf(ids->user, sizeof(ids->user), "%s", user);
	return 0;
}

/* The chroot must be a root-owned directory nobody else can write, and
 * empty: otherwise it is not a jail but a workspace. */
static int
check_empty_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int rc = -1;

	if (stat(dir, &st) < 0) {
		snprintf(err, errlen, "PAYMENTD_CHROOT %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
		snprintf(err, errlen, "PAYMENTD_CHROOT %s: must be a root-owned directory "
		    "writable by nobody else", dir);
		return -1;
	}
	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errlen, "PAYMENTD_CHROOT %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(err, errlen, "PAYMENTD_CHROOT %s: not empty (%s)", dir, de->d_name);
			goto out;
		}
	}
	rc = 0;
out:
	closedir(d);
	return rc;
}

static int
set_limit(int res, rlim_t v, const char *name, char *err, size_t errlen)
{
	struct rlimit rl = { v, v };

	if (setrlimit(res, &rl) < 0) {
		snprintf(err, errlen, "setrlimit(%s): %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

int
sandbox_enter(const struct sandbox_ids *ids, const struct sandbox_opts *o,
    char *err, size_t errlen)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (geteuid() == 0) {
		if (setgroups(0, NULL) < 0) {
			snprintf(err, errlen, "setgroups: %s", strerror(errno));
			return -1;
		}
		if (setresgid(ids->gid, ids->gid, ids->gid) < 0) {
			snprintf(err, errlen, "setresgid(%u): %s", (unsigned)ids->gid, strerror(errno));
			return -1;
		}
		if (o->chroot_dir != NULL) {
			if (check_empty_dir(o->chroot_dir, err, errlen) < 0)
				return -1;
			if (chroot(o->chroot_dir) < 0) {
				snprintf(err, errlen, "chroot(%s): %s", o->chroot_dir, strerror(errno));
				return -1;
			}
		}
		if (chdir("/") < 0) {
			snprintf(err, errlen, "chdir(/): %s", strerror(errno));
			return -1;
		}
		if (setresuid(ids->uid, ids->uid, ids->uid) < 0) {
			snprintf(err, errlen, "setresuid(%u): %s", (unsigned)ids->uid, strerror(errno));
			return -1;
		}
	} else if (geteuid() != ids->uid) {
		snprintf(err, errlen, "running as uid %u: cannot switch to %s (uid %u) without root",
		    (unsigned)geteuid(), ids->user, (unsigned)ids->uid);
		return -1;
	}
	/* Permanent? Every id must be the target, and root must be gone. */
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != ids->uid || euid != ids->uid || suid != ids->uid ||
	    rgid != ids->gid || egid != ids->gid || sgid != ids->gid) {
		snprintf(err, errlen, "identity not fully dropped");
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		snprintf(err, errlen, "uid 0 could be regained after the drop");
		return -1;
	}

	if (set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", err, errlen) < 0)
		return -1;
	if (o->profile == SANDBOX_WORKER &&
	    set_limit(RLIMIT_FSIZE, 0, "RLIMIT_FSIZE", err, errlen) < 0)
		return -1;
	if (o->max_fds > 0 &&
	    set_limit(RLIMIT_NOFILE, (rlim_t)o->max_fds, "RLIMIT_NOFILE", err, errlen) < 0)
		return -1;
	/* No core dumps, no ptrace by the same uid, /proc/PID root-only. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_DUMPABLE: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	return sandbox_seccomp(o->profile, o->debug, err, errlen);
}
