/* SPDX-License-Identifier: MIT */
/*
 * util.h — process-level helpers shared by every paymentd binary.
 *
 * Contract: fatal() logs and exits the process (process code only; library
 * code returns error codes instead). xmalloc/xstrdup abort on exhaustion,
 * which in this daemon is a broken invariant, not a recoverable error.
 * Time helpers use CLOCK_MONOTONIC unless named _realtime.
 */
#ifndef PAYMENTD_UTIL_H
#define PAYMENTD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
char *xstrdup(const char *s);

/* Monotonic clock in nanoseconds / milliseconds. */
int64_t util_now_ns(void);
int64_t util_now_ms(void);
/* Wall clock in milliseconds since the epoch. */
int64_t util_realtime_ms(void);

/* snprintf that reports truncation: returns 0 when it fit, -1 otherwise. */
int util_fmt(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Fills buf with n random bytes from getrandom(2); 0 on success. */
/* Lower-case hex of n bytes into out (2n characters plus NUL). */
void util_hex(const void *in, size_t n, char *out);
int util_random(void *buf, size_t n);

/* Signal setup of a process forked by the supervisor: on_term for SIGTERM
 * and SIGINT (no SA_RESTART, so poll sees EINTR; the handler only sets a
 * flag), SIGPIPE and SIGHUP ignored, SIGCHLD default, and the mask the
 * supervisor used for its signalfd cleared. */
void util_child_signals(void (*on_term)(int));
/* _exit(code); in coverage builds (COV=1) first writes gcov's counters,
 * which _exit would skip, when dump is set: pass 0 from a process under its
 * seccomp filter (the write would need open(2), which kills it). */
void util_exit_now(int code, int dump) __attribute__((noreturn));
/* The canonical name of gRPC status code (0..16: "OK" .. "UNAUTHENTICATED"),
 * "UNKNOWN" for anything else. A table of strings: the supervisor's metrics
 * need it without linking grpc. */
const char *util_grpc_code_name(int code);

/* Sets O_NONBLOCK / FD_CLOEXEC on fd; 0 on success, -1 with errno. */
/* A listening TCP socket (CLOEXEC, SO_REUSEADDR, blocking) on host (empty
 * or NULL: all addresses) and port; -1 with err starting with `what` (the
 * setting, e.g. "GRPC_PORT"). */
int util_tcp_listen(
    const char *host, int port, int backlog, const char *what, char *err, size_t errlen);
int util_set_nonblock(int fd, int on);
int util_set_cloexec(int fd);

/* Parses a whole string as a decimal integer in min..max: an optional sign
 * and digits only (no blanks, no trailing bytes, no empty string). Returns
 * 0 and sets *out, or -1 with errno EINVAL (not a number) or ERANGE (a
 * number outside min..max or int64), leaving *out untouched. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
