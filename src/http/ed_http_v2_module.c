/* The http2 block (main or server level): the settings of HTTP/2
 * connections and streams. Built into every binary, so that a build
 * without libnghttp2 says why the keys cannot be used. The protocol
 * itself is in ed_http_v2.c and ed_http_v2_stream.c. */
#include "ed_http_v2.h"

static const char *ed_http_v2_set(ed_conf_t *cf, const ed_key_t *key,
                                  ed_node_t *node, void *conf);
static const char *ed_http_v2_scalar(ed_conf_t *cf, ed_node_t *node,
                                     void *block);

static const ed_conf_bounds_t ed_http_v2_streams_bounds = { 1, 1000 };
static const ed_conf_bounds_t ed_http_v2_window_bounds =
    { 1024, 16 * 1024 * 1024 };
static const ed_conf_bounds_t ed_http_v2_conn_window_bounds =
    { 64 * 1024, 1024 * 1024 * 1024 };
static const ed_conf_bounds_t ed_http_v2_frame_bounds =
    { 16 * 1024, 16777215 };
static const ed_conf_bounds_t ed_http_v2_table_bounds = { 0, 64 * 1024 };

#define ED_V2KEY(name, flags, set, field, arg, def)                          \
    { name, ED_CTX_MAIN | ED_CTX_SERVER, (flags) | ED_KEY_INHERIT, set,      \
      ED_CONF_LOC, offsetof(ed_http_v2_conf_t, field), arg, def }

/* The keys of the `http2` block; idle_timeout unset follows
 * keepalive_timeout. */
static const ed_key_t ed_http_v2_block_keys[] = {
    ED_V2KEY("max_concurrent_streams", ED_KEY_INT, ed_conf_set_int,
             max_concurrent_streams, &ed_http_v2_streams_bounds, "128"),
    ED_V2KEY("initial_window_size", ED_KEY_SIZE, ed_conf_set_size,
             initial_window_size, &ed_http_v2_window_bounds, "64k"),
    ED_V2KEY("connection_window_size", ED_KEY_SIZE, ed_conf_set_size,
             connection_window_size, &ed_http_v2_conn_window_bounds, "1m"),
    ED_V2KEY("max_frame_size", ED_KEY_SIZE, ed_conf_set_size,
             max_frame_size, &ed_http_v2_frame_bounds, "16k"),
    ED_V2KEY("header_table_size", ED_KEY_SIZE, ed_conf_set_size,
             header_table_size, &ed_http_v2_table_bounds, "4k"),
    ED_V2KEY("idle_timeout", ED_KEY_MSEC, ed_conf_set_msec, idle_timeout,
             NULL, NULL),
    ED_V2KEY("ping_interval", ED_KEY_MSEC, ed_conf_set_msec, ping_interval,
             NULL, "0"),
    ED_V2KEY("ping_timeout", ED_KEY_MSEC, ed_conf_set_msec, ping_timeout,
             NULL, "15s"),
    ED_V2KEY("enable_connect_protocol", ED_KEY_INT, ed_conf_set_bool,
             enable_connect_protocol, NULL, "true"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_v2_block = {
    .name = "http2",
    .keys = ed_http_v2_block_keys,
    .size = sizeof(ed_http_v2_conf_t),
    .scalar = ed_http_v2_scalar,
    .expect = "expected a mapping of http2 keys (max_concurrent_streams, "
              "initial_window_size, connection_window_size, max_frame_size, "
              "header_table_size, idle_timeout, ping_interval, ping_timeout, "
              "enable_connect_protocol)",
};

/* The main level's block is made of the defaults ("{}" below, which
 * only the loader's defaults may give), so every level has one. */
static const ed_key_t ed_http_v2_keys[] = {
    { "http2", ED_CTX_MAIN | ED_CTX_SERVER, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_http_v2_set, ED_CONF_LOC, offsetof(ed_http_v2_loc_conf_t, block),
      &ed_http_v2_block, "{}" },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_v2_module = {
    .name = "http2",
    .keys = ed_http_v2_keys,
    .conf_size = { 0, 0, sizeof(ed_http_v2_loc_conf_t), 0 },
};

/* http2: {...}. Returns NULL or a message. */
static const char *
ed_http_v2_set(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
               void *conf)
{
#if !ED_HAVE_HTTP2
    if (strcmp(node->file, "(default)") != 0) {
        ed_conf_error(cf, node, "eddy was built without HTTP/2");
        return NULL;
    }
#endif
    return ed_conf_set_block(cf, key, node, conf);
}

/* Only the default "{}" is a scalar form. */
static const char *
ed_http_v2_scalar(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_unused(cf);
    ed_unused(block);
    if (strcmp(node->file, "(default)") == 0
        && ed_str_caseeq(&node->value, "{}"))
    {
        return NULL;
    }
    return ed_http_v2_block.expect;
}

ed_http_v2_conf_t *
ed_http_v2_conf(ed_http_server_t *srv)
{
    ed_http_v2_loc_conf_t *lcf = srv->loc_conf[ed_http_v2_module.index];

    return lcf->block;
}

/* The client connection preface (RFC 9113 3.4). */
static const char ed_http_v2_magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#define ED_HTTP_V2_MAGIC_LEN (sizeof(ed_http_v2_magic) - 1)

bool
ed_http_v2_preface(const char *buf, size_t len)
{
    return len == ED_HTTP_V2_MAGIC_LEN
           && memcmp(buf, ed_http_v2_magic, len) == 0;
}

/* The preface is itself an HTTP/1.x head ("PRI * HTTP/2.0" and an
 * empty line) followed by "SM\r\n\r\n": while the bytes so far are a
 * beginning of it, wait for all 24; any other head is HTTP/1.x's. */
size_t
ed_http_v2_head_end(const char *buf, size_t len, size_t *resume)
{
    size_t n = ed_min(len, ED_HTTP_V2_MAGIC_LEN);

    if (memcmp(buf, ed_http_v2_magic, n) == 0) {
        if (n == ED_HTTP_V2_MAGIC_LEN) {
            return n;
        }
        if (resume) {
            *resume = 0;
        }
        return 0;
    }
    return ed_http_head_end(buf, len, resume);
}

#if !ED_HAVE_HTTP2

bool
ed_http_v2_start(ed_http_conn_t *hc)
{
    ed_unused(hc);
    return false;
}

bool
ed_http_v2_alpn(ed_http_conn_t *hc)
{
    ed_unused(hc);
    return false;
}

#endif
