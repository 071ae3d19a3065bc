/* The static module's private declarations, shared by its
 * configuration (ed_http_static_conf.c) and its handler
 * (ed_http_static.c). */
#ifndef ED_HTTP_STATIC_H
#define ED_HTTP_STATIC_H

#include "ed_http.h"
#include "ed_http_explain.h"
#include "ed_http_file_cache.h"
#include "ed_http_mime.h"
#include "ed_http_range.h"

/* Files up to this size are held in memory by the open-file cache and
 * sent with their head in one write; at most ED_STATIC_MEMORY bytes of
 * them per worker. */
#define ED_STATIC_INLINE_MAX   (16 * 1024)
#define ED_STATIC_MEMORY       (64 * 1024 * 1024)

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
/* expires (ed_http_static_expires.c). */
typedef struct ed_http_expires_conf_s ed_http_expires_conf_t;

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
    ed_http_expires_conf_t *expires;
    int               dotfiles;
    int               symlinks;
    ed_array_t       *methods;        /* ed_str_t */

    /* Derived once merged. */
    ed_str_t                    allow;
    size_t                      extra;  /* path room: index names, .br */
    unsigned                    get_allowed:1;
    unsigned                    expires_on:1;
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

extern ed_module_t ed_http_static_module;

/* The content handler a location with static handling gets. */
int ed_http_static_handler(ed_http_request_t *r);
/* The worker's open-file cache and multipart boundaries. */
int ed_http_static_init_worker(ed_worker_t *w);
void ed_http_static_exit_worker(ed_worker_t *w);
/* Whether the request's method is allowed (methods). */
bool ed_http_static_method_ok(const ed_http_static_conf_t *scf,
                              ed_http_request_t *r);
/* Whether uri is refused by dotfiles: deny (a name starting with '.',
 * except under a leading /.well-known/); false with dotfiles: allow. */
bool ed_http_static_dotfile(const ed_http_static_conf_t *scf,
                            const ed_str_t *uri);
/* Maps uri with the location's root or alias: ED_OK with path and
 * *root_len, or a status. */
int ed_http_static_map(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                       const ed_str_t *uri, ed_str_t *path,
                       size_t *root_len);
/* Whether a try_files result is a usable path. */
bool ed_http_static_uri_ok(const ed_str_t *u);
/* The URI of the index file name in the directory r->uri (ending with
 * '/'), in r's pool. ED_OK or ED_ERROR. */
int ed_http_static_index_uri(ed_http_request_t *r, const ed_str_t *name,
                             ed_str_t *uri);

/* Writes the path of the index file name in the directory path (its
 * first base bytes) into ip, over path's buffer: it has room for "/",
 * the name and ".br" (scf->extra). The caller puts path->data[base]
 * back to '\0'. */
static inline void
ed_http_static_index_path(ed_str_t *path, size_t base, const ed_str_t *name,
                          ed_str_t *ip)
{
    ip->data = path->data;
    ip->len = base;
    if (ip->len == 0 || ip->data[ip->len - 1] != '/') {
        ip->data[ip->len++] = '/';
    }
    memcpy(ip->data + ip->len, name->data, name->len);
    ip->len += name->len;
    ip->data[ip->len] = '\0';
}

/* The media type of the file at path: by its extension, else
 * default_type. */
static inline const ed_str_t *
ed_http_static_type(const ed_http_static_conf_t *scf, const ed_str_t *path)
{
    const ed_str_t *type;

    type = ed_http_mime_lookup(scf->mcf->mime, path->data, path->len);
    return type ? type : scf->mcf->default_value;
}
/* expires: the setter of its key; whether a value sets anything; the
 * headers for a response of that media type and status (nothing for a
 * status outside 200, 201, 204, 206, 301-304, 307, 308). ED_OK or
 * ED_ERROR. */
const char *ed_http_static_set_expires(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
bool ed_http_static_expires_on(const ed_http_expires_conf_t *e);
int ed_http_static_expires(ed_http_request_t *r,
                           const ed_http_static_conf_t *scf,
                           const ed_str_t *type, int status);
/* eddy explain: the static module's part (ed_http_static_explain.c). */
int ed_http_static_explain(ed_explain_t *ex);
/* Appends s to a growing string (pool). Returns ED_OK or ED_ERROR. */
int ed_http_static_append(ed_pool_t *pool, ed_str_t *dst, const char *s,
                          size_t len);

#endif /* ED_HTTP_STATIC_H */
