/* The proxy's cache (cache.md): the lookup before a request goes
 * upstream, a hit served from its file (conditional and range requests
 * through the same code as static files, the body by sendfile), request
 * collapsing and stale entries. Storing and PURGE are in
 * ed_http_cache_store.c, background refreshes in
 * ed_http_cache_bg.c; the file format, the rules and the shared
 * index in src/http/ed_http_cache_*.c. */
#include "ed_http_cache_int.h"
#include "ed_http_fields.h"
#include "ed_http_file_cache.h"
#include "ed_http_range.h"

#include <fcntl.h>
#include <sys/stat.h>

unsigned ed_pc_tmp_serial;

/* Paths. */

/* path/<levels>/<32 hex> of hash into pool memory, the directories'
 * ends in dirs[] (offsets into the result), their count in *ndirs. */
char *
ed_pc_file_path(ed_pool_t *pool, const ed_http_cache_t *cache,
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
void
ed_pc_unlink_all(ed_http_request_t *r, const ed_http_cache_t *cache,
                    const uint8_t *hashes, size_t n)
{
    char  *path;
    size_t i;

    for (i = 0; i < n; i++) {
        path = ed_pc_file_path(r->pool, cache,
                                  hashes + i * ED_CACHE_HASH_LEN, NULL,
                                  NULL);
        if (path && unlink(path) != 0 && errno != ENOENT) {
            ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": unlink(\"%s\") "
                        "failed", cache->name.data, path);
        }
    }
}

/* Request state. */

/* Tells the client that handed c its fill (if it still follows). */
void
ed_pc_tell(ed_http_cache_req_t *c, unsigned events)
{
    ed_http_cache_req_t *ic = c->initiator;

    if (ic != NULL && ic->waiting) {
        ed_http_cache_wait_notify(&ic->waiter, events);
    }
}

void
ed_pc_tell_tries(ed_http_cache_req_t *c)
{
    ed_http_cache_req_t *ic = c->initiator;

    if (ic != NULL && ic->r->upstream && c->r->upstream) {
        /* $upstream_addr, _status, _response_time: the fetch's. */
        memcpy(ic->r->upstream->tries, c->r->upstream->tries,
               sizeof(c->r->upstream->tries));
        ic->r->upstream->ntries = c->r->upstream->ntries;
    }
}

void
ed_pc_unlock(ed_http_cache_req_t *c, int64_t hfm_until)
{
    if (c->locked) {
        c->locked = 0;
        ed_http_cache_index_unlock(c->cache->zone, c->lock_hash,
                                   (int32_t)getpid(), c->serial, hfm_until);
    }
}

/* Gives up the temp file (never stored: what was written goes) and
 * the key's fill; hfm_until > 0 marks the key hit-for-miss. The fill
 * goes first: the file's end wakes the waiters, who must find the key
 * free. */
void
ed_pc_drop_tmp(ed_http_cache_req_t *c, int64_t hfm_until)
{
    bool had = c->tmp_fd >= 0 || c->tmp_path != NULL;

    ed_pc_unlock(c, hfm_until);
    /* Bytes held back go with the file (the buffer is the pool's). */
    c->staged = 0;
    if (ed_timer_active(&c->stage_timer)) {
        ed_timer_del(ed_worker->loop, &c->stage_timer);
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
    c->spool = 0;
    c->unstored = 0;
    if (had) {
        ed_pc_tell(c, ED_CACHE_WAIT_DELETED);
    }
}

void
ed_http_cache_not_stored(ed_http_cache_req_t *c)
{
    if (c != NULL && c->may_store) {
        ed_pc_drop_tmp(c, (int64_t)ed_time_sec + 30);
    }
}

void
ed_pc_cleanup(void *data)
{
    ed_http_cache_req_t *c = data, *o;

    if (c->bg == NULL && c->r->upstream) {
        /* Once per request that used the cache, as it answered. */
        ed_http_cache_count(c->cache->zone, c->r->upstream->cache_status);
    }
    if (c->waiting) {
        c->waiting = 0;
        ed_http_cache_wait_cancel(&c->waiter);
    }
    ed_pc_update_cancel(c);
    ed_pc_drop_tmp(c, 0);
    if (c->stage != NULL) {
        ed_pc_staging -= c->stage_size;
        c->stage = NULL;
    }
    /* The link between a fill and its client goes with either. */
    if (c->initiator) {
        o = c->initiator;
        o->fill = NULL;
        c->initiator = NULL;
    }
    if (c->fill) {
        o = c->fill;
        o->initiator = NULL;
        c->fill = NULL;
        /* A fetch waiting for this client reads on (and stops). */
        ed_pc_fill_drained(o);
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->file) {
        ed_http_file_release(c->file);
        c->file = NULL;
    }
    if (c->sfd >= 0) {
        close(c->sfd);
        c->sfd = -1;
    }
    if (c->sfd_prev >= 0) {
        close(c->sfd_prev);
        c->sfd_prev = -1;
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
ed_cache_bad(ed_http_request_t *r, ed_http_cache_req_t *c,
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
int
ed_pc_open(ed_http_request_t *r, ed_http_cache_req_t *c,
              const uint8_t *hash)
{
    ed_http_header_t    hdrs[ED_CACHE_MAX_HDRS];
    ed_http_resp_head_t h;
    struct stat         st;
    char               *path, *buf;
    size_t              want;
    ssize_t             n;
    int                 fd, rc;

    path = ed_pc_file_path(r->pool, c->cache, hash, NULL, NULL);
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
    if (rc == ED_CACHE_HDR_OK && !(c->hdr.flags & ED_CACHE_F_VARY)
        && ed_http_parse_response(buf + c->hdr.head_off, c->hdr.head_len,
                                  &h, hdrs, ED_CACHE_MAX_HDRS) != ED_OK)
    {
        /* The CRC only says eddy wrote it: a head that does not parse
         * would be a 502 on every hit until the entry expired. */
        rc = ED_CACHE_HDR_LAYOUT;
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
    c->read = (size_t)n;
    return ED_OK;
}

/* Seconds the entry has been fresh for (negative: stale). */
int64_t
ed_pc_ttl(const ed_http_cache_hdr_t *h)
{
    int64_t age = h->initial_age
                  + ed_max((int64_t)0, (int64_t)ed_time_sec - h->stored);

    return h->lifetime - age;
}

/* Serving. */

/* Adds a header whose value is copied into the request pool (headers
 * keep pointers: values made on the stack must outlive the call). */
int
ed_pc_add(ed_http_request_t *r, const char *name, const char *value)
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
ed_cache_head(ed_http_request_t *r, ed_http_cache_req_t *c,
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

int
ed_pc_head(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    ed_http_header_t    hdrs[ED_CACHE_MAX_HDRS];
    ed_http_resp_head_t h;

    return ed_cache_head(r, c, &h, hdrs);
}

/* Serves the entry open in c (fresh, or just revalidated): the stored
 * head, Age and Cache-Status, the client's conditions against the
 * stored validators, and the body as a file range (the range filter
 * cuts a Range from it). Returns ED_OK, ED_ERROR or a status. */
/* The decimal digits of v (>= 0) ending at end; returns their start. */
static char *
ed_pc_digits(char *end, int64_t v)
{
    uint64_t u = (uint64_t)v;

    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return end;
}

int
ed_pc_serve(ed_http_request_t *r, ed_http_cache_req_t *c,
               const char *cache_status)
{
    ed_http_header_t    hdrs[ED_CACHE_MAX_HDRS];
    ed_http_resp_head_t h;
    ed_http_cond_t      cond;
    ed_str_t            etag;
    ed_pc_hit_t        *e = c->file ? c->file->aux : NULL;
    char               *num, *end, *cs;
    size_t              cslen = strlen(cache_status);
    int64_t             age, ttl;
    int                 rc;

    r->headers_out.nelts = 0;
    /* A checked entry's head was parsed once (ed_pc_hit_keep). */
    rc = e ? ed_pc_hit_head(r, e) : ed_cache_head(r, c, &h, hdrs);
    if (rc != ED_OK) {
        return rc == ED_ERROR ? ED_ERROR : 502;
    }
    ttl = ed_pc_ttl(&c->hdr);
    age = ed_max((int64_t)0, c->hdr.lifetime - ttl);
    /* Age's digits and Cache-Status in one piece of r's pool, with no
     * formatting call: they are all a hit makes of its own. */
    cs = ed_pnalloc(r->pool, 24 + cslen);
    if (cs == NULL) {
        return ED_ERROR;
    }
    end = cs + 24;
    num = ed_pc_digits(end, age);
    memcpy(end, cache_status, cslen);
    if (ed_http_add_header(r, "Age", 3, num, (size_t)(end - num)) != ED_OK
        || ed_http_add_header(r, "Cache-Status", 12, end, cslen) != ED_OK)
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
            /* The error response keeps only Cache-Status. */
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
    if (c->read >= c->hdr.body_off + c->hdr.body_len) {
        /* A small entry came whole with the first read: one write of
         * memory, as static sends small files, instead of a sendfile. */
        return ed_http_send_body(r, c->prefix + c->hdr.body_off,
                                 (size_t)c->hdr.body_len) == ED_OK
                   ? ED_OK : ED_ERROR;
    }
    /* The descriptor stays open with the request (the pool cleanup
     * closes or releases it) until the range is written; an entry
     * removed meanwhile is finished from it. */
    return ed_http_send_file(r, c->file ? c->file->fd : c->fd,
                             (int64_t)c->hdr.body_off,
                             (size_t)c->hdr.body_len) == ED_OK
               ? ED_OK : ED_ERROR;
}

/* Serves a fresh entry as a hit: what ed_cache_decide does for one,
 * with Cache-Status made without a formatting call. */
static int
ed_pc_serve_hit(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    static const char pre[] = "eddy; hit; ttl=";
    char              buf[48], *p;

    c->status = "HIT";
    p = ed_pc_digits(buf + sizeof(buf) - 1, ed_pc_ttl(&c->hdr));
    buf[sizeof(buf) - 1] = '\0';
    p -= sizeof(pre) - 1;
    memcpy(p, pre, sizeof(pre) - 1);
    return ed_pc_serve(r, c, p);
}

/* The lookup. */

/* The variant's hash: the key's, then a newline and the variant. */
int
ed_pc_variant_hash(ed_http_request_t *r, ed_http_cache_req_t *c,
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

/* The generation line "%016llx\n" a variant's vary part starts with;
 * UINT64_MAX when it is not one. */
static uint64_t
ed_cache_gen_line(const char *p)
{
    uint64_t g = 0;
    int      i, d;

    for (i = 0; i < 16; i++) {
        d = p[i] >= '0' && p[i] <= '9' ? p[i] - '0'
            : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10 : -1;
        if (d < 0) {
            return UINT64_MAX;
        }
        g = g << 4 | (uint64_t)d;
    }
    return p[16] == '\n' ? g : UINT64_MAX;
}

/* The file of hash, just opened as c->fd, counted in the index if it
 * was not: a file the index never walked, stored by the other master of
 * a binary upgrade after this one's cache manager loaded the directory,
 * would otherwise be served for good and never evicted (inactive,
 * max_size). A file the index counts already is left as it is. */
static void
ed_pc_known(ed_http_request_t *r, ed_http_cache_req_t *c,
            const uint8_t *hash)
{
    uint8_t     dropped[ED_CACHE_HASH_LEN];
    struct stat st;
    size_t      nd;

    if (fstat(c->fd, &st) != 0) {
        return;
    }
    (void)ed_http_cache_index_load(c->cache->zone, hash,
                                   (int64_t)st.st_blocks * 512,
                                   (int64_t)ed_time_sec, dropped, &nd);
    if (nd) {
        ed_pc_unlink_all(r, c->cache, dropped, nd);
    }
}

/* Finds the entry for the request: the key's file, or through its Vary
 * marker the variant's. ED_OK (c->fd open), ED_DECLINED (a miss,
 * c->fwd says which), ED_ERROR. */
int
ed_pc_find(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    uint8_t  dropped[ED_CACHE_HASH_LEN];
    uint32_t gen;
    size_t   nd;
    int      rc;

    if (c->file && c->hit == NULL) {
        /* An entry an earlier lookup of r found. */
        ed_http_file_release(c->file);
        c->file = NULL;
    }
    c->uses = ed_http_cache_index_use_gen(c->cache->zone, c->main_hash,
                                          (int64_t)ed_time_sec, &gen,
                                          dropped, &nd);
    if (nd) {
        ed_pc_unlink_all(r, c->cache, dropped, nd);
    }
    memcpy(c->hash, c->main_hash, ED_CACHE_HASH_LEN);
    /* The entry checked by an earlier request, when still the key's. */
    c->igen = gen;
    if (ed_pc_hit_find(c, gen) == ED_OK) {
        return ED_OK;
    }
    rc = ed_pc_open(r, c, c->main_hash);
    if (rc != ED_OK) {
        return rc;
    }
    if (gen == 0) {
        /* The index knows no file for the key: counted now (its next
         * hit takes the checked path with the new generation). */
        ed_pc_known(r, c, c->main_hash);
    }
    if (!(c->hdr.flags & ED_CACHE_F_VARY)) {
        if (gen == 0) {
            c->igen = ed_http_cache_index_gen(c->cache->zone, c->main_hash);
        }
        ed_pc_hit_keep(r, c, gen);
        return ED_OK;
    }
    /* A marker: the variant this request selects. */
    c->marker = 1;
    c->gen = (uint64_t)c->hdr.initial_age;
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
    if (ed_pc_variant_hash(r, c, &c->vary, c->hash) != ED_OK) {
        return ED_ERROR;
    }
    rc = ed_pc_open(r, c, c->hash);
    if (rc != ED_OK) {
        return rc;
    }
    if (!(c->hdr.flags & ED_CACHE_F_VARIANT)
        || c->hdr.vary_len != 17 + c->variant.len
        || ed_cache_gen_line(c->prefix + c->hdr.vary_off) != c->gen
        || memcmp(c->prefix + c->hdr.vary_off + 17, c->variant.data,
                  c->variant.len) != 0)
    {
        close(c->fd);
        c->fd = -1;
        return ED_DECLINED;
    }
    ed_pc_known(r, c, c->hash);
    return ED_OK;
}

/* The temp file path/.tmp/<pid>.<serial> into c->tmp_path. */
int
ed_pc_tmp_name(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    size_t n = c->cache->path.len + 48;

    c->tmp_path = ed_pnalloc(r->pool, n);
    if (c->tmp_path == NULL) {
        return ED_ERROR;
    }
    if (c->serial == 0) {
        c->serial = ++ed_pc_tmp_serial;
    }
    snprintf(c->tmp_path, n, "%s/.tmp/%d.%u", c->cache->path.data,
             (int)getpid(), c->serial);
    return ED_OK;
}

static void ed_cache_waited(ed_http_cache_waiter_t *w, unsigned events);
static void ed_cache_followed(ed_http_cache_waiter_t *w, unsigned events);

/* cache_lock: takes the key's fill (its temp file made now, so that
 * waiters have a name to watch), or waits for the request holding it.
 * ED_OK (go upstream), ED_AGAIN (waiting), ED_ERROR. */
static int
ed_cache_lock(ed_http_request_t *r, ed_http_cache_req_t *c,
              ed_msec_t timeout)
{
    uint8_t  dropped[ED_CACHE_HASH_LEN];
    size_t   nd;
    int64_t  now = (int64_t)ed_time_sec;
    int32_t  opid = 0;
    uint32_t oserial = 0;
    int      rc;

    memcpy(c->lock_hash, c->hash, ED_CACHE_HASH_LEN);
    c->serial = ++ed_pc_tmp_serial;
    rc = ed_http_cache_index_lock(c->cache->zone, c->lock_hash, now,
                                  now + (int64_t)(timeout + 999) / 1000,
                                  (int32_t)getpid(), c->serial, &opid,
                                  &oserial, dropped, &nd);
    if (nd) {
        ed_pc_unlink_all(r, c->cache, dropped, nd);
    }
    if (rc == ED_DECLINED) {
        /* Hit-for-miss: no queueing; a storable response is stored. */
        return ED_OK;
    }
    if (rc == ED_OK) {
        c->locked = 1;
        if (ed_pc_tmp_name(r, c) != ED_OK) {
            return ED_ERROR;
        }
        c->tmp_fd = open(c->tmp_path, O_WRONLY | O_CREAT | O_TRUNC
                                      | O_CLOEXEC, 0600);
        if (c->tmp_fd < 0) {
            ed_pc_write_failed(r, c, errno);
            c->tmp_path = NULL;
            ed_pc_drop_tmp(c, 0);
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

/* The fill just taken goes to a fetch detached from the client (the
 * streaming miss): the upstream is read at its own pace into the temp
 * file, which the client follows like a waiter, told by the fetch
 * itself; the fetch goes on if the client goes. ED_OK (following), or
 * ED_ERROR (the client keeps the fill and fetches itself). */
static int
ed_cache_hand(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    int sfd;

    sfd = open(c->tmp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (sfd < 0) {
        return ED_ERROR;
    }
    if (ed_pc_background(r, c, true) != ED_OK) {
        close(sfd);
        return ED_ERROR;
    }
    c->sfd = sfd;
    c->soff = 0;
    c->sgone = 0;
    c->streaming = 0;
    c->no_stream = 0;
    c->waiter.cache = c->cache;
    c->waiter.done = ed_cache_followed;
    c->waiter.data = c;
    ed_http_cache_wait_local(&c->waiter);
    c->waiting = 1;
    c->following = 1;
    return ED_OK;
}

/* Whether the stale entry open in c may be served for cond (an
 * ED_CACHE_STALE_* bit): never after no-cache, must-revalidate or
 * proxy-revalidate; in use_stale's conditions unless it had s-maxage;
 * in its own stale-while-revalidate (updating) or stale-if-error
 * window (RFC 5861). */
static bool
ed_cache_stale_ok(ed_http_cache_req_t *c, int cond)
{
    int64_t stale = -ed_pc_ttl(&c->hdr);
    int64_t window = cond == ED_CACHE_STALE_UPDATING ? c->hdr.swr
                                                     : c->hdr.sie;

    if (!c->stale || (c->hdr.flags & ED_CACHE_F_MUST_REVAL)) {
        return false;
    }
    if ((c->conf->use_stale & cond) && !(c->hdr.flags & ED_CACHE_F_S_MAXAGE))
    {
        return true;
    }
    return window >= 0 && stale <= window;
}

/* Serves the stale entry: detail "updating" or "stale-error". */
static int
ed_cache_serve_stale(ed_http_request_t *r, ed_http_cache_req_t *c,
                     bool updating)
{
    char buf[96];

    c->revalidating = 0;
    if (updating) {
        c->status = "UPDATING";
        snprintf(buf, sizeof(buf), "eddy; hit; ttl=%lld; detail=updating",
                 (long long)ed_pc_ttl(&c->hdr));
    } else {
        c->status = "STALE";
        snprintf(buf, sizeof(buf), "eddy; fwd=stale; ttl=%lld; "
                 "detail=stale-error", (long long)ed_pc_ttl(&c->hdr));
    }
    return ed_pc_serve(r, c, buf);
}

/* What to do once ed_pc_find returned rc: serve a fresh entry, wait
 * for another request's fetch (or serve stale while it updates), or go
 * upstream. ED_DECLINED (upstream), ED_AGAIN (waiting), or the result
 * of serving. */
static int
ed_cache_decide(ed_http_request_t *r, ed_http_cache_req_t *c, int rc,
                bool only_if_cached, bool collapsed)
{
    const ed_http_cache_loc_t *conf = c->conf;
    ed_msec_t             timeout;
    char                  buf[96];

    if (rc == ED_ERROR) {
        return 500;
    }
    c->stale = 0;
    if (rc == ED_OK) {
        if (c->hdr.lifetime > 0 && ed_pc_ttl(&c->hdr) > 0) {
            c->status = "HIT";
            if (collapsed) {
                snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; "
                         "collapsed", c->fwd, c->hdr.status);
            } else {
                snprintf(buf, sizeof(buf), "eddy; hit; ttl=%lld",
                         (long long)ed_pc_ttl(&c->hdr));
            }
            return ed_pc_serve(r, c, buf);
        }
        /* Stale: kept open, to revalidate or to serve stale. */
        c->stale = 1;
        c->fwd = "stale";
        c->status = "EXPIRED";
        c->revalidating = conf->revalidate && !only_if_cached
                          && (c->hdr.etag_len || c->hdr.last_modified >= 0);
    }
    if (only_if_cached) {
        r->upstream->cache_status = c->status;
        snprintf(buf, sizeof(buf), "eddy; fwd=%s; detail=only-if-cached",
                 c->fwd);
        if (ed_pc_add(r, "Cache-Status", buf) != ED_OK) {
            return 500;
        }
        c->may_store = 0;
        return 504;
    }
    if (c->no_store || (conf->cache_lock && !conf->cache_lock->enabled)) {
        return ED_DECLINED;
    }
    timeout = conf->cache_lock ? conf->cache_lock->timeout : 5000;
    rc = ed_cache_lock(r, c, timeout);
    if (rc == ED_OK && c->locked && c->stale && conf->background_update
        && ed_cache_stale_ok(c, ED_CACHE_STALE_UPDATING)
        && ed_pc_background(r, c, false) == ED_OK)
    {
        /* The stale entry at once; one refresh goes on without us. */
        return ed_cache_serve_stale(r, c, true);
    }
    if (rc == ED_OK && c->locked && c->tmp_fd >= 0
        && ed_cache_hand(r, c) == ED_OK)
    {
        return ED_AGAIN;
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

/* Streams what the fetch's file holds past what went out, for a waiter
 * or the fetch's own client: true when that was news enough (more to
 * come, or the request resumed with the outcome), false when it cannot
 * be streamed or the file's end is to be looked at. */
static bool
ed_cache_streamed(ed_http_cache_waiter_t *w, ed_http_cache_req_t *c,
                  unsigned events)
{
    int rc;

    if (!c->streaming && !(events & ED_CACHE_WAIT_MODIFIED)) {
        return false;
    }
    rc = ed_pc_stream(c->r, c, events);
    if (rc == ED_AGAIN) {
        return true;
    }
    if (rc == ED_DECLINED) {
        return false;
    }
    ed_http_cache_wait_cancel(w);
    c->waiting = 0;
    c->resume(c->r, c->resume_data, rc);
    return true;
}

/* News of the fetch waited for: its head and body are streamed as
 * they land in its temp file; or, when it cannot be streamed, once the
 * file is gone the entry it stored is served, else the request goes
 * upstream itself (or waits again for a new fetch of the key). Past the
 * timeout it goes upstream, unstored. */
static void
ed_cache_waited(ed_http_cache_waiter_t *w, unsigned events)
{
    ed_http_cache_req_t   *c = w->data;
    ed_http_request_t     *r = c->r;
    int                    rc;

    if (ed_cache_streamed(w, c, events)) {
        return;
    }
    if (!(events & (ED_CACHE_WAIT_GONE | ED_CACHE_WAIT_TIMEOUT))) {
        return;
    }
    ed_http_cache_wait_cancel(w);
    c->waiting = 0;
    if (c->sfd >= 0) {
        close(c->sfd);
        c->sfd = -1;
    }
    if (events & ED_CACHE_WAIT_TIMEOUT) {
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
    rc = ed_cache_decide(r, c, ed_pc_find(r, c), false, true);
    if (rc != ED_AGAIN) {
        c->resume(r, c->resume_data, rc);
    }
}

/* The fetch this request handed its fill to ended without a head in
 * its file: it failed (answered as a failed fetch: stale or its
 * status), or a 304 refreshed the entry (served as REVALIDATED), or
 * the entry is there (served); else the request goes upstream itself,
 * as with cache_lock off. ED_DECLINED or the result of answering. */
static int
ed_cache_fill_gone(ed_http_request_t *r, ed_http_cache_req_t *c)
{
    char buf[96];
    int  rc;

    if (c->failed) {
        rc = ed_http_cache_failed(r, c, c->fail_cond, c->fail_fetch,
                                  c->fail_status);
        return rc != ED_DECLINED ? rc : c->fail_status;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    rc = ed_pc_find(r, c);
    if (rc == ED_ERROR) {
        return 500;
    }
    c->stale = 0;
    if (rc == ED_OK) {
        if (c->revalidating && c->hdr.stored >= c->start / 1000) {
            /* Written since this request began: the 304's refresh. */
            c->status = "REVALIDATED";
            snprintf(buf, sizeof(buf), "eddy; fwd=stale; fwd-status=304; "
                     "ttl=%lld", (long long)ed_pc_ttl(&c->hdr));
            return ed_pc_serve(r, c, buf);
        }
        if (c->hdr.lifetime > 0 && ed_pc_ttl(&c->hdr) > 0) {
            c->status = "HIT";
            snprintf(buf, sizeof(buf), "eddy; fwd=%s; fwd-status=%d; "
                     "collapsed", c->fwd, c->hdr.status);
            return ed_pc_serve(r, c, buf);
        }
        close(c->fd);
        c->fd = -1;
    }
    c->revalidating = 0;
    return ED_DECLINED;
}

/* News from the fetch this request handed its fill to: the head and
 * body are streamed from its file as they land (or from the private
 * file of a response not stored); its end without a head is answered
 * by ed_cache_fill_gone. */
static void
ed_cache_followed(ed_http_cache_waiter_t *w, unsigned events)
{
    ed_http_cache_req_t   *c = w->data;
    ed_http_request_t     *r = c->r;

    if (ed_cache_streamed(w, c, events)) {
        return;
    }
    if (!(events & ED_CACHE_WAIT_GONE)) {
        return;
    }
    ed_http_cache_wait_cancel(w);
    c->waiting = 0;
    c->following = 0;
    if (c->sfd >= 0) {
        close(c->sfd);
        c->sfd = -1;
    }
    c->resume(r, c->resume_data, ed_cache_fill_gone(r, c));
}

int
ed_http_cache_start(ed_http_request_t *r, const ed_http_cache_loc_t *conf,
                    ed_http_cache_req_t **cp,
                    ed_http_cache_resume_pt resume, void *data)
{
    ed_http_cache_req_t   *c;
    ed_str_t               cc;
    bool                   bypass, nocache, only_if_cached = false;
    int                    method, rc;

    *cp = NULL;
    if (conf->cache == NULL) {
        return ED_DECLINED;
    }
    if (r->background) {
        c = r->upstream->cache;
        c->resume = resume;
        c->resume_data = data;
        *cp = c;
        return ed_pc_bg_start(r, c);
    }
    c = ed_pcalloc(r->pool, sizeof(ed_http_cache_req_t));
    if (c == NULL) {
        return 500;
    }
    c->r = r;
    c->conf = conf;
    c->resume = resume;
    c->resume_data = data;
    c->cache = conf->cache;
    c->fd = -1;
    c->tmp_fd = -1;
    c->sfd = -1;
    c->sfd_prev = -1;
    c->start = ed_pc_now_ms();
    if (ed_pool_cleanup_add(r->pool, ed_pc_cleanup, c) != ED_OK) {
        return 500;
    }
    *cp = c;
    if (conf->purge && r->head.method.len == 5
        && memcmp(r->head.method.data, "PURGE", 5) == 0)
    {
        return ed_pc_purge(r, c);
    }
    method = r->head.method_id == ED_HTTP_GET ? ED_CACHE_M_GET
             : r->head.method_id == ED_HTTP_HEAD ? ED_CACHE_M_HEAD : 0;
    if (!(conf->cache_methods & method)) {
        c->fwd = "method";
        return ED_DECLINED;
    }
    if (ed_http_has_body(r) || ed_http_header(r, "Upgrade")
        || r->connect_protocol || r->cgi_redirected)
    {
        c->fwd = "request";
        return ED_DECLINED;
    }
    if (ed_http_template_run(r, conf->cache_key, &c->key) != ED_OK) {
        return 500;
    }
    if (c->key.len == 0 || c->key.len > ED_CACHE_KEY_MAX) {
        c->fwd = "request";
        return ED_DECLINED;
    }
    if (ed_pc_key_hash(c) != ED_OK
        || ed_cache_any(r, conf->cache_bypass, &bypass) != ED_OK
        || ed_cache_any(r, conf->no_cache, &nocache) != ED_OK)
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
    rc = ed_pc_find(r, c);
    if (rc == ED_OK && c->file && c->file->aux) {
        /* A checked entry, fresh (ed_pc_hit_find): a hit. */
        return ed_pc_serve_hit(r, c);
    }
    return ed_cache_decide(r, c, rc, only_if_cached, false);
}

/* No response came for the fetch (cond: how it failed): eddy answers
 * with its own error, which says so in Cache-Status (RFC 9211 has no
 * fwd-status without a response: detail names the failure) and keeps
 * $upstream_cache_status. */
static int
ed_cache_fetch_failed(ed_http_request_t *r, ed_http_cache_req_t *c,
                      int cond)
{
    char buf[96];

    if (c->fwd == NULL) {
        return ED_OK;
    }
    if (c->status != NULL) {
        r->upstream->cache_status = c->status;
    }
    snprintf(buf, sizeof(buf), "eddy; fwd=%s; detail=%s", c->fwd,
             cond == ED_CACHE_STALE_TIMEOUT ? "timeout"
             : cond == ED_CACHE_STALE_INVALID ? "invalid-header" : "error");
    ed_http_out_header_del(r, "Cache-Status", 12);
    return ed_pc_add(r, "Cache-Status", buf);
}

static int
ed_cache_failed(ed_http_request_t *r, ed_http_cache_req_t *c, int cond,
                bool fetch)
{
    int rc = ED_DECLINED;

    if (c == NULL || r->header_sent) {
        return ED_DECLINED;
    }
    if (c->stale && ed_cache_stale_ok(c, cond)) {
        r->headers_out.nelts = 0;
        return ed_cache_serve_stale(r, c, false);
    }
    if (c->stale && fetch
        && (c->hdr.flags & (ED_CACHE_F_MUST_REVAL | ED_CACHE_F_S_MAXAGE)))
    {
        /* RFC 9111 5.2.2.2 (s-maxage implies proxy-revalidate): a stale
         * entry that must be revalidated and cannot be is a 504. */
        rc = 504;
    }
    if (fetch && ed_cache_fetch_failed(r, c, cond) != ED_OK) {
        return 500;
    }
    return rc;
}

int
ed_http_cache_failed(ed_http_request_t *r, ed_http_cache_req_t *c,
                     int cond, bool fetch, int status)
{
    ed_http_cache_req_t   *ic;
    int                    s;

    if (c == NULL) {
        return ED_DECLINED;
    }
    s = ed_cache_failed(r, c, cond, fetch);
    ic = c->initiator;
    if (ic != NULL && (fetch || s != ED_DECLINED)) {
        /* A fill's fetch failed before its head: its client answers as
         * this fetch would have (the stale entry it holds, or the
         * status), once the fetch is gone. */
        ed_pc_tell_tries(c);
        ic->failed = 1;
        ic->fail_cond = cond;
        ic->fail_fetch = fetch;
        ic->fail_status = status;
    }
    return s;
}

bool
ed_http_cache_fetch(ed_http_cache_req_t *c, const ed_str_t **inm,
                    const ed_str_t **ims)
{
    *inm = NULL;
    *ims = NULL;
    if (c == NULL || !c->may_store) {
        return false;
    }
    if (!c->revalidating) {
        return true;
    }
    if (c->hdr.etag_len) {
        c->etag.data = c->prefix + c->hdr.etag_off;
        c->etag.len = c->hdr.etag_len;
        *inm = &c->etag;
    }
    if (c->hdr.last_modified >= 0) {
        c->ims.data = c->ims_buf;
        c->ims.len = (size_t)(ed_http_time(c->ims_buf,
                                           (time_t)c->hdr.last_modified)
                              - c->ims_buf);
        *ims = &c->ims;
    }
    return true;
}

void
ed_http_cache_request(ed_http_cache_req_t *c, ed_http_upstream_req_t *q)
{
    if (!ed_http_cache_fetch(c, &q->if_none_match, &q->if_modified_since)) {
        return;
    }
    q->cache = 1;
    if (q->host == &c->r->head.host && c->r->host.len) {
        /* The origin sees the Host the key has ($host: lower case, no
         * port, no trailing dot), never a variant of it the key drops:
         * "Host: a.example:1" would store a response built for port 1
         * (redirects, absolute links) under a.example's key. */
        q->host = &c->r->host;
    }
}

int
ed_http_cache_stale_cond(int ft)
{
    return ft == ED_HTTP_UPS_FT_TIMEOUT ? ED_CACHE_STALE_TIMEOUT
           : ft == ED_HTTP_UPS_FT_INVALID ? ED_CACHE_STALE_INVALID
           : ED_CACHE_STALE_ERROR;
}

int
ed_http_cache_stale_status(int status)
{
    switch (status) {
    case 500:
        return ED_CACHE_STALE_500;
    case 502:
        return ED_CACHE_STALE_502;
    case 503:
        return ED_CACHE_STALE_503;
    case 504:
        return ED_CACHE_STALE_504;
    case 403:
        return ED_CACHE_STALE_403;
    case 404:
        return ED_CACHE_STALE_404;
    case 429:
        return ED_CACHE_STALE_429;
    default:
        return 0;
    }
}
