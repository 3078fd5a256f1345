/* SPDX-License-Identifier: MIT */
/*
 * util.c — fatal(), checked allocation, clocks and small fd helpers.
 *
 * fatal() goes through the structured logger so even the last words of a
 * dying process are one parseable JSON line.
 */
#include "util.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void
fatal(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_kv(LOG_CRIT, buf, NULL);
	exit(1);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		abort();
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

static int64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t
util_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}
int64_t
util_now_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000;
}
int64_t
util_realtime_ms(void)
{
	return clock_ns(CLOCK_REALTIME) / 1000000;
}

int
util_fmt(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, len, fmt, ap);
	va_end(ap);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* getrandom(2) is a syscall through the seccomp filter on every RPC (two per
 * payment); a small per-process pool cuts that to one per ~25 payments.
 * The pool must never be inherited: two forked workers holding the same
 * bytes would mint the same payment ids. A pthread_atfork() child handler
 * empties it in every child before fork() returns there. */
static struct {
	unsigned char buf[256];
	size_t avail; /* unused bytes at the end of buf */
	int hooked;
} rnd_pool;

static void
rnd_pool_forget(void)
{
	explicit_bzero(rnd_pool.buf, sizeof(rnd_pool.buf));
	rnd_pool.avail = 0;
}

static int
getrandom_all(unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void
util_hex(const void *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = in;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
util_random(void *buf, size_t n)
{
	unsigned char *p = buf;

	if (!rnd_pool.hooked) {
		if (pthread_atfork(NULL, NULL, rnd_pool_forget) != 0)
			return getrandom_all(p, n);
		rnd_pool.hooked = 1;
	}
	if (n > sizeof(rnd_pool.buf) / 2)
		return getrandom_all(p, n);
	if (rnd_pool.avail < n) {
		if (getrandom_all(rnd_pool.buf, sizeof(rnd_pool.buf)) < 0)
			return -1;
		rnd_pool.avail = sizeof(rnd_pool.buf);
	}
	/* Hand out from the end and wipe what was handed out. */
	rnd_pool.avail -= n;
	memcpy(p, rnd_pool.buf + rnd_pool.avail, n);
	explicit_bzero(rnd_pool.buf + rnd_pool.avail, n);
	return 0;
}

int
util_tcp_listen(const char *host, int port, int backlog, const char *what, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1, one = 1, gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	gai = getaddrinfo(host && host[0] ? host : NULL, portstr, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "%s host %s: %s", what, host ? host : "", gai_strerror(gai));
		goto out;
	}
	snprintf(err, errlen, "%s %d: no usable address", what, port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
			break;
		snprintf(err, errlen, "%s: bind %s:%d: %s", what, host && host[0] ? host : "*",
		    port, strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	if (res)
		freeaddrinfo(res);
	return fd;
}

int
util_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl);
}

int
util_set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

void
util_child_signals(void (*on_term)(int))
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int
util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	const char *p = s;
	char *end;
	long long x;

	if (s == NULL) {
		errno = EINVAL;
		return -1;
	}
	/* Only an optional sign and decimal digits: strtoll alone would also
	 * take leading blanks, and an empty or sign-only string as 0. */
	if (*p == '+' || *p == '-')
		p++;
	if (*p < '0' || *p > '9') {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	x = strtoll(s, &end, 10);
	if (*end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (errno == ERANGE || x < min || x > max) {
		errno = ERANGE;
		return -1;
	}
	*out = x;
	return 0;
}

#ifdef PAYMENTD_COVERAGE
void __gcov_dump(void);
#endif

void
util_exit_now(int code, int dump)
{
#ifdef PAYMENTD_COVERAGE
	if (dump)
		__gcov_dump();
#else
	(void)dump;
#endif
	_exit(code);
}

const char *
util_grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};

	if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "UNKNOWN";
}
