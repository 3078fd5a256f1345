/* SPDX-License-Identifier: MIT */
/*
 * relay_schema.c — a JSON Schema subset checker over the schemas compiled
 * in (see relay_schema.h). Debian has no JSON Schema validator for C; the
 * subset is what schemas/ uses, and relay_schema_load() refuses a schema
 * that uses more, so the files and the checker cannot drift apart.
 */
#include "relay_schema.h"
#include "relay_envelope.h"
#include "common/utf8.h"

#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bundle (wal/wal.mk): for each file "name\n" + its JSON + NUL. */
__asm__(".section .rodata\n"
        ".global relay_schemas_start\n"
        "relay_schemas_start:\n"
        ".incbin \"" PAYMENTD_SCHEMA_BUNDLE "\"\n"
        ".global relay_schemas_end\n"
        "relay_schemas_end:\n"
        ".previous\n");
extern const char relay_schemas_start[], relay_schemas_end[];

#define MAX_FILES    32
#define MAX_PATTERNS 32
#define PATH_MAX_LEN 160

static struct {
	char name[64];
	json_t *root;
} files[MAX_FILES];
static size_t nfiles;

static struct {
	const char *src; /* owned by the schema's json_t */
	regex_t re;
} pats[MAX_PATTERNS];
static size_t npats;
static int loaded;

static const char *const annotations[] = { "$schema", "$id", "$comment", "title", "description",
	NULL };
static const char *const keywords[] = { "type", "const", "enum", "properties", "required",
	"additionalProperties", "propertyNames", "maxProperties", "minLength", "maxLength",
	"minimum", "maximum", "pattern", "format", "allOf", "oneOf", "$ref", NULL };

static int
in_list(const char *const *l, const char *k)
{
	for (; *l; l++)
		if (strcmp(*l, k) == 0)
			return 1;
	return 0;
}

static json_t *
file_root(const char *name)
{
	size_t i;

	for (i = 0; i < nfiles; i++)
		if (strcmp(files[i].name, name) == 0)
			return files[i].root;
	return NULL;
}

static regex_t *
pattern(const char *src)
{
	size_t i;

	for (i = 0; i < npats; i++)
		if (strcmp(pats[i].src, src) == 0)
			return &pats[i].re;
	return NULL;
}

/* Every keyword known, every pattern compiled, every $ref resolvable. */
static int
vet(const char *file, json_t *s, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_boolean(s))
		return 0;
	if (!json_is_object(s)) {
		snprintf(err, errlen, "%s: a schema that is not an object", file);
		return -1;
	}
	json_object_foreach(s, k, v)
	{
		if (in_list(annotations, k))
			continue;
		if (!in_list(keywords, k)) {
			snprintf(err, errlen, "%s: unsupported keyword %s", file, k);
			return -1;
		}
		if (strcmp(k, "properties") == 0) {
			const char *pk;
			json_t *pv;

			json_object_foreach(v, pk, pv)
			{
				if (vet(file, pv, err, errlen) < 0)
					return -1;
			}
		} else if (strcmp(k, "allOf") == 0 || strcmp(k, "oneOf") == 0) {
			json_t *e;

			json_array_foreach(v, i, e)
			{
				if (vet(file, e, err, errlen) < 0)
					return -1;
			}
		} else if (strcmp(k, "additionalProperties") == 0 ||
		    strcmp(k, "propertyNames") == 0) {
			if (vet(file, v, err, errlen) < 0)
				return -1;
		} else if (strcmp(k, "pattern") == 0) {
			if (!json_is_string(v) || npats == MAX_PATTERNS) {
				snprintf(err, errlen, "%s: bad or too many patterns", file);
				return -1;
			}
			if (pattern(json_string_value(v)) != NULL)
				continue;
			if (regcomp(&pats[npats].re, json_string_value(v),
			        REG_EXTENDED | REG_NOSUB) != 0) {
				snprintf(err, errlen, "%s: pattern %s does not compile", file,
				    json_string_value(v));
				return -1;
			}
			pats[npats++].src = json_string_value(v);
		} else if (strcmp(k, "format") == 0) {
			if (!json_is_string(v) ||
			    (strcmp(json_string_value(v), "date-time") != 0 &&
			        strcmp(json_string_value(v), "uuid") != 0)) {
				snprintf(err, errlen, "%s: unsupported format", file);
				return -1;
			}
		}
	}
	return 0;
}

/* $refs resolve once every file is parsed. */
static int
refs_resolve(const char *file, json_t *s, char *err, size_t errlen)
{
	json_t *v, *e;
	const char *k;
	size_t i;

	if (!json_is_object(s))
		return 0;
	if ((v = json_object_get(s, "$ref")) != NULL &&
	    (!json_is_string(v) || file_root(json_string_value(v)) == NULL)) {
		snprintf(err, errlen, "%s: $ref to a file not in schemas/", file);
		return -1;
	}
	json_object_foreach(s, k, v)
	{
		if (strcmp(k, "const") == 0 || strcmp(k, "enum") == 0)
			continue;
		if (json_is_object(v) && refs_resolve(file, v, err, errlen) < 0)
			return -1;
		if (json_is_array(v))
			json_array_foreach(v, i, e)
			{
				if (refs_resolve(file, e, err, errlen) < 0)
					return -1;
			}
	}
	return 0;
}

int
relay_schema_load(char *err, size_t errlen)
{
	const char *p = relay_schemas_start, *end = relay_schemas_end;
	json_error_t je;
	size_t i;

	if (loaded)
		return 0;
	while (p < end && *p) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len;

		if (nl == NULL || nfiles == MAX_FILES ||
		    (size_t)(nl - p) >= sizeof(files[0].name)) {
			snprintf(err, errlen, "schema bundle is malformed");
			return -1;
		}
		memcpy(files[nfiles].name, p, (size_t)(nl - p));
		files[nfiles].name[nl - p] = '\0';
		p = nl + 1;
		len = strnlen(p, (size_t)(end - p));
		files[nfiles].root = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
		if (files[nfiles].root == NULL) {
			snprintf(err, errlen, "%s: %s", files[nfiles].name, je.text);
			return -1;
		}
		if (vet(files[nfiles].name, files[nfiles].root, err, errlen) < 0)
			return -1;
		nfiles++;
		p += len + 1;
	}
	for (i = 0; i < nfiles; i++)
		if (refs_resolve(files[i].name, files[i].root, err, errlen) < 0)
			return -1;
	loaded = 1;
	return 0;
}

int
relay_schema_has(const char *file)
{
	return loaded && file_root(file) != NULL;
}

int
relay_schema_file(const char *event_type, char *out, size_t outlen)
{
	size_t i, k = 0;

	if (!isupper((unsigned char)event_type[0]))
		return -1;
	for (i = 0; event_type[i]; i++) {
		unsigned char c = (unsigned char)event_type[i];

		if (!isalnum(c) || k + 3 >= outlen)
			return -1;
		if (isupper(c) && i > 0)
			out[k++] = '-';
		out[k++] = (char)tolower(c);
	}
	if (k + sizeof(".schema.json") > outlen)
		return -1;
	memcpy(out + k, ".schema.json", sizeof(".schema.json"));
	return 0;
}

static int
is_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-'
		                                            : !isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
type_ok(const char *t, const json_t *v)
{
	if (strcmp(t, "string") == 0)
		return json_is_string(v);
	if (strcmp(t, "integer") == 0)
		return json_is_integer(v);
	if (strcmp(t, "number") == 0)
		return json_is_number(v);
	if (strcmp(t, "object") == 0)
		return json_is_object(v);
	if (strcmp(t, "array") == 0)
		return json_is_array(v);
	if (strcmp(t, "boolean") == 0)
		return json_is_boolean(v);
	if (strcmp(t, "null") == 0)
		return json_is_null(v);
	return 0;
}

static const char *
type_words(const char *t)
{
	if (strcmp(t, "integer") == 0)
		return "an integer";
	if (strcmp(t, "object") == 0)
		return "a JSON object";
	if (strcmp(t, "array") == 0)
		return "an array";
	if (strcmp(t, "null") == 0)
		return "null";
	if (strcmp(t, "number") == 0)
		return "a number";
	if (strcmp(t, "boolean") == 0)
		return "a boolean";
	return "a string";
}

static int check(const json_t *s, json_t *v, const char *path, char *why, size_t whylen);

static const char *
name_of(const char *path)
{
	return path[0] ? path : "the event";
}

static int
check_type(const json_t *t, const json_t *v, const char *path, char *why, size_t whylen)
{
	size_t i;
	json_t *e;

	if (json_is_string(t)) {
		if (type_ok(json_string_value(t), v))
			return 0;
		if (strcmp(json_string_value(t), "object") == 0)
			snprintf(why, whylen, "%s is not a JSON object", name_of(path));
		else
			snprintf(why, whylen, "%s must be %s", name_of(path),
			    type_words(json_string_value(t)));
		return -1;
	}
	json_array_foreach(t, i, e)
	{
		if (json_is_string(e) && type_ok(json_string_value(e), v))
			return 0;
	}
	snprintf(why, whylen, "%s has a type its schema does not allow", name_of(path));
	return -1;
}

static int
check_string(const json_t *s, const json_t *v, const char *path, char *why, size_t whylen)
{
	const char *str = json_string_value(v);
	json_t *k;
	size_t n = utf8_chars(str);
	regex_t *re;

	if (((k = json_object_get(s, "minLength")) && (json_int_t)n < json_integer_value(k)) ||
	    ((k = json_object_get(s, "maxLength")) && (json_int_t)n > json_integer_value(k))) {
		snprintf(why, whylen, "%s must have %lld..%lld characters", name_of(path),
		    (long long)json_integer_value(json_object_get(s, "minLength")),
		    json_object_get(s, "maxLength")
		        ? (long long)json_integer_value(json_object_get(s, "maxLength"))
		        : (long long)SIZE_MAX / 2);
		return -1;
	}
	if ((k = json_object_get(s, "pattern")) && (re = pattern(json_string_value(k))) != NULL &&
	    regexec(re, str, 0, NULL, 0) != 0) {
		snprintf(why, whylen, "%s does not match %s", name_of(path), json_string_value(k));
		return -1;
	}
	if ((k = json_object_get(s, "format")) != NULL) {
		int date = strcmp(json_string_value(k), "date-time") == 0;

		if (date ? !relay_is_datetime(str) : !is_uuid(str)) {
			snprintf(why, whylen, "%s must be %s", name_of(path),
			    date ? "an RFC 3339 date-time" : "a UUID");
			return -1;
		}
	}
	return 0;
}

static int
check_number(const json_t *s, const json_t *v, const char *path, char *why, size_t whylen)
{
	json_t *lo = json_object_get(s, "minimum"), *hi = json_object_get(s, "maximum");
	int below, above;

	/* Integers compare as integers: 10^17 and its neighbours are not
	 * exact as doubles. */
	if (json_is_integer(v)) {
		below = lo &&
		    (json_is_integer(lo) ? json_integer_value(v) < json_integer_value(lo)
		                         : (double)json_integer_value(v) < json_number_value(lo));
		above = hi &&
		    (json_is_integer(hi) ? json_integer_value(v) > json_integer_value(hi)
		                         : (double)json_integer_value(v) > json_number_value(hi));
	} else {
		below = lo && json_number_value(v) < json_number_value(lo);
		above = hi && json_number_value(v) > json_number_value(hi);
	}
	if (below || above) {
		snprintf(why, whylen, "%s is out of range", name_of(path));
		return -1;
	}
	return 0;
}

static int
check_object(const json_t *s, json_t *v, const char *path, char *why, size_t whylen)
{
	json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
	json_t *addl = json_object_get(s, "additionalProperties");
	json_t *names = json_object_get(s, "propertyNames"),
	       *maxp = json_object_get(s, "maxProperties");
	char sub[PATH_MAX_LEN];
	const char *k;
	json_t *e;
	size_t i;

	json_array_foreach(req, i, e)
	{
		if (json_object_get(v, json_string_value(e)) == NULL) {
			snprintf(why, whylen, "%s lacks %s", name_of(path), json_string_value(e));
			return -1;
		}
	}
	if (maxp && (json_int_t)json_object_size(v) > json_integer_value(maxp)) {
		snprintf(why, whylen, "%s has more than %lld members", name_of(path),
		    (long long)json_integer_value(maxp));
		return -1;
	}
	json_object_foreach(v, k, e)
	{
		const json_t *ps = props ? json_object_get(props, k) : NULL;

		snprintf(sub, sizeof(sub), "%s%s%.64s", path, path[0] ? "." : "", k);
		if (names) {
			json_t *kv = json_string(k);
			int rc = kv ? check(names, kv, sub, why, whylen) : -1;

			json_decref(kv);
			if (rc < 0)
				return -1;
		}
		if (ps != NULL) {
			if (check(ps, e, sub, why, whylen) < 0)
				return -1;
		} else if (json_is_false(addl)) {
			snprintf(why, whylen, "%s has unknown field %.64s", name_of(path), k);
			return -1;
		} else if (json_is_object(addl) && check(addl, e, sub, why, whylen) < 0) {
			return -1;
		}
	}
	return 0;
}

static int
check(const json_t *s, json_t *v, const char *path, char *why, size_t whylen)
{
	json_t *k, *e;
	size_t i, matched;
	char tmp[8];

	if (json_is_true(s))
		return 0;
	if (json_is_false(s)) {
		snprintf(why, whylen, "%s is not allowed", name_of(path));
		return -1;
	}
	if ((k = json_object_get(s, "$ref")) != NULL &&
	    check(file_root(json_string_value(k)), v, path, why, whylen) < 0)
		return -1;
	json_array_foreach(json_object_get(s, "allOf"), i, e)
	{
		if (check(e, v, path, why, whylen) < 0)
			return -1;
	}
	if ((k = json_object_get(s, "oneOf")) != NULL) {
		matched = 0;
		json_array_foreach(k, i, e) { matched += check(e, v, path, tmp, sizeof(tmp)) == 0; }
		if (matched != 1) {
			snprintf(why, whylen, "%s matches %s of its alternatives", name_of(path),
			    matched ? "more than one" : "none");
			return -1;
		}
	}
	if ((k = json_object_get(s, "type")) != NULL && check_type(k, v, path, why, whylen) < 0)
		return -1;
	if ((k = json_object_get(s, "const")) != NULL && !json_equal(k, v)) {
		char *want = json_dumps(k, JSON_ENCODE_ANY);

		snprintf(why, whylen, "%s must be %s", name_of(path), want ? want : "a constant");
		free(want);
		return -1;
	}
	if ((k = json_object_get(s, "enum")) != NULL) {
		matched = 0;
		json_array_foreach(k, i, e) { matched |= json_equal(e, v); }
		if (!matched) {
			char *got = json_dumps(v, JSON_ENCODE_ANY);

			snprintf(why, whylen, "%s: %.64s is not one of the allowed values",
			    name_of(path), got ? got : "?");
			free(got);
			return -1;
		}
	}
	if (json_is_string(v))
		return check_string(s, v, path, why, whylen);
	if (json_is_number(v))
		return check_number(s, v, path, why, whylen);
	if (json_is_object(v))
		return check_object(s, v, path, why, whylen);
	return 0;
}

int
relay_schema_check(const char *file, json_t *v, char *why, size_t whylen)
{
	json_t *root = loaded ? file_root(file) : NULL;

	if (root == NULL) {
		snprintf(why, whylen, "no schema %s", file);
		return -1;
	}
	return check(root, v, "", why, whylen);
}
