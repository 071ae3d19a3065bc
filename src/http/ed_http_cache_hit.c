/* The worker's table of checked cache entries, so that a hit costs what
 * a static file does: an entry whose file was opened, its CRC, key and
 * head checked once, is kept with its descriptor in the open-file cache
 * (small ones with their bytes), its head parsed, and its key's hash.
 * A later request for the key finds it by the key itself (no SHA-256),
 * and uses it while
 *   - the shared index gives the same generation for the key (every
 *     store, load or PURGE of the key, and every drop of its entry, gives
 *     a new one, in any process),
 *   - the open-file cache still holds the file and its rules (`valid`,
 *     then a stat against inode, size and mtime) say it is the same file,
 *   - and the entry is fresh: a stale one goes the usual way (revalidated
 *     into a new file), and is checked again from disk.
 * Anything else drops it, and the key's file is opened and checked again
 * as on a first use. Every second the table is swept too: an entry whose
 * generation changed (purged, evicted, replaced, by any process) is
 * dropped even if its key is never asked for again, so that no worker
 * holds the blocks of a removed file (max_size, min_free and a full disk
 * would evict entries without freeing anything). */
#include "ed_http_cache_int.h"
#include "ed_http_fields.h"
#include "ed_http_file_cache.h"

#define ED_PC_HIT_BUCKETS  4096
/* Bytes of heads copied out of files (entries whose bytes the open-file
 * cache does not hold), at most. */
#define ED_PC_HIT_MEMORY   (16 * 1024 * 1024)

struct ed_pc_hit_s {
    ed_pc_hit_t            *hnext;
    uint64_t                fnv;
    const ed_http_cache_t  *cache;
    ed_http_file_t         *file;      /* whose aux this is */
    uint32_t                gen;       /* the index's when checked */
    uint8_t                 hash[ED_CACHE_HASH_LEN];
    ed_http_cache_hdr_t     hdr;
    char                   *prefix;    /* checked bytes of the file */
    size_t                  read;
    size_t                  own;       /* bytes of prefix malloc'd */
    ed_str_t                content_type;
    ed_http_header_t       *hdrs;      /* the stored head's, to send */
    size_t                  nhdrs;
    unsigned                linked:1;
};

/* Between sweeps of the table. */
#define ED_PC_HIT_SWEEP    1000

static ed_pc_hit_t *ed_pc_hits[ED_PC_HIT_BUCKETS];
static size_t       ed_pc_hit_memory;
static size_t       ed_pc_hit_count;    /* linked entries */
static ed_timer_t   ed_pc_hit_sweeper;

static uint64_t
ed_pc_hit_fnv(const ed_http_cache_t *cache, const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull ^ (uint64_t)(uintptr_t)cache;
    size_t   i;

    for (i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void
ed_pc_hit_unlink(ed_pc_hit_t *e)
{
    ed_pc_hit_t **pp;

    if (!e->linked) {
        return;
    }
    for (pp = &ed_pc_hits[e->fnv % ED_PC_HIT_BUCKETS]; *pp != e;
         pp = &(*pp)->hnext)
    {
        /* find the link to e */
    }
    *pp = e->hnext;
    e->linked = 0;
    ed_pc_hit_count--;
}

/* The open-file cache frees the file: its entry goes with it. */
static void
ed_pc_hit_free(ed_http_file_t *f)
{
    ed_pc_hit_t *e = f->aux;

    f->aux = NULL;
    f->aux_free = NULL;
    ed_pc_hit_unlink(e);
    if (e->own) {
        ed_pc_hit_memory -= e->own;
        free(e->prefix);
    }
    free(e);
}

/* An entry no longer to be used: out of the table, and its file out of
 * the open-file cache (both freed by the last request holding it). */
static void
ed_pc_hit_forget(ed_pc_hit_t *e)
{
    ed_pc_hit_unlink(e);
    ed_http_file_drop(e->file);
}

/* Drops the entries whose key's generation changed since they were
 * checked: their files were removed or replaced. */
static void
ed_pc_hit_sweep(ed_timer_t *t)
{
    ed_pc_hit_t *e, *next;
    size_t       i;

    for (i = 0; i < ED_PC_HIT_BUCKETS && ed_pc_hit_count; i++) {
        for (e = ed_pc_hits[i]; e; e = next) {
            next = e->hnext;
            if (ed_http_cache_index_gen(e->cache->zone, e->hash) != e->gen) {
                /* May free e: next was taken before. */
                ed_pc_hit_forget(e);
            }
        }
    }
    if (ed_pc_hit_count) {
        ed_timer_add(ed_worker->loop, t, ED_PC_HIT_SWEEP);
    }
}

int
ed_pc_key_hash(ed_http_cache_req_t *c)
{
    ed_pc_hit_t *e;
    uint64_t     h;

    h = ed_pc_hit_fnv(c->cache, c->key.data, c->key.len);
    for (e = ed_pc_hits[h % ED_PC_HIT_BUCKETS]; e; e = e->hnext) {
        if (e->fnv == h && e->cache == c->cache
            && e->hdr.key_len == c->key.len
            && memcmp(e->prefix + e->hdr.key_off, c->key.data,
                      c->key.len) == 0)
        {
            /* Held until ed_pc_hit_find says whether it may serve. */
            ed_http_file_hold(e->file);
            c->file = e->file;
            c->hit = e;
            memcpy(c->main_hash, e->hash, ED_CACHE_HASH_LEN);
            return ED_OK;
        }
    }
    return ed_http_cache_hash(c->key.data, c->key.len, c->main_hash);
}

int
ed_pc_hit_find(ed_http_cache_req_t *c, uint32_t gen)
{
    ed_pc_hit_t *e = c->hit;

    if (e == NULL) {
        return ED_DECLINED;
    }
    c->hit = NULL;
    if (!e->linked || gen == 0 || e->gen != gen
        || !ed_http_file_current(e->file)
        || e->hdr.lifetime <= 0 || ed_pc_ttl(&e->hdr) <= 0)
    {
        /* Replaced, purged, evicted, changed on disk, or stale: the file
         * is opened and checked again. */
        if (e->linked) {
            ed_pc_hit_forget(e);
        }
        ed_http_file_release(c->file);
        c->file = NULL;
        return ED_DECLINED;
    }
    c->hdr = e->hdr;
    c->prefix = e->prefix;
    c->read = e->read;
    return ED_OK;
}

/* p, a pointer into from, moved to the same place in to. */
#define ed_pc_rebase(p, from, to) ((to) + ((p) - (from)))

void
ed_pc_hit_keep(ed_http_request_t *r, ed_http_cache_req_t *c,
               uint32_t gen)
{
    ed_http_header_t    hdrs[ED_CACHE_MAX_HDRS], *fh;
    ed_http_resp_head_t h;
    ed_http_file_t     *f;
    ed_pc_hit_t        *e, *o, **b;
    struct stat         st;
    char               *path, *own = NULL;
    size_t              i;
    bool                whole;

    if (gen == 0 || c->fd < 0 || !ed_http_file_cache_on()
        || (c->hdr.flags & (ED_CACHE_F_VARY | ED_CACHE_F_VARIANT))
        || c->hdr.lifetime <= 0 || ed_pc_ttl(&c->hdr) <= 0
        || c->hdr.body_off > ED_CACHE_READ || c->read < c->hdr.body_off
        || ed_pc_hit_memory + c->hdr.body_off > ED_PC_HIT_MEMORY
        || fstat(c->fd, &st) != 0
        || (uint64_t)st.st_size != c->hdr.body_off + c->hdr.body_len
        || ed_http_parse_response(c->prefix + c->hdr.head_off,
                                  c->hdr.head_len, &h, hdrs,
                                  ED_CACHE_MAX_HDRS) != ED_OK)
    {
        return;
    }
    e = calloc(1, sizeof(ed_pc_hit_t)
                  + (h.nheaders + 1) * sizeof(ed_http_header_t));
    path = ed_pc_file_path(r->pool, c->cache, c->main_hash, NULL, NULL);
    whole = c->read == (size_t)st.st_size;
    if (e == NULL || path == NULL
        || ed_http_file_adopt(path, strlen(path), c->fd, &st,
                              whole ? c->prefix : NULL, &f) != ED_OK)
    {
        free(e);
        return;
    }
    /* The descriptor is the open-file cache's now, held by r. */
    c->fd = -1;
    c->file = f;
    if (f->content == NULL) {
        own = malloc((size_t)c->hdr.body_off);
        if (own == NULL) {
            free(e);
            ed_http_file_drop(f);
            return;
        }
        memcpy(own, c->prefix, (size_t)c->hdr.body_off);
        e->own = (size_t)c->hdr.body_off;
        ed_pc_hit_memory += e->own;
    }
    e->prefix = own ? own : f->content;
    e->read = own ? e->own : (size_t)f->size;
    /* The head parsed once, the fields a hit sends picked out. */
    e->hdrs = (ed_http_header_t *)(e + 1);
    for (i = 0; i < h.nheaders; i++) {
        if (ed_http_upstream_skip_response_header(&h, &h.headers[i].name)
            || ed_http_str_eq_lit(&h.headers[i].name, "age"))
        {
            continue;
        }
        fh = &e->hdrs[e->nhdrs++];
        fh->name.data = ed_pc_rebase(h.headers[i].name.data, c->prefix,
                                     e->prefix);
        fh->name.len = h.headers[i].name.len;
        fh->value.data = ed_pc_rebase(h.headers[i].value.data, c->prefix,
                                      e->prefix);
        fh->value.len = h.headers[i].value.len;
    }
    e->content_type.len = h.content_type.len;
    e->content_type.data = h.content_type.data
                           ? ed_pc_rebase(h.content_type.data, c->prefix,
                                          e->prefix)
                           : NULL;
    c->prefix = e->prefix;
    c->read = e->read;
    e->file = f;
    e->cache = c->cache;
    e->gen = gen;
    e->hdr = c->hdr;
    memcpy(e->hash, c->main_hash, ED_CACHE_HASH_LEN);
    f->aux = e;
    f->aux_free = ed_pc_hit_free;
    e->fnv = ed_pc_hit_fnv(c->cache, c->key.data, c->key.len);
    b = &ed_pc_hits[e->fnv % ED_PC_HIT_BUCKETS];
    for (o = *b; o; o = o->hnext) {
        if (o->fnv == e->fnv && o->cache == e->cache
            && o->hdr.key_len == e->hdr.key_len
            && memcmp(o->prefix + o->hdr.key_off, e->prefix + e->hdr.key_off,
                      e->hdr.key_len) == 0)
        {
            /* An older version of the key's file. */
            ed_pc_hit_forget(o);
            break;
        }
    }
    e->hnext = *b;
    *b = e;
    e->linked = 1;
    ed_pc_hit_count++;
    if (!ed_timer_active(&ed_pc_hit_sweeper)) {
        ed_pc_hit_sweeper.handler = ed_pc_hit_sweep;
        ed_timer_add(ed_worker->loop, &ed_pc_hit_sweeper, ED_PC_HIT_SWEEP);
    }
}

int
ed_pc_hit_head(ed_http_request_t *r, const ed_pc_hit_t *e)
{
    size_t i;

    r->content_type = e->content_type;
    for (i = 0; i < e->nhdrs; i++) {
        if (ed_http_add_header(r, e->hdrs[i].name.data, e->hdrs[i].name.len,
                               e->hdrs[i].value.data, e->hdrs[i].value.len)
            != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ED_OK;
}
