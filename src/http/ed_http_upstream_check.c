/* Active health checks: every worker keeps a timer per checked server,
 * and whichever worker first claims a round in shared memory runs it, so
 * a check runs once per interval whatever the number of workers, and all
 * of them see its verdict. */
#include "ed_http_upstream.h"

#define ED_UPS_CHECK_HEAD_MAX 16384
#define ED_UPS_CHECK_HEADERS  100

typedef struct ed_ups_checker_s ed_ups_checker_t;

struct ed_ups_checker_s {
    ed_http_upstream_t        *ups;
    ed_http_upstream_server_t *server;
    ed_timer_t                 timer;     /* the next round */
    ed_timer_t                 deadline;  /* the running check's timeout */
    ed_http_upstream_conn_t   *uc;        /* while a check runs */
    ed_ups_checker_t          *next;
};

static ed_ups_checker_t *ed_ups_checkers;

static void ed_ups_check_run(ed_ups_checker_t *ck);

/* Ends a round: records the verdict in shared memory and logs a change
 * of state. */
static void
ed_ups_check_done(ed_ups_checker_t *ck, bool ok, const char *why)
{
    ed_http_upstream_check_t *chk = ck->ups->check;
    ed_http_upstream_shm_t   *shm = ck->server->shm;
    uint32_t                  n;

    ed_timer_del(ed_worker->loop, &ck->deadline);
    if (ck->uc) {
        ck->uc->owner = NULL;
        ed_http_upstream_close(ck->uc);
        ck->uc = NULL;
    }
    atomic_store(&shm->checked, 1);
    if (ok) {
        atomic_store(&shm->fails, 0);
        n = atomic_fetch_add(&shm->passes, 1) + 1;
        if (atomic_load(&shm->down) && n >= (uint32_t)chk->passes) {
            atomic_store(&shm->down, 0);
            ed_log(ED_LOG_NOTICE, ed_log_cur, 0,
                   "upstream \"%s\" server %s is up: %u health check(s) "
                   "passed", ck->ups->name.data, ck->server->name.data, n);
        }
        return;
    }
    atomic_store(&shm->passes, 0);
    n = atomic_fetch_add(&shm->fails, 1) + 1;
    if (!atomic_load(&shm->down) && n >= (uint32_t)chk->fails) {
        atomic_store(&shm->down, 1);
        ed_log(ED_LOG_WARN, ed_log_cur, 0,
               "upstream \"%s\" server %s is down: %u health check(s) "
               "failed, last: %s",
               ck->ups->name.data, ck->server->name.data, n, why);
    }
}

static void
ed_ups_check_on_head(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_upstream_conn_t *uc = s->data;
    ed_ups_checker_t        *ck = uc->owner;
    ed_http_header_t         hdrs[ED_UPS_CHECK_HEADERS];
    ed_http_resp_head_t      h;
    char                     why[64];

    if (status == ED_DECLINED) {
        ed_ups_check_done(ck, false, "response head too large");
        return;
    }
    if (status != ED_OK) {
        ed_ups_check_done(ck, false, "connection closed without a "
                          "response");
        return;
    }
    if (ed_http_parse_response(data, len, &h, hdrs, ED_UPS_CHECK_HEADERS)
        != ED_OK)
    {
        ed_ups_check_done(ck, false, "invalid response");
        return;
    }
    if (h.status < 200 && h.status != 101) {
        /* An interim response: the final one follows. */
        if (ed_stream_read_until_scan(s, ed_http_head_end,
                                      ED_UPS_CHECK_HEAD_MAX,
                                      ed_ups_check_on_head) != ED_OK)
        {
            ed_ups_check_done(ck, false, "read failed");
        }
        return;
    }
    if (h.status < ck->ups->check->status_min
        || h.status > ck->ups->check->status_max)
    {
        snprintf(why, sizeof(why), "status %d", h.status);
        ed_ups_check_done(ck, false, why);
        return;
    }
    ed_ups_check_done(ck, true, NULL);
}

static void
ed_ups_check_on_close(ed_stream_t *s)
{
    ed_http_upstream_conn_t *uc = s->data;

    ed_ups_check_done(uc->owner, false, "write failed");
}

/* Returns ED_OK, or ED_DONE when the failed check closed uc. */
static int
ed_ups_check_on_connect(ed_http_upstream_conn_t *uc, int rc)
{
    char why[96];

    if (rc != ED_OK) {
        snprintf(why, sizeof(why), "connect failed: %s", strerror(errno));
        ed_ups_check_done(uc->owner, false, why);
        return ED_DONE;
    }
    return ED_OK;
}

static void
ed_ups_check_on_deadline(ed_timer_t *t)
{
    ed_ups_check_done(t->data, false, "timed out");
}

/* Shutdown of the worker: a running check is dropped, no verdict. */
static void
ed_ups_check_conn_shutdown(ed_conn_t *c)
{
    ed_http_upstream_conn_t *uc = (ed_http_upstream_conn_t *)c;
    ed_ups_checker_t        *ck = uc->owner;

    ed_timer_del(ed_worker->loop, &ck->deadline);
    ck->uc = NULL;
    uc->owner = NULL;
    ed_http_upstream_close(uc);
}

/* Connects and sends the request of one check. */
static void
ed_ups_check_run(ed_ups_checker_t *ck)
{
    ed_http_upstream_check_t *chk = ck->ups->check;
    ed_http_upstream_conn_t  *uc;
    char                      req[2048], why[96];
    int                       rc, n;

    rc = ed_http_upstream_connect(ck->ups, ck->server, ck->ups->tls, ck,
                                  ed_ups_check_on_connect, &uc);
    if (rc == ED_ERROR) {
        snprintf(why, sizeof(why), "connect failed: %s", strerror(errno));
        ed_ups_check_done(ck, false, why);
        return;
    }
    ck->uc = uc;
    uc->c.shutdown = ed_ups_check_conn_shutdown;
    uc->c.stream.on_close = ed_ups_check_on_close;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\n"
                 "User-Agent: eddy-health-check\r\nConnection: close\r\n"
                 "\r\n",
                 chk->path.data, ck->server->host.data);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        ed_ups_check_done(ck, false, "path too long");
        return;
    }
    if (ed_stream_write(&uc->c.stream, req, (size_t)n) != ED_OK
        || ed_stream_read_until_scan(&uc->c.stream, ed_http_head_end,
                                     ED_UPS_CHECK_HEAD_MAX,
                                     ed_ups_check_on_head) != ED_OK)
    {
        ed_ups_check_done(ck, false, "out of memory");
        return;
    }
    ed_timer_add(ed_worker->loop, &ck->deadline, chk->timeout);
}

/* A round is due in this worker: it runs here only if this worker is the
 * first to claim it in shared memory. */
static void
ed_ups_check_on_timer(ed_timer_t *t)
{
    ed_ups_checker_t       *ck = t->data;
    ed_http_upstream_shm_t *shm = ck->server->shm;
    ed_msec_t               interval = ck->ups->check->interval;
    int64_t                 next;

    if (ed_worker->quitting) {
        return;
    }
    next = atomic_load(&shm->next_check);
    if (ck->uc == NULL && ed_current_msec >= next
        && atomic_compare_exchange_strong(&shm->next_check, &next,
                                          ed_current_msec + interval))
    {
        ed_ups_check_run(ck);
        next = ed_current_msec + interval;
    }
    /* Wake up when the round is due, a little after so that the worker
     * that claimed it has had its chance. */
    next -= ed_current_msec;
    ed_timer_add(ed_worker->loop, &ck->timer,
                 (next > 0 ? next : interval)
                     + (ed_msec_t)(ed_http_upstream_random() % 20));
}

/* ED_OK or ED_ERROR (ENOMEM). */
int
ed_http_upstream_check_start(ed_worker_t *w, ed_array_t *groups)
{
    ed_http_upstream_t **g = groups->elts;
    ed_ups_checker_t    *ck;
    size_t               i, j;

    for (i = 0; i < groups->nelts; i++) {
        if (g[i]->check == NULL) {
            continue;
        }
        for (j = 0; j < g[i]->nservers; j++) {
            ck = calloc(1, sizeof(ed_ups_checker_t));
            if (ck == NULL) {
                return ED_ERROR;
            }
            ck->ups = g[i];
            ck->server = &g[i]->servers[j];
            ck->timer.handler = ed_ups_check_on_timer;
            ck->timer.data = ck;
            ck->deadline.handler = ed_ups_check_on_deadline;
            ck->deadline.data = ck;
            ck->next = ed_ups_checkers;
            ed_ups_checkers = ck;
            /* The first round soon after start, spread over workers. */
            ed_timer_add(w->loop, &ck->timer,
                         1 + (ed_msec_t)(ed_http_upstream_random() % 50));
        }
    }
    return ED_OK;
}

void
ed_http_upstream_check_stop(ed_worker_t *w)
{
    ed_ups_checker_t *ck;

    while ((ck = ed_ups_checkers) != NULL) {
        ed_ups_checkers = ck->next;
        ed_timer_del(w->loop, &ck->timer);
        ed_timer_del(w->loop, &ck->deadline);
        if (ck->uc) {
            ck->uc->owner = NULL;
            ed_http_upstream_close(ck->uc);
        }
        free(ck);
    }
}
