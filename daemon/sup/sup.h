/* SPDX-License-Identifier: MIT */
/*
 * sup.h — the privileged supervisor: listens, accepts, starts workers
 * (fork + exec of paymentd-worker, sup_spawn.c) and hands each one client
 * socket; reaps them and acts on their exit codes (sup_proto.h).
 *
 * Contract: sup_run() never returns; it exits 0 after a graceful drain
 * (SIGTERM/SIGINT) or 1 on a fatal condition (listen failure, a worker
 * reporting that the sandbox cannot be set up). It never reads a byte from
 * a client socket and never calls into grpc.
 */
#ifndef PAYMENTD_SUP_H
#define PAYMENTD_SUP_H

#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"

/* Returns a listening socket: the systemd-activated one (LISTEN_FDS) if
 * present, else a new one bound to host:port. -1 with err on failure. */
int sup_listen_open(const char *host, int port, int *activated, char *err, size_t errlen);
/* 1 if the listening socket is bound to a loopback address only. */
int sup_listen_is_loopback(int fd);
void sup_run(const struct config *cfg) __attribute__((noreturn));

/* sup_spawn.c. init: finds paymentd-worker (beside this binary, else in
 * PAYMENTD_LIBEXEC_DIR), writes the config blob, resolves the sandbox
 * user; 0 or -1 with err. worker: forks a child that execs it with ctl and
 * metrics_fd as SUP_FD_CTL / SUP_FD_METRICS (neither is consumed); returns
 * the pid, or -1 with errno if fork failed. status_fd, tls_fd and key_fd
 * become SUP_FD_STATUS, SUP_FD_TLS and SUP_FD_KEY (tls_fd/key_fd -1: TLS
 * is off and those stay closed). */
int sup_spawn_init(const struct config *cfg, char *err, size_t errlen);
/* Finds the program exe beside this binary, else in PAYMENTD_LIBEXEC_DIR
 * (path filled); what names it in err. 0 or -1. */
int sup_spawn_find(
    const char *exe, const char *what, char *path, size_t pathlen, char *err, size_t errlen);
pid_t sup_spawn_worker(int ctl, int metrics_fd, int status_fd, int tls_fd, int key_fd);
const char *sup_spawn_path(void);

/* sup_logfwd.c. start: if stderr is a regular file, interposes a pipe and
 * a sandboxed forwarder process (else does nothing). reaped: 1 if pid was
 * the forwarder (it is restarted), else 0. */
void sup_logfwd_start(const struct config *cfg);
int sup_logfwd_reaped(pid_t pid, int status);

#endif
