/* ed_stream: a buffered non-blocking stream on a socket (Tornado's
 * IOStream): read-until-delimiter with a maximum, read-n-bytes, read-some,
 * and a write queue of memory and file ranges flushed with writev/sendfile
 * just before the loop sleeps, with high/low water marks. */
#ifndef ED_STREAM_H
#define ED_STREAM_H

#include "ed_loop.h"

#include <sys/uio.h>

/* Callbacks and ownership:
 * - Every callback (read callbacks, on_flushed, on_drain, on_close) runs
 *   from the loop (an I/O event or a posted callback), never from inside
 *   the ed_stream_* call that caused it.
 * - A callback may call ed_stream_close(s) and then free the memory that
 *   holds s (its owner): the stream notices the close through a flag on
 *   its own stack and touches nothing afterwards. The owner must always
 *   call ed_stream_close before freeing s, also outside callbacks.
 * - A read callback's data is consumed before the callback runs (a new
 *   request made inside it starts after the piece); data stays valid until
 *   the callback returns, or longer if kept with ed_stream_keep. The
 *   callback may give unread bytes back by lowering s->rpos (not below
 *   data). After ed_stream_close, data is gone.
 * - Write errors (the peer is gone) call on_close once, later; a stream
 *   without on_close reports them to the pending read as ED_ERROR. Set
 *   on_close: with a read stopped, nothing else will tell the owner.
 * - on_flushed runs each time the write queue becomes empty by writing
 *   (not once only; clear it when done with it).
 * - write_file through sendfile(2) can raise SIGPIPE (there is no
 *   MSG_NOSIGNAL for it): processes using it must ignore SIGPIPE.
 * - ed_stream_close closes the fd without epoll_ctl(DEL): the fd must not
 *   be shared (dup, fork without exec) while the stream is open. */

/* A free list of fixed-size buffers, one per worker: idle streams give
 * their read buffer back here. The streams of a pool run on one loop,
 * which the pool names for them (a pointer less per stream). */
struct ed_buf_pool_s {
    size_t      size;      /* bytes per buffer */
    size_t      max_free;  /* buffers kept on the free list at most */
    size_t      nfree;
    void       *free;      /* singly linked through the first word */
    void       *chunks;    /* free write-queue chunk headers, likewise */
    size_t      nchunks;
    ed_loop_t  *loop;      /* set by ed_stream_init */
};

void ed_buf_pool_init(ed_buf_pool_t *bp, size_t size, size_t max_free);
void *ed_buf_get(ed_buf_pool_t *bp);           /* NULL on ENOMEM */
void ed_buf_put(ed_buf_pool_t *bp, void *buf);
void ed_buf_pool_free(ed_buf_pool_t *bp);

/* Transport below the stream: plain socket now, TLS later. Each returns
 * bytes done, ED_AGAIN, or ED_ERROR (errno set); recv returns 0 at EOF. */
typedef struct {
    ssize_t (*recv)(ed_stream_t *s, char *buf, size_t len);
    ssize_t (*writev)(ed_stream_t *s, const struct iovec *iov, int n);
    /* NULL when the transport cannot sendfile: the stream then preads. */
    ssize_t (*sendfile)(ed_stream_t *s, int fd, off_t *off, size_t len);
    /* Called by ed_stream_close before the fd closes (TLS close_notify
     * and freeing); may be NULL. */
    void    (*close)(ed_stream_t *s);
    /* Reads may need the socket writable and writes readable (TLS):
     * every readiness event then retries both directions. */
    unsigned  cross;
} ed_stream_io_t;

extern const ed_stream_io_t ed_stream_plain_io;
/* For a pipe's end (read and writev; no sendfile: file ranges are
 * pread). Set s->io to it after ed_stream_init. */
extern const ed_stream_io_t ed_stream_pipe_io;

/* Result of a read request, passed to its callback:
 *   ED_OK       data/len is the requested piece (for read_until it ends
 *               with the delimiter); it is consumed when the callback
 *               returns;
 *   ED_DECLINED read_until: max bytes buffered without the delimiter;
 *   ED_DONE     the peer closed before the request was satisfied;
 *               data/len is what was left unread;
 *   ED_ERROR    a socket error (errno logged at info).
 * Data stays valid until the stream compacts its buffer, which it never
 * does below s->rkeep (see ed_stream_keep). */
typedef void (*ed_stream_read_pt)(ed_stream_t *s, int status, char *data,
                                  size_t len);
typedef void (*ed_stream_pt)(ed_stream_t *s);
/* Finds the end of a message in buf[0..len); returns its length (end
 * included) or 0 when not there yet. For custom read_until scanners.
 * *resume is 0 on the first call for a message; a scanner returning 0
 * sets it (at most len) to where the next call, given the same bytes and
 * more after them, goes on, so that a message trickling in is scanned
 * once, not once per read. */
typedef size_t (*ed_stream_scan_pt)(const char *buf, size_t len,
                                    size_t *resume);

typedef struct ed_wchunk_s ed_wchunk_t;

/* Sizes and offsets of the read buffer are 32-bit: a read request asks
 * for at most ED_STREAM_READ_MAX bytes. The write queue counts in size_t
 * (file ranges). Idle streams are many: keep this small. */
#define ED_STREAM_READ_MAX UINT32_MAX

struct ed_stream_s {
    ed_event_t            ev;        /* fd and loop registration */
    ed_buf_pool_t        *bufs;      /* and bufs->loop, the loop */
    /* The transport; TLS points it at a per-connection block holding
     * its own state after the table (ed_tls.c). */
    const ed_stream_io_t *io;
    void                 *data;      /* the owner */

    /* Read side: unread bytes are rbuf[rpos..rend). */
    char                 *rbuf;
    uint32_t              rsize;
    uint32_t              rpos;
    uint32_t              rend;
    uint32_t              rkeep;     /* bytes at the start never moved */
    /* The pending read request (rmode says which fields are live). */
    ed_stream_read_pt     read_cb;
    union {
        ed_stream_scan_pt scan;      /* read_until_scan */
        const char       *delim;     /* read_until */
    } u;
    uint32_t              rmax;      /* until/some: max; bytes: n */
    uint32_t              scanned;   /* bytes already searched; for a
                                      * scanner, its resume offset */

    /* Write side: a circular list, wtail->next is the head. */
    ed_wchunk_t          *wtail;
    size_t                wqueued;   /* bytes queued, not yet written */
    uint32_t              high_water;
    uint32_t              low_water;
    ed_stream_pt          on_drain;  /* below low_water after above high */
    ed_stream_pt          on_flushed; /* each time the queue empties */
    ed_stream_pt          on_close;  /* write failure: the peer is gone */

    /* One deferred callback for both jobs: delivering a satisfied read
     * (in the posted queue) and flushing (in the flush queue, unless a
     * delivery is due too: it then flushes after delivering). */
    ed_defer_t            post;

    uint32_t              dlen;        /* read_until's delimiter */
    unsigned              rmode:3;
    unsigned              readable:1;  /* edge seen, not yet drained */
    unsigned              writable:1;
    unsigned              eof:1;
    unsigned              error:1;
    unsigned              closed:1;
    unsigned              over_high:1;
    unsigned              rdhup:1;     /* peer shut down: read to EOF */
    unsigned              delivering:1; /* inside a read callback */
    unsigned              release:1;   /* release_buffer asked meanwhile */
    unsigned              notify_flushed:1;
    unsigned              notify_drain:1;
    unsigned              notify_close:1;
    unsigned              deliver_due:1; /* post runs a delivery */
    unsigned              flush_due:1;   /* post flushes */
    unsigned              in_flushq:1;   /* post sits in the flush queue */
    unsigned              more:1;        /* the bytes being written are
                                          * followed by a file range */
};

/* The water marks a stream starts with. */
#define ED_STREAM_LOW_WATER (16 * 1024)
#define ED_STREAM_HIGH_WATER (64 * 1024)

/* Whether a flush is pending (posted for before the loop sleeps). */
#define ed_stream_flush_posted(s) ((s)->flush_due)

#define ed_stream_loop(s) ((s)->bufs->loop)

/* Sets the stream up on a connected non-blocking fd and registers it
 * (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, once); io is ed_stream_plain_io,
 * water marks 16 KiB / 64 KiB. ED_OK, or ED_ERROR (logged): the caller
 * still owns fd and need not call ed_stream_close. */
/* Every stream of bufs must run on the same loop. */
int ed_stream_init(ed_stream_t *s, ed_loop_t *loop, ed_buf_pool_t *bufs,
                   int fd, void *data);
/* The same for an accepted socket, registered with epoll only when it
 * first has to wait (a connection answered and closed at once never is:
 * two system calls saved), and read at once (the client speaks first).
 * Cannot fail. */
void ed_stream_init_lazy(ed_stream_t *s, ed_loop_t *loop, ed_buf_pool_t *bufs,
                         int fd, void *data);
/* Closes the fd, cancels the pending read (no callback), frees queued
 * writes and buffers. Safe to call twice. */
void ed_stream_close(ed_stream_t *s);

/* Read requests: one at a time; a new one replaces the pending one.
 * When the buffer already satisfies it, the callback runs from a posted
 * callback, never re-entrantly. The buffer is taken from bufs when the
 * request needs to read; a larger max or n gets a buffer of its own.
 * Kept bytes (rkeep) pin the buffer: max is then limited to what fits
 * after them (ED_DECLINED when that is full). ED_OK, or ED_ERROR if the
 * stream is closed, an argument is 0, or read_bytes cannot fit n after the
 * kept bytes, or max or n is above ED_STREAM_READ_MAX (read_some takes
 * any max: it delivers at most that much). ED_DECLINED leaves the max
 * bytes unread (not consumed). */
int ed_stream_read_until(ed_stream_t *s, const char *delim, size_t dlen,
                         size_t max, ed_stream_read_pt cb);
int ed_stream_read_until_scan(ed_stream_t *s, ed_stream_scan_pt scan,
                              size_t max, ed_stream_read_pt cb);
int ed_stream_read_bytes(ed_stream_t *s, size_t n, ed_stream_read_pt cb);
/* Delivers what is available, 1..max bytes. */
int ed_stream_read_some(ed_stream_t *s, size_t max, ed_stream_read_pt cb);
/* Cancels the pending read request (reading pauses: back-pressure). */
void ed_stream_read_stop(ed_stream_t *s);
/* Keeps buf[0..n) in place while later reads proceed (the HTTP head the
 * request points into); 0 releases it. */
void ed_stream_keep(ed_stream_t *s, size_t n);
/* Returns the read buffer to the pool when nothing is buffered (idle
 * keep-alive connections). */
void ed_stream_release_buffer(ed_stream_t *s);
#define ed_stream_buffered(s) ((s)->rend - (s)->rpos)

/* Write queue. Each returns ED_OK or ED_ERROR (ENOMEM, or closed, or a
 * write already failed); nothing is queued on ED_ERROR. Bytes go out just
 * before the loop sleeps, head and small body in one writev.
 * write copies; write_ref queues the caller's memory, which must stay
 * valid until on_flushed (or the stream is closed); write_file queues
 * len bytes of fd from off, fd kept open by the caller likewise. */
int ed_stream_write(ed_stream_t *s, const void *data, size_t len);
int ed_stream_write_ref(ed_stream_t *s, const void *data, size_t len);
int ed_stream_write_file(ed_stream_t *s, int fd, off_t off, size_t len);
/* Flushes now instead of before sleeping. ED_OK (maybe partial),
 * ED_ERROR. */
int ed_stream_flush(ed_stream_t *s);
#define ed_stream_write_blocked(s) ((s)->wqueued >= (s)->high_water)
void ed_stream_set_water(ed_stream_t *s, size_t low, size_t high);

#endif /* ED_STREAM_H */
