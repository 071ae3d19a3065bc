/* The cache module's configuration: the main-level `caches` block (one
 * directory and one shared index per cache), the setters and checks of
 * the cache keys of a location (proxy, fastcgi: ED_HTTP_CACHE_KEYS), and
 * $upstream_cache_status. */
#include "ed_http_cache_int.h"

#include <pwd.h>
#include <sys/mman.h>
#include <sys/stat.h>

typedef struct {
    ed_array_t  caches;   /* ed_http_cache_t * */
} ed_http_cache_main_conf_t;

static const char *ed_cache_set_caches(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static const char *ed_cache_set_levels(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static int ed_cache_postconf(ed_conf_t *cf);
static void ed_cache_exit_worker(ed_worker_t *w);
static int ed_cache_var_status(ed_http_request_t *r, ed_str_t *out);

static const ed_conf_bounds_t ed_cache_zone_bounds = {
    262144, 68719476736LL
};
static const ed_conf_bounds_t ed_cache_size_bounds = { 0, INT64_MAX };
const ed_conf_bounds_t ed_http_cache_uses_bounds = { 1, 1000000 };

#define ED_CACHE_KEY(name, flags, set, field, arg, def)                      \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_cache_t, field), arg, def }

/* The keys of one cache (cache.md, Caches). Their level is that of an
 * upstream group's keys: -T writes every named group alike. */
static const ed_key_t ed_cache_keys[] = {
    ED_CACHE_KEY("path", ED_KEY_STR, ed_conf_set_path, path, NULL, NULL),
    ED_CACHE_KEY("max_size", ED_KEY_SIZE, ed_conf_set_size, max_size,
                 &ed_cache_size_bounds, NULL),
    ED_CACHE_KEY("min_free", ED_KEY_SIZE, ed_conf_set_size, min_free,
                 &ed_cache_size_bounds, "0"),
    ED_CACHE_KEY("inactive", ED_KEY_MSEC, ed_conf_set_msec, inactive, NULL,
                 "10m"),
    ED_CACHE_KEY("keys_zone", ED_KEY_SIZE, ed_conf_set_size, keys_zone,
                 &ed_cache_zone_bounds, "16m"),
    ED_CACHE_KEY("levels", ED_KEY_STR, ed_cache_set_levels, levels_text,
                 NULL, "1:2"),
    ED_CACHE_KEY("max_entry_size", ED_KEY_SIZE, ed_conf_set_size,
                 max_entry_size, &ed_cache_size_bounds, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

/* What each value of `caches` holds, for -T. */
static const ed_conf_block_t ed_cache_block = {
    .name = "cache",
    .keys = ed_cache_keys,
    .size = sizeof(ed_http_cache_t),
    .expect = "expected a mapping of name -> cache",
};

static const ed_key_t ed_cache_main_keys[] = {
    { "caches", ED_CTX_MAIN, ED_KEY_NONE | ED_KEY_INCLUDE_KEYS,
      ed_cache_set_caches, ED_CONF_MAIN, 0, &ed_cache_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_http_variable_t ed_cache_variables[] = {
    { "upstream_cache_status", ed_cache_var_status },
    { NULL, NULL }
};

ed_module_t ed_http_cache_module = {
    .name = "cache",
    .keys = ed_cache_main_keys,
    .conf_size = { sizeof(ed_http_cache_main_conf_t), 0, 0, 0 },
    .variables = ed_cache_variables,
    .postconf = ed_cache_postconf,
    .exit_worker = ed_cache_exit_worker,
};

static void
ed_cache_exit_worker(ed_worker_t *w)
{
    ed_unused(w);
    ed_http_cache_wait_exit();
    /* Detached cache fetches still under way end with the worker. */
    ed_http_cache_bg_exit();
}

static ed_http_cache_main_conf_t *
ed_cache_main_conf(ed_conf_t *cf)
{
    return cf->cycle->main_conf[ed_http_cache_module.index];
}

/* levels: "1:2": 1 to 3 levels of 1 or 2 hex digits. */
static const char *
ed_cache_set_levels(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    ed_http_cache_t *c = conf;
    const char      *p;
    unsigned         n = 0;

    ed_unused(cf);
    ed_unused(key);
    if (node->type != ED_NODE_SCALAR) {
        return "expected levels like \"1:2\"";
    }
    for (p = node->value.data; *p; p++) {
        if ((*p != '1' && *p != '2') || n == 3
            || (p[1] != ':' && p[1] != '\0'))
        {
            return "invalid levels: expected 1 to 3 levels of 1 or 2 hex "
                   "digits, like \"1:2\"";
        }
        c->levels[n++] = (unsigned)(*p - '0');
        if (p[1] == ':') {
            p++;
            if (p[1] == '\0') {
                return "invalid levels: expected 1 to 3 levels of 1 or 2 "
                       "hex digits, like \"1:2\"";
            }
        }
    }
    if (n == 0) {
        return "invalid levels: expected 1 to 3 levels of 1 or 2 hex "
               "digits, like \"1:2\"";
    }
    c->nlevels = n;
    c->levels_text = node->value;
    return NULL;
}

/* One cache. ED_OK or ED_ERROR (recorded). */
static int
ed_cache_one(ed_conf_t *cf, ed_node_t *name, ed_node_t *map)
{
    ed_http_cache_main_conf_t *mcf = ed_cache_main_conf(cf);
    ed_http_cache_t           *c, **slot, **all;
    char                       what[128];
    size_t                     i;
    int                        rc;

    if (name->value.len == 0) {
        return ed_conf_error(cf, name, "empty cache name");
    }
    if (map->type != ED_NODE_MAP) {
        return ed_conf_error(cf, map, "expected a mapping for cache \"%s\"",
                             name->value.data);
    }
    c = ed_pcalloc(cf->pool, sizeof(ed_http_cache_t));
    if (c == NULL
        || (mcf->caches.elts == NULL
            && ed_array_init(&mcf->caches, cf->pool, 2,
                             sizeof(ed_http_cache_t *)) != ED_OK))
    {
        return ed_conf_error(cf, map, "out of memory");
    }
    ed_conf_init_keys(ed_cache_keys, c);
    c->name = name->value;
    c->node = map;
    snprintf(what, sizeof(what), "cache \"%.100s\"", name->value.data);
    rc = ed_conf_apply_keys(cf, map, ed_cache_keys, c, what);
    if (ed_conf_defaults(cf, ed_cache_keys, ED_CONF_UPS, c) != ED_OK) {
        return ED_ERROR;
    }
    if (rc != ED_OK) {
        return ED_ERROR;
    }
    if (c->path.data == NULL) {
        return ed_conf_error(cf, map, "cache \"%s\" needs \"path\": the "
                             "directory of its files", c->name.data);
    }
    if (c->max_size == ED_CONF_UNSET_SIZE) {
        return ed_conf_error(cf, map, "cache \"%s\" needs \"max_size\": "
                             "the disk its entries may use, like 10g",
                             c->name.data);
    }
    if (c->max_entry_size == ED_CONF_UNSET_SIZE) {
        c->max_entry_size = c->max_size / 8;
    }
    all = mcf->caches.elts;
    for (i = 0; i < mcf->caches.nelts; i++) {
        if (ed_str_eq(&all[i]->path, &c->path)) {
            return ed_conf_error(cf, ed_conf_get(map, "path"),
                                 "cache \"%s\" uses the path of cache "
                                 "\"%s\" (%s:%u): one cache per path",
                                 c->name.data, all[i]->name.data,
                                 all[i]->node->file, all[i]->node->line);
        }
    }
    slot = ed_array_push(&mcf->caches);
    if (slot == NULL) {
        return ed_conf_error(cf, map, "out of memory");
    }
    *slot = c;
    return ED_OK;
}

/* caches: {name: cache}. */
static const char *
ed_cache_set_caches(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    size_t i, j;

    ed_unused(key);
    ed_unused(conf);
    if (node->type == ED_NODE_SCALAR && node->value.len == 0
        && !node->quoted)
    {
        return NULL;
    }
    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of name -> cache";
    }
    for (i = 0; i < node->n; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(node->items[2 * j]->value.data,
                       node->items[2 * i]->value.data) == 0)
            {
                break;
            }
        }
        if (j < i) {
            ed_conf_error(cf, node->items[2 * i], "duplicate cache \"%s\"",
                          node->items[2 * i]->value.data);
            continue;
        }
        ed_cache_one(cf, node->items[2 * i], node->items[2 * i + 1]);
    }
    return NULL;
}

ed_http_cache_t **
ed_http_cache_all(ed_cycle_t *cycle, size_t *n)
{
    ed_http_cache_main_conf_t *mcf;

    mcf = cycle->main_conf[ed_http_cache_module.index];
    *n = mcf->caches.nelts;
    return mcf->caches.elts;
}

ed_http_cache_t *
ed_http_cache_find(ed_conf_t *cf, const ed_str_t *name, const char **closest)
{
    ed_http_cache_main_conf_t *mcf = ed_cache_main_conf(cf);
    ed_http_cache_t          **all = mcf->caches.elts;
    size_t                     i, d, best = SIZE_MAX, limit;

    *closest = NULL;
    limit = ed_max((size_t)2, name->len / 3);
    for (i = 0; i < mcf->caches.nelts; i++) {
        if (ed_str_eq(&all[i]->name, name)) {
            return all[i];
        }
        d = ed_str_distance(name->data, all[i]->name.data);
        if (d <= limit && d < best) {
            best = d;
            *closest = all[i]->name.data;
        }
    }
    return NULL;
}

/* Makes dir (0700) unless it exists, owned by `user:` when the master
 * runs as root. ED_OK or ED_ERROR (recorded at node). */
static int
ed_cache_mkdir(ed_conf_t *cf, const ed_node_t *node, const char *dir)
{
    ed_core_conf_t *ccf = ed_core_conf(cf->cycle);
    struct passwd  *pw;
    struct stat     st;
    char            path[PATH_MAX], *p;

    if (strlen(dir) >= sizeof(path)) {
        return ed_conf_error(cf, node, "cache path too long");
    }
    strcpy(path, dir);
    /* Parents first, as mkdir -p. */
    for (p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                return ed_conf_error(cf, node, "mkdir(\"%s\") failed: %s",
                                     path, strerror(errno));
            }
            *p = '/';
        }
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return ed_conf_error(cf, node, "mkdir(\"%s\") failed: %s", path,
                             strerror(errno));
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return ed_conf_error(cf, node, "cache path \"%s\" is not a "
                             "directory", path);
    }
    if (ccf->user.data != NULL && geteuid() == 0) {
        pw = getpwnam(ccf->user.data);
        if (pw != NULL && st.st_uid != pw->pw_uid
            && chown(path, pw->pw_uid, pw->pw_gid) != 0)
        {
            return ed_conf_error(cf, node, "chown(\"%s\", %s) failed: %s",
                                 path, ccf->user.data, strerror(errno));
        }
    }
    return ED_OK;
}

/* The index zones made in this process, so that a reload keeps the zone
 * of a cache with the same path, levels and keys_zone: each is a memfd
 * that every cycle using it maps again (a mapping of its own, unmapped
 * with its cycle), closed when the last one goes. */
typedef struct ed_cache_zone_ref_s ed_cache_zone_ref_t;

struct ed_cache_zone_ref_s {
    ed_cache_zone_ref_t *next;
    char                 path[PATH_MAX];
    char                 levels[8];
    size_t               size;
    int                  fd;
    unsigned             users;     /* cycles mapping it */
};

typedef struct {
    ed_cache_zone_ref_t *ref;
    void                *addr;
} ed_cache_zone_map_t;

static ed_cache_zone_ref_t *ed_cache_zones;

static void
ed_cache_zone_unmap(void *data)
{
    ed_cache_zone_map_t  *m = data;
    ed_cache_zone_ref_t **pp;

    munmap(m->addr, m->ref->size);
    if (--m->ref->users > 0) {
        return;
    }
    close(m->ref->fd);
    for (pp = &ed_cache_zones; *pp; pp = &(*pp)->next) {
        if (*pp == m->ref) {
            *pp = m->ref->next;
            break;
        }
    }
    free(m->ref);
}

/* The zone of cache c: the one an earlier cycle made for the same path,
 * levels and size, else a new one. ED_OK or ED_ERROR (errno set). */
static int
ed_cache_zone(ed_conf_t *cf, ed_http_cache_t *c)
{
    ed_cache_zone_ref_t *ref;
    ed_cache_zone_map_t *m;
    size_t               size = ed_http_cache_zone_size(c->keys_zone);
    long                 page = sysconf(_SC_PAGESIZE);
    bool                 fresh = false;

    size = ed_align(size, (size_t)(page > 0 ? page : 4096));
    for (ref = ed_cache_zones; ref; ref = ref->next) {
        if (ref->size == size && strcmp(ref->path, c->path.data) == 0
            && strcmp(ref->levels, c->levels_text.data) == 0)
        {
            break;
        }
    }
    m = ed_palloc(cf->pool, sizeof(*m));
    if (m == NULL) {
        errno = ENOMEM;
        return ED_ERROR;
    }
    if (ref == NULL) {
        ref = calloc(1, sizeof(*ref));
        if (ref == NULL) {
            return ED_ERROR;
        }
        ref->fd = memfd_create("eddy-cache", MFD_CLOEXEC);
        if (ref->fd < 0 || ftruncate(ref->fd, (off_t)size) != 0) {
            if (ref->fd >= 0) {
                close(ref->fd);
            }
            free(ref);
            return ED_ERROR;
        }
        snprintf(ref->path, sizeof(ref->path), "%s", c->path.data);
        snprintf(ref->levels, sizeof(ref->levels), "%s",
                 c->levels_text.data);
        ref->size = size;
        ref->next = ed_cache_zones;
        ed_cache_zones = ref;
        fresh = true;
    }
    m->addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, ref->fd,
                   0);
    if (m->addr == MAP_FAILED) {
        if (fresh) {
            ed_cache_zones = ref->next;
            close(ref->fd);
            free(ref);
        }
        return ED_ERROR;
    }
    m->ref = ref;
    ref->users++;
    if (ed_pool_cleanup_add(cf->pool, ed_cache_zone_unmap, m) != ED_OK) {
        ed_cache_zone_unmap(m);
        errno = ENOMEM;
        return ED_ERROR;
    }
    c->zone = m->addr;
    return fresh ? ed_http_cache_index_init(c->zone, size) : ED_OK;
}

/* Makes each cache's directories (not under -t) and shared index. */
static int
ed_cache_postconf(ed_conf_t *cf)
{
    ed_http_cache_main_conf_t *mcf = ed_cache_main_conf(cf);
    ed_http_cache_t          **all = mcf->caches.elts;
    ed_node_t                 *node;
    size_t                     i;
    char                       tmp[PATH_MAX];

    for (i = 0; i < mcf->caches.nelts; i++) {
        node = ed_conf_get(all[i]->node, "path");
        if (!ed_conf_test_only) {
            snprintf(tmp, sizeof(tmp), "%s/.tmp", all[i]->path.data);
            if (ed_cache_mkdir(cf, node, all[i]->path.data) != ED_OK
                || ed_cache_mkdir(cf, node, tmp) != ED_OK)
            {
                return ED_ERROR;
            }
            /* Wildcard PURGE jobs for the cache manager. */
            snprintf(tmp, sizeof(tmp), "%s/.purge", all[i]->path.data);
            if (ed_cache_mkdir(cf, node, tmp) != ED_OK) {
                return ED_ERROR;
            }
        }
        if (ed_cache_zone(cf, all[i]) != ED_OK) {
            return ed_conf_error(cf, all[i]->node, "shared memory for cache "
                                 "\"%s\" failed: %s", all[i]->name.data,
                                 strerror(errno));
        }
    }
    return ED_OK;
}

/* The cache keys of a location. */

/* The keys that apply only with `cache` (ed_conf_dump.c leaves them out
 * of -T for a block without it, by the same list). */
static const char *ed_cache_loc_keys[] = {
    "cache_key", "cache_valid", "cache_methods", "cache_bypass", "no_cache",
    "cache_ignore_headers", "cache_lock", "use_stale", "background_update",
    "revalidate", "min_uses", "purge",
};

bool
ed_http_cache_loc_key(const char *name)
{
    size_t j;

    for (j = 0; j < ed_nelems(ed_cache_loc_keys); j++) {
        if (strcmp(name, ed_cache_loc_keys[j]) == 0) {
            return true;
        }
    }
    return false;
}

void
ed_http_cache_loc_check(ed_conf_t *cf, ed_node_t *node,
                        ed_http_cache_loc_t *cl, const char *block)
{
    ed_node_t *k;
    size_t     i;

    if (cl->cache_ignore == ED_CONF_UNSET) {
        cl->cache_ignore = 0;
    }
    if (cl->use_stale == ED_CONF_UNSET) {
        cl->use_stale = 0;
    }
    if (cl->cache_name.data != NULL) {
        return;
    }
    for (i = 0; i < node->n; i++) {
        k = node->items[2 * i];
        if (ed_http_cache_loc_key(k->value.data)) {
            ed_conf_error(cf, k, "%s needs \"cache\" in the same %s block "
                          "(a name under \"caches\")", k->value.data, block);
            return;
        }
    }
}

/* Whether an `access` list has a rule that applies to PURGE: one without
 * methods, or one listing PURGE. */
static bool
ed_cache_access_covers_purge(const ed_node_t *list)
{
    const ed_node_t *item, *m;
    size_t           i, j;

    if (list == NULL || list->type != ED_NODE_SEQ) {
        return false;
    }
    for (i = 0; i < list->n; i++) {
        item = list->items[i];
        if (item->type != ED_NODE_MAP) {
            continue;
        }
        m = ed_conf_get((ed_node_t *)item, "methods");
        if (m == NULL) {
            return true;
        }
        for (j = 0; m->type == ED_NODE_SEQ && j < m->n; j++) {
            if (strcmp(m->items[j]->value.data, "PURGE") == 0) {
                return true;
            }
        }
    }
    return false;
}

int
ed_http_cache_loc_resolve(ed_conf_t *cf, ed_http_cache_loc_t *cl,
                          ed_node_t *block, ed_http_location_t *loc)
{
    ed_node_t  *node = ed_conf_get(block, "cache");
    const char *closest;

    cl->cache = ed_http_cache_find(cf, &cl->cache_name, &closest);
    if (cl->cache == NULL) {
        if (closest) {
            return ed_conf_error(cf, node, "unknown cache \"%s\"; did you "
                                 "mean \"%s\"?", cl->cache_name.data,
                                 closest);
        }
        return ed_conf_error(cf, node, "unknown cache \"%s\" (caches are "
                             "named under the main-level \"caches\")",
                             cl->cache_name.data);
    }
    if (cl->purge == 1) {
        /* The access list in force is the nearest one written
         * (inheritance replaces the whole list). */
        ed_node_t *list = loc->node && loc->node->type == ED_NODE_MAP
                          ? ed_conf_get(loc->node, "access") : NULL;

        if (list == NULL && loc->server && loc->server->node
            && loc->server->node->type == ED_NODE_MAP)
        {
            list = ed_conf_get(loc->server->node, "access");
        }
        if (list == NULL && cf->cycle->root) {
            list = ed_conf_get(cf->cycle->root, "access");
        }
        if (!ed_cache_access_covers_purge(list)) {
            return ed_conf_error(cf, ed_conf_get(block, "purge"),
                                 "purge: true needs an access rule that "
                                 "covers PURGE here (one without methods, "
                                 "or with methods: [PURGE]): anyone could "
                                 "empty the cache");
        }
    }
    /* A hit is the whole representation in one piece: ranges are cut
     * by the range filter, as for static files. */
    loc->ranges = 1;
    return ED_OK;
}

/* cache_valid: {200: 10m, 404: 1m, any: 5s}. */
const char *
ed_http_cache_set_valid(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                        void *conf)
{
    ed_http_cache_valid_t *v;
    ed_array_t            *a;
    ed_node_t             *k, *t;
    ed_msec_t              ms;
    int64_t                status;
    size_t                 i;

    if (node->type == ED_NODE_SCALAR && node->value.len == 0) {
        return NULL;
    }
    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of status -> time, like {200: 10m, "
               "any: 5s}";
    }
    a = ed_array_create(cf->pool, node->n ? node->n : 1,
                        sizeof(ed_http_cache_valid_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        k = node->items[2 * i];
        t = node->items[2 * i + 1];
        if (strcmp(k->value.data, "any") == 0) {
            status = 0;
        } else {
            status = ed_atoi(k->value.data, k->value.len);
            if (status < 200 || status > 599 || status == 206
                || status == 304)
            {
                ed_conf_error(cf, k, "invalid status \"%s\" in "
                              "cache_valid: expected a final status other "
                              "than 206 and 304, or any", k->value.data);
                continue;
            }
        }
        ms = t->type == ED_NODE_SCALAR
             ? ed_conf_parse_msec(t->value.data, t->value.len)
             : ED_CONF_UNSET_MSEC;
        if (ms == ED_CONF_UNSET_MSEC) {
            ed_conf_error(cf, t, "expected a time like 10m");
            continue;
        }
        v = ed_array_push(a);
        if (v == NULL) {
            return "out of memory";
        }
        v->status = (int)status;
        v->sec = (int64_t)(ms / 1000);
    }
    *(ed_array_t **)((char *)conf + key->offset) = a;
    return NULL;
}

/* Walks a list or a comma-separated scalar of words, calling word for
 * each. NULL or the first message. */
static const char *
ed_cache_words(ed_conf_t *cf, ed_node_t *node,
               const char *(*word)(ed_conf_t *cf, ed_node_t *item,
                                   const char *w, size_t len, int *mask),
               int *mask)
{
    ed_node_t  *item;
    const char *p, *e, *err;
    size_t      i, n;

    if (node->type == ED_NODE_MAP) {
        return "expected a list";
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        if (item->type != ED_NODE_SCALAR) {
            return "expected a list of words";
        }
        for (p = item->value.data; *p; p = *e ? e + 1 : e) {
            while (*p == ' ' || *p == ',') {
                p++;
            }
            for (e = p; *e && *e != ',' && *e != ' '; e++) {
                /* the word */
            }
            if (e == p) {
                break;
            }
            err = word(cf, item, p, (size_t)(e - p), mask);
            if (err) {
                return err;
            }
        }
    }
    return NULL;
}

static const char *
ed_cache_method_word(ed_conf_t *cf, ed_node_t *item, const char *w,
                     size_t len, int *mask)
{
    ed_unused(cf);
    ed_unused(item);
    if (len == 3 && memcmp(w, "GET", 3) == 0) {
        *mask |= ED_CACHE_M_GET;
    } else if (len == 4 && memcmp(w, "HEAD", 4) == 0) {
        *mask |= ED_CACHE_M_HEAD;
    } else if (len == 4 && memcmp(w, "POST", 4) == 0) {
        return "POST cannot be cached: the key has no body (cache_methods "
               "takes GET and HEAD)";
    } else {
        return "expected GET or HEAD";
    }
    return NULL;
}

/* cache_methods: [GET, HEAD], the only values. */
const char *
ed_http_cache_set_methods(ed_conf_t *cf, const ed_key_t *key,
                          ed_node_t *node, void *conf)
{
    const char *err;
    int         mask = 0;

    err = ed_cache_words(cf, node, ed_cache_method_word, &mask);
    if (err) {
        return err;
    }
    *(int *)((char *)conf + key->offset) = mask;
    return NULL;
}

static const char *
ed_cache_ignore_word(ed_conf_t *cf, ed_node_t *item, const char *w,
                     size_t len, int *mask)
{
    static const struct {
        const char *name;
        int         bit;
    } names[] = {
        { "Cache-Control", ED_CACHE_IGN_CACHE_CONTROL },
        { "Expires", ED_CACHE_IGN_EXPIRES },
        { "Vary", ED_CACHE_IGN_VARY },
        { "Set-Cookie", ED_CACHE_IGN_SET_COOKIE },
    };
    size_t i;

    ed_unused(cf);
    ed_unused(item);
    for (i = 0; i < ed_nelems(names); i++) {
        if (strlen(names[i].name) == len
            && strncasecmp(names[i].name, w, len) == 0)
        {
            *mask |= names[i].bit;
            return NULL;
        }
    }
    return "expected Cache-Control, Expires, Vary or Set-Cookie";
}

/* cache_ignore_headers: any of Cache-Control, Expires, Vary,
 * Set-Cookie. */
const char *
ed_http_cache_set_ignore(ed_conf_t *cf, const ed_key_t *key,
                         ed_node_t *node, void *conf)
{
    const char *err;
    int         mask = 0;

    err = ed_cache_words(cf, node, ed_cache_ignore_word, &mask);
    if (err) {
        return err;
    }
    *(int *)((char *)conf + key->offset) = mask;
    return NULL;
}

static const char *
ed_cache_stale_word(ed_conf_t *cf, ed_node_t *item, const char *w,
                    size_t len, int *mask)
{
    static const struct {
        const char *name;
        int         bit;
    } names[] = {
        { "error", ED_CACHE_STALE_ERROR },
        { "timeout", ED_CACHE_STALE_TIMEOUT },
        { "invalid_header", ED_CACHE_STALE_INVALID },
        { "updating", ED_CACHE_STALE_UPDATING },
        { "http_500", ED_CACHE_STALE_500 },
        { "http_502", ED_CACHE_STALE_502 },
        { "http_503", ED_CACHE_STALE_503 },
        { "http_504", ED_CACHE_STALE_504 },
        { "http_403", ED_CACHE_STALE_403 },
        { "http_404", ED_CACHE_STALE_404 },
        { "http_429", ED_CACHE_STALE_429 },
    };
    size_t i;

    ed_unused(cf);
    ed_unused(item);
    for (i = 0; i < ed_nelems(names); i++) {
        if (strlen(names[i].name) == len
            && memcmp(names[i].name, w, len) == 0)
        {
            *mask |= names[i].bit;
            return NULL;
        }
    }
    return "expected error, timeout, invalid_header, updating, http_500, "
           "http_502, http_503, http_504, http_403, http_404 or http_429";
}

/* use_stale: a list of the conditions above. */
const char *
ed_http_cache_set_use_stale(ed_conf_t *cf, const ed_key_t *key,
                            ed_node_t *node, void *conf)
{
    const char *err;
    int         mask = 0;

    err = ed_cache_words(cf, node, ed_cache_stale_word, &mask);
    if (err) {
        return err;
    }
    *(int *)((char *)conf + key->offset) = mask;
    return NULL;
}

/* cache_bypass, no_cache: a list of strings with variables. */
const char *
ed_http_cache_set_templates(ed_conf_t *cf, const ed_key_t *key,
                            ed_node_t *node, void *conf)
{
    ed_http_template_t **t;
    ed_array_t          *a;
    ed_node_t           *item;
    const char          *err;
    size_t               i, n;

    if (node->type == ED_NODE_MAP) {
        return "expected a list of strings with variables, like "
               "[$cookie_nocache]";
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    a = ed_array_create(cf->pool, n ? n : 1, sizeof(ed_http_template_t *));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        if (item->type != ED_NODE_SCALAR) {
            return "expected a list of strings with variables";
        }
        if (item->value.len == 0) {
            continue;
        }
        t = ed_array_push(a);
        if (t == NULL) {
            return "out of memory";
        }
        *t = ed_http_template_compile(cf, item, &err);
        if (*t == NULL) {
            ed_conf_error(cf, item, "%s", err);
            a->nelts--;
        }
    }
    *(ed_array_t **)((char *)conf + key->offset) = a;
    return NULL;
}

/* cache_lock: {enabled, timeout}. */
#define ED_CACHE_LKEY(name, flags, set, field, arg, def)                     \
    { name, ED_CTX_LOCATION, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_cache_lock_t, field), arg, def }

static const ed_key_t ed_cache_lock_keys[] = {
    ED_CACHE_LKEY("enabled", ED_KEY_INT, ed_conf_set_bool, enabled, NULL,
                  "true"),
    ED_CACHE_LKEY("timeout", ED_KEY_MSEC, ed_conf_set_msec, timeout, NULL,
                  "5s"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

const ed_conf_block_t ed_http_cache_lock_block = {
    .name = "cache_lock",
    .keys = ed_cache_lock_keys,
    .size = sizeof(ed_http_cache_lock_t),
    .expect = "expected a mapping like {enabled: true, timeout: 5s}",
};

/* $upstream_cache_status: HIT, MISS, BYPASS, ... (cache.md). */
static int
ed_cache_var_status(ed_http_request_t *r, ed_str_t *out)
{
    if (r->upstream == NULL || r->upstream->cache_status == NULL) {
        return ED_DECLINED;
    }
    out->data = (char *)r->upstream->cache_status;
    out->len = strlen(out->data);
    return ED_OK;
}
