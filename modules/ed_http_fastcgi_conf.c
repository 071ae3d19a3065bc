/* The fastcgi module's configuration: the `fastcgi` block, resolving
 * `pass` to an upstream group, split_path_info, params, and installing
 * the handler (ed_http_fastcgi.c). */
#include "ed_http_fastcgi.h"

static const char *ed_fcgi_check(ed_conf_t *cf, ed_node_t *node,
                                 void *block);
static const char *ed_fcgi_set_split(ed_conf_t *cf, const ed_key_t *key,
                                     ed_node_t *node, void *conf);
static const char *ed_fcgi_set_params(ed_conf_t *cf, const ed_key_t *key,
                                      ed_node_t *node, void *conf);
static int ed_fcgi_attach(ed_conf_t *cf, ed_http_location_t *loc);

static const ed_conf_bounds_t ed_fcgi_tries_bounds = { 0, 1000 };
static const ed_conf_bounds_t ed_fcgi_buffer_bounds = { 1024, 67108864 };

#define ED_FCGI_KEY(name, flags, set, field, arg, def)                       \
    { name, ED_CTX_LOCATION, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_fastcgi_conf_t, field), arg, def }

/* The keys of the `fastcgi` block (fastcgi-cgi.md). */
static const ed_key_t ed_fcgi_block_keys[] = {
    ED_FCGI_KEY("pass", ED_KEY_STR, ed_conf_set_str, pass, NULL, NULL),
    ED_FCGI_KEY("root", ED_KEY_STR, ed_conf_set_path, root, NULL, NULL),
    ED_FCGI_KEY("index", ED_KEY_STR, ed_conf_set_str, index, NULL, NULL),
    ED_FCGI_KEY("split_path_info", ED_KEY_STR, ed_fcgi_set_split,
                split_path_info, NULL, NULL),
    ED_FCGI_KEY("check_script", ED_KEY_INT, ed_conf_set_bool, check_script,
                NULL, "true"),
    ED_FCGI_KEY("params", ED_KEY_PTR, ed_fcgi_set_params, params, NULL,
                NULL),
    ED_FCGI_KEY("connect_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                connect_timeout, NULL, "5s"),
    ED_FCGI_KEY("send_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                send_timeout, NULL, "60s"),
    ED_FCGI_KEY("read_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                read_timeout, NULL, "60s"),
    ED_FCGI_KEY("next_upstream", ED_KEY_INT, ed_http_upstream_set_next,
                next_upstream, NULL, "error, timeout"),
    ED_FCGI_KEY("next_upstream_tries", ED_KEY_INT, ed_conf_set_int,
                next_upstream_tries, &ed_fcgi_tries_bounds, "3"),
    ED_FCGI_KEY("buffer_size", ED_KEY_SIZE, ed_conf_set_size, buffer_size,
                &ed_fcgi_buffer_bounds, "64k"),
    /* The proxy's cache keys, the same table (cache.md). */
    ED_HTTP_CACHE_KEYS(ed_http_fastcgi_conf_t),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_fcgi_block = {
    .name = "fastcgi",
    .keys = ed_fcgi_block_keys,
    .size = sizeof(ed_http_fastcgi_conf_t),
    .check = ed_fcgi_check,
    .expect = "expected a mapping like {pass: unix:/run/php/php-fpm.sock}",
};

static const ed_key_t ed_fcgi_keys[] = {
    { "fastcgi", ED_CTX_LOCATION, ED_KEY_BLOCK, ed_conf_set_block,
      ED_CONF_LOC, offsetof(ed_http_fastcgi_loc_conf_t, block),
      &ed_fcgi_block, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_fastcgi_module = {
    .name = "fastcgi",
    .keys = ed_fcgi_keys,
    .conf_size = { 0, 0, sizeof(ed_http_fastcgi_loc_conf_t), 0 },
    .attach = ed_fcgi_attach,
    .explain = ed_http_fastcgi_explain,
};

/* split_path_info: a PCRE2 pattern on $uri with two capture groups
 * (the script name, the path info). */
static const char *
ed_fcgi_set_split(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                  void *conf)
{
    ed_http_fastcgi_conf_t *fcf = conf;
    const char             *err;
    uint32_t                n;

    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected a regex like '^(.+?\\.php)(/.*)$'";
    }
    fcf->split = ed_http_regex_compile(cf->pool, node->value.data,
                                       node->value.len, false, &err);
    if (fcf->split == NULL) {
        ed_conf_error(cf, node, "invalid split_path_info: %s", err);
        return NULL;
    }
    pcre2_pattern_info(fcf->split, PCRE2_INFO_CAPTURECOUNT, &n);
    if (n < 2) {
        ed_conf_error(cf, node, "invalid split_path_info: needs two "
                      "capture groups");
        fcf->split = NULL;
        return NULL;
    }
    *(ed_str_t *)((char *)conf + key->offset) = node->value;
    return NULL;
}

/* Whether a param name is one: letters, digits, '_', '-' and '.'. */
static bool
ed_fcgi_param_name_ok(const ed_str_t *s)
{
    size_t i;
    char   c;

    if (s->len == 0) {
        return false;
    }
    for (i = 0; i < s->len; i++) {
        c = s->data[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
        {
            return false;
        }
    }
    return true;
}

/* The name of the variable a value is alone ("$name" or "${name}"), or
 * an empty string. */
static ed_str_t
ed_fcgi_lone_var(const ed_str_t *v)
{
    ed_str_t    name = { 0, NULL };
    const char *p = v->data, *end = v->data + v->len, *s;

    if (v->len < 2 || p[0] != '$') {
        return name;
    }
    p++;
    if (*p == '{') {
        if (end[-1] != '}') {
            return name;
        }
        s = ++p;
        end--;
    } else {
        s = p;
    }
    for (; p < end; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_'))
        {
            return name;
        }
    }
    if (p > s) {
        name.data = (char *)s;
        name.len = (size_t)(p - s);
    }
    return name;
}

/* params: {NAME: value with $vars, or ~ to remove a default}. */
static const char *
ed_fcgi_set_params(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                   void *conf)
{
    ed_http_fastcgi_param_t *pm;
    ed_array_t              *a;
    const char              *err;
    size_t                   i;

    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of param name -> value (~ removes one)";
    }
    a = ed_array_create(cf->pool, node->n ? node->n : 1,
                        sizeof(ed_http_fastcgi_param_t));
    if (a == NULL) {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        ed_node_t *k = node->items[2 * i], *v = node->items[2 * i + 1];

        if (!ed_fcgi_param_name_ok(&k->value)) {
            ed_conf_error(cf, k, "invalid param name \"%s\"", k->value.data);
            continue;
        }
        if (v->type != ED_NODE_SCALAR) {
            ed_conf_error(cf, v, "expected a string for param \"%s\"",
                          k->value.data);
            continue;
        }
        pm = ed_array_push(a);
        if (pm == NULL) {
            return "out of memory";
        }
        memset(pm, 0, sizeof(*pm));
        pm->name = k->value;
        if (v->value.len == 0 && !v->quoted) {
            /* ~: the default of that name is not sent. */
            continue;
        }
        pm->value = ed_http_template_compile(cf, v, &err);
        if (pm->value == NULL) {
            ed_conf_error(cf, v, "invalid value for param \"%s\": %s",
                          k->value.data, err);
            continue;
        }
        pm->var = ed_fcgi_lone_var(&v->value);
    }
    *(ed_array_t **)((char *)conf + key->offset) = a;
    return NULL;
}

/* A fastcgi block needs pass; the cache keys need cache. Returns NULL
 * (the errors are recorded at the block or the key). */
static const char *
ed_fcgi_check(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_fastcgi_conf_t *fcf = block;

    if (fcf->pass.data == NULL) {
        ed_conf_error(cf, node, "fastcgi needs \"pass\": an upstream name, "
                      "host:port or unix:/path");
    }
    ed_http_cache_loc_check(cf, node, &fcf->cache_conf, "fastcgi");
    return NULL;
}

/* Resolves `pass`: a group's name, host:port, [v6]:port or unix:/path;
 * no scheme. ED_OK or ED_ERROR (recorded). */
static int
ed_fcgi_resolve_pass(ed_conf_t *cf, ed_http_fastcgi_conf_t *fcf)
{
    ed_node_t  *node = ed_conf_get(fcf->node, "pass");
    const char *s = fcf->pass.data;

    if (strstr(s, "://") != NULL) {
        return ed_conf_error(cf, node, "invalid pass \"%s\": fastcgi takes "
                             "no scheme; expected an upstream name, "
                             "host:port or unix:/path", s);
    }
    if (strncmp(s, "unix:", 5) == 0 || strchr(s, ':') != NULL) {
        fcf->ups = ed_http_upstream_add_url(cf, node, s, "localhost");
        return fcf->ups ? ED_OK : ED_ERROR;
    }
    if (strchr(s, '/') != NULL) {
        return ed_conf_error(cf, node, "invalid pass \"%s\": expected an "
                             "upstream name, host:port or unix:/path", s);
    }
    fcf->ups = ed_http_upstream_find(cf, &fcf->pass);
    if (fcf->ups == NULL) {
        return ed_conf_error(cf, node, "unknown upstream \"%s\"", s);
    }
    return ED_OK;
}

/* Installs the handler in a location with a `fastcgi` block. ED_OK or
 * ED_ERROR (recorded). */
static int
ed_fcgi_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_fastcgi_loc_conf_t *lcf = ed_http_conf_at(loc,
                                                      ed_http_fastcgi_module);
    ed_http_fastcgi_conf_t     *fcf = lcf->block;
    ed_http_core_loc_conf_t    *clcf = ed_http_conf_at(loc,
                                                       ed_http_core_module);
    ed_http_upstream_t         *ups;

    if (fcf == NULL || fcf->pass.data == NULL) {
        return ED_OK;
    }
    if (loc->handler) {
        return ed_conf_error(cf, loc->node, "a location has one content "
                             "handler; \"fastcgi\" conflicts with another "
                             "one");
    }
    if (fcf->ups == NULL && ed_fcgi_resolve_pass(cf, fcf) != ED_OK) {
        return ED_ERROR;
    }
    ups = fcf->ups;
    if (ups->check != NULL) {
        return ed_conf_error(cf, ups->check->node, "upstream \"%s\" has a "
                             "health_check (HTTP); it cannot serve fastcgi",
                             ups->name.data);
    }
    if (ups->protocol != NULL && strcmp(ups->protocol, "fastcgi") != 0) {
        return ed_conf_error(cf, ed_conf_get(fcf->node, "pass"),
                             "upstream \"%s\" is used by %s; a group serves "
                             "proxy or fastcgi, not both", ups->name.data,
                             ups->protocol);
    }
    ups->protocol = "fastcgi";
    fcf->doc_root = fcf->root.len ? fcf->root : clcf->root;
    while (fcf->doc_root.len > 1
           && fcf->doc_root.data[fcf->doc_root.len - 1] == '/')
    {
        fcf->doc_root.len--;
    }
    if (fcf->check_script == 1 && fcf->doc_root.len == 0) {
        return ed_conf_error(cf, fcf->node, "fastcgi check_script needs a "
                             "root; set root or check_script: false");
    }
    fcf->cache_conf.buffer_size = fcf->buffer_size;
    fcf->cache_conf.read_timeout = fcf->read_timeout;
    if (fcf->cache_conf.cache_name.data != NULL
        && ed_http_cache_loc_resolve(cf, &fcf->cache_conf, fcf->node, loc)
           != ED_OK)
    {
        return ED_ERROR;
    }
    loc->handler = ed_http_fastcgi_handler;
    return ED_OK;
}
