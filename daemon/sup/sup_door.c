/* SPDX-License-Identifier: MIT */
/*
 * sup_door.c — the supervisor's front door: per-source-address bookkeeping
 * that decides, before any worker is involved, whether a freshly accepted
 * connection may have one (see sup_door.h).
 *
 * Two limits per address, both cheap enough to run on every accept():
 *   - MAX_CONNECTIONS_PER_IP: connections (workers, or places in the wait
 *     queue) one address holds at once, so one host cannot take every
 *     worker by opening sockets;
 *   - CONNECTION_RATE_PER_IP / CONNECTION_BURST_PER_IP: a token bucket of
 *     new connections, so a connect-and-close flood from one address costs
 *     the supervisor an accept() and a close() per attempt and nothing else.
 * An address whose connection a worker's frame guard cut off (GOAWAY
 * ENHANCE_YOUR_CALM, reported as SUP_MSG_ABUSE) is refused for
 * ABUSE_PENALTY_SECONDS: each abusive connection otherwise costs a whole
 * worker (process, Postgres session) before the guard can see the abuse.
 * The table is fixed-size open addressing (no allocation after start): an
 * address with no connection and a full bucket carries no state and its
 * slot is reused. If every slot is in use (more live addresses than
 * SUP_DOOR_SLOTS), new addresses are admitted unlimited and counted, which
 * fails open for availability; MAX_WORKERS still bounds the damage.
 */
#include "sup_door.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SUP_DOOR_SLOTS 4096
#define PROBES         32

struct door_slot {
	char ip[SUP_DOOR_IP_MAX]; /* "" = free */
	int conns;
	double tokens;
	int64_t refill_ms;
	int64_t penalty_until;
};

static struct {
	struct door_slot slot[SUP_DOOR_SLOTS];
	int per_ip;
	double rate, burst;
	unsigned long overflow;
} D;

void
sup_door_init(int max_per_ip, int rate_per_s, int burst)
{
	memset(&D, 0, sizeof(D));
	D.per_ip = max_per_ip;
	D.rate = rate_per_s;
	D.burst = burst;
}

void
sup_door_ip(const char *peer, char ip[SUP_DOOR_IP_MAX])
{
	const char *start = peer, *end;
	size_t n;

	/* rl_peer_from_fd: "ipv4:10.0.0.7:5555" or "ipv6:[::1]:5555". */
	if (strncmp(start, "ipv4:", 5) == 0 || strncmp(start, "ipv6:", 5) == 0)
		start += 5;
	end = strrchr(start, ':');
	if (end == NULL || end == start)
		end = start + strlen(start);
	n = (size_t)(end - start);
	if (n >= SUP_DOOR_IP_MAX)
		n = SUP_DOOR_IP_MAX - 1;
	memcpy(ip, start, n);
	ip[n] = '\0';
}

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void
refill(struct door_slot *s, int64_t now)
{
	if (s->refill_ms != 0 && now > s->refill_ms)
		s->tokens += D.rate * (double)(now - s->refill_ms) / 1000.0;
	if (s->tokens > D.burst)
		s->tokens = D.burst;
	s->refill_ms = now;
}

/* An address's slot; created when create is set. NULL if none. */
static struct door_slot *
find(const char *ip, int create, int64_t now)
{
	uint32_t h = hash(ip);
	struct door_slot *reuse = NULL;
	int i;

	for (i = 0; i < PROBES; i++) {
		struct door_slot *s = &D.slot[(h + (uint32_t)i) % SUP_DOOR_SLOTS];

		if (s->ip[0] != '\0' && strcmp(s->ip, ip) == 0)
			return s;
		if (reuse == NULL && s->ip[0] == '\0')
			reuse = s;
		if (create && reuse == NULL && s->conns == 0 && s->penalty_until <= now) {
			refill(s, now);
			if (s->tokens >= D.burst)
				reuse = s; /* stateless again: forget it */
		}
	}
	if (!create || reuse == NULL)
		return NULL;
	snprintf(reuse->ip, sizeof(reuse->ip), "%s", ip);
	reuse->conns = 0;
	reuse->tokens = D.burst;
	reuse->refill_ms = now;
	reuse->penalty_until = 0;
	return reuse;
}

enum sup_door_verdict
sup_door_admit(const char *ip, int64_t now_ms)
{
	struct door_slot *s;

	s = find(ip, 1, now_ms);
	if (s == NULL) {
		D.overflow++;
		return SUP_DOOR_OK;
	}
	if (s->penalty_until > now_ms)
		return SUP_DOOR_PENALTY;
	if (D.per_ip > 0 && s->conns >= D.per_ip)
		return SUP_DOOR_PER_IP_LIMIT;
	if (D.rate > 0) {
		refill(s, now_ms);
		if (s->tokens < 1.0)
			return SUP_DOOR_RATE;
		s->tokens -= 1.0;
	}
	s->conns++;
	return SUP_DOOR_OK;
}

void
sup_door_release(const char *ip)
{
	struct door_slot *s;

	if (ip[0] == '\0')
		return;
	s = find(ip, 0, 0);
	if (s != NULL && s->conns > 0)
		s->conns--;
}

void
sup_door_penalize(const char *ip, int64_t now_ms, int64_t ms)
{
	struct door_slot *s;

	if (ip[0] == '\0' || ms <= 0)
		return;
	s = find(ip, 1, now_ms);
	if (s == NULL)
		return;
	s->penalty_until = now_ms + ms;
	s->tokens = 0;
	s->refill_ms = now_ms + ms;
}

int
sup_door_conns(const char *ip)
{
	struct door_slot *s = find(ip, 0, 0);

	return s != NULL ? s->conns : 0;
}

unsigned long
sup_door_overflow(void)
{
	return D.overflow;
}
