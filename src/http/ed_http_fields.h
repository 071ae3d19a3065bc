/* The rules of HTTP/1.x header fields, in one place for every parser and
 * writer: list walking (RFC 9110 5.6.1), token equality, the framing
 * fields (Content-Length, Transfer-Encoding, Connection), the hop-by-hop
 * set, and one decoder of message bodies (length, chunked, until close).
 * Nothing here allocates; the list helpers are inline, as they run on
 * every request. */
#ifndef ED_HTTP_FIELDS_H
#define ED_HTTP_FIELDS_H

#include "ed_core.h"
#include "ed_http_parse.h"

/* Optional whitespace (RFC 9110 5.6.3). */
#define ed_http_ows(c) ((c) == ' ' || (c) == '\t')

/* Case-insensitive equality of a[0..alen) and b[0..blen): field names,
 * tokens (RFC 9110 5.6.2 says tokens compare without case). */
static inline bool
ed_http_token_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;

    if (alen != blen) {
        return false;
    }
    for (i = 0; i < alen; i++) {
        if (ed_tolower(a[i]) != ed_tolower(b[i])) {
            return false;
        }
    }
    return true;
}

/* The same against a lowercase literal: one side to fold only. */
static inline bool
ed_http_lower_eq(const char *s, size_t n, const char *lit, size_t litlen)
{
    size_t i;

    if (n != litlen) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (ed_tolower(s[i]) != lit[i]) {
            return false;
        }
    }
    return true;
}

#define ed_http_token_eq_lit(s, n, lit)                                      \
    ed_http_lower_eq((const char *) (s), n, lit, sizeof(lit) - 1)
#define ed_http_str_eq_lit(str, lit)                                         \
    ed_http_lower_eq((str)->data, (str)->len, lit, sizeof(lit) - 1)

/*
 * A walk over a #list value (RFC 9110 5.6.1): elements separated by ',',
 * OWS around each one trimmed. Every element is given, empty ones
 * included (a value with n commas has n + 1 elements), so that a rule
 * may refuse them (Content-Length) or skip them (the others).
 */
typedef struct {
    const char *p;     /* where the next element starts; NULL: done */
    const char *end;
} ed_http_list_t;

static inline void
ed_http_list_init(ed_http_list_t *l, const char *v, size_t len)
{
    l->p = v;
    l->end = v + len;
}

/* Sets *e to the next element; false once the list is over. */
static inline bool
ed_http_list_next(ed_http_list_t *l, ed_str_t *e)
{
    const char *s = l->p, *t, *c;

    if (s == NULL) {
        return false;
    }
    c = s < l->end ? memchr(s, ',', (size_t)(l->end - s)) : NULL;
    t = c != NULL ? c : l->end;
    while (s < t && ed_http_ows(*s)) {
        s++;
    }
    while (t > s && ed_http_ows(t[-1])) {
        t--;
    }
    e->data = (char *) s;
    e->len = (size_t)(t - s);
    l->p = c != NULL ? c + 1 : NULL;
    return true;
}

/* For the lists whose elements have a grammar of their own (ranges,
 * entity-tags, codings with parameters), read in place: skips empty
 * elements and OWS up to the next element, or end. */
static inline const char *
ed_http_list_skip(const char *p, const char *end)
{
    while (p < end && (ed_http_ows(*p) || *p == ',')) {
        p++;
    }
    return p;
}

/* After such an element: skips OWS; true when the element ends there
 * (at the end of the value or a ','). */
static inline bool
ed_http_list_elt_end(const char **p, const char *end)
{
    while (*p < end && ed_http_ows(**p)) {
        (*p)++;
    }
    return *p == end || **p == ',';
}

/* Whether a #list value lists tok (any case). Parameters (after ';' or
 * '=') and anything after a space in an element are ignored. */
bool ed_http_list_has(const char *v, size_t len, const char *tok,
                      size_t tlen);

/* Whether a field named name[0..len) (any case) may be passed on in a
 * trailer section: not one RFC 9110 6.5.1 keeps out of trailers
 * (framing, routing, authentication, request modifiers, response
 * controls, content format), nor a hop-by-hop field. */
bool ed_http_trailer_allowed(const char *name, size_t len);

/* Rewrites a chunked body's kept trailer section in[0..len) (fields
 * "name:value\r\n" as ed_http_chunked_parse checked them) into out
 * (room for 2 * len bytes) as "name: value\r\n" lines, the value without
 * its surrounding whitespace, names lower-cased when lower (HTTP/2),
 * fields ed_http_trailer_allowed refuses left out. Returns the length
 * written. */
size_t ed_http_trailers_copy(char *out, const char *in, size_t len,
                             bool lower);

/* Goes through the lists of every field of hdrs[0..n) named field (any
 * case), empty elements skipped. Returns how many elements they hold;
 * *found tells whether tok (any case) is one of them. */
size_t ed_http_fields_list(const ed_http_header_t *hdrs, size_t n,
                           const char *field, size_t flen, const char *tok,
                           size_t tlen, bool *found);

/* The fields whose names the parsers and the proxy act on. */
enum {
    ED_HTTP_F_OTHER = 0,
    ED_HTTP_F_HOST,
    ED_HTTP_F_EXPECT,
    ED_HTTP_F_CONNECTION,
    ED_HTTP_F_CONTENT_LENGTH,
    ED_HTTP_F_TRANSFER_ENCODING,
    ED_HTTP_F_TE,
    ED_HTTP_F_UPGRADE,
    ED_HTTP_F_TRAILER,
    ED_HTTP_F_KEEP_ALIVE,
    ED_HTTP_F_PROXY_CONNECTION,
    ED_HTTP_F_HTTP2_SETTINGS,
    ED_HTTP_F_CONTENT_TYPE,
    ED_HTTP_F_DATE,
    ED_HTTP_F_SERVER
};

#define ED_HTTP_F_BIT(id) (1u << (id))

/* Hop-by-hop: fields that describe one connection and never go to the
 * next hop as they are (RFC 9110 7.6.1, with Proxy-Connection, Keep-Alive
 * and Trailer as nginx treats them). Content-Length is not among them,
 * but the proxy writes its own framing, so it never relays one either. */
#define ED_HTTP_HOP_BY_HOP                                                   \
    (ED_HTTP_F_BIT(ED_HTTP_F_CONNECTION)                                     \
     | ED_HTTP_F_BIT(ED_HTTP_F_KEEP_ALIVE)                                   \
     | ED_HTTP_F_BIT(ED_HTTP_F_PROXY_CONNECTION)                             \
     | ED_HTTP_F_BIT(ED_HTTP_F_TE)                                           \
     | ED_HTTP_F_BIT(ED_HTTP_F_TRAILER)                                      \
     | ED_HTTP_F_BIT(ED_HTTP_F_TRANSFER_ENCODING)                            \
     | ED_HTTP_F_BIT(ED_HTTP_F_UPGRADE))

/* Which ED_HTTP_F_* a field name is (any case). Dispatches on the length
 * and the first byte, so a name that is none of them costs one switch
 * and a compare or two of one byte. */
static inline int
ed_http_field_id(const char *name, size_t len)
{
    char c;

    if (len == 0) {
        return ED_HTTP_F_OTHER;
    }
    c = ed_tolower(name[0]);
    switch (len) {
    case 2:
        if (c == 't' && ed_http_token_eq_lit(name, len, "te")) {
            return ED_HTTP_F_TE;
        }
        break;
    case 4:
        if (c == 'h' && ed_http_token_eq_lit(name, len, "host")) {
            return ED_HTTP_F_HOST;
        }
        if (c == 'd' && ed_http_token_eq_lit(name, len, "date")) {
            return ED_HTTP_F_DATE;
        }
        break;
    case 6:
        if (c == 'e' && ed_http_token_eq_lit(name, len, "expect")) {
            return ED_HTTP_F_EXPECT;
        }
        if (c == 's' && ed_http_token_eq_lit(name, len, "server")) {
            return ED_HTTP_F_SERVER;
        }
        break;
    case 7:
        if (c == 'u' && ed_http_token_eq_lit(name, len, "upgrade")) {
            return ED_HTTP_F_UPGRADE;
        }
        if (c == 't' && ed_http_token_eq_lit(name, len, "trailer")) {
            return ED_HTTP_F_TRAILER;
        }
        break;
    case 10:
        if (c == 'c' && ed_http_token_eq_lit(name, len, "connection")) {
            return ED_HTTP_F_CONNECTION;
        }
        if (c == 'k' && ed_http_token_eq_lit(name, len, "keep-alive")) {
            return ED_HTTP_F_KEEP_ALIVE;
        }
        break;
    case 12:
        if (c == 'c' && ed_http_token_eq_lit(name, len, "content-type")) {
            return ED_HTTP_F_CONTENT_TYPE;
        }
        break;
    case 14:
        if (c == 'c' && ed_http_token_eq_lit(name, len, "content-length")) {
            return ED_HTTP_F_CONTENT_LENGTH;
        }
        if (c == 'h' && ed_http_token_eq_lit(name, len, "http2-settings")) {
            return ED_HTTP_F_HTTP2_SETTINGS;
        }
        break;
    case 16:
        if (c == 'p' && ed_http_token_eq_lit(name, len, "proxy-connection")) {
            return ED_HTTP_F_PROXY_CONNECTION;
        }
        break;
    case 17:
        if (c == 't' && ed_http_token_eq_lit(name, len, "transfer-encoding")) {
            return ED_HTTP_F_TRANSFER_ENCODING;
        }
        break;
    }
    return ED_HTTP_F_OTHER;
}

/* Whether a field name is hop-by-hop. */
static inline bool
ed_http_hop_by_hop(const ed_str_t *name)
{
    return (ED_HTTP_HOP_BY_HOP
            & ED_HTTP_F_BIT(ed_http_field_id(name->data, name->len)))
           != 0;
}

/* What the framing fields of one head say, gathered field by field
 * (all zero before the first); the verdict comes once all are seen. */
typedef struct {
    const char *cl;              /* the first Content-Length element */
    size_t      cl_len;
    int64_t     content_length;  /* its value, when cl is set */
    unsigned    te:1;            /* a Transfer-Encoding field was seen */
    unsigned    te_codings:1;    /* ... naming at least one coding */
    unsigned    te_chunked:1;
    unsigned    te_last_chunked:1;
    unsigned    te_other:1;      /* a coding other than chunked */
    unsigned    te_unknown:1;    /* ... and none RFC 9112 registers */
} ed_http_framing_t;

/* Content-Length: a list of decimal values, all spelt identically
 * across every element and every field (RFC 9110 8.6). An empty
 * element, a non-digit or an overflow fails. ED_OK or ED_ERROR. */
int ed_http_content_length(ed_http_framing_t *f, const char *v, size_t len);

/* Transfer-Encoding: a list of codings, maybe over several fields.
 * Codings are bare tokens: parameters fail (none of the known codings
 * takes one, and "chunked;x" is a classic smuggling vector), and so does
 * chunked twice. ED_OK or ED_ERROR. */
int ed_http_transfer_encoding(ed_http_framing_t *f, const char *v,
                              size_t len);

/* The verdict on the framing fields of a message of HTTP/1.<version
 * 10 or 11> (RFC 9112 6.1 and 6.3): ED_OK (f->te: the body is chunked),
 * 400 for no guessing between two framings, no chunked from HTTP/1.0, a
 * Transfer-Encoding that names nothing or whose last coding is not
 * chunked (once), or 501 for an unknown coding. */
int ed_http_framing_verdict(const ed_http_framing_t *f, int version);

/*
 * A request head filled field by field, as the HTTP/1 parser does and
 * as HTTP/2 does from its decoded fields, with one set of rules for
 * both: ed_http_head_begin, ed_http_head_request (the method and the
 * target), ed_http_head_field for each field in order, then
 * ed_http_head_verdict. The strings stay where the caller has them.
 */
typedef struct {
    ed_http_framing_t framing;  /* Content-Length, Transfer-Encoding */
    unsigned          hosts;    /* Host fields seen */
    size_t            max;      /* room in h->fields: max_headers */
} ed_http_head_state_t;

/* Clears h (no Content-Length) with hdrs[0..max_headers) for its
 * fields. */
void ed_http_head_begin(ed_http_req_head_t *h, ed_http_head_state_t *st,
                        ed_http_header_t *hdrs, size_t max_headers);

/* The method (a token) and the request-target (visible bytes), which
 * is split into its form (origin, absolute, asterisk for OPTIONS,
 * authority for CONNECT) and checked. The version is the caller's to
 * set (h->version: 10 or 11, whose rules apply). ED_OK or 400. */
int ed_http_head_request(ed_http_req_head_t *h, const char *method,
                         size_t mlen, const char *target, size_t tlen);

/* One field (a token name; the value trimmed, of ED_HTTP_C_VALUE bytes
 * only: the caller's check, ed_http_value_len, as it may have made it
 * while reading them): kept in h->fields (431 past max_headers), counted in
 * h->underscores when its name holds '_', and interpreted: Host (one,
 * a valid uri-host), Expect, Connection, Content-Length,
 * Transfer-Encoding. ED_OK or an HTTP status (400, 431). */
int ed_http_head_field(ed_http_req_head_t *h, ed_http_head_state_t *st,
                       const char *name, size_t nlen, const char *v,
                       size_t vlen);

/* The checks of the whole head once its fields are in: Host in
 * HTTP/1.1, the framing verdict (ed_http_framing_verdict); sets
 * h->host for an absolute or authority-form target, h->chunked.
 * ED_OK, 400 or 501. */
int ed_http_head_verdict(ed_http_req_head_t *h,
                         const ed_http_head_state_t *st);

/* Connection options that the servers act on. */
#define ED_HTTP_CONN_CLOSE     0x01
#define ED_HTTP_CONN_KEEPALIVE 0x02
#define ED_HTTP_CONN_UPGRADE   0x04

/* The ED_HTTP_CONN_* a Connection value lists. */
unsigned ed_http_connection(const char *v, size_t len);

/* Adds what a Connection value v[0..len) lists to the conn_close,
 * conn_keepalive and conn_upgrade flags of a request or response head. */
#define ed_http_head_connection(h, v, len)                                   \
    do {                                                                     \
        unsigned o_ = ed_http_connection((const char *) (v), len);          \
        (h)->conn_close |= (o_ & ED_HTTP_CONN_CLOSE) != 0;                   \
        (h)->conn_keepalive |= (o_ & ED_HTTP_CONN_KEEPALIVE) != 0;           \
        (h)->conn_upgrade |= (o_ & ED_HTTP_CONN_UPGRADE) != 0;               \
    } while (0)

/*
 * One decoder of message bodies (RFC 9112 6.3), whatever frames them:
 * a length, chunked coding or the end of the connection. Zero-copy: it
 * hands out slices of its input.
 */
enum {
    ED_HTTP_BODY_NONE = 0,   /* no body: done at once */
    ED_HTTP_BODY_LENGTH,
    ED_HTTP_BODY_CHUNKED,
    ED_HTTP_BODY_CLOSE       /* every byte up to the end of input */
};

typedef struct {
    int               kind;     /* ED_HTTP_BODY_* */
    /* Bytes still to come: the rest of a length, 0 once any body is
     * over (NONE at once, CHUNKED after its last chunk), -1 while a
     * CHUNKED or CLOSE body goes on. */
    int64_t           left;
    int64_t           total;    /* body bytes so far */
    ed_http_chunked_t chunked;  /* CHUNKED */
} ed_http_decoder_t;

/* Starts a body of kind; length is the Content-Length for LENGTH. */
void ed_http_decoder_init(ed_http_decoder_t *d, int kind, int64_t length);

/* Starts the body of a request (RFC 9112 6.3, the head's framing
 * already judged by ed_http_parse_request): chunked, a length, or none,
 * as a request is never delimited by the end of its connection. */
void ed_http_decoder_request(ed_http_decoder_t *d,
                             const ed_http_req_head_t *h);

/* Decodes from p[0..len), with the answers of ed_http_chunked_parse:
 * ED_OK (a slice p[*off .. *off + *n), *used bytes consumed), ED_AGAIN
 * (all consumed, more needed), ED_DONE (the body ended after *used
 * bytes, which may hold a last slice: *n > 0; what follows is not the
 * body's) or ED_ERROR (invalid framing). */
int ed_http_decode(ed_http_decoder_t *d, const char *p, size_t len,
                   size_t *used, size_t *off, size_t *n);

/* The input ended: ED_DONE where that ends the body (until close, or
 * a body already over), ED_ERROR where the body was cut short. */
int ed_http_decode_eof(const ed_http_decoder_t *d);

/* Where ed_http_decode_run hands a slice: ED_OK to go on, anything
 * else to stop the run with that answer. */
typedef int (*ed_http_slice_pt)(void *data, const char *p, size_t n);

/* Decodes p[*pos .. len), giving each body slice to slice (NULL: slices
 * are dropped), and moves *pos past what was consumed. Returns ED_AGAIN
 * (all of it consumed, the body goes on), ED_DONE (the body ended at
 * *pos), ED_ERROR (invalid framing; *pos just past the first invalid
 * byte), or the first answer of slice other than ED_OK (*pos is then
 * just past that slice; a body that ended with it is
 * ed_http_decoder_done). */
int ed_http_decode_run(ed_http_decoder_t *d, const char *p, size_t len,
                       size_t *pos, ed_http_slice_pt slice, void *data);

/* Whether the body is over (nothing more to read for it). */
static inline bool
ed_http_decoder_done(const ed_http_decoder_t *d)
{
    return d->left == 0;
}

/* How many bytes a read for the body may ask, at most max: no more than
 * the rest of a length, so that what follows the body (the next request
 * of the connection) is never taken for it. */
static inline size_t
ed_http_decoder_want(const ed_http_decoder_t *d, size_t max)
{
    return d->left >= 0 && (uint64_t) d->left < max ? (size_t) d->left
                                                     : max;
}

#endif /* ED_HTTP_FIELDS_H */
