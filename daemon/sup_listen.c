/*
 * sup_listen.c — the supervisor's listening socket: inherited from systemd
 * socket activation, or bound here (IPv4 or IPv6 literal, or a name).
 */
#include "sup.h"
#include "util.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#define BACKLOG 1024

int
sup_listen_open(const char *host, int port, int *activated, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1, n, one = 1, gai;

	*activated = 0;
	n = sd_listen_fds(1);
	if (n > 1) {
		snprintf(err, errlen, "systemd passed %d sockets; expected one", n);
		goto out;
	}
	if (n == 1) {
		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			snprintf(err, errlen, "LISTEN_FDS socket is not a listening stream socket");
			fd = -1;
			goto out;
		}
		util_set_cloexec(fd);
		*activated = 1;
		goto out;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "GRPC_HOST %s: %s", host, gai_strerror(gai));
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, BACKLOG) == 0)
			break;
		snprintf(err, errlen, "bind %s:%d: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	if (res)
		freeaddrinfo(res);
	return fd;
}
