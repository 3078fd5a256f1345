/* SPDX-License-Identifier: MIT */
/*
 * sup_proto.c — the frames of sup_proto.h: one implementation that both
 * sides link, so the supervisor and the worker cannot disagree about the
 * hand-off frame or the config blob. libc only.
 */
#include "sup_proto.h"
#include "common/version.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

int
sup_proto_worker_byte_ok(char b)
{
	return b == SUP_MSG_READY || b == SUP_MSG_NODB || b == SUP_MSG_BUSY;
}

int
sup_proto_send_client(int ctl, int fd, const char *peer, int handed_on)
{
	struct msghdr mh;
	struct iovec iov;
	char msg[SUP_PEER_MAX], cbuf[CMSG_SPACE(sizeof(int))];
	size_t len = 1 + strnlen(peer, SUP_PEER_MAX - 1);
	struct cmsghdr *cm;

	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	msg[0] = handed_on ? SUP_MSG_HANDED : SUP_MSG_FD;
	memcpy(msg + 1, peer, len - 1);
	iov.iov_base = msg;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(ctl, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Closes every descriptor a frame carried (a malformed one may carry many). */
static void
close_passed(struct msghdr *mh)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n, i;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(fd);
		}
	}
}

int
sup_proto_recv_client(int ctl, int *fd, char peer[SUP_PEER_MAX], int *handed_on)
{
	struct msghdr mh;
	struct iovec iov;
	/* One byte more than a valid frame, to see an over-long one; room for
	 * several descriptors, to close them all if someone sends more. */
	char msg[SUP_PEER_MAX + 1], cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct cmsghdr *cm;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = msg;
	iov.iov_len = sizeof(msg);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	cm = CMSG_FIRSTHDR(&mh);
	if ((mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || n > SUP_PEER_MAX ||
	    (msg[0] != SUP_MSG_FD && msg[0] != SUP_MSG_HANDED) || cm == NULL ||
	    cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)) || CMSG_NXTHDR(&mh, cm) != NULL) {
		close_passed(&mh);
		return -2;
	}
	memcpy(fd, CMSG_DATA(cm), sizeof(int));
	memcpy(peer, msg + 1, (size_t)n - 1);
	peer[n - 1] = '\0';
	*handed_on = msg[0] == SUP_MSG_HANDED;
	return 1;
}

int
sup_proto_config_fd(const struct config *cfg, char *err, size_t errlen)
{
	struct sup_config_blob b;
	int fd = -1, rc = -1;

	memset(&b, 0, sizeof(b));
	memcpy(b.magic, SUP_CONFIG_MAGIC, sizeof(b.magic));
	b.size = (uint32_t)sizeof(struct config);
	snprintf(b.version, sizeof(b.version), "%s", PAYMENTD_VERSION);
	b.cfg = *cfg;
	fd = memfd_create("paymentd-config", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		goto out;
	}
	if (write(fd, &b, sizeof(b)) != (ssize_t)sizeof(b)) {
		snprintf(err, errlen, "config memfd write: %s", strerror(errno));
		goto out;
	}
	/* Sealed: no worker can change what later workers read. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		snprintf(err, errlen, "config memfd seal: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int
sup_proto_config_read(int fd, struct config *cfg, char *err, size_t errlen)
{
	struct sup_config_blob b;
	ssize_t n;
	int rc = -1;

	n = pread(fd, &b, sizeof(b), 0);
	if (n != (ssize_t)sizeof(b)) {
		snprintf(err, errlen, "config blob on fd %d: %s", fd,
		    n < 0 ? strerror(errno) : "short read");
		goto out;
	}
	if (memcmp(b.magic, SUP_CONFIG_MAGIC, sizeof(b.magic)) != 0 ||
	    b.size != sizeof(struct config) ||
	    strncmp(b.version, PAYMENTD_VERSION, sizeof(b.version)) != 0) {
		snprintf(err, errlen,
		    "config blob from another paymentd build "
		    "(install paymentd and paymentd-worker together)");
		goto out;
	}
	b.cfg.database_url[sizeof(b.cfg.database_url) - 1] = '\0';
	*cfg = b.cfg;
	rc = 0;
out:
	return rc;
}
