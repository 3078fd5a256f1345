/* SPDX-License-Identifier: MIT */
/*
 * sup_kh.h — the supervisor's side of the key-holder (sup_kh.c; protocol
 * and descriptors in sup_proto.h, "key-holder channel"). It starts,
 * restarts and replaces paymentd-keyholder and passes descriptors; it never
 * reads a byte of a worker's channel and links no libcrypto.
 *
 * Contract (all no-ops returning 0 / -1 as stated while TLS is off):
 *  - sup_kh_start(): TLS=on only (else 0, nothing done). Opens
 *    TLS_KEY_FILE and TLS_CERT_FILE as root, starts the key-holder and waits
 *    (up to SUP_KH_START_MS) until it reports ready: 0, or -1 with err (bad
 *    key, key not the certificate's, sandbox failure, exec failure). Call
 *    after sup_logfwd_start() (it logs to the same stderr) and before any
 *    worker is started.
 *  - sup_kh_channel(): a new channel for one worker. Returns the worker's
 *    end (close-on-exec: dup2 it to SUP_FD_KEY in the worker's child, close
 *    it in the supervisor after the fork) and sets *handle, the
 *    supervisor's copy of the key-holder's end, to pass to sup_kh_release()
 *    when that worker is reaped. -1 (errno) when TLS is off or on failure.
 *  - sup_kh_release(): forgets and closes a handle.
 *  - sup_kh_reaped(): 0 if pid is not a key-holder; 1 if it was (logged; a
 *    current one is restarted by sup_kh_tick(), at once if it had run
 *    for SUP_KH_RESTART_MS, else that long after its start); 2 if it exited
 *    SUP_KH_EXIT_SANDBOX: final, the caller fails closed.
 *  - sup_kh_tick(): once per supervisor loop iteration: reads the
 *    key-holder's reports, restarts it when due, (re-)sends every live
 *    handle it does not have yet. Never blocks.
 *  - sup_kh_timeout_ms(): ms until sup_kh_tick() has work that is due
 *    (a restart), for the caller's poll timeout; -1 if nothing is pending.
 *  - sup_kh_reload(): SIGHUP. Starts a key-holder for cfg's (possibly new)
 *    key and certificate and waits until it is ready (blocking, at most
 *    SUP_KH_START_MS). On success it replaces the old one (SIGTERM) and
 *    every live handle is re-sent to it, budgets kept; returns 0. On
 *    failure the old one keeps serving; -1 with err. Workers that loaded
 *    the old certificate (the idle pool) must be retired by the caller: the
 *    new key-holder signs with the new key only. TLS cannot be switched on
 *    or off by a reload (-1).
 *  - sup_kh_stop(): drain: SIGTERM to every key-holder (they also exit
 *    when the supervisor's end of their control socket closes).
 *  - sup_kh_pid(): the current key-holder's pid, 0 if none is running.
 */
#ifndef PAYMENTD_SUP_KH_H
#define PAYMENTD_SUP_KH_H

#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"

int sup_kh_start(const struct config *cfg, char *err, size_t errlen);
int sup_kh_channel(int *handle);
void sup_kh_release(int handle);
int sup_kh_reaped(pid_t pid, int status);
void sup_kh_tick(void);
int sup_kh_timeout_ms(void);
int sup_kh_reload(const struct config *cfg, char *err, size_t errlen);
void sup_kh_stop(void);
pid_t sup_kh_pid(void);

#endif
