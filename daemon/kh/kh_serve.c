/* SPDX-License-Identifier: MIT */
/*
 * kh_serve.c — the key-holder's loop after lock-down (contract in kh.h,
 * protocol in sup_proto.h): poll the control socket for new channels and
 * every channel for requests; answer each well-formed request within its
 * budget, cut off a channel on anything else.
 *
 * Single-threaded and non-blocking on purpose: a worker that stops reading
 * its replies must not stall the signatures of the others, so every send
 * is MSG_DONTWAIT and a reply that does not fit cuts that channel off.
 * "Cut off" is shutdown(SHUT_RDWR) then close: the supervisor holds a copy
 * of our end (to re-send it to a restarted key-holder), so a plain close
 * would not show the worker an end of file; shutdown acts on the socket.
 */
#include "kh.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct kh_chan {
	int fd;
	uint64_t ino;
	unsigned signs; /* signatures made on it (by any key-holder) */
	unsigned reqs;  /* requests seen by this one */
};

static struct {
	struct kh_chan *c;
	size_t n, max;
	int ctl;
	unsigned long signed_total, cut_total;
} K;

static void
chan_drop(size_t i, int cut)
{
	if (cut) {
		shutdown(K.c[i].fd, SHUT_RDWR);
		K.cut_total++;
	}
	close(K.c[i].fd);
	K.c[i] = K.c[--K.n];
}

/* One message from the supervisor: a channel with one descriptor. 1 on a
 * channel taken (or refused for room), 0 on end of file, -1 on a broken
 * control socket. */
static int
ctl_read(void)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 2)];
	} cb;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	struct stat st;
	char msg[2];
	ssize_t n;
	int fd = -1;

	memset(&mh, 0, sizeof(mh));
	memset(&cb, 0, sizeof(cb));
	iov.iov_base = msg;
	iov.iov_len = sizeof(msg);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.buf;
	mh.msg_controllen = sizeof(cb.buf);
	n = recvmsg(K.ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : -1;
	if (n == 0)
		return 0;
	cm = CMSG_FIRSTHDR(&mh);
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len >= CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	/* The supervisor is trusted; a frame we do not understand means the
	 * two binaries disagree, and that is fatal. */
	if (n != 1 || (msg[0] != SUP_KH_MSG_CHANNEL && msg[0] != SUP_KH_MSG_SPENT_CHANNEL) ||
	    (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || fd < 0 ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)) || CMSG_NXTHDR(&mh, cm) != NULL ||
	    fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		log_error("malformed frame from the supervisor", LF_I("bytes", n));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (K.n >= K.max) {
		log_error("too many worker channels; refusing one", LF_I("max", (int64_t)K.max));
		shutdown(fd, SHUT_RDWR);
		close(fd);
		return 1;
	}
	K.c[K.n].fd = fd;
	K.c[K.n].ino = (uint64_t)st.st_ino;
	K.c[K.n].signs = msg[0] == SUP_KH_MSG_SPENT_CHANNEL ? SUP_KH_SIGNS_PER_CHANNEL : 0;
	K.c[K.n].reqs = 0;
	K.n++;
	return 1;
}

/* Tells the supervisor a channel's budget is spent, before the reply goes
 * out. Best effort: if the supervisor's queue is full the budget still
 * holds for this key-holder's life. */
static void
report_spent(const struct kh_chan *c)
{
	char m[1 + sizeof(uint64_t)];

	m[0] = SUP_KH_MSG_SPENT;
	memcpy(m + 1, &c->ino, sizeof(c->ino));
	if (send(K.ctl, m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(m))
		log_warn("could not report a spent channel to the supervisor",
		    LF_S("error", strerror(errno)));
}

/* Serves one readable channel. Returns 1 to keep it, 0 to drop it (the
 * worker closed it), -1 to cut it off. */
static int
chan_serve(const struct kh_key *k, struct kh_chan *c)
{
	struct sup_kh_req req;
	struct sup_kh_rep rep;
	char pad[sizeof(req) + 1], err[160];
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;
	int r;

	/* One byte more than a request, and no room for descriptors: the
	 * kernel flags a longer record MSG_TRUNC and descriptors MSG_CTRUNC
	 * (and closes them). */
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = pad;
	iov.iov_len = sizeof(pad);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : 0;
	if (n == 0)
		return 0;
	c->reqs++;
	if (n != (ssize_t)sizeof(req) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		log_warn("malformed signing request; channel closed", LF_I("bytes", n),
		    LF_B("descriptors", (mh.msg_flags & MSG_CTRUNC) != 0));
		return -1;
	}
	if (c->signs >= SUP_KH_SIGNS_PER_CHANNEL) {
		log_error("worker asked for more signatures than its budget; channel cut off",
		    LF_I("signatures", c->signs), LF_I("requests", c->reqs),
		    LF_I("budget", SUP_KH_SIGNS_PER_CHANNEL));
		return -1;
	}
	memcpy(&req, pad, sizeof(req));
	r = kh_sign(k, &req, &rep, err, sizeof(err));
	if (r == -1) {
		log_warn("malformed signing request; channel closed", LF_S("error", err),
		    LF_I("alg", req.alg), LF_I("len", req.len));
		return -1;
	}
	if (r == 0) {
		c->signs++;
		K.signed_total++;
		if (c->signs >= SUP_KH_SIGNS_PER_CHANNEL)
			report_spent(c);
		log_debug("signed", LF_I("alg", req.alg), LF_I("len", req.len));
	} else {
		log_error("signing failed", LF_S("error", err));
	}
	if (send(c->fd, &rep, sizeof(rep), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
		return -1;
	return 1;
}

int
kh_serve(const struct config *cfg, const struct kh_key *k, int ctl)
{
	struct pollfd *pfd;
	size_t i, np;
	int r;

	K.ctl = ctl;
	K.max = (size_t)cfg->max_workers + SUP_KH_SPARE_FDS / 2;
	K.c = xcalloc(K.max, sizeof(*K.c));
	pfd = xcalloc(K.max + 1, sizeof(*pfd));
	for (;;) {
		pfd[0].fd = K.ctl;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		for (i = 0; i < K.n; i++) {
			pfd[i + 1].fd = K.c[i].fd;
			pfd[i + 1].events = POLLIN;
			pfd[i + 1].revents = 0;
		}
		np = K.n + 1;
		if (poll(pfd, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll failed", LF_S("error", strerror(errno)));
			return SUP_KH_EXIT_SOFTWARE;
		}
		/* Channels first, from the end: chan_drop() moves the last
		 * entry into the freed slot, which was already visited. */
		for (i = np - 1; i >= 1; i--) {
			if (!pfd[i].revents)
				continue;
			r = chan_serve(k, &K.c[i - 1]);
			if (r <= 0)
				chan_drop(i - 1, r < 0);
		}
		if (pfd[0].revents) {
			r = ctl_read();
			if (r == 0) {
				log_info("supervisor gone; key-holder exiting",
				    LF_I("signatures", (int64_t)K.signed_total),
				    LF_I("channels_cut", (int64_t)K.cut_total));
				return SUP_KH_EXIT_OK;
			}
			if (r < 0)
				return SUP_KH_EXIT_SOFTWARE;
		}
	}
}
