/* Range and conditional requests: the Range parser, entity-tag lists, the
 * evaluation order of RFC 9110 13.2.2; Accept-Encoding for precompressed
 * files. */
#include "ed_http_range.h"
#include "ed_http_parse.h"
#include "ed_http_fields.h"

/* Reads 1*DIGIT at *p (< end), saturating at INT64_MAX: a position too
 * large to represent is still a valid one, beyond any file. Returns the
 * value, or -1 when no digit is there. */
static int64_t
ed_range_number(const char **p, const char *end)
{
    const char *s = *p;
    int64_t     v = 0;

    if (s == end || *s < '0' || *s > '9') {
        return -1;
    }
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (v > (INT64_MAX - (*s - '0')) / 10) {
            v = INT64_MAX;
        } else {
            v = v * 10 + (*s - '0');
        }
    }
    *p = s;
    return v;
}

int
ed_http_range_parse(const char *s, size_t len, int64_t size,
                    ed_http_range_t *out, size_t max, size_t *n)
{
    const char *p = s, *end = s + len;
    int64_t     first, last;
    size_t      specs = 0, i, j;
    bool        whole = false;

    *n = 0;
    if (len < 6 || ed_strncasecmp(p, "bytes=", 6) != 0) {
        goto ignore;
    }
    p += 6;
    for (;;) {
        /* 1#range-spec: empty list elements are allowed around commas. */
        p = ed_http_list_skip(p, end);
        if (p == end) {
            break;
        }
        if (++specs > max) {
            goto ignore;
        }
        if (*p == '-') {
            /* suffix-range: the last N bytes. */
            p++;
            last = ed_range_number(&p, end);
            if (last < 0) {
                goto ignore;
            }
            if (last == 0) {
                first = -1;  /* "-0" is never satisfiable */
            } else if (size == 0) {
                whole = true;
                first = -1;
            } else {
                first = last >= size ? 0 : size - last;
                last = size;
            }
        } else {
            first = ed_range_number(&p, end);
            if (first < 0 || p == end || *p != '-') {
                goto ignore;
            }
            p++;
            if (p < end && *p >= '0' && *p <= '9') {
                last = ed_range_number(&p, end);
                if (last < first) {
                    goto ignore;
                }
                last = last >= size ? size : last + 1;
            } else {
                last = size;
            }
            if (first >= size) {
                first = -1;
            }
        }
        if (!ed_http_list_elt_end(&p, end)) {
            goto ignore;
        }
        if (first < 0) {
            continue;  /* valid but unsatisfiable: skipped */
        }
        out[*n].start = first;
        out[*n].end = last;
        (*n)++;
    }
    if (specs == 0) {
        goto ignore;
    }
    if (*n == 0) {
        return whole ? ED_HTTP_RANGE_IGNORE : ED_HTTP_RANGE_UNSATISFIABLE;
    }
    /* Overlapping ranges would let a short request ask for many copies
     * of a file; such a request gets the file once instead. At most
     * max ranges, so the quadratic check is bounded. */
    for (i = 0; i < *n; i++) {
        for (j = i + 1; j < *n; j++) {
            if (out[i].start < out[j].end && out[j].start < out[i].end) {
                goto ignore;
            }
        }
    }
    return ED_HTTP_RANGE_OK;

ignore:
    *n = 0;
    return ED_HTTP_RANGE_IGNORE;
}

bool
ed_http_etag_match(const char *list, size_t len, const ed_str_t *etag,
                   bool weak)
{
    const char *p = list, *end = list + len, *q;
    bool        is_weak;

    for (;;) {
        p = ed_http_list_skip(p, end);
        if (p == end) {
            return false;
        }
        if (*p == '*') {
            /* "*": any current representation; the caller has one. */
            return true;
        }
        is_weak = false;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            is_weak = true;
            p += 2;
        }
        if (p == end || *p != '"') {
            return false;
        }
        q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (q == NULL) {
            return false;
        }
        q++;
        /* Our tags are strong: a weak tag matches only weakly. */
        if ((weak || !is_weak) && etag != NULL && etag->len
            && (size_t)(q - p) == etag->len
            && memcmp(p, etag->data, etag->len) == 0)
        {
            return true;
        }
        p = q;
        if (!ed_http_list_elt_end(&p, end)) {
            return false;
        }
    }
}

int
ed_http_cond_eval(const ed_http_cond_t *c, const ed_str_t *etag,
                  time_t mtime, bool get_head)
{
    time_t t;

    /* 1. If-Match, else 2. If-Unmodified-Since. */
    if (c->if_match) {
        if (!ed_http_etag_match(c->if_match->data, c->if_match->len, etag,
                                false))
        {
            return 412;
        }
    } else if (c->if_unmodified_since && mtime >= 0) {
        t = ed_parse_http_time(c->if_unmodified_since->data,
                               c->if_unmodified_since->len);
        if (t >= 0 && mtime > t) {
            return 412;
        }
    }
    /* 3. If-None-Match, else 4. If-Modified-Since (GET and HEAD only). */
    if (c->if_none_match) {
        if (ed_http_etag_match(c->if_none_match->data,
                               c->if_none_match->len, etag, true))
        {
            return get_head ? 304 : 412;
        }
    } else if (c->if_modified_since && get_head && mtime >= 0) {
        t = ed_parse_http_time(c->if_modified_since->data,
                               c->if_modified_since->len);
        /* Not modified when Last-Modified <= the date (not nginx's
         * exact match). */
        if (t >= 0 && mtime <= t) {
            return 304;
        }
    }
    return 0;
}

bool
ed_http_cond_if_range(const ed_str_t *value, const ed_str_t *etag,
                      time_t mtime)
{
    const char *v = value->data;
    size_t      len = value->len;
    time_t      t;

    if (len >= 2 && (v[0] == '"' || (v[0] == 'W' && v[1] == '/'))) {
        if (v[0] == 'W' || etag == NULL || etag->len == 0) {
            return false;
        }
        return len == etag->len && memcmp(v, etag->data, len) == 0;
    }
    if (mtime < 0) {
        return false;
    }
    t = ed_parse_http_time(v, len);
    return t >= 0 && t == mtime;
}

/* Whether c may appear in a token (RFC 9110 5.6.2). */
#define ed_ae_tchar(c) (ed_http_char[(u_char)(c)] & ED_HTTP_C_TOKEN)

/* A qvalue (RFC 9110 12.4.2): "0" ["." 0*3DIGIT] or "1" ["." 0*3"0"].
 * Returns it in thousandths, or -1 when invalid. */
static int
ed_ae_qvalue(const char *p, size_t len)
{
    size_t i;
    int    q, scale = 100;

    if (len == 0 || len > 5 || (p[0] != '0' && p[0] != '1')
        || (len > 1 && p[1] != '.'))
    {
        return -1;
    }
    q = (p[0] - '0') * 1000;
    for (i = 2; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || (q == 1000 && p[i] != '0')) {
            return -1;
        }
        q += (p[i] - '0') * scale;
        scale /= 10;
    }
    return q;
}

/* Reads one element of an Accept-Encoding list at *p: a coding and its
 * parameters, up to the ',' that ends it (not consumed). Returns the
 * weight (0..1000; an invalid q counts as 0, not acceptable, as nginx
 * does), or -1 for a malformed element, which is skipped. *name and
 * *nlen give the coding. */
static int
ed_ae_element(const char **pp, const char *end, const char **name,
              size_t *nlen)
{
    const char *p = *pp, *pn, *v;
    size_t      len, vlen;
    int         q = 1000, bad = 0;

    *name = p;
    while (p < end && ed_ae_tchar(*p)) {
        p++;
    }
    *nlen = (size_t)(p - *name);
    bad = *nlen == 0;
    for (;;) {
        while (p < end && ed_http_ows(*p)) {
            p++;
        }
        if (bad || p == end || *p != ';') {
            break;
        }
        p++;
        while (p < end && ed_http_ows(*p)) {
            p++;
        }
        pn = p;
        while (p < end && ed_ae_tchar(*p)) {
            p++;
        }
        len = (size_t)(p - pn);
        if (len == 0 || p == end || *p != '=') {
            bad = 1;
            break;
        }
        v = ++p;
        if (p < end && *p == '"') {
            /* quoted-string: a ',' inside does not end the element. */
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) {
                    p++;
                }
            }
            if (p == end) {
                bad = 1;
                break;
            }
            p++;
        } else {
            while (p < end && ed_ae_tchar(*p)) {
                p++;
            }
        }
        vlen = (size_t)(p - v);
        if (len == 1 && (pn[0] == 'q' || pn[0] == 'Q')) {
            q = ed_ae_qvalue(v, vlen);
            if (q < 0) {
                q = 0;
            }
        }
    }
    if (!ed_http_list_elt_end(&p, end)) {
        bad = 1;
    }
    while (p < end && *p != ',') {
        p++;
    }
    *pp = p;
    return bad ? -1 : q;
}

bool
ed_http_accepts_coding(const ed_str_t *ae, const char *coding, size_t clen)
{
    const char *p, *end, *t;
    size_t      tlen;
    int         q, star = -1, found = -1;
    bool        gzip;

    if (ae == NULL) {
        return false;
    }
    p = ae->data;
    end = p + ae->len;
    /* RFC 9110 8.4.1.3: x-gzip is gzip. */
    gzip = ed_http_token_eq_lit(coding, clen, "gzip");
    for (;;) {
        p = ed_http_list_skip(p, end);
        if (p == end) {
            break;
        }
        q = ed_ae_element(&p, end, &t, &tlen);
        if (q < 0) {
            continue;
        }
        if (found < 0
            && (ed_http_token_eq(t, tlen, coding, clen)
                || (gzip && ed_http_token_eq_lit(t, tlen, "x-gzip"))))
        {
            /* The first explicit mention wins over "*". */
            found = q;
        } else if (star < 0 && tlen == 1 && t[0] == '*') {
            star = q;
        }
    }
    if (found >= 0) {
        return found > 0;
    }
    return star > 0;
}
