/* Response heads and bodies: the status line, Date/Server, framing
 * headers, and one write per response. */
#include "ed_http.h"

typedef struct {
    int         status;
    const char *text;
} ed_http_status_t;

static const ed_http_status_t ed_http_statuses[] = {
    { 100, "Continue" }, { 101, "Switching Protocols" },
    { 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
    { 203, "Non-Authoritative Information" }, { 204, "No Content" },
    { 205, "Reset Content" }, { 206, "Partial Content" },
    { 300, "Multiple Choices" }, { 301, "Moved Permanently" },
    { 302, "Found" }, { 303, "See Other" }, { 304, "Not Modified" },
    { 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
    { 400, "Bad Request" }, { 401, "Unauthorized" },
    { 402, "Payment Required" }, { 403, "Forbidden" },
    { 404, "Not Found" }, { 405, "Method Not Allowed" },
    { 406, "Not Acceptable" }, { 408, "Request Timeout" },
    { 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
    { 412, "Precondition Failed" }, { 413, "Content Too Large" },
    { 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
    { 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" },
    { 421, "Misdirected Request" }, { 422, "Unprocessable Content" },
    { 426, "Upgrade Required" }, { 428, "Precondition Required" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" }, { 501, "Not Implemented" },
    { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
};

const char *
ed_http_status_text(int status)
{
    size_t i;

    for (i = 0; i < ed_nelems(ed_http_statuses); i++) {
        if (ed_http_statuses[i].status == status) {
            return ed_http_statuses[i].text;
        }
    }
    return "Unknown";
}

size_t
ed_http_status_page(int status, char *buf, size_t size)
{
    const char *text = ed_http_status_text(status);
    int         n;

    n = snprintf(buf, size,
                 "<html>\n<head><title>%d %s</title></head>\n<body>\n"
                 "<center><h1>%d %s</h1></center>\n<hr><center>eddy"
                 "</center>\n</body>\n</html>\n",
                 status, text, status, text);
    return n < 0 ? 0 : ed_min((size_t)n, size - 1);
}

const ed_str_t *
ed_http_header(ed_http_request_t *r, const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < r->head.nheaders; i++) {
        ed_http_header_t *h = &r->head.headers[i];

        if (h->name.len == n && ed_strncasecmp(h->name.data, name, n) == 0) {
            return &h->value;
        }
    }
    return NULL;
}

int
ed_http_add_header(ed_http_request_t *r, const char *name, size_t nlen,
                   const char *value, size_t vlen)
{
    ed_http_out_header_t *h;

    h = ed_array_push(&r->headers_out);
    if (h == NULL) {
        return ED_ERROR;
    }
    h->name.data = (char *)name;
    h->name.len = nlen;
    h->value.data = (char *)value;
    h->value.len = vlen;
    return ED_OK;
}

int
ed_http_add_checked_header(ed_http_request_t *r, const char *name,
                           size_t nlen, const char *value, size_t vlen)
{
    ed_http_out_header_t *h;

    if (ed_http_add_header(r, name, nlen, value, vlen) != ED_OK) {
        return ED_ERROR;
    }
    h = (ed_http_out_header_t *)r->headers_out.elts
        + r->headers_out.nelts - 1;
    h->checked = 1;
    return ED_OK;
}

/* A URI has no CTL, SP or DEL at all: Location gets those bytes
 * %-encoded, whatever else it holds. */
static bool
ed_http_location_byte(uint8_t c)
{
    return c > 0x20 && c != 0x7f;
}

static int
ed_http_location_encode(ed_http_request_t *r, ed_str_t *v)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            i, n = 0;
    char             *out, *p;
    uint8_t           c;

    for (i = 0; i < v->len; i++) {
        n += ed_http_location_byte((uint8_t)v->data[i]) ? 1 : 3;
    }
    if (n == v->len) {
        return ED_OK;
    }
    out = ed_pnalloc(r->pool, n);
    if (out == NULL) {
        return ED_ERROR;
    }
    p = out;
    for (i = 0; i < v->len; i++) {
        c = (uint8_t)v->data[i];
        if (ed_http_location_byte(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    v->data = out;
    v->len = n;
    return ED_OK;
}

/* Every response header passes here, whatever wrote it (a handler, the
 * headers module, an upstream's head relayed by proxy), just before the
 * head is written: values come from variables ($uri is decoded, request
 * headers hold obs-text) and upstreams, and no byte the grammar forbids
 * reaches the wire. Location is %-encoded; another header with a bad
 * name or value is dropped, with a warn line. */
int
ed_http_check_headers(ed_http_request_t *r)
{
    ed_http_out_header_t *h = r->headers_out.elts;
    size_t                i, n = 0;

    for (i = 0; i < r->headers_out.nelts; i++) {
        if (h[i].checked) {
            h[n++] = h[i];
            continue;
        }
        if (h[i].name.len && ed_http_field_ok(&h[i].name, ED_HTTP_C_TOKEN)) {
            if (ed_str_caseeq(&h[i].name, "Location")) {
                if (ed_http_location_encode(r, &h[i].value) != ED_OK) {
                    return ED_ERROR;
                }
                h[n++] = h[i];
                continue;
            }
            if (ed_http_field_ok(&h[i].value, ED_HTTP_C_VALUE)) {
                h[n++] = h[i];
                continue;
            }
        }
        ed_http_log(ED_LOG_WARN, r, 0, "response header \"%s\" dropped: "
                    "a control character in its name or value",
                    ed_http_log_str(r, h[i].name.data, h[i].name.len, 64));
    }
    r->headers_out.nelts = n;
    if (!ed_http_field_ok(&r->content_type, ED_HTTP_C_VALUE)) {
        ed_http_log(ED_LOG_WARN, r, 0, "response header \"Content-Type\" "
                    "dropped: a control character in its value");
        r->content_type.len = 0;
    }
    return ED_OK;
}

/* The generic steps of every response head: the header filters, then
 * the check of every header, whatever wrote it. ED_OK or ED_ERROR. */
static int
ed_http_prepare_head(ed_http_request_t *r)
{
    if (ed_http_header_filters(r) != ED_OK) {
        return ED_ERROR;
    }
    return ed_http_check_headers(r);
}

int
ed_http_send_header(ed_http_request_t *r)
{
    if (r->header_sent) {
        return ED_OK;
    }
    if (ed_http_prepare_head(r) != ED_OK) {
        return ED_ERROR;
    }
    return r->proto->head(r, NULL, 0);
}

int
ed_http_send_response(ed_http_request_t *r, int status,
                      const ed_str_t *content_type, const void *body,
                      size_t len)
{
    r->status = status;
    if (content_type) {
        r->content_type = *content_type;
    }
    r->content_length = (int64_t)len;
    if (ed_http_prepare_head(r) != ED_OK) {
        return ED_ERROR;
    }
    if (r->out_filtered) {
        /* A filter took the body over (gzip): the head goes alone, the
         * body through the filters, its end from ed_http_finalize. */
        if (r->proto->head(r, NULL, 0) != ED_OK) {
            return ED_ERROR;
        }
        return ed_http_send_body(r, body, len);
    }
    /* Head and body in one write. */
    return r->proto->head(r, body, len);
}
