/* SPDX-License-Identifier: MIT */
/*
 * rl.c — the Redis sliding-window rate limiter (see rl.h for the contract).
 *
 * Why a ZSET log and not fixed-window counters: a fixed window lets a
 * client send 2x its limit across a window boundary; the log admits at
 * most `limit` requests in ANY window of the configured length. Why Lua:
 * trim, count and add must be one atomic step, or two workers could both
 * see "limit - 1" and both admit. Why redis.call('TIME'): every worker
 * (and every paymentd host) then judges against the same clock.
 */
#include "rl.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <hiredis/hiredis.h>

#define RL_WARN_INTERVAL_MS 10000
#define RL_LIMIT_MAX        100000000

/*
 * KEYS[1] the log; ARGV[1] limit, ARGV[2] window in microseconds,
 * ARGV[3] a member unique to this request, ARGV[4] "1" to only look (admit
 * nothing: the failed-authentication pre-check). Scores are Redis time in
 * microseconds (< 2^53, exact in Lua's doubles). Returns {1, count} when
 * admitted, {0, retry_after_us} when not. A rejected request writes
 * nothing, so it consumes no quota.
 */
static const char rl_script[] = "local limit = tonumber(ARGV[1])\n"
                                "local window = tonumber(ARGV[2])\n"
                                "local t = redis.call('TIME')\n"
                                "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                                "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)\n"
                                "local n = redis.call('ZCARD', KEYS[1])\n"
                                "if n < limit then\n"
                                "  if ARGV[4] ~= '1' then\n"
                                "    redis.call('ZADD', KEYS[1], now, ARGV[3])\n"
                                "    redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))\n"
                                "  end\n"
                                "  return {1, n + 1}\n"
                                "end\n"
                                "local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
                                "local retry = tonumber(oldest[2]) + window - now\n"
                                "if retry < 1 then retry = 1 end\n"
                                "return {0, retry}\n";

static const char *const rl_method_names[RL_NMETHODS] = {
	"AuthorizePayment",
	"GetPayment",
	"GetAccountBalance",
};

struct rl {
	redisContext *ctx; /* NULL: down (or disabled) */
	int enabled;
	int fail_open;
	int limits[RL_NMETHODS];
	int def_limit;
	int64_t window_us;
	char sha[41];
	char nonce[17]; /* random per handle: members stay unique */
	uint64_t seq;
	int64_t last_warn_ms; /* 0: never warned */
	uint64_t suppressed;  /* failures not logged since last warning */
};

const char *
rl_verdict_name(enum rl_verdict v)
{
	switch (v) {
	case RL_ALLOW: return "allow";
	case RL_DENY: return "deny";
	case RL_UNAVAILABLE_ALLOW: return "unavailable_allow";
	case RL_UNAVAILABLE_DENY: return "unavailable_deny";
	}
	return "?";
}

/* ---- parsing ---------------------------------------------------------- */

static const char *
skip_blank(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static const char *
trim_blank(const char *s, const char *end)
{
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end;
}

int
rl_parse_limits(const char *spec, int def_limit, int limits[RL_NMETHODS], char *err, size_t errlen)
{
	int seen[RL_NMETHODS] = { 0 };
	const char *p = spec, *item_end, *eq, *ns, *ne, *vs, *ve;
	int i, rc = -1, item = 0;

	for (i = 0; i < RL_NMETHODS; i++)
		limits[i] = def_limit;
	if (*skip_blank(spec, spec + strlen(spec)) == '\0') {
		rc = 0; /* empty: every method uses the default */
		goto out;
	}
	for (;;) {
		long long v = 0;
		const char *d;
		int m = -1;

		item++;
		item_end = strchr(p, ',');
		if (item_end == NULL)
			item_end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(item_end - p));
		ns = skip_blank(p, item_end);
		if (eq == NULL) {
			snprintf(err, errlen, "RATE_LIMITS: item %d \"%.*s\": expected Method=N",
			    item, (int)(item_end - ns > 64 ? 64 : item_end - ns), ns);
			goto out;
		}
		ne = trim_blank(ns, eq);
		vs = skip_blank(eq + 1, item_end);
		ve = trim_blank(vs, item_end);
		for (i = 0; i < RL_NMETHODS; i++)
			if ((size_t)(ne - ns) == strlen(rl_method_names[i]) &&
			    memcmp(ns, rl_method_names[i], (size_t)(ne - ns)) == 0)
				m = i;
		if (m < 0) {
			snprintf(err, errlen,
			    "RATE_LIMITS: unknown method \"%.*s\" "
			    "(AuthorizePayment, GetPayment, GetAccountBalance)",
			    (int)(ne - ns > 64 ? 64 : ne - ns), ns);
			goto out;
		}
		if (seen[m]) {
			snprintf(err, errlen, "RATE_LIMITS: %s given twice", rl_method_names[m]);
			goto out;
		}
		seen[m] = 1;
		if (vs == ve) {
			snprintf(err, errlen, "RATE_LIMITS: %s: missing limit", rl_method_names[m]);
			goto out;
		}
		for (d = vs; d < ve; d++) {
			if (!isdigit((unsigned char)*d) || v > RL_LIMIT_MAX) {
				v = -1;
				break;
			}
			v = v * 10 + (*d - '0');
		}
		if (v < 0 || v > RL_LIMIT_MAX) {
			snprintf(err, errlen,
			    "RATE_LIMITS: %s: invalid limit \"%.*s\" (integer 0..%d, 0: unlimited)",
			    rl_method_names[m], (int)(ve - vs > 32 ? 32 : ve - vs), vs,
			    RL_LIMIT_MAX);
			goto out;
		}
		limits[m] = (int)v;
		if (*item_end == '\0')
			break;
		p = item_end + 1;
	}
	rc = 0;
out:
	return rc;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes [s, e) into dst (NUL-terminated); -1 if malformed,
 * too long or decoding to a NUL byte. */
static int
pct_decode(const char *s, const char *e, char *dst, size_t dstlen)
{
	size_t n = 0;

	while (s < e) {
		int c = (unsigned char)*s++;
		if (c == '%') {
			int hi, lo;
			if (e - s < 2 || (hi = hexval(s[0])) < 0 || (lo = hexval(s[1])) < 0)
				return -1;
			c = hi * 16 + lo;
			s += 2;
			if (c == 0)
				return -1;
		}
		if (n + 1 >= dstlen)
			return -1;
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
	return 0;
}

static int
parse_uint(const char *s, const char *e, long max, long *out)
{
	long v = 0;

	if (s == e || e - s > 10)
		return -1;
	for (; s < e; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int
rl_parse_url(const char *url, struct rl_url *u, char *err, size_t errlen)
{
	static const char scheme[] = "redis://";
	const char *p, *end, *at, *hs, *he, *ps = NULL, *slash, *colon;
	long v;
	int rc = -1;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
		snprintf(err, errlen,
		    "REDIS_URL: must start with redis:// "
		    "(redis://[:password@]host:port/db; TLS is not supported)");
		goto out;
	}
	p = url + sizeof(scheme) - 1;
	end = p + strlen(p);
	if (strpbrk(p, "?#") != NULL) {
		snprintf(err, errlen, "REDIS_URL: query strings and fragments are not supported");
		goto out;
	}
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = end;
	/* The last '@' before the path: passwords may contain '@' encoded
	 * or not, host names never do. */
	at = NULL;
	for (hs = p; hs < slash; hs++)
		if (*hs == '@')
			at = hs;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL) {
			snprintf(err, errlen, "REDIS_URL: credentials must be [user]:password@");
			goto out;
		}
		if (pct_decode(p, colon, u->user, sizeof(u->user)) < 0 ||
		    pct_decode(colon + 1, at, u->password, sizeof(u->password)) < 0) {
			snprintf(err, errlen, "REDIS_URL: malformed or too long user/password");
			goto out;
		}
		p = at + 1;
	}
	if (*p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', (size_t)(slash - hs));
		if (he == NULL) {
			snprintf(err, errlen, "REDIS_URL: unterminated [IPv6] host");
			goto out;
		}
		p = he + 1;
		if (p < slash && *p != ':') {
			snprintf(err, errlen, "REDIS_URL: unexpected text after ]");
			goto out;
		}
		if (p < slash)
			ps = p + 1;
	} else {
		hs = p;
		he = memchr(p, ':', (size_t)(slash - p));
		if (he != NULL)
			ps = he + 1;
		else
			he = slash;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(u->host)) {
		snprintf(err, errlen, "REDIS_URL: missing or too long host");
		goto out;
	}
	memcpy(u->host, hs, (size_t)(he - hs));
	u->host[he - hs] = '\0';
	for (colon = u->host; *colon; colon++)
		if (!isalnum((unsigned char)*colon) && !strchr(".-_:%", *colon)) {
			snprintf(err, errlen, "REDIS_URL: invalid character in host");
			goto out;
		}
	if (ps != NULL) {
		if (parse_uint(ps, slash, 65535, &v) < 0 || v == 0) {
			snprintf(err, errlen, "REDIS_URL: invalid port (1..65535)");
			goto out;
		}
		u->port = (int)v;
	}
	if (slash < end && slash + 1 < end) {
		if (parse_uint(slash + 1, end, 65535, &v) < 0) {
			snprintf(err, errlen, "REDIS_URL: invalid database number (0..65535)");
			goto out;
		}
		u->db = (int)v;
	}
	rc = 0;
out:
	return rc;
}

int
rl_config_check(const struct config *cfg, char *err, size_t errlen)
{
	int limits[RL_NMETHODS];
	struct rl_url u;

	if (!cfg->rate_limit_enabled)
		return 0;
	if (rl_parse_limits(cfg->rate_limits, cfg->rate_limit_default, limits, err, errlen) < 0)
		return -1;
	return rl_parse_url(cfg->redis_url, &u, err, errlen);
}

/* ---- identity --------------------------------------------------------- */

static int
id_char_ok(int c)
{
	return isalnum(c) || (c && strchr("._:@/+=-", c) != NULL);
}

/* Canonical text of an IP address literal; IPv4-mapped IPv6 becomes
 * IPv4 so a client has one identity on dual-stack listeners. */
static int
canon_ip(const char *ip, char *out, size_t outlen)
{
	struct in_addr a4;
	struct in6_addr a6;
	char tmp[64], *pct;

	snprintf(tmp, sizeof(tmp), "%s", ip);
	if ((pct = strchr(tmp, '%')) != NULL)
		*pct = '\0'; /* zone id: not part of the identity */
	if (inet_pton(AF_INET, tmp, &a4) == 1)
		return inet_ntop(AF_INET, &a4, out, (socklen_t)outlen) ? 0 : -1;
	if (inet_pton(AF_INET6, tmp, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], 4);
			return inet_ntop(AF_INET, &a4, out, (socklen_t)outlen) ? 0 : -1;
		}
		return inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen) ? 0 : -1;
	}
	return -1;
}

static int
peer_address(const char *peer, char *out, size_t outlen)
{
	char buf[128], *host, *e;

	if (strncmp(peer, "unix:", 5) == 0 || strncmp(peer, "unix-abstract:", 14) == 0) {
		snprintf(out, outlen, "unix");
		return 0;
	}
	if (strncmp(peer, "ipv4:", 5) == 0) {
		if (strlen(peer + 5) >= sizeof(buf))
			return -1;
		snprintf(buf, sizeof(buf), "%s", peer + 5);
		if ((e = strrchr(buf, ':')) == NULL)
			return -1;
		*e = '\0';
		return canon_ip(buf, out, outlen);
	}
	if (strncmp(peer, "ipv6:", 5) == 0) {
		/* grpc percent-encodes the brackets in newer releases. */
		if (pct_decode(peer + 5, peer + strlen(peer), buf, sizeof(buf)) < 0 ||
		    buf[0] != '[')
			return -1;
		host = buf + 1;
		if ((e = strrchr(host, ']')) == NULL)
			return -1;
		*e = '\0';
		return canon_ip(host, out, outlen);
	}
	return -1;
}

int
rl_client_identity(const char *x_client_id, const char *grpc_peer, char *out, size_t outlen)
{
	size_t n, i;

	if (outlen < RL_CLIENT_MAX) {
		if (outlen > 0)
			out[0] = '\0';
		return -1;
	}
	if (x_client_id != NULL) {
		n = strlen(x_client_id);
		for (i = 0; i < n && id_char_ok((unsigned char)x_client_id[i]); i++)
			;
		if (n > 0 && n <= RL_CLIENT_ID_MAX && i == n) {
			memcpy(out, x_client_id, n + 1);
			return 0;
		}
	}
	if (grpc_peer != NULL && peer_address(grpc_peer, out, outlen) == 0)
		return 0;
	snprintf(out, outlen, "unknown");
	return -1;
}

int
rl_peer_from_fd(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss = { 0 }; /* getpeername() fills it: the analyzer can't tell */
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	return rl_peer_from_addr(&ss, out, outlen);
}

int
rl_peer_from_addr(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
	const struct sockaddr_storage ss = *sa;
	char ip[INET6_ADDRSTRLEN];
	int rc = -1;

	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)) ||
		    util_fmt(out, outlen, "ipv4:%s:%u", ip, (unsigned)ntohs(a->sin_port)) < 0)
			goto enospc;
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)) ||
		    util_fmt(out, outlen, "ipv6:[%s]:%u", ip, (unsigned)ntohs(a->sin6_port)) < 0)
			goto enospc;
	} else if (ss.ss_family == AF_UNIX) {
		if (util_fmt(out, outlen, "unix:") < 0)
			goto enospc;
	} else {
		errno = EAFNOSUPPORT;
		goto out;
	}
	rc = 0;
	goto out;
enospc:
	errno = ENOSPC;
out:
	return rc;
}

/* ---- Redis -------------------------------------------------------------- */

/* Logs a Redis problem, but at most once per RL_WARN_INTERVAL_MS: a dead
 * Redis under load would otherwise write one line per request. */
static void
warn_limited(struct rl *r, const char *msg, const char *detail)
{
	int64_t now = util_now_ms();

	if (r->last_warn_ms != 0 && now - r->last_warn_ms < RL_WARN_INTERVAL_MS) {
		r->suppressed++;
		return;
	}
	log_warn(msg, LF_S("error", detail ? detail : ""), LF_B("fail_open", r->fail_open),
	    LF_I("suppressed", (int64_t)r->suppressed));
	r->last_warn_ms = now;
	r->suppressed = 0;
}

static void
mark_down(struct rl *r, const char *what)
{
	char detail[256];

	snprintf(detail, sizeof(detail), "%s: %s", what,
	    r->ctx && r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
	if (r->ctx != NULL) {
		redisFree(r->ctx);
		r->ctx = NULL;
	}
	warn_limited(
	    r, "redis unavailable: rate limiter down until this worker is replaced", detail);
}

/* Sends one command; a NULL reply means the connection is unusable. */
static redisReply *
command(struct rl *r, int argc, const char **argv, const size_t *argl)
{
	return redisCommandArgv(r->ctx, argc, argv, argl);
}

static int
simple_command(struct rl *r, int argc, const char **argv, const char *what)
{
	redisReply *rep;
	int rc = -1;

	rep = command(r, argc, argv, NULL);
	if (rep == NULL) {
		mark_down(r, what);
		goto out;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		char detail[256];
		snprintf(detail, sizeof(detail), "%s: %.200s", what, rep->str);
		/* The connection works but is useless to us (bad password,
		 * no such db, scripting disabled): treat as down. */
		redisFree(r->ctx);
		r->ctx = NULL;
		warn_limited(r,
		    "redis refused setup: rate limiter down until this worker is replaced", detail);
		goto out;
	}
	rc = 0;
out:
	if (rep)
		freeReplyObject(rep);
	return rc;
}

static void
connect_redis(struct rl *r, const struct rl_url *u)
{
	struct timeval tv = { RL_TIMEOUT_MS / 1000, (suseconds_t)(RL_TIMEOUT_MS % 1000) * 1000 };
	char dbs[16];
	redisReply *rep;

	r->ctx = redisConnectWithTimeout(u->host, u->port, tv);
	if (r->ctx == NULL || r->ctx->err) {
		mark_down(r, "connect");
		return;
	}
	if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
		mark_down(r, "set timeout");
		return;
	}
	if (u->password[0]) {
		/* AUTH user password (ACL) or AUTH password (requirepass). */
		const char *a[3] = { "AUTH", u->user, u->password };
		int n = 3;
		if (!u->user[0]) {
			a[1] = u->password;
			n = 2;
		}
		if (simple_command(r, n, a, "AUTH") < 0)
			return;
	}
	if (u->db != 0) {
		snprintf(dbs, sizeof(dbs), "%d", u->db);
		if (simple_command(r, 2, (const char *[]){ "SELECT", dbs }, "SELECT") < 0)
			return;
	}
	rep = command(r, 3, (const char *[]){ "SCRIPT", "LOAD", rl_script }, NULL);
	if (rep == NULL) {
		mark_down(r, "SCRIPT LOAD");
		return;
	}
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		char detail[256];
		snprintf(detail, sizeof(detail), "SCRIPT LOAD: %.200s",
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		freeReplyObject(rep);
		redisFree(r->ctx);
		r->ctx = NULL;
		warn_limited(r,
		    "redis refused setup: rate limiter down until this worker is replaced", detail);
		return;
	}
	memcpy(r->sha, rep->str, 40);
	r->sha[40] = '\0';
	freeReplyObject(rep);
}

int
rl_open(const struct config *cfg, struct rl **out, char *err, size_t errlen)
{
	struct rl *r = NULL;
	struct rl_url u;
	uint8_t rnd[8];
	int rc = -1;
	size_t i;

	*out = NULL;
	r = xcalloc(1, sizeof(*r));
	r->enabled = cfg->rate_limit_enabled;
	r->fail_open = cfg->rate_limit_fail_open;
	r->def_limit = cfg->rate_limit_default;
	r->window_us = (int64_t)cfg->rate_limit_window_s * 1000000;
	if (!r->enabled) {
		rc = 0;
		goto out;
	}
	if (rl_parse_limits(cfg->rate_limits, cfg->rate_limit_default, r->limits, err, errlen) <
	        0 ||
	    rl_parse_url(cfg->redis_url, &u, err, errlen) < 0)
		goto out;
	if (util_random(rnd, sizeof(rnd)) < 0) {
		snprintf(err, errlen, "getrandom failed: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < 8; i++)
		snprintf(r->nonce + 2 * i, 3, "%02x", rnd[i]);
	connect_redis(r, &u);
	explicit_bzero(&u, sizeof(u)); /* the password */
	rc = 0;
out:
	if (rc < 0) {
		free(r);
		r = NULL;
	}
	*out = r;
	return rc;
}

void
rl_close(struct rl *r)
{
	if (r == NULL)
		return;
	if (r->ctx)
		redisFree(r->ctx);
	free(r);
}

int
rl_down(const struct rl *r)
{
	return r->enabled && r->ctx == NULL;
}

int
rl_fd(const struct rl *r)
{
	return r->ctx != NULL ? r->ctx->fd : -1;
}

int
rl_method_index(const char *method)
{
	int i;

	for (i = 0; i < RL_NMETHODS; i++)
		if (strcmp(method, rl_method_names[i]) == 0)
			return i;
	return -1;
}

static int
method_name_ok(const char *m)
{
	size_t i;

	for (i = 0; m[i]; i++)
		if (!isalnum((unsigned char)m[i]) && m[i] != '_')
			return 0;
	return i > 0 && i <= 64;
}

static enum rl_verdict
unavailable(struct rl *r)
{
	return r->fail_open ? RL_UNAVAILABLE_ALLOW : RL_UNAVAILABLE_DENY;
}

/* One run of the script on key: see rl_script. */
static enum rl_verdict
run_script(
    struct rl *r, const char *key, int limit, int64_t window_us, int peek, int64_t *retry_after_ms)
{
	char lim[16], win[24], member[48];
	const char *argv[8];
	redisReply *rep = NULL;
	enum rl_verdict v;

	if (r->ctx == NULL) {
		warn_limited(r,
		    "redis unavailable: rate limiter down until this worker is replaced", "down");
		return unavailable(r);
	}
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(win, sizeof(win), "%lld", (long long)window_us);
	snprintf(member, sizeof(member), "%s-%llu", r->nonce, (unsigned long long)++r->seq);
	argv[0] = "EVALSHA";
	argv[1] = r->sha;
	argv[2] = "1";
	argv[3] = key;
	argv[4] = lim;
	argv[5] = win;
	argv[6] = member;
	argv[7] = peek ? "1" : "0";
	rep = command(r, 8, argv, NULL);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		/* Redis restarted or SCRIPT FLUSH: send the source once; Redis
		 * caches it again, so the next EVALSHA succeeds. */
		freeReplyObject(rep);
		argv[0] = "EVAL";
		argv[1] = rl_script;
		rep = command(r, 8, argv, NULL);
	}
	if (rep == NULL) {
		mark_down(r, "rate limit script");
		v = unavailable(r);
		goto out;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		warn_limited(r, "redis error in rate limit script", rep->str);
		v = unavailable(r);
		goto out;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER) {
		warn_limited(r, "unexpected reply from rate limit script", NULL);
		v = unavailable(r);
		goto out;
	}
	if (rep->element[0]->integer == 1) {
		v = RL_ALLOW;
	} else {
		long long us = rep->element[1]->integer;
		int64_t ms = us <= 0 ? 1 : (us + 999) / 1000;
		/* Never beyond one window, whatever a skewed script reply says. */
		*retry_after_ms = ms > window_us / 1000 ? window_us / 1000 : ms;
		v = RL_DENY;
	}
out:
	if (rep)
		freeReplyObject(rep);
	return v;
}

enum rl_verdict
rl_check(struct rl *r, const char *method, const char *client, int64_t *retry_after_ms)
{
	return rl_check_limit(r, method, client, -1, retry_after_ms);
}

enum rl_verdict
rl_check_limit(
    struct rl *r, const char *method, const char *client, int limit, int64_t *retry_after_ms)
{
	char key[32 + 64 + RL_CLIENT_MAX];
	int mi;

	*retry_after_ms = 0;
	if (!r->enabled)
		return RL_ALLOW;
	mi = rl_method_index(method);
	if (limit < 0)
		limit = mi >= 0 ? r->limits[mi] : r->def_limit;
	if (limit == 0)
		return RL_ALLOW;
	/* Both parts are validated, so a key can never smuggle a hash tag
	 * or spaces into Redis or the logs. */
	if (util_fmt(key, sizeof(key), "ratelimit:%s:%s",
	        method_name_ok(method) ? method : "Unknown", client) < 0 ||
	    client[0] == '\0') {
		warn_limited(r, "rate limiter: unusable client identity", client);
		return unavailable(r);
	}
	return run_script(r, key, limit, r->window_us, 0, retry_after_ms);
}

enum rl_verdict
rl_auth_failures(struct rl *r, const char *addr, int limit, int record, int64_t *retry_after_ms)
{
	char key[32 + RL_CLIENT_MAX];

	*retry_after_ms = 0;
	if (!r->enabled || limit <= 0)
		return RL_ALLOW;
	if (util_fmt(key, sizeof(key), "authfail:%s", addr) < 0 || addr[0] == '\0')
		return unavailable(r);
	return run_script(r, key, limit, RL_AUTH_WINDOW_US, !record, retry_after_ms);
}

int
rl_auth_seen(struct rl *r, const char *cred_hash, int mark)
{
	char key[16 + 80];
	const char *argv[5];
	redisReply *rep;
	int seen = 0;

	if (!r->enabled || r->ctx == NULL || util_fmt(key, sizeof(key), "authok:%s", cred_hash) < 0)
		return 0;
	argv[0] = mark ? "SET" : "EXISTS";
	argv[1] = key;
	argv[2] = "1";
	argv[3] = "EX";
	argv[4] = "600";
	rep = command(r, mark ? 5 : 2, argv, NULL);
	if (rep == NULL) {
		mark_down(r, "credential seen");
		return 0;
	}
	seen = !mark && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
	freeReplyObject(rep);
	return seen;
}
