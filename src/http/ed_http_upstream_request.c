/* The wire form of a proxied exchange: the request head sent upstream
 * (target, end-to-end headers, forwarding headers, framing), which
 * response headers stop at the proxy, and the one upgrade relayed. */
#include "ed_http_upstream.h"
#include "ed_http_fields.h"

#include <openssl/evp.h>

#define ed_ups_is_lit(name, lit) ed_http_str_eq_lit(name, lit)

/* Whether a name is listed in a Connection field of hdrs[0..n). */
static bool
ed_ups_conn_listed(const ed_http_header_t *hdrs, size_t n,
                   const ed_str_t *name)
{
    bool found;

    ed_http_fields_list(hdrs, n, "connection", 10, name->data, name->len,
                        &found);
    return found;
}

/* The client asks for WebSocket (RFC 6455 4.1): an HTTP/1.1 GET without
 * a body whose Connection names upgrade and whose Upgrade lists the
 * token websocket, among others or not (RFC 9110 7.8: the next hop is
 * offered only it). Any other protocol is never offered upstream: the
 * request goes as an ordinary one. */
bool
ed_http_upstream_websocket_asked(ed_http_request_t *r)
{
    bool found;

    if (r->connect_protocol) {
        return true;    /* RFC 8441: :protocol websocket */
    }
    if (r->head.version != 11 || r->head.method_id != ED_HTTP_GET
        || !r->head.conn_upgrade || r->head.chunked
        || r->head.content_length > 0)
    {
        return false;
    }
    ed_http_fields_list(r->head.headers, r->head.nheaders, "upgrade", 7,
                        "websocket", 9, &found);
    return found;
}

/* A 101 switches to WebSocket: its Upgrade fields together name that
 * one protocol and nothing else. */
bool
ed_http_upstream_websocket_accepted(const ed_http_resp_head_t *h)
{
    bool found;

    return ed_http_fields_list(h->headers, h->nheaders, "upgrade", 7,
                               "websocket", 9, &found)
               == 1
           && found;
}

bool
ed_http_upstream_websocket_accept_ok(ed_http_request_t *r,
                                     const ed_http_resp_head_t *h)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const ed_str_t   *key = ed_http_header(r, "sec-websocket-key");
    unsigned char     md[EVP_MAX_MD_SIZE], want[64];
    char              in[128];
    unsigned          mdlen;
    size_t            i;
    int               n;

    if (key == NULL || key->len + sizeof(guid) > sizeof(in)) {
        return false;
    }
    memcpy(in, key->data, key->len);
    memcpy(in + key->len, guid, sizeof(guid) - 1);
    if (EVP_Digest(in, key->len + sizeof(guid) - 1, md, &mdlen, EVP_sha1(),
                   NULL) != 1)
    {
        return false;
    }
    n = EVP_EncodeBlock(want, md, (int)mdlen);
    for (i = 0; i < h->nheaders; i++) {
        if (ed_str_caseeq(&h->headers[i].name, "sec-websocket-accept")) {
            return h->headers[i].value.len == (size_t)n
                   && memcmp(h->headers[i].value.data, want, (size_t)n)
                          == 0;
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
        if (ed_http_token_eq(name->data, name->len, names[i].data,
                             names[i].len))
        {
            return true;
        }
    }
    return false;
}

/* Names the proxy never passes on as they are: hop-by-hop ones
 * (HTTP2-Settings belongs to an h2c upgrade, RFC 7540 3.2.1, never
 * relayed), Host and the framing it writes itself, and Expect (answered
 * by it). */
bool
ed_http_upstream_own_header(const ed_str_t *name)
{
    return ((ED_HTTP_HOP_BY_HOP | ED_HTTP_F_BIT(ED_HTTP_F_HOST)
             | ED_HTTP_F_BIT(ED_HTTP_F_EXPECT)
             | ED_HTTP_F_BIT(ED_HTTP_F_CONTENT_LENGTH)
             | ED_HTTP_F_BIT(ED_HTTP_F_HTTP2_SETTINGS))
            & ED_HTTP_F_BIT(ed_http_field_id(name->data, name->len)))
           != 0;
}

/* Whether name is one of the forwarding headers eddy writes. */
static bool
ed_ups_forwarding_header(const ed_str_t *name)
{
    switch (name->len) {
    case 9:
        return ed_ups_is_lit(name, "x-real-ip");
    case 15:
        return ed_ups_is_lit(name, "x-forwarded-for");
    case 16:
        return ed_ups_is_lit(name, "x-forwarded-host");
    case 17:
        return ed_ups_is_lit(name, "x-forwarded-proto");
    }
    return false;
}

/* Whether a client header is not forwarded as it is: hop-by-hop, Host
 * and framing (written by us), forwarding headers (replaced), removed or
 * set ones. */
/* Request fields a cache fetch leaves out: the response must be the
 * whole representation, unconditionally (cache.md, What is stored). */
static bool
ed_ups_cache_skip(const ed_str_t *name)
{
    switch (name->len) {
    case 5:
        return ed_ups_is_lit(name, "range");
    case 8:
        return ed_ups_is_lit(name, "if-range")
               || ed_ups_is_lit(name, "if-match");
    case 13:
        return ed_ups_is_lit(name, "if-none-match");
    case 17:
        return ed_ups_is_lit(name, "if-modified-since");
    case 19:
        return ed_ups_is_lit(name, "if-unmodified-since");
    default:
        return false;
    }
}

static bool
ed_ups_skip_request_header(ed_http_request_t *r,
                           const ed_http_upstream_req_t *q,
                           const ed_str_t *name, bool conn)
{
    return ed_http_upstream_own_header(name)
           || (q->cache && ed_ups_cache_skip(name))
           || (q->forwarded && ed_ups_forwarding_header(name))
           || ed_ups_in(q->remove, q->nremove, name)
           || ed_ups_in(q->set_names, q->nset, name)
           || (conn
               && ed_ups_conn_listed(r->head.headers, r->head.nheaders,
                                     name));
}

/* Bytes of a path that go out as they are (RFC 3986 pchar without '%',
 * and '/'), one bit each. */
static const uint32_t ed_ups_path_chars[8] = {
    0x00000000, 0x2fffffd2, 0x87ffffff, 0x47fffffe, 0, 0, 0, 0
};

#define ed_ups_path_char(c) (ed_ups_path_chars[(c) >> 5] & (1u << ((c) & 31)))

/* Where the head goes. It is made twice by the same code: once with buf
 * NULL only to count its bytes, then written into a buffer of exactly
 * that many, so that no size is ever computed apart from what is
 * written. Each write is bounded by cap all the same. */
typedef struct {
    char   *buf;
    size_t  cap;
    size_t  len;    /* bytes so far, written or not */
} ed_ups_out_t;

static void
ed_ups_put(ed_ups_out_t *o, const char *s, size_t n)
{
    if (o->buf != NULL && n > 0 && o->len <= o->cap
        && n <= o->cap - o->len)
    {
        memcpy(o->buf + o->len, s, n);
    }
    o->len += n;
}

#define ed_ups_put_lit(o, s) ed_ups_put(o, s, sizeof(s) - 1)
#define ed_ups_put_str(o, s) ed_ups_put(o, (s)->data, (s)->len)

/* Puts p[0..n) %-encoding every byte that is not a path byte: runs of
 * path bytes go in one piece. */
static void
ed_ups_put_path(ed_ups_out_t *o, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char              esc[3];
    size_t            i, run;
    u_char            c;

    for (i = 0; i < n; i = run + 1) {
        for (run = i; run < n && ed_ups_path_char((u_char)p[run]); run++) {
            /* as they are */
        }
        ed_ups_put(o, p + i, run - i);
        if (run == n) {
            break;
        }
        c = (u_char)p[run];
        esc[0] = '%';
        esc[1] = hex[c >> 4];
        esc[2] = hex[c & 15];
        ed_ups_put(o, esc, 3);
    }
}

/* The part of the normalised URI that follows pass's path: the URI minus
 * the location's prefix (nothing for an exact location). */
static void
ed_ups_target_rest(const ed_http_location_t *loc, const ed_str_t *pass,
                   const char **rest, size_t *rlen)
{
    if (loc && loc->kind == ED_HTTP_LOC_EXACT) {
        *rlen = 0;
    } else if (loc && *rlen >= loc->match.len
               && memcmp(*rest, loc->match.data, loc->match.len) == 0)
    {
        *rest += loc->match.len;
        *rlen -= loc->match.len;
    } else if (*rlen && (*rest)[0] == '/' && pass->len
               && pass->data[pass->len - 1] == '/')
    {
        (*rest)++;
        (*rlen)--;
    }
}

/* Puts the target: as received (origin-form of an absolute-form one)
 * when pass has no path and the URI is the client's; the normalised URI
 * re-encoded when pass has no path and an internal redirect changed it,
 * or when a rewrite rule did, whatever pass says (nginx's rules); else
 * the normalised path with the location's prefix replaced by q->uri,
 * re-encoded. Both re-encoded forms add the query. */
static void
ed_ups_target(ed_http_request_t *r, const ed_http_upstream_req_t *q,
              ed_ups_out_t *o)
{
    ed_http_location_t *loc = r->loc;
    const char         *t = r->head.target.data, *end, *a, *rest;
    size_t              rlen;

    if (q->uri == NULL && r->redirects == 0 && !r->uri_rewritten) {
        end = t + r->head.target.len;
        if (r->head.absolute) {
            a = (const char *)memchr(t, ':', r->head.target.len) + 3;
            while (a < end && *a != '/' && *a != '?') {
                a++;
            }
            if (a == end || *a != '/') {
                ed_ups_put_lit(o, "/");
            }
            t = a;
        }
        ed_ups_put(o, t, (size_t)(end - t));
        return;
    }
    rest = r->uri.data;
    rlen = r->uri.len;
    if (q->uri == NULL || r->uri_rewritten) {
        /* A target is a path even when a template made the URI
         * something else. */
        if (rlen == 0 || rest[0] != '/') {
            ed_ups_put_lit(o, "/");
        }
        ed_ups_put_path(o, rest, rlen);
    } else {
        ed_ups_target_rest(loc, q->uri, &rest, &rlen);
        ed_ups_put_str(o, q->uri);
        ed_ups_put_path(o, rest, rlen);
    }
    if (r->head.query.data) {
        ed_ups_put_lit(o, "?");
        ed_ups_put_str(o, &r->head.query);
    }
}

#define ed_ups_is_set(q, lit) ed_ups_in((q)->set_names, (q)->nset, &(lit))

/* Puts "name: value\r\n". */
static void
ed_ups_put_field(ed_ups_out_t *o, const ed_str_t *name, const ed_str_t *value)
{
    ed_ups_put_str(o, name);
    ed_ups_put_lit(o, ": ");
    ed_ups_put_str(o, value);
    ed_ups_put_lit(o, "\r\n");
}

/* Puts the whole head; conn: the client sent a Connection field; ip[0]:
 * the peer's address as text, appended to X-Forwarded-For, ip[1]: the
 * client's (real_ip may have changed it), for X-Real-IP (forwarded
 * only). set_headers replaces
 * (an empty value removes) the forwarding headers as well: each goes
 * out once. */
static void
ed_ups_head(ed_http_request_t *r, const ed_http_upstream_req_t *q, bool conn,
            const ed_str_t ip[2], ed_ups_out_t *o)
{
    static const ed_str_t xff = ed_string("X-Forwarded-For"),
                          xfp = ed_string("X-Forwarded-Proto"),
                          xfh = ed_string("X-Forwarded-Host"),
                          xri = ed_string("X-Real-IP");
    ed_http_header_t     *h;
    char                  num[24];
    size_t                i;

    if (r->connect_protocol || q->cache) {
        /* RFC 8441: the HTTP/1.1 side of a WebSocket is a GET. A cache
         * fetch is one too (a HEAD converted, as nginx). */
        ed_ups_put_lit(o, "GET");
    } else {
        ed_ups_put_str(o, &r->head.method);
    }
    ed_ups_put_lit(o, " ");
    ed_ups_target(r, q, o);
    ed_ups_put_lit(o, " HTTP/1.1\r\nHost: ");
    ed_ups_put_str(o, q->host);
    ed_ups_put_lit(o, "\r\n");
    for (i = 0; i < r->head.nheaders; i++) {
        h = &r->head.headers[i];
        if (!ed_ups_skip_request_header(r, q, &h->name, conn)) {
            ed_ups_put_field(o, &h->name, &h->value);
        }
    }
    for (i = 0; i < q->nset; i++) {
        /* Not empty (an empty value removes the header, nginx's rule),
         * and nothing a variable brought may split a line. */
        if (q->set_values[i].len
            && ed_http_field_ok(&q->set_values[i], ED_HTTP_C_VALUE))
        {
            ed_ups_put_field(o, &q->set_names[i], &q->set_values[i]);
        }
    }
    if (q->if_none_match) {
        ed_ups_put_lit(o, "If-None-Match: ");
        ed_ups_put_str(o, q->if_none_match);
        ed_ups_put_lit(o, "\r\n");
    }
    if (q->if_modified_since) {
        ed_ups_put_lit(o, "If-Modified-Since: ");
        ed_ups_put_str(o, q->if_modified_since);
        ed_ups_put_lit(o, "\r\n");
    }
    if (q->forwarded && !ed_ups_is_set(q, xff)) {
        ed_ups_put_lit(o, "X-Forwarded-For: ");
        for (i = 0; i < r->head.nheaders; i++) {
            h = &r->head.headers[i];
            if (ed_ups_is_lit(&h->name, "x-forwarded-for") && h->value.len) {
                ed_ups_put_str(o, &h->value);
                ed_ups_put_lit(o, ", ");
            }
        }
        ed_ups_put_str(o, &ip[0]);
        ed_ups_put_lit(o, "\r\n");
    }
    if (q->forwarded && !ed_ups_is_set(q, xfp)) {
        if (r->hc->c.ls && r->hc->c.ls->tls) {
            ed_ups_put_lit(o, "X-Forwarded-Proto: https\r\n");
        } else {
            ed_ups_put_lit(o, "X-Forwarded-Proto: http\r\n");
        }
    }
    if (q->forwarded && r->head.host.len && !ed_ups_is_set(q, xfh)) {
        /* A cache fetch: the Host its key has (see q->host). */
        ed_ups_put_field(o, &xfh, q->cache && r->host.len ? &r->host
                                                          : &r->head.host);
    }
    if (q->forwarded && !ed_ups_is_set(q, xri)) {
        ed_ups_put_field(o, &xri, &ip[1]);
    }
    if (q->body == ED_HTTP_UPS_BODY_CHUNKED) {
        ed_ups_put_lit(o, "Transfer-Encoding: chunked\r\n");
    } else if (q->body == ED_HTTP_UPS_BODY_LENGTH) {
        ed_ups_put_lit(o, "Content-Length: ");
        ed_ups_put(o, num,
                   (size_t)(ed_sprint_u64(num,
                                          (uint64_t)r->head.content_length)
                            - num));
        ed_ups_put_lit(o, "\r\n");
    }
    if (q->websocket) {
        ed_ups_put_lit(o, "Upgrade: websocket\r\nConnection: upgrade\r\n");
    } else if (!q->keepalive) {
        ed_ups_put_lit(o, "Connection: close\r\n");
    }
    ed_ups_put_lit(o, "\r\n");
}

/* Returns the head in r's pool with its length in *len, or NULL on
 * ENOMEM. The two runs see the same input; should they ever differ,
 * the bounded writes leave the buffer short and the head is refused
 * rather than sent. */
char *
ed_http_upstream_request_head(ed_http_request_t *r,
                              const ed_http_upstream_req_t *q, size_t *len)
{
    ed_ups_out_t o;
    ed_str_t     ip[2] = { ed_null_string, ed_null_string };
    char         text[2][64];
    size_t       i;
    bool         conn = false;

    for (i = 0; i < r->head.nheaders; i++) {
        /* Only then may a header be named hop-by-hop by Connection. */
        if (ed_ups_is_lit(&r->head.headers[i].name, "connection")) {
            conn = true;
            break;
        }
    }
    if (q->forwarded) {
        ip[0].data = text[0];
        ip[0].len = ed_min(ed_peer_text(&r->hc->c.peer, text[0], 64), 63);
        ip[1].data = text[1];
        ip[1].len = ed_min(ed_peer_text(ed_http_remote(r), text[1], 64),
                           63);
    }
    memset(&o, 0, sizeof(o));
    ed_ups_head(r, q, conn, ip, &o);
    o.cap = o.len;
    o.len = 0;
    o.buf = ed_pnalloc(r->pool, o.cap);
    if (o.buf == NULL) {
        return NULL;
    }
    ed_ups_head(r, q, conn, ip, &o);
    if (o.len != o.cap) {
        return NULL;
    }
    *len = o.len;
    return o.buf;
}

/* Returns true for a header the client must not get as it is. */
bool
ed_http_upstream_skip_response_header(const ed_http_resp_head_t *h,
                                      const ed_str_t *name)
{
    /* Hop-by-hop, the framing eddy writes itself, and the Date, Server
     * and Content-Type it sets from its own state. */
    return ((ED_HTTP_HOP_BY_HOP | ED_HTTP_F_BIT(ED_HTTP_F_CONTENT_LENGTH)
             | ED_HTTP_F_BIT(ED_HTTP_F_DATE)
             | ED_HTTP_F_BIT(ED_HTTP_F_SERVER)
             | ED_HTTP_F_BIT(ED_HTTP_F_CONTENT_TYPE))
            & ED_HTTP_F_BIT(ed_http_field_id(name->data, name->len)))
               != 0
           || ed_ups_conn_listed(h->headers, h->nheaders, name);
}
