/* SPDX-License-Identifier: MIT */
/*
 * sup_door.h — per-source-address limits applied by the supervisor right
 * after accept(), before a worker sees the connection (sup_door.c).
 *
 * Contract: sup_door_init() once; then for each accepted connection
 * sup_door_admit(ip) says whether it may have a worker (and if so counts it
 * against its address until sup_door_release(ip)). Addresses are the peer
 * strings of rl_peer_from_fd() without the port (sup_door_ip()). No
 * allocation, no syscalls.
 */
#ifndef PAYMENTD_SUP_DOOR_H
#define PAYMENTD_SUP_DOOR_H

#include <stdint.h>

#define SUP_DOOR_IP_MAX 48

enum sup_door_verdict {
	SUP_DOOR_OK,
	SUP_DOOR_PER_IP_LIMIT, /* MAX_CONNECTIONS_PER_IP held already */
	SUP_DOOR_RATE,         /* CONNECTION_RATE_PER_IP bucket empty */
	SUP_DOOR_PENALTY,      /* its last client was cut off for abuse */
};

/* max_per_ip 0: no cap; rate_per_s 0: no rate limit. */
void sup_door_init(int max_per_ip, int rate_per_s, int burst);
void sup_door_ip(const char *peer, char ip[SUP_DOOR_IP_MAX]);
enum sup_door_verdict sup_door_admit(const char *ip, int64_t now_ms);
void sup_door_release(const char *ip);
/* A worker's frame guard cut this address's connection off for abuse: no
 * new connection from it until now_ms + ms (its bucket is emptied too). */
void sup_door_penalize(const char *ip, int64_t now_ms, int64_t ms);
int sup_door_conns(const char *ip);
/* Admissions that found the table full (admitted without limits). */
unsigned long sup_door_overflow(void);

#endif
