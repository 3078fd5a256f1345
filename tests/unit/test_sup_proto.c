/* SPDX-License-Identifier: MIT */
/*
 * test_sup_proto.c — the supervisor <-> worker frames (daemon/sup/sup_proto.c):
 * a good hand-off frame round-trips; every malformed one (unknown byte, no
 * descriptor, two descriptors, an over-long peer) is refused and leaks no
 * descriptor; the config blob round-trips, is sealed, and a blob of another
 * layout is refused.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "sup/sup_proto.h"

static int
open_fds(void)
{
	int n = 0, fd;

	for (fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Sends a raw frame: len bytes of msg with nfd copies of fd attached. */
static void
send_raw(int s, const char *msg, size_t len, int fd, int nfd)
{
	struct msghdr mh;
	struct iovec iov = { (void *)msg, len };
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct cmsghdr *cm;
	int fds[2] = { fd, fd };

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfd > 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfd * sizeof(int));
	}
	ck_assert_int_eq(sendmsg(s, &mh, 0), (ssize_t)len);
}

START_TEST(handoff_frame_round_trip)
{
	int sv[2], p[2], fd = -1, handed = -1;
	char peer[SUP_PEER_MAX];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(sup_proto_send_client(sv[0], p[0], "ipv4:10.0.0.7:5555", 0), 0);
	ck_assert_int_eq(sup_proto_recv_client(sv[1], &fd, peer, &handed), 1);
	ck_assert_str_eq(peer, "ipv4:10.0.0.7:5555");
	ck_assert_int_eq(handed, 0);
	ck_assert_int_ne(fd, p[0]);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	{
		char c = 0;
		ck_assert_int_eq(read(fd, &c, 1), 1); /* the same pipe */
		ck_assert_int_eq(c, 'x');
	}
	close(fd);
	ck_assert_int_eq(sup_proto_send_client(sv[0], p[0], "", 1), 0);
	ck_assert_int_eq(sup_proto_recv_client(sv[1], &fd, peer, &handed), 1);
	ck_assert_str_eq(peer, "");
	ck_assert_int_eq(handed, 1);
	close(fd);
	close(sv[0]);
	ck_assert_int_eq(sup_proto_recv_client(sv[1], &fd, peer, &handed), 0); /* EOF */
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(malformed_frames_refused_without_leaks)
{
	char big[SUP_PEER_MAX + 8], peer[SUP_PEER_MAX];
	int sv[2], p[2], fd, handed, before;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	ck_assert_int_eq(pipe(p), 0);
	before = open_fds();
	send_raw(sv[0], "Xipv4:1.2.3.4:5", 15, p[0], 1); /* unknown byte */
	ck_assert_int_eq(sup_proto_recv_client(sv[1], &fd, peer, &handed), -2);
	send_raw(sv[0], "Fipv4:1.2.3.4:5", 15, -1, 0); /* no descriptor */
	ck_assert_int_eq(sup_proto_recv_client(sv[1], &fd, peer, &handed), -2);
	send_raw(sv[0], "Fipv4:1.2.3.4:5", 15, p[0], 2); /* two */
	ck_assert_int_eq(sup_proto_recv_client(sv[1], &fd, peer, &handed), -2);
	memset(big, 'a', sizeof(big));
	big[0] = SUP_MSG_FD;
	send_raw(sv[0], big, sizeof(big), p[0], 1); /* peer too long */
	ck_assert_int_eq(sup_proto_recv_client(sv[1], &fd, peer, &handed), -2);
	ck_assert_int_eq(open_fds(), before); /* every passed copy closed */
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(worker_bytes)
{
	ck_assert(sup_proto_worker_byte_ok(SUP_MSG_READY));
	ck_assert(sup_proto_worker_byte_ok(SUP_MSG_NODB));
	ck_assert(sup_proto_worker_byte_ok(SUP_MSG_BUSY));
	ck_assert(sup_proto_worker_byte_ok(SUP_MSG_POOLED));
	ck_assert(sup_proto_worker_byte_ok(SUP_MSG_ABUSE));
	ck_assert(!sup_proto_worker_byte_ok(SUP_MSG_FD));
	ck_assert(!sup_proto_worker_byte_ok('X'));
	ck_assert(!sup_proto_worker_byte_ok('\0'));
}
END_TEST

START_TEST(config_blob_round_trip_sealed)
{
	struct config in, out;
	char err[256];
	int fd;

	cfg_defaults(&in);
	snprintf(in.database_url, sizeof(in.database_url), "postgresql://u@h:1/db");
	in.max_workers = 77;
	fd = sup_proto_config_fd(&in, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(sup_proto_config_read(fd, &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.database_url, in.database_url);
	ck_assert_int_eq(out.max_workers, 77);
	/* Sealed: no one who holds it can rewrite it. */
	ck_assert_int_eq(pwrite(fd, "x", 1, 0), -1);
	ck_assert_int_eq(errno, EPERM);
	close(fd);
}
END_TEST

START_TEST(config_blob_from_other_build_refused)
{
	struct sup_config_blob b;
	struct config out;
	char err[256];
	int fd = memfd_create("t", 0);

	memset(&b, 0, sizeof(b));
	memcpy(b.magic, SUP_CONFIG_MAGIC, sizeof(b.magic));
	b.size = (uint32_t)sizeof(struct config) + 8;
	ck_assert_int_eq(write(fd, &b, sizeof(b)), (ssize_t)sizeof(b));
	ck_assert_int_eq(sup_proto_config_read(fd, &out, err, sizeof(err)), -1);
	ck_assert(strstr(err, "another paymentd build") != NULL);
	ck_assert_int_eq(ftruncate(fd, 10), 0);
	ck_assert_int_eq(sup_proto_config_read(fd, &out, err, sizeof(err)), -1);
	close(fd);
}
END_TEST

/* The TLS material: chain and CA bundle come back as written, the memfd
 * is sealed, a missing CA is NULL, and garbage is refused. */
START_TEST(tls_blob_round_trip_sealed)
{
	struct sup_tls_blob hdr, got;
	char err[256], *cert = NULL, *ca = NULL;
	int fd, fd2, bad;

	memset(&hdr, 0, sizeof(hdr));
	hdr.generation = 7;
	memset(hdr.ticket_keys, 0xab, sizeof(hdr.ticket_keys));
	fd = sup_proto_tls_fd(
	    &hdr, "-----BEGIN CERTIFICATE-----\nAAA\n", "CA-PEM", err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(sup_proto_tls_read(fd, &got, &cert, &ca, err, sizeof(err)), 0);
	ck_assert_str_eq(cert, "-----BEGIN CERTIFICATE-----\nAAA\n");
	ck_assert_str_eq(ca, "CA-PEM");
	ck_assert_uint_eq(got.generation, 7);
	ck_assert_int_eq(got.ticket_keys[79], 0xab);
	ck_assert_int_lt(pwrite(fd, "x", 1, 0), 0); /* sealed */
	free(cert);
	free(ca);
	close(fd);

	fd2 = sup_proto_tls_fd(&hdr, "CERT", NULL, err, sizeof(err));
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(sup_proto_tls_read(fd2, &got, &cert, &ca, err, sizeof(err)), 0);
	ck_assert_ptr_null(ca);
	free(cert);
	close(fd2);

	ck_assert_int_lt(sup_proto_tls_fd(&hdr, "", NULL, err, sizeof(err)), 0);
	bad = memfd_create("bad", 0);
	ck_assert_int_eq(write(bad, "not a blob at all, not a blob at all........", 44), 44);
	ck_assert_int_eq(sup_proto_tls_read(bad, &got, &cert, &ca, err, sizeof(err)), -1);
	ck_assert_ptr_null(cert);
	close(bad);
}
END_TEST

Suite *
sup_proto_suite(void)
{
	Suite *s = suite_create("sup_proto");
	TCase *tc = tcase_create("frames");

	tcase_add_test(tc, handoff_frame_round_trip);
	tcase_add_test(tc, malformed_frames_refused_without_leaks);
	tcase_add_test(tc, worker_bytes);
	tcase_add_test(tc, config_blob_round_trip_sealed);
	tcase_add_test(tc, config_blob_from_other_build_refused);
	tcase_add_test(tc, tls_blob_round_trip_sealed);
	suite_add_tcase(s, tc);
	return s;
}
