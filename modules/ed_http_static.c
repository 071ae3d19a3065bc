/* The static module: files under a root or alias, with index, autoindex,
 * try_files, validators, conditional and range requests, precompressed
 * variants and an open-file cache (`static`, `mime_types`, `default_type`,
 * `open_file_cache`). */

/*
 * Keys and defaults (config.md has the reference):
 *
 *   static: true | false | {root, alias, index: [index.html],
 *           autoindex: false, etag: true, last_modified: true,
 *           ranges: true, precompressed: [], try_files: [],
 *           expires: off, dotfiles: deny, symlinks: follow,
 *           methods: [GET, HEAD]}
 *     dotfiles: deny answers 404 for any name starting with '.', except
 *     a leading /.well-known/ (RFC 8615).
 *     In a location it installs the handler. At main and server level it
 *     gives defaults to the blocks below it (root and alias belong to a
 *     location); `static: false` there turns the implicit handling off.
 *     A location without a handler (and the server itself, when no
 *     location matches) serves files when its root is set.
 *   mime_types: conf/mime.types under the prefix; when that default file
 *     is missing, a built-in table of common types is used.
 *   default_type: application/octet-stream
 *   open_file_cache: on (= {max: 10000, valid: 30s}) | off | {max, valid}
 *     Per worker: descriptors and stat of up to max files, and the bytes
 *     of files up to 16 KiB (64 MiB in all), re-checked with one stat
 *     after valid. Misses are not cached.
 */
#include "ed_http.h"
#include "ed_http_file_cache.h"
#include "ed_http_mime.h"
#include "ed_http_range.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/random.h>

/* Files up to this size are held in memory by the open-file cache and
 * sent with their head in one write; at most ED_STATIC_MEMORY bytes of
 * them per worker. */
#define ED_STATIC_INLINE_MAX   (16 * 1024)
#define ED_STATIC_MEMORY       (64 * 1024 * 1024)
#define ED_STATIC_CACHE_MAX    10000
#define ED_STATIC_CACHE_VALID  30000

#define ED_STATIC_EXPIRES_OFF  ((ed_msec_t)-2)

enum { ED_STATIC_DOTFILES_DENY = 0, ED_STATIC_DOTFILES_ALLOW };
enum { ED_STATIC_AUTOINDEX_OFF = 0, ED_STATIC_AUTOINDEX_HTML,
       ED_STATIC_AUTOINDEX_JSON };
enum { ED_STATIC_ENC_BR = 1, ED_STATIC_ENC_GZIP };

/* One try_files item: a URI template, or a status ("=404"). */
typedef struct {
    ed_http_template_t *uri;
    int                 status;
} ed_http_static_try_t;

typedef struct ed_http_static_main_conf_s ed_http_static_main_conf_t;

/* A `static` block as written at one level; merged (location <- server
 * <- main <- defaults) into the copy a location's handler uses. */
typedef struct {
    ed_node_t        *node;           /* the block (ed_conf_block_t) */
    ed_str_t          root;
    ed_str_t          alias;
    ed_array_t       *index;          /* ed_str_t */
    int               autoindex;
    int               etag;
    int               last_modified;
    int               ranges;
    ed_array_t       *precompressed;  /* int ED_STATIC_ENC_*, in order */
    ed_array_t       *try_files;      /* ed_http_static_try_t */
    ed_msec_t         expires;
    int               dotfiles;
    int               symlinks;
    ed_array_t       *methods;        /* ed_str_t */

    /* Derived once merged. */
    ed_str_t                    allow;
    ed_str_t                    cache_control;
    size_t                      extra;  /* path room: index names, .br */
    unsigned                    get_allowed:1;
    unsigned                    off:1;      /* `static: false` */
    unsigned                    derived:1;
    ed_http_static_main_conf_t *mcf;
} ed_http_static_conf_t;

/* Per level (main, server, location). */
typedef struct {
    ed_http_static_conf_t *block;   /* merged with the levels above */
    ed_http_static_conf_t *active;  /* what this location serves with */
} ed_http_static_loc_conf_t;

/* open_file_cache: {max, valid}. */
typedef struct {
    ed_node_t       *node;           /* the block (ed_conf_block_t) */
    int              max;            /* 0: off */
    ed_msec_t        valid;
} ed_http_static_cache_conf_t;

struct ed_http_static_main_conf_s {
    ed_str_t                     mime_types;
    ed_str_t                     default_type;
    ed_http_static_cache_conf_t *cache;
    ed_http_mime_t              *mime;
    ed_str_t        *default_value;  /* default_type with charset */
};

/* Request header fields the handler looks at, found in one pass. */
typedef struct {
    ed_http_cond_t   cond;
    const ed_str_t  *range;
    const ed_str_t  *if_range;
    const ed_str_t  *accept_encoding;
} ed_http_static_in_t;

/* A file response waiting for the stream to write it. */
typedef struct {
    ed_http_request_t *r;
    ed_timer_t         timer;
    size_t             queued;  /* at the last check of send_timeout */
} ed_http_static_wait_t;

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
static const char *ed_http_static_set_expires(ed_conf_t *cf,
                                              const ed_key_t *key,
                                              ed_node_t *node, void *conf);
static const char *ed_http_static_set_methods(ed_conf_t *cf,
                                              const ed_key_t *key,
                                              ed_node_t *node, void *conf);
static int ed_http_static_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_static_postconf(ed_conf_t *cf);
static int ed_http_static_init_worker(ed_worker_t *w);
static void ed_http_static_exit_worker(ed_worker_t *w);
static int ed_http_static_handler(ed_http_request_t *r);
static int ed_http_static_serve(ed_http_request_t *r,
                                ed_http_static_conf_t *scf,
                                const ed_str_t *uri);

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
    ED_SKEY_I("expires", ED_KEY_MSEC, ed_http_static_set_expires, expires,
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
};

/* Multipart boundaries: a per-worker random prefix and a counter. */
static uint64_t ed_http_static_boundary_seed;
static uint64_t ed_http_static_boundary_count;

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

/* expires: off | a duration (Cache-Control: max-age). Returns NULL or a
 * message. */
static const char *
ed_http_static_set_expires(ed_conf_t *cf, const ed_key_t *key,
                           ed_node_t *node, void *conf)
{
    ed_msec_t *v = (ed_msec_t *)ed_static_field(conf, key);
    ed_msec_t  ms;

    ed_unused(cf);
    if (node->type != ED_NODE_SCALAR) {
        return "expected off or a duration like 1h";
    }
    if (strcmp(node->value.data, "off") == 0
        || ed_conf_parse_bool(node->value.data, node->value.len) == 0)
    {
        *v = ED_STATIC_EXPIRES_OFF;
        return NULL;
    }
    ms = ed_conf_parse_msec(node->value.data, node->value.len);
    if (ms < 0 || ms / 1000 > INT32_MAX) {
        return "expected off or a duration like 1h";
    }
    *v = ms;
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

/* Appends s to a growing string (pool). Returns ED_OK or ED_ERROR. */
static int
ed_static_append(ed_pool_t *pool, ed_str_t *dst, const char *s, size_t len)
{
    char *p = ed_pnalloc(pool, dst->len + len + 1);

    if (p == NULL) {
        return ED_ERROR;
    }
    memcpy(p, dst->data, dst->len);
    memcpy(p + dst->len, s, len);
    p[dst->len + len] = '\0';
    dst->data = p;
    dst->len += len;
    return ED_OK;
}

/* Computes what the handler needs from a merged block, once. ED_OK or
 * ED_ERROR (ENOMEM). */
static int
ed_static_derive(ed_conf_t *cf, ed_http_static_conf_t *scf)
{
    ed_str_t *m, *s;
    size_t    i;
    char      buf[64];

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
                 && ed_static_append(cf->pool, &scf->allow, ", ", 2)
                        != ED_OK)
                || ed_static_append(cf->pool, &scf->allow, m[i].data,
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
            && ed_static_append(cf->pool, &scf->allow, ", HEAD", 6)
                   != ED_OK)
        {
            return ED_ERROR;
        }
    }
    scf->cache_control.len = 0;
    if (scf->expires != ED_STATIC_EXPIRES_OFF) {
        i = (size_t)snprintf(buf, sizeof(buf), "max-age=%lld",
                             (long long)(scf->expires / 1000));
        if (ed_str_dup(cf->pool, &scf->cache_control, buf, i) != ED_OK) {
            return ED_ERROR;
        }
    }
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
        ed_str_set(&def.value, "conf/mime.types");
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

/* Sets the worker's open-file cache up and seeds the multipart boundaries.
 * ED_OK or ED_ERROR. */
static int
ed_http_static_init_worker(ed_worker_t *w)
{
    ed_http_static_main_conf_t *mcf;
    ed_http_file_cache_conf_t   fc;

    mcf = w->cycle->main_conf[ed_http_static_module.index];
    fc.max = (size_t)mcf->cache->max;
    fc.valid = mcf->cache->valid;
    fc.inline_max = ED_STATIC_INLINE_MAX;
    fc.memory_max = ED_STATIC_MEMORY;
    if (getrandom(&ed_http_static_boundary_seed,
                  sizeof(ed_http_static_boundary_seed), GRND_NONBLOCK)
        != (ssize_t)sizeof(ed_http_static_boundary_seed))
    {
        ed_http_static_boundary_seed = (uint64_t)getpid() << 32
                                       ^ (uint64_t)ed_current_msec;
    }
    return ed_http_file_cache_init(&fc);
}

/* Closes the cached files. No return value. */
static void
ed_http_static_exit_worker(ed_worker_t *w)
{
    ed_unused(w);
    ed_http_file_cache_free();
}

/* Requests. */

/* Finds the header fields of interest in one pass. */
static void
ed_static_scan(ed_http_request_t *r, ed_http_static_in_t *in)
{
    ed_http_header_t *h;
    size_t            i;

    memset(in, 0, sizeof(*in));
    for (i = 0; i < r->head.nheaders; i++) {
        h = &r->head.headers[i];
        switch (h->name.len) {
        case 5:
            if (ed_str_caseeq(&h->name, "Range") && !in->range) {
                in->range = &h->value;
            }
            break;
        case 8:
            if (ed_str_caseeq(&h->name, "If-Match") && !in->cond.if_match) {
                in->cond.if_match = &h->value;
            } else if (ed_str_caseeq(&h->name, "If-Range")
                       && !in->if_range)
            {
                in->if_range = &h->value;
            }
            break;
        case 13:
            if (ed_str_caseeq(&h->name, "If-None-Match")
                && !in->cond.if_none_match)
            {
                in->cond.if_none_match = &h->value;
            }
            break;
        case 15:
            if (ed_str_caseeq(&h->name, "Accept-Encoding")
                && !in->accept_encoding)
            {
                in->accept_encoding = &h->value;
            }
            break;
        case 17:
            if (ed_str_caseeq(&h->name, "If-Modified-Since")
                && !in->cond.if_modified_since)
            {
                in->cond.if_modified_since = &h->value;
            }
            break;
        case 19:
            if (ed_str_caseeq(&h->name, "If-Unmodified-Since")
                && !in->cond.if_unmodified_since)
            {
                in->cond.if_unmodified_since = &h->value;
            }
            break;
        default:
            break;
        }
    }
}

/* Whether the request's method is allowed. */
static bool
ed_static_method_ok(const ed_http_static_conf_t *scf, ed_http_request_t *r)
{
    ed_str_t *m;
    size_t    i;

    if (r->head.method_id == ED_HTTP_GET || r->head.method_id == ED_HTTP_HEAD)
    {
        if (scf->get_allowed) {
            return true;
        }
    }
    if (scf->methods == NULL) {
        return false;
    }
    m = scf->methods->elts;
    for (i = 0; i < scf->methods->nelts; i++) {
        if (ed_str_eq(&m[i], &r->head.method)) {
            return true;
        }
    }
    return false;
}

/* dotfiles: deny refuses any name starting with '.', except a leading
 * /.well-known/ (RFC 8615: meant to be served, e.g. ACME challenges).
 * Returns true when uri is refused. */
static bool
ed_static_dotfile(const ed_str_t *uri)
{
    static const char wk[] = "/.well-known/";

    if (uri->len >= sizeof(wk) - 1 && memcmp(uri->data, wk, sizeof(wk) - 1)
                                          == 0)
    {
        return ed_http_path_has_dotfile(uri->data + sizeof(wk) - 2,
                                        uri->len - (sizeof(wk) - 2));
    }
    return ed_http_path_has_dotfile(uri->data, uri->len);
}

/* Opens path through the cache and ties the reference to the request
 * pool: it is released when the request ends, also when the connection
 * is dropped. Returns ED_OK with *f, or a status. */
static int
ed_static_open(ed_http_request_t *r, const ed_http_static_conf_t *scf,
               const ed_str_t *path, size_t root_len, ed_http_file_t **f)
{
    int rc, err;

    rc = ed_http_file_open(path->data, path->len, root_len, scf->symlinks,
                           f);
    if (rc != ED_OK) {
        if (rc == 500) {
            err = errno;
            ed_http_log(ED_LOG_ERR, r, err, "open() \"%s\" failed",
                        ed_http_log_str(r, path->data, path->len, 512));
        }
        return rc;
    }
    if (ed_pool_cleanup_add(r->pool, (ed_pool_cleanup_pt)ed_http_file_release,
                            *f)
        != ED_OK)
    {
        ed_http_file_release(*f);
        return 500;
    }
    return ED_OK;
}

/* Maps uri with the location's root or alias. Returns ED_OK or a
 * status. */
static int
ed_static_map(ed_http_request_t *r, const ed_http_static_conf_t *scf,
              const ed_str_t *uri, ed_str_t *path, size_t *root_len)
{
    static const ed_str_t none = ed_null_string;
    const ed_str_t       *prefix = &none;

    if (scf->alias.len && r->loc && r->loc->kind != ED_HTTP_LOC_REGEX
        && r->loc->kind != ED_HTTP_LOC_REGEX_CASELESS)
    {
        prefix = &r->loc->match;
    }
    return ed_http_map_path(r->pool, scf->root.len ? &scf->root
                                                   : &r->clcf->root,
                            scf->alias.len ? &scf->alias : NULL, prefix, uri,
                            scf->extra, path, root_len);
}

/* Adds a header whose name is a literal. ED_OK or ED_ERROR. */
#define ed_static_header(r, name, v)                                         \
    ed_http_add_header(r, name, sizeof(name) - 1, (v)->data, (v)->len)

/* 301 to the directory's URI with a slash (and the query). Returns ED_OK,
 * ED_ERROR or 500. */
static int
ed_static_redirect_dir(ed_http_request_t *r, const ed_str_t *uri)
{
    static const ed_str_t html = ed_string("text/html");
    ed_str_t              loc;
    char                  body[256];
    size_t                n;

    if (ed_http_escape_path(r->pool, uri->data, uri->len, false, &loc)
            != ED_OK
        || ed_static_append(r->pool, &loc, "/", 1) != ED_OK
        || (r->head.query.len
            && (ed_static_append(r->pool, &loc, "?", 1) != ED_OK
                || ed_static_append(r->pool, &loc, r->head.query.data,
                                    r->head.query.len)
                       != ED_OK)))
    {
        return 500;
    }
    if (ed_static_header(r, "Location", &loc) != ED_OK) {
        return 500;
    }
    n = ed_http_status_page(301, body, sizeof(body));
    return ed_http_send_response(r, 301, &html, body, n) == ED_OK
               ? ED_OK
               : ED_ERROR;
}

/* send_timeout while a file response is being written: the connection
 * is dropped when the stream made no progress for that long. */
static void
ed_static_on_send_timeout(ed_timer_t *t)
{
    ed_http_static_wait_t *w = t->data;
    ed_http_request_t     *r = w->r;
    ed_stream_t           *s = &r->hc->c.stream;

    if (r->finalized || s->wqueued == 0) {
        return;  /* written: on_flushed ends the request */
    }
    if (s->wqueued < w->queued) {
        w->queued = s->wqueued;
        ed_timer_add(ed_worker->loop, t, r->clcf->send_timeout);
        return;
    }
    ed_http_log(ED_LOG_INFO, r, 0, "client timed out sending \"%s\"",
                ed_http_log_str(r, r->uri.data, r->uri.len, 200));
    ed_http_finalize(r, ED_ERROR);
}

/* Request pool cleanup: the send_timeout timer dies with the request. */
static void
ed_static_timer_cleanup(void *data)
{
    ed_http_static_wait_t *w = data;

    ed_timer_del(ed_worker->loop, &w->timer);
}

/* The file response is written: end the request (the pool cleanup then
 * releases the file). */
static void
ed_static_on_flushed(ed_stream_t *s)
{
    ed_http_conn_t *hc = s->data;
    int             off = 0;

    s->on_flushed = NULL;
    if (hc->c.peer.sa.sa_family != AF_UNIX) {
        /* Out with the last partial segment. */
        setsockopt(s->ev.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
    }
    if (hc->r != NULL) {
        ed_http_finalize(hc->r, ED_OK);
    }
}

/* After queueing file ranges: the request ends when the stream has
 * written them (the descriptor must stay open until then), bounded by
 * send_timeout. Returns ED_AGAIN, or 500 on ENOMEM. */
static int
ed_static_wait(ed_http_request_t *r)
{
    ed_stream_t           *s = &r->hc->c.stream;
    ed_http_static_wait_t *w;
    int                    on = 1;

    w = ed_pcalloc(r->pool, sizeof(ed_http_static_wait_t));
    if (w == NULL
        || ed_pool_cleanup_add(r->pool, ed_static_timer_cleanup, w) != ED_OK)
    {
        return ED_ERROR;
    }
    if (r->hc->c.peer.sa.sa_family != AF_UNIX) {
        /* The head and the first bytes of the file in full segments, as
         * one write would send them: the client wakes up once, not for
         * a lone head first. */
        setsockopt(s->ev.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    }
    w->r = r;
    w->queued = s->wqueued;
    w->timer.handler = ed_static_on_send_timeout;
    w->timer.data = w;
    if (r->clcf->send_timeout > 0) {
        ed_timer_add(ed_worker->loop, &w->timer, r->clcf->send_timeout);
    }
    s->on_flushed = ed_static_on_flushed;
    return ED_AGAIN;
}

/* Queues body bytes [off, off + len) of f: copied from memory, or as a
 * file range (then *file is set). ED_OK or ED_ERROR. */
static int
ed_static_queue(ed_http_request_t *r, ed_http_file_t *f, int64_t off,
                int64_t len, bool *file)
{
    if (len == 0) {
        return ED_OK;
    }
    if (f->content) {
        return ed_http_send_body(r, f->content + off, (size_t)len);
    }
    r->body_bytes_sent += (uint64_t)len;
    r->bytes_sent += (uint64_t)len;
    *file = true;
    return ed_stream_write_file(&r->hc->c.stream, f->fd, (off_t)off,
                                (size_t)len);
}

/* 416 with Content-Range: bytes SIZE. Returns ED_OK or ED_ERROR. */
static int
ed_static_send_416(ed_http_request_t *r, ed_http_file_t *f)
{
    static const ed_str_t html = ed_string("text/html");
    char                  body[256], *cr;
    size_t                n;

    cr = ed_pnalloc(r->pool, 48);
    if (cr == NULL) {
        return ED_ERROR;
    }
    n = (size_t)snprintf(cr, 48, "bytes */%lld", (long long)f->size);
    if (ed_http_add_header(r, "Content-Range", 13, cr, n) != ED_OK) {
        return ED_ERROR;
    }
    n = ed_http_status_page(416, body, sizeof(body));
    return ed_http_send_response(r, 416, &html, body, n);
}

/* 206 for one range, or multipart/byteranges for several. Returns
 * ED_OK, ED_AGAIN (file ranges queued) or ED_ERROR. */
static int
ed_static_send_ranges(ed_http_request_t *r, ed_http_file_t *f,
                      const ed_str_t *type, ed_http_range_t *rg, size_t n)
{
    ed_str_t  *parts, ct;
    char      *p, boundary[40], tail[64];
    size_t     i, blen, tlen, size;
    int64_t    total = 0;
    bool       file = false;

    r->status = 206;
    if (n == 1) {
        p = ed_pnalloc(r->pool, 64);
        if (p == NULL) {
            return ED_ERROR;
        }
        size = (size_t)snprintf(p, 64, "bytes %lld-%lld/%lld",
                                (long long)rg[0].start,
                                (long long)rg[0].end - 1,
                                (long long)f->size);
        if (ed_http_add_header(r, "Content-Range", 13, p, size) != ED_OK) {
            return ED_ERROR;
        }
        r->content_type = *type;
        r->content_length = rg[0].end - rg[0].start;
        if (ed_http_send_header(r) != ED_OK
            || ed_static_queue(r, f, rg[0].start, r->content_length, &file)
                   != ED_OK)
        {
            return ED_ERROR;
        }
        return file ? ed_static_wait(r) : ED_OK;
    }

    blen = (size_t)snprintf(boundary, sizeof(boundary), "%016llx%08llx",
                            (unsigned long long)ed_http_static_boundary_seed,
                            (unsigned long long)
                                ++ed_http_static_boundary_count);
    ct.len = sizeof("multipart/byteranges; boundary=") - 1 + blen;
    ct.data = ed_pnalloc(r->pool, ct.len + 1);
    parts = ed_palloc(r->pool, n * sizeof(ed_str_t));
    if (ct.data == NULL || parts == NULL) {
        return ED_ERROR;
    }
    memcpy(ct.data, "multipart/byteranges; boundary=", ct.len - blen);
    memcpy(ct.data + ct.len - blen, boundary, blen + 1);
    for (i = 0; i < n; i++) {
        size = blen + type->len + 128;
        parts[i].data = ed_pnalloc(r->pool, size);
        if (parts[i].data == NULL) {
            return ED_ERROR;
        }
        parts[i].len = (size_t)snprintf(
            parts[i].data, size,
            "\r\n--%s\r\nContent-Type: %.*s\r\n"
            "Content-Range: bytes %lld-%lld/%lld\r\n\r\n",
            boundary, (int)type->len, type->data, (long long)rg[i].start,
            (long long)rg[i].end - 1, (long long)f->size);
        total += (int64_t)parts[i].len + (rg[i].end - rg[i].start);
    }
    tlen = (size_t)snprintf(tail, sizeof(tail), "\r\n--%s--\r\n", boundary);
    r->content_type = ct;
    r->content_length = total + (int64_t)tlen;
    if (ed_http_send_header(r) != ED_OK) {
        return ED_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (ed_http_send_body(r, parts[i].data, parts[i].len) != ED_OK
            || ed_static_queue(r, f, rg[i].start, rg[i].end - rg[i].start,
                               &file)
                   != ED_OK)
        {
            return ED_ERROR;
        }
    }
    if (ed_http_send_body(r, tail, tlen) != ED_OK) {
        return ED_ERROR;
    }
    return file ? ed_static_wait(r) : ED_OK;
}

/* Whether a body filter (gzip) will take the whole file f of this type
 * (enc: a precompressed variant, never filtered). A Range is then
 * ignored and the whole file sent, as nginx does with gzip: ranges of a
 * compressed stream made on the fly would not be stable. */
static bool
ed_static_filtered(ed_http_request_t *r, const ed_str_t *type,
                   ed_http_file_t *f, int enc)
{
    if (enc || r->loc == NULL || r->loc->header_filter == NULL) {
        return false;
    }
    r->status = 200;
    r->content_type = *type;
    r->content_length = f->size;
    return ed_http_body_filtered(r);
}

/* Reading a file into a body filter: pieces of ED_STATIC_PIECE bytes
 * with pread, at most ED_STATIC_BUDGET bytes per loop turn (other
 * connections get theirs), pausing while the client's write queue is
 * above its high water mark. Memory stays one piece plus the stream's
 * queue, whatever the file's size. */
#define ED_STATIC_PIECE   (32 * 1024)
#define ED_STATIC_BUDGET  (256 * 1024)

typedef struct {
    ed_http_request_t *r;
    int                fd;
    int64_t            off;
    int64_t            end;
    char              *buf;
    ed_timer_t         timer;    /* next turn, or send_timeout paused */
    unsigned           paused:1; /* waiting for the client to drain */
} ed_static_pipe_t;

static void ed_static_pipe_on_drain(ed_stream_t *s);

/* Request pool cleanup: nothing of the reader outlives the request. */
static void
ed_static_pipe_cleanup(void *data)
{
    ed_static_pipe_t *p = data;
    ed_stream_t      *s = &p->r->hc->c.stream;

    ed_timer_del(ed_worker->loop, &p->timer);
    if (s->on_drain == ed_static_pipe_on_drain) {
        s->on_drain = NULL;
    }
}

/* Feeds the filter until the end, a pause or the turn's budget. Returns
 * ED_OK (all read), ED_AGAIN (goes on later) or ED_ERROR. */
static int
ed_static_pipe_run(ed_static_pipe_t *p)
{
    ed_http_request_t *r = p->r;
    ed_stream_t       *s = &r->hc->c.stream;
    size_t             budget = ED_STATIC_BUDGET;
    ssize_t            n;
    int                err;

    while (p->off < p->end) {
        if (ed_stream_write_blocked(s)) {
            p->paused = 1;
            s->on_drain = ed_static_pipe_on_drain;
            if (r->clcf->send_timeout > 0) {
                ed_timer_add(ed_worker->loop, &p->timer,
                             r->clcf->send_timeout);
            }
            return ED_AGAIN;
        }
        if (budget == 0) {
            p->paused = 0;
            ed_timer_add(ed_worker->loop, &p->timer, 0);
            return ED_AGAIN;
        }
        n = pread(p->fd, p->buf,
                  (size_t)ed_min(p->end - p->off, ED_STATIC_PIECE),
                  (off_t)p->off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            /* Shortened meanwhile: the body cannot be completed. */
            err = n < 0 ? errno : 0;
            ed_http_log(ED_LOG_ERR, r, err, "reading \"%s\" failed",
                        ed_http_log_str(r, r->uri.data, r->uri.len, 200));
            return ED_ERROR;
        }
        if (ed_http_send_body(r, p->buf, (size_t)n) != ED_OK) {
            return ED_ERROR;
        }
        p->off += n;
        budget -= ed_min(budget, (size_t)n);
    }
    return ED_OK;
}

/* Goes on from an event; the request ends here when the file is read. */
static void
ed_static_pipe_resume(ed_static_pipe_t *p)
{
    int rc = ed_static_pipe_run(p);

    if (rc != ED_AGAIN) {
        ed_http_finalize(p->r, rc);
    }
}

static void
ed_static_pipe_on_drain(ed_stream_t *s)
{
    ed_http_conn_t   *hc = s->data;
    ed_static_pipe_t *p = hc->r->handler_ctx;

    s->on_drain = NULL;
    ed_timer_del(ed_worker->loop, &p->timer);
    p->paused = 0;
    ed_static_pipe_resume(p);
}

static void
ed_static_pipe_on_timer(ed_timer_t *t)
{
    ed_static_pipe_t *p = t->data;
    ed_http_request_t *r = p->r;

    if (p->paused) {
        ed_http_log(ED_LOG_INFO, r, 0, "client timed out sending \"%s\"",
                    ed_http_log_str(r, r->uri.data, r->uri.len, 200));
        ed_http_finalize(r, ED_ERROR);
        return;
    }
    ed_static_pipe_resume(p);
}

/* Sends the whole of f through the body filter. Returns ED_OK (all
 * given to the filter: the caller finalizes), ED_AGAIN or ED_ERROR. */
static int
ed_static_pipe(ed_http_request_t *r, ed_http_file_t *f)
{
    ed_static_pipe_t *p;

    p = ed_pcalloc(r->pool, sizeof(ed_static_pipe_t));
    if (p == NULL
        || (p->buf = ed_pnalloc(r->pool, ED_STATIC_PIECE)) == NULL
        || ed_pool_cleanup_add(r->pool, ed_static_pipe_cleanup, p) != ED_OK)
    {
        return ED_ERROR;
    }
    p->r = r;
    p->fd = f->fd;
    p->end = f->size;
    p->timer.handler = ed_static_pipe_on_timer;
    p->timer.data = p;
    r->handler_ctx = p;
    return ed_static_pipe_run(p);
}

/* Picks a precompressed variant of path the client accepts. Returns
 * ED_OK with *f and *enc set (or left alone when there is none), or a
 * status. */
static int
ed_static_variant(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                  const ed_http_static_in_t *in, ed_str_t *path,
                  size_t root_len, ed_http_file_t **f, int *enc)
{
    ed_http_file_t *v;
    ed_str_t        vp;
    const int      *e = scf->precompressed->elts;
    size_t          i;
    int             rc;

    for (i = 0; i < scf->precompressed->nelts; i++) {
        if (e[i] == ED_STATIC_ENC_BR) {
            if (!ed_http_accepts_coding(in->accept_encoding, "br", 2)) {
                continue;
            }
            memcpy(path->data + path->len, ".br", 4);
            vp.len = path->len + 3;
        } else {
            if (!ed_http_accepts_coding(in->accept_encoding, "gzip", 4)
                && !ed_http_accepts_coding(in->accept_encoding, "x-gzip", 6))
            {
                continue;
            }
            memcpy(path->data + path->len, ".gz", 4);
            vp.len = path->len + 3;
        }
        vp.data = path->data;
        rc = ed_static_open(r, scf, &vp, root_len, &v);
        path->data[path->len] = '\0';
        if (rc == ED_OK && !v->is_dir) {
            *f = v;
            *enc = e[i];
            return ED_OK;
        }
        if (rc != ED_OK && rc != 404) {
            return rc;
        }
    }
    return ED_OK;
}

/* Serves the regular file f found at path: validators, preconditions,
 * ranges, then the body from memory or with sendfile. Returns ED_OK,
 * ED_AGAIN, ED_ERROR or a status. */
static int
ed_static_send_file(ed_http_request_t *r, ed_http_static_conf_t *scf,
                    ed_http_file_t *f, ed_str_t *path, size_t root_len)
{
    static const ed_str_t  bytes = ed_string("bytes");
    static const ed_str_t  vary = ed_string("Accept-Encoding");
    static const ed_str_t  br = ed_string("br"), gzip = ed_string("gzip");
    ed_http_static_in_t    in;
    ed_http_range_t        rg[ED_HTTP_RANGES_MAX];
    const ed_str_t        *type, *etag = NULL;
    ed_str_t               tag;
    time_t                 mtime;
    size_t                 n = 0;
    int                    rc, enc = 0, ranges = ED_HTTP_RANGE_IGNORE;
    bool                   file = false, plain = r->error_status == 0;

    ed_static_scan(r, &in);
    type = ed_http_mime_lookup(scf->mcf->mime, path->data, path->len);
    if (type == NULL) {
        type = scf->mcf->default_value;
    }
    if (scf->precompressed && scf->precompressed->nelts
        && in.accept_encoding)
    {
        rc = ed_static_variant(r, scf, &in, path, root_len, &f, &enc);
        if (rc != ED_OK) {
            return rc;
        }
    }
    if (scf->etag) {
        etag = &f->etag;
        if (enc) {
            /* Another representation: another tag, even should its size
             * and date equal the original's. */
            tag.data = ed_pnalloc(r->pool, f->etag.len + 4);
            if (tag.data == NULL) {
                return 500;
            }
            tag.len = (size_t)snprintf(tag.data, f->etag.len + 4,
                                       "%.*s-%s\"", (int)f->etag.len - 1,
                                       f->etag.data,
                                       enc == ED_STATIC_ENC_BR ? "br"
                                                               : "gz");
            etag = &tag;
        }
    }
    mtime = scf->last_modified ? f->mtime : -1;

    if (plain) {
        rc = ed_http_cond_eval(&in.cond, etag, mtime,
                               r->head.method_id == ED_HTTP_GET
                                   || r->head.method_id == ED_HTTP_HEAD);
        if (rc == 412) {
            return 412;
        }
        if (scf->ranges && in.range && rc == 0
            && r->head.method_id == ED_HTTP_GET
            && (in.if_range == NULL
                || ed_http_cond_if_range(in.if_range, etag, mtime))
            && !ed_static_filtered(r, type, f, enc))
        {
            ranges = ed_http_range_parse(in.range->data, in.range->len,
                                         f->size, rg, ED_HTTP_RANGES_MAX,
                                         &n);
            if (ranges == ED_HTTP_RANGE_UNSATISFIABLE) {
                return ed_static_send_416(r, f) == ED_OK ? ED_OK : ED_ERROR;
            }
        }
    } else {
        rc = 0;
    }

    if ((etag && ed_static_header(r, "ETag", etag) != ED_OK)
        || (mtime >= 0
            && ed_static_header(r, "Last-Modified", &f->last_modified)
                   != ED_OK)
        || (scf->cache_control.len
            && ed_static_header(r, "Cache-Control", &scf->cache_control)
                   != ED_OK)
        || (scf->precompressed && scf->precompressed->nelts
            && ed_static_header(r, "Vary", &vary) != ED_OK))
    {
        return 500;
    }
    if (rc == 304) {
        return ed_http_send_response(r, 304, NULL, NULL, 0) == ED_OK
                   ? ED_OK
                   : ED_ERROR;
    }
    if ((scf->ranges && ed_static_header(r, "Accept-Ranges", &bytes)
                            != ED_OK)
        || (enc
            && ed_static_header(r, "Content-Encoding",
                                enc == ED_STATIC_ENC_BR ? &br : &gzip)
                   != ED_OK))
    {
        return 500;
    }
    if (ranges == ED_HTTP_RANGE_OK) {
        return ed_static_send_ranges(r, f, type, rg, n);
    }

    r->status = 200;
    r->content_type = *type;
    r->content_length = f->size;
    if (ed_http_send_header(r) != ED_OK) {
        return ED_ERROR;
    }
    if (r->head_only) {
        return ED_OK;
    }
    if (r->body_filter && f->content == NULL) {
        /* A filter (gzip) must see the bytes: no sendfile. */
        return ed_static_pipe(r, f);
    }
    if (ed_static_queue(r, f, 0, f->size, &file) != ED_OK) {
        return ED_ERROR;
    }
    return file ? ed_static_wait(r) : ED_OK;
}

/* Lists the directory at path (its URI is r->uri). Returns ED_OK,
 * ED_ERROR or a status. */
static int
ed_static_autoindex(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                    const ed_str_t *path, size_t root_len)
{
    static const ed_str_t html = ed_string("text/html; charset=utf-8");
    static const ed_str_t json = ed_string("application/json");
    ed_str_t              body;
    bool                  is_json;
    int                   rc, err;

    is_json = scf->autoindex == ED_STATIC_AUTOINDEX_JSON;
    rc = ed_http_dir_list(r->pool, path->data, path->len, root_len,
                          scf->symlinks,
                          scf->dotfiles == ED_STATIC_DOTFILES_DENY,
                          is_json ? ED_HTTP_LIST_JSON : ED_HTTP_LIST_HTML,
                          &r->uri, &body);
    if (rc != ED_OK) {
        if (rc == 500) {
            err = errno;
            ed_http_log(ED_LOG_ERR, r, err, "listing \"%s\" failed",
                        ed_http_log_str(r, path->data, path->len, 512));
        }
        return rc;
    }
    return ed_http_send_response(r, 200, is_json ? &json : &html, body.data,
                                 body.len)
                   == ED_OK
               ? ED_OK
               : ED_ERROR;
}

/* Serves the index file name of the directory r->uri (ending with '/')
 * as nginx does: an internal redirect to its URI, so that the location
 * that URI selects serves it, after its access phase. */
static int
ed_static_index(ed_http_request_t *r, const ed_str_t *name)
{
    ed_str_t uri;

    uri.len = r->uri.len + name->len;
    uri.data = ed_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return 500;
    }
    memcpy(uri.data, r->uri.data, r->uri.len);
    memcpy(uri.data + r->uri.len, name->data, name->len);
    return ed_http_internal_redirect(r, &uri, NULL);
}

/* A URI ending with '/': the first index file that exists, else the
 * listing, else 403 (or 404 when the directory does not exist). */
static int
ed_static_serve_dir(ed_http_request_t *r, ed_http_static_conf_t *scf,
                    ed_str_t *path, size_t root_len)
{
    ed_http_file_t *f;
    ed_str_t       *idx, ip;
    size_t          i, base = path->len;
    int             rc;

    idx = scf->index ? scf->index->elts : NULL;
    for (i = 0; idx && i < scf->index->nelts; i++) {
        /* path has room for "/" + the name + ".br" (scf->extra). */
        ip.data = path->data;
        ip.len = base;
        if (ip.len == 0 || ip.data[ip.len - 1] != '/') {
            ip.data[ip.len++] = '/';
        }
        memcpy(ip.data + ip.len, idx[i].data, idx[i].len);
        ip.len += idx[i].len;
        ip.data[ip.len] = '\0';
        rc = ed_static_open(r, scf, &ip, root_len, &f);
        if (rc == ED_OK && !f->is_dir) {
            return ed_static_index(r, &idx[i]);
        }
        path->data[base] = '\0';
        if (rc != ED_OK && rc != 404) {
            return rc;
        }
    }
    path->data[base] = '\0';
    if (scf->autoindex != ED_STATIC_AUTOINDEX_OFF) {
        return ed_static_autoindex(r, scf, path, root_len);
    }
    rc = ed_static_open(r, scf, path, root_len, &f);
    if (rc != ED_OK) {
        return rc;
    }
    return f->is_dir ? 403 : 404;
}

/* Serves uri: a directory (ending with '/'), a 301 for a directory
 * without its slash, or a file. Returns ED_OK, ED_AGAIN, ED_ERROR or a
 * status. */
static int
ed_http_static_serve(ed_http_request_t *r, ed_http_static_conf_t *scf,
                     const ed_str_t *uri)
{
    ed_http_file_t *f;
    ed_str_t        path;
    size_t          root_len;
    int             rc;

    if (scf->dotfiles == ED_STATIC_DOTFILES_DENY && ed_static_dotfile(uri))
    {
        return 404;
    }
    rc = ed_static_map(r, scf, uri, &path, &root_len);
    if (rc != ED_OK) {
        return rc;
    }
    if (uri->len && uri->data[uri->len - 1] == '/') {
        return ed_static_serve_dir(r, scf, &path, root_len);
    }
    rc = ed_static_open(r, scf, &path, root_len, &f);
    if (rc != ED_OK) {
        return rc;
    }
    if (f->is_dir) {
        return ed_static_redirect_dir(r, uri);
    }
    return ed_static_send_file(r, scf, f, &path, root_len);
}

/* Whether a try_files result is a usable path: it starts with '/' and has
 * no "." or ".." segment, no NUL and no backslash. */
static bool
ed_static_uri_ok(const ed_str_t *u)
{
    size_t i, s, n;

    if (u->len == 0 || u->data[0] != '/'
        || memchr(u->data, '\0', u->len) != NULL
        || memchr(u->data, '\\', u->len) != NULL)
    {
        return false;
    }
    for (s = 1; s <= u->len; s = i + 1) {
        for (i = s; i < u->len && u->data[i] != '/'; i++) {
            /* to the end of the segment */
        }
        n = i - s;
        if ((n == 1 && u->data[s] == '.')
            || (n == 2 && u->data[s] == '.' && u->data[s + 1] == '.'))
        {
            return false;
        }
    }
    return true;
}

/* try_files: serves the first item that exists (a directory for items
 * ending with '/'), else the last item: a status, or a URI run through
 * its location as a new internal request. */
static int
ed_static_try_files(ed_http_request_t *r, ed_http_static_conf_t *scf)
{
    ed_http_static_try_t *t = scf->try_files->elts;
    ed_http_file_t       *f;
    ed_str_t              u, path, args;
    size_t                i, n = scf->try_files->nelts, root_len;
    const char           *q;
    int                   rc;
    bool                  dir;

    for (i = 0; i + 1 < n; i++) {
        if (t[i].uri == NULL
            || ed_http_template_run(r, t[i].uri, &u) != ED_OK)
        {
            return 500;
        }
        if (!ed_static_uri_ok(&u)
            || (scf->dotfiles == ED_STATIC_DOTFILES_DENY
                && ed_static_dotfile(&u)))
        {
            continue;
        }
        rc = ed_static_map(r, scf, &u, &path, &root_len);
        if (rc == 500) {
            return rc;
        }
        if (rc != ED_OK) {
            continue;
        }
        rc = ed_static_open(r, scf, &path, root_len, &f);
        if (rc == 500) {
            return rc;
        }
        if (rc != ED_OK) {
            continue;
        }
        dir = u.data[u.len - 1] == '/';
        if (dir != (bool)f->is_dir) {
            continue;
        }
        r->uri = u;
        if (dir) {
            return ed_static_serve_dir(r, scf, &path, root_len);
        }
        return ed_static_send_file(r, scf, f, &path, root_len);
    }

    if (t[n - 1].status) {
        return t[n - 1].status;
    }
    if (ed_http_template_run(r, t[n - 1].uri, &u) != ED_OK) {
        return 500;
    }
    q = memchr(u.data, '?', u.len);
    if (q != NULL) {
        args.data = (char *)q + 1;
        args.len = u.len - (size_t)(q + 1 - u.data);
        u.len = (size_t)(q - u.data);
    }
    if (!ed_static_uri_ok(&u)) {
        return 404;
    }
    /* The fallback is served as a new request for that URI: its
     * location's access phase runs first. */
    return ed_http_internal_redirect(r, &u, q ? &args : NULL);
}

/* The content handler: methods, then try_files or the URI itself.
 * Returns ED_OK, ED_AGAIN (a file being written), ED_ERROR or a status. */
static int
ed_http_static_handler(ed_http_request_t *r)
{
    ed_http_static_loc_conf_t *lcf;
    ed_http_static_conf_t     *scf;

    lcf = ed_http_loc_conf(r, ed_http_static_module);
    scf = lcf->active;
    if (!r->error_status && !ed_static_method_ok(scf, r)) {
        if (ed_static_header(r, "Allow", &scf->allow) != ED_OK) {
            return 500;
        }
        return 405;
    }
    /* A backslash cannot leave the root on the file systems we serve
     * from, but it is a classic traversal probe: refused outright. */
    if (memchr(r->uri.data, '\\', r->uri.len) != NULL) {
        return 400;
    }
    if (scf->try_files && scf->try_files->nelts) {
        return ed_static_try_files(r, scf);
    }
    return ed_http_static_serve(r, scf, &r->uri);
}
