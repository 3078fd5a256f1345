/* SPDX-License-Identifier: MIT */
/*
 * sup_lockdown.h — process-level sandbox entry for the supervisor's
 * children: exec'd workers, the metrics exporter, the log forwarder.
 *
 * Contract: with SANDBOX=on, drops to PAYMENTD_USER and applies profile
 * (sandbox/sandbox.h); any failure logs CRITICAL and exits SUP_EXIT_SANDBOX
 * (77, sup_proto.h), which the supervisor treats as "fail closed". With SANDBOX=off it
 * only logs a loud warning naming `who`.
 */
#ifndef PAYMENTD_SUP_LOCKDOWN_H
#define PAYMENTD_SUP_LOCKDOWN_H

#include "common/config.h"
#include "sandbox/sandbox.h"

void sup_lockdown_enter(const struct config *cfg, enum sandbox_profile profile,
    const char *chroot_dir, int max_fds, const char *who);

#endif
