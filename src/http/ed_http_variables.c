/* Variables ($host, $uri, ...) evaluated lazily, and templates: strings
 * with variables compiled once at config time. */
#include "ed_http.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <strings.h>
#include <sys/un.h>

/* One piece of a template: literal text, or a variable by name. */
typedef struct {
    ed_str_t        text;     /* literal, or the variable name */
    ed_http_variable_pt get;  /* NULL: literal or a dynamic name */
    ed_http_conf_var_t *cv;   /* a variable the configuration defines */
    unsigned        capture;  /* $N: N + 1, found without a name look-up */
    unsigned        family;   /* $http_, $arg_, $cookie_: 1, 2, 3 */
    unsigned        is_var:1;
} ed_http_tpart_t;

const ed_http_cur_regex_t *ed_http_cur_regex;

struct ed_http_template_s {
    ed_http_tpart_t *parts;
    size_t           nparts;
    ed_str_t         literal;  /* when the template has no variable */
};

static int
ed_http_var_set(ed_http_request_t *r, ed_str_t *out, const char *s,
                size_t len)
{
    out->data = ed_pnalloc(r->pool, len + 1);
    if (out->data == NULL) {
        return ED_ERROR;
    }
    memcpy(out->data, s, len);
    out->data[len] = '\0';
    out->len = len;
    return ED_OK;
}

static int
ed_http_var_u64(ed_http_request_t *r, ed_str_t *out, uint64_t v)
{
    char buf[24];

    return ed_http_var_set(r, out, buf, (size_t)(ed_sprint_u64(buf, v) - buf));
}

#define ED_VAR(fn) static int fn(ed_http_request_t *r, ed_str_t *out)

static int
ed_http_var_addr(ed_http_request_t *r, const ed_peer_addr_t *p,
                 ed_str_t *out)
{
    char   buf[64];
    size_t n = ed_peer_text(p, buf, sizeof(buf));

    return ed_http_var_set(r, out, buf, n);
}

static int
ed_http_var_port(ed_http_request_t *r, const ed_peer_addr_t *p,
                 ed_str_t *out)
{
    if (p->sa.sa_family == AF_INET) {
        return ed_http_var_u64(r, out, ntohs(p->in.sin_port));
    }
    if (p->sa.sa_family == AF_INET6) {
        return ed_http_var_u64(r, out, ntohs(p->in6.sin6_port));
    }
    return ED_DECLINED;
}

/* The client: the peer, or whom real_ip believed it speaks for. */
ED_VAR(ed_http_var_remote_addr)
{
    return ed_http_var_addr(r, ed_http_remote(r), out);
}

/* The user auth_basic verified; none before (nginx sets it from any
 * Authorization field, verified or not). */
ED_VAR(ed_http_var_remote_user)
{
    if (r->remote_user.len == 0) {
        return ED_DECLINED;
    }
    *out = r->remote_user;
    return ED_OK;
}

/* Empty for a client named by a header (no port there), as nginx. */
ED_VAR(ed_http_var_remote_port)
{
    const ed_peer_addr_t *p = ed_http_remote(r);

    if (p != &r->hc->c.peer && p->sa.sa_family == AF_INET
        && p->in.sin_port == 0)
    {
        return ED_DECLINED;
    }
    if (p != &r->hc->c.peer && p->sa.sa_family == AF_INET6
        && p->in6.sin6_port == 0)
    {
        return ED_DECLINED;
    }
    return ed_http_var_port(r, p, out);
}

/* The peer of the socket, whatever real_ip did. */
ED_VAR(ed_http_var_realip_remote_addr)
{
    return ed_http_var_addr(r, &r->hc->c.peer, out);
}

ED_VAR(ed_http_var_realip_remote_port)
{
    return ed_http_var_port(r, &r->hc->c.peer, out);
}

/* The local address of the connection's listener. For a wildcard
 * listener (or port 0) the address the client reached is asked for; a
 * listener bound to one address and port is that address, without a
 * system call per request (fastcgi and cgi ask for both at each). */
static int
ed_http_local_addr(ed_http_request_t *r, ed_peer_addr_t *a)
{
    const ed_listener_t *ls = r->hc->c.ls;
    const ed_peer_addr_t *la = (const ed_peer_addr_t *)&ls->addr;
    socklen_t             len = sizeof(*a);

    if (la->sa.sa_family == AF_INET && la->in.sin_port != 0
        && la->in.sin_addr.s_addr != htonl(INADDR_ANY))
    {
        a->in = la->in;
        return ED_OK;
    }
    if (la->sa.sa_family == AF_INET6 && la->in6.sin6_port != 0
        && !IN6_IS_ADDR_UNSPECIFIED(&la->in6.sin6_addr))
    {
        a->in6 = la->in6;
        return ED_OK;
    }
    if (la->sa.sa_family == AF_UNIX) {
        /* All it says of a unix socket ("unix:"); a cache's detached
         * fetch, without a socket, says the same. */
        a->sa.sa_family = AF_UNIX;
        return ED_OK;
    }
    if (getsockname(r->hc->c.stream.ev.fd, &a->sa, &len) != 0) {
        return ED_ERROR;
    }
    return ED_OK;
}

ED_VAR(ed_http_var_server_addr)
{
    ed_peer_addr_t a;
    char           buf[64];

    if (ed_http_local_addr(r, &a) != ED_OK) {
        return ED_DECLINED;
    }
    return ed_http_var_set(r, out, buf, ed_peer_text(&a, buf, sizeof(buf)));
}

ED_VAR(ed_http_var_server_port)
{
    ed_peer_addr_t a;

    if (ed_http_local_addr(r, &a) != ED_OK) {
        return ED_DECLINED;
    }
    if (a.sa.sa_family == AF_INET) {
        return ed_http_var_u64(r, out, ntohs(a.in.sin_port));
    }
    if (a.sa.sa_family == AF_INET6) {
        return ed_http_var_u64(r, out, ntohs(a.in6.sin6_port));
    }
    return ED_DECLINED;
}

ED_VAR(ed_http_var_scheme)
{
    if (r->hc->c.ls->tls) {
        ed_str_set(out, "https");
    } else {
        ed_str_set(out, "http");
    }
    return ED_OK;
}

ED_VAR(ed_http_var_host)
{
    if (r->host.len) {
        *out = r->host;
        return ED_OK;
    }
    *out = r->server->server_name;
    return ED_OK;
}

ED_VAR(ed_http_var_hostname)
{
    static char name[256];
    static size_t len;

    ed_unused(r);
    if (len == 0) {
        if (gethostname(name, sizeof(name) - 1) != 0) {
            strcpy(name, "localhost");
        }
        len = strlen(name);
    }
    out->data = name;
    out->len = len;
    return ED_OK;
}

ED_VAR(ed_http_var_request_method)
{
    *out = r->head.method;
    return out->len ? ED_OK : ED_DECLINED;
}

ED_VAR(ed_http_var_request_uri)
{
    const char *end = r->head.target.data + r->head.target.len;

    *out = r->head.target;
    if (r->head.absolute) {
        /* Path and query only, as for an origin-form target. */
        if (r->head.path.data >= r->head.target.data
            && r->head.path.data <= end)
        {
            out->data = r->head.path.data;
            out->len = (size_t)(end - r->head.path.data);
        } else {
            ed_str_set(out, "/");
        }
    }
    return out->len ? ED_OK : ED_DECLINED;
}

ED_VAR(ed_http_var_uri)
{
    *out = r->uri;
    return out->len ? ED_OK : ED_DECLINED;
}

ED_VAR(ed_http_var_args)
{
    *out = r->head.query;
    return ED_OK;
}

ED_VAR(ed_http_var_request)
{
    const char *s = r->head.line ? r->head.line : r->head.method.data;
    size_t      n = r->head.line_len;

    if (s == NULL || n == 0) {
        return ED_DECLINED;
    }
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        n--;
    }
    out->data = (char *)s;
    out->len = n;
    return ED_OK;
}

ED_VAR(ed_http_var_content_length)
{
    const ed_str_t *v = ed_http_header(r, "Content-Length");

    if (v == NULL) {
        return ED_DECLINED;
    }
    *out = *v;
    return ED_OK;
}

ED_VAR(ed_http_var_content_type)
{
    const ed_str_t *v = ed_http_header(r, "Content-Type");

    if (v == NULL) {
        return ED_DECLINED;
    }
    *out = *v;
    return ED_OK;
}

ED_VAR(ed_http_var_server_name)
{
    *out = r->server->server_name;
    return ED_OK;
}

ED_VAR(ed_http_var_status)
{
    return ed_http_var_u64(r, out, (uint64_t)r->status);
}

ED_VAR(ed_http_var_body_bytes_sent)
{
    return ed_http_var_u64(r, out, r->body_bytes_sent);
}

ED_VAR(ed_http_var_bytes_sent)
{
    return ed_http_var_u64(r, out, r->bytes_sent);
}

/* The head, and on HTTP/2 the DATA bytes received too. */
ED_VAR(ed_http_var_request_length)
{
    return ed_http_var_u64(r, out, r->head.head_len
                                       + (r->stream_id
                                              ? (uint64_t)r->body_dec.total
                                              : 0));
}

ED_VAR(ed_http_var_request_time)
{
    char      buf[32];
    ed_msec_t ms = ed_current_msec - r->start_msec;
    int       n;

    n = snprintf(buf, sizeof(buf), "%lld.%03lld", (long long)(ms / 1000),
                 (long long)(ms % 1000));
    return ed_http_var_set(r, out, buf, (size_t)n);
}

ED_VAR(ed_http_var_request_id)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char     rnd[16];
    char              buf[32];
    size_t            i;

    if (r->request_id.len) {
        *out = r->request_id;
        return ED_OK;
    }
    if (getentropy(rnd, sizeof(rnd)) != 0) {
        return ED_ERROR;
    }
    for (i = 0; i < sizeof(rnd); i++) {
        buf[2 * i] = hex[rnd[i] >> 4];
        buf[2 * i + 1] = hex[rnd[i] & 15];
    }
    if (ed_http_var_set(r, &r->request_id, buf, sizeof(buf)) != ED_OK) {
        return ED_ERROR;
    }
    *out = r->request_id;
    return ED_OK;
}

ED_VAR(ed_http_var_time_iso8601)
{
    ed_unused(r);
    *out = ed_cached_iso8601;
    return ED_OK;
}

ED_VAR(ed_http_var_time_local)
{
    ed_unused(r);
    *out = ed_cached_http_log_time;
    return ED_OK;
}

ED_VAR(ed_http_var_msec)
{
    char buf[32];
    int  n = snprintf(buf, sizeof(buf), "%lld.%03u", (long long)ed_time_sec,
                      ed_time_msec_part);

    return ed_http_var_set(r, out, buf, (size_t)n);
}

ED_VAR(ed_http_var_pid)
{
    return ed_http_var_u64(r, out, (uint64_t)ed_pid);
}

ED_VAR(ed_http_var_worker_id)
{
    return ed_http_var_u64(r, out, (uint64_t)(ed_worker ? ed_worker->id : 0));
}

ED_VAR(ed_http_var_connection)
{
    return ed_http_var_u64(r, out, r->hc->number);
}

/* The request's number on its connection: streams count on HTTP/2. */
ED_VAR(ed_http_var_connection_requests)
{
    return ed_http_var_u64(r, out, r->nrequest ? r->nrequest
                                               : r->hc->requests + 1);
}

ED_VAR(ed_http_var_server_protocol)
{
    out->data = (char *)ed_http_protocol(r);
    out->len = strlen(out->data);
    return ED_OK;
}

/* "h2" (TLS) or "h2c", empty on HTTP/1.x, as nginx's $http2. */
ED_VAR(ed_http_var_http2)
{
    if (r->stream_id == 0) {
        ed_str_set(out, "");
    } else if (r->hc->c.ls->tls) {
        ed_str_set(out, "h2");
    } else {
        ed_str_set(out, "h2c");
    }
    return ED_OK;
}

ED_VAR(ed_http_var_http2_stream_id)
{
    if (r->stream_id == 0) {
        return ED_DECLINED;
    }
    return ed_http_var_u64(r, out, r->stream_id);
}

static const ed_http_variable_t ed_http_vars[] = {
    { "remote_addr", ed_http_var_remote_addr },
    { "remote_port", ed_http_var_remote_port },
    { "remote_user", ed_http_var_remote_user },
    { "realip_remote_addr", ed_http_var_realip_remote_addr },
    { "realip_remote_port", ed_http_var_realip_remote_port },
    { "server_addr", ed_http_var_server_addr },
    { "server_port", ed_http_var_server_port },
    { "scheme", ed_http_var_scheme },
    { "host", ed_http_var_host },
    { "hostname", ed_http_var_hostname },
    { "request_method", ed_http_var_request_method },
    { "request_uri", ed_http_var_request_uri },
    { "uri", ed_http_var_uri },
    { "args", ed_http_var_args },
    { "query_string", ed_http_var_args },
    { "request", ed_http_var_request },
    { "content_length", ed_http_var_content_length },
    { "content_type", ed_http_var_content_type },
    { "server_name", ed_http_var_server_name },
    { "status", ed_http_var_status },
    { "body_bytes_sent", ed_http_var_body_bytes_sent },
    { "bytes_sent", ed_http_var_bytes_sent },
    { "request_length", ed_http_var_request_length },
    { "request_time", ed_http_var_request_time },
    { "request_id", ed_http_var_request_id },
    { "time_iso8601", ed_http_var_time_iso8601 },
    { "time_local", ed_http_var_time_local },
    { "msec", ed_http_var_msec },
    { "pid", ed_http_var_pid },
    { "worker_id", ed_http_var_worker_id },
    { "connection", ed_http_var_connection },
    { "connection_requests", ed_http_var_connection_requests },
    { "server_protocol", ed_http_var_server_protocol },
    { "http2", ed_http_var_http2 },
    { "http2_stream_id", ed_http_var_http2_stream_id },
    { NULL, NULL }
};

static ed_http_variable_pt
ed_http_var_in(const ed_http_variable_t *v, const char *name, size_t len)
{
    if (len == 0) {
        return NULL;
    }
    for (; v->name; v++) {
        if (v->name[0] == name[0] && strlen(v->name) == len
            && memcmp(v->name, name, len) == 0)
        {
            return v->get;
        }
    }
    return NULL;
}

/* The variables modules provide (ed_module_t.variables). */
static ed_http_variable_pt
ed_http_var_module(const char *name, size_t len)
{
    ed_module_t       **mods = ed_modules_table();
    ed_http_variable_pt get;
    size_t              i;

    for (i = 0; mods[i] != NULL; i++) {
        if (mods[i]->variables
            && (get = ed_http_var_in(mods[i]->variables, name, len)) != NULL)
        {
            return get;
        }
    }
    return NULL;
}

/* A variable the configuration of cycle defines (a map), or NULL. */
static ed_http_conf_var_t *
ed_http_var_conf(ed_cycle_t *cycle, const char *name, size_t len)
{
    ed_module_t **mods = ed_modules_table();
    void         *v;
    size_t        i;

    if (cycle == NULL || len == 0) {
        return NULL;
    }
    for (i = 0; mods[i] != NULL; i++) {
        if (mods[i]->conf_variable
            && (v = mods[i]->conf_variable(cycle, name, len)) != NULL)
        {
            return v;
        }
    }
    return NULL;
}

static ed_http_variable_pt
ed_http_var_find(const char *name, size_t len)
{
    ed_http_variable_pt get = ed_http_var_in(ed_http_vars, name, len);

    return get ? get : ed_http_var_module(name, len);
}

static bool
ed_http_prefixed(const char *name, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len > n && memcmp(name, prefix, n) == 0;
}

/* $http_NAME: the header, with '_' matching '-', case-insensitive. */
static int
ed_http_var_header(ed_http_request_t *r, const char *name, size_t len,
                   ed_str_t *out)
{
    size_t i, j;

    for (i = 0; i < r->head.nheaders; i++) {
        ed_http_header_t *h = &r->head.headers[i];

        if (h->name.len != len) {
            continue;
        }
        for (j = 0; j < len; j++) {
            char c = ed_tolower(h->name.data[j]);

            if (c == '-') {
                c = '_';
            }
            if (c != name[j]) {
                break;
            }
        }
        if (j == len) {
            *out = h->value;
            return ED_OK;
        }
    }
    return ED_DECLINED;
}

/* $arg_NAME: the first query argument of that name (case-insensitive,
 * as nginx), raw. */
static int
ed_http_var_arg(ed_http_request_t *r, const char *name, size_t len,
                ed_str_t *out)
{
    const char *p = r->head.query.data, *end, *amp;

    if (p == NULL) {
        return ED_DECLINED;  /* no query (and no NULL plus 0) */
    }
    end = p + r->head.query.len;
    while (p < end) {
        amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL) {
            amp = end;
        }
        if ((size_t)(amp - p) > len && p[len] == '='
            && strncasecmp(p, name, len) == 0)
        {
            out->data = (char *)p + len + 1;
            out->len = (size_t)(amp - p) - len - 1;
            return ED_OK;
        }
        if ((size_t)(amp - p) == len && strncasecmp(p, name, len) == 0) {
            out->data = (char *)p + len;
            out->len = 0;
            return ED_OK;
        }
        p = amp + 1;
    }
    return ED_DECLINED;
}

/* $cookie_NAME from the Cookie headers. */
static int
ed_http_var_cookie(ed_http_request_t *r, const char *name, size_t len,
                   ed_str_t *out)
{
    size_t i;

    for (i = 0; i < r->head.nheaders; i++) {
        ed_http_header_t *h = &r->head.headers[i];
        const char       *p, *end, *semi;

        if (h->name.len != 6 || ed_strncasecmp(h->name.data, "cookie", 6)) {
            continue;
        }
        p = h->value.data;
        end = p + h->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';')) {
                p++;
            }
            semi = memchr(p, ';', (size_t)(end - p));
            if (semi == NULL) {
                semi = end;
            }
            if ((size_t)(semi - p) > len && p[len] == '='
                && memcmp(p, name, len) == 0)
            {
                out->data = (char *)p + len + 1;
                out->len = (size_t)(semi - p) - len - 1;
                return ED_OK;
            }
            p = semi;
        }
    }
    return ED_DECLINED;
}

/* One set of captures: numbered, or named through the pattern. */
static int
ed_http_capture_in(const char *subject, const PCRE2_SIZE *caps,
                   uint32_t ncaps, pcre2_code *re, const char *name,
                   size_t len, ed_str_t *out)
{
    int64_t  n;
    int      idx;
    char     buf[64];

    if (caps == NULL) {
        return ED_DECLINED;
    }
    n = ed_atoi(name, len);
    if (n < 0) {
        if (len >= sizeof(buf) || re == NULL) {
            return ED_DECLINED;
        }
        memcpy(buf, name, len);
        buf[len] = '\0';
        idx = pcre2_substring_number_from_name(re, (PCRE2_SPTR)buf);
        if (idx < 0) {
            return ED_DECLINED;
        }
        n = idx;
    }
    if ((uint64_t)n >= ncaps || caps[2 * n] == PCRE2_UNSET) {
        return ED_DECLINED;
    }
    out->data = (char *)subject + caps[2 * n];
    out->len = caps[2 * n + 1] - caps[2 * n];
    return ED_OK;
}

/* $N of the captures in force (the location's, or a rewrite rule's or
 * a map key's while its template runs); numbers are never the server
 * name's once a location regex matched, as below. */
static int
ed_http_capture_n(ed_http_request_t *r, unsigned n, ed_str_t *out)
{
    if (r->caps == NULL || n >= r->ncaps || r->caps[2 * n] == PCRE2_UNSET) {
        return ED_DECLINED;
    }
    out->data = (char *)r->cap_subject + r->caps[2 * n];
    out->len = r->caps[2 * n + 1] - r->caps[2 * n];
    return ED_OK;
}

/* The location's captures first, then the server name's (named ones
 * survive a regex location, as in nginx). */
static int
ed_http_var_capture(ed_http_request_t *r, const char *name, size_t len,
                    ed_str_t *out)
{
    if (ed_http_capture_in(r->cap_subject, r->caps, r->ncaps, r->cap_re,
                           name, len, out) == ED_OK)
    {
        return ED_OK;
    }
    if (r->srv_caps == r->caps || (name[0] >= '0' && name[0] <= '9')) {
        return ED_DECLINED;
    }
    return ed_http_capture_in(r->srv_cap_subject, r->srv_caps, r->srv_ncaps,
                              r->srv_cap_re, name, len, out);
}

int
ed_http_variable(ed_http_request_t *r, const char *name, size_t len,
                 ed_str_t *out)
{
    ed_http_variable_pt get = ed_http_var_in(ed_http_vars, name, len);
    ed_http_conf_var_t *cv;

    if (get) {
        return get(r, out);
    }
    /* Prefixes before the modules' variables (no name of theirs has
     * one): a header by name costs what it did before. */
    if (ed_http_prefixed(name, len, "http_")) {
        return ed_http_var_header(r, name + 5, len - 5, out);
    }
    if (ed_http_prefixed(name, len, "arg_")) {
        return ed_http_var_arg(r, name + 4, len - 4, out);
    }
    if (ed_http_prefixed(name, len, "cookie_")) {
        return ed_http_var_cookie(r, name + 7, len - 7, out);
    }
    if (ed_http_prefixed(name, len, "proxy_protocol_")) {
        return ed_http_pp_variable(r, name + 15, len - 15, out);
    }
    get = ed_http_var_module(name, len);
    if (get) {
        return get(r, out);
    }
    if (ed_http_var_capture(r, name, len, out) == ED_OK) {
        return ED_OK;
    }
    cv = ed_http_var_conf(ed_worker ? ed_worker->cycle : NULL, name, len);
    return cv ? cv->get(r, cv, out) : ED_DECLINED;
}

ed_http_variable_pt
ed_http_variable_getter(const char *name, size_t len)
{
    return ed_http_var_find(name, len);
}

bool
ed_http_variable_reserved(const char *name, size_t len)
{
    return ed_http_var_find(name, len) != NULL
           || ed_http_prefixed(name, len, "http_")
           || ed_http_prefixed(name, len, "arg_")
           || ed_http_prefixed(name, len, "cookie_")
           || ed_http_prefixed(name, len, "proxy_protocol_");
}

bool
ed_http_variable_known(const char *name, size_t len)
{
    return ed_http_var_find(name, len) != NULL
           || ed_http_prefixed(name, len, "http_")
           || ed_http_prefixed(name, len, "arg_")
           || ed_http_prefixed(name, len, "cookie_")
           || (ed_http_prefixed(name, len, "proxy_protocol_")
               && ed_http_pp_variable_known(name + 15, len - 15));
}

static bool
ed_http_var_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_';
}

/* Config-time checks of the names in a template. */

#define ED_HTTP_SCOPE_MAX 64

/* A regex in scope of a template: its text as written (a location's
 * key, a server name) and the pattern in it. */
typedef struct {
    const char *written;
    const char *re;
    size_t      len;
} ed_http_re_src_t;

typedef struct {
    ed_http_re_src_t re[ED_HTTP_SCOPE_MAX];
    size_t           n;
} ed_http_scope_t;

static void
ed_http_scope_add(ed_http_scope_t *sc, const char *written, const char *re,
                  size_t len)
{
    if (sc->n < ED_HTTP_SCOPE_MAX) {
        sc->re[sc->n].written = written;
        sc->re[sc->n].re = re;
        sc->re[sc->n].len = len;
        sc->n++;
    }
}

/* The regex server names of a server's node ("~" then the pattern). */
static void
ed_http_scope_names(ed_http_scope_t *sc, ed_node_t *srv)
{
    ed_node_t *names = ed_conf_get(srv, "names"), *n;
    size_t     i, count;

    if (names == NULL) {
        return;
    }
    count = names->type == ED_NODE_SEQ ? names->n : 1;
    for (i = 0; i < count; i++) {
        n = names->type == ED_NODE_SEQ ? names->items[i] : names;
        if (n->type == ED_NODE_SCALAR && n->value.len > 1
            && n->value.data[0] == '~')
        {
            ed_http_scope_add(sc, n->value.data, n->value.data + 1,
                              n->value.len - 1);
        }
    }
}

/* The regex locations of a server's node ("~ re", "~* re"). */
static void
ed_http_scope_locations(ed_http_scope_t *sc, ed_node_t *srv)
{
    ed_node_t  *locs = ed_conf_get(srv, "locations");
    const char *k, *p;
    size_t      i;

    for (i = 0; locs && locs->type == ED_NODE_MAP && i < locs->n; i++) {
        k = locs->items[2 * i]->value.data;
        if (strncmp(k, "~ ", 2) != 0 && strncmp(k, "~* ", 3) != 0) {
            continue;
        }
        for (p = k + (k[1] == '*' ? 3 : 2); *p == ' '; p++) {
            /* the pattern starts after the spaces */
        }
        ed_http_scope_add(sc, k, p, strlen(p));
    }
}

/* The regexes whose captures a template being compiled may use: in a
 * location, its own and its server's names; in a server (its keys
 * inherit into every location), all of its own; at main level, all. */
static void
ed_http_scope(ed_conf_t *cf, ed_http_scope_t *sc)
{
    ed_http_location_t *loc = ed_http_cur_location;
    ed_node_t          *servers;
    size_t              i;

    sc->n = 0;
    if (loc && loc->re) {
        ed_http_scope_add(sc, loc->name.data, loc->match.data,
                          loc->match.len);
    }
    if (ed_http_cur_server && ed_http_cur_server->node) {
        ed_http_scope_names(sc, ed_http_cur_server->node);
        if (loc == NULL) {
            ed_http_scope_locations(sc, ed_http_cur_server->node);
        }
        return;
    }
    servers = cf->cycle ? ed_conf_get(cf->cycle->root, "servers") : NULL;
    for (i = 0; servers && servers->type == ED_NODE_SEQ && i < servers->n;
         i++)
    {
        ed_http_scope_names(sc, servers->items[i]);
        ed_http_scope_locations(sc, servers->items[i]);
    }
}

/* Calls fn for each named group of a pattern ((?<n>, (?P<n>, (?'n');
 * stops when fn returns true. Returns whether one did. */
static bool
ed_http_re_names(const char *re, size_t len,
                 bool (*fn)(const char *name, size_t n, void *data),
                 void *data)
{
    const char *p = re, *end = re + len, *name;

    for (; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (end - p < 4 || p[0] != '(' || p[1] != '?') {
            continue;
        }
        name = p + 2;
        if (*name == 'P') {
            name++;
        }
        if (name >= end || (*name != '<' && *name != '\'')) {
            continue;
        }
        name++;
        p = name;
        while (p < end && ed_http_var_char(*p)) {
            p++;
        }
        if (p > name && p < end && (*p == '>' || *p == '\'')
            && fn(name, (size_t)(p - name), data))
        {
            return true;
        }
    }
    return false;
}

typedef struct {
    const char *name;
    size_t      len;
    const char *best;      /* closest so far */
    size_t      best_len;
    size_t      bestd;
} ed_http_guess_t;

static bool
ed_http_name_is(const char *name, size_t n, void *data)
{
    ed_http_guess_t *g = data;

    return n == g->len && memcmp(name, g->name, n) == 0;
}

/* Keeps cand when it is within distance 2 of the name and closer than
 * what was kept. */
static bool
ed_http_name_near(const char *cand, size_t n, void *data)
{
    ed_http_guess_t *g = data;
    char             a[64], b[64];
    size_t           d;

    if (g->len >= sizeof(a) || n >= sizeof(b)) {
        return false;
    }
    memcpy(a, g->name, g->len);
    a[g->len] = '\0';
    memcpy(b, cand, n);
    b[n] = '\0';
    d = ed_str_distance(a, b);
    if (d <= 2 && d < g->bestd) {
        g->bestd = d;
        g->best = cand;
        g->best_len = n;
    }
    return false;
}

static void
ed_http_near_in(ed_http_guess_t *g, const ed_http_variable_t *v)
{
    for (; v && v->name; v++) {
        ed_http_name_near(v->name, strlen(v->name), g);
    }
}

/* The capture count of a pattern, or -1 when it does not compile. */
static int
ed_http_re_captures(const char *re, size_t len)
{
    pcre2_code *code;
    uint32_t    n;
    int         rc;
    PCRE2_SIZE  off;

    code = pcre2_compile((PCRE2_SPTR)re, len, 0, &rc, &off, NULL);
    if (code == NULL) {
        return -1;
    }
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &n);
    pcre2_code_free(code);
    return (int)n;
}

/* Records an error at the byte at off of node's value. */
static void ed_http_var_error(ed_conf_t *cf, const ed_node_t *node, size_t off,
                              const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
ed_http_var_error(ed_conf_t *cf, const ed_node_t *node, size_t off,
                  const char *fmt, ...)
{
    ed_node_t at = *node;
    va_list   ap;
    char      msg[512];

    /* A | or > block, or a later line: the column would be wrong. */
    if (node->quoted != 2 && memchr(node->value.data, '\n', off) == NULL
        && node->line)
    {
        at.col += (unsigned)off + (node->quoted ? 1 : 0);
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ed_conf_error(cf, &at, "%s", msg);
}

/* "$2" in a location whose regex has fewer groups (or none in scope). */
static void
ed_http_check_number(ed_conf_t *cf, const ed_node_t *node, size_t off,
                     const ed_http_scope_t *sc, int64_t num)
{
    ed_http_location_t *loc = ed_http_cur_location;
    const char         *most = NULL;
    int                 n, max = -1;
    size_t              i;

    if (ed_http_cur_regex) {
        n = ed_http_re_captures(ed_http_cur_regex->pattern,
                                ed_http_cur_regex->len);
        if (num > n) {
            ed_http_var_error(cf, node, off, "\"$%" PRId64 "\" but %s "
                              "\"%.*s\" has %d capture group%s", num,
                              ed_http_cur_regex->written,
                              (int)ed_http_cur_regex->len,
                              ed_http_cur_regex->pattern, n,
                              n == 1 ? "" : "s");
        }
        return;
    }
    /* In a server or at main level the value reaches regex locations
     * too: a number is checked only where it is used. */
    if (loc == NULL) {
        return;
    }
    if (loc->re) {
        if (num <= (int64_t)loc->ncaptures) {
            return;
        }
        ed_http_var_error(cf, node, off, "\"$%" PRId64 "\" but location "
                          "\"%s\" has %u capture group%s", num,
                          loc->name.data, (unsigned)loc->ncaptures,
                          loc->ncaptures == 1 ? "" : "s");
        return;
    }
    for (i = 0; i < sc->n; i++) {
        n = ed_http_re_captures(sc->re[i].re, sc->re[i].len);
        if (n > max) {
            max = n;
            most = sc->re[i].written;
        }
    }
    if (most == NULL) {
        ed_http_var_error(cf, node, off, "\"$%" PRId64 "\" but location "
                          "\"%s\" is not a regex, nor is any server name",
                          num, loc->name.data);
    } else if (num > max) {
        ed_http_var_error(cf, node, off, "\"$%" PRId64 "\" but server name "
                          "\"%s\" has %d capture group%s", num, most, max,
                          max == 1 ? "" : "s");
    }
}

/* A family's stem: the name after it is a header, argument or cookie. */
static const char *const ed_http_families[] = {"http", "arg", "cookie"};

/* Checks one variable name of a template (at off in node's value):
 * a built-in, a module's, a family member, or a capture in scope;
 * otherwise an error with the closest name. */
static void
ed_http_check_name(ed_conf_t *cf, const ed_node_t *node, size_t off,
                   const char *name, size_t len)
{
    ed_module_t   **mods = ed_modules_table();
    ed_http_scope_t sc;
    ed_http_guess_t g;
    const char     *us;
    char            stem[16], fam[80];
    size_t          i, d, slen;
    int64_t         num;

    if (ed_http_variable_known(name, len)) {
        return;
    }
    ed_http_scope(cf, &sc);
    num = ed_atoi(name, len);
    if (num >= 0) {
        ed_http_check_number(cf, node, off, &sc, num);
        return;
    }
    g = (ed_http_guess_t){name, len, NULL, 0, (size_t)-1};
    if (ed_http_cur_regex
        && ed_http_re_names(ed_http_cur_regex->pattern,
                            ed_http_cur_regex->len, ed_http_name_is, &g))
    {
        return;
    }
    for (i = 0; i < sc.n; i++) {
        if (ed_http_re_names(sc.re[i].re, sc.re[i].len, ed_http_name_is,
                             &g))
        {
            return;
        }
    }
    ed_http_near_in(&g, ed_http_vars);
    for (i = 0; mods[i] != NULL; i++) {
        ed_http_near_in(&g, mods[i]->variables);
    }
    for (i = 0; i < sc.n; i++) {
        ed_http_re_names(sc.re[i].re, sc.re[i].len, ed_http_name_near, &g);
    }
    if (ed_http_cur_regex) {
        ed_http_re_names(ed_http_cur_regex->pattern, ed_http_cur_regex->len,
                         ed_http_name_near, &g);
    }
    /* A misspelt stem ($cookies_id, $args_page) or a stem alone. */
    us = memchr(name, '_', len);
    slen = us ? (size_t)(us - name) : len;
    if (slen < sizeof(stem)) {
        memcpy(stem, name, slen);
        stem[slen] = '\0';
        for (i = 0; i < ed_nelems(ed_http_families); i++) {
            d = ed_str_distance(stem, ed_http_families[i]);
            if (d > 1 || (d == 1 && !us) || (g.best && d >= g.bestd)) {
                continue;
            }
            snprintf(fam, sizeof(fam), "%s_%.*s", ed_http_families[i],
                     us && us + 1 < name + len
                         ? (int)(name + len - us - 1) : 4,
                     us && us + 1 < name + len ? us + 1 : "NAME");
            g.best = fam;
            g.best_len = strlen(fam);
            break;
        }
    }
    if (g.best) {
        ed_http_var_error(cf, node, off, "unknown variable \"$%.*s\"; did "
                          "you mean \"$%.*s\"?", (int)len, name,
                          (int)g.best_len, g.best);
    } else {
        ed_http_var_error(cf, node, off, "unknown variable \"$%.*s\"",
                          (int)len, name);
    }
}

/* A template's $http_NAME, $arg_NAME or $cookie_NAME. */
static int
ed_http_var_family(ed_http_request_t *r, const ed_http_tpart_t *part,
                   ed_str_t *out)
{
    const char *n = part->text.data;
    size_t      len = part->text.len;

    switch (part->family) {
    case 1:
        return ed_http_var_header(r, n + 5, len - 5, out);
    case 2:
        return ed_http_var_arg(r, n + 4, len - 4, out);
    default:
        return ed_http_var_cookie(r, n + 7, len - 7, out);
    }
}

/* Whether the regex being compiled for names a group so. */
static bool
ed_http_cur_regex_has(const char *name, size_t len)
{
    ed_http_guess_t g = {name, len, NULL, 0, (size_t)-1};

    return ed_http_cur_regex
           && ed_http_re_names(ed_http_cur_regex->pattern,
                               ed_http_cur_regex->len, ed_http_name_is, &g);
}

const char *
ed_http_set_key_template(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                         void *conf)
{
    ed_http_template_t **t = (ed_http_template_t **)((char *)conf
                                                     + key->offset);
    const char          *err;

    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    if (node->value.len == 0) {
        return "expected a string with variables such as $remote_addr";
    }
    *t = ed_http_template_compile(cf, node, &err);
    return *t ? NULL : err;
}

ed_http_template_t *
ed_http_template_compile(ed_conf_t *cf, const ed_node_t *node,
                         const char **err)
{
    ed_http_template_t *t;
    ed_http_tpart_t    *part;
    const char         *s = node->value.data, *end = s + node->value.len, *p;
    const char         *name, *dollar;
    char               *buf, *lit, *lp;
    size_t              nlen, max;

    t = ed_pcalloc(cf->pool, sizeof(ed_http_template_t));
    max = 2 * node->value.len + 1;
    buf = ed_pnalloc(cf->pool, node->value.len + 1);
    if (t == NULL || buf == NULL
        || (t->parts = ed_palloc(cf->pool, max * sizeof(ed_http_tpart_t)))
               == NULL)
    {
        *err = "out of memory";
        return NULL;
    }
    /* Literal text is copied: "$$" stands for one '$'. */
    lit = lp = buf;
    p = s;
    for (;;) {
        if (p < end && p[0] == '$' && p + 1 < end && p[1] == '$') {
            *lp++ = '$';
            p += 2;
            continue;
        }
        if (p < end
            && !(p[0] == '$' && p + 1 < end
                 && (ed_http_var_char(p[1]) || p[1] == '{')))
        {
            *lp++ = *p++;
            continue;
        }
        if (lp > lit) {
            part = &t->parts[t->nparts++];
            memset(part, 0, sizeof(*part));
            part->text.data = lit;
            part->text.len = (size_t)(lp - lit);
            lit = lp;
        }
        if (p >= end) {
            break;
        }
        dollar = p++;
        if (*p == '{') {
            name = ++p;
            while (p < end && *p != '}') {
                p++;
            }
            if (p >= end) {
                *err = "unterminated \"${\" in a string with variables";
                return NULL;
            }
            nlen = (size_t)(p - name);
            p++;
        } else if (*p >= '0' && *p <= '9') {
            /* $1..$9: one digit, as nginx ("$1abc" is $1 then "abc"). */
            name = p++;
            nlen = 1;
        } else {
            name = p;
            while (p < end && ed_http_var_char(*p)) {
                p++;
            }
            nlen = (size_t)(p - name);
        }
        if (nlen == 0) {
            *err = "empty variable name";
            return NULL;
        }
        part = &t->parts[t->nparts++];
        memset(part, 0, sizeof(*part));
        part->is_var = 1;
        part->text.data = (char *)name;
        part->text.len = nlen;
        part->get = ed_http_var_find(name, nlen);
        if (part->get == NULL && nlen == 1 && name[0] >= '0'
            && name[0] <= '9')
        {
            part->capture = (unsigned)(name[0] - '0') + 1;
        }
        /* A family member is looked up by its suffix at once, as
         * ed_http_variable would after failing the built-ins. */
        if (part->get == NULL) {
            part->family = ed_http_prefixed(name, nlen, "http_") ? 1
                           : ed_http_prefixed(name, nlen, "arg_") ? 2
                           : ed_http_prefixed(name, nlen, "cookie_") ? 3
                                                                     : 0;
        }
        if (part->get == NULL && !ed_http_cur_regex_has(name, nlen)) {
            part->cv = ed_http_var_conf(cf->cycle, name, nlen);
        }
        if (part->get == NULL && part->cv == NULL) {
            /* Recorded; the template stays usable so the load goes on
             * to find more. */
            ed_http_check_name(cf, node, (size_t)(dollar - s), name, nlen);
        }
    }
    *lp = '\0';
    if (t->nparts == 0 || (t->nparts == 1 && !t->parts[0].is_var)) {
        if (t->nparts) {
            t->literal = t->parts[0].text;
        } else {
            t->literal.data = buf;
            t->literal.len = 0;
        }
        t->nparts = 0;
    }
    return t;
}

int
ed_http_template_run(ed_http_request_t *r, const ed_http_template_t *t,
                     ed_str_t *out)
{
    ed_str_t  vals[64], *v;
    size_t    i, len = 0;
    char     *p;
    int       rc;

    if (t->nparts == 0) {
        *out = t->literal;
        return ED_OK;
    }
    v = t->nparts <= ed_nelems(vals)
            ? vals
            : ed_palloc(r->pool, t->nparts * sizeof(ed_str_t));
    if (v == NULL) {
        return ED_ERROR;
    }
    for (i = 0; i < t->nparts; i++) {
        const ed_http_tpart_t *part = &t->parts[i];

        if (!part->is_var) {
            v[i] = part->text;
        } else {
            rc = part->get ? part->get(r, &v[i])
                 : part->capture ? ed_http_capture_n(r, part->capture - 1,
                                                     &v[i])
                 : part->family ? ed_http_var_family(r, part, &v[i])
                 : part->cv ? part->cv->get(r, part->cv, &v[i])
                            : ed_http_variable(r, part->text.data,
                                               part->text.len, &v[i]);
            if (rc == ED_ERROR) {
                return ED_ERROR;
            }
            if (rc != ED_OK) {
                /* No value: empty, and never a NULL for memcpy. */
                v[i].data = (char *)"";
                v[i].len = 0;
            }
        }
        len += v[i].len;
    }
    p = ed_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    out->len = len;
    for (i = 0; i < t->nparts; i++) {
        /* An empty value may carry a NULL pointer ($args without '?'). */
        if (v[i].len) {
            memcpy(p, v[i].data, v[i].len);
            p += v[i].len;
        }
    }
    *p = '\0';
    return ED_OK;
}

bool
ed_http_template_literal(const ed_http_template_t *t)
{
    return t->nparts == 0;
}

int
ed_http_template_value(ed_http_request_t *r, const ed_http_template_t *t,
                       ed_str_t *out)
{
    const ed_http_tpart_t *part = t->parts;
    int                    rc;

    if (t->nparts != 1 || !part->is_var || part->capture) {
        return ed_http_template_run(r, t, out);
    }
    rc = part->get ? part->get(r, out)
         : part->family ? ed_http_var_family(r, part, out)
         : part->cv ? part->cv->get(r, part->cv, out)
                    : ed_http_variable(r, part->text.data, part->text.len,
                                       out);
    if (rc == ED_ERROR) {
        return ED_ERROR;
    }
    if (rc != ED_OK) {
        out->data = (char *)"";
        out->len = 0;
    }
    return ED_OK;
}

size_t
ed_http_template_conf_vars(const ed_http_template_t *t,
                           ed_http_conf_var_t **out, size_t max)
{
    size_t i, n = 0;

    for (i = 0; i < t->nparts; i++) {
        if (t->parts[i].cv) {
            if (n < max) {
                out[n] = t->parts[i].cv;
            }
            n++;
        }
    }
    return n;
}

int
ed_http_template_run_caps(ed_http_request_t *r, const ed_http_template_t *t,
                          const char *subject, PCRE2_SIZE *caps,
                          uint32_t ncaps, pcre2_code *re, ed_str_t *out)
{
    const char *s = r->cap_subject;
    PCRE2_SIZE *c = r->caps;
    uint32_t    n = r->ncaps;
    pcre2_code *cre = r->cap_re;
    int         rc;

    /* The captures of this match stand for the location's while the
     * template runs (a map's value may use a map whose regex sets its
     * own: each puts back what it found). */
    r->cap_subject = subject;
    r->caps = caps;
    r->ncaps = ncaps;
    r->cap_re = re;
    rc = ed_http_template_run(r, t, out);
    r->cap_subject = s;
    r->caps = c;
    r->ncaps = n;
    r->cap_re = cre;
    return rc;
}
