/* The tls module: server certificates, protocols and ciphers, SNI choosing
 * the server's certificate, ALPN, TLS on accepted connections, and the
 * session ticket key files of the main level. */
#include "ed_http.h"
#include "ed_tls.h"
#include "ed_tls_ocsp.h"

#include <sys/stat.h>

/* A server's `tls:` block. */
typedef struct {
    ed_node_t *node;           /* the tls block, for messages */
    ed_str_t   certificate;
    ed_str_t   key;
    unsigned   protocols;
    ed_str_t   ciphers;
    int        session_tickets;
    int        ocsp_stapling;
    ed_str_t   ocsp_file;      /* ocsp_response_file: instead of fetching */
} ed_http_tls_block_t;

typedef struct {
    ed_http_tls_block_t *block;  /* NULL: no tls */
} ed_http_tls_conf_t;

/* The main level's. */
typedef struct {
    ed_node_t            *key_files;  /* session_ticket_key_file, or NULL */
    ed_tls_ticket_keys_t *keys;       /* read from them, or NULL */
} ed_http_tls_main_conf_t;

static const char *ed_http_tls_set_protocols(ed_conf_t *cf,
                                             const ed_key_t *key,
                                             ed_node_t *node, void *conf);
static const char *ed_http_tls_set_key_files(ed_conf_t *cf,
                                             const ed_key_t *key,
                                             ed_node_t *node, void *conf);
static const char *ed_http_tls_check(ed_conf_t *cf, ed_node_t *node,
                                     void *block);
static int ed_http_tls_postconf(ed_conf_t *cf);

#define ED_TLS_KEY(name, flags, set, field, def)                             \
    { name, ED_CTX_SERVER, flags, set, ED_CONF_SRV,                          \
      offsetof(ed_http_tls_block_t, field), NULL, def }

/* The keys inside a server's `tls:` block. */
static const ed_key_t ed_http_tls_block_keys[] = {
    ED_TLS_KEY("certificate", ED_KEY_STR, ed_conf_set_path, certificate,
               NULL),
    ED_TLS_KEY("key", ED_KEY_STR, ed_conf_set_path, key, NULL),
    ED_TLS_KEY("protocols", ED_KEY_NONE, ed_http_tls_set_protocols,
               protocols, NULL),
    ED_TLS_KEY("ciphers", ED_KEY_STR, ed_conf_set_str, ciphers, NULL),
    ED_TLS_KEY("session_tickets", ED_KEY_INT, ed_conf_set_bool,
               session_tickets, "true"),
    ED_TLS_KEY("ocsp_stapling", ED_KEY_INT, ed_conf_set_bool, ocsp_stapling,
               "false"),
    ED_TLS_KEY("ocsp_response_file", ED_KEY_STR, ed_conf_set_path,
               ocsp_file, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_tls_block = {
    .name = "tls",
    .keys = ed_http_tls_block_keys,
    .size = sizeof(ed_http_tls_block_t),
    .check = ed_http_tls_check,
    .expect = "expected a mapping with certificate and key",
};

/* tls is a server's own: no level below takes it over. */
static const ed_key_t ed_http_tls_keys[] = {
    { "tls", ED_CTX_SERVER, ED_KEY_BLOCK, ed_conf_set_block, ED_CONF_SRV,
      offsetof(ed_http_tls_conf_t, block), &ed_http_tls_block, NULL },
    { "session_ticket_key_file", ED_CTX_MAIN, ED_KEY_NONE,
      ed_http_tls_set_key_files, ED_CONF_MAIN,
      offsetof(ed_http_tls_main_conf_t, key_files), NULL, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_tls_module = {
    .name = "tls",
    .keys = ed_http_tls_keys,
    .conf_size = { sizeof(ed_http_tls_main_conf_t),
                   sizeof(ed_http_tls_conf_t), 0, 0 },
    .postconf = ed_http_tls_postconf,
};

/* Both files are required. Returns NULL (errors recorded). */
static const char *
ed_http_tls_check(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_unused(block);
    if (ed_conf_get(node, "certificate") == NULL) {
        ed_conf_error(cf, node, "tls: \"certificate\" is required");
    }
    if (ed_conf_get(node, "key") == NULL) {
        ed_conf_error(cf, node, "tls: \"key\" is required");
    }
    return NULL;
}

/* protocols: [TLSv1.2, TLSv1.3]; older versions are refused. */
static const char *
ed_http_tls_set_protocols(ed_conf_t *cf, const ed_key_t *key,
                          ed_node_t *node, void *conf)
{
    ed_http_tls_block_t *tcf = conf;
    ed_node_t          **items = &node;
    size_t               n = 1, i;

    ed_unused(key);
    if (node->type == ED_NODE_SEQ) {
        items = node->items;
        n = node->n;
    }
    tcf->protocols = 0;
    for (i = 0; i < n; i++) {
        const char *v = items[i]->value.data;

        if (items[i]->type != ED_NODE_SCALAR) {
            return "expected a list of protocol names";
        }
        if (strcmp(v, "TLSv1.2") == 0) {
            tcf->protocols |= ED_TLS_V12;
        } else if (strcmp(v, "TLSv1.3") == 0) {
            tcf->protocols |= ED_TLS_V13;
        } else if (strcmp(v, "TLSv1") == 0 || strcmp(v, "TLSv1.0") == 0
                   || strcmp(v, "TLSv1.1") == 0 || strcmp(v, "SSLv3") == 0
                   || strcmp(v, "SSLv2") == 0)
        {
            ed_conf_error(cf, items[i], "TLS protocol \"%s\" is not "
                          "supported (insecure): expected TLSv1.2 or "
                          "TLSv1.3", v);
        } else {
            ed_conf_error(cf, items[i], "unknown TLS protocol \"%s\": "
                          "expected TLSv1.2 or TLSv1.3", v);
        }
    }
    if (tcf->protocols == 0 && cf->nerrors == 0) {
        return "expected at least one of TLSv1.2, TLSv1.3";
    }
    return NULL;
}

/* session_ticket_key_file: one path or a list; the files are read at
 * postconf. Returns NULL or a message. */
static const char *
ed_http_tls_set_key_files(ed_conf_t *cf, const ed_key_t *key,
                          ed_node_t *node, void *conf)
{
    ed_http_tls_main_conf_t *mcf = conf;
    size_t                   i, n;
    ed_node_t               *item;

    ed_unused(cf);
    ed_unused(key);
    n = node->type == ED_NODE_SEQ ? node->n : 1;
    if (node->type == ED_NODE_MAP || n == 0) {
        return "expected a path or a list of paths";
    }
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        if (item->type != ED_NODE_SCALAR || item->value.len == 0) {
            return "expected a path or a list of paths";
        }
    }
    mcf->key_files = node;
    return NULL;
}

/* Reads the session ticket key files, each error and warning at its
 * item. A file others than its owner may read gives a warning: whoever
 * reads it can decrypt every session's ticket. Returns ED_OK or
 * ED_ERROR. */
static int
ed_http_tls_read_key_files(ed_conf_t *cf, ed_http_tls_main_conf_t *mcf)
{
    ed_node_t *node = mcf->key_files, *item;
    size_t     i, n;
    unsigned   mode;
    char      *path;
    char       err[1024];

    n = node->type == ED_NODE_SEQ ? node->n : 1;
    mcf->keys = ed_tls_ticket_keys_create(cf->pool, n);
    if (mcf->keys == NULL) {
        return ed_conf_error(cf, node, "out of memory");
    }
    for (i = 0; i < n; i++) {
        item = node->type == ED_NODE_SEQ ? node->items[i] : node;
        path = ed_conf_path(cf, item->value.data);
        if (path == NULL) {
            return ed_conf_error(cf, item, "out of memory");
        }
        if (ed_tls_ticket_keys_read(mcf->keys, path, &mode, err,
                                    sizeof(err))
            != ED_OK)
        {
            ed_conf_error(cf, item, "%s", err);
            continue;
        }
        if (mode & (S_IRGRP | S_IROTH)) {
            ed_conf_warn(cf, item, "session ticket key file \"%s\" is "
                         "readable by %s (mode %04o): whoever reads it can "
                         "decrypt the sessions' tickets; chmod 600 it",
                         path, (mode & S_IROTH) ? "everyone" : "its group",
                         mode);
        }
    }
    return cf->nerrors ? ED_ERROR : ED_OK;
}

/* SNI, from the ClientHello before anything is negotiated: the server
 * the name chooses gives the certificate and also its protocols,
 * ciphers and ticket setting (the servername callback comes too late for
 * those). Without SNI, or for an unknown name, the address's default
 * server's context stays. Returns SSL_CLIENT_HELLO_SUCCESS, or
 * SSL_CLIENT_HELLO_ERROR with *alert set. */
static int
ed_http_tls_on_client_hello(SSL *ssl, int *alert, void *arg)
{
    ed_http_conn_t      *hc = ed_tls_conn_data(ssl);
    ed_http_server_t    *srv;
    const unsigned char *ext;
    size_t               len;
    ed_str_t             host;
    char                 low[256];

    ed_unused(arg);
    if (hc == NULL
        || !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext,
                                      &len))
    {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    host.len = ed_tls_sni(ext, len, low, sizeof(low));
    host.data = low;
    if (host.len == 0) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    srv = ed_http_find_server(ed_http_conn_addr(hc), NULL, &host);
    if (srv && srv->tls_ctx
        && ed_tls_switch_ctx(ssl, srv->tls_ctx) != ED_OK)
    {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Acknowledges SNI (the choice was made from the ClientHello). Returns
 * SSL_TLSEXT_ERR_OK, or SSL_TLSEXT_ERR_NOACK without a name. */
static int
ed_http_tls_on_servername(SSL *ssl, int *alert, void *arg)
{
    ed_unused(alert);
    ed_unused(arg);
    if (SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Whether the suite negotiated allows h2 (RFC 9113 9.2): TLS 1.3, or
 * TLS 1.2 with an ephemeral key exchange and an AEAD cipher. A widened
 * `ciphers` then gets HTTP/1.1, never INADEQUATE_SECURITY. */
static bool
ed_http_tls_h2_suite(SSL *ssl)
{
    const SSL_CIPHER *c;
    int               kx;

    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        return true;
    }
    c = SSL_get_pending_cipher(ssl);
    if (c == NULL || !SSL_CIPHER_is_aead(c)) {
        return false;
    }
    kx = SSL_CIPHER_get_kx_nid(c);
    return kx == NID_kx_ecdhe || kx == NID_kx_dhe;
}

/* ALPN in the server's order: h2 (an address with http2, a suite that
 * allows it), then http/1.1; a client offering only others gets no
 * ALPN answer rather than a failed handshake. */
static int
ed_http_tls_on_alpn(SSL *ssl, const unsigned char **out,
                    unsigned char *outlen, const unsigned char *in,
                    unsigned inlen, void *arg)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    static const unsigned char h11[] = "\x08http/1.1";
    ed_http_conn_t            *hc = ed_tls_conn_data(ssl);
    unsigned char             *sel;
    bool                       h2;

    ed_unused(arg);
    h2 = hc != NULL && ed_http_conn_addr(hc)->http2
         && ed_http_tls_h2_suite(ssl);
    if (SSL_select_next_proto(&sel, outlen, h2 ? both : h11,
                              h2 ? sizeof(both) - 1 : sizeof(h11) - 1, in,
                              inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* OCSP stapling for a server's new context: fetched, or from the
 * response file. Returns ED_OK, or ED_ERROR after recording the error at
 * the key it is about. */
static int
ed_http_tls_ocsp(ed_conf_t *cf, ed_http_tls_block_t *tcf, SSL_CTX *ctx)
{
    ed_node_t *node;
    char       err[1024];
    int        what;

    if (!tcf->ocsp_stapling) {
        if (tcf->ocsp_file.data != NULL) {
            return ed_conf_error(cf, ed_conf_get(tcf->node,
                                                 "ocsp_response_file"),
                                 "tls: \"ocsp_response_file\" needs "
                                 "\"ocsp_stapling: true\"");
        }
        return ED_OK;
    }
    if (ed_tls_ocsp_create(cf->cycle, ctx, tcf->certificate.data,
                           tcf->ocsp_file.data, err, sizeof(err), &what)
        != NULL)
    {
        return ED_OK;
    }
    node = ed_conf_get(tcf->node, what == ED_TLS_OCSP_ERR_FILE
                                      ? "ocsp_response_file"
                                      : "ocsp_stapling");
    return ed_conf_error(cf, node ? node : tcf->node, "%s", err);
}

/* Makes the context of one server with a tls block. Returns ED_OK, or
 * ED_ERROR after recording the error at the key it is about. */
static int
ed_http_tls_server(ed_conf_t *cf, ed_http_server_t *srv,
                   const ed_tls_ticket_keys_t *keys)
{
    ed_http_tls_conf_t  *conf = srv->srv_conf[ed_http_tls_module.index];
    ed_http_tls_block_t *tcf = conf->block;
    ed_node_t           *node;
    SSL_CTX             *ctx;
    char                 err[1024];
    int                  what;

    if (tcf == NULL) {
        return ED_OK;
    }
    if (tcf->certificate.data == NULL || tcf->key.data == NULL) {
        return ED_ERROR; /* already reported */
    }
    ctx = ed_tls_server_ctx(tcf->certificate.data, tcf->key.data,
                            tcf->protocols ? tcf->protocols
                                           : ED_TLS_V12 | ED_TLS_V13,
                            tcf->ciphers.data, tcf->session_tickets != 0,
                            err, sizeof(err), &what);
    if (ctx == NULL) {
        switch (what) {
        case ED_TLS_ERR_CERT:
            node = ed_conf_get(tcf->node, "certificate");
            break;
        case ED_TLS_ERR_KEY:
            node = ed_conf_get(tcf->node, "key");
            break;
        case ED_TLS_ERR_CIPHERS:
            node = ed_conf_get(tcf->node, "ciphers");
            break;
        default:
            node = NULL;
        }
        ed_conf_error(cf, node ? node : tcf->node, "%s", err);
        return ED_ERROR;
    }
    if (ed_pool_cleanup_add(cf->pool, (ed_pool_cleanup_pt)SSL_CTX_free, ctx)
        != ED_OK)
    {
        SSL_CTX_free(ctx);
        return ED_ERROR;
    }
    /* Also for a server without tickets: see ed_tls_server_ctx. */
    if (keys != NULL && ed_tls_ticket_keys_use(ctx, keys) != ED_OK) {
        return ed_conf_error(cf, tcf->node, "cannot use the session ticket "
                             "key files");
    }
    if (ed_http_tls_ocsp(cf, tcf, ctx) != ED_OK) {
        return ED_ERROR;
    }
    SSL_CTX_set_client_hello_cb(ctx, ed_http_tls_on_client_hello, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, ed_http_tls_on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, ed_http_tls_on_alpn, NULL);
    srv->tls_ctx = ctx;
    return ED_OK;
}

static int
ed_http_tls_postconf(ed_conf_t *cf)
{
    ed_http_core_main_conf_t *cmcf;
    ed_http_tls_main_conf_t  *mcf;
    ed_http_server_t        **srvs;
    ed_listener_t           **ls;
    ed_http_addr_t           *ha;
    size_t                    i;

    mcf = cf->cycle->main_conf[ed_http_tls_module.index];
    if (mcf->key_files != NULL
        && ed_http_tls_read_key_files(cf, mcf) != ED_OK)
    {
        return ED_ERROR;
    }
    cmcf = cf->cycle->main_conf[ed_http_core_module.index];
    srvs = cmcf->servers.elts;
    for (i = 0; i < cmcf->servers.nelts; i++) {
        ed_http_tls_server(cf, srvs[i], mcf->keys);
    }
    ls = cf->cycle->listeners.elts;
    for (i = 0; i < cf->cycle->listeners.nelts; i++) {
        ha = ls[i]->servers;
        if (ls[i]->tls && ha && ha->default_server->tls_ctx == NULL
            && cf->nerrors == 0)
        {
            ed_conf_error(cf, ha->default_server->node,
                          "TLS listener %s: its default server (#%u) has no "
                          "tls certificate", ls[i]->name,
                          ha->default_server->index);
        }
    }
    return cf->nerrors ? ED_ERROR : ED_OK;
}
