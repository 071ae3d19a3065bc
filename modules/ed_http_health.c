/* The health module: `health: true` or `health: {require_upstreams:
 * [app]}` answers a balancer's check. 200 "ok" while serving; 503
 * "draining" during QUIT's drain_delay (the master's flag in shared
 * memory), so that the balancer takes the host out before its listeners
 * close; 503 "upstream NAME down" when a required group has no server
 * left (the upstream servers' shared health state). */
#include "ed_http_explain.h"
#include "ed_http_upstream.h"
#include "ed_stats.h"

typedef struct {
    ed_node_t           *node;     /* the value; NULL: not set here */
    unsigned             enabled:1;
    ed_node_t          **names;    /* require_upstreams, as written */
    size_t               nnames;
    ed_http_upstream_t **groups;   /* resolved in attach */
} ed_http_health_conf_t;

typedef struct {
    unsigned used:1;               /* some location answers health */
} ed_http_health_main_conf_t;

static const char *ed_http_health_set(ed_conf_t *cf, const ed_key_t *key,
                                      ed_node_t *node, void *conf);
static int ed_http_health_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_health_postconf(ed_conf_t *cf);
static int ed_http_health_explain(ed_explain_t *ex);

static const ed_key_t ed_http_health_keys[] = {
    { "health", ED_CTX_LOCATION, ED_KEY_NONE, ed_http_health_set,
      ED_CONF_LOC, 0, NULL, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_health_module = {
    .name = "health",
    .keys = ed_http_health_keys,
    .conf_size = { sizeof(ed_http_health_main_conf_t), 0,
                   sizeof(ed_http_health_conf_t), 0 },
    .attach = ed_http_health_attach,
    .postconf = ed_http_health_postconf,
    .explain = ed_http_health_explain,
};

static const char *
ed_http_health_set(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                   void *conf)
{
    ed_http_health_conf_t *hcf = conf;
    ed_node_t             *k, *v, **items;
    size_t                 i, n;
    int                    b;

    ed_unused(key);
    hcf->node = node;
    if (node->type == ED_NODE_SCALAR) {
        b = ed_conf_parse_bool(node->value.data, node->value.len);
        if (b < 0) {
            return "expected true, false or {require_upstreams: [NAME]}";
        }
        hcf->enabled = b;
        return NULL;
    }
    if (node->type != ED_NODE_MAP) {
        return "expected true, false or {require_upstreams: [NAME]}";
    }
    hcf->enabled = 1;
    for (i = 0; i < node->n; i++) {
        k = node->items[2 * i];
        v = node->items[2 * i + 1];
        if (strcmp(k->value.data, "require_upstreams") != 0) {
            ed_conf_error(cf, k, "unknown key \"%s\" in health; expected "
                          "require_upstreams", k->value.data);
            continue;
        }
        /* One name alone is a list of one. */
        items = v->type == ED_NODE_SCALAR ? &v : v->items;
        n = v->type == ED_NODE_SCALAR ? 1 : v->n;
        if (v->type != ED_NODE_SCALAR && v->type != ED_NODE_SEQ) {
            ed_conf_error(cf, v, "invalid value for "
                          "\"health.require_upstreams\": expected a list "
                          "of upstream names");
            continue;
        }
        hcf->names = ed_palloc(cf->pool, (n ? n : 1) * sizeof(ed_node_t *));
        if (hcf->names == NULL) {
            return "out of memory";
        }
        for (hcf->nnames = 0; hcf->nnames < n; hcf->nnames++) {
            if (items[hcf->nnames]->type != ED_NODE_SCALAR
                || items[hcf->nnames]->value.len == 0)
            {
                ed_conf_error(cf, items[hcf->nnames], "invalid value for "
                              "\"health.require_upstreams\": expected an "
                              "upstream name");
                break;
            }
            hcf->names[hcf->nnames] = items[hcf->nnames];
        }
    }
    return NULL;
}

/* The first required group with every server down, or NULL. */
static ed_http_upstream_t *
ed_http_health_down(const ed_http_health_conf_t *hcf, ed_msec_t now)
{
    ed_http_upstream_t *ups;
    size_t              i, j;

    for (i = 0; i < hcf->nnames; i++) {
        ups = hcf->groups[i];
        for (j = 0; j < ups->nservers; j++) {
            if (ed_http_upstream_available(&ups->servers[j], now)) {
                break;
            }
        }
        if (j == ups->nservers) {
            return ups;
        }
    }
    return NULL;
}

static int
ed_http_health_handler(ed_http_request_t *r)
{
    static const ed_str_t  type = ed_string("text/plain");
    ed_http_health_conf_t *hcf = ed_http_loc_conf(r, ed_http_health_module);
    ed_http_upstream_t    *ups;
    const char            *body;
    char                  *buf;
    size_t                 len;
    int                    status = 200;

    if (r->head.method_id != ED_HTTP_GET && r->head.method_id != ED_HTTP_HEAD)
    {
        if (ed_http_add_header(r, "Allow", 5, "GET, HEAD", 9) != ED_OK) {
            return 500;
        }
        return 405;
    }
    if (ed_http_add_header(r, "Cache-Control", 13, "no-store", 8) != ED_OK) {
        return 500;
    }
    if (ed_stats_draining()) {
        status = 503;
        body = "draining\n";
        len = 9;
        r->keepalive = 0;
    } else if ((ups = ed_http_health_down(hcf, ed_current_msec)) != NULL) {
        status = 503;
        len = ups->name.len + sizeof("upstream  down\n") - 1;
        buf = ed_pnalloc(r->pool, len + 1);
        if (buf == NULL) {
            return 500;
        }
        snprintf(buf, len + 1, "upstream %.*s down\n", (int)ups->name.len,
                 ups->name.data);
        body = buf;
    } else {
        body = "ok\n";
        len = 3;
    }
    return ed_http_send_response(r, status, &type, body, len) == ED_OK
               ? ED_OK
               : ED_ERROR;
}

static int
ed_http_health_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_health_conf_t      *hcf = ed_http_conf_at(loc,
                                                      ed_http_health_module);
    ed_http_health_main_conf_t *hmcf;
    size_t                      i;
    int                         rc = ED_OK;

    if (hcf->node == NULL || !hcf->enabled) {
        return ED_OK;
    }
    if (loc->handler) {
        ed_conf_error(cf, loc->node, "a location has one content handler; "
                      "\"health\" conflicts with another one");
        return ED_ERROR;
    }
    if (hcf->nnames && hcf->groups == NULL) {
        hcf->groups = ed_pcalloc(cf->pool,
                                 hcf->nnames * sizeof(ed_http_upstream_t *));
        if (hcf->groups == NULL) {
            return ed_conf_error(cf, hcf->node, "out of memory");
        }
        for (i = 0; i < hcf->nnames; i++) {
            hcf->groups[i] = ed_http_upstream_find(cf,
                                                   &hcf->names[i]->value);
            if (hcf->groups[i] == NULL) {
                ed_conf_error(cf, hcf->names[i], "unknown upstream \"%s\" "
                              "in health.require_upstreams",
                              hcf->names[i]->value.data);
                rc = ED_ERROR;
            }
        }
        if (rc != ED_OK) {
            return rc;
        }
    }
    hmcf = cf->cycle->main_conf[ed_http_health_module.index];
    hmcf->used = 1;
    loc->handler = ed_http_health_handler;
    return ED_OK;
}

/* After every location's attach: drain_delay without a health location
 * drains for nothing, as the balancer cannot see it. */
static int
ed_http_health_postconf(ed_conf_t *cf)
{
    ed_http_health_main_conf_t *hmcf;
    ed_core_conf_t             *ccf = ed_core_conf(cf->cycle);

    hmcf = cf->cycle->main_conf[ed_http_health_module.index];
    if (ccf->drain_delay > 0 && !hmcf->used) {
        ed_conf_warn(cf, ed_conf_get(cf->cycle->root, "drain_delay"),
                     "drain_delay is set but no location uses \"health\": "
                     "a balancer cannot see the drain");
    }
    return ED_OK;
}

/* eddy explain: what the check answers; the drain and the upstreams'
 * health are the running server's state. */
static int
ed_http_health_explain(ed_explain_t *ex)
{
    ed_http_health_conf_t *hcf = ed_http_conf_at(ex->loc,
                                                 ed_http_health_module);
    ed_explain_buf_t       b;
    ed_http_request_t     *r = ex->r;
    ed_node_t             *node;
    const char            *from;
    size_t                 i;

    if (ex->loc->handler != ed_http_health_handler) {
        return ED_DECLINED;
    }
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_explain_handler(ex, "health");
        from = ed_explain_from(ex, NULL, "health", &node, 0);
        if (node && node->type == ED_NODE_MAP) {
            from = ed_explain_from(ex, "health", "require_upstreams", NULL,
                                   1);
        }
        memset(&b, 0, sizeof(b));
        ed_explain_lit(&b, "[");
        for (i = 0; i < hcf->nnames; i++) {
            ed_explain_printf(&b, "%s%s", i ? ", " : "",
                              hcf->names[i]->value.data);
        }
        ed_explain_lit(&b, "]");
        ed_explain_set(ex, "require_upstreams", b.failed ? "" : b.data,
                       hcf->nnames ? from : "default");
        ed_explain_buf_free(&b);
        return ED_OK;
    }
    if (ex->phase != ED_EXPLAIN_RESULT) {
        return ED_DECLINED;
    }
    if (r->head.method_id != ED_HTTP_GET && r->head.method_id != ED_HTTP_HEAD)
    {
        ed_explain_result(ex, 405, "health answers GET and HEAD only "
                          "(Allow: GET, HEAD)");
        return ED_OK;
    }
    ed_explain_result(ex, 200, "\"ok\" while serving (text/plain, "
                      "Cache-Control: no-store)");
    ed_explain_step(ex, "503 \"draining\" during drain_delay after QUIT");
    for (i = 0; i < hcf->nnames; i++) {
        ed_explain_step(ex, "503 \"upstream %s down\" when every server of "
                        "upstream %s is down (state not consulted)",
                        hcf->names[i]->value.data,
                        hcf->names[i]->value.data);
    }
    return ED_OK;
}
