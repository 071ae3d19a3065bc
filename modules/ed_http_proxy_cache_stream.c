/* Streaming a fetch to the requests that wait for it (cache_lock): once
 * the fetching request has written the head into its temp file, each
 * waiter sends that head and then the body as it lands in the file,
 * told by inotify (ed_http_cache_wait.c), from its own descriptor of the
 * file: a slow waiter holds no upstream connection and no buffer, and
 * the bytes go by sendfile. The rename into place says the body is
 * complete; a removal, that the fetch failed: the waiter is cut off as a
 * proxied body would be. Waiters with conditions, ranges or a response
 * with Vary wait for the entry instead. */
#include "ed_http_proxy_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

static int ed_pc_stream_pump(ed_http_request_t *r, ed_http_proxy_cache_t *c);

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
ed_pc_stream_open(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    char    path[PATH_MAX], *buf;
    ssize_t n;
    int     rc;

    if (c->sfd < 0) {
        snprintf(path, sizeof(path), "%s/.tmp/%s", c->cache->path.data,
                 c->waiter.name);
        c->sfd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (c->sfd < 0) {
            return ED_DECLINED;
        }
    }
    buf = ed_pnalloc(r->pool, ED_CACHE_READ);
    if (buf == NULL) {
        return ED_DECLINED;
    }
    n = pread(c->sfd, buf, ED_CACHE_READ, 0);
    rc = ed_http_cache_hdr_partial(buf, n > 0 ? (size_t)n : 0, &c->hdr);
    if (rc == ED_CACHE_HDR_SHORT && n < ED_CACHE_READ) {
        return ED_AGAIN;
    }
    if (rc != ED_CACHE_HDR_OK
        || (c->hdr.flags & (ED_CACHE_F_VARY | ED_CACHE_F_VARIANT))
        || c->hdr.key_len != c->key.len
        || memcmp(buf + c->hdr.key_off, c->key.data, c->key.len) != 0)
    {
        return ED_DECLINED;
    }
    c->prefix = buf;
    c->read = 0;
    return ED_OK;
}

/* Sends the head of the fetch being streamed. ED_OK or ED_ERROR. */
static int
ed_pc_stream_head(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    char buf[96];

    snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; collapsed",
             c->fwd, c->hdr.status);
    r->headers_out.nelts = 0;
    if (ed_pc_head(r, c) != ED_OK || ed_pc_add(r, "Age", "0") != ED_OK
        || ed_pc_add(r, "Cache-Status", buf) != ED_OK)
    {
        return ED_ERROR;
    }
    c->status = "HIT";
    r->upstream->cache_status = c->status;
    r->status = c->hdr.status;
    r->content_length = c->hdr.body_len == UINT64_MAX
                        ? -1 : (int64_t)c->hdr.body_len;
    r->streamed = 1;
    return ed_http_send_header(r);
}

/* The client can take more. */
static void
ed_pc_stream_ready(ed_http_request_t *r, void *data)
{
    ed_http_proxy_cache_t *c = data;
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
static int
ed_pc_stream_pump(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    struct stat st;
    uint64_t    have, avail;

    if (ed_http_output_busy(r)) {
        ed_http_output_wait(r, ed_pc_stream_ready, c);
        return ED_AGAIN;
    }
    if (fstat(c->sfd, &st) != 0) {
        return ED_HTTP_CUT;
    }
    have = (uint64_t)st.st_size > c->hdr.body_off
           ? (uint64_t)st.st_size - c->hdr.body_off : 0;
    if (c->hdr.body_len != UINT64_MAX && have > c->hdr.body_len) {
        have = c->hdr.body_len;
    }
    if (have > c->soff) {
        avail = have - c->soff;
        if (ed_http_send_file(r, c->sfd, (int64_t)(c->hdr.body_off + c->soff),
                              (size_t)avail) != ED_OK)
        {
            return ED_ERROR;
        }
        c->soff += avail;
        ed_http_cache_wait_touch(&c->waiter, c->pcf->read_timeout);
    }
    if (c->hdr.body_len != UINT64_MAX && c->soff == c->hdr.body_len) {
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
ed_pc_stream(ed_http_request_t *r, ed_http_proxy_cache_t *c,
             unsigned events)
{
    int rc;

    if (!c->streaming) {
        if (c->no_stream || !ed_pc_stream_plain(r)) {
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
        if (ed_pc_stream_head(r, c) != ED_OK) {
            return ED_ERROR;
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
