/* One request's attempts on an upstream group, shared by the handlers
 * that talk to one (proxy, fastcgi): the balancer's choice, the servers
 * tried, next_upstream and its bounds, the upstream timer and the
 * $upstream_* entries. What an exchange is stays the handler's. */
#include "ed_http_upstream.h"

int
ed_http_upstream_attempts_init(ed_http_upstream_attempts_t *a,
                               ed_http_request_t *r, ed_http_upstream_t *ups,
                               int next, int max_tries,
                               ed_http_upstream_attempt_pt attempt,
                               ed_timer_pt on_timer, void *data)
{
    a->r = r;
    a->ups = ups;
    a->next = next;
    a->max_tries = max_tries > 0 ? (unsigned)max_tries : 0;
    a->fail_status = 502;
    a->attempt = attempt;
    a->timer.handler = on_timer;
    a->timer.data = data;
    a->tried = ed_pcalloc(r->pool, (ups->nservers + 7) / 8);
    return a->tried ? ED_OK : ED_ERROR;
}

int
ed_http_upstream_attempts_keyed(ed_http_upstream_attempts_t *a)
{
    const ed_peer_addr_t *peer;
    ed_str_t              key;

    switch (a->ups->balance) {
    case ED_HTTP_BALANCE_IP_HASH:
        peer = ed_http_remote(a->r);
        if (peer->sa.sa_family == AF_INET) {
            a->hash = ed_http_upstream_hash(&peer->in.sin_addr, 4);
        } else if (peer->sa.sa_family == AF_INET6) {
            a->hash = ed_http_upstream_hash(&peer->in6.sin6_addr, 16);
        }
        return ED_OK;
    case ED_HTTP_BALANCE_HASH:
        if (ed_http_template_run(a->r, a->ups->hash_key, &key) != ED_OK) {
            return ED_ERROR;
        }
        a->hash = ed_http_upstream_hash(key.data, key.len);
        return ED_OK;
    default:
        return ED_OK;
    }
}

int
ed_http_upstream_attempts_open(ed_http_upstream_attempts_t *a, bool pooled,
                               const ed_http_upstream_tls_t *tls, void *owner,
                               int (*on_connect)(ed_http_upstream_conn_t *uc,
                                                 int rc))
{
    ed_http_upstream_conn_t *uc = NULL;
    int                      rc;

    a->reused = 0;
    a->start = ed_current_msec;
    if (pooled) {
        uc = ed_http_upstream_get_idle(a->ups, a->server, tls);
    }
    if (uc) {
        uc->owner = owner;
        a->reused = 1;
        rc = ED_OK;
    } else {
        rc = ed_http_upstream_connect(a->ups, a->server, tls, owner,
                                      on_connect, &uc);
        if (rc == ED_ERROR) {
            return ED_ERROR;
        }
    }
    a->uc = uc;
    a->server->conns++;
    uc->requests++;
    return rc;
}

void
ed_http_upstream_attempts_release(ed_http_upstream_attempts_t *a, bool keep)
{
    if (a->uc == NULL) {
        return;
    }
    if (keep) {
        a->server->conns--;
        ed_http_upstream_release(a->uc);
        a->uc = NULL;
        return;
    }
    ed_http_upstream_attempts_close(a);
}

void
ed_http_upstream_attempts_connect_failed(ed_http_upstream_attempts_t *a)
{
    ed_http_log(ED_LOG_ERR, a->r, errno,
                "connect() to %s failed (upstream \"%s\")",
                a->server->name.data, a->ups->name.data);
}

void
ed_http_upstream_attempts_failed(ed_http_upstream_attempts_t *a, int ft,
                                 int status)
{
    ed_timer_del(ed_worker->loop, &a->timer);
    ed_http_upstream_attempts_end(a, status);
    if (ft != ED_HTTP_UPS_FT_STATUS) {
        ed_http_upstream_failed(a->ups, a->server, ed_current_msec, a->r);
    }
    ed_http_upstream_attempts_close(a);
    a->fail_status = ft == ED_HTTP_UPS_FT_TIMEOUT ? 504 : 502;
}

void
ed_http_upstream_attempts_close(ed_http_upstream_attempts_t *a)
{
    if (a->uc) {
        a->server->conns--;
        a->uc->owner = NULL;
        ed_http_upstream_close(a->uc);
        a->uc = NULL;
    }
}

int
ed_http_upstream_attempts_next(ed_http_upstream_attempts_t *a)
{
    int rc;

    for (;;) {
        if (a->max_tries && a->tries >= a->max_tries) {
            return a->fail_status;
        }
        a->server = ed_http_upstream_next(a->r, a->ups, a->hash, a->tried,
                                          &a->tries, &a->try);
        if (a->server == NULL) {
            return a->fail_status;
        }
        rc = a->attempt(a, true);
        if (rc != ED_ERROR) {
            return rc;
        }
        ed_http_upstream_attempts_connect_failed(a);
        ed_http_upstream_attempts_end(a, 502);
        ed_http_upstream_failed(a->ups, a->server, ed_current_msec, a->r);
        a->fail_status = 502;
        if (!(a->next & ED_HTTP_UPS_NEXT_ERROR)) {
            return 502;
        }
    }
}

bool
ed_http_upstream_attempts_retry(ed_http_upstream_attempts_t *a, int ft,
                                int status)
{
    int bit;

    switch (ft) {
    case ED_HTTP_UPS_FT_ERROR:
        bit = ED_HTTP_UPS_NEXT_ERROR;
        break;
    case ED_HTTP_UPS_FT_TIMEOUT:
        bit = ED_HTTP_UPS_NEXT_TIMEOUT;
        break;
    case ED_HTTP_UPS_FT_STATUS:
        bit = status == 502 ? ED_HTTP_UPS_NEXT_502
              : status == 503 ? ED_HTTP_UPS_NEXT_503 : ED_HTTP_UPS_NEXT_504;
        break;
    default:
        return false;
    }
    return (a->next & bit) && !a->r->header_sent;
}

bool
ed_http_upstream_attempts_status(ed_http_upstream_attempts_t *a, int status)
{
    return (status == 502 || status == 503 || status == 504)
           && ed_http_upstream_attempts_retry(a, ED_HTTP_UPS_FT_STATUS,
                                              status)
           && (a->max_tries == 0 || a->tries < a->max_tries)
           && ed_http_upstream_pick(a->ups, a->hash, a->tried,
                                    ed_current_msec) >= 0;
}

void
ed_http_upstream_attempts_timed_out(ed_http_upstream_attempts_t *a)
{
    static const char *what[] = { "", "connecting to", "sending to",
                                  "reading from" };

    ed_http_log(ED_LOG_ERR, a->r, 0,
                "upstream timed out while %s %s (upstream \"%s\")",
                what[a->kind], a->server->name.data, a->ups->name.data);
}

bool
ed_http_upstream_idempotent(ed_http_request_t *r)
{
    switch (r->head.method_id) {
    case ED_HTTP_GET:
    case ED_HTTP_HEAD:
    case ED_HTTP_PUT:
    case ED_HTTP_DELETE:
    case ED_HTTP_OPTIONS:
    case ED_HTTP_TRACE:
        return true;
    default:
        return false;
    }
}
