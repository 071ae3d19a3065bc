/* The event loop: epoll (edge-triggered), a min-heap of timers, deferred
 * callbacks, signals through signalfd and an eventfd waker. One per worker. */
#ifndef ED_LOOP_H
#define ED_LOOP_H

#include "ed_core.h"

#include <signal.h>
#include <sys/epoll.h>

/* events: the EPOLL* bits that fired. */
typedef void (*ed_event_pt)(ed_event_t *ev, uint32_t events);

/* Embedded in its owner, which the handler finds with ed_container_of
 * (events are many: one per connection). */
struct ed_event_s {
    int          fd;
    uint32_t     mask;    /* registered EPOLL* bits, 0 when not registered */
    ed_event_pt  handler;
};

typedef void (*ed_timer_pt)(ed_timer_t *t);

struct ed_timer_s {
    ed_msec_t    when;    /* absolute, in ed_current_msec time */
    size_t       index;   /* 1-based heap slot; 0 when not armed */
    ed_timer_pt  handler;
    void        *data;
};

typedef void (*ed_defer_pt)(ed_defer_t *d);

/* A deferred callback, embedded in its owner (the handler finds it with
 * ed_container_of); posting twice (to either queue) is a no-op. next/prev
 * link it into the loop's queue (O(1) unpost); next is NULL while not
 * queued. Zeroed memory is an unposted callback. */
struct ed_defer_s {
    ed_defer_t  *next;
    ed_defer_t  *prev;
    ed_defer_pt  handler;
};

#define ed_defer_posted(d) ((d)->next != NULL)

typedef void (*ed_signal_pt)(void *data, int signo);

/* NULL on failure (logged). */
ed_loop_t *ed_loop_create(ed_log_t *log);
/* The bytes of a loop (its event array): the memory estimate. */
size_t ed_loop_size(void);
void ed_loop_destroy(ed_loop_t *loop);

/* Register, change, remove a descriptor. ED_OK or ED_ERROR (errno). */
int ed_loop_add(ed_loop_t *loop, ed_event_t *ev, uint32_t events);
int ed_loop_mod(ed_loop_t *loop, ed_event_t *ev, uint32_t events);
int ed_loop_del(ed_loop_t *loop, ed_event_t *ev);
/* For a descriptor about to be closed (and not shared with another process
 * or dup): forgets ev without a system call, since close() removes it from
 * epoll. Like ed_loop_del, drops ev's events still pending in the batch
 * being dispatched, so the owner may free ev at once. */
void ed_loop_forget(ed_loop_t *loop, ed_event_t *ev);

/* Arms t to fire after delay ms (re-arms if armed). O(log n). */
void ed_timer_add(ed_loop_t *loop, ed_timer_t *t, ed_msec_t delay);
/* Disarms t if armed. O(log n). */
void ed_timer_del(ed_loop_t *loop, ed_timer_t *t);
#define ed_timer_active(t) ((t)->index != 0)
size_t ed_loop_timers(ed_loop_t *loop);

/* Runs d->handler(d) once, later in this turn (after I/O and timers).
 * Callbacks posted by callbacks run in the same drain, in rounds (a few at
 * most; the rest run next turn without sleeping). */
void ed_loop_post(ed_loop_t *loop, ed_defer_t *d);
/* Runs d->handler(d) once just before the loop sleeps, after every posted
 * callback: where streams flush their write queues. Normal callbacks that
 * flush callbacks post run before sleeping too. */
void ed_loop_post_flush(ed_loop_t *loop, ed_defer_t *d);
/* Removes d from whichever queue holds it. */
void ed_loop_unpost(ed_loop_t *loop, ed_defer_t *d);

/* Blocks the signals of set and delivers them to handler through a
 * signalfd, as loop events. ED_OK or ED_ERROR. */
int ed_loop_signals(ed_loop_t *loop, const sigset_t *set,
                    ed_signal_pt handler, void *data);
/* Wakes a sleeping loop (eventfd); safe from a signal handler or another
 * thread. */
void ed_loop_wake(ed_loop_t *loop);

/* Runs turns until ed_loop_stop(). Each turn: wait (timeout = next timer),
 * update the cached time, dispatch I/O events, expired timers, posted
 * callbacks, then flush callbacks. ED_OK, or ED_ERROR if epoll fails. */
int ed_loop_run(ed_loop_t *loop);
/* One turn waiting at most timeout ms (-1: until an event), for tests. */
int ed_loop_once(ed_loop_t *loop, ed_msec_t timeout);
/* Ends ed_loop_run after the current turn (from a callback; from outside
 * the loop, follow with ed_loop_wake). */
void ed_loop_stop(ed_loop_t *loop);

#endif /* ED_LOOP_H */
