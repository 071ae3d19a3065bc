/* The return module: answers with a fixed status and an optional body
 * with variables. `return: 204` or `return: {status, body, content_type}`. */
#include "ed_http_explain.h"

typedef struct {
    int                 status;     /* 0: not configured here */
    ed_http_template_t *body;
    ed_str_t            content_type;
} ed_http_return_conf_t;

static const char *ed_http_return_set(ed_conf_t *cf, const ed_key_t *key,
                                      ed_node_t *node, void *conf);
static int ed_http_return_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_return_explain(ed_explain_t *ex);

static const ed_key_t ed_http_return_keys[] = {
    { "return", ED_CTX_LOCATION, ED_KEY_NONE, ed_http_return_set,
      ED_CONF_LOC, 0, NULL, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_return_module = {
    .name = "return",
    .keys = ed_http_return_keys,
    .conf_size = { 0, 0, sizeof(ed_http_return_conf_t), 0 },
    .attach = ed_http_return_attach,
    .explain = ed_http_return_explain,
};

static const char *
ed_http_return_status(ed_node_t *node, int *status)
{
    int64_t n;

    if (node->type != ED_NODE_SCALAR) {
        return "expected a status code";
    }
    n = ed_atoi(node->value.data, node->value.len);
    if (n < 100 || n > 599) {
        return "expected a status code from 100 to 599";
    }
    *status = (int)n;
    return NULL;
}

static const char *
ed_http_return_set(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                   void *conf)
{
    ed_http_return_conf_t *rcf = conf;
    const char            *err;
    size_t                 i;

    ed_unused(key);
    ed_str_set(&rcf->content_type, "text/plain");
    if (node->type == ED_NODE_SCALAR) {
        return ed_http_return_status(node, &rcf->status);
    }
    if (node->type != ED_NODE_MAP) {
        return "expected a status or {status, body, content_type}";
    }
    rcf->status = 200;
    for (i = 0; i < node->n; i++) {
        ed_node_t  *k = node->items[2 * i], *v = node->items[2 * i + 1];
        const char *name = k->value.data;

        if (strcmp(name, "status") == 0) {
            err = ed_http_return_status(v, &rcf->status);
        } else if (strcmp(name, "body") == 0) {
            err = NULL;
            if (v->type != ED_NODE_SCALAR) {
                err = "expected a string";
            } else {
                rcf->body = ed_http_template_compile(cf, v, &err);
            }
        } else if (strcmp(name, "content_type") == 0) {
            err = NULL;
            if (v->type != ED_NODE_SCALAR || v->value.len == 0
                || !ed_http_field_ok(&v->value, ED_HTTP_C_VALUE))
            {
                err = "expected a media type";
            } else {
                rcf->content_type = v->value;
            }
        } else {
            ed_conf_error(cf, k, "unknown key \"%s\" in return; expected "
                          "status, body or content_type", name);
            continue;
        }
        if (err) {
            ed_conf_error(cf, v, "invalid value for \"return.%s\": %s", name,
                          err);
        }
    }
    return NULL;
}

static int
ed_http_return_handler(ed_http_request_t *r)
{
    ed_http_return_conf_t *rcf = ed_http_loc_conf(r, ed_http_return_module);
    ed_str_t               body = ed_null_string;

    if (rcf->body
        && ed_http_template_run(r, rcf->body, &body) != ED_OK)
    {
        return 500;
    }
    if (rcf->body == NULL && rcf->status >= 300) {
        /* A bare error status gets the standard error page. */
        return rcf->status;
    }
    return ed_http_send_response(r, rcf->status,
                                 body.len ? &rcf->content_type : NULL,
                                 body.data, body.len)
                   == ED_OK
               ? ED_OK
               : ED_ERROR;
}

static int
ed_http_return_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_return_conf_t *rcf = ed_http_conf_at(loc, ed_http_return_module);

    if (rcf->status == 0) {
        return ED_OK;
    }
    if (loc->handler) {
        ed_conf_error(cf, loc->node, "a location has one content handler; "
                      "\"return\" conflicts with another one");
        return ED_ERROR;
    }
    loc->handler = ed_http_return_handler;
    loc->subrequest = 1;
    return ED_OK;
}

/* eddy explain: the status and the body as this request would get
 * them. */
static int
ed_http_return_explain(ed_explain_t *ex)
{
    ed_http_return_conf_t *rcf = ed_http_conf_at(ex->loc,
                                                 ed_http_return_module);
    ed_str_t               body = ed_null_string;
    ed_node_t             *node, *v;
    const char            *from;
    char                   num[16];

    if (ex->loc->handler != ed_http_return_handler) {
        return ED_DECLINED;
    }
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_explain_handler(ex, "return");
        ed_explain_from(ex, NULL, "return", &node, 0);
        snprintf(num, sizeof(num), "%d", rcf->status);
        if (node && node->type == ED_NODE_SCALAR) {
            from = ed_explain_from(ex, NULL, "return", NULL, 1);
        } else if (ed_conf_get(node, "status")) {
            from = ed_explain_from(ex, "return", "status", NULL, 1);
        } else {
            from = "default";
        }
        ed_explain_set(ex, "status", num, from);
        if (rcf->body) {
            v = ed_conf_get(node, "body");
            ed_explain_set(ex, "body", ed_explain_quote(ex, v->value.data,
                                                        v->value.len, 80),
                           ed_explain_from(ex, "return", "body", NULL, 1));
            v = ed_conf_get(node, "content_type");
            ed_explain_set(ex, "content_type", rcf->content_type.data,
                           v ? ed_explain_from(ex, "return", "content_type",
                                               NULL, 2)
                             : "default");
        }
        return ED_OK;
    }
    if (ex->phase != ED_EXPLAIN_RESULT) {
        return ED_DECLINED;
    }
    if (rcf->body && ed_http_template_run(ex->r, rcf->body, &body) != ED_OK) {
        ed_explain_result(ex, 500, "the body cannot be evaluated");
        return ED_OK;
    }
    if (rcf->body == NULL && rcf->status >= 300) {
        ed_explain_result(ex, rcf->status, "%s: the error page of the "
                          "status", ed_http_status_text(rcf->status));
        return ED_OK;
    }
    ed_explain_result(ex, rcf->status, "%s, %zu bytes%s%s%s",
                      ed_http_status_text(rcf->status), body.len,
                      body.len ? " of " : "",
                      body.len ? rcf->content_type.data : "",
                      body.len ? ": " : "");
    if (body.len) {
        ed_explain_printf(&ex->head, "%s",
                          ed_explain_quote(ex, body.data, body.len, 200));
        ed_explain_field(ex, "body", body.data, body.len);
        ed_explain_field(ex, "content_type", rcf->content_type.data,
                         rcf->content_type.len);
    }
    return ED_OK;
}
