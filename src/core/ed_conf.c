/* Configuration core: errors, key dispatch through the module table,
 * unset/default/inherit handling by field kind, and the generic setters. */
#include "ed_core.h"
#include "ed_conf.h"
#include "ed_module.h"
#include "ed_cycle.h"

#include <limits.h>
#include <sys/stat.h>

const char *ed_conf_prefix_origin;
unsigned    ed_conf_test_only;

#define ed_conf_field(conf, key) ((char *)(conf) + (key)->offset)

/* Writes the "file:line:col: " prefix (parts missing from node are left
 * out) into buf, as snprintf does. */
static int
ed_conf_pos(char *buf, size_t size, const ed_node_t *node)
{
    if (node == NULL) {
        return snprintf(buf, size, "%s", "");
    }
    if (node->file && node->line) {
        return snprintf(buf, size, "%s:%u:%u: ", node->file, node->line,
                        node->col);
    }
    if (node->file) {
        return snprintf(buf, size, "%s: ", node->file);
    }
    if (node->line) {
        return snprintf(buf, size, "%u:%u: ", node->line, node->col);
    }
    return snprintf(buf, size, "%s", "");
}

/* Keeps the first ED_CONF_MAX_ERRORS messages and counts all. Returns
 * ED_ERROR always, so callers can `return ed_conf_error(...)`. */
int
ed_conf_error(ed_conf_t *cf, const ed_node_t *node, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    int plen, mlen;

    if (cf->nerrors++ >= ED_CONF_MAX_ERRORS) {
        return ED_ERROR;
    }
    plen = ed_conf_pos(NULL, 0, node);
    va_start(ap, fmt);
    mlen = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    msg = plen >= 0 && mlen >= 0
              ? ed_pnalloc(cf->pool, (size_t)plen + (size_t)mlen + 1)
              : NULL;
    if (msg == NULL) {
        cf->errors[cf->nerrors - 1] = (char *)"out of memory";
        return ED_ERROR;
    }
    ed_conf_pos(msg, (size_t)plen + 1, node);
    va_start(ap, fmt);
    vsnprintf(msg + plen, (size_t)mlen + 1, fmt, ap);
    va_end(ap);
    cf->errors[cf->nerrors - 1] = msg;
    return ED_ERROR;
}

int
ed_conf_warn(ed_conf_t *cf, const ed_node_t *node, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    int plen, mlen;
    const char *lead;

    if (cf->nwarnings++ >= ED_CONF_MAX_WARNINGS) {
        return ED_OK;
    }
    /* Without a file the message still says whose warning it is. */
    lead = node && node->file ? "warning: " : "eddy: warning: ";
    plen = ed_conf_pos(NULL, 0, node);
    va_start(ap, fmt);
    mlen = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    msg = plen >= 0 && mlen >= 0
              ? ed_pnalloc(cf->pool, (size_t)plen + strlen(lead)
                                         + (size_t)mlen + 1)
              : NULL;
    if (msg == NULL) {
        cf->warnings[cf->nwarnings - 1] = (char *)"eddy: warning: out of "
                                                  "memory";
        return ED_OK;
    }
    if (node && node->file) {
        ed_conf_pos(msg, (size_t)plen + 1, node);
    } else {
        plen = 0;
    }
    memcpy(msg + plen, lead, strlen(lead));
    va_start(ap, fmt);
    vsnprintf(msg + plen + strlen(lead), (size_t)mlen + 1, fmt, ap);
    va_end(ap);
    cf->warnings[cf->nwarnings - 1] = msg;
    return ED_OK;
}

void
ed_conf_log_warnings(const ed_conf_t *cf, ed_log_t *log)
{
    unsigned i;

    for (i = 0; cf && i < cf->nwarnings && i < ED_CONF_MAX_WARNINGS; i++) {
        ed_log(ED_LOG_WARN, log, 0, "%s", cf->warnings[i]);
    }
    if (cf && cf->nwarnings > ED_CONF_MAX_WARNINGS) {
        ed_log(ED_LOG_WARN, log, 0, "%u more warnings not shown",
               cf->nwarnings - ED_CONF_MAX_WARNINGS);
    }
}

int
ed_conf_locate(const char **prefix, const char **conf, char *cwd,
               char *confbuf, size_t len)
{
    ed_conf_prefix_origin = *prefix ? "from -p"
                                    : "compiled in: --prefix=" ED_PREFIX;
    if (*prefix == NULL) {
        /* The compiled-in prefix, not the current directory: `eddy -t`
         * works from anywhere (operator.md). */
        *prefix = ED_PREFIX;
    } else if ((*prefix)[0] != '/') {
        if (realpath(*prefix, cwd) == NULL) {
            fprintf(stderr, "eddy: invalid prefix %s: %s\n", *prefix,
                    strerror(errno));
            return ED_ERROR;
        }
        *prefix = cwd;
    }
    if (*conf == NULL) {
        if (ED_CONF_PATH[0] == '/') {
            *conf = ED_CONF_PATH;
        } else {
            snprintf(confbuf, len, "%s/%s", *prefix, ED_CONF_PATH);
            *conf = confbuf;
        }
    }
    return ED_OK;
}

static void
ed_conf_print_list(char *const *list, unsigned n, unsigned max,
                   const char *what)
{
    unsigned i;

    for (i = 0; i < n && i < max; i++) {
        fprintf(stderr, "%s\n", list[i]);
    }
    if (n > max) {
        fprintf(stderr, "eddy: %u more %s not shown\n", n - max, what);
    }
}

void
ed_conf_print_errors(const ed_conf_t *cf)
{
    if (cf) {
        ed_conf_print_list(cf->errors, cf->nerrors, ED_CONF_MAX_ERRORS,
                           "errors");
    }
}

void
ed_conf_print_warnings(const ed_conf_t *cf)
{
    if (cf) {
        ed_conf_print_list(cf->warnings, cf->nwarnings,
                           ED_CONF_MAX_WARNINGS, "warnings");
    }
}

int
ed_conf_check_file(ed_conf_t *cf, const char *what, const char *path,
                   const char *key, const ed_node_t *node)
{
    struct stat st;
    ed_node_t   top;
    const char *slash, *problem;
    char        dir[PATH_MAX], why[PATH_MAX + 64];

    if (access(path, F_OK) == 0) {
        if (access(path, W_OK) == 0) {
            return ED_OK;
        }
        snprintf(why, sizeof(why), "%s", strerror(errno));
    } else {
        slash = strrchr(path, '/');
        if (slash == NULL || (size_t)(slash - path) >= sizeof(dir)) {
            return ED_OK;
        }
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash == path ? 1 : slash - path] = '\0';
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            problem = "does not exist";
        } else if (access(dir, W_OK | X_OK) != 0) {
            problem = "is not writable";
        } else {
            return ED_OK;
        }
        snprintf(why, sizeof(why), "directory %s %s", dir, problem);
    }
    if (node && node->line) {
        return ed_conf_error(cf, node, "cannot open %s \"%s\": %s; create "
                             "the directory or change %s", what, path, why,
                             key);
    }
    /* A default: say why this path, at the top of the main file. */
    memset(&top, 0, sizeof(top));
    top.file = cf->cycle ? cf->cycle->conf_file : NULL;
    top.line = 1;
    top.col = 1;
    if (node == NULL || node->value.data[0] == '/') {
        return ed_conf_error(cf, &top, "cannot open %s \"%s\": %s; %s is "
                             "not set, so the default \"%s\" applies; "
                             "create the directory or set %s", what, path,
                             why, key, node ? node->value.data : path, key);
    }
    return ed_conf_error(cf, &top, "cannot open %s \"%s\": %s; %s is not "
                         "set, so the default \"%s\" applies under the "
                         "prefix %s%s%s%s; create the directory or set %s",
                         what, path, why, key, node->value.data, cf->prefix,
                         ed_conf_prefix_origin ? " (" : "",
                         ed_conf_prefix_origin ? ed_conf_prefix_origin : "",
                         ed_conf_prefix_origin ? ")" : "", key);
}

/* Formats a setter's message in the pool. Returns it, or a static
 * fallback on ENOMEM. */
static const char *ed_conf_msg(ed_conf_t *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *
ed_conf_msg(ed_conf_t *cf, const char *fmt, ...)
{
    va_list ap;
    char *msg;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    msg = n >= 0 ? ed_pnalloc(cf->pool, (size_t)n + 1) : NULL;
    if (msg == NULL) {
        return "out of memory";
    }
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return msg;
}

static ed_module_t **
ed_conf_modules(void)
{
    return ed_conf_modules_override ? ed_conf_modules_override : ed_modules;
}

/* Keeps the closest candidate that is close enough to be a likely
 * misspelling: distance <= max(2, len/3). Returns cand when it is closer
 * than best, else best (which may be NULL). */
static const char *
ed_conf_closer(const char *name, const char *cand, const char *best,
               size_t *bestd)
{
    size_t d, limit;

    limit = ed_max((size_t)2, strlen(name) / 3);
    d = ed_str_distance(name, cand);
    if (d <= limit && d < *bestd) {
        *bestd = d;
        return cand;
    }
    return best;
}

/* Lists the contexts in ctx for a "not allowed" hint. Returns buf. */
static char *
ed_conf_ctx_list(unsigned ctx, char *buf, size_t size)
{
    static const char *names[] = {"main level", "server", "location",
                                  "upstream"};
    size_t i, n;

    buf[0] = '\0';
    n = 0;
    for (i = 0; i < ed_nelems(names); i++) {
        if (ctx & (1u << i)) {
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "",
                                  names[i]);
            if (n >= size) {
                break;
            }
        }
    }
    return buf;
}

/* Records a setter's message at the value's position. */
static void
ed_conf_set_failed(ed_conf_t *cf, const ed_key_t *key, ed_node_t *v,
                   const char *msg)
{
    ed_conf_error(cf, v, "invalid value for \"%s\": %s", key->name, msg);
}

/* Returns ED_OK, or ED_ERROR when any error was recorded meanwhile
 * (setters may record their own and return NULL). */
int
ed_conf_apply(ed_conf_t *cf, ed_node_t *map)
{
    ed_module_t **mods, *m;
    const ed_key_t *key, *k;
    const char *where, *best, *msg;
    ed_node_t *kn, *v;
    void **confs;
    size_t i, j, bestd;
    unsigned nerrors;
    char ctxs[64], hint[256];

    where = cf->ctx_name ? cf->ctx_name : "main level";
    if (map == NULL || map->type != ED_NODE_MAP) {
        return ed_conf_error(cf, map, "expected a mapping in %s", where);
    }
    nerrors = cf->nerrors;
    mods = ed_conf_modules();
    for (i = 0; i < map->n; i++) {
        kn = map->items[2 * i];
        v = map->items[2 * i + 1];
        m = NULL;
        key = ed_module_find_key(kn->value.data, cf->ctx, &m);
        if (key == NULL
            && ed_conf_nginx_hint(kn->value.data, cf->ctx, hint,
                                  sizeof(hint)))
        {
            ed_conf_error(cf, kn, "unknown key \"%s\" in %s; %s",
                          kn->value.data, where, hint);
            continue;
        }
        if (key == NULL) {
            best = NULL;
            bestd = (size_t)-1;
            for (j = 0; mods[j] != NULL; j++) {
                for (k = mods[j]->keys; k && k->name; k++) {
                    if (k->ctx & cf->ctx) {
                        best = ed_conf_closer(kn->value.data, k->name, best,
                                              &bestd);
                    }
                }
            }
            if (best) {
                ed_conf_error(cf, kn,
                              "unknown key \"%s\" in %s; did you "
                              "mean \"%s\"?",
                              kn->value.data, where, best);
            } else {
                ed_conf_error(cf, kn, "unknown key \"%s\" in %s",
                              kn->value.data, where);
            }
            continue;
        }
        if (!(key->ctx & cf->ctx)) {
            ed_conf_error(cf, kn,
                          "key \"%s\" is not allowed in %s "
                          "(allowed in: %s)",
                          key->name, where,
                          ed_conf_ctx_list(key->ctx, ctxs, sizeof(ctxs)));
            continue;
        }
        confs = key->conf < ED_CONFS ? cf->confs[key->conf] : NULL;
        if (confs == NULL || confs[m->index] == NULL || key->set == NULL) {
            /* A module wired without the struct its key needs. */
            ed_conf_error(cf, kn,
                          "key \"%s\" has no configuration to set "
                          "in %s (module %s)",
                          key->name, where, m->name);
            continue;
        }
        msg = key->set(cf, key, v, confs[m->index]);
        if (msg) {
            ed_conf_set_failed(cf, key, v, msg);
        }
    }
    return cf->nerrors == nerrors ? ED_OK : ED_ERROR;
}

/* Lists the names of keys as "a, b or c" for an unknown key in a block.
 * Returns buf. */
static char *
ed_conf_key_list(const ed_key_t *keys, char *buf, size_t size)
{
    const ed_key_t *k;
    size_t          n;

    buf[0] = '\0';
    n = 0;
    for (k = keys; k->name && n < size; k++) {
        n += (size_t)snprintf(buf + n, size - n, "%s%s",
                              k == keys ? "" : k[1].name ? ", " : " or ",
                              k->name);
    }
    return buf;
}

/* Applies map against one key table into conf. A block (block != 0)
 * names its keys "what.key" in value messages and lists its keys when an
 * unknown one is not close to any. ED_OK, or ED_ERROR when any error was
 * recorded meanwhile. */
static int
ed_conf_apply_table(ed_conf_t *cf, ed_node_t *map, const ed_key_t *keys,
                    void *conf, const char *what, int block)
{
    const ed_key_t *key, *k;
    const char     *best, *msg;
    ed_node_t      *kn, *v;
    size_t          i, bestd;
    unsigned        nerrors;
    char            list[512], hint[256];

    if (map == NULL || map->type != ED_NODE_MAP) {
        return ed_conf_error(cf, map, "expected a mapping for %s", what);
    }
    nerrors = cf->nerrors;
    for (i = 0; i < map->n; i++) {
        kn = map->items[2 * i];
        v = map->items[2 * i + 1];
        for (key = keys; key->name; key++) {
            if (strcmp(key->name, kn->value.data) == 0) {
                break;
            }
        }
        if (key->name == NULL
            && ed_conf_nginx_hint(kn->value.data, 0, hint, sizeof(hint)))
        {
            ed_conf_error(cf, kn, "unknown key \"%s\" in %s; %s",
                          kn->value.data, what, hint);
            continue;
        }
        if (key->name == NULL) {
            best = NULL;
            bestd = (size_t)-1;
            for (k = keys; k->name; k++) {
                best = ed_conf_closer(kn->value.data, k->name, best, &bestd);
            }
            if (best) {
                ed_conf_error(cf, kn,
                              "unknown key \"%s\" in %s; did you "
                              "mean \"%s\"?",
                              kn->value.data, what, best);
            } else if (block) {
                ed_conf_error(cf, kn, "unknown key \"%s\" in %s; expected "
                              "%s", kn->value.data, what,
                              ed_conf_key_list(keys, list, sizeof(list)));
            } else {
                ed_conf_error(cf, kn, "unknown key \"%s\" in %s",
                              kn->value.data, what);
            }
            continue;
        }
        msg = key->set(cf, key, v, conf);
        if (msg && block) {
            ed_conf_error(cf, v, "invalid value for \"%s.%s\": %s", what,
                          key->name, msg);
        } else if (msg) {
            ed_conf_set_failed(cf, key, v, msg);
        }
    }
    return cf->nerrors == nerrors ? ED_OK : ED_ERROR;
}

/* ED_OK, or ED_ERROR when any error was recorded meanwhile. */
int
ed_conf_apply_keys(ed_conf_t *cf, ed_node_t *map, const ed_key_t *keys,
                   void *conf, const char *what)
{
    return ed_conf_apply_table(cf, map, keys, conf, what, 0);
}

/* Returns the value of key in map, or NULL (also for a non-map). */
ed_node_t *
ed_conf_get(ed_node_t *map, const char *key)
{
    size_t i;

    if (map == NULL || map->type != ED_NODE_MAP) {
        return NULL;
    }
    for (i = 0; i < map->n; i++) {
        if (strcmp(map->items[2 * i]->value.data, key) == 0) {
            return map->items[2 * i + 1];
        }
    }
    return NULL;
}

/* Whether the field of key in conf holds its kind's unset value; a
 * composite (ED_KEY_NONE) field cannot tell and counts as set. */
static int
ed_conf_is_unset(const ed_key_t *key, const void *conf)
{
    const char *f = (const char *)conf + key->offset;

    switch (key->flags & ED_KEY_KIND_MASK) {
    case ED_KEY_INT:
        return *(const int *)f == ED_CONF_UNSET;
    case ED_KEY_SIZE:
        return *(const size_t *)f == ED_CONF_UNSET_SIZE;
    case ED_KEY_MSEC:
        return *(const ed_msec_t *)f == ED_CONF_UNSET_MSEC;
    case ED_KEY_PTR:
    case ED_KEY_BLOCK:
        return *(void *const *)f == NULL;
    case ED_KEY_STR:
        return ((const ed_str_t *)f)->data == NULL;
    default:
        return 0;
    }
}

/* Copies one field of key's kind from src to dst. */
static void
ed_conf_copy(const ed_key_t *key, void *dst, const void *src)
{
    static const size_t sizes[] = {0,
                                   sizeof(int),
                                   sizeof(size_t),
                                   sizeof(ed_msec_t),
                                   sizeof(void *),
                                   sizeof(ed_str_t),
                                   sizeof(void *)};
    unsigned kind = key->flags & ED_KEY_KIND_MASK;

    if (kind > 0 && kind < ed_nelems(sizes)) {
        memcpy((char *)dst + key->offset, (const char *)src + key->offset,
               sizes[kind]);
    }
}

/* Marks the fields of keys (only those of level when level >= 0) unset. */
static void
ed_conf_unset(const ed_key_t *keys, int level, void *conf)
{
    const ed_key_t *k;
    char *f;

    for (k = keys; k && k->name; k++) {
        if (level >= 0 && k->conf != (unsigned)level) {
            continue;
        }
        f = ed_conf_field(conf, k);
        switch (k->flags & ED_KEY_KIND_MASK) {
        case ED_KEY_INT:
            *(int *)f = ED_CONF_UNSET;
            break;
        case ED_KEY_SIZE:
            *(size_t *)f = ED_CONF_UNSET_SIZE;
            break;
        case ED_KEY_MSEC:
            *(ed_msec_t *)f = ED_CONF_UNSET_MSEC;
            break;
        case ED_KEY_PTR:
        case ED_KEY_BLOCK:
            *(void **)f = NULL;
            break;
        case ED_KEY_STR:
            ((ed_str_t *)f)->len = 0;
            ((ed_str_t *)f)->data = NULL;
            break;
        default:
            /* Composites stay zeroed; their setter owns them. */
            break;
        }
    }
}

/* Returns the zeroed struct with keyed fields unset, or NULL on ENOMEM
 * (or a module without a struct at that level). */
void *
ed_conf_create(ed_conf_t *cf, const ed_module_t *m, unsigned level)
{
    void *conf;

    if (level >= ED_CONFS || m->conf_size[level] == 0) {
        return NULL;
    }
    conf = ed_pcalloc(cf->pool, m->conf_size[level]);
    if (conf) {
        ed_conf_unset(m->keys, (int)level, conf);
    }
    return conf;
}

/* Unsets every field of the table's keys. No return value. */
void
ed_conf_init_keys(const ed_key_t *keys, void *conf)
{
    ed_conf_unset(keys, -1, conf);
}

/* Whether key belongs to level; a block's keys (level < 0) all do. */
static int
ed_conf_at(const ed_key_t *key, int level)
{
    return level < 0 || key->conf == (unsigned)level;
}

/* Runs each default of keys at level (all when level < 0; keys with a
 * flag of skip left out) through its key's setter, as if written in the
 * file at the position "(default)". The blocks set meanwhile then take
 * their own keys' defaults. ED_OK, or ED_ERROR when a default is
 * invalid (a bug in the module table) or on ENOMEM. */
static int
ed_conf_fill(ed_conf_t *cf, const ed_key_t *keys, int level, unsigned skip,
             void *conf)
{
    const ed_conf_block_t *b;
    const ed_key_t        *k;
    ed_node_t             *node;
    const char            *msg;
    void                  *blk;
    int                    rc;

    rc = ED_OK;
    for (k = keys; k && k->name; k++) {
        if (!ed_conf_at(k, level) || (k->flags & skip)) {
            continue;
        }
        if (k->def != NULL && ed_conf_is_unset(k, conf)) {
            /* Setters may keep pointers into the node, so it lives in
             * the pool like any other. */
            node = ed_pcalloc(cf->pool, sizeof(ed_node_t));
            if (node == NULL
                || ed_str_dup(cf->pool, &node->value, k->def,
                              strlen(k->def)) != ED_OK)
            {
                return ed_conf_error(cf, NULL, "out of memory");
            }
            node->type = ED_NODE_SCALAR;
            node->file = "(default)";
            msg = k->set(cf, k, node, conf);
            if (msg) {
                rc = ed_conf_error(cf, node,
                                   "invalid default \"%s\" for \"%s\": "
                                   "%s",
                                   k->def, k->name, msg);
            }
        }
        if ((k->flags & ED_KEY_KIND_MASK) != ED_KEY_BLOCK) {
            continue;
        }
        b = k->arg;
        blk = *(void **)ed_conf_field(conf, k);
        if (!b->list && blk != NULL
            && ed_conf_fill(cf, b->keys, -1, 0, blk) != ED_OK)
        {
            rc = ED_ERROR;
        }
    }
    return rc;
}

/* ED_OK, or ED_ERROR when a default is invalid or on ENOMEM. */
int
ed_conf_defaults(ed_conf_t *cf, const ed_key_t *keys, unsigned level,
                 void *conf)
{
    return ed_conf_fill(cf, keys, (int)level, 0, conf);
}

/* Copies the parent's value into each unset inheritable field of level
 * (every level when level < 0); a block set on both sides takes its
 * parent block's values the same way. */
static void
ed_conf_merge_at(const ed_key_t *keys, int level, const void *parent,
                 void *child)
{
    const ed_conf_block_t *b;
    const ed_key_t        *k;
    void                  *cb, *pb;

    for (k = keys; k && k->name; k++) {
        if (!(k->flags & ED_KEY_INHERIT) || !ed_conf_at(k, level)
            || ed_conf_is_unset(k, parent))
        {
            continue;
        }
        if (ed_conf_is_unset(k, child)) {
            ed_conf_copy(k, child, parent);
            continue;
        }
        b = k->arg;
        if ((k->flags & ED_KEY_KIND_MASK) != ED_KEY_BLOCK || b->list) {
            continue;
        }
        cb = *(void **)ed_conf_field(child, k);
        pb = *(void *const *)((const char *)parent + k->offset);
        if (cb != pb) {
            ed_conf_merge_at(b->keys, -1, pb, cb);
        }
    }
}

/* No return value. */
void
ed_conf_merge(const ed_key_t *keys, unsigned level, const void *parent,
              void *child)
{
    if (parent != NULL && child != NULL) {
        ed_conf_merge_at(keys, (int)level, parent, child);
    }
}

/* Returns the path (absolute as is, else prefix/path) in pool memory,
 * or NULL on ENOMEM. */
char *
ed_conf_path(ed_conf_t *cf, const char *path)
{
    size_t plen, len;
    char *p;

    len = strlen(path);
    if (path[0] == '/' || cf->prefix == NULL || cf->prefix[0] == '\0') {
        return ed_pstrdup(cf->pool, path, len);
    }
    plen = strlen(cf->prefix);
    if (cf->prefix[plen - 1] == '/') {
        plen--;
    }
    p = ed_pnalloc(cf->pool, plen + 1 + len + 1);
    if (p) {
        memcpy(p, cf->prefix, plen);
        p[plen] = '/';
        memcpy(p + plen + 1, path, len + 1);
    }
    return p;
}

/* Scalar parsers. */

/* "512", "16k", "8m", "1g" (k = 1024, any case). Returns the bytes, or
 * -1 for anything else or an overflow. */
int64_t
ed_conf_parse_size(const char *s, size_t len)
{
    int64_t v, mult;

    mult = 1;
    if (len > 1) {
        switch (s[len - 1]) {
        case 'k':
        case 'K':
            mult = 1024;
            break;
        case 'm':
        case 'M':
            mult = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mult = 1024 * 1024 * 1024;
            break;
        }
        if (mult != 1) {
            len--;
        }
    }
    v = ed_atoi(s, len);
    if (v < 0 || v > INT64_MAX / mult) {
        return -1;
    }
    return v * mult;
}

/* "250ms", "10s", "5m", "1h", "1d", compounds such as "1m30s"; a bare
 * number is seconds. Returns milliseconds or -1 (invalid, overflow). */
ed_msec_t
ed_conf_parse_msec(const char *s, size_t len)
{
    const char *p, *end, *d;
    int64_t total, v, unit;

    v = ed_atoi(s, len);
    if (v >= 0) {
        return v > INT64_MAX / 1000 ? -1 : v * 1000;
    }
    if (len == 0) {
        return -1;
    }
    total = 0;
    end = s + len;
    for (p = s; p < end;) {
        for (d = p; d < end && *d >= '0' && *d <= '9'; d++) {
            /* digits */
        }
        v = ed_atoi(p, (size_t)(d - p));
        if (v < 0 || d == end) {
            return -1;
        }
        if (end - d >= 2 && d[0] == 'm' && d[1] == 's') {
            unit = 1;
            p = d + 2;
        } else {
            switch (*d) {
            case 's':
                unit = 1000;
                break;
            case 'm':
                unit = 60 * 1000;
                break;
            case 'h':
                unit = 3600 * 1000;
                break;
            case 'd':
                unit = 86400 * 1000;
                break;
            default:
                return -1;
            }
            p = d + 1;
        }
        if (v > (INT64_MAX - total) / unit) {
            return -1;
        }
        total += v * unit;
    }
    return total;
}

/* true/false, on/off, yes/no in any case. Returns 1, 0 or -1. */
int
ed_conf_parse_bool(const char *s, size_t len)
{
    static const char *names[] = {"false", "true", "off", "on", "no", "yes"};
    size_t i;

    for (i = 0; i < ed_nelems(names); i++) {
        if (strlen(names[i]) == len && ed_strncasecmp(s, names[i], len) == 0) {
            return (int)(i & 1);
        }
    }
    return -1;
}

/* Setters. */

/* Stores a number in the field as the key's kind says (ED_KEY_NONE: the
 * setter's natural kind). Returns NULL or a message. */
static const char *
ed_conf_store(const ed_key_t *key, void *conf, int64_t v, unsigned natural)
{
    char *f = ed_conf_field(conf, key);
    unsigned kind = key->flags & ED_KEY_KIND_MASK;

    switch (kind ? kind : natural) {
    case ED_KEY_INT:
        if (v > INT_MAX || v < INT_MIN) {
            return "the value is too large";
        }
        *(int *)f = (int)v;
        return NULL;
    case ED_KEY_SIZE:
        if ((uint64_t)v >= SIZE_MAX) {
            return "the value is too large";
        }
        *(size_t *)f = (size_t)v;
        return NULL;
    case ED_KEY_MSEC:
        *(ed_msec_t *)f = v;
        return NULL;
    default:
        return "internal error: the key's field is not a number";
    }
}

/* Writes a size or duration with the largest exact unit ("1m", "30s"). */
static const char *
ed_conf_unit(char *buf, size_t size, int64_t v, int msec)
{
    static const struct {
        const char *name;
        int64_t n;
    } sizes[] = {{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}},
      times[] = {{"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    size_t i, n;

    n = msec ? ed_nelems(times) : ed_nelems(sizes);
    for (i = 0; i < n; i++) {
        int64_t u = msec ? times[i].n : sizes[i].n;

        if (v != 0 && v % u == 0) {
            snprintf(buf, size, "%lld%s", (long long)(v / u),
                     msec ? times[i].name : sizes[i].name);
            return buf;
        }
    }
    snprintf(buf, size, "%lld", (long long)v);
    return buf;
}

/* Checks v against key->arg (ed_conf_bounds_t *) or [0, max]. Returns
 * NULL or a message naming the range; unit: 0 int, 1 size, 2 msec. */
static const char *
ed_conf_bounds(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node, int64_t v,
               int64_t max, int unit)
{
    const ed_conf_bounds_t *b = key->arg;
    int64_t lo, hi;
    char l[32], h[32];
    static const char *what[] = {"an integer", "a size", "a duration"};

    lo = b ? b->min : 0;
    hi = b ? b->max : max;
    if (v >= lo && v <= hi) {
        return NULL;
    }
    if (unit == 0) {
        snprintf(l, sizeof(l), "%lld", (long long)lo);
        snprintf(h, sizeof(h), "%lld", (long long)hi);
    } else {
        ed_conf_unit(l, sizeof(l), lo, unit == 2);
        ed_conf_unit(h, sizeof(h), hi, unit == 2);
    }
    return ed_conf_msg(cf,
                       "\"%s\" is out of range: expected %s from %s "
                       "to %s",
                       node->value.data, what[unit], l, h);
}

/* Returns NULL or a message. */
const char *
ed_conf_set_bool(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    int b;

    ed_unused(cf);
    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    b = ed_conf_parse_bool(node->value.data, node->value.len);
    if (b < 0) {
        return "expected true or false (or on/off, yes/no)";
    }
    return ed_conf_store(key, conf, b, ED_KEY_INT);
}

/* Returns NULL or a message. */
const char *
ed_conf_set_int(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node, void *conf)
{
    const ed_conf_bounds_t *b = key->arg;
    const char *s, *msg;
    int64_t v;
    int neg;

    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    s = node->value.data;
    neg = s[0] == '-';
    v = ed_atoi(s + neg, node->value.len - (size_t)neg);
    if (v < 0) {
        if (b) {
            return ed_conf_msg(cf, "expected an integer from %lld to %lld",
                               (long long)b->min, (long long)b->max);
        }
        return "expected an integer";
    }
    v = neg ? -v : v;
    msg = ed_conf_bounds(cf, key, node, v, INT_MAX, 0);
    if (msg) {
        return msg;
    }
    return ed_conf_store(key, conf, v, ED_KEY_INT);
}

/* Returns NULL or a message. */
const char *
ed_conf_set_size(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    const char *msg;
    int64_t v;

    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    v = ed_conf_parse_size(node->value.data, node->value.len);
    if (v < 0) {
        return "expected a size like 512, 16k, 8m or 1g";
    }
    msg = ed_conf_bounds(cf, key, node, v, INT64_MAX, 1);
    if (msg) {
        return msg;
    }
    return ed_conf_store(key, conf, v, ED_KEY_SIZE);
}

/* Returns NULL or a message. */
const char *
ed_conf_set_msec(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    const char *msg;
    ed_msec_t v;

    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    v = ed_conf_parse_msec(node->value.data, node->value.len);
    if (v < 0) {
        return "expected a duration like 250ms, 10s, 5m, 1h or 1d";
    }
    msg = ed_conf_bounds(cf, key, node, v, INT64_MAX, 2);
    if (msg) {
        return msg;
    }
    return ed_conf_store(key, conf, v, ED_KEY_MSEC);
}

/* Returns NULL or a message listing the allowed names. */
const char *
ed_conf_set_enum(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    const ed_conf_enum_t *e = key->arg;
    char list[512];
    size_t n;

    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    for (; e && e->name; e++) {
        if (strcmp(e->name, node->value.data) == 0) {
            return ed_conf_store(key, conf, e->value, ED_KEY_INT);
        }
    }
    list[0] = '\0';
    n = 0;
    for (e = key->arg; e && e->name && n < sizeof(list); e++) {
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "",
                              e->name);
    }
    return ed_conf_msg(cf, "expected one of: %s", list);
}

/* Stores a string as ed_str_t (ED_KEY_STR, ED_KEY_NONE) or char *
 * (ED_KEY_PTR). Returns NULL or a message. */
static const char *
ed_conf_store_str(const ed_key_t *key, void *conf, char *s, size_t len)
{
    char *f = ed_conf_field(conf, key);

    switch (key->flags & ED_KEY_KIND_MASK) {
    case ED_KEY_NONE:
    case ED_KEY_STR:
        ((ed_str_t *)f)->data = s;
        ((ed_str_t *)f)->len = len;
        return NULL;
    case ED_KEY_PTR:
        *(char **)f = s;
        return NULL;
    default:
        return "internal error: the key's field is not a string";
    }
}

/* A quoted empty string is a value; a bare `key:` (null) is not.
 * Returns NULL or a message. */
const char *
ed_conf_set_str(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node, void *conf)
{
    ed_unused(cf);
    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    if (node->value.len == 0 && !node->quoted) {
        return "expected a string";
    }
    /* The node lives in the same pool as the conf; no copy needed. */
    return ed_conf_store_str(key, conf, node->value.data, node->value.len);
}

/* Returns NULL or a message. */
const char *
ed_conf_set_path(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    char *p;

    if (node->type != ED_NODE_SCALAR) {
        return "expected a scalar";
    }
    if (node->value.len == 0) {
        return "expected a path";
    }
    p = ed_conf_path(cf, node->value.data);
    if (p == NULL) {
        return "out of memory";
    }
    return ed_conf_store_str(key, conf, p, strlen(p));
}

/* Returns NULL or a message. */
const char *
ed_conf_set_str_list(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                     void *conf)
{
    ed_array_t *a;
    ed_node_t *item;
    ed_str_t *s;
    size_t i, n;

    if (node->type == ED_NODE_MAP
        || (node->type == ED_NODE_SCALAR && node->value.len == 0
            && !node->quoted))
    {
        return "expected a list";
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        if (item->type != ED_NODE_SCALAR
            || (item->value.len == 0 && !item->quoted)) {
            return "expected a list of strings";
        }
    }
    a = ed_array_create(cf->pool, n, sizeof(ed_str_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        s = ed_array_push(a);
        if (s == NULL) {
            return "out of memory";
        }
        *s = item->value;
    }
    *(ed_array_t **)ed_conf_field(conf, key) = a;
    return NULL;
}

/* Makes one block of b from node into *out (NULL when none was made).
 * Returns NULL (errors in the block are recorded at their own
 * positions) or a message about node itself. */
static const char *
ed_conf_make_block(ed_conf_t *cf, const ed_conf_block_t *b, ed_node_t *node,
                   void **out)
{
    const char *msg;
    void       *blk;

    *out = NULL;
    if (node->type != ED_NODE_MAP
        && (node->type != ED_NODE_SCALAR || b->scalar == NULL))
    {
        return b->expect;
    }
    blk = ed_pcalloc(cf->pool, b->size);
    if (blk == NULL) {
        return "out of memory";
    }
    ed_conf_unset(b->keys, -1, blk);
    *(ed_node_t **)blk = node;
    if (node->type == ED_NODE_MAP) {
        ed_conf_apply_table(cf, node, b->keys, blk, b->name, 1);
    } else {
        msg = b->scalar(cf, node, blk);
        if (msg) {
            return msg;
        }
    }
    /* Inherited keys get theirs from the parent's block. */
    if (ed_conf_fill(cf, b->keys, -1, ED_KEY_INHERIT, blk) != ED_OK) {
        return NULL;
    }
    msg = b->check ? b->check(cf, node, blk) : NULL;
    *out = blk;
    return msg;
}

/* A block, or a list of blocks. Returns NULL or a message. */
const char *
ed_conf_set_block(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                  void *conf)
{
    const ed_conf_block_t *b = key->arg;
    const char            *msg;
    ed_node_t             *item;
    ed_array_t            *a;
    void                  *blk, **slot;
    size_t                 i, n;

    if (!b->list) {
        msg = ed_conf_make_block(cf, b, node, &blk);
        if (blk != NULL) {
            *(void **)ed_conf_field(conf, key) = blk;
        }
        return msg;
    }
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    a = ed_array_create(cf->pool, n ? n : 1, sizeof(void *));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        msg = ed_conf_make_block(cf, b, item, &blk);
        if (msg) {
            ed_conf_error(cf, item, "invalid value for \"%s\": %s",
                          key->name, msg);
        }
        if (blk == NULL) {
            continue;
        }
        slot = ed_array_push(a);
        if (slot == NULL) {
            return "out of memory";
        }
        *slot = blk;
    }
    *(ed_array_t **)ed_conf_field(conf, key) = a;
    return NULL;
}

/* Keeps the node for the module to read later. Returns NULL. */
const char *
ed_conf_set_node(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                 void *conf)
{
    ed_unused(cf);
    *(ed_node_t **)ed_conf_field(conf, key) = node;
    return NULL;
}
