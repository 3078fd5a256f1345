/* SPDX-License-Identifier: MIT */
/*
 * log.c — the structured logger (see log.h for the contract).
 *
 * Deliberately self-contained: no allocation, no locks, one write(2) per
 * line, so it works inside the seccomp sandbox, from grpc's threads and in
 * the supervisor after fork. Lines longer than the buffer are truncated
 * (field values are already bounded by LOG_MAX_STR).
 */
#include "log.h"
#include "utf8.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* PIPE_BUF: workers log through a pipe (see sup_log_pipe), and writes up
 * to this size are atomic there, so lines from many processes never mix. */
#define LINE_MAX_BYTES 4096

static const char *level_names[] = { "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" };

static struct {
	char component[32];
	enum log_level level;
	enum log_format format;
	int fd;
	char corr[129];
	char method[128];
} L = { "paymentd", LOG_INFO, LOG_FORMAT_JSON, 2, "", "" };

void
log_init(const char *component, enum log_level level, enum log_format fmt)
{
	snprintf(L.component, sizeof(L.component), "%s", component);
	L.level = level;
	L.format = fmt;
}

void
log_set_fd(int fd)
{
	L.fd = fd;
}

int
log_enabled(enum log_level level)
{
	return level >= L.level;
}

void
log_set_context(const char *correlation_id, const char *method)
{
	snprintf(L.corr, sizeof(L.corr), "%s", correlation_id ? correlation_id : "");
	snprintf(L.method, sizeof(L.method), "%s", method ? method : "");
}

int
log_parse_level(const char *s)
{
	if (strcasecmp(s, "debug") == 0)
		return LOG_DEBUG;
	if (strcasecmp(s, "info") == 0)
		return LOG_INFO;
	if (strcasecmp(s, "warning") == 0 || strcasecmp(s, "warn") == 0)
		return LOG_WARNING;
	if (strcasecmp(s, "error") == 0)
		return LOG_ERROR;
	if (strcasecmp(s, "critical") == 0)
		return LOG_CRIT;
	return -1;
}

size_t
log_json_escape(char *dst, size_t dstlen, const char *src, size_t max_in)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t n = strlen(src), in = 0, out = 0;
	int cut = 0;

	if (dstlen == 0)
		return 0;
	while (in < n) {
		char tmp[8];
		const char *t = tmp; /* tl bytes to append, not a string */
		size_t tl, sl;

		if (in >= max_in) {
			cut = 1;
			break;
		}
		sl = utf8_seq_len(src + in, n - in);
		if (sl == 0) {
			t = "\\ufffd";
			tl = 6;
			sl = 1;
		} else if (sl > 1) {
			t = src + in;
			tl = sl;
		} else if (p[in] == '"' || p[in] == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)p[in];
			tl = 2;
		} else if (p[in] == '\n') {
			t = "\\n";
			tl = 2;
		} else if (p[in] == '\r') {
			t = "\\r";
			tl = 2;
		} else if (p[in] == '\t') {
			t = "\\t";
			tl = 2;
		} else if (p[in] < 0x20 || p[in] == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\u%04x", p[in]);
			tl = 6;
		} else {
			tmp[0] = (char)p[in];
			tl = 1;
		}
		if (out + tl + 4 >= dstlen) {
			cut = 1;
			break;
		}
		memcpy(dst + out, t, tl);
		out += tl;
		in += sl;
	}
	if (cut && out + 3 < dstlen) {
		memcpy(dst + out, "...", 3);
		out += 3;
	}
	dst[out] = '\0';
	return out;
}

struct linebuf {
	char b[LINE_MAX_BYTES];
	size_t n;
};

static void
lb_put(struct linebuf *lb, const char *s, size_t len)
{
	if (lb->n + len >= sizeof(lb->b) - 2)
		len = sizeof(lb->b) - 2 - lb->n;
	memcpy(lb->b + lb->n, s, len);
	lb->n += len;
}

static void
lb_puts(struct linebuf *lb, const char *s)
{
	lb_put(lb, s, strlen(s));
}

static void
lb_str(struct linebuf *lb, const char *s, int quote)
{
	char esc[LOG_MAX_STR * 6 + 8];

	log_json_escape(esc, sizeof(esc), s ? s : "", LOG_MAX_STR);
	if (quote)
		lb_puts(lb, "\"");
	lb_puts(lb, esc);
	if (quote)
		lb_puts(lb, "\"");
}

static void
lb_field(struct linebuf *lb, const char *key, const struct log_field *f)
{
	char num[64];
	int json = L.format == LOG_FORMAT_JSON;

	lb_puts(lb, json ? ",\"" : " ");
	lb_str(lb, key, 0);
	lb_puts(lb, json ? "\":" : "=");
	switch (f->type) {
	case LOG_F_STR: lb_str(lb, f->s, json); break;
	case LOG_F_INT:
		snprintf(num, sizeof(num), "%lld", (long long)f->i);
		lb_puts(lb, num);
		break;
	case LOG_F_DBL:
		snprintf(num, sizeof(num), "%.6g", f->d);
		lb_puts(lb, num);
		break;
	case LOG_F_BOOL: lb_puts(lb, f->i ? "true" : "false"); break;
	case LOG_F_END: break;
	}
}

void
log_kv(enum log_level level, const char *msg, const struct log_field *fields)
{
	struct linebuf lb;
	struct timespec ts;
	struct tm tm;
	char tbuf[64], pid[32];
	int saved = errno;
	const struct log_field *f;

	if (level < L.level)
		return;
	lb.n = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());

	if (L.format == LOG_FORMAT_JSON) {
		lb_puts(&lb, "{\"ts\":\"");
		lb_puts(&lb, tbuf);
		lb_puts(&lb, "\",\"level\":\"");
		lb_puts(&lb, level_names[level]);
		lb_puts(&lb, "\",\"component\":\"");
		lb_puts(&lb, L.component);
		lb_puts(&lb, "\",\"pid\":");
		lb_puts(&lb, pid);
		lb_puts(&lb, ",\"msg\":");
		lb_str(&lb, msg, 1);
	} else {
		lb_puts(&lb, tbuf);
		lb_puts(&lb, " ");
		lb_puts(&lb, level_names[level]);
		lb_puts(&lb, " ");
		lb_puts(&lb, L.component);
		lb_puts(&lb, "[");
		lb_puts(&lb, pid);
		lb_puts(&lb, "] ");
		lb_str(&lb, msg, 0);
	}
	if (L.corr[0]) {
		struct log_field c = LF_S("correlation_id", L.corr);
		lb_field(&lb, "correlation_id", &c);
	}
	if (L.method[0]) {
		struct log_field m = LF_S("method", L.method);
		lb_field(&lb, "method", &m);
	}
	for (f = fields; f != NULL && f->key != NULL; f++)
		lb_field(&lb, f->key, f);
	if (L.format == LOG_FORMAT_JSON)
		lb.b[lb.n++] = '}';
	lb.b[lb.n++] = '\n';
	/* One write: atomic for pipes up to PIPE_BUF and never interleaved
	 * mid-line on the journald stream socket. Errors are ignored: there
	 * is nowhere left to report them. */
	if (write(L.fd, lb.b, lb.n) < 0) { /* nothing to do */
	}
	errno = saved;
}
