/* Counters of things in progress per key, shared by processes: a table in
 * shared memory under one robust mutex, each counter with what each
 * worker holds of it (see ed_slots.h). */
#include "ed_slots.h"
#include "ed_rate.h"
#include "ed_shm.h"

#include <stdatomic.h>
#include <sys/random.h>

/* A counter: followed in memory by uint16_t held[workers]. Invariant
 * kept by every update: count is the sum of held[], and hash is 0 (free)
 * when count is 0. */
typedef struct {
    uint64_t hash;
    uint32_t count;
    uint32_t pad;
} ed_slot_t;

struct ed_slots_s {
    ed_shm_mutex_t    lock;
    uint64_t          hash_key[2];
    _Atomic ed_msec_t full_reported;
    unsigned          workers;
    size_t            nsets;    /* a power of two */
    size_t            stride;   /* bytes per counter */
    char             *counters; /* this process's address of them */
};

#define ed_slots_hdr ed_align(sizeof(ed_slots_t), 64)

static size_t
ed_slots_stride(unsigned workers)
{
    return ed_align(sizeof(ed_slot_t) + 2 * (size_t)workers, 8);
}

/* The sets a table of size bytes has (a power of two), 0 if below 2. */
static size_t
ed_slots_sets(size_t size, unsigned workers)
{
    size_t n, sets = 1;

    if (size <= ed_slots_hdr || workers == 0) {
        return 0;
    }
    n = (size - ed_slots_hdr) / ed_slots_stride(workers) / ED_SLOTS_WAYS;
    while (sets * 2 <= n) {
        sets *= 2;
    }
    return n >= 2 ? sets : 0;
}

size_t
ed_slots_capacity(size_t size, unsigned workers)
{
    return ed_slots_sets(size, workers) * ED_SLOTS_WAYS;
}

ed_slots_t *
ed_slots_create(ed_pool_t *pool, size_t size, unsigned workers)
{
    ed_slots_t *t;
    size_t      sets = ed_slots_sets(size, workers);

    if (sets == 0) {
        errno = EINVAL;
        return NULL;
    }
    t = ed_shm_alloc(pool, size);
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
    t->workers = workers;
    t->nsets = sets;
    t->stride = ed_slots_stride(workers);
    /* Mapped before the fork, at the same address in every process. */
    t->counters = (char *)t + ed_slots_hdr;
    return t;
}

uint64_t
ed_slots_hash(const ed_slots_t *t, const char *s, size_t len)
{
    uint64_t h = ed_siphash(t->hash_key, s, len);

    return h ? h : 1;
}

#define ed_slot_at(t, i) ((ed_slot_t *)((t)->counters + (i) * (t)->stride))
#define ed_slot_held(c) ((uint16_t *)((char *)(c) + sizeof(ed_slot_t)))

/* The first counter index of a set. */
static size_t
ed_slots_set(const ed_slots_t *t, uint64_t hash, int which)
{
    size_t s1 = (size_t)(hash & (t->nsets - 1)), s2;

    if (!which) {
        return s1 * ED_SLOTS_WAYS;
    }
    /* Never the first set again: a key always has two to choose from. */
    s2 = (size_t)((hash >> 32) & (t->nsets - 1));
    if (s2 == s1) {
        s2 = (s1 + 1) & (t->nsets - 1);
    }
    return s2 * ED_SLOTS_WAYS;
}

int
ed_slots_acquire(ed_slots_t *t, uint64_t hash, unsigned id, uint32_t max,
                 uint32_t *index)
{
    ed_slot_t *c, *freec = NULL;
    size_t     s, i, base, used[2] = { 0, 0 }, free_i = 0;
    int        rc, first, k;

    if (id >= t->workers || ed_shm_lock(&t->lock) != ED_OK) {
        return ED_ERROR;
    }
    for (s = 0; s < 2; s++) {
        base = ed_slots_set(t, hash, (int)s);
        for (i = base; i < base + ED_SLOTS_WAYS; i++) {
            c = ed_slot_at(t, i);
            if (c->hash == hash) {
                if (c->count >= max
                    || ed_slot_held(c)[id] >= ED_SLOTS_PER_WORKER)
                {
                    rc = ED_DECLINED;
                } else {
                    ed_slot_held(c)[id]++;
                    c->count++;
                    *index = (uint32_t)i;
                    rc = ED_OK;
                }
                ed_shm_unlock(&t->lock);
                return rc;
            }
            if (c->hash) {
                used[s]++;
            }
        }
    }
    /* A new key: a free counter in whichever set holds fewer (two choices
     * keep the sets even). */
    first = used[1] < used[0] ? 1 : 0;
    for (k = 0; k < 2 && freec == NULL; k++) {
        base = ed_slots_set(t, hash, k == 0 ? first : !first);
        for (i = base; i < base + ED_SLOTS_WAYS && freec == NULL; i++) {
            c = ed_slot_at(t, i);
            if (c->hash == 0) {
                freec = c;
                free_i = i;
            }
        }
    }
    if (freec == NULL) {
        ed_shm_unlock(&t->lock);
        return ED_AGAIN;
    }
    /* hash last: a prefix of these stores leaves the counter free. */
    memset(ed_slot_held(freec), 0, 2 * (size_t)t->workers);
    ed_slot_held(freec)[id] = 1;
    freec->count = 1;
    freec->hash = hash;
    *index = (uint32_t)free_i;
    ed_shm_unlock(&t->lock);
    return ED_OK;
}

void
ed_slots_release(ed_slots_t *t, uint32_t index, uint64_t hash, unsigned id)
{
    ed_slot_t *c;

    if (id >= t->workers || index >= t->nsets * ED_SLOTS_WAYS
        || ed_shm_lock(&t->lock) != ED_OK)
    {
        return;
    }
    c = ed_slot_at(t, index);
    /* Not ours any more when the master gave this worker's slots back
     * (never while it lives), or the counter went to another key. */
    if (c->hash == hash && ed_slot_held(c)[id] > 0 && c->count > 0) {
        ed_slot_held(c)[id]--;
        c->count--;
        if (c->count == 0) {
            c->hash = 0;
        }
    }
    ed_shm_unlock(&t->lock);
}

void
ed_slots_worker_gone(ed_slots_t *t, unsigned id)
{
    ed_slot_t *c;
    uint16_t  *held;
    uint32_t   sum;
    size_t     i, w;

    if (ed_shm_lock(&t->lock) != ED_OK) {
        return;
    }
    /* Every counter is made whole again: the worker may have died in the
     * middle of an update, leaving count and held[] apart. */
    for (i = 0; i < t->nsets * ED_SLOTS_WAYS; i++) {
        c = ed_slot_at(t, i);
        held = ed_slot_held(c);
        if (id < t->workers) {
            held[id] = 0;
        }
        if (c->hash == 0 && c->count == 0) {
            continue;
        }
        for (sum = 0, w = 0; w < t->workers; w++) {
            sum += held[w];
        }
        c->count = sum;
        if (sum == 0) {
            c->hash = 0;
        }
    }
    ed_shm_unlock(&t->lock);
}

uint32_t
ed_slots_held(ed_slots_t *t, uint64_t hash)
{
    uint32_t n = 0;
    size_t   s, i, base;

    if (ed_shm_lock(&t->lock) != ED_OK) {
        return 0;
    }
    for (s = 0; s < 2 && n == 0; s++) {
        base = ed_slots_set(t, hash, (int)s);
        for (i = base; i < base + ED_SLOTS_WAYS; i++) {
            if (ed_slot_at(t, i)->hash == hash) {
                n = ed_slot_at(t, i)->count;
                break;
            }
        }
    }
    ed_shm_unlock(&t->lock);
    return n;
}

bool
ed_slots_full_report(ed_slots_t *t, ed_msec_t now)
{
    ed_msec_t last = atomic_load(&t->full_reported);

    if (now - last < ED_SLOTS_FULL_REPORT) {
        return false;
    }
    return atomic_compare_exchange_strong(&t->full_reported, &last, now);
}
