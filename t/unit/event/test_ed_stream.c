/* Unit tests of ed_stream over AF_UNIX socket pairs. */
#include <check.h>

#include "ed_http_parse.h"
#include "ed_stream.h"

#include <fcntl.h>
#include <sys/socket.h>

static ed_loop_t     *loop;
static ed_buf_pool_t  bufs;
static ed_stream_t   *st;   /* heap: tests free it from callbacks */
static int            peer = -1;

/* Counting transport around the plain one. */
static int n_recv, n_writev, n_sendfile;

static ssize_t
cnt_recv(ed_stream_t *s, char *buf, size_t len)
{
    n_recv++;
    return ed_stream_plain_io.recv(s, buf, len);
}

/* s->more at each writev: whether a file range followed the batch. */
static int more_seen[16], n_more_seen;

static ssize_t
cnt_writev(ed_stream_t *s, const struct iovec *iov, int n)
{
    if (n_more_seen < (int)ed_nelems(more_seen)) {
        more_seen[n_more_seen++] = s->more;
    }
    n_writev++;
    return ed_stream_plain_io.writev(s, iov, n);
}

static ssize_t
cnt_sendfile(ed_stream_t *s, int fd, off_t *off, size_t len)
{
    n_sendfile++;
    return ed_stream_plain_io.sendfile(s, fd, off, len);
}

static const ed_stream_io_t counting_io = { .recv = cnt_recv,
                                            .writev = cnt_writev,
                                            .sendfile = cnt_sendfile };
static const ed_stream_io_t nosendfile_io = { .recv = cnt_recv,
                                              .writev = cnt_writev };

/* Deliveries, copied. */
typedef struct {
    int    status;
    size_t len;
    char   data[512];
} rec_t;

static rec_t  recs[128];
static int    nrecs, depth, max_depth;
static int    n_flushed, n_drain, n_close;
static void (*after_read)(ed_stream_t *s, char *data, size_t len);

static void
on_read(ed_stream_t *s, int status, char *data, size_t len)
{
    rec_t *r = &recs[nrecs++];

    ck_assert_int_lt(nrecs, (int)ed_nelems(recs));
    ck_assert_ptr_eq(s, st);
    depth++;
    max_depth = ed_max(max_depth, depth);
    r->status = status;
    r->len = len;
    memcpy(r->data, data ? data : "", ed_min(len, sizeof(r->data) - 1));
    r->data[ed_min(len, sizeof(r->data) - 1)] = '\0';
    if (after_read != NULL) {
        after_read(s, data, len);
    }
    depth--;
}

static void
on_flushed(ed_stream_t *s)
{
    ed_unused(s);
    n_flushed++;
}

static void
on_drain(ed_stream_t *s)
{
    ed_unused(s);
    n_drain++;
}

static void
on_close(ed_stream_t *s)
{
    ed_unused(s);
    n_close++;
}

/* A stream on one end of a socket pair; lazy: as for an accepted socket
 * (ed_stream_init_lazy). */
static void
open_stream_as(size_t bufsize, bool lazy)
{
    int sv[2];

    ed_buf_pool_init(&bufs, bufsize, 4);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    st = calloc(1, sizeof(ed_stream_t));
    ck_assert_ptr_nonnull(st);
    if (lazy) {
        ed_stream_init_lazy(st, loop, &bufs, sv[0], NULL);
    } else {
        ck_assert_int_eq(ed_stream_init(st, loop, &bufs, sv[0], NULL), ED_OK);
    }
    st->on_flushed = on_flushed;
    st->on_drain = on_drain;
    st->on_close = on_close;
    peer = sv[1];
}

#define open_stream(size) open_stream_as((size), false)
#define open_lazy_stream(size) open_stream_as((size), true)

static void
setup(void)
{
    /* write_file goes through sendfile(2), which has no MSG_NOSIGNAL. */
    signal(SIGPIPE, SIG_IGN);
    loop = ed_loop_create(NULL);
    ck_assert_ptr_nonnull(loop);
}

static void
teardown(void)
{
    if (st != NULL) {
        ed_stream_close(st);
        free(st);
        st = NULL;
    }
    if (peer != -1) {
        close(peer);
        peer = -1;
    }
    ed_buf_pool_free(&bufs);
    ed_loop_destroy(loop);
}

/* Closes the stream and its peer, keeping the loop and the records. */
static void
teardown_stream_only(void)
{
    ed_stream_close(st);
    free(st);
    st = NULL;
    close(peer);
    peer = -1;
    ed_buf_pool_free(&bufs);
}

static void
turn(void)
{
    ck_assert_int_eq(ed_loop_once(loop, 20), ED_OK);
}

static void
run_until(const int *count, int want)
{
    ed_msec_t end = ed_current_msec + 5000;

    while (*count < want && ed_current_msec < end) {
        turn();
    }
    ck_assert_int_eq(*count, want);
}

static void
peer_write(const char *s)
{
    ck_assert_int_eq(write(peer, s, strlen(s)), (ssize_t)strlen(s));
}

/* Reads want bytes on the peer, turning the loop meanwhile. */
static void
peer_read(char *buf, size_t want)
{
    size_t    got = 0;
    ssize_t   n;
    ed_msec_t end = ed_current_msec + 10000;

    while (got < want && ed_current_msec < end) {
        ck_assert_int_eq(ed_loop_once(loop, 1), ED_OK);
        n = read(peer, buf + got, want - got);
        if (n > 0) {
            got += (size_t)n;
        } else {
            ck_assert(n == -1 && errno == EAGAIN);
        }
    }
    ck_assert_uint_eq(got, want);
}

static void
assert_rec(int i, int status, const char *data)
{
    ck_assert_int_ge(nrecs, i + 1);
    ck_assert_int_eq(recs[i].status, status);
    ck_assert_uint_eq(recs[i].len, strlen(data));
    ck_assert_str_eq(recs[i].data, data);
}

/* Reading. */

START_TEST(test_until_split_delim)
{
    open_stream(4096);
    st->io = &counting_io;
    ck_assert_int_eq(ed_stream_read_until(st, "\r\n\r\n", 4, 1024, on_read),
                     ED_OK);
    peer_write("GET / HTTP/1.1\r");
    turn();
    peer_write("\n\r");
    turn();
    ck_assert_int_eq(nrecs, 0);
    peer_write("\nextra");
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "GET / HTTP/1.1\r\n\r\n");
    ck_assert_uint_eq(ed_stream_buffered(st), 5);
    /* A short read ends the edge: one recv per arrival, no EAGAIN. */
    ck_assert_int_eq(n_recv, 3);
    /* The next request is satisfied from the buffer, without a recv. */
    ck_assert_int_eq(ed_stream_read_bytes(st, 5, on_read), ED_OK);
    run_until(&nrecs, 2);
    assert_rec(1, ED_OK, "extra");
    /* An idle connection waits for the edge: no recv either. */
    ck_assert_int_eq(ed_stream_read_until(st, "\r\n\r\n", 4, 1024, on_read),
                     ED_OK);
    turn();
    ck_assert_int_eq(n_recv, 3);
}
END_TEST

static void
again_until_crlf(ed_stream_t *s, char *data, size_t len)
{
    ed_unused(data);
    ed_unused(len);
    ck_assert_int_eq(ed_stream_read_until(s, "\r\n", 2, 32, on_read), ED_OK);
}

START_TEST(test_until_across_compaction)
{
    char *rbuf;

    open_stream(32);
    after_read = again_until_crlf;
    ck_assert_int_eq(ed_stream_read_until(st, "\r\n", 2, 32, on_read), ED_OK);
    /* 31 bytes: the second piece's delimiter is split at the buffer's
     * end, so finishing it needs a compaction. */
    peer_write("aaaa\r\nbbbbbbbbbbbbbbbbbbbbbbbb\r");
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "aaaa\r\n");
    rbuf = st->rbuf;
    ck_assert_uint_eq(st->rsize, 32);
    ck_assert_uint_eq(st->rend, 31);
    peer_write("\ncc\r\n");
    run_until(&nrecs, 3);
    assert_rec(1, ED_OK, "bbbbbbbbbbbbbbbbbbbbbbbb\r\n");
    assert_rec(2, ED_OK, "cc\r\n");
    ck_assert_ptr_eq(st->rbuf, rbuf);
    ck_assert_uint_eq(st->rsize, 32);
}
END_TEST

START_TEST(test_until_max_exceeded)
{
    open_stream(4096);
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 10, on_read), ED_OK);
    peer_write("0123456789abcdef");
    run_until(&nrecs, 1);
    assert_rec(0, ED_DECLINED, "0123456789");
    /* Declined bytes are not consumed. */
    ck_assert_uint_eq(ed_stream_buffered(st), 16);

    /* Exactly max with the delimiter last is fine. */
    ck_assert_int_eq(ed_stream_read_until(st, "f", 1, 16, on_read), ED_OK);
    run_until(&nrecs, 2);
    assert_rec(1, ED_OK, "0123456789abcdef");
}
END_TEST

START_TEST(test_until_max_over_buffer_size)
{
    char big[70];

    open_stream(32);
    memset(big, 'x', 60);
    memcpy(big + 60, "\n", 2);
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write(big);
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, big);
    /* The buffer of its own went back when emptied. */
    ck_assert_ptr_null(st->rbuf);
}
END_TEST

static size_t
scan_blank_line(const char *buf, size_t len, size_t *resume)
{
    const char *p = memmem(buf, len, "\n\n", 2);

    ed_unused(resume);
    return p ? (size_t)(p - buf) + 2 : 0;
}

START_TEST(test_until_scan)
{
    open_stream(4096);
    ck_assert_int_eq(ed_stream_read_until_scan(st, scan_blank_line, 100,
                                               on_read),
                     ED_OK);
    peer_write("a: b\n");
    turn();
    peer_write("\nrest");
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "a: b\n\n");
}
END_TEST

/* The HTTP head scanner, counting the calls and the bytes each had to
 * look at (from where it went on to the end of the window). */
static size_t scan_calls, scan_examined;

static size_t
scan_head_counted(const char *buf, size_t len, size_t *resume)
{
    ck_assert_uint_le(*resume, len);
    scan_calls++;
    scan_examined += len - *resume;
    return ed_http_head_end(buf, len, resume);
}

START_TEST(test_regress_scan_trickled_is_linear)
{
    static char head[16384];
    size_t      n, i;

    n = (size_t)sprintf(head, "GET / HTTP/1.1\r\n");
    while (n < sizeof(head) - 64) {
        n += (size_t)sprintf(head + n, "X-Header-%05zu: some value\r\n", n);
    }
    n += (size_t)sprintf(head + n, "\r\n");

    open_stream(4096);
    ck_assert_int_eq(ed_stream_read_until_scan(st, scan_head_counted,
                                               sizeof(head), on_read),
                     ED_OK);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(write(peer, head + i, 1), 1);
        turn();
    }
    run_until(&nrecs, 1);
    ck_assert_int_eq(recs[0].status, ED_OK);
    ck_assert_uint_eq(recs[0].len, n);
    /* One scan per byte that arrived, each looking at the new byte and
     * at most the two before it: linear in the head, where scanning the
     * whole window every time costs n * n / 2 (128 MiB here). */
    ck_assert_uint_ge(scan_calls, n / 2);
    ck_assert_uint_le(scan_examined, 3 * n);
}
END_TEST

static void
again_scan(ed_stream_t *s, char *data, size_t len)
{
    ed_unused(data);
    ed_unused(len);
    ck_assert_int_eq(ed_stream_read_until_scan(s, scan_head_counted, 4096,
                                               on_read),
                     ED_OK);
}

START_TEST(test_regress_scan_split_anywhere)
{
    /* Every head end (CRLF CRLF, LF LF, CRLF LF, LF CRLF, after leading
     * empty lines) is found whatever two writes carry it, across
     * buffer compaction as well. */
    static const char *const heads[] = {
        "GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /b HTTP/1.1\nHost: a\n\n",
        "GET /c HTTP/1.1\r\nHost: a\r\n\n",
        "GET /d HTTP/1.1\nHost: a\n\r\n",
        "\r\n\n\r\nGET /e HTTP/1.1\r\n\r\n",
    };
    char   piece[64];
    size_t i, k, len;

    open_stream(64);
    after_read = again_scan;
    ck_assert_int_eq(ed_stream_read_until_scan(st, scan_head_counted, 4096,
                                               on_read),
                     ED_OK);
    for (i = 0; i < ed_nelems(heads); i++) {
        len = strlen(heads[i]);
        for (k = 1; k < len; k++) {
            nrecs = 0;
            memcpy(piece, heads[i], k);
            piece[k] = '\0';
            peer_write(piece);
            turn();
            ck_assert_int_eq(nrecs, 0);
            peer_write(heads[i] + k);
            run_until(&nrecs, 1);
            assert_rec(0, ED_OK, heads[i]);
        }
    }
}
END_TEST

static void
again_until_lf(ed_stream_t *s, char *data, size_t len)
{
    ed_unused(data);
    ed_unused(len);
    if (recs[nrecs - 1].status != ED_OK) {
        return;
    }
    ck_assert_int_eq(ed_stream_read_until(s, "\n", 1, 100, on_read), ED_OK);
}

START_TEST(test_eof)
{
    open_stream(4096);
    after_read = again_until_lf;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write("a\npartial");
    shutdown(peer, SHUT_WR);
    run_until(&nrecs, 2);
    assert_rec(0, ED_OK, "a\n");
    assert_rec(1, ED_DONE, "partial");
    /* Nothing left: the next requests end at once, empty. */
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    run_until(&nrecs, 3);
    assert_rec(2, ED_DONE, "");
    ck_assert_int_eq(ed_stream_read_some(st, 10, on_read), ED_OK);
    run_until(&nrecs, 4);
    assert_rec(3, ED_DONE, "");
}
END_TEST

static void
then_bytes_9(ed_stream_t *s, char *data, size_t len)
{
    ed_unused(data);
    ed_unused(len);
    after_read = NULL;
    ck_assert_int_eq(ed_stream_read_bytes(s, 9, on_read), ED_OK);
}

START_TEST(test_read_bytes)
{
    open_stream(4096);
    after_read = then_bytes_9;
    ck_assert_int_eq(ed_stream_read_bytes(st, 4, on_read), ED_OK);
    peer_write("0123456789a");
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "0123");
    turn();
    ck_assert_int_eq(nrecs, 1);
    peer_write("bc");
    run_until(&nrecs, 2);
    assert_rec(1, ED_OK, "456789abc");
}
END_TEST

START_TEST(test_read_bytes_large)
{
    char   want[301];
    size_t i;

    open_stream(32);
    for (i = 0; i < 300; i++) {
        want[i] = (char)('a' + i % 26);
    }
    want[300] = '\0';
    ck_assert_int_eq(ed_stream_read_bytes(st, 300, on_read), ED_OK);
    ck_assert_int_eq(write(peer, want, 100), 100);
    turn();
    ck_assert_int_eq(write(peer, want + 100, 200), 200);
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, want);
    ck_assert_ptr_null(st->rbuf);
}
END_TEST

START_TEST(test_read_some)
{
    open_stream(4096);
    ck_assert_int_eq(ed_stream_read_some(st, 3, on_read), ED_OK);
    peer_write("hello");
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "hel");
    ck_assert_int_eq(ed_stream_read_some(st, 100, on_read), ED_OK);
    run_until(&nrecs, 2);
    assert_rec(1, ED_OK, "lo");
}
END_TEST

START_TEST(test_pipelined)
{
    char all[40 * 8 + 1], line[32];
    int  i;

    open_stream(4096);
    all[0] = '\0';
    for (i = 0; i < 40; i++) {
        snprintf(line, sizeof(line), "line%02d\n", i);
        strcat(all, line);
    }
    after_read = again_until_lf;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write(all);
    run_until(&nrecs, 40);
    for (i = 0; i < 40; i++) {
        snprintf(line, sizeof(line), "line%02d\n", i);
        assert_rec(i, ED_OK, line);
    }
    /* Delivered in a loop, never from inside a callback. */
    ck_assert_int_eq(max_depth, 1);
    /* One recv took all (a short read ends the edge). */
    ck_assert_uint_eq(ed_stream_buffered(st), 0);
}
END_TEST

static char   *kept;
static size_t  body_got;
static char    body[1024];

static void
keep_head(ed_stream_t *s, char *data, size_t len)
{
    kept = data;
    ed_stream_keep(s, (size_t)(data + len - s->rbuf));
    after_read = NULL;
}

static void
on_body(ed_stream_t *s, int status, char *data, size_t len)
{
    ck_assert_int_eq(status, ED_OK);
    ck_assert_uint_ge(s->rpos, s->rkeep);
    ck_assert(data >= s->rbuf + s->rkeep);
    memcpy(body + body_got, data, len);
    body_got += len;
    ck_assert_int_eq(memcmp(kept, "head\n", 5), 0);
    ck_assert_int_eq(ed_stream_read_some(s, 64, on_body), ED_OK);
}

START_TEST(test_keep)
{
    char   want[501];
    size_t i;
    char  *rbuf;

    open_stream(64);
    after_read = keep_head;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 64, on_read), ED_OK);
    peer_write("head\n");
    run_until(&nrecs, 1);
    ck_assert_ptr_eq(kept, st->rbuf);
    ck_assert_uint_eq(st->rkeep, 5);
    rbuf = st->rbuf;
    /* read_bytes cannot fit 60 after 5 kept bytes in 64. */
    ck_assert_int_eq(ed_stream_read_bytes(st, 60, on_read), ED_ERROR);

    for (i = 0; i < 500; i++) {
        want[i] = (char)('A' + i % 50);
    }
    want[500] = '\0';
    ck_assert_int_eq(ed_stream_read_some(st, 64, on_body), ED_OK);
    for (i = 0; i < 500; i += 50) {
        ck_assert_int_eq(write(peer, want + i, 50), 50);
        turn();
    }
    while (body_got < 500) {
        turn();
    }
    ck_assert_int_eq(memcmp(body, want, 500), 0);
    ck_assert_ptr_eq(st->rbuf, rbuf);
    ck_assert_int_eq(memcmp(st->rbuf, "head\n", 5), 0);
    ed_stream_read_stop(st);
    ed_stream_keep(st, 0);
    ed_stream_release_buffer(st);
    ck_assert_ptr_null(st->rbuf);
}
END_TEST

START_TEST(test_back_pressure)
{
    open_stream(4096);
    peer_write("abc");
    turn();
    turn();
    /* No request: nothing read, no buffer taken; the edge is kept. */
    ck_assert_ptr_null(st->rbuf);
    ck_assert_uint_eq(st->readable, 1);
    ck_assert_int_eq(ed_stream_read_some(st, 10, on_read), ED_OK);
    ck_assert_int_eq(nrecs, 0); /* never from inside the request */
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "abc");
    ed_stream_read_stop(st);
    peer_write("def");
    turn();
    ck_assert_int_eq(nrecs, 1);
}
END_TEST

static void
release_inside(ed_stream_t *s, char *data, size_t len)
{
    ed_stream_release_buffer(s);
    /* Deferred: data must still be intact. */
    ck_assert_int_eq(memcmp(data, "ping\n", len), 0);
    ck_assert_ptr_nonnull(s->rbuf);
}

START_TEST(test_release_idle)
{
    size_t nfree;

    open_stream(4096);
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write("ping\n");
    run_until(&nrecs, 1);
    ck_assert_ptr_nonnull(st->rbuf);
    nfree = bufs.nfree;
    ed_stream_release_buffer(st);
    ck_assert_ptr_null(st->rbuf);
    ck_assert_uint_eq(bufs.nfree, nfree + 1);

    /* Not while bytes are buffered. */
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write("a\nb");
    run_until(&nrecs, 2);
    ed_stream_release_buffer(st);
    ck_assert_ptr_nonnull(st->rbuf);

    ck_assert_int_eq(ed_stream_read_bytes(st, 1, on_read), ED_OK);
    run_until(&nrecs, 3);
    assert_rec(2, ED_OK, "b");

    /* From inside a callback: after it returns. */
    after_read = release_inside;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write("ping\n");
    run_until(&nrecs, 4);
    assert_rec(3, ED_OK, "ping\n");
    ck_assert_ptr_null(st->rbuf);
}
END_TEST

START_TEST(test_read_error)
{
    open_stream(4096);
    /* Closing a unix socket with unread bytes resets the other end. */
    ck_assert_int_eq(ed_stream_write(st, "zzz", 3), ED_OK);
    turn();
    close(peer);
    peer = -1;
    ck_assert_int_eq(ed_stream_read_some(st, 10, on_read), ED_OK);
    run_until(&nrecs, 1);
    assert_rec(0, ED_ERROR, "");
}
END_TEST

static void
close_and_free(ed_stream_t *s, char *data, size_t len)
{
    ed_unused(data);
    ed_unused(len);
    ck_assert_int_eq(ed_stream_read_until(s, "\n", 1, 100, on_read), ED_OK);
    ed_stream_close(s);
    ed_stream_close(s); /* twice is harmless */
    free(s);
    st = NULL;
}

START_TEST(test_close_and_free_in_callback)
{
    open_stream(4096);
    after_read = close_and_free;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write("a\nb\nc\n");
    run_until(&nrecs, 1);
    turn();
    turn();
    ck_assert_int_eq(nrecs, 1);
}
END_TEST

START_TEST(test_closed_refuses)
{
    open_stream(4096);
    ed_stream_close(st);
    ck_assert_int_eq(ed_stream_read_some(st, 1, on_read), ED_ERROR);
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 9, on_read),
                     ED_ERROR);
    ck_assert_int_eq(ed_stream_write(st, "x", 1), ED_ERROR);
    ck_assert_int_eq(ed_stream_write_ref(st, "x", 1), ED_ERROR);
    ck_assert_int_eq(ed_stream_flush(st), ED_ERROR);
    ed_stream_close(st);
}
END_TEST

/* Writing. */

static int
temp_file(const char *data, size_t len)
{
    char path[] = "/tmp/ed_stream_XXXXXX";
    int  fd = mkstemp(path);

    ck_assert_int_ne(fd, -1);
    unlink(path);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    return fd;
}

static char *
pattern(size_t len, unsigned seed)
{
    char  *p = malloc(len);
    size_t i;

    ck_assert_ptr_nonnull(p);
    for (i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        p[i] = (char)(seed >> 16);
    }
    return p;
}

/* An accepted socket whose request is already there is read at once and
 * answered without ever being registered with epoll. */
START_TEST(test_lazy_answers_unregistered)
{
    char out[16];

    open_lazy_stream(4096);
    peer_write("GET /\r\n\r\n");
    ck_assert_int_eq(ed_stream_read_until(st, "\r\n\r\n", 4, 1024, on_read),
                     ED_OK);
    turn();
    assert_rec(0, ED_OK, "GET /\r\n\r\n");
    ck_assert_int_eq(ed_stream_write(st, "reply", 5), ED_OK);
    turn();
    peer_read(out, 5);
    ck_assert_int_eq(memcmp(out, "reply", 5), 0);
    ck_assert_uint_eq(st->ev.mask, 0);
}
END_TEST

/* Waiting registers it: a read that finds nothing, a read asked for
 * once the socket is drained, and a write the socket cannot take all
 * get their edge later. */
START_TEST(test_lazy_registers_to_wait)
{
    char  *big, *out;
    size_t len = 4 << 20;

    open_lazy_stream(4096);
    ck_assert_int_eq(ed_stream_read_until(st, "\r\n", 2, 1024, on_read),
                     ED_OK);
    turn();
    ck_assert_int_eq(nrecs, 0);
    ck_assert_uint_ne(st->ev.mask, 0);
    /* A read wait asks for EPOLLIN only: no EPOLLOUT event of an idle
     * connection is queued ahead of what comes next. */
    ck_assert_uint_eq(st->ev.mask & EPOLLOUT, 0);
    peer_write("one\r\n");
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "one\r\n");
    /* A write the socket cannot take adds EPOLLOUT: the rest goes out. */
    big = pattern(len, 4);
    out = malloc(len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(ed_stream_write(st, big, len), ED_OK);
    turn();
    ck_assert_uint_ne(st->ev.mask & EPOLLOUT, 0);
    peer_read(out, len);
    ck_assert_int_eq(memcmp(out, big, len), 0);
    free(big);
    free(out);
    teardown_stream_only();

    /* Drained by a short read, then asked again outside a callback. */
    open_lazy_stream(4096);
    peer_write("two\r\n");
    ck_assert_int_eq(ed_stream_read_until(st, "\r\n", 2, 1024, on_read),
                     ED_OK);
    run_until(&nrecs, 2);
    ck_assert_uint_eq(st->ev.mask, 0);
    ck_assert_int_eq(ed_stream_read_until(st, "\r\n", 2, 1024, on_read),
                     ED_OK);
    ck_assert_uint_ne(st->ev.mask, 0);
    peer_write("three\r\n");
    run_until(&nrecs, 3);
    assert_rec(2, ED_OK, "three\r\n");
    teardown_stream_only();

    /* More than the socket takes at once. */
    open_lazy_stream(4096);
    big = pattern(len, 3);
    out = malloc(len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(ed_stream_write(st, big, len), ED_OK);
    turn();
    ck_assert_uint_ne(st->ev.mask, 0);
    peer_read(out, len);
    ck_assert_int_eq(memcmp(out, big, len), 0);
    free(big);
    free(out);
}
END_TEST

START_TEST(test_response_one_syscall)
{
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1010\r\n\r\n";
    char        out[2048], *file;
    size_t      hlen = strlen(head);
    int         fd;

    open_stream(4096);
    st->io = &counting_io;
    file = pattern(1000, 1);
    fd = temp_file(file, 1000);
    ck_assert_int_eq(ed_stream_write(st, head, hlen), ED_OK);
    ck_assert_int_eq(ed_stream_write_ref(st, "0123456789", 10), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, 0, 1000), ED_OK);
    ck_assert_uint_eq(st->wqueued, hlen + 1010);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_int_eq(n_writev, 1);
    ck_assert_int_eq(n_sendfile, 1);
    ck_assert_int_eq(n_flushed, 1);
    ck_assert_uint_eq(st->wqueued, 0);
    peer_read(out, hlen + 1010);
    ck_assert_int_eq(memcmp(out, head, hlen), 0);
    ck_assert_int_eq(memcmp(out + hlen, "0123456789", 10), 0);
    ck_assert_int_eq(memcmp(out + hlen + 10, file, 1000), 0);

    /* Small writes are copied together: still one writev. */
    n_writev = 0;
    ck_assert_int_eq(ed_stream_write(st, "ab", 2), ED_OK);
    ck_assert_int_eq(ed_stream_write(st, "cd", 2), ED_OK);
    ck_assert_int_eq(ed_stream_write(st, "ef", 2), ED_OK);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_int_eq(n_writev, 1);
    ck_assert_int_eq(n_flushed, 2);
    peer_read(out, 6);
    ck_assert_int_eq(memcmp(out, "abcdef", 6), 0);
    free(file);
    close(fd);
}
END_TEST

/* Memory followed by a file range is written with MSG_MORE (the head
 * waits for the file's first bytes, no TCP_CORK calls); memory after
 * the last range, or alone, is not held. */
START_TEST(test_more_before_file)
{
    char *file, out[2048];
    int   fd;

    open_stream(4096);
    st->io = &counting_io;
    file = pattern(1000, 5);
    fd = temp_file(file, 1000);
    n_more_seen = 0;
    ck_assert_int_eq(ed_stream_write(st, "head", 4), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, 0, 500), ED_OK);
    ck_assert_int_eq(ed_stream_write(st, "part", 4), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, 500, 500), ED_OK);
    ck_assert_int_eq(ed_stream_write(st, "tail", 4), ED_OK);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_int_eq(n_more_seen, 3);
    ck_assert_int_eq(more_seen[0], 1);
    ck_assert_int_eq(more_seen[1], 1);
    ck_assert_int_eq(more_seen[2], 0);
    peer_read(out, 1012);
    ck_assert_int_eq(memcmp(out, "head", 4), 0);
    ck_assert_int_eq(memcmp(out + 4, file, 500), 0);
    ck_assert_int_eq(memcmp(out + 504, "part", 4), 0);
    ck_assert_int_eq(memcmp(out + 508, file + 500, 500), 0);
    ck_assert_int_eq(memcmp(out + 1008, "tail", 4), 0);

    n_more_seen = 0;
    ck_assert_int_eq(ed_stream_write(st, "alone", 5), ED_OK);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_int_eq(n_more_seen, 1);
    ck_assert_int_eq(more_seen[0], 0);
    peer_read(out, 5);
    free(file);
    close(fd);
}
END_TEST

/* Memory, references and file ranges, past the socket's buffer. */
static void
write_mixed(const ed_stream_io_t *io)
{
    size_t  flen = 3 << 20, mlen = 300000, total = 2 * mlen + flen - 10;
    char   *file = pattern(flen, 7), *mem = pattern(mlen, 9), *out;
    int     fd = temp_file(file, flen);

    open_stream(16384);
    st->io = io;
    out = malloc(total);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(ed_stream_write(st, mem, mlen), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, 10, flen - 20), ED_OK);
    ck_assert_int_eq(ed_stream_write_ref(st, mem, mlen), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, flen - 10, 10), ED_OK);
    peer_read(out, total);
    ck_assert_int_eq(memcmp(out, mem, mlen), 0);
    ck_assert_int_eq(memcmp(out + mlen, file + 10, flen - 20), 0);
    ck_assert_int_eq(memcmp(out + mlen + flen - 20, mem, mlen), 0);
    ck_assert_int_eq(memcmp(out + 2 * mlen + flen - 20, file + flen - 10,
                            10),
                     0);
    run_until(&n_flushed, 1);
    ck_assert_uint_eq(st->wqueued, 0);
    free(file);
    free(mem);
    free(out);
    close(fd);
}

START_TEST(test_write_byte_exact)
{
    write_mixed(&counting_io);
    ck_assert_int_gt(n_sendfile, 1);
}
END_TEST

START_TEST(test_write_file_pread)
{
    write_mixed(&nosendfile_io);
    ck_assert_int_eq(n_sendfile, 0);
}
END_TEST

/* HTTP/2 DATA frames on a transport without sendfile: a 9-byte frame
 * header, then the next 16 KiB of one file, over and over, are read
 * with one preadv per gathered write and arrive byte-exact, past the
 * socket's buffer. */
START_TEST(test_write_frames_gathered)
{
    size_t frame = 16384, nframes = 40, flen = frame * nframes, i;
    size_t total = nframes * (9 + frame);
    char  *file = pattern(flen, 5), *out, hdr[10];
    int    fd = temp_file(file, flen);

    open_stream(16384);
    st->io = &nosendfile_io;
    out = malloc(total);
    ck_assert_ptr_nonnull(out);
    for (i = 0; i < nframes; i++) {
        snprintf(hdr, sizeof(hdr), "H%08zu", i);
        ck_assert_int_eq(ed_stream_write(st, hdr, 9), ED_OK);
        ck_assert_int_eq(ed_stream_write_file(st, fd, (off_t)(i * frame),
                                              frame),
                         ED_OK);
    }
    peer_read(out, total);
    for (i = 0; i < nframes; i++) {
        snprintf(hdr, sizeof(hdr), "H%08zu", i);
        ck_assert_int_eq(memcmp(out + i * (9 + frame), hdr, 9), 0);
        ck_assert_int_eq(memcmp(out + i * (9 + frame) + 9, file + i * frame,
                                frame),
                         0);
    }
    run_until(&n_flushed, 1);
    ck_assert_uint_eq(st->wqueued, 0);
    /* Five frames of a 68 KiB area in a gathered write: far fewer
     * writes than frames. */
    ck_assert_int_lt(n_writev, (int)nframes / 2);
    free(file);
    free(out);
    close(fd);
}
END_TEST

/* The file is shorter than the ranges queued from it: what it holds
 * goes out, in order, up to the first missing byte; then the stream
 * fails instead of sending anything else. */
START_TEST(test_write_frames_file_shrank)
{
    size_t flen = 1500;
    char  *file = pattern(flen, 6), out[2048];
    int    fd = temp_file(file, flen);

    open_stream(16384);
    st->io = &nosendfile_io;
    ck_assert_int_eq(ed_stream_write(st, "AAAAAAAAA", 9), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, 0, 1000), ED_OK);
    ck_assert_int_eq(ed_stream_write(st, "BBBBBBBBB", 9), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, 1000, 1000), ED_OK);
    ck_assert_int_eq(ed_stream_write(st, "CCCCCCCCC", 9), ED_OK);
    peer_read(out, 9 + 1000 + 9 + 500);
    ck_assert_int_eq(memcmp(out, "AAAAAAAAA", 9), 0);
    ck_assert_int_eq(memcmp(out + 9, file, 1000), 0);
    ck_assert_int_eq(memcmp(out + 1009, "BBBBBBBBB", 9), 0);
    ck_assert_int_eq(memcmp(out + 1018, file + 1000, 500), 0);
    run_until(&n_close, 1);
    ck_assert(st->error);
    free(file);
    close(fd);
}
END_TEST

/* A producer that writes 8 KiB pieces of data while not blocked and
 * waits for on_drain, until the socket buffer is full and the drain
 * stops coming (the peer reads nothing). Adds what it wrote to *total;
 * returns the drains seen. */
static int
fill_until_stuck(const char *data, size_t *total)
{
    int i, drains = 0;

    for (i = 0; i < 1000; i++) {
        while (!ed_stream_write_blocked(st)) {
            ck_assert_int_eq(ed_stream_write(st, data, 8192), ED_OK);
            *total += 8192;
        }
        drains = n_drain;
        turn();
        turn();
        if (n_drain == drains) {
            return drains;
        }
    }
    ck_abort_msg("the drain kept coming");
    return drains;
}

START_TEST(test_high_water_drain)
{
    char  *data = pattern(8192, 3), *out;
    size_t total = 0, got = 0;
    int    drains;

    open_stream(4096);
    ck_assert_uint_eq(st->high_water, 64 * 1024);
    ck_assert_uint_eq(st->low_water, 16 * 1024);
    /* A producer that writes while not blocked and waits for on_drain,
     * until the socket buffer is full and the drain stops coming. */
    drains = fill_until_stuck(data, &total);
    /* The peer does not read: still blocked, no drain. */
    turn();
    ck_assert_int_eq(n_drain, drains);
    ck_assert(st->over_high);
    ck_assert_uint_ge(st->wqueued, st->low_water);

    out = malloc(total);
    ck_assert_ptr_nonnull(out);
    peer_read(out, total);
    for (got = 0; got < total; got += 8192) {
        ck_assert_int_eq(memcmp(out + got, data, 8192), 0);
    }
    ck_assert_int_eq(n_drain, drains + 1);
    ck_assert_int_ge(n_flushed, 1);
    ck_assert(!st->over_high);
    free(out);
    free(data);
}
END_TEST

/* on_flushed must find the queue empty; on_drain writes once more. */
static size_t  flushed_queued;
static char   *drain_data;

static void
on_flushed_check(ed_stream_t *s)
{
    n_flushed++;
    flushed_queued = ed_max(flushed_queued, (size_t)s->wqueued);
}

static void
on_drain_write(ed_stream_t *s)
{
    if (n_drain++ == 0) {
        ck_assert_int_eq(ed_stream_write(s, drain_data, 8192), ED_OK);
    }
}

START_TEST(test_regress_flushed_after_drain_wrote)
{
    char  *data = pattern(8192, 5), *out;
    size_t total = 0;

    /* The queue goes from over its high water mark to empty in one
     * flush, and on_drain writes again: the flushed news of that flush
     * is stale, on_flushed comes only once the new bytes are out (the
     * owner of a closing connection used to close with them queued). */
    open_stream(4096);
    fill_until_stuck(data, &total);
    drain_data = data;
    n_drain = 0;
    n_flushed = 0;
    flushed_queued = 0;
    st->on_drain = on_drain_write;
    st->on_flushed = on_flushed_check;
    out = malloc(total + 8192);
    ck_assert_ptr_nonnull(out);
    peer_read(out, total + 8192);
    run_until(&n_flushed, 1);
    ck_assert_int_eq(n_drain, 1);
    ck_assert_uint_eq(flushed_queued, 0);
    ck_assert_uint_eq(st->wqueued, 0);
    free(out);
    free(data);
}
END_TEST

static void
close_free_on_close(ed_stream_t *s)
{
    n_close++;
    ed_stream_close(s);
    free(s);
    st = NULL;
}

START_TEST(test_on_close_peer_gone)
{
    open_stream(4096);
    close(peer);
    peer = -1;
    ck_assert_int_eq(ed_stream_write(st, "x", 1), ED_OK);
    run_until(&n_close, 1);
    ck_assert(st->error);
    ck_assert_int_eq(ed_stream_write(st, "y", 1), ED_ERROR);
    turn();
    turn();
    ck_assert_int_eq(n_close, 1);
    ck_assert_int_eq(n_flushed, 0);
}
END_TEST

START_TEST(test_on_close_frees_stream)
{
    int fd;

    open_stream(4096);
    st->on_close = close_free_on_close;
    fd = temp_file("abc", 3);
    close(peer);
    peer = -1;
    ck_assert_int_eq(ed_stream_write(st, "x", 1), ED_OK);
    ck_assert_int_eq(ed_stream_write_file(st, fd, 0, 3), ED_OK);
    ck_assert_int_eq(ed_stream_read_some(st, 10, on_read), ED_OK);
    run_until(&n_close, 1);
    ck_assert_ptr_null(st);
    turn();
    ck_assert_int_eq(n_close, 1);
    close(fd);
}
END_TEST

START_TEST(test_explicit_flush)
{
    char out[4];

    open_stream(4096);
    ck_assert_int_eq(ed_stream_write(st, "now", 3), ED_OK);
    ck_assert_int_eq(ed_stream_flush(st), ED_OK);
    /* On the wire before any turn; on_flushed only from the loop. */
    ck_assert_int_eq(read(peer, out, sizeof(out)), 3);
    ck_assert_int_eq(memcmp(out, "now", 3), 0);
    ck_assert_int_eq(n_flushed, 0);
    ck_assert(!ed_stream_flush_posted(st));
    turn();
    ck_assert_int_eq(n_flushed, 1);
}
END_TEST

/* One deferred callback does both jobs. */

static void
reply_in_callback(ed_stream_t *s, char *data, size_t len)
{
    ed_unused(data);
    ed_unused(len);
    ck_assert_int_eq(ed_stream_write(s, "two", 3), ED_OK);
    after_read = NULL;
}

START_TEST(test_deliver_while_flush_posted)
{
    char out[8];

    open_stream(4096);
    st->io = &counting_io;
    /* A flush is posted; then a delivery is due too (bytes buffered). */
    peer_write("req\n");
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    turn();
    ck_assert_int_eq(nrecs, 1);
    ck_assert_int_eq(ed_stream_write(st, "one", 3), ED_OK);
    ck_assert(ed_stream_flush_posted(st));
    peer_write("req\n");
    after_read = reply_in_callback;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    /* In one turn: the delivery, then one writev with both replies. */
    turn();
    ck_assert_int_eq(nrecs, 2);
    assert_rec(1, ED_OK, "req\n");
    ck_assert_int_eq(n_writev, 1);
    ck_assert(!ed_stream_flush_posted(st));
    ck_assert_int_eq(read(peer, out, sizeof(out)), 6);
    ck_assert_int_eq(memcmp(out, "onetwo", 6), 0);
    ck_assert_int_eq(n_flushed, 1);
}
END_TEST

/* A callback closing and freeing another stream: the first goes on. */
static ed_stream_t *other;

static void
close_other(ed_stream_t *s, char *data, size_t len)
{
    ed_unused(data);
    ed_unused(len);
    if (other != NULL) {
        ed_stream_close(other);
        free(other);
        other = NULL;
    }
    ck_assert_int_eq(ed_stream_read_until(s, "\n", 1, 100, on_read),
                     ED_OK);
}

START_TEST(test_close_other_in_callback)
{
    int sv[2];

    open_stream(4096);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    other = calloc(1, sizeof(ed_stream_t));
    ck_assert_ptr_nonnull(other);
    ck_assert_int_eq(ed_stream_init(other, loop, &bufs, sv[0], NULL), ED_OK);
    ck_assert_int_eq(ed_stream_write(other, "x", 1), ED_OK);
    after_read = close_other;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 100, on_read), ED_OK);
    peer_write("a\nb\nc\n");
    run_until(&nrecs, 3);
    assert_rec(2, ED_OK, "c\n");
    ck_assert_ptr_null(other);
    close(sv[1]);
}
END_TEST

START_TEST(test_read_limits)
{
    open_stream(64);
    if (sizeof(size_t) > 4) {
        ck_assert_int_eq(ed_stream_read_until(st, "\n", 1,
                                              (size_t)UINT32_MAX + 1,
                                              on_read),
                         ED_ERROR);
        ck_assert_int_eq(ed_stream_read_bytes(st, (size_t)UINT32_MAX + 1,
                                              on_read),
                         ED_ERROR);
    }
    /* read_some takes any max. */
    ck_assert_int_eq(ed_stream_read_some(st, SIZE_MAX, on_read), ED_OK);
    peer_write("abc");
    run_until(&nrecs, 1);
    assert_rec(0, ED_OK, "abc");
    ed_stream_set_water(st, SIZE_MAX, SIZE_MAX);
    ck_assert_uint_eq(st->high_water, UINT32_MAX);
    ck_assert_uint_eq(st->low_water, UINT32_MAX);
    /* Idle streams are many: keep an eye on the size. */
    ck_assert_uint_le(sizeof(ed_stream_t), 192);
}
END_TEST

Suite *
ed_test_stream_suite(void)
{
    Suite *s = suite_create("ed_stream");
    TCase *tc = tcase_create("stream");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_until_split_delim);
    tcase_add_test(tc, test_until_across_compaction);
    tcase_add_test(tc, test_until_max_exceeded);
    tcase_add_test(tc, test_until_max_over_buffer_size);
    tcase_add_test(tc, test_until_scan);
    tcase_add_test(tc, test_regress_scan_trickled_is_linear);
    tcase_add_test(tc, test_regress_scan_split_anywhere);
    tcase_add_test(tc, test_eof);
    tcase_add_test(tc, test_read_bytes);
    tcase_add_test(tc, test_read_bytes_large);
    tcase_add_test(tc, test_read_some);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_keep);
    tcase_add_test(tc, test_back_pressure);
    tcase_add_test(tc, test_release_idle);
    tcase_add_test(tc, test_read_error);
    tcase_add_test(tc, test_close_and_free_in_callback);
    tcase_add_test(tc, test_closed_refuses);
    tcase_add_test(tc, test_response_one_syscall);
    tcase_add_test(tc, test_more_before_file);
    tcase_add_test(tc, test_lazy_answers_unregistered);
    tcase_add_test(tc, test_lazy_registers_to_wait);
    tcase_add_test(tc, test_write_byte_exact);
    tcase_add_test(tc, test_write_file_pread);
    tcase_add_test(tc, test_write_frames_gathered);
    tcase_add_test(tc, test_write_frames_file_shrank);
    tcase_add_test(tc, test_high_water_drain);
    tcase_add_test(tc, test_regress_flushed_after_drain_wrote);
    tcase_add_test(tc, test_on_close_peer_gone);
    tcase_add_test(tc, test_on_close_frees_stream);
    tcase_add_test(tc, test_explicit_flush);
    tcase_add_test(tc, test_deliver_while_flush_posted);
    tcase_add_test(tc, test_close_other_in_callback);
    tcase_add_test(tc, test_read_limits);
    suite_add_tcase(s, tc);
    return s;
}
