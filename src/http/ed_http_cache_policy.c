/* What the cache stores and for how long (cache.md, What is stored;
 * RFC 9111): Cache-Control, Expires, Age, validators, Vary and the
 * variant a request selects. Pure functions of header fields. */
#include "ed_http_cache.h"
#include "ed_http_fields.h"
#include "ed_http_range.h"

/* A delta-seconds bigger than this is this (RFC 9111 1.2.2). */
#define ED_CACHE_DELTA_MAX 2147483648LL

/* Reads one directive of a Cache-Control value at *pp (up to end):
 * its name and argument (quotes kept off, escapes left as they are).
 * Returns false at the end of the value. */
static bool
ed_cc_next(const char **pp, const char *end, ed_str_t *name, ed_str_t *arg)
{
    const char *p = ed_http_list_skip(*pp, end);

    if (p >= end) {
        *pp = end;
        return false;
    }
    name->data = (char *)p;
    while (p < end && *p != ',' && *p != '=' && !ed_http_ows(*p)) {
        p++;
    }
    name->len = (size_t)(p - name->data);
    arg->data = NULL;
    arg->len = 0;
    while (p < end && ed_http_ows(*p)) {
        p++;
    }
    if (p < end && *p == '=') {
        p++;
        while (p < end && ed_http_ows(*p)) {
            p++;
        }
        if (p < end && *p == '"') {
            arg->data = (char *)++p;
            while (p < end && *p != '"') {
                p += *p == '\\' && p + 1 < end ? 2 : 1;
            }
            arg->len = (size_t)(ed_min(p, end) - arg->data);
            if (p < end) {
                p++;
            }
        } else {
            arg->data = (char *)p;
            while (p < end && *p != ',' && !ed_http_ows(*p)) {
                p++;
            }
            arg->len = (size_t)(p - arg->data);
        }
    }
    /* Whatever else up to the next comma is not part of a directive. */
    while (p < end && *p != ',') {
        p++;
    }
    *pp = p;
    return true;
}

bool
ed_http_cache_cc(const ed_http_header_t *hdrs, size_t n, const char *dir,
                 ed_str_t *value)
{
    const char *p, *end;
    ed_str_t    name, arg;
    size_t      i, dlen = strlen(dir);

    for (i = 0; i < n; i++) {
        if (!ed_str_caseeq(&hdrs[i].name, "Cache-Control")) {
            continue;
        }
        p = hdrs[i].value.data;
        end = p + hdrs[i].value.len;
        while (ed_cc_next(&p, end, &name, &arg)) {
            if (name.len == dlen && strncasecmp(name.data, dir, dlen) == 0) {
                if (value) {
                    *value = arg;
                }
                return true;
            }
        }
    }
    return false;
}

/* A delta-seconds argument; an invalid one is 0 (stale, RFC 9111
 * 4.2.1 asks for that much caution), a huge one the maximum. */
static int64_t
ed_cc_delta(const ed_str_t *arg)
{
    int64_t v = 0;
    size_t  i;

    if (arg->len == 0) {
        return 0;
    }
    for (i = 0; i < arg->len; i++) {
        if (arg->data[i] < '0' || arg->data[i] > '9') {
            return 0;
        }
        if (v < ED_CACHE_DELTA_MAX) {
            v = v * 10 + (arg->data[i] - '0');
        }
    }
    return ed_min(v, ED_CACHE_DELTA_MAX);
}

/* The first field named name, or NULL. */
static const ed_str_t *
ed_cache_field(const ed_http_header_t *hdrs, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (ed_str_caseeq(&hdrs[i].name, name)) {
            return &hdrs[i].value;
        }
    }
    return NULL;
}

/* Statuses whose semantics eddy knows, for must-understand (RFC 9111
 * 5.2.2.3): a cacheable final status it may store. */
static bool
ed_cache_status_known(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}

/* The Vary names, lowercase, ", "-joined into pool memory; *star when
 * one is "*". ED_OK or ED_ERROR. */
static int
ed_cache_vary_names(ed_pool_t *pool, const ed_http_header_t *hdrs, size_t n,
                    ed_str_t *out, bool *star)
{
    ed_http_list_t l;
    ed_str_t       e;
    size_t         i, total = 0;
    char          *p;

    *star = false;
    out->data = NULL;
    out->len = 0;
    for (i = 0; i < n; i++) {
        if (ed_str_caseeq(&hdrs[i].name, "Vary")) {
            total += hdrs[i].value.len + 2;
        }
    }
    if (total == 0) {
        return ED_OK;
    }
    p = ed_pnalloc(pool, total + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    for (i = 0; i < n; i++) {
        if (!ed_str_caseeq(&hdrs[i].name, "Vary")) {
            continue;
        }
        ed_http_list_init(&l, hdrs[i].value.data, hdrs[i].value.len);
        while (ed_http_list_next(&l, &e)) {
            if (e.len == 0) {
                continue;
            }
            if (e.len == 1 && e.data[0] == '*') {
                *star = true;
            }
            if (out->len) {
                memcpy(p + out->len, ", ", 2);
                out->len += 2;
            }
            ed_strlow(p + out->len, e.data, e.len);
            out->len += e.len;
        }
    }
    p[out->len] = '\0';
    return ED_OK;
}

void
ed_http_cache_decide(ed_pool_t *pool, const ed_http_cache_rules_t *rules,
                     int status, const ed_http_header_t *hdrs, size_t n,
                     ed_http_cache_verdict_t *v)
{
    const ed_str_t *f;
    ed_str_t        arg;
    int64_t         date, expires, age;
    size_t          i;
    bool            cc = !(rules->ignore & ED_CACHE_IGN_CACHE_CONTROL);
    bool            star, given = false;

    memset(v, 0, sizeof(*v));
    v->lifetime = 0;
    v->last_modified = -1;
    v->swr = -1;
    v->sie = -1;

    if (status < 200 || status == 206 || status == 304 || status > 599) {
        v->detail = "no-lifetime";
        return;
    }
    if (cc && ed_http_cache_cc(hdrs, n, "no-store", NULL)
        && !(ed_http_cache_cc(hdrs, n, "must-understand", NULL)
             && ed_cache_status_known(status)))
    {
        v->detail = "no-store";
        return;
    }
    if (cc && ed_http_cache_cc(hdrs, n, "private", NULL)) {
        v->detail = "private";
        return;
    }
    if (!(rules->ignore & ED_CACHE_IGN_VARY)) {
        if (ed_cache_vary_names(pool, hdrs, n, &v->vary, &star) != ED_OK) {
            v->detail = "no-lifetime";
            return;
        }
        if (star) {
            v->detail = "vary";
            return;
        }
    }
    if (rules->authorization
        && !(cc && (ed_http_cache_cc(hdrs, n, "public", NULL)
                    || ed_http_cache_cc(hdrs, n, "s-maxage", NULL)
                    || ed_http_cache_cc(hdrs, n, "must-revalidate", NULL))))
    {
        v->detail = "authorization";
        return;
    }
    if (ed_cache_field(hdrs, n, "Set-Cookie")) {
        if (!(rules->ignore & ED_CACHE_IGN_SET_COOKIE)) {
            v->detail = "set-cookie";
            return;
        }
        v->set_cookie = 1;
    }

    f = ed_cache_field(hdrs, n, "Date");
    date = f ? ed_parse_http_time(f->data, f->len) : -1;
    if (date < 0) {
        date = rules->now;
    }
    if (cc && ed_http_cache_cc(hdrs, n, "s-maxage", &arg)) {
        v->lifetime = ed_cc_delta(&arg);
        v->flags |= ED_CACHE_F_S_MAXAGE;
        given = true;
    } else if (cc && ed_http_cache_cc(hdrs, n, "max-age", &arg)) {
        v->lifetime = ed_cc_delta(&arg);
        given = true;
    } else if (!(rules->ignore & ED_CACHE_IGN_EXPIRES)
               && (f = ed_cache_field(hdrs, n, "Expires")) != NULL)
    {
        expires = ed_parse_http_time(f->data, f->len);
        v->lifetime = expires > date ? expires - date : 0;
        given = true;
    }
    if (!given) {
        for (i = 0; i < rules->nvalid; i++) {
            if (rules->valid[i].status == status) {
                break;
            }
        }
        if (i == rules->nvalid) {
            for (i = 0; i < rules->nvalid; i++) {
                if (rules->valid[i].status == 0) {
                    break;
                }
            }
        }
        if (i == rules->nvalid) {
            v->detail = "no-lifetime";
            return;
        }
        v->lifetime = rules->valid[i].sec;
    }
    if (cc && ed_http_cache_cc(hdrs, n, "no-cache", NULL)) {
        v->lifetime = 0;
        v->flags |= ED_CACHE_F_MUST_REVAL;
    }
    if (cc && (ed_http_cache_cc(hdrs, n, "must-revalidate", NULL)
               || ed_http_cache_cc(hdrs, n, "proxy-revalidate", NULL)))
    {
        v->flags |= ED_CACHE_F_MUST_REVAL;
    }
    if (cc && ed_http_cache_cc(hdrs, n, "stale-while-revalidate", &arg)) {
        v->swr = ed_cc_delta(&arg);
    }
    if (cc && ed_http_cache_cc(hdrs, n, "stale-if-error", &arg)) {
        v->sie = ed_cc_delta(&arg);
    }

    f = ed_cache_field(hdrs, n, "ETag");
    if (f && f->len >= 2 && f->len <= 0xffff) {
        v->etag = *f;
    }
    f = ed_cache_field(hdrs, n, "Last-Modified");
    if (f) {
        v->last_modified = ed_parse_http_time(f->data, f->len);
    }
    if (v->lifetime == 0 && v->etag.len == 0 && v->last_modified < 0) {
        /* Revalidated on every use, which needs a validator. */
        v->detail = "no-lifetime";
        return;
    }

    /* RFC 9111 4.2.3: apparent age from Date, or the Age field. */
    age = rules->now > date ? rules->now - date : 0;
    f = ed_cache_field(hdrs, n, "Age");
    if (f) {
        arg = *f;
        v->initial_age = ed_max(age, ed_cc_delta(&arg));
    } else {
        v->initial_age = age;
    }
}

bool
ed_http_cache_coding_fits(const ed_str_t *names,
                          const ed_http_header_t *req, size_t nreq,
                          const ed_http_header_t *resp, size_t nresp)
{
    static const char *codings[] = { "br", "gzip", "zstd" };
    ed_http_list_t     l;
    ed_str_t           e;
    const ed_str_t    *ae;
    size_t             i, j;
    bool               keyed = false;

    ed_http_list_init(&l, names->data, names->len);
    while (ed_http_list_next(&l, &e)) {
        if (e.len == 15 && strncmp(e.data, "accept-encoding", 15) == 0) {
            keyed = true;
        }
    }
    if (!keyed) {
        return true;
    }
    /* The variant keys the accepted subset of br, gzip and zstd, not the
     * field the origin saw: a coding outside that subset (deflate for
     * "gzip;q=0, deflate", gzip for a request without the field) would
     * be served to clients that never accepted it. */
    ae = ed_cache_field(req, nreq, "Accept-Encoding");
    for (i = 0; i < nresp; i++) {
        if (!ed_str_caseeq(&resp[i].name, "Content-Encoding")) {
            continue;
        }
        ed_http_list_init(&l, resp[i].value.data, resp[i].value.len);
        while (ed_http_list_next(&l, &e)) {
            if (e.len == 0 || (e.len == 8
                               && strncasecmp(e.data, "identity", 8) == 0))
            {
                continue;
            }
            for (j = 0; j < ed_nelems(codings); j++) {
                if (e.len == strlen(codings[j])
                    && strncasecmp(e.data, codings[j], e.len) == 0
                    && ed_http_accepts_coding(ae, codings[j], e.len))
                {
                    break;
                }
            }
            if (j == ed_nelems(codings)) {
                return false;
            }
        }
    }
    return true;
}

int
ed_http_cache_variant(ed_pool_t *pool, const ed_str_t *names,
                      const ed_http_header_t *hdrs, size_t n, ed_str_t *out)
{
    static const char *codings[] = { "br", "gzip", "zstd" };
    ed_http_list_t     l;
    ed_str_t           e;
    const ed_str_t    *ae;
    size_t             i, j, total, nnames = 0, values = 0;
    char              *p;
    bool               first;

    /* Each name may bring every value (a name listed twice, twice). */
    ed_http_list_init(&l, names->data, names->len);
    while (ed_http_list_next(&l, &e)) {
        nnames++;
    }
    for (i = 0; i < n; i++) {
        values += hdrs[i].value.len + 2;
    }
    total = names->len + nnames * (values + 24) + 1;
    p = ed_pnalloc(pool, total);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    out->len = 0;
    ed_http_list_init(&l, names->data, names->len);
    while (ed_http_list_next(&l, &e)) {
        if (e.len == 0) {
            continue;
        }
        memcpy(p + out->len, e.data, e.len);
        out->len += e.len;
        p[out->len++] = ':';
        if (e.len == 15 && strncmp(e.data, "accept-encoding", 15) == 0) {
            /* Only what changes the response counts (as Varnish and
             * Fastly): the accepted subset of the codings it can be. */
            ae = ed_cache_field(hdrs, n, "Accept-Encoding");
            first = true;
            for (j = 0; ae && j < ed_nelems(codings); j++) {
                if (ed_http_accepts_coding(ae, codings[j],
                                           strlen(codings[j])))
                {
                    if (!first) {
                        p[out->len++] = ',';
                    }
                    memcpy(p + out->len, codings[j], strlen(codings[j]));
                    out->len += strlen(codings[j]);
                    first = false;
                }
            }
        } else {
            first = true;
            for (i = 0; i < n; i++) {
                if (hdrs[i].name.len != e.len
                    || strncasecmp(hdrs[i].name.data, e.data, e.len) != 0)
                {
                    continue;
                }
                if (!first) {
                    memcpy(p + out->len, ", ", 2);
                    out->len += 2;
                }
                memcpy(p + out->len, hdrs[i].value.data, hdrs[i].value.len);
                out->len += hdrs[i].value.len;
                first = false;
            }
        }
        p[out->len++] = '\n';
    }
    return ED_OK;
}

/* Whether a 304's field name leaves the stored one as it is (RFC 9111
 * 3.2): what is never stored (hop-by-hop ones and those the 304's
 * Connection lists, the framing, Age, Set-Cookie: an entry never
 * replays a cookie; Date and Server, set by eddy on every hit), and
 * what the stored body and its variant depend on (Content-Encoding
 * labels the stored bytes and picks the variant, Vary keys it,
 * Content-Range belongs to a 206 never stored). */
static bool
ed_cache_kept_field(const ed_str_t *name, const ed_http_header_t *upd,
                    size_t nupd)
{
    static const char *kept[] = {
        "age", "set-cookie", "server", "content-encoding", "content-range",
        "vary"
    };
    bool   found;
    size_t i;

    if ((ED_HTTP_HOP_BY_HOP | ED_HTTP_F_BIT(ED_HTTP_F_CONTENT_LENGTH)
         | ED_HTTP_F_BIT(ED_HTTP_F_DATE))
        & ED_HTTP_F_BIT(ed_http_field_id(name->data, name->len)))
    {
        return true;
    }
    for (i = 0; i < ed_nelems(kept); i++) {
        if (ed_str_caseeq(name, kept[i])) {
            return true;
        }
    }
    ed_http_fields_list(upd, nupd, "connection", 10, name->data, name->len,
                        &found);
    return found;
}

int
ed_http_cache_update_head(ed_pool_t *pool, const ed_str_t *head,
                          const ed_http_header_t *stored, size_t nstored,
                          const ed_http_header_t *upd, size_t nupd,
                          ed_str_t *out, ed_str_t *etag)
{
    const ed_http_header_t *f;
    const char             *eol;
    size_t                  i, j, len, line;
    bool                    replaced;
    char                   *p;

    eol = memchr(head->data, '\n', head->len);
    if (eol == NULL) {
        return ED_ERROR;
    }
    line = (size_t)(eol + 1 - head->data);
    len = line + 2;
    for (i = 0; i < nstored; i++) {
        len += stored[i].name.len + stored[i].value.len + 4;
    }
    for (i = 0; i < nupd; i++) {
        len += upd[i].name.len + upd[i].value.len + 4;
    }
    p = ed_pnalloc(pool, len);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    memcpy(p, head->data, line);
    p += line;
    etag->data = NULL;
    etag->len = 0;
    /* The stored fields the 304 has no update for, in their order, then
     * the 304's: each replaces every stored field of its name. */
    for (i = 0; i < nstored + nupd; i++) {
        if (i < nstored) {
            f = &stored[i];
            replaced = false;
            for (j = 0; j < nupd && !replaced; j++) {
                replaced = f->name.len == upd[j].name.len
                           && strncasecmp(f->name.data, upd[j].name.data,
                                          f->name.len) == 0
                           && !ed_cache_kept_field(&upd[j].name, upd, nupd);
            }
            if (replaced) {
                continue;
            }
        } else {
            f = &upd[i - nstored];
            if (ed_cache_kept_field(&f->name, upd, nupd)) {
                continue;
            }
        }
        memcpy(p, f->name.data, f->name.len);
        p += f->name.len;
        *p++ = ':';
        *p++ = ' ';
        if (etag->data == NULL && ed_str_caseeq(&f->name, "ETag")
            && f->value.len >= 2 && f->value.len <= 0xffff)
        {
            etag->data = p;
            etag->len = f->value.len;
        }
        memcpy(p, f->value.data, f->value.len);
        p += f->value.len;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    out->len = (size_t)(p - out->data);
    return ED_OK;
}
