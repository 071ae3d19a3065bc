/* The limit_conn module: `limit_conn: {key, max, status, zone_size}` (or
 * a list of them) caps the requests in progress per key value across
 * every worker. A request holds its slot from the access phase to its
 * end (a WebSocket tunnel: until it closes); the counters live in a
 * shared table per rule (src/core/ed_slots.c), and the master gives back
 * the slots of a worker that dies. Runs in the access phase after
 * limit_req. */
#include "ed_http_explain.h"
#include "ed_slots.h"

typedef struct {
    ed_node_t          *node;     /* the block (ed_conf_block_t) */
    ed_http_template_t *key;
    int                 max;
    int                 status;
    size_t              zone_size;
    ed_slots_t         *table;    /* made at postconf */
} ed_http_limit_conn_t;

typedef struct {
    ed_array_t *limits;   /* ed_http_limit_conn_t * */
} ed_http_limit_conn_conf_t;

typedef struct {
    ed_array_t rules;     /* ed_http_limit_conn_t *, every block */
} ed_http_limit_conn_main_t;

/* A slot a request holds (r->limit_conn is the list): given back when
 * its pool is reset; an internal redirect runs the access phase again,
 * and a rule counts the request once. */
typedef struct ed_http_limit_conn_held_s ed_http_limit_conn_held_t;

struct ed_http_limit_conn_held_s {
    const ed_http_limit_conn_t *limit;
    uint64_t                    hash;
    uint32_t                    index;
    unsigned                    taken:1;  /* 0: refused, nothing held */
    ed_http_limit_conn_held_t  *next;
};

static const char *ed_http_limit_conn_check_block(ed_conf_t *cf,
                                                  ed_node_t *node,
                                                  void *block);
static int ed_http_limit_conn_postconf(ed_conf_t *cf);
static int ed_http_limit_conn_attach(ed_conf_t *cf, ed_http_location_t *loc);
static void ed_http_limit_conn_worker_gone(ed_cycle_t *cycle, int id);
static int ed_http_limit_conn_explain(ed_explain_t *ex);

static const ed_conf_bounds_t ed_http_limit_conn_max = { 1, 1000000 };
static const ed_conf_bounds_t ed_http_limit_conn_status = { 400, 599 };

#define ED_LCKEY(name, flags, set, field, arg, def)                          \
    { name, ED_CTX_ANY_HTTP, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_limit_conn_t, field), arg, def }

static const ed_key_t ed_http_limit_conn_block_keys[] = {
    ED_LCKEY("key", ED_KEY_PTR, ed_http_set_key_template, key, NULL,
             "$remote_addr"),
    ED_LCKEY("max", ED_KEY_INT, ed_conf_set_int, max,
             &ed_http_limit_conn_max, NULL),
    ED_LCKEY("status", ED_KEY_INT, ed_conf_set_int, status,
             &ed_http_limit_conn_status, "503"),
    ED_LCKEY("zone_size", ED_KEY_SIZE, ed_conf_set_size, zone_size, NULL,
             "1m"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_limit_conn_block = {
    .name = "limit_conn",
    .keys = ed_http_limit_conn_block_keys,
    .size = sizeof(ed_http_limit_conn_t),
    .check = ed_http_limit_conn_check_block,
    .expect = "expected a mapping {key, max, status, zone_size} or a list "
              "of them",
    .list = 1,
};

static const ed_key_t ed_http_limit_conn_keys[] = {
    { "limit_conn", ED_CTX_ANY_HTTP, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_limit_conn_conf_t, limits),
      &ed_http_limit_conn_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_limit_conn_module = {
    .name = "limit_conn",
    .keys = ed_http_limit_conn_keys,
    .conf_size = { sizeof(ed_http_limit_conn_main_t), 0,
                   sizeof(ed_http_limit_conn_conf_t), 0 },
    .postconf = ed_http_limit_conn_postconf,
    .attach = ed_http_limit_conn_attach,
    .explain = ed_http_limit_conn_explain,
    .worker_gone = ed_http_limit_conn_worker_gone,
};

static ed_http_limit_conn_main_t *
ed_http_limit_conn_main(ed_cycle_t *cycle)
{
    return cycle && cycle->main_conf
               ? cycle->main_conf[ed_http_limit_conn_module.index]
               : NULL;
}

/* A block needs max; its table is made at postconf, when the number of
 * workers is known. Returns NULL or a message. */
static const char *
ed_http_limit_conn_check_block(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_limit_conn_main_t *lm = ed_http_limit_conn_main(cf->cycle);
    ed_http_limit_conn_t      *lc = block, **slot;

    if (ed_conf_get(node, "max") == NULL) {
        return "expected \"max\" in limit_conn, such as max: 10";
    }
    if (lm == NULL) {
        return NULL;
    }
    if (lm->rules.elts == NULL
        && ed_array_init(&lm->rules, cf->pool, 4, sizeof(void *)) != ED_OK)
    {
        return "out of memory";
    }
    slot = ed_array_push(&lm->rules);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = lc;
    return NULL;
}

/* The tables, sized by zone_size for the workers of this cycle, in
 * memory every worker forked later shares: a reload makes new ones. */
static int
ed_http_limit_conn_postconf(ed_conf_t *cf)
{
    ed_http_limit_conn_main_t *lm = ed_http_limit_conn_main(cf->cycle);
    ed_http_limit_conn_t     **lc;
    unsigned                   workers;
    size_t                     i;
    int                        rc = ED_OK;

    if (lm == NULL || lm->rules.elts == NULL) {
        return ED_OK;
    }
    workers = (unsigned)ed_max(cf->cycle->workers, 1);
    lc = lm->rules.elts;
    for (i = 0; i < lm->rules.nelts; i++) {
        if (ed_slots_capacity(lc[i]->zone_size, workers) == 0) {
            rc = ed_conf_error(cf, ed_conf_get(lc[i]->node, "zone_size")
                                       ? ed_conf_get(lc[i]->node,
                                                     "zone_size")
                                       : lc[i]->node,
                               "zone_size %zu is too small for the "
                               "counters of %u worker%s", lc[i]->zone_size,
                               workers, workers == 1 ? "" : "s");
            continue;
        }
        lc[i]->table = ed_slots_create(cf->pool, lc[i]->zone_size, workers);
        if (lc[i]->table == NULL) {
            rc = ed_conf_error(cf, lc[i]->node, "making the shared table "
                               "of limit_conn failed: %s", strerror(errno));
        }
    }
    return rc;
}

/* The master: worker id of this cycle is gone, its slots come back. */
static void
ed_http_limit_conn_worker_gone(ed_cycle_t *cycle, int id)
{
    ed_http_limit_conn_main_t *lm = ed_http_limit_conn_main(cycle);
    ed_http_limit_conn_t     **lc;
    size_t                     i;

    if (lm == NULL || lm->rules.elts == NULL || id < 0) {
        return;
    }
    lc = lm->rules.elts;
    for (i = 0; i < lm->rules.nelts; i++) {
        if (lc[i]->table) {
            ed_slots_worker_gone(lc[i]->table, (unsigned)id);
        }
    }
}

/* The request's pool is reset: its response is over (or its connection
 * closed, or its tunnel). */
static void
ed_http_limit_conn_cleanup(void *data)
{
    ed_http_limit_conn_held_t *h;

    for (h = data; h; h = h->next) {
        if (h->taken) {
            ed_slots_release(h->limit->table, h->index, h->hash,
                             (unsigned)ed_worker->id);
        }
    }
}

static int
ed_http_limit_conn_one(ed_http_request_t *r, const ed_http_limit_conn_t *lc)
{
    ed_http_limit_conn_held_t *h;
    ed_str_t                   key;
    uint32_t                   index;
    int                        rc;

    for (h = r->limit_conn; h; h = h->next) {
        if (h->limit == lc) {
            /* Counted (or refused) before an internal redirect. */
            return ED_DECLINED;
        }
    }
    if (ed_http_template_run(r, lc->key, &key) != ED_OK) {
        return 500;
    }
    if (key.len == 0) {
        /* An empty key is not limited (nginx's rule). */
        return ED_DECLINED;
    }
    h = ed_pcalloc(r->pool, sizeof(ed_http_limit_conn_held_t));
    if (h == NULL) {
        return 500;
    }
    if (r->limit_conn == NULL
        && ed_pool_cleanup_add(r->pool, ed_http_limit_conn_cleanup, h)
               != ED_OK)
    {
        return 500;
    }
    /* Linked after the first: the cleanup walks from it. */
    h->limit = lc;
    h->hash = ed_slots_hash(lc->table, key.data, key.len);
    if (r->limit_conn) {
        h->next = ((ed_http_limit_conn_held_t *)r->limit_conn)->next;
        ((ed_http_limit_conn_held_t *)r->limit_conn)->next = h;
    } else {
        r->limit_conn = h;
    }
    rc = ed_slots_acquire(lc->table, h->hash, (unsigned)ed_worker->id,
                          (uint32_t)lc->max, &index);
    if (rc == ED_OK) {
        h->index = index;
        h->taken = 1;
        return ED_DECLINED;
    }
    if (rc == ED_DECLINED) {
        ed_http_log(ED_LOG_WARN, r, 0, "limiting connections by key "
                    "\"%s\"", ed_http_log_str(r, key.data, key.len, 256));
        return lc->status;
    }
    if (rc == ED_ERROR) {
        ed_http_log(ED_LOG_ERR, r, 0, "limit_conn table unusable");
        return 500;
    }
    /* A full table refuses new keys rather than forget the counters of
     * keys in use; said once a minute, not per request. */
    if (ed_slots_full_report(lc->table, ed_current_msec)) {
        ed_http_log(ED_LOG_ERR, r, 0, "limit_conn table is full: requests "
                    "of new keys are refused until counters are free "
                    "(zone_size %zu), key \"%s\"", lc->zone_size,
                    ed_http_log_str(r, key.data, key.len, 256));
    }
    return lc->status;
}

static int
ed_http_limit_conn_check(ed_http_request_t *r)
{
    ed_http_limit_conn_conf_t *lcf;
    ed_http_limit_conn_t     **lc;
    size_t                     i;
    int                        rc;

    lcf = ed_http_loc_conf(r, ed_http_limit_conn_module);
    lc = lcf->limits->elts;
    for (i = 0; i < lcf->limits->nelts; i++) {
        rc = ed_http_limit_conn_one(r, lc[i]);
        if (rc != ED_DECLINED) {
            return rc;
        }
    }
    return ED_DECLINED;
}

static int
ed_http_limit_conn_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_limit_conn_conf_t *lcf;

    lcf = ed_http_conf_at(loc, ed_http_limit_conn_module);
    if (lcf->limits == NULL || lcf->limits->nelts == 0) {
        return ED_OK;
    }
    return ed_http_access_add(cf, loc, ed_http_limit_conn_check);
}

/* eddy explain: each rule and this request's key; how many slots the key
 * holds is in the running server's shared memory, which explain does not
 * read. */
static int
ed_http_limit_conn_explain(ed_explain_t *ex)
{
    ed_http_limit_conn_conf_t *lcf;
    ed_http_limit_conn_t     **lc;
    ed_node_t                 *key;
    ed_str_t                   k;
    const char                *from;
    size_t                     i;

    lcf = ed_http_conf_at(ex->loc, ed_http_limit_conn_module);
    if (ex->phase != ED_EXPLAIN_RULES || lcf->limits == NULL
        || lcf->limits->nelts == 0)
    {
        return ED_DECLINED;
    }
    from = ed_explain_from(ex, NULL, "limit_conn", NULL, 0);
    lc = lcf->limits->elts;
    for (i = 0; i < lcf->limits->nelts; i++) {
        key = ed_conf_get(lc[i]->node, "key");
        if (ed_http_template_run(ex->r, lc[i]->key, &k) != ED_OK) {
            k.len = 0;
        }
        ed_explain_rule_runtime(ex, "limit_conn", "max %d in progress, key "
                                "%s = %s, status %d (%s)", lc[i]->max,
                                key ? key->value.data : "$remote_addr",
                                k.len ? ed_explain_quote(ex, k.data, k.len,
                                                         80)
                                      : "\"\" (not limited)",
                                lc[i]->status, from);
    }
    return ED_OK;
}
