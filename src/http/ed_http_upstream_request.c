/* The wire form of a proxied exchange: the request head sent upstream
 * (target, end-to-end headers, forwarding headers, framing) and which
 * response headers stop at the proxy. */
#include "ed_http_upstream.h"

#define ed_cpy(p, s) (memcpy(p, s, sizeof(s) - 1), (p) + sizeof(s) - 1)
#define ed_cpyn(p, s, n) (memcpy(p, s, n), (p) + (n))

/* Case-insensitive equality of a name and a literal. */
static bool
ed_ups_is(const ed_str_t *name, const char *lit, size_t len)
{
    return name->len == len && ed_strncasecmp(name->data, lit, len) == 0;
}

#define ed_ups_is_lit(name, lit) ed_ups_is(name, lit, sizeof(lit) - 1)

/* Whether a name is listed in a Connection field of hdrs[0..n). */
static bool
ed_ups_conn_listed(const ed_http_header_t *hdrs, size_t n,
                   const ed_str_t *name)
{
    const char *p, *e, *c, *s;
    size_t      i;

    for (i = 0; i < n; i++) {
        if (!ed_ups_is_lit(&hdrs[i].name, "connection")) {
            continue;
        }
        e = hdrs[i].value.data + hdrs[i].value.len;
        for (p = hdrs[i].value.data; p < e; p = c + 1) {
            c = memchr(p, ',', (size_t)(e - p));
            c = c ? c : e;
            for (s = p; s < c && (*s == ' ' || *s == '\t'); s++) {
                /* leading OWS */
            }
            p = c;
            while (c > s && (c[-1] == ' ' || c[-1] == '\t')) {
                c--;
            }
            if ((size_t)(c - s) == name->len
                && ed_strncasecmp(s, name->data, name->len) == 0)
            {
                return true;
            }
            c = p;
        }
    }
    return false;
}

/* Whether a name is in names[0..n), case-insensitively. */
static bool
ed_ups_in(const ed_str_t *names, size_t n, const ed_str_t *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (ed_ups_is(name, names[i].data, names[i].len)) {
            return true;
        }
    }
    return false;
}

/* Whether a client header is not forwarded as it is: hop-by-hop, Host
 * and framing (written by us), forwarding headers (replaced), removed or
 * set ones. */
static bool
ed_ups_skip_request_header(ed_http_request_t *r,
                           const ed_http_upstream_req_t *q,
                           const ed_str_t *name, bool conn)
{
    switch (name->len) {
    case 2:
        return ed_ups_is_lit(name, "te");
    case 4:
        return ed_ups_is_lit(name, "host");
    case 6:
        if (ed_ups_is_lit(name, "expect")) {
            return true;
        }
        break;
    case 7:
        if (ed_ups_is_lit(name, "upgrade") || ed_ups_is_lit(name, "trailer")) {
            return true;
        }
        break;
    case 9:
        if (q->forwarded && ed_ups_is_lit(name, "x-real-ip")) {
            return true;
        }
        break;
    case 10:
        if (ed_ups_is_lit(name, "connection")
            || ed_ups_is_lit(name, "keep-alive"))
        {
            return true;
        }
        break;
    case 14:
        if (ed_ups_is_lit(name, "content-length")) {
            return true;
        }
        break;
    case 15:
        if (q->forwarded && ed_ups_is_lit(name, "x-forwarded-for")) {
            return true;
        }
        break;
    case 16:
        if (ed_ups_is_lit(name, "proxy-connection")
            || (q->forwarded && ed_ups_is_lit(name, "x-forwarded-host")))
        {
            return true;
        }
        break;
    case 17:
        if (ed_ups_is_lit(name, "transfer-encoding")
            || (q->forwarded && ed_ups_is_lit(name, "x-forwarded-proto")))
        {
            return true;
        }
        break;
    }
    return ed_ups_in(q->remove, q->nremove, name)
           || ed_ups_in(q->set_names, q->nset, name)
           || (conn
               && ed_ups_conn_listed(r->head.headers, r->head.nheaders,
                                     name));
}

/* Bytes of a normalised path that go out as they are. */
static bool
ed_ups_path_char(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@/", c);
}

/* Writes the target at p: as received (origin-form of an absolute-form
 * one), or the normalised path with the location's prefix replaced by
 * q->uri, re-encoded, plus the query. Returns the end. */
static char *
ed_ups_target(ed_http_request_t *r, const ed_http_upstream_req_t *q, char *p)
{
    static const char   hex[] = "0123456789ABCDEF";
    ed_http_location_t *loc = r->loc;
    const char         *t = r->head.target.data, *end, *a, *rest;
    size_t              i, rlen;

    if (q->uri == NULL) {
        end = t + r->head.target.len;
        if (r->head.absolute) {
            a = (const char *)memchr(t, ':', r->head.target.len) + 3;
            while (a < end && *a != '/' && *a != '?') {
                a++;
            }
            if (a == end || *a != '/') {
                *p++ = '/';
            }
            t = a;
        }
        return ed_cpyn(p, t, (size_t)(end - t));
    }
    rest = r->uri.data;
    rlen = r->uri.len;
    if (loc && loc->kind == ED_HTTP_LOC_EXACT) {
        rlen = 0;
    } else if (loc && rlen >= loc->match.len
               && memcmp(rest, loc->match.data, loc->match.len) == 0)
    {
        rest += loc->match.len;
        rlen -= loc->match.len;
    } else if (rlen && rest[0] == '/' && q->uri->len
               && q->uri->data[q->uri->len - 1] == '/')
    {
        rest++;
        rlen--;
    }
    p = ed_cpyn(p, q->uri->data, q->uri->len);
    for (i = 0; i < rlen; i++) {
        u_char c = (u_char)rest[i];

        if (ed_ups_path_char(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    if (r->head.query.data) {
        *p++ = '?';
        p = ed_cpyn(p, r->head.query.data, r->head.query.len);
    }
    return p;
}

/* Whether a value may go into a header line. */
static bool
ed_ups_value_ok(const ed_str_t *v)
{
    size_t i;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '\r' || v->data[i] == '\n' || v->data[i] == '\0') {
            return false;
        }
    }
    return true;
}

/* Returns the head in r's pool with its length in *len, or NULL on
 * ENOMEM. */
char *
ed_http_upstream_request_head(ed_http_request_t *r,
                              const ed_http_upstream_req_t *q, size_t *len)
{
    ed_http_header_t *h;
    char             *buf, *p, ip[64];
    size_t            i, size, iplen = 0;
    bool              conn = false;

    size = r->head.method.len
           + 3 * (r->head.target.len + (q->uri ? q->uri->len : 0))
           + q->host->len + sizeof(" HTTP/1.1\r\nHost: \r\n") + 256;
    for (i = 0; i < q->nset; i++) {
        size += q->set_names[i].len + q->set_values[i].len + 4;
    }
    for (i = 0; i < r->head.nheaders; i++) {
        h = &r->head.headers[i];
        size += h->name.len + h->value.len + 6;
        /* Only then may a header be named hop-by-hop by Connection. */
        conn = conn || ed_ups_is_lit(&h->name, "connection");
    }
    if (q->forwarded) {
        iplen = ed_peer_text(&r->hc->c.peer, ip, sizeof(ip));
        size += 2 * iplen + r->head.host.len + 128;
    }
    if (q->upgrade) {
        size += q->upgrade->len + 64;
    }
    buf = ed_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NULL;
    }

    p = ed_cpyn(buf, r->head.method.data, r->head.method.len);
    *p++ = ' ';
    p = ed_ups_target(r, q, p);
    p = ed_cpy(p, " HTTP/1.1\r\nHost: ");
    p = ed_cpyn(p, q->host->data, q->host->len);
    p = ed_cpy(p, "\r\n");
    for (i = 0; i < r->head.nheaders; i++) {
        h = &r->head.headers[i];
        if (ed_ups_skip_request_header(r, q, &h->name, conn)) {
            continue;
        }
        p = ed_cpyn(p, h->name.data, h->name.len);
        p = ed_cpy(p, ": ");
        p = ed_cpyn(p, h->value.data, h->value.len);
        p = ed_cpy(p, "\r\n");
    }
    for (i = 0; i < q->nset; i++) {
        /* An empty value removes the header (nginx's rule); a value
         * from variables never splits a line. */
        if (q->set_values[i].len == 0 || !ed_ups_value_ok(&q->set_values[i]))
        {
            continue;
        }
        p = ed_cpyn(p, q->set_names[i].data, q->set_names[i].len);
        p = ed_cpy(p, ": ");
        p = ed_cpyn(p, q->set_values[i].data, q->set_values[i].len);
        p = ed_cpy(p, "\r\n");
    }
    if (q->forwarded) {
        p = ed_cpy(p, "X-Forwarded-For: ");
        for (i = 0; i < r->head.nheaders; i++) {
            h = &r->head.headers[i];
            if (ed_ups_is_lit(&h->name, "x-forwarded-for") && h->value.len) {
                p = ed_cpyn(p, h->value.data, h->value.len);
                p = ed_cpy(p, ", ");
            }
        }
        p = ed_cpyn(p, ip, iplen);
        p = ed_cpy(p, "\r\nX-Forwarded-Proto: ");
        if (r->hc->c.ls && r->hc->c.ls->tls) {
            p = ed_cpy(p, "https");
        } else {
            p = ed_cpy(p, "http");
        }
        p = ed_cpy(p, "\r\n");
        if (r->head.host.len) {
            p = ed_cpy(p, "X-Forwarded-Host: ");
            p = ed_cpyn(p, r->head.host.data, r->head.host.len);
            p = ed_cpy(p, "\r\n");
        }
        p = ed_cpy(p, "X-Real-IP: ");
        p = ed_cpyn(p, ip, iplen);
        p = ed_cpy(p, "\r\n");
    }
    if (q->body == ED_HTTP_UPS_BODY_CHUNKED) {
        p = ed_cpy(p, "Transfer-Encoding: chunked\r\n");
    } else if (q->body == ED_HTTP_UPS_BODY_LENGTH) {
        p = ed_cpy(p, "Content-Length: ");
        p = ed_sprint_u64(p, (uint64_t)r->head.content_length);
        p = ed_cpy(p, "\r\n");
    }
    if (q->upgrade) {
        p = ed_cpy(p, "Upgrade: ");
        p = ed_cpyn(p, q->upgrade->data, q->upgrade->len);
        p = ed_cpy(p, "\r\nConnection: upgrade\r\n");
    } else if (!q->keepalive) {
        p = ed_cpy(p, "Connection: close\r\n");
    }
    p = ed_cpy(p, "\r\n");
    *len = (size_t)(p - buf);
    return buf;
}

/* Returns true for a header the client must not get as it is. */
bool
ed_http_upstream_skip_response_header(const ed_http_resp_head_t *h,
                                      const ed_str_t *name)
{
    switch (name->len) {
    case 2:
        return ed_ups_is_lit(name, "te");
    case 4:
        return ed_ups_is_lit(name, "date");
    case 6:
        return ed_ups_is_lit(name, "server");
    case 7:
        return ed_ups_is_lit(name, "upgrade") || ed_ups_is_lit(name, "trailer");
    case 10:
        if (ed_ups_is_lit(name, "connection")
            || ed_ups_is_lit(name, "keep-alive"))
        {
            return true;
        }
        break;
    case 12:
        if (ed_ups_is_lit(name, "content-type")) {
            return true;
        }
        break;
    case 14:
        if (ed_ups_is_lit(name, "content-length")) {
            return true;
        }
        break;
    case 16:
        if (ed_ups_is_lit(name, "proxy-connection")) {
            return true;
        }
        break;
    case 17:
        if (ed_ups_is_lit(name, "transfer-encoding")) {
            return true;
        }
        break;
    }
    return ed_ups_conn_listed(h->headers, h->nheaders, name);
}
