/* eddy explain: the command line, the request built from the URL (parsed
 * by the server's own parser), the listener, and the server chosen by
 * ed_http_find_server with each candidate's rule. The sections after
 * the server are in ed_http_explain.c. */
#include "ed_http_explain.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>

#define ED_EXPLAIN_HEADERS 64

/* What the command line asks. */
typedef struct {
    const char *conf;
    const char *prefix;
    const char *method;
    const char *remote;
    const char *listen;
    const char *url;
    char      **headers;
    size_t      nheaders;
    int         json;
} ed_explain_args_t;

/* The parts of the URL. */
typedef struct {
    int         tls;
    ed_str_t    host;      /* as written, [v6] with its brackets */
    int         port;
    ed_str_t    target;    /* path and query, "/" at least */
} ed_explain_url_t;

static void
ed_explain_usage(FILE *out)
{
    fprintf(out,
            "usage: eddy explain [-c FILE] [-p DIR] [--method M] "
            "[--header 'Name: v']...\n"
            "                    [--remote-addr A] [--listen A] [--json] "
            "URL\n\n"
            "  Shows how eddy would handle one request for URL "
            "(http[s]://host[:port]/path?query),\n"
            "  binding, starting and contacting nothing.\n");
}

/* http[s]://host[:port][/path][?query]. ED_OK or ED_ERROR. */
static int
ed_explain_parse_url(const char *s, ed_explain_url_t *u)
{
    const char *h, *end, *colon;
    int64_t     port;

    memset(u, 0, sizeof(*u));
    if (strncmp(s, "http://", 7) == 0) {
        h = s + 7;
    } else if (strncmp(s, "https://", 8) == 0) {
        h = s + 8;
        u->tls = 1;
    } else {
        return ED_ERROR;
    }
    end = h + strcspn(h, "/?#");
    if (end == h) {
        return ED_ERROR;
    }
    colon = NULL;
    if (h[0] == '[') {
        colon = memchr(h, ']', (size_t)(end - h));
        if (colon == NULL) {
            return ED_ERROR;
        }
        colon = colon + 1 < end && colon[1] == ':' ? colon + 1 : NULL;
        if (colon == NULL && end[-1] != ']') {
            return ED_ERROR;
        }
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
    }
    u->host.data = (char *)h;
    u->host.len = (size_t)((colon ? colon : end) - h);
    u->port = u->tls ? 443 : 80;
    if (colon) {
        port = ed_atoi(colon + 1, (size_t)(end - colon - 1));
        if (port < 1 || port > 65535) {
            return ED_ERROR;
        }
        u->port = (int)port;
    }
    if (u->host.len == 0) {
        return ED_ERROR;
    }
    u->target.data = (char *)(*end == '\0' || *end == '#' ? "/" : end);
    u->target.len = strcspn(u->target.data, "#");
    if (u->target.data[0] == '?') {
        /* "http://h?q": the path is "/". */
        return ED_DECLINED;
    }
    return ED_OK;
}

/* The port of a listener, or -1 (a unix socket). */
static int
ed_explain_port(const ed_listener_t *ls)
{
    const struct sockaddr *sa = (const struct sockaddr *)&ls->addr;

    if (sa->sa_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    return -1;
}

/* The listener the request arrives on: --listen's, else the only one
 * on the URL's port, preferring one whose TLS matches the scheme. NULL
 * after printing why. */
static ed_listener_t *
ed_explain_listener(ed_cycle_t *cycle, const ed_explain_args_t *a,
                    const ed_explain_url_t *u)
{
    ed_listener_t **ls = cycle->listeners.elts, *pick = NULL;
    const char     *err;
    size_t          i;

    if (a->listen) {
        pick = NULL;
        for (i = 0; i < cycle->listeners.nelts; i++) {
            if (strcmp(ls[i]->name, a->listen) == 0) {
                pick = ls[i];
            }
        }
        if (pick == NULL) {
            /* "8080" or "[::1]:80" as written in the configuration. */
            i = cycle->listeners.nelts;
            pick = ed_cycle_listener(cycle, a->listen, &err);
            if (pick && cycle->listeners.nelts != i) {
                cycle->listeners.nelts = i;  /* not one of ours */
                pick = NULL;
            }
        }
        if (pick == NULL || pick->servers == NULL) {
            fprintf(stderr, "eddy: --listen %s: no server listens there\n",
                    a->listen);
            return NULL;
        }
        if (ed_explain_port(pick) >= 0 && ed_explain_port(pick) != u->port) {
            fprintf(stderr, "eddy: --listen %s: not on the URL's port %d\n",
                    a->listen, u->port);
            return NULL;
        }
        return pick;
    }
    for (i = 0; i < cycle->listeners.nelts; i++) {
        if (ls[i]->servers == NULL || ed_explain_port(ls[i]) != u->port) {
            continue;
        }
        if (pick == NULL || ((int)pick->tls != u->tls
                             && (int)ls[i]->tls == u->tls))
        {
            pick = ls[i];
        }
    }
    if (pick == NULL) {
        fprintf(stderr, "eddy: no server listens on port %d; listening:",
                u->port);
        for (i = 0; i < cycle->listeners.nelts; i++) {
            fprintf(stderr, "%s %s", i ? "," : "", ls[i]->name);
        }
        fprintf(stderr, "\n");
    }
    return pick;
}

/* Builds the request head as a client would send it and parses it with
 * the server's parser. NULL after printing why. */
static ed_http_request_t *
ed_explain_request(ed_pool_t *pool, ed_listener_t *ls,
                   const ed_explain_args_t *a, const ed_explain_url_t *u)
{
    ed_http_conn_t    *hc = ed_pcalloc(pool, sizeof(ed_http_conn_t));
    ed_http_request_t *r = ed_pcalloc(pool, sizeof(ed_http_request_t));
    ed_http_header_t  *hdrs;
    ed_explain_buf_t   raw;
    char              *buf;
    bool               host = false;
    size_t             i;
    int                rc;

    hdrs = ed_pcalloc(pool, ED_EXPLAIN_HEADERS * sizeof(*hdrs));
    if (hc == NULL || r == NULL || hdrs == NULL) {
        return NULL;
    }
    /* Nothing is sent; the protocol is what a request of the URL meets. */
    r->proto = &ed_http_h1_proto;
    memset(&raw, 0, sizeof(raw));
    ed_explain_printf(&raw, "%s %.*s HTTP/1.1\r\n", a->method,
                      (int)u->target.len, u->target.data);
    for (i = 0; i < a->nheaders; i++) {
        if (strncasecmp(a->headers[i], "host:", 5) == 0) {
            host = true;
        }
    }
    if (!host) {
        if (u->port == (u->tls ? 443 : 80)) {
            ed_explain_printf(&raw, "Host: %.*s\r\n", (int)u->host.len,
                              u->host.data);
        } else {
            ed_explain_printf(&raw, "Host: %.*s:%d\r\n", (int)u->host.len,
                              u->host.data, u->port);
        }
    }
    for (i = 0; i < a->nheaders; i++) {
        ed_explain_printf(&raw, "%s\r\n", a->headers[i]);
    }
    ed_explain_printf(&raw, "\r\n");
    if (raw.failed) {
        return NULL;
    }

    hc->c.ls = ls;
    hc->c.stream.ev.fd = -1;
    hc->r = r;
    if (inet_pton(AF_INET, a->remote, &hc->c.peer.in.sin_addr) == 1) {
        hc->c.peer.in.sin_family = AF_INET;
        hc->c.peer.in.sin_port = htons(50000);
    } else if (inet_pton(AF_INET6, a->remote, &hc->c.peer.in6.sin6_addr)
               == 1)
    {
        hc->c.peer.in6.sin6_family = AF_INET6;
        hc->c.peer.in6.sin6_port = htons(50000);
    } else {
        fprintf(stderr, "eddy: invalid --remote-addr \"%s\": expected an "
                "IPv4 or IPv6 address\n", a->remote);
        ed_explain_buf_free(&raw);
        return NULL;
    }
    r->hc = hc;
    r->pool = pool;
    r->content_length = -1;
    r->start_msec = ed_current_msec;
    r->head_only = 0;
    /* The strings of the head point into the buffer: keep it. */
    buf = ed_pstrdup(pool, raw.data, raw.len);
    rc = buf ? ed_http_parse_request(buf, raw.len, &r->head, hdrs,
                                     ED_EXPLAIN_HEADERS)
             : ED_ERROR;
    ed_explain_buf_free(&raw);
    if (rc != ED_OK) {
        fprintf(stderr, "eddy: the request built from the arguments is "
                "invalid (status %d): check --method, --header and the "
                "URL\n", rc);
        return NULL;
    }
    r->head_only = r->head.method_id == ED_HTTP_HEAD;
    return r;
}

/* The listen item of srv that makes it listen on ls, or NULL. */
static ed_http_listen_t *
ed_explain_listen_item(ed_cycle_t *cycle, ed_http_server_t *srv,
                       ed_listener_t *ls)
{
    ed_http_core_srv_conf_t *cscf;
    ed_http_listen_t       **items;
    const char              *err;
    size_t                   i, n = cycle->listeners.nelts;

    cscf = srv->srv_conf[ed_http_core_module.index];
    items = cscf->listen ? cscf->listen->elts : NULL;
    for (i = 0; items && i < cscf->listen->nelts; i++) {
        /* Every item of a loaded configuration has its listener: this
         * finds it and makes none. */
        if (items[i]->address
            && ed_cycle_listener(cycle, items[i]->address->value.data, &err)
                   == ls)
        {
            cycle->listeners.nelts = n;
            return items[i];
        }
        cycle->listeners.nelts = n;
    }
    return NULL;
}

/* Servers. */

/* How well one server's names match host: kind 0 exact, 1 leading
 * wildcard, 2 trailing wildcard, 3 regex (as ed_http_name_t), -1 none;
 * with the name as written and the wildcard's length. */
typedef struct {
    int         kind;
    const char *name;
    size_t      len;
} ed_explain_match_t;

static const char *ed_explain_kinds[] = {
    "exact name", "leading wildcard", "trailing wildcard", "regex"
};

/* Whether srv is the default of the run's listener by `default: true`
 * (else, when it is, by being first). */
static bool
ed_explain_is_default(ed_explain_run_t *run, ed_http_server_t *srv)
{
    ed_http_listen_t *item = ed_explain_listen_item(run->cycle, srv,
                                                    run->ls);

    return item && item->is_default == 1;
}

static void
ed_explain_match(ed_http_server_t *srv, const ed_str_t *host,
                 ed_explain_match_t *m)
{
    ed_http_core_srv_conf_t *cscf;
    ed_http_name_t          *names = srv->names.elts;
    ed_node_t              **nodes, *nn;
    pcre2_match_data        *md;
    size_t                   j, nnodes = 0;
    const char              *written;
    ed_explain_match_t       best = { -1, NULL, 0 };

    cscf = srv->srv_conf[ed_http_core_module.index];
    nn = cscf->names;
    nodes = &cscf->names;
    if (nn && nn->type == ED_NODE_SEQ) {
        nodes = nn->items;
        nnodes = nn->n;
    } else if (nn) {
        nnodes = 1;
    }
    for (j = 0; host->len && j < srv->names.nelts; j++) {
        ed_http_name_t *n = &names[j];
        bool            hit = false;

        written = j < nnodes ? nodes[j]->value.data : n->name.data;
        switch (n->kind) {
        case 0:
            hit = ed_str_eq(&n->name, host);
            break;
        case 1:
            hit = host->len > n->name.len
                  && memcmp(host->data + host->len - n->name.len,
                            n->name.data, n->name.len) == 0;
            break;
        case 2:
            hit = host->len > n->name.len
                  && memcmp(host->data, n->name.data, n->name.len) == 0;
            break;
        default:
            if (n->re == NULL) {
                break;
            }
            md = pcre2_match_data_create_from_pattern(n->re, NULL);
            hit = md && pcre2_match(n->re, (PCRE2_SPTR)host->data,
                                    host->len, 0, 0, md, NULL) >= 0;
            pcre2_match_data_free(md);
            break;
        }
        if (!hit) {
            continue;
        }
        /* The server's best: exact, then the longest wildcard of a
         * kind, then its first regex. */
        if (best.kind == -1 || n->kind < best.kind
            || (n->kind == best.kind && n->kind != 3
                && n->name.len > best.len))
        {
            best.kind = n->kind;
            best.name = written;
            best.len = n->name.len;
        }
    }
    *m = best;
}

/* Appends the "server" section: the chosen server and its rule, then
 * every other candidate on the address and why it lost. */
static void
ed_explain_servers(ed_explain_run_t *run, ed_http_addr_t *ha,
                   ed_http_server_t *chosen, const ed_str_t *host)
{
    ed_http_server_t  **srvs = ha->servers.elts, *s;
    ed_explain_buf_t    head, more, items;
    ed_explain_match_t  cm, m;
    char                rule[512], why[512];
    size_t              i;
    int                 n = 0;

    memset(&head, 0, sizeof(head));
    memset(&more, 0, sizeof(more));
    memset(&items, 0, sizeof(items));
    ed_explain_match(chosen, host, &cm);
    if (cm.kind >= 0) {
        snprintf(rule, sizeof(rule), "%s \"%s\"", ed_explain_kinds[cm.kind],
                 cm.name);
    } else if (ed_explain_is_default(run, chosen)) {
        snprintf(rule, sizeof(rule), "default (\"default: true\" for %s); "
                 "%s", run->ls->name, host->len ? "no name matches"
                                                : "no Host");
    } else {
        snprintf(rule, sizeof(rule), "first server on %s, so its default; "
                 "%s", run->ls->name, host->len ? "no name matches"
                                                : "no Host");
    }
    ed_explain_printf(&head, "#%u %s (%s:%u:%u): %s", chosen->index,
                      chosen->server_name.len ? chosen->server_name.data
                                              : "(no names)",
                      chosen->node->file, chosen->node->line,
                      chosen->node->col, rule);
    for (i = 0; i < ha->servers.nelts; i++) {
        s = srvs[i];
        if (s == chosen) {
            continue;
        }
        ed_explain_match(s, host, &m);
        if (m.kind < 0) {
            snprintf(why, sizeof(why), "no name matches");
        } else if (m.kind == cm.kind && m.kind == 0) {
            snprintf(why, sizeof(why), "%s \"%s\" too, but server #%u comes "
                     "first", ed_explain_kinds[m.kind], m.name,
                     chosen->index);
        } else if (m.kind == cm.kind && m.kind != 3) {
            snprintf(why, sizeof(why), "%s \"%s\" is not the longest",
                     ed_explain_kinds[m.kind], m.name);
        } else if (m.kind == 3 && cm.kind == 3) {
            snprintf(why, sizeof(why), "regex \"%s\" matches too, but "
                     "server #%u's comes first", m.name, chosen->index);
        } else {
            snprintf(why, sizeof(why), "%s \"%s\" loses to %s",
                     ed_explain_kinds[m.kind], m.name,
                     ed_explain_kinds[cm.kind]);
        }
        if (s == ha->default_server) {
            snprintf(why + strlen(why), sizeof(why) - strlen(why),
                     "; default for %s", run->ls->name);
        }
        ed_explain_printf(&more, "\n#%u (%s:%u:%u) rejected: %s", s->index,
                          s->node->file, s->node->line, s->node->col, why);
        ed_explain_puts(&items, ",", n ? 1 : 0);
        ed_explain_printf(&items, "{\"index\":%u,\"at\":\"%s:%u:%u\","
                          "\"why\":", s->index, s->node->file,
                          s->node->line, s->node->col);
        ed_explain_jstr(&items, why, strlen(why));
        ed_explain_lit(&items, "}");
        n++;
    }
    ed_explain_section(&run->out, "server", head.data ? head.data : "",
                       more.data);
    ed_explain_printf(&run->jout, ",\"server\":{\"index\":%u,\"name\":",
                      chosen->index);
    ed_explain_jstr(&run->jout, chosen->server_name.data,
                    chosen->server_name.len);
    ed_explain_printf(&run->jout, ",\"at\":\"%s:%u:%u\",\"rule\":",
                      chosen->node->file, chosen->node->line,
                      chosen->node->col);
    ed_explain_jcstr(&run->jout, cm.kind >= 0 ? ed_explain_kinds[cm.kind]
                     : ed_explain_is_default(run, chosen) ? "default"
                                                          : "first");
    ed_explain_lit(&run->jout, ",\"detail\":");
    ed_explain_jcstr(&run->jout, rule);
    ed_explain_lit(&run->jout, ",\"host\":");
    ed_explain_jstr(&run->jout, host->data, host->len);
    ed_explain_printf(&run->jout, ",\"rejected\":[%s]}",
                      items.data ? items.data : "");
    ed_explain_buf_free(&head);
    ed_explain_buf_free(&more);
    ed_explain_buf_free(&items);
}

/* Appends the "listen" section. */
static void
ed_explain_listen(ed_explain_run_t *run, ed_http_server_t *srv,
                  const ed_explain_url_t *u, const ed_explain_args_t *a)
{
    ed_listener_t   **ls = run->cycle->listeners.elts;
    ed_http_listen_t *item = ed_explain_listen_item(run->cycle, srv,
                                                    run->ls);
    ed_http_server_t *sni;
    ed_explain_buf_t  head, more;
    ed_node_t        *n = item ? item->address : srv->node;
    ed_str_t          host;
    size_t            i;

    memset(&head, 0, sizeof(head));
    memset(&more, 0, sizeof(more));
    ed_explain_printf(&head, "%s (%s:%u:%u): %s", run->ls->name, n->file,
                      n->line, n->col, run->ls->tls ? "tls" : "http");
    ed_explain_printf(&run->jout, "\"listen\":{\"address\":");
    ed_explain_jcstr(&run->jout, run->ls->name);
    ed_explain_printf(&run->jout, ",\"at\":\"%s:%u:%u\",\"tls\":%s",
                      n->file, n->line, n->col,
                      run->ls->tls ? "true" : "false");
    if (run->ls->tls && u->tls) {
        /* SNI picks the certificate (the server's TLS settings) with the
         * same code the handshake uses. */
        host.data = ed_pnalloc(run->r->pool, u->host.len + 1);
        if (host.data) {
            ed_strlow(host.data, u->host.data, u->host.len);
            host.data[u->host.len] = '\0';
            host.len = u->host.len;
            sni = ed_http_find_server(run->ls->servers, NULL, &host);
            ed_explain_printf(&head, ", SNI \"%s\" gives the certificate "
                              "of server #%u", host.data, sni->index);
            ed_explain_lit(&run->jout, ",\"sni\":");
            ed_explain_jstr(&run->jout, host.data, host.len);
            ed_explain_printf(&run->jout, ",\"sni_server\":%u", sni->index);
        }
    } else if ((int)run->ls->tls != u->tls) {
        ed_explain_printf(&head, " (the URL says %s: the request would "
                          "fail)", u->tls ? "https" : "http");
    }
    for (i = 0; a->listen == NULL && i < run->cycle->listeners.nelts; i++) {
        if (ls[i] != run->ls && ls[i]->servers
            && ed_explain_port(ls[i]) == u->port)
        {
            ed_explain_printf(&more, "\nalso on port %d: %s (choose with "
                              "--listen)", u->port, ls[i]->name);
        }
    }
    ed_explain_lit(&run->jout, "}");
    ed_explain_section(&run->out, "listen", head.data ? head.data : "",
                       more.data);
    ed_explain_buf_free(&head);
    ed_explain_buf_free(&more);
}

/* Parses the arguments. ED_OK, ED_DONE (help printed) or ED_ERROR
 * (usage printed). */
static int
ed_explain_args(int argc, char **argv, ed_explain_args_t *a)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "prefix", required_argument, NULL, 'p' },
        { "method", required_argument, NULL, 'm' },
        { "header", required_argument, NULL, 'H' },
        { "remote-addr", required_argument, NULL, 'r' },
        { "listen", required_argument, NULL, 'l' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    memset(a, 0, sizeof(*a));
    a->method = "GET";
    a->remote = "127.0.0.1";
    a->headers = calloc((size_t)argc, sizeof(char *));
    if (a->headers == NULL) {
        return ED_ERROR;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->conf = optarg;
            break;
        case 'p':
            a->prefix = optarg;
            break;
        case 'm':
            a->method = optarg;
            break;
        case 'H':
            if (strchr(optarg, ':') == NULL || optarg[0] == ':') {
                fprintf(stderr, "eddy: invalid --header \"%s\": expected "
                        "'Name: value'\n", optarg);
                return ED_ERROR;
            }
            a->headers[a->nheaders++] = optarg;
            break;
        case 'r':
            a->remote = optarg;
            break;
        case 'l':
            a->listen = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            ed_explain_usage(stdout);
            return ED_DONE;
        default:
            ed_explain_usage(stderr);
            return ED_ERROR;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, optind == argc ? "eddy: explain needs a URL\n"
                                       : "eddy: explain takes one URL\n");
        ed_explain_usage(stderr);
        return ED_ERROR;
    }
    a->url = argv[optind];
    return ED_OK;
}

/* Loads the configuration as -t does. NULL after printing the errors. */
static ed_cycle_t *
ed_explain_load(ed_explain_args_t *a, char *cwd, char *confbuf, size_t len)
{
    ed_cycle_t *cycle;
    ed_conf_t  *errors = NULL;

    if (ed_conf_locate(&a->prefix, &a->conf, cwd, confbuf, len) != ED_OK) {
        return NULL;
    }
    /* As -t: modules check their files and create none. */
    ed_conf_test_only = 1;
    cycle = ed_cycle_load(a->conf, a->prefix, &errors);
    if (cycle == NULL) {
        ed_conf_print_warnings(errors);
        ed_conf_print_errors(errors);
        ed_cycle_errors_free(errors);
        fprintf(stderr, "eddy: configuration file %s test failed\n",
                a->conf);
        return NULL;
    }
    ed_conf_print_warnings(cycle->conf);
    return cycle;
}

/* The request's server and the sections. ED_OK, ED_DECLINED (printed
 * why: a usage error) or ED_ERROR. */
static int
ed_explain_run(ed_explain_run_t *run, ed_explain_args_t *a)
{
    ed_explain_url_t   u;
    ed_http_request_t *r;
    ed_http_server_t  *srv;
    ed_pool_t         *pool = run->cycle->pool;
    ed_str_t           host;
    char              *path;
    int                rc;

    rc = ed_explain_parse_url(a->url, &u);
    if (rc == ED_ERROR) {
        fprintf(stderr, "eddy: invalid URL \"%s\": expected "
                "http[s]://host[:port]/path?query\n", a->url);
        return ED_DECLINED;
    }
    run->ls = ed_explain_listener(run->cycle, a, &u);
    if (run->ls == NULL) {
        return ED_DECLINED;
    }
    if (rc == ED_DECLINED) {
        /* "http://h?q": the target is "/?q". */
        path = ed_pnalloc(pool, u.target.len + 2);
        if (path == NULL) {
            return ED_ERROR;
        }
        path[0] = '/';
        memcpy(path + 1, u.target.data, u.target.len);
        u.target.data = path;
        u.target.len++;
    }
    r = ed_explain_request(pool, run->ls, a, &u);
    if (r == NULL) {
        return ED_DECLINED;
    }
    run->r = r;
    rc = ed_http_host_parse(r->pool, &r->head.host, &host);
    if (rc != ED_OK) {
        fprintf(stderr, "eddy: invalid Host \"%.*s\" (the server answers "
                "400)\n", (int)r->head.host.len, r->head.host.data);
        return ED_DECLINED;
    }
    r->host = host;
    srv = ed_http_find_server(run->ls->servers, r, &host);
    r->server = srv;
    r->loc_conf = srv->loc_conf;
    r->clcf = r->loc_conf[ed_http_core_module.index];
    ed_http_underscores(r);

    ed_explain_lit(&run->jout, "{\"version\":1,");
    ed_explain_listen(run, srv, &u, a);
    ed_explain_servers(run, run->ls->servers, srv, &host);
    ed_explain_lit(&run->jout, ",");

    path = ed_pnalloc(pool, r->head.path.len + 1);
    if (path == NULL) {
        return ED_ERROR;
    }
    if (r->head.method_id == ED_HTTP_CONNECT
        || ed_http_normalize_path(r->head.path.data, r->head.path.len, path,
                                  &r->uri.len) != ED_OK)
    {
        rc = r->head.method_id == ED_HTTP_CONNECT ? 405 : 400;
        ed_explain_printf(&run->out, "%-10s%d %s: %s\n", "result", rc,
                          ed_http_status_text(rc),
                          rc == 405 ? "CONNECT is refused before any "
                                      "location"
                                    : "the path is invalid");
        ed_explain_printf(&run->jout, "\"location\":null,\"handler\":null,"
                          "\"rules\":[],\"result\":{\"status\":%d,"
                          "\"summary\":\"%s\",\"steps\":[]},"
                          "\"redirects\":[],\"status\":%d}", rc,
                          rc == 405 ? "CONNECT is refused"
                                    : "the path is invalid", rc);
        return run->out.failed || run->jout.failed ? ED_ERROR : ED_OK;
    }
    path[r->uri.len] = '\0';
    r->uri.data = path;
    if (ed_explain_passes(run) != ED_OK) {
        return ED_ERROR;
    }
    ed_explain_lit(&run->jout, "}");
    return run->out.failed || run->jout.failed ? ED_ERROR : ED_OK;
}

int
ed_http_explain_main(int argc, char **argv)
{
    ed_explain_args_t a;
    ed_explain_run_t  run;
    char              cwd[PATH_MAX], confbuf[PATH_MAX + 32];
    int               rc;

    /* getopt's messages name the command. */
    argv[0] = (char *)"eddy explain";
    rc = ed_explain_args(argc, argv, &a);
    if (rc != ED_OK) {
        free(a.headers);
        return rc == ED_DONE ? 0 : 1;
    }
    ed_pid = getpid();
    ed_time_update();
    ed_modules_init();
    memset(&run, 0, sizeof(run));
    run.json = a.json;
    run.cycle = ed_explain_load(&a, cwd, confbuf, sizeof(confbuf));
    if (run.cycle == NULL) {
        free(a.headers);
        return 1;
    }
    rc = ed_explain_run(&run, &a);
    if (rc == ED_OK) {
        if (a.json) {
            printf("%s\n", run.jout.data);
        } else {
            fputs(run.out.data, stdout);
        }
    } else if (rc == ED_ERROR) {
        fprintf(stderr, "eddy: explain failed: out of memory\n");
    }
    ed_explain_buf_free(&run.out);
    ed_explain_buf_free(&run.jout);
    ed_cycle_free(run.cycle);
    free(a.headers);
    return rc == ED_OK ? 0 : 1;
}
