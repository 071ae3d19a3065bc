/* The limit_req module: `limit_req: {key, rate, burst, status}` limits
 * the request rate per key value with a leaky bucket shared by every
 * worker; requests beyond rate plus burst are refused at once (no
 * delaying). Runs in the access phase, after access. */
#include "ed_http_explain.h"
#include "ed_rate.h"

typedef struct {
    ed_node_t          *node;     /* the block (ed_conf_block_t) */
    ed_http_template_t *key;
    int64_t             rate;     /* milli-requests per second */
    int                 burst;
    int                 status;
    ed_rate_table_t    *table;    /* one per limit_req block */
} ed_http_limit_req_t;

typedef struct {
    ed_http_limit_req_t *limit;
} ed_http_limit_req_conf_t;

/* A zone a request was counted in (r->limit_req is the list): internal
 * redirects run the access phase again, and a request counts once per
 * zone, as nginx counts it once. */
typedef struct ed_http_limit_req_seen_s ed_http_limit_req_seen_t;

struct ed_http_limit_req_seen_s {
    const ed_http_limit_req_t *limit;
    ed_http_limit_req_seen_t  *next;
};

static const char *ed_http_limit_req_set_rate(ed_conf_t *cf,
                                              const ed_key_t *key,
                                              ed_node_t *node, void *conf);
static const char *ed_http_limit_req_check_block(ed_conf_t *cf,
                                                 ed_node_t *node,
                                                 void *block);
static int ed_http_limit_req_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_limit_req_explain(ed_explain_t *ex);

static const ed_conf_bounds_t ed_http_limit_req_burst = { 0, ED_BURST_MAX };
static const ed_conf_bounds_t ed_http_limit_req_status = { 400, 599 };

#define ED_LRKEY(name, flags, set, field, arg, def)                          \
    { name, ED_CTX_ANY_HTTP, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_limit_req_t, field), arg, def }

/* The keys of a `limit_req` block: a block is inherited whole, so they
 * are not inherited one by one. */
static const ed_key_t ed_http_limit_req_block_keys[] = {
    ED_LRKEY("key", ED_KEY_PTR, ed_http_set_key_template, key, NULL,
             "$remote_addr"),
    ED_LRKEY("rate", ED_KEY_NONE, ed_http_limit_req_set_rate, rate, NULL,
             NULL),
    ED_LRKEY("burst", ED_KEY_INT, ed_conf_set_int, burst,
             &ed_http_limit_req_burst, "0"),
    ED_LRKEY("status", ED_KEY_INT, ed_conf_set_int, status,
             &ed_http_limit_req_status, "429"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_limit_req_block = {
    .name = "limit_req",
    .keys = ed_http_limit_req_block_keys,
    .size = sizeof(ed_http_limit_req_t),
    .check = ed_http_limit_req_check_block,
    .expect = "expected a mapping {key, rate, burst, status}",
};

static const ed_key_t ed_http_limit_req_keys[] = {
    { "limit_req", ED_CTX_ANY_HTTP, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_limit_req_conf_t, limit), &ed_http_limit_req_block,
      NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_limit_req_module = {
    .name = "limit_req",
    .keys = ed_http_limit_req_keys,
    .conf_size = { 0, 0, sizeof(ed_http_limit_req_conf_t), 0 },
    .attach = ed_http_limit_req_attach,
    .explain = ed_http_limit_req_explain,
};

/* rate: 10r/s or 30r/m. Returns NULL or a message. */
static const char *
ed_http_limit_req_set_rate(ed_conf_t *cf, const ed_key_t *key,
                           ed_node_t *node, void *conf)
{
    ed_http_limit_req_t *lr = conf;
    int64_t              rate;

    ed_unused(cf);
    ed_unused(key);
    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    rate = ed_rate_parse(node->value.data, node->value.len);
    if (rate < 0) {
        return "expected a rate like 10r/s or 30r/m (at most 1000000r/s)";
    }
    lr->rate = rate;
    return NULL;
}

/* A block needs a rate; its buckets live in memory every worker forked
 * later shares. Returns NULL or a message. */
static const char *
ed_http_limit_req_check_block(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_limit_req_t *lr = block;

    if (ed_conf_get(node, "rate") == NULL) {
        return "expected \"rate\" in limit_req, such as rate: 10r/s";
    }
    lr->table = ed_rate_table_create(cf->pool);
    if (lr->table == NULL) {
        ed_conf_error(cf, node, "making the shared table of limit_req "
                      "failed: %s", strerror(errno));
    }
    return NULL;
}

static int
ed_http_limit_req_check(ed_http_request_t *r)
{
    ed_http_limit_req_conf_t *lcf;
    ed_http_limit_req_t      *lr;
    ed_http_limit_req_seen_t *seen;
    ed_str_t                  key;
    int                       rc;

    lcf = ed_http_loc_conf(r, ed_http_limit_req_module);
    lr = lcf->limit;
    for (seen = r->limit_req; seen; seen = seen->next) {
        if (seen->limit == lr) {
            /* Counted (or refused) before an internal redirect. */
            return ED_DECLINED;
        }
    }
    if (ed_http_template_run(r, lr->key, &key) != ED_OK) {
        return 500;
    }
    if (key.len == 0) {
        /* An empty key is not limited (nginx's rule). */
        return ED_DECLINED;
    }
    seen = ed_palloc(r->pool, sizeof(ed_http_limit_req_seen_t));
    if (seen == NULL) {
        return 500;
    }
    seen->limit = lr;
    seen->next = r->limit_req;
    r->limit_req = seen;
    rc = ed_rate_table_take(lr->table,
                            ed_rate_hash(lr->table, key.data, key.len),
                            ed_current_msec, lr->rate, lr->burst);
    if (rc == ED_OK) {
        return ED_DECLINED;
    }
    if (rc == ED_DECLINED) {
        ed_http_log(ED_LOG_WARN, r, 0, "limiting requests, excess over "
                    "rate %lld.%03lldr/s plus burst %lld by key \"%s\", "
                    "location: \"%s\"", (long long)(lr->rate / 1000),
                    (long long)(lr->rate % 1000), (long long)lr->burst,
                    ed_http_log_str(r, key.data, key.len, 256),
                    r->loc->name.data);
        return lr->status;
    }
    /* A full table refuses new keys rather than forget the buckets of
     * keys still over their rate; said once a minute, not per request. */
    if (ed_rate_table_full_report(lr->table, ed_current_msec)) {
        ed_http_log(ED_LOG_ERR, r, 0, "limit_req table is full: "
                    "requests of new keys are refused until buckets refill "
                    "(%d buckets), key \"%s\", location: \"%s\"",
                    ED_RATE_SLOTS, ed_http_log_str(r, key.data, key.len, 256),
                    r->loc->name.data);
    }
    return lr->status;
}

static int
ed_http_limit_req_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_limit_req_conf_t *lcf;

    lcf = ed_http_conf_at(loc, ed_http_limit_req_module);
    if (lcf->limit == NULL) {
        return ED_OK;
    }
    return ed_http_access_add(cf, loc, ed_http_limit_req_check);
}

/* eddy explain: the limit and this request's key; whether the key's
 * bucket has room is in the running server's shared memory, which
 * explain does not read. */
static int
ed_http_limit_req_explain(ed_explain_t *ex)
{
    ed_http_limit_req_conf_t *lcf;
    ed_http_limit_req_t      *lr;
    ed_node_t                *rate, *key;
    ed_str_t                  k = ed_null_string;
    const char               *from;

    lcf = ed_http_conf_at(ex->loc, ed_http_limit_req_module);
    lr = lcf->limit;
    if (ex->phase != ED_EXPLAIN_RULES || lr == NULL) {
        return ED_DECLINED;
    }
    from = ed_explain_from(ex, NULL, "limit_req", NULL, 0);
    rate = ed_conf_get(lr->node, "rate");
    key = ed_conf_get(lr->node, "key");
    if (ed_http_template_run(ex->r, lr->key, &k) != ED_OK) {
        k.len = 0;
    }
    ed_explain_rule_runtime(ex, "limit_req", "%s burst %d, key %s = %s, "
                            "status %d (%s)",
                            rate ? rate->value.data : "?", lr->burst,
                            key ? key->value.data : "$remote_addr",
                            k.len ? ed_explain_quote(ex, k.data, k.len, 80)
                                  : "\"\" (not limited)",
                            lr->status, from);
    return ED_OK;
}
