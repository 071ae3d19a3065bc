/* The error log's context for a request (process.md): what lets an
 * operator match a line with the access log, written so that nothing a
 * client sent can forge a field or a line. */
#include "ed_http.h"
#include "ed_http_upstream.h"

/* Output bounds of the fields (escaped bytes, quotes not counted): their
 * sum with the labels stays under ED_LOG_CTX_MAX. */
#define ED_HTTP_LOG_SERVER   128
#define ED_HTTP_LOG_REQUEST  1024
#define ED_HTTP_LOG_UPSTREAM 512
#define ED_HTTP_LOG_HOST     256

typedef struct {
    char *p;
    char *end;
} ed_http_log_buf_t;

static void
ed_http_log_put(ed_http_log_buf_t *b, const char *s, size_t len)
{
    len = ed_min(len, (size_t)(b->end - b->p));
    memcpy(b->p, s, len);
    b->p += len;
}

/* label then s escaped into at most max bytes, in quotes when quoted;
 * nothing when even a cut field would not fit. */
static void
ed_http_log_field(ed_http_log_buf_t *b, const char *label, const char *s,
                  size_t len, size_t max, bool quoted)
{
    size_t llen = strlen(label), room = (size_t)(b->end - b->p);

    if (room < llen + 2 + 3) {
        return;
    }
    room -= llen + 2;
    ed_http_log_put(b, label, llen);
    if (quoted) {
        ed_http_log_put(b, "\"", 1);
    }
    b->p += ed_log_escape(b->p, ed_min(room, max), s, len);
    if (quoted) {
        ed_http_log_put(b, "\"", 1);
    }
}

/* The request line as received, without its line end; 0 before it was
 * parsed. */
static size_t
ed_http_log_line(ed_http_request_t *r, const char **line)
{
    size_t n;

    if (r->parent) {
        /* A subrequest: the client's request it serves. */
        r = r->parent;
    }
    n = r->head.line_len;
    *line = r->head.line ? r->head.line : r->head.method.data;
    if (*line == NULL) {
        return 0;
    }
    while (n && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r')) {
        n--;
    }
    return n;
}

/* ", upstream: "SCHEME://PEER/TARGET"": the server of the current
 * attempt (or the group before one is chosen) and the target of the head
 * sent to it (the request's URI before one is sent). */
static void
ed_http_log_upstream(ed_http_log_buf_t *b, ed_http_request_t *r)
{
    ed_http_upstream_state_t *st = r->upstream;
    const char               *t, *e, *sp;
    /* One byte over the bound: a longer URL shows as cut ("..."). */
    char                      url[ED_HTTP_LOG_UPSTREAM + 1];
    size_t                    n, tlen;

    if (st == NULL || st->scheme == NULL || st->peer.len == 0) {
        return;
    }
    if (st->head.len) {
        /* "METHOD SP TARGET SP HTTP/1.1 CRLF": the target has no SP. */
        t = memchr(st->head.data, ' ', st->head.len);
        e = memchr(st->head.data, '\r', st->head.len);
        if (t == NULL || e == NULL || e < t) {
            return;
        }
        t++;
        sp = memchr(t, ' ', (size_t)(e - t));
        tlen = (size_t)((sp ? sp : e) - t);
    } else {
        t = r->uri.data;
        tlen = r->uri.len;
    }
    n = (size_t)snprintf(url, sizeof(url), "%s%.*s", st->scheme,
                         (int)ed_min(st->peer.len, 256), st->peer.data);
    n = ed_min(n, sizeof(url) - 1);
    tlen = ed_min(tlen, sizeof(url) - n);
    memcpy(url + n, t, tlen);
    n += tlen;
    if (st->head.len == 0 && r->head.query.data) {
        /* As the proxy would write it. */
        tlen = ed_min(r->head.query.len + 1, sizeof(url) - n);
        if (tlen) {
            url[n] = '?';
            memcpy(url + n + 1, r->head.query.data, tlen - 1);
            n += tlen;
        }
    }
    ed_http_log_field(b, ", upstream: ", url, n, ED_HTTP_LOG_UPSTREAM,
                      true);
}

size_t
ed_http_log_ctx(void *data, char *buf, size_t size)
{
    ed_http_request_t *r = data;
    ed_http_log_buf_t  b = { buf, buf + size };
    const char        *line;
    char               addr[64];
    size_t             n;

    if (r == NULL) {
        return 0;
    }

    n = ed_peer_text(ed_http_remote(r), addr, sizeof(addr));
    ed_http_log_field(&b, ", client: ", addr, ed_min(n, sizeof(addr) - 1),
                      sizeof(addr), false);
    ed_http_log_field(&b, ", server: ", r->server->server_name.data,
                      r->server->server_name.len, ED_HTTP_LOG_SERVER, false);
    n = ed_http_log_line(r, &line);
    if (n) {
        ed_http_log_field(&b, ", request: ", line, n, ED_HTTP_LOG_REQUEST,
                          true);
    }
    if (r->parent) {
        ed_http_log_field(&b, ", subrequest: ", r->uri.data, r->uri.len,
                          ED_HTTP_LOG_REQUEST, true);
    }
    ed_http_log_upstream(&b, r);
    if (r->head.host.len) {
        ed_http_log_field(&b, ", host: ", r->head.host.data,
                          r->head.host.len, ED_HTTP_LOG_HOST, true);
    }
    return (size_t)(b.p - buf);
}

const char *
ed_http_log_str(ed_http_request_t *r, const char *s, size_t len, size_t max)
{
    char   *p;
    size_t  n;

    max = ed_max(max, 3);
    p = ed_pnalloc(r->pool, max + 1);
    if (p == NULL) {
        return "";
    }
    n = ed_log_escape(p, max, s, len);
    p[n] = '\0';
    return p;
}
