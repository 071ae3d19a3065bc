/* Request rate limiting shared by processes: rates, the leaky-bucket
 * arithmetic (nginx's limit_req, without delaying), and a fixed-size
 * lock-free table of buckets in shared memory. */
#ifndef ED_RATE_H
#define ED_RATE_H

#include "ed_core.h"

/* Bounds that keep the arithmetic inside 64 bits. */
#define ED_RATE_MAX   1000000   /* requests per second */
#define ED_BURST_MAX  100000

/* Buckets per table: 4-way sets, the oldest bucket of a full set is
 * reused for a new key. */
#define ED_RATE_SLOTS 16384
#define ED_RATE_WAYS  4

typedef struct ed_rate_table_s ed_rate_table_t;

/* Parses "10r/s" or "30r/m" into milli-requests per second (10000, 500).
 * Returns -1 when invalid, zero or over ED_RATE_MAX. */
int64_t ed_rate_parse(const char *s, size_t len);

/* One request against a bucket: *excess is how far (in milli-requests)
 * the key is ahead of its rate after the last request, elapsed the time
 * since then. The request passes when the new excess stays within burst
 * requests: ED_OK with *excess updated; otherwise ED_DECLINED with
 * *excess unchanged (a refused request costs nothing). */
int ed_rate_step(int64_t *excess, ed_msec_t elapsed, int64_t rate,
                 int64_t burst);

/* The hash that stands for a key in the table (never 0). */
uint64_t ed_rate_hash(const char *s, size_t len);

/* Makes a table of ED_RATE_SLOTS buckets in shared memory (made before
 * the workers fork; unmapped with pool). NULL on failure (errno). */
ed_rate_table_t *ed_rate_table_create(ed_pool_t *pool, ed_msec_t now);
/* One request of key hash at now: ED_OK (passes) or ED_DECLINED (over
 * rate plus burst). Lock-free: under contention on one bucket a request
 * may be let through rather than wait (at most a few CAS retries). */
int ed_rate_table_take(ed_rate_table_t *t, uint64_t hash, ed_msec_t now,
                       int64_t rate, int64_t burst);

#endif /* ED_RATE_H */
