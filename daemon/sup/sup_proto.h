/* SPDX-License-Identifier: MIT */
/*
 * sup_proto.h — the whole supervisor <-> child protocol, in one place (as
 * Postfix's master_proto.h): how a worker is started, which descriptors it
 * gets, every byte either side writes on the control channel, the client
 * hand-off frame, and every exit code with what the supervisor does about it.
 *
 * Starting a worker. The supervisor (root) forks; the child, still in the
 * supervisor's image and running libc code only, drops to PAYMENTD_USER
 * keeping CAP_SYS_CHROOT alone (sandbox_pre_exec), arranges the descriptors
 * below and execs paymentd-worker. The worker therefore gets a fresh address
 * space and ASLR layout, and root never runs a line of grpc: libgrpc's
 * constructors run in an unprivileged process. The worker connects to
 * Postgres and Redis, starts grpc, then chroots with its one capability,
 * drops it and installs its seccomp filter (sup_lockdown) before it sends
 * SUP_MSG_READY.
 *
 *   fd  name               what
 *   0   -                  /dev/null
 *   1,2 -                  the supervisor's stdout/stderr (logs)
 *   3   SUP_FD_CTL         control channel: AF_UNIX SOCK_STREAM socketpair
 *   4   SUP_FD_METRICS     memfd of the shared metrics region (metrics.h)
 *   5   SUP_FD_CONFIG      memfd holding a struct sup_config_blob
 *   argv = { "paymentd-worker", NULL }; the environment is the supervisor's.
 * Nothing else is open (the child closes every other descriptor).
 *
 * Control channel, worker -> supervisor (single bytes):
 *   'R' SUP_MSG_READY  set up and sandboxed, Postgres connected: send a client
 *   'D' SUP_MSG_NODB   set up and sandboxed, Postgres unreachable: it answers
 *                      NOT_SERVING; the supervisor picks it only as a last
 *                      resort
 *   'B' SUP_MSG_BUSY   took its client fd, before reading a byte of it; until
 *                      then the supervisor keeps its own copy and hands the
 *                      connection to another worker if this one dies
 * Anything else is a protocol violation: the supervisor logs it and kills the
 * worker (SIGKILL, counted as reason "protocol").
 *
 * Control channel, supervisor -> worker (one sendmsg each, SCM_RIGHTS with
 * exactly one descriptor, the client socket):
 *   'F' SUP_MSG_FD      a new client connection
 *   'H' SUP_MSG_HANDED  a connection handed on after the worker it was sent
 *                       to died before acknowledging it (logged)
 *   followed by the peer address, 0..SUP_PEER_MAX-1 bytes, no NUL (e.g.
 *   "ipv4:10.0.0.7:5555"): a sandboxed worker may not call getpeername(2).
 * A frame with another first byte, no descriptor, more than one, or a longer
 * peer is rejected: the worker logs it and exits SUP_EXIT_IPC.
 *
 * Exit codes of a worker (the supervisor's reap() is the only reader):
 *   code  name               meaning                          supervisor action
 *   0     SUP_EXIT_OK        connection served and closed      none
 *                            (client gone, idle, max age, drain)
 *   10    SUP_EXIT_DB_LOST   Postgres connection died; clients refill the pool at most
 *                            got UNAVAILABLE and a GOAWAY      once a second (connections
 *                                                              are still served at once)
 *   11    SUP_EXIT_DB_DOWN   could not connect to Postgres at  same as 10
 *                            start; served NOT_SERVING, then
 *                            GOAWAY (or, idle in the pool,
 *                            exits after 1 s to retry)
 *   12    SUP_EXIT_RL_DOWN   idle in the pool and its Redis    same as 10
 *                            connection died
 *   20    SUP_EXIT_IPC       control channel closed or a       none (the supervisor is
 *                            malformed frame                   likely exiting)
 *   70    SUP_EXIT_SOFTWARE  internal error (grpc setup, OOM,  count as crash, throttle
 *                            bad descriptors or config blob)
 *   77    SUP_EXIT_SANDBOX   privilege drop/seccomp failed     fail closed: the supervisor
 *                                                              drains and exits 1
 *   signal SIGSYS            seccomp killed it (violation)     log ERROR, count, throttle
 *   other signals            crash (or kill -9 by an operator) count, throttle if it
 *                                                              died before READY
 * Any exit before SUP_MSG_BUSY for its client: the supervisor hands the
 * connection to another worker (at most SUP_MAX_HANDOFF_HOPS times).
 *
 * The metrics exporter and the log forwarder are forked (not exec'd: they
 * run no grpc) and have exit codes of their own: SUP_EXPORTER_EXIT_* and
 * SUP_LOGFWD_EXIT_*. A SANDBOX exit of either is final (not restarted).
 */
#ifndef PAYMENTD_SUP_PROTO_H
#define PAYMENTD_SUP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* Descriptors of an exec'd worker. */
#define SUP_FD_CTL               3
#define SUP_FD_METRICS           4
#define SUP_FD_CONFIG            5
#define SUP_WORKER_EXE           "paymentd-worker"
#define SUP_WORKER_TESTHOOKS_EXE "paymentd-worker-testhooks"

/* Worker -> supervisor. */
#define SUP_MSG_READY 'R'
#define SUP_MSG_NODB  'D'
#define SUP_MSG_BUSY  'B'
/* Supervisor -> worker. */
#define SUP_MSG_FD     'F'
#define SUP_MSG_HANDED 'H'

/* Room for the peer address of a hand-off frame, NUL included. */
#define SUP_PEER_MAX         96
#define SUP_MAX_HANDOFF_HOPS 3

/* Worker exit codes. */
#define SUP_EXIT_OK       0
#define SUP_EXIT_DB_LOST  10
#define SUP_EXIT_DB_DOWN  11
#define SUP_EXIT_RL_DOWN  12
#define SUP_EXIT_IPC      20
#define SUP_EXIT_SOFTWARE 70
#define SUP_EXIT_SANDBOX  77

/* Metrics exporter exit codes. */
#define SUP_EXPORTER_EXIT_OK       0
#define SUP_EXPORTER_EXIT_SOFTWARE 70
#define SUP_EXPORTER_EXIT_SANDBOX  77

/* Log forwarder exit codes. */
#define SUP_LOGFWD_EXIT_OK      0
#define SUP_LOGFWD_EXIT_SANDBOX 77

/* The configuration a worker runs with, as the supervisor loaded it (the
 * worker cannot re-read ENV_FILE: it may be readable by root only). Both
 * binaries come from one build; magic, size and version catch a mismatch. */
#define SUP_CONFIG_MAGIC "PDCFG001"
struct sup_config_blob {
	char magic[8];
	uint32_t size; /* sizeof(struct config) */
	char version[32];
	struct config cfg;
};

/* 1 if b is a byte a worker may send, else 0. */
int sup_proto_worker_byte_ok(char b);

/* Sends a client socket (not consumed) with its peer address. 0 or -1. */
int sup_proto_send_client(int ctl, int fd, const char *peer, int handed_on);

/* Receives one hand-off frame. Returns 1 with *fd, peer (NUL-terminated)
 * and *handed_on filled; 0 on end of file; -1 on a read error (errno);
 * -2 on a malformed frame (any descriptor that came with it is closed). */
int sup_proto_recv_client(int ctl, int *fd, char peer[SUP_PEER_MAX], int *handed_on);

/* Writes cfg into a new sealed memfd; returns it, or -1 with err. */
int sup_proto_config_fd(const struct config *cfg, char *err, size_t errlen);
/* Reads and checks the blob on fd into *cfg. 0, or -1 with err. */
int sup_proto_config_read(int fd, struct config *cfg, char *err, size_t errlen);

#endif
