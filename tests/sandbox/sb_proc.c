/*
 * sb_proc.c — reads a process's credentials and sandbox state from
 * /proc/PID/status, the kernel's own account (not the process's word).
 */
#include "sb_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
sb_read_status(const char *path, struct sb_status *st)
{
	char line[512], *p, *e;
	FILE *f;

	memset(st, 0, sizeof(*st));
	st->no_new_privs = st->seccomp = -1;
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &st->uid[0], &st->uid[1], &st->uid[2],
		    &st->uid[3]) == 4)
			st->found |= 0x1;
		else if (sscanf(line, "Gid: %lu %lu %lu %lu", &st->gid[0], &st->gid[1], &st->gid[2],
		    &st->gid[3]) == 4)
			st->found |= 0x2;
		else if (strncmp(line, "Groups:", 7) == 0) {
			for (p = line + 7; st->ngroups < 32; p = e) {
				unsigned long g = strtoul(p, &e, 10);
				if (e == p)
					break;
				st->groups[st->ngroups++] = g;
			}
			st->found |= 0x4;
		} else if (sscanf(line, "CapInh: %llx", &st->cap_inh) == 1)
			;
		else if (sscanf(line, "CapPrm: %llx", &st->cap_prm) == 1)
			;
		else if (sscanf(line, "CapEff: %llx", &st->cap_eff) == 1)
			st->found |= 0x8;
		else if (sscanf(line, "CapBnd: %llx", &st->cap_bnd) == 1)
			;
		else if (sscanf(line, "CapAmb: %llx", &st->cap_amb) == 1)
			;
		else if (sscanf(line, "NoNewPrivs: %d", &st->no_new_privs) == 1)
			st->found |= 0x10;
		else if (sscanf(line, "Seccomp: %d", &st->seccomp) == 1)
			st->found |= 0x20;
	}
	fclose(f);
	return 0;
}

int
sb_threads_with_seccomp(pid_t pid, int mode, int *total)
{
	char path[128];
	struct dirent *de;
	struct sb_status st;
	DIR *d;
	int n = 0;

	*total = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.32s/status", (int)pid, de->d_name);
		if (sb_read_status(path, &st) < 0)
			continue;
		(*total)++;
		n += st.seccomp == mode;
	}
	closedir(d);
	return n;
}

int
sb_read_limit(pid_t pid, const char *name, unsigned long long *soft, unsigned long long *hard)
{
	char path[64], line[256], s[32], h[32];
	size_t nl = strlen(name);
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (rc < 0 && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, nl) != 0 || line[nl] != ' ')
			continue;
		if (sscanf(line + nl, " %31s %31s", s, h) != 2)
			break;
		*soft = strcmp(s, "unlimited") == 0 ? ~0ULL : strtoull(s, NULL, 10);
		*hard = strcmp(h, "unlimited") == 0 ? ~0ULL : strtoull(h, NULL, 10);
		rc = 0;
	}
	fclose(f);
	return rc;
}
