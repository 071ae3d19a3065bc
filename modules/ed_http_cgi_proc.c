/* cgi processes: spawning without copying the worker
 * (clone(CLONE_VM|CLONE_VFORK), as posix_spawn does), the per-worker
 * table of scripts, their timeout and the kill of their process group,
 * and reaping without ever blocking (a pidfd in the loop, else SIGCHLD
 * through the worker's signalfd). */
#include "ed_http_cgi_handler.h"
#include "ed_stats.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The child runs on this stack until execve; the worker is suspended
 * meanwhile (CLONE_VFORK), so one stack serves every spawn. */
#define ED_CGI_STACK (64 * 1024)

enum {
    ED_CGI_RUNNING = 0,  /* timeout armed */
    ED_CGI_TERM,         /* SIGTERM sent, SIGKILL after kill_after */
    ED_CGI_KILLED        /* SIGKILL sent */
};

struct ed_http_cgi_proc_s {
    ed_http_cgi_proc_t   *next;
    ed_http_cgi_proc_t   *prev;
    pid_t                 pid;      /* also its process group */
    ed_event_t            ev;       /* the pidfd, or fd -1 */
    ed_timer_t            timer;    /* timeout, then kill_after */
    ed_msec_t             timeout;
    ed_msec_t             kill_after;
    ed_http_cgi_exit_pt   cb;
    void                 *data;
    int                   state;    /* ED_CGI_RUNNING... */
    unsigned              exited:1;
    unsigned              attached:1;
    unsigned              timed_out:1;
    char                  name[];   /* the script, for log lines */
};

/* What the child reads: in the worker's memory, which it shares. */
typedef struct {
    const ed_http_cgi_spawn_t *sp;
    int                        errfd;
    pid_t                      parent;
} ed_cgi_child_t;

static ed_http_cgi_proc_t  ed_cgi_procs = { .next = &ed_cgi_procs,
                                            .prev = &ed_cgi_procs };
static int                 ed_cgi_running;
static ed_http_cgi_slot_t  ed_cgi_slots = { .next = &ed_cgi_slots,
                                            .prev = &ed_cgi_slots };
static bool                ed_cgi_no_pidfd;
static char                ed_cgi_stack[ED_CGI_STACK]
                               __attribute__((aligned(16)));

static void ed_cgi_reap(ed_http_cgi_proc_t *p);

void
ed_http_cgi_duration(ed_msec_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0) {
        snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
    } else {
        snprintf(buf, size, "%llums", (unsigned long long)ms);
    }
}

bool
ed_http_cgi_proc_room(int max)
{
    return ed_cgi_running < max;
}

bool
ed_http_cgi_proc_ending(void)
{
    ed_http_cgi_proc_t *p;

    for (p = ed_cgi_procs.next; p != &ed_cgi_procs; p = p->next) {
        if (!p->exited && !p->attached) {
            return true;
        }
    }
    return false;
}

static void ed_cgi_slot_freed(void);

void
ed_http_cgi_slot_wait(ed_http_cgi_slot_t *s, int max)
{
    s->max = max;
    if (s->queued) {
        return;
    }
    s->prev = ed_cgi_slots.prev;
    s->next = &ed_cgi_slots;
    ed_cgi_slots.prev->next = s;
    ed_cgi_slots.prev = s;
    s->queued = 1;
}

void
ed_http_cgi_slot_cancel(ed_http_cgi_slot_t *s)
{
    if (s->queued) {
        s->prev->next = s->next;
        s->next->prev = s->prev;
        s->next = s->prev = NULL;
        s->queued = 0;
    }
    if (ed_defer_posted(&s->wake)) {
        /* Woken for a freed slot it will not take now: the next
         * waiter's, or it would wait out its deadline for nothing. */
        ed_loop_unpost(ed_worker->loop, &s->wake);
        ed_cgi_slot_freed();
    }
}

/* A slot is free: the longest waiter it fits tries it (one of a
 * location with a lower max_processes may still have no room: it must
 * not take the wake of one that has). */
static void
ed_cgi_slot_freed(void)
{
    ed_http_cgi_slot_t *s;

    for (s = ed_cgi_slots.next; s != &ed_cgi_slots; s = s->next) {
        if (ed_http_cgi_proc_room(s->max)) {
            ed_http_cgi_slot_cancel(s);
            ed_loop_post(ed_worker->loop, &s->wake);
            return;
        }
    }
}

/* The child, between clone and execve: system calls only, on its own
 * stack, touching nothing of the worker's memory but what it reads. */
static int
ed_cgi_child(void *arg)
{
    const ed_cgi_child_t      *c = arg;
    const ed_http_cgi_spawn_t *sp = c->sp;
    const ed_http_cgi_limits_t *l = sp->limits;
    struct sigaction           sa;
    struct rlimit              rl;
    sigset_t                   none;
    unsigned                   fd;
    int                        sig, err, i;

    /* Every signal is still blocked (the worker blocked them all before
     * clone): dispositions go back to the default first, so that none
     * is ignored (SIGPIPE) or caught before the exec. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            (void)sigaction(sig, &sa, NULL);
        }
    }
    if (setsid() == -1
        || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    {
        goto failed;
    }
    if (getppid() != c->parent) {
        /* The worker died before PDEATHSIG was set. */
        _exit(127);
    }
    for (i = 0; i < 3; i++) {
        if (dup2(sp->fds[i], i) == -1) {
            goto failed;
        }
    }
    /* The exec report goes through fd 3, closed by a successful exec;
     * everything above it is closed now. */
    if (c->errfd != 3 && dup3(c->errfd, 3, O_CLOEXEC) == -1) {
        goto failed;
    }
    if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
            goto failed;
        }
        for (fd = 4; fd < rl.rlim_cur && fd < 1048576; fd++) {
            (void)close((int)fd);
        }
    }
    if (chdir(sp->dir) != 0) {
        goto failed;
    }
    if (l) {
        if (l->cpu != ED_CONF_UNSET_MSEC) {
            /* SIGXCPU at the limit, SIGKILL a second later. */
            rl.rlim_cur = (rlim_t)((l->cpu + 999) / 1000);
            rl.rlim_max = rl.rlim_cur + 1;
            if (setrlimit(RLIMIT_CPU, &rl) != 0) {
                goto failed;
            }
        }
#define ED_CGI_LIMIT(field, unset, res)                                      \
        if (l->field != (unset)) {                                           \
            rl.rlim_cur = rl.rlim_max = (rlim_t)l->field;                    \
            if (setrlimit(res, &rl) != 0) {                                  \
                goto failed;                                                 \
            }                                                                \
        }
        ED_CGI_LIMIT(memory, ED_CONF_UNSET_SIZE, RLIMIT_AS)
        ED_CGI_LIMIT(files, ED_CONF_UNSET, RLIMIT_NOFILE)
        ED_CGI_LIMIT(processes, ED_CONF_UNSET, RLIMIT_NPROC)
        ED_CGI_LIMIT(file_size, ED_CONF_UNSET_SIZE, RLIMIT_FSIZE)
#undef ED_CGI_LIMIT
    }
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) {
        goto failed;
    }
    execve(sp->path, sp->argv, sp->envp);

failed:
    err = errno;
    (void)!write(3, &err, sizeof(err));
    _exit(127);
}

/* Moves fd above 2 (the child puts its pipes on 0-2). Returns the fd
 * or -1. */
static int
ed_cgi_high_fd(int fd)
{
    int nfd;

    if (fd > 2) {
        return fd;
    }
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

static void
ed_cgi_free(ed_http_cgi_proc_t *p)
{
    p->prev->next = p->next;
    p->next->prev = p->prev;
    ed_timer_del(ed_worker->loop, &p->timer);
    if (p->ev.fd >= 0) {
        ed_loop_forget(ed_worker->loop, &p->ev);
        close(p->ev.fd);
    }
    free(p);
}

/* Frees a process nobody needs any more: reaped, no request on it and
 * no signal still to send. */
static void
ed_cgi_maybe_free(ed_http_cgi_proc_t *p)
{
    if (p->exited && !p->attached && p->state != ED_CGI_TERM) {
        ed_cgi_free(p);
    }
}

static void
ed_cgi_signal(ed_http_cgi_proc_t *p, int sig)
{
    /* The group outlives its leader while a grandchild is in it (one
     * holding stdout keeps the request open), and its number stays
     * taken as long as it has a member: the group is signalled after
     * the leader was reaped too; only the leader alone is not. */
    if (kill(-p->pid, sig) != 0 && !p->exited) {
        (void)kill(p->pid, sig);
    }
}

void
ed_http_cgi_proc_kill(ed_http_cgi_proc_t *p)
{
    if (p->state != ED_CGI_RUNNING) {
        return;
    }
    ed_cgi_signal(p, SIGTERM);
    p->state = ED_CGI_TERM;
    ed_timer_add(ed_worker->loop, &p->timer, p->kill_after);
}

static void
ed_cgi_on_timer(ed_timer_t *t)
{
    ed_http_cgi_proc_t *p = t->data;
    char                when[32];

    if (p->state == ED_CGI_TERM) {
        ed_cgi_signal(p, SIGKILL);
        p->state = ED_CGI_KILLED;
        ed_cgi_maybe_free(p);
        return;
    }
    /* The script's time is up. */
    ed_stats_add(cgi_timeouts, 1);
    p->timed_out = 1;
    ed_http_cgi_proc_kill(p);
    if (p->attached) {
        p->cb(p->data, -1, 0);
        return;
    }
    ed_http_cgi_duration(p->timeout, when, sizeof(when));
    ed_log(ED_LOG_ERR, ed_log_cur, 0, "cgi script \"%s\" timed out after %s",
           p->name, when);
}

/* Logs a script's end that no request reports. */
static void
ed_cgi_log_exit(const char *name, int code, int status)
{
    if (code == CLD_EXITED && status != 0) {
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "cgi script \"%s\" exited with "
               "status %d", name, status);
    } else if (code == CLD_KILLED || code == CLD_DUMPED) {
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "cgi script \"%s\" exited on "
               "signal %d", name, status);
    }
}

/* The leader ended (waitid said so): counted, reported, and its group
 * killed at once when a kill was under way. */
static void
ed_cgi_exited(ed_http_cgi_proc_t *p, int code, int status)
{
    p->exited = 1;
    ed_cgi_running--;
    ed_stats_add(cgi_active, -1);
    ed_cgi_slot_freed();
    if (p->state == ED_CGI_TERM) {
        /* A grandchild ignoring SIGTERM is not waited for: the group's
         * number is safe to use only now. */
        (void)kill(-p->pid, SIGKILL);
        p->state = ED_CGI_KILLED;
        ed_timer_del(ed_worker->loop, &p->timer);
    } else if (p->state == ED_CGI_RUNNING && !p->attached) {
        /* With a request still on it, the timeout goes on: it covers
         * the exit and the end of stdout, which a grandchild may hold
         * open for ever. */
        ed_timer_del(ed_worker->loop, &p->timer);
    }
    if (p->ev.fd >= 0) {
        ed_loop_forget(ed_worker->loop, &p->ev);
        close(p->ev.fd);
        p->ev.fd = -1;
    }
    if (p->attached) {
        p->cb(p->data, code, status);
    } else {
        ed_cgi_log_exit(p->name, code, status);
    }
    ed_cgi_maybe_free(p);
}

/* Reaps p if it ended; never blocks. */
static void
ed_cgi_reap(ed_http_cgi_proc_t *p)
{
    siginfo_t si;
    int       rc;

    if (p->exited) {
        return;
    }
    memset(&si, 0, sizeof(si));
    if (p->ev.fd >= 0) {
        rc = waitid((idtype_t)P_PIDFD, (id_t)p->ev.fd, &si,
                    WEXITED | WNOHANG);
    } else {
        rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
    }
    if (rc != 0) {
        if (errno == ECHILD) {
            ed_cgi_exited(p, CLD_KILLED, SIGKILL);
        }
        return;
    }
    if (si.si_pid == 0) {
        return;  /* still running */
    }
    ed_cgi_exited(p, si.si_code, si.si_status);
}

static void
ed_cgi_on_pidfd(ed_event_t *ev, uint32_t events)
{
    ed_unused(events);
    ed_cgi_reap(ed_container_of(ev, ed_http_cgi_proc_t, ev));
}

/* SIGCHLD (no pidfd): each of our own children is asked, none other. */
static void
ed_cgi_on_child(ed_worker_t *w)
{
    ed_http_cgi_proc_t *p, *next;

    ed_unused(w);
    for (p = ed_cgi_procs.next; p != &ed_cgi_procs; p = next) {
        next = p->next;
        ed_cgi_reap(p);
    }
}

ed_http_cgi_proc_t *
ed_http_cgi_spawn(const ed_http_cgi_spawn_t *sp, const char *name,
                  ed_msec_t timeout, ed_msec_t kill_after, int *err,
                  bool *exec_failed)
{
    ed_http_cgi_proc_t *p;
    ed_cgi_child_t      c;
    sigset_t            all, old;
    size_t              nlen = strlen(name);
    ssize_t             n;
    pid_t               pid;
    int                 ep[2], e, rc, pfd;

    *exec_failed = false;
    p = calloc(1, sizeof(*p) + nlen + 1);
    if (p == NULL) {
        *err = ENOMEM;
        return NULL;
    }
    memcpy(p->name, name, nlen + 1);
    if (pipe2(ep, O_CLOEXEC) != 0) {
        *err = errno;
        free(p);
        return NULL;
    }
    ep[1] = ed_cgi_high_fd(ep[1]);
    c.sp = sp;
    c.errfd = ep[1];
    c.parent = getpid();
    /* The child starts with every signal blocked: none may run a
     * handler of the worker's on the shared memory. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = clone(ed_cgi_child, ed_cgi_stack + ED_CGI_STACK,
                CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
    e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(ep[1]);
    if (pid == -1) {
        close(ep[0]);
        free(p);
        *err = e;
        return NULL;
    }
    /* The child has exec'd (fd 3 closed: EOF) or failed (its errno). */
    n = read(ep[0], &e, sizeof(e));
    close(ep[0]);
    if (n == (ssize_t)sizeof(e)) {
        do {
            rc = waitpid(pid, NULL, 0);  /* it has exited already */
        } while (rc == -1 && errno == EINTR);
        free(p);
        *err = e;
        *exec_failed = true;
        return NULL;
    }
    p->pid = pid;
    p->timeout = timeout;
    p->kill_after = kill_after;
    p->timer.handler = ed_cgi_on_timer;
    p->timer.data = p;
    p->ev.fd = -1;
    p->ev.handler = ed_cgi_on_pidfd;
    p->next = &ed_cgi_procs;
    p->prev = ed_cgi_procs.prev;
    p->prev->next = p;
    ed_cgi_procs.prev = p;
    ed_cgi_running++;
    ed_stats_add(cgi_spawned, 1);
    ed_stats_add(cgi_active, 1);
    ed_timer_add(ed_worker->loop, &p->timer, timeout);

    pfd = ed_cgi_no_pidfd ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd >= 0) {
        p->ev.fd = pfd;
        if (ed_loop_add(ed_worker->loop, &p->ev, EPOLLIN) != ED_OK) {
            close(pfd);
            p->ev.fd = -1;
        }
    } else if (errno == ENOSYS) {
        ed_cgi_no_pidfd = true;
    }
    if (p->ev.fd < 0) {
        /* SIGCHLD is read from the signalfd in the loop only: set before
         * returning to it, the hook sees this child's. */
        ed_worker->on_child = ed_cgi_on_child;
    }
    return p;
}

void
ed_http_cgi_proc_attach(ed_http_cgi_proc_t *p, ed_http_cgi_exit_pt cb,
                        void *data)
{
    p->cb = cb;
    p->data = data;
    p->attached = 1;
}

void
ed_http_cgi_proc_detach(ed_http_cgi_proc_t *p, bool kill)
{
    if (!p->attached) {
        return;
    }
    p->attached = 0;
    p->cb = NULL;
    p->data = NULL;
    if (kill) {
        ed_http_cgi_proc_kill(p);
    }
    ed_cgi_maybe_free(p);
}

void
ed_http_cgi_proc_exit_worker(void)
{
    ed_http_cgi_proc_t *p;

    while ((p = ed_cgi_procs.next) != &ed_cgi_procs) {
        if (!p->exited) {
            (void)kill(-p->pid, SIGKILL);
            (void)kill(p->pid, SIGKILL);
            ed_cgi_running--;
            ed_stats_add(cgi_active, -1);
        }
        ed_cgi_free(p);
    }
}
