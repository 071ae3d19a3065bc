/* libFuzzer target: request heads (scanner and parser), then their body. */
#include <ctype.h>

#include "ed_core.h"
#include "ed_http_parse.h"
#include "fuzz.h"

#define ED_FUZZ_MAX_HEADERS 100

/* s lies inside buf[0..len) (an empty string may point anywhere). */
static void
ed_fuzz_inside(const ed_str_t *s, const char *buf, size_t len)
{
    uintptr_t b = (uintptr_t)buf, d = (uintptr_t)s->data;

    if (s->len == 0) {
        return;
    }
    ed_fuzz_assert(d >= b && s->len <= len && d - b <= len - s->len);
}

/* No byte of [p, p + n) is CR, LF or NUL. */
static bool
ed_fuzz_clean(const char *p, size_t n)
{
    return memchr(p, '\r', n) == NULL && memchr(p, '\n', n) == NULL
           && memchr(p, '\0', n) == NULL;
}

/* s holds only RFC 3986 path and query bytes: pchar, '/', '?', and '%'
 * with two hex digits (written out here, not taken from the parser). */
static bool
ed_fuzz_uri_chars(const ed_str_t *s)
{
    static const char extra[] = "-._~!$&'()*+,;=:@/?";
    size_t            i;
    u_char            c;

    for (i = 0; i < s->len; i++) {
        c = (u_char)s->data[i];
        if (c == '%') {
            if (s->len - i < 3 || !isxdigit((u_char)s->data[i + 1])
                || !isxdigit((u_char)s->data[i + 2]))
            {
                return false;
            }
            i += 2;
        } else if (!isalnum(c) && (c == '\0' || !strchr(extra, c))) {
            return false;
        }
    }
    return true;
}

/* Checks a head that parsed: everything points into buf[0..len). */
static void
ed_fuzz_check_head(const ed_http_req_head_t *h, const char *buf, size_t len)
{
    const ed_http_header_t *hd;
    size_t                  i;
    char                    c;

    ed_fuzz_assert(h->head_len == len);
    ed_fuzz_assert(h->line_len > 0 && h->line_len < h->head_len);
    ed_fuzz_assert(h->method.len > 0 && h->target.len > 0);
    ed_fuzz_inside(&h->method, buf, len);
    ed_fuzz_inside(&h->target, buf, len);
    ed_fuzz_inside(&h->query, buf, len);
    ed_fuzz_inside(&h->authority, buf, len);
    ed_fuzz_inside(&h->host, buf, len);
    if (!(h->path.len == 1 && h->path.data[0] == '/' && h->absolute)) {
        ed_fuzz_inside(&h->path, buf, len);
    }
    ed_fuzz_assert(h->version == 10 || h->version == 11);
    ed_fuzz_assert(h->method_id >= ED_HTTP_UNKNOWN
                   && h->method_id <= ED_HTTP_TRACE);
    ed_fuzz_assert(h->nheaders <= ED_FUZZ_MAX_HEADERS);
    ed_fuzz_assert(h->content_length >= -1);
    ed_fuzz_assert(!(h->chunked && h->content_length != -1));
    ed_fuzz_assert(!(h->chunked && h->version != 11));
    ed_fuzz_assert(h->version == 10 || h->host.len > 0);
    ed_fuzz_assert(!(h->asterisk && h->method_id != ED_HTTP_OPTIONS));
    ed_fuzz_assert(h->asterisk || h->method_id == ED_HTTP_CONNECT
                   || h->path.data[0] == '/');
    ed_fuzz_assert(ed_fuzz_clean(h->target.data, h->target.len));
    ed_fuzz_assert(memchr(h->target.data, ' ', h->target.len) == NULL);
    if (!h->asterisk && h->method_id != ED_HTTP_CONNECT) {
        ed_fuzz_assert(ed_fuzz_uri_chars(&h->path));
        ed_fuzz_assert(ed_fuzz_uri_chars(&h->query));
        ed_fuzz_assert(memchr(h->target.data, '#', h->target.len) == NULL);
    }

    for (i = 0; i < h->nheaders; i++) {
        hd = &h->headers[i];
        ed_fuzz_assert(hd->name.len > 0);
        ed_fuzz_inside(&hd->name, buf, len);
        ed_fuzz_inside(&hd->value, buf, len);
        ed_fuzz_assert(ed_fuzz_clean(hd->name.data, hd->name.len));
        ed_fuzz_assert(memchr(hd->name.data, ':', hd->name.len) == NULL);
        ed_fuzz_assert(ed_fuzz_clean(hd->value.data, hd->value.len));
        if (hd->value.len > 0) {
            c = hd->value.data[0];
            ed_fuzz_assert(c != ' ' && c != '\t');
            c = hd->value.data[hd->value.len - 1];
            ed_fuzz_assert(c != ' ' && c != '\t');
        }
    }
}

/* Runs the normaliser over a parsed path, as the static handler would. */
static void
ed_fuzz_path(const ed_http_req_head_t *h)
{
    char   *out;
    size_t  olen;

    if (h->path.len == 0) {
        return;
    }
    out = malloc(h->path.len);
    if (out == NULL) {
        abort();
    }
    if (ed_http_normalize_path(h->path.data, h->path.len, out, &olen)
        == ED_OK)
    {
        ed_fuzz_assert(olen >= 1 && olen <= h->path.len && out[0] == '/');
    }
    free(out);
}

/* Decodes a chunked body at once and bytewise; both must agree. */
static void
ed_fuzz_body(const char *p, size_t len)
{
    ed_http_chunked_t c1, c2;
    size_t            pos, used, off, n, t1 = 0, t2 = 0, i;
    int               rc1, rc2 = ED_AGAIN;

    memset(&c1, 0, sizeof(c1));
    pos = 0;
    do {
        rc1 = ed_http_chunked_parse(&c1, p + pos, len - pos, &used, &off, &n);
        ed_fuzz_assert(used <= len - pos);
        if (rc1 == ED_OK) {
            ed_fuzz_assert(n > 0 && off + n == used);
            t1 += n;
        }
        pos += used;
    } while (rc1 == ED_OK);

    memset(&c2, 0, sizeof(c2));
    for (i = 0; i < len; i++) {
        rc2 = ed_http_chunked_parse(&c2, p + i, 1, &used, &off, &n);
        if (rc2 == ED_OK) {
            ed_fuzz_assert(n == 1 && off == 0 && used == 1);
            t2++;
            rc2 = ED_AGAIN;
        } else if (rc2 != ED_AGAIN) {
            i += used;
            break;
        }
    }
    ed_fuzz_assert(rc1 == rc2);
    if (rc1 != ED_ERROR) {
        ed_fuzz_assert(t1 == t2 && (int64_t)t1 == c1.total);
    }
    if (rc1 == ED_DONE) {
        ed_fuzz_assert(pos == i);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ed_http_header_t hdrs[ED_FUZZ_MAX_HEADERS];
    ed_http_req_head_t      h, h2;
    const char             *in = (const char *)data;
    size_t                  end, resume, found, i;
    char                   *head;
    int                     rc, rc2;

    end = ed_http_head_end(in, size, NULL);
    ed_fuzz_assert(end <= size);

    /* Bytes arriving one at a time, each scan going on where the last
     * stopped (as the stream does): the same end, first seen with its
     * last byte. */
    resume = 0;
    for (i = 0, found = 0; i <= size && found == 0; i++) {
        found = ed_http_head_end(in, i, &resume);
        ed_fuzz_assert(found != 0 || (resume <= i && i - resume <= 2));
    }
    ed_fuzz_assert(found == end && (end == 0 || i == end + 1));

    /* The parser given everything must agree with the scanner. */
    rc = ed_http_parse_request(in, size, &h, hdrs, ED_FUZZ_MAX_HEADERS);
    ed_fuzz_assert(rc == ED_OK || rc == 400 || rc == 431 || rc == 501
                   || rc == 505);
    if (end == 0) {
        ed_fuzz_assert(rc != ED_OK);
        return 0;
    }
    ed_fuzz_assert(in[end - 1] == '\n');
    if (rc == ED_OK) {
        ed_fuzz_assert(h.head_len == end);
    }

    /* What the server does: parse exactly the head the scanner found. */
    head = malloc(end);
    if (head == NULL) {
        abort();
    }
    memcpy(head, in, end);
    rc2 = ed_http_parse_request(head, end, &h2, hdrs, ED_FUZZ_MAX_HEADERS);
    ed_fuzz_assert(rc2 == rc);
    if (rc2 == ED_OK) {
        ed_fuzz_check_head(&h2, head, end);
        ed_fuzz_path(&h2);
        if (h2.chunked) {
            ed_fuzz_body(in + end, size - end);
        }
    }
    free(head);
    return 0;
}
