/*
 * sup.h — the privileged supervisor: listens, accepts, forks workers and
 * hands each one client socket; reaps them and acts on their exit codes.
 *
 * Contract: sup_run() never returns; it exits 0 after a graceful drain
 * (SIGTERM/SIGINT) or 1 on a fatal condition (listen failure, a worker
 * reporting that the sandbox cannot be set up). It never reads a byte from
 * a client socket and never calls into grpc.
 */
#ifndef PAYMENTD_SUP_H
#define PAYMENTD_SUP_H

#include "config.h"

/* Returns a listening socket: the systemd-activated one (LISTEN_FDS) if
 * present, else a new one bound to host:port. -1 with err on failure. */
int  sup_listen_open(const char *host, int port, int *activated, char *err, size_t errlen);
void sup_run(const struct config *cfg) __attribute__((noreturn));

#endif
