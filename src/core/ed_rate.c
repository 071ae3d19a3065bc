/* Request rate limiting: rates, the leaky bucket and its shared table. */
#include "ed_rate.h"
#include "ed_shm.h"

#include <stdatomic.h>
#include <sys/random.h>

typedef struct {
    uint64_t  key;      /* ed_rate_hash of the key; 0: free */
    ed_msec_t last;     /* when the key's last request passed */
    int64_t   excess;   /* milli-requests ahead of the rate since */
} ed_rate_slot_t;

/* Every access holds the lock: a lookup, its update and the choice of a
 * bucket for a new key are one step for all the workers, so a key is
 * never in two buckets and no update lands in a bucket given away. */
struct ed_rate_table_s {
    ed_shm_mutex_t    lock;
    uint64_t          hash_key[2];
    _Atomic ed_msec_t full_reported;
    ed_rate_slot_t    slots[ED_RATE_SLOTS];
};

int64_t
ed_rate_parse(const char *s, size_t len)
{
    int64_t n;

    if (len < 4 || s[len - 3] != 'r' || s[len - 2] != '/') {
        return -1;
    }
    n = ed_atoi(s, len - 3);
    if (n <= 0 || n > ED_RATE_MAX) {
        return -1;
    }
    switch (s[len - 1]) {
    case 's':
        return n * 1000;
    case 'm':
        /* Rounded down, as nginx does; never to zero. */
        return ed_max(n * 1000 / 60, 1);
    default:
        return -1;
    }
}

int
ed_rate_step(int64_t *excess, ed_msec_t elapsed, int64_t rate,
             int64_t burst)
{
    int64_t e;

    if (elapsed < 0) {
        elapsed = 0;
    }
    /* Past 2^33 ms (99 days) every bucket within bounds is empty; the
     * clamp keeps rate * elapsed within 64 bits. */
    if (elapsed > (INT64_C(1) << 33)) {
        elapsed = INT64_C(1) << 33;
    }
    /* nginx's formula: the excess is clamped after this request is
     * counted, so a key that keeps exactly to its rate never builds up
     * an excess (and passes even with burst 0). */
    e = *excess - rate * elapsed / 1000 + 1000;
    if (e < 0) {
        e = 0;
    }
    if (e > burst * 1000) {
        return ED_DECLINED;
    }
    *excess = e;
    return ED_OK;
}

static inline uint64_t
ed_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void
ed_sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ed_rotl(v[1], 13) ^ v[0];
    v[0] = ed_rotl(v[0], 32);
    v[2] += v[3];
    v[3] = ed_rotl(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = ed_rotl(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = ed_rotl(v[1], 17) ^ v[2];
    v[2] = ed_rotl(v[2], 32);
}

static inline void
ed_sipblock(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    ed_sipround(v);
    ed_sipround(v);
    v[0] ^= m;
}

uint64_t
ed_siphash(const uint64_t k[2], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t             v[4], m;
    size_t               i, j;

    v[0] = k[0] ^ UINT64_C(0x736f6d6570736575);
    v[1] = k[1] ^ UINT64_C(0x646f72616e646f6d);
    v[2] = k[0] ^ UINT64_C(0x6c7967656e657261);
    v[3] = k[1] ^ UINT64_C(0x7465646279746573);
    for (i = 0; i + 8 <= len; i += 8) {
        m = 0;
        for (j = 0; j < 8; j++) {
            m |= (uint64_t)p[i + j] << (8 * j);
        }
        ed_sipblock(v, m);
    }
    m = (uint64_t)len << 56;
    for (j = 0; i + j < len; j++) {
        m |= (uint64_t)p[i + j] << (8 * j);
    }
    ed_sipblock(v, m);
    v[2] ^= 0xff;
    for (j = 0; j < 4; j++) {
        ed_sipround(v);
    }
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

size_t
ed_rate_table_size(void)
{
    return sizeof(ed_rate_table_t);
}

ed_rate_table_t *
ed_rate_table_create(ed_pool_t *pool)
{
    ed_rate_table_t *t;

    t = ed_shm_alloc(pool, sizeof(ed_rate_table_t));
    if (t == NULL) {
        return NULL;
    }
    /* A key unknown to clients: they cannot pick keys of one set. */
    if (getrandom(t->hash_key, sizeof(t->hash_key), 0)
            != (ssize_t)sizeof(t->hash_key)
        || ed_shm_mutex_init(&t->lock) != ED_OK)
    {
        return NULL;
    }
    atomic_init(&t->full_reported, INT64_MIN / 2);
    return t;
}

uint64_t
ed_rate_hash(const ed_rate_table_t *t, const char *s, size_t len)
{
    uint64_t h = ed_siphash(t->hash_key, s, len);

    return h ? h : 1;
}

/* Whether a request now would find s's bucket empty, as a new key's is:
 * then giving the bucket to another key changes nothing for its own. */
static bool
ed_rate_refilled(const ed_rate_slot_t *s, ed_msec_t now, int64_t rate)
{
    int64_t excess = s->excess;

    return ed_rate_step(&excess, now - s->last, rate, 0) == ED_OK;
}

/* The bucket of hash; else the one it may take: a free or refilled one
 * in whichever of its two sets holds fewer live keys (two choices keep
 * the sets even). NULL when both sets are full of live keys. */
static ed_rate_slot_t *
ed_rate_find(ed_rate_table_t *t, uint64_t hash, ed_msec_t now, int64_t rate)
{
    ed_rate_slot_t *set[2], *take = NULL, *spare;
    size_t          i, j, live, fewest = SIZE_MAX;

    set[0] = &t->slots[ED_RATE_SET1(hash) * ED_RATE_WAYS];
    set[1] = &t->slots[ED_RATE_SET2(hash) * ED_RATE_WAYS];
    for (j = 0; j < 2; j++) {
        spare = NULL;
        live = 0;
        for (i = 0; i < ED_RATE_WAYS; i++) {
            if (set[j][i].key == hash) {
                return &set[j][i];
            }
            if (set[j][i].key == 0 || ed_rate_refilled(&set[j][i], now, rate))
            {
                spare = spare ? spare : &set[j][i];
            } else {
                live++;
            }
        }
        if (spare && live < fewest) {
            take = spare;
            fewest = live;
        }
    }
    return take;
}

int
ed_rate_table_take(ed_rate_table_t *t, uint64_t hash, ed_msec_t now,
                   int64_t rate, int64_t burst)
{
    ed_rate_slot_t *s;
    int64_t         excess;
    int             rc;

    if (ed_shm_lock(&t->lock) != ED_OK) {
        /* Never happens with a robust mutex made consistent; if it
         * did, refusing is the side that keeps every key to its rate. */
        return ED_DECLINED;
    }
    s = ed_rate_find(t, hash, now, rate);
    if (s == NULL) {
        rc = ED_AGAIN;
    } else if (s->key != hash) {
        /* A new key: this request fills an empty bucket. The key goes
         * in last, so a worker dying between the stores leaves the old
         * key (refilled anyway) with a bucket as full as this one. */
        s->last = now;
        s->excess = 0;
        s->key = hash;
        rc = ED_OK;
    } else {
        /* Workers' cached clocks differ by a few ms: a time before the
         * stored one is no time at all (as nginx), and the stored time
         * never moves back. */
        excess = s->excess;
        rc = ed_rate_step(&excess, now - s->last, rate, burst);
        if (rc == ED_OK) {
            s->excess = excess;
            s->last = ed_max(s->last, now);
        }
    }
    ed_shm_unlock(&t->lock);
    return rc;
}

bool
ed_rate_table_full_report(ed_rate_table_t *t, ed_msec_t now)
{
    ed_msec_t last = atomic_load(&t->full_reported);

    if (now - last < ED_RATE_FULL_REPORT) {
        return false;
    }
    return atomic_compare_exchange_strong(&t->full_reported, &last, now);
}
