/* Upstream balancing: the order of a group's servers and the hash
 * ring (built once at load), hashing, the worker's random numbers,
 * passive health (failures and successes) and the choice of a server
 * by each `balance` method. */
#include "ed_http_upstream.h"

#define ED_UPS_POINTS_PER_WEIGHT 160  /* ketama points per weight unit */
#define ED_UPS_HASH_TRIES        20   /* ring points / rehashes tried */

/* The worker's random state (xorshift64*), seeded at init_worker. */
static uint64_t ed_ups_rng = 0x9e3779b97f4a7c15ULL;

/* qsort order of ring points: by hash, then server. */
static int
ed_ups_point_cmp(const void *a, const void *b)
{
    const ed_http_upstream_point_t *pa = a, *pb = b;

    if (pa->hash != pb->hash) {
        return pa->hash < pb->hash ? -1 : 1;
    }
    return pa->server < pb->server ? -1 : pa->server > pb->server;
}

/* ED_OK or ED_ERROR (ENOMEM). */
int
ed_http_upstream_init(ed_pool_t *pool, ed_http_upstream_t *ups)
{
    ed_http_upstream_server_t *sorted, *s = ups->servers;
    size_t                     i, j, n = 0, np = 0;
    uint32_t                   k;
    char                       key[300];
    size_t                     klen;

    /* Primary servers first, backups after, each in file order. */
    sorted = ed_palloc(pool, ups->nservers * sizeof(*sorted));
    if (sorted == NULL) {
        return ED_ERROR;
    }
    for (i = 0; i < ups->nservers; i++) {
        if (!s[i].backup) {
            sorted[n++] = s[i];
        }
    }
    ups->nprimary = n;
    for (i = 0; i < ups->nservers; i++) {
        if (s[i].backup) {
            sorted[n++] = s[i];
        }
    }
    ups->servers = sorted;
    s = sorted;

    if (ups->balance != ED_HTTP_BALANCE_HASH) {
        return ED_OK;
    }
    for (i = 0; i < ups->nprimary; i++) {
        np += (size_t)s[i].weight * ED_UPS_POINTS_PER_WEIGHT;
    }
    ups->points = ed_palloc(pool, (np ? np : 1) * sizeof(*ups->points));
    if (ups->points == NULL) {
        return ED_ERROR;
    }
    ups->npoints = 0;
    for (i = 0; i < ups->nprimary; i++) {
        /* A point's place depends on the server's address only, so that
         * adding or removing a server moves only its own keys. */
        n = (size_t)s[i].weight * ED_UPS_POINTS_PER_WEIGHT;
        klen = ed_min(s[i].name.len, sizeof(key) - 8);
        memcpy(key, s[i].name.data, klen);
        key[klen] = '#';
        for (j = 0; j < n; j++) {
            k = (uint32_t)j;
            memcpy(key + klen + 1, &k, sizeof(k));
            ups->points[ups->npoints].hash =
                ed_http_upstream_hash(key, klen + 1 + sizeof(k));
            ups->points[ups->npoints].server = (uint32_t)i;
            ups->npoints++;
        }
    }
    qsort(ups->points, ups->npoints, sizeof(*ups->points), ed_ups_point_cmp);
    return ED_OK;
}

static uint32_t
ed_ups_rotl(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* MurmurHash3 (x86, 32-bit, seed 0), written from its public
 * description. */
uint32_t
ed_http_upstream_hash(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t       h = 0, k;
    size_t         i, nblocks = len / 4;

    for (i = 0; i < nblocks; i++) {
        memcpy(&k, p + 4 * i, 4);
        k *= 0xcc9e2d51;
        k = ed_ups_rotl(k, 15);
        k *= 0x1b873593;
        h ^= k;
        h = ed_ups_rotl(h, 13);
        h = h * 5 + 0xe6546b64;
    }
    k = 0;
    p += 4 * nblocks;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        k ^= p[0];
        k *= 0xcc9e2d51;
        k = ed_ups_rotl(k, 15);
        k *= 0x1b873593;
        h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

void
ed_http_upstream_seed(uint64_t seed)
{
    ed_ups_rng ^= seed;
    if (ed_ups_rng == 0) {
        ed_ups_rng = 1;
    }
}

/* xorshift64*: returns the next number. */
uint64_t
ed_http_upstream_random(void)
{
    ed_ups_rng ^= ed_ups_rng >> 12;
    ed_ups_rng ^= ed_ups_rng << 25;
    ed_ups_rng ^= ed_ups_rng >> 27;
    return ed_ups_rng * 0x2545f4914f6cdd1dULL;
}

/* Returns whether s is neither down by checks nor out after failures. */
bool
ed_http_upstream_available(const ed_http_upstream_server_t *s, ed_msec_t now)
{
    if (s->shm && atomic_load_explicit(&s->shm->down, memory_order_relaxed)) {
        return false;
    }
    return s->max_fails == 0 || s->down_until <= now;
}

void
ed_http_upstream_failed(ed_http_upstream_t *ups, ed_http_upstream_server_t *s,
                        ed_msec_t now, ed_http_request_t *r)
{
    if (s->shm) {
        atomic_fetch_add_explicit(&s->shm->failures, 1,
                                  memory_order_relaxed);
    }
    /* A lone server is never taken out: there is nothing to fail over
     * to, and refusing it would only turn a blip into 502s. */
    if (s->max_fails == 0 || ups->nservers == 1) {
        return;
    }
    if (now - s->fail_start > s->fail_timeout) {
        s->fails = 0;
        s->fail_start = now;
    }
    if (++s->fails >= (unsigned)s->max_fails) {
        s->fails = 0;
        s->down_until = now + s->fail_timeout;
        ed_http_log(ED_LOG_WARN, r, 0,
                    "upstream \"%s\" server %s temporarily disabled for "
                    "%lldms after %d failure(s)",
                    ups->name.data, s->name.data, (long long)s->fail_timeout,
                    s->max_fails);
    }
}

void
ed_http_upstream_succeeded(ed_http_upstream_server_t *s)
{
    s->fails = 0;
}

#define ed_ups_tried(tried, i) ((tried) && ((tried)[(i) / 8] >> ((i) % 8)) & 1)

/* Whether server i may take the request. */
static bool
ed_ups_usable(ed_http_upstream_t *ups, size_t i, const uint8_t *tried,
              ed_msec_t now)
{
    return !ed_ups_tried(tried, i)
           && (ups->nservers == 1
               ? !(ups->servers[i].shm
                   && atomic_load_explicit(&ups->servers[i].shm->down,
                                           memory_order_relaxed))
               : ed_http_upstream_available(&ups->servers[i], now));
}

/* Smooth weighted round robin over the usable servers of [lo, hi) for
 * which ok[i - lo] is set (NULL: all). Returns an index or -1. */
static int
ed_ups_rr(ed_http_upstream_t *ups, size_t lo, size_t hi,
          const uint8_t *tried, ed_msec_t now, const bool *ok)
{
    ed_http_upstream_server_t *s = ups->servers, *best = NULL;
    int                        total = 0;
    size_t                     i;

    for (i = lo; i < hi; i++) {
        if ((ok && !ok[i - lo]) || !ed_ups_usable(ups, i, tried, now)) {
            continue;
        }
        s[i].current_weight += s[i].weight;
        total += s[i].weight;
        if (best == NULL || s[i].current_weight > best->current_weight) {
            best = &s[i];
        }
    }
    if (best == NULL) {
        return -1;
    }
    best->current_weight -= total;
    return (int)(best - s);
}

/* Least connections, weighted; ties share by round robin (among the
 * first ED_UPS_TIES servers of the range; beyond, the first best). */
#define ED_UPS_TIES 256

static int
ed_ups_least_conn(ed_http_upstream_t *ups, size_t lo, size_t hi,
                  const uint8_t *tried, ed_msec_t now)
{
    ed_http_upstream_server_t *s = ups->servers, *best = NULL;
    bool                       ok[ED_UPS_TIES];
    size_t                     i;

    for (i = lo; i < hi; i++) {
        if (!ed_ups_usable(ups, i, tried, now)) {
            continue;
        }
        if (best == NULL
            || (uint64_t)s[i].conns * (uint64_t)best->weight
                   < (uint64_t)best->conns * (uint64_t)s[i].weight)
        {
            best = &s[i];
        }
    }
    if (best == NULL) {
        return -1;
    }
    if (hi - lo > ED_UPS_TIES) {
        return (int)(best - s);
    }
    for (i = lo; i < hi; i++) {
        ok[i - lo] = (uint64_t)s[i].conns * (uint64_t)best->weight
                     == (uint64_t)best->conns * (uint64_t)s[i].weight;
    }
    return ed_ups_rr(ups, lo, hi, tried, now, ok);
}

/* Weighted choice of slot h % total over the usable servers. */
static int
ed_ups_weighted(ed_http_upstream_t *ups, size_t lo, size_t hi, uint64_t h,
                const uint8_t *tried, ed_msec_t now)
{
    uint64_t total = 0, w;
    size_t   i;

    for (i = lo; i < hi; i++) {
        if (ed_ups_usable(ups, i, tried, now)) {
            total += (uint64_t)ups->servers[i].weight;
        }
    }
    if (total == 0) {
        return -1;
    }
    w = h % total;
    for (i = lo; i < hi; i++) {
        if (!ed_ups_usable(ups, i, tried, now)) {
            continue;
        }
        if (w < (uint64_t)ups->servers[i].weight) {
            return (int)i;
        }
        w -= (uint64_t)ups->servers[i].weight;
    }
    return -1;
}

/* ip_hash: the weighted slot of the hash over every server (usable or
 * not), so that a client keeps its server while the others change;
 * rehashed when that one is unusable, round robin at last. */
static int
ed_ups_ip_hash(ed_http_upstream_t *ups, size_t lo, size_t hi, uint32_t hash,
               const uint8_t *tried, ed_msec_t now)
{
    uint64_t total = 0, w;
    size_t   i;
    int      t;

    for (i = lo; i < hi; i++) {
        total += (uint64_t)ups->servers[i].weight;
    }
    for (t = 0; t < ED_UPS_HASH_TRIES && total; t++) {
        w = hash % total;
        for (i = lo; i < hi; i++) {
            if (w < (uint64_t)ups->servers[i].weight) {
                break;
            }
            w -= (uint64_t)ups->servers[i].weight;
        }
        if (i < hi && ed_ups_usable(ups, i, tried, now)) {
            return (int)i;
        }
        hash = ed_http_upstream_hash(&hash, sizeof(hash));
    }
    return ed_ups_rr(ups, lo, hi, tried, now, NULL);
}

/* Consistent hashing: the first ring point at or after the hash, then
 * the following points while their servers are unusable. */
static int
ed_ups_ring(ed_http_upstream_t *ups, uint32_t hash, const uint8_t *tried,
            ed_msec_t now)
{
    size_t lo = 0, hi = ups->npoints, mid, i, n;

    if (ups->npoints == 0) {
        return -1;
    }
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (ups->points[mid].hash < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    n = ed_min(ups->npoints, (size_t)ED_UPS_HASH_TRIES * ups->nprimary);
    for (i = 0; i < n; i++) {
        uint32_t srv = ups->points[(lo + i) % ups->npoints].server;

        if (ed_ups_usable(ups, srv, tried, now)) {
            return (int)srv;
        }
    }
    return ed_ups_rr(ups, 0, ups->nprimary, tried, now, NULL);
}

/* Power of two choices: two weighted random servers, the one with fewer
 * requests in flight (per weight) wins. */
static int
ed_ups_random_two(ed_http_upstream_t *ups, size_t lo, size_t hi,
                  const uint8_t *tried, ed_msec_t now)
{
    ed_http_upstream_server_t *s = ups->servers;
    int                        a, b, t;

    a = ed_ups_weighted(ups, lo, hi, ed_http_upstream_random(), tried, now);
    if (a < 0) {
        return -1;
    }
    b = a;
    for (t = 0; t < 4 && b == a; t++) {
        b = ed_ups_weighted(ups, lo, hi, ed_http_upstream_random(), tried,
                            now);
    }
    if ((uint64_t)s[b].conns * (uint64_t)s[a].weight
        < (uint64_t)s[a].conns * (uint64_t)s[b].weight)
    {
        return b;
    }
    return a;
}

/* The group's algorithm over [lo, hi); backups use round robin.
 * Returns an index or -1. */
static int
ed_ups_pick_range(ed_http_upstream_t *ups, size_t lo, size_t hi,
                  uint32_t hash, const uint8_t *tried, ed_msec_t now,
                  bool backup)
{
    switch (backup ? ED_HTTP_BALANCE_ROUND_ROBIN : ups->balance) {
    case ED_HTTP_BALANCE_LEAST_CONN:
        return ed_ups_least_conn(ups, lo, hi, tried, now);
    case ED_HTTP_BALANCE_IP_HASH:
        return ed_ups_ip_hash(ups, lo, hi, hash, tried, now);
    case ED_HTTP_BALANCE_HASH:
        return ed_ups_ring(ups, hash, tried, now);
    case ED_HTTP_BALANCE_RANDOM_TWO:
        return ed_ups_random_two(ups, lo, hi, tried, now);
    default:
        return ed_ups_rr(ups, lo, hi, tried, now, NULL);
    }
}

/* Returns a server index or -1. */
int
ed_http_upstream_pick(ed_http_upstream_t *ups, uint32_t hash,
                      const uint8_t *tried, ed_msec_t now)
{
    int i;

    if (ups->nservers == 0) {
        return -1;
    }
    i = ed_ups_pick_range(ups, 0, ups->nprimary, hash, tried, now, false);
    if (i < 0 && ups->nservers > ups->nprimary) {
        i = ed_ups_pick_range(ups, ups->nprimary, ups->nservers, hash, tried,
                              now, true);
    }
    return i;
}

/* One step of an attempt chain (proxy, fastcgi): see the header. */
ed_http_upstream_server_t *
ed_http_upstream_next(ed_http_request_t *r, ed_http_upstream_t *ups,
                      uint32_t hash, uint8_t *tried, unsigned *tries,
                      ed_http_upstream_try_t **try)
{
    ed_http_upstream_state_t  *st = r->upstream;
    ed_http_upstream_server_t *s;
    int                        i;

    i = ed_http_upstream_pick(ups, hash, tried, ed_current_msec);
    if (i < 0) {
        if (*tries == 0) {
            ed_http_log(ED_LOG_ERR, r, 0, "no live upstreams in \"%s\"",
                        ups->name.data);
        }
        return NULL;
    }
    tried[i / 8] |= (uint8_t)(1u << (i % 8));
    (*tries)++;
    s = &ups->servers[i];
    st->peer = s->name;
    if (s->shm) {
        atomic_fetch_add_explicit(&s->shm->requests, 1,
                                  memory_order_relaxed);
    }
    *try = NULL;
    if (st->ntries < ed_nelems(st->tries)) {
        *try = &st->tries[st->ntries++];
        (*try)->addr = s->name;
        (*try)->status = 0;
        (*try)->msec = 0;
    }
    return s;
}
