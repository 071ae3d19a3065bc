/* Server counters in shared memory (see ed_stats.h). */
#include "ed_stats.h"
#include "ed_shm.h"
#include "ed_time.h"

#include <time.h>

ed_stats_t               *ed_stats;
static ed_stats_worker_t  ed_stats_private;
ed_stats_worker_t        *ed_stats_me = &ed_stats_private;

int
ed_stats_init(void)
{
    static ed_pool_t *pool;

    if (ed_stats) {
        return ED_OK;
    }
    /* A pool of the process's lifetime: counters outlive cycles. (Kept
     * in a static that is read, so that leak checkers see it held.) */
    if (pool == NULL) {
        pool = ed_pool_create(512);
        if (pool == NULL) {
            errno = ENOMEM;
            return ED_ERROR;
        }
    }
    ed_stats = ed_shm_alloc(pool, sizeof(ed_stats_t));
    if (ed_stats == NULL) {
        return ED_ERROR;
    }
    ed_stats->start_msec = ed_current_msec;
    return ED_OK;
}

void
ed_stats_handover(int result)
{
    if (ed_stats) {
        atomic_fetch_add(&ed_stats->handover[result], 1);
    }
}

uint64_t
ed_stats_connection_number(void)
{
    static uint64_t own;

    /* Without shared counters, numbers are unique per process only. */
    if (ed_stats == NULL) {
        return ++own;
    }
    return atomic_fetch_add_explicit(&ed_stats->connections, 1,
                                     memory_order_relaxed) + 1;
}

ed_stats_worker_t *
ed_stats_claim(void)
{
    ed_stats_worker_t *w;
    size_t             i;

    if (ed_stats == NULL) {
        return NULL;
    }
    for (i = 0; i < ED_STATS_SLOTS; i++) {
        w = &ed_stats->workers[i];
        if (atomic_load(&w->pid) == 0) {
            memset((char *)w, 0, sizeof(*w));
            atomic_store(&w->pid, -1);
            return w;
        }
    }
    return NULL;
}

void
ed_stats_bind(ed_stats_worker_t *slot, pid_t pid)
{
    if (slot) {
        atomic_store(&slot->pid, (int32_t)pid);
    }
}

void
ed_stats_attach(ed_stats_worker_t *slot)
{
    ed_stats_me = slot ? slot : &ed_stats_private;
}

static void
ed_stats_fold(_Atomic uint64_t *to, _Atomic uint64_t *from)
{
    atomic_store_explicit(to, atomic_load(to) + atomic_load(from),
                          memory_order_relaxed);
}

void
ed_stats_exited(pid_t pid)
{
    ed_stats_worker_t *w, *r;
    size_t             i, j;

    if (ed_stats == NULL || pid <= 0) {
        return;
    }
    r = &ed_stats->retired;
    for (i = 0; i < ED_STATS_SLOTS; i++) {
        w = &ed_stats->workers[i];
        if (atomic_load(&w->pid) != (int32_t)pid) {
            continue;
        }
        /* The worker is dead: nobody writes its slot any more. */
        ed_stats_fold(&r->accepted, &w->accepted);
        ed_stats_fold(&r->accept_empty, &w->accept_empty);
        ed_stats_fold(&r->proxy_protocol_errors, &w->proxy_protocol_errors);
        ed_stats_fold(&r->requests, &w->requests);
        for (j = 0; j < 5; j++) {
            ed_stats_fold(&r->responses[j], &w->responses[j]);
        }
        ed_stats_fold(&r->bytes_in, &w->bytes_in);
        ed_stats_fold(&r->bytes_out, &w->bytes_out);
        /* The HTTP/2 counters, up to its gauges. */
        for (j = 0; j < offsetof(ed_stats_v2_t, connections_active)
                            / sizeof(uint64_t);
             j++)
        {
            ed_stats_fold((_Atomic uint64_t *)&r->v2 + j,
                          (_Atomic uint64_t *)&w->v2 + j);
        }
        ed_stats_fold(&r->cgi_spawned, &w->cgi_spawned);
        ed_stats_fold(&r->cgi_refused, &w->cgi_refused);
        ed_stats_fold(&r->cgi_timeouts, &w->cgi_timeouts);
        atomic_store(&w->pid, 0);
        return;
    }
}

void
ed_stats_config(const unsigned char *md)
{
    uint64_t w;
    uint32_t seq;
    size_t   i;

    if (ed_stats == NULL) {
        return;
    }
    seq = atomic_load_explicit(&ed_stats->config_seq, memory_order_relaxed);
    atomic_store_explicit(&ed_stats->config_seq, seq + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (i = 0; i < 4; i++) {
        memcpy(&w, md + 8 * i, 8);
        atomic_store_explicit(&ed_stats->config_sha256[i], w,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&ed_stats->config_seq, seq + 2,
                          memory_order_release);
    atomic_store_explicit(&ed_stats->last_reload, (int64_t)time(NULL),
                          memory_order_relaxed);
}

void
ed_stats_config_hex(char *hex)
{
    unsigned char md[32];
    uint64_t      w;
    uint32_t      s1, s2;
    size_t        i;

    hex[0] = '\0';
    if (ed_stats == NULL) {
        return;
    }
    /* The master writes once per reload: a reader retries at most a few
     * times. */
    do {
        s1 = atomic_load_explicit(&ed_stats->config_seq,
                                  memory_order_acquire);
        for (i = 0; i < 4; i++) {
            w = atomic_load_explicit(&ed_stats->config_sha256[i],
                                     memory_order_relaxed);
            memcpy(md + 8 * i, &w, 8);
        }
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&ed_stats->config_seq,
                                  memory_order_relaxed);
    } while (s1 != s2 || (s1 & 1));
    if (s1 == 0) {
        return;
    }
    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}

unsigned
ed_stats_state(unsigned cur, unsigned next)
{
    if (cur == next) {
        return next;
    }
    if (cur != ED_STATS_NONE) {
        ed_stats_add(states[cur], -1);
    }
    if (next != ED_STATS_NONE) {
        ed_stats_add(states[next], 1);
    }
    return next;
}
