/* SPDX-License-Identifier: MIT */
/*
 * sup_kh.c — the supervisor's side of the key-holder (contract in
 * sup_kh.h, protocol in sup_proto.h).
 *
 * Only descriptors pass through here: the key and certificate files are
 * opened as root and handed over unread (the supervisor links no
 * libcrypto and parses no key), and each worker channel is a socketpair of
 * which the supervisor keeps the key-holder's end only to give it to the
 * next key-holder. The one thing it reads is the key-holder's control
 * socket: "ready" and "this channel's budget is spent", the latter so a
 * restarted key-holder does not grant a spent channel a fresh budget.
 *
 * The key-holder is exec'd like a worker (fork, sandbox_pre_exec keeping
 * CAP_SYS_CHROOT, execve): a fresh address space, and no root process ever
 * parses the key.
 */
#include "sup_kh.h"
#include "sup.h"
#include "sup_proto.h"
#include "common/log.h"
#include "common/util.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef PAYMENTD_LIBEXEC_DIR
#define PAYMENTD_LIBEXEC_DIR "/usr/local/libexec/paymentd"
#endif

#define KH_RETIRED_MAX 4

/* One key-holder process and what it was started with (kept for its
 * restarts: the same key even if the file changed since). */
struct kh_inst {
	pid_t pid;
	int ctl; /* our end of its control socket */
	int key_fd, cert_fd, config_fd;
	int ready;
	int64_t started_ms;
};

struct kh_handle {
	int fd; /* the key-holder's end of one worker's channel */
	uint64_t ino;
	int spent; /* the key-holder reported its budget spent */
	int sent;  /* the current key-holder has it */
};

static struct {
	int on;
	int final; /* a sandbox failure: never restarted */
	char path[PATH_MAX];
	int drop; /* root with SANDBOX=on: sandbox_pre_exec */
	struct sandbox_ids ids;
	struct kh_inst cur;
	pid_t retired[KH_RETIRED_MAX]; /* replaced by a reload, SIGTERM sent */
	int64_t restart_at;            /* 0: none scheduled */
	struct kh_handle *h;
	size_t nh, cap;
} K = { .cur = { 0, -1, -1, -1, -1, 0, 0 } };

/* Beside our own binary first, then the libexec directory — as
 * paymentd-worker (sup_spawn_find). */
static int
find_exe(char *err, size_t errlen)
{
	return sup_spawn_find(SUP_KH_EXE, "key-holder", K.path, sizeof(K.path), err, errlen);
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
inst_close(struct kh_inst *in)
{
	close_fd(&in->ctl);
	close_fd(&in->key_fd);
	close_fd(&in->cert_fd);
	close_fd(&in->config_fd);
	in->pid = 0;
	in->ready = 0;
}

/* Opens what a key-holder for cfg is started with. 0 or -1 with err. */
static int
inst_open(struct kh_inst *in, const struct config *cfg, char *err, size_t errlen)
{
	in->pid = 0;
	in->ctl = in->key_fd = in->cert_fd = in->config_fd = -1;
	in->ready = 0;
	in->started_ms = 0;
	in->key_fd = open(cfg->tls_key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in->key_fd < 0) {
		snprintf(err, errlen, "TLS_KEY_FILE %s: %s", cfg->tls_key_file, strerror(errno));
		goto fail;
	}
	in->cert_fd = open(cfg->tls_cert_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in->cert_fd < 0) {
		snprintf(err, errlen, "TLS_CERT_FILE %s: %s", cfg->tls_cert_file, strerror(errno));
		goto fail;
	}
	in->config_fd = sup_proto_config_fd(cfg, err, errlen);
	if (in->config_fd < 0)
		goto fail;
	return 0;
fail:
	inst_close(in);
	return -1;
}

/* Moves fd to want in the child about to exec (every source was first
 * moved to 10 and above, so dup2 cannot clobber another). */
static void
place(int fd, int want)
{
	if (dup2(fd, want) < 0)
		_exit(SUP_KH_EXIT_SOFTWARE);
}

/* Forks and execs a key-holder for in. 0, or -1 (logged). */
static int
inst_spawn(struct kh_inst *in)
{
	char *const argv[] = { (char *)SUP_KH_EXE, NULL };
	extern char **environ;
	pid_t pid, parent = getpid();
	sigset_t none;
	char err[256];
	int sv[2], c, k, f, x, nul;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("key-holder socketpair failed", LF_S("error", strerror(errno)));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork key-holder failed", LF_S("error", strerror(errno)));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/* Child: libc only from here to execve. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		c = fcntl(sv[1], F_DUPFD, 10);
		k = fcntl(in->key_fd, F_DUPFD, 10);
		f = fcntl(in->config_fd, F_DUPFD, 10);
		x = fcntl(in->cert_fd, F_DUPFD, 10);
		nul = open("/dev/null", O_RDONLY);
		if (c < 0 || k < 0 || f < 0 || x < 0 || nul < 0)
			_exit(SUP_KH_EXIT_SOFTWARE);
		place(nul, 0);
		place(c, SUP_KH_FD_CTL);
		place(k, SUP_KH_FD_KEYFILE);
		place(f, SUP_FD_CONFIG);
		place(x, SUP_KH_FD_CERTFILE);
		/* Nothing else: no listening socket, no worker channel (the
		 * channels come one by one over the control socket). */
		close_range(SUP_KH_FD_CERTFILE + 1, ~0U, 0);
		if (K.drop && sandbox_pre_exec(&K.ids, err, sizeof(err)) < 0) {
			log_kv(LOG_CRIT, "key-holder: privilege drop before exec failed",
			    (const struct log_field[]){ LF_S("error", err), { 0 } });
			_exit(SUP_KH_EXIT_SANDBOX);
		}
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(SUP_KH_EXIT_OK);
		execve(K.path, argv, environ);
		log_error("key-holder: exec failed", LF_S("path", K.path),
		    LF_S("error", strerror(errno)));
		_exit(SUP_KH_EXIT_SOFTWARE);
	}
	close(sv[1]);
	in->ctl = sv[0];
	in->pid = pid;
	in->ready = 0;
	in->started_ms = util_now_ms();
	return 0;
}

static struct kh_handle *
handle_by_ino(uint64_t ino)
{
	size_t i;

	for (i = 0; i < K.nh; i++)
		if (K.h[i].ino == ino)
			return &K.h[i];
	return NULL;
}

/* Reads what the key-holder reported. 0, or -1 if it broke the protocol
 * (it is killed). */
static int
inst_read(struct kh_inst *in)
{
	unsigned char m[16];
	struct kh_handle *h;
	uint64_t ino;
	ssize_t n;

	while (in->ctl >= 0 && (n = recv(in->ctl, m, sizeof(m), MSG_DONTWAIT)) > 0) {
		if (n == 1 && m[0] == SUP_KH_MSG_READY && !in->ready) {
			in->ready = 1;
			continue;
		}
		if (n == 1 + (ssize_t)sizeof(ino) && m[0] == SUP_KH_MSG_SPENT) {
			memcpy(&ino, m + 1, sizeof(ino));
			if ((h = handle_by_ino(ino)) != NULL)
				h->spent = 1;
			continue;
		}
		log_error("protocol violation on the key-holder's control socket; killing it",
		    LF_I("keyholder_pid", in->pid), LF_I("bytes", n), LF_I("byte", m[0]));
		if (in->pid > 0)
			kill(in->pid, SIGKILL);
		return -1;
	}
	return 0;
}

/* Waits until in reports ready. 0, or -1 with err (the process is
 * reaped here and in closed). */
static int
inst_wait_ready(struct kh_inst *in, char *err, size_t errlen)
{
	int64_t deadline = util_now_ms() + SUP_KH_START_MS;
	struct pollfd p;
	int status = 0;

	while (!in->ready) {
		int64_t left = deadline - util_now_ms();
		char b;
		ssize_t n;

		if (left <= 0) {
			snprintf(err, errlen, "key-holder not ready within %d ms", SUP_KH_START_MS);
			kill(in->pid, SIGKILL);
			break;
		}
		p.fd = in->ctl;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			kill(in->pid, SIGKILL);
			break;
		}
		if (!p.revents)
			continue;
		n = recv(in->ctl, &b, 1, MSG_DONTWAIT);
		if (n == 1 && b == SUP_KH_MSG_READY) {
			in->ready = 1;
			return 0;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		/* End of file: it exited (its own log line says why). */
		snprintf(err, errlen, "key-holder exited during start-up");
		break;
	}
	if (waitpid(in->pid, &status, 0) == in->pid) {
		size_t l = strlen(err);

		if (WIFEXITED(status))
			snprintf(err + l, errlen - l, " (exit %d%s)", WEXITSTATUS(status),
			    WEXITSTATUS(status) == SUP_KH_EXIT_KEY ? ": bad TLS key or certificate"
			        : WEXITSTATUS(status) == SUP_KH_EXIT_SANDBOX
			        ? ": sandbox setup failed"
			        : "");
		else if (WIFSIGNALED(status))
			snprintf(err + l, errlen - l, " (signal %d)", WTERMSIG(status));
	}
	inst_close(in);
	return -1;
}

/* Hands one channel to the current key-holder. 0, or -1 (kept unsent:
 * retried by the next tick). */
static int
handle_send(struct kh_handle *h)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} cb;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	char b = h->spent ? SUP_KH_MSG_SPENT_CHANNEL : SUP_KH_MSG_CHANNEL;

	if (K.cur.pid <= 0 || K.cur.ctl < 0)
		return -1;
	memset(&mh, 0, sizeof(mh));
	memset(&cb, 0, sizeof(cb));
	iov.iov_base = &b;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.buf;
	mh.msg_controllen = sizeof(cb.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &h->fd, sizeof(int));
	if (sendmsg(K.cur.ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
		return -1;
	h->sent = 1;
	return 0;
}

static void
send_all(void)
{
	size_t i;

	for (i = 0; i < K.nh; i++)
		if (!K.h[i].sent && handle_send(&K.h[i]) < 0)
			break; /* full or gone: the next tick retries */
}

static void
unsend_all(void)
{
	size_t i;

	for (i = 0; i < K.nh; i++)
		K.h[i].sent = 0;
}

/* Opens the key and certificate, starts a key-holder on them and waits
 * until it says it loaded a matching pair. 0, or -1 with err. */
static int
inst_launch(struct kh_inst *in, const struct config *cfg, char *err, size_t errlen)
{
	if (inst_open(in, cfg, err, errlen) < 0)
		return -1;
	if (inst_spawn(in) < 0) {
		snprintf(err, errlen, "cannot start the key-holder");
		inst_close(in);
		return -1;
	}
	return inst_wait_ready(in, err, errlen);
}

int
sup_kh_start(const struct config *cfg, char *err, size_t errlen)
{
	struct kh_inst in;

	if (!cfg->tls)
		return 0;
	if (find_exe(err, errlen) < 0)
		return -1;
	K.drop = cfg->sandbox && geteuid() == 0;
	if (K.drop && sandbox_resolve(cfg->user, &K.ids, err, errlen) < 0)
		return -1;
	if (inst_launch(&in, cfg, err, errlen) < 0)
		return -1;
	K.cur = in;
	K.on = 1;
	log_info("key-holder started", LF_I("keyholder_pid", in.pid), LF_S("path", K.path));
	return 0;
}

int
sup_kh_channel(int *handle)
{
	struct stat st;
	int sv[2];

	if (!K.on) {
		errno = ENOTCONN;
		return -1;
	}
	if (K.nh == K.cap) {
		size_t cap = K.cap ? K.cap * 2 : 64;
		struct kh_handle *h = realloc(K.h, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		K.h = h;
		K.cap = cap;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (fstat(sv[0], &st) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	K.h[K.nh].fd = sv[0];
	K.h[K.nh].ino = (uint64_t)st.st_ino;
	K.h[K.nh].spent = 0;
	K.h[K.nh].sent = 0;
	/* If the key-holder is restarting, the request waits in the channel
	 * and the next tick hands it over. */
	(void)handle_send(&K.h[K.nh]);
	K.nh++;
	*handle = sv[0];
	return sv[1];
}

void
sup_kh_release(int handle)
{
	size_t i;

	for (i = 0; i < K.nh; i++)
		if (K.h[i].fd == handle) {
			close(handle);
			K.h[i] = K.h[--K.nh];
			return;
		}
}

int
sup_kh_reaped(pid_t pid, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	int64_t now = util_now_ms();
	size_t i;

	if (pid <= 0)
		return 0;
	for (i = 0; i < KH_RETIRED_MAX; i++)
		if (K.retired[i] == pid) {
			K.retired[i] = 0;
			log_info("replaced key-holder exited", LF_I("keyholder_pid", pid));
			return 1;
		}
	if (pid != K.cur.pid)
		return 0;
	/* Reports it made before dying are still queued on our end. */
	(void)inst_read(&K.cur);
	close_fd(&K.cur.ctl);
	K.cur.pid = 0;
	K.cur.ready = 0;
	unsend_all();
	if (code == SUP_KH_EXIT_SANDBOX) {
		K.final = 1;
		log_kv(LOG_CRIT, "the key-holder could not enter its sandbox; failing closed",
		    (const struct log_field[]){ LF_I("keyholder_pid", pid), { 0 } });
		return 2;
	}
	/* At once if it had run for SUP_KH_RESTART_MS, else that long after
	 * its start: a key-holder that cannot live must not spin. */
	K.restart_at = now - K.cur.started_ms < SUP_KH_RESTART_MS
	    ? K.cur.started_ms + SUP_KH_RESTART_MS
	    : now;
	log_error("key-holder died; restarting", LF_I("keyholder_pid", pid),
	    LF_I("status", WIFEXITED(status) ? code : WTERMSIG(status)),
	    LF_B("signal", WIFSIGNALED(status)), LF_I("restart_in_ms", K.restart_at - now),
	    LF_I("channels", (int64_t)K.nh));
	return 1;
}

void
sup_kh_tick(void)
{
	if (!K.on || K.final)
		return;
	if (K.cur.pid > 0 && inst_read(&K.cur) < 0)
		return; /* killed: its reaping schedules the restart */
	if (K.cur.pid == 0 && K.restart_at && util_now_ms() >= K.restart_at) {
		K.restart_at = 0;
		if (inst_spawn(&K.cur) < 0) {
			K.restart_at = util_now_ms() + SUP_KH_RESTART_MS;
			return;
		}
		log_info("key-holder restarted", LF_I("keyholder_pid", K.cur.pid),
		    LF_I("channels", (int64_t)K.nh));
	}
	if (K.cur.pid > 0)
		send_all();
}

int
sup_kh_timeout_ms(void)
{
	int64_t left;

	if (!K.on || K.final || K.cur.pid > 0 || !K.restart_at)
		return -1;
	left = K.restart_at - util_now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

int
sup_kh_reload(const struct config *cfg, char *err, size_t errlen)
{
	struct kh_inst in, old;
	pid_t old_pid;
	size_t i;

	if (!K.on)
		return cfg->tls ? sup_kh_start(cfg, err, errlen) : 0;
	if (!cfg->tls) {
		snprintf(err, errlen, "TLS cannot be switched off by a reload (restart paymentd)");
		return -1;
	}
	if (inst_launch(&in, cfg, err, errlen) < 0)
		return -1;
	old = K.cur;
	old_pid = old.pid;
	if (old.pid > 0) {
		(void)inst_read(&old); /* spent reports still queued */
		kill(old.pid, SIGTERM);
		for (i = 0; i < KH_RETIRED_MAX && K.retired[i] != 0; i++) {
		}
		if (i < KH_RETIRED_MAX)
			K.retired[i] = old.pid;
	}
	inst_close(&old);
	K.cur = in;
	K.restart_at = 0;
	unsend_all();
	send_all();
	log_info("key-holder replaced (reload)", LF_I("keyholder_pid", in.pid),
	    LF_I("old_pid", old_pid), LF_I("channels", (int64_t)K.nh));
	return 0;
}

void
sup_kh_stop(void)
{
	size_t i;

	if (K.cur.pid > 0)
		kill(K.cur.pid, SIGTERM);
	for (i = 0; i < KH_RETIRED_MAX; i++)
		if (K.retired[i] > 0)
			kill(K.retired[i], SIGTERM);
	K.final = 1; /* no restarts while draining */
}

pid_t
sup_kh_pid(void)
{
	return K.cur.pid;
}
