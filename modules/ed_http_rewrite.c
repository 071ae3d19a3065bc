/* The rewrite module: `rewrite: [{regex, replacement, flag}, ...]` at a
 * server (run before the location is chosen) or a location (run after;
 * a URI changed without `break` chooses the location again). The phase
 * is core's (ed_http_choose in ed_http_phase.c); URI changes count with
 * internal redirects against ED_HTTP_REDIRECTS_MAX. */
#include "ed_http_rewrite.h"
#include "ed_http_explain.h"

static const char *ed_http_rewrite_check_rule(ed_conf_t *cf, ed_node_t *node,
                                              void *block);
static int ed_http_rewrite_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_rewrite_explain(ed_explain_t *ex);

static const ed_conf_enum_t ed_http_rewrite_flags[] = {
    { "none", ED_REWRITE_NONE },
    { "last", ED_REWRITE_LAST },
    { "break", ED_REWRITE_BREAK },
    { "redirect", ED_REWRITE_REDIRECT },
    { "permanent", ED_REWRITE_PERMANENT },
    { NULL, 0 }
};

#define ED_RWKEY(name, flags, set, field, arg, def)                          \
    { name, ED_CTX_SERVER | ED_CTX_LOCATION, flags, set, ED_CONF_LOC,        \
      offsetof(ed_http_rewrite_rule_t, field), arg, def }

static const ed_key_t ed_http_rewrite_rule_keys[] = {
    ED_RWKEY("regex", ED_KEY_PTR, ed_conf_set_node, regex, NULL, NULL),
    ED_RWKEY("replacement", ED_KEY_PTR, ed_conf_set_node, replacement, NULL,
             NULL),
    ED_RWKEY("flag", ED_KEY_INT, ed_conf_set_enum, flag,
             ed_http_rewrite_flags, "none"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_rewrite_block = {
    .name = "rewrite",
    .keys = ed_http_rewrite_rule_keys,
    .size = sizeof(ed_http_rewrite_rule_t),
    .check = ed_http_rewrite_check_rule,
    .expect = "expected a list of {regex, replacement, flag}",
    .list = 1,
};

/* Not inherited: a server's rules run once, before any location. */
static const ed_key_t ed_http_rewrite_keys[] = {
    { "rewrite", ED_CTX_SERVER | ED_CTX_LOCATION, ED_KEY_BLOCK,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_rewrite_conf_t, rules), &ed_http_rewrite_block,
      NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_rewrite_module = {
    .name = "rewrite",
    .keys = ed_http_rewrite_keys,
    .conf_size = { 0, 0, sizeof(ed_http_rewrite_conf_t), 0 },
    .attach = ed_http_rewrite_attach,
    .explain = ed_http_rewrite_explain,
};

/* Compiles a rule: the regex (JIT), then the replacement, whose $N and
 * names are checked against the regex's groups. */
static const char *
ed_http_rewrite_check_rule(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_rewrite_rule_t *rule = block;
    ed_http_cur_regex_t     cur;
    ed_node_t               to, args;
    const char             *err, *v, *q;
    size_t                  len;

    ed_unused(node);
    if (rule->regex == NULL) {
        return "expected \"regex\" in a rewrite rule";
    }
    if (rule->replacement == NULL) {
        return "expected \"replacement\" in a rewrite rule";
    }
    if (rule->regex->type != ED_NODE_SCALAR || rule->regex->value.len == 0) {
        ed_conf_error(cf, rule->regex, "expected a regular expression");
        return NULL;
    }
    rule->re = ed_http_regex_compile(cf->pool, rule->regex->value.data,
                                     rule->regex->value.len, false, &err);
    if (rule->re == NULL) {
        ed_conf_error(cf, rule->regex, "invalid regex \"%s\": %s",
                      rule->regex->value.data, err);
        return NULL;
    }
    rule->jit = ed_http_regex_jit(rule->re);
    if (rule->replacement->type != ED_NODE_SCALAR
        || rule->replacement->value.len == 0)
    {
        ed_conf_error(cf, rule->replacement, "expected a non-empty "
                      "replacement (a path, or a URL to redirect to)");
        return NULL;
    }
    v = rule->replacement->value.data;
    len = rule->replacement->value.len;
    rule->absolute = strncmp(v, "http://", 7) == 0
                     || strncmp(v, "https://", 8) == 0
                     || strncmp(v, "$scheme", 7) == 0
                     || strncmp(v, "${scheme}", 9) == 0;
    /* A trailing '?': the request's query is dropped. Then the query
     * part is what follows the first '?' as written. */
    to = *rule->replacement;
    if (len > 1 && v[len - 1] == '?') {
        rule->drop_args = 1;
        to.value.len--;
    }
    q = memchr(v, '?', to.value.len);
    if (q) {
        args = to;
        args.value.len = to.value.len - (size_t)(q + 1 - v);
        args.value.data = ed_pstrdup(cf->pool, q + 1, args.value.len);
        args.col += (unsigned)(q + 1 - v);
        to.value.len = (size_t)(q - v);
    }
    to.value.data = ed_pstrdup(cf->pool, v, to.value.len);
    if (to.value.data == NULL || (q && args.value.data == NULL)) {
        return "out of memory";
    }
    if (!rule->absolute && rule->flag != ED_REWRITE_REDIRECT
        && rule->flag != ED_REWRITE_PERMANENT && v[0] != '/' && v[0] != '$')
    {
        ed_conf_error(cf, rule->replacement, "an internal replacement must "
                      "start with '/' (or be a URL starting with http://, "
                      "https:// or $scheme, which redirects)");
        return NULL;
    }
    cur.pattern = rule->regex->value.data;
    cur.len = rule->regex->value.len;
    cur.re = rule->re;
    cur.written = "rewrite regex";
    ed_http_cur_regex = &cur;
    rule->to = ed_http_template_compile(cf, &to, &err);
    if (rule->to && q) {
        rule->args = ed_http_template_compile(cf, &args, &err);
    }
    ed_http_cur_regex = NULL;
    if (rule->to == NULL || (q && rule->args == NULL)) {
        ed_conf_error(cf, rule->replacement, "invalid replacement: %s", err);
    }
    return NULL;
}

static pcre2_match_data *ed_http_rewrite_md;

/* Whether s[0..len) holds CR, LF or NUL. */
static bool
ed_http_rewrite_ctl(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') {
            return true;
        }
    }
    return false;
}

int
ed_http_rewrite_normalize(char *p, size_t *len)
{
    size_t i = 0, o = 0, n = *len, seg;

    if (n == 0 || p[0] != '/') {
        return 500;
    }
    /* The common case, one pass: no CR, LF, NUL, and no "//" or "/."
     * to resolve. */
    for (i = 0; i < n; i++) {
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0') {
            return 500;
        }
        if (p[i] == '/' && i + 1 < n && (p[i + 1] == '/' || p[i + 1] == '.'))
        {
            break;
        }
    }
    if (i == n) {
        return ED_OK;
    }
    if (ed_http_rewrite_ctl(p + i, n - i)) {
        return 500;
    }
    i = 0;
    /* o: bytes kept; a '/' is written before each segment, once. */
    while (i < n) {
        while (i < n && p[i] == '/') {
            i++;
        }
        if (o == 0 || p[o - 1] != '/') {
            p[o++] = '/';
        }
        seg = i;
        while (i < n && p[i] != '/') {
            i++;
        }
        if (i - seg == 1 && p[seg] == '.') {
            continue;
        }
        if (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.') {
            /* Back over "name/" (o is after its '/'). */
            if (o == 1) {
                return 400;
            }
            o--;
            while (o > 0 && p[o - 1] != '/') {
                o--;
            }
            continue;
        }
        memmove(p + o, p + seg, i - seg);
        o += i - seg;
    }
    /* "/a/." or "/a/.." end with the '/' written for them; "/a" not. */
    *len = o;
    return ED_OK;
}

/* Joins a and b with sep between them (none when either is empty) in
 * r's pool. ED_OK or ED_ERROR. */
static int
ed_http_rewrite_join(ed_http_request_t *r, const ed_str_t *a, char sep,
                     const ed_str_t *b, ed_str_t *out)
{
    char *p;

    if (b->len == 0 || a->len == 0) {
        *out = b->len ? *b : *a;
        return ED_OK;
    }
    p = ed_pnalloc(r->pool, a->len + 1 + b->len + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    memcpy(p, a->data, a->len);
    p[a->len] = sep;
    memcpy(p + a->len + 1, b->data, b->len);
    p[a->len + 1 + b->len] = '\0';
    out->data = p;
    out->len = a->len + 1 + b->len;
    return ED_OK;
}

/* The rule's query: its own, then the request's after '&' (unless a
 * trailing '?' drops it). */
static int
ed_http_rewrite_query(ed_http_request_t *r,
                      const ed_http_rewrite_rule_t *rule,
                      const ed_str_t *own, ed_str_t *out)
{
    static const ed_str_t none = ed_null_string;

    return ed_http_rewrite_join(r, own, '&',
                                rule->drop_args ? &none : &r->head.query,
                                out);
}

/* The redirect of a rule: the path part, '?' and the query. */
static int
ed_http_rewrite_redirect(ed_http_request_t *r,
                         const ed_http_rewrite_rule_t *rule,
                         const ed_str_t *to, const ed_str_t *own,
                         ed_http_rewrite_result_t *res)
{
    ed_str_t q, loc;

    res->status = rule->flag == ED_REWRITE_PERMANENT ? 301 : 302;
    if (ed_http_rewrite_query(r, rule, own, &q) != ED_OK) {
        return ED_ERROR;
    }
    if (q.len) {
        if (ed_http_rewrite_join(r, to, '?', &q, &loc) != ED_OK) {
            return ED_ERROR;
        }
    } else {
        loc = *to;
    }
    res->location = loc;
    if (ed_http_rewrite_ctl(loc.data, loc.len)) {
        res->status = 500;
    }
    return ED_OK;
}

/* An internal result: the new path and query of r. */
static int
ed_http_rewrite_internal(ed_http_request_t *r,
                         const ed_http_rewrite_rule_t *rule, ed_str_t *to,
                         const ed_str_t *own, ed_http_rewrite_result_t *res)
{
    ed_str_t path = *to, args;
    int      rc;

    res->location = *to;
    if (ed_http_rewrite_ctl(own->data, own->len)) {
        res->status = 500;
        return ED_OK;
    }
    rc = ed_http_rewrite_normalize(path.data, &path.len);
    if (rc != ED_OK) {
        res->status = rc;
        return ED_OK;
    }
    if (ed_http_rewrite_query(r, rule, own, &args) != ED_OK) {
        return ED_ERROR;
    }
    if (rule->args || rule->drop_args) {
        if (ed_http_set_uri(r, &path, &args) != ED_OK) {
            return ED_ERROR;
        }
    } else {
        /* The template's own buffer (request pool, room for the NUL):
         * no copy. */
        path.data[path.len] = '\0';
        r->uri = path;
    }
    if (args.len == 0 && (rule->args || rule->drop_args)) {
        /* No query at all, not an empty one. */
        r->head.query.data = NULL;
        r->head.query.len = 0;
    }
    r->uri_rewritten = 1;
    res->changed = 1;
    return ED_OK;
}

int
ed_http_rewrite_apply(ed_http_request_t *r, const ed_array_t *rules,
                      ed_http_rewrite_result_t *res)
{
    ed_http_rewrite_rule_t **rule = rules->elts;
    PCRE2_SIZE              *ov;
    ed_str_t                 to, own;
    size_t                   i;
    uint32_t                 n;
    int                      rc;

    memset(res, 0, sizeof(*res));
    if (ed_http_rewrite_md == NULL) {
        ed_http_rewrite_md = pcre2_match_data_create(64, NULL);
        if (ed_http_rewrite_md == NULL) {
            return ED_ERROR;
        }
    }
    for (i = 0; i < rules->nelts; i++) {
        rc = ed_http_regex_exec(rule[i]->re, rule[i]->jit, r->uri.data,
                                r->uri.len, ed_http_rewrite_md);
        if (rc < 0) {
            continue;
        }
        res->rule = (unsigned)i + 1;
        n = rc == 0 ? 64 : (uint32_t)rc;
        ov = pcre2_get_ovector_pointer(ed_http_rewrite_md);
        own.len = 0;
        own.data = NULL;
        if (ed_http_template_run_caps(r, rule[i]->to, r->uri.data, ov, n,
                                      rule[i]->re, &to)
                != ED_OK
            || (ed_http_template_literal(rule[i]->to)
                && ed_str_dup(r->pool, &to, to.data, to.len) != ED_OK)
            || (rule[i]->args
                && ed_http_template_run_caps(r, rule[i]->args, r->uri.data,
                                             ov, n, rule[i]->re, &own)
                       != ED_OK))
        {
            return ED_ERROR;
        }
        if (rule[i]->absolute || rule[i]->flag == ED_REWRITE_REDIRECT
            || rule[i]->flag == ED_REWRITE_PERMANENT)
        {
            return ed_http_rewrite_redirect(r, rule[i], &to, &own, res);
        }
        if (ed_http_rewrite_internal(r, rule[i], &to, &own, res) != ED_OK) {
            return ED_ERROR;
        }
        if (res->status) {
            return ED_OK;
        }
        if (rule[i]->flag == ED_REWRITE_BREAK) {
            res->stop = 1;
            return ED_OK;
        }
        if (rule[i]->flag == ED_REWRITE_LAST) {
            return ED_OK;
        }
    }
    return ED_OK;
}

/* Runs rules for the phase (ed_http_rewrite_pt's codes). */
static int
ed_http_rewrite_run(ed_http_request_t *r, const ed_array_t *rules)
{
    static const ed_str_t    html = ed_string("text/html");
    ed_http_rewrite_result_t res;
    char                     body[256];
    size_t                   n;

    if (ed_http_rewrite_apply(r, rules, &res) != ED_OK) {
        return 500;
    }
    if (res.status == 301 || res.status == 302) {
        if (ed_http_add_header(r, "Location", 8, res.location.data,
                               res.location.len)
            != ED_OK)
        {
            return 500;
        }
        n = ed_http_status_page(res.status, body, sizeof(body));
        return ed_http_send_response(r, res.status, &html, body, n) == ED_OK
                   ? ED_OK
                   : ED_ERROR;
    }
    if (res.status == 500) {
        ed_http_log(ED_LOG_ERR, r, 0, "rewrite made \"%s\", which is not a "
                    "path (it must start with '/' and hold no CR, LF or "
                    "NUL)", ed_http_log_str(r, res.location.data,
                                            res.location.len, 256));
        return 500;
    }
    if (res.status) {
        return res.status;
    }
    if (!res.changed || res.stop) {
        return ED_DECLINED;
    }
    return ED_AGAIN;
}

static int
ed_http_rewrite_server(ed_http_request_t *r)
{
    ed_http_rewrite_conf_t *rcf;

    rcf = r->server->loc_conf[ed_http_rewrite_module.index];
    return ed_http_rewrite_run(r, rcf->rules);
}

static int
ed_http_rewrite_location(ed_http_request_t *r)
{
    ed_http_rewrite_conf_t *rcf;

    rcf = ed_http_loc_conf(r, ed_http_rewrite_module);
    return ed_http_rewrite_run(r, rcf->rules);
}

static int
ed_http_rewrite_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_rewrite_conf_t *rcf;

    ed_unused(cf);
    rcf = ed_http_conf_at(loc, ed_http_rewrite_module);
    if (rcf->rules == NULL || rcf->rules->nelts == 0) {
        return ED_OK;
    }
    if (loc->conf == loc->server->loc_conf) {
        /* The server's fallback shares the server's structs: these are
         * the server's rules. */
        loc->server->rewrite = ed_http_rewrite_server;
    } else {
        loc->rewrite = ed_http_rewrite_location;
    }
    return ED_OK;
}

/* eddy explain: the rules applied to the request explain builds, as the
 * server applies them (nothing is sent: a redirect is described). */
static int
ed_http_rewrite_explain(ed_explain_t *ex)
{
    static const char *const flags[] = {"none", "last", "break", "redirect",
                                        "permanent"};
    ed_http_rewrite_conf_t  *rcf;
    ed_http_rewrite_result_t res;
    ed_http_rewrite_rule_t **rule;
    ed_http_request_t       *r = ex->r;
    ed_str_t                 from = r->uri;
    const char              *at;

    if (ex->phase == ED_EXPLAIN_REWRITE_SERVER) {
        rcf = r->server->loc_conf[ed_http_rewrite_module.index];
    } else if (ex->phase == ED_EXPLAIN_REWRITE) {
        rcf = ed_http_conf_at(ex->loc, ed_http_rewrite_module);
    } else {
        return ED_DECLINED;
    }
    if (rcf->rules == NULL || rcf->rules->nelts == 0) {
        return ED_DECLINED;
    }
    rule = rcf->rules->elts;
    ed_explain_lit(&ex->json, "\"from\":");
    ed_explain_jstr(&ex->json, from.data, from.len);
    if (ed_http_rewrite_apply(r, rcf->rules, &res) != ED_OK) {
        ex->rewrite = 500;
        return ED_OK;
    }
    if (res.rule == 0) {
        ed_explain_printf(&ex->head, "%u rule%s, none matches %s",
                          (unsigned)rcf->rules->nelts,
                          rcf->rules->nelts == 1 ? "" : "s",
                          ed_explain_quote(ex, from.data, from.len, 200));
        ed_explain_lit(&ex->json, ",\"rule\":null");
        return ED_OK;
    }
    at = ed_explain_node_text(ex, rule[res.rule - 1]->regex);
    ed_explain_printf(&ex->json, ",\"rule\":%u,\"flag\":\"%s\"",
                      res.rule, flags[rule[res.rule - 1]->flag]);
    if (res.status == 301 || res.status == 302) {
        ex->rewrite = res.status;
        ex->redirect = res.location;
        ed_explain_printf(&ex->head, "rule %u (%s) redirects %s to %s",
                          res.rule, at,
                          ed_explain_quote(ex, from.data, from.len, 200),
                          ed_explain_quote(ex, res.location.data,
                                           res.location.len, 200));
        return ED_OK;
    }
    if (res.status) {
        ex->rewrite = res.status;
        ed_explain_printf(&ex->head, "rule %u (%s) makes %s: %d", res.rule,
                          at, ed_explain_quote(ex, res.location.data,
                                               res.location.len, 200),
                          res.status);
        return ED_OK;
    }
    ed_explain_lit(&ex->json, ",\"to\":");
    ed_explain_jstr(&ex->json, r->uri.data, r->uri.len);
    ed_explain_printf(&ex->head, "rule %u (%s) rewrites %s to %s", res.rule,
                      at, ed_explain_quote(ex, from.data, from.len, 200),
                      ed_explain_quote(ex, r->uri.data, r->uri.len, 200));
    if (r->head.query.data) {
        ed_explain_printf(&ex->head, ", query %s",
                          ed_explain_quote(ex, r->head.query.data,
                                           r->head.query.len, 200));
    }
    if (res.stop) {
        ed_explain_lit(&ex->head, " (break: stays in this location)");
    }
    ex->rewrite = res.changed && !res.stop ? ED_AGAIN : ED_DECLINED;
    return ED_OK;
}
