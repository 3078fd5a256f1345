/* SPDX-License-Identifier: MIT */
/*
 * sup_proto.c — the frames of sup_proto.h: one implementation that both
 * sides link, so the supervisor and the worker cannot disagree about the
 * hand-off frame or the config blob. libc only.
 */
#include "sup_proto.h"
#include "common/version.h"

#include <stdlib.h>

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
	return b == SUP_MSG_READY || b == SUP_MSG_NODB || b == SUP_MSG_BUSY ||
	    b == SUP_MSG_POOLED || b == SUP_MSG_ABUSE;
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

/* Writes all of buf at the memfd's current offset. 0 or -1. */
static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A new memfd holding the n parts one after the other, sealed against any
 * change: no worker can alter what later workers read. Returns it, or -1
 * with err. */
static int
sealed_memfd(
    const char *name, const void *const *part, const size_t *len, int n, char *err, size_t errlen)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), i, rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++)
		if (len[i] > 0 && write_all(fd, part[i], len[i]) < 0) {
			snprintf(err, errlen, "%s memfd write: %s", name, strerror(errno));
			goto out;
		}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		snprintf(err, errlen, "%s memfd seal: %s", name, strerror(errno));
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
sup_proto_config_fd(const struct config *cfg, char *err, size_t errlen)
{
	struct sup_config_blob b;
	int fd;

	memset(&b, 0, sizeof(b));
	memcpy(b.magic, SUP_CONFIG_MAGIC, sizeof(b.magic));
	b.size = (uint32_t)sizeof(struct config);
	snprintf(b.version, sizeof(b.version), "%s", PAYMENTD_VERSION);
	b.cfg = *cfg;
	{
		const void *part[1] = { &b };
		size_t len[1] = { sizeof(b) };

		fd = sealed_memfd("paymentd-config", part, len, 1, err, errlen);
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

int
sup_proto_tls_fd(
    const struct sup_tls_blob *hdr, const char *cert, const char *ca, char *err, size_t errlen)
{
	struct sup_tls_blob b = *hdr;
	size_t cl = strlen(cert), al = ca != NULL ? strlen(ca) : 0;
	int fd = -1;

	if (cl == 0 || cl > SUP_TLS_MAX_PEM || al > SUP_TLS_MAX_PEM) {
		snprintf(err, errlen, "TLS material: certificate %zu bytes, CA %zu bytes (1..%u)",
		    cl, al, SUP_TLS_MAX_PEM);
		goto out;
	}
	memcpy(b.magic, SUP_TLS_MAGIC, sizeof(b.magic));
	b.cert_len = (uint32_t)cl;
	b.ca_len = (uint32_t)al;
	{
		const void *part[3] = { &b, cert, ca };
		size_t len[3] = { sizeof(b), cl, al };

		fd = sealed_memfd("paymentd-tls", part, len, 3, err, errlen);
	}
out:
	return fd;
}

/* Reads len bytes at off into a new NUL-terminated buffer. */
static char *
read_text(int fd, off_t off, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL || pread(fd, p, len, off) != (ssize_t)len) {
		free(p);
		return NULL;
	}
	p[len] = '\0';
	return p;
}

int
sup_proto_tls_read(
    int fd, struct sup_tls_blob *hdr, char **cert, char **ca, char *err, size_t errlen)
{
	ssize_t n;
	int rc = -1;

	*cert = *ca = NULL;
	n = pread(fd, hdr, sizeof(*hdr), 0);
	if (n != (ssize_t)sizeof(*hdr) ||
	    memcmp(hdr->magic, SUP_TLS_MAGIC, sizeof(hdr->magic)) != 0 || hdr->cert_len == 0 ||
	    hdr->cert_len > SUP_TLS_MAX_PEM || hdr->ca_len > SUP_TLS_MAX_PEM) {
		snprintf(err, errlen, "TLS blob on fd %d: missing or malformed", fd);
		goto out;
	}
	*cert = read_text(fd, (off_t)sizeof(*hdr), hdr->cert_len);
	if (hdr->ca_len > 0)
		*ca = read_text(fd, (off_t)(sizeof(*hdr) + hdr->cert_len), hdr->ca_len);
	if (*cert == NULL || (hdr->ca_len > 0 && *ca == NULL)) {
		snprintf(err, errlen, "TLS blob on fd %d: short read", fd);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		free(*cert);
		free(*ca);
		*cert = *ca = NULL;
	}
	return rc;
}
