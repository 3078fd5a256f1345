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
