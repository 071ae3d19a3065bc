/* Upstream groups: the `upstreams` key, address resolution, balancing,
 * passive health, keep-alive pools and connections, $upstream_*. */
#include "ed_http_upstream.h"
#include "ed_shm.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/un.h>

#define ED_UPS_POINTS_PER_WEIGHT 160  /* ketama points per weight unit */
#define ED_UPS_HASH_TRIES        20   /* ring points / rehashes tried */

typedef struct {
    ed_array_t  groups;   /* ed_http_upstream_t *, named and implicit */
} ed_http_upstream_main_conf_t;

/* One `servers` item while it is read. */
typedef struct {
    ed_str_t   address;
    int        weight;
    int        max_fails;
    ed_msec_t  fail_timeout;
    int        backup;
} ed_http_upstream_item_t;

static const char *ed_ups_set_upstreams(ed_conf_t *cf, const ed_key_t *key,
                                        ed_node_t *node, void *conf);
static const char *ed_ups_set_hash_key(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static const char *ed_ups_set_node(ed_conf_t *cf, const ed_key_t *key,
                                   ed_node_t *node, void *conf);
static const char *ed_ups_set_expect(ed_conf_t *cf, const ed_key_t *key,
                                     ed_node_t *node, void *conf);
static int ed_ups_postconf(ed_conf_t *cf);
static int ed_ups_init_worker(ed_worker_t *w);
static void ed_ups_exit_worker(ed_worker_t *w);

static const ed_conf_enum_t ed_ups_balance_enum[] = {
    { "round_robin", ED_HTTP_BALANCE_ROUND_ROBIN },
    { "least_conn", ED_HTTP_BALANCE_LEAST_CONN },
    { "ip_hash", ED_HTTP_BALANCE_IP_HASH },
    { "hash", ED_HTTP_BALANCE_HASH },
    { "random_two", ED_HTTP_BALANCE_RANDOM_TWO },
    { NULL, 0 }
};

static const ed_conf_bounds_t ed_ups_keepalive_bounds = { 0, 100000 };
static const ed_conf_bounds_t ed_ups_weight_bounds = { 1, 1000 };
static const ed_conf_bounds_t ed_ups_fails_bounds = { 0, 1000 };
static const ed_conf_bounds_t ed_ups_check_bounds = { 1, 1000 };
static const ed_conf_bounds_t ed_ups_interval_bounds = { 10, 86400000 };

#define ED_UPS_KEY(name, flags, set, field, arg, def)                        \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_upstream_t, field), arg, def }

/* The keys of one group (config.md, Upstreams). */
static const ed_key_t ed_ups_group_keys[] = {
    ED_UPS_KEY("balance", ED_KEY_INT, ed_conf_set_enum, balance,
               ed_ups_balance_enum, "round_robin"),
    ED_UPS_KEY("hash_key", ED_KEY_PTR, ed_ups_set_hash_key, hash_key, NULL,
               NULL),
    ED_UPS_KEY("keepalive", ED_KEY_INT, ed_conf_set_int, keepalive,
               &ed_ups_keepalive_bounds, "0"),
    ED_UPS_KEY("keepalive_timeout", ED_KEY_MSEC, ed_conf_set_msec,
               keepalive_timeout, NULL, "60s"),
    ED_UPS_KEY("servers", ED_KEY_PTR, ed_ups_set_node, servers_node, NULL,
               NULL),
    ED_UPS_KEY("health_check", ED_KEY_PTR, ed_ups_set_node, check_node,
               NULL, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

#define ED_UPS_IKEY(name, flags, set, field, arg, def)                       \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_upstream_item_t, field), arg, def }

static const ed_key_t ed_ups_item_keys[] = {
    ED_UPS_IKEY("address", ED_KEY_STR, ed_conf_set_str, address, NULL,
                NULL),
    ED_UPS_IKEY("weight", ED_KEY_INT, ed_conf_set_int, weight,
                &ed_ups_weight_bounds, "1"),
    ED_UPS_IKEY("max_fails", ED_KEY_INT, ed_conf_set_int, max_fails,
                &ed_ups_fails_bounds, "1"),
    ED_UPS_IKEY("fail_timeout", ED_KEY_MSEC, ed_conf_set_msec, fail_timeout,
                NULL, "10s"),
    ED_UPS_IKEY("backup", ED_KEY_INT, ed_conf_set_bool, backup, NULL,
                "false"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

#define ED_UPS_CKEY(name, flags, set, field, arg, def)                       \
    { name, ED_CTX_UPSTREAM, flags, set, ED_CONF_UPS,                        \
      offsetof(ed_http_upstream_check_t, field), arg, def }

static const ed_key_t ed_ups_check_keys[] = {
    ED_UPS_CKEY("path", ED_KEY_STR, ed_conf_set_str, path, NULL, "/"),
    ED_UPS_CKEY("interval", ED_KEY_MSEC, ed_conf_set_msec, interval,
                &ed_ups_interval_bounds, "5s"),
    ED_UPS_CKEY("timeout", ED_KEY_MSEC, ed_conf_set_msec, timeout,
                &ed_ups_interval_bounds, "2s"),
    ED_UPS_CKEY("fails", ED_KEY_INT, ed_conf_set_int, fails,
                &ed_ups_check_bounds, "3"),
    ED_UPS_CKEY("passes", ED_KEY_INT, ed_conf_set_int, passes,
                &ed_ups_check_bounds, "2"),
    ED_UPS_CKEY("expect_status", ED_KEY_INT, ed_ups_set_expect, status_min,
                NULL, "200-399"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_key_t ed_ups_keys[] = {
    { "upstreams", ED_CTX_MAIN, ED_KEY_NONE | ED_KEY_INCLUDE_KEYS,
      ed_ups_set_upstreams, ED_CONF_MAIN, 0, NULL, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static int ed_ups_var_addr(ed_http_request_t *r, ed_str_t *out);
static int ed_ups_var_status(ed_http_request_t *r, ed_str_t *out);
static int ed_ups_var_response_time(ed_http_request_t *r, ed_str_t *out);

static const ed_http_variable_t ed_ups_variables[] = {
    { "upstream_addr", ed_ups_var_addr },
    { "upstream_status", ed_ups_var_status },
    { "upstream_response_time", ed_ups_var_response_time },
    { NULL, NULL }
};

ed_module_t ed_http_upstream_module = {
    .name = "http_upstream",
    .keys = ed_ups_keys,
    .conf_size = { sizeof(ed_http_upstream_main_conf_t), 0, 0, 0 },
    .variables = ed_ups_variables,
    .postconf = ed_ups_postconf,
    .init_worker = ed_ups_init_worker,
    .exit_worker = ed_ups_exit_worker,
};

/* The worker's random state (xorshift64*), seeded at init_worker. */
static uint64_t ed_ups_rng = 0x9e3779b97f4a7c15ULL;

/* The registry of groups of the cycle being loaded. */
static ed_http_upstream_main_conf_t *
ed_ups_main_conf(ed_conf_t *cf)
{
    return cf->cycle->main_conf[ed_http_upstream_module.index];
}

/* Adds a group to the registry. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_ups_register(ed_conf_t *cf, ed_http_upstream_t *ups)
{
    ed_http_upstream_main_conf_t *umcf = ed_ups_main_conf(cf);
    ed_http_upstream_t          **slot;

    if (umcf->groups.elts == NULL
        && ed_array_init(&umcf->groups, cf->pool, 4,
                         sizeof(ed_http_upstream_t *)) != ED_OK)
    {
        return ED_ERROR;
    }
    slot = ed_array_push(&umcf->groups);
    if (slot == NULL) {
        return ED_ERROR;
    }
    *slot = ups;
    return ED_OK;
}

/* Configuration. */

static const char *
ed_ups_set_node(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                void *conf)
{
    ed_unused(cf);
    *(ed_node_t **)((char *)conf + key->offset) = node;
    return NULL;
}

/* hash_key: a string with variables. Returns NULL or a message. */
static const char *
ed_ups_set_hash_key(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    ed_http_template_t *t;
    const char         *err = NULL;

    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected a string with variables, like $request_uri";
    }
    t = ed_http_template_compile(cf, node, &err);
    if (t == NULL) {
        return err;
    }
    *(ed_http_template_t **)((char *)conf + key->offset) = t;
    return NULL;
}

/* expect_status: "200", "200-399". Sets status_min and status_max. */
static const char *
ed_ups_set_expect(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                  void *conf)
{
    ed_http_upstream_check_t *chk = conf;
    const char               *s = node->value.data, *dash;
    int64_t                   lo, hi;

    ed_unused(cf);
    ed_unused(key);
    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected a status or a range like 200-399";
    }
    dash = strchr(s, '-');
    if (dash) {
        lo = ed_atoi(s, (size_t)(dash - s));
        hi = ed_atoi(dash + 1, strlen(dash + 1));
    } else {
        lo = hi = ed_atoi(s, node->value.len);
    }
    if (lo < 100 || hi > 599 || lo > hi) {
        return "expected a status or a range like 200-399 (100 to 599)";
    }
    chk->status_min = (int)lo;
    chk->status_max = (int)hi;
    return NULL;
}

/* Text of an address: "1.2.3.4:80", "[::1]:80" or "unix:/path". */
static size_t
ed_ups_addr_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    int  n;

    if (ss->ss_family == AF_UNIX) {
        n = snprintf(buf, size, "unix:%s",
                     ((const struct sockaddr_un *)ss)->sun_path);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
    }
    return n < 0 ? 0 : ed_min((size_t)n, size - 1);
}

/* Appends one server for ss to a. ED_OK or ED_ERROR (ENOMEM). */
static int
ed_ups_push(ed_pool_t *pool, ed_array_t *a, const struct sockaddr_storage *ss,
            socklen_t len, const char *host)
{
    ed_http_upstream_server_t *s;
    char                       text[sizeof(struct sockaddr_un) + 16];
    size_t                     n;

    s = ed_array_push(a);
    if (s == NULL) {
        return ED_ERROR;
    }
    memcpy(&s->addr, ss, len);
    s->addrlen = len;
    s->weight = 1;
    s->max_fails = 1;
    s->fail_timeout = 10000;
    n = ed_ups_addr_text(ss, text, sizeof(text));
    if (ed_str_dup(pool, &s->name, text, n) != ED_OK
        || ed_str_dup(pool, &s->host, host, strlen(host)) != ED_OK)
    {
        return ED_ERROR;
    }
    return ED_OK;
}

/* ED_OK, or ED_ERROR with *err. */
int
ed_http_upstream_resolve(ed_pool_t *pool, const char *text, ed_array_t *a,
                         const char **err)
{
    struct sockaddr_storage  ss;
    struct sockaddr_un      *sun = (struct sockaddr_un *)&ss;
    struct addrinfo          hints, *res, *ai;
    const char              *colon, *hs, *port = "80";
    char                     host[256], portbuf[8];
    size_t                   hl;
    int64_t                  p;
    int                      rc;

    memset(&ss, 0, sizeof(ss));
    if (strncmp(text, "unix:", 5) == 0) {
        if (text[5] != '/' || strlen(text + 5) >= sizeof(sun->sun_path)) {
            *err = "expected an absolute unix socket path that fits "
                   "sun_path";
            return ED_ERROR;
        }
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, text + 5);
        if (ed_ups_push(pool, a, &ss, sizeof(struct sockaddr_un),
                        "localhost") != ED_OK)
        {
            *err = "out of memory";
            return ED_ERROR;
        }
        return ED_OK;
    }
    if (text[0] == '[') {
        colon = strchr(text, ']');
        if (colon == NULL || (colon[1] != ':' && colon[1] != '\0')) {
            *err = "expected an address like \"[::1]:8080\"";
            return ED_ERROR;
        }
        hs = text + 1;
        hl = (size_t)(colon - hs);
        if (colon[1] == ':') {
            port = colon + 2;
        }
    } else {
        colon = strrchr(text, ':');
        hs = text;
        hl = colon ? (size_t)(colon - text) : strlen(text);
        if (colon) {
            port = colon + 1;
        }
    }
    if (hl == 0 || hl >= sizeof(host)) {
        *err = "expected host:port, [ipv6]:port or unix:/path";
        return ED_ERROR;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    p = ed_atoi(port, strlen(port));
    if (p < 1 || p > 65535) {
        *err = "invalid port: expected 1-65535";
        return ED_ERROR;
    }
    snprintf(portbuf, sizeof(portbuf), "%d", (int)p);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, portbuf, &hints, &res);
    if (rc != 0) {
        *err = gai_strerror(rc);
        return ED_ERROR;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            || ai->ai_addrlen > sizeof(ss))
        {
            continue;
        }
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        if (ed_ups_push(pool, a, &ss, ai->ai_addrlen, text) != ED_OK) {
            freeaddrinfo(res);
            *err = "out of memory";
            return ED_ERROR;
        }
    }
    freeaddrinfo(res);
    if (a->nelts == 0) {
        *err = "the host name has no IPv4 or IPv6 address";
        return ED_ERROR;
    }
    return ED_OK;
}

/* Reads one `servers` item (an address or a map) into a. ED_OK or
 * ED_ERROR (recorded). */
static int
ed_ups_server_item(ed_conf_t *cf, ed_http_upstream_t *ups, ed_node_t *item,
                   ed_array_t *a)
{
    ed_http_upstream_item_t    it;
    ed_http_upstream_server_t *s;
    ed_node_t                 *addr = item;
    const char                *err;
    size_t                     first = a->nelts, i;

    memset(&it, 0, sizeof(it));
    ed_conf_init_keys(ed_ups_item_keys, &it);
    if (item->type == ED_NODE_MAP) {
        if (ed_conf_apply_keys(cf, item, ed_ups_item_keys, &it,
                               "an upstream server") != ED_OK)
        {
            return ED_ERROR;
        }
        addr = ed_conf_get(item, "address");
        if (addr == NULL) {
            return ed_conf_error(cf, item, "upstream server without "
                                 "\"address\" in upstream \"%s\"",
                                 ups->name.data);
        }
    } else if (item->type != ED_NODE_SCALAR || item->value.len == 0) {
        return ed_conf_error(cf, item, "expected an address like "
                             "127.0.0.1:9001 or a map with \"address\"");
    }
    if (ed_conf_defaults(cf, ed_ups_item_keys, ED_CONF_UPS, &it) != ED_OK) {
        return ED_ERROR;
    }
    if (addr->type != ED_NODE_SCALAR) {
        return ed_conf_error(cf, addr, "expected an address");
    }
    if (strstr(addr->value.data, "://") != NULL) {
        return ed_conf_error(cf, addr, "invalid upstream server \"%s\": "
                             "servers are addresses like 127.0.0.1:9001; "
                             "for TLS to them, use pass: https://%s",
                             addr->value.data, ups->name.data);
    }
    if (ed_http_upstream_resolve(cf->pool, addr->value.data, a, &err)
        != ED_OK)
    {
        return ed_conf_error(cf, addr, "invalid upstream server \"%s\": %s",
                             addr->value.data, err);
    }
    for (i = first; i < a->nelts; i++) {
        s = (ed_http_upstream_server_t *)a->elts + i;
        s->weight = it.weight;
        s->max_fails = it.max_fails;
        s->fail_timeout = it.fail_timeout;
        s->backup = it.backup ? 1 : 0;
    }
    return ED_OK;
}

/* Reads the `servers` list of a group. ED_OK or ED_ERROR (recorded). */
static int
ed_ups_servers(ed_conf_t *cf, ed_http_upstream_t *ups)
{
    ed_node_t  *node = ups->servers_node, **items = &node;
    ed_array_t  a;
    size_t      n = 1, i;
    int         rc = ED_OK;

    if (node == NULL) {
        return ed_conf_error(cf, ups->node, "upstream \"%s\" has no "
                             "\"servers\"", ups->name.data);
    }
    if (node->type == ED_NODE_SEQ) {
        items = node->items;
        n = node->n;
    }
    if (n == 0) {
        return ed_conf_error(cf, node, "upstream \"%s\" has an empty "
                             "\"servers\" list", ups->name.data);
    }
    if (ed_array_init(&a, cf->pool, n, sizeof(ed_http_upstream_server_t))
        != ED_OK)
    {
        return ed_conf_error(cf, node, "out of memory");
    }
    for (i = 0; i < n; i++) {
        if (ed_ups_server_item(cf, ups, items[i], &a) != ED_OK) {
            rc = ED_ERROR;
        }
    }
    ups->servers = a.elts;
    ups->nservers = a.nelts;
    return rc;
}

/* Reads the `health_check` block. ED_OK or ED_ERROR (recorded). */
static int
ed_ups_check(ed_conf_t *cf, ed_http_upstream_t *ups)
{
    ed_http_upstream_check_t *chk;
    ed_node_t                *node = ups->check_node;

    if (node == NULL) {
        return ED_OK;
    }
    chk = ed_pcalloc(cf->pool, sizeof(ed_http_upstream_check_t));
    if (chk == NULL) {
        return ed_conf_error(cf, node, "out of memory");
    }
    ed_conf_init_keys(ed_ups_check_keys, chk);
    chk->node = node;
    if (!(node->type == ED_NODE_SCALAR && node->value.len == 0
          && !node->quoted)
        && ed_conf_apply_keys(cf, node, ed_ups_check_keys, chk,
                              "health_check") != ED_OK)
    {
        return ED_ERROR;
    }
    if (ed_conf_defaults(cf, ed_ups_check_keys, ED_CONF_UPS, chk) != ED_OK) {
        return ED_ERROR;
    }
    if (chk->path.len == 0 || chk->path.data[0] != '/'
        || strpbrk(chk->path.data, " \r\n\t") != NULL)
    {
        return ed_conf_error(cf, ed_conf_get(node, "path"),
                             "invalid health_check path: expected a URI "
                             "starting with \"/\" without spaces");
    }
    if (chk->timeout > chk->interval) {
        chk->timeout = chk->interval;
    }
    ups->check = chk;
    return ED_OK;
}

/* Reads one group map. ED_OK or ED_ERROR (recorded). */
static int
ed_ups_group(ed_conf_t *cf, ed_node_t *name, ed_node_t *map)
{
    ed_http_upstream_t *ups;
    char                what[128];
    int                 rc;

    if (name->value.len == 0) {
        return ed_conf_error(cf, name, "empty upstream name");
    }
    if (strchr(name->value.data, ':') || strchr(name->value.data, '/')) {
        return ed_conf_error(cf, name, "invalid upstream name \"%s\": a "
                             "name has no ':' or '/'", name->value.data);
    }
    if (map->type != ED_NODE_MAP) {
        return ed_conf_error(cf, map, "expected a mapping for upstream "
                             "\"%s\"", name->value.data);
    }
    ups = ed_pcalloc(cf->pool, sizeof(ed_http_upstream_t));
    if (ups == NULL || ed_ups_register(cf, ups) != ED_OK) {
        return ed_conf_error(cf, map, "out of memory");
    }
    ed_conf_init_keys(ed_ups_group_keys, ups);
    ups->name = name->value;
    ups->node = map;
    snprintf(what, sizeof(what), "upstream \"%.100s\"", name->value.data);
    rc = ed_conf_apply_keys(cf, map, ed_ups_group_keys, ups, what);
    if (ed_conf_defaults(cf, ed_ups_group_keys, ED_CONF_UPS, ups) != ED_OK) {
        return ED_ERROR;
    }
    if (ed_ups_servers(cf, ups) != ED_OK || ed_ups_check(cf, ups) != ED_OK) {
        rc = ED_ERROR;
    }
    if (ups->balance == ED_HTTP_BALANCE_HASH && ups->hash_key == NULL) {
        return ed_conf_error(cf, ed_conf_get(map, "balance"),
                             "balance \"hash\" needs a \"hash_key\" in "
                             "upstream \"%s\"", ups->name.data);
    }
    if (ups->balance != ED_HTTP_BALANCE_HASH && ups->hash_key != NULL) {
        return ed_conf_error(cf, ed_conf_get(map, "hash_key"),
                             "\"hash_key\" is used only with balance: "
                             "hash in upstream \"%s\"", ups->name.data);
    }
    return rc;
}

/* upstreams: {name: group}. Errors are recorded per group; returns
 * NULL or a message for the whole value. */
static const char *
ed_ups_set_upstreams(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                     void *conf)
{
    size_t i, j;

    ed_unused(key);
    ed_unused(conf);
    if (node->type == ED_NODE_SCALAR && node->value.len == 0
        && !node->quoted)
    {
        return NULL;
    }
    if (node->type != ED_NODE_MAP) {
        return "expected a mapping of name -> upstream";
    }
    for (i = 0; i < node->n; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(node->items[2 * j]->value.data,
                       node->items[2 * i]->value.data) == 0)
            {
                break;
            }
        }
        if (j < i) {
            ed_conf_error(cf, node->items[2 * i], "duplicate upstream "
                          "\"%s\"", node->items[2 * i]->value.data);
            continue;
        }
        ed_ups_group(cf, node->items[2 * i], node->items[2 * i + 1]);
    }
    return NULL;
}

/* Returns the named (not implicit) group, or NULL. */
ed_http_upstream_t *
ed_http_upstream_find(ed_conf_t *cf, const ed_str_t *name)
{
    ed_http_upstream_main_conf_t *umcf = ed_ups_main_conf(cf);
    ed_http_upstream_t          **g = umcf->groups.elts;
    size_t                        i;

    for (i = 0; i < umcf->groups.nelts; i++) {
        if (!g[i]->implicit && ed_str_eq(&g[i]->name, name)) {
            return g[i];
        }
    }
    return NULL;
}

/* Returns the new group, or NULL after recording an error. */
ed_http_upstream_t *
ed_http_upstream_add_url(ed_conf_t *cf, ed_node_t *node, const char *addr,
                         const char *host)
{
    ed_http_upstream_t        *ups;
    ed_http_upstream_server_t *s;
    ed_array_t                 a;
    const char                *err;
    size_t                     i;

    ups = ed_pcalloc(cf->pool, sizeof(ed_http_upstream_t));
    if (ups == NULL
        || ed_array_init(&a, cf->pool, 2, sizeof(ed_http_upstream_server_t))
               != ED_OK)
    {
        ed_conf_error(cf, node, "out of memory");
        return NULL;
    }
    if (ed_http_upstream_resolve(cf->pool, addr, &a, &err) != ED_OK) {
        ed_conf_error(cf, node, "invalid proxy address \"%s\": %s", addr,
                      err);
        return NULL;
    }
    s = a.elts;
    for (i = 0; i < a.nelts; i++) {
        if (s[i].addr.ss_family != AF_UNIX
            && ed_str_dup(cf->pool, &s[i].host, host, strlen(host))
                   != ED_OK)
        {
            ed_conf_error(cf, node, "out of memory");
            return NULL;
        }
    }
    ups->implicit = 1;
    ups->node = node;
    ups->keepalive_timeout = 60000;
    ups->servers = a.elts;
    ups->nservers = a.nelts;
    if (ed_str_dup(cf->pool, &ups->name, addr, strlen(addr)) != ED_OK
        || ed_ups_register(cf, ups) != ED_OK)
    {
        ed_conf_error(cf, node, "out of memory");
        return NULL;
    }
    return ups;
}

/* qsort order of ring points: by hash, then server. */
static int
ed_ups_point_cmp(const void *a, const void *b)
{
    const ed_http_upstream_point_t *pa = a, *pb = b;

    if (pa->hash != pb->hash) {
        return pa->hash < pb->hash ? -1 : 1;
    }
    return pa->server < pb->server ? -1 : pa->server > pb->server;
}

/* ED_OK or ED_ERROR (ENOMEM). */
int
ed_http_upstream_init(ed_pool_t *pool, ed_http_upstream_t *ups)
{
    ed_http_upstream_server_t *sorted, *s = ups->servers;
    size_t                     i, j, n = 0, np = 0;
    uint32_t                   k;
    char                       key[300];
    size_t                     klen;

    /* Primary servers first, backups after, each in file order. */
    sorted = ed_palloc(pool, ups->nservers * sizeof(*sorted));
    if (sorted == NULL) {
        return ED_ERROR;
    }
    for (i = 0; i < ups->nservers; i++) {
        if (!s[i].backup) {
            sorted[n++] = s[i];
        }
    }
    ups->nprimary = n;
    for (i = 0; i < ups->nservers; i++) {
        if (s[i].backup) {
            sorted[n++] = s[i];
        }
    }
    ups->servers = sorted;
    s = sorted;

    if (ups->balance != ED_HTTP_BALANCE_HASH) {
        return ED_OK;
    }
    for (i = 0; i < ups->nprimary; i++) {
        np += (size_t)s[i].weight * ED_UPS_POINTS_PER_WEIGHT;
    }
    ups->points = ed_palloc(pool, (np ? np : 1) * sizeof(*ups->points));
    if (ups->points == NULL) {
        return ED_ERROR;
    }
    ups->npoints = 0;
    for (i = 0; i < ups->nprimary; i++) {
        /* A point's place depends on the server's address only, so that
         * adding or removing a server moves only its own keys. */
        n = (size_t)s[i].weight * ED_UPS_POINTS_PER_WEIGHT;
        klen = ed_min(s[i].name.len, sizeof(key) - 8);
        memcpy(key, s[i].name.data, klen);
        key[klen] = '#';
        for (j = 0; j < n; j++) {
            k = (uint32_t)j;
            memcpy(key + klen + 1, &k, sizeof(k));
            ups->points[ups->npoints].hash =
                ed_http_upstream_hash(key, klen + 1 + sizeof(k));
            ups->points[ups->npoints].server = (uint32_t)i;
            ups->npoints++;
        }
    }
    qsort(ups->points, ups->npoints, sizeof(*ups->points), ed_ups_point_cmp);
    return ED_OK;
}

/* After every key is applied (and proxies made their URL groups in
 * attach): derived state and the shared memory of every server. */
static int
ed_ups_postconf(ed_conf_t *cf)
{
    ed_http_upstream_main_conf_t *umcf = ed_ups_main_conf(cf);
    ed_http_upstream_t          **g = umcf->groups.elts;
    ed_http_upstream_shm_t       *shm;
    size_t                        i, j, total = 0;

    for (i = 0; i < umcf->groups.nelts; i++) {
        if (ed_http_upstream_init(cf->pool, g[i]) != ED_OK) {
            return ED_ERROR;
        }
        total += g[i]->nservers;
    }
    if (total == 0) {
        return ED_OK;
    }
    shm = ed_shm_alloc(cf->pool, total * sizeof(ed_http_upstream_shm_t));
    if (shm == NULL) {
        return ed_conf_error(cf, NULL, "shared memory for %zu upstream "
                             "servers failed: %s", total, strerror(errno));
    }
    for (i = 0; i < umcf->groups.nelts; i++) {
        for (j = 0; j < g[i]->nservers; j++) {
            g[i]->servers[j].shm = shm++;
        }
    }
    return ED_OK;
}

/* Seeds the random generator and starts the health checks. ED_OK or
 * ED_ERROR. */
static int
ed_ups_init_worker(ed_worker_t *w)
{
    ed_http_upstream_main_conf_t *umcf;

    ed_ups_rng ^= ((uint64_t)getpid() << 32) ^ (uint64_t)ed_current_msec
                  ^ (uint64_t)(uintptr_t)w;
    if (ed_ups_rng == 0) {
        ed_ups_rng = 1;
    }
    umcf = w->cycle->main_conf[ed_http_upstream_module.index];
    if (umcf->groups.nelts == 0) {
        return ED_OK;
    }
    return ed_http_upstream_check_start(w, &umcf->groups);
}

static void
ed_ups_exit_worker(ed_worker_t *w)
{
    ed_http_upstream_check_stop(w);
}

/* Hashing and balancing. */

static uint32_t
ed_ups_rotl(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* MurmurHash3 (x86, 32-bit, seed 0), written from its public
 * description. */
uint32_t
ed_http_upstream_hash(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t       h = 0, k;
    size_t         i, nblocks = len / 4;

    for (i = 0; i < nblocks; i++) {
        memcpy(&k, p + 4 * i, 4);
        k *= 0xcc9e2d51;
        k = ed_ups_rotl(k, 15);
        k *= 0x1b873593;
        h ^= k;
        h = ed_ups_rotl(h, 13);
        h = h * 5 + 0xe6546b64;
    }
    k = 0;
    p += 4 * nblocks;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        k ^= p[0];
        k *= 0xcc9e2d51;
        k = ed_ups_rotl(k, 15);
        k *= 0x1b873593;
        h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

/* xorshift64*: returns the next number. */
uint64_t
ed_http_upstream_random(void)
{
    ed_ups_rng ^= ed_ups_rng >> 12;
    ed_ups_rng ^= ed_ups_rng << 25;
    ed_ups_rng ^= ed_ups_rng >> 27;
    return ed_ups_rng * 0x2545f4914f6cdd1dULL;
}

/* Returns whether s is neither down by checks nor out after failures. */
bool
ed_http_upstream_available(const ed_http_upstream_server_t *s, ed_msec_t now)
{
    if (s->shm && atomic_load_explicit(&s->shm->down, memory_order_relaxed)) {
        return false;
    }
    return s->max_fails == 0 || s->down_until <= now;
}

void
ed_http_upstream_failed(ed_http_upstream_t *ups, ed_http_upstream_server_t *s,
                        ed_msec_t now, ed_http_request_t *r)
{
    if (s->shm) {
        atomic_fetch_add_explicit(&s->shm->failures, 1,
                                  memory_order_relaxed);
    }
    /* A lone server is never taken out: there is nothing to fail over
     * to, and refusing it would only turn a blip into 502s. */
    if (s->max_fails == 0 || ups->nservers == 1) {
        return;
    }
    if (now - s->fail_start > s->fail_timeout) {
        s->fails = 0;
        s->fail_start = now;
    }
    if (++s->fails >= (unsigned)s->max_fails) {
        s->fails = 0;
        s->down_until = now + s->fail_timeout;
        ed_http_log(ED_LOG_WARN, r, 0,
                    "upstream \"%s\" server %s temporarily disabled for "
                    "%lldms after %d failure(s)",
                    ups->name.data, s->name.data, (long long)s->fail_timeout,
                    s->max_fails);
    }
}

void
ed_http_upstream_succeeded(ed_http_upstream_server_t *s)
{
    s->fails = 0;
}

#define ed_ups_tried(tried, i) ((tried) && ((tried)[(i) / 8] >> ((i) % 8)) & 1)

/* Whether server i may take the request. */
static bool
ed_ups_usable(ed_http_upstream_t *ups, size_t i, const uint8_t *tried,
              ed_msec_t now)
{
    return !ed_ups_tried(tried, i)
           && (ups->nservers == 1
               ? !(ups->servers[i].shm
                   && atomic_load_explicit(&ups->servers[i].shm->down,
                                           memory_order_relaxed))
               : ed_http_upstream_available(&ups->servers[i], now));
}

/* Smooth weighted round robin over the usable servers of [lo, hi) for
 * which ok[i - lo] is set (NULL: all). Returns an index or -1. */
static int
ed_ups_rr(ed_http_upstream_t *ups, size_t lo, size_t hi,
          const uint8_t *tried, ed_msec_t now, const bool *ok)
{
    ed_http_upstream_server_t *s = ups->servers, *best = NULL;
    int                        total = 0;
    size_t                     i;

    for (i = lo; i < hi; i++) {
        if ((ok && !ok[i - lo]) || !ed_ups_usable(ups, i, tried, now)) {
            continue;
        }
        s[i].current_weight += s[i].weight;
        total += s[i].weight;
        if (best == NULL || s[i].current_weight > best->current_weight) {
            best = &s[i];
        }
    }
    if (best == NULL) {
        return -1;
    }
    best->current_weight -= total;
    return (int)(best - s);
}

/* Least connections, weighted; ties share by round robin (among the
 * first ED_UPS_TIES servers of the range; beyond, the first best). */
#define ED_UPS_TIES 256

static int
ed_ups_least_conn(ed_http_upstream_t *ups, size_t lo, size_t hi,
                  const uint8_t *tried, ed_msec_t now)
{
    ed_http_upstream_server_t *s = ups->servers, *best = NULL;
    bool                       ok[ED_UPS_TIES];
    size_t                     i;

    for (i = lo; i < hi; i++) {
        if (!ed_ups_usable(ups, i, tried, now)) {
            continue;
        }
        if (best == NULL
            || (uint64_t)s[i].conns * (uint64_t)best->weight
                   < (uint64_t)best->conns * (uint64_t)s[i].weight)
        {
            best = &s[i];
        }
    }
    if (best == NULL) {
        return -1;
    }
    if (hi - lo > ED_UPS_TIES) {
        return (int)(best - s);
    }
    for (i = lo; i < hi; i++) {
        ok[i - lo] = (uint64_t)s[i].conns * (uint64_t)best->weight
                     == (uint64_t)best->conns * (uint64_t)s[i].weight;
    }
    return ed_ups_rr(ups, lo, hi, tried, now, ok);
}

/* Weighted choice of slot h % total over the usable servers. */
static int
ed_ups_weighted(ed_http_upstream_t *ups, size_t lo, size_t hi, uint64_t h,
                const uint8_t *tried, ed_msec_t now)
{
    uint64_t total = 0, w;
    size_t   i;

    for (i = lo; i < hi; i++) {
        if (ed_ups_usable(ups, i, tried, now)) {
            total += (uint64_t)ups->servers[i].weight;
        }
    }
    if (total == 0) {
        return -1;
    }
    w = h % total;
    for (i = lo; i < hi; i++) {
        if (!ed_ups_usable(ups, i, tried, now)) {
            continue;
        }
        if (w < (uint64_t)ups->servers[i].weight) {
            return (int)i;
        }
        w -= (uint64_t)ups->servers[i].weight;
    }
    return -1;
}

/* ip_hash: the weighted slot of the hash over every server (usable or
 * not), so that a client keeps its server while the others change;
 * rehashed when that one is unusable, round robin at last. */
static int
ed_ups_ip_hash(ed_http_upstream_t *ups, size_t lo, size_t hi, uint32_t hash,
               const uint8_t *tried, ed_msec_t now)
{
    uint64_t total = 0, w;
    size_t   i;
    int      t;

    for (i = lo; i < hi; i++) {
        total += (uint64_t)ups->servers[i].weight;
    }
    for (t = 0; t < ED_UPS_HASH_TRIES && total; t++) {
        w = hash % total;
        for (i = lo; i < hi; i++) {
            if (w < (uint64_t)ups->servers[i].weight) {
                break;
            }
            w -= (uint64_t)ups->servers[i].weight;
        }
        if (i < hi && ed_ups_usable(ups, i, tried, now)) {
            return (int)i;
        }
        hash = ed_http_upstream_hash(&hash, sizeof(hash));
    }
    return ed_ups_rr(ups, lo, hi, tried, now, NULL);
}

/* Consistent hashing: the first ring point at or after the hash, then
 * the following points while their servers are unusable. */
static int
ed_ups_ring(ed_http_upstream_t *ups, uint32_t hash, const uint8_t *tried,
            ed_msec_t now)
{
    size_t lo = 0, hi = ups->npoints, mid, i, n;

    if (ups->npoints == 0) {
        return -1;
    }
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (ups->points[mid].hash < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    n = ed_min(ups->npoints, (size_t)ED_UPS_HASH_TRIES * ups->nprimary);
    for (i = 0; i < n; i++) {
        uint32_t srv = ups->points[(lo + i) % ups->npoints].server;

        if (ed_ups_usable(ups, srv, tried, now)) {
            return (int)srv;
        }
    }
    return ed_ups_rr(ups, 0, ups->nprimary, tried, now, NULL);
}

/* Power of two choices: two weighted random servers, the one with fewer
 * requests in flight (per weight) wins. */
static int
ed_ups_random_two(ed_http_upstream_t *ups, size_t lo, size_t hi,
                  const uint8_t *tried, ed_msec_t now)
{
    ed_http_upstream_server_t *s = ups->servers;
    int                        a, b, t;

    a = ed_ups_weighted(ups, lo, hi, ed_http_upstream_random(), tried, now);
    if (a < 0) {
        return -1;
    }
    b = a;
    for (t = 0; t < 4 && b == a; t++) {
        b = ed_ups_weighted(ups, lo, hi, ed_http_upstream_random(), tried,
                            now);
    }
    if ((uint64_t)s[b].conns * (uint64_t)s[a].weight
        < (uint64_t)s[a].conns * (uint64_t)s[b].weight)
    {
        return b;
    }
    return a;
}

/* The group's algorithm over [lo, hi); backups use round robin.
 * Returns an index or -1. */
static int
ed_ups_pick_range(ed_http_upstream_t *ups, size_t lo, size_t hi,
                  uint32_t hash, const uint8_t *tried, ed_msec_t now,
                  bool backup)
{
    switch (backup ? ED_HTTP_BALANCE_ROUND_ROBIN : ups->balance) {
    case ED_HTTP_BALANCE_LEAST_CONN:
        return ed_ups_least_conn(ups, lo, hi, tried, now);
    case ED_HTTP_BALANCE_IP_HASH:
        return ed_ups_ip_hash(ups, lo, hi, hash, tried, now);
    case ED_HTTP_BALANCE_HASH:
        return ed_ups_ring(ups, hash, tried, now);
    case ED_HTTP_BALANCE_RANDOM_TWO:
        return ed_ups_random_two(ups, lo, hi, tried, now);
    default:
        return ed_ups_rr(ups, lo, hi, tried, now, NULL);
    }
}

/* Returns a server index or -1. */
int
ed_http_upstream_pick(ed_http_upstream_t *ups, uint32_t hash,
                      const uint8_t *tried, ed_msec_t now)
{
    int i;

    if (ups->nservers == 0) {
        return -1;
    }
    i = ed_ups_pick_range(ups, 0, ups->nprimary, hash, tried, now, false);
    if (i < 0 && ups->nservers > ups->nprimary) {
        i = ed_ups_pick_range(ups, ups->nprimary, ups->nservers, hash, tried,
                              now, true);
    }
    return i;
}

/* Connections. */

static void ed_ups_idle_on_read(ed_stream_t *s, int status, char *data,
                                size_t len);

/* Puts c first in the worker's list: a client closing its request (and
 * this connection with it) during ed_worker_close_all then never frees
 * the entry the walk will visit next, which lies after the client. */
static void
ed_ups_conn_front(ed_conn_t *c)
{
    ed_conn_t *head = &ed_worker->conns;

    if (head->next == c) {
        return;
    }
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->next = head->next;
    c->prev = head;
    head->next->prev = c;
    head->next = c;
}

static void
ed_ups_idle_unlink(ed_http_upstream_conn_t *uc)
{
    ed_http_upstream_t *ups = uc->ups;

    if (!uc->idle) {
        return;
    }
    if (uc->prev) {
        uc->prev->next = uc->next;
    } else {
        ups->idle = uc->next;
    }
    if (uc->next) {
        uc->next->prev = uc->prev;
    }
    uc->next = uc->prev = NULL;
    uc->idle = 0;
    ups->nidle--;
}

void
ed_http_upstream_close(ed_http_upstream_conn_t *uc)
{
    ed_ups_idle_unlink(uc);
    ed_timer_del(ed_worker->loop, &uc->timer);
    ed_stream_close(&uc->c.stream);
    ed_conn_unlink(&uc->c);
    free(uc);
}

static void
ed_ups_idle_on_timeout(ed_timer_t *t)
{
    ed_http_upstream_close(t->data);
}

/* Anything from an idle connection (bytes, close, error) makes it
 * unusable. */
static void
ed_ups_idle_on_read(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_unused(status);
    ed_unused(data);
    ed_unused(len);
    ed_http_upstream_close(s->data);
}

static void
ed_ups_idle_on_close(ed_stream_t *s)
{
    ed_http_upstream_close(s->data);
}

/* Graceful shutdown: idle connections go at once; busy ones are closed
 * by the request that owns them. */
static void
ed_ups_conn_shutdown(ed_conn_t *c)
{
    ed_http_upstream_conn_t *uc = (ed_http_upstream_conn_t *)c;

    if (uc->idle || uc->owner == NULL) {
        ed_http_upstream_close(uc);
    }
}

/* Returns an idle connection to s, taken out of the pool, or NULL. */
ed_http_upstream_conn_t *
ed_http_upstream_get_idle(ed_http_upstream_t *ups,
                          ed_http_upstream_server_t *s,
                          const ed_http_upstream_tls_t *tls)
{
    ed_http_upstream_conn_t *uc, *next;
    ed_stream_t             *st;

    for (uc = ups->idle; uc != NULL; uc = next) {
        next = uc->next;
        if (uc->server != s || uc->tls != tls) {
            continue;
        }
        /* Staleness: a close or bytes seen on an idle connection whose
         * callback has not run yet make it unusable. */
        st = &uc->c.stream;
        if (st->rdhup || st->eof || st->error || ed_stream_buffered(st))
        {
            ed_http_upstream_close(uc);
            continue;
        }
        break;
    }
    if (uc == NULL) {
        return NULL;
    }
    ed_ups_idle_unlink(uc);
    ed_timer_del(ed_worker->loop, &uc->timer);
    ed_stream_read_stop(&uc->c.stream);
    uc->c.stream.on_close = NULL;
    ed_ups_conn_front(&uc->c);
    return uc;
}

void
ed_http_upstream_release(ed_http_upstream_conn_t *uc)
{
    ed_http_upstream_t *ups = uc->ups;
    ed_stream_t        *s = &uc->c.stream;

    uc->owner = NULL;
    s->on_drain = NULL;
    s->on_flushed = NULL;
    s->on_close = NULL;
    ed_stream_read_stop(s);
    ed_timer_del(ed_worker->loop, &uc->timer);
    if (ups->keepalive == 0 || ed_worker->quitting || uc->connecting
        || s->closed || s->error || s->eof || s->rdhup
        || ed_stream_buffered(s) || s->wqueued)
    {
        ed_http_upstream_close(uc);
        return;
    }
    if (ups->nidle >= (size_t)ups->keepalive) {
        /* The least recently used one makes room. */
        ed_http_upstream_conn_t *old = ups->idle;

        while (old->next) {
            old = old->next;
        }
        ed_http_upstream_close(old);
    }
    uc->idle = 1;
    uc->prev = NULL;
    uc->next = ups->idle;
    if (ups->idle) {
        ups->idle->prev = uc;
    }
    ups->idle = uc;
    ups->nidle++;
    ed_stream_keep(s, 0);
    ed_stream_release_buffer(s);
    s->on_close = ed_ups_idle_on_close;
    if (ed_stream_read_some(s, 1, ed_ups_idle_on_read) != ED_OK) {
        ed_http_upstream_close(uc);
        return;
    }
    uc->timer.handler = ed_ups_idle_on_timeout;
    uc->timer.data = uc;
    ed_timer_add(ed_worker->loop, &uc->timer, ups->keepalive_timeout);
}

/* The first event of a connecting socket: the result of connect(). The
 * stream gets its handler back and sees the same events. */
static void
ed_ups_connect_event(ed_event_t *ev, uint32_t events)
{
    ed_stream_t             *s = ed_container_of(ev, ed_stream_t, ev);
    ed_http_upstream_conn_t *uc = s->data;
    socklen_t                len = sizeof(int);
    int                      err = 0;

    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        return;
    }
    if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        err = errno;
    }
    ev->handler = uc->stream_handler;
    uc->connecting = 0;
    if (err) {
        errno = err;
        /* The owner closes uc: touch nothing afterwards. */
        uc->on_connect(uc, ED_ERROR);
        return;
    }
    if (uc->on_connect(uc, ED_OK) == ED_OK) {
        ev->handler(ev, events);
    }
}

/* Puts a TLS client on a new connection to s: the name sent and
 * checked is tls_server_name, else the server's host without its port.
 * ED_OK or ED_ERROR. */
static int
ed_ups_tls_connect(ed_http_upstream_conn_t *uc, ed_http_upstream_t *ups,
                   ed_http_upstream_server_t *s,
                   const ed_http_upstream_tls_t *tls)
{
    const ed_str_t *h = tls->name.len ? &tls->name : &s->host;
    const char     *p = h->data, *colon;
    char            name[256];
    size_t          len = h->len;

    if (tls->name.len == 0 && len) {
        if (*p == '[') {
            /* [v6]:port */
            colon = memchr(p, ']', len);
            p++;
            len = colon ? (size_t)(colon - p) : len - 1;
        } else if ((colon = memchr(p, ':', len)) != NULL
                   && memchr(colon + 1, ':', len - (size_t)(colon + 1 - p))
                          == NULL)
        {
            len = (size_t)(colon - p);
        }
    }
    if (len >= sizeof(name)) {
        return ED_ERROR;    /* never an unchecked name */
    }
    memcpy(name, p, len);
    name[len] = '\0';
    return ed_tls_connect(&uc->c.stream, tls->ctx, name, tls->verify,
                          tls->sessions ? &tls->sessions[s - ups->servers]
                                        : NULL);
}

/* ED_OK, ED_AGAIN or ED_ERROR (errno set). */
int
ed_http_upstream_connect(ed_http_upstream_t *ups,
                         ed_http_upstream_server_t *s,
                         const ed_http_upstream_tls_t *tls, void *owner,
                         int (*on_connect)(ed_http_upstream_conn_t *uc,
                                           int rc),
                         ed_http_upstream_conn_t **ucp)
{
    ed_http_upstream_conn_t *uc;
    int                      fd, rc, err, one = 1;

    *ucp = NULL;
    fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd == -1) {
        return ED_ERROR;
    }
    if (s->addr.ss_family != AF_UNIX) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    do {
        rc = connect(fd, (struct sockaddr *)&s->addr, s->addrlen);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1 && errno != EINPROGRESS) {
        err = errno;
        close(fd);
        errno = err;
        return ED_ERROR;
    }
    uc = calloc(1, sizeof(ed_http_upstream_conn_t));
    if (uc == NULL) {
        close(fd);
        errno = ENOMEM;
        return ED_ERROR;
    }
    if (ed_stream_init(&uc->c.stream, ed_worker->loop, &ed_worker->bufs, fd,
                       uc) != ED_OK)
    {
        err = errno;
        close(fd);
        free(uc);
        errno = err;
        return ED_ERROR;
    }
    if (tls != NULL && ed_ups_tls_connect(uc, ups, s, tls) != ED_OK) {
        ed_stream_close(&uc->c.stream);
        free(uc);
        errno = ENOMEM;
        return ED_ERROR;
    }
    uc->ups = ups;
    uc->server = s;
    uc->tls = tls;
    uc->owner = owner;
    uc->on_connect = on_connect;
    uc->c.peer.sa.sa_family = AF_UNIX;
    uc->c.shutdown = ed_ups_conn_shutdown;
    uc->timer.data = uc;
    ed_conn_link(&uc->c);
    *ucp = uc;
    if (rc == 0) {
        return ED_OK;
    }
    /* Writes wait for the connection; its first event comes to us. */
    uc->connecting = 1;
    uc->c.stream.writable = 0;
    uc->stream_handler = uc->c.stream.ev.handler;
    uc->c.stream.ev.handler = ed_ups_connect_event;
    return ED_AGAIN;
}

/* Variables. */

enum { ED_UPS_VAR_ADDR, ED_UPS_VAR_STATUS, ED_UPS_VAR_TIME };

/* One value per attempt, joined by ", ". ED_OK, ED_DECLINED (no upstream
 * tried), ED_ERROR. */
static int
ed_ups_variable(ed_http_request_t *r, int which, ed_str_t *out)
{
    ed_http_upstream_state_t *st = r->upstream;
    ed_http_upstream_try_t   *t;
    size_t                    i, len = 0;
    char                     *p;

    if (st == NULL || st->ntries == 0) {
        return ED_DECLINED;
    }
    for (i = 0; i < st->ntries; i++) {
        len += st->tries[i].addr.len + 24;
    }
    p = ed_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    for (i = 0; i < st->ntries; i++) {
        t = &st->tries[i];
        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }
        switch (which) {
        case ED_UPS_VAR_ADDR:
            memcpy(p, t->addr.data, t->addr.len);
            p += t->addr.len;
            break;
        case ED_UPS_VAR_STATUS:
            p = ed_sprint_u64(p, (uint64_t)(t->status ? t->status : 502));
            break;
        default:
            p += sprintf(p, "%lld.%03lld", (long long)(t->msec / 1000),
                         (long long)(t->msec % 1000));
            break;
        }
    }
    *p = '\0';
    out->len = (size_t)(p - out->data);
    return ED_OK;
}

static int
ed_ups_var_addr(ed_http_request_t *r, ed_str_t *out)
{
    return ed_ups_variable(r, ED_UPS_VAR_ADDR, out);
}

static int
ed_ups_var_status(ed_http_request_t *r, ed_str_t *out)
{
    return ed_ups_variable(r, ED_UPS_VAR_STATUS, out);
}

static int
ed_ups_var_response_time(ed_http_request_t *r, ed_str_t *out)
{
    return ed_ups_variable(r, ED_UPS_VAR_TIME, out);
}
