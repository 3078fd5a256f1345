/* SPDX-License-Identifier: MIT */
/*
 * sup_spawn.c — starts one worker: fork, drop to the sandbox user keeping
 * only CAP_SYS_CHROOT, lay out the descriptors of sup_proto.h, exec
 * paymentd-worker. See sup.h for the contract.
 *
 * Why exec and not just fork: a forked worker would inherit the
 * supervisor's address-space layout (whatever one worker leaks about its
 * memory holds for every later one) and would run grpc's static
 * constructors as root. The child below runs only libc between fork and
 * execve.
 */
#include "sup.h"
#include "sup_proto.h"
#include "common/log.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#ifndef PAYMENTD_LIBEXEC_DIR
#define PAYMENTD_LIBEXEC_DIR "/usr/local/libexec/paymentd"
#endif

#ifdef PAYMENTD_TEST_HOOKS
#define WORKER_EXE SUP_WORKER_TESTHOOKS_EXE
#else
#define WORKER_EXE SUP_WORKER_EXE
#endif

static struct {
	char path[PATH_MAX];
	int config_fd;
	int drop; /* root with SANDBOX=on: sandbox_pre_exec */
	struct sandbox_ids ids;
} P = { "", -1, 0, { 0, 0, "" } };

static int
executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int
sup_spawn_find(
    const char *exe, const char *what, char *path, size_t pathlen, char *err, size_t errlen)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	/* Beside our own binary first (a build tree, or bin/ installs),
	 * then the libexec directory `make install` uses. */
	path[0] = '\0';
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(path, pathlen, "%s/%s", self, exe) >= pathlen)
				path[0] = '\0';
		}
	}
	if (!executable(path))
		snprintf(path, pathlen, "%s/%s", PAYMENTD_LIBEXEC_DIR, exe);
	if (!executable(path)) {
		snprintf(err, errlen, "%s binary %s not found next to paymentd nor in %s", what,
		    exe, PAYMENTD_LIBEXEC_DIR);
		return -1;
	}
	return 0;
}

int
sup_spawn_init(const struct config *cfg, char *err, size_t errlen)
{
	int rc = -1;

	if (sup_spawn_find(WORKER_EXE, "worker", P.path, sizeof(P.path), err, errlen) < 0)
		goto out;
	P.config_fd = sup_proto_config_fd(cfg, err, errlen);
	if (P.config_fd < 0)
		goto out;
	P.drop = cfg->sandbox && geteuid() == 0;
	if (P.drop && sandbox_resolve(cfg->user, &P.ids, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	return rc;
}

const char *
sup_spawn_path(void)
{
	return P.path;
}

/* Moves fd to the fixed number want, in a child about to exec. fds below
 * SUP_FD_LAST + 1 were first moved out of the way, so dup2 cannot clobber
 * another one. */
static void
place(int fd, int want)
{
	if (dup2(fd, want) < 0)
		_exit(SUP_EXIT_SOFTWARE);
}

pid_t
sup_spawn_worker(int ctl, int metrics_fd, int status_fd, int tls_fd, int key_fd)
{
	char *const argv[] = { (char *)SUP_WORKER_EXE, NULL };
	extern char **environ;
	sigset_t none;
	pid_t pid, parent = getpid();
	char err[256];
	int c, m, k, st, t = -1, kh = -1, nul;

	pid = fork();
	if (pid != 0)
		return pid;

	/* Child: libc only from here to execve. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Out of the range 0..SUP_FD_LAST first, then into place. */
	c = fcntl(ctl, F_DUPFD, SUP_FD_LAST + 1);
	m = fcntl(metrics_fd, F_DUPFD, SUP_FD_LAST + 1);
	k = fcntl(P.config_fd, F_DUPFD, SUP_FD_LAST + 1);
	st = fcntl(status_fd, F_DUPFD, SUP_FD_LAST + 1);
	if (tls_fd >= 0 && key_fd >= 0) {
		t = fcntl(tls_fd, F_DUPFD, SUP_FD_LAST + 1);
		kh = fcntl(key_fd, F_DUPFD, SUP_FD_LAST + 1);
		if (t < 0 || kh < 0)
			_exit(SUP_EXIT_SOFTWARE);
	}
	nul = open("/dev/null", O_RDONLY);
	if (c < 0 || m < 0 || k < 0 || st < 0 || nul < 0)
		_exit(SUP_EXIT_SOFTWARE);
	place(nul, 0);
	place(c, SUP_FD_CTL);
	place(m, SUP_FD_METRICS);
	place(k, SUP_FD_CONFIG);
	place(st, SUP_FD_STATUS);
	if (t >= 0) {
		place(t, SUP_FD_TLS);
		place(kh, SUP_FD_KEY);
	} else {
		close(SUP_FD_TLS);
		close(SUP_FD_KEY);
	}
	close_range(SUP_FD_LAST + 1, ~0U, 0);
	if (P.drop && sandbox_pre_exec(&P.ids, err, sizeof(err)) < 0) {
		log_kv(LOG_CRIT, "worker: privilege drop before exec failed; refusing to serve",
		    (const struct log_field[]){ LF_S("error", err), { 0 } });
		_exit(SUP_EXIT_SANDBOX);
	}
	/* The uid change cleared it; a worker never outlives the supervisor. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(SUP_EXIT_IPC);
	execve(P.path, argv, environ);
	log_error("worker: exec failed", LF_S("path", P.path), LF_S("error", strerror(errno)));
	_exit(SUP_EXIT_SOFTWARE);
}
