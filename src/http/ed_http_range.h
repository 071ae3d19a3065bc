/* Range and conditional requests (RFC 9110 sections 13 and 14) and
 * Accept-Encoding: parsing and evaluation without I/O, so they can be
 * tested and fuzzed alone. */
#ifndef ED_HTTP_RANGE_H
#define ED_HTTP_RANGE_H

#include "ed_core.h"

/* More range-specs than this in one header: the header is ignored. */
#define ED_HTTP_RANGES_MAX 16

typedef struct {
    int64_t start;   /* first byte */
    int64_t end;     /* one past the last byte */
} ed_http_range_t;

/* Results of ed_http_range_parse. */
enum {
    ED_HTTP_RANGE_OK = 0,        /* ranges to send (206) */
    ED_HTTP_RANGE_IGNORE,        /* send the whole representation (200) */
    ED_HTTP_RANGE_UNSATISFIABLE  /* 416 with Content-Range: bytes SIZE */
};

/* Parses a Range field value for a representation of size bytes into
 * out[0..max), keeping the satisfiable ranges in the order given (ends
 * clamped to size). Returns:
 *   ED_HTTP_RANGE_OK             *n >= 1 ranges, none overlapping;
 *   ED_HTTP_RANGE_IGNORE         invalid syntax, a unit other than bytes,
 *                                more than max range-specs, overlapping
 *                                ranges (amplification), or an empty
 *                                representation asked for a suffix;
 *   ED_HTTP_RANGE_UNSATISFIABLE  valid, but no range is satisfiable. */
int ed_http_range_parse(const char *s, size_t len, int64_t size,
                        ed_http_range_t *out, size_t max, size_t *n);

/* The request's conditional header fields; NULL when absent. */
typedef struct {
    const ed_str_t *if_match;
    const ed_str_t *if_none_match;
    const ed_str_t *if_modified_since;
    const ed_str_t *if_unmodified_since;
} ed_http_cond_t;

/* Whether an If-Match / If-None-Match value lists etag (with its quotes;
 * NULL or len 0 when the representation has none): "*" matches any
 * current representation (callers have one); weak selects the weak
 * comparison (W/"x" equals "x"), else W/ tags never match. A malformed
 * list matches nothing after the error. Returns true or false. */
bool ed_http_etag_match(const char *list, size_t len, const ed_str_t *etag,
                        bool weak);

/* Evaluates the preconditions in RFC 9110 13.2.2 order for a
 * representation with strong validator etag (len 0: none) and
 * modification time mtime (-1: not used). get_head: the method is GET or
 * HEAD. Returns 0 to go on, 304 (Not Modified) or 412 (Precondition
 * Failed). */
int ed_http_cond_eval(const ed_http_cond_t *c, const ed_str_t *etag,
                      time_t mtime, bool get_head);

/* If-Range: whether a Range may be honoured. value is an entity-tag
 * (strong comparison) or an HTTP-date (equal to mtime). Returns true or
 * false (also for a weak tag, an invalid date, or no validator). */
bool ed_http_cond_if_range(const ed_str_t *value, const ed_str_t *etag,
                           time_t mtime);

/* Whether an Accept-Encoding value (NULL: no header) accepts coding
 * (case-insensitive; x-gzip counts as gzip): its first mention has
 * q > 0, or it is not mentioned and "*" has q > 0. An invalid qvalue
 * counts as q=0; a malformed element is skipped. Returns true or
 * false. */
bool ed_http_accepts_coding(const ed_str_t *ae, const char *coding,
                            size_t len);

#endif /* ED_HTTP_RANGE_H */
