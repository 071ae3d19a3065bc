/* The proxy cache's writing side: a storable response teed into a temp
 * file renamed into place once its whole body arrived, Vary markers,
 * the refresh of an entry a 304 revalidated, and PURGE. */
#include "ed_http_cache_int.h"
#include "ed_http_range.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* PURGE: the key as a GET computes it loses its entry and every variant
 * (its Vary marker goes, so no variant of it is used again), and a
 * fetch of it under way is not stored: 200, or 404 when nothing was
 * cached. A key whose path ends in '*' is a prefix: the cache manager
 * removes every key starting so, in the background: 202. */
int
ed_pc_purge(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    static const ed_str_t text = ed_string("text/plain");
    char                 *path, job[PATH_MAX], tmp[PATH_MAX];
    bool                  found = false;
    int                   fd, err;

    if (ed_http_template_run(r, c->conf->cache_key, &c->key) != ED_OK) {
        return 500;
    }
    if (c->key.len == 0 || c->key.len > ED_CACHE_KEY_MAX) {
        return 404;
    }
    if (c->key.data[c->key.len - 1] == '*') {
        snprintf(tmp, sizeof(tmp), "%s/.tmp/%d.%u", c->cache->path.data,
                 (int)getpid(), ++ed_pc_tmp_serial);
        snprintf(job, sizeof(job), "%s/.purge/%d.%u", c->cache->path.data,
                 (int)getpid(), ed_pc_tmp_serial);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": open(\"%s\") "
                        "failed", c->cache->name.data, tmp);
            return 500;
        }
        err = ed_pc_write(fd, c->key.data, c->key.len - 1);
        close(fd);
        if (err || rename(tmp, job) != 0) {
            ed_http_log(ED_LOG_ERR, r, err ? err : errno, "cache \"%s\": "
                        "writing the purge job \"%s\" failed",
                        c->cache->name.data, job);
            unlink(tmp);
            return 500;
        }
        return ed_http_send_response(r, 202, &text, "purge queued\n", 13)
                   == ED_OK ? ED_OK : ED_ERROR;
    }
    if (ed_http_cache_hash(c->key.data, c->key.len, c->main_hash) != ED_OK) {
        return 500;
    }
    ed_http_cache_index_purge(c->cache->zone, c->main_hash,
                              ed_pc_now_ms());
    if (ed_pc_open(r, c, c->main_hash) == ED_OK) {
        found = true;
        if (c->hdr.flags & ED_CACHE_F_VARY) {
            /* This request's own variant goes too; the others are left
             * unused by the marker's end and age out. */
            c->vary.len = c->hdr.vary_len;
            c->vary.data = c->prefix + c->hdr.vary_off;
            if (ed_pc_variant_hash(r, c, &c->vary, c->hash) == ED_OK
                && (path = ed_pc_file_path(r->pool, c->cache, c->hash,
                                              NULL, NULL)) != NULL)
            {
                unlink(path);
                ed_http_cache_index_remove(c->cache->zone, c->hash);
            }
        }
        close(c->fd);
        c->fd = -1;
        path = ed_pc_file_path(r->pool, c->cache, c->main_hash, NULL,
                                  NULL);
        if (path == NULL || (unlink(path) != 0 && errno != ENOENT)) {
            return 500;
        }
    }
    if (!found) {
        return 404;
    }
    ed_http_log(ED_LOG_INFO, r, 0, "cache \"%s\": purged \"%s\"",
                c->cache->name.data,
                ed_http_log_str(r, c->key.data, c->key.len, 512));
    return ed_http_send_response(r, 200, &text, "purged\n", 7) == ED_OK
               ? ED_OK : ED_ERROR;
}


/* Storing. */

/* The head to store: the status line and the upstream's fields but the
 * hop-by-hop ones, the framing, Age, and Set-Cookie (an entry never
 * replays a cookie). *etag gets where the ETag value lands. */
static int
ed_cache_stored_head(ed_http_request_t *r, const ed_http_resp_head_t *h,
                     ed_str_t *out, ed_str_t *etag, bool cookies)
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
            || (!cookies && ed_http_str_eq_lit(&f->name, "set-cookie")))
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
void
ed_pc_write_failed(ed_http_request_t *r, ed_http_cache_req_t *c,
                      int err)
{
    /* Room is made now, not at the manager's next round. */
    ed_http_cache_manager_ask(c->cache->zone);
    if (ed_http_cache_write_failed(c->cache->zone)) {
        ed_http_log(ED_LOG_ERR, r, 0, "cache \"%s\": write failed (%d: %s), "
                    "storing paused", c->cache->name.data, err,
                    strerror(err));
    }
}

/* Writes all of p[0..n) at the end of fd. 0 or errno. */
int
ed_pc_write(int fd, const char *p, size_t n)
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
 * ED_DECLINED (the write failed: c->fwd detail no-space), ED_DONE (the
 * head is over ED_CACHE_HEAD_MAX: too-large), ED_ERROR. */
static int
ed_cache_begin(ed_http_request_t *r, ed_http_cache_req_t *c,
               const ed_http_cache_verdict_t *v, const ed_http_resp_head_t *h,
               size_t *plen)
{
    ed_str_t head, etag, vary;
    int      err;

    if (ed_cache_stored_head(r, h, &head, &etag, false) != ED_OK) {
        return ED_ERROR;
    }
    if (head.len > ED_CACHE_HEAD_MAX) {
        /* An upstream's own doing, as a body over max_entry_size: not
         * the disk's. */
        return ED_DONE;
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
        /* The variant of this request for the response's Vary, tied to
         * the generation of the marker that lists those names. */
        if (ed_pc_variant_hash(r, c, &v->vary, c->hash) != ED_OK) {
            return ED_ERROR;
        }
        c->new_gen = c->marker && ed_str_eq(&c->vary, &v->vary)
                     ? c->gen
                     : ed_http_upstream_random() & 0x3fffffffffffffffULL;
        vary.len = 17 + c->variant.len;
        vary.data = ed_pnalloc(r->pool, vary.len + 1);
        if (vary.data == NULL) {
            return ED_ERROR;
        }
        snprintf(vary.data, 18, "%016llx\n", (unsigned long long)c->new_gen);
        memcpy(vary.data + 17, c->variant.data, c->variant.len);
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
    /* Until sealed, the length to expect (UINT64_MAX: unknown), for the
     * waiters that stream the file while it is written. */
    c->new_hdr.body_len = h->content_length >= 0
                          ? (uint64_t)h->content_length : UINT64_MAX;
    memcpy(c->new_prefix, &c->new_hdr, sizeof(c->new_hdr));
    if (c->tmp_fd < 0) {
        /* Not made at the lock (no cache_lock, or hit-for-miss). */
        if (ed_pc_tmp_name(r, c) != ED_OK) {
            return ED_ERROR;
        }
        c->tmp_fd = open(c->tmp_path, O_WRONLY | O_CREAT | O_TRUNC
                                      | O_CLOEXEC, 0600);
        if (c->tmp_fd < 0) {
            err = errno;
            c->tmp_path = NULL;
            ed_pc_write_failed(r, c, err);
            return ED_DECLINED;
        }
    }
    err = ed_pc_write(c->tmp_fd, c->new_prefix, *plen);
    if (err) {
        ed_pc_write_failed(r, c, err);
        ed_pc_drop_tmp(c, 0);
        return ED_DECLINED;
    }
    c->written = 0;
    c->store = 1;
    return ED_OK;
}

/* A response not stored, for the client that handed its fill to this
 * fetch only: its whole head (Set-Cookie too) and body go to a file
 * nobody else can open (O_TMPFILE in path/.tmp, else one unlinked at
 * once), which that client follows instead of the temp file. ED_OK,
 * ED_DECLINED (no file: the client is told the fill went), ED_ERROR. */
static int
ed_cache_spool(ed_http_request_t *r, ed_http_cache_req_t *c,
               const ed_http_resp_head_t *h)
{
    ed_http_cache_req_t   *ic = c->initiator;
    ed_str_t               head, etag;
    char                   path[PATH_MAX];
    size_t                 len;
    int                    fd, sfd, err;

    if (ed_cache_stored_head(r, h, &head, &etag, true) != ED_OK) {
        return ED_ERROR;
    }
    memset(&c->new_hdr, 0, sizeof(c->new_hdr));
    c->new_hdr.stored = (int64_t)ed_time_sec;
    c->new_hdr.last_modified = -1;
    c->new_hdr.swr = -1;
    c->new_hdr.sie = -1;
    c->new_hdr.status = (uint16_t)h->status;
    c->new_prefix = ed_http_cache_spool_prefix(r->pool, &c->new_hdr, &c->key,
                                               &head, etag.len ? &etag : NULL,
                                               &len);
    if (c->new_prefix == NULL) {
        return ED_DECLINED;
    }
    c->new_hdr.body_len = h->content_length >= 0
                          ? (uint64_t)h->content_length : UINT64_MAX;
    memcpy(c->new_prefix, &c->new_hdr, sizeof(c->new_hdr));
    /* The client may lag this far behind before the fetch waits for it
     * (what it took is given back: the file stays about this size). */
    c->lag = c->cache->max_entry_size;
    snprintf(path, sizeof(path), "%s/.tmp", c->cache->path.data);
    fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR
                   || errno == EINVAL))
    {
        snprintf(path, sizeof(path), "%s/.tmp/%d.%u", c->cache->path.data,
                 (int)getpid(), ++ed_pc_tmp_serial);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            unlink(path);
        }
    }
    err = fd < 0 ? errno : ed_pc_write(fd, c->new_prefix, len);
    if (err) {
        /* The disk is full or failing: the response goes on uncached,
         * through memory, with a short lag. */
        ed_pc_write_failed(r, c, err);
        if (fd >= 0) {
            close(fd);
        }
        c->lag = 4 * (uint64_t)ed_max(c->conf->buffer_size, (size_t)16384);
        fd = memfd_create("eddy-cache-spool", MFD_CLOEXEC);
        err = fd < 0 ? errno : ed_pc_write(fd, c->new_prefix, len);
    }
    sfd = err ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (sfd < 0) {
        ed_http_log(ED_LOG_ERR, r, err ? err : errno, "cache \"%s\": no "
                    "file for a response not stored", c->cache->name.data);
        if (fd >= 0) {
            close(fd);
        }
        return ED_DECLINED;
    }
    c->tmp_fd = fd;
    c->written = 0;
    c->store = 1;
    c->spool = 1;
    /* The client follows this file from now on: what it was told of the
     * temp file no longer counts. */
    if (ic->sfd >= 0) {
        close(ic->sfd);
    }
    ic->sfd = sfd;
    ed_http_cache_wait_reset(&ic->waiter);
    return ED_OK;
}

/* Tells the client that handed its fill to this fetch its Cache-Status
 * and that the head is in the file it follows. ED_OK or ED_ERROR. */
static int
ed_cache_tell_head(ed_http_cache_req_t *c, const char *cs, bool stored,
                   const ed_http_resp_head_t *h)
{
    ed_http_cache_req_t    *ic = c->initiator;
    const ed_http_header_t *f;
    size_t                  i;

    if (ic == NULL) {
        return ED_OK;
    }
    ic->fill_cs = ed_pstrdup(ic->r->pool, cs, strlen(cs));
    if (ic->fill_cs == NULL) {
        return ED_ERROR;
    }
    /* An entry never replays a cookie (cache_ignore_headers: the stored
     * head has none), but the fetching client still gets it: in memory,
     * never through a file another request may open. */
    ic->ncookies = 0;
    for (i = 0; stored && i < h->nheaders; i++) {
        f = &h->headers[i];
        if (!ed_http_str_eq_lit(&f->name, "set-cookie")) {
            continue;
        }
        if (ic->cookies == NULL) {
            ic->cookies = ed_palloc(ic->r->pool,
                                    h->nheaders * sizeof(ed_str_t));
            if (ic->cookies == NULL) {
                return ED_ERROR;
            }
        }
        if (ed_str_dup(ic->r->pool, &ic->cookies[ic->ncookies],
                       f->value.data, f->value.len) != ED_OK)
        {
            return ED_ERROR;
        }
        ic->ncookies++;
    }
    ic->fill_stored = stored;
    ed_pc_tell_tries(c);
    ed_pc_tell(c, ED_CACHE_WAIT_MODIFIED);
    return ED_OK;
}

/* Seals the file being written with its body's length, for those who
 * follow it when it is removed rather than put in place: sealed, it was
 * whole. 0 or errno. */
static int
ed_cache_seal(ed_http_cache_req_t *c)
{
    ed_http_cache_hdr_seal(c->new_prefix, &c->new_hdr, c->written);
    if (pwrite(c->tmp_fd, c->new_prefix, sizeof(c->new_hdr), 0)
        != (ssize_t)sizeof(c->new_hdr))
    {
        return errno ? errno : EIO;
    }
    return 0;
}

/* A miss being stored whose request has a single satisfiable Range
 * (If-Range agreeing) gets it as a 206 cut from the stream; several
 * ranges get the 200. ED_OK or ED_ERROR. */
static int
ed_cache_miss_range(ed_http_request_t *r, ed_http_cache_req_t *c,
                    const ed_http_resp_head_t *h,
                    const ed_http_cache_verdict_t *v)
{
    ed_http_range_t rg[ED_HTTP_RANGES_MAX];
    const ed_str_t *range, *if_range;
    size_t          n;
    char            cr[96];

    range = ed_http_header(r, "Range");
    if (range == NULL || h->status != 200 || h->content_length <= 0
        || r->head.method_id != ED_HTTP_GET)
    {
        return ED_OK;
    }
    if_range = ed_http_header(r, "If-Range");
    if (if_range
        && !ed_http_cond_if_range(if_range, v->etag.len ? &v->etag : NULL,
                                  v->last_modified >= 0
                                      ? (time_t)v->last_modified : -1))
    {
        return ED_OK;
    }
    if (ed_http_range_parse(range->data, range->len, h->content_length, rg,
                            ED_HTTP_RANGES_MAX, &n) != ED_HTTP_RANGE_OK
        || n != 1)
    {
        return ED_OK;
    }
    snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld",
             (long long)rg[0].start, (long long)rg[0].end - 1,
             (long long)h->content_length);
    if (ed_pc_add(r, "Content-Range", cr) != ED_OK) {
        return ED_ERROR;
    }
    r->status = 206;
    r->content_length = rg[0].end - rg[0].start;
    c->range_start = rg[0].start;
    c->range_end = rg[0].end;
    c->ranged = 1;
    return ED_OK;
}

/* Whether a file being written that will not be kept (past
 * max_entry_size) is still followed: open by a waiter of any worker.
 * The kernel grants a write lease only to a file's sole opener; it is
 * given back at once (a waiter opening the file meanwhile waits that
 * long; the break is told by SIGURG, ignored, rather than SIGIO, which
 * would end the worker). Without leases here: followed, as before. */
static bool
ed_cache_followed(ed_http_cache_req_t *c)
{
    if (fcntl(c->tmp_fd, F_SETSIG, SIGURG) != 0
        || fcntl(c->tmp_fd, F_SETLEASE, F_WRLCK) != 0)
    {
        return true;
    }
    (void) fcntl(c->tmp_fd, F_SETLEASE, F_UNLCK);
    return false;
}

int
ed_http_cache_slice(ed_http_request_t *r, ed_http_cache_req_t *c,
                    const char *p, size_t n)
{
    int64_t start = (int64_t)c->seen, lo, hi;

    if (c->handed && c->initiator == NULL
        && (!c->store || c->spool
            || (c->unstored && c->tmp_fd >= 0 && !ed_cache_followed(c))))
    {
        /* A fetch whose client went, for nobody else: it stops. */
        return ED_DECLINED;
    }
    ed_http_cache_body(r, c, p, n);
    c->seen += n;
    if (!c->ranged) {
        return ed_http_send_body(r, (char *)p, n) == ED_OK ? ED_OK
                                                           : ED_DECLINED;
    }
    lo = ed_max(start, c->range_start);
    hi = ed_min(start + (int64_t)n, c->range_end);
    if (lo >= hi) {
        return ED_OK;
    }
    return ed_http_send_body(r, (char *)p + (lo - start), (size_t)(hi - lo))
               == ED_OK ? ED_OK : ED_DECLINED;
}

int
ed_http_cache_response(ed_http_request_t *r, const ed_http_cache_loc_t *conf,
                       ed_http_cache_req_t *c,
                       const ed_http_resp_head_t *h, bool close)
{
    ed_http_cache_verdict_t v;
    ed_http_cache_rules_t   rules;
    const char             *detail;
    bool                    per_request = false;
    char                    buf[128];
    size_t                  plen;
    int                     rc;

    if (c == NULL) {
        return ED_OK;
    }
    if (!c->may_store) {
        snprintf(buf, sizeof(buf), "eddy; fwd=%s", c->fwd);
        return ed_pc_add(r, "Cache-Status", buf);
    }
    r->upstream->cache_status = c->status;
    rules.valid = conf->cache_valid ? conf->cache_valid->elts : NULL;
    rules.nvalid = conf->cache_valid ? conf->cache_valid->nelts : 0;
    rules.ignore = conf->cache_ignore;
    rules.authorization = ed_http_header(r, "Authorization") != NULL;
    rules.now = ed_time_sec;
    ed_http_cache_decide(r->pool, &rules, h->status, h->headers, h->nheaders,
                         &v);
    if (v.detail == NULL && v.vary.len
        && !ed_http_cache_coding_fits(&v.vary, r->head.headers,
                                      r->head.nheaders, h->headers,
                                      h->nheaders))
    {
        v.detail = "vary";
        per_request = true;
    }
    if (v.detail != NULL && strcmp(v.detail, "authorization") == 0) {
        per_request = true;
    }
    detail = c->detail;
    if (detail == NULL && c->no_store) {
        detail = "no-store";
    }
    if (detail == NULL && c->lookup && c->uses < (uint32_t)conf->min_uses) {
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
        if (detail != NULL && !per_request) {
            /* The response itself is not storable: waiters go at once,
             * and for 30 s nobody queues for the key. Not when this
             * request made it so (its Authorization, the coding its
             * Accept-Encoding chose): any client could then turn
             * collapsing off for every key. */
            ed_pc_drop_tmp(c, (int64_t)ed_time_sec + 30);
        }
    }
    if (detail == NULL) {
        rc = ed_cache_begin(r, c, &v, h, &plen);
        if (rc == ED_ERROR) {
            return ED_ERROR;
        }
        if (rc == ED_DECLINED) {
            detail = "no-space";
        } else if (rc == ED_DONE) {
            /* Waiters go at once, and nobody queues for 30 s. */
            detail = "too-large";
            ed_pc_drop_tmp(c, (int64_t)ed_time_sec + 30);
        }
    }
    if (detail) {
        ed_pc_drop_tmp(c, 0);
        snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; detail=%s",
                 c->fwd, h->status, detail);
        if (c->initiator) {
            /* Its client still gets it, from this one fetch. */
            rc = ed_cache_spool(r, c, h);
            if (rc == ED_ERROR) {
                return ED_ERROR;
            }
            if (rc == ED_OK && ed_cache_tell_head(c, buf, false, h) != ED_OK) {
                return ED_ERROR;
            }
        }
    } else {
        snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; stored",
                 c->fwd, h->status);
        if (c->handed) {
            if (ed_cache_tell_head(c, buf, true, h) != ED_OK) {
                return ED_ERROR;
            }
        } else if (ed_cache_miss_range(r, c, h, &v) != ED_OK) {
            return ED_ERROR;
        }
    }
    return ed_pc_add(r, "Cache-Status", buf);
}

/* A write to the temp file failed in the middle of the body: the client
 * that handed its fill to this fetch goes on from memory (the response
 * goes on uncached for it; the waiters are cut off). The bytes it has
 * not sent yet are copied to a memory file laid out as the temp file,
 * which it follows from now on, and the fetch writes there. ED_OK, or
 * ED_DECLINED (the temp file is dropped as usual). */
static int
ed_cache_respool(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    ed_http_cache_req_t   *ic = c->initiator;
    uint64_t               off = c->new_hdr.body_off, from, at;
    ssize_t                k;
    char                  *buf;
    int                    fd, sfd;

    from = ic->streaming ? ic->soff : 0;
    if (!ic->waiting || ic->sfd < 0 || ic->sfd_prev >= 0
        || from > c->written || c->written - from > ED_CACHE_RESPOOL_MAX)
    {
        /* A client that far behind is cut off as the waiters are: what
         * it has not sent would all be in memory. */
        return ED_DECLINED;
    }
    buf = ed_pnalloc(r->pool, 65536);
    if (buf == NULL) {
        return ED_DECLINED;
    }
    fd = memfd_create("eddy-cache-spool", MFD_CLOEXEC);
    if (fd < 0) {
        return ED_DECLINED;
    }
    if (ed_pc_write(fd, c->new_prefix, (size_t)off) != 0) {
        goto failed;
    }
    for (at = off + from; at < off + c->written; at += (uint64_t)k) {
        k = pread(ic->sfd, buf,
                  (size_t)ed_min((uint64_t)65536, off + c->written - at),
                  (off_t)at);
        if (k <= 0 || pwrite(fd, buf, (size_t)k, (off_t)at) != k) {
            goto failed;
        }
    }
    sfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (sfd < 0 || lseek(fd, (off_t)(off + c->written), SEEK_SET) < 0) {
        if (sfd >= 0) {
            close(sfd);
        }
        goto failed;
    }
    /* The temp file goes (its waiters are told), not its client. */
    c->initiator = NULL;
    ed_pc_drop_tmp(c, 0);
    c->initiator = ic;
    c->tmp_fd = fd;
    c->store = 1;
    c->spool = 1;
    c->lag = 4 * (uint64_t)ed_max(c->conf->buffer_size, (size_t)16384);
    /* Ranges of the temp file may still be queued for the client: its
     * descriptor stays open as long as the client's request. */
    ic->sfd_prev = ic->sfd;
    ic->sfd = sfd;
    ic->fill_stored = 0;
    ed_http_cache_wait_reset(&ic->waiter);
    ed_pc_tell(c, ED_CACHE_WAIT_MODIFIED);
    return ED_OK;

failed:
    close(fd);
    return ED_DECLINED;
}

/* Writes p[0..n), the body bytes after c->written, to the temp file;
 * a failure moves the client that handed its fill to memory
 * (ed_cache_respool) or gives the file up. ED_OK or ED_DECLINED. */
static int
ed_cache_body_write(ed_http_request_t *r, ed_http_cache_req_t *c,
                    const char *p, size_t n)
{
    int err;

    err = ed_pc_write(c->tmp_fd, p, n);
    if (err) {
        ed_pc_write_failed(r, c, err);
        if (c->spool || c->initiator == NULL
            || ed_cache_respool(r, c) != ED_OK)
        {
            ed_pc_drop_tmp(c, 0);
            return ED_DECLINED;
        }
        err = ed_pc_write(c->tmp_fd, p, n);
        if (err) {
            ed_pc_drop_tmp(c, 0);
            return ED_DECLINED;
        }
    }
    c->written += n;
    ed_pc_tell(c, ED_CACHE_WAIT_MODIFIED);
    return ED_OK;
}

size_t ed_pc_staging;

int
ed_pc_stage_flush(ed_http_cache_req_t *c)
{
    size_t n = c->staged;

    if (ed_timer_active(&c->stage_timer)) {
        ed_timer_del(ed_worker->loop, &c->stage_timer);
    }
    if (n == 0 || !c->store) {
        return ED_OK;
    }
    /* Taken first: a failure drops the file, and the held bytes with it
     * (the buffer stays, the pool's, for the retry into memory). */
    c->staged = 0;
    return ed_cache_body_write(c->r, c, c->stage, n);
}

/* Bytes held too long: those following the file get them now. */
static void
ed_cache_stage_expired(ed_timer_t *t)
{
    ed_http_cache_req_t *c = t->data;

    (void) ed_pc_stage_flush(c);
}

/* Passes p[0..n) to the file through the stage: each write ends at a
 * multiple of ED_CACHE_STAGE in the file (a piece that reaches one in
 * full goes from p itself). The buffer is taken at the first bytes, as
 * long as the body when its length is known. ED_OK or ED_DECLINED. */
static int
ed_cache_stage(ed_http_request_t *r, ed_http_cache_req_t *c,
               const char *p, size_t n)
{
    uint64_t pos;
    size_t   room, k;

    if (c->stage == NULL) {
        c->stage_size = ED_CACHE_STAGE;
        if (c->new_hdr.body_len < ED_CACHE_STAGE) {
            c->stage_size = (size_t)ed_max(c->new_hdr.body_len, (uint64_t)1);
        }
        if (ed_pc_staging + c->stage_size > ED_CACHE_STAGE_BUDGET) {
            return ed_cache_body_write(r, c, p, n);
        }
        c->stage = ed_pnalloc(r->pool, c->stage_size);
        if (c->stage == NULL) {
            return ed_cache_body_write(r, c, p, n);
        }
        ed_pc_staging += c->stage_size;
    }
    while (n) {
        pos = c->new_hdr.body_off + c->written + c->staged;
        room = ED_CACHE_STAGE - (size_t)(pos % ED_CACHE_STAGE);
        if (c->staged + ed_min(n, room) > c->stage_size) {
            /* More than the length the upstream announced. */
            if (ed_pc_stage_flush(c) != ED_OK) {
                return ED_DECLINED;
            }
            return ed_cache_body_write(r, c, p, n);
        }
        if (c->staged == 0 && n >= room) {
            k = room;
            if (ed_cache_body_write(r, c, p, k) != ED_OK) {
                return ED_DECLINED;
            }
        } else {
            k = ed_min(n, room);
            memcpy(c->stage + c->staged, p, k);
            c->staged += k;
            if (k == room && ed_pc_stage_flush(c) != ED_OK) {
                return ED_DECLINED;
            }
        }
        p += k;
        n -= k;
    }
    if (c->staged && !ed_timer_active(&c->stage_timer)) {
        c->stage_timer.handler = ed_cache_stage_expired;
        c->stage_timer.data = c;
        ed_timer_add(ed_worker->loop, &c->stage_timer, ED_CACHE_STAGE_MSEC);
    }
    return ED_OK;
}

void
ed_http_cache_body(ed_http_request_t *r, ed_http_cache_req_t *c,
                   const char *p, size_t n)
{
    if (c == NULL || !c->store) {
        return;
    }
    if (!c->spool && !c->unstored
        && c->written + c->staged + n > c->cache->max_entry_size)
    {
        /* Longer than max_entry_size after all: not stored, and the key
         * is free at once (hit-for-miss); those streaming it already
         * still get the whole body from the file. */
        c->unstored = 1;
        ed_pc_unlock(c, (int64_t)ed_time_sec + 30);
    }
    if (c->unstored
        && c->written + c->staged + n > (uint64_t)c->cache->max_size)
    {
        /* The disk such a file takes is bounded by the cache's own: past
         * max_size its followers are cut off. */
        ed_http_log(ED_LOG_ERR, r, 0, "cache \"%s\": a response not "
                    "stored grew past max_size, its clients cut off",
                    c->cache->name.data);
        ed_pc_drop_tmp(c, 0);
        return;
    }
    if (c->spool || c->unstored) {
        /* A memory file for one client, or a file not kept: no hit is
         * served from it, and its followers' lag is counted in bytes
         * written. */
        if (ed_pc_stage_flush(c) == ED_OK) {
            (void) ed_cache_body_write(r, c, p, n);
        }
        return;
    }
    (void) ed_cache_stage(r, c, p, n);
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
ed_cache_place(ed_http_request_t *r, ed_http_cache_req_t *c,
               const char *tmp, const uint8_t *hash)
{
    size_t   dirs[3];
    unsigned n;
    char    *path;

    path = ed_pc_file_path(r->pool, c->cache, hash, dirs, &n);
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
ed_cache_marker(ed_http_request_t *r, ed_http_cache_req_t *c)
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
    hdr.initial_age = (int64_t)c->new_gen;
    prefix = ed_http_cache_prefix(r->pool, &hdr, &c->key, &c->new_vary,
                                  &none, NULL, &len);
    if (prefix == NULL) {
        return;
    }
    ed_http_cache_hdr_seal(prefix, &hdr, 0);
    snprintf(tmp, sizeof(tmp), "%s/.tmp/%d.%u", c->cache->path.data,
             (int)getpid(), ++ed_pc_tmp_serial);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ed_pc_write_failed(r, c, errno);
        return;
    }
    err = ed_pc_write(fd, prefix, len);
    close(fd);
    if (err || ed_cache_place(r, c, tmp, c->main_hash) != ED_OK) {
        if (err) {
            ed_pc_write_failed(r, c, err);
        }
        unlink(tmp);
    }
}

/* Puts the temp file in place as the entry; the index counts it and
 * evicts over max_size. */
static void
ed_cache_commit(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    struct stat st;
    int         err;

    /* Sealed first: whole, even if removed rather than placed (its
     * followers tell so). */
    err = ed_cache_seal(c);
    if (err == 0 && ed_http_cache_index_purged(c->cache->zone, c->main_hash)
                    > c->start)
    {
        /* PURGEd while it was fetched: not stored. */
        ed_pc_drop_tmp(c, 0);
        return;
    }
    if (err == 0 && fstat(c->tmp_fd, &st) != 0) {
        err = errno;
    }
    close(c->tmp_fd);
    c->tmp_fd = -1;
    if (err) {
        ed_pc_write_failed(r, c, err);
        ed_pc_drop_tmp(c, 0);
        return;
    }
    if (ed_cache_place(r, c, c->tmp_path, c->hash) != ED_OK) {
        ed_pc_drop_tmp(c, 0);
        return;
    }
    /* In place: the rename woke the waiters, who find the entry; the
     * fill goes after it. */
    c->tmp_path = NULL;
    ed_pc_tell(c, ED_CACHE_WAIT_MOVED);
    ed_pc_drop_tmp(c, 0);
    if (c->new_vary.len) {
        ed_cache_marker(r, c);
    }
    ed_pc_counted(r, c, (int64_t)st.st_blocks * 512);
}

void
ed_http_cache_done(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    int err;

    if (c == NULL || !c->store) {
        return;
    }
    /* The bytes held back first: the file is whole when sealed. */
    if (ed_pc_stage_flush(c) != ED_OK) {
        return;
    }
    if (c->spool || c->unstored) {
        /* Whole but not kept: sealed for those following it, removed. */
        err = ed_cache_seal(c);
        if (err) {
            ed_pc_write_failed(r, c, err);
        }
        ed_pc_drop_tmp(c, 0);
        return;
    }
    c->store = 0;
    ed_cache_commit(r, c);
}

/* A file just put in place for c's key: the index counts its disk,
 * and what that pushes over max_size goes. */
void
ed_pc_counted(ed_http_request_t *r, ed_http_cache_req_t *c, int64_t disk)
{
    uint8_t out[ED_CACHE_EVICT * ED_CACHE_HASH_LEN];
    size_t  n;

    ed_http_cache_write_ok(c->cache->zone);
    n = ed_http_cache_index_stored(c->cache->zone, c->main_hash, disk,
                                   (int64_t)ed_time_sec,
                                   (uint64_t)c->cache->max_size,
                                   (int64_t)(c->cache->inactive / 1000),
                                   out, ED_CACHE_EVICT);
    ed_pc_unlink_all(r, c->cache, out, n);
}

/* Revalidation. */

/* The entry a 304 refreshed, served with the new head from the old
 * file's body, whichever file is in place now; its waiters find the
 * refreshed entry. */
static int
ed_cache_revalidated_serve(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    uint64_t body_off = c->hdr.body_off;
    char     buf[128];

    c->hdr = *c->upd_hdr;
    c->hdr.body_off = body_off;
    c->prefix = c->upd_prefix;
    c->read = 0;
    ed_pc_drop_tmp(c, 0);
    c->status = "REVALIDATED";
    snprintf(buf, sizeof(buf), "eddy; fwd=stale; fwd-status=304; ttl=%lld",
             (long long)ed_pc_ttl(&c->hdr));
    return ed_pc_serve(r, c, buf);
}

/* A large entry's update is over (its copy went on from posted events):
 * the response the 304 allowed, as ed_http_cache_revalidated would have
 * returned it. */
static void
ed_cache_updated(ed_http_request_t *r, ed_http_cache_req_t *c, int rc)
{
    ed_http_finalize(r, rc == ED_ERROR ? ED_ERROR
                                       : ed_cache_revalidated_serve(r, c));
}

int
ed_http_cache_revalidated(ed_http_request_t *r,
                          const ed_http_cache_loc_t *conf,
                          ed_http_cache_req_t       *c,
                          const ed_http_resp_head_t *h)
{
    ed_http_cache_verdict_t v;
    ed_http_cache_rules_t   rules;
    ed_http_cache_hdr_t     nhdr;
    ed_http_header_t        old[ED_CACHE_MAX_HDRS];
    ed_http_header_t        all[ED_CACHE_MAX_HDRS + 2];
    ed_http_resp_head_t     sh, nh;
    ed_str_t                key, vary, head, nhead, etag;
    size_t                  i, n, len;
    char                   *prefix;
    int                     rc;

    /* RFC 9111 4.3.4 and 3.2: the 304's fields update the stored head
     * (Cache-Control, Expires, ETag, any end-to-end field), and the
     * updated head gives the lifetime: one without Cache-Control or
     * Expires keeps the stored ones, or cache_valid. */
    head.data = c->prefix + c->hdr.head_off;
    head.len = c->hdr.head_len;
    if (ed_http_parse_response(head.data, head.len, &sh, old,
                               ED_CACHE_MAX_HDRS) != ED_OK)
    {
        return 502;
    }
    if (ed_http_cache_update_head(r->pool, &head, sh.headers, sh.nheaders,
                                  h->headers, h->nheaders, &nhead, &etag)
        != ED_OK)
    {
        return ED_ERROR;
    }
    if (ed_http_parse_response(nhead.data, nhead.len, &nh, all,
                               ED_CACHE_MAX_HDRS) != ED_OK)
    {
        /* Over the fields an entry may have: the stored head stays. */
        nhead = head;
        etag.data = c->prefix + c->hdr.etag_off;
        etag.len = c->hdr.etag_len;
        memcpy(all, old, sh.nheaders * sizeof(old[0]));
        nh.nheaders = sh.nheaders;
    }
    /* The 304's own Date and Age (never stored) date the update. */
    n = nh.nheaders;
    for (i = 0; i < h->nheaders && n < ed_nelems(all); i++) {
        if (ed_http_str_eq_lit(&h->headers[i].name, "date")
            || ed_http_str_eq_lit(&h->headers[i].name, "age"))
        {
            all[n++] = h->headers[i];
        }
    }
    rules.valid = conf->cache_valid ? conf->cache_valid->elts : NULL;
    rules.nvalid = conf->cache_valid ? conf->cache_valid->nelts : 0;
    rules.ignore = conf->cache_ignore;
    rules.authorization = false;
    rules.now = ed_time_sec;
    ed_http_cache_decide(r->pool, &rules, c->hdr.status, all, n, &v);
    if (v.detail != NULL) {
        /* Nothing to go by: revalidated again on its next use. */
        v.lifetime = 0;
        v.initial_age = 0;
        v.flags = 0;
    }
    memset(&nhdr, 0, sizeof(nhdr));
    nhdr.stored = (int64_t)ed_time_sec;
    nhdr.initial_age = v.initial_age;
    nhdr.lifetime = v.lifetime;
    nhdr.last_modified = v.last_modified;
    nhdr.swr = v.swr;
    nhdr.sie = v.sie;
    nhdr.flags = (c->hdr.flags & ED_CACHE_F_VARIANT)
                 | (v.flags & ~(uint32_t)ED_CACHE_F_VARIANT);
    nhdr.status = c->hdr.status;
    key.data = c->prefix + c->hdr.key_off;
    key.len = c->hdr.key_len;
    vary.data = c->prefix + c->hdr.vary_off;
    vary.len = c->hdr.vary_len;
    prefix = ed_http_cache_prefix(r->pool, &nhdr, &key, &vary, &nhead,
                                  etag.len ? &etag : NULL, &len);
    if (prefix == NULL && nhead.data != head.data) {
        /* The updated head is over its bound: the stored one stays. */
        etag.data = c->prefix + c->hdr.etag_off;
        etag.len = c->hdr.etag_len;
        prefix = ed_http_cache_prefix(r->pool, &nhdr, &key, &vary, &head,
                                      etag.len ? &etag : NULL, &len);
    }
    if (prefix == NULL) {
        return ED_ERROR;
    }
    ed_http_cache_hdr_seal(prefix, &nhdr, c->hdr.body_len);
    c->upd_hdr = ed_palloc(r->pool, sizeof(nhdr));
    if (c->upd_hdr == NULL) {
        return ED_ERROR;
    }
    *c->upd_hdr = nhdr;
    c->upd_prefix = prefix;
    rc = ed_pc_update_file(r, c, prefix, len, ed_cache_updated);
    if (rc == ED_AGAIN || rc == ED_ERROR) {
        return rc;
    }
    return ed_cache_revalidated_serve(r, c);
}
