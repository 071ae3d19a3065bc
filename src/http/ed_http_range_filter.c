/* The range filter: answers a Range request (RFC 9110 section 14) from a
 * response whose handler gives the whole representation as one piece
 * (r->allow_ranges: static files), with 206 and one range, 206 and
 * multipart/byteranges, or 416. It sits after the filters that transform
 * the body (gzip) in modules.list: a response they take over has no
 * length any more, so a Range is ignored and the whole body sent, as
 * nginx does (ranges of a stream compressed on the fly would not be
 * stable). File pieces stay file ranges: sendfile is kept. */
#include "ed_http.h"
#include "ed_http_range.h"

#include <sys/random.h>

typedef struct {
    ed_http_range_t  rg[ED_HTTP_RANGES_MAX];
    size_t           n;
    int64_t          size;      /* of the representation */
    ed_str_t        *parts;     /* multipart: each part's head */
    ed_str_t         tail;      /* multipart: the closing boundary */
    ed_str_t         page;      /* 416: the body replacing the file's */
    unsigned         done:1;
} ed_http_range_ctx_t;

static int ed_http_range_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_range_header(ed_http_request_t *r,
                                const ed_http_filter_t *self);
static int ed_http_range_body(ed_http_request_t *r, ed_http_link_t *link,
                              const ed_http_piece_t *p, bool last);

static const ed_http_filter_t ed_http_range_filter = {
    .name = "range",
    .header = ed_http_range_header,
    .body = ed_http_range_body,
};

ed_module_t ed_http_range_filter_module = {
    .name = "range",
    .attach = ed_http_range_attach,
};

/* Multipart boundaries: a per-worker random prefix and a counter. */
static uint64_t ed_http_range_seed;
static uint64_t ed_http_range_count;

/* Where a handler may answer ranges: static's locations, and those
 * without a handler yet (static's implicit handler comes at postconf).
 * ED_OK or ED_ERROR. */
static int
ed_http_range_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    if (loc->handler == NULL || loc->ranges) {
        return ed_http_filter_add(cf, loc, &ed_http_range_filter);
    }
    return ED_OK;
}

/* 416 with a Content-Range naming the size, and the status page instead of
 * the representation. ED_OK or ED_ERROR. */
static int
ed_http_range_416(ed_http_request_t *r, ed_http_range_ctx_t *ctx)
{
    static const ed_str_t html = ed_string("text/html");
    char                  *cr;
    size_t                 n;

    cr = ed_pnalloc(r->pool, 48);
    ctx->page.data = ed_pnalloc(r->pool, 256);
    if (cr == NULL || ctx->page.data == NULL) {
        return ED_ERROR;
    }
    n = (size_t)snprintf(cr, 48, "bytes */%lld", (long long)ctx->size);
    r->headers_out.nelts = 0;
    if (ed_http_add_header(r, "Content-Range", 13, cr, n) != ED_OK) {
        return ED_ERROR;
    }
    ctx->page.len = ed_http_status_page(416, ctx->page.data, 256);
    ctx->n = 0;
    r->status = 416;
    r->content_type = html;
    r->content_length = (int64_t)ctx->page.len;
    return ed_http_filter_start(r, &ed_http_range_filter, ctx);
}

/* The heads of the parts of a multipart/byteranges body, and its
 * length. ED_OK or ED_ERROR. */
static int
ed_http_range_multipart(ed_http_request_t *r, ed_http_range_ctx_t *ctx)
{
    static const char prefix[] = "multipart/byteranges; boundary=";
    const ed_str_t   *type = &r->content_type;
    ed_str_t          ct;
    char              boundary[40];
    size_t            i, blen, size;
    int64_t           total = 0;

    if (ed_http_range_seed == 0
        && getrandom(&ed_http_range_seed, sizeof(ed_http_range_seed),
                     GRND_NONBLOCK)
               != (ssize_t)sizeof(ed_http_range_seed))
    {
        ed_http_range_seed = (uint64_t)getpid() << 32
                             ^ (uint64_t)ed_current_msec;
    }
    blen = (size_t)snprintf(boundary, sizeof(boundary), "%016llx%08llx",
                            (unsigned long long)ed_http_range_seed,
                            (unsigned long long)++ed_http_range_count);
    ct.len = sizeof(prefix) - 1 + blen;
    ct.data = ed_pnalloc(r->pool, ct.len + 1);
    ctx->parts = ed_palloc(r->pool, ctx->n * sizeof(ed_str_t));
    ctx->tail.data = ed_pnalloc(r->pool, 64);
    if (ct.data == NULL || ctx->parts == NULL || ctx->tail.data == NULL) {
        return ED_ERROR;
    }
    memcpy(ct.data, prefix, sizeof(prefix) - 1);
    memcpy(ct.data + sizeof(prefix) - 1, boundary, blen + 1);
    for (i = 0; i < ctx->n; i++) {
        size = blen + type->len + 128;
        ctx->parts[i].data = ed_pnalloc(r->pool, size);
        if (ctx->parts[i].data == NULL) {
            return ED_ERROR;
        }
        ctx->parts[i].len = (size_t)snprintf(
            ctx->parts[i].data, size,
            "\r\n--%s\r\nContent-Type: %.*s\r\n"
            "Content-Range: bytes %lld-%lld/%lld\r\n\r\n",
            boundary, (int)type->len, type->data,
            (long long)ctx->rg[i].start, (long long)ctx->rg[i].end - 1,
            (long long)ctx->size);
        total += (int64_t)ctx->parts[i].len
                 + (ctx->rg[i].end - ctx->rg[i].start);
    }
    ctx->tail.len = (size_t)snprintf(ctx->tail.data, 64, "\r\n--%s--\r\n",
                                     boundary);
    r->content_type = ct;
    r->content_length = total + (int64_t)ctx->tail.len;
    return ED_OK;
}

static int
ed_http_range_header(ed_http_request_t *r, const ed_http_filter_t *self)
{
    ed_http_range_ctx_t  *ctx;
    ed_http_out_header_t *etag;
    const ed_str_t       *range, *if_range, *tag = NULL;
    char                 *cr;
    size_t                n;
    int                   rc;

    ed_unused(self);
    if (!r->allow_ranges || r->status != 200 || r->content_length < 0
        || r->head.method_id != ED_HTTP_GET)
    {
        return ED_OK;
    }
    range = ed_http_header(r, "Range");
    if (range == NULL) {
        return ED_OK;
    }
    etag = ed_http_out_header(r, "ETag", 4);
    if (etag) {
        tag = &etag->value;
    }
    if_range = ed_http_header(r, "If-Range");
    if (if_range && !ed_http_cond_if_range(if_range, tag, r->mtime)) {
        return ED_OK;
    }
    ctx = ed_pcalloc(r->pool, sizeof(ed_http_range_ctx_t));
    if (ctx == NULL) {
        return ED_ERROR;
    }
    ctx->size = r->content_length;
    rc = ed_http_range_parse(range->data, range->len, ctx->size, ctx->rg,
                             ED_HTTP_RANGES_MAX, &ctx->n);
    if (rc == ED_HTTP_RANGE_IGNORE) {
        return ED_OK;
    }
    if (rc == ED_HTTP_RANGE_UNSATISFIABLE) {
        return ed_http_range_416(r, ctx);
    }
    r->status = 206;
    if (ctx->n == 1) {
        cr = ed_pnalloc(r->pool, 64);
        if (cr == NULL) {
            return ED_ERROR;
        }
        n = (size_t)snprintf(cr, 64, "bytes %lld-%lld/%lld",
                             (long long)ctx->rg[0].start,
                             (long long)ctx->rg[0].end - 1,
                             (long long)ctx->size);
        if (ed_http_add_header(r, "Content-Range", 13, cr, n) != ED_OK) {
            return ED_ERROR;
        }
        r->content_length = ctx->rg[0].end - ctx->rg[0].start;
    } else if (ed_http_range_multipart(r, ctx) != ED_OK) {
        return ED_ERROR;
    }
    return ed_http_filter_start(r, &ed_http_range_filter, ctx);
}

/* Passes [start, end) of the whole-representation piece p on. */
static int
ed_http_range_slice(ed_http_request_t *r, ed_http_link_t *link,
                    const ed_http_piece_t *p, int64_t start, int64_t end)
{
    ed_http_piece_t s = *p;

    s.len = (size_t)(end - start);
    if (p->fd >= 0) {
        s.off = p->off + start;
    } else {
        s.data = p->data + start;
    }
    return ed_http_filter_next(r, link, &s, false);
}

static int
ed_http_range_mem(ed_http_request_t *r, ed_http_link_t *link,
                  const ed_str_t *s)
{
    ed_http_piece_t p;

    p.data = s->data;
    p.len = s->len;
    p.fd = -1;
    p.off = 0;
    return ed_http_filter_next(r, link, &p, false);
}

/* The handler gives the whole representation in one piece
 * (allow_ranges); the ranges are cut from it in the order asked. */
static int
ed_http_range_body(ed_http_request_t *r, ed_http_link_t *link,
                   const ed_http_piece_t *p, bool last)
{
    ed_http_range_ctx_t *ctx = link->ctx;
    size_t               i;

    if (last) {
        if (!ctx->done && ctx->size > 0) {
            /* The representation never came: the body is incomplete. */
            return ED_ERROR;
        }
        if (ctx->page.len
            && ed_http_range_mem(r, link, &ctx->page) != ED_OK)
        {
            return ED_ERROR;
        }
        return ed_http_filter_next(r, link, NULL, true);
    }
    if (ctx->done || (int64_t)p->len != ctx->size) {
        ed_http_log(ED_LOG_ALERT, r, 0, "the range filter needs the whole "
                    "representation in one piece");
        return ED_ERROR;
    }
    ctx->done = 1;
    if (ctx->page.len) {
        return ED_OK;  /* 416: the page goes at the end */
    }
    if (ctx->n == 1) {
        return ed_http_range_slice(r, link, p, ctx->rg[0].start,
                                   ctx->rg[0].end);
    }
    for (i = 0; i < ctx->n; i++) {
        if (ed_http_range_mem(r, link, &ctx->parts[i]) != ED_OK
            || ed_http_range_slice(r, link, p, ctx->rg[i].start,
                                   ctx->rg[i].end)
                   != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ed_http_range_mem(r, link, &ctx->tail);
}
