/* The redirect module: `redirect: URL` (301) or `redirect: {to, status}`,
 * where URL may use variables and the location's captures. */
#include "ed_http_explain.h"

typedef struct {
    int                 status;   /* 0: not configured here */
    ed_http_template_t *to;
} ed_http_redirect_conf_t;

static const char *ed_http_redirect_set(ed_conf_t *cf, const ed_key_t *key,
                                        ed_node_t *node, void *conf);
static int ed_http_redirect_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_redirect_explain(ed_explain_t *ex);

static const ed_key_t ed_http_redirect_keys[] = {
    { "redirect", ED_CTX_LOCATION, ED_KEY_NONE, ed_http_redirect_set,
      ED_CONF_LOC, 0, NULL, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_redirect_module = {
    .name = "redirect",
    .keys = ed_http_redirect_keys,
    .conf_size = { 0, 0, sizeof(ed_http_redirect_conf_t), 0 },
    .attach = ed_http_redirect_attach,
    .explain = ed_http_redirect_explain,
};

static const char *
ed_http_redirect_target(ed_conf_t *cf, ed_http_redirect_conf_t *rcf,
                        ed_node_t *node)
{
    const char *err;

    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected a URL";
    }
    rcf->to = ed_http_template_compile(cf, node, &err);
    return rcf->to ? NULL : err;
}

static const char *
ed_http_redirect_set(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                     void *conf)
{
    ed_http_redirect_conf_t *rcf = conf;
    ed_node_t               *to = NULL;
    const char              *err;
    int64_t                  status;
    size_t                   i;

    ed_unused(key);
    rcf->status = 301;
    if (node->type == ED_NODE_SCALAR) {
        return ed_http_redirect_target(cf, rcf, node);
    }
    if (node->type != ED_NODE_MAP) {
        return "expected a URL or {to, status}";
    }
    for (i = 0; i < node->n; i++) {
        ed_node_t  *k = node->items[2 * i], *v = node->items[2 * i + 1];

        if (strcmp(k->value.data, "to") == 0) {
            to = v;
        } else if (strcmp(k->value.data, "status") == 0) {
            status = v->type == ED_NODE_SCALAR
                         ? ed_atoi(v->value.data, v->value.len)
                         : -1;
            if (status != 301 && status != 302 && status != 303
                && status != 307 && status != 308)
            {
                ed_conf_error(cf, v, "invalid redirect status: expected "
                              "301, 302, 303, 307 or 308");
                continue;
            }
            rcf->status = (int)status;
        } else {
            ed_conf_error(cf, k, "unknown key \"%s\" in redirect; expected "
                          "\"to\" or \"status\"", k->value.data);
        }
    }
    if (to == NULL) {
        return "expected \"to\" in redirect";
    }
    err = ed_http_redirect_target(cf, rcf, to);
    if (err) {
        ed_conf_error(cf, to, "invalid redirect target: %s", err);
    }
    return NULL;
}

static int
ed_http_redirect_handler(ed_http_request_t *r)
{
    ed_http_redirect_conf_t *rcf;
    ed_str_t                 to;
    static const ed_str_t    html = ed_string("text/html");
    char                     body[256];
    size_t                   n;

    rcf = ed_http_loc_conf(r, ed_http_redirect_module);
    if (ed_http_template_run(r, rcf->to, &to) != ED_OK) {
        return 500;
    }
    /* A variable may bring control characters ($uri is decoded): the
     * head writer %-encodes them in Location, as every byte a URI
     * cannot hold. */
    if (ed_http_add_header(r, "Location", 8, to.data, to.len) != ED_OK) {
        return 500;
    }
    n = ed_http_status_page(rcf->status, body, sizeof(body));
    return ed_http_send_response(r, rcf->status, &html, body, n)
                   == ED_OK
               ? ED_OK
               : ED_ERROR;
}

static int
ed_http_redirect_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_redirect_conf_t *rcf;

    rcf = ed_http_conf_at(loc, ed_http_redirect_module);
    if (rcf->status == 0) {
        return ED_OK;
    }
    if (loc->handler) {
        ed_conf_error(cf, loc->node, "a location has one content handler; "
                      "\"redirect\" conflicts with another one");
        return ED_ERROR;
    }
    loc->handler = ed_http_redirect_handler;
    return ED_OK;
}

/* eddy explain: the target as written and as this request expands it. */
static int
ed_http_redirect_explain(ed_explain_t *ex)
{
    ed_http_redirect_conf_t *rcf;
    ed_node_t               *node;
    ed_str_t                 to;
    const char              *from;
    char                     num[16];

    rcf = ed_http_conf_at(ex->loc, ed_http_redirect_module);
    if (ex->loc->handler != ed_http_redirect_handler) {
        return ED_DECLINED;
    }
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_explain_handler(ex, "redirect");
        from = ed_explain_from(ex, NULL, "redirect", &node, 0);
        if (node && node->type == ED_NODE_MAP) {
            from = ed_explain_from(ex, "redirect", "to", &node, 0);
        }
        ed_explain_set(ex, "to", node ? node->value.data : "", from);
        snprintf(num, sizeof(num), "%d", rcf->status);
        from = ed_explain_from(ex, "redirect", "status", &node, 1);
        ed_explain_set(ex, "status", num, node ? from : "default");
        return ED_OK;
    }
    if (ex->phase != ED_EXPLAIN_RESULT) {
        return ED_DECLINED;
    }
    if (ed_http_template_run(ex->r, rcf->to, &to) != ED_OK) {
        ed_explain_result(ex, 500, "the target cannot be evaluated");
        return ED_OK;
    }
    ed_explain_result(ex, rcf->status, "%s: Location: %.*s",
                      ed_http_status_text(rcf->status), (int)to.len,
                      to.data);
    ed_explain_field(ex, "location", to.data, to.len);
    return ED_OK;
}
