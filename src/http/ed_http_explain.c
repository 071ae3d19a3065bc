/* eddy explain: the sections after the server (location, handler, rules,
 * result), the functions the modules' explain hooks write with, and
 * where a setting comes from. The location is the one
 * ed_http_find_location chooses; the trail only says why. */
#include "ed_http_explain.h"
#include "ed_http_upstream.h"

#include <stdarg.h>

/* Buffers. */

void
ed_explain_puts(ed_explain_buf_t *b, const char *s, size_t len)
{
    char   *p;
    size_t  cap;

    if (b->failed) {
        return;
    }
    if (b->len + len + 1 > b->cap) {
        cap = ed_max(2 * b->cap, b->len + len + 256);
        p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void
ed_explain_vprintf(ed_explain_buf_t *b, const char *fmt, va_list ap)
{
    char    small[512], *big;
    va_list cp;
    int     n;

    va_copy(cp, ap);
    n = vsnprintf(small, sizeof(small), fmt, cp);
    va_end(cp);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof(small)) {
        ed_explain_puts(b, small, (size_t)n);
        return;
    }
    big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->failed = 1;
        return;
    }
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    ed_explain_puts(b, big, (size_t)n);
    free(big);
}

void
ed_explain_printf(ed_explain_buf_t *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ed_explain_vprintf(b, fmt, ap);
    va_end(ap);
}

void
ed_explain_jstr(ed_explain_buf_t *b, const char *s, size_t len)
{
    size_t        i;
    unsigned char c;

    ed_explain_puts(b, "\"", 1);
    for (i = 0; s && i < len; i++) {
        c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            ed_explain_printf(b, "\\%c", c);
        } else if (c == '\n') {
            ed_explain_puts(b, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            ed_explain_printf(b, "\\u%04x", c);
        } else {
            ed_explain_puts(b, (const char *)&c, 1);
        }
    }
    ed_explain_puts(b, "\"", 1);
}

void
ed_explain_buf_free(ed_explain_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Empties a buffer, keeping its memory. */
static void
ed_explain_reset(ed_explain_buf_t *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

static const char *
ed_explain_cstr(const ed_explain_buf_t *b)
{
    return b->data ? b->data : "";
}

void
ed_explain_section(ed_explain_buf_t *out, const char *name, const char *head,
                   const char *more)
{
    const char *p, *nl;

    ed_explain_printf(out, "%-10s%s", name, head);
    for (p = more; p && *p; p = nl) {
        /* Each further line starts with '\n'. */
        nl = strchr(p + 1, '\n');
        if (nl == NULL) {
            nl = p + strlen(p);
        }
        ed_explain_printf(out, "\n%10s%.*s", "", (int)(nl - p - 1), p + 1);
    }
    ed_explain_lit(out, "\n");
}

const char *
ed_explain_size(int64_t size, char *buf, size_t len)
{
    if (size < 1024) {
        snprintf(buf, len, "%lld B", (long long)size);
    } else if (size < 1024 * 1024) {
        snprintf(buf, len, "%.1f KiB", (double)size / 1024);
    } else if (size < 1024LL * 1024 * 1024) {
        snprintf(buf, len, "%.1f MiB", (double)size / (1024 * 1024));
    } else {
        snprintf(buf, len, "%.1f GiB", (double)size / (1024 * 1024 * 1024));
    }
    return buf;
}

/* The hooks' functions. */

void
ed_explain_handler(ed_explain_t *ex, const char *module)
{
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_explain_printf(&ex->head, "%s:", module);
        ed_explain_lit(&ex->json, "\"module\":");
        ed_explain_jcstr(&ex->json, module);
        ed_explain_lit(&ex->json, ",\"settings\":[");
    } else {
        ed_explain_printf(&ex->more, "\n%s:", module);
        ed_explain_puts(&ex->items, ",", ex->nitems ? 1 : 0);
        ed_explain_lit(&ex->items, "{\"module\":");
        ed_explain_jcstr(&ex->items, module);
        ed_explain_lit(&ex->items, ",\"settings\":[");
        ex->nitems++;
    }
    ex->nsettings = 0;
    ex->opened = 1;
}

void
ed_explain_set(ed_explain_t *ex, const char *name, const char *value,
               const char *from)
{
    ed_explain_buf_t *t, *j;

    t = ex->phase == ED_EXPLAIN_HANDLER ? &ex->head : &ex->more;
    j = ex->phase == ED_EXPLAIN_HANDLER ? &ex->json : &ex->items;
    ed_explain_printf(t, "%s%s %s", ex->nsettings ? ", " : " ", name,
                      value);
    if (from) {
        ed_explain_printf(t, " (%s)", from);
    }
    ed_explain_puts(j, ",", ex->nsettings ? 1 : 0);
    ed_explain_lit(j, "{\"name\":");
    ed_explain_jcstr(j, name);
    ed_explain_lit(j, ",\"value\":");
    ed_explain_jcstr(j, value);
    ed_explain_lit(j, ",\"from\":");
    ed_explain_jcstr(j, from ? from : "default");
    ed_explain_lit(j, "}");
    ex->nsettings++;
}

/* The value of key (in block) at one level's map, or NULL. */
static ed_node_t *
ed_explain_lookup(ed_node_t *map, const char *block, const char *key)
{
    if (block) {
        map = ed_conf_get(map, block);
        if (map == NULL || map->type != ED_NODE_MAP) {
            return NULL;
        }
    }
    return ed_conf_get(map, key);
}

const char *
ed_explain_from(ed_explain_t *ex, const char *block, const char *key,
                ed_node_t **node, int slot)
{
    static char         bufs[4][512];
    char               *buf = bufs[slot & 3];
    ed_http_location_t *loc = ex->loc;
    ed_node_t          *v = NULL;

    if (node) {
        *node = NULL;
    }
    /* A location of its own (not the server's fallback). */
    if (loc->conf != loc->server->loc_conf) {
        v = ed_explain_lookup(loc->node, block, key);
        if (v) {
            snprintf(buf, 512, "%s:%u:%u", v->file, v->line, v->col);
        }
    }
    if (v == NULL) {
        v = ed_explain_lookup(loc->server->node, block, key);
        if (v) {
            snprintf(buf, 512, "inherited from server at %s:%u", v->file,
                     v->line);
        }
    }
    if (v == NULL) {
        v = ed_explain_lookup(ex->cycle->root, block, key);
        if (v) {
            snprintf(buf, 512, "inherited from main at %s:%u", v->file,
                     v->line);
        }
    }
    if (v == NULL) {
        snprintf(buf, 512, "default");
    }
    if (node) {
        *node = v;
    }
    return buf;
}

const char *
ed_explain_node_text(ed_explain_t *ex, const ed_node_t *node)
{
    ed_explain_buf_t b;
    const char      *s;
    size_t           i;

    if (node == NULL) {
        return "";
    }
    if (node->type == ED_NODE_SCALAR) {
        return node->value.data;
    }
    memset(&b, 0, sizeof(b));
    if (node->type == ED_NODE_MAP) {
        ed_explain_lit(&b, "{");
        for (i = 0; i < node->n; i++) {
            ed_explain_printf(&b, "%s%s: %s", i ? ", " : "",
                              node->items[2 * i]->value.data,
                              node->items[2 * i + 1]->type == ED_NODE_SCALAR
                                  ? node->items[2 * i + 1]->value.data
                                  : "...");
        }
        ed_explain_lit(&b, "}");
    } else {
        ed_explain_lit(&b, "[");
        for (i = 0; node->type == ED_NODE_SEQ && i < node->n; i++) {
            ed_explain_printf(&b, "%s%s", i ? ", " : "",
                              node->items[i]->type == ED_NODE_SCALAR
                                  ? node->items[i]->value.data : "...");
        }
        ed_explain_lit(&b, "]");
    }
    s = b.data ? ed_pstrdup(ex->r->pool, b.data, b.len) : NULL;
    ed_explain_buf_free(&b);
    return s ? s : "";
}

/* The JSON item of a rule; a status makes the later rules "not
 * reached". Frees detail. */
static void
ed_explain_rule_item(ed_explain_t *ex, const char *module,
                     const char *verdict, ed_explain_buf_t *detail,
                     int status)
{
    ed_explain_puts(&ex->items, ",", ex->nitems ? 1 : 0);
    ed_explain_lit(&ex->items, "{\"module\":");
    ed_explain_jcstr(&ex->items, module);
    ed_explain_lit(&ex->items, ",\"verdict\":");
    ed_explain_jcstr(&ex->items, verdict);
    ed_explain_lit(&ex->items, ",\"detail\":");
    ed_explain_jstr(&ex->items, detail->data, detail->len);
    if (status) {
        ed_explain_printf(&ex->items, ",\"status\":%d", status);
        ex->refused = status;
    }
    ed_explain_lit(&ex->items, "}");
    ex->nitems++;
    ed_explain_buf_free(detail);
}

void
ed_explain_rule(ed_explain_t *ex, const char *module, const char *verdict,
                int status, const char *fmt, ...)
{
    ed_explain_buf_t detail;
    va_list          ap;

    memset(&detail, 0, sizeof(detail));
    if (fmt) {
        va_start(ap, fmt);
        ed_explain_vprintf(&detail, fmt, ap);
        va_end(ap);
    }
    if (ex->refused) {
        /* An earlier check answered: this one never runs. */
        verdict = "not reached";
        status = 0;
    }
    ed_explain_printf(&ex->head, "%s%s: %s", ex->nitems ? "; " : "", module,
                      verdict);
    if (detail.len) {
        ed_explain_printf(&ex->head, ", %s", detail.data);
    }
    if (status) {
        ed_explain_printf(&ex->head, " -> %d", status);
    }
    ed_explain_rule_item(ex, module, verdict, &detail, status);
}

void
ed_explain_rule_runtime(ed_explain_t *ex, const char *module,
                        const char *fmt, ...)
{
    static const char verdict[] = "state not consulted";
    ed_explain_buf_t  detail;
    va_list           ap;

    memset(&detail, 0, sizeof(detail));
    va_start(ap, fmt);
    ed_explain_vprintf(&detail, fmt, ap);
    va_end(ap);
    ed_explain_printf(&ex->head, "%s%s: %s, %s", ex->nitems ? "; " : "",
                      module, ed_explain_cstr(&detail),
                      ex->refused ? "not reached" : verdict);
    ed_explain_rule_item(ex, module, ex->refused ? "not reached" : verdict,
                         &detail, 0);
}

const char *
ed_explain_quote(ed_explain_t *ex, const char *s, size_t len, size_t max)
{
    ed_explain_buf_t b;
    const char      *q;
    size_t           i;
    unsigned char    c;

    memset(&b, 0, sizeof(b));
    ed_explain_lit(&b, "\"");
    for (i = 0; i < len && i < max; i++) {
        c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            ed_explain_printf(&b, "\\%c", c);
        } else if (c == '\n') {
            ed_explain_lit(&b, "\\n");
        } else if (c < 0x20 || c == 0x7f) {
            ed_explain_printf(&b, "\\x%02x", c);
        } else {
            ed_explain_puts(&b, (const char *)&c, 1);
        }
    }
    ed_explain_lit(&b, "\"");
    if (len > max) {
        ed_explain_lit(&b, "...");
    }
    q = b.data ? ed_pstrdup(ex->r->pool, b.data, b.len) : NULL;
    ed_explain_buf_free(&b);
    return q ? q : "\"\"";
}

void
ed_explain_result(ed_explain_t *ex, int status, const char *fmt, ...)
{
    va_list ap;

    ex->status = status;
    ed_explain_reset(&ex->head);
    if (status) {
        ed_explain_printf(&ex->head, "%d ", status);
    }
    va_start(ap, fmt);
    ed_explain_vprintf(&ex->head, fmt, ap);
    va_end(ap);
}

void
ed_explain_step(ed_explain_t *ex, const char *fmt, ...)
{
    ed_explain_buf_t s;
    va_list          ap;

    memset(&s, 0, sizeof(s));
    va_start(ap, fmt);
    ed_explain_vprintf(&s, fmt, ap);
    va_end(ap);
    ed_explain_printf(&ex->more, "\n%s", ed_explain_cstr(&s));
    ed_explain_puts(&ex->steps, ",", ex->nsteps ? 1 : 0);
    ed_explain_jstr(&ex->steps, s.data, s.len);
    ex->nsteps++;
    ed_explain_buf_free(&s);
}

void
ed_explain_field(ed_explain_t *ex, const char *name, const char *value,
                 size_t len)
{
    ed_explain_lit(&ex->json, ",");
    ed_explain_jcstr(&ex->json, name);
    ed_explain_lit(&ex->json, ":");
    ed_explain_jstr(&ex->json, value, len);
}

void
ed_explain_field_int(ed_explain_t *ex, const char *name, int64_t n)
{
    ed_explain_lit(&ex->json, ",");
    ed_explain_jcstr(&ex->json, name);
    ed_explain_printf(&ex->json, ":%lld", (long long)n);
}

void
ed_explain_redirect(ed_explain_t *ex, const ed_str_t *uri,
                    const ed_str_t *args, const char *why)
{
    ex->redirect = *uri;
    ex->redirect_has_args = args != NULL;
    if (args) {
        ex->redirect_args = *args;
    }
    ex->redirect_why = why;
}

/* Starts a section. */
static void
ed_explain_begin(ed_explain_t *ex, int phase)
{
    ex->phase = phase;
    ed_explain_reset(&ex->head);
    ed_explain_reset(&ex->more);
    ed_explain_reset(&ex->json);
    ed_explain_reset(&ex->items);
    ed_explain_reset(&ex->steps);
    ex->nitems = 0;
    ex->nsteps = 0;
    ex->nsettings = 0;
    ex->opened = 0;
}

/* The location. */

static const char *
ed_explain_loc_kind(const ed_http_location_t *l)
{
    switch (l->kind) {
    case ED_HTTP_LOC_EXACT:
        return "exact";
    case ED_HTTP_LOC_NOREGEX:
        return "prefix ^~";
    case ED_HTTP_LOC_REGEX:
        return "regex";
    case ED_HTTP_LOC_REGEX_CASELESS:
        return "regex caseless";
    default:
        return "prefix";
    }
}

/* Where a location is written: its key in the server's `locations`. */
static const ed_node_t *
ed_explain_loc_node(const ed_http_location_t *l)
{
    ed_node_t *m;
    size_t     i;

    m = ed_conf_get(l->server->node, "locations");
    for (i = 0; m && m->type == ED_NODE_MAP && i < m->n; i++) {
        if (m->items[2 * i + 1] == l->node) {
            return m->items[2 * i];
        }
    }
    return l->node;
}

static bool
ed_explain_re_match(pcre2_code *re, const ed_str_t *s)
{
    pcre2_match_data *md;
    int               rc;

    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL) {
        return false;
    }
    rc = pcre2_match(re, (PCRE2_SPTR)s->data, s->len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* One line of the trail. */
static void
ed_explain_trail(ed_explain_t *ex, const ed_http_location_t *l, int width,
                 const char *fmt, ...)
{
    ed_explain_buf_t v;
    const ed_node_t *n = ed_explain_loc_node(l);
    va_list          ap;

    memset(&v, 0, sizeof(v));
    va_start(ap, fmt);
    ed_explain_vprintf(&v, fmt, ap);
    va_end(ap);
    ed_explain_printf(&ex->more, "\n%-*s%s", width, l->name.data,
                      ed_explain_cstr(&v));
    ed_explain_puts(&ex->items, ",", ex->nitems ? 1 : 0);
    ed_explain_lit(&ex->items, "{\"name\":");
    ed_explain_jstr(&ex->items, l->name.data, l->name.len);
    ed_explain_lit(&ex->items, ",\"kind\":");
    ed_explain_jcstr(&ex->items, ed_explain_loc_kind(l));
    ed_explain_printf(&ex->items, ",\"at\":\"%s:%u:%u\",\"verdict\":",
                      n->file, n->line, n->col);
    ed_explain_jstr(&ex->items, v.data, v.len);
    ed_explain_lit(&ex->items, "}");
    ex->nitems++;
    ed_explain_buf_free(&v);
}

/* Chooses r's location with the server's code and writes the trail in
 * nginx's order: exact matches, prefixes (the longest wins; ^~ skips the
 * regexes), then regexes in file order. */
static void
ed_explain_location(ed_explain_t *ex)
{
    ed_http_request_t   *r = ex->r;
    ed_http_server_t    *srv = r->server;
    ed_http_location_t **locs = srv->locations.elts, *l, *best = NULL;
    ed_http_location_t  *chosen, *exact = NULL;
    const ed_node_t     *n;
    const ed_str_t      *u = &r->uri;
    size_t               i;
    int                  width = 0;
    bool                 found = false, skip;

    ed_explain_begin(ex, 0);
    chosen = ed_http_find_location(srv, r, u);
    for (i = 0; i < srv->locations.nelts; i++) {
        width = ed_max(width, (int)locs[i]->name.len + 4);
        l = locs[i];
        if (l->conf == NULL) {
            continue;
        }
        if (l->kind == ED_HTTP_LOC_EXACT && exact == NULL
            && ed_str_eq(&l->match, u))
        {
            exact = l;
        }
        if ((l->kind == ED_HTTP_LOC_PREFIX || l->kind == ED_HTTP_LOC_NOREGEX)
            && u->len >= l->match.len
            && memcmp(u->data, l->match.data, l->match.len) == 0
            && (best == NULL || l->match.len > best->match.len))
        {
            best = l;
        }
    }
    for (i = 0; i < srv->locations.nelts; i++) {
        l = locs[i];
        if (l->conf == NULL || l->kind != ED_HTTP_LOC_EXACT) {
            continue;
        }
        if (found) {
            ed_explain_trail(ex, l, width, "not tried");
        } else if (l == exact) {
            ed_explain_trail(ex, l, width, "equal: chosen, nothing else "
                             "is tried");
            found = true;
        } else {
            ed_explain_trail(ex, l, width, "not equal");
        }
    }
    for (i = 0; i < srv->locations.nelts; i++) {
        l = locs[i];
        if (l->conf == NULL || (l->kind != ED_HTTP_LOC_PREFIX
                                && l->kind != ED_HTTP_LOC_NOREGEX))
        {
            continue;
        }
        if (found) {
            ed_explain_trail(ex, l, width, "not tried");
        } else if (u->len < l->match.len
                   || memcmp(u->data, l->match.data, l->match.len) != 0)
        {
            ed_explain_trail(ex, l, width, "not a prefix");
        } else if (l != best) {
            ed_explain_trail(ex, l, width, "prefix, %zu byte%s", l->match.len,
                             l->match.len == 1 ? "" : "s");
        } else if (l->kind == ED_HTTP_LOC_NOREGEX) {
            ed_explain_trail(ex, l, width, "prefix, %zu byte%s: longest, ^~ "
                             "skips the regexes", l->match.len,
                             l->match.len == 1 ? "" : "s");
        } else {
            ed_explain_trail(ex, l, width, "prefix, %zu byte%s: longest, "
                             "%s", l->match.len, l->match.len == 1 ? "" : "s",
                             l == chosen ? "no regex matches"
                                         : "but a regex matches");
        }
    }
    skip = found || (best && best->kind == ED_HTTP_LOC_NOREGEX);
    for (i = 0; i < srv->locations.nelts; i++) {
        l = locs[i];
        if (l->conf == NULL || l->re == NULL) {
            continue;
        }
        if (skip) {
            ed_explain_trail(ex, l, width, "not tried");
        } else if (ed_explain_re_match(l->re, u)) {
            ed_explain_trail(ex, l, width, "matches: chosen");
            skip = true;
        } else {
            ed_explain_trail(ex, l, width, "no match");
        }
    }

    r->loc = chosen;
    r->loc_conf = chosen->conf;
    r->clcf = r->loc_conf[ed_http_core_module.index];
    ed_http_underscores(r);
    ex->loc = chosen;
    if (chosen == srv->fallback) {
        ed_explain_printf(&ex->head, "(none) (server #%u): no location "
                          "matches \"%s\"; the server's own settings",
                          srv->index, u->data);
        ed_explain_lit(&ex->json, "\"name\":null,\"kind\":\"none\"");
    } else {
        n = ed_explain_loc_node(chosen);
        ed_explain_printf(&ex->head, "%s (%s:%u:%u)", chosen->name.data,
                          n->file, n->line, n->col);
        ed_explain_lit(&ex->json, "\"name\":");
        ed_explain_jstr(&ex->json, chosen->name.data, chosen->name.len);
        ed_explain_lit(&ex->json, ",\"kind\":");
        ed_explain_jcstr(&ex->json, ed_explain_loc_kind(chosen));
        ed_explain_printf(&ex->json, ",\"at\":\"%s:%u:%u\"", n->file,
                          n->line, n->col);
    }
    ed_explain_lit(&ex->json, ",\"uri\":");
    ed_explain_jstr(&ex->json, u->data, u->len);
}

/* Writes the section in ex to the run's text and JSON outputs; json
 * is the whole JSON value. */
static void
ed_explain_emit(ed_explain_run_t *run, ed_explain_t *ex, const char *name,
                const char *json, bool first)
{
    ed_explain_section(&run->out, name, ed_explain_cstr(&ex->head),
                       ed_explain_cstr(&ex->more));
    ed_explain_printf(&run->jout, "%s\"%s\":%s", first ? "" : ",", name,
                      json);
}

/* The result section from ex (status, head, redirect, fields, steps). */
static void
ed_explain_emit_result(ed_explain_run_t *run, ed_explain_t *ex,
                       ed_explain_buf_t *v)
{
    ed_explain_reset(v);
    if (ex->status) {
        ed_explain_printf(v, "{\"status\":%d,\"summary\":", ex->status);
    } else {
        ed_explain_lit(v, "{\"status\":null,\"summary\":");
    }
    ed_explain_jstr(v, ex->head.data, ex->head.len);
    if (ex->redirect.data) {
        ed_explain_lit(v, ",\"redirect\":");
        ed_explain_jstr(v, ex->redirect.data, ex->redirect.len);
    }
    ed_explain_printf(v, "%s,\"steps\":[%s]}", ed_explain_cstr(&ex->json),
                      ed_explain_cstr(&ex->steps));
    ed_explain_emit(run, ex, "result", ed_explain_cstr(v), false);
}

/* The rewrite rules of the server (phase ED_EXPLAIN_REWRITE_SERVER) or
 * of the location: a section named name when the module took part.
 * Returns ex->rewrite: ED_DECLINED (go on), ED_AGAIN (the URI changed:
 * choose the location again), or a status (a redirect, 400, 500). */
static int
ed_explain_rewrite(ed_explain_run_t *run, ed_explain_t *ex, int phase,
                   const char *name, bool first, ed_explain_buf_t *v)
{
    ed_module_t *m;
    size_t       i;
    bool         any = false;

    ed_explain_begin(ex, phase);
    ex->rewrite = ED_DECLINED;
    if (phase == ED_EXPLAIN_REWRITE_SERVER) {
        /* No location yet: hooks read the server's structs. */
        ex->loc = ex->r->server->fallback;
    }
    for (i = 0; (m = ed_modules[i]) != NULL && !any; i++) {
        any = m->explain && m->explain(ex) == ED_OK;
    }
    if (!any) {
        return ED_DECLINED;
    }
    ed_explain_reset(v);
    ed_explain_printf(v, "{%s}", ed_explain_cstr(&ex->json));
    /* "rewrite" in the text either way (the location line tells which);
     * the JSON key names the level. */
    ed_explain_section(&run->out, "rewrite", ed_explain_cstr(&ex->head),
                       ed_explain_cstr(&ex->more));
    ed_explain_printf(&run->jout, "%s\"%s\":%s", first ? "" : ",", name,
                      ed_explain_cstr(v));
    return ex->rewrite;
}

/* A rewrite's verdict that ends the pass: a status (the result), or a
 * new URI to choose the location for (an internal redirect for the
 * passes). Returns the pass's status. */
static int
ed_explain_rewritten(ed_explain_run_t *run, ed_explain_t *ex, int rc,
                     ed_explain_buf_t *v)
{
    ed_str_t loc = ex->redirect;

    /* Neither the handler nor the access phase is reached (nor, after
     * the server's rules, the location choice). */
    if (ex->phase == ED_EXPLAIN_REWRITE_SERVER) {
        ed_explain_lit(&run->jout, ",\"location\":null");
    }
    ed_explain_lit(&run->jout, ",\"handler\":null,\"rules\":null");
    ed_explain_begin(ex, ED_EXPLAIN_RESULT);
    ex->redirect.data = NULL;
    ex->status = 0;
    if (rc == ED_AGAIN) {
        ex->redirect = ex->r->uri;
        ex->redirect_args = ex->r->head.query;
        ex->redirect_has_args = 1;
        ex->redirect_why = "rewrite";
        ed_explain_printf(&ex->head, "rewritten to \"%.*s\": the location "
                          "is chosen again", (int)ex->r->uri.len,
                          ex->r->uri.data);
    } else if (rc == 301 || rc == 302) {
        ed_explain_result(ex, rc, "%s to %s (rewrite)",
                          ed_http_status_text(rc),
                          ed_explain_quote(ex, loc.data, loc.len, 200));
    } else {
        ed_explain_result(ex, rc, "%s: the rewritten URI is not a path",
                          ed_http_status_text(rc));
    }
    ed_explain_emit_result(run, ex, v);
    return ex->status;
}

/* One pass: location, handler, rules and result of r->uri. Returns the
 * final status (0: not known). */
static int
ed_explain_pass(ed_explain_run_t *run, ed_explain_t *ex)
{
    ed_explain_buf_t v;
    ed_module_t     *m;
    size_t           i;
    bool             any = false, first = true;
    int              rc;

    memset(&v, 0, sizeof(v));

    if (ex->r->server->rewrite) {
        rc = ed_explain_rewrite(run, ex, ED_EXPLAIN_REWRITE_SERVER,
                                "server_rewrite", true, &v);
        first = false;
        if (rc != ED_DECLINED && rc != ED_AGAIN) {
            rc = ed_explain_rewritten(run, ex, rc, &v);
            ed_explain_buf_free(&v);
            return rc;
        }
    }
    ed_explain_location(ex);
    ed_explain_reset(&v);
    ed_explain_printf(&v, "{%s,\"trail\":[%s]}", ed_explain_cstr(&ex->json),
                      ed_explain_cstr(&ex->items));
    ed_explain_emit(run, ex, "location", ed_explain_cstr(&v), first);
    if (ex->loc->rewrite) {
        rc = ed_explain_rewrite(run, ex, ED_EXPLAIN_REWRITE, "rewrite", false,
                                &v);
        if (rc != ED_DECLINED) {
            rc = ed_explain_rewritten(run, ex, rc, &v);
            ed_explain_buf_free(&v);
            return rc;
        }
    }

    /* The content handler, then the filters. */
    ed_explain_begin(ex, ED_EXPLAIN_HANDLER);
    for (i = 0; ex->loc->handler && (m = ed_modules[i]) != NULL; i++) {
        if (m->explain && m->explain(ex) == ED_OK && ex->opened) {
            break;
        }
    }
    if (ex->opened) {
        ed_explain_lit(&ex->json, "]");
    } else {
        ed_explain_lit(&ex->head, "none: this location has no content "
                       "handler (no return, redirect, proxy, status, nor a "
                       "root for static files)");
        ed_explain_lit(&ex->json, "\"module\":null,\"settings\":[]");
    }
    ex->phase = ED_EXPLAIN_FILTERS;
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        ex->opened = 0;
        if (m->explain && m->explain(ex) == ED_OK && ex->opened) {
            ed_explain_lit(&ex->items, "]}");
        }
    }
    ed_explain_reset(&v);
    ed_explain_printf(&v, "{%s,\"filters\":[%s]}", ed_explain_cstr(&ex->json),
                      ed_explain_cstr(&ex->items));
    ed_explain_emit(run, ex, "handler", ed_explain_cstr(&v), false);

    /* The access phase. */
    ed_explain_begin(ex, ED_EXPLAIN_RULES);
    ex->refused = 0;
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->explain) {
            any = m->explain(ex) == ED_OK || any;
        }
    }
    if (!any) {
        ed_explain_lit(&ex->head, "none: no access-phase check in this "
                       "location");
    }
    ed_explain_reset(&v);
    ed_explain_printf(&v, "[%s]", ed_explain_cstr(&ex->items));
    ed_explain_emit(run, ex, "rules", ed_explain_cstr(&v), false);

    /* The result. */
    ed_explain_begin(ex, ED_EXPLAIN_RESULT);
    ex->status = 0;
    ex->redirect.data = NULL;
    if (ex->loc->internal && ex->r->redirects == 0) {
        /* As ed_http_run: before any check or handler. */
        ed_explain_result(ex, 404, "%s: an internal location (internal: "
                          "true) answers only redirects and subrequests",
                          ed_http_status_text(404));
    } else if (ex->refused) {
        ed_explain_result(ex, ex->refused, "%s: refused in the access "
                          "phase; the content handler does not run",
                          ed_http_status_text(ex->refused));
    } else if (ex->loc->handler == NULL) {
        ed_explain_result(ex, 404, "%s: no content handler",
                          ed_http_status_text(404));
    } else {
        for (i = 0; (m = ed_modules[i]) != NULL; i++) {
            if (m->explain && m->explain(ex) == ED_OK) {
                break;
            }
        }
        if (ex->redirect.data && ex->head.len == 0) {
            ed_explain_printf(&ex->head, "internal redirect to \"%.*s\" "
                              "(%s)", (int)ex->redirect.len,
                              ex->redirect.data, ex->redirect_why);
        }
    }
    ed_explain_emit_result(run, ex, &v);
    ed_explain_buf_free(&v);
    return ex->status;
}

/* r->uri (NUL-terminated) and, with args, the query, for a redirect. */
static int
ed_explain_set_uri(ed_http_request_t *r, const ed_explain_t *ex)
{
    char *p;

    p = ed_pnalloc(r->pool, ex->redirect.len + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    memcpy(p, ex->redirect.data, ex->redirect.len);
    p[ex->redirect.len] = '\0';
    r->uri.data = p;
    r->uri.len = ex->redirect.len;
    if (ex->redirect_has_args) {
        r->head.query = ex->redirect_args;
    }
    return ED_OK;
}

int
ed_explain_passes(ed_explain_run_t *run)
{
    const ed_http_error_page_t *page;
    ed_http_request_t          *r = run->r;
    ed_explain_t                ex;
    const char                 *q;
    char                        why[64];
    int                         status, error = 0, rc = ED_OK;
    bool                        refused;

    memset(&ex, 0, sizeof(ex));
    ex.r = r;
    ex.cycle = run->cycle;
    status = ed_explain_pass(run, &ex);
    ed_explain_lit(&run->jout, ",\"redirects\":[");
    while (1) {
        page = NULL;
        if (!ex.redirect.data && status >= 400
            && (page = ed_http_error_page_find(r, status)) != NULL)
        {
            /* error_pages: the page is served through an internal
             * redirect, with the error's status. */
            error = status;
            r->internal = 1;
            r->error_status = status;
            ex.redirect = page->uri;
            ex.redirect_has_args = ed_http_split_args(&ex.redirect,
                                                      &ex.redirect_args);
            snprintf(why, sizeof(why), "error_pages %d", status);
            ex.redirect_why = why;
        } else if (!ex.redirect.data) {
            break;
        }
        if (r->redirects >= ED_HTTP_REDIRECTS_MAX) {
            status = 500;
            ed_explain_printf(&run->out, "%-10s500: more than %d internal "
                              "redirects (a cycle)\n", "result",
                              ED_HTTP_REDIRECTS_MAX);
            break;
        }
        r->redirects++;
        if (ed_explain_set_uri(r, &ex) != ED_OK) {
            rc = ED_ERROR;
            break;
        }
        ed_explain_printf(&run->out, "%-10s%s (%s)\n", "redirect",
                          r->uri.data, ex.redirect_why);
        ed_explain_printf(&run->jout, "%s{\"uri\":", r->redirects > 1 ? ","
                                                                        : "");
        ed_explain_jstr(&run->jout, r->uri.data, r->uri.len);
        ed_explain_lit(&run->jout, ",\"reason\":");
        ed_explain_jcstr(&run->jout, ex.redirect_why);
        ed_explain_lit(&run->jout, ",");
        status = ed_explain_pass(run, &ex);
        refused = ex.refused != 0;
        ed_explain_lit(&run->jout, "}");
        if (page) {
            /* As ed_http_error_page and the output path: a refusal
             * stands; a page served with 200 goes out with the error's
             * status, another answer as it is; a page that failed
             * leaves the built-in page of the error. */
            if (refused) {
                q = "the page's location refuses it";
            } else if (status == 200 || status == 0) {
                q = "the page goes out with the error's status";
                status = error;
            } else if (status < 400) {
                q = "the page's answer goes out as it is";
            } else {
                q = "the page failed: the built-in page of the error";
                status = error;
            }
            ed_explain_printf(&run->out, "%-10s%d (%s)\n", "status", status,
                              q);
            break;
        }
    }
    if (status) {
        ed_explain_printf(&run->jout, "],\"status\":%d", status);
    } else {
        ed_explain_lit(&run->jout, "],\"status\":null");
    }
    ed_explain_buf_free(&ex.head);
    ed_explain_buf_free(&ex.more);
    ed_explain_buf_free(&ex.json);
    ed_explain_buf_free(&ex.items);
    ed_explain_buf_free(&ex.steps);
    if (run->out.failed || run->jout.failed) {
        rc = ED_ERROR;
    }
    return rc;
}

void
ed_explain_key(ed_explain_t *ex, const char *block, const char *key)
{
    ed_node_t  *node;
    const char *from = ed_explain_from(ex, block, key, &node, 0);

    if (node) {
        ed_explain_set(ex, key, ed_explain_node_text(ex, node), from);
    }
}

void
ed_explain_upstream(ed_explain_t *ex, const ed_http_upstream_t *ups,
                    const char *tail, const char *implicit)
{
    ed_explain_buf_t b;
    char             at[448];
    size_t           i;

    memset(&b, 0, sizeof(b));
    ed_explain_printf(&b, "%.*s [", (int)ups->name.len, ups->name.data);
    for (i = 0; i < ups->nservers; i++) {
        ed_explain_printf(&b, "%s%.*s%s", i ? ", " : "",
                          (int)ups->servers[i].name.len,
                          ups->servers[i].name.data,
                          ups->servers[i].backup ? " (backup)" : "");
    }
    ed_explain_printf(&b, "] %s", tail);
    if (ups->node && !ups->implicit) {
        snprintf(at, sizeof(at), "%.400s:%u:%u", ups->node->file,
                 ups->node->line, ups->node->col);
    } else {
        snprintf(at, sizeof(at), "%s", implicit);
    }
    ed_explain_set(ex, "upstream", b.data ? b.data : "", at);
    ed_explain_buf_free(&b);
}
