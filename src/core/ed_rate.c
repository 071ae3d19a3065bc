/* Request rate limiting: rates, the leaky bucket and its shared table. */
#include "ed_rate.h"
#include "ed_shm.h"

#include <stdatomic.h>

/* A bucket's state packs the time of its last passed request (msec since
 * the table's epoch, modulo 2^37: four years) over its excess (27 bits:
 * enough for ED_BURST_MAX * 1000), so one CAS updates both. */
#define ED_RATE_EXCESS_BITS 27
#define ED_RATE_TIME_BITS   37
#define ED_RATE_EXCESS_MASK ((UINT64_C(1) << ED_RATE_EXCESS_BITS) - 1)
#define ED_RATE_TIME_MASK   ((UINT64_C(1) << ED_RATE_TIME_BITS) - 1)
#define ED_RATE_TRIES       8

typedef struct {
    _Atomic uint64_t key;     /* ed_rate_hash of the key; 0: free */
    _Atomic uint64_t state;   /* 0: not written yet */
} ed_rate_slot_t;

struct ed_rate_table_s {
    ed_msec_t       epoch;
    ed_rate_slot_t  slots[ED_RATE_SLOTS];
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

uint64_t
ed_rate_hash(const char *s, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    size_t   i;

    /* FNV-1a, then a 64-bit finaliser so that the set index (the low
     * bits) depends on every byte. */
    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h ? h : 1;
}

ed_rate_table_t *
ed_rate_table_create(ed_pool_t *pool, ed_msec_t now)
{
    ed_rate_table_t *t;

    t = ed_shm_alloc(pool, sizeof(ed_rate_table_t));
    if (t) {
        /* A state of 0 means "not written yet": times start at 1. */
        t->epoch = now - 1;
    }
    return t;
}

static uint64_t
ed_rate_pack(uint64_t time, int64_t excess)
{
    return (time & ED_RATE_TIME_MASK) << ED_RATE_EXCESS_BITS
           | ((uint64_t)excess & ED_RATE_EXCESS_MASK);
}

/* The slot of hash in its set, claiming the oldest one when the key is
 * not there; NULL when another process won the race for it. *fresh is
 * set when the slot was claimed here. */
static ed_rate_slot_t *
ed_rate_slot(ed_rate_table_t *t, uint64_t hash, uint64_t now, bool *fresh)
{
    ed_rate_slot_t *set, *victim = NULL;
    uint64_t        k, st, age, oldest = 0, victim_key = 0;
    size_t          i;

    set = &t->slots[(hash % (ED_RATE_SLOTS / ED_RATE_WAYS)) * ED_RATE_WAYS];
    for (i = 0; i < ED_RATE_WAYS; i++) {
        k = atomic_load_explicit(&set[i].key, memory_order_acquire);
        if (k == hash) {
            *fresh = false;
            return &set[i];
        }
        st = atomic_load_explicit(&set[i].state, memory_order_relaxed);
        age = k == 0 ? UINT64_MAX
                     : (now - (st >> ED_RATE_EXCESS_BITS)) & ED_RATE_TIME_MASK;
        if (victim == NULL || age > oldest) {
            victim = &set[i];
            victim_key = k;
            oldest = age;
        }
    }
    if (!atomic_compare_exchange_strong(&victim->key, &victim_key, hash)) {
        return NULL;
    }
    *fresh = true;
    return victim;
}

int
ed_rate_table_take(ed_rate_table_t *t, uint64_t hash, ed_msec_t now,
                   int64_t rate, int64_t burst)
{
    ed_rate_slot_t *slot;
    uint64_t        st, tnow, last;
    int64_t         excess, d;
    bool            fresh;
    int             i;

    tnow = (uint64_t)(now - t->epoch) & ED_RATE_TIME_MASK;
    for (i = 0; i < ED_RATE_TRIES; i++) {
        slot = ed_rate_slot(t, hash, tnow, &fresh);
        if (slot == NULL) {
            continue;
        }
        if (fresh) {
            /* A new key starts with an empty bucket (this request). */
            atomic_store_explicit(&slot->state, ed_rate_pack(tnow, 0),
                                  memory_order_release);
            return ED_OK;
        }
        st = atomic_load_explicit(&slot->state, memory_order_acquire);
        last = st >> ED_RATE_EXCESS_BITS;
        excess = (int64_t)(st & ED_RATE_EXCESS_MASK);
        /* Workers' cached clocks differ by a few ms: a time before the
         * stored one is no time at all (as nginx), and the stored time
         * never moves back. The difference is signed in 37 bits. */
        d = (int64_t)(((tnow - last) & ED_RATE_TIME_MASK)
                      << (64 - ED_RATE_TIME_BITS))
            >> (64 - ED_RATE_TIME_BITS);
        if (ed_rate_step(&excess, st ? d : INT64_MAX, rate, burst)
            != ED_OK)
        {
            return ED_DECLINED;
        }
        if (atomic_compare_exchange_strong(&slot->state, &st,
                                           ed_rate_pack(d < 0 ? last : tnow,
                                                        excess)))
        {
            return ED_OK;
        }
    }
    /* Endless contention on one set: let the request through rather than
     * spin in the event loop. */
    return ED_OK;
}
