/* SPDX-License-Identifier: MIT */
/*
 * sup_logfwd.c — the log forwarder (see sup.h).
 *
 * Workers run with RLIMIT_FSIZE 0, so they must not write to a regular
 * file. When stderr is one (a shell redirect, not journald's socket), the
 * supervisor interposes a pipe: every process logs into it and a tiny
 * forwarder copies the bytes to the file. The forwarder only copies, it
 * never parses, and it runs sandboxed (SANDBOX_LOGFWD: read, write, exit;
 * chrooted, unprivileged) because log lines carry client-chosen text. The
 * supervisor keeps the pipe's read end so it can restart a forwarder that
 * died.
 */
#include "sup.h"
#include "sup_lockdown.h"
#include "sup_proto.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static struct {
	const struct config *cfg;
	int rfd;     /* the pipe's read end, kept for restarts */
	int file_fd; /* where stderr pointed at start */
	pid_t pid;
} F = { NULL, -1, -1, 0 };

static void
spawn(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("fork log forwarder failed", LF_S("error", strerror(errno)));
		return;
	}
	if (pid == 0) {
		char buf[65536];
		ssize_t n;
		sigset_t none;
		int lo = F.rfd < F.file_fd ? F.rfd : F.file_fd;
		int hi = F.rfd < F.file_fd ? F.file_fd : F.rfd;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Our own stderr is the pipe's write end: point it at the file,
		 * or we would hold the pipe open and never see EOF. */
		dup2(F.file_fd, 2);
		/* Only stdio, the pipe and the file: nothing the supervisor
		 * holds (listening socket, worker channels) is ours. */
		if (lo > 3)
			close_range(3, (unsigned)lo - 1, 0);
		if (hi > lo + 1)
			close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
		close_range((unsigned)hi + 1, ~0U, 0);
		prctl(PR_SET_NAME, "paymentd-log", 0, 0, 0);
		signal(SIGTERM, SIG_IGN); /* outlive the drain; EOF ends us */
		signal(SIGINT, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		sup_lockdown_enter(F.cfg, SANDBOX_LOGFWD, F.cfg->chroot_dir, 8, "log forwarder");
		while ((n = read(F.rfd, buf, sizeof(buf))) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (write(F.file_fd, buf, (size_t)n) < 0)
				break;
		}
		_exit(SUP_LOGFWD_EXIT_OK);
	}
	F.pid = pid;
}

void
sup_logfwd_start(const struct config *cfg)
{
	struct stat st;
	int p[2];

	F.cfg = cfg;
	if (fstat(2, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	if (pipe2(p, O_CLOEXEC) < 0)
		fatal("log pipe: %s", strerror(errno));
	F.file_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	F.rfd = p[0];
	if (F.file_fd < 0 || dup2(p[1], 2) < 0)
		fatal("dup2 log pipe: %s", strerror(errno));
	close(p[1]);
	spawn();
}

int
sup_logfwd_reaped(pid_t pid, int status)
{
	if (F.pid == 0 || pid != F.pid)
		return 0;
	F.pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_LOGFWD_EXIT_SANDBOX) {
		dup2(F.file_fd, 2); /* nobody reads the pipe any more */
		fatal("log forwarder could not enter its sandbox; failing closed");
	}
	spawn();
	log_warn("log forwarder died; restarted", LF_I("old_pid", pid));
	return 1;
}
