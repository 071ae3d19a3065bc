/* Zero-copy HTTP/1.x request-head parser and head-end scanner. */
#include "ed_core.h"
#include "ed_http_parse.h"
#include "ed_http_fields.h"

/*
 * Character classes, one table lookup per byte on the hot path. Built from
 * RFC 9110 (tchar, field-vchar) and RFC 3986 (reg-name, pchar). TARGET
 * only finds where the request-target ends (every visible byte and
 * obs-text, never a CTL, SP or DEL); its path and query are then held to
 * PATH, RFC 3986's grammar.
 */
const uint8_t ed_http_char[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 00 */
    0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 08 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 10 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 18 */
    0x02, 0x2f, 0x06, 0x07, 0x2f, 0x07, 0x2f, 0x2f,  /* 20 */
    0x2e, 0x2e, 0x2f, 0x2f, 0x2e, 0x2f, 0x2f, 0x26,  /* 28 */
    0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,  /* 30 */
    0x3f, 0x3f, 0x26, 0x2e, 0x06, 0x2e, 0x06, 0x06,  /* 38 */
    0x26, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f,  /* 40 */
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,  /* 48 */
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,  /* 50 */
    0x2f, 0x2f, 0x2f, 0x06, 0x06, 0x06, 0x07, 0x2f,  /* 58 */
    0x07, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f,  /* 60 */
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,  /* 68 */
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,  /* 70 */
    0x2f, 0x2f, 0x2f, 0x06, 0x07, 0x06, 0x2f, 0x00,  /* 78 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* 80 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* 88 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* 90 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* 98 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* a0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* a8 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* b0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* b8 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* c0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* c8 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* d0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* d8 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* e0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* e8 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* f0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,  /* f8 */
};

#define ed_http_is(c, cls) (ed_http_char[(u_char)(c)] & (cls))

/* The steps of a head shared with the HTTP/2 fill (ed_http_head_*),
 * kept inline in the HTTP/1 parser's loop all the same. */
#define ed_http_hot static inline __attribute__((always_inline))

/* Path of an absolute-form target that has none ("http://a?b"). */
static char ed_http_slash[] = "/";

/* Leaves in *resume (when asked for) where the next scan goes on;
 * returns 0, the answer for an incomplete head. */
static size_t
ed_http_head_more(size_t *resume, size_t at)
{
    if (resume != NULL) {
        *resume = at;
    }
    return 0;
}

/*
 * Finds the end of the head: leading empty lines are skipped, then the
 * first empty line (LF or CRLF) after the request line ends the head.
 * Returns the length of the head including that empty line, or 0 when
 * more bytes are needed, with *resume (when not NULL) set to where to go
 * on once more bytes are there.
 *
 * Where a call stops tells the next one which loop it was in. The first
 * (leading empty lines) stops at the start or right after an LF. The
 * second stops at an LF that may still begin the end (the last byte, or
 * followed by a CR that is), or at len with no LF at len - 1: in both
 * cases the byte before is no LF, or the two would have ended the head.
 */
size_t
ed_http_head_end(const char *buf, size_t len, size_t *resume)
{
    const char *p = buf, *end = buf + len, *lf;

    if (resume != NULL) {
        p += ed_min(*resume, len);
    }

    if (p == buf || p[-1] == '\n') {
        while (p < end
               && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')))
        {
            p += *p == '\n' ? 1 : 2;
        }
        if (p == end || (*p == '\r' && p + 1 == end)) {
            /* Nothing but empty lines yet (a CR may begin one more). */
            return ed_http_head_more(resume, (size_t)(p - buf));
        }
        /* A bare CR goes on as a line: the parser rejects the head. */
    }

    for (;;) {
        lf = memchr(p, '\n', (size_t)(end - p));
        if (lf == NULL) {
            return ed_http_head_more(resume, len);
        }
        p = lf + 1;
        if (p < end && *p == '\n') {
            return (size_t)(p + 1 - buf);
        }
        if (p < end && *p == '\r' && p + 1 < end) {
            if (p[1] == '\n') {
                return (size_t)(p + 2 - buf);
            }
        } else if (p == end || *p == '\r') {
            /* The end may begin at this LF: look at it again. */
            return ed_http_head_more(resume, (size_t)(lf - buf));
        }
    }
}

/*
 * Skips the bytes of class cls from p. Words whose bytes are all >= below
 * and not DEL are skipped whole; that is exact for the two classes used
 * here (VALUE with below 0x20, whose only other member is HTAB; TARGET
 * with below 0x21). A word holding anything else goes byte by byte. The
 * LF at end[-1] is outside both classes and stops the scan.
 * Returns the first byte outside cls.
 */
static inline const u_char *
ed_http_skip(const u_char *p, const u_char *end, unsigned cls,
             uint64_t below)
{
    const u_char *stop;
    uint64_t      w;

    for (;;) {
        while (end - p >= 8) {
            memcpy(&w, p, 8);
            if (ed_swar_less(w, below) | ed_swar_has(w, 0x7f)) {
                break;
            }
            p += 8;
        }
        stop = end - p > 8 ? p + 8 : end;
        for (; p < stop; p++) {
            if (!ed_http_is(*p, cls)) {
                return p;
            }
        }
    }
}

/*
 * One field line at p (RFC 9112 5): a name that is a token right up to
 * the colon (which also refuses obs-fold and whitespace before the
 * colon), OWS, a value of field-vchar, SP and HTAB, trimmed, then CRLF
 * or LF. The last LF of the head, at end[-1], bounds the scans. Returns
 * the byte after the line, or NULL.
 */
static inline const u_char *
ed_http_line(const u_char *p, const u_char *end, const u_char **name,
             size_t *nlen, const u_char **v, const u_char **vend)
{
    const u_char *e;

    *name = p;
    while (ed_http_is(*p, ED_HTTP_C_TOKEN)) {
        p++;
    }
    if (p == *name || *p != ':') {
        return NULL;
    }
    *nlen = (size_t)(p - *name);
    p++;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    *v = p;
    p = ed_http_skip(p, end, ED_HTTP_C_VALUE, 0x20);
    /* Anything but the line end here is a CTL, DEL or bare CR. */
    e = p;
    if (*p == '\r' && p[1] == '\n') {
        p += 2;
    } else if (*p == '\n') {
        p++;
    } else {
        return NULL;
    }
    while (e > *v && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    *vend = e;
    return p;
}

const char *
ed_http_parse_field(const char *p, const char *end, ed_http_header_t *hd)
{
    const u_char *name, *v, *vend, *q;
    size_t        nlen;

    q = ed_http_line((const u_char *)p, (const u_char *)end, &name, &nlen,
                     &v, &vend);
    if (q != NULL) {
        hd->name.data = (char *)name;
        hd->name.len = nlen;
        hd->value.data = (char *)v;
        hd->value.len = (size_t)(vend - v);
    }
    return (const char *)q;
}

/* Maps a method name (case-sensitive) to ED_HTTP_*; ED_HTTP_UNKNOWN. */
ed_http_hot int
ed_http_method_id(const u_char *m, size_t len)
{
    switch (len) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) {
            return ED_HTTP_GET;
        }
        if (memcmp(m, "PUT", 3) == 0) {
            return ED_HTTP_PUT;
        }
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0) {
            return ED_HTTP_HEAD;
        }
        if (memcmp(m, "POST", 4) == 0) {
            return ED_HTTP_POST;
        }
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0) {
            return ED_HTTP_PATCH;
        }
        if (memcmp(m, "TRACE", 5) == 0) {
            return ED_HTTP_TRACE;
        }
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0) {
            return ED_HTTP_DELETE;
        }
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0) {
            return ED_HTTP_OPTIONS;
        }
        if (memcmp(m, "CONNECT", 7) == 0) {
            return ED_HTTP_CONNECT;
        }
        break;
    }
    return ED_HTTP_UNKNOWN;
}

/*
 * Checks uri-host [ ":" port ] (RFC 3986): a bracketed IP literal or a
 * non-empty reg-name (pct-encoding allowed), then at most 5 port digits.
 * need_port demands a non-empty port (the CONNECT authority-form).
 * Userinfo ('@') fails, as RFC 9110 4.2.4 asks. Returns ED_OK or ED_ERROR.
 */
static int
ed_http_check_host(const u_char *p, size_t len, bool need_port)
{
    const u_char *end = p + len, *start, *q;

    if (len == 0) {
        return ED_ERROR;
    }
    if (*p == '[') {
        q = memchr(p, ']', len);
        if (q == NULL || q == p + 1) {
            return ED_ERROR;
        }
        for (p++; p < q; p++) {
            if (*p != ':' && !ed_http_is(*p, ED_HTTP_C_HOST)) {
                return ED_ERROR;
            }
        }
        p = q + 1;
    } else {
        start = p;
        while (p < end && *p != ':') {
            if (*p == '%') {
                if (end - p < 3 || !ed_http_is(p[1], ED_HTTP_C_HEX)
                    || !ed_http_is(p[2], ED_HTTP_C_HEX))
                {
                    return ED_ERROR;
                }
                p += 3;
                continue;
            }
            if (!ed_http_is(*p, ED_HTTP_C_HOST)) {
                return ED_ERROR;
            }
            p++;
        }
        if (p == start) {
            return ED_ERROR;
        }
    }

    if (p == end) {
        return need_port ? ED_ERROR : ED_OK;
    }
    if (*p != ':') {
        return ED_ERROR;
    }
    p++;
    if (end - p > 5 || (need_port && p == end)) {
        return ED_ERROR;
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return ED_ERROR;
        }
    }
    return ED_OK;
}

/* Expect: 100-continue sets expect_continue, anything else expect_other. */
static void
ed_http_expect(ed_http_req_head_t *h, const u_char *v, const u_char *end)
{
    ed_http_list_t l;
    ed_str_t       e;

    ed_http_list_init(&l, (const char *)v, (size_t)(end - v));
    while (ed_http_list_next(&l, &e)) {
        if (ed_http_str_eq_lit(&e, "100-continue")) {
            h->expect_continue = 1;
        } else if (e.len != 0) {
            h->expect_other = 1;
        }
    }
}

/*
 * Keeps one field whose name is [name, name + nlen) and value [v, vend)
 * in h->fields (431 once st->max are kept), counts it when its name
 * holds '_', and interprets it. ed_http_field_id dispatches on the
 * length first, so the common fields cost one switch. Returns ED_OK or
 * an HTTP status. Inline here for the HTTP/1 parser's loop; other heads
 * (HTTP/2) have ed_http_head_field.
 */
ed_http_hot int
ed_http_field(ed_http_req_head_t *h, ed_http_head_state_t *st,
              const u_char *name, size_t nlen, const u_char *v,
              const u_char *vend)
{
    ed_http_header_t *hd;

    if (h->nheaders == st->max) {
        return 431;
    }
    hd = &h->fields[h->nheaders++];
    h->nfields = h->nheaders;
    hd->name.data = (char *)name;
    hd->name.len = nlen;
    hd->value.data = (char *)v;
    hd->value.len = (size_t)(vend - v);
    if (memchr(name, '_', nlen) != NULL) {
        h->underscores++;
    }

    switch (ed_http_field_id((const char *)name, nlen)) {
    case ED_HTTP_F_HOST:
        if (++st->hosts > 1
            || ed_http_check_host(v, (size_t)(vend - v), false) != ED_OK)
        {
            return 400;
        }
        h->host.data = (char *)v;
        h->host.len = (size_t)(vend - v);
        break;
    case ED_HTTP_F_EXPECT:
        ed_http_expect(h, v, vend);
        break;
    case ED_HTTP_F_CONNECTION:
        ed_http_head_connection(h, v, (size_t)(vend - v));
        break;
    case ED_HTTP_F_CONTENT_LENGTH:
        if (ed_http_content_length(&st->framing, (const char *)v,
                                   (size_t)(vend - v))
            != ED_OK)
        {
            return 400;
        }
        h->content_length = st->framing.content_length;
        break;
    case ED_HTTP_F_TRANSFER_ENCODING:
        if (ed_http_transfer_encoding(&st->framing, (const char *)v,
                                      (size_t)(vend - v))
            != ED_OK)
        {
            return 400;
        }
        break;
    }
    return ED_OK;
}

/*
 * Checks the path and query of an origin-form or absolute-form target
 * (RFC 9112 3.2, RFC 3986 3.3 and 3.4): pchar and '/' up to an optional
 * '?', then pchar, '/' and '?'; '%' only with two hex digits after it.
 * Everything else fails: '#' (a client never sends a fragment, and a
 * backend would cut the path there while locations matched all of it),
 * SP, CTLs, DEL, bytes >= 0x80 and the bytes RFC 3986 leaves out
 * ("<>[\]^`{|}). Sets *q to the first '?', or to end when there is none.
 * Returns ED_OK or ED_ERROR.
 */
static int
ed_http_check_path(const u_char *p, const u_char *end, const u_char **q)
{
    *q = end;
    for (; p < end; p++) {
        if (ed_http_is(*p, ED_HTTP_C_PATH)) {
            continue;
        }
        if (*p == '%') {
            if (end - p < 3 || !ed_http_is(p[1], ED_HTTP_C_HEX)
                || !ed_http_is(p[2], ED_HTTP_C_HEX))
            {
                return ED_ERROR;
            }
            p += 2;
            continue;
        }
        if (*p != '?') {
            return ED_ERROR;
        }
        if (*q == end) {
            *q = p;
        }
    }
    return ED_OK;
}

int
ed_http_field_ok(const ed_str_t *s, uint8_t c)
{
    const u_char *p = (const u_char *)s->data;
    size_t        i, n = s->len;

    if (c == ED_HTTP_C_VALUE) {
        /* Every response header's value passes here: a word a step. */
        return ed_http_value_len(s->data, n) == n;
    }
    for (i = 0; i < n; i++) {
        if (!(ed_http_char[p[i]] & c)) {
            return 0;
        }
    }
    return 1;
}

int
ed_http_path_ok(const char *p, size_t len)
{
    const u_char *b = (const u_char *)p, *q;

    return ed_http_check_path(b, b + len, &q) == ED_OK && q == b + len;
}

/*
 * Splits the request-target into its form (RFC 9112 3.2): origin-form,
 * absolute-form (http/https, host into authority), asterisk-form (OPTIONS
 * only) or authority-form (CONNECT only, and CONNECT only with it).
 * Returns ED_OK or 400.
 */
ed_http_hot int
ed_http_target(ed_http_req_head_t *h)
{
    const u_char *t = (const u_char *)h->target.data;
    const u_char *end = t + h->target.len, *a, *q;
    size_t        skip;

    if (h->method_id == ED_HTTP_CONNECT) {
        if (ed_http_check_host(t, h->target.len, true) != ED_OK) {
            return 400;
        }
        h->authority = h->target;
        h->path.data = (char *)end;
        h->path.len = 0;
        return ED_OK;
    }

    if (*t == '/') {
        a = t;
    } else if (h->target.len == 1 && *t == '*') {
        if (h->method_id != ED_HTTP_OPTIONS) {
            return 400;
        }
        h->asterisk = 1;
        h->path = h->target;
        return ED_OK;
    } else {
        if (h->target.len > 7 && ed_strncasecmp((char *)t, "http://", 7) == 0) {
            skip = 7;
        } else if (h->target.len > 8
                   && ed_strncasecmp((char *)t, "https://", 8) == 0)
        {
            skip = 8;
        } else {
            return 400;
        }
        a = t + skip;
        while (a < end && *a != '/' && *a != '?') {
            a++;
        }
        if (ed_http_check_host(t + skip, (size_t)(a - t - skip), false)
            != ED_OK)
        {
            return 400;
        }
        h->absolute = 1;
        h->authority.data = (char *)t + skip;
        h->authority.len = (size_t)(a - t - skip);
    }

    if (ed_http_check_path(a, end, &q) != ED_OK) {
        return 400;
    }
    if (q == a) {
        /* An absolute-form target without a path ("http://a?b"). */
        h->path.data = ed_http_slash;
        h->path.len = 1;
    } else {
        h->path.data = (char *)a;
        h->path.len = (size_t)(q - a);
    }
    if (q < end) {
        h->query.data = (char *)q + 1;
        h->query.len = (size_t)(end - q - 1);
    }
    return ED_OK;
}

/* Clears h for a head whose fields go to hdrs. */
ed_http_hot void
ed_http_begin(ed_http_req_head_t *h, ed_http_head_state_t *st,
              ed_http_header_t *hdrs, size_t max_headers)
{
    memset(h, 0, sizeof(*h));
    memset(st, 0, sizeof(*st));
    st->max = max_headers;
    h->content_length = -1;
    h->headers = hdrs;
    h->fields = hdrs;
}

/* The checks once every field is in. */
ed_http_hot int
ed_http_verdict(ed_http_req_head_t *h, const ed_http_head_state_t *st)
{
    int rc;

    /* RFC 9112 3.2: exactly one Host in HTTP/1.1 (duplicates were refused
     * field by field, for every version). */
    if (h->version == 11 && st->hosts == 0) {
        return 400;
    }
    if (h->absolute || h->method_id == ED_HTTP_CONNECT) {
        h->host = h->authority;
    }
    if (h->version == 10) {
        /* RFC 9110 10.1.1: a 100-continue from HTTP/1.0 is ignored. */
        h->expect_continue = 0;
    }

    /* RFC 9112 6.1 and 6.3: no guessing between two framings, and
     * HTTP/1.0 has no chunked coding to trust. */
    rc = ed_http_framing_verdict(&st->framing, h->version);
    if (rc != ED_OK) {
        return rc;
    }
    h->chunked = st->framing.te;
    return ED_OK;
}

/*
 * Parses the head in one pass. The last LF of buf bounds every scan: each
 * inner loop stops at a byte outside its class, and LF is outside all of
 * them, so the loops need no length checks of their own.
 * Returns ED_OK, 400, 431, 501 or 505 (see the header).
 */
int
ed_http_parse_request(const char *buf, size_t len, ed_http_req_head_t *h,
                      ed_http_header_t *hdrs, size_t max_headers)
{
    const u_char          *p, *end, *start, *name, *v, *vend;
    ed_http_head_state_t   st;
    size_t                 nlen;
    int                    major, minor, rc;

    ed_http_begin(h, &st, hdrs, max_headers);

    if (len == 0) {
        return 400;
    }
    p = (const u_char *)buf;
    end = memrchr(p, '\n', len);
    if (end == NULL) {
        return 400;
    }
    end++;

    /* Leading empty lines (RFC 9112 2.2). */
    for (;;) {
        if (*p == '\n') {
            p++;
        } else if (*p == '\r' && p[1] == '\n') {
            p += 2;
        } else {
            break;
        }
        if (p == end) {
            return 400;
        }
    }

    /* The request line: method SP target SP version, single spaces. */
    start = p;
    while (ed_http_is(*p, ED_HTTP_C_TOKEN)) {
        p++;
    }
    if (p == start || *p != ' ') {
        return 400;
    }
    h->method.data = (char *)start;
    h->method.len = (size_t)(p - start);
    h->method_id = ed_http_method_id(start, h->method.len);

    h->target.data = (char *)++p;
    p = ed_http_skip(p, end, ED_HTTP_C_TARGET, 0x21);
    if (*p != ' ' || p == (const u_char *)h->target.data) {
        return 400;
    }
    h->target.len = (size_t)(p - (const u_char *)h->target.data);
    p++;

    /* "HTTP/" DIGIT "." DIGIT, then CRLF or LF. */
    if (end - p < 9 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0'
        || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9')
    {
        return 400;
    }
    major = p[5] - '0';
    minor = p[7] - '0';
    p += 8;
    if (*p == '\r' && p[1] == '\n') {
        p += 2;
    } else if (*p == '\n') {
        p++;
    } else {
        return 400;
    }
    h->line = (const char *)start;
    h->line_len = (size_t)(p - start);
    if (major != 1) {
        return 505;
    }
    /* HTTP/1.2 and up: an HTTP/1.1 server answers them as 1.1. */
    h->version = minor == 0 ? 10 : 11;

    rc = ed_http_target(h);
    if (rc != ED_OK) {
        return rc;
    }

    /* Header fields, up to the empty line. */
    for (;;) {
        if (p == end) {
            /* No empty line: not a complete head. */
            return 400;
        }
        if (*p == '\n') {
            p++;
            break;
        }
        if (*p == '\r') {
            if (p[1] != '\n') {
                return 400;
            }
            p += 2;
            break;
        }

        p = ed_http_line(p, end, &name, &nlen, &v, &vend);
        if (p == NULL) {
            return 400;
        }
        rc = ed_http_field(h, &st, name, nlen, v, vend);
        if (rc != ED_OK) {
            return rc;
        }
    }
    h->head_len = (size_t)(p - (const u_char *)buf);

    return ed_http_verdict(h, &st);
}

void
ed_http_head_begin(ed_http_req_head_t *h, ed_http_head_state_t *st,
                   ed_http_header_t *hdrs, size_t max_headers)
{
    ed_http_begin(h, st, hdrs, max_headers);
}

int
ed_http_head_verdict(ed_http_req_head_t *h, const ed_http_head_state_t *st)
{
    return ed_http_verdict(h, st);
}


int
ed_http_head_request(ed_http_req_head_t *h, const char *method, size_t mlen,
                     const char *target, size_t tlen)
{
    size_t i;

    /* As the request line's grammar: a token, then a target of visible
     * bytes. */
    if (mlen == 0 || tlen == 0) {
        return 400;
    }
    for (i = 0; i < mlen; i++) {
        if (!ed_http_is(method[i], ED_HTTP_C_TOKEN)) {
            return 400;
        }
    }
    for (i = 0; i < tlen; i++) {
        if (!ed_http_is(target[i], ED_HTTP_C_TARGET)) {
            return 400;
        }
    }
    h->method.data = (char *)method;
    h->method.len = mlen;
    h->method_id = ed_http_method_id((const u_char *)method, mlen);
    h->target.data = (char *)target;
    h->target.len = tlen;
    return ed_http_target(h);
}

int
ed_http_head_field(ed_http_req_head_t *h, ed_http_head_state_t *st,
                   const char *name, size_t nlen, const char *v, size_t vlen)
{
    return ed_http_field(h, st, (const u_char *)name, nlen,
                         (const u_char *)v, (const u_char *)v + vlen);
}


size_t
ed_http_head_lines(const char *buf, size_t len, size_t max)
{
    const char *p = buf, *end = buf + len;
    size_t      n = 0;

    while (n < max && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n ? n : 1;
}
