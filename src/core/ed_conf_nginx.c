/* nginx's directive names, for an unknown key that is one: the message
 * says what eddy calls it instead of guessing at a misspelling. */
#include "ed_core.h"
#include "ed_conf.h"
#include "ed_module.h"

typedef struct {
    const char *nginx;
    /* "proxy.pass" is proxy: {pass: ...}; NULL: the note alone. */
    const char *eddy;
    const char *form;  /* how to write it, when the name says too little */
    const char *what;  /* "an item of": eddy's is a place, not a key */
} ed_conf_nginx_t;

static const ed_conf_nginx_t ed_conf_nginx_names[] = {
    {"worker_processes", "workers", NULL, NULL},
    {"worker_connections", "events.max_connections", NULL, NULL},
    {"pid", "pid_file", NULL, NULL},
    {"server_name", "names", NULL, NULL},
    {"location", "locations", NULL, "a key of"},
    {"upstream", "upstreams.NAME", "upstreams: {NAME: ...}", NULL},
    {"proxy_pass", "proxy.pass", NULL, NULL},
    {"proxy_set_header", "proxy.set_headers", NULL, NULL},
    {"proxy_read_timeout", "proxy.read_timeout", NULL, NULL},
    {"fastcgi_pass", "fastcgi.pass", NULL, NULL},
    {"fastcgi_param", "fastcgi.params", NULL, NULL},
    {"fastcgi_index", "fastcgi.index", NULL, NULL},
    {"fastcgi_split_path_info", "fastcgi.split_path_info", NULL, NULL},
    {"map", "maps.NAME", "maps: {NAME: ...}", NULL},
    {"add_header", "headers.add",
     "headers: {add: ...}; \"headers.set\" replaces", NULL},
    {"try_files", "static.try_files", NULL, NULL},
    {"index", "static.index", NULL, NULL},
    {"alias", "static.alias", NULL, NULL},
    {"autoindex", "static.autoindex", NULL, NULL},
    {"expires", "static.expires", NULL, NULL},
    {"error_page", "error_pages", NULL, NULL},
    {"ssl_certificate", "tls.certificate", NULL, NULL},
    {"ssl_certificate_key", "tls.key", NULL, NULL},
    {"allow", "access", "access: [{allow: ...}, {deny: all}]", NULL},
    {"deny", "access", "access: [{allow: ...}, {deny: all}]", NULL},
    {"gzip", "gzip.enabled", NULL, NULL},
    {"gzip_types", "gzip.types", NULL, NULL},
    {"server", "servers", NULL, "an item of"},
    {"ssl_protocols", "tls.protocols", NULL, NULL},
    {"limit_req_zone", "limit_req", "its key and rate; no zone to declare",
     NULL},
    {"limit_conn_zone", "limit_conn",
     "its key and zone_size; no zone to declare", NULL},
    {"auth_basic_user_file", "auth_basic.user_file", NULL, NULL},
    {"auth_request_set", "auth_request.copy_headers",
     "copy_headers: [NAME] sets the request's NAME from the answer", NULL},
    {"set_real_ip_from", "real_ip.from", NULL, NULL},
    {"real_ip_header", "real_ip.header", NULL, NULL},
    {"stub_status", "status", "status: prometheus, json or html", NULL},
    {"ssl_session_ticket_key", "session_ticket_key_file", NULL, NULL},
    {"sendfile", NULL, "sendfile is always on in eddy", NULL},
    {"if", NULL, "eddy has no if: a map chooses a value by a variable "
     "(maps), rewrite rules match the URI", NULL},
    {NULL, NULL, NULL, NULL}};

/* "main level", "server or location level": where the eddy key whose
 * top-level name is top may appear, when not in ctx; "" when it may, or
 * is not a key of this build. Returns buf. */
static char *
ed_conf_nginx_level(const char *top, size_t len, unsigned ctx, char *buf,
                    size_t size)
{
    static const char *names[] = {"main", "server", "location", "upstream"};
    const ed_key_t *key;
    char name[64];
    size_t i, n, count, seen;

    buf[0] = '\0';
    if (ctx == 0 || len >= sizeof(name)) {
        return buf;
    }
    memcpy(name, top, len);
    name[len] = '\0';
    key = ed_module_find_key(name, ctx, NULL);
    if (key == NULL || (key->ctx & ctx)) {
        return buf;
    }
    count = 0;
    for (i = 0; i < ed_nelems(names); i++) {
        count += (key->ctx >> i) & 1;
    }
    n = 0;
    seen = 0;
    for (i = 0; i < ed_nelems(names) && n < size; i++) {
        if (!(key->ctx & (1u << i))) {
            continue;
        }
        seen++;
        n += (size_t)snprintf(buf + n, size - n, "%s%s",
                              seen == 1 ? "" : seen == count ? " or " : ", ",
                              names[i]);
    }
    if (n < size) {
        snprintf(buf + n, size - n, " level");
    }
    return buf;
}

const char *
ed_conf_nginx_hint(const char *name, unsigned ctx, char *buf, size_t size)
{
    const ed_conf_nginx_t *e;
    const char *dot;
    char level[80], form[128];
    size_t top;

    for (e = ed_conf_nginx_names; e->nginx; e++) {
        if (strcmp(e->nginx, name) == 0) {
            break;
        }
    }
    if (e->nginx == NULL) {
        return NULL;
    }
    if (e->eddy == NULL) {
        snprintf(buf, size, "%s", e->form);
        return buf;
    }
    dot = strchr(e->eddy, '.');
    top = dot ? (size_t)(dot - e->eddy) : strlen(e->eddy);
    ed_conf_nginx_level(e->eddy, top, ctx, level, sizeof(level));
    if (e->form) {
        snprintf(form, sizeof(form), "%s", e->form);
    } else if (dot) {
        /* A dotted name is a key of a block. */
        snprintf(form, sizeof(form), "%.*s: {%s: ...}", (int)top, e->eddy,
                 dot + 1);
    } else {
        form[0] = '\0';
    }
    snprintf(buf, size, "eddy calls it %s%s\"%s\"%s%s%s%s%s",
             e->what ? e->what : "", e->what ? " " : "", e->eddy,
             form[0] || level[0] ? " (" : "", form,
             form[0] && level[0] ? ", " : "", level,
             form[0] || level[0] ? ")" : "");
    return buf;
}
