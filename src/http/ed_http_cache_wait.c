/* Request collapsing's waiting side (cache_lock): a request whose key
 * another request (of any worker) is fetching follows that fetch's temp
 * file in path/.tmp/: written (the head, then body bytes, which it may
 * stream), renamed into place, or removed. The kernel tells: one
 * inotify descriptor per worker, one watch per cache directory, so
 * waiters are woken, never polled, and a filler needs no channel to the
 * other workers. The client that handed its fill to a detached fetch of
 * the same worker is told by the fetch itself (a local waiter). */
#include "ed_http_cache.h"

#include <sys/inotify.h>

typedef struct {
    ed_event_t               ev;
    ed_http_cache_waiter_t  *list;
} ed_cache_wait_t;

static ed_cache_wait_t ed_cache_w = { { -1, 0, NULL }, NULL };

static void
ed_cache_wait_unlink(ed_http_cache_waiter_t *w)
{
    if (!w->queued) {
        return;
    }
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        ed_cache_w.list = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    w->next = w->prev = NULL;
    w->queued = 0;
}

static void
ed_cache_wait_woken(ed_defer_t *d)
{
    ed_http_cache_waiter_t *w = ed_container_of(d, ed_http_cache_waiter_t,
                                                wake);
    unsigned                events = w->events;

    w->events = 0;
    w->done(w, events);
}

static void
ed_cache_wait_timeout(ed_timer_t *t)
{
    ed_http_cache_waiter_t *w = t->data;

    w->done(w, ED_CACHE_WAIT_TIMEOUT);
}

/* Tells the waiters on wd (all of them for -1) whose name is name (any
 * for NULL) what happened. */
static void
ed_cache_wait_wake(int wd, const char *name, unsigned events)
{
    ed_http_cache_waiter_t *w;

    for (w = ed_cache_w.list; w; w = w->next) {
        if ((wd == -1 || w->wd == wd)
            && (name == NULL || strcmp(w->name, name) == 0))
        {
            w->events |= events;
            ed_loop_post(ed_worker->loop, &w->wake);
        }
    }
}

static void
ed_cache_wait_read(ed_event_t *ev, uint32_t events)
{
    char                        buf[4096]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    const struct inotify_event *ie;
    ssize_t                     n;
    char                       *p;

    ed_unused(events);
    /* Edge-triggered: read until empty. */
    for (;;) {
        n = read(ev->fd, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        for (p = buf; p < buf + n; p += sizeof(*ie) + ie->len) {
            ie = (const struct inotify_event *)(void *)p;
            if (ie->mask & IN_Q_OVERFLOW) {
                /* Events lost: each waiter looks for itself. */
                ed_cache_wait_wake(-1, NULL, ED_CACHE_WAIT_MODIFIED);
            } else if (ie->mask & IN_IGNORED) {
                /* The directory went: nothing will tell any more. */
                ed_cache_wait_wake(ie->wd, NULL, ED_CACHE_WAIT_DELETED);
            } else if (ie->len) {
                ed_cache_wait_wake(ie->wd, ie->name,
                                   (ie->mask & IN_MODIFY
                                        ? ED_CACHE_WAIT_MODIFIED : 0)
                                   | (ie->mask & IN_MOVED_FROM
                                          ? ED_CACHE_WAIT_MOVED : 0)
                                   | (ie->mask & IN_DELETE
                                          ? ED_CACHE_WAIT_DELETED : 0));
            }
        }
    }
}

int
ed_http_cache_wait(ed_http_cache_waiter_t *w, ed_msec_t timeout)
{
    char path[PATH_MAX];
    int  fd;

    if (ed_worker == NULL) {
        return ED_ERROR;
    }
    if (ed_cache_w.ev.fd < 0) {
        fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0) {
            return ED_ERROR;
        }
        ed_cache_w.ev.fd = fd;
        ed_cache_w.ev.handler = ed_cache_wait_read;
        if (ed_loop_add(ed_worker->loop, &ed_cache_w.ev, EPOLLIN | EPOLLET)
            != ED_OK)
        {
            close(fd);
            ed_cache_w.ev.fd = -1;
            return ED_ERROR;
        }
    }
    snprintf(path, sizeof(path), "%s/.tmp", w->cache->path.data);
    /* The same directory gives the same wd: one watch per cache. */
    w->wd = inotify_add_watch(ed_cache_w.ev.fd, path,
                              IN_MODIFY | IN_DELETE | IN_MOVED_FROM
                              | IN_ONLYDIR);
    if (w->wd < 0) {
        return ED_ERROR;
    }
    w->events = 0;
    w->wake.handler = ed_cache_wait_woken;
    w->timer.handler = ed_cache_wait_timeout;
    w->timer.data = w;
    w->prev = NULL;
    w->next = ed_cache_w.list;
    if (w->next) {
        w->next->prev = w;
    }
    ed_cache_w.list = w;
    w->queued = 1;
    ed_timer_add(ed_worker->loop, &w->timer, timeout);
    /* Gone before the watch was there: no event will come. Written
     * already: the waiter looks at it once. */
    snprintf(path, sizeof(path), "%s/.tmp/%s", w->cache->path.data,
             w->name);
    w->events = access(path, F_OK) != 0 ? ED_CACHE_WAIT_DELETED
                                         : ED_CACHE_WAIT_MODIFIED;
    ed_loop_post(ed_worker->loop, &w->wake);
    return ED_OK;
}

void
ed_http_cache_wait_local(ed_http_cache_waiter_t *w)
{
    w->events = 0;
    w->wake.handler = ed_cache_wait_woken;
    w->timer.handler = ed_cache_wait_timeout;
    w->timer.data = w;
    w->queued = 0;
}

void
ed_http_cache_wait_notify(ed_http_cache_waiter_t *w, unsigned events)
{
    w->events |= events;
    ed_loop_post(ed_worker->loop, &w->wake);
}

void
ed_http_cache_wait_reset(ed_http_cache_waiter_t *w)
{
    w->events = 0;
}

void
ed_http_cache_wait_touch(ed_http_cache_waiter_t *w, ed_msec_t timeout)
{
    ed_timer_add(ed_worker->loop, &w->timer, timeout);
}

void
ed_http_cache_wait_cancel(ed_http_cache_waiter_t *w)
{
    if (ed_worker == NULL) {
        return;
    }
    ed_cache_wait_unlink(w);
    ed_timer_del(ed_worker->loop, &w->timer);
    ed_loop_unpost(ed_worker->loop, &w->wake);
}

void
ed_http_cache_wait_exit(void)
{
    if (ed_cache_w.ev.fd >= 0) {
        if (ed_worker) {
            ed_loop_forget(ed_worker->loop, &ed_cache_w.ev);
        }
        close(ed_cache_w.ev.fd);
        ed_cache_w.ev.fd = -1;
    }
    ed_cache_w.list = NULL;
}
