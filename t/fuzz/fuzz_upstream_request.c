/* libFuzzer target: the request head sent upstream. A client request
 * parsed by eddy's parser, a URI rewritten inside eddy (try_files,
 * error_pages), a pass path and a location chosen by the fuzzer go
 * through the real head builder; eddy's parser must accept the head it
 * makes and agree on method, target, Host, framing and upgrade.
 *
 * Input: a 7-byte preamble, then the location prefix, the pass path and
 * the rewritten URI (lengths from the preamble), then the client bytes.
 *   [0] flags: 1 forwarded, 2 keepalive, 4 websocket on, 8 pass_host,
 *       16 rewritten URI, 32 internal (error page), 64 pass has a path,
 *       128 TLS listener
 *   [1] location kind (low 2 bits), peer family (next 2 bits), set
 *       headers (high 4 bits: X-Request-Id, X-Forwarded-Proto,
 *       X-Real-IP, X-Forwarded-For, each valued with the rewritten
 *       URI's bytes)
 *   [2] location prefix length, [3] pass path length,
 *   [4..5] rewritten URI length (little endian), [6] unused
 */
#include "ed_http_upstream.h"
#include "fuzz.h"

#include <arpa/inet.h>

#define ED_FUZZ_MAX_HEADERS 100
#define ED_FUZZ_PRE         7

/* Bytes the builder may leave as they are in a path. */
static bool
ed_fuzz_path_char(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

static int
ed_fuzz_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* p[0..n) is want[0..wlen) encoded: path bytes as they are, every other
 * byte as %XX (upper-case), nothing else. */
static bool
ed_fuzz_encodes(const char *p, size_t n, const char *want, size_t wlen)
{
    size_t i = 0, j = 0;
    int    hi, lo;

    while (i < n) {
        if (j == wlen) {
            return false;
        }
        if (p[i] == '%') {
            if (n - i < 3) {
                return false;
            }
            hi = ed_fuzz_hex((u_char)p[i + 1]);
            lo = ed_fuzz_hex((u_char)p[i + 2]);
            if (hi < 0 || lo < 0 || (char)(hi << 4 | lo) != want[j]
                || ed_fuzz_path_char((u_char)want[j]))
            {
                return false;
            }
            i += 3;
        } else {
            if (!ed_fuzz_path_char((u_char)p[i]) || p[i] != want[j]) {
                return false;
            }
            i++;
        }
        j++;
    }
    return j == wlen;
}

static bool
ed_fuzz_eq(const ed_str_t *s, const char *p, size_t n)
{
    return s->len == n && (n == 0 || memcmp(s->data, p, n) == 0);
}

static bool
ed_fuzz_name(const ed_http_header_t *h, const char *lit)
{
    return h->name.len == strlen(lit)
           && ed_strncasecmp(h->name.data, lit, h->name.len) == 0;
}

/* How many fields of h are named name. */
static size_t
ed_fuzz_count(const ed_http_req_head_t *h, const char *name)
{
    size_t i, n = 0;

    for (i = 0; i < h->nheaders; i++) {
        n += ed_fuzz_name(&h->headers[i], name);
    }
    return n;
}

/* Whether v holds the token tok (any case) in its comma list. */
static bool
ed_fuzz_token(const ed_str_t *v, const char *tok)
{
    size_t i = 0, s, e, n = strlen(tok);

    while (i <= v->len) {
        for (s = i; s < v->len && (v->data[s] == ' ' || v->data[s] == '\t');
             s++)
        {
            /* leading OWS */
        }
        for (e = s; e < v->len && v->data[e] != ','; e++) {
            /* to the end of the element */
        }
        i = e + 1;
        while (e > s && (v->data[e - 1] == ' ' || v->data[e - 1] == '\t')) {
            e--;
        }
        if (e - s == n && ed_strncasecmp(v->data + s, tok, n) == 0) {
            return true;
        }
    }
    return false;
}

/* The part of uri the builder puts after the pass path (as
 * ed_http_upstream.h says: the location's prefix replaced). */
static void
ed_fuzz_rest(const ed_http_location_t *loc, const ed_str_t *uri,
             const ed_str_t *pass, const char **rest, size_t *rlen)
{
    *rest = uri->data;
    *rlen = uri->len;
    if (loc->kind == ED_HTTP_LOC_EXACT) {
        *rlen = 0;
    } else if (uri->len >= loc->match.len
               && memcmp(uri->data, loc->match.data, loc->match.len) == 0)
    {
        *rest += loc->match.len;
        *rlen -= loc->match.len;
    } else if (uri->len && uri->data[0] == '/' && pass->len
               && pass->data[pass->len - 1] == '/')
    {
        (*rest)++;
        (*rlen)--;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ed_http_header_t hdrs[ED_FUZZ_MAX_HEADERS];
    static ed_http_header_t hdrs2[ED_FUZZ_MAX_HEADERS + 16];
    static const ed_str_t   set_names[4] = {
        ed_string("X-Request-Id"), ed_string("X-Forwarded-Proto"),
        ed_string("X-Real-IP"), ed_string("X-Forwarded-For")
    };
    static ed_pool_t       *pool;
    static ed_str_t         server_host = ed_string("127.0.0.1:9");
    ed_http_request_t       r;
    ed_http_conn_t          hc;
    ed_listener_t           ls;
    ed_http_location_t      loc;
    ed_http_upstream_req_t  q;
    ed_http_req_head_t      h2;
    ed_str_t                pass, rewritten, names[4], values[4];
    const char             *in = (const char *)data, *rest, *t;
    char                   *head, *uri, *out;
    size_t                  plen, ulen, llen, end, len, i, rlen, tlen, k;
    uint8_t                 flags, kind;
    int                     rc, body;

    if (size < ED_FUZZ_PRE) {
        return 0;
    }
    flags = data[0];
    kind = data[1];
    llen = data[2];
    plen = data[3];
    ulen = (size_t)data[4] | (size_t)data[5] << 8;
    if (size - ED_FUZZ_PRE < llen + plen + ulen) {
        return 0;
    }
    if (pool == NULL) {
        /* The smallest blocks: any head over 128 bytes gets a malloc of
         * its own, where ASan sees a write past its end. */
        pool = ed_pool_create(256);
        if (pool == NULL) {
            abort();
        }
    }
    ed_pool_reset(pool);
    in += ED_FUZZ_PRE;

    /* The location and the pass path as the configuration gives them:
     * a path of request-target bytes but '?' and '#'. */
    memset(&loc, 0, sizeof(loc));
    loc.kind = (kind & 3) == 1 ? ED_HTTP_LOC_EXACT
               : (kind & 3) == 2 ? ED_HTTP_LOC_NOREGEX
                                 : ED_HTTP_LOC_PREFIX;
    loc.match.data = ed_pstrdup(pool, in, llen);
    loc.match.len = llen;
    in += llen;
    pass.data = ed_pstrdup(pool, in, plen);
    pass.len = plen;
    in += plen;
    /* As the configuration accepts it. */
    if (!ed_http_path_ok(pass.data, plen)) {
        return 0;
    }
    if ((flags & 64) && (plen == 0 || pass.data[0] != '/')) {
        return 0;
    }
    rewritten.data = ed_pstrdup(pool, in, ulen);
    rewritten.len = ulen;
    in += ulen;
    size -= ED_FUZZ_PRE + llen + plen + ulen;

    /* The client's head, parsed exactly as the server does. */
    end = ed_http_head_end(in, size, NULL);
    if (end == 0) {
        return 0;
    }
    head = ed_pstrdup(pool, in, end);
    memset(&r, 0, sizeof(r));
    if (ed_http_parse_request(head, end, &r.head, hdrs, ED_FUZZ_MAX_HEADERS)
        != ED_OK)
    {
        return 0;
    }
    /* ed_http_process answers these before any handler runs. */
    if (r.head.asterisk || r.head.method_id == ED_HTTP_CONNECT) {
        return 0;
    }
    uri = ed_pnalloc(pool, r.head.path.len + 1);
    if (ed_http_normalize_path(r.head.path.data, r.head.path.len, uri,
                               &r.uri.len) != ED_OK)
    {
        return 0;
    }
    r.uri.data = uri;
    if (flags & 16) {
        /* As an internal redirect leaves it. */
        r.uri = rewritten;
        r.redirects = 1;
    }
    r.pool = pool;
    r.loc = &loc;
    r.internal = (flags & 32) != 0;
    ed_http_decoder_request(&r.body_dec, &r.head);

    memset(&ls, 0, sizeof(ls));
    ls.tls = (flags & 128) != 0;
    memset(&hc, 0, sizeof(hc));
    hc.c.ls = &ls;
    switch ((kind >> 2) & 3) {
    case 0:
        hc.c.peer.in.sin_family = AF_INET;
        hc.c.peer.in.sin_addr.s_addr = htonl(0x7f000001);
        break;
    case 1:
        hc.c.peer.in6.sin6_family = AF_INET6;
        memset(&hc.c.peer.in6.sin6_addr, 0xab, 16);
        break;
    default:
        hc.c.peer.sa.sa_family = AF_UNIX;
        break;
    }
    r.hc = &hc;

    /* What ed_proxy_send_head makes of the request. */
    memset(&q, 0, sizeof(q));
    q.host = (flags & 8) && r.head.host.len ? &r.head.host : &server_host;
    q.uri = (flags & 64) ? &pass : NULL;
    q.forwarded = (flags & 1) != 0;
    q.keepalive = (flags & 2) != 0;
    q.websocket = (flags & 4) && !r.internal
                  && ed_http_upstream_websocket_asked(&r);
    for (i = 0; i < 4; i++) {
        if (kind & (16 << i)) {
            names[q.nset] = set_names[i];
            values[q.nset] = rewritten;
            q.nset++;
        }
    }
    q.set_names = names;
    q.set_values = values;
    if (r.internal && ed_http_has_body(&r)) {
        body = ED_HTTP_UPS_BODY_NONE;
    } else if (r.body_dec.kind == ED_HTTP_BODY_CHUNKED) {
        body = ED_HTTP_UPS_BODY_CHUNKED;
    } else if (r.head.content_length >= 0 && !r.internal
               && (r.head.content_length > 0
                   || ed_http_header(&r, "Content-Length")))
    {
        body = ED_HTTP_UPS_BODY_LENGTH;
    } else {
        body = ED_HTTP_UPS_BODY_NONE;
    }
    q.body = body;

    out = ed_http_upstream_request_head(&r, &q, &len);
    ed_fuzz_assert(out != NULL);

    /* A copy of exactly the head, so that ASan sees any overread. */
    head = malloc(len);
    if (head == NULL) {
        abort();
    }
    memcpy(head, out, len);
    ed_fuzz_assert(ed_http_head_end(head, len, NULL) == len);
    rc = ed_http_parse_request(head, len, &h2, hdrs2, ed_nelems(hdrs2));
    ed_fuzz_assert(rc == ED_OK);
    ed_fuzz_assert(h2.head_len == len && h2.version == 11);

    /* Method and target. */
    ed_fuzz_assert(ed_fuzz_eq(&h2.method, r.head.method.data,
                              r.head.method.len));
    ed_fuzz_assert(!h2.absolute && !h2.asterisk);
    if (q.uri == NULL && r.redirects) {
        /* The rewritten URI encoded, after a '/' when it lacks one. */
        k = (r.uri.len == 0 || r.uri.data[0] != '/');
        ed_fuzz_assert(h2.path.len >= k && h2.path.data[0] == '/');
        ed_fuzz_assert(ed_fuzz_encodes(h2.path.data + k, h2.path.len - k,
                                       r.uri.data, r.uri.len));
        ed_fuzz_assert(ed_fuzz_eq(&h2.query, r.head.query.data,
                                  r.head.query.len));
    } else if (q.uri == NULL) {
        t = r.head.target.data;
        tlen = r.head.target.len;
        if (r.head.absolute) {
            /* The origin-form: from the path of the absolute target. */
            t = (const char *)memchr(t, ':', tlen) + 3;
            while (t < r.head.target.data + tlen && *t != '/' && *t != '?') {
                t++;
            }
            tlen -= (size_t)(t - r.head.target.data);
            if (tlen == 0 || *t != '/') {
                ed_fuzz_assert(h2.target.len == tlen + 1
                               && h2.target.data[0] == '/');
                ed_fuzz_assert(memcmp(h2.target.data + 1, t, tlen) == 0);
                t = NULL;
            }
        }
        if (t != NULL) {
            ed_fuzz_assert(ed_fuzz_eq(&h2.target, t, tlen));
        }
    } else {
        ed_fuzz_rest(&loc, &r.uri, &pass, &rest, &rlen);
        ed_fuzz_assert(h2.path.len >= pass.len
                       && memcmp(h2.path.data, pass.data, pass.len) == 0);
        ed_fuzz_assert(ed_fuzz_encodes(h2.path.data + pass.len,
                                       h2.path.len - pass.len, rest, rlen));
        ed_fuzz_assert((h2.query.data != NULL)
                       == (r.head.query.data != NULL));
        ed_fuzz_assert(ed_fuzz_eq(&h2.query, r.head.query.data,
                                  r.head.query.len));
    }

    /* Host, once, as chosen. */
    ed_fuzz_assert(ed_fuzz_count(&h2, "host") == 1);
    ed_fuzz_assert(ed_fuzz_eq(&h2.host, q.host->data, q.host->len));

    /* Framing: what eddy sends, nothing of the client's. */
    ed_fuzz_assert(h2.chunked == (body == ED_HTTP_UPS_BODY_CHUNKED));
    ed_fuzz_assert(h2.content_length
                   == (body == ED_HTTP_UPS_BODY_LENGTH
                           ? r.head.content_length : -1));
    ed_fuzz_assert(ed_fuzz_count(&h2, "transfer-encoding")
                   == (body == ED_HTTP_UPS_BODY_CHUNKED));
    ed_fuzz_assert(ed_fuzz_count(&h2, "content-length")
                   == (body == ED_HTTP_UPS_BODY_LENGTH));
    ed_fuzz_assert(!h2.expect_continue && !h2.expect_other);

    /* No upgrade but WebSocket, and only when the client asked it. */
    ed_fuzz_assert(h2.conn_upgrade == q.websocket);
    ed_fuzz_assert(ed_fuzz_count(&h2, "upgrade") == q.websocket);
    ed_fuzz_assert(ed_fuzz_count(&h2, "http2-settings") == 0);
    ed_fuzz_assert(ed_fuzz_count(&h2, "connection")
                   == (q.websocket || !q.keepalive));
    if (q.websocket) {
        ed_fuzz_assert(r.head.version == 11
                       && r.head.method_id == ED_HTTP_GET
                       && r.head.conn_upgrade);
        for (i = 0; i < r.head.nheaders; i++) {
            if (ed_fuzz_name(&r.head.headers[i], "upgrade")
                && ed_fuzz_token(&r.head.headers[i].value, "websocket"))
            {
                break;
            }
        }
        ed_fuzz_assert(i < r.head.nheaders);
    }

    /* eddy's forwarding headers replace the client's: each at most
     * once. */
    if (q.forwarded) {
        ed_fuzz_assert(ed_fuzz_count(&h2, "x-forwarded-for") <= 1);
        ed_fuzz_assert(ed_fuzz_count(&h2, "x-forwarded-proto") <= 1);
        ed_fuzz_assert(ed_fuzz_count(&h2, "x-forwarded-host") <= 1);
        ed_fuzz_assert(ed_fuzz_count(&h2, "x-real-ip") <= 1);
    }
    free(head);
    return 0;
}
