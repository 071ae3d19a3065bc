/* The static module's `expires` (modules-2.md): `Expires` and
 * `Cache-Control` on the responses static gives, with nginx's meaning:
 *
 *   1h (also 0)  Expires: now + 1h      Cache-Control: max-age=3600
 *   -1h          Expires: now - 1h      Cache-Control: no-cache
 *   epoch        Expires: Thu, 01 Jan 1970 00:00:01 GMT, no-cache
 *   max          Expires: Thu, 31 Dec 2037 23:55:55 GMT,
 *                max-age=315360000
 *   off          neither (the default)
 *
 * or {by_type: {text/html: epoch, "image/STAR": 30d}, default: 1h}
 * (STAR being `*`, which a C comment cannot hold after a slash): by the
 * response's media type without parameters, an exact type before a
 * whole type's, else default (off unless given). Only on 200, 201, 204,
 * 206, 301-304, 307 and 308; the headers module's `set` comes later and
 * wins.
 * Proxied responses keep the upstream's headers: this is static's. */
#include "ed_http_static.h"

/* One value of the table above. */
typedef struct {
    int      kind;      /* ED_EXPIRES_* */
    int64_t  sec;       /* ED_EXPIRES_REL: may be negative */
    ed_str_t cache_control;
} ed_http_expires_t;

enum { ED_EXPIRES_OFF = 0, ED_EXPIRES_REL, ED_EXPIRES_EPOCH,
       ED_EXPIRES_MAX };

typedef struct {
    ed_str_t          type;      /* lowercase; "image/" for all of image */
    unsigned          prefix:1;  /* a whole type */
    ed_http_expires_t value;
} ed_http_expires_type_t;

struct ed_http_expires_conf_s {
    ed_http_expires_t       def;
    ed_http_expires_type_t *types;
    size_t                  ntypes;
};

#define ED_EXPIRES_EXPECT                                                    \
    "expected off, a duration like 1h or -1h, epoch, max, or "               \
    "{by_type: {TYPE: VALUE}, default: VALUE}"

/* One value: off | [-]duration | epoch | max. NULL or a message. */
static const char *
ed_expires_value(ed_conf_t *cf, const ed_node_t *node, ed_http_expires_t *v)
{
    const char *s = node->value.data;
    size_t      len = node->value.len;
    ed_msec_t   ms;
    bool        neg = false;
    char        buf[32];

    memset(v, 0, sizeof(*v));
    if (node->type != ED_NODE_SCALAR || len == 0) {
        return ED_EXPIRES_EXPECT;
    }
    if (strcmp(s, "off") == 0 || ed_conf_parse_bool(s, len) == 0) {
        return NULL;
    }
    if (strcmp(s, "epoch") == 0) {
        v->kind = ED_EXPIRES_EPOCH;
        ed_str_set(&v->cache_control, "no-cache");
        return NULL;
    }
    if (strcmp(s, "max") == 0) {
        v->kind = ED_EXPIRES_MAX;
        ed_str_set(&v->cache_control, "max-age=315360000");
        return NULL;
    }
    if (s[0] == '-') {
        neg = true;
        s++;
        len--;
    }
    ms = len ? ed_conf_parse_msec(s, len) : -1;
    /* Up to ten years either way: now + max-age stays a date. */
    if (ms < 0 || ms / 1000 > 315360000) {
        return ED_EXPIRES_EXPECT;
    }
    v->kind = ED_EXPIRES_REL;
    v->sec = neg ? -(ms / 1000) : ms / 1000;
    if (neg && v->sec != 0) {
        ed_str_set(&v->cache_control, "no-cache");
        return NULL;
    }
    len = (size_t)snprintf(buf, sizeof(buf), "max-age=%lld",
                           (long long)v->sec);
    if (ed_str_dup(cf->pool, &v->cache_control, buf, len) != ED_OK) {
        return "out of memory";
    }
    return NULL;
}

/* A media type key of by_type: "type/subtype", or "type/" and a star
 * for a whole type; tokens, with a star nowhere else. */
static bool
ed_expires_type_ok(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    size_t      i;

    if (slash == NULL || slash == s || slash == s + len - 1) {
        return false;
    }
    if (slash[1] == '*' && slash + 2 == s + len) {
        len--;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (s + i != slash
            && (c <= ' ' || c >= 0x7f || c == '*'
                || strchr("()<>@,;:\\\"/[]?={}", c)))
        {
            return false;
        }
    }
    return true;
}

/* by_type: {TYPE: VALUE, ...}. Records errors at their nodes. */
static void
ed_expires_by_type(ed_conf_t *cf, ed_node_t *map, ed_http_expires_conf_t *e)
{
    ed_http_expires_type_t *t;
    ed_node_t              *k, *v;
    const char             *err;
    size_t                  i, j;

    if (map->type != ED_NODE_MAP) {
        ed_conf_error(cf, map, "expected a mapping of media types to "
                      "expires values, such as {text/html: epoch}");
        return;
    }
    e->types = ed_pcalloc(cf->pool, (map->n ? map->n : 1) * sizeof(*t));
    if (e->types == NULL) {
        ed_conf_error(cf, map, "out of memory");
        return;
    }
    for (i = 0; i < map->n; i++) {
        k = map->items[2 * i];
        v = map->items[2 * i + 1];
        if (!ed_expires_type_ok(k->value.data, k->value.len)) {
            ed_conf_error(cf, k, "invalid media type \"%s\" in "
                          "expires.by_type: expected TYPE/SUBTYPE or "
                          "TYPE/*", k->value.data);
            continue;
        }
        t = &e->types[e->ntypes];
        err = ed_expires_value(cf, v, &t->value);
        if (err) {
            ed_conf_error(cf, v, "invalid expires for \"%s\": %s",
                          k->value.data, err);
            continue;
        }
        t->prefix = k->value.data[k->value.len - 1] == '*';  /* type/STAR */
        t->type.len = k->value.len - t->prefix;
        t->type.data = ed_pnalloc(cf->pool, t->type.len + 1);
        if (t->type.data == NULL) {
            ed_conf_error(cf, k, "out of memory");
            return;
        }
        ed_strlow(t->type.data, k->value.data, t->type.len);
        t->type.data[t->type.len] = '\0';
        for (j = 0; j < e->ntypes; j++) {
            if (e->types[j].prefix == t->prefix
                && ed_str_eq(&e->types[j].type, &t->type))
            {
                break;
            }
        }
        if (j < e->ntypes) {
            ed_conf_error(cf, k, "media type \"%s\" twice in "
                          "expires.by_type", k->value.data);
            continue;
        }
        e->ntypes++;
    }
}

const char *
ed_http_static_set_expires(ed_conf_t *cf, const ed_key_t *key,
                           ed_node_t *node, void *conf)
{
    ed_http_expires_conf_t *e;
    ed_node_t              *k, *v;
    const char             *err;
    size_t                  i;

    e = ed_pcalloc(cf->pool, sizeof(ed_http_expires_conf_t));
    if (e == NULL) {
        return "out of memory";
    }
    if (node->type != ED_NODE_MAP) {
        err = ed_expires_value(cf, node, &e->def);
        if (err) {
            return err;
        }
    } else {
        for (i = 0; i < node->n; i++) {
            k = node->items[2 * i];
            v = node->items[2 * i + 1];
            if (strcmp(k->value.data, "by_type") == 0) {
                ed_expires_by_type(cf, v, e);
            } else if (strcmp(k->value.data, "default") == 0) {
                err = ed_expires_value(cf, v, &e->def);
                if (err) {
                    ed_conf_error(cf, v, "invalid expires.default: %s", err);
                }
            } else {
                ed_conf_error(cf, k, "unknown key \"%s\" in expires; "
                              "expected \"by_type\" or \"default\"",
                              k->value.data);
            }
        }
    }
    *(ed_http_expires_conf_t **)((char *)conf + key->offset) = e;
    return NULL;
}

bool
ed_http_static_expires_on(const ed_http_expires_conf_t *e)
{
    size_t i;

    if (e == NULL) {
        return false;
    }
    for (i = 0; i < e->ntypes; i++) {
        if (e->types[i].value.kind != ED_EXPIRES_OFF) {
            return true;
        }
    }
    return e->def.kind != ED_EXPIRES_OFF;
}

/* The value for a media type (parameters ignored). */
static const ed_http_expires_t *
ed_expires_find(const ed_http_expires_conf_t *e, const ed_str_t *type)
{
    const ed_http_expires_type_t *t, *wild = NULL;
    size_t                        len, i;

    len = type->len;
    for (i = 0; i < type->len; i++) {
        if (type->data[i] == ';' || type->data[i] == ' ') {
            len = i;
            break;
        }
    }
    for (i = 0; i < e->ntypes; i++) {
        t = &e->types[i];
        if (!t->prefix && t->type.len == len
            && ed_strncasecmp(t->type.data, type->data, len) == 0)
        {
            return &t->value;
        }
        if (t->prefix && wild == NULL && t->type.len < len
            && ed_strncasecmp(t->type.data, type->data, t->type.len) == 0)
        {
            wild = t;
        }
    }
    return wild ? &wild->value : &e->def;
}

int
ed_http_static_expires(ed_http_request_t *r, const ed_http_static_conf_t *scf,
                       const ed_str_t *type, int status)
{
    static const char       epoch[] = "Thu, 01 Jan 1970 00:00:01 GMT";
    static const char       max[] = "Thu, 31 Dec 2037 23:55:55 GMT";
    const ed_http_expires_t *v;
    const char              *date;
    char                    *buf;

    if (!scf->expires_on) {
        return ED_OK;
    }
    if (r->error_status) {
        /* An error page keeps its error's status. */
        status = r->error_status;
    }
    switch (status) {
    case 200: case 201: case 204: case 206:
    case 301: case 302: case 303: case 304: case 307: case 308:
        break;
    default:
        return ED_OK;
    }
    v = ed_expires_find(scf->expires, type);
    switch (v->kind) {
    case ED_EXPIRES_OFF:
        return ED_OK;
    case ED_EXPIRES_EPOCH:
        date = epoch;
        break;
    case ED_EXPIRES_MAX:
        date = max;
        break;
    default:
        buf = ed_pnalloc(r->pool, 32);
        if (buf == NULL) {
            return ED_ERROR;
        }
        ed_http_time(buf, ed_time_sec + v->sec);
        date = buf;
        break;
    }
    if (ed_http_add_header(r, "Expires", 7, date, strlen(date)) != ED_OK
        || ed_http_add_header(r, "Cache-Control", 13, v->cache_control.data,
                              v->cache_control.len)
               != ED_OK)
    {
        return ED_ERROR;
    }
    return ED_OK;
}
