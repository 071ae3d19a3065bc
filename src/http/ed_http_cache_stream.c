/* Streaming a fetch to the requests that wait for it (cache_lock): once
 * the detached fetch has written the head into its temp file, each
 * waiter sends that head and then the body as it lands in the file,
 * told by inotify (ed_http_cache_wait.c), from its own descriptor of the
 * file: a slow waiter holds no upstream connection and no buffer, and
 * the bytes go by sendfile. The rename into place says the body is
 * complete; a removal, that the fetch failed (unless the file was sealed
 * first: whole, but not kept): the waiter is cut off as a proxied body
 * would be. Waiters with conditions, ranges or a response with Vary wait
 * for the entry instead. The client that handed the fetch its fill
 * follows the same way (told by the fetch itself), whatever its request,
 * with the fetch's own Cache-Status, and a response not stored from a
 * file of its own. */
#include "ed_http_cache_int.h"
#include "ed_http_range.h"

#include <fcntl.h>
#include <sys/stat.h>

static int ed_pc_stream_pump(ed_http_request_t *r, ed_http_cache_req_t *c);

/* Whether the request may take a stream: a plain GET or HEAD. */
static bool
ed_pc_stream_plain(ed_http_request_t *r)
{
    return ed_http_header(r, "Range") == NULL
           && ed_http_header(r, "If-Match") == NULL
           && ed_http_header(r, "If-None-Match") == NULL
           && ed_http_header(r, "If-Modified-Since") == NULL
           && ed_http_header(r, "If-Unmodified-Since") == NULL;
}

/* Opens the filler's temp file and reads its head: ED_OK (c->prefix,
 * c->hdr, c->sfd), ED_AGAIN (not all written yet), ED_DECLINED (it
 * cannot be streamed: wait for the entry). */
static int
ed_pc_stream_open(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    ed_http_cache_hdr_t hdr;
    char                path[PATH_MAX], *buf;
    size_t              want = ED_CACHE_READ;
    ssize_t             n;
    int                 rc;

    if (c->sfd < 0) {
        snprintf(path, sizeof(path), "%s/.tmp/%s", c->cache->path.data,
                 c->waiter.name);
        c->sfd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (c->sfd < 0) {
            return ED_DECLINED;
        }
    }
    for (;;) {
        buf = ed_pnalloc(r->pool, want);
        if (buf == NULL) {
            return ED_DECLINED;
        }
        n = pread(c->sfd, buf, want, 0);
        /* Into a copy: the stale entry a fill's client holds in c->hdr
         * may still be served. */
        rc = ed_http_cache_hdr_partial(buf, n > 0 ? (size_t)n : 0, &hdr,
                                       c->following);
        if (rc == ED_CACHE_HDR_SHORT && (size_t)n < want) {
            return ED_AGAIN;
        }
        if (rc != ED_CACHE_HDR_SHORT || want != ED_CACHE_READ
            || hdr.body_off <= want || hdr.body_off > 64 * ED_CACHE_READ)
        {
            break;
        }
        /* A prefix longer than the first read. */
        want = (size_t)hdr.body_off;
    }
    /* A waiter may be another variant; a fill's client is the one. */
    if (rc != ED_CACHE_HDR_OK
        || (!c->following
            && (hdr.flags & (ED_CACHE_F_VARY | ED_CACHE_F_VARIANT)))
        || hdr.key_len != c->key.len
        || memcmp(buf + hdr.key_off, c->key.data, c->key.len) != 0)
    {
        return ED_DECLINED;
    }
    c->hdr = hdr;
    c->prefix = buf;
    c->read = 0;
    return ED_OK;
}

/* A fill's client with a single satisfiable Range (If-Range agreeing)
 * gets it as a 206 cut from the stream, when the response is stored;
 * several ranges get the 200. ED_OK or ED_ERROR. */
static int
ed_pc_stream_range(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    ed_http_range_t rg[ED_HTTP_RANGES_MAX];
    const ed_str_t *range, *if_range;
    ed_str_t        etag;
    size_t          n;
    int64_t         len = (int64_t)c->hdr.body_len;
    char            cr[96];

    range = ed_http_header(r, "Range");
    if (range == NULL || !c->fill_stored || c->hdr.status != 200
        || c->hdr.body_len == UINT64_MAX || len <= 0
        || r->head.method_id != ED_HTTP_GET)
    {
        return ED_OK;
    }
    etag.data = c->prefix + c->hdr.etag_off;
    etag.len = c->hdr.etag_len;
    if_range = ed_http_header(r, "If-Range");
    if (if_range
        && !ed_http_cond_if_range(if_range, etag.len ? &etag : NULL,
                                  c->hdr.last_modified >= 0
                                      ? (time_t)c->hdr.last_modified : -1))
    {
        return ED_OK;
    }
    if (ed_http_range_parse(range->data, range->len, len, rg,
                            ED_HTTP_RANGES_MAX, &n) != ED_HTTP_RANGE_OK
        || n != 1)
    {
        return ED_OK;
    }
    snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld",
             (long long)rg[0].start, (long long)rg[0].end - 1,
             (long long)len);
    if (ed_pc_add(r, "Content-Range", cr) != ED_OK) {
        return ED_ERROR;
    }
    r->status = 206;
    r->content_length = rg[0].end - rg[0].start;
    c->range_start = rg[0].start;
    c->range_end = rg[0].end;
    c->soff = (uint64_t)rg[0].start;
    c->ranged = 1;
    return ED_OK;
}

/* The client's own conditions against the stored response it follows
 * (cache.md: eddy applies them; the fetch went without them): ED_OK
 * (send it), ED_DONE (a 304 went out), or 412. */
static int
ed_pc_stream_cond(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    ed_http_cond_t cond;
    ed_str_t       etag;
    int            rc;

    if (!c->fill_stored || c->hdr.status != 200) {
        return ED_OK;
    }
    cond.if_match = ed_http_header(r, "If-Match");
    cond.if_none_match = ed_http_header(r, "If-None-Match");
    cond.if_modified_since = ed_http_header(r, "If-Modified-Since");
    cond.if_unmodified_since = ed_http_header(r, "If-Unmodified-Since");
    if (cond.if_match == NULL && cond.if_none_match == NULL
        && cond.if_modified_since == NULL && cond.if_unmodified_since == NULL)
    {
        return ED_OK;
    }
    etag.data = c->prefix + c->hdr.etag_off;
    etag.len = c->hdr.etag_len;
    rc = ed_http_cond_eval(&cond, &etag,
                           c->hdr.last_modified >= 0
                               ? (time_t)c->hdr.last_modified : -1,
                           true);
    if (rc == 412) {
        return 412;
    }
    r->upstream->cache_status = c->status;
    if (rc == 304) {
        /* The stored head goes with it, as with a hit's 304. */
        r->content_type.len = 0;
        r->content_type.data = NULL;
        return ed_http_send_response(r, 304, NULL, NULL, 0) == ED_OK
                   ? ED_DONE : ED_ERROR;
    }
    return ED_OK;
}

/* Sends the head of the fetch being streamed. ED_OK, ED_DONE (answered
 * without the body: a 304), a status (412) or ED_ERROR. */
static int
ed_pc_stream_head(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    char   buf[96];
    size_t i;
    int    rc;

    r->headers_out.nelts = 0;
    r->status = c->hdr.status;
    r->content_length = c->hdr.body_len == UINT64_MAX
                        ? -1 : (int64_t)c->hdr.body_len;
    if (c->following) {
        /* The fetch's own verdict (MISS, EXPIRED: stored or why not). */
        if (ed_pc_head(r, c) != ED_OK
            || ed_pc_add(r, "Cache-Status", c->fill_cs ? c->fill_cs
                                                       : "eddy") != ED_OK)
        {
            return ED_ERROR;
        }
        for (i = 0; i < c->ncookies; i++) {
            if (ed_http_add_header(r, "Set-Cookie", 10, c->cookies[i].data,
                                   c->cookies[i].len) != ED_OK)
            {
                return ED_ERROR;
            }
        }
        /* Conditions before Range (RFC 9110 13.2.2). */
        rc = ed_pc_stream_cond(r, c);
        if (rc != ED_OK) {
            return rc;
        }
        if (ed_pc_stream_range(r, c) != ED_OK) {
            return ED_ERROR;
        }
    } else {
        snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; "
                 "collapsed", c->fwd, c->hdr.status);
        if (ed_pc_head(r, c) != ED_OK || ed_pc_add(r, "Age", "0") != ED_OK
            || ed_pc_add(r, "Cache-Status", buf) != ED_OK)
        {
            return ED_ERROR;
        }
        c->status = "HIT";
    }
    r->upstream->cache_status = c->status;
    r->streamed = 1;
    return ed_http_send_header(r);
}

/* The client can take more. */
static void
ed_pc_stream_ready(ed_http_request_t *r, void *data)
{
    ed_http_cache_req_t   *c = data;
    int                    rc;

    rc = ed_pc_stream_pump(r, c);
    if (rc != ED_AGAIN) {
        ed_http_cache_wait_cancel(&c->waiter);
        c->waiting = 0;
        c->resume(r, c->resume_data, rc);
    }
}

/* Sends what the file holds past what was sent. ED_AGAIN (more to
 * come), ED_OK (all sent), ED_HTTP_CUT (the fetch failed), ED_ERROR. */
/* A file of unknown length removed: whole if it was sealed first (a
 * fill not kept: past max_entry_size, PURGEd, a response not stored);
 * c->hdr.body_len then says how long. ED_OK, or ED_DECLINED. */
static int
ed_pc_stream_sealed(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    ed_http_cache_hdr_t hdr;
    struct stat         st;
    char               *buf;

    buf = ed_pnalloc(r->pool, (size_t)c->hdr.body_off);
    if (buf == NULL || fstat(c->sfd, &st) != 0
        || pread(c->sfd, buf, (size_t)c->hdr.body_off, 0)
           != (ssize_t)c->hdr.body_off
        || ed_http_cache_hdr_followed(buf, (size_t)c->hdr.body_off,
                                      (uint64_t)st.st_size, &hdr,
                                      c->following)
           != ED_CACHE_HDR_OK)
    {
        return ED_DECLINED;
    }
    c->hdr.body_len = hdr.body_len;
    return ED_OK;
}

/* Bytes of a private file sent this long ago are surely out of the
 * socket's buffer, which sendfile fills with the file's own pages. */
#define ED_PC_SENT_MARGIN  (16 * 1024 * 1024)
/* The most of a private file queued for its client at once. */
#define ED_PC_QUEUE_STEP   (256 * 1024)

/* A fill's client following the private file of a response not stored:
 * the whole pages of body it sent long ago are given back (the file
 * stays about the size of its lag plus the margin, in memory or on
 * disk), and the fetch reads on if it waited for it. */
static void
ed_pc_stream_give_back(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    uint64_t from, to, sent, queued = r->proto->queued(r);

    sent = c->soff > queued + ED_PC_SENT_MARGIN
           ? c->soff - queued - ED_PC_SENT_MARGIN : 0;
    from = ed_max(c->punched, (c->hdr.body_off + 4095) & ~(uint64_t)4095);
    to = (c->hdr.body_off + sent) & ~(uint64_t)4095;
    if (to > from
        && fallocate(c->sfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     (off_t)from, (off_t)(to - from)) == 0)
    {
        c->punched = to;
    }
    if (c->fill) {
        ed_pc_fill_drained(c->fill);
    }
}

/* A fill's client took more: a private file gives back what it sent
 * long ago, and the fetch reads on if it waited for the client. */
static void
ed_pc_stream_took(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    if (!c->following) {
        return;
    }
    if (!c->fill_stored) {
        ed_pc_stream_give_back(r, c);
    } else if (c->fill) {
        ed_pc_fill_drained(c->fill);
    }
}

static int
ed_pc_stream_pump(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    struct stat st;
    uint64_t    have, avail, end;
    bool        paced;

    if (ed_http_output_busy(r)) {
        ed_http_output_wait(r, ed_pc_stream_ready, c);
        return ED_AGAIN;
    }
    if ((c->sgone & ED_CACHE_WAIT_DELETED) && c->hdr.body_len == UINT64_MAX
        && ed_pc_stream_sealed(r, c) != ED_OK)
    {
        return ED_HTTP_CUT;
    }
    if (fstat(c->sfd, &st) != 0) {
        return ED_HTTP_CUT;
    }
    have = (uint64_t)st.st_size > c->hdr.body_off
           ? (uint64_t)st.st_size - c->hdr.body_off : 0;
    end = c->ranged ? (uint64_t)c->range_end : c->hdr.body_len;
    if (end != UINT64_MAX && have > end) {
        have = end;
    }
    paced = c->following
            && (!c->fill_stored
                || (c->fill && ((ed_http_cache_req_t *)c->fill)->unstored));
    while (have > c->soff) {
        avail = have - c->soff;
        if (paced) {
            /* A file not kept is queued a little at a time, as the
             * client takes it: its fetch runs ahead of what was queued,
             * and what a client never takes would stay on disk. */
            avail = ed_min(avail, (uint64_t)ED_PC_QUEUE_STEP);
        }
        if (ed_http_send_file(r, c->sfd, (int64_t)(c->hdr.body_off + c->soff),
                              (size_t)avail) != ED_OK)
        {
            return ED_ERROR;
        }
        c->soff += avail;
        if (!c->following) {
            /* A fill's client is told when its fetch fails. */
            ed_http_cache_wait_touch(&c->waiter, c->conf->read_timeout);
        }
        if (have > c->soff && ed_http_output_busy(r)) {
            ed_pc_stream_took(r, c);
            ed_http_output_wait(r, ed_pc_stream_ready, c);
            return ED_AGAIN;
        }
    }
    ed_pc_stream_took(r, c);
    if (end != UINT64_MAX && c->soff == end) {
        return ED_OK;
    }
    if (c->sgone & ED_CACHE_WAIT_MOVED) {
        /* Renamed into place: every byte was in the file already. */
        return ED_OK;
    }
    if (c->sgone & ED_CACHE_WAIT_DELETED) {
        return ED_HTTP_CUT;
    }
    return ED_AGAIN;
}

int
ed_pc_stream(ed_http_request_t *r, ed_http_cache_req_t *c,
             unsigned events)
{
    int rc;

    if (!c->streaming) {
        if (!c->following && (c->no_stream || !ed_pc_stream_plain(r))) {
            c->no_stream = 1;
            return ED_DECLINED;
        }
        rc = ed_pc_stream_open(r, c);
        if (rc == ED_AGAIN && !(events & ED_CACHE_WAIT_GONE)) {
            return ED_AGAIN;
        }
        if (rc != ED_OK) {
            c->no_stream = 1;
            return ED_DECLINED;
        }
        c->streaming = 1;
        c->soff = 0;
        rc = ed_pc_stream_head(r, c);
        if (rc == ED_DONE) {
            return ED_OK;
        }
        if (rc != ED_OK) {
            return rc == 412 ? 412 : ED_ERROR;
        }
        if (r->head_only) {
            return ED_OK;
        }
    }
    if (events & ED_CACHE_WAIT_TIMEOUT) {
        /* The fetch stalled longer than read_timeout. */
        return ED_HTTP_CUT;
    }
    c->sgone |= events & ED_CACHE_WAIT_GONE;
    return ed_pc_stream_pump(r, c);
}
