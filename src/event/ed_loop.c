/* The event loop: edge-triggered epoll, a timer heap, deferred callbacks. */
#include "ed_loop.h"

#include <sys/eventfd.h>
#include <sys/signalfd.h>

#define ED_LOOP_EVENTS 512
/* Rounds of posted callbacks per drain: callbacks posted by callbacks run
 * in the same drain, but a callback that re-posts itself cannot spin the
 * loop forever; leftovers run next turn (the wait then does not sleep). */
#define ED_LOOP_POST_ROUNDS 4
/* Rounds of (posted, flush) before sleeping. */
#define ED_LOOP_FLUSH_ROUNDS 4
#define ED_LOOP_HEAP_INIT 64

struct ed_loop_s {
    int                 epfd;
    ed_log_t           *log;

    /* Timers: a binary min-heap on when, 1-based (heap[0] unused). */
    ed_timer_t        **heap;
    size_t              ntimers;
    size_t              heap_cap;

    /* Circular doubly linked lists with sentinels, so unposting is O(1)
     * wherever the callback sits, even in the list being run. */
    ed_defer_t          posted;
    ed_defer_t          flushq;
    ed_defer_t          running;

    ed_event_t          wake_ev;
    ed_event_t          sig_ev;
    sigset_t            sigset;
    ed_signal_pt        sig_handler;
    void               *sig_data;

    /* The batch being dispatched, so that removing a descriptor can
     * forget its events still waiting in the batch. */
    int                 nevents;
    int                 cur;
    unsigned            stop;
    struct epoll_event  events[ED_LOOP_EVENTS];
};

static void ed_loop_wake_handler(ed_event_t *ev, uint32_t events);
static void ed_loop_signal_handler(ed_event_t *ev, uint32_t events);

/* Defer lists. */

static void
ed_defer_list_init(ed_defer_t *q)
{
    q->next = q;
    q->prev = q;
}

static bool
ed_defer_list_empty(const ed_defer_t *q)
{
    return q->next == q;
}

static void
ed_defer_list_push(ed_defer_t *q, ed_defer_t *d)
{
    d->prev = q->prev;
    d->next = q;
    q->prev->next = d;
    q->prev = d;
}

static void
ed_defer_list_unlink(ed_defer_t *d)
{
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->next = NULL;
    d->prev = NULL;
}

/* Moves every callback of from into the empty list to. */
static void
ed_defer_list_move(ed_defer_t *from, ed_defer_t *to)
{
    if (ed_defer_list_empty(from)) {
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    ed_defer_list_init(from);
}

/* Runs the callbacks of q present now; the ones they post wait in q.
 * Handlers may unpost others from the running list. */
static void
ed_loop_run_list(ed_loop_t *loop, ed_defer_t *q)
{
    ed_defer_t *d;

    ed_defer_list_move(q, &loop->running);
    while (!ed_defer_list_empty(&loop->running)) {
        d = loop->running.next;
        ed_defer_list_unlink(d);
        d->handler(d);
    }
}

/* Lifecycle. */

/* Returns the loop, or NULL (logged) when epoll, the eventfd or memory
 * fail. Reads the clocks, so timers added before the first turn are
 * relative to now. */
size_t
ed_loop_size(void)
{
    return sizeof(ed_loop_t);
}

ed_loop_t *
ed_loop_create(ed_log_t *log)
{
    ed_loop_t *loop;

    if (log == NULL) {
        log = ed_log_cur;
    }
    loop = calloc(1, sizeof(ed_loop_t));
    if (loop == NULL) {
        ed_log(ED_LOG_ALERT, log, errno, "calloc() failed");
        return NULL;
    }
    loop->log = log;
    loop->epfd = -1;
    loop->wake_ev.fd = -1;
    loop->sig_ev.fd = -1;
    ed_defer_list_init(&loop->posted);
    ed_defer_list_init(&loop->flushq);
    ed_defer_list_init(&loop->running);
    sigemptyset(&loop->sigset);

    loop->heap = malloc(ED_LOOP_HEAP_INIT * sizeof(ed_timer_t *));
    if (loop->heap == NULL) {
        ed_log(ED_LOG_ALERT, log, errno, "malloc() failed");
        goto failed;
    }
    loop->heap_cap = ED_LOOP_HEAP_INIT;

    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd == -1) {
        ed_log(ED_LOG_ALERT, log, errno, "epoll_create1() failed");
        goto failed;
    }
    loop->wake_ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_ev.fd == -1) {
        ed_log(ED_LOG_ALERT, log, errno, "eventfd() failed");
        goto failed;
    }
    loop->wake_ev.handler = ed_loop_wake_handler;
    if (ed_loop_add(loop, &loop->wake_ev, EPOLLIN | EPOLLET) != ED_OK) {
        ed_log(ED_LOG_ALERT, log, errno, "epoll_ctl() failed");
        goto failed;
    }
    ed_time_update();
    return loop;

failed:
    ed_loop_destroy(loop);
    return NULL;
}

/* Closes the loop's own descriptors and frees it. Registered events,
 * timers and posted callbacks belong to their owners and are forgotten;
 * blocked signals stay blocked. */
void
ed_loop_destroy(ed_loop_t *loop)
{
    if (loop == NULL) {
        return;
    }
    if (loop->sig_ev.fd != -1) {
        close(loop->sig_ev.fd);
    }
    if (loop->wake_ev.fd != -1) {
        close(loop->wake_ev.fd);
    }
    if (loop->epfd != -1) {
        close(loop->epfd);
    }
    free(loop->heap);
    free(loop);
}

/* Descriptors. */

/* ED_OK, or ED_ERROR with errno from epoll_ctl. */
int
ed_loop_add(ed_loop_t *loop, ed_event_t *ev, uint32_t events)
{
    struct epoll_event ee;

    ee.events = events;
    ee.data.ptr = ev;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, ev->fd, &ee) == -1) {
        return ED_ERROR;
    }
    ev->mask = events;
    return ED_OK;
}

/* ED_OK, or ED_ERROR with errno from epoll_ctl. */
int
ed_loop_mod(ed_loop_t *loop, ed_event_t *ev, uint32_t events)
{
    struct epoll_event ee;

    ee.events = events;
    ee.data.ptr = ev;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, ev->fd, &ee) == -1) {
        return ED_ERROR;
    }
    ev->mask = events;
    return ED_OK;
}

/* Drops ev from the rest of the batch being dispatched: its owner may
 * free it as soon as this returns. */
void
ed_loop_forget(ed_loop_t *loop, ed_event_t *ev)
{
    int i;

    for (i = loop->cur + 1; i < loop->nevents; i++) {
        if (loop->events[i].data.ptr == ev) {
            loop->events[i].data.ptr = NULL;
        }
    }
    ev->mask = 0;
}

/* ED_OK, or ED_ERROR with errno from epoll_ctl; ev is forgotten either
 * way. */
int
ed_loop_del(ed_loop_t *loop, ed_event_t *ev)
{
    struct epoll_event ee;
    int                rc;

    ee.events = 0;
    ee.data.ptr = NULL;
    rc = epoll_ctl(loop->epfd, EPOLL_CTL_DEL, ev->fd, &ee);
    ed_loop_forget(loop, ev);
    return rc == -1 ? ED_ERROR : ED_OK;
}

/* Timers. */

static void
ed_heap_set(ed_loop_t *loop, size_t i, ed_timer_t *t)
{
    loop->heap[i] = t;
    t->index = i;
}

static void
ed_heap_up(ed_loop_t *loop, size_t i)
{
    ed_timer_t *t = loop->heap[i];

    while (i > 1 && loop->heap[i / 2]->when > t->when) {
        ed_heap_set(loop, i, loop->heap[i / 2]);
        i /= 2;
    }
    ed_heap_set(loop, i, t);
}

static void
ed_heap_down(ed_loop_t *loop, size_t i)
{
    ed_timer_t *t = loop->heap[i];
    size_t      c, n = loop->ntimers;

    for (;;) {
        c = 2 * i;
        if (c > n) {
            break;
        }
        if (c < n && loop->heap[c + 1]->when < loop->heap[c]->when) {
            c++;
        }
        if (loop->heap[c]->when >= t->when) {
            break;
        }
        ed_heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    ed_heap_set(loop, i, t);
}

/* Arms t at now + delay. On ENOMEM (growing the heap) the timer stays
 * disarmed and the failure is logged: the caller's timeout is lost, not
 * the worker. */
void
ed_timer_add(ed_loop_t *loop, ed_timer_t *t, ed_msec_t delay)
{
    ed_msec_t    old = t->when;
    ed_timer_t **heap;

    t->when = ed_current_msec + (delay > 0 ? delay : 0);
    if (t->index != 0) {
        if (t->when < old) {
            ed_heap_up(loop, t->index);
        } else {
            ed_heap_down(loop, t->index);
        }
        return;
    }
    if (loop->ntimers + 1 >= loop->heap_cap) {
        heap = realloc(loop->heap, 2 * loop->heap_cap * sizeof(ed_timer_t *));
        if (heap == NULL) {
            ed_log(ED_LOG_ALERT, loop->log, errno, "realloc() failed");
            return;
        }
        loop->heap = heap;
        loop->heap_cap *= 2;
    }
    loop->ntimers++;
    loop->heap[loop->ntimers] = t;
    ed_heap_up(loop, loop->ntimers);
}

void
ed_timer_del(ed_loop_t *loop, ed_timer_t *t)
{
    size_t      i = t->index;
    ed_timer_t *last;

    if (i == 0) {
        return;
    }
    t->index = 0;
    last = loop->heap[loop->ntimers--];
    if (last == t) {
        return;
    }
    ed_heap_set(loop, i, last);
    if (i > 1 && loop->heap[i / 2]->when > last->when) {
        ed_heap_up(loop, i);
    } else {
        ed_heap_down(loop, i);
    }
}

/* Returns the number of armed timers. */
size_t
ed_loop_timers(ed_loop_t *loop)
{
    return loop->ntimers;
}

/* Runs the timers due now. A handler that re-arms itself with no delay
 * is due again, so the work is bounded by the timers armed on entry. */
static void
ed_loop_expire_timers(ed_loop_t *loop)
{
    size_t      limit = loop->ntimers;
    ed_timer_t *t;

    while (limit-- > 0 && loop->ntimers > 0) {
        t = loop->heap[1];
        if (t->when > ed_current_msec) {
            break;
        }
        ed_timer_del(loop, t);
        t->handler(t);
    }
}

/* Deferred callbacks. */

void
ed_loop_post(ed_loop_t *loop, ed_defer_t *d)
{
    if (ed_defer_posted(d)) {
        return;
    }
    ed_defer_list_push(&loop->posted, d);
}

void
ed_loop_post_flush(ed_loop_t *loop, ed_defer_t *d)
{
    if (ed_defer_posted(d)) {
        return;
    }
    ed_defer_list_push(&loop->flushq, d);
}

void
ed_loop_unpost(ed_loop_t *loop, ed_defer_t *d)
{
    ed_unused(loop);
    if (!ed_defer_posted(d)) {
        return;
    }
    ed_defer_list_unlink(d);
}

/* Posted callbacks, in rounds: what they post runs in the next round. */
static void
ed_loop_run_posted(ed_loop_t *loop)
{
    int round;

    for (round = 0; round < ED_LOOP_POST_ROUNDS; round++) {
        if (ed_defer_list_empty(&loop->posted)) {
            return;
        }
        ed_loop_run_list(loop, &loop->posted);
    }
}

/* Posted callbacks, then flush callbacks; again while the flushes posted
 * more (a write that emptied a queue calls on_flushed, which may start the
 * next read), so the loop sleeps with nothing left to do. */
static void
ed_loop_drain(ed_loop_t *loop)
{
    int round;

    for (round = 0; round < ED_LOOP_FLUSH_ROUNDS; round++) {
        ed_loop_run_posted(loop);
        if (ed_defer_list_empty(&loop->flushq)) {
            return;
        }
        ed_loop_run_list(loop, &loop->flushq);
        if (ed_defer_list_empty(&loop->posted)) {
            return;
        }
    }
}

/* Signals and the waker. */

static void
ed_loop_signal_handler(ed_event_t *ev, uint32_t events)
{
    ed_loop_t              *loop = ed_container_of(ev, ed_loop_t, sig_ev);
    struct signalfd_siginfo si;
    ssize_t                 n;

    ed_unused(events);
    for (;;) {
        n = read(ev->fd, &si, sizeof(si));
        if (n != (ssize_t)sizeof(si)) {
            if (n == -1 && errno == EINTR) {
                continue;
            }
            if (n == -1 && errno != EAGAIN) {
                ed_log(ED_LOG_ALERT, loop->log, errno,
                       "read(signalfd) failed");
            }
            return;
        }
        if (loop->sig_handler) {
            loop->sig_handler(loop->sig_data, (int)si.ssi_signo);
        }
    }
}

/* Adds set to the signals the loop takes (a second call widens the set
 * and replaces the handler). ED_OK, or ED_ERROR (logged). */
int
ed_loop_signals(ed_loop_t *loop, const sigset_t *set, ed_signal_pt handler,
                void *data)
{
    sigset_t all;
    int      fd, signo;

    all = loop->sigset;
    for (signo = 1; signo < NSIG; signo++) {
        if (sigismember(set, signo) == 1) {
            sigaddset(&all, signo);
        }
    }
    /* Blocked first, so that none is delivered the default way between
     * here and the first read of the signalfd. */
    if (sigprocmask(SIG_BLOCK, &all, NULL) == -1) {
        ed_log(ED_LOG_ALERT, loop->log, errno, "sigprocmask() failed");
        return ED_ERROR;
    }
    fd = signalfd(loop->sig_ev.fd, &all, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1) {
        ed_log(ED_LOG_ALERT, loop->log, errno, "signalfd() failed");
        return ED_ERROR;
    }
    if (loop->sig_ev.fd == -1) {
        loop->sig_ev.fd = fd;
        loop->sig_ev.handler = ed_loop_signal_handler;
        if (ed_loop_add(loop, &loop->sig_ev, EPOLLIN | EPOLLET) != ED_OK) {
            ed_log(ED_LOG_ALERT, loop->log, errno, "epoll_ctl() failed");
            close(fd);
            loop->sig_ev.fd = -1;
            return ED_ERROR;
        }
    }
    loop->sigset = all;
    loop->sig_handler = handler;
    loop->sig_data = data;
    return ED_OK;
}

static void
ed_loop_wake_handler(ed_event_t *ev, uint32_t events)
{
    uint64_t n;

    ed_unused(events);
    /* Reset the counter so the next wake makes a new edge. */
    while (read(ev->fd, &n, sizeof(n)) == -1 && errno == EINTR) {
        /* retry */
    }
}

/* Safe from another thread or a signal handler. */
void
ed_loop_wake(ed_loop_t *loop)
{
    uint64_t one = 1;

    while (write(loop->wake_ev.fd, &one, sizeof(one)) == -1
           && errno == EINTR)
    {
        /* retry */
    }
}

/* Turns. */

/* Milliseconds the next wait may sleep: 0 with callbacks pending, else
 * until the earliest timer, capped by timeout (-1: no cap). */
static int
ed_loop_timeout(ed_loop_t *loop, ed_msec_t timeout)
{
    ed_msec_t t;

    if (!ed_defer_list_empty(&loop->posted)
        || !ed_defer_list_empty(&loop->flushq))
    {
        return 0;
    }
    if (loop->ntimers > 0) {
        t = loop->heap[1]->when - ed_current_msec;
        if (t < 0) {
            t = 0;
        }
        if (timeout < 0 || t < timeout) {
            timeout = t;
        }
    }
    if (timeout > INT32_MAX) {
        timeout = INT32_MAX;
    }
    return timeout < 0 ? -1 : (int)timeout;
}

/* ED_OK, or ED_ERROR (logged) if epoll_wait fails other than by EINTR. */
int
ed_loop_once(ed_loop_t *loop, ed_msec_t timeout)
{
    ed_event_t *ev;
    int         n, err;

    n = epoll_wait(loop->epfd, loop->events, ED_LOOP_EVENTS,
                   ed_loop_timeout(loop, timeout));
    err = errno;
    ed_time_update();
    if (n == -1) {
        if (err != EINTR) {
            ed_log(ED_LOG_ALERT, loop->log, err, "epoll_wait() failed");
            return ED_ERROR;
        }
        n = 0;
    }

    loop->nevents = n;
    for (loop->cur = 0; loop->cur < n; loop->cur++) {
        ev = loop->events[loop->cur].data.ptr;
        if (ev != NULL) {
            ev->handler(ev, loop->events[loop->cur].events);
        }
    }
    loop->nevents = 0;
    loop->cur = 0;

    ed_loop_expire_timers(loop);
    ed_loop_drain(loop);
    return ED_OK;
}

/* ED_OK after ed_loop_stop(), or ED_ERROR if epoll fails. */
int
ed_loop_run(ed_loop_t *loop)
{
    int rc = ED_OK;

    while (!loop->stop) {
        rc = ed_loop_once(loop, -1);
        if (rc != ED_OK) {
            break;
        }
    }
    loop->stop = 0;
    return rc;
}

/* Ends ed_loop_run after the current turn. */
void
ed_loop_stop(ed_loop_t *loop)
{
    loop->stop = 1;
}
