/* The HTTP cache of proxied responses (cache.md): the `caches` block and
 * its shared index (ed_http_cache_conf.c, ed_http_cache_index.c), the
 * on-disk entry format (ed_http_cache_file.c) and the rules of what is
 * stored and for how long (ed_http_cache_policy.c). The parts without
 * I/O are pure so that unit tests and a fuzz target use them alone; the
 * proxy's use of them is src/http/ed_http_cache_lookup.c. */
#ifndef ED_HTTP_CACHE_H
#define ED_HTTP_CACHE_H

#include "ed_http.h"
#include "ed_shm.h"
#include "ed_loop.h"

#include <stdatomic.h>

/* Keys longer than this are not cached (cache.md, Lookup). */
#define ED_CACHE_KEY_MAX    4096
/* Bounds of the parts before the body, checked on every read. */
#define ED_CACHE_VARY_MAX   8192
#define ED_CACHE_HEAD_MAX   65536
/* The head of a response not stored, in the private file its one client
 * follows: as large as a module's buffer_size may make it (that client
 * reads up to 1 MiB of prefix). */
#define ED_CACHE_SPOOL_HEAD_MAX  (1024 * 1024 - 2 * ED_CACHE_KEY_MAX)
#define ED_CACHE_HASH_LEN   16          /* bytes of SHA-256 kept */

/* File format. */

#define ED_CACHE_MAGIC      "EDDYC\r\n\032"
#define ED_CACHE_VERSION    1

/* Entry flags. */
#define ED_CACHE_F_VARY         0x01  /* a Vary marker: names, no head */
#define ED_CACHE_F_VARIANT      0x02  /* one variant of a Vary'd key */
#define ED_CACHE_F_MUST_REVAL   0x04  /* must-revalidate, proxy-revalidate,
                                       * no-cache: never served stale */
#define ED_CACHE_F_S_MAXAGE     0x08  /* stale only in its own windows */
#define ED_CACHE_F_ALL          0x0f

/* The fixed header at offset 0, in the host's byte order (the files
 * are the host's own). Every offset and length is checked against the
 * others and the file's size before anything else is read. */
typedef struct {
    char     magic[8];
    uint32_t version;
    uint32_t crc;            /* CRC32C of [0, body_off) with this 0 */
    int64_t  stored;         /* unix time the response was received */
    int64_t  initial_age;    /* RFC 9111 4.2.3 corrected_initial_age */
    int64_t  lifetime;       /* freshness lifetime, seconds */
    int64_t  last_modified;  /* unix time, -1: none */
    int64_t  swr;            /* stale-while-revalidate, -1: none */
    int64_t  sie;            /* stale-if-error, -1: none */
    uint32_t flags;          /* ED_CACHE_F_* */
    uint16_t status;
    uint16_t etag_len;       /* ETag value (with quotes) in the head */
    uint32_t key_off;
    uint32_t key_len;
    uint32_t vary_off;
    uint32_t vary_len;
    uint32_t head_off;
    uint32_t head_len;
    uint32_t etag_off;       /* absolute; 0 with etag_len 0 */
    uint32_t reserved;
    uint64_t body_off;
    uint64_t body_len;
} ed_http_cache_hdr_t;

/* Verdicts of ed_http_cache_hdr_check. */
enum {
    ED_CACHE_HDR_OK = 0,
    ED_CACHE_HDR_SHORT,      /* fewer bytes than the header */
    ED_CACHE_HDR_MAGIC,
    ED_CACHE_HDR_VERSION,
    ED_CACHE_HDR_LAYOUT,     /* offsets, lengths or values out of bounds */
    ED_CACHE_HDR_SIZE,       /* the file's size disagrees */
    ED_CACHE_HDR_CRC
};

/* CRC32C (Castagnoli) of p[0..n) continuing crc (0 to start). */
uint32_t ed_http_cache_crc32c(uint32_t crc, const void *p, size_t n);

/* Checks buf[0..len), the start of a cache file of file_size bytes:
 * magic, version, layout and size first (from the fixed header alone);
 * then, when len reaches body_off, the CRC. *hdr gets the header (a
 * copy: buf need not be aligned). Returns ED_CACHE_HDR_OK, or
 * ED_CACHE_HDR_SHORT when len is under the fixed header or under
 * body_off (read hdr->body_off bytes and call again), or the fault. */
int ed_http_cache_hdr_check(const void *buf, size_t len, uint64_t file_size,
                            ed_http_cache_hdr_t *hdr);
/* The same for a file a fill's client follows: with any_status, the
 * private file of a response not stored may hold a 206 or a 304 (an
 * upstream's answer to that one fetch), which no entry holds. */
int ed_http_cache_hdr_followed(const void *buf, size_t len,
                               uint64_t file_size, ed_http_cache_hdr_t *hdr,
                               bool any_status);
/* The same for a file still being written (request collapsing): its
 * header laid out (its body_len, the expected length or UINT64_MAX, and
 * its CRC are not final yet), and the whole prefix in buf[0..len);
 * any_status as above. */
int ed_http_cache_hdr_partial(const void *buf, size_t len,
                              ed_http_cache_hdr_t *hdr, bool any_status);
/* A word for a verdict, for log lines: "bad CRC". */
const char *ed_http_cache_hdr_error(int rc);

/* Lays out an entry's prefix (header, key, vary, head) in pool memory:
 * hdr's times, status, flags and validators are the caller's; offsets,
 * lengths, magic and version are set here, body_len 0 and the CRC left
 * for ed_http_cache_hdr_seal. etag, when not NULL, points into head.
 * NULL on ENOMEM or when a part is over its bound. */
char *ed_http_cache_prefix(ed_pool_t *pool, ed_http_cache_hdr_t *hdr,
                           const ed_str_t *key, const ed_str_t *vary,
                           const ed_str_t *head, const ed_str_t *etag,
                           size_t *len);
/* The same for the private file of a response not stored: a head up to
 * ED_CACHE_SPOOL_HEAD_MAX. */
char *ed_http_cache_spool_prefix(ed_pool_t *pool, ed_http_cache_hdr_t *hdr,
                                 const ed_str_t *key, const ed_str_t *head,
                                 const ed_str_t *etag, size_t *len);
/* Sets body_len and the CRC in the prefix (and *hdr) once the body is
 * known. */
void ed_http_cache_hdr_seal(char *prefix, ed_http_cache_hdr_t *hdr,
                            uint64_t body_len);

/* Names: the key's 128-bit hash (SHA-256's first 16 bytes) and its 32
 * hex digits. ED_OK or ED_ERROR. */
int ed_http_cache_hash(const char *key, size_t len,
                       uint8_t out[ED_CACHE_HASH_LEN]);
void ed_http_cache_hex(const uint8_t hash[ED_CACHE_HASH_LEN], char *out);

/* Configuration. */

typedef struct ed_http_cache_zone_s ed_http_cache_zone_t;
typedef struct ed_http_cache_s ed_http_cache_t;

/* One cache of the `caches` block. */
struct ed_http_cache_s {
    ed_node_t            *node;
    ed_str_t              path;          /* absolute */
    size_t                max_size;
    size_t                min_free;
    ed_msec_t             inactive;
    size_t                keys_zone;
    ed_str_t              levels_text;
    size_t                max_entry_size;

    ed_str_t              name;
    unsigned              levels[3];     /* hex digits per level */
    unsigned              nlevels;
    ed_http_cache_zone_t *zone;
    time_t                evict_forced;  /* the manager's last forced
                                          * batch (a worker asked) */
};

/* path/<levels>/<32 hex> of hash into buf (size bytes). Its length, 0
 * when it does not fit. */
size_t ed_http_cache_path(const ed_http_cache_t *c, const uint8_t *hash,
                          char *buf, size_t size);
/* The hash a file name of 32 hex digits stands for. ED_OK or ED_ERROR. */
int ed_http_cache_unhex(const char *name, uint8_t *hash);

/* The caches of a cycle (*n of them). */
ed_http_cache_t **ed_http_cache_all(ed_cycle_t *cycle, size_t *n);

/* The cache manager process (ed_http_cache_manager.c), run by the
 * master like the OCSP helpers: started (again) for each cycle in
 * force, respawned when it dies, stopped at exit. */
void ed_http_cache_manager_start(ed_loop_t *loop, ed_cycle_t *cycle,
                                 char *const *argv);
/* A worker asks the manager to evict from the cache of zone z now, not
 * at its next round (a write failed: the disk is full): a flag in the
 * zone and a ring of the manager's eventfd, made by the master before
 * it forks workers and manager. */
void ed_http_cache_manager_ask(ed_http_cache_zone_t *z);
/* For each child the master reaps: true when it was the manager. */
bool ed_http_cache_manager_reaped(pid_t pid, int status);
void ed_http_cache_manager_stop(void);

/* cache_valid: a lifetime by status; status 0 is `any`. */
typedef struct {
    int      status;
    int64_t  sec;
} ed_http_cache_valid_t;

/* The cache_lock block of a proxy. */
typedef struct {
    ed_node_t  *node;
    int         enabled;
    ed_msec_t   timeout;
} ed_http_cache_lock_t;

/* cache_ignore_headers bits. */
#define ED_CACHE_IGN_CACHE_CONTROL 0x01
#define ED_CACHE_IGN_EXPIRES       0x02
#define ED_CACHE_IGN_VARY          0x04
#define ED_CACHE_IGN_SET_COOKIE    0x08

/* cache_methods bits. */
#define ED_CACHE_M_GET  0x01
#define ED_CACHE_M_HEAD 0x02

/* use_stale bits. */
#define ED_CACHE_STALE_ERROR    0x001
#define ED_CACHE_STALE_TIMEOUT  0x002
#define ED_CACHE_STALE_INVALID  0x004
#define ED_CACHE_STALE_UPDATING 0x008
#define ED_CACHE_STALE_500      0x010
#define ED_CACHE_STALE_502      0x020
#define ED_CACHE_STALE_503      0x040
#define ED_CACHE_STALE_504      0x080
#define ED_CACHE_STALE_403      0x100
#define ED_CACHE_STALE_404      0x200
#define ED_CACHE_STALE_429      0x400

extern ed_module_t ed_http_cache_module;

/* The cache of that name in the configuration being loaded, or NULL;
 * *closest gets the nearest name for "did you mean" (NULL: none). */
ed_http_cache_t *ed_http_cache_find(ed_conf_t *cf, const ed_str_t *name,
                                    const char **closest);

/* Setters of the proxy's cache keys (ed_http_cache_conf.c). */
const char *ed_http_cache_set_valid(ed_conf_t *cf, const ed_key_t *key,
                                    ed_node_t *node, void *conf);
const char *ed_http_cache_set_methods(ed_conf_t *cf, const ed_key_t *key,
                                      ed_node_t *node, void *conf);
const char *ed_http_cache_set_templates(ed_conf_t *cf, const ed_key_t *key,
                                        ed_node_t *node, void *conf);
const char *ed_http_cache_set_ignore(ed_conf_t *cf, const ed_key_t *key,
                                     ed_node_t *node, void *conf);
const char *ed_http_cache_set_use_stale(ed_conf_t *cf, const ed_key_t *key,
                                        ed_node_t *node, void *conf);
extern const ed_conf_block_t ed_http_cache_lock_block;

/* The shared index (ed_http_cache_index.c): hash -> entry, LRU, bounded
 * by keys_zone. Every call holds the zone's lock only over memory. */

/* Bytes of keys_zone per index entry ("about 8000 per MiB"). */
#define ED_CACHE_NODE_BYTES 128

/* Makes the index in a zone of size bytes (shared memory, zeroed).
 * ED_OK or ED_ERROR. */
int ed_http_cache_index_init(ed_http_cache_zone_t *z, size_t size);
/* The zone's size for keys_zone bytes, and how many entries it holds. */
size_t ed_http_cache_zone_size(size_t keys_zone);
size_t ed_http_cache_zone_entries(const ed_http_cache_zone_t *z);

/* A request looked the key up at now: the entry's use count (made if
 * new; a full zone first drops its least recently used entry, whose
 * hash goes to *dropped with *ndropped 1 when it had a file). Returns
 * the uses, 0 when the zone is not usable. */
uint32_t ed_http_cache_index_use(ed_http_cache_zone_t *z,
                                 const uint8_t *hash, int64_t now,
                                 uint8_t *dropped, size_t *ndropped);
/* The same, with *gen the entry's generation while a file is known for
 * it (stored or loaded, not purged since), else 0. A worker may keep
 * what it checked of the file while the generation stays the same: it
 * changes with each store, load, PURGE, and when the entry is dropped
 * and made again. */
uint32_t ed_http_cache_index_use_gen(ed_http_cache_zone_t *z,
                                     const uint8_t *hash, int64_t now,
                                     uint32_t *gen, uint8_t *dropped,
                                     size_t *ndropped);
/* The generation ed_http_cache_index_use_gen would give for hash, the
 * entry left as it is (not used, not made): 0 when no file is known. */
uint32_t ed_http_cache_index_gen(ed_http_cache_zone_t *z,
                                 const uint8_t *hash);
/* A file of fsize bytes (on disk) is now stored for hash. Then, while
 * the stored bytes exceed max_size, or entries are unused since
 * now - inactive, least recently used entries (not hash) are taken out:
 * their hashes go to out[0..max), the count is returned; the caller
 * removes the files, outside the lock. */
size_t ed_http_cache_index_stored(ed_http_cache_zone_t *z,
                                  const uint8_t *hash, int64_t fsize,
                                  int64_t now, uint64_t max_size,
                                  int64_t inactive, uint8_t *out,
                                  size_t max);
/* The cache manager: takes entries out as ed_http_cache_index_stored
 * does, and at least force more (min_free). */
size_t ed_http_cache_index_evict(ed_http_cache_zone_t *z, int64_t now,
                                 uint64_t max_size, int64_t inactive,
                                 size_t force, uint8_t *out, size_t max);
/* The cache manager found the file of hash (fsize bytes on disk, last
 * written at used) while loading: counted unless known. True when it
 * was new to the index. */
bool ed_http_cache_index_load(ed_http_cache_zone_t *z, const uint8_t *hash,
                              int64_t fsize, int64_t used, uint8_t *dropped,
                              size_t *ndropped);
/* After loading: the entry of hash, when still unused since it was
 * loaded with `used`, goes to the least recent end of the LRU. Called
 * from the newest file to the oldest, it orders the loaded entries by
 * their files' times, behind every entry used since. */
void ed_http_cache_index_sink(ed_http_cache_zone_t *z, const uint8_t *hash,
                              int64_t used);
/* cache_lock: one fetch per key. Takes the key's fill for process pid
 * and its temp file serial until `until` (ED_OK); or ED_AGAIN with the
 * filler's pid and serial in *opid, *oserial (its temp file's end wakes
 * the waiters); or ED_DECLINED while the key is hit-for-miss (go
 * upstream without waiting). *dropped as ed_http_cache_index_use. */
int ed_http_cache_index_lock(ed_http_cache_zone_t *z, const uint8_t *hash,
                             int64_t now, int64_t until, int32_t pid,
                             uint32_t serial, int32_t *opid,
                             uint32_t *oserial, uint8_t *dropped,
                             size_t *ndropped);
/* Releases the fill taken by pid and serial; hfm_until > 0 makes the key
 * hit-for-miss until then (its response was not storable). */
void ed_http_cache_index_unlock(ed_http_cache_zone_t *z, const uint8_t *hash,
                                int32_t pid, uint32_t serial,
                                int64_t hfm_until);
/* PURGE of the key of hash at now_ms (unix msec): its entry stops
 * counting, and a fetch that began before then is not stored (its
 * commit asks ed_http_cache_index_purged: the time of the last PURGE,
 * 0: none). */
void ed_http_cache_index_purge(ed_http_cache_zone_t *z, const uint8_t *hash,
                               int64_t now_ms);
int64_t ed_http_cache_index_purged(ed_http_cache_zone_t *z,
                                   const uint8_t *hash);
/* The file of hash was found bad or removed: the entry goes. */
void ed_http_cache_index_remove(ed_http_cache_zone_t *z, const uint8_t *hash);
/* Counters for status and tests. */
void ed_http_cache_index_stats(ed_http_cache_zone_t *z, uint64_t *entries,
                               uint64_t *size, uint64_t *evictions);
/* Requests by $upstream_cache_status, for status. */
#define ED_CACHE_STATUSES 7
extern const char *const ed_http_cache_statuses[ED_CACHE_STATUSES];
void ed_http_cache_count(ed_http_cache_zone_t *z, const char *status);
uint64_t ed_http_cache_requests(ed_http_cache_zone_t *z, size_t status);
/* The flag of ed_http_cache_manager_ask: set, and taken (true when it
 * was set) by the manager. */
void ed_http_cache_evict_ask(ed_http_cache_zone_t *z);
bool ed_http_cache_evict_asked(ed_http_cache_zone_t *z);
/* "storing paused": true when this call is the one to log it (first
 * failure since the last success); ed_http_cache_write_ok clears it. */
bool ed_http_cache_write_failed(ed_http_cache_zone_t *z);
void ed_http_cache_write_ok(ed_http_cache_zone_t *z);

/* Waiting for another process's fetch (ed_http_cache_wait.c): woken by
 * inotify when the filler's temp file leaves path/.tmp/ (renamed into
 * place or removed), never by polling. */
typedef struct ed_http_cache_waiter_s ed_http_cache_waiter_t;

/* What a waiter is told (bits). */
#define ED_CACHE_WAIT_MODIFIED 0x01   /* the temp file was written */
#define ED_CACHE_WAIT_MOVED    0x02   /* renamed into place: complete */
#define ED_CACHE_WAIT_DELETED  0x04   /* removed: the fetch gave up */
#define ED_CACHE_WAIT_TIMEOUT  0x08
#define ED_CACHE_WAIT_GONE     (ED_CACHE_WAIT_MOVED | ED_CACHE_WAIT_DELETED)

struct ed_http_cache_waiter_s {
    ed_http_cache_waiter_t *next;
    ed_http_cache_waiter_t *prev;
    ed_http_cache_t        *cache;
    char                    name[32];   /* "<pid>.<serial>" */
    int                     wd;
    unsigned                events;     /* ED_CACHE_WAIT_* since the last
                                         * call of done */
    ed_defer_t              wake;
    ed_timer_t              timer;
    void                  (*done)(ed_http_cache_waiter_t *w,
                                  unsigned events);
    void                   *data;
    unsigned                queued:1;
};

/* Starts watching .tmp/<name> of cache: done(w, events) is called from
 * the loop for what happened to it (written, renamed, removed: a file
 * gone before the watch counts as removed), or after timeout ms without
 * a call of ed_http_cache_wait_touch (ED_CACHE_WAIT_TIMEOUT). The
 * waiter stays until ed_http_cache_wait_cancel. ED_OK or ED_ERROR (no
 * inotify: the caller goes on without waiting). */
int ed_http_cache_wait(ed_http_cache_waiter_t *w, ed_msec_t timeout);
/* A waiter told by its own process (ed_http_cache_wait_notify), not by
 * inotify, without a timeout until ed_http_cache_wait_touch. */
void ed_http_cache_wait_local(ed_http_cache_waiter_t *w);
/* Tells w events (from the loop, as inotify would). */
void ed_http_cache_wait_notify(ed_http_cache_waiter_t *w, unsigned events);
/* Forgets the events not yet told (the file followed changed). */
void ed_http_cache_wait_reset(ed_http_cache_waiter_t *w);
/* Arms the timeout again (progress). */
void ed_http_cache_wait_touch(ed_http_cache_waiter_t *w, ed_msec_t timeout);
/* Stops watching. */
void ed_http_cache_wait_cancel(ed_http_cache_waiter_t *w);
/* Closes the worker's inotify descriptor (exit_worker). */
void ed_http_cache_wait_exit(void);

/* Storage rules (ed_http_cache_policy.c). */

/* What a response head says about storing it. */
typedef struct {
    const char *detail;        /* NULL: storable; else why not */
    int64_t     lifetime;      /* seconds */
    int64_t     initial_age;
    int64_t     last_modified; /* -1: none */
    int64_t     swr;           /* -1: none */
    int64_t     sie;
    uint32_t    flags;         /* ED_CACHE_F_MUST_REVAL, _S_MAXAGE */
    ed_str_t    etag;          /* empty: none */
    ed_str_t    vary;          /* the Vary names, lowercase, ", "-joined;
                                * empty: none */
    unsigned    set_cookie:1;  /* the head has one (stored without) */
} ed_http_cache_verdict_t;

/* The request side of the decision. */
typedef struct {
    const ed_http_cache_valid_t *valid;   /* cache_valid */
    size_t                       nvalid;
    int                          ignore;  /* ED_CACHE_IGN_* */
    bool                         authorization;
    time_t                       now;
} ed_http_cache_rules_t;

/* Decides whether a response (status, hdrs[0..n)) is stored and for
 * how long (cache.md, What is stored): pool holds the vary string.
 * Always fills *v; v->detail says why not. */
void ed_http_cache_decide(ed_pool_t *pool, const ed_http_cache_rules_t *rules,
                          int status, const ed_http_header_t *hdrs, size_t n,
                          ed_http_cache_verdict_t *v);
/* RFC 9111 3.2 and 4.3.4: a stored head (head, its fields stored[]
 * parsed from it) updated by the fields upd[] of the 304 that
 * revalidated it. Each 304 field replaces the stored ones of its name,
 * but those eddy never stores (hop-by-hop, Content-Length, Age,
 * Set-Cookie, Date, Server) and those the stored body depends on
 * (Content-Encoding, Content-Range, Vary): the stored ones stay. out
 * gets the new head (status line kept, empty line at the end) in pool
 * memory, *etag its first ETag value (empty: none). ED_OK or ED_ERROR. */
int ed_http_cache_update_head(ed_pool_t *pool, const ed_str_t *head,
                              const ed_http_header_t *stored, size_t nstored,
                              const ed_http_header_t *upd, size_t nupd,
                              ed_str_t *out, ed_str_t *etag);
/* Whether a Cache-Control value (all fields joined) has directive dir;
 * *value gets its argument (quotes removed; empty when none). */
bool ed_http_cache_cc(const ed_http_header_t *hdrs, size_t n,
                      const char *dir, ed_str_t *value);
/* The variant string of a request for a Vary list (names as
 * ed_http_cache_decide gives them): "name: value\n" per name, values
 * of repeated fields joined with ", ", Accept-Encoding as its accepted
 * subset of br, gzip, zstd. Pool memory; ED_OK or ED_ERROR. */
int ed_http_cache_variant(ed_pool_t *pool, const ed_str_t *names,
                          const ed_http_header_t *hdrs, size_t n,
                          ed_str_t *out);
/* Whether a response's Content-Encoding is one the request's variant
 * stands for: false when names has Accept-Encoding and the response is
 * coded with anything outside the accepted subset the variant keys. */
bool ed_http_cache_coding_fits(const ed_str_t *names,
                               const ed_http_header_t *req, size_t nreq,
                               const ed_http_header_t *resp, size_t nresp);

#endif /* ED_HTTP_CACHE_H */
