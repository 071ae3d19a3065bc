/* The master process: forks the workers, turns signals into loop events,
 * respawns crashed workers, reloads the configuration, upgrades the
 * binary. It never serves a request. */
#include "ed_process.h"
#include "ed_handover.h"
#include "ed_loop.h"
#include "ed_notify.h"
#include "ed_socket.h"
#include "ed_stats.h"
#include "ed_tls.h"
#include "ed_tls_ocsp.h"
#include "ed_http_cache.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

enum { ED_MASTER_RUNNING = 0, ED_MASTER_QUITTING, ED_MASTER_TERMINATING };

/* A reload with a handover: the new generation starts, then (all READY)
 * the old one is told to quit and hand over, then (every HANDOFF_DONE)
 * the reload is reported done. */
enum { ED_RELOAD_NONE = 0, ED_RELOAD_READY, ED_RELOAD_DONE };

/* The bounds of each wait of a reload with a handover. */
#define ED_RELOAD_READY_MSEC  1000
#define ED_RELOAD_DONE_MSEC   1000

/* The master's end of a worker's channel (allocated: the slots move). */
typedef struct {
    ed_event_t  ev;
    pid_t       pid;
    unsigned    unacked;    /* HANDOFFs forwarded to it, not yet taken */
    unsigned    ready:1;    /* READY came */
    unsigned    quit_sent:1; /* told to quit and hand over */
    unsigned    done:1;     /* HANDOFF_DONE came, or it is gone */
} ed_chan_t;

/* A HANDOFF waiting for room in the new worker's channel. */
typedef struct ed_fwd_s ed_fwd_t;

struct ed_fwd_s {
    ed_fwd_t          *next;
    int                fd;
    ed_handover_msg_t  m;
};

typedef struct {
    pid_t     pid;         /* 0: waiting to be respawned */
    int       id;
    unsigned  generation;
    unsigned  restarts;    /* respawns of this slot */
    unsigned  fast_fails;  /* consecutive deaths soon after start */
    ed_msec_t started;
    ed_msec_t respawn_at;
    ed_chan_t *chan;       /* NULL: none (or gone) */
    unsigned  exiting:1;   /* told to stop: not respawned */
} ed_proc_t;

static struct {
    ed_cycle_t  *cycle;
    ed_loop_t   *loop;
    ed_proc_t   *procs;
    size_t       nprocs;
    size_t       cap;
    unsigned     generation;
    int          state;
    bool         no_workers;   /* after WINCH */
    int          exit_status;
    unsigned     reload_seq;
    char *const *argv;
    pid_t        upgrade_pid;  /* the new binary's master */
    bool         oldbin;       /* our pid file is PIDFILE.oldbin */
    bool         draining;     /* QUIT's drain_delay is running */
    ed_timer_t   kill_timer;
    ed_timer_t   respawn_timer;
    ed_timer_t   drain_timer;
    /* The handover (fleet.md). */
    int          reload_phase;  /* ED_RELOAD_* */
    ed_timer_t   reload_timer;
    unsigned     transit;       /* descriptors queued or not yet taken */
    bool         throttled;     /* old channels left unread */
    bool         resume_due;
    ed_fwd_t    *fwd_head;      /* HANDOFFs waiting to be forwarded */
    ed_fwd_t    *fwd_tail;
} ed_m;

const char *ed_daemon_error_log;
bool        ed_master_upgraded;

void
ed_reload_status_path(const char *pid_file, char *buf, size_t size)
{
    snprintf(buf, size, "%s.reload", pid_file);
}

static const char *
ed_pid_path(void)
{
    return ed_core_conf(ed_m.cycle)->pid_file.data;
}

/* Writes text to path through PATH.tmp and a rename, so that readers
 * see the old file or the new one. The master may be root and the
 * directory writable by others: the tmp file is created new (O_EXCL,
 * O_NOFOLLOW), never opened through a symlink or a hard link planted
 * there. A tmp file already there (left by a crash, or planted) is
 * unlinked, which removes the name and never what a link points to,
 * then created once more; when that fails too, the error (errno) is the
 * caller's to report. path itself may be a symlink: rename replaces the
 * link with the new file and writes nothing through it. */
static int
ed_write_file(const char *path, const char *text)
{
    char tmp[4096];
    int  fd, flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    bool ok;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
    {
        errno = ENAMETOOLONG;
        return ED_ERROR;
    }
    fd = open(tmp, flags, 0644);
    if (fd < 0 && errno == EEXIST
        && (unlink(tmp) == 0 || errno == ENOENT))
    {
        fd = open(tmp, flags, 0644);
    }
    if (fd < 0) {
        return ED_ERROR;
    }
    ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    if (close(fd) != 0) {
        ok = false;
    }
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return ED_ERROR;
    }
    return ED_OK;
}

static int
ed_pid_file_write(void)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%d\n", (int)ed_pid);
    if (ed_write_file(ed_pid_path(), buf) != ED_OK) {
        ed_log(ED_LOG_EMERG, ed_log_cur, errno, "cannot write pid file %s "
               "(through a new file %s.tmp)", ed_pid_path(), ed_pid_path());
        return ED_ERROR;
    }
    return ED_OK;
}

/* Tells `eddy -s reload` the outcome of a reload: the config errors, or
 * msg for a failure after the config was read. */
static void
ed_reload_report(bool ok, ed_conf_t *errors, const char *msg)
{
    char     path[4096], text[8192];
    size_t   n;
    unsigned i;

    ed_reload_status_path(ed_pid_path(), path, sizeof(path));
    n = (size_t)snprintf(text, sizeof(text), "%d %u %s\n", (int)ed_pid,
                         ed_m.reload_seq, ok ? "ok" : "failed");
    for (i = 0; errors && i < errors->nerrors && i < ED_CONF_MAX_ERRORS;
         i++)
    {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n",
                              errors->errors[i]);
        if (n >= sizeof(text)) {
            n = sizeof(text) - 1;
            break;
        }
    }
    if (msg && n < sizeof(text) - 1) {
        snprintf(text + n, sizeof(text) - n, "eddy: %s\n", msg);
    }
    if (ed_write_file(path, text) != ED_OK) {
        ed_log(ED_LOG_WARN, ed_log_cur, errno, "cannot write %s", path);
    }
}

static ed_proc_t *
ed_proc_add(void)
{
    ed_proc_t *p;

    if (ed_m.nprocs == ed_m.cap) {
        size_t cap = ed_m.cap ? 2 * ed_m.cap : 16;

        p = realloc(ed_m.procs, cap * sizeof(ed_proc_t));
        if (p == NULL) {
            return NULL;
        }
        ed_m.procs = p;
        ed_m.cap = cap;
    }
    p = &ed_m.procs[ed_m.nprocs++];
    memset(p, 0, sizeof(*p));
    return p;
}

static void
ed_proc_remove(ed_proc_t *p)
{
    *p = ed_m.procs[--ed_m.nprocs];
}

static size_t
ed_procs_alive(void)
{
    size_t i, n = 0;

    for (i = 0; i < ed_m.nprocs; i++) {
        n += ed_m.procs[i].pid > 0;
    }
    return n;
}

static void ed_chan_on_event(ed_event_t *ev, uint32_t events);

/* The child keeps only its own end of its own channel, and none of the
 * connections the master holds on their way. */
static void
ed_child_close_channels(int keep_other)
{
    ed_fwd_t *f, *next;
    size_t    i;

    /* Freed too: a worker exits through its own loop, and the leak
     * checker of a sanitizer build counts what it inherited. */
    for (i = 0; i < ed_m.nprocs; i++) {
        if (ed_m.procs[i].chan) {
            close(ed_m.procs[i].chan->ev.fd);
            free(ed_m.procs[i].chan);
            ed_m.procs[i].chan = NULL;
        }
    }
    for (f = ed_m.fwd_head; f; f = next) {
        next = f->next;
        close(f->fd);
        free(f);
    }
    ed_m.fwd_head = NULL;
    ed_m.fwd_tail = NULL;
    if (keep_other >= 0) {
        close(keep_other);
    }
}

/* Forks the worker of slot p. ED_OK or ED_ERROR. */
static int
ed_proc_spawn(ed_proc_t *p)
{
    ed_stats_worker_t *slot;
    pid_t              pid, master = getpid();
    int                id = p->id, sv[2] = { -1, -1 };
    ed_chan_t         *ch;

    ch = calloc(1, sizeof(ed_chan_t));
    if (ch == NULL
        || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      0, sv) != 0)
    {
        /* The worker serves without a channel: no handover to or from
         * it. */
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "socketpair() failed");
        free(ch);
        ch = NULL;
    }
    slot = ed_stats_claim();
    pid = fork();
    if (pid < 0) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "fork() failed");
        ed_stats_bind(slot, 0);
        if (ch) {
            close(sv[0]);
            close(sv[1]);
            free(ch);
        }
        return ED_ERROR;
    }
    if (pid == 0) {
        ed_child_close_channels(sv[0]);
        free(ch);    /* the master's end, closed just above */
        ed_handover_chan = sv[1];
        ed_handover_generation = ed_m.generation;
        ed_stats_attach(slot);
        /* Only the master talks to an `eddy -d` launcher. */
        if (ed_log_tee_fd >= 0) {
            close(ed_log_tee_fd);
            ed_log_tee_fd = -1;
        }
        /* p points into procs: its id was copied before the free. */
        ed_loop_destroy(ed_m.loop);
        free(ed_m.procs);
        ed_worker_main(ed_m.cycle, id, master);
    }
    ed_stats_bind(slot, pid);
    p->pid = pid;
    p->started = ed_current_msec;
    p->generation = ed_m.generation;
    if (ch) {
        close(sv[1]);
        ch->ev.fd = sv[0];
        ch->ev.handler = ed_chan_on_event;
        ch->pid = pid;
        if (ed_loop_add(ed_m.loop, &ch->ev, EPOLLIN | EPOLLOUT | EPOLLET)
            != ED_OK)
        {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "epoll_ctl() failed");
            close(sv[0]);
            free(ch);
            ch = NULL;
        }
    }
    p->chan = ch;
    return ED_OK;
}

static int
ed_start_workers(void)
{
    ed_proc_t *p;
    int        i;

    ed_m.generation++;
    if (ed_stats) {
        atomic_store(&ed_stats->generation, ed_m.generation);
    }
    for (i = 0; i < ed_m.cycle->workers; i++) {
        p = ed_proc_add();
        if (p == NULL) {
            return ED_ERROR;
        }
        p->id = i;
        if (ed_proc_spawn(p) != ED_OK) {
            ed_proc_remove(p);
            return ED_ERROR;
        }
    }
    if (ed_core_conf(ed_m.cycle)->workers == 0) {
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "generation %u started: %d "
               "workers (auto: %d CPUs), max_connections %d each",
               ed_m.generation, ed_m.cycle->workers, ed_m.cycle->workers,
               (int)ed_core_conf(ed_m.cycle)->events->max_connections);
    } else {
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "generation %u started: %d "
               "workers, max_connections %d each", ed_m.generation,
               ed_m.cycle->workers,
               (int)ed_core_conf(ed_m.cycle)->events->max_connections);
    }
    return ED_OK;
}

/* The notice lines of start and reload: one per address, marking those
 * bound by this reload, then the addresses old had and cycle has not. */
static void
ed_announce_listeners(ed_cycle_t *cycle, ed_cycle_t *old)
{
    ed_listener_t **lsp = cycle->listeners.elts;
    char            what[1024];
    size_t          i;
    int             j;
    bool            open;

    for (i = 0; i < cycle->listeners.nelts; i++) {
        what[0] = '\0';
        if (lsp[i]->describe) {
            lsp[i]->describe(lsp[i], what, sizeof(what));
        }
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "listening on %s%s %s",
               lsp[i]->name, old && !lsp[i]->inherited ? " (new)" : "",
               what);
    }
    if (old == NULL) {
        return;
    }
    /* What the new cycle did not take over is still open in old. */
    lsp = old->listeners.elts;
    for (i = 0; i < old->listeners.nelts; i++) {
        open = lsp[i]->fd >= 0;
        for (j = 0; j < lsp[i]->nfds; j++) {
            open = open || lsp[i]->fds[j] >= 0;
        }
        if (open) {
            ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "no longer listening on %s",
                   lsp[i]->name);
        }
    }
}

/* READY=1 for the service manager, with what serves. */
static void
ed_notify_ready(bool mainpid)
{
    char pid[32] = "";

    if (mainpid) {
        snprintf(pid, sizeof(pid), "MAINPID=%d\n", (int)getpid());
    }
    ed_notify("%sREADY=1\nSTATUS=serving: generation %u, %d workers, "
              "%zu listeners", pid, ed_m.generation, ed_m.cycle->workers,
              ed_m.cycle->listeners.nelts);
}

/* Connections open in the workers, from the status counters. */
static int64_t
ed_connections(void)
{
    int64_t n = 0;
    size_t  i;

    for (i = 0; ed_stats && i < ED_STATS_SLOTS; i++) {
        if (atomic_load(&ed_stats->workers[i].pid) > 0) {
            n += atomic_load(&ed_stats->workers[i].active);
        }
    }
    return n;
}

/* Sends signo to every live worker; old: only those of older
 * generations. Marks them exiting unless it is USR1. */
static void
ed_signal_workers(int signo, bool only_old)
{
    size_t i;

    for (i = 0; i < ed_m.nprocs; i++) {
        ed_proc_t *p = &ed_m.procs[i];

        if (only_old && p->generation == ed_m.generation) {
            continue;
        }
        if (signo != SIGUSR1) {
            p->exiting = 1;
        }
        if (p->pid > 0 && kill(p->pid, signo) != 0 && errno != ESRCH) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "kill(%d, %d) failed",
                   (int)p->pid, signo);
        }
    }
}

/* Forgets slots waiting for a respawn (shutting down). */
static void
ed_drop_pending(void)
{
    size_t i = 0;

    while (i < ed_m.nprocs) {
        if (ed_m.procs[i].pid == 0) {
            ed_proc_remove(&ed_m.procs[i]);
        } else {
            i++;
        }
    }
}

static void
ed_on_kill_timer(ed_timer_t *t)
{
    size_t i;

    ed_unused(t);
    for (i = 0; i < ed_m.nprocs; i++) {
        if (ed_m.procs[i].pid > 0 && ed_m.procs[i].exiting) {
            ed_log(ED_LOG_WARN, ed_log_cur, 0,
                   "worker %d (pid %d) did not exit in time: killing it",
                   ed_m.procs[i].id, (int)ed_m.procs[i].pid);
            kill(ed_m.procs[i].pid, SIGKILL);
        }
    }
}

static void ed_reload_complete(void);

static void
ed_shutdown(int state, int signo, ed_msec_t grace)
{
    ed_reload_complete();
    ed_m.state = state;
    ed_m.draining = false;
    ed_timer_del(ed_m.loop, &ed_m.drain_timer);
    ed_drop_pending();
    ed_timer_del(ed_m.loop, &ed_m.respawn_timer);
    ed_signal_workers(signo, false);
    if (ed_procs_alive() == 0) {
        ed_loop_stop(ed_m.loop);
        return;
    }
    ed_timer_add(ed_m.loop, &ed_m.kill_timer, grace);
}

/* The handover's channels (fleet.md, "Reload: idle keep-alive
 * connections move to the new generation"). */

static ed_proc_t *
ed_proc_of_chan(ed_chan_t *ch)
{
    size_t i;

    for (i = 0; i < ed_m.nprocs; i++) {
        if (ed_m.procs[i].chan == ch) {
            return &ed_m.procs[i];
        }
    }
    return NULL;
}

/* A connection that cannot move on: the master's copy closes (the
 * client's connection with it, the old worker's being closed). */
static void
ed_fwd_drop(int fd)
{
    close(fd);
    ed_stats_handover(ED_STATS_HANDOVER_CLOSED);
}

/* The new worker a connection goes to: the one with the old one's id,
 * else $connection mod N, else any. */
static ed_proc_t *
ed_fwd_target(const ed_handover_msg_t *m)
{
    ed_proc_t *p, *any = NULL, *by_alt = NULL;
    int        alt = (int)(m->connection % (uint64_t)ed_max(
                                               ed_m.cycle->workers, 1));
    size_t     i;

    for (i = 0; i < ed_m.nprocs; i++) {
        p = &ed_m.procs[i];
        if (p->generation != ed_m.generation || p->pid <= 0
            || p->chan == NULL || p->exiting)
        {
            continue;
        }
        if (p->id == m->worker) {
            return p;
        }
        if (p->id == alt) {
            by_alt = p;
        }
        if (any == NULL) {
            any = p;
        }
    }
    return by_alt ? by_alt : any;
}

/* Forwards the queued HANDOFFs in order while the new workers' channels
 * take them. */
static void
ed_fwd_flush(void)
{
    ed_fwd_t  *f;
    ed_proc_t *p;
    int        rc;

    while ((f = ed_m.fwd_head) != NULL) {
        p = ed_m.state == ED_MASTER_RUNNING ? ed_fwd_target(&f->m) : NULL;
        if (p == NULL) {
            ed_fwd_drop(f->fd);
            ed_m.transit--;
        } else {
            rc = ed_handover_send(p->chan->ev.fd, &f->m, f->fd);
            if (rc == ED_AGAIN) {
                return;    /* EPOLLOUT on that channel flushes again */
            }
            if (rc == ED_OK) {
                close(f->fd);
                p->chan->unacked++;
            } else {
                ed_log(ED_LOG_ALERT, ed_log_cur, errno, "forwarding a "
                       "connection to worker %d failed", p->id);
                ed_fwd_drop(f->fd);
                ed_m.transit--;
            }
        }
        ed_m.fwd_head = f->next;
        if (ed_m.fwd_head == NULL) {
            ed_m.fwd_tail = NULL;
        }
        free(f);
    }
    if (ed_m.throttled && ed_m.transit < ED_HANDOVER_TRANSIT_MAX) {
        ed_m.resume_due = true;
    }
}

static void
ed_fwd(int fd, const ed_handover_msg_t *m)
{
    ed_fwd_t *f;

    if (ed_m.state != ED_MASTER_RUNNING
        || (f = malloc(sizeof(ed_fwd_t))) == NULL)
    {
        ed_fwd_drop(fd);
        return;
    }
    f->next = NULL;
    f->fd = fd;
    f->m = *m;
    if (ed_m.fwd_tail) {
        ed_m.fwd_tail->next = f;
    } else {
        ed_m.fwd_head = f;
    }
    ed_m.fwd_tail = f;
    ed_m.transit++;
    ed_fwd_flush();
}

static void ed_reload_check(void);

/* Reads p's channel: until it is empty, or (an old worker's, unless
 * all) while too many descriptors are in transit. */
static void
ed_chan_read(ed_proc_t *p, bool all)
{
    ed_chan_t         *ch = p->chan;
    ed_handover_msg_t  m;
    ed_handover_peer_t peer;
    const char        *err;
    size_t             len;
    unsigned           n;
    int                fd, nfds, flags, rc;

    peer.generation = p->generation;
    peer.worker = p->id;
    peer.types = 1u << ED_HO_READY | 1u << ED_HO_TAKEN;
    if (ch->quit_sent) {
        peer.types |= 1u << ED_HO_HANDOFF | 1u << ED_HO_DONE;
    }
    for ( ;; ) {
        if (!all && ch->quit_sent
            && ed_m.transit >= ED_HANDOVER_TRANSIT_MAX)
        {
            /* The old worker keeps its connections meanwhile and retries
             * once its channel has room. */
            ed_m.throttled = true;
            return;
        }
        rc = ed_handover_recv(ch->ev.fd, &m, &len, &fd, &nfds, &flags);
        if (rc == ED_AGAIN) {
            return;
        }
        if (rc != ED_OK) {
            /* The worker's end is closed: it has exited. */
            ch->done = 1;
            return;
        }
        err = ed_handover_check(&m, len, nfds, flags, &peer);
        if (err) {
            ed_log(ED_LOG_ALERT, ed_log_cur, 0, "invalid handover message "
                   "from worker %d (pid %d): %s", p->id, (int)p->pid, err);
            if (fd >= 0) {
                ed_fwd_drop(fd);
            }
            continue;
        }
        switch (m.type) {
        case ED_HO_READY:
            ch->ready = 1;
            break;
        case ED_HO_HANDOFF:
            ed_fwd(fd, &m);
            break;
        case ED_HO_DONE:
            ch->done = 1;
            break;
        case ED_HO_TAKEN:
            n = ed_min(m.count, ch->unacked);
            ch->unacked -= n;
            ed_m.transit -= n;
            if (ed_m.throttled && ed_m.transit < ED_HANDOVER_TRANSIT_MAX) {
                ed_m.resume_due = true;
            }
            break;
        }
    }
}

/* Reads the old workers' channels left unread while too many
 * descriptors were in transit. */
static void
ed_chan_resume(void)
{
    size_t i;

    while (ed_m.resume_due && ed_m.transit < ED_HANDOVER_TRANSIT_MAX) {
        ed_m.resume_due = false;
        ed_m.throttled = false;
        for (i = 0; i < ed_m.nprocs; i++) {
            if (ed_m.procs[i].chan && ed_m.procs[i].chan->quit_sent) {
                ed_chan_read(&ed_m.procs[i], false);
            }
        }
    }
}

static void
ed_chan_on_event(ed_event_t *ev, uint32_t events)
{
    ed_chan_t *ch = ed_container_of(ev, ed_chan_t, ev);
    ed_proc_t *p = ed_proc_of_chan(ch);

    if (p == NULL) {
        return;
    }
    if (events & EPOLLOUT) {
        ed_fwd_flush();
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ed_chan_read(p, false);
    }
    ed_chan_resume();
    ed_reload_check();
}

/* A worker has exited: what it sent before is read, then its channel
 * closes. Descriptors forwarded to it and not taken died with it. */
static void
ed_chan_close(ed_proc_t *p)
{
    ed_chan_t *ch = p->chan;

    if (ch == NULL) {
        return;
    }
    ed_chan_read(p, true);
    ed_m.transit -= ch->unacked;
    while (ch->unacked) {
        ed_stats_handover(ED_STATS_HANDOVER_CLOSED);
        ch->unacked--;
    }
    ed_loop_del(ed_m.loop, &ch->ev);
    close(ch->ev.fd);
    free(ch);
    p->chan = NULL;
    ed_m.resume_due = ed_m.throttled;
}

/* The reload is done: reported to `eddy -s reload` and the service
 * manager. */
static void
ed_reload_finish(void)
{
    ed_m.reload_phase = ED_RELOAD_NONE;
    ed_timer_del(ed_m.loop, &ed_m.reload_timer);
    if (ed_stats) {
        atomic_fetch_add(&ed_stats->reloads, 1);
    }
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "reload done: generation %u",
           ed_m.generation);
    ed_reload_report(true, NULL, NULL);
    ed_notify_ready(false);
}

/* Tells the old generation to quit: with a handover to the new one,
 * through the channel, else (no channel, or handover off) by QUIT. */
static void
ed_quit_old(bool handover)
{
    ed_handover_msg_t m;
    size_t            i;

    memset(&m, 0, sizeof(m));
    ed_handover_init_msg(&m, ED_HO_QUIT, ed_m.generation, -1);
    for (i = 0; i < ed_m.nprocs; i++) {
        ed_proc_t *p = &ed_m.procs[i];

        if (p->generation == ed_m.generation || p->exiting) {
            continue;
        }
        p->exiting = 1;
        if (handover && p->chan && p->pid > 0
            && ed_handover_send(p->chan->ev.fd, &m, -1) == ED_OK)
        {
            p->chan->quit_sent = 1;
            p->chan->done = 0;
            continue;
        }
        if (p->pid > 0 && kill(p->pid, SIGQUIT) != 0 && errno != ESRCH) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "kill(%d, %d) failed",
                   (int)p->pid, SIGQUIT);
        }
    }
    ed_timer_add(ed_m.loop, &ed_m.kill_timer,
                 ed_core_conf(ed_m.cycle)->shutdown_timeout + 5000);
}

/* Moves a reload with a handover on: once every new worker is READY the
 * old ones quit, once every old one has sent HANDOFF_DONE it is done. */
static void
ed_reload_check(void)
{
    size_t i;

    if (ed_m.reload_phase == ED_RELOAD_READY) {
        for (i = 0; i < ed_m.nprocs; i++) {
            ed_proc_t *p = &ed_m.procs[i];

            if (p->generation == ed_m.generation && p->pid > 0 && p->chan
                && !p->chan->ready)
            {
                return;
            }
        }
        ed_quit_old(true);
        ed_m.reload_phase = ED_RELOAD_DONE;
        ed_timer_add(ed_m.loop, &ed_m.reload_timer, ED_RELOAD_DONE_MSEC);
    }
    if (ed_m.reload_phase == ED_RELOAD_DONE) {
        for (i = 0; i < ed_m.nprocs; i++) {
            ed_proc_t *p = &ed_m.procs[i];

            if (p->chan && p->chan->quit_sent && !p->chan->done) {
                return;
            }
        }
        ed_reload_finish();
    }
}

static void
ed_on_reload_timer(ed_timer_t *t)
{
    ed_unused(t);
    if (ed_m.reload_phase == ED_RELOAD_READY) {
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "the new workers are not all "
               "ready after %d ms: stopping the old ones",
               ED_RELOAD_READY_MSEC);
        ed_quit_old(true);
        ed_m.reload_phase = ED_RELOAD_DONE;
        ed_timer_add(ed_m.loop, &ed_m.reload_timer, ED_RELOAD_DONE_MSEC);
        ed_reload_check();
        return;
    }
    if (ed_m.reload_phase == ED_RELOAD_DONE) {
        ed_reload_finish();
    }
}

/* A reload still under way when another begins, or at shutdown: the old
 * generation quits now and the reload is reported done. */
static void
ed_reload_complete(void)
{
    if (ed_m.reload_phase == ED_RELOAD_READY) {
        ed_quit_old(true);
    }
    if (ed_m.reload_phase != ED_RELOAD_NONE) {
        ed_reload_finish();
    }
}

static void
ed_on_respawn_timer(ed_timer_t *t)
{
    ed_msec_t next = 0;
    size_t    i;

    ed_unused(t);
    for (i = 0; i < ed_m.nprocs; i++) {
        ed_proc_t *p = &ed_m.procs[i];

        if (p->pid != 0) {
            continue;
        }
        if (p->respawn_at <= ed_current_msec) {
            if (ed_proc_spawn(p) == ED_OK) {
                ed_log(ED_LOG_NOTICE, ed_log_cur, 0,
                       "worker %d respawned as pid %d (respawn %u)", p->id,
                       (int)p->pid, p->restarts);
                continue;
            }
            p->respawn_at = ed_current_msec + 1000;
        }
        if (next == 0 || p->respawn_at < next) {
            next = p->respawn_at;
        }
    }
    if (next) {
        ed_timer_add(ed_m.loop, &ed_m.respawn_timer, next - ed_current_msec);
    }
}

static void
ed_on_child_exit(ed_proc_t *p, int status)
{
    ed_core_conf_t *ccf = ed_core_conf(ed_m.cycle);
    ed_module_t   **mods = ed_modules_table();
    bool            abnormal;
    ed_msec_t       delay = 0;
    size_t          i;

    /* Before the slot is respawned under the same id. An older
     * generation's shared tables went with its cycle. */
    for (i = 0; p->generation == ed_m.generation && mods[i] != NULL; i++) {
        if (mods[i]->worker_gone) {
            mods[i]->worker_gone(ed_m.cycle, p->id);
        }
    }

    ed_chan_close(p);

    abnormal = WIFSIGNALED(status)
               || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
    if (WIFSIGNALED(status)) {
        ed_log(p->exiting ? ED_LOG_NOTICE : ED_LOG_ALERT, ed_log_cur, 0,
               "worker %d (pid %d) killed by signal %d", p->id, (int)p->pid,
               WTERMSIG(status));
    } else {
        ed_log(abnormal ? ED_LOG_ALERT : ED_LOG_NOTICE, ed_log_cur, 0,
               "worker %d (pid %d) exited with code %d", p->id, (int)p->pid,
               WEXITSTATUS(status));
    }
    if (!abnormal || p->exiting || ed_m.state != ED_MASTER_RUNNING
        || p->generation != ed_m.generation)
    {
        ed_proc_remove(p);
        return;
    }
    p->restarts++;
    if (ed_stats) {
        atomic_fetch_add(&ed_stats->restarts, 1);
    }
    if (ccf->max_restarts && p->restarts > (unsigned)ccf->max_restarts) {
        ed_log(ED_LOG_CRIT, ed_log_cur, 0,
               "worker %d died %u times (max_restarts %d): stopping",
               p->id, p->restarts, ccf->max_restarts);
        ed_proc_remove(p);
        ed_m.exit_status = 2;
        ed_shutdown(ED_MASTER_TERMINATING, SIGTERM, 3000);
        return;
    }
    /* A worker dying right after start is likely to die again: back off
     * exponentially up to 5 s instead of spinning. */
    if (ed_current_msec - p->started < 1000) {
        p->fast_fails++;
        delay = ed_min((ed_msec_t)100 << ed_min(p->fast_fails - 1, 6), 5000);
    } else {
        p->fast_fails = 0;
    }
    p->pid = 0;
    p->respawn_at = ed_current_msec + delay;
    ed_on_respawn_timer(NULL);
}

/* Whether a slot of generation gen is left (alive or to respawn). */
static bool
ed_generation_left(unsigned gen)
{
    size_t i;

    for (i = 0; i < ed_m.nprocs; i++) {
        if (ed_m.procs[i].generation == gen) {
            return true;
        }
    }
    return false;
}

static void
ed_reap(void)
{
    pid_t    pid;
    int      status;
    size_t   i;
    unsigned gen;
    char     old[4096];

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == ed_m.upgrade_pid) {
            ed_m.upgrade_pid = 0;
            ed_log(ED_LOG_ALERT, ed_log_cur, 0,
                   "the new binary (pid %d) exited: upgrade failed",
                   (int)pid);
            if (ed_m.oldbin) {
                snprintf(old, sizeof(old), "%s.oldbin", ed_pid_path());
                if (rename(old, ed_pid_path()) != 0) {
                    ed_pid_file_write();
                }
                ed_m.oldbin = false;
                ed_notify("MAINPID=%d\nSTATUS=upgrade failed: serving "
                          "generation %u", (int)getpid(), ed_m.generation);
            }
            continue;
        }
        if (ed_tls_ocsp_reaped(pid, status)
            || ed_http_cache_manager_reaped(pid, status))
        {
            continue;
        }
        ed_stats_exited(pid);
        for (i = 0; i < ed_m.nprocs; i++) {
            if (ed_m.procs[i].pid == pid) {
                gen = ed_m.procs[i].generation;
                ed_on_child_exit(&ed_m.procs[i], status);
                if (!ed_generation_left(gen)) {
                    ed_log(ED_LOG_NOTICE, ed_log_cur, 0,
                           "generation %u stopped", gen);
                }
                break;
            }
        }
    }
    ed_chan_resume();
    ed_reload_check();
    if (ed_m.state != ED_MASTER_RUNNING && ed_procs_alive() == 0) {
        ed_loop_stop(ed_m.loop);
    }
}

/* Opens the error log of a cycle. ED_OK or ED_ERROR (logged). */
static int
ed_open_log(ed_cycle_t *cycle)
{
    ed_core_conf_t *ccf = ed_core_conf(cycle);
    const char     *path = ccf->error_log.data;

    /* A daemon's stderr is its error log file: "stderr" means it. */
    if (ed_daemon_error_log && strcmp(path, "stderr") == 0) {
        path = ed_daemon_error_log;
    }
    if (ed_log_open(&cycle->log, path, (unsigned)ccf->error_level)
        != ED_OK)
    {
        ed_log(ED_LOG_EMERG, ed_log_cur, errno, "cannot open error log %s",
               path);
        return ED_ERROR;
    }
    return ED_OK;
}

/* Publishes the configuration now in force (its -T sha256 and the
 * time) for eddy_config_info. */
static void
ed_publish_config(ed_cycle_t *cycle)
{
    unsigned char md[32];

    if (ed_conf_dump_sha256(cycle, md) != ED_OK) {
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "cannot hash the configuration: "
               "eddy_config_info keeps the previous sha256");
        return;
    }
    ed_stats_config(md);
}

static void
ed_reload_failed(void)
{
    if (ed_stats) {
        atomic_fetch_add(&ed_stats->reload_failures, 1);
    }
}

static void
ed_reload(void)
{
    ed_cycle_t *cycle, *old = ed_m.cycle;
    ed_conf_t  *errors;
    const char *msg = NULL;
    char        err[512];
    unsigned    i;

    struct timespec ts;

    ed_reload_complete();
    ed_m.reload_seq++;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ed_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
              (unsigned long long)ts.tv_sec * 1000000ULL
                  + (unsigned long long)ts.tv_nsec / 1000);
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "reloading configuration");
    cycle = ed_cycle_load(old->conf_file, old->prefix, &errors);
    ed_conf_log_warnings(cycle ? cycle->conf : errors, ed_log_cur);
    if (cycle == NULL) {
        for (i = 0; errors && i < errors->nerrors && i < ED_CONF_MAX_ERRORS;
             i++)
        {
            ed_log(ED_LOG_ERR, ed_log_cur, 0, "%s", errors->errors[i]);
        }
        ed_log(ED_LOG_ERR, ed_log_cur, 0,
               "reload failed: keeping the running configuration");
        ed_reload_report(false, errors, NULL);
        ed_reload_failed();
        ed_cycle_errors_free(errors);
        ed_notify("READY=1\nSTATUS=reload failed: keeping generation %u",
                  ed_m.generation);
        return;
    }
    if (ed_open_log(cycle) != ED_OK) {
        msg = "cannot open the new error log";
    } else if (ed_listeners_open(cycle, old, ed_log_cur) != ED_OK) {
        /* Copied: giving the sockets back below may set another. */
        snprintf(err, sizeof(err), "%s", ed_listeners_error());
        msg = err;
    }
    if (msg) {
        /* Give the taken sockets back before dropping the new cycle. */
        ed_listeners_open(old, cycle, ed_log_cur);
        ed_log(ED_LOG_ERR, ed_log_cur, 0,
               "reload failed: keeping the running configuration");
        ed_reload_report(false, NULL, msg);
        ed_reload_failed();
        ed_cycle_free(cycle);
        ed_notify("READY=1\nSTATUS=reload failed: keeping generation %u",
                  ed_m.generation);
        return;
    }
    ed_m.cycle = cycle;
    ed_log_cur = &cycle->log;
    ed_publish_config(cycle);
    /* Before the old cycle goes: its valid OCSP responses carry over. */
    ed_tls_ocsp_start(ed_m.loop, cycle);
    /* The cache manager of the new cycle's caches replaces the old. */
    ed_http_cache_manager_start(ed_m.loop, cycle, ed_m.argv);
    ed_announce_listeners(cycle, old);
    /* What the new cycle did not take (removed listeners, old log files)
     * is released before forking: the new workers must not inherit it.
     * The old workers keep their own copies of removed listeners until
     * they stop accepting; the kernel closes them with the last copy. */
    /* The listeners left in the old cycle are the removed ones: their
     * unix socket files go too (not while an upgraded binary may still
     * use them). */
    ed_listeners_close(old, !ed_m.oldbin);
    ed_listeners_trim(cycle);
    ed_cycle_free(old);
    ed_drop_pending();
    if (ed_start_workers() != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "starting the new generation "
               "failed");
    }
    ed_m.no_workers = false;
    /* Never across a binary upgrade: both masters serve the listeners. */
    if (ed_core_conf(cycle)->events->handover && !ed_m.oldbin
        && ed_m.upgrade_pid == 0)
    {
        ed_m.reload_phase = ED_RELOAD_READY;
        ed_timer_add(ed_m.loop, &ed_m.reload_timer, ED_RELOAD_READY_MSEC);
        ed_reload_check();
        return;
    }
    ed_quit_old(false);
    ed_reload_finish();
}

/* USR2: starts the new binary with our listening sockets. */
static void
ed_upgrade(void)
{
    char   env[4096], old[4096];
    pid_t  pid;

    if (ed_m.upgrade_pid) {
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "an upgrade is already running");
        return;
    }
    snprintf(old, sizeof(old), "%s.oldbin", ed_pid_path());
    if (rename(ed_pid_path(), old) != 0) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "rename %s failed",
               ed_pid_path());
        return;
    }
    ed_m.oldbin = true;
    if (ed_listeners_export(ed_m.cycle, env, sizeof(env)) != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "too many listening sockets");
        rename(old, ed_pid_path());
        ed_m.oldbin = false;
        return;
    }
    pid = fork();
    if (pid == 0) {
        sigset_t all;

        setenv("EDDY_INHERIT", env, 1);
        ed_tls_keys_pass_on();
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        execv(ed_m.argv[0], ed_m.argv);
        _exit(2);
    }
    /* Our own sockets close on exec again. */
    {
        ed_listener_t **lsp = ed_m.cycle->listeners.elts;
        size_t          i;
        int             j;

        for (i = 0; i < ed_m.cycle->listeners.nelts; i++) {
            if (lsp[i]->fd >= 0) {
                fcntl(lsp[i]->fd, F_SETFD, FD_CLOEXEC);
            }
            for (j = 0; j < lsp[i]->nfds; j++) {
                fcntl(lsp[i]->fds[j], F_SETFD, FD_CLOEXEC);
            }
        }
    }
    if (pid < 0) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "fork() failed");
        snprintf(old, sizeof(old), "%s.oldbin", ed_pid_path());
        rename(old, ed_pid_path());
        ed_m.oldbin = false;
        return;
    }
    ed_m.upgrade_pid = pid;
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "upgrade: started %s as pid %d",
           ed_m.argv[0], (int)pid);
}

/* USR1: reopens the logs here first, so that the files exist and belong
 * to `user:` when the workers reopen them. */
static void
ed_reopen(void)
{
    ed_module_t *m;
    size_t       i;

    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "reopening logs");
    if (ed_log_reopen(ed_log_cur) != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "reopening %s failed",
               ed_log_cur->path);
    } else if (ed_log_cur->path) {
        ed_cycle_give_file(ed_m.cycle, ed_log_cur->fd, ed_log_cur->path);
    }
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->reopen_master) {
            m->reopen_master(ed_m.cycle);
        }
    }
    ed_signal_workers(SIGUSR1, false);
}

/* The graceful stop of QUIT: the workers close their listeners and
 * finish what is in flight within shutdown_timeout. */
static void
ed_graceful_stop(void)
{
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "graceful shutdown");
    /* What the service manager waits for beyond TimeoutStopSec: the
     * workers' shutdown_timeout and the 5 s `eddy -s quit` allows. */
    ed_notify("STOPPING=1\nSTATUS=draining: %lld connections\n"
              "EXTEND_TIMEOUT_USEC=%llu", (long long)ed_connections(),
              (unsigned long long)
                  (ed_core_conf(ed_m.cycle)->shutdown_timeout + 5000)
                  * 1000ULL);
    ed_shutdown(ED_MASTER_QUITTING, SIGQUIT,
                ed_core_conf(ed_m.cycle)->shutdown_timeout + 2000);
}

/* Whether another master serves our listeners: we are the old master
 * of a binary upgrade, or the new one while the old one (whose pid is
 * in PIDFILE.oldbin) still runs. Draining would then only send the
 * balancer away from a host that keeps serving. */
static bool
ed_upgrade_under_way(void)
{
    char  path[4096], buf[32];
    FILE *f;
    long  pid = 0;

    if (ed_m.oldbin || ed_m.upgrade_pid) {
        return true;
    }
    snprintf(path, sizeof(path), "%s.oldbin", ed_pid_path());
    f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    if (fgets(buf, sizeof(buf), f) != NULL) {
        pid = strtol(buf, NULL, 10);
    }
    fclose(f);
    return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) == 0;
}

/* A duration as the configuration would write it: "2s", "1500ms". */
static const char *
ed_msec_text(ed_msec_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0) {
        snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
    } else {
        snprintf(buf, size, "%llums", (unsigned long long)ms);
    }
    return buf;
}

static void
ed_on_drain_timer(ed_timer_t *t)
{
    ed_unused(t);
    ed_m.draining = false;
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "drain over: closing listeners");
    ed_graceful_stop();
}

/* QUIT. With drain_delay, a master alone on its listeners first drains:
 * it keeps them open for the delay while the workers (told through the
 * shared flag) answer health with 503 and close every connection after
 * its response, so that the balancer marks the host down and clients
 * reconnect elsewhere before anything is refused. A second QUIT cuts
 * the delay short. */
static void
ed_quit(void)
{
    ed_core_conf_t *ccf = ed_core_conf(ed_m.cycle);
    char            text[32];

    if (ed_m.draining) {
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "second QUIT: drain cut short");
        ed_timer_del(ed_m.loop, &ed_m.drain_timer);
        ed_on_drain_timer(NULL);
        return;
    }
    if (ccf->drain_delay == 0 || ed_m.state != ED_MASTER_RUNNING
        || ed_m.no_workers || ed_upgrade_under_way())
    {
        ed_graceful_stop();
        return;
    }
    if (ed_stats == NULL) {
        /* The workers read the flag in shared memory. */
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "cannot drain without the shared "
               "status memory: stopping at once");
        ed_graceful_stop();
        return;
    }
    ed_m.draining = true;
    atomic_store(&ed_stats->draining, 1);
    ed_msec_text(ccf->drain_delay, text, sizeof(text));
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "draining: health answers 503 for "
           "%s", text);
    ed_notify("STOPPING=1\nSTATUS=draining: health answers 503 for %s\n"
              "EXTEND_TIMEOUT_USEC=%llu", text,
              (unsigned long long)(ccf->drain_delay + ccf->shutdown_timeout
                                   + 5000) * 1000ULL);
    ed_timer_add(ed_m.loop, &ed_m.drain_timer, ccf->drain_delay);
}

static void
ed_master_on_signal(void *data, int signo)
{
    ed_unused(data);
    switch (signo) {
    case SIGCHLD:
        ed_reap();
        return;
    case SIGHUP:
        if (ed_m.draining) {
            /* A new generation would serve a host that is leaving. */
            ed_log(ED_LOG_WARN, ed_log_cur, 0, "reload refused: draining");
            ed_m.reload_seq++;
            ed_reload_report(false, NULL, "reload refused: draining");
            return;
        }
        if (ed_m.state == ED_MASTER_RUNNING) {
            ed_reload();
        }
        return;
    case SIGQUIT:
        ed_quit();
        return;
    case SIGTERM:
    case SIGINT:
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "fast shutdown");
        ed_notify("STOPPING=1\nSTATUS=stopping");
        ed_shutdown(ED_MASTER_TERMINATING, SIGTERM, 3000);
        return;
    case SIGUSR1:
        ed_reopen();
        return;
    case SIGWINCH:
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "stopping workers (WINCH)");
        ed_m.no_workers = true;
        ed_drop_pending();
        ed_signal_workers(SIGQUIT, false);
        return;
    case SIGUSR2:
        /* A new master would serve on after this one, told to stop,
         * has gone: the stop would not stop the host. */
        if (ed_m.draining || ed_m.state != ED_MASTER_RUNNING) {
            ed_log(ED_LOG_WARN, ed_log_cur, 0, "upgrade refused: %s",
                   ed_m.draining ? "draining" : "shutting down");
            return;
        }
        ed_upgrade();
        return;
    default:
        return;
    }
}

int
ed_master_run(ed_cycle_t *cycle, char *const *argv)
{
    sigset_t set;
    char     path[4096];

    ed_m.cycle = cycle;
    ed_m.argv = argv;
    ed_m.kill_timer.handler = ed_on_kill_timer;
    ed_m.respawn_timer.handler = ed_on_respawn_timer;
    ed_m.drain_timer.handler = ed_on_drain_timer;
    ed_m.reload_timer.handler = ed_on_reload_timer;
    ed_m.loop = ed_loop_create(ed_log_cur);
    if (ed_m.loop == NULL) {
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGWINCH);
    if (ed_loop_signals(ed_m.loop, &set, ed_master_on_signal, NULL) != ED_OK) {
        ed_loop_destroy(ed_m.loop);
        return 2;
    }
    /* Session ticket keys live in shared memory; the master rotates them
     * for every worker. */
    ed_tls_keys_timer(ed_m.loop);
    ed_tls_ocsp_start(ed_m.loop, cycle);
    ed_http_cache_manager_start(ed_m.loop, cycle, argv);
    /* The status counters: made once, so reloads keep them. Without
     * them eddy serves on, and status shows zeros. */
    if (ed_stats_init() != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno,
               "shared memory for the status counters failed");
    }
    ed_publish_config(cycle);
    if (ed_pid_file_write() != ED_OK) {
        ed_loop_destroy(ed_m.loop);
        return 2;
    }
    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "eddy/%s started", ED_VERSION);
    ed_announce_listeners(cycle, NULL);
    if (ed_start_workers() != ED_OK) {
        ed_m.exit_status = 2;
        ed_shutdown(ED_MASTER_TERMINATING, SIGTERM, 3000);
    } else {
        ed_notify_ready(ed_master_upgraded);
        /* eddy -d: the launcher exits 0 on this byte. */
        if (ed_log_tee_fd >= 0) {
            if (write(ed_log_tee_fd, "", 1) != 1) {
                /* The launcher is gone. */
            }
            close(ed_log_tee_fd);
            ed_log_tee_fd = -1;
        }
    }

    ed_loop_run(ed_m.loop);

    ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "exiting");
    if (ed_m.oldbin) {
        snprintf(path, sizeof(path), "%s.oldbin", ed_pid_path());
        unlink(path);
    } else {
        unlink(ed_pid_path());
    }
    ed_reload_status_path(ed_pid_path(), path, sizeof(path));
    unlink(path);
    ed_listeners_close(ed_m.cycle, !ed_m.oldbin);
    while (ed_m.nprocs) {
        ed_chan_close(&ed_m.procs[0]);
        ed_proc_remove(&ed_m.procs[0]);
    }
    ed_fwd_flush();
    ed_tls_ocsp_stop();
    ed_http_cache_manager_stop();
    ed_loop_destroy(ed_m.loop);
    free(ed_m.procs);
    ed_log_cur = &ed_log_stderr;
    ed_cycle_free(ed_m.cycle);
    return ed_m.exit_status;
}
