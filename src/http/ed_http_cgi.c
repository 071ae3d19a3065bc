/* The layer fastcgi and cgi share (ed_http_cgi.h): the request's CGI
 * record, the meta-variables and their $variables, the local redirect,
 * and the stderr logger. The response-head parser is in
 * ed_http_cgi_head.c. */
#include "ed_http_cgi.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#define ed_cgi_cpy(p, s, n) ((char *)memcpy(p, s, n) + (n))

ed_http_cgi_req_t *
ed_http_cgi_request(ed_http_request_t *r)
{
    ed_http_cgi_req_t *c = r->cgi;

    if (c == NULL) {
        c = ed_pcalloc(r->pool, sizeof(ed_http_cgi_req_t));
        if (c == NULL) {
            return NULL;
        }
        c->content_length = -1;
        r->cgi = c;
    }
    return c;
}

/* The variables. */

#define ED_CGI_VAR(fn) static int fn(ed_http_request_t *r, ed_str_t *out)

/* The root in effect: the handler's (fastcgi's own `root`), else the
 * location's. */
static const ed_str_t *
ed_cgi_root(ed_http_request_t *r)
{
    if (r->cgi != NULL && r->cgi->root.len) {
        return &r->cgi->root;
    }
    return &r->clcf->root;
}

ED_CGI_VAR(ed_cgi_var_document_root)
{
    const ed_str_t *root = ed_cgi_root(r);

    if (root->len == 0) {
        return ED_DECLINED;
    }
    *out = *root;
    return ED_OK;
}

/* The root with its symlinks resolved (nginx's $realpath_root): no value
 * when it cannot be resolved. */
ED_CGI_VAR(ed_cgi_var_realpath_root)
{
    const ed_str_t *root = ed_cgi_root(r);
    char            path[PATH_MAX], real[PATH_MAX];

    if (root->len == 0 || root->len >= sizeof(path)) {
        return ED_DECLINED;
    }
    memcpy(path, root->data, root->len);
    path[root->len] = '\0';
    if (realpath(path, real) == NULL) {
        return ED_DECLINED;
    }
    return ed_str_dup(r->pool, out, real, strlen(real));
}

ED_CGI_VAR(ed_cgi_var_document_uri)
{
    *out = r->uri;
    return out->len ? ED_OK : ED_DECLINED;
}

/* The script's URI path: the handler's finding, else $uri. */
ED_CGI_VAR(ed_cgi_var_script_name)
{
    *out = r->cgi != NULL && r->cgi->script_name.data != NULL
               ? r->cgi->script_name : r->uri;
    return out->len ? ED_OK : ED_DECLINED;
}

/* Empty (a value) when the script has no path info, as nginx's. */
ED_CGI_VAR(ed_cgi_var_path_info)
{
    if (r->cgi != NULL && r->cgi->path_info.len) {
        *out = r->cgi->path_info;
    } else {
        ed_str_set(out, "");
    }
    return ED_OK;
}

ED_CGI_VAR(ed_cgi_var_https)
{
    if (!r->hc->c.ls->tls) {
        return ED_DECLINED;
    }
    ed_str_set(out, "on");
    return ED_OK;
}

static const ed_http_variable_t ed_cgi_variables[] = {
    { "document_root", ed_cgi_var_document_root },
    { "realpath_root", ed_cgi_var_realpath_root },
    { "document_uri", ed_cgi_var_document_uri },
    { "fastcgi_script_name", ed_cgi_var_script_name },
    { "fastcgi_path_info", ed_cgi_var_path_info },
    { "https", ed_cgi_var_https },
    { NULL, NULL }
};

static const ed_key_t ed_cgi_keys[] = {
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

/* A core module for its variables alone: usable anywhere, whatever
 * handlers are built in. */
ed_module_t ed_http_cgi_vars_module = {
    .name = "http_cgi",
    .keys = ed_cgi_keys,
    .variables = ed_cgi_variables,
};

/* The meta-variables. */

typedef struct {
    ed_http_request_t  *r;
    ed_http_cgi_var_pt  cb;
    void               *data;
} ed_cgi_meta_t;

#define ed_cgi_emit(m, name, v, vlen)                                        \
    (m)->cb((m)->data, name, sizeof(name) - 1, v, vlen)

/* The variables the meta-variables take, by index: their getters are
 * looked up by name once per process, not at each request (the tables
 * are static). */
enum {
    ED_CGI_V_SCHEME,
    ED_CGI_V_HTTPS,
    ED_CGI_V_HOST,
    ED_CGI_V_SERVER_ADDR,
    ED_CGI_V_SERVER_PORT,
    ED_CGI_V_REMOTE_ADDR,
    ED_CGI_V_REMOTE_PORT,
    ED_CGI_V_REQUEST_METHOD,
    ED_CGI_V_REQUEST_URI,
    ED_CGI_V_N
};

static const char *const ed_cgi_var_names[ED_CGI_V_N] = {
    "scheme", "https", "host", "server_addr", "server_port", "remote_addr",
    "remote_port", "request_method", "request_uri",
};

static ed_http_variable_pt ed_cgi_var_getters[ED_CGI_V_N];

/* A variable's value under name, left out when it has none. */
static int
ed_cgi_emit_var(ed_cgi_meta_t *m, const char *name, size_t nlen, int var)
{
    ed_http_variable_pt get = ed_cgi_var_getters[var];
    const char         *vn = ed_cgi_var_names[var];
    ed_str_t            v;
    int                 rc;

    if (get == NULL) {
        get = ed_http_variable_getter(vn, strlen(vn));
        ed_cgi_var_getters[var] = get;
    }
    rc = get != NULL ? get(m->r, &v)
                     : ed_http_variable(m->r, vn, strlen(vn), &v);
    if (rc == ED_DECLINED) {
        return ED_OK;
    }
    if (rc != ED_OK) {
        return ED_ERROR;
    }
    return m->cb(m->data, name, nlen, v.data, v.len);
}

#define ed_cgi_var(m, name, var)                                             \
    ed_cgi_emit_var(m, name, sizeof(name) - 1, ED_CGI_V_##var)

/* root + path into r's pool; NULL on ENOMEM. */
static char *
ed_cgi_join(ed_http_request_t *r, const ed_str_t *a, const ed_str_t *b,
            size_t *len)
{
    char *p;

    *len = a->len + b->len;
    p = ed_pnalloc(r->pool, *len + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, a->data, a->len);
    memcpy(p + a->len, b->data, b->len);
    p[*len] = '\0';
    return p;
}

/* The upper-cased variable name of a field: '-' as '_'. */
static inline char
ed_cgi_up(char c)
{
    if (c == '-') {
        return '_';
    }
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Whether two field names give the same HTTP_ variable. */
static bool
ed_cgi_same_var(const ed_str_t *a, const ed_str_t *b)
{
    size_t i;

    if (a->len != b->len) {
        return false;
    }
    for (i = 0; i < a->len; i++) {
        if (ed_cgi_up(a->data[i]) != ed_cgi_up(b->data[i])) {
            return false;
        }
    }
    return true;
}

/* Whether a field name gives the variable of lit (a lower-case name). */
static bool
ed_cgi_var_is(const ed_str_t *name, const char *lit, size_t len)
{
    size_t i;

    if (name->len != len) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (ed_cgi_up(name->data[i]) != ed_cgi_up(lit[i])) {
            return false;
        }
    }
    return true;
}

#define ed_cgi_var_is_lit(name, lit) ed_cgi_var_is(name, lit, sizeof(lit) - 1)

/* Fields never sent as HTTP_*: the body's own (CONTENT_TYPE and
 * CONTENT_LENGTH say them), Proxy (httpoxy, CVE-2016-5385) and, unless
 * asked, Authorization (RFC 3875 4.1.18). By variable, not by name: with
 * underscores_in_headers, Content_Length would make HTTP_CONTENT_LENGTH,
 * which some frameworks take for the body's length. */
static bool
ed_cgi_field_skipped(const ed_str_t *name, unsigned flags)
{
    switch (name->len) {
    case 5:
        return ed_cgi_var_is_lit(name, "proxy");
    case 12:
        return ed_cgi_var_is_lit(name, "content-type");
    case 13:
        return !(flags & ED_HTTP_CGI_AUTHORIZATION)
               && ed_cgi_var_is_lit(name, "authorization");
    case 14:
        return ed_cgi_var_is_lit(name, "content-length");
    }
    return false;
}

/* The HTTP_* variables: one per variable name, in the order of their
 * first field. A field is used when no earlier one gave its variable;
 * with a name holding '-' among the fields of a variable, the names
 * holding '_' are left out ('-' wins). Quadratic in the fields, which
 * max_headers bounds (100 by default). */
static int
ed_cgi_meta_http(ed_cgi_meta_t *m, unsigned flags)
{
    ed_http_request_t *r = m->r;
    ed_http_header_t  *hs = r->head.headers;
    size_t             n = r->head.nheaders, i, j, k, len, vlen;
    bool               dash, cookie;
    char              *name, *val, *p;
    int                rc;

    for (i = 0; i < n; i++) {
        if (hs[i].name.len == 0 || ed_cgi_field_skipped(&hs[i].name, flags)) {
            continue;
        }
        for (j = 0; j < i; j++) {
            if (ed_cgi_same_var(&hs[j].name, &hs[i].name)
                && !ed_cgi_field_skipped(&hs[j].name, flags))
            {
                break;
            }
        }
        if (j < i) {
            continue;
        }
        /* Whether a '-' name (or a name without '_') takes part. */
        dash = false;
        for (k = i; k < n; k++) {
            if ((k == i || ed_cgi_same_var(&hs[k].name, &hs[i].name))
                && memchr(hs[k].name.data, '_', hs[k].name.len) == NULL)
            {
                dash = true;
                break;
            }
        }
        cookie = ed_http_str_eq_lit(&hs[i].name, "cookie");
        vlen = 0;
        for (k = i, j = 0; k < n; k++) {
            if ((k == i || ed_cgi_same_var(&hs[k].name, &hs[i].name))
                && !(dash && memchr(hs[k].name.data, '_', hs[k].name.len)))
            {
                vlen += hs[k].value.len + (j++ ? 2 : 0);
            }
        }
        len = sizeof("HTTP_") - 1 + hs[i].name.len;
        name = ed_pnalloc(r->pool, len + vlen + 1);
        if (name == NULL) {
            return ED_ERROR;
        }
        p = ed_cgi_cpy(name, "HTTP_", 5);
        for (k = 0; k < hs[i].name.len; k++) {
            *p++ = ed_cgi_up(hs[i].name.data[k]);
        }
        val = p;
        for (k = i, j = 0; k < n; k++) {
            if ((k == i || ed_cgi_same_var(&hs[k].name, &hs[i].name))
                && !(dash && memchr(hs[k].name.data, '_', hs[k].name.len)))
            {
                if (j++) {
                    p = ed_cgi_cpy(p, cookie ? "; " : ", ", 2);
                }
                p = ed_cgi_cpy(p, hs[k].value.data, hs[k].value.len);
            }
        }
        rc = m->cb(m->data, name, len, val, vlen);
        if (rc != ED_OK) {
            return rc;
        }
    }
    return ED_OK;
}

#define ED_CGI_TRY(e)                                                        \
    do {                                                                     \
        int rc_ = (e);                                                       \
        if (rc_ != ED_OK) {                                                  \
            return rc_;                                                      \
        }                                                                    \
    } while (0)

int
ed_http_cgi_meta(ed_http_request_t *r, unsigned flags, ed_http_cgi_var_pt cb,
                 void *data)
{
    ed_http_cgi_req_t *c = r->cgi;
    const ed_str_t    *root = ed_cgi_root(r);
    const ed_str_t    *ct;
    ed_cgi_meta_t      m = { r, cb, data };
    ed_str_t           sn, pi, args;
    const char        *proto, *p;
    char               num[24];
    size_t             len;
    int64_t            cl;

    ED_CGI_TRY(ed_cgi_emit(&m, "GATEWAY_INTERFACE", "CGI/1.1", 7));
    if (r->clcf->server_tokens) {
        ED_CGI_TRY(ed_cgi_emit(&m, "SERVER_SOFTWARE", "eddy/" ED_VERSION,
                               sizeof("eddy/" ED_VERSION) - 1));
    } else {
        ED_CGI_TRY(ed_cgi_emit(&m, "SERVER_SOFTWARE", "eddy", 4));
    }
    proto = ed_http_protocol(r);
    ED_CGI_TRY(ed_cgi_emit(&m, "SERVER_PROTOCOL", proto, strlen(proto)));
    ED_CGI_TRY(ed_cgi_var(&m, "REQUEST_SCHEME", SCHEME));
    ED_CGI_TRY(ed_cgi_var(&m, "HTTPS", HTTPS));
    /* $host, not $server_name (RFC 3875 4.1.14; a server name may be a
     * wildcard or a regex). */
    ED_CGI_TRY(ed_cgi_var(&m, "SERVER_NAME", HOST));
    ED_CGI_TRY(ed_cgi_var(&m, "SERVER_ADDR", SERVER_ADDR));
    ED_CGI_TRY(ed_cgi_var(&m, "SERVER_PORT", SERVER_PORT));
    ED_CGI_TRY(ed_cgi_var(&m, "REMOTE_ADDR", REMOTE_ADDR));
    ED_CGI_TRY(ed_cgi_var(&m, "REMOTE_PORT", REMOTE_PORT));
    if (flags & ED_HTTP_CGI_REMOTE_HOST) {
        /* The address: no DNS (RFC 3875 4.1.9 allows it). */
        ED_CGI_TRY(ed_cgi_var(&m, "REMOTE_HOST", REMOTE_ADDR));
    }
    ED_CGI_TRY(ed_cgi_var(&m, "REQUEST_METHOD", REQUEST_METHOD));
    ED_CGI_TRY(ed_cgi_var(&m, "REQUEST_URI", REQUEST_URI));
    args = r->head.query;
    ED_CGI_TRY(ed_cgi_emit(&m, "QUERY_STRING", args.data ? args.data : "",
                           args.len));

    sn = c != NULL && c->script_name.data != NULL ? c->script_name : r->uri;
    ED_CGI_TRY(ed_cgi_emit(&m, "SCRIPT_NAME", sn.data, sn.len));
    if (c != NULL && c->script_filename.len) {
        ED_CGI_TRY(ed_cgi_emit(&m, "SCRIPT_FILENAME", c->script_filename.data,
                               c->script_filename.len));
    } else if (root->len) {
        p = ed_cgi_join(r, root, &sn, &len);
        if (p == NULL) {
            return ED_ERROR;
        }
        ED_CGI_TRY(ed_cgi_emit(&m, "SCRIPT_FILENAME", p, len));
    }
    pi.len = 0;
    pi.data = "";
    if (c != NULL && c->path_info.len) {
        pi = c->path_info;
    }
    ED_CGI_TRY(ed_cgi_emit(&m, "PATH_INFO", pi.data, pi.len));
    if (pi.len && root->len) {
        p = ed_cgi_join(r, root, &pi, &len);
        if (p == NULL) {
            return ED_ERROR;
        }
        ED_CGI_TRY(ed_cgi_emit(&m, "PATH_TRANSLATED", p, len));
    }
    if (root->len) {
        ED_CGI_TRY(ed_cgi_emit(&m, "DOCUMENT_ROOT", root->data, root->len));
    }
    ED_CGI_TRY(ed_cgi_emit(&m, "DOCUMENT_URI", r->uri.data, r->uri.len));
    if (!r->internal) {
        ct = ed_http_header(r, "Content-Type");
        if (ct != NULL && ct->len) {
            ED_CGI_TRY(ed_cgi_emit(&m, "CONTENT_TYPE", ct->data, ct->len));
        }
        cl = c != NULL && c->content_length >= 0 ? c->content_length
                                                  : r->head.content_length;
        if (cl >= 0 && (cl > 0 || ed_http_header(r, "Content-Length")
                        || (c != NULL && c->content_length >= 0)))
        {
            len = (size_t)(ed_sprint_u64(num, (uint64_t)cl) - num);
            ED_CGI_TRY(ed_cgi_emit(&m, "CONTENT_LENGTH", num, len));
        }
    }
    /* php-cgi and php-fpm's cgi.force_redirect want it. */
    ED_CGI_TRY(ed_cgi_emit(&m, "REDIRECT_STATUS", "200", 3));
    return ed_cgi_meta_http(&m, flags);
}

static const char *const ed_cgi_meta_names[] = {
    "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "SERVER_PROTOCOL",
    "REQUEST_SCHEME", "HTTPS", "SERVER_NAME", "SERVER_ADDR", "SERVER_PORT",
    "REMOTE_ADDR", "REMOTE_PORT", "REMOTE_HOST", "REMOTE_IDENT",
    "REMOTE_USER", "AUTH_TYPE", "REQUEST_METHOD", "REQUEST_URI",
    "QUERY_STRING", "SCRIPT_NAME", "SCRIPT_FILENAME", "PATH_INFO",
    "PATH_TRANSLATED", "DOCUMENT_ROOT", "DOCUMENT_URI", "CONTENT_TYPE",
    "CONTENT_LENGTH", "REDIRECT_STATUS"
};

bool
ed_http_cgi_meta_name(const char *name, size_t len)
{
    size_t i;

    if (len > 5 && memcmp(name, "HTTP_", 5) == 0) {
        return true;
    }
    for (i = 0; i < ed_nelems(ed_cgi_meta_names); i++) {
        if (strlen(ed_cgi_meta_names[i]) == len
            && memcmp(ed_cgi_meta_names[i], name, len) == 0)
        {
            return true;
        }
    }
    return false;
}

/* The local redirect. */

int
ed_http_cgi_redirect(ed_http_request_t *r, const ed_str_t *location)
{
    ed_str_t uri = *location, args, path;
    size_t   n;
    bool     q;

    /* The rest of the client's body is not the new request's: core
     * discards it; r->internal keeps every handler from sending it, and
     * its Content-Type and -Length from the meta-variables. */
    ed_http_body_stop(r);
    r->internal = 1;
    r->cgi_redirected = 1;
    r->cgi = NULL;
    if (r->head.method_id != ED_HTTP_HEAD) {
        r->head.method_id = ED_HTTP_GET;
        ed_str_set(&r->head.method, "GET");
    }
    r->headers_out.nelts = 0;
    r->status = 0;
    q = ed_http_split_args(&uri, &args);
    if (!q) {
        /* No query in the Location: none in the new request (not an
         * empty one, which a proxy would send as a bare '?'). */
        r->head.query.data = NULL;
        r->head.query.len = 0;
    }
    /* A URI path: decoded and normalised as a request's. */
    path.data = ed_pnalloc(r->pool, uri.len + 1);
    if (path.data == NULL) {
        return 500;
    }
    if (!ed_http_path_ok(uri.data, uri.len)
        || ed_http_normalize_path(uri.data, uri.len, path.data, &n)
           != ED_OK)
    {
        ed_http_log(ED_LOG_ERR, r, 0, "invalid local redirect to \"%s\"",
                    ed_http_log_str(r, location->data, location->len, 256));
        return 502;
    }
    path.len = n;
    return ed_http_internal_redirect(r, &path, q ? &args : NULL);
}

/* Stderr. */

void
ed_http_cgi_stderr_init(ed_http_cgi_stderr_t *e, const char *prefix,
                        const char *suffix)
{
    e->prefix = prefix;
    e->suffix = suffix;
    e->seen = 0;
    e->dropped = 0;
    e->len = 0;
}

void
ed_http_cgi_stderr_split(ed_http_cgi_stderr_t *e, const char *p, size_t n,
                         bool eof, ed_http_cgi_line_pt emit, void *data)
{
    size_t i, take;

    if (e->seen < ED_HTTP_CGI_STDERR_MAX) {
        take = (size_t)ed_min((uint64_t)n, ED_HTTP_CGI_STDERR_MAX - e->seen);
    } else {
        take = 0;
    }
    e->seen += take;
    e->dropped += n - take;
    for (i = 0; i < take; i++) {
        if (p[i] == '\n') {
            if (e->len) {
                emit(data, e->line, e->len);
            }
            e->len = 0;
            continue;
        }
        if (p[i] == '\r') {
            continue;
        }
        if (e->len == sizeof(e->line)) {
            /* A long line goes out in pieces of ED_HTTP_CGI_LINE_MAX. */
            emit(data, e->line, e->len);
            e->len = 0;
        }
        e->line[e->len++] = p[i];
    }
    if (eof && e->len) {
        emit(data, e->line, e->len);
        e->len = 0;
    }
}

typedef struct {
    ed_http_request_t    *r;
    ed_http_cgi_stderr_t *e;
} ed_cgi_log_t;

static void
ed_cgi_log_line(void *data, const char *line, size_t len)
{
    ed_cgi_log_t *l = data;
    /* Escaped, a line may grow fourfold; the log line bounds it. */
    char          buf[ED_LOG_LINE_MAX];
    size_t        n;

    n = ed_log_escape(buf, sizeof(buf), line, len);
    ed_http_log(ED_LOG_ERR, l->r, 0, "%s: \"%.*s\"%s", l->e->prefix, (int)n,
                buf, l->e->suffix);
}

void
ed_http_cgi_stderr(ed_http_request_t *r, ed_http_cgi_stderr_t *e,
                   const char *p, size_t n)
{
    ed_cgi_log_t l = { r, e };

    ed_http_cgi_stderr_split(e, p, n, false, ed_cgi_log_line, &l);
}

void
ed_http_cgi_stderr_end(ed_http_request_t *r, ed_http_cgi_stderr_t *e)
{
    ed_cgi_log_t l = { r, e };

    ed_http_cgi_stderr_split(e, NULL, 0, true, ed_cgi_log_line, &l);
    if (e->dropped) {
        ed_http_log(ED_LOG_ERR, r, 0, "%s: %" PRIu64 " more bytes of stderr "
                    "not logged%s", e->prefix, e->dropped, e->suffix);
        e->dropped = 0;
    }
}
