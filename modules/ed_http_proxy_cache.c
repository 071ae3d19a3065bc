/* The proxy's cache (cache.md): the lookup before a request goes
 * upstream, a hit served from its file (conditional and range requests
 * through the same code as static files, the body by sendfile), and a
 * storable miss teed into a temp file renamed into place once its whole
 * body arrived. The file format, the rules and the shared index are in
 * src/http/ed_http_cache_*.c. */
#include "ed_http_proxy.h"
#include "ed_http_fields.h"
#include "ed_http_range.h"

#include <fcntl.h>
#include <sys/stat.h>

#define ed_cpyn(p, s, n) ((char *)memcpy(p, s, n) + (n))

#define ED_CACHE_READ      16384  /* first read of an entry */
#define ED_CACHE_MAX_HDRS  100
#define ED_CACHE_EVICT     16     /* files removed per store, at most */

static unsigned ed_cache_tmp_serial;

static void ed_cache_write_failed(ed_http_request_t *r,
                                  ed_http_proxy_cache_t *c, int err);

/* Paths. */

/* path/<levels>/<32 hex> of hash into pool memory, the directories'
 * ends in dirs[] (offsets into the result), their count in *ndirs. */
static char *
ed_cache_file_path(ed_pool_t *pool, const ed_http_cache_t *cache,
                   const uint8_t *hash, size_t *dirs, unsigned *ndirs)
{
    char     hex[2 * ED_CACHE_HASH_LEN + 1], *p, *s;
    size_t   end = 2 * ED_CACHE_HASH_LEN;
    unsigned i;

    ed_http_cache_hex(hash, hex);
    s = ed_pnalloc(pool, cache->path.len + 2 * ED_CACHE_HASH_LEN + 12);
    if (s == NULL) {
        return NULL;
    }
    p = ed_cpyn(s, cache->path.data, cache->path.len);
    /* The levels come from the last hex digits, as nginx. */
    for (i = 0; i < cache->nlevels; i++) {
        *p++ = '/';
        end -= cache->levels[i];
        p = ed_cpyn(p, hex + end, cache->levels[i]);
        if (dirs) {
            dirs[i] = (size_t)(p - s);
        }
    }
    if (ndirs) {
        *ndirs = cache->nlevels;
    }
    *p++ = '/';
    p = ed_cpyn(p, hex, 2 * ED_CACHE_HASH_LEN);
    *p = '\0';
    return s;
}

/* Removes the files of hashes[0..n), evicted from the index. */
static void
ed_cache_unlink_all(ed_http_request_t *r, const ed_http_cache_t *cache,
                    const uint8_t *hashes, size_t n)
{
    char  *path;
    size_t i;

    for (i = 0; i < n; i++) {
        path = ed_cache_file_path(r->pool, cache,
                                  hashes + i * ED_CACHE_HASH_LEN, NULL,
                                  NULL);
        if (path && unlink(path) != 0 && errno != ENOENT) {
            ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": unlink(\"%s\") "
                        "failed", cache->name.data, path);
        }
    }
}

/* Request state. */

/* Gives up the temp file (never stored: what was written goes) and
 * the key's fill; hfm_until > 0 marks the key hit-for-miss. The fill
 * goes first: the file's end wakes the waiters, who must find the key
 * free. */
static void
ed_cache_drop_tmp(ed_http_proxy_cache_t *c, int64_t hfm_until)
{
    if (c->locked) {
        c->locked = 0;
        ed_http_cache_index_unlock(c->cache->zone, c->lock_hash,
                                   (int32_t)getpid(), c->serial, hfm_until);
    }
    if (c->tmp_fd >= 0) {
        close(c->tmp_fd);
        c->tmp_fd = -1;
    }
    if (c->tmp_path) {
        unlink(c->tmp_path);
        c->tmp_path = NULL;
    }
    c->store = 0;
}

static void
ed_cache_cleanup(void *data)
{
    ed_http_proxy_cache_t *c = data;

    if (c->waiting) {
        c->waiting = 0;
        ed_http_cache_wait_cancel(&c->waiter);
    }
    ed_cache_drop_tmp(c, 0);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* Whether a template list has an item neither empty nor "0". */
static int
ed_cache_any(ed_http_request_t *r, const ed_array_t *list, bool *yes)
{
    ed_http_template_t **t;
    ed_str_t             v;
    size_t               i;

    *yes = false;
    if (list == NULL) {
        return ED_OK;
    }
    t = list->elts;
    for (i = 0; i < list->nelts; i++) {
        if (ed_http_template_run(r, t[i], &v) != ED_OK) {
            return ED_ERROR;
        }
        if (v.len && !(v.len == 1 && v.data[0] == '0')) {
            *yes = true;
            return ED_OK;
        }
    }
    return ED_OK;
}

/* Reading an entry. */

/* A bad file: removed, one log line, and a miss. */
static void
ed_cache_bad(ed_http_request_t *r, ed_http_proxy_cache_t *c,
             const char *path, const uint8_t *hash, const char *why)
{
    ed_http_log(ED_LOG_ERR, r, 0, "cache \"%s\": invalid file \"%s\" (%s), "
                "removed", c->cache->name.data, path, why);
    unlink(path);
    ed_http_cache_index_remove(c->cache->zone, hash);
}

/* Opens and checks the entry of hash: ED_OK with c->fd, c->hdr and
 * c->prefix (the key checked against c->key), ED_DECLINED when there
 * is none (or it is bad, or another key's), ED_ERROR on ENOMEM. */
static int
ed_cache_open(ed_http_request_t *r, ed_http_proxy_cache_t *c,
              const uint8_t *hash)
{
    struct stat st;
    char       *path, *buf;
    size_t      want;
    ssize_t     n;
    int         fd, rc;

    path = ed_cache_file_path(r->pool, c->cache, hash, NULL, NULL);
    if (path == NULL) {
        return ED_ERROR;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": open(\"%s\") "
                        "failed", c->cache->name.data, path);
        }
        return ED_DECLINED;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ED_DECLINED;
    }
    want = (size_t)ed_min((int64_t)ED_CACHE_READ, (int64_t)st.st_size);
    for (;;) {
        buf = ed_pnalloc(r->pool, want ? want : 1);
        if (buf == NULL) {
            close(fd);
            return ED_ERROR;
        }
        n = pread(fd, buf, want, 0);
        if (n < 0) {
            ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": pread(\"%s\") "
                        "failed", c->cache->name.data, path);
            close(fd);
            return ED_DECLINED;
        }
        rc = ed_http_cache_hdr_check(buf, (size_t)n, (uint64_t)st.st_size,
                                     &c->hdr);
        if (rc != ED_CACHE_HDR_SHORT || (size_t)n < want
            || n < (ssize_t)sizeof(c->hdr) || c->hdr.body_off <= want)
        {
            break;
        }
        /* A prefix longer than the first read: read all of it. */
        want = (size_t)c->hdr.body_off;
    }
    if (rc != ED_CACHE_HDR_OK) {
        close(fd);
        ed_cache_bad(r, c, path, hash, ed_http_cache_hdr_error(rc));
        return ED_DECLINED;
    }
    if (c->hdr.key_len != c->key.len
        || memcmp(buf + c->hdr.key_off, c->key.data, c->key.len) != 0)
    {
        /* Another key under the same hash: a miss, replaced when this
         * one is stored. */
        close(fd);
        return ED_DECLINED;
    }
    c->fd = fd;
    c->prefix = buf;
    return ED_OK;
}

/* Seconds the entry has been fresh for (negative: stale). */
static int64_t
ed_cache_ttl(const ed_http_cache_hdr_t *h)
{
    int64_t age = h->initial_age
                  + ed_max((int64_t)0, (int64_t)ed_time_sec - h->stored);

    return h->lifetime - age;
}

/* Serving. */

/* Adds a header whose value is copied into the request pool (headers
 * keep pointers: values made on the stack must outlive the call). */
static int
ed_cache_add(ed_http_request_t *r, const char *name, const char *value)
{
    ed_str_t v;

    if (ed_str_dup(r->pool, &v, value, strlen(value)) != ED_OK) {
        return ED_ERROR;
    }
    return ed_http_add_header(r, name, strlen(name), v.data, v.len);
}

/* The response head of the entry c->prefix holds, parsed into r's
 * headers. ED_OK, ED_ERROR, or ED_DECLINED when it does not parse. */
static int
ed_cache_head(ed_http_request_t *r, ed_http_proxy_cache_t *c,
              ed_http_resp_head_t *h, ed_http_header_t *hdrs)
{
    ed_http_header_t *f;
    size_t            i;

    if (ed_http_parse_response(c->prefix + c->hdr.head_off, c->hdr.head_len,
                               h, hdrs, ED_CACHE_MAX_HDRS) != ED_OK)
    {
        return ED_DECLINED;
    }
    r->content_type = h->content_type;
    for (i = 0; i < h->nheaders; i++) {
        f = &h->headers[i];
        if (ed_http_upstream_skip_response_header(h, &f->name)
            || ed_http_str_eq_lit(&f->name, "age"))
        {
            continue;
        }
        if (ed_http_add_header(r, f->name.data, f->name.len, f->value.data,
                               f->value.len) != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ED_OK;
}

/* Serves the entry open in c (fresh, or just revalidated): the stored
 * head, Age and Cache-Status, the client's conditions against the
 * stored validators, and the body as a file range (the range filter
 * cuts a Range from it). Returns ED_OK, ED_ERROR or a status. */
static int
ed_cache_serve(ed_http_request_t *r, ed_http_proxy_cache_t *c,
               const char *cache_status)
{
    ed_http_header_t    hdrs[ED_CACHE_MAX_HDRS];
    ed_http_resp_head_t h;
    ed_http_cond_t      cond;
    ed_str_t            etag;
    char                num[32];
    int64_t             age, ttl;
    int                 rc;

    r->headers_out.nelts = 0;
    rc = ed_cache_head(r, c, &h, hdrs);
    if (rc != ED_OK) {
        return rc == ED_ERROR ? ED_ERROR : 502;
    }
    ttl = ed_cache_ttl(&c->hdr);
    age = ed_max((int64_t)0, c->hdr.lifetime - ttl);
    snprintf(num, sizeof(num), "%lld", (long long)age);
    if (ed_cache_add(r, "Age", num) != ED_OK
        || ed_cache_add(r, "Cache-Status", cache_status) != ED_OK)
    {
        return ED_ERROR;
    }
    r->upstream->cache_status = c->status;
    r->status = c->hdr.status;
    r->content_length = (int64_t)c->hdr.body_len;
    if (c->hdr.status == 200 && !r->error_status) {
        etag.data = c->prefix + c->hdr.etag_off;
        etag.len = c->hdr.etag_len;
        cond.if_match = ed_http_header(r, "If-Match");
        cond.if_none_match = ed_http_header(r, "If-None-Match");
        cond.if_modified_since = ed_http_header(r, "If-Modified-Since");
        cond.if_unmodified_since = ed_http_header(r, "If-Unmodified-Since");
        rc = ed_http_cond_eval(&cond, &etag,
                               c->hdr.last_modified >= 0
                                   ? (time_t)c->hdr.last_modified : -1,
                               true);
        if (rc == 412) {
            r->headers_out.nelts = 0;
            return 412;
        }
        if (rc == 304) {
            r->content_type.len = 0;
            r->content_type.data = NULL;
            return ed_http_send_response(r, 304, NULL, NULL, 0) == ED_OK
                       ? ED_OK : ED_ERROR;
        }
        if (ed_http_header(r, "Range")) {
            /* The body below is the whole representation in one piece. */
            r->allow_ranges = 1;
            r->mtime = c->hdr.last_modified >= 0
                       ? (time_t)c->hdr.last_modified : -1;
        }
    }
    if (ed_http_send_header(r) != ED_OK) {
        return ED_ERROR;
    }
    if (c->hdr.body_len == 0) {
        return ED_OK;
    }
    /* The descriptor stays open with the request (the pool cleanup
     * closes it) until the range is written; an entry removed
     * meanwhile is finished from it. */
    return ed_http_send_file(r, c->fd, (int64_t)c->hdr.body_off,
                             (size_t)c->hdr.body_len) == ED_OK
               ? ED_OK : ED_ERROR;
}

/* The lookup. */

/* The variant's hash: the key's, then a newline and the variant. */
static int
ed_cache_variant_hash(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                      const ed_str_t *names, uint8_t *hash)
{
    char *s;

    if (ed_http_cache_variant(r->pool, names, r->head.headers,
                              r->head.nheaders, &c->variant) != ED_OK)
    {
        return ED_ERROR;
    }
    s = ed_pnalloc(r->pool, c->key.len + 1 + c->variant.len);
    if (s == NULL) {
        return ED_ERROR;
    }
    memcpy(s, c->key.data, c->key.len);
    s[c->key.len] = '\n';
    memcpy(s + c->key.len + 1, c->variant.data, c->variant.len);
    return ed_http_cache_hash(s, c->key.len + 1 + c->variant.len, hash);
}

/* Finds the entry for the request: the key's file, or through its Vary
 * marker the variant's. ED_OK (c->fd open), ED_DECLINED (a miss,
 * c->fwd says which), ED_ERROR. */
static int
ed_cache_find(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    uint8_t dropped[ED_CACHE_HASH_LEN];
    size_t  nd;
    int     rc;

    c->uses = ed_http_cache_index_use(c->cache->zone, c->main_hash,
                                      (int64_t)ed_time_sec, dropped, &nd);
    if (nd) {
        ed_cache_unlink_all(r, c->cache, dropped, nd);
    }
    memcpy(c->hash, c->main_hash, ED_CACHE_HASH_LEN);
    rc = ed_cache_open(r, c, c->main_hash);
    if (rc != ED_OK) {
        return rc;
    }
    if (!(c->hdr.flags & ED_CACHE_F_VARY)) {
        return ED_OK;
    }
    /* A marker: the variant this request selects. */
    c->marker = 1;
    c->vary.len = c->hdr.vary_len;
    c->vary.data = ed_pnalloc(r->pool, c->vary.len + 1);
    if (c->vary.data == NULL) {
        return ED_ERROR;
    }
    memcpy(c->vary.data, c->prefix + c->hdr.vary_off, c->vary.len);
    c->vary.data[c->vary.len] = '\0';
    close(c->fd);
    c->fd = -1;
    c->fwd = "vary-miss";
    if (ed_cache_variant_hash(r, c, &c->vary, c->hash) != ED_OK) {
        return ED_ERROR;
    }
    rc = ed_cache_open(r, c, c->hash);
    if (rc != ED_OK) {
        return rc;
    }
    if (!(c->hdr.flags & ED_CACHE_F_VARIANT)
        || c->hdr.vary_len != c->variant.len
        || memcmp(c->prefix + c->hdr.vary_off, c->variant.data,
                  c->variant.len) != 0)
    {
        close(c->fd);
        c->fd = -1;
        return ED_DECLINED;
    }
    return ED_OK;
}

/* The temp file path/.tmp/<pid>.<serial> into c->tmp_path. */
static int
ed_cache_tmp_name(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    size_t n = c->cache->path.len + 48;

    c->tmp_path = ed_pnalloc(r->pool, n);
    if (c->tmp_path == NULL) {
        return ED_ERROR;
    }
    if (c->serial == 0) {
        c->serial = ++ed_cache_tmp_serial;
    }
    snprintf(c->tmp_path, n, "%s/.tmp/%d.%u", c->cache->path.data,
             (int)getpid(), c->serial);
    return ED_OK;
}

static void ed_cache_waited(ed_http_cache_waiter_t *w, bool timeout);

/* cache_lock: takes the key's fill (its temp file made now, so that
 * waiters have a name to watch), or waits for the request holding it.
 * ED_OK (go upstream), ED_AGAIN (waiting), ED_ERROR. */
static int
ed_cache_lock(ed_http_request_t *r, ed_http_proxy_cache_t *c,
              ed_msec_t timeout)
{
    uint8_t  dropped[ED_CACHE_HASH_LEN];
    size_t   nd;
    int64_t  now = (int64_t)ed_time_sec;
    int32_t  opid = 0;
    uint32_t oserial = 0;
    int      rc;

    memcpy(c->lock_hash, c->hash, ED_CACHE_HASH_LEN);
    c->serial = ++ed_cache_tmp_serial;
    rc = ed_http_cache_index_lock(c->cache->zone, c->lock_hash, now,
                                  now + (int64_t)(timeout + 999) / 1000,
                                  (int32_t)getpid(), c->serial, &opid,
                                  &oserial, dropped, &nd);
    if (nd) {
        ed_cache_unlink_all(r, c->cache, dropped, nd);
    }
    if (rc == ED_DECLINED) {
        /* Hit-for-miss: no queueing; a storable response is stored. */
        return ED_OK;
    }
    if (rc == ED_OK) {
        c->locked = 1;
        if (ed_cache_tmp_name(r, c) != ED_OK) {
            return ED_ERROR;
        }
        c->tmp_fd = open(c->tmp_path, O_WRONLY | O_CREAT | O_TRUNC
                                      | O_CLOEXEC, 0600);
        if (c->tmp_fd < 0) {
            ed_cache_write_failed(r, c, errno);
            c->tmp_path = NULL;
            ed_cache_drop_tmp(c, 0);
        }
        return ED_OK;
    }
    c->waiter.cache = c->cache;
    c->waiter.done = ed_cache_waited;
    c->waiter.data = c;
    snprintf(c->waiter.name, sizeof(c->waiter.name), "%d.%u", (int)opid,
             oserial);
    return ED_AGAIN;
}

/* Whether the stale entry open in c may be served for cond (an
 * ED_CACHE_STALE_* bit): never after no-cache, must-revalidate or
 * proxy-revalidate; in use_stale's conditions unless it had s-maxage;
 * in its own stale-while-revalidate (updating) or stale-if-error
 * window (RFC 5861). */
static bool
ed_cache_stale_ok(ed_http_proxy_cache_t *c, int cond)
{
    int64_t stale = -ed_cache_ttl(&c->hdr);
    int64_t window = cond == ED_CACHE_STALE_UPDATING ? c->hdr.swr
                                                     : c->hdr.sie;

    if (!c->stale || (c->hdr.flags & ED_CACHE_F_MUST_REVAL)) {
        return false;
    }
    if ((c->pcf->use_stale & cond) && !(c->hdr.flags & ED_CACHE_F_S_MAXAGE))
    {
        return true;
    }
    return window >= 0 && stale <= window;
}

/* Serves the stale entry: detail "updating" or "stale-error". */
static int
ed_cache_serve_stale(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                     bool updating)
{
    char buf[96];

    c->revalidating = 0;
    if (updating) {
        c->status = "UPDATING";
        snprintf(buf, sizeof(buf), "eddy; hit; ttl=%lld; detail=updating",
                 (long long)ed_cache_ttl(&c->hdr));
    } else {
        c->status = "STALE";
        snprintf(buf, sizeof(buf), "eddy; fwd=stale; ttl=%lld; "
                 "detail=stale-error", (long long)ed_cache_ttl(&c->hdr));
    }
    return ed_cache_serve(r, c, buf);
}

/* Background refreshes (background_update): a request of their own,
 * without a client, on a protocol whose output goes nowhere. It lives
 * in its own pool, with copies of what it needs of the client's request
 * (head, connection's addresses), so that the client may go. */
typedef struct {
    ed_http_request_t *br;
    ed_defer_t         post;      /* runs the handler, then frees */
    ed_timer_t         timer;     /* the protocol's; never armed */
    ed_http_conn_t     hc;        /* addresses and listener only */
    unsigned           started:1;
} ed_cache_bg_t;

static ed_cache_bg_t *
ed_cache_bg(ed_http_request_t *r)
{
    return ((ed_http_proxy_cache_t *)r->upstream->cache)->bg;
}

static int
ed_cache_bg_head(ed_http_request_t *r, const void *body, size_t len)
{
    ed_unused(body);
    ed_unused(len);
    r->header_sent = 1;
    return ED_OK;
}

static int
ed_cache_bg_piece(ed_http_request_t *r, const ed_http_piece_t *p)
{
    ed_unused(r);
    ed_unused(p);
    return ED_OK;
}

static int
ed_cache_bg_end(ed_http_request_t *r)
{
    ed_unused(r);
    return ED_OK;
}

static bool
ed_cache_bg_false(ed_http_request_t *r)
{
    ed_unused(r);
    return false;
}

static bool
ed_cache_bg_true(ed_http_request_t *r)
{
    ed_unused(r);
    return true;
}

static size_t
ed_cache_bg_queued(ed_http_request_t *r)
{
    ed_unused(r);
    return 0;
}

static void
ed_cache_bg_notify(ed_http_request_t *r, bool on)
{
    ed_unused(r);
    ed_unused(on);
}

static void
ed_cache_bg_noop(ed_http_request_t *r)
{
    ed_unused(r);
}

static void
ed_cache_bg_buffer(ed_http_request_t *r, size_t size)
{
    ed_unused(r);
    ed_unused(size);
}

static ed_timer_t *
ed_cache_bg_timer(ed_http_request_t *r)
{
    return &ed_cache_bg(r)->timer;
}

static int
ed_cache_bg_read_body(ed_http_request_t *r, ed_http_body_pt cb, void *data)
{
    ed_unused(r);
    ed_unused(cb);
    ed_unused(data);
    return ED_DONE;
}

/* The refresh is over: its pool goes, from the loop. */
static void
ed_cache_bg_end_request(ed_http_request_t *r)
{
    ed_loop_post(ed_worker->loop, &ed_cache_bg(r)->post);
}

static const ed_http_proto_t ed_cache_bg_proto = {
    .name = "cache refresh",
    .head = ed_cache_bg_head,
    .piece = ed_cache_bg_piece,
    .end = ed_cache_bg_end,
    .blocked = ed_cache_bg_false,
    .queued = ed_cache_bg_queued,
    .written = ed_cache_bg_true,
    .notify_drain = ed_cache_bg_notify,
    .notify_flushed = ed_cache_bg_noop,
    .buffer = ed_cache_bg_buffer,
    .timer = ed_cache_bg_timer,
    .read_body = ed_cache_bg_read_body,
    .body_pause = ed_cache_bg_noop,
    .body_resume = ed_cache_bg_noop,
    .body_stop = ed_cache_bg_noop,
    .done = ed_cache_bg_end_request,
    .fail = ed_cache_bg_end_request,
};

/* First post: the proxy handler; second: the pool goes. */
static void
ed_cache_bg_run(ed_defer_t *d)
{
    ed_cache_bg_t     *bg = ed_container_of(d, ed_cache_bg_t, post);
    ed_http_request_t *br = bg->br;
    int                rc;

    if (!bg->started) {
        bg->started = 1;
        rc = br->loc->handler(br);
        if (rc != ED_AGAIN) {
            ed_http_finalize(br, rc >= 100 ? ED_ERROR : rc);
        }
        return;
    }
    ed_pool_destroy(br->pool);
}

/* Copies s into pool memory. */
static int
ed_cache_dup(ed_pool_t *pool, ed_str_t *s)
{
    return s->data ? ed_str_dup(pool, s, s->data, s->len) : ED_OK;
}

/* Starts a refresh of c's key detached from r, which hands it its fill
 * of the key (the temp file waiters watch). ED_OK, or ED_ERROR: r keeps
 * the fill and fetches itself. */
static int
ed_cache_background(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    ed_http_request_t     *br;
    ed_http_proxy_cache_t *bc;
    ed_cache_bg_t         *bg;
    ed_http_header_t      *f;
    ed_pool_t             *pool;
    size_t                 i;

    pool = ed_pool_create(4096);
    if (pool == NULL) {
        return ED_ERROR;
    }
    br = ed_pcalloc(pool, sizeof(ed_http_request_t));
    bg = ed_pcalloc(pool, sizeof(ed_cache_bg_t));
    bc = ed_pcalloc(pool, sizeof(ed_http_proxy_cache_t));
    f = ed_palloc(pool, (r->head.nheaders + 1) * sizeof(ed_http_header_t));
    if (br == NULL || bg == NULL || bc == NULL || f == NULL
        || ed_array_init(&br->headers_out, pool, 4,
                         sizeof(ed_http_out_header_t)) != ED_OK
        || (br->upstream = ed_pcalloc(pool,
                                      sizeof(ed_http_upstream_state_t)))
               == NULL)
    {
        goto failed;
    }
    br->pool = pool;
    br->proto = &ed_cache_bg_proto;
    /* The client's addresses and listener, nothing of its socket. */
    bg->hc.c.ls = r->hc->c.ls;
    bg->hc.c.peer = r->hc->c.peer;
    bg->hc.c.stream.ev.fd = -1;
    bg->hc.number = r->hc->number;
    bg->hc.r = br;
    br->hc = &bg->hc;
    br->head = r->head;
    br->head.method_id = ED_HTTP_GET;
    ed_str_set(&br->head.method, "GET");
    br->head.content_length = -1;
    br->head.chunked = 0;
    for (i = 0; i < r->head.nheaders; i++) {
        f[i] = r->head.headers[i];
        if (ed_cache_dup(pool, &f[i].name) != ED_OK
            || ed_cache_dup(pool, &f[i].value) != ED_OK)
        {
            goto failed;
        }
    }
    br->head.headers = br->head.fields = f;
    br->head.nfields = r->head.nheaders;
    br->uri = r->uri;
    br->host = r->host;
    br->request_id = r->request_id;
    if (ed_cache_dup(pool, &br->head.target) != ED_OK
        || ed_cache_dup(pool, &br->head.path) != ED_OK
        || ed_cache_dup(pool, &br->head.query) != ED_OK
        || ed_cache_dup(pool, &br->head.authority) != ED_OK
        || ed_cache_dup(pool, &br->head.host) != ED_OK
        || ed_cache_dup(pool, &br->uri) != ED_OK
        || ed_cache_dup(pool, &br->host) != ED_OK
        || ed_cache_dup(pool, &br->request_id) != ED_OK)
    {
        goto failed;
    }
    if (r->remote && r->remote != &r->hc->c.peer) {
        ed_peer_addr_t *a = ed_palloc(pool, sizeof(*a));

        if (a == NULL) {
            goto failed;
        }
        *a = *r->remote;
        br->remote = a;
    }
    br->server = r->server;
    br->loc = r->loc;
    br->loc_conf = r->loc_conf;
    br->clcf = r->clcf;
    br->uri_rewritten = r->uri_rewritten;
    br->redirects = r->redirects;
    br->start_msec = ed_current_msec;
    br->content_length = -1;
    br->head_only = 1;       /* nothing of the body goes anywhere */
    br->background = 1;

    /* The fill and the stale entry's key go to the refresh. */
    bc->r = br;
    bc->pcf = c->pcf;
    bc->cache = c->cache;
    bc->fd = -1;
    bc->tmp_fd = c->tmp_fd;
    bc->bg = bg;
    bc->key = c->key;
    memcpy(bc->main_hash, c->main_hash, ED_CACHE_HASH_LEN);
    memcpy(bc->lock_hash, c->lock_hash, ED_CACHE_HASH_LEN);
    bc->serial = c->serial;
    bc->tmp_path = c->tmp_path;
    if (ed_cache_dup(pool, &bc->key) != ED_OK
        || (bc->tmp_path
            && (bc->tmp_path = ed_pstrdup(pool, c->tmp_path,
                                          strlen(c->tmp_path))) == NULL)
        || ed_pool_cleanup_add(pool, ed_cache_cleanup, bc) != ED_OK)
    {
        goto failed;
    }
    bc->locked = c->locked;
    c->locked = 0;
    c->tmp_fd = -1;
    c->tmp_path = NULL;
    br->upstream->cache = bc;
    bg->br = br;
    bg->post.handler = ed_cache_bg_run;
    ed_loop_post(ed_worker->loop, &bg->post);
    return ED_OK;

failed:
    ed_pool_destroy(pool);
    return ED_ERROR;
}

/* The refresh's own start: the stale entry again (its validators), then
 * upstream. ED_DECLINED, or ED_ERROR when there is nothing to do. */
static int
ed_cache_bg_start(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    int rc;

    c->may_store = 1;
    c->lookup = 1;
    c->fwd = "stale";
    c->status = "EXPIRED";
    rc = ed_cache_find(r, c);
    c->uses = UINT32_MAX;    /* counted by the request that started it */
    if (rc == ED_OK && c->hdr.lifetime > 0 && ed_cache_ttl(&c->hdr) > 0) {
        /* Refreshed meanwhile. */
        return ED_ERROR;
    }
    if (rc == ED_OK) {
        c->stale = 1;
        c->revalidating = c->pcf->revalidate
                          && (c->hdr.etag_len || c->hdr.last_modified >= 0);
    }
    return rc == ED_ERROR ? ED_ERROR : ED_DECLINED;
}

/* What to do once ed_cache_find returned rc: serve a fresh entry, wait
 * for another request's fetch (or serve stale while it updates), or go
 * upstream. ED_DECLINED (upstream), ED_AGAIN (waiting), or the result
 * of serving. */
static int
ed_cache_decide(ed_http_request_t *r, ed_http_proxy_cache_t *c, int rc,
                bool only_if_cached, bool collapsed)
{
    ed_http_proxy_conf_t *pcf = c->pcf;
    ed_msec_t             timeout;
    char                  buf[96];

    if (rc == ED_ERROR) {
        return 500;
    }
    c->stale = 0;
    if (rc == ED_OK) {
        if (c->hdr.lifetime > 0 && ed_cache_ttl(&c->hdr) > 0) {
            c->status = "HIT";
            if (collapsed) {
                snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; "
                         "collapsed", c->fwd, c->hdr.status);
            } else {
                snprintf(buf, sizeof(buf), "eddy; hit; ttl=%lld",
                         (long long)ed_cache_ttl(&c->hdr));
            }
            return ed_cache_serve(r, c, buf);
        }
        /* Stale: kept open, to revalidate or to serve stale. */
        c->stale = 1;
        c->fwd = "stale";
        c->status = "EXPIRED";
        c->revalidating = pcf->revalidate && !only_if_cached
                          && (c->hdr.etag_len || c->hdr.last_modified >= 0);
    }
    if (only_if_cached) {
        r->upstream->cache_status = c->status;
        snprintf(buf, sizeof(buf), "eddy; fwd=%s; detail=only-if-cached",
                 c->fwd);
        if (ed_cache_add(r, "Cache-Status", buf) != ED_OK) {
            return 500;
        }
        c->may_store = 0;
        return 504;
    }
    if (c->no_store || (pcf->cache_lock && !pcf->cache_lock->enabled)) {
        return ED_DECLINED;
    }
    timeout = pcf->cache_lock ? pcf->cache_lock->timeout : 5000;
    rc = ed_cache_lock(r, c, timeout);
    if (rc == ED_OK && c->locked && c->stale && pcf->background_update
        && ed_cache_stale_ok(c, ED_CACHE_STALE_UPDATING)
        && ed_cache_background(r, c) == ED_OK)
    {
        /* The stale entry at once; one refresh goes on without us. */
        return ed_cache_serve_stale(r, c, true);
    }
    if (rc != ED_AGAIN) {
        return rc == ED_ERROR ? 500 : ED_DECLINED;
    }
    /* Another request fetches the key. */
    if (ed_cache_stale_ok(c, ED_CACHE_STALE_UPDATING)) {
        return ed_cache_serve_stale(r, c, true);
    }
    if (ed_http_cache_wait(&c->waiter, timeout) != ED_OK) {
        return ED_DECLINED;
    }
    c->waiting = 1;
    return ED_AGAIN;
}

/* The fetch waited for is over (or timeout passed): the entry it stored
 * is served, else the request goes upstream itself (or waits again for
 * a new fetch of the key). */
static void
ed_cache_waited(ed_http_cache_waiter_t *w, bool timeout)
{
    ed_http_proxy_cache_t *c = w->data;
    ed_http_request_t     *r = c->r;
    int                    rc;

    c->waiting = 0;
    if (timeout) {
        /* Past cache_lock.timeout: upstream, unstored. */
        c->detail = "lock-timeout";
        c->resume(r, c->resume_data, ED_DECLINED);
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->revalidating = 0;
    rc = ed_cache_decide(r, c, ed_cache_find(r, c), false, true);
    if (rc != ED_AGAIN) {
        c->resume(r, c->resume_data, rc);
    }
}

int
ed_http_proxy_cache_start(ed_http_request_t *r, ed_http_proxy_conf_t *pcf,
                          ed_http_proxy_cache_t **cp,
                          ed_http_proxy_cache_resume_pt resume, void *data)
{
    ed_http_proxy_cache_t *c;
    ed_str_t               cc;
    bool                   bypass, nocache, only_if_cached = false;
    int                    method;

    *cp = NULL;
    if (pcf->cache == NULL) {
        return ED_DECLINED;
    }
    if (r->background) {
        c = r->upstream->cache;
        c->resume = resume;
        c->resume_data = data;
        *cp = c;
        return ed_cache_bg_start(r, c);
    }
    c = ed_pcalloc(r->pool, sizeof(ed_http_proxy_cache_t));
    if (c == NULL) {
        return 500;
    }
    c->r = r;
    c->pcf = pcf;
    c->resume = resume;
    c->resume_data = data;
    c->cache = pcf->cache;
    c->fd = -1;
    c->tmp_fd = -1;
    if (ed_pool_cleanup_add(r->pool, ed_cache_cleanup, c) != ED_OK) {
        return 500;
    }
    *cp = c;
    method = r->head.method_id == ED_HTTP_GET ? ED_CACHE_M_GET
             : r->head.method_id == ED_HTTP_HEAD ? ED_CACHE_M_HEAD : 0;
    if (!(pcf->cache_methods & method)) {
        c->fwd = "method";
        return ED_DECLINED;
    }
    if (ed_http_has_body(r) || ed_http_header(r, "Upgrade")
        || r->connect_protocol)
    {
        c->fwd = "request";
        return ED_DECLINED;
    }
    if (ed_http_template_run(r, pcf->cache_key, &c->key) != ED_OK) {
        return 500;
    }
    if (c->key.len == 0 || c->key.len > ED_CACHE_KEY_MAX) {
        c->fwd = "request";
        return ED_DECLINED;
    }
    if (ed_http_cache_hash(c->key.data, c->key.len, c->main_hash) != ED_OK
        || ed_cache_any(r, pcf->cache_bypass, &bypass) != ED_OK
        || ed_cache_any(r, pcf->no_cache, &nocache) != ED_OK)
    {
        return 500;
    }
    /* Request directives: no-store is honoured, only-if-cached answered;
     * the others are ignored so that no client pushes load upstream
     * (cache_bypass picks who may). */
    c->no_store = nocache;
    if (ed_http_header(r, "Cache-Control")) {
        if (ed_http_cache_cc(r->head.headers, r->head.nheaders, "no-store",
                             &cc))
        {
            c->no_store = 1;
        }
        only_if_cached = ed_http_cache_cc(r->head.headers, r->head.nheaders,
                                          "only-if-cached", &cc);
    }
    c->may_store = 1;
    if (bypass) {
        c->fwd = "bypass";
        c->status = "BYPASS";
        return ED_DECLINED;
    }
    c->lookup = 1;
    c->fwd = "uri-miss";
    c->status = "MISS";
    return ed_cache_decide(r, c, ed_cache_find(r, c), only_if_cached, false);
}

int
ed_http_proxy_cache_failed(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                           int cond, bool fetch)
{
    if (c == NULL || !c->stale || r->header_sent) {
        return ED_DECLINED;
    }
    if (ed_cache_stale_ok(c, cond)) {
        r->headers_out.nelts = 0;
        return ed_cache_serve_stale(r, c, false);
    }
    if (fetch && (c->hdr.flags
                  & (ED_CACHE_F_MUST_REVAL | ED_CACHE_F_S_MAXAGE)))
    {
        /* RFC 9111 5.2.2.2 (s-maxage implies proxy-revalidate): a stale
         * entry that must be revalidated and cannot be is a 504. */
        return 504;
    }
    return ED_DECLINED;
}

void
ed_http_proxy_cache_request(ed_http_proxy_cache_t *c,
                            ed_http_upstream_req_t *q)
{
    if (c == NULL || !c->may_store) {
        return;
    }
    q->cache = 1;
    if (!c->revalidating) {
        return;
    }
    if (c->hdr.etag_len) {
        c->etag.data = c->prefix + c->hdr.etag_off;
        c->etag.len = c->hdr.etag_len;
        q->if_none_match = &c->etag;
    }
    if (c->hdr.last_modified >= 0) {
        c->ims.data = c->ims_buf;
        c->ims.len = (size_t)(ed_http_time(c->ims_buf,
                                           (time_t)c->hdr.last_modified)
                              - c->ims_buf);
        q->if_modified_since = &c->ims;
    }
}

/* Storing. */

/* The head to store: the status line and the upstream's fields but the
 * hop-by-hop ones, the framing, Age, and Set-Cookie (an entry never
 * replays a cookie). *etag gets where the ETag value lands. */
static int
ed_cache_stored_head(ed_http_request_t *r, const ed_http_resp_head_t *h,
                     ed_str_t *out, ed_str_t *etag)
{
    const ed_http_header_t *f;
    size_t                  i, len;
    char                   *p;

    len = 64 + h->reason.len;
    for (i = 0; i < h->nheaders; i++) {
        len += h->headers[i].name.len + h->headers[i].value.len + 4;
    }
    p = ed_pnalloc(r->pool, len);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    p += snprintf(p, 64, "HTTP/1.1 %03d ", h->status);
    p = ed_cpyn(p, h->reason.data, h->reason.len);
    p = ed_cpyn(p, "\r\n", 2);
    etag->data = NULL;
    etag->len = 0;
    for (i = 0; i < h->nheaders; i++) {
        f = &h->headers[i];
        if ((ed_http_upstream_skip_response_header(h, &f->name)
             && !ed_http_str_eq_lit(&f->name, "content-type"))
            || ed_http_str_eq_lit(&f->name, "age")
            || ed_http_str_eq_lit(&f->name, "set-cookie"))
        {
            continue;
        }
        p = ed_cpyn(p, f->name.data, f->name.len);
        p = ed_cpyn(p, ": ", 2);
        if (etag->data == NULL && ed_http_str_eq_lit(&f->name, "etag")
            && f->value.len >= 2 && f->value.len <= 0xffff)
        {
            etag->data = p;
            etag->len = f->value.len;
        }
        p = ed_cpyn(p, f->value.data, f->value.len);
        p = ed_cpyn(p, "\r\n", 2);
    }
    p = ed_cpyn(p, "\r\n", 2);
    out->len = (size_t)(p - out->data);
    return ED_OK;
}

/* A write to a cache file failed: logged once until one works. */
static void
ed_cache_write_failed(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                      int err)
{
    if (ed_http_cache_write_failed(c->cache->zone)) {
        ed_http_log(ED_LOG_ERR, r, 0, "cache \"%s\": write failed (%d: %s), "
                    "storing paused", c->cache->name.data, err,
                    strerror(err));
    }
}

/* Writes all of p[0..n) at the end of fd. 0 or errno. */
static int
ed_cache_write(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n) {
        w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Opens a temp file in path/.tmp/ and writes the prefix there. ED_OK,
 * ED_DECLINED (the write failed: c->fwd detail no-space), ED_ERROR. */
static int
ed_cache_begin(ed_http_request_t *r, ed_http_proxy_cache_t *c,
               const ed_http_cache_verdict_t *v, const ed_http_resp_head_t *h,
               size_t *plen)
{
    ed_str_t head, etag, vary;
    int      err;

    if (ed_cache_stored_head(r, h, &head, &etag) != ED_OK) {
        return ED_ERROR;
    }
    memset(&c->new_hdr, 0, sizeof(c->new_hdr));
    c->new_hdr.stored = (int64_t)ed_time_sec;
    c->new_hdr.initial_age = v->initial_age;
    c->new_hdr.lifetime = v->lifetime;
    c->new_hdr.last_modified = v->last_modified;
    c->new_hdr.swr = v->swr;
    c->new_hdr.sie = v->sie;
    c->new_hdr.flags = v->flags;
    c->new_hdr.status = (uint16_t)h->status;
    vary.data = NULL;
    vary.len = 0;
    c->new_vary = v->vary;
    if (v->vary.len) {
        /* The variant of this request for the response's Vary. */
        if (ed_cache_variant_hash(r, c, &v->vary, c->hash) != ED_OK) {
            return ED_ERROR;
        }
        vary = c->variant;
        c->new_hdr.flags |= ED_CACHE_F_VARIANT;
    } else {
        memcpy(c->hash, c->main_hash, ED_CACHE_HASH_LEN);
    }
    c->new_prefix = ed_http_cache_prefix(r->pool, &c->new_hdr, &c->key,
                                         &vary, &head,
                                         etag.len ? &etag : NULL, plen);
    if (c->new_prefix == NULL) {
        return ED_DECLINED;
    }
    if (c->tmp_fd < 0) {
        /* Not made at the lock (no cache_lock, or hit-for-miss). */
        if (ed_cache_tmp_name(r, c) != ED_OK) {
            return ED_ERROR;
        }
        c->tmp_fd = open(c->tmp_path, O_WRONLY | O_CREAT | O_TRUNC
                                      | O_CLOEXEC, 0600);
        if (c->tmp_fd < 0) {
            err = errno;
            c->tmp_path = NULL;
            ed_cache_write_failed(r, c, err);
            return ED_DECLINED;
        }
    }
    err = ed_cache_write(c->tmp_fd, c->new_prefix, *plen);
    if (err) {
        ed_cache_write_failed(r, c, err);
        ed_cache_drop_tmp(c, 0);
        return ED_DECLINED;
    }
    c->written = 0;
    c->store = 1;
    return ED_OK;
}

int
ed_http_proxy_cache_response(ed_http_request_t *r, ed_http_proxy_conf_t *pcf,
                             ed_http_proxy_cache_t *c,
                             const ed_http_resp_head_t *h, bool close)
{
    ed_http_cache_verdict_t v;
    ed_http_cache_rules_t   rules;
    const char             *detail;
    char                    buf[128];
    size_t                  plen;
    int                     rc;

    if (c == NULL) {
        return ED_OK;
    }
    if (!c->may_store) {
        snprintf(buf, sizeof(buf), "eddy; fwd=%s", c->fwd);
        return ed_cache_add(r, "Cache-Status", buf);
    }
    r->upstream->cache_status = c->status;
    rules.valid = pcf->cache_valid ? pcf->cache_valid->elts : NULL;
    rules.nvalid = pcf->cache_valid ? pcf->cache_valid->nelts : 0;
    rules.ignore = pcf->cache_ignore;
    rules.authorization = ed_http_header(r, "Authorization") != NULL;
    rules.now = ed_time_sec;
    ed_http_cache_decide(r->pool, &rules, h->status, h->headers, h->nheaders,
                         &v);
    detail = c->detail;
    if (detail == NULL && c->no_store) {
        detail = "no-store";
    }
    if (detail == NULL && c->lookup && c->uses < (uint32_t)pcf->min_uses) {
        detail = "min-uses";
    }
    if (detail == NULL) {
        detail = v.detail;
        if (detail == NULL && close) {
            /* A clean close looks like a truncation. */
            detail = "truncated";
        }
        if (detail == NULL && h->content_length > 0
            && (uint64_t)h->content_length > c->cache->max_entry_size)
        {
            detail = "too-large";
        }
        if (detail != NULL) {
            /* The response itself is not storable: waiters go at once,
             * and for 30 s nobody queues for the key. */
            ed_cache_drop_tmp(c, (int64_t)ed_time_sec + 30);
        }
    }
    if (detail == NULL) {
        rc = ed_cache_begin(r, c, &v, h, &plen);
        if (rc == ED_ERROR) {
            return ED_ERROR;
        }
        if (rc == ED_DECLINED) {
            detail = "no-space";
        }
    }
    if (detail) {
        ed_cache_drop_tmp(c, 0);
        snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; detail=%s",
                 c->fwd, h->status, detail);
    } else {
        snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; stored",
                 c->fwd, h->status);
    }
    return ed_cache_add(r, "Cache-Status", buf);
}

void
ed_http_proxy_cache_body(ed_http_request_t *r, ed_http_proxy_cache_t *c,
                         const char *p, size_t n)
{
    int err;

    if (c == NULL || !c->store) {
        return;
    }
    if (c->written + n > c->cache->max_entry_size) {
        /* Longer than max_entry_size after all: not stored. */
        ed_cache_drop_tmp(c, (int64_t)ed_time_sec + 30);
        return;
    }
    err = ed_cache_write(c->tmp_fd, p, n);
    if (err) {
        ed_cache_write_failed(r, c, err);
        ed_cache_drop_tmp(c, 0);
        return;
    }
    c->written += n;
}

/* Makes the level directories of path (ends at dirs[0..n)). */
static void
ed_cache_mkdirs(char *path, const size_t *dirs, unsigned n)
{
    unsigned i;
    char     save;

    for (i = 0; i < n; i++) {
        save = path[dirs[i]];
        path[dirs[i]] = '\0';
        (void)mkdir(path, 0700);
        path[dirs[i]] = save;
    }
}

/* Renames the finished temp file to the entry of hash. ED_OK or
 * ED_ERROR (logged). */
static int
ed_cache_place(ed_http_request_t *r, ed_http_proxy_cache_t *c,
               const char *tmp, const uint8_t *hash)
{
    size_t   dirs[3];
    unsigned n;
    char    *path;

    path = ed_cache_file_path(r->pool, c->cache, hash, dirs, &n);
    if (path == NULL) {
        return ED_ERROR;
    }
    if (rename(tmp, path) == 0) {
        return ED_OK;
    }
    if (errno == ENOENT) {
        ed_cache_mkdirs(path, dirs, n);
        if (rename(tmp, path) == 0) {
            return ED_OK;
        }
    }
    ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": rename(\"%s\", \"%s\") "
                "failed", c->cache->name.data, tmp, path);
    return ED_ERROR;
}

/* Writes the Vary marker of the key (its names) unless the one found
 * holds them already. */
static void
ed_cache_marker(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    ed_http_cache_hdr_t hdr;
    ed_str_t            none = ed_null_string;
    char               *prefix, tmp[PATH_MAX];
    size_t              len;
    int                 fd, err;

    if (c->marker && ed_str_eq(&c->vary, &c->new_vary)) {
        return;
    }
    memset(&hdr, 0, sizeof(hdr));
    hdr.stored = (int64_t)ed_time_sec;
    hdr.last_modified = -1;
    hdr.swr = -1;
    hdr.sie = -1;
    hdr.flags = ED_CACHE_F_VARY;
    prefix = ed_http_cache_prefix(r->pool, &hdr, &c->key, &c->new_vary,
                                  &none, NULL, &len);
    if (prefix == NULL) {
        return;
    }
    ed_http_cache_hdr_seal(prefix, &hdr, 0);
    snprintf(tmp, sizeof(tmp), "%s/.tmp/%d.%u", c->cache->path.data,
             (int)getpid(), ++ed_cache_tmp_serial);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ed_cache_write_failed(r, c, errno);
        return;
    }
    err = ed_cache_write(fd, prefix, len);
    close(fd);
    if (err || ed_cache_place(r, c, tmp, c->main_hash) != ED_OK) {
        if (err) {
            ed_cache_write_failed(r, c, err);
        }
        unlink(tmp);
    }
}

/* Puts the temp file in place as the entry; the index counts it and
 * evicts over max_size. */
static void
ed_cache_commit(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    uint8_t     out[ED_CACHE_EVICT * ED_CACHE_HASH_LEN];
    struct stat st;
    size_t      n;
    int         err;

    ed_http_cache_hdr_seal(c->new_prefix, &c->new_hdr, c->written);
    err = 0;
    if (pwrite(c->tmp_fd, c->new_prefix, sizeof(c->new_hdr), 0)
        != (ssize_t)sizeof(c->new_hdr))
    {
        err = errno ? errno : EIO;
    }
    if (err == 0 && fstat(c->tmp_fd, &st) != 0) {
        err = errno;
    }
    close(c->tmp_fd);
    c->tmp_fd = -1;
    if (err) {
        ed_cache_write_failed(r, c, err);
        ed_cache_drop_tmp(c, 0);
        return;
    }
    if (ed_cache_place(r, c, c->tmp_path, c->hash) != ED_OK) {
        ed_cache_drop_tmp(c, 0);
        return;
    }
    /* In place: the rename woke the waiters, who find the entry; the
     * fill goes after it. */
    c->tmp_path = NULL;
    ed_cache_drop_tmp(c, 0);
    if (c->new_vary.len) {
        ed_cache_marker(r, c);
    }
    ed_http_cache_write_ok(c->cache->zone);
    n = ed_http_cache_index_stored(c->cache->zone, c->main_hash,
                                   (int64_t)st.st_blocks * 512,
                                   (int64_t)ed_time_sec,
                                   (uint64_t)c->cache->max_size,
                                   (int64_t)(c->cache->inactive / 1000),
                                   out, ED_CACHE_EVICT);
    ed_cache_unlink_all(r, c->cache, out, n);
}

void
ed_http_proxy_cache_done(ed_http_request_t *r, ed_http_proxy_cache_t *c)
{
    if (c == NULL || !c->store) {
        return;
    }
    c->store = 0;
    ed_cache_commit(r, c);
}

/* Revalidation. */

int
ed_http_proxy_cache_revalidated(ed_http_request_t *r,
                                ed_http_proxy_conf_t *pcf,
                                ed_http_proxy_cache_t *c,
                                const ed_http_resp_head_t *h)
{
    ed_http_cache_verdict_t v;
    ed_http_cache_rules_t   rules;
    ed_http_header_t        hdrs[ED_CACHE_MAX_HDRS];
    ed_http_resp_head_t     sh;
    ed_str_t                key, vary, head, etag;
    char                    buf[128], *prefix, tmp[PATH_MAX];
    size_t                  len;
    off64_t                 off;
    ssize_t                 n;
    uint64_t                left;
    int                     fd, err = 0;

    rules.valid = pcf->cache_valid ? pcf->cache_valid->elts : NULL;
    rules.nvalid = pcf->cache_valid ? pcf->cache_valid->nelts : 0;
    rules.ignore = pcf->cache_ignore;
    rules.authorization = false;
    rules.now = ed_time_sec;
    /* RFC 9111 4.3.4: the 304's freshness information updates the
     * entry's; a 304 without any keeps the stored head's rules. */
    if (ed_http_cache_cc(h->headers, h->nheaders, "max-age", NULL)
        || ed_http_cache_cc(h->headers, h->nheaders, "s-maxage", NULL)
        || ed_http_cache_cc(h->headers, h->nheaders, "no-cache", NULL))
    {
        ed_http_cache_decide(r->pool, &rules, c->hdr.status, h->headers,
                             h->nheaders, &v);
    } else {
        if (ed_http_parse_response(c->prefix + c->hdr.head_off,
                                   c->hdr.head_len, &sh, hdrs,
                                   ED_CACHE_MAX_HDRS) != ED_OK)
        {
            return 502;
        }
        ed_http_cache_decide(r->pool, &rules, c->hdr.status, sh.headers,
                             sh.nheaders, &v);
        v.initial_age = 0;
    }
    if (v.detail != NULL) {
        /* Nothing to go by: revalidated again on its next use. */
        v.lifetime = 0;
        v.initial_age = 0;
        v.flags = 0;
    }
    c->hdr.stored = (int64_t)ed_time_sec;
    c->hdr.initial_age = v.initial_age;
    c->hdr.lifetime = v.lifetime;
    c->hdr.swr = v.swr;
    c->hdr.sie = v.sie;
    c->hdr.flags = (c->hdr.flags & (ED_CACHE_F_VARIANT))
                   | (v.flags & ~(uint32_t)ED_CACHE_F_VARIANT);

    /* A new file with the new times and the same body (readers of the
     * old one keep their descriptor). */
    key.data = c->prefix + c->hdr.key_off;
    key.len = c->hdr.key_len;
    vary.data = c->prefix + c->hdr.vary_off;
    vary.len = c->hdr.vary_len;
    head.data = c->prefix + c->hdr.head_off;
    head.len = c->hdr.head_len;
    etag.data = c->prefix + c->hdr.etag_off;
    etag.len = c->hdr.etag_len;
    prefix = ed_http_cache_prefix(r->pool, &c->new_hdr, &key, &vary, &head,
                                  etag.len ? &etag : NULL, &len);
    if (prefix != NULL) {
        c->new_hdr.stored = c->hdr.stored;
        c->new_hdr.initial_age = c->hdr.initial_age;
        c->new_hdr.lifetime = c->hdr.lifetime;
        c->new_hdr.last_modified = c->hdr.last_modified;
        c->new_hdr.swr = c->hdr.swr;
        c->new_hdr.sie = c->hdr.sie;
        c->new_hdr.flags = c->hdr.flags;
        c->new_hdr.status = c->hdr.status;
        ed_http_cache_hdr_seal(prefix, &c->new_hdr, c->hdr.body_len);
        snprintf(tmp, sizeof(tmp), "%s/.tmp/%d.%u", c->cache->path.data,
                 (int)getpid(), ++ed_cache_tmp_serial);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            err = errno;
        } else {
            err = ed_cache_write(fd, prefix, len);
            off = (off64_t)c->hdr.body_off;
            for (left = c->hdr.body_len; err == 0 && left > 0;
                 left -= (uint64_t)n)
            {
                n = copy_file_range(c->fd, &off, fd, NULL,
                                    (size_t)ed_min(left, (uint64_t)1 << 30),
                                    0);
                if (n <= 0) {
                    err = n < 0 ? errno : EIO;
                    break;
                }
            }
            close(fd);
            if (err || ed_cache_place(r, c, tmp, c->hash) != ED_OK) {
                unlink(tmp);
            }
        }
        if (err) {
            ed_cache_write_failed(r, c, err);
        }
    }
    /* Waiters for the key find the refreshed entry. */
    ed_cache_drop_tmp(c, 0);
    c->status = "REVALIDATED";
    snprintf(buf, sizeof(buf), "eddy; fwd=stale; fwd-status=304; ttl=%lld",
             (long long)ed_cache_ttl(&c->hdr));
    return ed_cache_serve(r, c, buf);
}
