/* Accepting connections in a worker (exclusive, reuseport or shared
 * listeners) and the worker's list of connections. */
#include "ed_conn.h"
#include "ed_stats.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#define ED_ACCEPT_BATCH 64

ed_worker_t *ed_worker;

void
ed_conn_link(ed_conn_t *c)
{
    ed_worker_t *w = ed_worker;

    c->next = w->conns.next;
    c->prev = &w->conns;
    w->conns.next->prev = c;
    w->conns.next = c;
    w->nconns++;
    if (w->nconns >= w->max_conns && w->accepting) {
        ed_log(ED_LOG_WARN, ed_log_cur, 0,
               "%zu worker connections are not enough", w->max_conns);
        ed_accept_stop(w, false);
    }
}

void
ed_conn_unlink(ed_conn_t *c)
{
    ed_worker_t *w = ed_worker;

    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->next = c->prev = NULL;
    w->nconns--;
    if (w->quitting) {
        if (ed_worker_may_end(w)) {
            ed_loop_stop(w->loop);
        }
        return;
    }
    if (!w->accepting && w->nconns < w->max_conns) {
        ed_accept_start(w);
    }
}

/* "a.b.c.d" and a NUL into buf (INET_ADDRSTRLEN bytes); the length. */
static size_t
ed_peer_text4(uint32_t addr, char *buf)
{
    char    *p = buf;
    unsigned b;
    int      shift;

    for (shift = 24; shift >= 0; shift -= 8) {
        b = (addr >> shift) & 0xff;
        if (b >= 100) {
            *p++ = (char)('0' + b / 100);
        }
        if (b >= 10) {
            *p++ = (char)('0' + b / 10 % 10);
        }
        *p++ = (char)('0' + b % 10);
        *p++ = '.';
    }
    p[-1] = '\0';
    return (size_t)(p - 1 - buf);
}

size_t
ed_peer_text(const ed_peer_addr_t *peer, char *buf, size_t size)
{
    const void *a;

    switch (peer->sa.sa_family) {
    case AF_INET:
        /* By hand: inet_ntop costs over a thousand instructions, and
         * $remote_addr and $server_addr are asked for at each request
         * by fastcgi, cgi and most access logs. */
        if (size >= INET_ADDRSTRLEN) {
            return ed_peer_text4(ntohl(peer->in.sin_addr.s_addr), buf);
        }
        a = &peer->in.sin_addr;
        break;
    case AF_INET6:
        a = &peer->in6.sin6_addr;
        break;
    default:
        return (size_t)snprintf(buf, size, "unix:");
    }
    if (inet_ntop(peer->sa.sa_family, a, buf, (socklen_t)size) == NULL) {
        return 0;
    }
    return strlen(buf);
}

/* Accepts up to ED_ACCEPT_BATCH connections from ev's listener (woken:
 * by epoll, so that finding none is an empty wake-up). Returns true when
 * the batch ran out with connections perhaps still queued. */
static bool
ed_accept_batch(ed_event_t *ev, bool woken)
{
    ed_worker_t            *w = ed_worker;
    /* accept_evs[i] is the event of listener i. */
    ed_listener_t          *ls = ((ed_listener_t **)w->cycle->listeners.elts)
                                  [ev - w->accept_evs];
    struct sockaddr_storage ss;
    ed_peer_addr_t          peer;
    socklen_t               len;
    int                     fd, n;

    for (n = 0; n < ED_ACCEPT_BATCH && w->accepting; n++) {
        len = sizeof(ss);
        fd = accept4(ev->fd, (struct sockaddr *)&ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (n == 0 && woken) {
                    /* Woken for a connection another worker took. */
                    w->accept_empty++;
                    ed_stats_add(accept_empty, 1);
                }
                return false;
            }
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "accept4() on %s failed",
                   ls->name);
            return false;
        }
        w->accepted++;
        ed_stats_add(accepted, 1);
        memset(&peer, 0, sizeof(peer));
        if (ss.ss_family == AF_INET6) {
            peer.in6 = *(struct sockaddr_in6 *)&ss;
        } else if (ss.ss_family == AF_INET) {
            peer.in = *(struct sockaddr_in *)&ss;
        } else {
            peer.sa.sa_family = AF_UNIX;
        }
        ls->handler(ls, fd, &peer);
    }
    return n == ED_ACCEPT_BATCH;
}

/* A level-triggered listener wakes the loop again while connections
 * wait: one batch a turn leaves room for the connections already open. */
static void
ed_accept_handler(ed_event_t *ev, uint32_t events)
{
    ed_unused(events);
    ed_accept_batch(ev, true);
}

int
ed_accept_start(ed_worker_t *w)
{
    ed_core_conf_t *ccf = ed_core_conf(w->cycle);
    ed_listener_t **lsp = w->cycle->listeners.elts, *ls;
    ed_event_t     *ev;
    uint32_t        events = EPOLLIN;
    size_t          i;

    if (w->accepting || w->quitting) {
        return ED_OK;
    }
    if (ccf->events->accept == ED_ACCEPT_EXCLUSIVE) {
        events |= EPOLLEXCLUSIVE;
    }
    for (i = 0; i < w->naccept; i++) {
        ev = &w->accept_evs[i];
        ls = lsp[i];
        ev->fd = ls->reuseport ? ls->fds[w->id] : ls->fd;
        ev->handler = ed_accept_handler;
        if (ev->fd < 0) {
            continue;
        }
        if (ed_loop_add(w->loop, ev, ls->reuseport ? EPOLLIN : events)
            != ED_OK)
        {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno,
                   "epoll_ctl() on listener %s failed", ls->name);
            return ED_ERROR;
        }
    }
    w->accepting = 1;
    return ED_OK;
}

void
ed_accept_drain(ed_worker_t *w)
{
    ed_listener_t **lsp = w->cycle->listeners.elts;
    size_t          i;

    if (!w->accepting) {
        return;
    }
    for (i = 0; i < w->naccept; i++) {
        /* The socket closes next: take its whole queue (bounded by the
         * backlog), or the connections still in it would be reset. */
        while (lsp[i]->reuseport && w->accept_evs[i].fd >= 0
               && ed_accept_batch(&w->accept_evs[i], false))
        {
            /* more waiting */
        }
    }
}

void
ed_accept_stop(ed_worker_t *w, bool close_fds)
{
    size_t i;

    for (i = 0; i < w->naccept; i++) {
        ed_event_t *ev = &w->accept_evs[i];

        if (ev->fd < 0) {
            continue;
        }
        if (w->accepting) {
            ed_loop_del(w->loop, ev);
        }
        if (close_fds) {
            /* Only this process's copy: the master keeps the socket. */
            close(ev->fd);
            ev->fd = -1;
        }
    }
    w->accepting = 0;
}
