/* Upstream connections: connecting (TCP, unix, TLS) and the
 * keep-alive pool of idle connections per group. */
#include "ed_http_upstream.h"

#include <netinet/tcp.h>

static void ed_ups_idle_on_read(ed_stream_t *s, int status, char *data,
                                size_t len);

/* Puts c first in the worker's list: a client closing its request (and
 * this connection with it) during ed_worker_close_all then never frees
 * the entry the walk will visit next, which lies after the client. */
static void
ed_ups_conn_front(ed_conn_t *c)
{
    ed_conn_t *head = &ed_worker->conns;

    if (head->next == c) {
        return;
    }
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->next = head->next;
    c->prev = head;
    head->next->prev = c;
    head->next = c;
}

static void
ed_ups_idle_unlink(ed_http_upstream_conn_t *uc)
{
    ed_http_upstream_t *ups = uc->ups;

    if (!uc->idle) {
        return;
    }
    if (uc->prev) {
        uc->prev->next = uc->next;
    } else {
        ups->idle = uc->next;
    }
    if (uc->next) {
        uc->next->prev = uc->prev;
    }
    uc->next = uc->prev = NULL;
    uc->idle = 0;
    ups->nidle--;
}

void
ed_http_upstream_close(ed_http_upstream_conn_t *uc)
{
    ed_ups_idle_unlink(uc);
    ed_timer_del(ed_worker->loop, &uc->timer);
    ed_stream_close(&uc->c.stream);
    ed_conn_unlink(&uc->c);
    free(uc);
}

static void
ed_ups_idle_on_timeout(ed_timer_t *t)
{
    ed_http_upstream_close(t->data);
}

/* Anything from an idle connection (bytes, close, error) makes it
 * unusable. */
static void
ed_ups_idle_on_read(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_unused(status);
    ed_unused(data);
    ed_unused(len);
    ed_http_upstream_close(s->data);
}

static void
ed_ups_idle_on_close(ed_stream_t *s)
{
    ed_http_upstream_close(s->data);
}

/* Graceful shutdown: idle connections go at once; busy ones are closed
 * by the request that owns them. */
static void
ed_ups_conn_shutdown(ed_conn_t *c)
{
    ed_http_upstream_conn_t *uc = (ed_http_upstream_conn_t *)c;

    if (uc->idle || uc->owner == NULL) {
        ed_http_upstream_close(uc);
    }
}

/* Returns an idle connection to s, taken out of the pool, or NULL. */
ed_http_upstream_conn_t *
ed_http_upstream_get_idle(ed_http_upstream_t *ups,
                          ed_http_upstream_server_t *s,
                          const ed_http_upstream_tls_t *tls)
{
    ed_http_upstream_conn_t *uc, *next;
    ed_stream_t             *st;

    for (uc = ups->idle; uc != NULL; uc = next) {
        next = uc->next;
        if (uc->server != s || uc->tls != tls) {
            continue;
        }
        /* Staleness: a close or bytes seen on an idle connection whose
         * callback has not run yet make it unusable. */
        st = &uc->c.stream;
        if (st->rdhup || st->eof || st->error || ed_stream_buffered(st))
        {
            ed_http_upstream_close(uc);
            continue;
        }
        break;
    }
    if (uc == NULL) {
        return NULL;
    }
    ed_ups_idle_unlink(uc);
    ed_timer_del(ed_worker->loop, &uc->timer);
    ed_stream_read_stop(&uc->c.stream);
    uc->c.stream.on_close = NULL;
    ed_ups_conn_front(&uc->c);
    return uc;
}

void
ed_http_upstream_release(ed_http_upstream_conn_t *uc)
{
    ed_http_upstream_t *ups = uc->ups;
    ed_stream_t        *s = &uc->c.stream;

    uc->owner = NULL;
    s->on_drain = NULL;
    s->on_flushed = NULL;
    s->on_close = NULL;
    ed_stream_read_stop(s);
    ed_timer_del(ed_worker->loop, &uc->timer);
    if (ups->keepalive == 0 || ed_worker->quitting || uc->connecting
        || s->closed || s->error || s->eof || s->rdhup
        || ed_stream_buffered(s) || s->wqueued)
    {
        ed_http_upstream_close(uc);
        return;
    }
    if (ups->nidle >= (size_t)ups->keepalive) {
        /* The least recently used one makes room. */
        ed_http_upstream_conn_t *old = ups->idle;

        while (old->next) {
            old = old->next;
        }
        ed_http_upstream_close(old);
    }
    uc->idle = 1;
    uc->prev = NULL;
    uc->next = ups->idle;
    if (ups->idle) {
        ups->idle->prev = uc;
    }
    ups->idle = uc;
    ups->nidle++;
    ed_stream_keep(s, 0);
    ed_stream_release_buffer(s);
    s->on_close = ed_ups_idle_on_close;
    if (ed_stream_read_some(s, 1, ed_ups_idle_on_read) != ED_OK) {
        ed_http_upstream_close(uc);
        return;
    }
    uc->timer.handler = ed_ups_idle_on_timeout;
    uc->timer.data = uc;
    ed_timer_add(ed_worker->loop, &uc->timer, ups->keepalive_timeout);
}

/* The first event of a connecting socket: the result of connect(). The
 * stream gets its handler back and sees the same events. */
static void
ed_ups_connect_event(ed_event_t *ev, uint32_t events)
{
    ed_stream_t             *s = ed_container_of(ev, ed_stream_t, ev);
    ed_http_upstream_conn_t *uc = s->data;
    socklen_t                len = sizeof(int);
    int                      err = 0;

    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        return;
    }
    if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        err = errno;
    }
    ev->handler = uc->stream_handler;
    uc->connecting = 0;
    if (err) {
        errno = err;
        /* The owner closes uc: touch nothing afterwards. */
        uc->on_connect(uc, ED_ERROR);
        return;
    }
    if (uc->on_connect(uc, ED_OK) == ED_OK) {
        ev->handler(ev, events);
    }
}

/* Puts a TLS client on a new connection to s: the name sent and
 * checked is tls_server_name, else the server's host without its port.
 * ED_OK or ED_ERROR. */
static int
ed_ups_tls_connect(ed_http_upstream_conn_t *uc, ed_http_upstream_t *ups,
                   ed_http_upstream_server_t *s,
                   const ed_http_upstream_tls_t *tls)
{
    const ed_str_t *h = tls->name.len ? &tls->name : &s->host;
    const char     *p = h->data, *colon;
    char            name[256];
    size_t          len = h->len;

    if (tls->name.len == 0 && len) {
        if (*p == '[') {
            /* [v6]:port */
            colon = memchr(p, ']', len);
            p++;
            len = colon ? (size_t)(colon - p) : len - 1;
        } else if ((colon = memchr(p, ':', len)) != NULL
                   && memchr(colon + 1, ':', len - (size_t)(colon + 1 - p))
                          == NULL)
        {
            len = (size_t)(colon - p);
        }
    }
    if (len >= sizeof(name)) {
        return ED_ERROR;    /* never an unchecked name */
    }
    memcpy(name, p, len);
    name[len] = '\0';
    return ed_tls_connect(&uc->c.stream, tls->ctx, name, tls->verify,
                          tls->sessions ? &tls->sessions[s - ups->servers]
                                        : NULL);
}

/* ED_OK, ED_AGAIN or ED_ERROR (errno set). */
int
ed_http_upstream_connect(ed_http_upstream_t *ups,
                         ed_http_upstream_server_t *s,
                         const ed_http_upstream_tls_t *tls, void *owner,
                         int (*on_connect)(ed_http_upstream_conn_t *uc,
                                           int rc),
                         ed_http_upstream_conn_t **ucp)
{
    ed_http_upstream_conn_t *uc;
    int                      fd, rc, err, one = 1;

    *ucp = NULL;
    fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd == -1) {
        return ED_ERROR;
    }
    if (s->addr.ss_family != AF_UNIX) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    do {
        rc = connect(fd, (struct sockaddr *)&s->addr, s->addrlen);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1 && errno != EINPROGRESS) {
        err = errno;
        close(fd);
        errno = err;
        return ED_ERROR;
    }
    uc = calloc(1, sizeof(ed_http_upstream_conn_t));
    if (uc == NULL) {
        close(fd);
        errno = ENOMEM;
        return ED_ERROR;
    }
    if (ed_stream_init(&uc->c.stream, ed_worker->loop, &ed_worker->bufs, fd,
                       uc) != ED_OK)
    {
        err = errno;
        close(fd);
        free(uc);
        errno = err;
        return ED_ERROR;
    }
    if (tls != NULL && ed_ups_tls_connect(uc, ups, s, tls) != ED_OK) {
        ed_stream_close(&uc->c.stream);
        free(uc);
        errno = ENOMEM;
        return ED_ERROR;
    }
    uc->ups = ups;
    uc->server = s;
    uc->tls = tls;
    uc->owner = owner;
    uc->on_connect = on_connect;
    uc->c.peer.sa.sa_family = AF_UNIX;
    uc->c.shutdown = ed_ups_conn_shutdown;
    uc->timer.data = uc;
    ed_conn_link(&uc->c);
    *ucp = uc;
    if (rc == 0) {
        return ED_OK;
    }
    /* Writes wait for the connection; its first event comes to us. */
    uc->connecting = 1;
    uc->c.stream.writable = 0;
    uc->stream_handler = uc->c.stream.ev.handler;
    uc->c.stream.ev.handler = ed_ups_connect_event;
    return ED_AGAIN;
}
