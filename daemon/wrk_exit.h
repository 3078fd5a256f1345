/*
 * wrk_exit.h — the worker exit-code protocol.
 *
 * A worker's exit status tells the supervisor what happened and what to do.
 * The supervisor (sup_supervisor.c, reap()) is the only reader.
 *
 *   code  name                 meaning                          supervisor action
 *   0     WRK_EXIT_OK          connection served and closed      none
 *                              (client gone, idle, max age, drain)
 *   10    WRK_EXIT_DB_LOST     Postgres connection died; clients  refill the pool at most
 *                              got UNAVAILABLE and a GOAWAY       once a second (connections
 *                                                                  are still served at once)
 *   11    WRK_EXIT_DB_DOWN     could not connect to Postgres at   same as 10
 *                              start; served NOT_SERVING/
 *                              UNAVAILABLE, then GOAWAY (or, idle
 *                              in the pool, exits after 1 s so a
 *                              fresh worker retries the connect)
 *   12    WRK_EXIT_RL_DOWN     idle in the pool and its Redis      same as 10
 *                              connection died (a fresh worker
 *                              reconnects; fail-open meanwhile)
 *   20    WRK_EXIT_IPC         supervisor channel closed or a     none (supervisor is
 *                              malformed fd message               likely exiting)
 *   70    WRK_EXIT_SOFTWARE    internal error (grpc setup, OOM)   count as crash, throttle
 *   77    WRK_EXIT_SANDBOX     privilege drop/seccomp failed      fail closed: supervisor
 *                                                                  stops with an error
 *   signal SIGSYS              seccomp killed it (violation)      log ERROR, count, throttle
 *   other signals              crash (or kill -9 by an operator)  count, throttle if it
 *                                                                  died before READY
 *
 * Any exit before the worker sent WRK_MSG_BUSY for its client fd: the
 * supervisor still holds its copy and hands the connection to another
 * worker (at most MAX_HANDOFF_HOPS times).
 */
#ifndef PAYMENTD_WRK_EXIT_H
#define PAYMENTD_WRK_EXIT_H

#define WRK_EXIT_OK        0
#define WRK_EXIT_DB_LOST   10
#define WRK_EXIT_DB_DOWN   11
#define WRK_EXIT_RL_DOWN   12
#define WRK_EXIT_IPC       20
#define WRK_EXIT_SOFTWARE  70
#define WRK_EXIT_SANDBOX   77

/* Bytes a worker writes on its control channel. */
#define WRK_MSG_READY  'R'   /* set up and sandboxed; may receive a client fd */
#define WRK_MSG_NODB   'D'   /* ready, but Postgres was unreachable: will answer
                              * NOT_SERVING; the supervisor prefers others */
#define WRK_MSG_BUSY   'B'   /* took its client fd, before reading a byte of it:
                              * until this arrives the supervisor keeps its own
                              * copy of the fd and hands the connection to
                              * another worker if this one dies */

#endif
