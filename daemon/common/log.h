/* SPDX-License-Identifier: MIT */
/*
 * log.h — structured logging: one JSON object per line on stderr, or a
 * human "console" format (LOG_FORMAT=console).
 *
 * Contract: every line carries ts, level, component, pid and msg, plus the
 * current log context (correlation_id, method) when one is set, plus the
 * caller's fields. Strings are escaped and truncated (LOG_MAX_STR bytes per
 * value) so untrusted input can neither break a line nor flood the log.
 * A line is written with a single write(2) so lines from concurrently
 * logging processes sharing one stderr never interleave. Safe to use after
 * the sandbox is locked: it only needs write(2) on an inherited fd.
 */
#ifndef PAYMENTD_LOG_H
#define PAYMENTD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARNING, LOG_ERROR, LOG_CRIT };
enum log_format { LOG_FORMAT_JSON = 0, LOG_FORMAT_CONSOLE };
enum log_ftype { LOG_F_END = 0, LOG_F_STR, LOG_F_INT, LOG_F_DBL, LOG_F_BOOL };

#define LOG_MAX_STR 512

struct log_field {
	const char *key;
	enum log_ftype type;
	const char *s;
	int64_t i;
	double d;
};

/* Brace-initializer macros, one line each (clang-format would split them). */
// clang-format off
#define LF_S(k, v) { (k), LOG_F_STR, (v), 0, 0 }
#define LF_I(k, v) { (k), LOG_F_INT, NULL, (int64_t)(v), 0 }
#define LF_D(k, v) { (k), LOG_F_DBL, NULL, 0, (double)(v) }
#define LF_B(k, v) { (k), LOG_F_BOOL, NULL, (v) ? 1 : 0, 0 }
// clang-format on

void log_init(const char *component, enum log_level level, enum log_format fmt);
void log_set_fd(int fd);
int log_enabled(enum log_level level);
/* Context added to every line until cleared with NULLs. Copied. */
void log_set_context(const char *correlation_id, const char *method);
/* fields is terminated by an entry with key == NULL; may be NULL. */
void log_kv(enum log_level level, const char *msg, const struct log_field *fields);

/* Parses "debug|info|warning|warn|error" (any case); -1 if unknown. */
int log_parse_level(const char *s);

/*
 * Escapes src as the inside of a JSON string into dst (always
 * NUL-terminated), cutting it at max_in input bytes and marking a cut with
 * "...". Invalid UTF-8 bytes become \ufffd. Returns bytes written.
 */
size_t log_json_escape(char *dst, size_t dstlen, const char *src, size_t max_in);

#define log_at(lvl, msg, ...) \
	log_kv((lvl), (msg), (const struct log_field[]){ __VA_ARGS__ __VA_OPT__(, ){ 0 } })
#define log_debug(msg, ...) \
	do { \
		if (log_enabled(LOG_DEBUG)) \
			log_at(LOG_DEBUG, msg, __VA_ARGS__); \
	} while (0)
#define log_info(msg, ...)  log_at(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_at(LOG_WARNING, msg, __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_ERROR, msg, __VA_ARGS__)

#endif
