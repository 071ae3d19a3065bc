/* The IOStream: buffered reads by delimiter or count, a write queue. */
#include "ed_stream.h"

#include <sys/sendfile.h>
#include <sys/socket.h>

#define ED_STREAM_IOV 64          /* iovecs per writev, within IOV_MAX */
#define ED_STREAM_DELIVERIES 16   /* read callbacks per event, then post */
#define ED_STREAM_WRITES 16       /* write calls per flush, then post */
#define ED_STREAM_GATHER (65536 + 4096) /* bytes gathered for one write */
#define ED_STREAM_FREE_CHUNKS 256 /* chunk headers kept for reuse */
#define ED_STREAM_SENDFILE_MAX ((size_t)1 << 30)

/* Values of rmode: the kind of the pending read request. */
enum {
    ED_RM_NONE = 0,
    ED_RM_UNTIL,
    ED_RM_SCAN,
    ED_RM_BYTES,
    ED_RM_SOME
};

/* Kinds of write chunks. Copy chunks carry their bytes after the header,
 * in a buffer of the pool or in memory of their own. */
enum {
    ED_WC_POOL = 0,
    ED_WC_HEAP,
    ED_WC_REF,
    ED_WC_FILE
};

struct ed_wchunk_s {
    ed_wchunk_t *next;
    char        *pos;   /* memory: the next byte to send */
    size_t       len;   /* bytes left to send */
    size_t       cap;   /* copy chunks: bytes of room after the header */
    off_t        off;   /* file: the next offset to send */
    int          fd;
    int          type;
};

#define ed_wchunk_is_copy(c)                                                 \
    ((c)->type == ED_WC_POOL || (c)->type == ED_WC_HEAP)
#define ed_wchunk_data(c) ((char *)((c) + 1))

/* Marks a caller on the stack that is about to run callbacks: close()
 * clears alive, so the caller knows s may be freed and returns at once.
 * The guards of all streams form one stack (callbacks run one at a time,
 * nested only when a callback of one stream drives another): streams
 * carry no pointer for them. */
typedef struct ed_stream_guard_s ed_stream_guard_t;

struct ed_stream_guard_s {
    ed_stream_guard_t *prev;
    ed_stream_t       *s;
    bool               alive;
};

static ed_stream_guard_t *ed_stream_guards;

static void ed_stream_event(ed_event_t *ev, uint32_t events);
static void ed_stream_post_handler(ed_defer_t *d);
static void ed_stream_write_notify(ed_stream_t *s);
static int ed_stream_write_queue(ed_stream_t *s);

/* Buffer pool. */

void
ed_buf_pool_init(ed_buf_pool_t *bp, size_t size, size_t max_free)
{
    bp->size = ed_max(size, sizeof(void *));
    bp->max_free = max_free;
    bp->nfree = 0;
    bp->free = NULL;
    bp->chunks = NULL;
    bp->nchunks = 0;
    bp->loop = NULL;
}

/* Returns a buffer of bp->size bytes, or NULL on ENOMEM. */
void *
ed_buf_get(ed_buf_pool_t *bp)
{
    void *buf = bp->free;

    if (buf != NULL) {
        bp->free = *(void **)buf;
        bp->nfree--;
        return buf;
    }
    return malloc(bp->size);
}

void
ed_buf_put(ed_buf_pool_t *bp, void *buf)
{
    if (buf == NULL) {
        return;
    }
    if (bp->nfree >= bp->max_free) {
        free(buf);
        return;
    }
    *(void **)buf = bp->free;
    bp->free = buf;
    bp->nfree++;
}

/* Frees the free lists; buffers still in use stay the users' to put. */
void
ed_buf_pool_free(ed_buf_pool_t *bp)
{
    void *p;

    while ((p = bp->free) != NULL) {
        bp->free = *(void **)p;
        free(p);
    }
    while ((p = bp->chunks) != NULL) {
        bp->chunks = *(void **)p;
        free(p);
    }
    bp->nfree = 0;
    bp->nchunks = 0;
}

/* Plain sockets. */

/* A socket call's result as the transport returns it: bytes, ED_AGAIN,
 * or ED_ERROR with errno. */
static ssize_t
ed_plain_result(ssize_t r)
{
    if (r >= 0) {
        return r;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? ED_AGAIN : ED_ERROR;
}

static ssize_t
ed_plain_recv(ed_stream_t *s, char *buf, size_t len)
{
    ssize_t r;

    do {
        r = recv(s->ev.fd, buf, len, 0);
    } while (r == -1 && errno == EINTR);
    return ed_plain_result(r);
}

/* sendmsg rather than writev: MSG_NOSIGNAL, so a gone peer is EPIPE and
 * not a SIGPIPE. */
static ssize_t
ed_plain_writev(ed_stream_t *s, const struct iovec *iov, int n)
{
    struct msghdr mh;
    ssize_t       r;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = (struct iovec *)iov;
    mh.msg_iovlen = (size_t)n;
    do {
        r = sendmsg(s->ev.fd, &mh, MSG_NOSIGNAL | (s->more ? MSG_MORE : 0));
    } while (r == -1 && errno == EINTR);
    return ed_plain_result(r);
}

static ssize_t
ed_plain_sendfile(ed_stream_t *s, int fd, off_t *off, size_t len)
{
    ssize_t r;

    do {
        r = sendfile(s->ev.fd, fd, off, len);
    } while (r == -1 && errno == EINTR);
    return ed_plain_result(r);
}

const ed_stream_io_t ed_stream_plain_io = {
    .recv = ed_plain_recv,
    .writev = ed_plain_writev,
    .sendfile = ed_plain_sendfile,
};

/* Pipes (a child's stdin, stdout and stderr): read and writev. The
 * process ignores SIGPIPE (see ed_stream.h): a reader gone is EPIPE. */

static ssize_t
ed_pipe_read(ed_stream_t *s, char *buf, size_t len)
{
    ssize_t r;

    do {
        r = read(s->ev.fd, buf, len);
    } while (r == -1 && errno == EINTR);
    return ed_plain_result(r);
}

static ssize_t
ed_pipe_writev(ed_stream_t *s, const struct iovec *iov, int n)
{
    ssize_t r;

    do {
        r = writev(s->ev.fd, iov, n);
    } while (r == -1 && errno == EINTR);
    return ed_plain_result(r);
}

const ed_stream_io_t ed_stream_pipe_io = {
    .recv = ed_pipe_read,
    .writev = ed_pipe_writev,
};

/* Guards. */

static void
ed_stream_enter(ed_stream_t *s, ed_stream_guard_t *g)
{
    g->alive = true;
    g->s = s;
    g->prev = ed_stream_guards;
    ed_stream_guards = g;
}

/* For every guard, alive or not (it is on its caller's stack); never
 * touches the stream, which may be freed memory. */
static void
ed_stream_leave(ed_stream_guard_t *g)
{
    ed_stream_guards = g->prev;
}

/* The deferred callback: a delivery in the posted queue (moving it there
 * from the flush queue; the flush then follows the delivery), or a flush
 * in the flush queue. */
static void
ed_stream_post_deliver(ed_stream_t *s)
{
    s->deliver_due = 1;
    if (ed_defer_posted(&s->post)) {
        if (!s->in_flushq) {
            return;
        }
        ed_loop_unpost(ed_stream_loop(s), &s->post);
    }
    s->in_flushq = 0;
    ed_loop_post(ed_stream_loop(s), &s->post);
}

static void
ed_stream_post_flush(ed_stream_t *s)
{
    s->flush_due = 1;
    if (ed_defer_posted(&s->post)) {
        return;
    }
    s->in_flushq = 1;
    ed_loop_post_flush(ed_stream_loop(s), &s->post);
}

/* A flush no longer needed (the queue is empty). */
static void
ed_stream_unpost_flush(ed_stream_t *s)
{
    s->flush_due = 0;
    if (s->in_flushq) {
        ed_loop_unpost(ed_stream_loop(s), &s->post);
    }
}

/* Setup and teardown. */

static void
ed_stream_setup(ed_stream_t *s, ed_loop_t *loop, ed_buf_pool_t *bufs, int fd,
                void *data)
{
    memset(s, 0, sizeof(ed_stream_t));
    s->ev.fd = fd;
    s->ev.handler = ed_stream_event;
    bufs->loop = loop;
    s->bufs = bufs;
    s->io = &ed_stream_plain_io;
    s->data = data;
    s->low_water = ED_STREAM_LOW_WATER;
    s->high_water = ED_STREAM_HIGH_WATER;
    s->post.handler = ed_stream_post_handler;
    /* A connected socket can take bytes: the first response need not wait
     * for the first EPOLLOUT. */
    s->writable = 1;
}

/* Registers the stream with epoll, edge-triggered: a lazy stream when it
 * first has to wait. A read wait asks for EPOLLIN only: an idle
 * connection then has no EPOLLOUT event queued that would be handled
 * ahead of what the loop learns next (a QUIT). A write wait adds
 * EPOLLOUT, kept from then on. TLS may need either direction for
 * either: both. epoll reports at once what is already ready, so no edge
 * is lost. ED_OK or ED_ERROR (logged). */
static int
ed_stream_arm(ed_stream_t *s, bool out)
{
    uint32_t want = EPOLLIN | EPOLLRDHUP | EPOLLET;
    int      rc;

    if (out || s->io->cross) {
        want |= EPOLLOUT;
    }
    if (s->closed || (s->ev.mask & want) == want) {
        return ED_OK;
    }
    if (s->ev.mask == 0) {
        rc = ed_loop_add(ed_stream_loop(s), &s->ev, want);
    } else {
        rc = ed_loop_mod(ed_stream_loop(s), &s->ev, s->ev.mask | want);
    }
    if (rc != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "epoll_ctl(%d) failed",
               s->ev.fd);
        return ED_ERROR;
    }
    return ED_OK;
}

/* ED_OK, or ED_ERROR (logged) when epoll refuses fd; fd stays the
 * caller's then. */
int
ed_stream_init(ed_stream_t *s, ed_loop_t *loop, ed_buf_pool_t *bufs, int fd,
               void *data)
{
    ed_stream_setup(s, loop, bufs, fd, data);
    /* Reading waits for EPOLLIN, which epoll reports at once if bytes
     * are already there. */
    if (ed_stream_arm(s, true) != ED_OK) {
        s->ev.fd = -1;
        s->closed = 1;
        return ED_ERROR;
    }
    return ED_OK;
}

void
ed_stream_init_lazy(ed_stream_t *s, ed_loop_t *loop, ed_buf_pool_t *bufs,
                    int fd, void *data)
{
    ed_stream_setup(s, loop, bufs, fd, data);
    /* The client spoke first, often before the accept: the first read
     * tries the socket at once. */
    s->readable = 1;
}

static void
ed_stream_free_rbuf(ed_stream_t *s)
{
    if (s->rbuf != NULL) {
        if (s->rsize == s->bufs->size) {
            ed_buf_put(s->bufs, s->rbuf);
        } else {
            free(s->rbuf);
        }
    }
    s->rbuf = NULL;
    s->rsize = 0;
    s->rpos = 0;
    s->rend = 0;
    s->rkeep = 0;
    s->scanned = 0;
    s->release = 0;
}

static void
ed_wchunk_free(ed_stream_t *s, ed_wchunk_t *c)
{
    ed_buf_pool_t *bp = s->bufs;

    if (c->type == ED_WC_POOL) {
        ed_buf_put(bp, c);
    } else if (c->type == ED_WC_HEAP || bp->nchunks >= ED_STREAM_FREE_CHUNKS) {
        free(c);
    } else {
        *(void **)c = bp->chunks;
        bp->chunks = c;
        bp->nchunks++;
    }
}

static void
ed_stream_free_chunks(ed_stream_t *s)
{
    ed_wchunk_t *c, *next;

    if (s->wtail != NULL) {
        c = s->wtail->next;
        s->wtail->next = NULL;
        for (; c != NULL; c = next) {
            next = c->next;
            ed_wchunk_free(s, c);
        }
    }
    s->wtail = NULL;
    s->wqueued = 0;
    s->over_high = 0;
}

void
ed_stream_close(ed_stream_t *s)
{
    ed_stream_guard_t *g;

    if (s->closed) {
        return;
    }
    s->closed = 1;
    for (g = ed_stream_guards; g != NULL; g = g->prev) {
        if (g->s == s) {
            g->alive = false;
        }
    }
    ed_loop_unpost(ed_stream_loop(s), &s->post);
    s->deliver_due = 0;
    s->flush_due = 0;
    if (s->io->close != NULL) {
        s->io->close(s);
    }
    if (s->ev.fd != -1) {
        /* close() takes the fd out of epoll: no epoll_ctl needed. */
        ed_loop_forget(ed_stream_loop(s), &s->ev);
        close(s->ev.fd);
        s->ev.fd = -1;
    }
    s->read_cb = NULL;
    s->rmode = ED_RM_NONE;
    s->delivering = 0;
    s->notify_flushed = 0;
    s->notify_drain = 0;
    s->notify_close = 0;
    ed_stream_free_rbuf(s);
    ed_stream_free_chunks(s);
}

/* Reading. */

/* The longest piece the pending request may take: max, less when kept
 * bytes pin a buffer too small for it. */
static size_t
ed_stream_rmax(ed_stream_t *s)
{
    if (s->rmode == ED_RM_BYTES) {
        return s->rmax;
    }
    if (s->rbuf != NULL && s->rkeep > 0 && s->rsize - s->rkeep < s->rmax) {
        return s->rsize > s->rkeep ? s->rsize - s->rkeep : 0;
    }
    return s->rmax;
}

/* Looks for the pending request in the buffered bytes. ED_OK with the
 * piece's length, ED_DECLINED (max buffered, no end), ED_AGAIN, or
 * ED_ERROR when kept bytes leave read_some no room. */
static int
ed_stream_check(ed_stream_t *s, size_t *len)
{
    char   *p = s->rbuf + s->rpos, *f;
    size_t  avail = s->rend - s->rpos, max = ed_stream_rmax(s), win, from;

    switch (s->rmode) {
    case ED_RM_SCAN:
        /* The scanner goes on where it stopped: only the new bytes (and
         * the few it kept back) are looked at again. */
        win = ed_min(avail, max);
        if (win > 0) {
            from = s->scanned;
            *len = s->u.scan(p, win, &from);
            if (*len > 0) {
                return ED_OK;
            }
            s->scanned = (uint32_t)ed_min(from, win);
        }
        if (win == max) {
            *len = max;
            return ED_DECLINED;
        }
        return ED_AGAIN;

    case ED_RM_UNTIL:
        win = ed_min(avail, max);
        if (win > s->scanned) {
            if (win >= s->dlen) {
                /* Only the new bytes, plus dlen - 1 for a delimiter split
                 * across reads. */
                from = s->scanned >= s->dlen ? s->scanned - (s->dlen - 1) : 0;
                f = memmem(p + from, win - from, s->u.delim, s->dlen);
                if (f != NULL) {
                    *len = (size_t)(f - p) + s->dlen;
                    return ED_OK;
                }
            }
            s->scanned = (uint32_t)win;
        }
        if (win == max) {
            *len = max;
            return ED_DECLINED;
        }
        return ED_AGAIN;

    case ED_RM_BYTES:
        if (avail >= s->rmax) {
            *len = s->rmax;
            return ED_OK;
        }
        return ED_AGAIN;

    default:
        if (max == 0) {
            errno = ENOBUFS;
            return ED_ERROR;
        }
        if (avail > 0) {
            *len = ed_min(avail, max);
            return ED_OK;
        }
        return ED_AGAIN;
    }
}

/* Makes room to recv into: takes a buffer (one of its own when the
 * request needs more than the pool's size), grows it when nothing is
 * kept, or moves the unread bytes down to rkeep. ED_OK, or ED_ERROR
 * (ENOMEM logged, or ENOBUFS). */
static int
ed_stream_room(ed_stream_t *s)
{
    size_t  need = ed_stream_rmax(s), avail, want, size;
    char   *buf;

    if (s->rbuf == NULL || (s->rsize < need && s->rkeep == 0)) {
        size = ed_max(need, s->bufs->size);
        buf = size == s->bufs->size ? ed_buf_get(s->bufs) : malloc(size);
        if (buf == NULL) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno,
                   "stream buffer of %zu bytes failed", size);
            return ED_ERROR;
        }
        avail = s->rend - s->rpos;
        if (avail > 0) {
            memcpy(buf, s->rbuf + s->rpos, avail);
        }
        if (s->rbuf != NULL) {
            if (s->rsize == s->bufs->size) {
                ed_buf_put(s->bufs, s->rbuf);
            } else {
                free(s->rbuf);
            }
        }
        s->rbuf = buf;
        s->rsize = (uint32_t)size;
        s->rpos = 0;
        s->rend = (uint32_t)avail;
    }

    avail = s->rend - s->rpos;
    want = need > avail ? need - avail : 1;
    if (s->rsize - s->rend < want && s->rpos > s->rkeep) {
        memmove(s->rbuf + s->rkeep, s->rbuf + s->rpos, avail);
        s->rpos = s->rkeep;
        s->rend = s->rkeep + (uint32_t)avail;
    }
    if (s->rend == s->rsize) {
        errno = ENOBUFS;
        return ED_ERROR;
    }
    return ED_OK;
}

/* Satisfies the pending request from the buffer, reading the socket while
 * it is readable and the request wants more. Returns what to deliver
 * (ED_OK, ED_DECLINED, ED_DONE with the leftover, ED_ERROR), or ED_AGAIN
 * to wait for the next edge. */
static int
ed_stream_read_try(ed_stream_t *s, size_t *len)
{
    size_t  room;
    ssize_t n;
    int     rc;

    for (;;) {
        if (s->rbuf != NULL) {
            rc = ed_stream_check(s, len);
            if (rc != ED_AGAIN) {
                return rc;
            }
        }
        if (s->error) {
            *len = 0;
            return ED_ERROR;
        }
        if (s->eof) {
            *len = s->rend - s->rpos;
            return ED_DONE;
        }
        if (!s->readable) {
            if (ed_stream_arm(s, false) != ED_OK) {
                s->error = 1;
                continue;
            }
            return ED_AGAIN;
        }
        if (ed_stream_room(s) != ED_OK) {
            s->error = 1;
            continue;
        }
        room = s->rsize - s->rend;
        n = s->io->recv(s, s->rbuf + s->rend, room);
        if (n > 0) {
            s->rend += (uint32_t)n;
            /* Short read: the socket is drained, as far as this edge
             * goes; new bytes make a new edge (nginx's trick, one recv
             * saved per request). After RDHUP keep reading to see EOF. */
            if ((size_t)n < room && !s->rdhup) {
                s->readable = 0;
            }
            continue;
        }
        s->readable = 0;
        if (n == 0) {
            s->eof = 1;
            continue;
        }
        if (n == ED_AGAIN) {
            if (ed_stream_arm(s, false) != ED_OK) {
                s->error = 1;
                continue;
            }
            return ED_AGAIN;
        }
        ed_log(ED_LOG_INFO, ed_log_cur, errno, "recv() failed");
        s->error = 1;
    }
}

/* After a delivery: rewinds an empty buffer, frees one of its own, and
 * honours a release asked for during the callback. */
static void
ed_stream_settle(ed_stream_t *s)
{
    if (s->rbuf == NULL) {
        return;
    }
    if (s->rpos == s->rend) {
        if (s->rkeep == 0) {
            s->rpos = 0;
            s->rend = 0;
            if (s->release || s->rsize != s->bufs->size) {
                ed_stream_free_rbuf(s);
            }
        } else if (s->rpos > s->rkeep) {
            s->rpos = s->rkeep;
            s->rend = s->rkeep;
        }
    }
    s->release = 0;
}

/* Calls cb if set. ED_OK, or ED_DONE when it closed the stream. */
static int
ed_stream_call(ed_stream_t *s, ed_stream_guard_t *g, ed_stream_pt cb)
{
    if (cb != NULL) {
        cb(s);
        if (!g->alive) {
            return ED_DONE;
        }
    }
    return ED_OK;
}

/* Calls the write notifications due: on_close, on_drain, on_flushed.
 * ED_OK, or ED_DONE when a callback closed the stream (gone). */
static int
ed_stream_notify(ed_stream_t *s, ed_stream_guard_t *g)
{
    if (s->notify_close) {
        s->notify_close = 0;
        s->notify_drain = 0;
        s->notify_flushed = 0;
        if (ed_stream_call(s, g, s->on_close) != ED_OK) {
            return ED_DONE;
        }
    }
    if (s->notify_drain) {
        s->notify_drain = 0;
        if (ed_stream_call(s, g, s->on_drain) != ED_OK) {
            return ED_DONE;
        }
    }
    if (s->notify_flushed) {
        s->notify_flushed = 0;
        if (s->wtail != NULL) {
            /* on_drain (or on_close's owner) wrote again: the queue is
             * not flushed any more, and the flush to come tells. */
            return ED_OK;
        }
        return ed_stream_call(s, g, s->on_flushed);
    }
    return ED_OK;
}

/* Runs what the stream owes its owner: notifications, then satisfied read
 * requests, up to ED_STREAM_DELIVERIES (pipelined requests are delivered
 * in a loop, not by recursion); the rest is posted. ED_OK, or ED_DONE
 * when a callback closed the stream (gone). */
static int
ed_stream_dispatch(ed_stream_t *s)
{
    ed_stream_guard_t  g;
    ed_stream_read_pt  cb;
    char              *data;
    size_t             len = 0;
    int                rc, i;

    ed_stream_enter(s, &g);
    if (ed_stream_notify(s, &g) != ED_OK) {
        ed_stream_leave(&g);
        return ED_DONE;
    }
    for (i = 0; s->read_cb != NULL; i++) {
        if (i == ED_STREAM_DELIVERIES) {
            ed_stream_post_deliver(s);
            break;
        }
        rc = ed_stream_read_try(s, &len);
        if (rc == ED_AGAIN) {
            break;
        }
        data = s->rbuf != NULL ? s->rbuf + s->rpos : NULL;
        if (rc == ED_OK || rc == ED_DONE) {
            s->rpos += len;
        } else if (rc == ED_ERROR) {
            data = NULL;
            len = 0;
        }
        cb = s->read_cb;
        s->read_cb = NULL;
        s->rmode = ED_RM_NONE;
        s->scanned = 0;
        s->delivering = 1;
        cb(s, rc, data, len);
        if (!g.alive) {
            ed_stream_leave(&g);
            return ED_DONE;
        }
        s->delivering = 0;
        ed_stream_settle(s);
    }
    ed_stream_leave(&g);
    return ED_OK;
}

static void
ed_stream_post_handler(ed_defer_t *d)
{
    ed_stream_t *s = ed_container_of(d, ed_stream_t, post);

    if (s->deliver_due) {
        s->deliver_due = 0;
        if (ed_stream_dispatch(s) != ED_OK) {
            return;
        }
        if (s->flush_due) {
            /* Flushed in the flush queue after this delivery (unless the
             * delivery posted more: the flush then follows that one). */
            s->flush_due = 0;
            if (s->wtail != NULL) {
                ed_stream_post_flush(s);
            }
        }
        return;
    }
    if (s->flush_due) {
        s->flush_due = 0;
        ed_stream_write_queue(s);
        ed_stream_write_notify(s);
    }
}

static void
ed_stream_event(ed_event_t *ev, uint32_t events)
{
    ed_stream_t *s = ed_container_of(ev, ed_stream_t, ev);

    if (s->io->cross && (events & (EPOLLIN | EPOLLOUT))) {
        /* A TLS record may be waiting on the other direction. */
        events |= EPOLLIN | EPOLLOUT;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        s->readable = 1;
    }
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        s->rdhup = 1;
    }
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        s->writable = 1;
        /* Written with whatever else this turn queues, before sleeping. */
        if (s->wtail != NULL) {
            ed_stream_post_flush(s);
        }
    }
    /* Without a pending request the bytes stay in the kernel
     * (back-pressure); readable remembers the edge. */
    if (s->read_cb != NULL && s->readable) {
        ed_stream_dispatch(s);
    }
}

/* Starts a request: delivered from a posted callback when the buffer or
 * the socket may satisfy it, else on the next edge. Inside a read
 * callback, the delivering loop picks it up instead. */
static int
ed_stream_request(ed_stream_t *s, int mode, ed_stream_read_pt cb)
{
    s->rmode = mode;
    s->read_cb = cb;
    s->scanned = 0;
    if (s->delivering) {
        return ED_OK;
    }
    if (s->rend > s->rpos || s->readable || s->eof || s->error) {
        ed_stream_post_deliver(s);
        return ED_OK;
    }
    /* The next edge delivers: a lazy stream must be registered for it. */
    return ed_stream_arm(s, false);
}

/* ED_OK, or ED_ERROR (closed, or an empty delimiter or max). */
int
ed_stream_read_until(ed_stream_t *s, const char *delim, size_t dlen,
                     size_t max, ed_stream_read_pt cb)
{
    if (s->closed || delim == NULL || dlen == 0 || max == 0 || cb == NULL
        || max > ED_STREAM_READ_MAX || dlen > ED_STREAM_READ_MAX)
    {
        return ED_ERROR;
    }
    s->u.delim = delim;
    s->dlen = (uint32_t)dlen;
    s->rmax = (uint32_t)max;
    return ed_stream_request(s, ED_RM_UNTIL, cb);
}

/* ED_OK, or ED_ERROR (closed, or no scanner, or max 0). */
int
ed_stream_read_until_scan(ed_stream_t *s, ed_stream_scan_pt scan, size_t max,
                          ed_stream_read_pt cb)
{
    if (s->closed || scan == NULL || max == 0 || cb == NULL
        || max > ED_STREAM_READ_MAX)
    {
        return ED_ERROR;
    }
    s->u.scan = scan;
    s->dlen = 0;
    s->rmax = (uint32_t)max;
    return ed_stream_request(s, ED_RM_SCAN, cb);
}

/* ED_OK, or ED_ERROR (closed, n 0, or n cannot fit after kept bytes). */
int
ed_stream_read_bytes(ed_stream_t *s, size_t n, ed_stream_read_pt cb)
{
    if (s->closed || n == 0 || cb == NULL || n > ED_STREAM_READ_MAX) {
        return ED_ERROR;
    }
    if (s->rbuf != NULL && s->rkeep > 0 && s->rsize - s->rkeep < n) {
        return ED_ERROR;
    }
    s->rmax = (uint32_t)n;
    return ed_stream_request(s, ED_RM_BYTES, cb);
}

/* ED_OK, or ED_ERROR (closed, or max 0). */
int
ed_stream_read_some(ed_stream_t *s, size_t max, ed_stream_read_pt cb)
{
    if (s->closed || max == 0 || cb == NULL) {
        return ED_ERROR;
    }
    s->rmax = (uint32_t)ed_min(max, ED_STREAM_READ_MAX);
    return ed_stream_request(s, ED_RM_SOME, cb);
}

void
ed_stream_read_stop(ed_stream_t *s)
{
    s->read_cb = NULL;
    s->rmode = ED_RM_NONE;
    s->scanned = 0;
}

void
ed_stream_keep(ed_stream_t *s, size_t n)
{
    if (s->rbuf == NULL) {
        n = 0;
    }
    s->rkeep = (uint32_t)ed_min(n, (size_t)s->rsize);
    if (s->rkeep == 0 && s->rpos == s->rend && !s->delivering) {
        s->rpos = 0;
        s->rend = 0;
    }
}

void
ed_stream_release_buffer(ed_stream_t *s)
{
    if (s->rbuf == NULL || s->rpos != s->rend || s->rkeep > 0) {
        return;
    }
    if (s->delivering) {
        /* The callback's data is in there: release after it returns. */
        s->release = 1;
        return;
    }
    ed_stream_free_rbuf(s);
}

/* Writing. */

static void
ed_stream_append(ed_stream_t *s, ed_wchunk_t *c)
{
    if (s->wtail != NULL) {
        c->next = s->wtail->next;
        s->wtail->next = c;
    } else {
        c->next = c;
    }
    s->wtail = c;
}

/* Accounts for len queued bytes; the flush runs before the loop sleeps
 * unless the socket is full (EPOLLOUT will post it then). */
static void
ed_stream_queued(ed_stream_t *s, size_t len)
{
    s->wqueued += len;
    if (s->wqueued >= s->high_water) {
        s->over_high = 1;
    }
    if (s->writable) {
        ed_stream_post_flush(s);
    }
}

/* Queues a reference or a file range of len bytes. ED_OK, or ED_ERROR
 * (closed, failed, ENOMEM). */
static int
ed_stream_queue_small(ed_stream_t *s, int type, const void *data, int fd,
                      off_t off, size_t len)
{
    ed_buf_pool_t *bp = s->bufs;
    ed_wchunk_t   *c;

    if (s->closed || s->error || off < 0) {
        return ED_ERROR;
    }
    if (len == 0) {
        return ED_OK;
    }
    c = bp->chunks;
    if (c != NULL) {
        bp->chunks = *(void **)c;
        bp->nchunks--;
    } else {
        c = malloc(sizeof(ed_wchunk_t));
        if (c == NULL) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "malloc() failed");
            return ED_ERROR;
        }
    }
    c->type = type;
    c->cap = 0;
    c->pos = (char *)data;
    c->fd = fd;
    c->off = off;
    c->len = len;
    ed_stream_append(s, c);
    ed_stream_queued(s, len);
    return ED_OK;
}

/* A copy chunk with room for len bytes: a pool buffer when it fits (no
 * malloc per response), else memory of its own. NULL on ENOMEM. */
static ed_wchunk_t *
ed_wchunk_copy(ed_stream_t *s, size_t len)
{
    ed_wchunk_t *c;
    size_t       size = s->bufs->size;

    if (size >= sizeof(ed_wchunk_t) + len) {
        c = ed_buf_get(s->bufs);
        if (c != NULL) {
            c->type = ED_WC_POOL;
            c->cap = size - sizeof(ed_wchunk_t);
        }
    } else {
        c = malloc(sizeof(ed_wchunk_t) + len);
        if (c != NULL) {
            c->type = ED_WC_HEAP;
            c->cap = len;
        }
    }
    if (c == NULL) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno,
               "write buffer of %zu bytes failed", len);
        return NULL;
    }
    c->pos = ed_wchunk_data(c);
    c->len = 0;
    return c;
}

/* Copies into the tail chunk's room, then into one new chunk. ED_OK, or
 * ED_ERROR with nothing queued. */
int
ed_stream_write(ed_stream_t *s, const void *data, size_t len)
{
    ed_wchunk_t *c = s->wtail, *nc = NULL;
    size_t       n = 0;

    if (s->closed || s->error) {
        return ED_ERROR;
    }
    if (len == 0) {
        return ED_OK;
    }
    if (c != NULL && ed_wchunk_is_copy(c)) {
        n = ed_min(len, (size_t)(ed_wchunk_data(c) + c->cap
                                 - (c->pos + c->len)));
    }
    if (n < len) {
        nc = ed_wchunk_copy(s, len - n);
        if (nc == NULL) {
            return ED_ERROR;
        }
    }
    if (n > 0) {
        memcpy(c->pos + c->len, data, n);
        c->len += n;
    }
    if (nc != NULL) {
        memcpy(nc->pos, (const char *)data + n, len - n);
        nc->len = len - n;
        ed_stream_append(s, nc);
    }
    ed_stream_queued(s, len);
    return ED_OK;
}

/* ED_OK, or ED_ERROR (closed, failed, ENOMEM). */
int
ed_stream_write_ref(ed_stream_t *s, const void *data, size_t len)
{
    return ed_stream_queue_small(s, ED_WC_REF, data, -1, 0, len);
}

/* ED_OK, or ED_ERROR (closed, failed, ENOMEM, off < 0). */
int
ed_stream_write_file(ed_stream_t *s, int fd, off_t off, size_t len)
{
    return ed_stream_queue_small(s, ED_WC_FILE, NULL, fd, off, len);
}

void
ed_stream_set_water(ed_stream_t *s, size_t low, size_t high)
{
    high = ed_min(high, (size_t)UINT32_MAX);
    s->high_water = (uint32_t)high;
    s->low_water = (uint32_t)ed_min(low, high);
}

/* Drops n written bytes from the head of the queue. */
static void
ed_stream_consume(ed_stream_t *s, size_t n)
{
    ed_wchunk_t *c;

    s->wqueued -= n;
    while (n > 0) {
        c = s->wtail->next;
        if (n < c->len) {
            c->len -= n;
            if (c->type == ED_WC_FILE) {
                c->off += (off_t)n;
            } else {
                c->pos += n;
            }
            return;
        }
        n -= c->len;
        if (c == s->wtail) {
            s->wtail = NULL;
        } else {
            s->wtail->next = c->next;
        }
        ed_wchunk_free(s, c);
    }
}

/* The peer is gone (or the file failed): drop the queue, refuse further
 * writes, and call on_close later, once. */
static void
ed_stream_write_failed(ed_stream_t *s)
{
    s->error = 1;
    ed_stream_free_chunks(s);
    s->notify_close = 1;
    ed_stream_post_deliver(s);
}

/* Sends the file chunk c at the head with the transport's sendfile.
 * *asked is how much was offered. Bytes sent, ED_AGAIN, ED_ERROR
 * (socket, errno), or ED_DECLINED (the file shrank; logged). */
static ssize_t
ed_stream_send_file(ed_stream_t *s, ed_wchunk_t *c, size_t *asked)
{
    off_t   off = c->off;
    ssize_t n;

    *asked = ed_min(c->len, ED_STREAM_SENDFILE_MAX);
    n = s->io->sendfile(s, c->fd, &off, *asked);
    if (n == 0) {
        ed_log(ED_LOG_ERR, ed_log_cur, 0,
               "file %d shrank: %zu bytes missing at %lld", c->fd,
               c->len, (long long)c->off);
        return ED_DECLINED;
    }
    return n;
}

/* On a transport without sendfile (TLS) a file range is read into a
 * buffer anyway: whether the queue's head reaches a file range within a
 * buffer's worth of memory chunks (a response head, DATA frame
 * headers), which then go out in the same buffer. */
static bool
ed_stream_gather_due(ed_stream_t *s, ed_wchunk_t *head)
{
    ed_wchunk_t *c = head;
    size_t       len = 0;

    do {
        if (c->type == ED_WC_FILE) {
            return true;
        }
        len += c->len;
        c = c->next;
    } while (c != head && len < s->bufs->size);
    return false;
}

/* Reads the file range c into area + *len, with the ranges of the same
 * file that continue it in the queue, each after a small memory chunk
 * (HTTP/2 DATA frame headers), copied into place: one preadv instead
 * of a pread per frame. Moves *len past what is in the area and returns
 * the chunk to go on with; NULL when the read came short (the area
 * then ends with the last byte read; a failure shows when the file is
 * at the head) or failed with nothing in the area (*len is 0 then). */
static ed_wchunk_t *
ed_stream_gather_file(char *area, size_t *len, ed_wchunk_t *c,
                      ed_wchunk_t *head)
{
    struct iovec iov[ED_STREAM_IOV];
    ed_wchunk_t *d = c, *m;
    size_t       at = *len, want = 0, k;
    ssize_t      n;
    int          cnt = 0, i;

    for (;;) {
        k = ed_min(d->len, ED_STREAM_GATHER - at);
        iov[cnt].iov_base = area + at;
        iov[cnt].iov_len = k;
        cnt++;
        want += k;
        at += k;
        m = d->next;
        if (k < d->len || m == head || cnt == ED_STREAM_IOV
            || m->type == ED_WC_FILE || m->len > 64
            || m->next == head || m->next->type != ED_WC_FILE
            || m->next->fd != c->fd || m->next->off != c->off + (off_t)want
            || at + m->len >= ED_STREAM_GATHER)
        {
            d = k < d->len ? d : m;
            break;
        }
        memcpy(area + at, m->pos, m->len);
        at += m->len;
        d = m->next;
    }
    do {
        n = preadv(c->fd, iov, cnt, c->off);
    } while (n == -1 && errno == EINTR);
    if (n == (ssize_t)want) {
        *len = at;
        return d;
    }
    if (n <= 0 && *len == 0) {
        ed_log(ED_LOG_ERR, ed_log_cur, n == 0 ? 0 : errno,
               "pread() of file %d at %lld failed%s", c->fd,
               (long long)c->off, n == 0 ? ": file shrank" : "");
        return NULL;
    }
    /* What was read goes, up to the first byte missing. */
    for (i = 0; n > 0 && i < cnt; i++) {
        k = ed_min((size_t)n, iov[i].iov_len);
        *len = (size_t)((char *)iov[i].iov_base - area) + k;
        n -= (ssize_t)k;
    }
    return NULL;
}

/* Fills the gather area from the head of the queue, memory copied and
 * file ranges read, and writes it with one call: each TLS record is full,
 * rather than a small head or frame header alone before each file piece,
 * and the transport may send the records together. Every transport's
 * writev is done with the bytes when it returns, so one area serves the
 * process. A retry after ED_AGAIN makes the same bytes again. Bytes
 * sent, ED_AGAIN, ED_ERROR, or ED_DECLINED (the file at the head failed
 * or shrank; logged). */
static ssize_t
ed_stream_gather(ed_stream_t *s, ed_wchunk_t *head, size_t *asked)
{
    static char  area[ED_STREAM_GATHER];
    struct iovec iov;
    ed_wchunk_t *c = head;
    size_t       len = 0, k;

    do {
        if (c->type == ED_WC_FILE) {
            c = ed_stream_gather_file(area, &len, c, head);
            if (c == NULL) {
                if (len == 0) {
                    return ED_DECLINED;
                }
                break;
            }
            continue;
        }
        k = ed_min(c->len, ED_STREAM_GATHER - len);
        memcpy(area + len, c->pos, k);
        len += k;
        c = c->next;
    } while (c != head && len < ED_STREAM_GATHER);
    *asked = len;
    iov.iov_base = area;
    iov.iov_len = len;
    return s->io->writev(s, &iov, 1);
}

/* Writes the queue while the socket takes it: one writev for the memory
 * chunks at the head (up to ED_STREAM_IOV), one sendfile per file chunk.
 * A short write means the socket is full: wait for EPOLLOUT. Sets the
 * notifications due. ED_OK (maybe partial) or ED_ERROR (failed). */
static int
ed_stream_write_queue(ed_stream_t *s)
{
    struct iovec  iov[ED_STREAM_IOV];
    ed_wchunk_t  *c, *head;
    size_t        asked, before = s->wqueued;
    ssize_t       n;
    int           i, cnt;

    for (i = 0; s->wtail != NULL && s->writable; i++) {
        if (i == ED_STREAM_WRITES) {
            /* Bounded work: the socket is still writable, so no edge
             * will come; carry on before the next sleep. */
            ed_stream_post_flush(s);
            break;
        }
        head = s->wtail->next;
        if (s->io->sendfile == NULL && ed_stream_gather_due(s, head)) {
            n = ed_stream_gather(s, head, &asked);
        } else if (head->type == ED_WC_FILE) {
            n = ed_stream_send_file(s, head, &asked);
        } else {
            asked = 0;
            c = head;
            cnt = 0;
            do {
                iov[cnt].iov_base = c->pos;
                iov[cnt].iov_len = c->len;
                asked += c->len;
                cnt++;
                c = c->next;
            } while (c != head && c->type != ED_WC_FILE
                     && cnt < ED_STREAM_IOV);
            /* A file range follows (a response head, a multipart part's
             * head): the kernel holds a partial segment for it, so head
             * and first bytes leave in full segments, with no TCP_CORK
             * calls; the file's last bytes push it all. */
            s->more = c != head && c->type == ED_WC_FILE;
            n = s->io->writev(s, iov, cnt);
        }
        if (n == ED_AGAIN) {
            s->writable = 0;
            break;
        }
        if (n < 0) {
            if (n == ED_ERROR) {
                ed_log(ED_LOG_INFO, ed_log_cur, errno, "%s() failed",
                       head->type == ED_WC_FILE ? "sendfile" : "writev");
            }
            ed_stream_write_failed(s);
            return ED_ERROR;
        }
        ed_stream_consume(s, (size_t)n);
        if ((size_t)n < asked) {
            s->writable = 0;
            break;
        }
    }
    if (!s->writable && s->wtail != NULL && ed_stream_arm(s, true) != ED_OK) {
        /* Nothing would tell us when the socket takes more. */
        ed_stream_write_failed(s);
        return ED_ERROR;
    }

    if (s->wqueued < before) {
        if (s->over_high && s->wqueued < s->low_water) {
            s->over_high = 0;
            s->notify_drain = 1;
        }
        if (s->wtail == NULL) {
            s->notify_flushed = 1;
        }
    }
    return ED_OK;
}

/* Runs the notifications a flush made due. */
static void
ed_stream_write_notify(ed_stream_t *s)
{
    ed_stream_guard_t g;

    ed_stream_enter(s, &g);
    ed_stream_notify(s, &g);
    ed_stream_leave(&g);
}

/* Writes now; callbacks it makes due run later, from a posted callback.
 * ED_OK (maybe partial) or ED_ERROR (closed, or the write failed). */
int
ed_stream_flush(ed_stream_t *s)
{
    if (s->closed || s->error) {
        return ED_ERROR;
    }
    if (ed_stream_write_queue(s) != ED_OK) {
        return ED_ERROR;
    }
    if (s->wtail == NULL) {
        ed_stream_unpost_flush(s);
    }
    if (s->notify_flushed || s->notify_drain) {
        ed_stream_post_deliver(s);
    }
    return ED_OK;
}
