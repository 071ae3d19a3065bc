/* The memory estimate -t prints and -T writes (operator.md, "Memory
 * budget"), and the warning when it exceeds the memory available.
 *
 * Sizes come from the binary's own structures and the configured counts
 * and sizes:
 *   - an idle plain connection is one ed_http_conn_t slot (connection
 *     blocks, ed_http_request.c): an idle keep-alive connection gives
 *     its read buffer back (ed_stream_release_buffer) and its request
 *     pool goes back to the worker's cache, so the slot is all it
 *     holds; the kernel's socket buffers are not counted;
 *   - an idle TLS connection adds ED_HTTP_MEMORY_TLS_CONN, measured once
 *     (see below);
 *   - fixed: the event loop (its epoll array), the first block of
 *     connection slots (ED_HTTP_CONN_BLOCK, 64 KiB, ed_http_request.c)
 *     and the worker's cache of request pools (ED_HTTP_POOL_CACHE pools
 *     of ED_HTTP_POOL_SIZE); the configuration, its regexes and the
 *     MIME table are made by the master before the fork and shared
 *     copy-on-write, so they are not counted per worker (nor does the
 *     estimate depend on how the file is written: -T's output gives
 *     the same estimate as its input);
 *   - upstream keep-alive: keepalive idle ed_http_upstream_conn_t per
 *     group; open_file_cache: max entries and the bytes of small files
 *     held in memory (ED_STATIC_INLINE_MAX each, ED_STATIC_MEMORY in
 *     all);
 *   - per active request: the head buffer (max_header_size), the
 *     proxy's two buffers (buffer_size each way), cgi's three (the
 *     script's head, a body of unknown length, stdout), fastcgi's three
 *     (the head, the body kept or learned, the client's queue) and a
 *     deflate
 *     stream
 *     (zlib's documented 2^(windowBits+2) + 2^(memLevel+9));
 *   - shared memory: each mapping page-rounded.
 *
 * ED_HTTP_MEMORY_TLS_CONN is what OpenSSL keeps for an idle TLS
 * connection (the SSL object, its session, cipher and handshake state;
 * the record buffers are released, SSL_MODE_RELEASE_BUFFERS in
 * ed_tls.c), measured once: with OpenSSL 3.0 on x86-64, a worker's
 * Private_Clean + Private_Dirty (/proc/PID/smaps_rollup) grew by 18.7
 * to 19.6 KiB per connection over 2,000 TLS 1.3 connections (RSA 2048
 * certificate) each idle after one request, against 0.3 KiB for plain
 * ones; t/integration/test_dump.py repeats both measurements. */
#include "ed_http.h"
#include "ed_http_cache.h"
#include "ed_http_file_cache.h"
#include "ed_http_upstream.h"
#include "ed_loop.h"
#include "ed_rate.h"
#include "ed_stats.h"
#include "ed_tls.h"
#include "ed_tls_ocsp.h"
#include "../../modules/ed_http_static.h"

#define ED_HTTP_MEMORY_TLS_CONN  (19 * 1024)
/* ed_http_request.c: ED_HTTP_CONN_BLOCK, and ED_HTTP_POOL_CACHE pools
 * of ED_HTTP_POOL_SIZE. */
#define ED_HTTP_MEMORY_FIXED     (65536 + 64 * 4096)
/* zlib's deflate memory for windowBits 15, memLevel 8 (ed_http_gzip.c),
 * and its internal state. */
#define ED_HTTP_MEMORY_GZIP      ((1 << 17) + (1 << 17) + 6 * 1024)

typedef struct {
    ed_conf_t *cf;
    char      *shm;        /* the shared memory line so far */
    size_t     shm_len;
    size_t     shm_total;
    size_t     head;       /* largest max_header_size */
    size_t     proxy;      /* largest proxy buffer_size, 0: no proxy */
    size_t     cgi;        /* largest cgi buffer_size, 0: no cgi */
    size_t     fastcgi;    /* largest fastcgi buffer_size, 0: none */
    unsigned   gzip;
    unsigned   tls;
    unsigned   ocsp;       /* servers stapling OCSP responses */
    size_t     ups_servers;
    size_t     ups_keepalive;
    char       buf[4096];
} ed_mem_t;

/* "320 B", "5.7 KiB", "20 KiB", "3.1 MiB", "9.8 GiB". */
static const char *
ed_mem_size(char *buf, size_t size, double n)
{
    if (n < 1024) {
        snprintf(buf, size, "%.0f B", n);
    } else if (n < 1024 * 1024) {
        n /= 1024;
        snprintf(buf, size, n == (double)(int64_t)n ? "%.0f KiB"
                                                    : "%.1f KiB", n);
    } else if (n < 1024.0 * 1024 * 1024) {
        snprintf(buf, size, "%.1f MiB", n / (1024 * 1024));
    } else {
        snprintf(buf, size, "%.1f GiB", n / (1024.0 * 1024 * 1024));
    }
    return buf;
}

static size_t
ed_mem_page(size_t n)
{
    long page = sysconf(_SC_PAGESIZE);

    return ed_align(n, page > 0 ? (size_t)page : 4096);
}

static size_t
ed_mem_parse(const ed_node_t *n, size_t def)
{
    int64_t v;

    if (n == NULL || n->type != ED_NODE_SCALAR) {
        return def;
    }
    v = ed_conf_parse_size(n->value.data, n->value.len);
    return v < 0 ? def : (size_t)v;
}

static void
ed_mem_shm(ed_mem_t *m, const char *name, size_t bytes)
{
    char sz[32];
    int  n;

    bytes = ed_mem_page(bytes);
    m->shm_total += bytes;
    n = snprintf(m->buf + m->shm_len, sizeof(m->buf) - m->shm_len, "%s%s %s",
                 m->shm_len ? ", " : "", name,
                 ed_mem_size(sz, sizeof(sz), (double)bytes));
    if (n > 0 && (size_t)n < sizeof(m->buf) - m->shm_len) {
        m->shm_len += (size_t)n;
    }
}

/* The keys of one level (main, a server, a location) that count. */
static void
ed_mem_level(ed_mem_t *m, ed_node_t *map)
{
    ed_node_t *n, *v;
    char       name[1024];
    size_t     i;

    if (map == NULL || map->type != ED_NODE_MAP) {
        return;
    }
    m->head = ed_max(m->head, ed_mem_parse(ed_conf_get(map,
                                                       "max_header_size"),
                                           0));
    n = ed_conf_get(map, "proxy");
    if (n && n->type == ED_NODE_MAP) {
        m->proxy = ed_max(m->proxy, ed_mem_parse(ed_conf_get(n,
                                                             "buffer_size"),
                                                 64 * 1024));
    }
    n = ed_conf_get(map, "cgi");
    if (n && n->type == ED_NODE_MAP) {
        m->cgi = ed_max(m->cgi, ed_mem_parse(ed_conf_get(n, "buffer_size"),
                                             64 * 1024));
    }
    n = ed_conf_get(map, "fastcgi");
    if (n && n->type == ED_NODE_MAP) {
        m->fastcgi = ed_max(m->fastcgi, ed_mem_parse(ed_conf_get(n,
                                                                 "buffer_size"),
                                                     64 * 1024));
    }
    n = ed_conf_get(map, "gzip");
    if (n) {
        v = n->type == ED_NODE_MAP ? ed_conf_get(n, "enabled") : n;
        if (v && v->type == ED_NODE_SCALAR
            && ed_conf_parse_bool(v->value.data, v->value.len) == 1)
        {
            m->gzip = 1;
        }
    }
    n = ed_conf_get(map, "limit_req");
    if (n && n->type == ED_NODE_MAP) {
        /* One table per written block (ed_http_limit_req.c). */
        snprintf(name, sizeof(name), "limit_req %s:%u:%u", n->file,
                 n->line, n->col);
        ed_mem_shm(m, name, ed_rate_table_size());
    }
    n = ed_conf_get(map, "limit_conn");
    for (i = 0; n && n->type != ED_NODE_SCALAR
                && i < (n->type == ED_NODE_SEQ ? n->n : 1); i++)
    {
        /* One table of zone_size per written block
         * (ed_http_limit_conn.c). */
        v = n->type == ED_NODE_SEQ ? n->items[i] : n;
        snprintf(name, sizeof(name), "limit_conn %s:%u:%u", v->file,
                 v->line, v->col);
        ed_mem_shm(m, name, ed_mem_parse(v->type == ED_NODE_MAP
                                             ? ed_conf_get(v, "zone_size")
                                             : NULL,
                                         1024 * 1024));
    }
    n = ed_conf_get(map, "tls");
    if (n) {
        m->tls = 1;
        v = n->type == ED_NODE_MAP ? ed_conf_get(n, "ocsp_stapling") : NULL;
        if (v && v->type == ED_NODE_SCALAR
            && ed_conf_parse_bool(v->value.data, v->value.len) == 1)
        {
            m->ocsp++;
        }
    }
}

/* Walks servers and locations. */
static void
ed_mem_walk(ed_mem_t *m, ed_node_t *root)
{
    ed_node_t *servers, *locs, *ups, *g, *n;
    size_t     i, j;

    ed_mem_level(m, root);
    servers = ed_conf_get(root, "servers");
    for (i = 0; servers && servers->type == ED_NODE_SEQ && i < servers->n;
         i++)
    {
        ed_mem_level(m, servers->items[i]);
        locs = servers->items[i]->type == ED_NODE_MAP
               ? ed_conf_get(servers->items[i], "locations") : NULL;
        for (j = 0; locs && locs->type == ED_NODE_MAP && j < locs->n; j++) {
            ed_mem_level(m, locs->items[2 * j + 1]);
        }
    }
    ups = ed_conf_get(root, "upstreams");
    for (i = 0; ups && ups->type == ED_NODE_MAP && i < ups->n; i++) {
        g = ups->items[2 * i + 1];
        if (g->type != ED_NODE_MAP) {
            continue;
        }
        n = ed_conf_get(g, "servers");
        if (n) {
            m->ups_servers += n->type == ED_NODE_SEQ ? n->n : 1;
        }
        n = ed_conf_get(g, "keepalive");
        if (n && n->type == ED_NODE_SCALAR) {
            m->ups_keepalive += (size_t)ed_max(0, ed_atoi(n->value.data,
                                                          n->value.len));
        }
    }
}

/* The memory available: EDDY_MEMORY_LIMIT (bytes, or with k, m, g; for
 * tests), else the cgroup v2 limit of this process's cgroup, else
 * MemTotal. 0 when unknown or unlimited; *what names the source. */
static uint64_t
ed_mem_available(const char **what)
{
    char      line[4096], path[4200];
    const char *env = getenv("EDDY_MEMORY_LIMIT");
    uint64_t  v = 0;
    int64_t   n;
    FILE     *f;
    size_t    len;

    if (env && *env) {
        n = ed_conf_parse_size(env, strlen(env));
        *what = "EDDY_MEMORY_LIMIT";
        return n > 0 ? (uint64_t)n : 0;
    }
    f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "0::", 3) != 0) {
            continue;
        }
        len = strcspn(line + 3, "\n");
        line[3 + len] = '\0';
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max",
                 strcmp(line + 3, "/") == 0 ? "" : line + 3);
        fclose(f);
        f = fopen(path, "r");
        if (f && fgets(line, sizeof(line), f) && strncmp(line, "max", 3)) {
            v = strtoull(line, NULL, 10);
            *what = "cgroup memory.max";
        }
        break;
    }
    if (f) {
        fclose(f);
    }
    if (v) {
        return v;
    }
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "MemTotal:", 9) == 0) {
            v = strtoull(line + 9, NULL, 10) * 1024;
            *what = "MemTotal";
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return v;
}

int
ed_http_memory_check(ed_conf_t *cf)
{
    ed_http_core_main_conf_t *cmcf;
    ed_core_conf_t           *ccf = ed_core_conf(cf->cycle);
    ed_node_t                *w;
    ed_mem_t                  m;
    const char               *what = NULL;
    char                      a[32], b[32], c[32], e[32], out[8192];
    double                    conns, plain, tls, fixed, ka, ofc, worker;
    double                    total, empty;
    uint64_t                  avail;
    size_t                    ofc_max = 10000;
    int                       workers = cf->cycle->workers, len;
    ed_node_t                *ofcn, *n;
    ed_http_cache_t         **caches;
    size_t                    i, ncaches;
    char                      name[96];

    memset(&m, 0, sizeof(m));
    m.cf = cf;
    m.head = 8 * 1024;
    ed_mem_shm(&m, "stats", sizeof(ed_stats_t));
    ed_mem_walk(&m, cf->cycle->root);
    if (m.ups_servers) {
        ed_mem_shm(&m, "upstreams",
                   m.ups_servers * sizeof(ed_http_upstream_shm_t));
    }
    if (m.tls) {
        ed_mem_shm(&m, "tls_ticket_keys", ed_tls_keys_size());
    }
    if (m.ocsp) {
        ed_mem_shm(&m, "ocsp", m.ocsp * ed_tls_ocsp_shm_size());
    }
    caches = ed_http_cache_all(cf->cycle, &ncaches);
    for (i = 0; i < ncaches; i++) {
        /* Each cache's index: keys_zone bytes (ed_http_cache_conf.c). */
        snprintf(name, sizeof(name), "cache %.64s", caches[i]->name.data);
        ed_mem_shm(&m, name, ed_http_cache_zone_size(caches[i]->keys_zone));
    }
    ofcn = ed_conf_get(cf->cycle->root, "open_file_cache");
    if (ofcn && ofcn->type == ED_NODE_MAP) {
        n = ed_conf_get(ofcn, "max");
        ofc_max = n ? (size_t)ed_max(0, ed_atoi(n->value.data,
                                               n->value.len)) : ofc_max;
    } else if (ofcn && ofcn->type == ED_NODE_SCALAR
               && ed_conf_parse_bool(ofcn->value.data, ofcn->value.len) == 0)
    {
        ofc_max = 0;
    }

    conns = ccf->events->max_connections;
    plain = sizeof(ed_http_conn_t);
    tls = plain + ED_HTTP_MEMORY_TLS_CONN;
    fixed = (double)ED_HTTP_MEMORY_FIXED + (double)ed_loop_size();
    ka = (double)m.ups_keepalive * sizeof(ed_http_upstream_conn_t);
    ofc = (double)ofc_max * (sizeof(ed_http_file_t) + 64)
          + (double)ed_min((uint64_t)ofc_max * ED_STATIC_INLINE_MAX,
                           (uint64_t)ED_STATIC_MEMORY);
    worker = conns * (m.tls ? tls : plain) + fixed + ka + ofc;
    total = workers * worker + (double)m.shm_total;
    empty = total - workers * ofc;

    w = ed_conf_get(cf->cycle->root, "workers");
    len = snprintf(out, sizeof(out),
                   "# memory estimate: %d worker%s%s\n", workers,
                   workers == 1 ? "" : "s",
                   ccf->workers == 0 || w == NULL ? " (auto)" : "");
    len += snprintf(out + len, sizeof(out) - len,
                    "#   per worker, %.0f idle connections: %s plain (%s "
                    "each), ", conns,
                    ed_mem_size(a, sizeof(a), conns * plain),
                    ed_mem_size(b, sizeof(b), plain));
    len += snprintf(out + len, sizeof(out) - len,
                    "%s if all TLS (%s each)\n",
                    ed_mem_size(a, sizeof(a), conns * tls),
                    ed_mem_size(b, sizeof(b), tls));
    len += snprintf(out + len, sizeof(out) - len,
                    "#   per worker: fixed %s (events, connection and request "
                    "pools), upstream keep-alive %s, ",
                    ed_mem_size(a, sizeof(a), fixed),
                    ed_mem_size(b, sizeof(b), ka));
    if (ofc_max) {
        len += snprintf(out + len, sizeof(out) - len,
                        "open_file_cache up to %s\n",
                        ed_mem_size(a, sizeof(a), ofc));
    } else {
        len += snprintf(out + len, sizeof(out) - len,
                        "open_file_cache off\n");
    }
    len += snprintf(out + len, sizeof(out) - len,
                    "#   per active request, up to: %s head",
                    ed_mem_size(a, sizeof(a), (double)m.head));
    if (m.proxy) {
        len += snprintf(out + len, sizeof(out) - len, ", %s proxy buffers",
                        ed_mem_size(a, sizeof(a), 2.0 * m.proxy));
    }
    if (m.cgi) {
        /* The head, an unknown-length body, stdout's read buffer. */
        len += snprintf(out + len, sizeof(out) - len, ", %s cgi buffers",
                        ed_mem_size(a, sizeof(a), 3.0 * m.cgi));
    }
    if (m.fastcgi) {
        /* The response head, the body kept for a resend (or read to
         * learn its length), the queue toward the client. */
        len += snprintf(out + len, sizeof(out) - len, ", %s fastcgi buffers",
                        ed_mem_size(a, sizeof(a), 3.0 * m.fastcgi));
    }
    if (m.gzip) {
        len += snprintf(out + len, sizeof(out) - len, ", %s gzip",
                        ed_mem_size(a, sizeof(a), ED_HTTP_MEMORY_GZIP));
    }
    len += snprintf(out + len, sizeof(out) - len,
                    "\n#   shared memory: %.*s\n", (int)m.shm_len, m.buf);
    len += snprintf(out + len, sizeof(out) - len,
                    "#   total, max_connections idle%s: %s (%d × %s + %s); "
                    "%s with an empty file cache\n",
                    m.tls ? " and all TLS" : "",
                    ed_mem_size(a, sizeof(a), total), workers,
                    ed_mem_size(b, sizeof(b), worker),
                    ed_mem_size(c, sizeof(c), (double)m.shm_total),
                    ed_mem_size(e, sizeof(e), empty));
    cmcf = cf->cycle->main_conf[ed_http_core_module.index];
    cmcf->memory = ed_pstrdup(cf->pool, out,
                              ed_min((size_t)len, sizeof(out) - 1));
    if (cmcf->memory == NULL) {
        return ed_conf_error(cf, NULL, "out of memory");
    }
    avail = ed_mem_available(&what);
    if (avail && total > (double)avail) {
        ed_conf_warn(cf, NULL, "estimated memory %s exceeds the %s "
                     "available (%s)", ed_mem_size(a, sizeof(a), total),
                     ed_mem_size(b, sizeof(b), (double)avail), what);
    }
    return ED_OK;
}

const char *
ed_http_memory_text(ed_cycle_t *cycle)
{
    ed_http_core_main_conf_t *cmcf;

    cmcf = cycle->main_conf[ed_http_core_module.index];
    return cmcf ? cmcf->memory : NULL;
}
