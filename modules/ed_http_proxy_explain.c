/* eddy explain for the proxy module: the upstream group, its servers,
 * and the request head it would send, built by the code that builds it
 * for real (ed_http_upstream_request_head), contacting nothing. */
#include "ed_http_proxy.h"

static const char *ed_proxy_balance_names[] = {
    "round_robin", "least_conn", "ip_hash", "hash", "random_two"
};

static void
ed_proxy_explain_settings(ed_explain_t *ex, ed_http_proxy_conf_t *pcf)
{
    ed_http_upstream_t *ups = pcf->ups;

    ed_explain_handler(ex, "proxy");
    ed_explain_set(ex, "pass", pcf->pass.data,
                   ed_explain_from(ex, "proxy", "pass", NULL, 0));
    ed_explain_upstream(ex, ups, ed_proxy_balance_names[ups->balance % 5],
                        "made for the URL in pass");
    ed_explain_key(ex, "proxy", "set_headers");
    ed_explain_key(ex, "proxy", "remove_headers");
    ed_explain_key(ex, "proxy", "pass_host");
    ed_explain_key(ex, "proxy", "forwarded");
    ed_explain_key(ex, "proxy", "read_timeout");
    ed_explain_key(ex, "proxy", "next_upstream");
}

/* The head sent upstream, as ed_proxy_send_head makes it for the first
 * attempt (the first server of the group stands for the one the
 * balancer would pick). */
static void
ed_proxy_explain_result(ed_explain_t *ex, ed_http_proxy_conf_t *pcf)
{
    ed_http_request_t      *r = ex->r;
    ed_http_upstream_t     *ups = pcf->ups;
    const ed_http_proxy_header_t *bad;
    ed_http_upstream_req_t        q;
    char                         *head, *p, *end, *nl, *t;
    size_t                        len;

    if (ed_http_proxy_request_init(r, pcf, &ups->servers[0].host, &q, &bad)
        != ED_OK)
    {
        if (bad == NULL) {
            ed_explain_result(ex, 500, "out of memory");
        } else {
            ed_explain_result(ex, 500, "set_headers \"%.*s\" cannot be "
                              "evaluated", (int)bad->name.len,
                              bad->name.data);
        }
        return;
    }
    head = ed_http_upstream_request_head(r, &q, &len);
    if (head == NULL) {
        ed_explain_result(ex, 500, "out of memory");
        return;
    }
    ed_explain_result(ex, 0, "proxied to upstream %.*s (%.*s first of %zu), "
                      "not contacted: the status is the upstream's",
                      (int)ups->name.len, ups->name.data,
                      (int)ups->servers[0].name.len,
                      ups->servers[0].name.data, ups->nservers);
    ed_explain_field(ex, "upstream", ups->name.data, ups->name.len);
    ed_explain_field(ex, "server", ups->servers[0].name.data,
                     ups->servers[0].name.len);
    end = head + len;
    for (p = head; p < end; p = nl + 2) {
        nl = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (nl == NULL || nl == p) {
            break;
        }
        if (p == head) {
            ed_explain_field(ex, "request_line", p, (size_t)(nl - p));
            /* "METHOD TARGET HTTP/1.1" */
            t = memchr(p, ' ', (size_t)(nl - p));
            if (t && nl - t > 10) {
                ed_explain_field(ex, "target", t + 1,
                                 (size_t)(nl - t - 10));
            }
        }
        ed_explain_step(ex, "%.*s", (int)(nl - p), p);
    }
}

int
ed_http_proxy_explain(ed_explain_t *ex)
{
    ed_http_proxy_loc_conf_t *lcf;

    if (ex->loc->handler != ed_http_proxy_handler) {
        return ED_DECLINED;
    }
    lcf = ed_http_conf_at(ex->loc, ed_http_proxy_module);
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_proxy_explain_settings(ex, lcf->block);
        return ED_OK;
    }
    if (ex->phase == ED_EXPLAIN_RESULT) {
        ed_proxy_explain_result(ex, lcf->block);
        return ED_OK;
    }
    return ED_DECLINED;
}
