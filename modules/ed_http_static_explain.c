/* eddy explain for the static module: its effective settings, and what
 * its handler would answer, found with the handler's own mapping and
 * opening code (ed_http_static.c, ed_http_file_cache.c) as the calling
 * user, sending nothing. */
#include "ed_http_static.h"

#include <unistd.h>

/* Says why opening path gave 403: the file's permissions for the
 * calling user, or the symlinks policy. */
static void
ed_static_explain_denied(ed_explain_t *ex, const ed_http_static_conf_t *scf,
                         const ed_str_t *path)
{
    static const char *policy[] = { "follow", "owner", "deny" };

    if (access(path->data, R_OK) != 0 && errno == EACCES) {
        ed_explain_result(ex, 403, "%s: permission denied for the calling "
                          "user (uid %u)", path->data, (unsigned)geteuid());
        return;
    }
    ed_explain_result(ex, 403, "%s: a symbolic link on the way is refused "
                      "by symlinks: %s", path->data,
                      policy[scf->symlinks % 3]);
}

/* Opens path as the handler does. ED_OK with *f (released by the
 * caller), or a status. */
static int
ed_static_explain_open(const ed_http_static_conf_t *scf, const ed_str_t *path,
                       size_t root_len, ed_http_file_t **f)
{
    return ed_http_file_open(path->data, path->len, root_len, scf->symlinks,
                             f);
}

/* 200 for the regular file f at path. */
static void
ed_static_explain_file(ed_explain_t *ex, const ed_http_static_conf_t *scf,
                       const ed_http_file_t *f, const ed_str_t *path)
{
    const ed_str_t *type;
    char            size[32];

    type = ed_http_static_type(scf, path);
    ed_explain_result(ex, 200, "%s (%s, %.*s)", path->data,
                      ed_explain_size(f->size, size, sizeof(size)),
                      (int)type->len, type->data);
    ed_explain_field(ex, "file", path->data, path->len);
    ed_explain_field_int(ex, "size", f->size);
    ed_explain_field(ex, "type", type->data, type->len);
}

/* A URI ending with '/' mapped to path: an index file (an internal
 * redirect), the listing, else 403 or 404. */
static void
ed_static_explain_dir(ed_explain_t *ex, ed_http_static_conf_t *scf,
                      ed_str_t *path, size_t root_len)
{
    ed_http_request_t *r = ex->r;
    ed_http_file_t    *f;
    ed_str_t          *idx, ip, uri;
    size_t             i, base = path->len;
    int                rc;

    idx = scf->index ? scf->index->elts : NULL;
    for (i = 0; idx && i < scf->index->nelts; i++) {
        ed_http_static_index_path(path, base, &idx[i], &ip);
        rc = ed_static_explain_open(scf, &ip, root_len, &f);
        if (rc == ED_OK && !f->is_dir) {
            ed_http_file_release(f);
            ed_explain_step(ex, "index %s: %s exists", idx[i].data,
                            ip.data);
            path->data[base] = '\0';
            if (ed_http_static_index_uri(r, &idx[i], &uri) != ED_OK) {
                ed_explain_result(ex, 500, "out of memory");
                return;
            }
            ed_explain_redirect(ex, &uri, NULL, "index file");
            return;
        }
        if (rc == ED_OK) {
            ed_http_file_release(f);
        }
        ed_explain_step(ex, "index %s: %s %s", idx[i].data, ip.data,
                        rc == ED_OK ? "is a directory"
                        : rc == 404 ? "not found" : "cannot be opened");
        path->data[base] = '\0';
        if (rc != ED_OK && rc != 404) {
            ed_explain_result(ex, rc, "index file %s cannot be opened",
                              ip.data);
            return;
        }
    }
    path->data[base] = '\0';
    if (scf->autoindex != ED_STATIC_AUTOINDEX_OFF) {
        ed_explain_result(ex, 200, "listing of directory %s (autoindex: "
                          "%s)", path->data,
                          scf->autoindex == ED_STATIC_AUTOINDEX_JSON
                              ? "json" : "html");
        ed_explain_field(ex, "file", path->data, path->len);
        return;
    }
    rc = ed_static_explain_open(scf, path, root_len, &f);
    if (rc == 403) {
        ed_static_explain_denied(ex, scf, path);
        return;
    }
    if (rc != ED_OK) {
        ed_explain_result(ex, rc, "%s: no such directory", path->data);
        return;
    }
    if (f->is_dir) {
        ed_explain_result(ex, 403, "%s is a directory without an index "
                          "file, and autoindex is off", path->data);
    } else {
        ed_explain_result(ex, 404, "%s is not a directory", path->data);
    }
    ed_explain_field(ex, "file", path->data, path->len);
    ed_http_file_release(f);
}

/* The URI itself: a directory, a 301 for one without its slash, or a
 * file. */
static void
ed_static_explain_serve(ed_explain_t *ex, ed_http_static_conf_t *scf,
                        const ed_str_t *uri)
{
    ed_http_file_t *f;
    ed_str_t        path;
    size_t          root_len;
    int             rc;

    if (ed_http_static_dotfile(scf, uri)) {
        ed_explain_result(ex, 404, "\"%s\" has a name starting with \".\" "
                          "(dotfiles: deny)", uri->data);
        return;
    }
    rc = ed_http_static_map(ex->r, scf, uri, &path, &root_len);
    if (rc != ED_OK) {
        ed_explain_result(ex, rc, "\"%s\" does not map to a file under "
                          "the %s", uri->data,
                          scf->alias.len ? "alias" : "root");
        return;
    }
    if (uri->len && uri->data[uri->len - 1] == '/') {
        ed_static_explain_dir(ex, scf, &path, root_len);
        return;
    }
    rc = ed_static_explain_open(scf, &path, root_len, &f);
    if (rc == 403) {
        ed_static_explain_denied(ex, scf, &path);
        return;
    }
    if (rc != ED_OK) {
        ed_explain_result(ex, rc, "%s: %s", path.data,
                          rc == 404 ? "no such file" : strerror(errno));
        ed_explain_field(ex, "file", path.data, path.len);
        return;
    }
    if (f->is_dir) {
        ed_explain_result(ex, 301, "%s is a directory: Location: %s/%s%.*s",
                          path.data, uri->data,
                          ex->r->head.query.len ? "?" : "",
                          (int)ex->r->head.query.len,
                          ex->r->head.query.data);
    } else {
        ed_static_explain_file(ex, scf, f, &path);
    }
    ed_http_file_release(f);
}

/* try_files: each candidate, then the fallback. */
static void
ed_static_explain_try(ed_explain_t *ex, ed_http_static_conf_t *scf)
{
    ed_http_request_t    *r = ex->r;
    ed_http_static_try_t *t = scf->try_files->elts;
    ed_http_file_t       *f;
    ed_node_t            *items;
    ed_str_t              u, path, args;
    size_t                i, n = scf->try_files->nelts, root_len;
    const char           *item;
    int                   rc;
    bool                  dir, q;

    ed_explain_from(ex, "static", "try_files", &items, 0);
    for (i = 0; i + 1 < n; i++) {
        item = items && items->type == ED_NODE_SEQ && i < items->n
                   ? items->items[i]->value.data : "?";
        if (t[i].uri == NULL
            || ed_http_template_run(r, t[i].uri, &u) != ED_OK)
        {
            ed_explain_result(ex, 500, "try_files \"%s\" cannot be "
                              "evaluated", item);
            return;
        }
        if (!ed_http_static_uri_ok(&u)) {
            ed_explain_step(ex, "try_files %s: \"%.*s\" is not a usable "
                            "path", item, (int)u.len, u.data);
            continue;
        }
        if (ed_http_static_dotfile(scf, &u)) {
            ed_explain_step(ex, "try_files %s: \"%.*s\" refused (dotfiles: "
                            "deny)", item, (int)u.len, u.data);
            continue;
        }
        rc = ed_http_static_map(r, scf, &u, &path, &root_len);
        if (rc == 500) {
            ed_explain_result(ex, 500, "try_files %s: \"%.*s\" cannot be "
                              "mapped", item, (int)u.len, u.data);
            return;
        }
        if (rc != ED_OK) {
            ed_explain_step(ex, "try_files %s: \"%.*s\" is not under the "
                            "alias", item, (int)u.len, u.data);
            continue;
        }
        rc = ed_static_explain_open(scf, &path, root_len, &f);
        if (rc == 500) {
            /* As the server: a candidate that fails to open for another
             * reason than absence or refusal ends the request. */
            ed_explain_result(ex, 500, "try_files %s: %s cannot be opened "
                              "(%s)", item, path.data, strerror(errno));
            ed_explain_field(ex, "file", path.data, path.len);
            return;
        }
        if (rc != ED_OK) {
            ed_explain_step(ex, "try_files %s: %s %s", item, path.data,
                            rc == 404 ? "not found"
                                        : "refused (permissions or "
                                          "symlinks)");
            continue;
        }
        dir = u.data[u.len - 1] == '/';
        if (dir != (bool)f->is_dir) {
            ed_explain_step(ex, "try_files %s: %s %s", item, path.data,
                            dir ? "is not a directory" : "is a directory");
            ed_http_file_release(f);
            continue;
        }
        ed_explain_step(ex, "try_files %s: %s exists", item, path.data);
        r->uri = u;
        if (dir) {
            ed_http_file_release(f);
            ed_static_explain_dir(ex, scf, &path, root_len);
            return;
        }
        ed_static_explain_file(ex, scf, f, &path);
        ed_http_file_release(f);
        return;
    }
    item = items && items->type == ED_NODE_SEQ && n - 1 < items->n
               ? items->items[n - 1]->value.data : "?";
    if (t[n - 1].status) {
        ed_explain_result(ex, t[n - 1].status, "%s: no try_files candidate "
                          "exists; the last item is \"%s\"",
                          ed_http_status_text(t[n - 1].status), item);
        return;
    }
    if (ed_http_template_run(r, t[n - 1].uri, &u) != ED_OK) {
        ed_explain_result(ex, 500, "try_files \"%s\" cannot be evaluated",
                          item);
        return;
    }
    q = ed_http_split_args(&u, &args);
    if (!ed_http_static_uri_ok(&u)) {
        ed_explain_result(ex, 404, "the try_files fallback \"%.*s\" is not "
                          "a usable path", (int)u.len, u.data);
        return;
    }
    ed_explain_redirect(ex, &u, q ? &args : NULL, "try_files fallback");
}

/* One setting, with the text written or def when nothing is. */
static void
ed_static_explain_key(ed_explain_t *ex, const char *key, const char *def,
                      bool always)
{
    ed_node_t  *node;
    const char *from = ed_explain_from(ex, "static", key, &node, 0);

    if (node || always) {
        ed_explain_set(ex, key, node ? ed_explain_node_text(ex, node) : def,
                       from);
    }
}

static void
ed_static_explain_settings(ed_explain_t *ex, ed_http_static_conf_t *scf)
{
    ed_http_core_loc_conf_t *clcf;
    const char              *from;

    ed_explain_handler(ex, "static");
    if (scf->alias.len) {
        from = ed_explain_from(ex, "static", "alias", NULL, 0);
        ed_explain_set(ex, "alias", scf->alias.data, from);
    } else if (scf->root.len) {
        from = ed_explain_from(ex, "static", "root", NULL, 0);
        ed_explain_set(ex, "root", scf->root.data, from);
    } else {
        clcf = ed_http_conf_at(ex->loc, ed_http_core_module);
        from = ed_explain_from(ex, NULL, "root", NULL, 0);
        ed_explain_set(ex, "root", clcf->root.data, from);
    }
    ed_static_explain_key(ex, "index", "[index.html]", true);
    ed_static_explain_key(ex, "try_files", NULL, false);
    ed_static_explain_key(ex, "autoindex", NULL, false);
    ed_static_explain_key(ex, "expires", "off", true);
    ed_static_explain_key(ex, "dotfiles", NULL, false);
    ed_static_explain_key(ex, "symlinks", NULL, false);
    ed_static_explain_key(ex, "methods", NULL, false);
    ed_static_explain_key(ex, "precompressed", NULL, false);
}

int
ed_http_static_explain(ed_explain_t *ex)
{
    ed_http_static_loc_conf_t *lcf;
    ed_http_static_conf_t     *scf;
    ed_http_request_t         *r = ex->r;

    if (ex->loc->handler != ed_http_static_handler
        || (ex->phase != ED_EXPLAIN_HANDLER
            && ex->phase != ED_EXPLAIN_RESULT))
    {
        return ED_DECLINED;
    }
    lcf = ed_http_conf_at(ex->loc, ed_http_static_module);
    scf = lcf->active;
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_static_explain_settings(ex, scf);
        return ED_OK;
    }
    if (!r->error_status && !ed_http_static_method_ok(scf, r)) {
        ed_explain_result(ex, 405, "%.*s is not allowed here; Allow: %s",
                          (int)r->head.method.len, r->head.method.data,
                          scf->allow.data);
        ed_explain_field(ex, "allow", scf->allow.data, scf->allow.len);
        return ED_OK;
    }
    if (memchr(r->uri.data, '\\', r->uri.len) != NULL) {
        ed_explain_result(ex, 400, "a backslash in the path is refused");
        return ED_OK;
    }
    if (scf->try_files && scf->try_files->nelts) {
        ed_static_explain_try(ex, scf);
    } else {
        ed_static_explain_serve(ex, scf, &r->uri);
    }
    return ED_OK;
}
