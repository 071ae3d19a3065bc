/* The cache's shared index: one zone per cache, made by the master at
 * load and shared by the workers. A fixed table of entries (hash ->
 * size, last use, uses), chained by hash and kept in LRU order. Its
 * lock is held over memory only: files are opened, written and removed
 * by the callers, after it is released. Writes under the lock keep the
 * lists walkable after any prefix of them, so that a worker dying
 * inside one (the robust mutex hands the lock over) leaves at worst a
 * lost entry. */
#include "ed_http_cache.h"

#include <signal.h>

#define ED_CACHE_NIL 0u   /* entry numbers are 1-based */

typedef struct {
    uint8_t   hash[ED_CACHE_HASH_LEN];
    uint32_t  chain;       /* next in the bucket */
    uint32_t  prev;        /* LRU: toward the most recent */
    uint32_t  next;        /* LRU: toward the least recent */
    uint32_t  uses;
    int64_t   fsize;       /* bytes on disk; 0: no file known */
    int64_t   used;        /* unix time of the last use */
    uint32_t  live;
    /* cache_lock: a request of process fill_pid fetches the key into
     * .tmp/<fill_pid>.<fill_serial> until fill_until (unix time); 0:
     * none. After a response found not storable, no request waits for
     * the key until hfm_until (hit-for-miss). */
    int32_t   fill_pid;
    uint32_t  fill_serial;
    uint32_t  gen;         /* changed with every change of the file known
                            * (stored, loaded, purged) or of the entry */
    int64_t   fill_until;
    int64_t   hfm_until;
    int64_t   purged;      /* PURGE at this time (msec): older fetches
                            * are not stored */
} ed_cache_node_t;

struct ed_http_cache_zone_s {
    ed_shm_mutex_t    mutex;
    uint32_t          ok;          /* the mutex is usable */
    uint32_t          nnodes;
    uint32_t          nbuckets;
    uint32_t          free;        /* free list, through chain */
    uint32_t          top;         /* entries ever used: the rest of the
                                    * table is untouched (not paged in) */
    uint32_t          head;        /* most recently used */
    uint32_t          tail;        /* least recently used */
    uint64_t          count;       /* entries with a file */
    uint64_t          size;        /* their bytes */
    uint64_t          evictions;
    uint32_t          gen;         /* the last generation given */
    _Atomic uint32_t  write_failed;
    _Atomic uint32_t  evict_asked; /* a worker asks the manager to evict */
    _Atomic uint64_t  requests[ED_CACHE_STATUSES];
};

#define ed_cache_buckets(z) ((uint32_t *)((char *)(z) + sizeof(*(z))))
#define ed_cache_nodes(z)                                                    \
    ((ed_cache_node_t *)(void *)(ed_cache_buckets(z) + (z)->nbuckets) - 1)

size_t
ed_http_cache_zone_size(size_t keys_zone)
{
    return keys_zone;
}

size_t
ed_http_cache_zone_entries(const ed_http_cache_zone_t *z)
{
    return z->nnodes;
}

int
ed_http_cache_index_init(ed_http_cache_zone_t *z, size_t size)
{
    ed_cache_node_t *nodes;
    size_t           n;

    if (size < sizeof(*z) + 64 * (sizeof(ed_cache_node_t) + 4)) {
        return ED_ERROR;
    }
    /* About ED_CACHE_NODE_BYTES of keys_zone per entry: the node, its
     * bucket, and room left for what a later format may keep. */
    n = (size - sizeof(*z)) / ED_CACHE_NODE_BYTES;
    if (n > UINT32_MAX - 1) {
        n = UINT32_MAX - 1;
    }
    z->nnodes = (uint32_t)n;
    /* Even, so that the entries after the buckets are 8-byte aligned. */
    z->nbuckets = (uint32_t)(n + (n & 1));
    nodes = ed_cache_nodes(z);
    if ((char *)(nodes + n + 1) > (char *)z + size) {
        return ED_ERROR;
    }
    z->free = ED_CACHE_NIL;
    z->top = 0;
    if (ed_shm_mutex_init(&z->mutex) != ED_OK) {
        return ED_ERROR;
    }
    z->ok = 1;
    return ED_OK;
}

static uint32_t
ed_cache_bucket(const ed_http_cache_zone_t *z, const uint8_t *hash)
{
    uint32_t h;

    memcpy(&h, hash, sizeof(h));
    return h % z->nbuckets;
}

static uint32_t
ed_cache_find(ed_http_cache_zone_t *z, const uint8_t *hash)
{
    ed_cache_node_t *nodes = ed_cache_nodes(z);
    uint32_t         i;

    for (i = ed_cache_buckets(z)[ed_cache_bucket(z, hash)];
         i != ED_CACHE_NIL; i = nodes[i].chain)
    {
        if (memcmp(nodes[i].hash, hash, ED_CACHE_HASH_LEN) == 0) {
            return i;
        }
    }
    return ED_CACHE_NIL;
}

/* A new generation for entry i: what workers checked of its file before
 * no longer counts. Never 0 (the answer for "no file known"). */
static void
ed_cache_new_gen(ed_http_cache_zone_t *z, uint32_t i)
{
    if (++z->gen == 0) {
        z->gen = 1;
    }
    ed_cache_nodes(z)[i].gen = z->gen;
}

static void
ed_cache_lru_unlink(ed_http_cache_zone_t *z, uint32_t i)
{
    ed_cache_node_t *nodes = ed_cache_nodes(z);

    if (nodes[i].prev) {
        nodes[nodes[i].prev].next = nodes[i].next;
    } else {
        z->head = nodes[i].next;
    }
    if (nodes[i].next) {
        nodes[nodes[i].next].prev = nodes[i].prev;
    } else {
        z->tail = nodes[i].prev;
    }
    nodes[i].prev = nodes[i].next = ED_CACHE_NIL;
}

static void
ed_cache_lru_front(ed_http_cache_zone_t *z, uint32_t i)
{
    ed_cache_node_t *nodes = ed_cache_nodes(z);

    nodes[i].prev = ED_CACHE_NIL;
    nodes[i].next = z->head;
    if (z->head) {
        nodes[z->head].prev = i;
    } else {
        z->tail = i;
    }
    z->head = i;
}

/* Takes entry i out of its bucket and the LRU, onto the free list. */
static void
ed_cache_drop(ed_http_cache_zone_t *z, uint32_t i)
{
    ed_cache_node_t *nodes = ed_cache_nodes(z);
    uint32_t        *b = &ed_cache_buckets(z)[ed_cache_bucket(z,
                                                              nodes[i].hash)];

    while (*b != ED_CACHE_NIL && *b != i) {
        b = &nodes[*b].chain;
    }
    if (*b == i) {
        *b = nodes[i].chain;
    }
    ed_cache_lru_unlink(z, i);
    if (nodes[i].fsize > 0) {
        z->count--;
        z->size -= (uint64_t)nodes[i].fsize;
    }
    nodes[i].live = 0;
    nodes[i].fsize = 0;
    nodes[i].fill_pid = 0;
    nodes[i].hfm_until = 0;
    nodes[i].chain = z->free;
    z->free = i;
}

/* The entry of hash, made (first in the LRU) when new; a full zone
 * drops its least recently used entry, whose hash goes to dropped when
 * it had a file. Under the lock. */
static uint32_t
ed_cache_get(ed_http_cache_zone_t *z, const uint8_t *hash, int64_t now,
             uint8_t *dropped, size_t *ndropped)
{
    ed_cache_node_t *nodes = ed_cache_nodes(z);
    uint32_t         i, *b;

    i = ed_cache_find(z, hash);
    if (i != ED_CACHE_NIL) {
        ed_cache_lru_unlink(z, i);
    } else {
        if (z->free == ED_CACHE_NIL && z->top < z->nnodes) {
            nodes[++z->top].chain = ED_CACHE_NIL;
            z->free = z->top;
        }
        if (z->free == ED_CACHE_NIL) {
            /* A full zone: the least recently used entry goes now; a
             * request never waits for room. */
            i = z->tail;
            if (nodes[i].fsize > 0) {
                memcpy(dropped, nodes[i].hash, ED_CACHE_HASH_LEN);
                *ndropped = 1;
                z->evictions++;
            }
            ed_cache_drop(z, i);
        }
        i = z->free;
        z->free = nodes[i].chain;
        memcpy(nodes[i].hash, hash, ED_CACHE_HASH_LEN);
        nodes[i].uses = 0;
        nodes[i].fsize = 0;
        nodes[i].fill_pid = 0;
        nodes[i].hfm_until = 0;
        nodes[i].purged = 0;
        nodes[i].live = 1;
        ed_cache_new_gen(z, i);
        b = &ed_cache_buckets(z)[ed_cache_bucket(z, hash)];
        nodes[i].chain = *b;
        *b = i;
    }
    ed_cache_lru_front(z, i);
    nodes[i].used = now;
    return i;
}

uint32_t
ed_http_cache_index_gen(ed_http_cache_zone_t *z, const uint8_t *hash)
{
    ed_cache_node_t *nodes;
    uint32_t         i, gen = 0;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return 0;
    }
    nodes = ed_cache_nodes(z);
    i = ed_cache_find(z, hash);
    if (i != ED_CACHE_NIL && nodes[i].fsize > 0) {
        gen = nodes[i].gen;
    }
    ed_shm_unlock(&z->mutex);
    return gen;
}

uint32_t
ed_http_cache_index_use(ed_http_cache_zone_t *z, const uint8_t *hash,
                        int64_t now, uint8_t *dropped, size_t *ndropped)
{
    uint32_t gen;

    return ed_http_cache_index_use_gen(z, hash, now, &gen, dropped,
                                       ndropped);
}

uint32_t
ed_http_cache_index_use_gen(ed_http_cache_zone_t *z, const uint8_t *hash,
                            int64_t now, uint32_t *gen, uint8_t *dropped,
                            size_t *ndropped)
{
    ed_cache_node_t *nodes;
    uint32_t         i, uses;

    *ndropped = 0;
    *gen = 0;
    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return 0;
    }
    nodes = ed_cache_nodes(z);
    i = ed_cache_get(z, hash, now, dropped, ndropped);
    if (nodes[i].uses < UINT32_MAX) {
        nodes[i].uses++;
    }
    uses = nodes[i].uses;
    if (nodes[i].fsize > 0) {
        *gen = nodes[i].gen;
    }
    ed_shm_unlock(&z->mutex);
    return uses;
}

int
ed_http_cache_index_lock(ed_http_cache_zone_t *z, const uint8_t *hash,
                         int64_t now, int64_t until, int32_t pid,
                         uint32_t serial, int32_t *opid, uint32_t *oserial,
                         uint8_t *dropped, size_t *ndropped)
{
    ed_cache_node_t *nodes;
    uint32_t         i;
    int              rc;

    *ndropped = 0;
    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return ED_DECLINED;
    }
    nodes = ed_cache_nodes(z);
    i = ed_cache_get(z, hash, now, dropped, ndropped);
    if (nodes[i].hfm_until > now) {
        rc = ED_DECLINED;
    } else if (nodes[i].fill_pid != 0 && nodes[i].fill_until > now
               && (nodes[i].fill_pid == pid
                   || kill((pid_t)nodes[i].fill_pid, 0) == 0
                   || errno != ESRCH))
    {
        /* A live holder: wait. One that died (a worker killed
         * mid-fill) never unlocks and the cache manager removes its
         * temp file: waiting would spin on the missing file until
         * fill_until, so the fill is taken over (below). */
        *opid = nodes[i].fill_pid;
        *oserial = nodes[i].fill_serial;
        rc = ED_AGAIN;
    } else {
        nodes[i].fill_serial = serial;
        nodes[i].fill_until = until;
        nodes[i].fill_pid = pid;
        rc = ED_OK;
    }
    ed_shm_unlock(&z->mutex);
    return rc;
}

void
ed_http_cache_index_unlock(ed_http_cache_zone_t *z, const uint8_t *hash,
                           int32_t pid, uint32_t serial, int64_t hfm_until)
{
    ed_cache_node_t *nodes;
    uint32_t         i;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return;
    }
    nodes = ed_cache_nodes(z);
    i = ed_cache_find(z, hash);
    if (i != ED_CACHE_NIL && nodes[i].fill_pid == pid
        && nodes[i].fill_serial == serial)
    {
        nodes[i].fill_pid = 0;
        if (hfm_until > nodes[i].hfm_until) {
            nodes[i].hfm_until = hfm_until;
        }
    }
    ed_shm_unlock(&z->mutex);
}

/* Takes entries out from the least recent end, never keep: while the
 * stored bytes exceed max_size, entries unused since now - inactive,
 * and force more. Their hashes go to out[0..max). Under the lock. */
static size_t
ed_cache_evict(ed_http_cache_zone_t *z, uint32_t keep, int64_t now,
               uint64_t max_size, int64_t inactive, size_t force,
               uint8_t *out, size_t max)
{
    ed_cache_node_t *nodes = ed_cache_nodes(z);
    uint32_t         t, first = ED_CACHE_NIL;
    size_t           n = 0;

    while (n < max && (t = z->tail) != ED_CACHE_NIL && t != keep
           && (z->size > max_size || nodes[t].used < now - inactive
               || n < force))
    {
        if (nodes[t].fill_pid != 0 && nodes[t].fill_until > now
            && nodes[t].fsize == 0)
        {
            /* Being fetched: not evicted (it has no file yet), but moved
             * up so that the walk goes on. Back at the first one moved,
             * only fetches are left: with force (min_free) the walk
             * would go round them forever, holding the lock. */
            if (t == first) {
                break;
            }
            if (first == ED_CACHE_NIL) {
                first = t;
            }
            ed_cache_lru_unlink(z, t);
            ed_cache_lru_front(z, t);
            nodes[t].used = now;
            continue;
        }
        if (nodes[t].fsize > 0) {
            memcpy(out + n * ED_CACHE_HASH_LEN, nodes[t].hash,
                   ED_CACHE_HASH_LEN);
            n++;
            z->evictions++;
        }
        ed_cache_drop(z, t);
    }
    return n;
}

size_t
ed_http_cache_index_stored(ed_http_cache_zone_t *z, const uint8_t *hash,
                           int64_t fsize, int64_t now, uint64_t max_size,
                           int64_t inactive, uint8_t *out, size_t max)
{
    ed_cache_node_t *nodes;
    uint32_t         i;
    size_t           n;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return 0;
    }
    nodes = ed_cache_nodes(z);
    i = ed_cache_find(z, hash);
    if (i != ED_CACHE_NIL) {
        if (nodes[i].fsize > 0) {
            z->count--;
            z->size -= (uint64_t)nodes[i].fsize;
        }
        nodes[i].fsize = fsize > 0 ? fsize : 1;
        nodes[i].used = now;
        z->count++;
        z->size += (uint64_t)nodes[i].fsize;
        ed_cache_new_gen(z, i);
    }
    n = ed_cache_evict(z, i, now, max_size, inactive, 0, out, max);
    ed_shm_unlock(&z->mutex);
    return n;
}

size_t
ed_http_cache_index_evict(ed_http_cache_zone_t *z, int64_t now,
                          uint64_t max_size, int64_t inactive, size_t force,
                          uint8_t *out, size_t max)
{
    size_t n;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return 0;
    }
    n = ed_cache_evict(z, ED_CACHE_NIL, now, max_size, inactive, force, out,
                       max);
    ed_shm_unlock(&z->mutex);
    return n;
}

bool
ed_http_cache_index_load(ed_http_cache_zone_t *z, const uint8_t *hash,
                         int64_t fsize, int64_t used, uint8_t *dropped,
                         size_t *ndropped)
{
    ed_cache_node_t *nodes;
    uint32_t         i;
    bool             added = false;

    *ndropped = 0;
    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return false;
    }
    nodes = ed_cache_nodes(z);
    i = ed_cache_find(z, hash);
    if (i == ED_CACHE_NIL) {
        i = ed_cache_get(z, hash, used, dropped, ndropped);
        nodes[i].fsize = fsize > 0 ? fsize : 1;
        z->count++;
        z->size += (uint64_t)nodes[i].fsize;
        added = true;
    } else if (nodes[i].fsize == 0) {
        /* Known from a request that found the file without loading it. */
        nodes[i].fsize = fsize > 0 ? fsize : 1;
        z->count++;
        z->size += (uint64_t)nodes[i].fsize;
        ed_cache_new_gen(z, i);
    }
    ed_shm_unlock(&z->mutex);
    return added;
}

void
ed_http_cache_index_sink(ed_http_cache_zone_t *z, const uint8_t *hash,
                         int64_t used)
{
    ed_cache_node_t *nodes;
    uint32_t         i;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return;
    }
    nodes = ed_cache_nodes(z);
    i = ed_cache_find(z, hash);
    if (i != ED_CACHE_NIL && nodes[i].used == used && nodes[i].fsize > 0
        && z->tail != i)
    {
        ed_cache_lru_unlink(z, i);
        nodes[i].prev = z->tail;
        nodes[z->tail].next = i;
        z->tail = i;
    }
    ed_shm_unlock(&z->mutex);
}

void
ed_http_cache_index_purge(ed_http_cache_zone_t *z, const uint8_t *hash,
                          int64_t now_ms)
{
    ed_cache_node_t *nodes;
    uint8_t          dropped[ED_CACHE_HASH_LEN];
    size_t           nd;
    uint32_t         i;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return;
    }
    nodes = ed_cache_nodes(z);
    /* A dropped entry's file stays: the manager's eviction or a lookup
     * deals with it (no I/O under the lock). */
    i = ed_cache_get(z, hash, now_ms / 1000, dropped, &nd);
    if (nodes[i].fsize > 0) {
        z->count--;
        z->size -= (uint64_t)nodes[i].fsize;
        nodes[i].fsize = 0;
    }
    nodes[i].purged = now_ms;
    nodes[i].hfm_until = 0;
    ed_cache_new_gen(z, i);
    ed_shm_unlock(&z->mutex);
}

int64_t
ed_http_cache_index_purged(ed_http_cache_zone_t *z, const uint8_t *hash)
{
    int64_t  t = 0;
    uint32_t i;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return 0;
    }
    i = ed_cache_find(z, hash);
    if (i != ED_CACHE_NIL) {
        t = ed_cache_nodes(z)[i].purged;
    }
    ed_shm_unlock(&z->mutex);
    return t;
}

void
ed_http_cache_index_remove(ed_http_cache_zone_t *z, const uint8_t *hash)
{
    uint32_t i;

    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return;
    }
    i = ed_cache_find(z, hash);
    if (i != ED_CACHE_NIL) {
        ed_cache_drop(z, i);
    }
    ed_shm_unlock(&z->mutex);
}

void
ed_http_cache_index_stats(ed_http_cache_zone_t *z, uint64_t *entries,
                          uint64_t *size, uint64_t *evictions)
{
    *entries = *size = *evictions = 0;
    if (z == NULL || !z->ok || ed_shm_lock(&z->mutex) != ED_OK) {
        return;
    }
    *entries = z->count;
    *size = z->size;
    *evictions = z->evictions;
    ed_shm_unlock(&z->mutex);
}

void
ed_http_cache_evict_ask(ed_http_cache_zone_t *z)
{
    atomic_store(&z->evict_asked, 1);
}

bool
ed_http_cache_evict_asked(ed_http_cache_zone_t *z)
{
    return atomic_load_explicit(&z->evict_asked, memory_order_relaxed)
           && atomic_exchange(&z->evict_asked, 0) != 0;
}

bool
ed_http_cache_write_failed(ed_http_cache_zone_t *z)
{
    return atomic_exchange(&z->write_failed, 1) == 0;
}

void
ed_http_cache_write_ok(ed_http_cache_zone_t *z)
{
    if (atomic_load_explicit(&z->write_failed, memory_order_relaxed)) {
        atomic_store(&z->write_failed, 0);
    }
}

/* The $upstream_cache_status values counted, in ED_CACHE_STATUSES
 * order. */
const char *const ed_http_cache_statuses[ED_CACHE_STATUSES] = {
    "HIT", "MISS", "BYPASS", "EXPIRED", "REVALIDATED", "UPDATING", "STALE"
};

void
ed_http_cache_count(ed_http_cache_zone_t *z, const char *status)
{
    size_t i;

    if (z == NULL || status == NULL) {
        return;
    }
    for (i = 0; i < ED_CACHE_STATUSES; i++) {
        if (strcmp(ed_http_cache_statuses[i], status) == 0) {
            atomic_fetch_add_explicit(&z->requests[i], 1,
                                      memory_order_relaxed);
            return;
        }
    }
}

uint64_t
ed_http_cache_requests(ed_http_cache_zone_t *z, size_t status)
{
    return z && status < ED_CACHE_STATUSES
           ? atomic_load_explicit(&z->requests[status], memory_order_relaxed)
           : 0;
}
