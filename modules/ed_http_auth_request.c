/* The auth_request module: `auth_request: {uri, timeout, copy_headers}`
 * asks another location of the server whether a request may go on, with
 * a subrequest (ed_http_subrequest.c) for uri that carries the client's
 * headers and X-Original-URI, X-Original-Method. Last in the access
 * phase, after auth_basic: every cheaper refusal comes first. It runs
 * before the request body is read, so a client waiting for 100 Continue
 * gets it only once the request is allowed.
 *
 * The answer decides: 2xx goes on (copy_headers set on the request from
 * it), 401 is a 401 with its WWW-Authenticate, 403 a 403; any other
 * status, the timeout or a failed answer is a 500, logged. */
#include "ed_http_explain.h"

/* The answer's body is dropped; past this much, its connection is
 * closed rather than read on. */
#define ED_AUTH_REQ_BODY_MAX (64 * 1024)

typedef struct {
    ed_node_t  *node;          /* the block (ed_conf_block_t) */
    ed_str_t    uri;           /* a path, as written */
    ed_msec_t   timeout;
    ed_array_t *copy_headers;  /* ed_str_t */
    /* The server whose auth location was last checked (postconf). */
    ed_http_server_t *checked;
    unsigned    off:1;         /* `auth_request: off` */
} ed_http_auth_request_t;

typedef struct {
    ed_http_auth_request_t *auth;
} ed_http_auth_request_conf_t;

/* One request's asking. */
typedef struct {
    ed_http_request_t      *r;
    ed_http_auth_request_t *ar;
    ed_http_request_t      *sr;
    ed_timer_t              timer;
    size_t                  body;     /* answer body bytes seen */
    int                     status;   /* $auth_status; 0: none yet */
    unsigned                overflow:1;
} ed_auth_req_ctx_t;

static const char *ed_http_auth_request_scalar(ed_conf_t *cf,
                                               ed_node_t *node, void *block);
static const char *ed_http_auth_request_set_uri(ed_conf_t *cf,
                                                const ed_key_t *key,
                                                ed_node_t *node, void *conf);
static const char *ed_http_auth_request_set_copy(ed_conf_t *cf,
                                                 const ed_key_t *key,
                                                 ed_node_t *node,
                                                 void *conf);
static const char *ed_http_auth_request_check_block(ed_conf_t *cf,
                                                    ed_node_t *node,
                                                    void *block);
static int ed_http_auth_request_attach(ed_conf_t *cf,
                                       ed_http_location_t *loc);
static int ed_http_auth_request_postconf(ed_conf_t *cf);
static int ed_http_auth_request_check(ed_http_request_t *r);
static int ed_http_auth_request_explain(ed_explain_t *ex);
static int ed_http_auth_request_var_status(ed_http_request_t *r,
                                           ed_str_t *out);

#define ED_ARKEY(name, flags, set, field, def)                               \
    { name, ED_CTX_ANY_HTTP, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_auth_request_t, field), NULL, def }

/* The block is inherited whole (the nearest level wins). */
static const ed_key_t ed_http_auth_request_block_keys[] = {
    ED_ARKEY("uri", ED_KEY_STR, ed_http_auth_request_set_uri, uri, NULL),
    ED_ARKEY("timeout", ED_KEY_MSEC, ed_conf_set_msec, timeout, "5s"),
    ED_ARKEY("copy_headers", ED_KEY_PTR, ed_http_auth_request_set_copy,
             copy_headers, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_auth_request_block = {
    .name = "auth_request",
    .keys = ed_http_auth_request_block_keys,
    .size = sizeof(ed_http_auth_request_t),
    .scalar = ed_http_auth_request_scalar,
    .check = ed_http_auth_request_check_block,
    .expect = "expected off or a mapping {uri, timeout, copy_headers}",
};

static const ed_key_t ed_http_auth_request_keys[] = {
    { "auth_request", ED_CTX_ANY_HTTP, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_auth_request_conf_t, auth),
      &ed_http_auth_request_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_http_variable_t ed_http_auth_request_variables[] = {
    { "auth_status", ed_http_auth_request_var_status },
    { NULL, NULL }
};

ed_module_t ed_http_auth_request_module = {
    .name = "auth_request",
    .keys = ed_http_auth_request_keys,
    .conf_size = { 0, 0, sizeof(ed_http_auth_request_conf_t), 0 },
    .attach = ed_http_auth_request_attach,
    .postconf = ed_http_auth_request_postconf,
    .variables = ed_http_auth_request_variables,
    .explain = ed_http_auth_request_explain,
};

/* `auth_request: off` cancels an inherited one. */
static const char *
ed_http_auth_request_scalar(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_auth_request_t *ar = block;

    ed_unused(cf);
    if (ed_conf_parse_bool(node->value.data, node->value.len) != 0) {
        /* nginx's `auth_request /auth;` is the uri alone. */
        return "expected off or a mapping {uri, timeout, copy_headers} "
               "(nginx's auth_request string is uri)";
    }
    ar->off = 1;
    return NULL;
}

/* uri: a path (no query, no fragment) that normalises, so that it names
 * one location of the server for good. */
static const char *
ed_http_auth_request_set_uri(ed_conf_t *cf, const ed_key_t *key,
                             ed_node_t *node, void *conf)
{
    char   buf[1024];
    size_t n;

    if (node->type != ED_NODE_SCALAR || node->value.len == 0
        || node->value.data[0] != '/' || node->value.len >= sizeof(buf)
        || !ed_http_path_ok(node->value.data, node->value.len)
        || ed_http_normalize_path(node->value.data, node->value.len, buf, &n)
               != ED_OK)
    {
        return "expected a path such as /_auth (no query, no scheme)";
    }
    return ed_conf_set_str(cf, key, node, conf);
}

/* copy_headers: names a 2xx answer sets on the request; never the Host
 * nor the framing, nor hop-by-hop ones (they describe a connection). */
static const char *
ed_http_auth_request_set_copy(ed_conf_t *cf, const ed_key_t *key,
                              ed_node_t *node, void *conf)
{
    ed_node_t  *item;
    ed_str_t   *name;
    int         id;
    size_t      i, n;
    const char *err;

    err = ed_conf_set_str_list(cf, key, node, conf);
    if (err != NULL) {
        return err;
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        name = &item->value;
        if (!ed_http_field_ok(name, ED_HTTP_C_TOKEN)) {
            ed_conf_error(cf, item, "copy_headers: \"%s\" is not a header "
                          "name", name->data);
            continue;
        }
        id = ed_http_field_id(name->data, name->len);
        if (id == ED_HTTP_F_HOST || id == ED_HTTP_F_CONTENT_LENGTH
            || ed_http_hop_by_hop(name))
        {
            ed_conf_error(cf, item, "copy_headers: \"%s\" may not be "
                          "copied (Host, Content-Length and hop-by-hop "
                          "headers describe the request's framing and "
                          "connection)", name->data);
        }
    }
    return NULL;
}

static const char *
ed_http_auth_request_check_block(ed_conf_t *cf, ed_node_t *node,
                                 void *block)
{
    ed_http_auth_request_t *ar = block;

    ed_unused(cf);
    ed_unused(node);
    if (ar->off) {
        return NULL;
    }
    if (ar->uri.data == NULL) {
        return "expected \"uri\" in auth_request, such as uri: /_auth";
    }
    return NULL;
}

static int
ed_http_auth_request_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_auth_request_conf_t *acf;

    acf = ed_http_conf_at(loc, ed_http_auth_request_module);
    if (acf->auth == NULL || acf->auth->off || acf->auth->uri.data == NULL) {
        return ED_OK;
    }
    return ed_http_access_add(cf, loc, ed_http_auth_request_check);
}

/* The location that answers ar's uri in srv. */
static ed_http_location_t *
ed_auth_req_location(ed_http_server_t *srv, const ed_http_auth_request_t *ar)
{
    char     buf[1024];
    ed_str_t path;

    if (ed_http_normalize_path(ar->uri.data, ar->uri.len, buf, &path.len)
        != ED_OK)
    {
        return NULL;
    }
    path.data = buf;
    return ed_http_find_location(srv, NULL, &path);
}

/* Whether loc's auth_request can be answered in srv; an error at its
 * uri if not (once per block and server). */
static void
ed_auth_req_check_loc(ed_conf_t *cf, ed_http_server_t *srv,
                      ed_http_location_t *loc)
{
    ed_http_auth_request_conf_t *acf;
    ed_http_auth_request_t      *ar;
    ed_http_location_t          *al;
    ed_node_t                   *unode;

    acf = ed_http_conf_at(loc, ed_http_auth_request_module);
    ar = acf->auth;
    if (ar == NULL || ar->off || ar->uri.data == NULL || ar->checked == srv)
    {
        return;
    }
    ar->checked = srv;
    al = ed_auth_req_location(srv, ar);
    if (al != NULL && al->subrequest) {
        return;
    }
    unode = ed_conf_get(ar->node, "uri");
    ed_conf_error(cf, unode ? unode : ar->node, "auth_request uri \"%s\" "
                  "is answered in server #%u by %s%s%s, whose handler is "
                  "neither proxy nor return",
                  ar->uri.data, srv->index,
                  al && al != srv->fallback ? "location \"" : "no location",
                  al && al != srv->fallback ? al->name.data : "",
                  al && al != srv->fallback ? "\"" : "");
}

/* Every location's auth location exists once all are attached. */
static int
ed_http_auth_request_postconf(ed_conf_t *cf)
{
    ed_http_core_main_conf_t *cmcf;
    ed_http_server_t        **srvs;
    ed_http_location_t      **locs;
    size_t                    i, j;

    cmcf = cf->cycle->main_conf[ed_http_core_module.index];
    srvs = cmcf->servers.elts;
    for (i = 0; i < cmcf->servers.nelts; i++) {
        locs = srvs[i]->locations.elts;
        for (j = 0; j < srvs[i]->locations.nelts; j++) {
            if (locs[j]->conf) {
                ed_auth_req_check_loc(cf, srvs[i], locs[j]);
            }
        }
        if (srvs[i]->fallback) {
            ed_auth_req_check_loc(cf, srvs[i], srvs[i]->fallback);
        }
    }
    return ED_OK;
}

/* from[0..n) without the fields named in copy_headers, then the
 * answer's fields of those names (values copied out of the subrequest),
 * in r's pool with their count in *nout; NULL on ENOMEM. */
static ed_http_header_t *
ed_auth_req_fields(ed_auth_req_ctx_t *ctx, const ed_http_header_t *from,
                   size_t n, size_t *nout)
{
    ed_http_request_t    *r = ctx->r, *sr = ctx->sr;
    ed_str_t             *names = ctx->ar->copy_headers->elts;
    size_t                nnames = ctx->ar->copy_headers->nelts;
    ed_http_out_header_t *oh = sr->headers_out.elts;
    ed_http_header_t     *f;
    size_t                i, k, m = 0;

    f = ed_palloc(r->pool, (n + sr->headers_out.nelts)
                               * sizeof(ed_http_header_t));
    if (f == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < nnames; k++) {
            if (ed_http_token_eq(from[i].name.data, from[i].name.len,
                                 names[k].data, names[k].len))
            {
                break;
            }
        }
        if (k == nnames) {
            f[m++] = from[i];
        }
    }
    for (i = 0; i < sr->headers_out.nelts; i++) {
        for (k = 0; k < nnames; k++) {
            if (ed_http_token_eq(oh[i].name.data, oh[i].name.len,
                                 names[k].data, names[k].len))
            {
                break;
            }
        }
        if (k == nnames) {
            continue;
        }
        f[m].name = names[k];
        f[m].value.len = oh[i].value.len;
        f[m].value.data = ed_pstrdup(r->pool, oh[i].value.data,
                                     oh[i].value.len);
        if (f[m].value.data == NULL) {
            return NULL;
        }
        m++;
    }
    *nout = m;
    return f;
}

/* The answer's copy_headers replace the request's fields of those names
 * (a client's own goes even when the answer has none). ED_OK or
 * ED_ERROR. */
static int
ed_auth_req_copy(ed_auth_req_ctx_t *ctx)
{
    ed_http_req_head_t *h = &ctx->r->head;
    ed_http_header_t   *f;
    size_t              n;

    if (ctx->ar->copy_headers == NULL || ctx->ar->copy_headers->nelts == 0) {
        return ED_OK;
    }
    /* Both views: underscores_in_headers may show the fields again. */
    f = ed_auth_req_fields(ctx, h->fields, h->nfields, &n);
    if (f == NULL) {
        return ED_ERROR;
    }
    if (h->headers == h->fields) {
        h->headers = f;
        h->nheaders = n;
    } else {
        h->headers = ed_auth_req_fields(ctx, h->headers, h->nheaders,
                                        &h->nheaders);
        if (h->headers == NULL) {
            return ED_ERROR;
        }
    }
    h->fields = f;
    h->nfields = n;
    return ED_OK;
}

/* A 401's challenge goes to the client, out of the subrequest's pool. */
static int
ed_auth_req_challenge(ed_auth_req_ctx_t *ctx)
{
    ed_http_request_t    *r = ctx->r, *sr = ctx->sr;
    ed_http_out_header_t *oh = sr->headers_out.elts;
    char                 *v;
    size_t                i;

    ed_http_out_header_del(r, "WWW-Authenticate", 16);
    for (i = 0; i < sr->headers_out.nelts; i++) {
        if (!ed_http_token_eq_lit(oh[i].name.data, oh[i].name.len,
                                  "www-authenticate"))
        {
            continue;
        }
        v = ed_pstrdup(r->pool, oh[i].value.data, oh[i].value.len);
        if (v == NULL
            || ed_http_add_header(r, "WWW-Authenticate", 16, v,
                                  oh[i].value.len) != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ED_OK;
}

/* Ends the asking with rc for the access phase (ED_DECLINED: allowed). */
static void
ed_auth_req_end(ed_auth_req_ctx_t *ctx, int rc)
{
    ed_timer_del(ed_worker->loop, &ctx->timer);
    if (ctx->sr) {
        ed_http_subrequest_free(ctx->sr);
        ctx->sr = NULL;
    }
    ed_http_access_resume(ctx->r, rc);
}

static int
ed_auth_req_on_body(ed_http_request_t *sr, void *data,
                    const ed_http_piece_t *p)
{
    ed_auth_req_ctx_t *ctx = data;

    ed_unused(sr);
    ctx->body += p->len;
    if (ctx->body > ED_AUTH_REQ_BODY_MAX) {
        /* Dropped all the same: not worth reading on. */
        ctx->overflow = 1;
        return ED_ERROR;
    }
    return ED_OK;
}

static void
ed_auth_req_on_done(ed_http_request_t *sr, void *data, int rc)
{
    ed_auth_req_ctx_t *ctx = data;
    ed_http_request_t *r = ctx->r;
    int                status = sr->status;

    if (rc != ED_OK && !(ctx->overflow && sr->header_sent)) {
        ed_http_log(ED_LOG_ERR, r, 0, "auth request failed");
        ed_auth_req_end(ctx, 500);
        return;
    }
    ctx->status = status;
    if (status >= 200 && status < 300) {
        ed_auth_req_end(ctx, ed_auth_req_copy(ctx) == ED_OK ? ED_DECLINED
                                                             : 500);
        return;
    }
    if (status == 401) {
        ed_auth_req_end(ctx, ed_auth_req_challenge(ctx) == ED_OK ? 401
                                                                  : 500);
        return;
    }
    if (status == 403) {
        ed_auth_req_end(ctx, 403);
        return;
    }
    ed_http_log(ED_LOG_ERR, r, 0, "auth request unexpected status %d",
                status);
    ed_auth_req_end(ctx, 500);
}

static void
ed_auth_req_on_timeout(ed_timer_t *t)
{
    ed_auth_req_ctx_t *ctx = t->data;

    ed_http_log(ED_LOG_ERR, ctx->r, 0, "auth request timed out");
    ed_auth_req_end(ctx, 500);
}

static void
ed_auth_req_cleanup(void *data)
{
    ed_auth_req_ctx_t *ctx = data;

    ed_timer_del(ed_worker->loop, &ctx->timer);
}

static int
ed_http_auth_request_check(ed_http_request_t *r)
{
    ed_http_auth_request_conf_t *acf;
    ed_auth_req_ctx_t           *ctx;
    ed_http_sub_conf_t           c;
    ed_http_header_t            *h;

    acf = ed_http_loc_conf(r, ed_http_auth_request_module);
    ctx = ed_pcalloc(r->pool, sizeof(ed_auth_req_ctx_t));
    h = ed_palloc(r->pool, 2 * sizeof(ed_http_header_t));
    if (ctx == NULL || h == NULL
        || ed_pool_cleanup_add(r->pool, ed_auth_req_cleanup, ctx) != ED_OK)
    {
        return 500;
    }
    ctx->r = r;
    ctx->ar = acf->auth;
    ctx->timer.handler = ed_auth_req_on_timeout;
    ctx->timer.data = ctx;
    r->auth_request = ctx;
    /* What nginx users add by hand: the target as the client sent it. */
    ed_str_set(&h[0].name, "X-Original-URI");
    h[0].value = r->head.target;
    ed_str_set(&h[1].name, "X-Original-Method");
    h[1].value = r->head.method;
    memset(&c, 0, sizeof(c));
    c.uri = ctx->ar->uri;
    c.headers = h;
    c.nheaders = 2;
    c.body = ed_auth_req_on_body;
    c.done = ed_auth_req_on_done;
    c.data = ctx;
    ctx->sr = ed_http_subrequest(r, &c);
    if (ctx->sr == NULL) {
        return 500;
    }
    if (ctx->ar->timeout > 0) {
        ed_timer_add(ed_worker->loop, &ctx->timer, ctx->ar->timeout);
    }
    return ED_AGAIN;
}

static int
ed_http_auth_request_var_status(ed_http_request_t *r, ed_str_t *out)
{
    ed_auth_req_ctx_t *ctx = r->auth_request;
    char              *p;

    if (ctx == NULL || ctx->status == 0) {
        return ED_DECLINED;
    }
    p = ed_pnalloc(r->pool, 4);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->len = (size_t)snprintf(p, 4, "%03d", ctx->status);
    out->data = p;
    return ED_OK;
}

/* eddy explain: the verdict is the auth location's answer, which
 * explain does not ask for. */
static int
ed_http_auth_request_explain(ed_explain_t *ex)
{
    ed_http_auth_request_conf_t *acf;
    ed_http_auth_request_t      *ar;
    ed_http_location_t          *al;

    acf = ed_http_conf_at(ex->loc, ed_http_auth_request_module);
    ar = acf->auth;
    if (ex->phase != ED_EXPLAIN_RULES || ar == NULL || ar->off
        || ar->uri.data == NULL)
    {
        return ED_DECLINED;
    }
    al = ed_auth_req_location(ex->loc->server, ar);
    ed_explain_rule_runtime(ex, "auth_request", "a GET for %s answered by "
                            "location \"%s\" decides (2xx allows, 401 and "
                            "403 refuse, else 500; timeout %lums) (%s)",
                            ar->uri.data, al ? al->name.data : "?",
                            (unsigned long)ar->timeout,
                            ed_explain_from(ex, NULL, "auth_request", NULL,
                                            0));
    return ED_OK;
}
