/* ofc_read.h - typed field lookups over a parsed JSON document (internal).
 *
 * Why it exists: every reply the client reads (check-in, commands, config,
 * logs) is validated the same way: a field that is absent or null counts as
 * "not given", a field of the wrong type is an error, a string that does not
 * fit its buffer is an error. The protocol files share these helpers instead
 * of each growing its own copy. Not part of the public API.
 */
#ifndef OFC_READ_H
#define OFC_READ_H

#include <stddef.h>
#include <stdint.h>

#include "ofc_json.h"
#include "ofc_proto.h"

typedef struct ofc_reader {
    const char *js;
    const ofc_json_tok *toks;
} ofc_reader;

/* Absent and null: 0 (*idx = -1); wrong type: -1; else 1 and the index.
 * want_type 0 accepts any type. */
int ofc__field(const ofc_reader *r, int obj, const char *key, int want_type, int *idx);
/* A string member into out; absent is an error only when `required`. */
int ofc__get_str(const ofc_reader *r, int obj, const char *key, char *out, size_t cap, int required);
/* A string or integer id, echoed back with the same type. */
int ofc__get_id(const ofc_reader *r, int obj, const char *key, ofc_id *out, int required);
/* A non-negative integer <= max: 1 read, 0 absent/null, -1 invalid. */
int ofc__get_uint(const ofc_reader *r, int obj, const char *key, uint64_t max, uint64_t *out);
/* A boolean: 1 true, 0 false, -2 absent/null, -1 wrong type. */
int ofc__get_bool(const ofc_reader *r, int obj, const char *key);
/* 1 if every byte is visible ASCII (safe in an HTTP header or URL path). */
int ofc__header_safe(const char *s);

#endif /* OFC_READ_H */
