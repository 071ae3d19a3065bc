/* The gzip module: on-the-fly compression of response bodies with zlib
 * (`gzip`), through the header and body filter hooks of core. */

/*
 * Keys and defaults (config.md has the reference):
 *
 *   gzip: {enabled: false, level: 5, min_length: 256,
 *          types: [text/html, text/css, application/javascript,
 *                  application/json, image/svg+xml]}
 *     or `gzip: true | false` for {enabled: ...}. Inherited field by
 *     field: a location's block over its server's over main's.
 *
 * A response is compressed when gzip is enabled for its location, the
 * status is 200, the media type (without parameters, any case) is in
 * types ("*" for all; a type whose subtype is "*" for all its
 * subtypes), it carries no Content-Encoding (a precompressed
 * file, an upstream's encoded body) and no Cache-Control: no-transform,
 * its length is unknown or at least min_length, and Accept-Encoding
 * accepts gzip. It then goes out with Content-Encoding: gzip, without
 * Content-Length (chunked to HTTP/1.1, close-delimited to HTTP/1.0),
 * without Accept-Ranges (a Range is ignored: the whole representation
 * is sent compressed, as nginx does), with a strong ETag made weak, and
 * with Vary: Accept-Encoding, which is also added when only the client
 * made the difference. HEAD gets the same head and no body.
 *
 * The deflate state is made at the first body byte, in the request
 * pool (zlib's allocator hooks), so it goes with the request whatever
 * ends it; windowBits and memLevel shrink for small known lengths as
 * nginx does. Output is written as it is made; the producers (proxy,
 * static's file reader) pause on the client's high-water mark.
 */
#include "ed_http_explain.h"
#include "ed_http_range.h"
#include "ed_http_fields.h"

#include <zlib.h>

/* Bytes of deflate output per write: one chunk each. */
#define ED_GZIP_OUT       8192
#define ED_GZIP_WBITS     15
#define ED_GZIP_MEMLEVEL  8

typedef struct {
    ed_node_t   *node;      /* the block (ed_conf_block_t) */
    int          enabled;
    int          level;
    size_t       min_length;
    ed_array_t  *types;     /* ed_str_t, lowercased; "*" for all */
    unsigned     any_type:1;
} ed_http_gzip_conf_t;

/* Per level (main, server, location). */
typedef struct {
    ed_http_gzip_conf_t *block;   /* merged with the levels above */
    ed_http_gzip_conf_t *active;  /* what the filter uses */
} ed_http_gzip_loc_conf_t;

/* One response being compressed. */
typedef struct {
    z_stream   zs;
    char      *out;
    int64_t    length;   /* the original length, -1 unknown */
    int        level;
    unsigned   started:1;
    unsigned   done:1;
} ed_http_gzip_ctx_t;

static const char *ed_http_gzip_set_bool(ed_conf_t *cf, ed_node_t *node,
                                         void *block);
static const char *ed_http_gzip_set_types(ed_conf_t *cf,
                                          const ed_key_t *key,
                                          ed_node_t *node, void *conf);
static int ed_http_gzip_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_gzip_explain(ed_explain_t *ex);
static int ed_http_gzip_header(ed_http_request_t *r,
                               const ed_http_filter_t *self);
static int ed_http_gzip_body(ed_http_request_t *r, ed_http_link_t *link,
                             const ed_http_piece_t *p, bool last);

static const ed_http_filter_t ed_http_gzip_filter = {
    .name = "gzip",
    .header = ed_http_gzip_header,
    .body = ed_http_gzip_body,
    .memory = 1,
};

static const ed_conf_bounds_t ed_http_gzip_level_bounds = { 1, 9 };

#define ED_GKEY(name, flags, set, field, arg, def)                           \
    { name, ED_CTX_ANY_HTTP, (flags) | ED_KEY_INHERIT, set, ED_CONF_LOC,     \
      offsetof(ed_http_gzip_conf_t, field), arg, def }

/* The keys of a `gzip` block; types has its default set in attach (a
 * list). */
static const ed_key_t ed_http_gzip_block_keys[] = {
    ED_GKEY("enabled", ED_KEY_INT, ed_conf_set_bool, enabled, NULL,
            "false"),
    ED_GKEY("level", ED_KEY_INT, ed_conf_set_int, level,
            &ed_http_gzip_level_bounds, "5"),
    ED_GKEY("min_length", ED_KEY_SIZE, ed_conf_set_size, min_length, NULL,
            "256"),
    ED_GKEY("types", ED_KEY_PTR, ed_http_gzip_set_types, types, NULL, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_gzip_block = {
    .name = "gzip",
    .keys = ed_http_gzip_block_keys,
    .size = sizeof(ed_http_gzip_conf_t),
    .scalar = ed_http_gzip_set_bool,
    .expect = "expected true, false or a mapping of gzip keys "
              "(enabled, level, min_length, types)",
};

/* Main level's default block (`gzip: false`) gives every block below
 * the defaults of its keys. */
static const ed_key_t ed_http_gzip_keys[] = {
    { "gzip", ED_CTX_ANY_HTTP, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_gzip_loc_conf_t, block), &ed_http_gzip_block,
      "false" },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_gzip_module = {
    .name = "gzip",
    .keys = ed_http_gzip_keys,
    .conf_size = { 0, 0, sizeof(ed_http_gzip_loc_conf_t), 0 },
    .attach = ed_http_gzip_attach,
    .explain = ed_http_gzip_explain,
};

static const char *ed_http_gzip_default_types[] = {
    "text/html", "text/css", "application/javascript", "application/json",
    "image/svg+xml"
};

/* Configuration. */

/* gzip: true | false, short for {enabled: ...}. Returns NULL or a
 * message. */
static const char *
ed_http_gzip_set_bool(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_gzip_conf_t *gcf = block;

    ed_unused(cf);
    gcf->enabled = ed_conf_parse_bool(node->value.data, node->value.len);
    return gcf->enabled < 0 ? ed_http_gzip_block.expect : NULL;
}

/* Whether s is "*" or a media type "type/subtype" (two tokens). */
static bool
ed_http_gzip_media_type(const ed_str_t *s)
{
    size_t i, slash = 0;
    char   c;

    if (s->len == 1 && s->data[0] == '*') {
        return true;
    }
    for (i = 0; i < s->len; i++) {
        c = s->data[i];
        if (c == '/') {
            if (slash || i == 0) {
                return false;
            }
            slash = i;
        } else if (!(ed_http_char[(u_char)c] & ED_HTTP_C_TOKEN)) {
            return false;
        }
    }
    return slash && slash + 1 < s->len;
}

/* types: a list of media types or "*". Returns NULL or a message (an
 * invalid item is reported at its own position). */
static const char *
ed_http_gzip_set_types(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                       void *conf)
{
    ed_http_gzip_conf_t *gcf = conf;
    ed_array_t          *a;
    ed_node_t           *item;
    ed_str_t            *t;
    size_t               i, n;
    bool                 ok = true;

    ed_unused(key);
    if (node->type != ED_NODE_SEQ) {
        return "expected a list of media types like [text/html, "
               "application/json] (or [\"*\"])";
    }
    n = node->n;
    a = ed_array_create(cf->pool, n ? n : 1, sizeof(ed_str_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < n; i++) {
        item = node->items[i];
        if (item->type != ED_NODE_SCALAR
            || !ed_http_gzip_media_type(&item->value))
        {
            ed_conf_error(cf, item, "invalid media type \"%s\" in "
                          "gzip.types: expected type/subtype or \"*\"",
                          item->type == ED_NODE_SCALAR ? item->value.data
                                                       : "(not a scalar)");
            ok = false;
            continue;
        }
        t = ed_array_push(a);
        if (t == NULL || ed_str_dup(cf->pool, t, item->value.data,
                                    item->value.len) != ED_OK)
        {
            return "out of memory";
        }
        ed_strlow(t->data, t->data, t->len);
    }
    if (ok) {
        gcf->types = a;
    }
    return NULL;
}

/* Completes a location's merged block: the default types and whether
 * they take any type. The block may be shared with the levels above;
 * both steps give the same result each time. ED_OK or ED_ERROR
 * (recorded). */
static int
ed_http_gzip_types(ed_conf_t *cf, ed_http_gzip_conf_t *gcf)
{
    ed_str_t *t;
    size_t    i;

    if (gcf->types == NULL) {
        gcf->types = ed_array_create(cf->pool,
                                     ed_nelems(ed_http_gzip_default_types),
                                     sizeof(ed_str_t));
        if (gcf->types == NULL) {
            return ed_conf_error(cf, NULL, "out of memory");
        }
        for (i = 0; i < ed_nelems(ed_http_gzip_default_types); i++) {
            t = ed_array_push(gcf->types);
            t->data = (char *)ed_http_gzip_default_types[i];
            t->len = strlen(t->data);
        }
    }
    t = gcf->types->elts;
    for (i = 0; i < gcf->types->nelts; i++) {
        if ((t[i].len == 1 && t[i].data[0] == '*')
            || (t[i].len == 3 && memcmp(t[i].data, "*/*", 3) == 0))
        {
            gcf->any_type = 1;
        }
    }
    return ED_OK;
}

/* Installs the header filter where gzip is enabled; elsewhere nothing
 * is installed and responses pay nothing. ED_OK or ED_ERROR. */
static int
ed_http_gzip_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_gzip_loc_conf_t *lcf = ed_http_conf_at(loc, ed_http_gzip_module);

    if (ed_http_gzip_types(cf, lcf->block) != ED_OK) {
        return ED_ERROR;
    }
    lcf->active = lcf->block;
    if (lcf->block->enabled) {
        return ed_http_filter_add(cf, loc, &ed_http_gzip_filter);
    }
    return ED_OK;
}

/* Requests. */

/* Whether any response header called name lists tok. */
static bool
ed_http_gzip_out_has(ed_http_request_t *r, const char *name, size_t nlen,
                     const char *tok, size_t tlen)
{
    ed_http_out_header_t *h = r->headers_out.elts;
    size_t                i;

    for (i = 0; i < r->headers_out.nelts; i++) {
        if (h[i].name.len == nlen
            && ed_strncasecmp(h[i].name.data, name, nlen) == 0
            && ed_http_list_has(h[i].value.data, h[i].value.len, tok, tlen))
        {
            return true;
        }
    }
    return false;
}

/* Whether the media type (parameters dropped) is one to compress. */
static bool
ed_http_gzip_type_ok(const ed_http_gzip_conf_t *gcf, const ed_str_t *ct)
{
    const ed_str_t *t = gcf->types->elts;
    size_t          i, len = 0;

    if (ct->len == 0) {
        return false;
    }
    if (gcf->any_type) {
        return true;
    }
    while (len < ct->len && ct->data[len] != ';' && ct->data[len] != ' '
           && ct->data[len] != '\t')
    {
        len++;
    }
    for (i = 0; i < gcf->types->nelts; i++) {
        if (t[i].len == len && ed_strncasecmp(ct->data, t[i].data, len) == 0)
        {
            return true;
        }
        /* A subtype "*" stands for every subtype of that type. */
        if (t[i].len >= 3 && t[i].data[t[i].len - 1] == '*'
            && t[i].data[t[i].len - 2] == '/' && len >= t[i].len
            && ed_strncasecmp(ct->data, t[i].data, t[i].len - 1) == 0)
        {
            return true;
        }
    }
    return false;
}

/* The header filter (see ed_http.h and the top of this file): takes
 * the body when it is to be compressed. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_http_gzip_header(ed_http_request_t *r, const ed_http_filter_t *self)
{
    ed_http_gzip_loc_conf_t *lcf;
    ed_http_gzip_conf_t     *gcf;
    ed_http_gzip_ctx_t      *ctx;
    ed_http_out_header_t    *etag;
    char                    *weak;
    bool                     accepted;

    lcf = ed_http_loc_conf(r, ed_http_gzip_module);
    gcf = lcf->active;
    if (r->status != 200 || r->out_filtered || gcf == NULL || !gcf->enabled
        || !ed_http_gzip_type_ok(gcf, &r->content_type)
        || (r->content_length >= 0
            && r->content_length < (int64_t)gcf->min_length)
        || ed_http_out_header(r, "Content-Encoding", 16) != NULL
        || ed_http_gzip_out_has(r, "Cache-Control", 13, "no-transform", 12))
    {
        return ED_OK;
    }
    accepted = ed_http_accepts_coding(ed_http_header(r, "Accept-Encoding"),
                                      "gzip", 4);
    /* The answer depends on Accept-Encoding from here on, whatever it
     * was: caches must know. */
    if (!ed_http_gzip_out_has(r, "Vary", 4, "Accept-Encoding", 15)
        && !ed_http_gzip_out_has(r, "Vary", 4, "*", 1)
        && ed_http_add_header(r, "Vary", 4, "Accept-Encoding", 15) != ED_OK)
    {
        return ED_ERROR;
    }
    if (!accepted) {
        return ED_OK;
    }
    if (ed_http_add_header(r, "Content-Encoding", 16, "gzip", 4) != ED_OK) {
        return ED_ERROR;
    }
    /* Ranges of the compressed body are not offered. */
    ed_http_out_header_del(r, "Accept-Ranges", 13);
    /* The bytes differ from the identity representation's, and a
     * compressor may make other bytes next time: a weak validator. */
    etag = ed_http_out_header(r, "ETag", 4);
    if (etag && etag->value.len && etag->value.data[0] == '"') {
        weak = ed_pnalloc(r->pool, etag->value.len + 2);
        if (weak == NULL) {
            return ED_ERROR;
        }
        weak[0] = 'W';
        weak[1] = '/';
        memcpy(weak + 2, etag->value.data, etag->value.len);
        etag->value.data = weak;
        etag->value.len += 2;
    }
    if (!r->head_only) {
        ctx = ed_pcalloc(r->pool, sizeof(ed_http_gzip_ctx_t));
        if (ctx == NULL) {
            return ED_ERROR;
        }
        ctx->length = r->content_length;
        ctx->level = gcf->level;
        if (ed_http_filter_start(r, self, ctx) != ED_OK) {
            return ED_ERROR;
        }
    }
    r->content_length = -1;
    return ED_OK;
}

/* zlib's allocator: the request pool, freed with the request however it
 * ends (no deflateEnd needed, nothing to leak). */
static voidpf
ed_http_gzip_alloc(voidpf opaque, uInt items, uInt size)
{
    return ed_palloc(opaque, (size_t)items * size);
}

static void
ed_http_gzip_free(voidpf opaque, voidpf address)
{
    ed_unused(opaque);
    ed_unused(address);
}

/* Starts the deflate stream: a smaller window and less hash memory for
 * small known lengths (as nginx), which need no more. ED_OK or
 * ED_ERROR. */
static int
ed_http_gzip_start(ed_http_request_t *r, ed_http_gzip_ctx_t *ctx)
{
    int wbits = ED_GZIP_WBITS, memlevel = ED_GZIP_MEMLEVEL;

    if (ctx->length >= 0) {
        while (ctx->length < ((int64_t)1 << (wbits - 1)) && wbits > 9) {
            wbits--;
            if (memlevel > 1) {
                memlevel--;
            }
        }
    }
    ctx->out = ed_pnalloc(r->pool, ED_GZIP_OUT);
    if (ctx->out == NULL) {
        return ED_ERROR;
    }
    ctx->zs.zalloc = ed_http_gzip_alloc;
    ctx->zs.zfree = ed_http_gzip_free;
    ctx->zs.opaque = r->pool;
    /* windowBits + 16: a gzip header and trailer around the deflate
     * data. */
    if (deflateInit2(&ctx->zs, ctx->level, Z_DEFLATED, wbits + 16, memlevel,
                     Z_DEFAULT_STRATEGY)
        != Z_OK)
    {
        ed_http_log(ED_LOG_ERR, r, 0, "deflateInit2() failed");
        return ED_ERROR;
    }
    ctx->started = 1;
    return ED_OK;
}

/* The body filter: deflates the pieces (in memory: core reads files
 * for it) and passes the output on as it comes; at the end, finishes the
 * stream (an empty body still becomes a valid gzip member). ED_OK or
 * ED_ERROR. */
static int
ed_http_gzip_body(ed_http_request_t *r, ed_http_link_t *link,
                  const ed_http_piece_t *p, bool last)
{
    ed_http_gzip_ctx_t *ctx = link->ctx;
    z_stream           *zs = &ctx->zs;
    ed_http_piece_t     o;
    const char         *in = p ? p->data : NULL;
    size_t              len = p ? p->len : 0, piece;
    int                 rc;

    if (ctx->done) {
        return last ? ed_http_filter_next(r, link, NULL, true) : ED_OK;
    }
    if (!ctx->started && ed_http_gzip_start(r, ctx) != ED_OK) {
        return ED_ERROR;
    }
    o.fd = -1;
    o.off = 0;
    o.data = ctx->out;
    do {
        /* avail_in is a uInt: feed very large buffers in slices. */
        piece = ed_min(len, (size_t)1 << 30);
        zs->next_in = (Bytef *)in;
        zs->avail_in = (uInt)piece;
        if (piece != 0) {
            /* The last call may have no bytes, and in no buffer: NULL
             * plus 0 is undefined in C. */
            in += piece;
            len -= piece;
        }
        for (;;) {
            zs->next_out = (Bytef *)ctx->out;
            zs->avail_out = ED_GZIP_OUT;
            rc = deflate(zs, last && len == 0 ? Z_FINISH : Z_NO_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
                ed_http_log(ED_LOG_ERR, r, 0, "deflate() failed: %d", rc);
                return ED_ERROR;
            }
            o.len = ED_GZIP_OUT - zs->avail_out;
            if (o.len && ed_http_filter_next(r, link, &o, false) != ED_OK) {
                return ED_ERROR;
            }
            if (rc == Z_STREAM_END) {
                ctx->done = 1;
                return ed_http_filter_next(r, link, NULL, true);
            }
            if (zs->avail_out != 0) {
                /* All input taken and all output out (with Z_FINISH,
                 * zlib ends with room left, so this is not reached). */
                break;
            }
        }
    } while (len > 0);
    /* A stream that did not end would be a truncated body that looks
     * complete. */
    return last ? ED_ERROR : ED_OK;
}

/* eddy explain: where gzip is on, its effective settings. */
static int
ed_http_gzip_explain(ed_explain_t *ex)
{
    ed_http_gzip_loc_conf_t *lcf = ed_http_conf_at(ex->loc,
                                                   ed_http_gzip_module);
    ed_http_gzip_conf_t     *g = lcf->active;
    ed_explain_buf_t         types;
    ed_node_t               *node;
    ed_str_t                *t;
    const char              *from;
    char                     num[32];
    size_t                   i;

    if (ex->phase != ED_EXPLAIN_FILTERS || g == NULL || !g->enabled) {
        return ED_DECLINED;
    }
    ed_explain_handler(ex, "gzip");
    /* `gzip: true` is the block's enabled. */
    from = ed_explain_from(ex, NULL, "gzip", &node, 0);
    if (node == NULL || node->type != ED_NODE_SCALAR) {
        from = ed_explain_from(ex, "gzip", "enabled", NULL, 0);
    }
    ed_explain_set(ex, "enabled", "true", from);
    snprintf(num, sizeof(num), "%d", g->level);
    ed_explain_set(ex, "level", num,
                   ed_explain_from(ex, "gzip", "level", NULL, 1));
    snprintf(num, sizeof(num), "%zu", g->min_length);
    ed_explain_set(ex, "min_length", num,
                   ed_explain_from(ex, "gzip", "min_length", NULL, 2));
    memset(&types, 0, sizeof(types));
    ed_explain_lit(&types, "[");
    t = g->types->elts;
    for (i = 0; i < g->types->nelts; i++) {
        ed_explain_printf(&types, "%s%.*s", i ? ", " : "", (int)t[i].len,
                          t[i].data);
    }
    ed_explain_lit(&types, "]");
    ed_explain_set(ex, "types", types.data ? types.data : "[]",
                   ed_explain_from(ex, "gzip", "types", NULL, 3));
    ed_explain_buf_free(&types);
    return ED_OK;
}
