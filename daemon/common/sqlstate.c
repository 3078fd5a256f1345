/* SPDX-License-Identifier: MIT */
/*
 * sqlstate.c — SQLSTATE codes to classes (see sqlstate.h).
 */
#include "sqlstate.h"

#include <string.h>

/* A SQLSTATE is exactly five digits or upper-case letters. */
static int
well_formed(const char *code)
{
	int i;

	for (i = 0; i < 5; i++)
		if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z')))
			return 0;
	return code[5] == '\0';
}

enum sqlstate_class
sqlstate_classify(const char *code)
{
	if (code == NULL || !well_formed(code))
		return SQLSTATE_OTHER;
	if (strcmp(code, "40001") == 0 || strcmp(code, "40P01") == 0)
		return SQLSTATE_RETRY;
	if (strncmp(code, "40", 2) == 0)
		return SQLSTATE_ROLLBACK;
	if (strcmp(code, "57014") == 0)
		return SQLSTATE_TIMEOUT;
	if (strncmp(code, "22", 2) == 0)
		return SQLSTATE_INVALID;
	if (strncmp(code, "08", 2) == 0 || strncmp(code, "57P", 3) == 0 ||
	    strncmp(code, "53", 2) == 0)
		return SQLSTATE_CONNECTION;
	return SQLSTATE_OTHER;
}
