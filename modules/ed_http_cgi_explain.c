/* eddy explain for the cgi module: its settings, and the script the
 * walk finds for the request (ed_http_cgi_find, as the handler calls
 * it), running nothing. */
#include "ed_http_cgi_handler.h"

#include <unistd.h>

static void
ed_cgi_explain_settings(ed_explain_t *ex, const ed_http_cgi_conf_t *ccf)
{
    static const char *symlinks[] = { "follow", "owner", "deny" };
    char               n[32];

    ed_explain_handler(ex, "cgi");
    ed_explain_key(ex, "cgi", "root");
    ed_explain_key(ex, "cgi", "alias");
    ed_explain_key(ex, "cgi", "index");
    ed_explain_key(ex, "cgi", "interpreters");
    ed_explain_key(ex, "cgi", "env");
    snprintf(n, sizeof(n), "%d", ccf->max_processes);
    ed_explain_set(ex, "max_processes", n,
                   ed_explain_from(ex, "cgi", "max_processes", NULL, 0));
    ed_http_cgi_duration(ccf->timeout, n, sizeof(n));
    ed_explain_set(ex, "timeout", n,
                   ed_explain_from(ex, "cgi", "timeout", NULL, 0));
    ed_explain_set(ex, "symlinks", symlinks[ccf->symlinks % 3],
                   ed_explain_from(ex, "cgi", "symlinks", NULL, 0));
}

static void
ed_cgi_explain_result(ed_explain_t *ex, const ed_http_cgi_conf_t *ccf)
{
    ed_http_cgi_script_t f;
    int                  rc;

    rc = ed_http_cgi_find(ex->r, ccf, &f);
    if (rc != ED_OK) {
        ed_explain_result(ex, rc, rc == 404 ? "no script: the URI leaves "
                          "the root" : "out of memory");
        return;
    }
    if (f.w.verdict == ED_CGI_NOT_FOUND) {
        ed_explain_result(ex, 404, "cgi script %s not found",
                          ed_explain_quote(ex, f.script, f.script_len, 512));
        return;
    }
    if (f.w.verdict != ED_CGI_OK) {
        ed_explain_result(ex, ed_http_cgi_walk_status(f.w.verdict),
                          "cgi script %s %s",
                          ed_explain_quote(ex, f.script, f.script_len, 512),
                          ed_http_cgi_walk_reason(f.w.verdict));
        return;
    }
    ed_explain_result(ex, 0, "runs cgi script %s, not started here: the "
                      "status is the script's",
                      ed_explain_quote(ex, f.script, f.script_len, 512));
    ed_explain_field(ex, "script", f.script, f.script_len);
    ed_explain_field(ex, "script_name", f.script_name.data,
                     f.script_name.len);
    ed_explain_field(ex, "path_info", f.path_info.data, f.path_info.len);
    ed_explain_step(ex, "SCRIPT_NAME %s",
                    ed_explain_quote(ex, f.script_name.data,
                                     f.script_name.len, 512));
    ed_explain_step(ex, "PATH_INFO %s",
                    ed_explain_quote(ex, f.path_info.data, f.path_info.len,
                                     512));
    if (geteuid() == 0) {
        ed_explain_step(ex, "permissions judged as root here; the workers "
                        "run scripts as \"user\"");
    }
}

int
ed_http_cgi_explain(ed_explain_t *ex)
{
    ed_http_cgi_loc_conf_t *lcf;

    if (ex->loc->handler != ed_http_cgi_handler) {
        return ED_DECLINED;
    }
    lcf = ed_http_conf_at(ex->loc, ed_http_cgi_module);
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_cgi_explain_settings(ex, lcf->block);
        return ED_OK;
    }
    if (ex->phase == ED_EXPLAIN_RESULT) {
        ed_cgi_explain_result(ex, lcf->block);
        return ED_OK;
    }
    return ED_DECLINED;
}
