/*
 * lockdown.h — process-level sandbox entry for processes the supervisor
 * forks (workers, the metrics exporter).
 *
 * Contract: with SANDBOX=on, drops to PAYMENTD_USER and applies profile
 * (sandbox/sandbox.h); any failure logs CRITICAL and exits WRK_EXIT_SANDBOX
 * (77), which the supervisor treats as "fail closed". With SANDBOX=off it
 * only logs a loud warning naming `who`.
 */
#ifndef PAYMENTD_LOCKDOWN_H
#define PAYMENTD_LOCKDOWN_H

#include "config.h"
#include "sandbox.h"

void lockdown_enter(const struct config *cfg, enum sandbox_profile profile,
    const char *chroot_dir, int max_fds, const char *who);

#endif
