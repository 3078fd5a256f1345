/* SPDX-License-Identifier: MIT */
/*
 * sup_listen.c — the supervisor's listening socket: inherited from systemd
 * socket activation, or bound here (IPv4 or IPv6 literal, or a name).
 */
#include "sup.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <systemd/sd-daemon.h>

#define BACKLOG 1024

int
sup_listen_open(const char *host, int port, int *activated, char *err, size_t errlen)
{
	int fd, n;

	*activated = 0;
	n = sd_listen_fds(1);
	if (n > 1) {
		snprintf(err, errlen, "systemd passed %d sockets; expected one", n);
		return -1;
	}
	if (n == 1) {
		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			snprintf(err, errlen, "LISTEN_FDS socket is not a listening stream socket");
			return -1;
		}
		util_set_cloexec(fd);
		*activated = 1;
		return fd;
	}
	return util_tcp_listen(host, port, BACKLOG, "GRPC_PORT", err, errlen);
}

int
sup_listen_is_loopback(int fd)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);

	/* The bound address, not GRPC_HOST: a socket-activated listener can be
	 * anywhere, and "localhost" may resolve to anything. */
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		const unsigned char *a = in6->sin6_addr.s6_addr;
		static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
			0xff };
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return memcmp(a, v4mapped, 12) == 0 && a[12] == 127;
	}
	return ss.ss_family == AF_UNIX;
}
