/* The headers module: `headers: {set, add, remove}` edits the response
 * headers of every response of its scope (main, server or location; the
 * nearest level's block wins whole), error responses included. */
#include "ed_http_explain.h"

typedef struct {
    ed_str_t            name;
    ed_http_template_t *value;
} ed_http_headers_item_t;

typedef struct {
    ed_http_headers_item_t *set;     /* replace (case-insensitive name) */
    size_t                  nset;
    ed_http_headers_item_t *add;     /* append */
    size_t                  nadd;
    ed_str_t               *remove;
    size_t                  nremove;
} ed_http_headers_t;

typedef struct {
    ed_http_headers_t *headers;
} ed_http_headers_conf_t;

static const char *ed_http_headers_set(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static int ed_http_headers_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_headers_explain(ed_explain_t *ex);

static const ed_key_t ed_http_headers_keys[] = {
    { "headers", ED_CTX_ANY_HTTP, ED_KEY_PTR | ED_KEY_INHERIT,
      ed_http_headers_set, ED_CONF_LOC,
      offsetof(ed_http_headers_conf_t, headers), NULL, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static int ed_http_headers_filter(ed_http_request_t *r,
                                  const ed_http_filter_t *self);

/* A header filter only, last in modules.list: its set and remove have
 * the last word over what other filters (gzip, range) wrote. */
static const ed_http_filter_t ed_http_headers_out_filter = {
    .name = "headers",
    .header = ed_http_headers_filter,
};

ed_module_t ed_http_headers_module = {
    .name = "headers",
    .keys = ed_http_headers_keys,
    .conf_size = { 0, 0, sizeof(ed_http_headers_conf_t), 0 },
    .attach = ed_http_headers_attach,
    .explain = ed_http_headers_explain,
};

/* Written by core (or gzip) from the response itself: a second copy, or
 * none, would contradict the framing or the body's encoding. */
static const char *ed_http_headers_core[] = {
    "Server", "Date", "Content-Length", "Content-Type", "Transfer-Encoding",
    "Connection", "Content-Encoding", NULL
};

static bool
ed_http_headers_token(const ed_str_t *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t            i;

    if (s->len == 0) {
        return false;
    }
    for (i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->data[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z') || (c && strchr(tchar, c))))
        {
            return false;
        }
    }
    return true;
}

/* Checks a header name node. NULL, or a message. */
static const char *
ed_http_headers_name(const ed_node_t *node)
{
    size_t i;

    if (node->type != ED_NODE_SCALAR || !ed_http_headers_token(&node->value))
    {
        return "invalid header name: expected a token such as X-Frame-Options";
    }
    for (i = 0; ed_http_headers_core[i]; i++) {
        if (strcasecmp(node->value.data, ed_http_headers_core[i]) == 0) {
            return "is written by eddy itself and cannot be set, added or "
                   "removed (Server, Date, Content-Length, Content-Type, "
                   "Transfer-Encoding and Connection are)";
        }
    }
    return NULL;
}

/* set/add: a mapping of name -> value (a string with variables). */
static int
ed_http_headers_items(ed_conf_t *cf, ed_node_t *map, const char *what,
                      ed_http_headers_item_t **items, size_t *n)
{
    ed_http_headers_item_t *it;
    const char             *err;
    size_t                  i;

    if (map->type != ED_NODE_MAP) {
        return ed_conf_error(cf, map, "expected a mapping of header name -> "
                             "value in headers.%s", what);
    }
    *items = ed_pcalloc(cf->pool, (map->n ? map->n : 1) * sizeof(**items));
    if (*items == NULL) {
        return ed_conf_error(cf, map, "out of memory");
    }
    for (i = 0; i < map->n; i++) {
        ed_node_t *k = map->items[2 * i], *v = map->items[2 * i + 1];

        err = ed_http_headers_name(k);
        if (err) {
            ed_conf_error(cf, k, "header \"%s\" in headers.%s: %s",
                          k->value.data, what, err);
            continue;
        }
        if (v->type != ED_NODE_SCALAR
            || !ed_http_field_ok(&v->value, ED_HTTP_C_VALUE))
        {
            ed_conf_error(cf, v, "invalid value for header \"%s\" in "
                          "headers.%s: expected one line of text without "
                          "control characters", k->value.data, what);
            continue;
        }
        it = &(*items)[(*n)++];
        it->name = k->value;
        it->value = ed_http_template_compile(cf, v, &err);
        if (it->value == NULL) {
            ed_conf_error(cf, v, "invalid value for header \"%s\": %s",
                          k->value.data, err);
        }
    }
    return ED_OK;
}

/* remove: a list of names (or one name). */
static int
ed_http_headers_remove(ed_conf_t *cf, ed_node_t *node, ed_http_headers_t *h)
{
    ed_node_t  **items = &node;
    const char  *err;
    size_t       i, n = 1;

    if (node->type == ED_NODE_SEQ) {
        items = node->items;
        n = node->n;
    } else if (node->type != ED_NODE_SCALAR) {
        return ed_conf_error(cf, node, "expected a list of header names in "
                             "headers.remove");
    }
    h->remove = ed_pcalloc(cf->pool, (n ? n : 1) * sizeof(ed_str_t));
    if (h->remove == NULL) {
        return ed_conf_error(cf, node, "out of memory");
    }
    for (i = 0; i < n; i++) {
        err = ed_http_headers_name(items[i]);
        if (err) {
            ed_conf_error(cf, items[i], "header \"%s\" in headers.remove: %s",
                          items[i]->type == ED_NODE_SCALAR
                              ? items[i]->value.data
                              : "",
                          err);
            continue;
        }
        h->remove[h->nremove++] = items[i]->value;
    }
    return ED_OK;
}

/* headers: {set: {Name: value}, add: {Name: value}, remove: [Name]} */
static const char *
ed_http_headers_set(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    ed_http_headers_t *h;
    size_t             i;

    if (node->type != ED_NODE_MAP) {
        return "expected a mapping with set, add and/or remove";
    }
    h = ed_pcalloc(cf->pool, sizeof(ed_http_headers_t));
    if (h == NULL) {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        ed_node_t  *k = node->items[2 * i], *v = node->items[2 * i + 1];
        const char *name = k->value.data;

        if (strcmp(name, "set") == 0) {
            ed_http_headers_items(cf, v, name, &h->set, &h->nset);
        } else if (strcmp(name, "add") == 0) {
            ed_http_headers_items(cf, v, name, &h->add, &h->nadd);
        } else if (strcmp(name, "remove") == 0) {
            ed_http_headers_remove(cf, v, h);
        } else {
            ed_conf_error(cf, k, "unknown key \"%s\" in headers; expected "
                          "set, add or remove", name);
        }
    }
    *(ed_http_headers_t **)((char *)conf + key->offset) = h;
    return NULL;
}

static bool
ed_http_headers_listed(const ed_str_t *name, const ed_http_headers_t *h)
{
    size_t i;

    for (i = 0; i < h->nremove; i++) {
        if (ed_str_caseeq(name, h->remove[i].data)) {
            return true;
        }
    }
    for (i = 0; i < h->nset; i++) {
        if (ed_str_caseeq(name, h->set[i].name.data)) {
            return true;
        }
    }
    return false;
}

/* Appends the evaluated items. A value that comes out empty adds nothing
 * (so `set` with an empty variable just removes); one that a variable
 * filled with control characters is dropped by the head writer, which
 * checks every header. */
static int
ed_http_headers_append(ed_http_request_t *r,
                       const ed_http_headers_item_t *it, size_t n)
{
    ed_str_t v;
    size_t   i;

    for (i = 0; i < n; i++) {
        if (ed_http_template_run(r, it[i].value, &v) != ED_OK) {
            return ED_ERROR;
        }
        if (v.len == 0) {
            continue;
        }
        if (ed_http_add_header(r, it[i].name.data, it[i].name.len, v.data,
                               v.len) != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ED_OK;
}

static int
ed_http_headers_filter(ed_http_request_t *r, const ed_http_filter_t *self)
{
    ed_http_headers_conf_t  *hcf = ed_http_loc_conf(r, ed_http_headers_module);
    const ed_http_headers_t *h = hcf->headers;
    ed_http_out_header_t    *o = r->headers_out.elts;
    size_t                   i, n = 0;

    ed_unused(self);
    /* Drop what is removed or replaced, keeping the others' order. */
    for (i = 0; i < r->headers_out.nelts; i++) {
        if (!ed_http_headers_listed(&o[i].name, h)) {
            o[n++] = o[i];
        }
    }
    r->headers_out.nelts = n;
    if (ed_http_headers_append(r, h->set, h->nset) != ED_OK
        || ed_http_headers_append(r, h->add, h->nadd) != ED_OK)
    {
        return ED_ERROR;
    }
    return ED_OK;
}

static int
ed_http_headers_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_headers_conf_t *hcf = ed_http_conf_at(loc, ed_http_headers_module);
    ed_http_headers_t      *h = hcf->headers;

    /* `headers: {}` at a nearer level cancels an outer block. */
    if (h && (h->nset || h->nadd || h->nremove)) {
        return ed_http_filter_add(cf, loc, &ed_http_headers_out_filter);
    }
    return ED_OK;
}

/* eddy explain: the edits of the nearest `headers` block, each where
 * it is written. */
static int
ed_http_headers_explain(ed_explain_t *ex)
{
    static const char      *ops[] = { "set", "add", "remove" };
    ed_http_headers_conf_t *hcf = ed_http_conf_at(ex->loc,
                                                  ed_http_headers_module);
    ed_http_headers_t      *h = hcf->headers;
    ed_node_t              *node, *op, *k, *v;
    char                    buf[600], at[400];
    size_t                  i, j;

    if (ex->phase != ED_EXPLAIN_FILTERS || h == NULL
        || (h->nset == 0 && h->nadd == 0 && h->nremove == 0))
    {
        return ED_DECLINED;
    }
    ed_explain_from(ex, NULL, "headers", &node, 0);
    ed_explain_handler(ex, "headers");
    for (i = 0; i < 3; i++) {
        op = ed_conf_get(node, ops[i]);
        for (j = 0; op && j < (op->type == ED_NODE_MAP ? op->n
                               : op->type == ED_NODE_SEQ ? op->n : 1);
             j++)
        {
            if (op->type == ED_NODE_MAP) {
                k = op->items[2 * j];
                v = op->items[2 * j + 1];
                snprintf(buf, sizeof(buf), "%.200s: %.380s", k->value.data,
                         v->value.data);
            } else {
                v = op->type == ED_NODE_SEQ ? op->items[j] : op;
                snprintf(buf, sizeof(buf), "%.500s", v->value.data);
            }
            snprintf(at, sizeof(at), "%.380s:%u:%u", v->file, v->line,
                     v->col);
            ed_explain_set(ex, ops[i], buf, at);
        }
    }
    return ED_OK;
}
