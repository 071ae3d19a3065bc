/* Request rate limiting shared by processes: rates, the leaky-bucket
 * arithmetic (nginx's limit_req, without delaying), and a fixed-size
 * table of buckets in shared memory. */
#ifndef ED_RATE_H
#define ED_RATE_H

#include "ed_core.h"

/* Bounds that keep the arithmetic inside 64 bits. */
#define ED_RATE_MAX   1000000   /* requests per second */
#define ED_BURST_MAX  100000

/* Buckets per table, in sets of ED_RATE_WAYS. A key may live in one of
 * two sets: ED_RATE_SETS_OF(hash) gives them (the first from the low
 * bits of the hash, the second from bits 32 and up). */
#define ED_RATE_SLOTS 16384
#define ED_RATE_WAYS  16
#define ED_RATE_SETS  (ED_RATE_SLOTS / ED_RATE_WAYS)
#define ED_RATE_SET1(hash) ((size_t)((hash) & (ED_RATE_SETS - 1)))
#define ED_RATE_SET2(hash) ((size_t)(((hash) >> 32) & (ED_RATE_SETS - 1)))

/* How often, at most, a table says it is full (ed_rate_table_full_report). */
#define ED_RATE_FULL_REPORT 60000

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

/* SipHash-2-4 of len bytes under the 128-bit key k. */
uint64_t ed_siphash(const uint64_t k[2], const void *data, size_t len);

/* Makes a table of ED_RATE_SLOTS buckets in shared memory (made before
 * the workers fork; unmapped with pool), with a random hash key of its
 * own. NULL on failure (errno). */
ed_rate_table_t *ed_rate_table_create(ed_pool_t *pool);
/* The bytes of one table in shared memory (the memory estimate). */
size_t ed_rate_table_size(void);
/* The hash that stands for a key in table t (keyed by t, so that no
 * client can choose keys that fall in one set; never 0). */
uint64_t ed_rate_hash(const ed_rate_table_t *t, const char *s, size_t len);
/* One request of key hash at now, every request of a table having the
 * same rate and burst: ED_OK (passes), ED_DECLINED (over rate plus
 * burst), or ED_AGAIN: the key has no bucket and none of the buckets it
 * may take is free or refilled (the table is full there), so the
 * request is refused too. A key's bucket is only ever given to another
 * key once it has refilled, when forgetting it changes nothing: however
 * many keys come, none gets more than its rate. */
int ed_rate_table_take(ed_rate_table_t *t, uint64_t hash, ed_msec_t now,
                       int64_t rate, int64_t burst);
/* True for the first call at or after ED_RATE_FULL_REPORT ms since the
 * last true one, across every process: whether to log that t is full. */
bool ed_rate_table_full_report(ed_rate_table_t *t, ed_msec_t now);

#endif /* ED_RATE_H */
