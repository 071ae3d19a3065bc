/* Shared fixture of the HTTP routing unit tests: configurations loaded
 * through the real loader, and requests parsed and routed as
 * ed_http_process does. */
#include "http_fixture.h"

#include <sys/stat.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <unistd.h>

ed_cycle_t *ed_test_cycle;
ed_pool_t  *ed_test_rpool;

void
ed_test_http_setup(void)
{
    ed_modules_init();
    ed_test_cycle = NULL;
    ed_test_rpool = ed_pool_create(4096);
    ck_assert_ptr_nonnull(ed_test_rpool);
}

void
ed_test_http_teardown(void)
{
    if (ed_test_cycle) {
        ed_cycle_free(ed_test_cycle);
        ed_test_cycle = NULL;
    }
    if (ed_test_rpool) {
        ed_pool_destroy(ed_test_rpool);
        ed_test_rpool = NULL;
    }
}

const char *
ed_test_http_prefix(void)
{
    static char dir[] = "/tmp/ed_test_prefix.XXXXXX";
    static int  made;
    char        logs[sizeof(dir) + 8];

    if (!made) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(logs, sizeof(logs), "%s/logs", dir);
        ck_assert_int_eq(mkdir(logs, 0755), 0);
        made = 1;
    }
    return dir;
}

/* Loads yaml through a temporary file; the test fails with the loader's
 * messages when the configuration is rejected. */
void
ed_test_http_load(const char *yaml)
{
    char       path[] = "/tmp/ed_test_http.XXXXXX", msg[2048];
    ed_conf_t *errors = NULL;
    size_t     off = 0, len = strlen(yaml), m = 0;
    ssize_t    n;
    unsigned   i;
    int        fd;

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    while (off < len) {
        n = write(fd, yaml + off, len - off);
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
    close(fd);
    ed_test_cycle = ed_cycle_load(path, ed_test_http_prefix(), &errors);
    unlink(path);
    if (ed_test_cycle == NULL) {
        msg[0] = '\0';
        for (i = 0; errors && i < errors->nerrors && i < ED_CONF_MAX_ERRORS
                    && m < sizeof(msg);
             i++)
        {
            m += (size_t)snprintf(msg + m, sizeof(msg) - m, "%s; ",
                                  errors->errors[i]);
        }
        ed_cycle_errors_free(errors);
        ck_abort_msg("configuration rejected: %s", msg);
    }
}

ed_listener_t *
ed_test_http_listener(const char *name)
{
    ed_listener_t **ls = ed_test_cycle->listeners.elts;
    size_t          i;

    for (i = 0; i < ed_test_cycle->listeners.nelts; i++) {
        if (strcmp(ls[i]->name, name) == 0) {
            ck_assert_ptr_nonnull(ls[i]->servers);
            return ls[i];
        }
    }
    ck_abort_msg("no listener \"%s\"", name);
    return NULL;
}

/* The Host as ed_http_request.c keeps it: lowercased, port and trailing
 * dots removed. */
static void
set_host(ed_http_request_t *r)
{
    const char *h = r->head.host.data, *colon;
    size_t      len = r->head.host.len;

    if (len && h[0] != '[' && (colon = memchr(h, ':', len)) != NULL) {
        len = (size_t)(colon - h);
    }
    while (len && h[len - 1] == '.') {
        len--;
    }
    r->host.data = ed_pnalloc(ed_test_rpool, len + 1);
    ck_assert_ptr_nonnull(r->host.data);
    ed_strlow(r->host.data, h, len);
    r->host.data[len] = '\0';
    r->host.len = len;
}

/* Parses a request head arriving on listener ls and routes it as
 * ed_http_process does: server by Host, location by normalised path. */
ed_http_request_t *
ed_test_http_route(ed_listener_t *ls, const char *raw)
{
    ed_http_conn_t    *hc = ed_pcalloc(ed_test_rpool, sizeof(ed_http_conn_t));
    ed_http_request_t *r = ed_pcalloc(ed_test_rpool, sizeof(ed_http_request_t));
    ed_http_header_t  *hdrs = ed_pcalloc(ed_test_rpool, 32 * sizeof(*hdrs));
    char              *buf = ed_pstrdup(ed_test_rpool, raw, strlen(raw)), *path;
    int                rc;

    ck_assert(hc && r && hdrs && buf);
    hc->c.ls = ls;
    hc->c.stream.ev.fd = -1;
    hc->c.peer.in.sin_family = AF_INET;
    hc->c.peer.in.sin_port = htons(40000);
    hc->c.peer.in.sin_addr.s_addr = htonl(0xc000020a);
    hc->r = r;
    r->hc = hc;
    r->pool = ed_test_rpool;
    r->content_length = -1;
    r->start_msec = ed_current_msec;

    rc = ed_http_parse_request(buf, strlen(buf), &r->head, hdrs, 32);
    ck_assert_msg(rc == ED_OK, "parse of \"%s\": %d", raw, rc);
    set_host(r);
    r->server = ed_http_find_server(ed_http_conn_addr(hc), r, &r->host);
    ck_assert_ptr_nonnull(r->server);
    r->loc_conf = r->server->loc_conf;

    path = ed_pnalloc(ed_test_rpool, r->head.path.len + 1);
    ck_assert_ptr_nonnull(path);
    ck_assert_int_eq(ed_http_normalize_path(r->head.path.data,
                                            r->head.path.len, path,
                                            &r->uri.len),
                     ED_OK);
    path[r->uri.len] = '\0';
    r->uri.data = path;
    r->loc = ed_http_find_location(r->server, r, &r->uri);
    ck_assert_ptr_nonnull(r->loc);
    ck_assert_ptr_nonnull(r->loc->conf);
    r->loc_conf = r->loc->conf;
    return r;
}
