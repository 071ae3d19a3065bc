/* What the parts of the cache share (ed_http_cache_lookup.c: the
 * lookup and serving; ed_http_cache_store.c: storing, PURGE;
 * ed_http_cache_bg.c: background refreshes). */
#ifndef ED_HTTP_CACHE_INT_H
#define ED_HTTP_CACHE_INT_H

#include "ed_http_cache_req.h"

#define ed_cpyn(p, s, n) ((char *)memcpy(p, s, n) + (n))

#define ED_CACHE_READ      16384  /* first read of an entry */
/* The body of an entry is written in pieces that end at multiples of
 * ED_CACHE_STAGE in its file, not as the upstream's reads come: the page
 * cache then holds it in large folios (a write makes folios no larger
 * than itself), and a hit's sendfile costs what a static file's does
 * (2,560 pages of 4 KiB for 10 MiB written in 16 KiB reads make
 * filemap_get_read_batch and the page references of every hit several
 * times dearer). Bytes held are written after ED_CACHE_STAGE_MSEC
 * anyway, for the requests following the file. */
#define ED_CACHE_STAGE      (256 * 1024)
#define ED_CACHE_STAGE_MSEC 10
/* What a worker's fills hold back together at most (64 of them with a
 * whole stage): past it a fill writes its body as it comes. */
#define ED_CACHE_STAGE_BUDGET ((size_t)16 << 20)
extern size_t ed_pc_staging;
#define ED_CACHE_MAX_HDRS  100
#define ED_CACHE_EVICT     16     /* files removed per store, at most */
/* A client moved to memory after a write failure may be this far behind
 * the fetch (ed_http_cache_store.c). */
#define ED_CACHE_RESPOOL_MAX  (16 * 1024 * 1024)

/* Wall clock time in msec, for PURGE against fetches under way. */
#define ed_pc_now_ms() ((int64_t)ed_time_sec * 1000 + ed_time_msec_part)

/* Serial numbers of this process's temp files (.tmp/<pid>.<serial>). */
extern unsigned ed_pc_tmp_serial;

/* path/<levels>/<32 hex> of hash in pool memory, with the ends of its
 * directories in dirs[0..*ndirs) (both may be NULL). NULL on ENOMEM. */
char *ed_pc_file_path(ed_pool_t *pool, const ed_http_cache_t *cache,
                      const uint8_t *hash, size_t *dirs, unsigned *ndirs);
/* Removes the files of hashes[0..n) (evicted). */
void ed_pc_unlink_all(ed_http_request_t *r, const ed_http_cache_t *cache,
                      const uint8_t *hashes, size_t n);
/* Gives up the temp file and the key's fill (hfm_until > 0: the key
 * is hit-for-miss until then). */
void ed_pc_drop_tmp(ed_http_cache_req_t *c, int64_t hfm_until);
/* Releases the key's fill (hfm_until as ed_pc_drop_tmp), the temp
 * file kept. */
void ed_pc_unlock(ed_http_cache_req_t *c, int64_t hfm_until);
/* Gives the client that handed c its fill the fetch's attempts. */
void ed_pc_tell_tries(ed_http_cache_req_t *c);
/* Tells the client that handed c its fill events (ED_CACHE_WAIT_*). */
void ed_pc_tell(ed_http_cache_req_t *c, unsigned events);
/* The request pool's cleanup of c. */
void ed_pc_cleanup(void *data);
/* Opens and checks the entry of hash (c->fd, c->hdr, c->prefix, its key
 * that of c): ED_OK, ED_DECLINED (none, bad, another key's), ED_ERROR. */
int ed_pc_open(ed_http_request_t *r, ed_http_cache_req_t *c,
               const uint8_t *hash);
/* Seconds the entry is still fresh for (negative: stale). */
int64_t ed_pc_ttl(const ed_http_cache_hdr_t *h);
/* Adds a response header, its value copied. ED_OK or ED_ERROR. */
int ed_pc_add(ed_http_request_t *r, const char *name, const char *value);
/* Serves the entry open in c with that Cache-Status. ED_OK, ED_ERROR or
 * a status. */
int ed_pc_serve(ed_http_request_t *r, ed_http_cache_req_t *c,
                const char *cache_status);
/* The request's variant for the Vary names (c->variant) and its hash. */
int ed_pc_variant_hash(ed_http_request_t *r, ed_http_cache_req_t *c,
                       const ed_str_t *names, uint8_t *hash);
/* The entry for the request, through a Vary marker: ED_OK (c->fd),
 * ED_DECLINED (a miss, c->fwd says which), ED_ERROR. */
int ed_pc_find(ed_http_request_t *r, ed_http_cache_req_t *c);
/* c->tmp_path for c->serial (a new one when 0). ED_OK or ED_ERROR. */
int ed_pc_tmp_name(ed_http_request_t *r, ed_http_cache_req_t *c);
/* A write to a cache file failed with err: logged once until one
 * works. */
void ed_pc_write_failed(ed_http_request_t *r, ed_http_cache_req_t *c,
                        int err);
/* Writes all of p[0..n) to fd: 0 or errno. */
int ed_pc_write(int fd, const char *p, size_t n);
/* Writes the body bytes c holds back (c->staged) to its temp file.
 * ED_OK, or ED_DECLINED when the file was given up (a write failed). */
int ed_pc_stage_flush(ed_http_cache_req_t *c);
/* Writes the entry open in c (c->fd, c->hdr: its body) anew with
 * prefix[0..len) (sealed) in front of its body, renamed over it
 * (ed_http_cache_update.c). ED_OK, ED_DECLINED (not written: a
 * write failed, logged once; or the key was purged or stored anew),
 * ED_ERROR; or ED_AGAIN: a body over one step of copying goes on from
 * posted events, and done gets the result (c->update meanwhile;
 * ed_pc_update_cancel stops it). */
typedef void (*ed_pc_update_pt)(ed_http_request_t *r, ed_http_cache_req_t *c,
                                int rc);
int ed_pc_update_file(ed_http_request_t *r, ed_http_cache_req_t *c,
                      const char *prefix, size_t len, ed_pc_update_pt done);
void ed_pc_update_cancel(ed_http_cache_req_t *c);
/* A file just put in place for c's key counted in the index (disk:
 * its allocated bytes); the entries that pushes out removed. */
void ed_pc_counted(ed_http_request_t *r, ed_http_cache_req_t *c,
                   int64_t disk);
/* PURGE (purge: true): ED_OK (answered), or a status. */
int ed_pc_purge(ed_http_request_t *r, ed_http_cache_req_t *c);
/* Starts a fetch of c's key detached from r, which hands it its fill:
 * a refresh (background_update), or with handed a miss's fetch that r
 * follows (c->fill, and the fetch's initiator, link them). ED_OK, or
 * ED_ERROR (r keeps the fill and fetches itself). */
int ed_pc_background(ed_http_request_t *r, ed_http_cache_req_t *c,
                     bool handed);
/* The stored head of c->prefix into r's headers (and content type).
 * ED_OK, ED_ERROR, or ED_DECLINED when it does not parse. */
int ed_pc_head(ed_http_request_t *r, ed_http_cache_req_t *c);
/* A waiter told of events on the fetch's temp file: ED_AGAIN (it goes
 * on: waiting for the head, or streaming), ED_DECLINED (no streaming:
 * wait for the entry), or the end of the streamed response (ED_OK,
 * ED_HTTP_CUT, ED_ERROR). */
int ed_pc_stream(ed_http_request_t *r, ed_http_cache_req_t *c,
                 unsigned events);
/* The client of a fill c writing a private file took some of its lag:
 * the fetch reads on if it waited for that. */
void ed_pc_fill_drained(ed_http_cache_req_t *c);
/* A refresh's own start: ED_DECLINED (go upstream) or ED_ERROR. */
int ed_pc_bg_start(ed_http_request_t *r, ed_http_cache_req_t *c);

/* The worker's checked entries (ed_http_cache_hit.c). */
typedef struct ed_pc_hit_s ed_pc_hit_t;
/* c->main_hash for c->key: the one of a checked entry of the key (then
 * c->hit is that entry and c->file its file, held, for ed_pc_hit_find to
 * confirm), else its SHA-256. ED_OK or ED_ERROR. */
int ed_pc_key_hash(ed_http_cache_req_t *c);
/* Whether c->hit may serve the key whose index generation is gen (0: no
 * file known): ED_OK with c->file, c->hdr, c->prefix, c->read (a fresh
 * entry, no Vary marker); ED_DECLINED (open the file as on a first use;
 * an entry no longer current is dropped, c->file released). c->hit is
 * NULL after. */
int ed_pc_hit_find(ed_http_cache_req_t *c, uint32_t gen);
/* The key's entry was just opened and checked into c (c->fd) while the
 * index gave gen: when fresh and not a Vary marker nor variant, its
 * descriptor goes to the open-file cache (c->file, c->fd -1) and its
 * head into the worker's table (c->hit). */
void ed_pc_hit_keep(ed_http_request_t *r, ed_http_cache_req_t *c,
                    uint32_t gen);
/* The stored head's fields of a checked entry into r's headers (and its
 * content type). ED_OK or ED_ERROR. */
int ed_pc_hit_head(ed_http_request_t *r, const ed_pc_hit_t *e);

#endif /* ED_HTTP_CACHE_INT_H */
