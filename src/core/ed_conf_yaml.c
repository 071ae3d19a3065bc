/* The YAML loader: libyaml events into an ed_node_t tree, environment
 * substitution, include expansion, and the dump used by `eddy -T`. */
#include "ed_core.h"
#include "ed_conf.h"
#include "ed_module.h"

#include <dirent.h>
#include <glob.h>
#include <limits.h>
#include <sys/stat.h>
#include <yaml.h>

/* Nesting beyond this is surely not a configuration; the limit also
 * keeps the recursive builder's stack bounded on hostile input. */
#define ED_YAML_MAX_DEPTH 64
#define ED_YAML_MAX_INCLUDE 8

typedef struct {
    ed_conf_t *cf;
    yaml_parser_t parser;
    const char *file;
} ed_yaml_t;

/* A list of nodes growing in the pool; doubling wastes at most half. */
typedef struct {
    ed_node_t **items;
    size_t n;
    size_t cap;
} ed_yaml_buf_t;

static ed_node_t *ed_yaml_node(ed_yaml_t *y, yaml_event_t *ev, unsigned depth);

/* Returns ED_OK or ED_ERROR on ENOMEM. */
static int
ed_yaml_push(ed_pool_t *pool, ed_yaml_buf_t *b, ed_node_t *node)
{
    ed_node_t **p;
    size_t cap;

    if (b->n == b->cap) {
        cap = b->cap ? b->cap * 2 : 8;
        p = ed_palloc(pool, cap * sizeof(ed_node_t *));
        if (p == NULL) {
            return ED_ERROR;
        }
        if (b->n) {
            memcpy(p, b->items, b->n * sizeof(ed_node_t *));
        }
        b->items = p;
        b->cap = cap;
    }
    b->items[b->n++] = node;
    return ED_OK;
}

/* Returns a zeroed node positioned at mark (0-based in libyaml, 1-based
 * here), or NULL on ENOMEM. */
static ed_node_t *
ed_yaml_new(ed_yaml_t *y, int type, yaml_mark_t mark)
{
    ed_node_t *n = ed_pcalloc(y->cf->pool, sizeof(ed_node_t));

    if (n) {
        n->type = type;
        n->file = y->file;
        n->line = (unsigned)mark.line + 1;
        n->col = (unsigned)mark.column + 1;
    }
    return n;
}

static void
ed_yaml_nomem(ed_conf_t *cf, const ed_node_t *at)
{
    ed_conf_error(cf, at, "out of memory");
}

/* Records libyaml's own error. Reader errors (bad encoding) come with a
 * byte offset instead of a line. */
static void
ed_yaml_syntax_error(ed_yaml_t *y)
{
    yaml_parser_t *p = &y->parser;
    ed_node_t at;
    const char *problem;

    memset(&at, 0, sizeof(at));
    at.file = y->file;
    problem = p->problem ? p->problem : "unknown error";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        ed_yaml_nomem(y->cf, &at);
        return;
    case YAML_READER_ERROR:
        if (p->problem_value != -1) {
            ed_conf_error(y->cf, &at, "YAML error: %s (#%X) at byte %zu",
                          problem, (unsigned)p->problem_value,
                          p->problem_offset);
        } else {
            ed_conf_error(y->cf, &at, "YAML error: %s at byte %zu", problem,
                          p->problem_offset);
        }
        return;
    default:
        break;
    }
    at.line = (unsigned)p->problem_mark.line + 1;
    at.col = (unsigned)p->problem_mark.column + 1;
    if (p->context) {
        ed_conf_error(y->cf, &at,
                      "YAML syntax error: %s (%s at line %zu, column %zu)",
                      problem, p->context, p->context_mark.line + 1,
                      p->context_mark.column + 1);
    } else {
        ed_conf_error(y->cf, &at, "YAML syntax error: %s", problem);
    }
}

/* Returns ED_OK with *ev to be deleted by the caller, or ED_ERROR after
 * recording the syntax error (nothing to delete). */
static int
ed_yaml_next(ed_yaml_t *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev)) {
        ed_yaml_syntax_error(y);
        return ED_ERROR;
    }
    return ED_OK;
}

/* A malloc'ed string being built; after ENOMEM appends do nothing. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int nomem;
} ed_yaml_text_t;

static void
ed_yaml_append(ed_yaml_text_t *t, const char *s, size_t n)
{
    char *p;
    size_t c;

    if (t->nomem) {
        return;
    }
    if (t->data == NULL || t->len + n + 1 > t->cap) {
        for (c = t->cap ? t->cap : 64; c < t->len + n + 1; c *= 2) {
            /* grow */
        }
        p = realloc(t->data, c);
        if (p == NULL) {
            t->nomem = 1;
            return;
        }
        t->data = p;
        t->cap = c;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
}

/* Replaces ${env:NAME} and ${env:NAME:-default} in raw and stores the
 * result as node's value. `${name}` and `$name` are eddy variables and
 * are left alone. ED_OK, or ED_ERROR after recording the problem (the
 * node then holds the raw text, so later checks still see a string). */
static int
ed_yaml_subst(ed_conf_t *cf, ed_node_t *node, const char *raw, size_t len)
{
    ed_yaml_text_t t = {NULL, 0, 0, 0};
    const char *p, *end, *ref, *name, *val, *close;
    size_t nlen;
    char var[256];
    int def;

    end = raw + len;
    for (p = raw; (ref = memmem(p, (size_t)(end - p), "${env:", 6)) != NULL;
         p = close + 1)
    {
        ed_yaml_append(&t, p, (size_t)(ref - p));
        name = ref + 6;
        for (nlen = 0; name + nlen < end; nlen++) {
            char c = name[nlen];

            if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (nlen > 0 && c >= '0' && c <= '9')))
            {
                break;
            }
        }
        close = memchr(name, '}', (size_t)(end - name));
        def = close && close - name >= (ptrdiff_t)nlen + 2 && name[nlen] == ':'
              && name[nlen + 1] == '-';
        if (nlen == 0 || nlen >= sizeof(var) || close == NULL
            || (close != name + nlen && !def))
        {
            ed_conf_error(cf, node,
                          "invalid environment reference in \"%.*s\": "
                          "expected ${env:NAME} or ${env:NAME:-default}",
                          (int)ed_min(len, 200), raw);
            goto failed;
        }
        memcpy(var, name, nlen);
        var[nlen] = '\0';
        val = getenv(var);
        if (def && (val == NULL || val[0] == '\0')) {
            /* As in the shell, ":-" also covers a set but empty value. */
            ed_yaml_append(&t, name + nlen + 2,
                           (size_t)(close - (name + nlen + 2)));
        } else if (val == NULL) {
            ed_conf_error(cf, node,
                          "environment variable \"%s\" is not set "
                          "(use ${env:%s:-default} for a default)",
                          var, var);
            goto failed;
        } else {
            ed_yaml_append(&t, val, strlen(val));
        }
    }
    if (p == raw) {
        /* Nothing to substitute: copy straight into the pool. */
        node->value.data = ed_pstrdup(cf->pool, raw, len);
        node->value.len = len;
    } else {
        ed_yaml_append(&t, p, (size_t)(end - p));
        node->value.data = t.nomem ? NULL : ed_pstrdup(cf->pool, t.data, t.len);
        node->value.len = t.len;
    }
    if (node->value.data == NULL) {
        ed_yaml_nomem(cf, node);
        goto failed;
    }
    free(t.data);
    return ED_OK;

failed:
    free(t.data);
    node->value.data = ed_pstrdup(cf->pool, raw, len);
    node->value.len = node->value.data ? len : 0;
    if (node->value.data == NULL) {
        node->value.data = (char *)"";
    }
    return ED_ERROR;
}

/* A plain null (empty, ~, null) becomes an empty unquoted scalar, which
 * setters see as "no value". Returns the node or NULL (fatal). */
static ed_node_t *
ed_yaml_scalar(ed_yaml_t *y, yaml_event_t *ev)
{
    ed_node_t *n;
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;

    n = ed_yaml_new(y, ED_NODE_SCALAR, ev->start_mark);
    if (n == NULL) {
        ed_yaml_nomem(y->cf, NULL);
        return NULL;
    }
    /* 2 for a | or > block: columns within it are not the node's. */
    n->quoted = ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE
                        || ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE
                    ? 2
                    : ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE
                          && ev->data.scalar.style != YAML_ANY_SCALAR_STYLE;
    if (!n->quoted
        && ((len == 1 && v[0] == '~')
            || (len == 4
                && (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0
                    || memcmp(v, "NULL", 4) == 0))))
    {
        len = 0;
    }
    /* Errors in substitution are recorded; the load goes on to find
     * more of them. */
    (void)ed_yaml_subst(y->cf, n, v, len);
    return n;
}

/* Looks for key among the first n pairs of items. */
static ed_node_t *
ed_yaml_find(ed_node_t **items, size_t n, const ed_node_t *key)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (ed_str_eq(&items[2 * i]->value, &key->value)) {
            return items[2 * i];
        }
    }
    return NULL;
}

/* The pair index of a key node found by ed_yaml_find in b. */
static size_t
ed_yaml_index(const ed_yaml_buf_t *b, const ed_node_t *key)
{
    size_t i;

    for (i = 0; i < b->n / 2 && b->items[2 * i] != key; i++) {
        /* look */
    }
    return i;
}

/* Adds a pair to a map being built, rejecting a key already there.
 * ED_OK, ED_DECLINED (duplicate, recorded) or ED_ERROR (ENOMEM). */
static int
ed_yaml_add_pair(ed_conf_t *cf, ed_yaml_buf_t *b, ed_node_t *k, ed_node_t *v)
{
    ed_node_t *first;

    first = ed_yaml_find(b->items, b->n / 2, k);
    if (first) {
        if (first->file == k->file
            || (first->file && k->file && strcmp(first->file, k->file) == 0))
        {
            ed_conf_error(cf, k, "duplicate key \"%s\" (first at line %u)",
                          k->value.data, first->line);
        } else {
            ed_conf_error(cf, k, "duplicate key \"%s\" (first at %s:%u)",
                          k->value.data, first->file, first->line);
        }
        return ED_DECLINED;
    }
    if (ed_yaml_push(cf->pool, b, k) != ED_OK
        || ed_yaml_push(cf->pool, b, v) != ED_OK)
    {
        ed_yaml_nomem(cf, k);
        return ED_ERROR;
    }
    return ED_OK;
}

/* Builds a sequence or a mapping whose start event is ev. Returns the
 * node, or NULL on a fatal error (syntax, ENOMEM, depth). */
static ed_node_t *
ed_yaml_collection(ed_yaml_t *y, yaml_event_t *ev, unsigned depth)
{
    ed_yaml_buf_t b = {NULL, 0, 0};
    yaml_event_t e;
    ed_node_t *n, *k, *v;
    yaml_event_type_t end;
    int map;

    map = ev->type == YAML_MAPPING_START_EVENT;
    end = map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    n = ed_yaml_new(y, map ? ED_NODE_MAP : ED_NODE_SEQ, ev->start_mark);
    if (n == NULL) {
        ed_yaml_nomem(y->cf, NULL);
        return NULL;
    }
    if (depth >= ED_YAML_MAX_DEPTH) {
        ed_conf_error(y->cf, n, "nesting deeper than %d levels",
                      ED_YAML_MAX_DEPTH);
        return NULL;
    }
    for (;;) {
        if (ed_yaml_next(y, &e) != ED_OK) {
            return NULL;
        }
        if (e.type == end) {
            yaml_event_delete(&e);
            break;
        }
        k = ed_yaml_node(y, &e, depth + 1);
        yaml_event_delete(&e);
        if (k == NULL) {
            return NULL;
        }
        if (!map) {
            if (ed_yaml_push(y->cf->pool, &b, k) != ED_OK) {
                ed_yaml_nomem(y->cf, k);
                return NULL;
            }
            continue;
        }
        if (ed_yaml_next(y, &e) != ED_OK) {
            return NULL;
        }
        v = ed_yaml_node(y, &e, depth + 1);
        yaml_event_delete(&e);
        if (v == NULL) {
            return NULL;
        }
        if (k->type != ED_NODE_SCALAR) {
            ed_conf_error(y->cf, k, "expected a scalar key");
            continue;
        }
        if (ed_yaml_add_pair(y->cf, &b, k, v) == ED_ERROR) {
            return NULL;
        }
    }
    n->items = b.items;
    n->n = map ? b.n / 2 : b.n;
    return n;
}

/* Builds the node starting with ev (the caller deletes ev). Returns it,
 * or NULL on a fatal error. */
static ed_node_t *
ed_yaml_node(ed_yaml_t *y, yaml_event_t *ev, unsigned depth)
{
    ed_node_t *n;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ed_yaml_scalar(y, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return ed_yaml_collection(y, ev, depth);
    case YAML_ALIAS_EVENT:
        /* Resolving aliases would turn the tree into a graph whose walk
         * can grow exponentially ("billion laughs"); configs do not need
         * them. An empty scalar stands in so the load can go on. */
        n = ed_yaml_new(y, ED_NODE_SCALAR, ev->start_mark);
        if (n == NULL) {
            ed_yaml_nomem(y->cf, NULL);
            return NULL;
        }
        n->value.data = (char *)"";
        ed_conf_error(y->cf, n, "YAML aliases are not supported (\"*%s\")",
                      (const char *)ev->data.alias.anchor);
        return n;
    default:
        n = ed_yaml_new(y, ED_NODE_SCALAR, ev->start_mark);
        ed_conf_error(y->cf, n, "unexpected YAML event %d", (int)ev->type);
        return NULL;
    }
}

/* Parses the stream set up in y->parser: one document (or none: an
 * empty map, *empty set). Returns the root or NULL. */
static ed_node_t *
ed_yaml_stream(ed_yaml_t *y, int *empty)
{
    yaml_event_t ev;
    ed_node_t *root;
    yaml_mark_t zero;

    *empty = 0;
    root = NULL;
    memset(&zero, 0, sizeof(zero));
    if (ed_yaml_next(y, &ev) != ED_OK) {
        return NULL;
    }
    /* The first event is always STREAM-START. */
    yaml_event_delete(&ev);
    if (ed_yaml_next(y, &ev) != ED_OK) {
        return NULL;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        *empty = 1;
        root = ed_yaml_new(y, ED_NODE_MAP, zero);
        if (root == NULL) {
            ed_yaml_nomem(y->cf, NULL);
        }
        return root;
    }
    yaml_event_delete(&ev);
    if (ed_yaml_next(y, &ev) != ED_OK) {
        return NULL;
    }
    root = ed_yaml_node(y, &ev, 0);
    yaml_event_delete(&ev);
    if (root == NULL) {
        return NULL;
    }
    /* DOCUMENT-END, then STREAM-END or another document. */
    if (ed_yaml_next(y, &ev) != ED_OK) {
        return NULL;
    }
    yaml_event_delete(&ev);
    if (ed_yaml_next(y, &ev) != ED_OK) {
        return NULL;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        ed_node_t at;

        memset(&at, 0, sizeof(at));
        at.file = y->file;
        at.line = (unsigned)ev.start_mark.line + 1;
        at.col = (unsigned)ev.start_mark.column + 1;
        ed_conf_error(y->cf, &at, "only one YAML document is allowed");
        root = NULL;
    }
    yaml_event_delete(&ev);
    return root;
}

/* Parses one file or buffer (buf NULL: read file). Returns the root node,
 * or NULL after recording errors; at (may be NULL) is where an open
 * failure is reported. */
static ed_node_t *
ed_yaml_parse(ed_conf_t *cf, const char *file, const char *buf, size_t len,
              const ed_node_t *at, int *empty)
{
    ed_yaml_t y;
    ed_node_t *root;
    FILE *fp;
    unsigned nerrors;

    *empty = 0;
    fp = NULL;
    y.cf = cf;
    y.file = ed_pstrdup(cf->pool, file, strlen(file));
    if (y.file == NULL) {
        ed_yaml_nomem(cf, at);
        return NULL;
    }
    if (buf == NULL) {
        fp = fopen(file, "rb");
        if (fp == NULL) {
            ed_conf_error(cf, at, "cannot open \"%s\": %s", file,
                          strerror(errno));
            return NULL;
        }
    }
    if (!yaml_parser_initialize(&y.parser)) {
        if (fp) {
            fclose(fp);
        }
        ed_yaml_nomem(cf, at);
        return NULL;
    }
    if (fp) {
        yaml_parser_set_input_file(&y.parser, fp);
    } else {
        yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf,
                                     len);
    }
    nerrors = cf->nerrors;
    root = ed_yaml_stream(&y, empty);
    yaml_parser_delete(&y.parser);
    if (fp) {
        fclose(fp);
    }
    return cf->nerrors == nerrors ? root : NULL;
}

/* Joins the first dlen bytes of the including file's path (its
 * directory) and a pattern. For glob(3), metacharacters of the directory
 * are escaped: only the pattern the user wrote is a pattern. Returns
 * pool memory or NULL. */
static char *
ed_yaml_join(ed_pool_t *pool, const char *dir, size_t dlen, const ed_str_t *pat,
             int globbed)
{
    char *full, *p;
    size_t i;

    full = ed_pnalloc(pool, 2 * dlen + pat->len + 1);
    if (full == NULL) {
        return NULL;
    }
    p = full;
    for (i = 0; i < dlen; i++) {
        if (globbed && strchr("*?[]\\", dir[i])) {
            *p++ = '\\';
        }
        *p++ = dir[i];
    }
    memcpy(p, pat->data, pat->len + 1);
    return full;
}

static int
ed_yaml_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Warns that the glob pat (the including file's directory is the first
 * dlen bytes of pat->file) matches no file, naming the directory and
 * what it holds. */
static void
ed_yaml_include_none(ed_conf_t *cf, const ed_node_t *pat, size_t dlen)
{
    ed_yaml_text_t t = {NULL, 0, 0, 0};
    struct dirent *de;
    const char *slash;
    char dir[PATH_MAX], real[PATH_MAX], *names[16];
    size_t plen, n, i, more;
    DIR *d;

    slash = strrchr(pat->value.data, '/');
    plen = slash ? (size_t)(slash - pat->value.data) : 0;
    if (dlen + plen + 2 > sizeof(dir)
        || (slash && strpbrk(pat->value.data, "*?[") < slash))
    {
        /* The directory itself is a pattern: no one place to name. */
        ed_conf_warn(cf, pat, "include \"%s\" matches no file",
                     pat->value.data);
        return;
    }
    memcpy(dir, pat->file, dlen);
    memcpy(dir + dlen, pat->value.data, plen);
    dir[dlen + plen] = '\0';
    if (dir[0] == '\0') {
        dir[0] = slash ? '/' : '.';
        dir[1] = '\0';
    }
    if (realpath(dir, real) == NULL || (d = opendir(real)) == NULL) {
        ed_conf_warn(cf, pat, "include \"%s\" matches no file: directory "
                     "%s does not exist", pat->value.data, dir);
        return;
    }
    n = 0;
    more = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        if (n == ed_nelems(names)) {
            more++;
            continue;
        }
        names[n] = ed_pstrdup(cf->pool, de->d_name, strlen(de->d_name));
        if (names[n] != NULL) {
            n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof(char *), ed_yaml_strcmp);
    for (i = 0; i < n; i++) {
        if (i) {
            ed_yaml_append(&t, ", ", 2);
        }
        ed_yaml_append(&t, names[i], strlen(names[i]));
    }
    if (more) {
        ed_yaml_append(&t, ", ...", 5);
    }
    ed_yaml_append(&t, "", 1);
    if (n == 0) {
        ed_conf_warn(cf, pat, "include \"%s\" matches no file in %s (it is "
                     "empty)", pat->value.data, real);
    } else {
        ed_conf_warn(cf, pat, "include \"%s\" matches no file in %s (it "
                     "holds: %s)", pat->value.data, real,
                     t.nomem ? "..." : t.data);
    }
    free(t.data);
}

/* Loads the files an `include:` value names, in order, pushing each
 * non-empty root into out. Relative patterns resolve against the
 * directory of the file holding the include. ED_OK or ED_ERROR. */
static int
ed_yaml_include(ed_conf_t *cf, ed_node_t *val, unsigned depth,
                ed_yaml_buf_t *out)
{
    ed_node_t *pat, *root;
    glob_t g;
    struct stat st;
    const char *slash, *path;
    char *full;
    size_t i, j, n, dlen;
    int rc, empty, globbed;

    if (depth >= ED_YAML_MAX_INCLUDE) {
        return ed_conf_error(cf, val,
                             "includes nested deeper than %d "
                             "levels (does a file include itself?)",
                             ED_YAML_MAX_INCLUDE);
    }
    if (cf->no_include) {
        return ed_conf_error(cf, val, "include is disabled here");
    }
    if (val->type != ED_NODE_SCALAR && val->type != ED_NODE_SEQ) {
        return ed_conf_error(cf, val,
                             "expected a file pattern or a list "
                             "of them");
    }
    n = val->type == ED_NODE_SCALAR ? 1 : val->n;
    rc = ED_OK;
    for (i = 0; i < n; i++) {
        pat = val->type == ED_NODE_SCALAR ? val : val->items[i];
        if (pat->type != ED_NODE_SCALAR || pat->value.len == 0) {
            rc = ed_conf_error(cf, pat, "expected a file pattern");
            continue;
        }
        slash = pat->file ? strrchr(pat->file, '/') : NULL;
        dlen = (pat->value.data[0] != '/' && slash)
                   ? (size_t)(slash - pat->file) + 1
                   : 0;
        globbed = strpbrk(pat->value.data, "*?[") != NULL;
        full = ed_yaml_join(cf->pool, pat->file, dlen, &pat->value, globbed);
        if (full == NULL) {
            ed_yaml_nomem(cf, pat);
            return ED_ERROR;
        }
        memset(&g, 0, sizeof(g));
        if (globbed) {
            switch (glob(full, 0, NULL, &g)) {
            case 0:
                break;
            case GLOB_NOMATCH:
                /* conf.d/ with nothing in it yet is fine, but a pattern
                 * that misses what the directory holds (*.yml for
                 * *.yaml) is worth a word. */
                globfree(&g);
                ed_yaml_include_none(cf, pat, dlen);
                continue;
            case GLOB_NOSPACE:
                globfree(&g);
                ed_yaml_nomem(cf, pat);
                return ED_ERROR;
            default:
                globfree(&g);
                rc = ed_conf_error(cf, pat,
                                   "cannot read the directories "
                                   "of \"%s\"",
                                   full);
                continue;
            }
        }
        for (j = 0; j < (globbed ? g.gl_pathc : 1); j++) {
            path = globbed ? g.gl_pathv[j] : full;
            if (stat(path, &st) != 0) {
                rc = ed_conf_error(cf, pat, "cannot open include \"%s\": %s",
                                   path, strerror(errno));
                continue;
            }
            if (!S_ISREG(st.st_mode)) {
                /* A glob may match a subdirectory; skip it quietly. Only
                 * regular files are read, never /dev/zero or a FIFO. */
                if (!globbed) {
                    rc = ed_conf_error(cf, pat,
                                       "include \"%s\" is not a "
                                       "regular file",
                                       path);
                }
                continue;
            }
            root = ed_yaml_parse(cf, path, NULL, 0, pat, &empty);
            if (root == NULL) {
                rc = ED_ERROR;
                continue;
            }
            if (!empty && ed_yaml_push(cf->pool, out, root) != ED_OK) {
                globfree(&g);
                ed_yaml_nomem(cf, pat);
                return ED_ERROR;
            }
        }
        if (globbed) {
            globfree(&g);
        }
    }
    return rc;
}

static int
ed_yaml_is_include(const ed_node_t *k)
{
    return k->value.len == 7 && memcmp(k->value.data, "include", 7) == 0;
}

/* A copy of a collection node (same position), its items to be set by
 * the caller. NULL on ENOMEM. */
static ed_node_t *
ed_yaml_copy_node(ed_conf_t *cf, const ed_node_t *n)
{
    ed_node_t *c = ed_palloc(cf->pool, sizeof(ed_node_t));

    if (c) {
        *c = *n;
    }
    return c;
}

/* A main-level key set a second time (k, v) while merging the main file
 * and its includes; i is the pair already in out. Lists of a key flagged
 * ED_KEY_INCLUDE_ITEMS (`servers`) are concatenated, maps of a key
 * flagged ED_KEY_INCLUDE_KEYS (`upstreams`) merged, naming both places
 * of a name defined twice; anything else is a duplicate. ED_OK,
 * ED_DECLINED (recorded) or ED_ERROR (ENOMEM). */
static int
ed_yaml_merge_main(ed_conf_t *cf, ed_yaml_buf_t *out, size_t i, ed_node_t *k,
                   ed_node_t *v)
{
    ed_node_t *fk = out->items[2 * i], *fv = out->items[2 * i + 1], *m, *dup;
    const ed_key_t *key;
    ed_yaml_buf_t b = {NULL, 0, 0};
    size_t j, n;
    int rc;

    key = ed_module_find_key(k->value.data, ED_CTX_MAIN, NULL);
    if (key && (key->ctx & ED_CTX_MAIN)
        && (key->flags & ED_KEY_INCLUDE_ITEMS) && fv->type == ED_NODE_SEQ
        && v->type == ED_NODE_SEQ)
    {
        m = ed_yaml_copy_node(cf, fv);
        n = fv->n + v->n;
        if (m == NULL
            || (m->items = ed_palloc(cf->pool, (n ? n : 1)
                                                   * sizeof(ed_node_t *)))
                   == NULL)
        {
            ed_yaml_nomem(cf, k);
            return ED_ERROR;
        }
        if (fv->n) {
            memcpy(m->items, fv->items, fv->n * sizeof(ed_node_t *));
        }
        if (v->n) {
            memcpy(m->items + fv->n, v->items, v->n * sizeof(ed_node_t *));
        }
        m->n = n;
        out->items[2 * i + 1] = m;
        return ED_OK;
    }
    if (key && (key->ctx & ED_CTX_MAIN) && (key->flags & ED_KEY_INCLUDE_KEYS)
        && fv->type == ED_NODE_MAP && v->type == ED_NODE_MAP)
    {
        m = ed_yaml_copy_node(cf, fv);
        if (m == NULL) {
            ed_yaml_nomem(cf, k);
            return ED_ERROR;
        }
        rc = ED_OK;
        for (j = 0; j < 2 * fv->n; j++) {
            if (ed_yaml_push(cf->pool, &b, fv->items[j]) != ED_OK) {
                ed_yaml_nomem(cf, k);
                return ED_ERROR;
            }
        }
        for (j = 0; j < v->n; j++) {
            /* `include:` inside the map is expanded later, each. */
            dup = ed_yaml_is_include(v->items[2 * j])
                      ? NULL
                      : ed_yaml_find(b.items, b.n / 2, v->items[2 * j]);
            if (dup) {
                n = strlen(k->value.data);
                if (n > 1 && k->value.data[n - 1] == 's') {
                    n--;
                }
                ed_conf_error(cf, v->items[2 * j],
                              "%.*s \"%s\" is defined twice (first at "
                              "%s:%u:%u)", (int)n, k->value.data,
                              v->items[2 * j]->value.data, dup->file,
                              dup->line, dup->col);
                rc = ED_DECLINED;
                continue;
            }
            if (ed_yaml_push(cf->pool, &b, v->items[2 * j]) != ED_OK
                || ed_yaml_push(cf->pool, &b, v->items[2 * j + 1]) != ED_OK)
            {
                ed_yaml_nomem(cf, k);
                return ED_ERROR;
            }
        }
        m->items = b.items;
        m->n = b.n / 2;
        out->items[2 * i + 1] = m;
        return rc;
    }
    ed_conf_error(cf, k, "duplicate key \"%s\" (already set at %s:%u:%u)",
                  k->value.data, fk->file, fk->line, fk->col);
    return ED_DECLINED;
}

/* Copies map's pairs into out, replacing `include:` keys by the pairs of
 * the included maps. Duplicates across files are errors, except at main
 * level (main set) where ed_yaml_merge_main decides. ED_OK or
 * ED_ERROR. */
static int
ed_yaml_expand_map(ed_conf_t *cf, ed_node_t *map, unsigned depth,
                   ed_yaml_buf_t *out, int main)
{
    ed_yaml_buf_t roots = {NULL, 0, 0};
    ed_node_t *k, *v, *first;
    size_t i, j;
    int rc;

    rc = ED_OK;
    for (i = 0; i < map->n; i++) {
        k = map->items[2 * i];
        v = map->items[2 * i + 1];
        if (!ed_yaml_is_include(k)) {
            first = main ? ed_yaml_find(out->items, out->n / 2, k) : NULL;
            switch (first ? ed_yaml_merge_main(cf, out,
                                               ed_yaml_index(out, first),
                                               k, v)
                          : ed_yaml_add_pair(cf, out, k, v))
            {
            case ED_ERROR:
                return ED_ERROR;
            case ED_DECLINED:
                rc = ED_ERROR;
                break;
            }
            continue;
        }
        roots.n = 0;
        if (ed_yaml_include(cf, v, depth, &roots) != ED_OK) {
            rc = ED_ERROR;
        }
        for (j = 0; j < roots.n; j++) {
            if (roots.items[j]->type != ED_NODE_MAP) {
                rc = ed_conf_error(cf, roots.items[j],
                                   "an included file "
                                   "here must hold a mapping");
                continue;
            }
            if (ed_yaml_expand_map(cf, roots.items[j], depth + 1, out, main)
                != ED_OK)
            {
                rc = ED_ERROR;
            }
        }
    }
    return rc;
}

/* Replaces a map's include keys in place (main: it is the main level).
 * ED_OK or ED_ERROR. */
static int
ed_yaml_expand_map_in_place(ed_conf_t *cf, ed_node_t *map, int main)
{
    ed_yaml_buf_t out = {NULL, 0, 0};
    int rc;

    rc = ed_yaml_expand_map(cf, map, 0, &out, main);
    map->items = out.items;
    map->n = out.n / 2;
    return rc;
}

/* One item of a list flagged ED_KEY_INCLUDE_ITEMS (key: its name, for
 * messages): a map holding only `include:` is replaced by the items of
 * the included files (a map is one item, a sequence a list of them); any
 * other item is kept. ED_OK or ED_ERROR. */
static int
ed_yaml_expand_item(ed_conf_t *cf, const ed_key_t *key, ed_node_t *item,
                    unsigned depth, ed_yaml_buf_t *out)
{
    ed_yaml_buf_t roots = {NULL, 0, 0};
    ed_node_t *r;
    size_t j, k, n;
    int rc;

    if (item->type != ED_NODE_MAP || item->n != 1
        || !ed_yaml_is_include(item->items[0]))
    {
        if (ed_yaml_push(cf->pool, out, item) != ED_OK) {
            ed_yaml_nomem(cf, item);
            return ED_ERROR;
        }
        return ED_OK;
    }
    rc = ed_yaml_include(cf, item->items[1], depth, &roots);
    for (j = 0; j < roots.n; j++) {
        r = roots.items[j];
        if (r->type == ED_NODE_MAP) {
            if (ed_yaml_expand_item(cf, key, r, depth + 1, out) != ED_OK) {
                rc = ED_ERROR;
            }
        } else if (r->type == ED_NODE_SEQ) {
            for (k = 0; k < r->n; k++) {
                if (ed_yaml_expand_item(cf, key, r->items[k], depth + 1,
                                        out) != ED_OK) {
                    rc = ED_ERROR;
                }
            }
        } else {
            n = strlen(key->name);
            if (n > 1 && key->name[n - 1] == 's') {
                n--;
            }
            rc = ed_conf_error(cf, r,
                               "an included file here must hold a "
                               "%.*s (a mapping) or a list of %s", (int)n,
                               key->name, key->name);
        }
    }
    return rc;
}

/* Expands includes at main level, then in the values of the main-level
 * keys that ask for it (ED_KEY_INCLUDE_*), in module table order.
 * ED_OK or ED_ERROR. */
static int
ed_yaml_expand(ed_conf_t *cf, ed_node_t *root)
{
    ed_module_t **mods = ed_modules_table();
    ed_yaml_buf_t out;
    const ed_key_t *k;
    ed_node_t *v;
    size_t i, m;
    int rc;

    if (root->type != ED_NODE_MAP) {
        return ED_OK;
    }
    rc = ed_yaml_expand_map_in_place(cf, root, 1);
    for (m = 0; mods[m] != NULL; m++) {
        for (k = mods[m]->keys; k && k->name; k++) {
            if (!(k->flags & (ED_KEY_INCLUDE_KEYS | ED_KEY_INCLUDE_ITEMS))
                || !(k->ctx & ED_CTX_MAIN)
                || (v = ed_conf_get(root, k->name)) == NULL)
            {
                continue;
            }
            if ((k->flags & ED_KEY_INCLUDE_ITEMS) && v->type == ED_NODE_SEQ)
            {
                out = (ed_yaml_buf_t){NULL, 0, 0};
                for (i = 0; i < v->n; i++) {
                    if (ed_yaml_expand_item(cf, k, v->items[i], 0, &out)
                        != ED_OK)
                    {
                        rc = ED_ERROR;
                    }
                }
                v->items = out.items;
                v->n = out.n;
            } else if ((k->flags & ED_KEY_INCLUDE_KEYS)
                       && v->type == ED_NODE_MAP
                       && ed_yaml_expand_map_in_place(cf, v, 0) != ED_OK)
            {
                rc = ED_ERROR;
            }
        }
    }
    return rc;
}

/* Returns the expanded tree, or NULL when any error was recorded. */
static ed_node_t *
ed_yaml_load(ed_conf_t *cf, const char *name, const char *buf, size_t len)
{
    ed_node_t *root;
    unsigned nerrors;
    int empty;

    nerrors = cf->nerrors;
    root = ed_yaml_parse(cf, name, buf, len, NULL, &empty);
    if (root == NULL) {
        return NULL;
    }
    ed_yaml_expand(cf, root);
    return cf->nerrors == nerrors ? root : NULL;
}

ed_node_t *
ed_conf_load(ed_conf_t *cf, const char *path)
{
    return ed_yaml_load(cf, path, NULL, 0);
}

ed_node_t *
ed_conf_load_string(ed_conf_t *cf, const char *name, const char *yaml,
                    size_t len)
{
    /* libyaml reads a NULL buffer as an error; an empty one is fine. */
    return ed_yaml_load(cf, name, yaml ? yaml : "", yaml ? len : 0);
}

/* The dump. */

/* Whether a scalar must be double-quoted to read back as the same
 * string. */
static int
ed_yaml_needs_quotes(const ed_str_t *s)
{
    const unsigned char *p = (const unsigned char *)s->data;
    size_t i, n = s->len;

    if (n == 0 || strchr(",[]{}#&*!|>'\"%@`", p[0])) {
        return 1;
    }
    if (strchr("-?:", p[0]) && (n == 1 || p[1] == ' ' || p[1] == '\t')) {
        return 1;
    }
    if (p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t'
        || p[n - 1] == ':')
    {
        return 1;
    }
    if ((n == 1 && p[0] == '~')
        || (n == 4
            && (memcmp(p, "null", 4) == 0 || memcmp(p, "Null", 4) == 0
                || memcmp(p, "NULL", 4) == 0)))
    {
        return 1;
    }
    if (n >= 3 && (memcmp(p, "---", 3) == 0 || memcmp(p, "...", 3) == 0)) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return 1;
        }
        if (i + 1 < n
            && ((p[i] == ':' && (p[i + 1] == ' '))
                || (p[i] == ' ' && p[i + 1] == '#')))
        {
            return 1;
        }
        if (p[i] >= 0x80) {
            /* Non-ASCII may be a non-printable character (NEL, BOM...)
             * libyaml refuses in plain scalars; quotes accept it. */
            return 1;
        }
    }
    return 0;
}

/* Decodes the UTF-8 character at p (n bytes left). Returns its length
 * with the code point in *cp, or 0 when the bytes are not valid UTF-8. */
static size_t
ed_yaml_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c;

    if (p[0] < 0xc2 || p[0] > 0xf4) {
        return 0;
    }
    len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    if (len > n) {
        return 0;
    }
    c = p[0] & (0x3f >> (len - 1));
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff))
        || (c >= 0xd800 && c <= 0xdfff))
    {
        return 0;
    }
    *cp = c;
    return len;
}

/* flow: inside [...] or {...}, where ",[]{}" end a plain scalar (a ':'
 * or '#' is quoted too, for the reader's sake). */
void
ed_conf_dump_scalar(FILE *out, const ed_node_t *node, unsigned flow)
{
    const unsigned char *p = (const unsigned char *)node->value.data;
    size_t i, len;
    uint32_t cp;

    if (!node->quoted && node->value.len == 0) {
        fputc('~', out);
        return;
    }
    if (!node->quoted && !ed_yaml_needs_quotes(&node->value)
        && !(flow && strpbrk(node->value.data, ",[]{}:#") != NULL))
    {
        fwrite(p, 1, node->value.len, out);
        return;
    }
    fputc('"', out);
    for (i = 0; i < node->value.len; i++) {
        switch (p[i]) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            if (p[i] < 0x20 || p[i] == 0x7f) {
                fprintf(out, "\\x%02x", p[i]);
                break;
            }
            if (p[i] < 0x80) {
                fputc(p[i], out);
                break;
            }
            len = ed_yaml_utf8(p + i, node->value.len - i, &cp);
            if (len == 0) {
                /* Not UTF-8 (an environment value); written as is. */
                fputc(p[i], out);
                break;
            }
            /* C1 controls, line and paragraph separators and BOM-like
             * characters would be read back as breaks or refused. */
            if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff
                || cp == 0xfffe || cp == 0xffff)
            {
                fprintf(out, "\\u%04x", (unsigned)cp);
            } else {
                fwrite(p + i, 1, len, out);
            }
            i += len - 1;
        }
    }
    fputc('"', out);
}

static void ed_yaml_dump_node(FILE *out, const ed_node_t *node, unsigned indent,
                              int inline_first);

/* Writes a value after "key:" or "- ": scalars and empty collections on
 * the same line, others below (maps) or inline-first (after "- "). */
static void
ed_yaml_dump_value(FILE *out, const ed_node_t *v, unsigned indent, int item)
{
    if (v->type == ED_NODE_SCALAR) {
        fputc(' ', out);
        ed_conf_dump_scalar(out, v, 0);
        fputc('\n', out);
    } else if (v->n == 0) {
        fputs(v->type == ED_NODE_MAP ? " {}\n" : " []\n", out);
    } else if (item) {
        fputc(' ', out);
        ed_yaml_dump_node(out, v, indent + 2, 1);
    } else {
        fputc('\n', out);
        ed_yaml_dump_node(out, v, indent + 2, 0);
    }
}

void
ed_conf_dump_key(FILE *out, const ed_node_t *key, unsigned indent)
{
    if (key->value.len > 128) {
        fputs("? ", out);
        ed_conf_dump_scalar(out, key, 0);
        fprintf(out, "\n%*s:", (int)indent, "");
        return;
    }
    ed_conf_dump_scalar(out, key, 0);
    fputc(':', out);
}

/* inline_first: the first line's indentation is already written. */
static void
ed_yaml_dump_node(FILE *out, const ed_node_t *node, unsigned indent,
                  int inline_first)
{
    size_t i;

    if (node->type == ED_NODE_SCALAR || node->n == 0) {
        if (node->type == ED_NODE_SCALAR) {
            ed_conf_dump_scalar(out, node, 0);
        } else {
            fputs(node->type == ED_NODE_MAP ? "{}" : "[]", out);
        }
        fputc('\n', out);
        return;
    }
    for (i = 0; i < node->n; i++) {
        if (i > 0 || !inline_first) {
            fprintf(out, "%*s", (int)indent, "");
        }
        if (node->type == ED_NODE_SEQ) {
            fputc('-', out);
            ed_yaml_dump_value(out, node->items[i], indent, 1);
        } else {
            ed_conf_dump_key(out, node->items[2 * i], indent);
            ed_yaml_dump_value(out, node->items[2 * i + 1], indent, 0);
        }
    }
}

void
ed_conf_dump(FILE *out, const ed_node_t *node)
{
    if (node) {
        ed_yaml_dump_node(out, node, 0, 0);
    }
}
