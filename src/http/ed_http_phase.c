/* The phases after the request head: choosing the location, its access
 * phase, its content handler; and internal redirects (try_files, index,
 * error_pages), which run them all again for the new URI. */
#include "ed_http.h"

int
ed_http_find_config(ed_http_request_t *r)
{
    ed_http_core_loc_conf_t *clcf;

    r->loc = ed_http_find_location(r->server, r, &r->uri);
    r->loc_conf = r->loc->conf;
    r->clcf = clcf = r->loc_conf[ed_http_core_module.index];
    ed_http_underscores(r);

    /* Checked for a body not yet read, against the location that would
     * read it; an error page runs while the body is being discarded. */
    if (clcf->client_max_body_size && r->body == NULL && !r->internal
        && r->body_dec.left > (int64_t)clcf->client_max_body_size)
    {
        /* Refused before reading it: the body is not read, so the
         * connection cannot be reused. */
        r->error = 1;
        return 413;
    }
    return ED_OK;
}

/* One more URI change (an internal redirect, a rewrite choosing the
 * location again): ED_OK, or 500 past ED_HTTP_REDIRECTS_MAX (a cycle,
 * logged with the URI it would go to). */
static int
ed_http_uri_change(ed_http_request_t *r, const ed_str_t *uri)
{
    if (r->redirects >= ED_HTTP_REDIRECTS_MAX) {
        ed_http_log(ED_LOG_ERR, r, 0, "rewrite or internal redirection "
                    "cycle while redirecting to \"%s\"",
                    ed_http_log_str(r, uri->data, uri->len, 256));
        return 500;
    }
    r->redirects++;
    return ED_OK;
}

int
ed_http_choose(ed_http_request_t *r)
{
    int rc;

    if (r->server->rewrite) {
        rc = r->server->rewrite(r);
        if (rc == ED_OK) {
            return ED_DONE;
        }
        if (rc == ED_AGAIN) {
            rc = ed_http_uri_change(r, &r->uri);
            if (rc != ED_OK) {
                return rc;
            }
        } else if (rc != ED_DECLINED) {
            return rc;
        }
    }
    for (;;) {
        rc = ed_http_find_config(r);
        if (rc != ED_OK || r->loc->rewrite == NULL) {
            return rc;
        }
        rc = r->loc->rewrite(r);
        if (rc == ED_DECLINED) {
            return ED_OK;
        }
        if (rc == ED_OK) {
            return ED_DONE;
        }
        if (rc != ED_AGAIN) {
            return rc;
        }
        rc = ed_http_uri_change(r, &r->uri);
        if (rc != ED_OK) {
            return rc;
        }
    }
}

/* The access phase from check r->access_next on: the first check that
 * does not decline answers (a client denied never reaches the content
 * handler). Returns ED_DECLINED, ED_AGAIN (a check goes on by itself and
 * resumes the phase with ed_http_access_resume) or that status. */
static int
ed_http_access_phase(ed_http_request_t *r)
{
    ed_http_location_t *loc = r->loc;
    int                 rc;

    while (r->access_next < loc->naccess) {
        rc = loc->access[r->access_next++](r);
        if (rc != ED_DECLINED) {
            return rc;
        }
    }
    return ED_DECLINED;
}

/* The access phase, then the content handler; *refused tells whether a
 * status returned came from the access phase. */
static int
ed_http_run(ed_http_request_t *r, bool *refused)
{
    int rc;

    /* `internal: true`: not for a URI the client chose itself. */
    if (r->loc->internal && r->redirects == 0 && r->parent == NULL) {
        *refused = true;
        return 404;
    }
    r->access_next = 0;
    rc = ed_http_access_phase(r);
    if (rc != ED_DECLINED) {
        *refused = true;
        return rc;
    }
    *refused = false;
    if (r->loc->handler == NULL) {
        return 404;
    }
    if (r->connect_protocol && !r->loc->websocket) {
        /* An extended CONNECT only a WebSocket relay answers. */
        return 405;
    }
    return r->loc->handler(r);
}

void
ed_http_access_resume(ed_http_request_t *r, int rc)
{
    if (rc == ED_DECLINED) {
        rc = ed_http_access_phase(r);
    }
    if (rc == ED_DECLINED) {
        rc = r->loc->handler ? r->loc->handler(r) : 404;
    }
    if (rc != ED_AGAIN) {
        ed_http_finalize(r, rc);
    }
}

int
ed_http_run_location(ed_http_request_t *r)
{
    bool refused;

    return ed_http_run(r, &refused);
}

/* Whether args->data[i] goes into a query as it is (RFC 3986: pchar,
 * '/' and '?'; '%' only when it starts an escape, %XX, already made).
 * Any other byte is %-encoded, a '%' without two hex digits after it
 * included ($uri is decoded: "%zz" or a lone '%'), so that args from a
 * template cannot break the request line sent upstream nor make a
 * target eddy's own parser would refuse. */
static bool
ed_http_query_keep(const ed_str_t *args, size_t i)
{
    unsigned char c = (unsigned char)args->data[i];

    if (c == '%') {
        return i + 2 < args->len
               && (ed_http_char[(unsigned char)args->data[i + 1]]
                   & ED_HTTP_C_HEX)
               && (ed_http_char[(unsigned char)args->data[i + 2]]
                   & ED_HTTP_C_HEX);
    }
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("-._~!$&'()*+,;=:@/?", c));
}

int
ed_http_set_uri(ed_http_request_t *r, const ed_str_t *uri,
                const ed_str_t *args)
{
    static const char hex[] = "0123456789ABCDEF";
    char             *p;
    size_t            i, n = 0;
    unsigned char     c;

    for (i = 0; args && i < args->len; i++) {
        n += ed_http_query_keep(args, i) ? 1 : 3;
    }
    p = ed_pnalloc(r->pool, uri->len + 1 + n);
    if (p == NULL) {
        return ED_ERROR;
    }
    memcpy(p, uri->data, uri->len);
    p[uri->len] = '\0';
    r->uri.data = p;
    r->uri.len = uri->len;
    if (args == NULL) {
        return ED_OK;
    }
    p += uri->len + 1;
    r->head.query.data = p;
    r->head.query.len = n;
    for (i = 0; i < args->len; i++) {
        c = (unsigned char)args->data[i];
        if (ed_http_query_keep(args, i)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return ED_OK;
}

/* The internal redirect; *refused tells whether a status it returns came
 * from the redirect itself or the new location's access phase (the
 * request was refused there) rather than from its content handler. */
static int
ed_http_redirect(ed_http_request_t *r, const ed_str_t *uri,
                 const ed_str_t *args, bool *refused)
{
    int rc;

    *refused = true;
    rc = ed_http_uri_change(r, uri);
    if (rc != ED_OK) {
        return rc;
    }
    if (ed_http_set_uri(r, uri, args) != ED_OK) {
        return 500;
    }
    /* What the previous location chose is not the new one's. */
    r->allow_ranges = 0;
    r->streamed = 0;
    r->content_type.data = NULL;
    r->content_type.len = 0;
    r->content_length = -1;

    rc = ed_http_choose(r);
    if (rc == ED_DONE) {
        /* A rewrite rule answered (a redirect). */
        return ED_OK;
    }
    if (rc != ED_OK) {
        return rc;
    }
    return ed_http_run(r, refused);
}

int
ed_http_internal_redirect(ed_http_request_t *r, const ed_str_t *uri,
                          const ed_str_t *args)
{
    bool refused;

    return ed_http_redirect(r, uri, args, &refused);
}

bool
ed_http_split_args(ed_str_t *uri, ed_str_t *args)
{
    const char *q = memchr(uri->data, '?', uri->len);

    if (q == NULL) {
        return false;
    }
    args->data = (char *)q + 1;
    args->len = uri->len - (size_t)(q + 1 - uri->data);
    uri->len = (size_t)(q - uri->data);
    return true;
}

const ed_http_error_page_t *
ed_http_error_page_find(ed_http_request_t *r, int status)
{
    ed_http_error_page_t *p;
    size_t                i;

    if (r->internal || r->clcf->error_pages == NULL) {
        return NULL;
    }
    p = r->clcf->error_pages->elts;
    for (i = 0; i < r->clcf->error_pages->nelts; i++) {
        if (p[i].status == status) {
            return &p[i];
        }
    }
    return NULL;
}

int
ed_http_error_page(ed_http_request_t *r, int status)
{
    const ed_http_error_page_t *page;
    ed_str_t                    uri, args;
    bool                        q, refused;
    int                         rc;

    page = ed_http_error_page_find(r, status);
    if (page == NULL) {
        return ED_DECLINED;
    }
    r->internal = 1;
    r->error_status = status;
    ed_http_out_headers_error(r, status);
    uri = page->uri;
    q = ed_http_split_args(&uri, &args);
    rc = ed_http_redirect(r, &uri, q ? &args : NULL, &refused);
    if (rc == ED_AGAIN) {
        return ED_OK;
    }
    if (rc == ED_OK || rc == ED_ERROR || refused) {
        /* A refusal stands (403 from access, 429 from limit_req, 500 for
         * a cycle): the page is not shown to a client denied it. */
        ed_http_finalize(r, rc);
        return ED_OK;
    }
    /* The page's handler failed (a page missing): the built-in page of
     * the original status. */
    return ED_DECLINED;
}
