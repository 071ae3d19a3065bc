/* The cgi module's configuration: the `cgi` block of a location, its
 * checks (fastcgi-cgi.md, cgi: the -t messages) and installing the
 * handler (ed_http_cgi.c).
 *
 *   cgi: {root | alias, index: [], interpreters: {.py: /usr/bin/python3},
 *         env: {NAME: value}, max_processes: 16, timeout: 60s,
 *         kill_after: 5s, symlinks: owner, pass_authorization: false,
 *         buffer_size: 64k,
 *         limits: {cpu, memory, files, processes, file_size}}
 */
#include "ed_http_cgi_handler.h"
#include "ed_http_cgi.h"

#include <pwd.h>
#include <unistd.h>

static const char *ed_cgi_check(ed_conf_t *cf, ed_node_t *node,
                                void *block);
static const char *ed_cgi_set_index(ed_conf_t *cf, const ed_key_t *key,
                                    ed_node_t *node, void *conf);
static const char *ed_cgi_set_interpreters(ed_conf_t *cf,
                                           const ed_key_t *key,
                                           ed_node_t *node, void *conf);
static const char *ed_cgi_set_env(ed_conf_t *cf, const ed_key_t *key,
                                  ed_node_t *node, void *conf);
static int ed_cgi_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_cgi_init_worker(ed_worker_t *w);
static void ed_cgi_exit_worker(ed_worker_t *w);

static const ed_conf_enum_t ed_cgi_symlinks[] = {
    { "follow", ED_HTTP_SYMLINKS_FOLLOW },
    { "owner", ED_HTTP_SYMLINKS_OWNER },
    { "deny", ED_HTTP_SYMLINKS_DENY },
    { NULL, 0 }
};

static const ed_conf_bounds_t ed_cgi_max_bounds = { 1, 1024 };
static const ed_conf_bounds_t ed_cgi_buffer_bounds = { 1024, 67108864 };
static const ed_conf_bounds_t ed_cgi_count_bounds = { 1, 1048576 };

#define ED_CGI_LKEY(name, flags, set, field, arg)                            \
    { name, ED_CTX_LOCATION, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_cgi_limits_t, field), arg, NULL }

/* limits: each one optional (RLIMIT_CPU, _AS, _NOFILE, _NPROC, _FSIZE). */
static const ed_key_t ed_cgi_limit_keys[] = {
    ED_CGI_LKEY("cpu", ED_KEY_MSEC, ed_conf_set_msec, cpu, NULL),
    ED_CGI_LKEY("memory", ED_KEY_SIZE, ed_conf_set_size, memory, NULL),
    ED_CGI_LKEY("files", ED_KEY_INT, ed_conf_set_int, files,
                &ed_cgi_count_bounds),
    ED_CGI_LKEY("processes", ED_KEY_INT, ed_conf_set_int, processes,
                &ed_cgi_count_bounds),
    ED_CGI_LKEY("file_size", ED_KEY_SIZE, ed_conf_set_size, file_size,
                NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_cgi_limits_block = {
    .name = "limits",
    .keys = ed_cgi_limit_keys,
    .size = sizeof(ed_http_cgi_limits_t),
    .expect = "expected a mapping like {cpu: 30s, memory: 512m}",
};

#define ED_CGI_KEY(name, flags, set, field, arg, def)                        \
    { name, ED_CTX_LOCATION, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_cgi_conf_t, field), arg, def }

static const ed_key_t ed_cgi_block_keys[] = {
    ED_CGI_KEY("root", ED_KEY_STR, ed_conf_set_path, root, NULL, NULL),
    ED_CGI_KEY("alias", ED_KEY_STR, ed_conf_set_path, alias, NULL, NULL),
    ED_CGI_KEY("index", ED_KEY_PTR, ed_cgi_set_index, index, NULL, "[]"),
    ED_CGI_KEY("interpreters", ED_KEY_PTR, ed_cgi_set_interpreters,
               interpreters, NULL, NULL),
    ED_CGI_KEY("env", ED_KEY_PTR, ed_cgi_set_env, env, NULL, NULL),
    ED_CGI_KEY("max_processes", ED_KEY_INT, ed_conf_set_int, max_processes,
               &ed_cgi_max_bounds, "16"),
    ED_CGI_KEY("timeout", ED_KEY_MSEC, ed_conf_set_msec, timeout, NULL,
               "60s"),
    ED_CGI_KEY("kill_after", ED_KEY_MSEC, ed_conf_set_msec, kill_after,
               NULL, "5s"),
    ED_CGI_KEY("symlinks", ED_KEY_INT, ed_conf_set_enum, symlinks,
               ed_cgi_symlinks, "owner"),
    ED_CGI_KEY("pass_authorization", ED_KEY_INT, ed_conf_set_bool,
               pass_authorization, NULL, "false"),
    ED_CGI_KEY("buffer_size", ED_KEY_SIZE, ed_conf_set_size, buffer_size,
               &ed_cgi_buffer_bounds, "64k"),
    ED_CGI_KEY("limits", ED_KEY_BLOCK, ed_conf_set_block, limits,
               &ed_cgi_limits_block, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_cgi_block = {
    .name = "cgi",
    .keys = ed_cgi_block_keys,
    .size = sizeof(ed_http_cgi_conf_t),
    .check = ed_cgi_check,
    .expect = "expected a mapping like {root: cgi-bin}",
};

static const ed_key_t ed_cgi_keys[] = {
    { "cgi", ED_CTX_LOCATION, ED_KEY_BLOCK, ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_cgi_loc_conf_t, block), &ed_cgi_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_cgi_module = {
    .name = "cgi",
    .keys = ed_cgi_keys,
    .conf_size = { 0, 0, sizeof(ed_http_cgi_loc_conf_t), 0 },
    .attach = ed_cgi_attach,
    .init_worker = ed_cgi_init_worker,
    .exit_worker = ed_cgi_exit_worker,
    .explain = ed_http_cgi_explain,
};

#define ed_cgi_field(conf, key) ((char *)(conf) + (key)->offset)

/* index: file names without '/'. */
static const char *
ed_cgi_set_index(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    const char *err;
    ed_array_t *a;
    ed_str_t   *s;
    size_t      i;

    if (node->type == ED_NODE_SEQ && node->n == 0) {
        a = ed_array_create(cf->pool, 1, sizeof(ed_str_t));
        *(ed_array_t **)ed_cgi_field(conf, key) = a;
        return a ? NULL : "out of memory";
    }
    err = ed_conf_set_str_list(cf, key, node, conf);
    if (err) {
        return err;
    }
    a = *(ed_array_t **)ed_cgi_field(conf, key);
    s = a->elts;
    for (i = 0; i < a->nelts; i++) {
        if (s[i].len == 0 || memchr(s[i].data, '/', s[i].len)
            || s[i].data[0] == '.')
        {
            return "expected file names without \"/\" nor a leading \".\"";
        }
    }
    return NULL;
}

/* Whether s is an extension like ".py": a dot, then letters, digits,
 * '_', '-' or '+'. */
static bool
ed_cgi_ext_ok(const ed_str_t *s)
{
    size_t i;
    char   c;

    if (s->len < 2 || s->data[0] != '.') {
        return false;
    }
    for (i = 1; i < s->len; i++) {
        c = s->data[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+'))
        {
            return false;
        }
    }
    return true;
}

/* Whether path is absolute and names an executable regular file. */
static bool
ed_cgi_exe_ok(const char *path)
{
    struct stat st;

    return path[0] == '/' && stat(path, &st) == 0 && S_ISREG(st.st_mode)
           && (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH));
}

/* interpreters: {.ext: /path or [/path, args...]}. */
static const char *
ed_cgi_set_interpreters(ed_conf_t *cf, const ed_key_t *key,
                        ed_node_t *node, void *conf)
{
    ed_http_cgi_interp_t *in;
    ed_node_t            *k, *v, *item;
    ed_array_t           *a;
    ed_str_t             *arg;
    size_t                i, j, n;

    if (node->type != ED_NODE_MAP) {
        return "expected a mapping like {.py: /usr/bin/python3}";
    }
    a = ed_array_create(cf->pool, node->n ? node->n : 1,
                        sizeof(ed_http_cgi_interp_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        k = node->items[2 * i];
        v = node->items[2 * i + 1];
        if (!ed_cgi_ext_ok(&k->value)) {
            ed_conf_error(cf, k, "expected an extension like .py");
            continue;
        }
        n = v->type == ED_NODE_SEQ ? v->n : 1;
        item = v->type == ED_NODE_SEQ ? (n ? v->items[0] : v) : v;
        if (v->type == ED_NODE_MAP || n == 0 || item->type != ED_NODE_SCALAR
            || !ed_cgi_exe_ok(item->value.data))
        {
            ed_conf_error(cf, item, "interpreter for \"%s\" must be an "
                          "absolute path to an executable file: \"%s\"",
                          k->value.data,
                          item->type == ED_NODE_SCALAR ? item->value.data
                                                       : "");
            continue;
        }
        in = ed_array_push(a);
        if (in == NULL) {
            return "out of memory";
        }
        in->ext = k->value;
        in->argv = ed_array_create(cf->pool, n, sizeof(ed_str_t));
        if (in->argv == NULL) {
            return "out of memory";
        }
        for (j = 0; j < n; j++) {
            item = v->type == ED_NODE_SEQ ? v->items[j] : v;
            if (item->type != ED_NODE_SCALAR) {
                ed_conf_error(cf, item, "expected an argument");
                break;
            }
            arg = ed_array_push(in->argv);
            if (arg == NULL) {
                return "out of memory";
            }
            *arg = item->value;
        }
        for (j = 0; j + 1 < a->nelts; j++) {
            if (ed_str_eq(&((ed_http_cgi_interp_t *)a->elts)[j].ext,
                          &in->ext))
            {
                ed_conf_error(cf, k, "extension \"%s\" listed twice",
                              k->value.data);
            }
        }
    }
    *(ed_array_t **)ed_cgi_field(conf, key) = a;
    return NULL;
}

/* env: {NAME: value with $variables}. */
static const char *
ed_cgi_set_env(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
               void *conf)
{
    ed_http_cgi_conf_t *ccf = conf;
    ed_http_cgi_env_t  *e;
    ed_node_t          *k, *v;
    ed_array_t         *a;
    const char         *err;
    size_t              i, j;
    bool                ok;

    if (node->type != ED_NODE_MAP) {
        return "expected a mapping like {LANG: C.UTF-8}";
    }
    a = ed_array_create(cf->pool, node->n ? node->n : 1,
                        sizeof(ed_http_cgi_env_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        k = node->items[2 * i];
        v = node->items[2 * i + 1];
        ok = k->value.len > 0 && !(k->value.data[0] >= '0'
                                   && k->value.data[0] <= '9');
        for (j = 0; ok && j < k->value.len; j++) {
            char c = k->value.data[j];

            ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                 || (c >= '0' && c <= '9') || c == '_';
        }
        if (!ok) {
            ed_conf_error(cf, k, "invalid env name \"%s\": expected "
                          "letters, digits and \"_\"", k->value.data);
            continue;
        }
        if (ed_http_cgi_meta_name(k->value.data, k->value.len)) {
            ed_conf_error(cf, k, "\"%s\" is an RFC 3875 variable; env "
                          "cannot set it", k->value.data);
            continue;
        }
        if (v->type != ED_NODE_SCALAR) {
            ed_conf_error(cf, v, "expected a string value for \"%s\"",
                          k->value.data);
            continue;
        }
        e = ed_array_push(a);
        if (e == NULL) {
            return "out of memory";
        }
        e->name = k->value;
        e->value = ed_http_template_compile(cf, v, &err);
        if (e->value == NULL) {
            ed_conf_error(cf, v, "invalid env value: %s", err);
            continue;
        }
        if (k->value.len == 4 && memcmp(k->value.data, "PATH", 4) == 0) {
            ccf->env_path = true;
        }
    }
    *(ed_array_t **)ed_cgi_field(conf, key) = a;
    return NULL;
}

/* A directory key (root, alias) names a directory. ED_OK or ED_ERROR
 * (recorded). */
static int
ed_cgi_check_dir(ed_conf_t *cf, ed_node_t *block, const char *name,
                 const ed_str_t *path)
{
    struct stat st;
    ed_node_t  *n;

    if (path->data == NULL) {
        return ED_OK;
    }
    if (stat(path->data, &st) == 0 && S_ISDIR(st.st_mode)) {
        return ED_OK;
    }
    n = ed_conf_get(block, name);
    return ed_conf_error(cf, n, "cgi %s \"%s\" is not a directory", name,
                         n ? n->value.data : path->data);
}

static const char *
ed_cgi_check(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_cgi_conf_t *ccf = block;

    if (ccf->root.data && ccf->alias.data) {
        return "cgi has both \"root\" and \"alias\": choose one";
    }
    (void)ed_cgi_check_dir(cf, node, "root", &ccf->root);
    (void)ed_cgi_check_dir(cf, node, "alias", &ccf->alias);
    return NULL;
}

/* Whether the workers would run as root: the master is root and `user`
 * is unset or names uid 0. */
static bool
ed_cgi_workers_root(ed_conf_t *cf)
{
    ed_core_conf_t *ccf = ed_core_conf(cf->cycle);
    struct passwd  *pw;

    if (geteuid() != 0) {
        return false;
    }
    if (ccf->user.data == NULL) {
        return true;
    }
    pw = getpwnam(ccf->user.data);
    return pw != NULL && pw->pw_uid == 0;
}

static int
ed_cgi_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_cgi_loc_conf_t  *lcf = ed_http_conf_at(loc, ed_http_cgi_module);
    ed_http_core_loc_conf_t *clcf;
    ed_http_cgi_conf_t      *ccf = lcf->block;

    if (ccf == NULL || loc->conf == loc->server->loc_conf) {
        return ED_OK;
    }
    if (loc->handler) {
        ed_conf_error(cf, loc->node, "a location has one content handler; "
                      "\"cgi\" conflicts with another one");
        return ED_ERROR;
    }
    clcf = ed_http_conf_at(loc, ed_http_core_module);
    if (ccf->root.data == NULL && ccf->alias.data == NULL
        && clcf->root.len == 0)
    {
        return ed_conf_error(cf, ccf->node, "cgi needs a root or an alias");
    }
    if (ccf->alias.data
        && (loc->kind == ED_HTTP_LOC_REGEX
            || loc->kind == ED_HTTP_LOC_REGEX_CASELESS))
    {
        return ed_conf_error(cf, ed_conf_get(ccf->node, "alias"),
                             "\"alias\" needs a prefix or exact location: "
                             "a regex location has no prefix to replace");
    }
    if (ed_cgi_workers_root(cf)) {
        return ed_conf_error(cf, ccf->node, "cgi cannot run scripts as "
                             "root; set \"user\"");
    }
    loc->handler = ed_http_cgi_handler;
    return ED_OK;
}

static int
ed_cgi_init_worker(ed_worker_t *w)
{
    ed_unused(w);
    return ED_OK;
}

/* A worker exiting kills the scripts still running (a graceful exit
 * waited for their requests up to shutdown_timeout). */
static void
ed_cgi_exit_worker(ed_worker_t *w)
{
    ed_unused(w);
    ed_http_cgi_proc_exit_worker();
}
