/* The static module's configuration: its keys (`static`, `mime_types`,
 * `default_type`, `open_file_cache`), their setters, and installing the
 * handler (ed_http_static.c) in locations. */

/*
 * Keys and defaults (config.md has the reference):
 *
 *   static: true | false | {root, alias, index: [index.html],
 *           autoindex: false, etag: true, last_modified: true,
 *           ranges: true, precompressed: [], try_files: [],
 *           expires: off (ed_http_static_expires.c), dotfiles: deny,
 *           symlinks: follow,
 *           methods: [GET, HEAD]}
 *     dotfiles: deny answers 404 for any name starting with '.', except
 *     a leading /.well-known/ (RFC 8615).
 *     In a location it installs the handler. At main and server level it
 *     gives defaults to the blocks below it (root and alias belong to a
 *     location); `static: false` there turns the implicit handling off.
 *     A location without a handler (and the server itself, when no
 *     location matches) serves files when its root is set.
 *   mime_types: mime.types beside the configuration file (conf/mime.types
 *   under the prefix unless configure says otherwise); when that default file
 *     is missing, a built-in table of common types is used.
 *   default_type: application/octet-stream
 *   open_file_cache: on (= {max: 10000, valid: 30s}) | off | {max, valid}
 *     Per worker: descriptors and stat of up to max files, and the bytes
 *     of files up to 16 KiB (64 MiB in all), re-checked with one stat
 *     after valid. Misses are not cached.
 */
#include "ed_http_static.h"

static const char *ed_http_static_set_bool(ed_conf_t *cf, ed_node_t *node,
                                           void *block);
static const char *ed_http_static_set_cache_bool(ed_conf_t *cf,
                                                 ed_node_t *node,
                                                 void *block);
static const char *ed_http_static_set_mime_types(ed_conf_t *cf,
                                                 const ed_key_t *key,
                                                 ed_node_t *node,
                                                 void *conf);
static const char *ed_http_static_set_type(ed_conf_t *cf,
                                           const ed_key_t *key,
                                           ed_node_t *node, void *conf);
static const char *ed_http_static_set_dir(ed_conf_t *cf, const ed_key_t *key,
                                          ed_node_t *node, void *conf);
static const char *ed_http_static_set_index(ed_conf_t *cf,
                                            const ed_key_t *key,
                                            ed_node_t *node, void *conf);
static const char *ed_http_static_set_autoindex(ed_conf_t *cf,
                                                const ed_key_t *key,
                                                ed_node_t *node,
                                                void *conf);
static const char *ed_http_static_set_precompressed(ed_conf_t *cf,
                                                    const ed_key_t *key,
                                                    ed_node_t *node,
                                                    void *conf);
static const char *ed_http_static_set_try_files(ed_conf_t *cf,
                                                const ed_key_t *key,
                                                ed_node_t *node,
                                                void *conf);
static const char *ed_http_static_set_methods(ed_conf_t *cf,
                                              const ed_key_t *key,
                                              ed_node_t *node, void *conf);
static int ed_http_static_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_static_postconf(ed_conf_t *cf);

static const ed_conf_enum_t ed_http_static_dotfiles[] = {
    { "deny", ED_STATIC_DOTFILES_DENY },
    { "allow", ED_STATIC_DOTFILES_ALLOW },
    { NULL, 0 }
};

static const ed_conf_enum_t ed_http_static_symlinks[] = {
    { "follow", ED_HTTP_SYMLINKS_FOLLOW },
    { "owner", ED_HTTP_SYMLINKS_OWNER },
    { "deny", ED_HTTP_SYMLINKS_DENY },
    { NULL, 0 }
};

#define ED_SKEY(name, flags, set, field, arg, def)                           \
    { name, ED_CTX_ANY_HTTP, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_static_conf_t, field), arg, def }
#define ED_SKEY_I(name, flags, set, field, arg, def)                         \
    ED_SKEY(name, (flags) | ED_KEY_INHERIT, set, field, arg, def)

/* The keys of a `static` block. root and alias belong to one location
 * and are not inherited; the others are, block to block. */
static const ed_key_t ed_http_static_block_keys[] = {
    ED_SKEY("root", ED_KEY_STR, ed_http_static_set_dir, root, NULL, NULL),
    ED_SKEY("alias", ED_KEY_STR, ed_http_static_set_dir, alias, NULL,
            NULL),
    ED_SKEY_I("index", ED_KEY_PTR, ed_http_static_set_index, index, NULL,
              "index.html"),
    ED_SKEY_I("autoindex", ED_KEY_INT, ed_http_static_set_autoindex,
              autoindex, NULL, "false"),
    ED_SKEY_I("etag", ED_KEY_INT, ed_conf_set_bool, etag, NULL, "true"),
    ED_SKEY_I("last_modified", ED_KEY_INT, ed_conf_set_bool, last_modified,
              NULL, "true"),
    ED_SKEY_I("ranges", ED_KEY_INT, ed_conf_set_bool, ranges, NULL,
              "true"),
    ED_SKEY_I("precompressed", ED_KEY_PTR, ed_http_static_set_precompressed,
              precompressed, NULL, NULL),
    ED_SKEY_I("try_files", ED_KEY_PTR, ed_http_static_set_try_files,
              try_files, NULL, NULL),
    ED_SKEY_I("expires", ED_KEY_PTR, ed_http_static_set_expires, expires,
              NULL, "off"),
    ED_SKEY_I("dotfiles", ED_KEY_INT, ed_conf_set_enum, dotfiles,
              ed_http_static_dotfiles, "deny"),
    ED_SKEY_I("symlinks", ED_KEY_INT, ed_conf_set_enum, symlinks,
              ed_http_static_symlinks, "follow"),
    ED_SKEY_I("methods", ED_KEY_PTR, ed_http_static_set_methods, methods,
              NULL, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_static_block = {
    .name = "static",
    .keys = ed_http_static_block_keys,
    .size = sizeof(ed_http_static_conf_t),
    .scalar = ed_http_static_set_bool,
    .expect = "expected true, false or a mapping of static keys",
};

static const ed_conf_bounds_t ed_http_static_cache_bounds = {
    0, 10000000
};

/* The keys of an open_file_cache block. */
static const ed_key_t ed_http_static_cache_keys[] = {
    { "max", ED_CTX_MAIN, ED_KEY_INT, ed_conf_set_int, ED_CONF_MAIN,
      offsetof(ed_http_static_cache_conf_t, max),
      &ed_http_static_cache_bounds, "10000" },
    { "valid", ED_CTX_MAIN, ED_KEY_MSEC, ed_conf_set_msec, ED_CONF_MAIN,
      offsetof(ed_http_static_cache_conf_t, valid), NULL, "30s" },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_static_cache_block = {
    .name = "open_file_cache",
    .keys = ed_http_static_cache_keys,
    .size = sizeof(ed_http_static_cache_conf_t),
    .scalar = ed_http_static_set_cache_bool,
    .expect = "expected off, on or {max: N, valid: DURATION}",
};

/* Main level's default block (`static: true`) gives every block below
 * the defaults of its keys. */
static const ed_key_t ed_http_static_keys[] = {
    { "static", ED_CTX_ANY_HTTP, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_static_loc_conf_t, block), &ed_http_static_block,
      "true" },
    { "mime_types", ED_CTX_MAIN, ED_KEY_STR, ed_http_static_set_mime_types,
      ED_CONF_MAIN, offsetof(ed_http_static_main_conf_t, mime_types), NULL,
      NULL },
    { "default_type", ED_CTX_MAIN, ED_KEY_STR, ed_http_static_set_type,
      ED_CONF_MAIN, offsetof(ed_http_static_main_conf_t, default_type),
      NULL, "application/octet-stream" },
    { "open_file_cache", ED_CTX_MAIN, ED_KEY_BLOCK, ed_conf_set_block,
      ED_CONF_MAIN, offsetof(ed_http_static_main_conf_t, cache),
      &ed_http_static_cache_block, "on" },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_static_module = {
    .name = "static",
    .keys = ed_http_static_keys,
    .conf_size = { sizeof(ed_http_static_main_conf_t), 0,
                   sizeof(ed_http_static_loc_conf_t), 0 },
    .attach = ed_http_static_attach,
    .postconf = ed_http_static_postconf,
    .init_worker = ed_http_static_init_worker,
    .exit_worker = ed_http_static_exit_worker,
    .explain = ed_http_static_explain,
};

/* Configuration. */

#define ed_static_field(conf, key) ((char *)(conf) + (key)->offset)

/* Whether node is the scalar default the core made (ed_conf_defaults). */
static bool
ed_static_is_default(const ed_node_t *node)
{
    return node->file != NULL && strcmp(node->file, "(default)") == 0;
}

/* static: true | false. A bare `static:` means the defaults, like
 * `static: {}`; `static: false` means no static handling here, not even
 * the implicit one. Returns NULL or a message. */
static const char *
ed_http_static_set_bool(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_static_conf_t *scf = block;
    int                    b = 1;

    ed_unused(cf);
    if (node->value.len || node->quoted) {
        b = ed_conf_parse_bool(node->value.data, node->value.len);
    }
    if (b < 0) {
        return ed_http_static_block.expect;
    }
    scf->off = b == 0;
    return NULL;
}

/* static.root and static.alias: a location's own directory (or file, for
 * an alias), checked to exist as -t checks roots. Returns NULL or a
 * message. */
static const char *
ed_http_static_set_dir(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                       void *conf)
{
    ed_str_t    *dir = (ed_str_t *)ed_static_field(conf, key);
    struct stat  st;
    const char  *err;
    bool         alias = strcmp(key->name, "alias") == 0;

    if (cf->ctx != ED_CTX_LOCATION) {
        return alias ? "\"alias\" is allowed only in a location's static"
                     : "\"root\" in static is allowed only in a location; "
                       "at this level use the \"root\" key";
    }
    err = ed_conf_set_path(cf, key, node, conf);
    if (err) {
        return err;
    }
    if (stat(dir->data, &st) != 0) {
        ed_conf_error(cf, node, "%s \"%s\" cannot be used: %s", key->name,
                      dir->data, strerror(errno));
        return NULL;
    }
    if (!alias && !S_ISDIR(st.st_mode)) {
        ed_conf_error(cf, node, "root \"%s\" is not a directory",
                      dir->data);
    }
    return NULL;
}

/* index: a name or a list of names (no '/'). Returns NULL or a message. */
static const char *
ed_http_static_set_index(ed_conf_t *cf, const ed_key_t *key,
                         ed_node_t *node, void *conf)
{
    const char *err = ed_conf_set_str_list(cf, key, node, conf);
    ed_array_t *a;
    ed_str_t   *s;
    size_t      i;

    if (err) {
        return err;
    }
    a = *(ed_array_t **)ed_static_field(conf, key);
    s = a->elts;
    for (i = 0; i < a->nelts; i++) {
        if (s[i].len == 0 || memchr(s[i].data, '/', s[i].len)
            || (s[i].len <= 2 && s[i].data[0] == '.'
                && (s[i].len == 1 || s[i].data[1] == '.')))
        {
            return "expected file names without \"/\"";
        }
    }
    return NULL;
}

/* autoindex: false | true (html) | html | json. Returns NULL or a
 * message. */
static const char *
ed_http_static_set_autoindex(ed_conf_t *cf, const ed_key_t *key,
                             ed_node_t *node, void *conf)
{
    int *v = (int *)ed_static_field(conf, key);
    int  b;

    ed_unused(cf);
    if (node->type != ED_NODE_SCALAR) {
        return "expected false, true, html or json";
    }
    if (strcmp(node->value.data, "html") == 0) {
        *v = ED_STATIC_AUTOINDEX_HTML;
    } else if (strcmp(node->value.data, "json") == 0) {
        *v = ED_STATIC_AUTOINDEX_JSON;
    } else {
        b = ed_conf_parse_bool(node->value.data, node->value.len);
        if (b < 0) {
            return "expected false, true, html or json";
        }
        *v = b ? ED_STATIC_AUTOINDEX_HTML : ED_STATIC_AUTOINDEX_OFF;
    }
    return NULL;
}

/* precompressed: [br, gzip] in order of preference. Returns NULL or a
 * message. */
static const char *
ed_http_static_set_precompressed(ed_conf_t *cf, const ed_key_t *key,
                                 ed_node_t *node, void *conf)
{
    ed_array_t *a;
    ed_node_t  *item;
    size_t      i, j, n;
    int        *enc, *seen;

    if (node->type == ED_NODE_MAP) {
        return "expected a list of encodings: br, gzip";
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    if (node->type == ED_NODE_SCALAR && node->value.len == 0) {
        n = 0;  /* `precompressed:` alone, like [] */
    }
    a = ed_array_create(cf->pool, n ? n : 1, sizeof(int));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        enc = ed_array_push(a);
        if (enc == NULL) {
            return "out of memory";
        }
        if (item->type == ED_NODE_SCALAR
            && strcmp(item->value.data, "br") == 0)
        {
            *enc = ED_STATIC_ENC_BR;
        } else if (item->type == ED_NODE_SCALAR
                   && strcmp(item->value.data, "gzip") == 0)
        {
            *enc = ED_STATIC_ENC_GZIP;
        } else {
            ed_conf_error(cf, item, "unknown precompressed encoding: "
                          "expected br or gzip");
            continue;
        }
        seen = a->elts;
        for (j = 0; j + 1 < a->nelts; j++) {
            if (seen[j] == *enc) {
                ed_conf_error(cf, item, "encoding listed twice in "
                              "precompressed");
            }
        }
    }
    *(ed_array_t **)ed_static_field(conf, key) = a;
    return NULL;
}

/* try_files: [$uri, $uri/, /index.html] or [..., =404]: URI templates
 * tried in order; the last item is the fallback. Returns NULL or a
 * message. */
static const char *
ed_http_static_set_try_files(ed_conf_t *cf, const ed_key_t *key,
                             ed_node_t *node, void *conf)
{
    ed_http_static_try_t *t;
    ed_array_t           *a;
    ed_node_t            *item;
    const char           *err;
    int64_t               status;
    size_t                i, n;

    if (node->type != ED_NODE_SEQ || node->n == 0) {
        return "expected a list of URIs, the last one may be =CODE";
    }
    n = node->n;
    a = ed_array_create(cf->pool, n, sizeof(ed_http_static_try_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < n; i++) {
        item = node->items[i];
        t = ed_array_push(a);
        if (t == NULL) {
            return "out of memory";
        }
        if (item->type != ED_NODE_SCALAR || item->value.len == 0) {
            ed_conf_error(cf, item, "expected a URI or =CODE in try_files");
            continue;
        }
        if (item->value.data[0] == '=') {
            status = ed_atoi(item->value.data + 1, item->value.len - 1);
            if (status < 200 || status > 599) {
                ed_conf_error(cf, item, "invalid try_files status \"%s\": "
                              "expected =CODE with CODE from 200 to 599",
                              item->value.data);
            } else if (i + 1 != n) {
                ed_conf_error(cf, item, "\"%s\" must be the last item of "
                              "try_files", item->value.data);
            }
            t->status = (int)status;
            continue;
        }
        if (item->value.data[0] != '/' && item->value.data[0] != '$') {
            ed_conf_error(cf, item, "expected a URI starting with \"/\" "
                          "(or a variable) in try_files");
            continue;
        }
        t->uri = ed_http_template_compile(cf, item, &err);
        if (t->uri == NULL) {
            ed_conf_error(cf, item, "invalid try_files item: %s", err);
        }
    }
    *(ed_array_t **)ed_static_field(conf, key) = a;
    ed_unused(key);
    return NULL;
}

/* methods: [GET, HEAD, ...]: tokens; GET allows HEAD too. Returns NULL
 * or a message. */
static const char *
ed_http_static_set_methods(ed_conf_t *cf, const ed_key_t *key,
                           ed_node_t *node, void *conf)
{
    const char *err = ed_conf_set_str_list(cf, key, node, conf);
    ed_array_t *a;
    ed_str_t   *s;
    size_t      i, j;

    if (err) {
        return err;
    }
    a = *(ed_array_t **)ed_static_field(conf, key);
    s = a->elts;
    for (i = 0; i < a->nelts; i++) {
        for (j = 0; j < s[i].len; j++) {
            if (!(ed_http_char[(uint8_t)s[i].data[j]] & ED_HTTP_C_TOKEN)) {
                return "expected method names such as GET or HEAD";
            }
        }
        if (s[i].len == 0) {
            return "expected method names such as GET or HEAD";
        }
    }
    return NULL;
}

/* mime_types: a file of "type ext ..." lines. The default,
 * conf/mime.types under the prefix, may be missing (a built-in table is
 * used then); a file named in the config must load. Errors in the file
 * name its own file:line:col. Returns NULL or a message. */
static const char *
ed_http_static_set_mime_types(ed_conf_t *cf, const ed_key_t *key,
                              ed_node_t *node, void *conf)
{
    ed_http_static_main_conf_t *mcf = conf;
    const char                 *err;

    err = ed_conf_set_path(cf, key, node, conf);
    if (err) {
        return err;
    }
    mcf->mime = ed_http_mime_load(cf, node, mcf->mime_types.data,
                                  ed_static_is_default(node));
    return NULL;
}

/* default_type: a media type. Returns NULL or a message. */
static const char *
ed_http_static_set_type(ed_conf_t *cf, const ed_key_t *key,
                        ed_node_t *node, void *conf)
{
    ed_http_static_main_conf_t *mcf = conf;
    const char                 *err, *slash;
    size_t                      i;

    err = ed_conf_set_str(cf, key, node, conf);
    if (err) {
        return err;
    }
    slash = memchr(mcf->default_type.data, '/', mcf->default_type.len);
    for (i = 0; i < mcf->default_type.len; i++) {
        if (!(ed_http_char[(uint8_t)mcf->default_type.data[i]]
              & ED_HTTP_C_VALUE))
        {
            slash = NULL;
        }
    }
    if (slash == NULL || slash == mcf->default_type.data) {
        return "expected a media type like application/octet-stream";
    }
    mcf->default_value = ed_http_mime_value(cf->pool,
                                            mcf->default_type.data,
                                            mcf->default_type.len);
    return mcf->default_value ? NULL : "out of memory";
}

/* open_file_cache: off | on (the defaults). Returns NULL or a
 * message. */
static const char *
ed_http_static_set_cache_bool(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_static_cache_conf_t *c = block;
    int                          b;

    ed_unused(cf);
    b = ed_conf_parse_bool(node->value.data, node->value.len);
    if (b < 0) {
        return ed_http_static_cache_block.expect;
    }
    if (b == 0) {
        c->max = 0;
    }
    return NULL;
}

/* Computes what the handler needs from a merged block, once. ED_OK or
 * ED_ERROR (ENOMEM). */
static int
ed_static_derive(ed_conf_t *cf, ed_http_static_conf_t *scf)
{
    ed_str_t *m, *s;
    size_t    i;

    if (scf->derived) {
        return ED_OK;  /* a block shared by the locations below it */
    }
    scf->derived = 1;
    scf->mcf = cf->cycle->main_conf[ed_http_static_module.index];
    scf->allow.len = 0;
    scf->allow.data = (char *)"";
    if (scf->methods == NULL) {
        ed_str_set(&scf->allow, "GET, HEAD");
        scf->get_allowed = 1;
    } else {
        m = scf->methods->elts;
        for (i = 0; i < scf->methods->nelts; i++) {
            if (m[i].len == 3 && memcmp(m[i].data, "GET", 3) == 0) {
                scf->get_allowed = 1;
            }
            if ((scf->allow.len
                 && ed_http_static_append(cf->pool, &scf->allow, ", ", 2)
                        != ED_OK)
                || ed_http_static_append(cf->pool, &scf->allow, m[i].data,
                                         m[i].len)
                       != ED_OK)
            {
                return ED_ERROR;
            }
        }
        for (i = 0; scf->get_allowed && i < scf->methods->nelts; i++) {
            if (m[i].len == 4 && memcmp(m[i].data, "HEAD", 4) == 0) {
                break;
            }
        }
        if (scf->get_allowed && i == scf->methods->nelts
            && ed_http_static_append(cf->pool, &scf->allow, ", HEAD", 6)
                   != ED_OK)
        {
            return ED_ERROR;
        }
    }
    scf->expires_on = ed_http_static_expires_on(scf->expires);
    /* Room after a mapped path: "/" + the longest index name + ".br". */
    scf->extra = 8;
    s = scf->index ? scf->index->elts : NULL;
    for (i = 0; s && i < scf->index->nelts; i++) {
        scf->extra = ed_max(scf->extra, s[i].len + 8);
    }
    return ED_OK;
}

/* Installs the handler where `static` is written in a location: its
 * block is then its own, not the one it shares with its server. The
 * implicit static of locations without a handler is installed by the
 * postconf hook, once every module had its chance. ED_OK or ED_ERROR. */
static int
ed_http_static_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_static_loc_conf_t *lcf, *slcf;
    ed_http_core_loc_conf_t   *clcf;
    ed_http_static_conf_t     *scf;

    lcf = ed_http_conf_at(loc, ed_http_static_module);
    slcf = loc->server->loc_conf[ed_http_static_module.index];
    scf = lcf->block;
    if (loc->conf == loc->server->loc_conf || scf == slcf->block
        || scf->off)
    {
        /* The server's own level (no location matched) and locations
         * without `static` are handled in postconf. */
        return ED_OK;
    }
    if (loc->handler) {
        ed_conf_error(cf, loc->node, "a location has one content handler; "
                      "\"static\" conflicts with another one");
        return ED_ERROR;
    }
    if (ed_static_derive(cf, scf) != ED_OK) {
        return ed_conf_error(cf, NULL, "out of memory");
    }
    clcf = ed_http_conf_at(loc, ed_http_core_module);
    if (scf->root.len && scf->alias.len) {
        ed_conf_error(cf, scf->node,
                      "static has both \"root\" and \"alias\": choose one");
        return ED_ERROR;
    }
    if (scf->root.len == 0 && scf->alias.len == 0 && clcf->root.len == 0) {
        ed_conf_error(cf, scf->node,
                      "static needs a root: set \"root\" (here or at the "
                      "server or main level) or static's \"alias\"");
        return ED_ERROR;
    }
    if (scf->alias.len
        && (loc->kind == ED_HTTP_LOC_REGEX
            || loc->kind == ED_HTTP_LOC_REGEX_CASELESS))
    {
        ed_conf_error(cf, scf->node,
                      "\"alias\" needs a prefix or exact location: a "
                      "regex location has no prefix to replace");
        return ED_ERROR;
    }
    lcf->active = scf;
    loc->handler = ed_http_static_handler;
    loc->ranges = scf->ranges ? 1 : 0;
    return ED_OK;
}

/* Installs the implicit static handler on one location without a
 * handler, with the block it shares with its server (unless that says
 * `static: false`). ED_OK or ED_ERROR. */
static int
ed_static_implicit(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_static_loc_conf_t *lcf;
    ed_http_core_loc_conf_t   *clcf;

    if (loc->handler || loc->conf == NULL) {
        return ED_OK;
    }
    lcf = loc->conf[ed_http_static_module.index];
    clcf = loc->conf[ed_http_core_module.index];
    if (lcf->block->off || clcf->root.len == 0) {
        return ED_OK;
    }
    if (ed_static_derive(cf, lcf->block) != ED_OK) {
        return ed_conf_error(cf, NULL, "out of memory");
    }
    lcf->active = lcf->block;
    loc->handler = ed_http_static_handler;
    return ED_OK;
}

/* Loads the default mime table if needed, then gives every location
 * without a handler the server's static handling when it has a root.
 * ED_OK or ED_ERROR. */
static int
ed_http_static_postconf(ed_conf_t *cf)
{
    ed_http_static_main_conf_t *mcf;
    ed_http_core_main_conf_t   *cmcf;
    ed_http_server_t          **srvs;
    ed_http_location_t        **locs;
    ed_node_t                   def;
    size_t                      i, j;

    mcf = cf->cycle->main_conf[ed_http_static_module.index];
    if (mcf->mime_types.data == NULL) {
        memset(&def, 0, sizeof(def));
        def.type = ED_NODE_SCALAR;
        def.file = "(default)";
        ed_str_set(&def.value, ED_MIME_TYPES_PATH);
        /* As if written, with the default's leniency (key 1: mime_types). */
        ed_http_static_set_mime_types(cf, &ed_http_static_keys[1], &def,
                                      mcf);
    }
    if (mcf->mime == NULL) {
        return cf->nerrors ? ED_OK : ED_ERROR;
    }
    cmcf = cf->cycle->main_conf[ed_http_core_module.index];
    srvs = cmcf->servers.elts;
    for (i = 0; i < cmcf->servers.nelts; i++) {
        locs = srvs[i]->locations.elts;
        for (j = 0; j < srvs[i]->locations.nelts; j++) {
            if (ed_static_implicit(cf, locs[j]) != ED_OK) {
                return ED_ERROR;
            }
        }
        if (srvs[i]->fallback
            && ed_static_implicit(cf, srvs[i]->fallback) != ED_OK)
        {
            return ED_ERROR;
        }
    }
    return ED_OK;
}
