/* SPDX-License-Identifier: MIT */
/*
 * sb_proc.c — reads a process's credentials and sandbox state from
 * /proc/PID/status, the kernel's own account (not the process's word).
 */
#include "sb_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The numbers (in base) after "key:" on a status line, up to max into v:
 * how many were read, 0 when the line is another key's. */
static int
fields(const char *line, const char *key, int base, unsigned long long *v, int max)
{
	size_t kl = strlen(key);
	const char *p;
	char *e;
	int n = 0;

	if (strncmp(line, key, kl) != 0 || line[kl] != ':')
		return 0;
	for (p = line + kl + 1; n < max; p = e) {
		errno = 0;
		v[n] = strtoull(p, &e, base);
		if (e == p || errno == ERANGE)
			break;
		n++;
	}
	return n;
}

int
sb_read_status(const char *path, struct sb_status *st)
{
	char line[512], *p, *e;
	unsigned long long v[4];
	FILE *f;
	int i;

	memset(st, 0, sizeof(*st));
	st->no_new_privs = st->seccomp = -1;
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (fields(line, "Uid", 10, v, 4) == 4) {
			for (i = 0; i < 4; i++)
				st->uid[i] = (unsigned long)v[i];
			st->found |= 0x1;
		} else if (fields(line, "Gid", 10, v, 4) == 4) {
			for (i = 0; i < 4; i++)
				st->gid[i] = (unsigned long)v[i];
			st->found |= 0x2;
		} else if (strncmp(line, "Groups:", 7) == 0) {
			for (p = line + 7; st->ngroups < 32; p = e) {
				unsigned long g = strtoul(p, &e, 10);
				if (e == p)
					break;
				st->groups[st->ngroups++] = g;
			}
			st->found |= 0x4;
		} else if (fields(line, "CapInh", 16, v, 1) == 1) {
			st->cap_inh = v[0];
		} else if (fields(line, "CapPrm", 16, v, 1) == 1) {
			st->cap_prm = v[0];
		} else if (fields(line, "CapEff", 16, v, 1) == 1) {
			st->cap_eff = v[0];
			st->found |= 0x8;
		} else if (fields(line, "CapBnd", 16, v, 1) == 1) {
			st->cap_bnd = v[0];
		} else if (fields(line, "CapAmb", 16, v, 1) == 1) {
			st->cap_amb = v[0];
		} else if (fields(line, "NoNewPrivs", 10, v, 1) == 1) {
			st->no_new_privs = (int)v[0];
			st->found |= 0x10;
		} else if (fields(line, "Seccomp", 10, v, 1) == 1) {
			st->seccomp = (int)v[0];
			st->found |= 0x20;
		}
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
