/* -T: the effective configuration. Every key eddy uses is written at
 * every level where it applies (main, each server, each location, each
 * upstream), with its value as set there, as inherited from a level
 * above, or as its default; blocks written as scalars (`static: true`,
 * `gzip: true`, a `listen` address) are written as the full mapping
 * they stand for. The tree is walked through the modules' key tables,
 * so a new key shows up here without code of its own.
 *
 * The output is itself a configuration: loaded again it gives the same
 * -T. Keys are written in module table order (not file order), so the
 * order of the input does not matter. Two kinds of inherited value are
 * not repeated below the level that wrote them, because writing them
 * again would change what they mean (see ed_dump_norepeat). */
#include "ed_conf.h"
#include "ed_cycle.h"
#include "ed_module.h"

#include <openssl/evp.h>

typedef struct ed_dv_s ed_dv_t;

/* One value of the output: a scalar (node), a sequence or a mapping
 * (items: key, value, key, value...), with the comment --provenance
 * writes after it. */
struct ed_dv_s {
    int              type;     /* ED_NODE_* */
    const ed_node_t *node;     /* scalars and keys */
    const char      *origin;   /* "FILE:LINE:COL", "default", ... */
    ed_array_t       items;    /* ed_dv_t * */
};

#define ED_DUMP_DEPTH 3

typedef struct {
    ed_conf_t   *cf;
    ed_pool_t   *pool;
    ed_node_t   *root;
    /* The maps from the main level down to the one being written. */
    ed_node_t   *chain[ED_DUMP_DEPTH];
    unsigned     ctxs[ED_DUMP_DEPTH];
    const char  *names[ED_DUMP_DEPTH];
    unsigned     failed;
} ed_dump_t;

/* Defaults of keys whose table has none because the code computes them
 * (a list, or a value depending on another key): what -T writes when
 * they are not set. block NULL: a key of a level. */
static const struct {
    const char *block;
    const char *key;
    const char *text;
} ed_dump_extra[] = {
    { NULL, "events", "{}" },
    { NULL, "error_log", "stderr" },
    { "static", "precompressed", "[]" },
    { "static", "methods", "[GET, HEAD]" },
    /* ed_http_gzip_default_types in modules/ed_http_gzip.c */
    { "gzip", "types", "[text/html, text/css, application/javascript, "
                       "application/json, image/svg+xml]" },
    { "listen", "default", "false" },
    { "proxy", "cache_valid", "{}" },
    { "proxy", "cache_bypass", "[]" },
    { "proxy", "no_cache", "[]" },
    { "proxy", "cache_ignore_headers", "[]" },
    { "proxy", "use_stale", "[]" },
    { "fastcgi", "cache_valid", "{}" },
    { "fastcgi", "cache_bypass", "[]" },
    { "fastcgi", "no_cache", "[]" },
    { "fastcgi", "cache_ignore_headers", "[]" },
    { "fastcgi", "use_stale", "[]" },
    { NULL, NULL, NULL }
};

/* The keys of proxy and fastcgi that need their `cache` (as
 * ed_http_cache_loc_key() in src/http/ed_http_cache_conf.c). */
static bool
ed_dump_cache_key(const char *name)
{
    return strncmp(name, "cache_", 6) == 0 || strcmp(name, "no_cache") == 0
           || strcmp(name, "use_stale") == 0
           || strcmp(name, "background_update") == 0
           || strcmp(name, "revalidate") == 0
           || strcmp(name, "min_uses") == 0 || strcmp(name, "purge") == 0;
}

/* The key a block's scalar form sets: `listen: 8080` is
 * `listen: [{address: 8080}]`, `gzip: true` is `gzip: {enabled: true}`.
 * Other blocks' scalar forms are true (or null: every default) or false
 * (off, kept as written). */
static const struct {
    const char *block;
    const char *key;
} ed_dump_scalar_key[] = {
    { "listen", "address" },
    { "servers", "address" },
    { "gzip", "enabled" },
    { NULL, NULL }
};

static ed_dv_t *ed_dump_map(ed_dump_t *d, int depth);

static ed_dv_t *
ed_dv_new(ed_dump_t *d, int type, const ed_node_t *node, const char *origin)
{
    ed_dv_t *v = ed_pcalloc(d->pool, sizeof(ed_dv_t));

    if (v == NULL
        || (type != ED_NODE_SCALAR
            && ed_array_init(&v->items, d->pool, 8, sizeof(ed_dv_t *))
               != ED_OK))
    {
        d->failed = 1;
        return NULL;
    }
    v->type = type;
    v->node = node;
    v->origin = origin;
    return v;
}

static ed_node_t *
ed_dump_text(ed_dump_t *d, const char *text)
{
    ed_node_t *n = ed_pcalloc(d->pool, sizeof(ed_node_t));

    if (n == NULL || ed_str_dup(d->pool, &n->value, text, strlen(text))
                     != ED_OK)
    {
        d->failed = 1;
        return NULL;
    }
    n->type = ED_NODE_SCALAR;
    n->file = "(default)";
    return n;
}

static void
ed_dv_push(ed_dump_t *d, ed_dv_t *seq, ed_dv_t *v)
{
    ed_dv_t **slot;

    if (v == NULL) {
        return;
    }
    slot = ed_array_push(&seq->items);
    if (slot == NULL) {
        d->failed = 1;
        return;
    }
    *slot = v;
}

static void
ed_dv_put(ed_dump_t *d, ed_dv_t *map, const ed_node_t *key, ed_dv_t *v)
{
    if (v == NULL || key == NULL) {
        return;
    }
    ed_dv_push(d, map, ed_dv_new(d, ED_NODE_SCALAR, key, NULL));
    ed_dv_push(d, map, v);
}

static const char *
ed_dump_pos(ed_dump_t *d, const ed_node_t *n, int col)
{
    char buf[1024];

    if (n->file == NULL || n->line == 0) {
        return "default";
    }
    if (col) {
        snprintf(buf, sizeof(buf), "%s:%u:%u", n->file, n->line, n->col);
    } else {
        snprintf(buf, sizeof(buf), "%s:%u", n->file, n->line);
    }
    return ed_pstrdup(d->pool, buf, strlen(buf));
}

/* The comment for a value found at level `at` of one written at depth:
 * its position, or where it is inherited from. */
static const char *
ed_dump_origin(ed_dump_t *d, const ed_node_t *n, int at, int depth)
{
    char buf[1024];

    if (n->file == NULL || n->line == 0) {
        return "default";
    }
    if (at == depth) {
        return ed_dump_pos(d, n, 1);
    }
    snprintf(buf, sizeof(buf), "inherited from %s at %s", d->names[at],
             ed_dump_pos(d, n, 0));
    return ed_pstrdup(d->pool, buf, strlen(buf));
}

/* A written value as is; its scalars carry their own positions when
 * inner is set. */
static ed_dv_t *
ed_dv_copy(ed_dump_t *d, const ed_node_t *n, const char *origin,
           unsigned inner)
{
    ed_dv_t *v;
    size_t   i, k;

    v = ed_dv_new(d, n->type, n, origin);
    if (v == NULL || n->type == ED_NODE_SCALAR) {
        return v;
    }
    for (i = 0; i < n->n; i++) {
        if (n->type == ED_NODE_SEQ) {
            k = i;
            ed_dv_push(d, v, ed_dv_copy(d, n->items[k],
                                        inner ? ed_dump_pos(d, n->items[k],
                                                            1)
                                              : NULL, inner));
        } else {
            k = 2 * i + 1;
            ed_dv_put(d, v, n->items[k - 1],
                      ed_dv_copy(d, n->items[k],
                                 inner ? ed_dump_pos(d, n->items[k], 1)
                                       : NULL, inner));
        }
    }
    return v;
}

/* A default written as YAML text: a scalar, or a flow collection. */
static ed_node_t *
ed_dump_parse(ed_dump_t *d, const char *text)
{
    char       buf[512];
    ed_node_t *root;
    int        n;

    if (text[0] != '[' && text[0] != '{') {
        return ed_dump_text(d, text);
    }
    n = snprintf(buf, sizeof(buf), "v: %s\n", text);
    root = ed_conf_load_string(d->cf, "(default)", buf, (size_t)n);
    if (root == NULL || ed_conf_get(root, "v") == NULL) {
        d->failed = 1;
        return NULL;
    }
    return ed_conf_get(root, "v");
}

static const char *
ed_dump_extra_default(const char *block, const char *key)
{
    size_t i;

    for (i = 0; ed_dump_extra[i].key; i++) {
        if (strcmp(ed_dump_extra[i].key, key) == 0
            && (block == NULL
                ? ed_dump_extra[i].block == NULL
                : ed_dump_extra[i].block != NULL
                  && strcmp(ed_dump_extra[i].block, block) == 0))
        {
            return ed_dump_extra[i].text;
        }
    }
    return NULL;
}

static const char *
ed_dump_block_scalar_key(const ed_conf_block_t *b)
{
    size_t i;

    for (i = 0; ed_dump_scalar_key[i].block; i++) {
        if (strcmp(ed_dump_scalar_key[i].block, b->name) == 0) {
            return ed_dump_scalar_key[i].key;
        }
    }
    return NULL;
}

/* Whether a block's scalar form can be written as a mapping. */
static bool
ed_dump_expands(const ed_conf_block_t *b, const ed_node_t *n)
{
    if (n->type != ED_NODE_SCALAR || ed_dump_block_scalar_key(b)) {
        return true;
    }
    if (n->value.len == 0 && !n->quoted) {
        return true;
    }
    return ed_conf_parse_bool(n->value.data, n->value.len) == 1;
}

/* Inherited values not repeated at depth: a location's own `static`
 * block installs the handler (a location without one serves files only
 * when a root is set, and may have another handler), and each written
 * `limit_req` block is a table of its own (repeated, a server's limit
 * would become one per location). */
static bool
ed_dump_norepeat(ed_dump_t *d, const ed_key_t *k, int depth)
{
    return (strcmp(k->name, "static") == 0
            && d->ctxs[depth] == ED_CTX_LOCATION)
           || strcmp(k->name, "limit_req") == 0;
}

/* A value found for a block's key; a listen address is written as
 * eddy names it ("8080": "0.0.0.0:8080"). */
static ed_dv_t *
ed_dump_found(ed_dump_t *d, const ed_conf_block_t *b, const ed_key_t *ik,
              ed_node_t *n, const char *origin, unsigned inner)
{
    ed_node_t *c;
    char      *name;

    if (strcmp(b->name, "listen") == 0 && strcmp(ik->name, "address") == 0
        && n->type == ED_NODE_SCALAR
        && (name = ed_cycle_addr_name(d->pool, n->value.data)) != NULL
        && strcmp(name, n->value.data) != 0)
    {
        c = ed_pcalloc(d->pool, sizeof(ed_node_t));
        if (c == NULL) {
            d->failed = 1;
            return NULL;
        }
        *c = *n;
        c->value.data = name;
        c->value.len = strlen(name);
        c->quoted = 0;
        n = c;
    }
    return ed_dv_copy(d, n, origin, inner);
}

/* The value of one key of a block from the nodes found for it (bn[j]
 * for each level j up to t, def the outer key's default, NULL when it
 * has none), depth the level being written. */
static ed_dv_t *
ed_dump_block_value(ed_dump_t *d, const ed_key_t *k, const ed_key_t *ik,
                    ed_node_t **bn, int t, ed_node_t *def, int depth)
{
    const ed_conf_block_t *b = k->arg;
    const char            *skey = ed_dump_block_scalar_key(b);
    const char            *text;
    ed_node_t             *src, *n;
    int                    j, last;

    last = (k->flags & ED_KEY_INHERIT) && (ik->flags & ED_KEY_INHERIT)
           ? 0 : t;
    /* The levels from t up, then the outer key's default (j -1). */
    for (j = t; j >= -1; j--) {
        src = j >= 0 && j >= last ? bn[j] : j < 0 ? def : NULL;
        if (src == NULL) {
            continue;
        }
        n = NULL;
        if (src->type == ED_NODE_MAP) {
            n = ed_conf_get(src, ik->name);
        } else if (skey && strcmp(skey, ik->name) == 0) {
            n = src;
        }
        if (n) {
            return ed_dump_found(d, b, ik, n,
                                 j < 0 ? "default"
                                       : ed_dump_origin(d, n, j, depth),
                                 j == depth);
        }
    }
    text = ik->def ? ik->def : ed_dump_extra_default(b->name, ik->name);
    if (text == NULL) {
        return NULL;
    }
    if (strcmp(b->name, "proxy") == 0 && strncmp(ik->name, "tls_", 4) == 0
        && t >= 0 && bn[t]->type == ED_NODE_MAP
        && ((n = ed_conf_get(bn[t], "pass")) == NULL
            || strncmp(n->value.data, "https://", 8) != 0))
    {
        /* The proxy refuses its tls_ keys for an http upstream. */
        return NULL;
    }
    if ((strcmp(b->name, "proxy") == 0 || strcmp(b->name, "fastcgi") == 0)
        && ed_dump_cache_key(ik->name)
        && t >= 0 && bn[t]->type == ED_NODE_MAP
        && ed_conf_get(bn[t], "cache") == NULL)
    {
        /* And its cache keys without `cache`. */
        return NULL;
    }
    n = ed_dump_parse(d, text);
    return n ? ed_dv_copy(d, n, "default", 0) : NULL;
}

/* A `listen` item's values computed from elsewhere: tls from the
 * server's `tls` block, backlog from events.backlog. */
static ed_dv_t *
ed_dump_listen_value(ed_dump_t *d, const ed_key_t *ik, int depth)
{
    ed_node_t *events, *n;

    if (strcmp(ik->name, "tls") == 0) {
        n = ed_conf_get(d->chain[depth], "tls");
        return ed_dv_copy(d, ed_dump_text(d, n ? "true" : "false"),
                          n ? "default (the server has tls)" : "default",
                          0);
    }
    if (strcmp(ik->name, "backlog") == 0) {
        events = ed_conf_get(d->root, "events");
        n = events && events->type == ED_NODE_MAP
            ? ed_conf_get(events, "backlog") : NULL;
        if (n) {
            return ed_dv_copy(d, n, ed_dump_origin(d, n, 0, depth), 0);
        }
        n = NULL;
        for (ik = ed_core_events_keys; ik->name; ik++) {
            if (strcmp(ik->name, "backlog") == 0) {
                n = ed_dump_text(d, ik->def);
            }
        }
        return n ? ed_dv_copy(d, n, "default", 0) : NULL;
    }
    return NULL;
}

/* A block as a mapping of all its keys. */
static ed_dv_t *
ed_dump_block_map(ed_dump_t *d, const ed_key_t *k, ed_node_t **bn, int t,
                  ed_node_t *def, int depth, const char *origin)
{
    const ed_conf_block_t *b = k->arg;
    const ed_key_t        *ik;
    ed_dv_t               *map, *v;

    map = ed_dv_new(d, ED_NODE_MAP, NULL, origin);
    if (map == NULL) {
        return NULL;
    }
    for (ik = b->keys; ik->name; ik++) {
        v = ed_dump_block_value(d, k, ik, bn, t, def, depth);
        if (v == NULL && strcmp(b->name, "listen") == 0) {
            v = ed_dump_listen_value(d, ik, depth);
        }
        ed_dv_put(d, map, ed_dump_text(d, ik->name), v);
    }
    return map;
}

/* A list of blocks (`listen`, an upstream's `servers`): one item alone is
 * a list of one; each item is written in full. */
static ed_dv_t *
ed_dump_block_list(ed_dump_t *d, const ed_key_t *k, ed_node_t *own,
                   int depth)
{
    ed_dv_t   *seq;
    ed_node_t *bn[ED_DUMP_DEPTH], *item;
    size_t     i, n;

    seq = ed_dv_new(d, ED_NODE_SEQ, NULL, ed_dump_pos(d, own, 1));
    n = own->type == ED_NODE_SEQ ? own->n : 1;
    for (i = 0; seq && i < n; i++) {
        item = own->type == ED_NODE_SEQ ? own->items[i] : own;
        memset(bn, 0, sizeof(bn));
        bn[depth] = item;
        ed_dv_push(d, seq, ed_dump_block_map(d, k, bn, depth, NULL, depth,
                                             ed_dump_pos(d, item, 1)));
    }
    return seq;
}

/* A block key at depth: its own block, else (inherited keys) the nearest
 * level's above, else its default. */
static ed_dv_t *
ed_dump_block(ed_dump_t *d, const ed_key_t *k, int depth)
{
    const ed_conf_block_t *b = k->arg;
    ed_node_t             *bn[ED_DUMP_DEPTH], *def = NULL, *top;
    const char            *text, *origin;
    int                    j, t = -1;

    memset(bn, 0, sizeof(bn));
    for (j = 0; j <= depth; j++) {
        if ((j == depth || (k->flags & ED_KEY_INHERIT))
            && (k->ctx & d->ctxs[j]) && d->chain[j])
        {
            bn[j] = ed_conf_get(d->chain[j], k->name);
            if (bn[j]) {
                t = j;
            }
        }
    }
    if (b->list) {
        return bn[depth] ? ed_dump_block_list(d, k, bn[depth], depth) : NULL;
    }
    text = k->def ? k->def : ed_dump_extra_default(NULL, k->name);
    if (text) {
        def = ed_dump_parse(d, text);
    }
    if (t < 0 && def == NULL) {
        return NULL;
    }
    if (t >= 0 && t < depth && ed_dump_norepeat(d, k, depth)) {
        return NULL;
    }
    if (t < 0 && depth > 0 && ed_dump_norepeat(d, k, depth)) {
        return NULL;
    }
    top = t >= 0 ? bn[t] : def;
    origin = t >= 0 ? ed_dump_origin(d, top, t, depth) : "default";
    if (!ed_dump_expands(b, top)) {
        return ed_dv_copy(d, top, origin, t == depth);
    }
    return ed_dump_block_map(d, k, bn, t, def, depth, origin);
}

/* Any other key at depth: set there, else (inherited keys) at the
 * nearest level above, else its default, else not written. */
static ed_dv_t *
ed_dump_key(ed_dump_t *d, const ed_key_t *k, int depth)
{
    ed_node_t  *n;
    const char *text;
    int         j;

    if ((k->flags & ED_KEY_KIND_MASK) == ED_KEY_BLOCK) {
        return ed_dump_block(d, k, depth);
    }
    for (j = depth; j >= 0; j--) {
        if (j < depth && !(k->flags & ED_KEY_INHERIT)) {
            break;
        }
        if (d->chain[j] && (k->ctx & d->ctxs[j])
            && (n = ed_conf_get(d->chain[j], k->name)) != NULL)
        {
            return ed_dv_copy(d, n, ed_dump_origin(d, n, j, depth),
                              j == depth);
        }
    }
    text = k->def ? k->def : ed_dump_extra_default(NULL, k->name);
    if (text == NULL || (n = ed_dump_parse(d, text)) == NULL) {
        return NULL;
    }
    return ed_dv_copy(d, n, "default", 0);
}

/* Each value of `upstreams`: a map of the group's keys. */
static ed_dv_t *
ed_dump_groups(ed_dump_t *d, const ed_key_t *k, ed_node_t *node)
{
    const ed_conf_block_t *b = k->arg;
    const ed_key_t        *gk;
    ed_dv_t               *map, *group;
    ed_node_t             *g;
    size_t                 i;

    map = ed_dv_new(d, ED_NODE_MAP, NULL, ed_dump_pos(d, node, 1));
    for (i = 0; map && node->type == ED_NODE_MAP && i < node->n; i++) {
        g = node->items[2 * i + 1];
        group = ed_dv_new(d, ED_NODE_MAP, NULL, ed_dump_pos(d, g, 1));
        if (group == NULL) {
            break;
        }
        d->chain[1] = g->type == ED_NODE_MAP ? g : NULL;
        d->ctxs[1] = ED_CTX_UPSTREAM;
        d->names[1] = "upstream";
        for (gk = b->keys; gk->name; gk++) {
            ed_dv_put(d, group, ed_dump_text(d, gk->name),
                      ed_dump_key(d, gk, 1));
        }
        ed_dv_put(d, map, node->items[2 * i], group);
    }
    return map;
}

/* `servers` (main) or `locations` (a server): the next level down. */
static ed_dv_t *
ed_dump_levels(ed_dump_t *d, ed_node_t *node, int depth)
{
    ed_dv_t   *v;
    ed_node_t *item;
    size_t     i, n;

    v = ed_dv_new(d, node->type == ED_NODE_MAP ? ED_NODE_MAP : ED_NODE_SEQ,
                  NULL, ed_dump_pos(d, node, 1));
    n = node->type == ED_NODE_SCALAR ? 0 : node->n;
    for (i = 0; v && i < n; i++) {
        item = node->type == ED_NODE_MAP ? node->items[2 * i + 1]
                                         : node->items[i];
        d->chain[depth + 1] = item->type == ED_NODE_MAP ? item : NULL;
        d->ctxs[depth + 1] = depth == 0 ? ED_CTX_SERVER : ED_CTX_LOCATION;
        d->names[depth + 1] = depth == 0 ? "server" : "location";
        if (node->type == ED_NODE_MAP) {
            ed_dv_put(d, v, node->items[2 * i], ed_dump_map(d, depth + 1));
        } else {
            ed_dv_push(d, v, ed_dump_map(d, depth + 1));
        }
    }
    return v;
}

/* The keys of one level (chain[depth]), in module table order; the
 * levels below it (`upstreams`, `servers`, `locations`) last. */
static ed_dv_t *
ed_dump_map(ed_dump_t *d, int depth)
{
    const ed_module_t *m;
    const ed_key_t    *k, *later[4];
    ed_node_t         *n;
    ed_dv_t           *map;
    size_t             i, nlater = 0;
    unsigned           ctx = d->ctxs[depth];

    map = ed_dv_new(d, ED_NODE_MAP, NULL,
                    d->chain[depth] ? ed_dump_pos(d, d->chain[depth], 1)
                                    : NULL);
    for (i = 0; map && (m = ed_modules[i]) != NULL; i++) {
        for (k = m->keys; k && k->name; k++) {
            if (!(k->ctx & ctx)) {
                continue;
            }
            if ((k->flags & ED_KEY_INCLUDE_KEYS)
                || (k->flags & ED_KEY_INCLUDE_ITEMS)
                || strcmp(k->name, "locations") == 0)
            {
                if (nlater < ed_nelems(later)) {
                    later[nlater++] = k;
                }
                continue;
            }
            ed_dv_put(d, map, ed_dump_text(d, k->name),
                      ed_dump_key(d, k, depth));
        }
    }
    for (i = 0; map && i < nlater; i++) {
        k = later[i];
        n = d->chain[depth] ? ed_conf_get(d->chain[depth], k->name) : NULL;
        if (n == NULL) {
            continue;
        }
        if ((k->flags & ED_KEY_INCLUDE_KEYS) && k->arg) {
            ed_dv_put(d, map, ed_dump_text(d, k->name),
                      ed_dump_groups(d, k, n));
        } else if ((k->flags & ED_KEY_INCLUDE_ITEMS)
                   || strcmp(k->name, "locations") == 0)
        {
            ed_dv_put(d, map, ed_dump_text(d, k->name),
                      ed_dump_levels(d, n, depth));
        } else {
            ed_dv_put(d, map, ed_dump_text(d, k->name),
                      ed_dv_copy(d, n, ed_dump_pos(d, n, 1), 1));
        }
    }
    return map;
}

/* Writing. */

static void
ed_dump_comment(FILE *out, const ed_dv_t *v, unsigned prov)
{
    if (prov && v->origin) {
        fprintf(out, "  # %s", v->origin);
    }
    fputc('\n', out);
}

/* Whether a sequence is written inline: [a, b] (scalars only). */
static bool
ed_dump_flat(const ed_dv_t *v)
{
    ed_dv_t **it = v->items.elts;
    size_t    i;

    for (i = 0; i < v->items.nelts; i++) {
        if (it[i]->type != ED_NODE_SCALAR) {
            return false;
        }
    }
    return v->type == ED_NODE_SEQ || v->items.nelts == 0;
}

static void ed_dump_write(FILE *out, const ed_dv_t *v, unsigned indent,
                          unsigned inline_first, unsigned prov);

/* A value after "key:" or "-". */
static void
ed_dump_value(FILE *out, const ed_dv_t *v, unsigned indent, unsigned item,
              unsigned prov)
{
    ed_dv_t **it = v->items.elts;
    size_t    i;

    if (v->type == ED_NODE_SCALAR) {
        fputc(' ', out);
        ed_conf_dump_scalar(out, v->node, 0);
        ed_dump_comment(out, v, prov);
        return;
    }
    if (ed_dump_flat(v)) {
        fputs(v->type == ED_NODE_MAP ? " {" : " [", out);
        for (i = 0; i < v->items.nelts; i++) {
            fputs(i ? ", " : "", out);
            ed_conf_dump_scalar(out, it[i]->node, 1);
        }
        fputs(v->type == ED_NODE_MAP ? "}" : "]", out);
        ed_dump_comment(out, v, prov);
        return;
    }
    if (item && !(prov && v->origin)) {
        fputc(' ', out);
        ed_dump_write(out, v, indent + 2, 1, prov);
        return;
    }
    ed_dump_comment(out, v, prov);
    ed_dump_write(out, v, indent + 2, 0, prov);
}

static void
ed_dump_write(FILE *out, const ed_dv_t *v, unsigned indent,
              unsigned inline_first, unsigned prov)
{
    ed_dv_t **it = v->items.elts;
    size_t    i;

    if (v->type == ED_NODE_SEQ) {
        for (i = 0; i < v->items.nelts; i++) {
            if (i > 0 || !inline_first) {
                fprintf(out, "%*s", (int)indent, "");
            }
            fputc('-', out);
            ed_dump_value(out, it[i], indent, 1, prov);
        }
        return;
    }
    for (i = 0; i + 1 < v->items.nelts; i += 2) {
        if (i > 0 || !inline_first) {
            fprintf(out, "%*s", (int)indent, "");
        }
        ed_conf_dump_key(out, it[i]->node, indent);
        ed_dump_value(out, it[i + 1], indent, 0, prov);
    }
}

/* Writes v into memory: the text, or NULL. */
static char *
ed_dump_text_of(const ed_dv_t *v, unsigned prov, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);

    if (f == NULL) {
        return NULL;
    }
    ed_dump_write(f, v, 0, 0, prov);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The effective tree of cycle, its text without comments (malloc, in
 * *plain) and that text's sha256 (32 bytes in md). */
static ed_dv_t *
ed_dump_hashed(ed_cycle_t *cycle, char **plain, size_t *plen,
               unsigned char *md)
{
    unsigned int  mdlen = 0;
    ed_dump_t     d;
    ed_dv_t      *v;

    memset(&d, 0, sizeof(d));
    d.cf = cycle->conf;
    d.pool = cycle->pool;
    d.root = cycle->root;
    d.chain[0] = cycle->root;
    d.ctxs[0] = ED_CTX_MAIN;
    d.names[0] = "main";
    v = ed_dump_map(&d, 0);
    if (v == NULL || d.failed) {
        return NULL;
    }
    *plain = ed_dump_text_of(v, 0, plen);
    if (*plain == NULL) {
        return NULL;
    }
    if (EVP_Digest(*plain, *plen, md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != 32)
    {
        free(*plain);
        return NULL;
    }
    return v;
}

int
ed_conf_dump_sha256(ed_cycle_t *cycle, unsigned char *md)
{
    char   *plain;
    size_t  plen;

    if (ed_dump_hashed(cycle, &plain, &plen, md) == NULL) {
        return ED_ERROR;
    }
    free(plain);
    return ED_OK;
}

int
ed_conf_dump_effective(FILE *out, ed_cycle_t *cycle, const char *head,
                       unsigned provenance)
{
    unsigned char md[32];
    unsigned int  mdlen = 32, i;
    ed_dv_t      *v;
    char         *plain, *text;
    size_t        plen, tlen;

    v = ed_dump_hashed(cycle, &plain, &plen, md);
    if (v == NULL) {
        return ED_ERROR;
    }
    fputs("# sha256: ", out);
    for (i = 0; i < mdlen; i++) {
        fprintf(out, "%02x", md[i]);
    }
    fputc('\n', out);
    if (head) {
        fputs(head, out);
    }
    if (!provenance) {
        fwrite(plain, 1, plen, out);
        free(plain);
        return ED_OK;
    }
    free(plain);
    text = ed_dump_text_of(v, 1, &tlen);
    if (text == NULL) {
        return ED_ERROR;
    }
    fwrite(text, 1, tlen, out);
    free(text);
    return ED_OK;
}
