/* MIME types: loading and parsing "type ext ..." files into an
 * open-addressing hash of lowercase extensions, and looking paths up in
 * it. */
#include "ed_http_mime.h"
#include "ed_conf.h"

#include <fcntl.h>
#include <sys/stat.h>

typedef struct {
    const char *ext;       /* lowercase, NUL-terminated; NULL: free slot */
    uint32_t    hash;
    unsigned    line;      /* where it was defined, for duplicates */
    ed_str_t   *value;     /* Content-Type value */
} ed_http_mime_entry_t;

struct ed_http_mime_s {
    ed_http_mime_entry_t *slots;
    size_t                mask;   /* slots - 1, a power of two minus 1 */
    size_t                n;
};

/* What a mime types file may use in types and extensions: RFC 9110
 * tchar, which excludes '/' (the extension check also refuses '.'). */
static bool
ed_mime_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* FNV-1a of an extension (already lowercase). */
static uint32_t
ed_mime_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t   i;

    for (i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

/* The slot of ext (lowercase), or the free slot where it would go. */
static ed_http_mime_entry_t *
ed_mime_slot(const ed_http_mime_t *m, const char *ext, size_t len,
             uint32_t hash)
{
    ed_http_mime_entry_t *e;
    size_t                i = hash & m->mask;

    for (;;) {
        e = &m->slots[i];
        if (e->ext == NULL
            || (e->hash == hash && strncmp(e->ext, ext, len) == 0
                && e->ext[len] == '\0'))
        {
            return e;
        }
        i = (i + 1) & m->mask;
    }
}

ed_str_t *
ed_http_mime_value(ed_pool_t *pool, const char *type, size_t len)
{
    static const char charset[] = "; charset=utf-8";
    ed_str_t *v;
    bool      text;

    v = ed_palloc(pool, sizeof(ed_str_t));
    if (v == NULL) {
        return NULL;
    }
    text = (len > 5 && ed_strncasecmp(type, "text/", 5) == 0)
           || (len == 22 && ed_strncasecmp(type, "application/javascript",
                                           22) == 0);
    if (text && memchr(type, ';', len) != NULL) {
        text = false;  /* parameters given: keep them as they are */
    }
    v->len = len + (text ? sizeof(charset) - 1 : 0);
    v->data = ed_pnalloc(pool, v->len + 1);
    if (v->data == NULL) {
        return NULL;
    }
    memcpy(v->data, type, len);
    if (text) {
        memcpy(v->data + len, charset, sizeof(charset) - 1);
    }
    v->data[v->len] = '\0';
    return v;
}

/* Records a parse error. Returns NULL for the caller to return. */
static ed_http_mime_t *
ed_mime_fail(unsigned *line, unsigned *col, const char **err, unsigned l,
             unsigned c, const char *msg)
{
    *line = l;
    *col = c;
    *err = msg;
    return NULL;
}

/* One token of a line: start and length. */
typedef struct {
    const char *p;
    size_t      len;
    unsigned    line;
    unsigned    col;
    unsigned    type;  /* the first token of its line */
} ed_mime_tok_t;

ed_http_mime_t *
ed_http_mime_parse(ed_pool_t *pool, const char *text, size_t len,
                   unsigned *line, unsigned *col, const char **err)
{
    ed_http_mime_t       *m;
    ed_http_mime_entry_t *e;
    ed_array_t            toks;
    ed_mime_tok_t        *t, *type = NULL;
    ed_str_t             *value = NULL;
    const char           *p, *end = text + len, *ls, *slash;
    char                  ext[ED_HTTP_MIME_EXT_MAX + 1], *msg;
    unsigned              l = 1;
    size_t                i, k, nslots, count = 0;

    *line = 0;
    *col = 0;
    *err = "out of memory";
    if (ed_array_init(&toks, pool, 256, sizeof(ed_mime_tok_t)) != ED_OK) {
        return NULL;
    }
    /* Pass 1: tokens with positions, checked; each line's type comes
     * before its extensions. */
    for (p = text; p < end; l++) {
        ls = p;
        type = NULL;
        while (p < end && *p != '\n') {
            if (*p == ' ' || *p == '\t' || *p == '\r') {
                p++;
                continue;
            }
            if (*p == '#') {
                while (p < end && *p != '\n') {
                    p++;
                }
                break;
            }
            t = ed_array_push(&toks);
            if (t == NULL) {
                return NULL;
            }
            t->p = p;
            t->line = l;
            t->col = (unsigned)(p - ls) + 1;
            t->type = type == NULL;
            while (p < end && (ed_mime_tchar(*p) || *p == '/')) {
                p++;
            }
            t->len = (size_t)(p - t->p);
            if (p < end && *p != ' ' && *p != '\t' && *p != '\r'
                && *p != '\n' && *p != '#')
            {
                return ed_mime_fail(line, col, err, l,
                                    (unsigned)(p - ls) + 1,
                                    "invalid character in mime types "
                                    "(expected \"type ext ext ...\")");
            }
            if (type == NULL) {
                slash = memchr(t->p, '/', t->len);
                if (slash == NULL || slash == t->p
                    || slash == t->p + t->len - 1
                    || memchr(slash + 1, '/', (size_t)(t->p + t->len - slash
                                                       - 1)) != NULL)
                {
                    return ed_mime_fail(line, col, err, l, t->col,
                                        "expected a media type like "
                                        "\"text/html\" at the start of "
                                        "the line");
                }
                type = t;
                continue;
            }
            if (t->len > ED_HTTP_MIME_EXT_MAX || memchr(t->p, '/', t->len)
                || memchr(t->p, '.', t->len))
            {
                return ed_mime_fail(line, col, err, l, t->col,
                                    "invalid extension (expected a name "
                                    "without \".\" or \"/\", at most 32 "
                                    "characters)");
            }
            count++;
        }
        if (p < end) {
            p++;  /* the '\n' */
        }
    }

    m = ed_pcalloc(pool, sizeof(ed_http_mime_t));
    if (m == NULL) {
        return NULL;
    }
    for (nslots = 16; nslots < count * 2; nslots <<= 1) {
        /* load factor at most 1/2 */
    }
    m->slots = ed_pcalloc(pool, nslots * sizeof(ed_http_mime_entry_t));
    if (m->slots == NULL) {
        return NULL;
    }
    m->mask = nslots - 1;

    t = toks.elts;
    for (i = 0; i < toks.nelts; i++) {
        if (t[i].type) {
            value = ed_http_mime_value(pool, t[i].p, t[i].len);
            if (value == NULL) {
                return NULL;
            }
            continue;
        }
        for (k = 0; k < t[i].len; k++) {
            ext[k] = ed_tolower(t[i].p[k]);
        }
        ext[k] = '\0';
        e = ed_mime_slot(m, ext, k, ed_mime_hash(ext, k));
        if (e->ext != NULL) {
            msg = ed_pnalloc(pool, 160);
            if (msg == NULL) {
                return NULL;
            }
            snprintf(msg, 160, "extension \"%s\" is already mapped to "
                     "\"%.*s\" on line %u", ext,
                     (int)ed_min(e->value->len, 80), e->value->data, e->line);
            *err = msg;
            *line = t[i].line;
            *col = t[i].col;
            return NULL;
        }
        e->ext = ed_pstrdup(pool, ext, k);
        if (e->ext == NULL) {
            return NULL;
        }
        e->hash = ed_mime_hash(ext, k);
        e->line = t[i].line;
        e->value = value;
        m->n++;
    }
    *err = NULL;
    return m;
}

/* The built-in table: a short list of what the web mostly serves. */
static const char ed_http_mime_builtin_text[] =
    "text/html html htm shtml\n"
    "text/css css\n"
    "text/xml xml\n"
    "text/plain txt text log conf\n"
    "text/markdown md markdown\n"
    "text/csv csv\n"
    "text/calendar ics\n"
    "text/javascript mjs\n"
    "application/javascript js\n"
    "application/json json map\n"
    "application/manifest+json webmanifest\n"
    "application/wasm wasm\n"
    "application/xhtml+xml xhtml\n"
    "application/rss+xml rss\n"
    "application/atom+xml atom\n"
    "application/pdf pdf\n"
    "application/zip zip\n"
    "application/gzip gz tgz\n"
    "application/x-tar tar\n"
    "application/x-bzip2 bz2\n"
    "application/x-xz xz\n"
    "application/zstd zst\n"
    "application/x-7z-compressed 7z\n"
    "application/octet-stream bin exe dll iso img dmg deb rpm msi\n"
    "image/png png\n"
    "image/jpeg jpg jpeg\n"
    "image/gif gif\n"
    "image/webp webp\n"
    "image/avif avif\n"
    "image/svg+xml svg svgz\n"
    "image/x-icon ico\n"
    "image/bmp bmp\n"
    "image/tiff tif tiff\n"
    "font/woff woff\n"
    "font/woff2 woff2\n"
    "font/ttf ttf\n"
    "font/otf otf\n"
    "audio/mpeg mp3\n"
    "audio/ogg ogg oga\n"
    "audio/wav wav\n"
    "audio/flac flac\n"
    "audio/aac aac\n"
    "video/mp4 mp4 m4v\n"
    "video/webm webm\n"
    "video/ogg ogv\n"
    "video/quicktime mov\n"
    "video/x-msvideo avi\n";

ed_http_mime_t *
ed_http_mime_builtin(ed_pool_t *pool)
{
    const char *err;
    unsigned    line, col;

    return ed_http_mime_parse(pool, ed_http_mime_builtin_text,
                              sizeof(ed_http_mime_builtin_text) - 1, &line,
                              &col, &err);
}

const ed_str_t *
ed_http_mime_lookup(const ed_http_mime_t *m, const char *path, size_t len)
{
    ed_http_mime_entry_t *e;
    const char           *p = path + len, *dot = NULL;
    char                  ext[ED_HTTP_MIME_EXT_MAX + 1];
    size_t                n, i;

    if (m == NULL) {
        return NULL;
    }
    while (p > path && p[-1] != '/') {
        p--;
        if (*p == '.' && dot == NULL) {
            dot = p;
        }
    }
    /* No dot, a trailing dot, or only a leading one (".profile"). */
    if (dot == NULL || dot == p || dot + 1 == path + len) {
        return NULL;
    }
    n = (size_t)(path + len - dot - 1);
    if (n > ED_HTTP_MIME_EXT_MAX) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        ext[i] = ed_tolower(dot[1 + i]);
    }
    ext[n] = '\0';
    e = ed_mime_slot(m, ext, n, ed_mime_hash(ext, n));
    return e->ext ? e->value : NULL;
}

size_t
ed_http_mime_count(const ed_http_mime_t *m)
{
    return m ? m->n : 0;
}

ed_http_mime_t *
ed_http_mime_load(ed_conf_t *cf, const ed_node_t *node, const char *path,
                  bool optional)
{
    ed_http_mime_t *m;
    ed_node_t       pos;
    const char     *err;
    unsigned        line, col;
    struct stat     st;
    char           *text;
    ssize_t         n;
    size_t          got = 0;
    int             fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ENOENT && optional) {
            m = ed_http_mime_builtin(cf->pool);
            if (m == NULL) {
                ed_conf_error(cf, node, "out of memory");
            }
            return m;
        }
        ed_conf_error(cf, node, "mime_types \"%s\" cannot be read: %s",
                      path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size > 16 * 1024 * 1024)
    {
        close(fd);
        ed_conf_error(cf, node, "mime_types \"%s\" is not a regular file "
                      "of at most 16m", path);
        return NULL;
    }
    text = ed_pnalloc(cf->pool, (size_t)st.st_size + 1);
    if (text == NULL) {
        close(fd);
        ed_conf_error(cf, node, "out of memory");
        return NULL;
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, text + got, (size_t)st.st_size - got);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    m = ed_http_mime_parse(cf->pool, text, got, &line, &col, &err);
    if (m == NULL) {
        /* The position is in the types file, not in the config. */
        memset(&pos, 0, sizeof(pos));
        pos.file = path;
        pos.line = line;
        pos.col = col;
        ed_conf_error(cf, line ? &pos : node, "%s", err);
    }
    return m;
}
