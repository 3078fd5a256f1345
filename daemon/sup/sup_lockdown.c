/* SPDX-License-Identifier: MIT */
/*
 * sup_lockdown.c — see sup_lockdown.h. One place for the fail-closed policy, so the
 * worker and the exporter cannot drift apart.
 */
#include "sup_lockdown.h"
#include "common/log.h"
#include "sup_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sup_lockdown_enter(const struct config *cfg, enum sandbox_profile profile, const char *chroot_dir,
    int max_fds, const char *who)
{
	struct sandbox_ids ids;
	struct sandbox_opts o;
	char err[256], msg[128];

	if (!cfg->sandbox) {
		snprintf(msg, sizeof(msg),
		    "SANDBOX=off: %s runs WITHOUT privilege drop and seccomp "
		    "(debugging only)",
		    who);
		log_warn(msg);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.profile = profile;
	o.chroot_dir = chroot_dir;
	o.debug = cfg->sandbox_debug;
	o.max_fds = max_fds;
	/* The memory bound of a worker: one hostile connection must not take
	 * the host's memory with it (sup_proto.h, WORKER_MAX_MEMORY_MB). */
	o.max_as_mb = profile == SANDBOX_WORKER ? cfg->worker_max_memory_mb : 0;
	if (sandbox_resolve(cfg->user, &ids, err, sizeof(err)) < 0 ||
	    sandbox_enter(&ids, &o, err, sizeof(err)) < 0) {
		snprintf(msg, sizeof(msg), "%s: sandbox setup failed; refusing to serve", who);
		log_kv(LOG_CRIT, msg, (const struct log_field[]){ LF_S("error", err), { 0 } });
		exit(SUP_EXIT_SANDBOX);
	}
}
