/* The static module's handler: files under a root or alias, with index,
 * autoindex, try_files, validators, conditional and range requests,
 * precompressed variants and an open-file cache. Its configuration is
 * in ed_http_static_conf.c. */
#include "ed_http_static.h"


/* Request header fields the handler looks at, found in one pass. */
typedef struct {
    ed_http_cond_t   cond;
    const ed_str_t  *range;     /* present: the range filter reads it */
    const ed_str_t  *accept_encoding;
} ed_http_static_in_t;

static int ed_http_static_serve(ed_http_request_t *r,
                                ed_http_static_conf_t *scf,
                                const ed_str_t *uri);

int
ed_http_static_append(ed_pool_t *pool, ed_str_t *dst, const char *s,
                      size_t len)
{
    char *p = ed_pnalloc(pool, dst->len + len + 1);

    if (p == NULL) {
        return ED_ERROR;
    }
    memcpy(p, dst->data, dst->len);
    memcpy(p + dst->len, s, len);
    p[dst->len + len] = '\0';
    dst->data = p;
    dst->len += len;
    return ED_OK;
}

/* Sets the worker's open-file cache up and seeds the multipart boundaries.
 * ED_OK or ED_ERROR. */
int
ed_http_static_init_worker(ed_worker_t *w)
{
    ed_http_static_main_conf_t *mcf;
    ed_http_file_cache_conf_t   fc;

    mcf = w->cycle->main_conf[ed_http_static_module.index];
    fc.max = (size_t)mcf->cache->max;
    fc.valid = mcf->cache->valid;
    fc.inline_max = ED_STATIC_INLINE_MAX;
    fc.memory_max = ED_STATIC_MEMORY;
    return ed_http_file_cache_init(&fc);
}

/* Closes the cached files. No return value. */
void
ed_http_static_exit_worker(ed_worker_t *w)
{
    ed_unused(w);
    ed_http_file_cache_free();
}

/* Requests. */

/* Finds the header fields of interest in one pass. */
static void
ed_static_scan(ed_http_request_t *r, ed_http_static_in_t *in)
{
    ed_http_header_t *h;
    size_t            i;

    memset(in, 0, sizeof(*in));
    for (i = 0; i < r->head.nheaders; i++) {
        h = &r->head.headers[i];
        switch (h->name.len) {
        case 5:
            if (ed_str_caseeq(&h->name, "Range") && !in->range) {
                in->range = &h->value;
            }
            break;
        case 8:
            if (ed_str_caseeq(&h->name, "If-Match") && !in->cond.if_match) {
                in->cond.if_match = &h->value;
            }
            break;
        case 13:
            if (ed_str_caseeq(&h->name, "If-None-Match")
                && !in->cond.if_none_match)
            {
                in->cond.if_none_match = &h->value;
            }
            break;
        case 15:
            if (ed_str_caseeq(&h->name, "Accept-Encoding")
                && !in->accept_encoding)
            {
                in->accept_encoding = &h->value;
            }
            break;
        case 17:
            if (ed_str_caseeq(&h->name, "If-Modified-Since")
                && !in->cond.if_modified_since)
            {
                in->cond.if_modified_since = &h->value;
            }
            break;
        case 19:
            if (ed_str_caseeq(&h->name, "If-Unmodified-Since")
                && !in->cond.if_unmodified_since)
            {
                in->cond.if_unmodified_since = &h->value;
            }
            break;
        default:
            break;
        }
    }
}

/* Whether the request's method is allowed. */
bool
ed_http_static_method_ok(const ed_http_static_conf_t *scf,
                         ed_http_request_t *r)
{
    ed_str_t *m;
    size_t    i;

    if (r->head.method_id == ED_HTTP_GET || r->head.method_id == ED_HTTP_HEAD)
    {
        if (scf->get_allowed) {
            return true;
        }
    }
    if (scf->methods == NULL) {
        return false;
    }
    m = scf->methods->elts;
    for (i = 0; i < scf->methods->nelts; i++) {
        if (ed_str_eq(&m[i], &r->head.method)) {
            return true;
        }
    }
    return false;
}

/* dotfiles: deny refuses any name starting with '.', except a leading
 * /.well-known/ (RFC 8615: meant to be served, e.g. ACME challenges).
 * Returns true when uri is refused. */
bool
ed_http_static_dotfile(const ed_http_static_conf_t *scf, const ed_str_t *uri)
{
    static const char wk[] = "/.well-known/";

    if (scf->dotfiles != ED_STATIC_DOTFILES_DENY) {
        return false;
    }
    if (uri->len >= sizeof(wk) - 1 && memcmp(uri->data, wk, sizeof(wk) - 1)
                                          == 0)
    {
        return ed_http_path_has_dotfile(uri->data + sizeof(wk) - 2,
                                        uri->len - (sizeof(wk) - 2));
    }
    return ed_http_path_has_dotfile(uri->data, uri->len);
}

/* Opens path through the cache and ties the reference to the request
 * pool: it is released when the request ends, also when the connection
 * is dropped. Returns ED_OK with *f, or a status. */
static int
ed_static_open(ed_http_request_t *r, const ed_http_static_conf_t *scf,
               const ed_str_t *path, size_t root_len, ed_http_file_t **f)
{
    int rc, err;

    rc = ed_http_file_open(path->data, path->len, root_len, scf->symlinks,
                           f);
    if (rc != ED_OK) {
        if (rc == 500) {
            err = errno;
            ed_http_log(ED_LOG_ERR, r, err, "open() \"%s\" failed",
                        ed_http_log_str(r, path->data, path->len, 512));
        }
        return rc;
    }
    if (ed_pool_cleanup_add(r->pool, (ed_pool_cleanup_pt)ed_http_file_release,
                            *f)
        != ED_OK)
    {
        ed_http_file_release(*f);
        return 500;
    }
    return ED_OK;
}

/* Maps uri with the location's root or alias. Returns ED_OK or a
 * status. */
int
ed_http_static_map(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                   const ed_str_t *uri, ed_str_t *path, size_t *root_len)
{
    static const ed_str_t none = ed_null_string;
    const ed_str_t       *prefix = &none;

    if (scf->alias.len && r->loc && r->loc->kind != ED_HTTP_LOC_REGEX
        && r->loc->kind != ED_HTTP_LOC_REGEX_CASELESS)
    {
        prefix = &r->loc->match;
    }
    return ed_http_map_path(r->pool, scf->root.len ? &scf->root
                                                   : &r->clcf->root,
                            scf->alias.len ? &scf->alias : NULL, prefix, uri,
                            scf->extra, path, root_len);
}

/* Adds a header whose name is a literal. ED_OK or ED_ERROR. */
#define ed_static_header(r, name, v)                                         \
    ed_http_add_header(r, name, sizeof(name) - 1, (v)->data, (v)->len)

/* The same for a value eddy made (an etag, a date, a literal): the check
 * of the head passes it by. */
#define ed_static_own_header(r, name, v)                                     \
    ed_http_add_checked_header(r, name, sizeof(name) - 1, (v)->data,        \
                               (v)->len)

/* 301 to the directory's URI with a slash (and the query). Returns ED_OK,
 * ED_ERROR or 500. */
static int
ed_static_redirect_dir(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                       const ed_str_t *uri)
{
    static const ed_str_t html = ed_string("text/html");
    ed_str_t              loc;
    char                  body[256];
    size_t                n;

    if (ed_http_escape_path(r->pool, uri->data, uri->len, false, &loc)
            != ED_OK
        || ed_http_static_append(r->pool, &loc, "/", 1) != ED_OK
        || (r->head.query.len
            && (ed_http_static_append(r->pool, &loc, "?", 1) != ED_OK
                || ed_http_static_append(r->pool, &loc, r->head.query.data,
                                         r->head.query.len)
                       != ED_OK)))
    {
        return 500;
    }
    if (ed_static_header(r, "Location", &loc) != ED_OK
        || ed_http_static_expires(r, scf, &html, 301) != ED_OK)
    {
        return 500;
    }
    n = ed_http_status_page(301, body, sizeof(body));
    return ed_http_send_response(r, 301, &html, body, n) == ED_OK
               ? ED_OK
               : ED_ERROR;
}

/* Picks a precompressed variant of path the client accepts. Returns
 * ED_OK with *f and *enc set (or left alone when there is none), or a
 * status. */
static int
ed_static_variant(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                  const ed_http_static_in_t *in, ed_str_t *path,
                  size_t root_len, ed_http_file_t **f, int *enc)
{
    ed_http_file_t *v;
    ed_str_t        vp;
    const int      *e = scf->precompressed->elts;
    size_t          i;
    int             rc;

    for (i = 0; i < scf->precompressed->nelts; i++) {
        if (e[i] == ED_STATIC_ENC_BR) {
            if (!ed_http_accepts_coding(in->accept_encoding, "br", 2)) {
                continue;
            }
            memcpy(path->data + path->len, ".br", 4);
            vp.len = path->len + 3;
        } else {
            if (!ed_http_accepts_coding(in->accept_encoding, "gzip", 4)
                && !ed_http_accepts_coding(in->accept_encoding, "x-gzip", 6))
            {
                continue;
            }
            memcpy(path->data + path->len, ".gz", 4);
            vp.len = path->len + 3;
        }
        vp.data = path->data;
        rc = ed_static_open(r, scf, &vp, root_len, &v);
        path->data[path->len] = '\0';
        if (rc == ED_OK && !v->is_dir) {
            *f = v;
            *enc = e[i];
            return ED_OK;
        }
        if (rc != ED_OK && rc != 404) {
            return rc;
        }
    }
    return ED_OK;
}

/* Serves the regular file f found at path: validators and
 * preconditions, then the body from memory or as a file range; a Range
 * is the range filter's, after the filters that transform the body.
 * Returns ED_OK, ED_ERROR or a status. */
static int
ed_static_send_file(ed_http_request_t *r, ed_http_static_conf_t *scf,
                    ed_http_file_t *f, ed_str_t *path, size_t root_len)
{
    static const ed_str_t  bytes = ed_string("bytes");
    static const ed_str_t  vary = ed_string("Accept-Encoding");
    static const ed_str_t  br = ed_string("br"), gzip = ed_string("gzip");
    ed_http_static_in_t    in;
    const ed_str_t        *type, *etag = NULL;
    ed_str_t               tag;
    time_t                 mtime;
    int                    rc, enc = 0;
    bool                   plain = r->error_status == 0;

    ed_static_scan(r, &in);
    type = ed_http_static_type(scf, path);
    if (scf->precompressed && scf->precompressed->nelts
        && in.accept_encoding)
    {
        rc = ed_static_variant(r, scf, &in, path, root_len, &f, &enc);
        if (rc != ED_OK) {
            return rc;
        }
    }
    if (scf->etag) {
        etag = &f->etag;
        if (enc) {
            /* Another representation: another tag, even should its size
             * and date equal the original's. */
            tag.data = ed_pnalloc(r->pool, f->etag.len + 4);
            if (tag.data == NULL) {
                return 500;
            }
            tag.len = (size_t)snprintf(tag.data, f->etag.len + 4,
                                       "%.*s-%s\"", (int)f->etag.len - 1,
                                       f->etag.data,
                                       enc == ED_STATIC_ENC_BR ? "br"
                                                               : "gz");
            etag = &tag;
        }
    }
    mtime = scf->last_modified ? f->mtime : -1;

    rc = 0;
    if (plain) {
        rc = ed_http_cond_eval(&in.cond, etag, mtime,
                               r->head.method_id == ED_HTTP_GET
                                   || r->head.method_id == ED_HTTP_HEAD);
        if (rc == 412) {
            return 412;
        }
    }
    if ((etag && ed_static_own_header(r, "ETag", etag) != ED_OK)
        || (mtime >= 0
            && ed_static_own_header(r, "Last-Modified", &f->last_modified)
                   != ED_OK)
        || ed_http_static_expires(r, scf, type, rc == 304 ? 304 : 200)
               != ED_OK
        || (scf->precompressed && scf->precompressed->nelts
            && ed_static_own_header(r, "Vary", &vary) != ED_OK))
    {
        return 500;
    }
    if (rc == 304) {
        return ed_http_send_response(r, 304, NULL, NULL, 0) == ED_OK
                   ? ED_OK
                   : ED_ERROR;
    }
    if ((scf->ranges && ed_static_own_header(r, "Accept-Ranges", &bytes)
                            != ED_OK)
        || (enc
            && ed_static_own_header(r, "Content-Encoding",
                                enc == ED_STATIC_ENC_BR ? &br : &gzip)
                   != ED_OK))
    {
        return 500;
    }

    r->status = 200;
    r->content_type = *type;
    r->content_length = f->size;
    if (plain && scf->ranges && in.range) {
        /* The body below is the whole representation in one piece. */
        r->allow_ranges = 1;
        r->mtime = mtime;
    }
    if (ed_http_send_header(r) != ED_OK) {
        return ED_ERROR;
    }
    if (f->content) {
        rc = ed_http_send_body(r, f->content, (size_t)f->size);
    } else {
        rc = ed_http_send_file(r, f->fd, 0, (size_t)f->size);
    }
    return rc == ED_OK ? ED_OK : ED_ERROR;
}

/* Lists the directory at path (its URI is r->uri). Returns ED_OK,
 * ED_ERROR or a status. */
static int
ed_static_autoindex(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                    const ed_str_t *path, size_t root_len)
{
    static const ed_str_t html = ed_string("text/html; charset=utf-8");
    static const ed_str_t json = ed_string("application/json");
    ed_str_t              body;
    bool                  is_json;
    int                   rc, err;

    is_json = scf->autoindex == ED_STATIC_AUTOINDEX_JSON;
    rc = ed_http_dir_list(r->pool, path->data, path->len, root_len,
                          scf->symlinks,
                          scf->dotfiles == ED_STATIC_DOTFILES_DENY,
                          is_json ? ED_HTTP_LIST_JSON : ED_HTTP_LIST_HTML,
                          &r->uri, &body);
    if (rc != ED_OK) {
        if (rc == 500) {
            err = errno;
            ed_http_log(ED_LOG_ERR, r, err, "listing \"%s\" failed",
                        ed_http_log_str(r, path->data, path->len, 512));
        }
        return rc;
    }
    if (ed_http_static_expires(r, scf, is_json ? &json : &html, 200)
        != ED_OK)
    {
        return 500;
    }
    return ed_http_send_response(r, 200, is_json ? &json : &html, body.data,
                                 body.len)
                   == ED_OK
               ? ED_OK
               : ED_ERROR;
}

/* Serves the index file name of the directory r->uri (ending with '/')
 * as nginx does: an internal redirect to its URI, so that the location
 * that URI selects serves it, after its access phase. */
static int
ed_static_index(ed_http_request_t *r, const ed_str_t *name)
{
    ed_str_t uri;

    if (ed_http_static_index_uri(r, name, &uri) != ED_OK) {
        return 500;
    }
    return ed_http_internal_redirect(r, &uri, NULL);
}

int
ed_http_static_index_uri(ed_http_request_t *r, const ed_str_t *name,
                         ed_str_t *uri)
{
    uri->len = r->uri.len + name->len;
    uri->data = ed_pnalloc(r->pool, uri->len);
    if (uri->data == NULL) {
        return ED_ERROR;
    }
    memcpy(uri->data, r->uri.data, r->uri.len);
    memcpy(uri->data + r->uri.len, name->data, name->len);
    return ED_OK;
}

/* A URI ending with '/': the first index file that exists, else the
 * listing, else 403 (or 404 when the directory does not exist). */
static int
ed_static_serve_dir(ed_http_request_t *r, ed_http_static_conf_t *scf,
                    ed_str_t *path, size_t root_len)
{
    ed_http_file_t *f;
    ed_str_t       *idx, ip;
    size_t          i, base = path->len;
    int             rc;

    idx = scf->index ? scf->index->elts : NULL;
    for (i = 0; idx && i < scf->index->nelts; i++) {
        ed_http_static_index_path(path, base, &idx[i], &ip);
        rc = ed_static_open(r, scf, &ip, root_len, &f);
        if (rc == ED_OK && !f->is_dir) {
            return ed_static_index(r, &idx[i]);
        }
        path->data[base] = '\0';
        if (rc != ED_OK && rc != 404) {
            return rc;
        }
    }
    path->data[base] = '\0';
    if (scf->autoindex != ED_STATIC_AUTOINDEX_OFF) {
        return ed_static_autoindex(r, scf, path, root_len);
    }
    rc = ed_static_open(r, scf, path, root_len, &f);
    if (rc != ED_OK) {
        return rc;
    }
    return f->is_dir ? 403 : 404;
}

/* Serves uri: a directory (ending with '/'), a 301 for a directory
 * without its slash, or a file. Returns ED_OK, ED_AGAIN, ED_ERROR or a
 * status. */
static int
ed_http_static_serve(ed_http_request_t *r, ed_http_static_conf_t *scf,
                     const ed_str_t *uri)
{
    ed_http_file_t *f;
    ed_str_t        path;
    size_t          root_len;
    int             rc;

    if (ed_http_static_dotfile(scf, uri)) {
        return 404;
    }
    rc = ed_http_static_map(r, scf, uri, &path, &root_len);
    if (rc != ED_OK) {
        return rc;
    }
    if (uri->len && uri->data[uri->len - 1] == '/') {
        return ed_static_serve_dir(r, scf, &path, root_len);
    }
    rc = ed_static_open(r, scf, &path, root_len, &f);
    if (rc != ED_OK) {
        return rc;
    }
    if (f->is_dir) {
        return ed_static_redirect_dir(r, scf, uri);
    }
    return ed_static_send_file(r, scf, f, &path, root_len);
}

/* Whether a try_files result is a usable path: it starts with '/' and has
 * no "." or ".." segment, no NUL and no backslash. */
bool
ed_http_static_uri_ok(const ed_str_t *u)
{
    size_t i, s, n;

    if (u->len == 0 || u->data[0] != '/'
        || memchr(u->data, '\0', u->len) != NULL
        || memchr(u->data, '\\', u->len) != NULL)
    {
        return false;
    }
    for (s = 1; s <= u->len; s = i + 1) {
        for (i = s; i < u->len && u->data[i] != '/'; i++) {
            /* to the end of the segment */
        }
        n = i - s;
        if ((n == 1 && u->data[s] == '.')
            || (n == 2 && u->data[s] == '.' && u->data[s + 1] == '.'))
        {
            return false;
        }
    }
    return true;
}

/* 405 with the Allow list of the methods static serves. */
static int
ed_static_refuse_method(ed_http_request_t *r, ed_http_static_conf_t *scf)
{
    if (ed_static_header(r, "Allow", &scf->allow) != ED_OK) {
        return 500;
    }
    return 405;
}

/* try_files: serves the first item that exists (a directory for items
 * ending with '/'), else the last item: a status, or a URI run through
 * its location as a new internal request. */
static int
ed_static_try_files(ed_http_request_t *r, ed_http_static_conf_t *scf)
{
    /* The method is judged when a file is found, not before: the
     * fallback URI (a front controller such as /index.php) takes every
     * method its own location takes, as in nginx. */
    ed_http_static_try_t *t = scf->try_files->elts;
    ed_http_file_t       *f;
    ed_str_t              u, path, args;
    size_t                i, n = scf->try_files->nelts, root_len;
    int                   rc;
    bool                  dir, q;

    for (i = 0; i + 1 < n; i++) {
        if (t[i].uri == NULL
            || ed_http_template_run(r, t[i].uri, &u) != ED_OK)
        {
            return 500;
        }
        if (!ed_http_static_uri_ok(&u) || ed_http_static_dotfile(scf, &u)) {
            continue;
        }
        rc = ed_http_static_map(r, scf, &u, &path, &root_len);
        if (rc == 500) {
            return rc;
        }
        if (rc != ED_OK) {
            continue;
        }
        rc = ed_static_open(r, scf, &path, root_len, &f);
        if (rc == 500) {
            return rc;
        }
        if (rc != ED_OK) {
            continue;
        }
        dir = u.data[u.len - 1] == '/';
        if (dir != (bool)f->is_dir) {
            continue;
        }
        if (!r->error_status && !ed_http_static_method_ok(scf, r)) {
            return ed_static_refuse_method(r, scf);
        }
        r->uri = u;
        if (dir) {
            return ed_static_serve_dir(r, scf, &path, root_len);
        }
        return ed_static_send_file(r, scf, f, &path, root_len);
    }

    if (t[n - 1].status) {
        return t[n - 1].status;
    }
    if (ed_http_template_run(r, t[n - 1].uri, &u) != ED_OK) {
        return 500;
    }
    q = ed_http_split_args(&u, &args);
    if (!ed_http_static_uri_ok(&u)) {
        return 404;
    }
    /* The fallback is served as a new request for that URI: its
     * location's access phase runs first. */
    return ed_http_internal_redirect(r, &u, q ? &args : NULL);
}

/* The content handler: methods, then try_files or the URI itself.
 * Returns ED_OK, ED_AGAIN (a file being written), ED_ERROR or a status. */
int
ed_http_static_handler(ed_http_request_t *r)
{
    ed_http_static_loc_conf_t *lcf;
    ed_http_static_conf_t     *scf;

    lcf = ed_http_loc_conf(r, ed_http_static_module);
    scf = lcf->active;
    if (!r->error_status && !ed_http_static_method_ok(scf, r)
        && !(scf->try_files && scf->try_files->nelts))
    {
        return ed_static_refuse_method(r, scf);
    }
    /* A backslash cannot leave the root on the file systems we serve
     * from, but it is a classic traversal probe: refused outright. */
    if (memchr(r->uri.data, '\\', r->uri.len) != NULL) {
        return 400;
    }
    if (scf->try_files && scf->try_files->nelts) {
        return ed_static_try_files(r, scf);
    }
    return ed_http_static_serve(r, scf, &r->uri);
}
