/* eddy explain for the fastcgi module: the group, the script found (and
 * check_script's verdict) and the params the application would get,
 * computed by the handler's own code, contacting nothing. */
#include "ed_http_fastcgi.h"

static void
ed_fcgi_explain_settings(ed_explain_t *ex, ed_http_fastcgi_conf_t *fcf)
{
    ed_http_upstream_t *ups = fcf->ups;
    char                tail[32];

    ed_explain_handler(ex, "fastcgi");
    ed_explain_set(ex, "pass", fcf->pass.data,
                   ed_explain_from(ex, "fastcgi", "pass", NULL, 0));
    snprintf(tail, sizeof(tail), "keepalive %d", ups->keepalive);
    ed_explain_upstream(ex, ups, tail, "made for the address in pass");
    ed_explain_set(ex, "check_script", fcf->check_script == 1 ? "true"
                                                             : "false",
                   ed_explain_from(ex, "fastcgi", "check_script", NULL, 0));
    ed_explain_key(ex, "fastcgi", "root");
    ed_explain_key(ex, "fastcgi", "index");
    ed_explain_key(ex, "fastcgi", "split_path_info");
    ed_explain_key(ex, "fastcgi", "read_timeout");
    ed_explain_key(ex, "fastcgi", "next_upstream");
}

static int
ed_fcgi_explain_param(void *data, const char *name, size_t nlen,
                      const char *value, size_t vlen)
{
    ed_explain_t *ex = data;

    ed_explain_step(ex, "%.*s=%s", (int)nlen, name,
                    ed_explain_quote(ex, value, vlen, 200));
    return ED_OK;
}

static void
ed_fcgi_explain_result(ed_explain_t *ex, ed_http_fastcgi_conf_t *fcf)
{
    ed_http_request_t  *r = ex->r;
    ed_http_upstream_t *ups = fcf->ups;
    const char         *file = "";
    int                 rc;

    rc = ed_http_fastcgi_script(r, fcf, false, &file);
    if (rc == 404) {
        ed_explain_result(ex, 404, "fastcgi script %s is not a regular "
                          "file (check_script)",
                          ed_explain_quote(ex, file, strlen(file), 512));
        return;
    }
    if (rc != ED_OK) {
        ed_explain_result(ex, 500, "out of memory");
        return;
    }
    ed_explain_result(ex, 0, "passed to FastCGI application %.*s (%.*s "
                      "first of %zu), not contacted: the status is the "
                      "application's", (int)ups->name.len, ups->name.data,
                      (int)ups->servers[0].name.len,
                      ups->servers[0].name.data, ups->nservers);
    ed_explain_field(ex, "upstream", ups->name.data, ups->name.len);
    ed_explain_field(ex, "script", file, strlen(file));
    if (ed_http_fastcgi_params(r, fcf, ed_fcgi_explain_param, ex) != ED_OK) {
        ed_explain_step(ex, "(a param cannot be evaluated)");
    }
}

int
ed_http_fastcgi_explain(ed_explain_t *ex)
{
    ed_http_fastcgi_loc_conf_t *lcf;

    if (ex->loc->handler != ed_http_fastcgi_handler) {
        return ED_DECLINED;
    }
    lcf = ed_http_conf_at(ex->loc, ed_http_fastcgi_module);
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_fcgi_explain_settings(ex, lcf->block);
        return ED_OK;
    }
    if (ex->phase == ED_EXPLAIN_RESULT) {
        ed_fcgi_explain_result(ex, lcf->block);
        return ED_OK;
    }
    return ED_DECLINED;
}
