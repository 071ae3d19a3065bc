/* The worker process: one event loop serving the cycle's listeners. */
#include "ed_process.h"
#include "ed_conn.h"
#include "ed_handover.h"
#include "ed_stats.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

static void
ed_worker_close_all(ed_worker_t *w)
{
    ed_conn_t *c, *next;

    /* Closing unlinks: walk with the next pointer saved. */
    for (c = w->conns.next; c != &w->conns; c = next) {
        next = c->next;
        c->shutdown(c);
    }
}

static void
ed_worker_on_quit_timeout(ed_timer_t *t)
{
    ed_worker_t *w = t->data;

    ed_log(ED_LOG_NOTICE, ed_log_cur, 0,
           "shutdown timeout: closing %zu connections", w->nconns);
    w->terminating = 1;
    ed_worker_close_all(w);
    ed_loop_stop(w->loop);
}

/* HANDOFF_DONE, once the idle connections of the quit are handed over
 * (none waits for a full channel). */
static void
ed_worker_handover_done(ed_worker_t *w)
{
    ed_handover_msg_t m;
    int               rc;

    if (!w->handover_gen || w->handover_done_sent || w->handover_blocked) {
        return;
    }
    memset(&m, 0, sizeof(m));
    ed_handover_init_msg(&m, ED_HO_DONE, ed_handover_generation, w->id);
    m.count = w->handed;
    m.closed = w->handover_closed;
    rc = ed_handover_send(ed_handover_chan, &m, -1);
    if (rc == ED_AGAIN) {
        w->handover_blocked = 1;
        return;
    }
    if (rc != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "sending HANDOFF_DONE to the "
               "master failed");
    }
    w->handover_done_sent = 1;
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "handed over %u idle connections "
           "to generation %u (%u closed)", w->handed, w->handover_gen,
           w->handover_closed);
}

/* Graceful shutdown: on QUIT (handover_gen 0), or told by the master to
 * hand the idle connections to generation handover_gen. */
static void
ed_worker_quit(ed_worker_t *w, unsigned handover_gen)
{
    ed_core_conf_t *ccf = ed_core_conf(w->cycle);

    if (w->quitting) {
        return;
    }
    ed_log(ED_LOG_INFO, ed_log_cur, 0, "gracefully shutting down");
    ed_accept_drain(w);
    ed_accept_stop(w, true);
    w->quitting = 1;
    w->handover_gen = handover_gen;
    /* Each connection hands itself over, closes, or finishes. */
    ed_worker_close_all(w);
    ed_worker_handover_done(w);
    if (ed_worker_may_end(w)) {
        ed_loop_stop(w->loop);
        return;
    }
    w->quit_timer.handler = ed_worker_on_quit_timeout;
    w->quit_timer.data = w;
    ed_timer_add(w->loop, &w->quit_timer, ccf->shutdown_timeout);
}

/* Tells the master how many HANDOFFs this worker has taken (they are no
 * longer in transit). */
static void
ed_worker_send_taken(ed_worker_t *w)
{
    ed_handover_msg_t m;

    if (w->handover_taken == 0) {
        return;
    }
    memset(&m, 0, sizeof(m));
    ed_handover_init_msg(&m, ED_HO_TAKEN, ed_handover_generation, w->id);
    m.count = w->handover_taken;
    switch (ed_handover_send(ed_handover_chan, &m, -1)) {
    case ED_OK:
        w->handover_taken = 0;
        return;
    case ED_AGAIN:
        return;    /* sent when the channel is writable */
    default:
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "sending to the master "
               "failed");
        w->handover_taken = 0;
        return;
    }
}

void
ed_handover_resume(ed_worker_t *w)
{
    ed_timer_del(w->loop, &w->handover_timer);
    w->handover_blocked = 0;
    ed_worker_send_taken(w);
    if (w->quitting && w->handover_gen) {
        ed_worker_close_all(w);
        ed_worker_handover_done(w);
        if (ed_worker_may_end(w)) {
            /* The last connection went while HANDOFF_DONE waited for
             * room in the channel. */
            ed_loop_stop(w->loop);
        }
    }
}

/* The listener of the new configuration whose address fd's local
 * address is: the same address, else a wildcard on the same port. */
static ed_listener_t *
ed_worker_listener_of(ed_worker_t *w, int fd)
{
    ed_listener_t         **lsp = w->cycle->listeners.elts, *wild = NULL;
    struct sockaddr_storage ss;
    socklen_t               len = sizeof(ss);
    size_t                  i;

    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return NULL;
    }
    for (i = 0; i < w->cycle->listeners.nelts; i++) {
        const struct sockaddr_storage *a = &lsp[i]->addr;

        if (a->ss_family != ss.ss_family) {
            continue;
        }
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *x = (const void *)a, *y = (void *)&ss;

            if (x->sin_port != y->sin_port) {
                continue;
            }
            if (x->sin_addr.s_addr == y->sin_addr.s_addr) {
                return lsp[i];
            }
            if (x->sin_addr.s_addr == htonl(INADDR_ANY)) {
                wild = lsp[i];
            }
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *x = (const void *)a, *y = (void *)&ss;

            if (x->sin6_port != y->sin6_port) {
                continue;
            }
            if (IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr)) {
                return lsp[i];
            }
            if (IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr)) {
                wild = lsp[i];
            }
        } else if (ss.ss_family == AF_UNIX) {
            const struct sockaddr_un *x = (const void *)a, *y = (void *)&ss;

            if (strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0)
            {
                return lsp[i];
            }
        }
    }
    return wild;
}

/* A connection an old worker handed over: adopted by the listener's
 * protocol, or closed (quitting, max_connections, its address no longer
 * a plaintext listener of the same kind). */
static void
ed_worker_adopt(ed_worker_t *w, int fd, const ed_handover_msg_t *m)
{
    ed_listener_t *ls = NULL;

    if (!w->quitting && w->nconns < w->max_conns) {
        ls = ed_worker_listener_of(w, fd);
    } else if (!w->quitting) {
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "%zu worker connections are not "
               "enough: closing a connection handed over", w->max_conns);
    }
    if (ls == NULL || ls->tls || ls->adopt == NULL
        || ls->adopt(ls, fd, m) != ED_OK)
    {
        close(fd);
        ed_stats_handover(ED_STATS_HANDOVER_CLOSED);
        return;
    }
    ed_stats_handover(ED_STATS_HANDOVER_ADOPTED);
}

static void
ed_worker_read_chan(ed_worker_t *w)
{
    ed_handover_msg_t  m;
    ed_handover_peer_t peer;
    const char        *err;
    size_t             len;
    int                fd, nfds, flags, rc;

    for ( ;; ) {
        rc = ed_handover_recv(w->chan.fd, &m, &len, &fd, &nfds, &flags);
        if (rc == ED_AGAIN) {
            break;
        }
        if (rc != ED_OK) {
            /* The master is gone (PR_SET_DEATHSIG ends this worker). */
            ed_loop_del(w->loop, &w->chan);
            break;
        }
        /* From the master, which forwards the old worker's fields. */
        peer.generation = m.generation;
        peer.worker = m.worker;
        peer.types = 1u << ED_HO_QUIT | 1u << ED_HO_HANDOFF;
        err = ed_handover_check(&m, len, nfds, flags, &peer);
        if (err == NULL && m.type == ED_HO_QUIT) {
            ed_worker_quit(w, m.generation);
            continue;
        }
        if (err == NULL && m.type == ED_HO_HANDOFF) {
            w->handover_taken++;
            ed_worker_adopt(w, fd, &m);
            continue;
        }
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "invalid message from the master "
               "(%s)", err ? err : "unexpected type");
        if (fd >= 0) {
            close(fd);
        }
    }
    ed_worker_send_taken(w);
}

static void
ed_worker_on_chan(ed_event_t *ev, uint32_t events)
{
    ed_worker_t *w = ed_container_of(ev, ed_worker_t, chan);

    if ((events & EPOLLOUT)
        && (w->handover_blocked || w->handover_taken))
    {
        ed_handover_resume(w);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ed_worker_read_chan(w);
    }
}

/* The channel to the master, and READY once the loop runs. */
static int
ed_worker_chan_start(ed_worker_t *w)
{
    ed_handover_msg_t m;

    w->chan.fd = ed_handover_chan;
    w->chan.handler = ed_worker_on_chan;
    if (w->chan.fd < 0) {
        return ED_OK;
    }
    if (ed_loop_add(w->loop, &w->chan, EPOLLIN | EPOLLOUT | EPOLLET)
        != ED_OK)
    {
        ed_log(ED_LOG_EMERG, ed_log_cur, errno, "epoll_ctl() on the channel "
               "to the master failed");
        return ED_ERROR;
    }
    memset(&m, 0, sizeof(m));
    ed_handover_init_msg(&m, ED_HO_READY, ed_handover_generation, w->id);
    if (ed_handover_send(w->chan.fd, &m, -1) != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "sending READY to the master "
               "failed");
    }
    return ED_OK;
}

static void
ed_worker_on_signal(void *data, int signo)
{
    ed_worker_t    *w = data;
    ed_module_t    *m;
    size_t          i;

    switch (signo) {
    case SIGQUIT:
        ed_worker_quit(w, 0);
        return;
    case SIGTERM:
    case SIGINT:
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "exiting");
        ed_accept_stop(w, true);
        w->quitting = 1;
        w->terminating = 1;
        ed_worker_close_all(w);
        ed_loop_stop(w->loop);
        return;
    case SIGCHLD:
        if (w->on_child) {
            w->on_child(w);
        }
        return;
    case SIGUSR1:
        if (ed_log_reopen(ed_log_cur) != ED_OK) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "reopening %s failed",
                   ed_log_cur->path);
        }
        for (i = 0; (m = ed_modules[i]) != NULL; i++) {
            if (m->reopen) {
                m->reopen(w);
            }
        }
        return;
    default:
        return;
    }
}

/* Drops root privileges to `user:` after the master has bound. */
int
ed_worker_setuid(ed_cycle_t *cycle)
{
    ed_core_conf_t *ccf = ed_core_conf(cycle);
    struct passwd  *pw;

    if (ccf->user.data == NULL || geteuid() != 0) {
        return ED_OK;
    }
    pw = getpwnam(ccf->user.data);
    if (pw == NULL) {
        ed_log(ED_LOG_EMERG, ed_log_cur, 0, "unknown user \"%s\"",
               ccf->user.data);
        return ED_ERROR;
    }
    if (setgid(pw->pw_gid) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0
        || setuid(pw->pw_uid) != 0)
    {
        ed_log(ED_LOG_EMERG, ed_log_cur, errno, "dropping privileges to "
               "\"%s\" failed", ccf->user.data);
        return ED_ERROR;
    }
    return ED_OK;
}

/* A worker holds TLS keys and every client's data: it is not dumpable
 * (no core file; no ptrace, /proc/PID/mem or /proc/PID/environ for
 * other processes of its user, which may be the `user:` account's
 * scripts) unless worker_core_dumps says so. Set after setuid, which
 * clears the flag, and also when eddy runs as an ordinary user. */
static int
ed_worker_dumpable(ed_cycle_t *cycle)
{
    ed_core_conf_t *ccf = ed_core_conf(cycle);

    if (prctl(PR_SET_DUMPABLE, ccf->worker_core_dumps ? 1 : 0) != 0) {
        ed_log(ED_LOG_EMERG, ed_log_cur, errno, "prctl(PR_SET_DUMPABLE) "
               "failed");
        return ED_ERROR;
    }
    return ED_OK;
}

void
ed_worker_main(ed_cycle_t *cycle, int id, pid_t master)
{
    ed_worker_t     w;
    ed_core_conf_t *ccf = ed_core_conf(cycle);
    ed_module_t    *m;
    sigset_t        set;
    size_t          i;
    int             status = 0;

    ed_pid = getpid();
    ed_worker_id = id;
    /* A master killed with SIGKILL must not leave workers serving. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master) {
        exit(0);
    }
    if (ed_worker_setuid(cycle) != ED_OK || ed_worker_dumpable(cycle) != ED_OK)
    {
        exit(2);
    }

    memset(&w, 0, sizeof(w));
    w.id = id;
    w.cycle = cycle;
    w.conns.next = w.conns.prev = &w.conns;
    w.max_conns = (size_t)ccf->events->max_connections;
    ed_worker = &w;
    ed_buf_pool_init(&w.bufs, 16384, 256);

    w.loop = ed_loop_create(ed_log_cur);
    if (w.loop == NULL) {
        exit(2);
    }
    sigemptyset(&set);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGWINCH);
    /* Blocked like the others so that a child's end is an event of the
     * loop (w.on_child), never an interrupted call. */
    sigaddset(&set, SIGCHLD);
    if (ed_loop_signals(w.loop, &set, ed_worker_on_signal, &w) != ED_OK) {
        exit(2);
    }
    w.naccept = cycle->listeners.nelts;
    w.accept_evs = calloc(w.naccept ? w.naccept : 1, sizeof(ed_event_t));
    if (w.accept_evs == NULL) {
        exit(2);
    }
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->init_worker && m->init_worker(&w) != ED_OK) {
            exit(2);
        }
    }
    if (ed_accept_start(&w) != ED_OK) {
        exit(2);
    }
    if (ed_worker_chan_start(&w) != ED_OK) {
        exit(2);
    }
    ed_log(ED_LOG_INFO, ed_log_cur, 0, "worker %d started", id);

    if (ed_loop_run(w.loop) != ED_OK) {
        status = 2;
    }

    ed_accept_stop(&w, true);
    w.terminating = 1;
    ed_worker_close_all(&w);
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->exit_worker) {
            m->exit_worker(&w);
        }
    }
    if (w.handed_late) {
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "handed over %u more "
               "connections to generation %u after their requests",
               w.handed_late, w.handover_gen);
    }
    ed_log(ED_LOG_INFO, ed_log_cur, 0,
           "worker %d exiting: %llu accepted, %llu empty accept wake-ups",
           id, (unsigned long long)w.accepted,
           (unsigned long long)w.accept_empty);
    ed_loop_destroy(w.loop);
    free(w.accept_evs);
    ed_buf_pool_free(&w.bufs);
    ed_cycle_free(cycle);
    exit(status);
}
