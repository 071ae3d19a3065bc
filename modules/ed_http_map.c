/* The map module: `maps: {NAME: {source, default, hostnames, entries}}`
 * defines $NAME, the value of the first entry whose key matches the
 * source: exact keys (hashed, case-insensitive), then (hostnames) the
 * longest wildcard, then regexes in order, else the default. A map is
 * computed when a request first uses it, then kept for that request;
 * an unused map costs nothing. Its variables reach templates through
 * the conf_variable hook (their names come from the configuration). */
#include "ed_http_map.h"

#include <strings.h>

static const char *ed_http_map_set_maps(ed_conf_t *cf, const ed_key_t *key,
                                        ed_node_t *node, void *conf);
static void *ed_http_map_conf_variable(ed_cycle_t *cycle, const char *name,
                                       size_t len);
static int ed_http_map_postconf(ed_conf_t *cf);
static int ed_http_map_get(ed_http_request_t *r, ed_http_conf_var_t *v,
                           ed_str_t *out);

/* A map's keys; ctx and conf as an upstream's, the other value of a
 * main-level mapping of names (so -T shows them the same way). */
#define ED_MAPKEY(name, flags, set, field, def)                              \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_map_t, field), NULL, def }

static const ed_key_t ed_http_map_keys[] = {
    ED_MAPKEY("source", ED_KEY_PTR, ed_conf_set_node, source_node, NULL),
    ED_MAPKEY("default", ED_KEY_PTR, ed_conf_set_node, default_node, NULL),
    ED_MAPKEY("hostnames", ED_KEY_INT, ed_conf_set_bool, hostnames, "false"),
    ED_MAPKEY("entries", ED_KEY_PTR, ed_conf_set_node, entries, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_map_block = {
    .name = "map",
    .keys = ed_http_map_keys,
    .size = sizeof(ed_http_map_t),
    .expect = "expected a mapping of name -> map",
};

static const ed_key_t ed_http_map_module_keys[] = {
    { "maps", ED_CTX_MAIN, ED_KEY_NONE | ED_KEY_INCLUDE_KEYS,
      ed_http_map_set_maps, ED_CONF_MAIN, 0, &ed_http_map_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_map_module = {
    .name = "map",
    .keys = ed_http_map_module_keys,
    .conf_size = { sizeof(ed_http_map_main_conf_t), 0, 0, 0 },
    .postconf = ed_http_map_postconf,
    .conf_variable = ed_http_map_conf_variable,
};

/* The value a request keeps of each map it used. */
typedef struct {
    ed_str_t value;
    unsigned state;   /* 0 not yet, 1 being computed, 2 kept */
} ed_http_map_val_t;

static ed_http_map_main_conf_t *
ed_http_map_mcf(ed_cycle_t *cycle)
{
    if (cycle == NULL || cycle->main_conf == NULL) {
        return NULL;
    }
    return cycle->main_conf[ed_http_map_module.index];
}

ed_http_map_t *
ed_http_map_find(ed_cycle_t *cycle, const char *name, size_t len)
{
    ed_http_map_main_conf_t *mcf = ed_http_map_mcf(cycle);
    ed_http_map_t          **m;
    size_t                   i;

    if (mcf == NULL || mcf->maps.elts == NULL) {
        return NULL;
    }
    m = mcf->maps.elts;
    for (i = 0; i < mcf->maps.nelts; i++) {
        if (m[i]->name.len == len && memcmp(m[i]->name.data, name, len) == 0)
        {
            return m[i];
        }
    }
    return NULL;
}

/* The map of that name, made when first named: a template may use $NAME
 * before the `maps` key is applied. NULL on ENOMEM. */
static ed_http_map_t *
ed_http_map_get_or_add(ed_cycle_t *cycle, const char *name, size_t len)
{
    ed_http_map_main_conf_t *mcf = ed_http_map_mcf(cycle);
    ed_http_map_t           *m, **slot;

    m = ed_http_map_find(cycle, name, len);
    if (m || mcf == NULL) {
        return m;
    }
    if (mcf->maps.elts == NULL
        && ed_array_init(&mcf->maps, cycle->pool, 4, sizeof(ed_http_map_t *))
               != ED_OK)
    {
        return NULL;
    }
    m = ed_pcalloc(cycle->pool, sizeof(ed_http_map_t));
    slot = ed_array_push(&mcf->maps);
    if (m == NULL || slot == NULL) {
        return NULL;
    }
    *slot = m;
    ed_conf_init_keys(ed_http_map_keys, m);
    m->var.get = ed_http_map_get;
    m->name.data = ed_pstrdup(cycle->pool, name, len);
    m->name.len = len;
    m->index = (unsigned)(mcf->maps.nelts - 1);
    m->mcf = mcf;
    return m->name.data ? m : NULL;
}

/* conf_variable: $NAME when the configuration's `maps` names it. */
static void *
ed_http_map_conf_variable(ed_cycle_t *cycle, const char *name, size_t len)
{
    ed_node_t *maps;
    size_t     i;

    if (cycle == NULL) {
        return NULL;
    }
    if (ed_http_map_find(cycle, name, len)) {
        return ed_http_map_find(cycle, name, len);
    }
    maps = cycle->root ? ed_conf_get(cycle->root, "maps") : NULL;
    for (i = 0; maps && maps->type == ED_NODE_MAP && i < maps->n; i++) {
        if (maps->items[2 * i]->value.len == len
            && memcmp(maps->items[2 * i]->value.data, name, len) == 0)
        {
            return ed_http_map_get_or_add(cycle, name, len);
        }
    }
    return NULL;
}

static uint64_t
ed_http_map_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t   i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Compiles a value: a string with variables and, for a regex key, that
 * regex's captures. */
static ed_http_template_t *
ed_http_map_value(ed_conf_t *cf, ed_node_t *v, const ed_node_t *k,
                  pcre2_code *re, size_t skip)
{
    ed_http_cur_regex_t cur;
    ed_http_template_t *t;
    const char         *err;

    if (v->type != ED_NODE_SCALAR) {
        ed_conf_error(cf, v, "expected a string as the value of a map entry");
        return NULL;
    }
    if (re) {
        cur.pattern = k->value.data + skip;
        cur.len = k->value.len - skip;
        cur.re = re;
        cur.written = "map key";
        ed_http_cur_regex = &cur;
    }
    t = ed_http_template_compile(cf, v, &err);
    ed_http_cur_regex = NULL;
    if (t == NULL) {
        ed_conf_error(cf, v, "invalid map value: %s", err);
    }
    return t;
}

/* Appends the entry pointer e to list. */
static int
ed_http_map_push(ed_conf_t *cf, ed_array_t *list, ed_http_map_entry_t *e)
{
    ed_http_map_entry_t **slot = ed_array_push(list);

    if (slot == NULL) {
        return ed_conf_error(cf, e->node, "out of memory");
    }
    *slot = e;
    return ED_OK;
}

/* Adds an exact key to the table (sized beforehand). */
static int
ed_http_map_exact(ed_conf_t *cf, ed_http_map_t *m, ed_http_map_entry_t *e)
{
    size_t i = ed_http_map_hash(e->key.data, e->key.len) & (m->nbuckets - 1);

    for (; m->buckets[i]; i = (i + 1) & (m->nbuckets - 1)) {
        if (ed_str_eq(&m->buckets[i]->key, &e->key)) {
            return ed_conf_error(cf, e->node, "map key \"%s\" differs from "
                                 "\"%s\" (line %u) only in case",
                                 e->node->value.data,
                                 m->buckets[i]->node->value.data,
                                 m->buckets[i]->node->line);
        }
    }
    m->buckets[i] = e;
    return ED_OK;
}

/* One entry: a regex (~ or ~*), a wildcard (hostnames), else exact. */
static int
ed_http_map_entry(ed_conf_t *cf, ed_http_map_t *m, ed_node_t *k,
                  ed_node_t *v)
{
    ed_http_map_entry_t *e;
    ed_http_map_regex_t *rx;
    const char          *s = k->value.data, *err;
    size_t               len = k->value.len, skip;
    bool                 caseless;

    if (len > 1 && s[0] == '~') {
        caseless = s[1] == '*';
        skip = caseless ? 2 : 1;
        rx = ed_array_push(&m->regexes);
        if (rx == NULL) {
            return ed_conf_error(cf, k, "out of memory");
        }
        rx->re = ed_http_regex_compile(cf->pool, s + skip, len - skip,
                                       caseless, &err);
        if (rx->re == NULL) {
            m->regexes.nelts--;
            return ed_conf_error(cf, k, "invalid regex \"%s\": %s", s + skip,
                                 err);
        }
        rx->jit = ed_http_regex_jit(rx->re);
        rx->value = ed_http_map_value(cf, v, k, rx->re, skip);
        return rx->value ? ED_OK : ED_ERROR;
    }
    if (len && s[0] == '\\') {
        /* "\~a": a key starting with '~'. */
        s++;
        len--;
    }
    e = ed_pcalloc(cf->pool, sizeof(ed_http_map_entry_t));
    if (e == NULL) {
        return ed_conf_error(cf, k, "out of memory");
    }
    e->node = k;
    e->value = ed_http_map_value(cf, v, k, NULL, 0);
    if (m->hostnames && len && s[len - 1] == '.') {
        len--;
    }
    e->key.data = ed_pnalloc(cf->pool, len + 1);
    if (e->value == NULL || e->key.data == NULL) {
        return ED_ERROR;
    }
    ed_strlow(e->key.data, s, len);
    e->key.data[len] = '\0';
    e->key.len = len;
    if (m->hostnames && len > 2 && s[0] == '*' && s[1] == '.') {
        /* "*.a.com": subdomains only; kept as ".a.com". */
        e->key.data++;
        e->key.len--;
        e->node = k;
        return ed_http_map_push(cf, &m->head_wild, e);
    }
    if (m->hostnames && len > 1 && s[0] == '.') {
        /* ".a.com": a.com itself too. */
        return ed_http_map_push(cf, &m->head_wild, e);
    }
    if (m->hostnames && len > 2 && s[len - 1] == '*' && s[len - 2] == '.') {
        e->key.len--;
        return ed_http_map_push(cf, &m->tail_wild, e);
    }
    if (m->hostnames && memchr(s, '*', len)) {
        return ed_conf_error(cf, k, "invalid host name \"%s\": a wildcard "
                             "is \"*.name\", \".name\" or \"name.*\"",
                             k->value.data);
    }
    return ed_http_map_exact(cf, m, e);
}

/* Applies one map's mapping. */
static int
ed_http_map_apply(ed_conf_t *cf, ed_node_t *name, ed_node_t *node)
{
    ed_http_map_t *m;
    const char    *err;
    char           what[128];
    size_t         i, n;
    int            rc;

    if (name->value.len == 0) {
        return ed_conf_error(cf, name, "empty map name");
    }
    for (i = 0; i < name->value.len; i++) {
        char c = name->value.data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9' && i > 0) || c == '_'))
        {
            return ed_conf_error(cf, name, "invalid map name \"%s\": a "
                                 "variable name is letters, digits and '_'",
                                 name->value.data);
        }
    }
    if (ed_http_variable_reserved(name->value.data, name->value.len)) {
        return ed_conf_error(cf, name, "map name \"%s\" is taken: $%s is a "
                             "built-in variable or in a family (http_, "
                             "arg_, cookie_, proxy_protocol_)",
                             name->value.data, name->value.data);
    }
    if (node->type != ED_NODE_MAP) {
        return ed_conf_error(cf, node, "expected a mapping {source, "
                             "default, hostnames, entries} for map \"%s\"",
                             name->value.data);
    }
    m = ed_http_map_get_or_add(cf->cycle, name->value.data, name->value.len);
    if (m == NULL) {
        return ed_conf_error(cf, node, "out of memory");
    }
    m->node = node;
    snprintf(what, sizeof(what), "map \"%.100s\"", name->value.data);
    rc = ed_conf_apply_keys(cf, node, ed_http_map_keys, m, what);
    if (ed_conf_defaults(cf, ed_http_map_keys, ED_CONF_UPS, m) != ED_OK) {
        return ED_ERROR;
    }
    if (m->source_node == NULL) {
        return ed_conf_error(cf, node, "expected \"source\" in map \"%s\", "
                             "such as source: $http_host", name->value.data);
    }
    if (m->source_node->type != ED_NODE_SCALAR
        || m->source_node->value.len == 0)
    {
        return ed_conf_error(cf, m->source_node, "expected a string with "
                             "variables, such as $http_host");
    }
    m->source = ed_http_template_compile(cf, m->source_node, &err);
    if (m->source == NULL) {
        return ed_conf_error(cf, m->source_node, "%s", err);
    }
    if (m->default_node) {
        m->def = ed_http_map_value(cf, m->default_node, NULL, NULL, 0);
        if (m->def == NULL) {
            return ED_ERROR;
        }
    }
    n = 0;
    if (m->entries && m->entries->type == ED_NODE_MAP) {
        n = m->entries->n;
    } else if (m->entries && !(m->entries->type == ED_NODE_SCALAR
                               && m->entries->value.len == 0))
    {
        return ed_conf_error(cf, m->entries, "expected a mapping of key -> "
                             "value");
    }
    for (m->nbuckets = 4; m->nbuckets < 2 * n; m->nbuckets *= 2) {
        /* at most half full */
    }
    m->buckets = ed_pcalloc(cf->pool, m->nbuckets * sizeof(*m->buckets));
    if (m->buckets == NULL
        || ed_array_init(&m->head_wild, cf->pool, 2, sizeof(void *)) != ED_OK
        || ed_array_init(&m->tail_wild, cf->pool, 2, sizeof(void *)) != ED_OK
        || ed_array_init(&m->regexes, cf->pool, 2,
                         sizeof(ed_http_map_regex_t)) != ED_OK)
    {
        return ed_conf_error(cf, node, "out of memory");
    }
    for (i = 0; i < n; i++) {
        if (ed_http_map_entry(cf, m, m->entries->items[2 * i],
                              m->entries->items[2 * i + 1]) != ED_OK)
        {
            rc = ED_ERROR;
        }
    }
    return rc;
}

static const char *
ed_http_map_set_maps(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                     void *conf)
{
    size_t i;

    ed_unused(key);
    ed_unused(conf);
    if (node->type == ED_NODE_SCALAR && node->value.len == 0
        && !node->quoted)
    {
        return NULL;
    }
    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of name -> map";
    }
    for (i = 0; i < node->n; i++) {
        ed_http_map_apply(cf, node->items[2 * i], node->items[2 * i + 1]);
    }
    return NULL;
}

/* The maps a map's templates use. */
static size_t
ed_http_map_uses(ed_http_map_t *m, ed_http_map_t **out, size_t max)
{
    ed_http_map_entry_t **e;
    ed_http_map_regex_t  *rx;
    ed_http_conf_var_t  **o = (ed_http_conf_var_t **)out;
    size_t                i, n = 0;

#define ED_MAP_USES(t)                                                       \
    if ((t) && n < max) {                                                    \
        n += ed_http_template_conf_vars((t), o + n, max - n);               \
    }
    ED_MAP_USES(m->source);
    ED_MAP_USES(m->def);
    for (i = 0; i < m->nbuckets; i++) {
        ED_MAP_USES(m->buckets[i] ? m->buckets[i]->value : NULL);
    }
    e = m->head_wild.elts;
    for (i = 0; i < m->head_wild.nelts; i++) {
        ED_MAP_USES(e[i]->value);
    }
    e = m->tail_wild.elts;
    for (i = 0; i < m->tail_wild.nelts; i++) {
        ED_MAP_USES(e[i]->value);
    }
    rx = m->regexes.elts;
    for (i = 0; i < m->regexes.nelts; i++) {
        ED_MAP_USES(rx[i].value);
    }
#undef ED_MAP_USES
    return n < max ? n : max;
}

#define ED_MAP_USES_MAX 64

/* Depth-first: visit 1 on the path, 2 done. Returns the map that closes
 * a cycle through m, or NULL. */
static ed_http_map_t *
ed_http_map_cycle(ed_http_map_t *m, ed_http_map_t **via)
{
    ed_http_map_t *uses[ED_MAP_USES_MAX], *c;
    size_t         i, n;

    if (m->visit == 1) {
        return m;
    }
    if (m->visit == 2) {
        return NULL;
    }
    m->visit = 1;
    n = ed_http_map_uses(m, uses, ED_MAP_USES_MAX);
    for (i = 0; i < n; i++) {
        c = ed_http_map_cycle(uses[i], via);
        if (c) {
            /* The outermost step is set last: the map m uses. */
            *via = uses[i];
            return c;
        }
    }
    m->visit = 2;
    return NULL;
}

/* Every map named in a template was defined; none uses itself, through
 * others or not (its value would need its value). */
static int
ed_http_map_postconf(ed_conf_t *cf)
{
    ed_http_map_main_conf_t *mcf = ed_http_map_mcf(cf->cycle);
    ed_http_map_t          **m, *c, *via;
    size_t                   i, j;

    if (mcf == NULL || mcf->maps.elts == NULL) {
        return ED_OK;
    }
    m = mcf->maps.elts;
    for (i = 0; i < mcf->maps.nelts; i++) {
        if (m[i]->node == NULL) {
            /* Named by the `maps` key, which failed for it. */
            return ED_ERROR;
        }
    }
    for (i = 0; i < mcf->maps.nelts; i++) {
        for (j = 0; j < mcf->maps.nelts; j++) {
            m[j]->visit = 0;
        }
        via = NULL;
        c = ed_http_map_cycle(m[i], &via);
        if (c == m[i]) {
            return ed_conf_error(cf, m[i]->source_node, "map \"%s\" uses "
                                 "itself through $%s: a cycle between maps",
                                 m[i]->name.data,
                                 via ? via->name.data : m[i]->name.data);
        }
    }
    return ED_OK;
}

static pcre2_match_data *ed_http_map_md;

/* The longest wildcard of list matching host (lowercased). */
static ed_http_map_entry_t *
ed_http_map_wild(const ed_array_t *list, const ed_str_t *host, bool head)
{
    ed_http_map_entry_t **e = list->elts, *best = NULL;
    const ed_str_t       *k;
    size_t                i;

    for (i = 0; i < list->nelts; i++) {
        k = &e[i]->key;
        if (best && k->len <= best->key.len) {
            continue;
        }
        if (head) {
            /* ".a.com": "x.a.com"; written ".a.com" also "a.com". */
            if ((host->len > k->len
                 && memcmp(host->data + host->len - k->len, k->data, k->len)
                        == 0)
                || (e[i]->node->value.data[0] == '.'
                    && host->len == k->len - 1
                    && memcmp(host->data, k->data + 1, host->len) == 0))
            {
                best = e[i];
            }
        } else if (host->len > k->len
                   && memcmp(host->data, k->data, k->len) == 0)
        {
            best = e[i];
        }
    }
    return best;
}

int
ed_http_map_lookup(ed_http_request_t *r, ed_http_map_t *m, ed_str_t *out)
{
    ed_http_map_regex_t *rx;
    ed_http_map_entry_t *e;
    ed_str_t             src, low;
    PCRE2_SIZE          *caps;
    char                 buf[256];
    uint32_t             n;
    size_t               i;
    int                  rc;

    if (ed_http_template_value(r, m->source, &src) != ED_OK) {
        return ED_ERROR;
    }
    low.len = src.len;
    if (m->hostnames) {
        while (low.len && src.data[low.len - 1] == '.') {
            low.len--;
        }
    }
    /* Most sources are short: lowercased on the stack. */
    low.data = low.len < sizeof(buf) ? buf
                                     : ed_pnalloc(r->pool, low.len + 1);
    if (low.data == NULL) {
        return ED_ERROR;
    }
    ed_strlow(low.data, src.data, low.len);
    low.data[low.len] = '\0';
    i = ed_http_map_hash(low.data, low.len) & (m->nbuckets - 1);
    for (; m->buckets[i]; i = (i + 1) & (m->nbuckets - 1)) {
        if (ed_str_eq(&m->buckets[i]->key, &low)) {
            return ed_http_template_run(r, m->buckets[i]->value, out);
        }
    }
    if (m->hostnames) {
        e = ed_http_map_wild(&m->head_wild, &low, true);
        if (e == NULL) {
            e = ed_http_map_wild(&m->tail_wild, &low, false);
        }
        if (e) {
            return ed_http_template_run(r, e->value, out);
        }
    }
    rx = m->regexes.elts;
    for (i = 0; i < m->regexes.nelts; i++) {
        if (ed_http_map_md == NULL) {
            ed_http_map_md = pcre2_match_data_create(64, NULL);
            if (ed_http_map_md == NULL) {
                return ED_ERROR;
            }
        }
        rc = ed_http_regex_exec(rx[i].re, rx[i].jit, src.data, src.len,
                                ed_http_map_md);
        if (rc < 0) {
            continue;
        }
        /* Copied: the value may use a map that matches a regex too. */
        n = rc == 0 ? 64 : (uint32_t)rc;
        caps = ed_palloc(r->pool, 2 * n * sizeof(PCRE2_SIZE));
        if (caps == NULL) {
            return ED_ERROR;
        }
        memcpy(caps, pcre2_get_ovector_pointer(ed_http_map_md),
               2 * n * sizeof(PCRE2_SIZE));
        return ed_http_template_run_caps(r, rx[i].value, src.data, caps, n,
                                         rx[i].re, out);
    }
    if (m->def == NULL) {
        out->data = (char *)"";
        out->len = 0;
        return ED_OK;
    }
    return ed_http_template_run(r, m->def, out);
}

/* $NAME: computed on first use, then kept for the request. */
static int
ed_http_map_get(ed_http_request_t *r, ed_http_conf_var_t *v, ed_str_t *out)
{
    ed_http_map_t     *m = (ed_http_map_t *)v;
    ed_http_map_val_t *vals = r->maps, *val;

    if (vals == NULL) {
        vals = ed_pcalloc(r->pool,
                          m->mcf->maps.nelts * sizeof(ed_http_map_val_t));
        if (vals == NULL) {
            return ED_ERROR;
        }
        r->maps = vals;
    }
    val = &vals[m->index];
    if (val->state == 2) {
        *out = val->value;
        return ED_OK;
    }
    if (val->state == 1) {
        /* A cycle, which the load refuses: never reached. */
        return ED_DECLINED;
    }
    val->state = 1;
    if (ed_http_map_lookup(r, m, &val->value) != ED_OK) {
        val->state = 0;
        return ED_ERROR;
    }
    val->state = 2;
    *out = val->value;
    return ED_OK;
}
