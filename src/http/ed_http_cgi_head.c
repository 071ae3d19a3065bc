/* The strict parser of a CGI response head (RFC 3875 6), shared by
 * fastcgi and cgi, and its mapping onto a response (ed_http_cgi.h). Pure
 * but for ed_http_cgi_head_apply: a fuzz target and unit tests drive
 * it. */
#include "ed_http_cgi.h"

void
ed_http_cgi_head_init(ed_http_cgi_head_t *h, ed_http_header_t *fields,
                      size_t max)
{
    memset(h, 0, sizeof(*h));
    h->fields = fields;
    h->max = max;
    h->content_length = -1;
}

#define ed_cgi_invalid(h, why) ((h)->error = (why), ED_ERROR)

/* "NNN" or "NNN reason", NNN in 200-599 (a CGI answer is final: no 1xx).
 * v is trimmed. */
static int
ed_cgi_status(ed_http_cgi_head_t *h, const char *v, size_t len)
{
    int    st = 0;
    size_t i;

    if (len < 3) {
        return ed_cgi_invalid(h, "invalid Status");
    }
    for (i = 0; i < 3; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return ed_cgi_invalid(h, "invalid Status");
        }
        st = st * 10 + (v[i] - '0');
    }
    if (st < 200 || st > 599) {
        return ed_cgi_invalid(h, "Status out of 200-599");
    }
    if (len > 3 && !ed_http_ows(v[3])) {
        return ed_cgi_invalid(h, "invalid Status");
    }
    h->status = st;
    for (i = 3; i < len && ed_http_ows(v[i]); i++) {
        /* void */
    }
    h->reason.data = (char *)v + i;
    h->reason.len = len - i;
    return ED_OK;
}

/* One field, name and value checked. */
static int
ed_cgi_field(ed_http_cgi_head_t *h, const ed_str_t *name, const ed_str_t *v)
{
    ed_http_header_t *f;
    int               id;

    if (ed_http_str_eq_lit(name, "status")) {
        if (h->status) {
            return ed_cgi_invalid(h, "Status twice");
        }
        return ed_cgi_status(h, v->data, v->len);
    }
    if (ed_http_str_eq_lit(name, "location")) {
        if (h->location.data != NULL) {
            return ed_cgi_invalid(h, "Location twice");
        }
        if (v->len == 0) {
            return ed_cgi_invalid(h, "empty Location");
        }
        h->location = *v;
        return ED_OK;
    }
    id = ed_http_field_id(name->data, name->len);
    switch (id) {
    case ED_HTTP_F_CONTENT_TYPE:
        if (h->content_type.data != NULL) {
            return ed_cgi_invalid(h, "Content-Type twice");
        }
        h->content_type = *v;
        return ED_OK;
    case ED_HTTP_F_CONTENT_LENGTH:
        if (ed_http_content_length(&h->framing, v->data, v->len) != ED_OK) {
            return ed_cgi_invalid(h, "invalid Content-Length");
        }
        h->content_length = h->framing.content_length;
        return ED_OK;
    case ED_HTTP_F_CONNECTION:
        if (h->nconnection == ed_nelems(h->connection)) {
            return ed_cgi_invalid(h, "too many Connection fields");
        }
        h->connection[h->nconnection++] = *v;
        return ED_OK;
    case ED_HTTP_F_DATE:
    case ED_HTTP_F_SERVER:
        /* eddy's own go out. */
        return ED_OK;
    default:
        if (ED_HTTP_HOP_BY_HOP & ED_HTTP_F_BIT(id)) {
            return ED_OK;
        }
    }
    f = &h->fields[h->nfields++];
    f->name = *name;
    f->value = *v;
    return ED_OK;
}

/* The head is over: the fields Connection names go too. */
static void
ed_cgi_connection_drop(ed_http_cgi_head_t *h)
{
    size_t i, j, k;

    if (h->nconnection == 0) {
        return;
    }
    for (i = 0, k = 0; i < h->nfields; i++) {
        for (j = 0; j < h->nconnection; j++) {
            if (ed_http_list_has(h->connection[j].data, h->connection[j].len,
                                 h->fields[i].name.data,
                                 h->fields[i].name.len))
            {
                break;
            }
        }
        if (j == h->nconnection) {
            h->fields[k++] = h->fields[i];
        }
    }
    h->nfields = k;
}

int
ed_http_cgi_head_parse(ed_http_cgi_head_t *h, const char *buf, size_t len)
{
    const char *line, *lf, *end, *p, *v;
    ed_str_t    name, value;

    if (h->error != NULL) {
        return ED_ERROR;
    }
    while (h->pos < len) {
        line = buf + h->pos;
        lf = memchr(line, '\n', len - h->pos);
        if (lf == NULL) {
            break;
        }
        if ((size_t)(lf + 1 - buf) > h->max) {
            return ed_cgi_invalid(h, "head larger than buffer_size");
        }
        h->pos = (size_t)(lf + 1 - buf);
        end = lf;
        if (end > line && end[-1] == '\r') {
            end--;
        }
        if (end == line) {
            h->head_len = h->pos;
            ed_cgi_connection_drop(h);
            return ED_OK;
        }
        if (++h->lines > ED_HTTP_CGI_MAX_FIELDS) {
            return ed_cgi_invalid(h, "more than 100 header fields");
        }
        if (ed_http_ows(*line)) {
            return ed_cgi_invalid(h, "obsolete line folding");
        }
        for (p = line; p < end && (ed_http_char[(u_char)*p] & ED_HTTP_C_TOKEN);
             p++)
        {
            /* void */
        }
        if (p == line || p == end || *p != ':') {
            return ed_cgi_invalid(h, "invalid header line");
        }
        name.data = (char *)line;
        name.len = (size_t)(p - line);
        for (v = p + 1; v < end && ed_http_ows(*v); v++) {
            /* void */
        }
        while (end > v && ed_http_ows(end[-1])) {
            end--;
        }
        value.data = (char *)v;
        value.len = (size_t)(end - v);
        if (value.len && (memchr(v, '\0', value.len) != NULL
                          || memchr(v, '\r', value.len) != NULL))
        {
            return ed_cgi_invalid(h, "NUL or CR in a header value");
        }
        if (ed_cgi_field(h, &name, &value) != ED_OK) {
            return ED_ERROR;
        }
    }
    if (len >= h->max) {
        return ed_cgi_invalid(h, "head larger than buffer_size");
    }
    return ED_AGAIN;
}

/* Whether a Location asks for a local redirect (RFC 3875 6.2.2): an
 * abs-path; "//host/..." is a network-path reference, a client's. */
static bool
ed_cgi_local(const ed_str_t *loc)
{
    return loc->len && loc->data[0] == '/'
           && !(loc->len > 1 && loc->data[1] == '/');
}

static int
ed_cgi_add(ed_http_request_t *r, const ed_str_t *name, const ed_str_t *v)
{
    ed_str_t n, c;

    if (ed_str_dup(r->pool, &n, name->data, name->len) != ED_OK
        || ed_str_dup(r->pool, &c, v->data, v->len) != ED_OK)
    {
        return ED_ERROR;
    }
    return ed_http_add_header(r, n.data, n.len, c.data, c.len);
}

int
ed_http_cgi_head_apply(ed_http_request_t *r, const ed_http_cgi_head_t *h)
{
    static const ed_str_t location = ed_string("Location");
    size_t                i;

    if (h->status == 0 && h->location.data != NULL
        && ed_cgi_local(&h->location))
    {
        return ED_DECLINED;
    }
    r->status = h->status ? h->status : h->location.data != NULL ? 302 : 200;
    r->content_length = h->content_length;
    r->content_type.data = NULL;
    r->content_type.len = 0;
    if (h->content_type.data != NULL
        && ed_str_dup(r->pool, &r->content_type, h->content_type.data,
                      h->content_type.len) != ED_OK)
    {
        return ED_ERROR;
    }
    if (h->location.data != NULL
        && ed_cgi_add(r, &location, &h->location) != ED_OK)
    {
        return ED_ERROR;
    }
    for (i = 0; i < h->nfields; i++) {
        if (ed_cgi_add(r, &h->fields[i].name, &h->fields[i].value) != ED_OK) {
            return ED_ERROR;
        }
    }
    return ED_OK;
}
