/* SPDX-License-Identifier: MIT */
/*
 * relay_schema.h — the JSON Schemas of schemas/ (compiled into the relay)
 * applied to values, so that what the relay puts on a topic is checked
 * against the very files consumers validate with.
 *
 * Contract:
 *  - The checker implements the subset of JSON Schema 2020-12 those files
 *    use: type, const, enum, properties, required, additionalProperties
 *    (false or a schema), propertyNames, maxProperties, minLength and
 *    maxLength (in code points), minimum, maximum, pattern (POSIX extended
 *    regular expressions: the files' patterns are written in the common
 *    subset), format (date-time, uuid), allOf, oneOf, and $ref to another
 *    file by its name. Annotations ($schema, $id, $comment, title,
 *    description) are ignored. Any other keyword makes relay_schema_load()
 *    fail: a rule the checker does not know is never silently skipped.
 *  - relay_schema_load() parses the bundle once (idempotent, not
 *    thread-safe: call it before the threads start); 0, or -1 with err.
 *  - relay_schema_check() checks v against the schema file (e.g.
 *    "payment-authorized.schema.json"): 0, or -1 with the first violation
 *    in why, naming the member by its path ("payload.currency ...").
 *  - relay_schema_file() maps an event type to its schema's file name
 *    (PaymentAuthorized -> payment-authorized.schema.json); -1 if the name
 *    cannot be one.
 */
#ifndef PAYMENTD_RELAY_SCHEMA_H
#define PAYMENTD_RELAY_SCHEMA_H

#include <stddef.h>
#include <jansson.h>

int relay_schema_load(char *err, size_t errlen);
int relay_schema_has(const char *file);
int relay_schema_check(const char *file, json_t *v, char *why, size_t whylen);
int relay_schema_file(const char *event_type, char *out, size_t outlen);

#endif
