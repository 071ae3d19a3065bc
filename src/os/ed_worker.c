/* The worker process: one event loop serving the cycle's listeners. */
#include "ed_process.h"
#include "ed_conn.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>

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

static void
ed_worker_on_signal(void *data, int signo)
{
    ed_worker_t    *w = data;
    ed_core_conf_t *ccf = ed_core_conf(w->cycle);
    ed_module_t    *m;
    size_t          i;

    switch (signo) {
    case SIGQUIT:
        if (w->quitting) {
            return;
        }
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "gracefully shutting down");
        ed_accept_drain(w);
        ed_accept_stop(w, true);
        w->quitting = 1;
        ed_worker_close_all(w);
        if (w->nconns == 0) {
            ed_loop_stop(w->loop);
            return;
        }
        w->quit_timer.handler = ed_worker_on_quit_timeout;
        w->quit_timer.data = w;
        ed_timer_add(w->loop, &w->quit_timer, ccf->shutdown_timeout);
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
static int
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
