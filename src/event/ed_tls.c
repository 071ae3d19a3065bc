/* TLS through OpenSSL under ed_stream: server contexts from certificate
 * files, and a stream transport that drives the handshake and records
 * non-blockingly. */
#include "ed_tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 has its own
 * modern defaults). */
#define ED_TLS_CIPHERS                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"             \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"             \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Bytes coalesced into one SSL_write: one record for a whole response,
 * the largest plaintext a record holds. */
#define ED_TLS_WBUF 16384

/* One ed_tls_writev encrypts up to ED_TLS_CORK_PLAIN bytes into the
 * worker's cork and writes the records with one write(): one system call
 * (and one pass through the TCP stack) for a 64 KiB response and its
 * HTTP/2 frame headers instead of one per record. The cork holds that
 * many records with room for their overhead and handshake messages; a
 * fuller one is written out first. */
#define ED_TLS_CORK_PLAIN (4 * ED_TLS_WBUF + 4096)
#define ED_TLS_CORK_SIZE  (ED_TLS_CORK_PLAIN + 16384)

/* Sessions live as long as a ticket key is sure to decrypt them: one
 * rotation period (a key encrypts for one period, decrypts for two). */
#define ED_TLS_SESSION_TIMEOUT (ED_TLS_KEY_ROTATE_MSEC / 1000)

/* Sessions kept per context and process for clients without tickets. */
#define ED_TLS_SESSION_CACHE 4096

static int ed_tls_index = -1;      /* SSL ex data: the connection */
static int ed_tls_ctx_index = -1;  /* SSL_CTX ex data: the cipher string */

static BIO_METHOD      *ed_tls_wbio_method;
static char            *ed_tls_cork;     /* ED_TLS_CORK_SIZE, per process */
static size_t           ed_tls_cork_len;
static ed_tls_stream_t *ed_tls_corking;  /* whose records go to the cork */

/* Puts the most telling reason from OpenSSL's error queue into buf and
 * clears the queue: a system error (the file is missing) first; "no PEM
 * <kind> in it" when a PEM file held nothing to decode (kind not NULL);
 * else the earliest entry (the cause; later ones only say who called);
 * errno when the queue is empty. *mismatch (if not NULL) tells whether a
 * key was refused for not matching its certificate. */
static void
ed_tls_reason(char *buf, size_t size, const char *kind, bool *mismatch)
{
    unsigned long e, sys = 0, first = 0;
    bool          empty = false, differs = false;
    int           lib, why;

    while ((e = ERR_get_error()) != 0) {
        lib = ERR_GET_LIB(e);
        why = ERR_GET_REASON(e);
        if (lib == ERR_LIB_SYS && sys == 0) {
            sys = e;
        }
        if ((lib == ERR_LIB_PEM && why == PEM_R_NO_START_LINE)
            || (lib == ERR_LIB_OSSL_DECODER && why == ERR_R_UNSUPPORTED))
        {
            empty = true;
        }
        if (lib == ERR_LIB_X509
            && (why == X509_R_KEY_VALUES_MISMATCH
                || why == X509_R_KEY_TYPE_MISMATCH))
        {
            differs = true;
        }
        if (first == 0) {
            first = e;
        }
    }
    if (mismatch != NULL) {
        *mismatch = differs;
    }
    if (sys != 0 && ERR_GET_REASON(sys) != 0) {
        snprintf(buf, size, "%s", strerror(ERR_GET_REASON(sys)));
    } else if (empty && kind != NULL) {
        snprintf(buf, size, "no PEM %s in it", kind);
    } else if (first != 0 && ERR_reason_error_string(first) != NULL) {
        snprintf(buf, size, "%s", ERR_reason_error_string(first));
    } else if (first != 0) {
        ERR_error_string_n(first, buf, size);
    } else {
        snprintf(buf, size, "%s", strerror(errno ? errno : EINVAL));
    }
}

/* Checks that path is a readable regular file before OpenSSL parses it,
 * for a plain reason when it is not. Returns ED_OK, or ED_ERROR with the
 * reason in buf. */
static int
ed_tls_file_check(const char *path, char *buf, size_t size)
{
    struct stat st;
    int         fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(buf, size, "%s", strerror(errno));
        return ED_ERROR;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(buf, size, "not a regular file");
        close(fd);
        return ED_ERROR;
    }
    close(fd);
    return ED_OK;
}

/* Loads the certificate chain and the key into ctx. Returns ED_OK, or
 * ED_ERROR with err and *what set. */
static int
ed_tls_load(SSL_CTX *ctx, const char *cert, const char *key, char *err,
            size_t size, int *what)
{
    const char *path = cert;
    char        reason[256];
    bool        mismatch = false;

    *what = ED_TLS_ERR_CERT;
    if (ed_tls_file_check(cert, reason, sizeof(reason)) != ED_OK) {
        goto failed;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ed_tls_reason(reason, sizeof(reason), "certificate", NULL);
        goto failed;
    }
    *what = ED_TLS_ERR_KEY;
    path = key;
    if (ed_tls_file_check(key, reason, sizeof(reason)) != ED_OK) {
        goto failed;
    }
    /* OpenSSL checks the key against the certificate of its type while
     * loading it; the check after catches a key of another type. */
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ed_tls_reason(reason, sizeof(reason), "private key", &mismatch);
        goto failed;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        mismatch = true;
        goto failed;
    }
    return ED_OK;

failed:
    if (mismatch) {
        snprintf(err, size, "key \"%s\" does not match certificate \"%s\"",
                 key, cert);
    } else {
        snprintf(err, size, "cannot load %s \"%s\": %s",
                 *what == ED_TLS_ERR_CERT ? "certificate" : "key", path,
                 reason);
    }
    return ED_ERROR;
}

/* Allocates the ex data slots once. Returns ED_OK or ED_ERROR. */
static int
ed_tls_indexes(void)
{
    if (ed_tls_index < 0) {
        ed_tls_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    if (ed_tls_ctx_index < 0) {
        ed_tls_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
                                                    NULL);
    }
    return ed_tls_index < 0 || ed_tls_ctx_index < 0 ? ED_ERROR : ED_OK;
}

/* Sets the session id context from the leaf certificate, computed as
 * nginx's HTTP module does (SHA-1 of "HTTP" and the certificate's SHA-1
 * digest; no client CA list): sessions resume only with the certificate
 * they were made with (not on another server of the address), still do
 * after a reload that keeps the certificate, and, with the same ticket
 * key files, on the nginx hosts of a fleet serving that certificate.
 * Returns ED_OK or ED_ERROR. */
static int
ed_tls_sid_ctx(SSL_CTX *ctx)
{
    unsigned char md[EVP_MAX_MD_SIZE], sid[EVP_MAX_MD_SIZE];
    unsigned int  len = 0, slen = 0;
    X509         *x = SSL_CTX_get0_certificate(ctx);
    EVP_MD_CTX   *mdctx;
    int           ok;

    if (x == NULL || X509_digest(x, EVP_sha1(), md, &len) != 1) {
        return ED_ERROR;
    }
    mdctx = EVP_MD_CTX_new();
    ok = mdctx != NULL
         && EVP_DigestInit_ex(mdctx, EVP_sha1(), NULL) == 1
         && EVP_DigestUpdate(mdctx, "HTTP", 4) == 1
         && EVP_DigestUpdate(mdctx, md, len) == 1
         && EVP_DigestFinal_ex(mdctx, sid, &slen) == 1
         && SSL_CTX_set_session_id_context(ctx, sid,
                                           ed_min(slen,
                                                  SSL_MAX_SID_CTX_LENGTH))
                == 1;
    EVP_MD_CTX_free(mdctx);
    return ok ? ED_OK : ED_ERROR;
}

/* A context with what both sides share; NULL with a message in err.
 * - A peer that closes without close_notify has ended: HTTP frames its
 *   own messages (and many servers end a close-framed response so).
 * - Partial writes with a moving buffer: the stream re-offers what is
 *   left from its own queue, or a new coalescing buffer that starts with
 *   the same bytes.
 * - Read-ahead: one read(2) for all the records that arrived rather than
 *   two per record (header, then body). Safe with edge-triggered
 *   readiness: the stream hears "drained" only from a short read, which
 *   comes when SSL_read wants more and the socket said EAGAIN, so bytes
 *   OpenSSL holds are never forgotten. */
static SSL_CTX *
ed_tls_ctx_new(const SSL_METHOD *method, char *err, size_t size)
{
    SSL_CTX *ctx;
    char     reason[256];

    ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        ed_tls_reason(reason, sizeof(reason), NULL, NULL);
        snprintf(err, size, "cannot create a TLS context: %s", reason);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION
                                 | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                              | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}

/* Returns the context, or NULL with err and *what set. */
SSL_CTX *
ed_tls_server_ctx(const char *cert, const char *key, unsigned protocols,
                  const char *ciphers, bool tickets, char *err, size_t size,
                  int *what)
{
    SSL_CTX *ctx;
    char     reason[256];

    *what = ED_TLS_ERR_OTHER;
    ERR_clear_error();
    errno = 0;
    if (ed_tls_indexes() != ED_OK || ed_tls_keys_init() != ED_OK) {
        ed_tls_reason(reason, sizeof(reason), NULL, NULL);
        snprintf(err, size, "cannot set TLS up: %s", reason);
        return NULL;
    }
    ctx = ed_tls_ctx_new(TLS_server_method(), err, size);
    if (ctx == NULL) {
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, (protocols & ED_TLS_V12)
                                           ? TLS1_2_VERSION
                                           : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, (protocols & ED_TLS_V13)
                                           ? TLS1_3_VERSION
                                           : TLS1_2_VERSION);
    /* The default set is all AEAD with forward secrecy: the client's
     * order picks among equals (its AES-128 for hardware AES, ChaCha20
     * without it), as nginx and H2O do, and a ticket from a server
     * that follows the client resumes here (TLS 1.3 binds a ticket to
     * its suite's hash). A configured list is the operator's order. */
    if (ciphers != NULL) {
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    }
    if (!tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_dh_auto(ctx, 1);
    if (ciphers == NULL) {
        ciphers = ED_TLS_CIPHERS;
    }
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        ed_tls_reason(reason, sizeof(reason), NULL, NULL);
        snprintf(err, size, "invalid ciphers \"%s\": %s", ciphers, reason);
        *what = ED_TLS_ERR_CIPHERS;
        goto failed;
    }
    SSL_CTX_set_ex_data(ctx, ed_tls_ctx_index, (void *)ciphers);
    if (ed_tls_load(ctx, cert, key, err, size, what) != ED_OK) {
        goto failed;
    }
    if (ed_tls_sid_ctx(ctx) != ED_OK) {
        ed_tls_reason(reason, sizeof(reason), NULL, NULL);
        snprintf(err, size, "certificate \"%s\": %s", cert, reason);
        *what = ED_TLS_ERR_CERT;
        goto failed;
    }
    /* Also without tickets: OpenSSL takes the ticket keys from the
     * context a connection started on (the address's default server),
     * and SNI may move it to a server that issues tickets. */
    if (ed_tls_keys_use(ctx) != ED_OK) {
        snprintf(err, size, "cannot use session ticket keys");
        goto failed;
    }
    /* Resumption across workers goes through tickets. The cache is per
     * process: it serves clients without tickets (and TLS 1.3 without
     * tickets) on the worker that made their session. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, ED_TLS_SESSION_CACHE);
    SSL_CTX_set_timeout(ctx, ED_TLS_SESSION_TIMEOUT);
    return ctx;

failed:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* Returns ED_OK or ED_ERROR. */
int
ed_tls_switch_ctx(SSL *ssl, SSL_CTX *ctx)
{
    const char *ciphers;
    uint64_t    opts;

    if (SSL_get_SSL_CTX(ssl) == ctx) {
        return ED_OK;
    }
    if (SSL_set_SSL_CTX(ssl, ctx) != ctx) {
        ERR_clear_error();
        return ED_ERROR;
    }
    /* SSL_set_SSL_CTX moves the certificate and the session id context
     * only: the rest was copied from the first context by SSL_new. */
    opts = SSL_CTX_get_options(ctx);
    SSL_clear_options(ssl, SSL_get_options(ssl) & ~opts);
    SSL_set_options(ssl, opts);
    SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(ctx));
    SSL_set_max_proto_version(ssl, SSL_CTX_get_max_proto_version(ctx));
    ciphers = SSL_CTX_get_ex_data(ctx, ed_tls_ctx_index);
    if (ciphers != NULL && SSL_set_cipher_list(ssl, ciphers) != 1) {
        ERR_clear_error();
        return ED_ERROR;
    }
    return ED_OK;
}

/* RFC 6066: the list's length, then entries of type, length, name; one
 * host_name entry at most. Returns the name's length, or 0. */
size_t
ed_tls_sni(const unsigned char *ext, size_t len, char *low, size_t size)
{
    const unsigned char *p = ext;
    size_t               list, n, i;

    if (len < 2) {
        return 0;
    }
    list = (size_t)p[0] << 8 | p[1];
    if (list + 2 != len || list < 3) {
        return 0;
    }
    p += 2;
    n = (size_t)p[1] << 8 | p[2];
    if (p[0] != TLSEXT_NAMETYPE_host_name || n == 0 || n + 3 > list
        || n >= size)
    {
        return 0;
    }
    p += 3;
    /* "example.com." names example.com. */
    if (p[n - 1] == '.') {
        n--;
    }
    if (n == 0 || memchr(p, '\0', n) != NULL) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        low[i] = ed_tolower((char)p[i]);
    }
    low[n] = '\0';
    return n;
}

/* The write side of a TLS stream's SSL: records go to the socket as the
 * socket BIO would send them, except while ed_tls_writev corks them (they
 * are then gathered for one write) or while the records of an earlier
 * write wait (they queue behind those). */
static int
ed_tls_bio_write(BIO *b, const char *data, int len)
{
    ed_tls_stream_t *t = BIO_get_data(b);
    char            *p;
    ssize_t          n;

    BIO_clear_retry_flags(b);
    if (t == ed_tls_corking) {
        if ((size_t)len > ED_TLS_CORK_SIZE - ed_tls_cork_len) {
            BIO_set_retry_write(b);
            return -1;
        }
        memcpy(ed_tls_cork + ed_tls_cork_len, data, (size_t)len);
        ed_tls_cork_len += (size_t)len;
        return len;
    }
    if (t->plen) {
        if ((size_t)len > UINT32_MAX - t->plen) {
            errno = ENOMEM;
            return -1;
        }
        p = realloc(t->pend, t->plen + (size_t)len);
        if (p == NULL) {
            return -1;
        }
        memcpy(p + t->plen, data, (size_t)len);
        t->pend = p;
        t->plen += (uint32_t)len;
        return len;
    }
    do {
        n = write(t->fd, data, (size_t)len);
    } while (n == -1 && errno == EINTR);
    if (n == -1 && errno == EAGAIN) {
        BIO_set_retry_write(b);
    }
    return (int)n;
}

static long
ed_tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    ed_tls_stream_t *t = BIO_get_data(b);

    ed_unused(num);
    ed_unused(ptr);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_WPENDING:
        return t == NULL ? 0 : (long)(t->plen - t->poff);
    default:
        return 0;
    }
}

static int
ed_tls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* The process's write BIO method and cork, made once. */
static int
ed_tls_bio_init(void)
{
    BIO_METHOD *m;

    if (ed_tls_wbio_method != NULL) {
        return ED_OK;
    }
    ed_tls_cork = malloc(ED_TLS_CORK_SIZE);
    m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                     "eddy stream");
    if (ed_tls_cork == NULL || m == NULL
        || !BIO_meth_set_write(m, ed_tls_bio_write)
        || !BIO_meth_set_ctrl(m, ed_tls_bio_ctrl)
        || !BIO_meth_set_create(m, ed_tls_bio_create))
    {
        free(ed_tls_cork);
        ed_tls_cork = NULL;
        BIO_meth_free(m);
        ERR_clear_error();
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "cannot make the TLS BIO");
        return ED_ERROR;
    }
    ed_tls_wbio_method = m;
    return ED_OK;
}

/* Puts the stream on ssl (ed_tls_stream_t): reads through a socket BIO,
 * writes through the stream's own. ED_OK, or ED_ERROR (logged): the
 * caller still owns ssl. */
static int
ed_tls_attach(ed_stream_t *s, SSL *ssl)
{
    ed_tls_stream_t *t;
    BIO             *rbio, *wbio;

    if (ed_tls_bio_init() != ED_OK) {
        return ED_ERROR;
    }
    t = calloc(1, sizeof(ed_tls_stream_t));
    if (t == NULL) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "malloc() failed");
        return ED_ERROR;
    }
    rbio = BIO_new_socket(s->ev.fd, BIO_NOCLOSE);
    wbio = BIO_new(ed_tls_wbio_method);
    if (rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        ERR_clear_error();
        free(t);
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "BIO_new() failed");
        return ED_ERROR;
    }
    BIO_set_data(wbio, t);
    SSL_set_bio(ssl, rbio, wbio);
    t->io = ed_tls_io;
    t->ssl = ssl;
    t->fd = s->ev.fd;
    s->io = &t->io;
    return ED_OK;
}

/* Returns ED_OK or ED_ERROR. */
int
ed_tls_accept(ed_stream_t *s, SSL_CTX *ctx, void *data)
{
    SSL *ssl;

    if (ed_tls_indexes() != ED_OK) {
        return ED_ERROR;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return ED_ERROR;
    }
    SSL_set_ex_data(ssl, ed_tls_index, data);
    SSL_set_accept_state(ssl);
    if (ed_tls_attach(s, ssl) != ED_OK) {
        SSL_free(ssl);
        return ED_ERROR;
    }
    return ED_OK;
}

/* Returns the data given to ed_tls_accept (NULL if none). */
void *
ed_tls_conn_data(SSL *ssl)
{
    return ed_tls_index < 0 ? NULL : SSL_get_ex_data(ssl, ed_tls_index);
}

/* The client side (https upstreams). */

/* Keeps the session a server just gave (a TLS 1.3 ticket may come
 * after the handshake, inside a later read) in the connection's slot,
 * replacing the older one. Returns 1: the slot owns the session. */
static int
ed_tls_on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_SESSION **slot = SSL_get_ex_data(ssl, ed_tls_index);

    if (slot == NULL) {
        return 0;
    }
    if (*slot != NULL) {
        SSL_SESSION_free(*slot);
    }
    *slot = sess;
    return 1;
}

/* Returns the context, or NULL with a message in err. */
SSL_CTX *
ed_tls_client_ctx(bool verify, const char *ca, char *err, size_t size)
{
    static const unsigned char h11[] = "\x08http/1.1";
    SSL_CTX                   *ctx;
    char                       reason[256];

    ERR_clear_error();
    errno = 0;
    if (ed_tls_indexes() != ED_OK) {
        ed_tls_reason(reason, sizeof(reason), NULL, NULL);
        snprintf(err, size, "cannot set TLS up: %s", reason);
        return NULL;
    }
    ctx = ed_tls_ctx_new(TLS_client_method(), err, size);
    if (ctx == NULL) {
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, ED_TLS_CIPHERS) != 1
        || SSL_CTX_set_alpn_protos(ctx, h11, sizeof(h11) - 1) != 0)
    {
        ed_tls_reason(reason, sizeof(reason), NULL, NULL);
        snprintf(err, size, "cannot set the TLS client up: %s", reason);
        goto failed;
    }
    /* Sessions are kept by the caller, one per server (the slots of
     * ed_tls_connect), not in OpenSSL's cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT
                                            | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, ed_tls_on_new_session);
    if (!verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca == NULL) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            ed_tls_reason(reason, sizeof(reason), NULL, NULL);
            snprintf(err, size, "cannot load the system's CA "
                     "certificates: %s", reason);
            goto failed;
        }
        return ctx;
    }
    if (ed_tls_file_check(ca, reason, sizeof(reason)) != ED_OK) {
        snprintf(err, size, "cannot load CA certificates \"%s\": %s", ca,
                 reason);
        goto failed;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        ed_tls_reason(reason, sizeof(reason), "certificate", NULL);
        snprintf(err, size, "cannot load CA certificates \"%s\": %s", ca,
                 reason);
        goto failed;
    }
    return ctx;

failed:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* Returns ED_OK or ED_ERROR. */
int
ed_tls_connect(ed_stream_t *s, SSL_CTX *ctx, const char *name, bool verify,
               SSL_SESSION **slot)
{
    unsigned char addr[sizeof(struct in6_addr)];
    bool          ip;
    SSL          *ssl;

    ssl = SSL_new(ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return ED_ERROR;
    }
    ip = inet_pton(AF_INET, name, addr) == 1
         || inet_pton(AF_INET6, name, addr) == 1;
    if (*name && !ip && SSL_set_tlsext_host_name(ssl, name) != 1) {
        goto failed;
    }
    if (verify && *name == '\0') {
        /* Verification without a name would take any trusted
         * certificate. */
        goto failed;
    }
    if (verify) {
        /* An address is checked against the certificate's IP names. */
        if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                     != 1
               : SSL_set1_host(ssl, name) != 1)
        {
            goto failed;
        }
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    if (slot != NULL && *slot != NULL && SSL_set_session(ssl, *slot) != 1) {
        goto failed;
    }
    SSL_set_ex_data(ssl, ed_tls_index, slot);
    SSL_set_connect_state(ssl);
    if (ed_tls_attach(s, ssl) != ED_OK) {
        goto failed;
    }
    return ED_OK;

failed:
    ERR_clear_error();
    SSL_free(ssl);
    return ED_ERROR;
}

/* Maps an SSL call's failure to the stream's results: ED_AGAIN, 0 (the
 * peer closed), or ED_ERROR with errno set (logged at info with
 * OpenSSL's reason). */
static ssize_t
ed_tls_result(SSL *ssl, int n, const char *call)
{
    char reason[256];
    int  e = SSL_get_error(ssl, n);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return ED_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (errno == 0) {
            errno = ECONNRESET;
        }
        return ED_ERROR;
    default:
        ed_tls_reason(reason, sizeof(reason), NULL, NULL);
        if (SSL_is_server(ssl)) {
            /* A client's trouble: worth a look only when debugging. */
            ed_log(ED_LOG_INFO, ed_log_cur, 0, "%s failed%s: %s", call,
                   SSL_is_init_finished(ssl) ? "" : " in the TLS handshake",
                   reason);
        } else if (SSL_get_verify_result(ssl) != X509_V_OK) {
            ed_log(ED_LOG_ERR, ed_log_cur, 0,
                   "upstream TLS certificate verify error: (%ld:%s)",
                   SSL_get_verify_result(ssl),
                   X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
        } else {
            ed_log(ED_LOG_ERR, ed_log_cur, 0, "%s to upstream failed%s: %s",
                   call,
                   SSL_is_init_finished(ssl) ? "" : " in the TLS handshake",
                   reason);
        }
        errno = EPROTO;
        return ED_ERROR;
    }
}

/* Reads records until len is filled or the socket is drained, so that a
 * short result means what it means for a plain socket: wait for the next
 * edge. */
static ssize_t
ed_tls_recv(ed_stream_t *s, char *buf, size_t len)
{
    SSL    *ssl = ed_tls_ssl(s);
    size_t  got = 0;
    int     n;
    ssize_t rc;

    while (got < len) {
        errno = 0;
        n = SSL_read(ssl, buf + got, (int)ed_min(len - got, INT_MAX));
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        rc = ed_tls_result(ssl, n, "SSL_read()");
        if (got) {
            /* An end or an error shows again on the next call; the short
             * read must not make the stream wait for an edge that will
             * not come, so mark the peer done as RDHUP would. */
            if (rc != ED_AGAIN) {
                s->rdhup = 1;
            }
            return (ssize_t)got;
        }
        return rc;
    }
    return (ssize_t)got;
}

/* Skips n bytes of the vector from (*i, *off). */
static void
ed_tls_iov_advance(const struct iovec *iov, int cnt, int *i, size_t *off,
                   size_t n)
{
    while (*i < cnt && n >= iov[*i].iov_len - *off) {
        n -= iov[*i].iov_len - *off;
        (*i)++;
        *off = 0;
    }
    *off += n;
}

/* Writes what waits in t->pend. ED_OK when all of it is out, ED_AGAIN,
 * or ED_ERROR (errno set). */
static int
ed_tls_pend_out(ed_tls_stream_t *t)
{
    ssize_t n;

    while (t->poff < t->plen) {
        n = write(t->fd, t->pend + t->poff, t->plen - t->poff);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN ? ED_AGAIN : ED_ERROR;
        }
        t->poff += (uint32_t)n;
    }
    free(t->pend);
    t->pend = NULL;
    t->plen = 0;
    t->poff = 0;
    return ED_OK;
}

/* Writes the cork with one write(); what the socket does not take moves
 * to t->pend. ED_OK (all out), ED_AGAIN (kept), ED_ERROR (errno). */
static int
ed_tls_cork_out(ed_tls_stream_t *t)
{
    size_t  len = ed_tls_cork_len;
    ssize_t n;

    ed_tls_cork_len = 0;
    if (len == 0) {
        return ED_OK;
    }
    do {
        n = write(t->fd, ed_tls_cork, len);
    } while (n == -1 && errno == EINTR);
    if (n == -1 && errno != EAGAIN) {
        return ED_ERROR;
    }
    if (n == (ssize_t)len) {
        return ED_OK;
    }
    n = n < 0 ? 0 : n;
    t->pend = malloc(len - (size_t)n);
    if (t->pend == NULL) {
        return ED_ERROR;
    }
    memcpy(t->pend, ed_tls_cork + n, len - (size_t)n);
    t->plen = (uint32_t)(len - (size_t)n);
    t->poff = 0;
    return ED_AGAIN;
}

/* Encrypts from (*i, *off) of the vector into the cork, up to
 * ED_TLS_CORK_PLAIN bytes, in as few records as possible: a piece of
 * ED_TLS_WBUF bytes or more goes to SSL_write as it is, smaller pieces
 * are first coalesced into one buffer of up to ED_TLS_WBUF. A full cork
 * is written out in between. Returns the plaintext bytes taken;
 * *rc is ED_OK, or what stopped it (ED_AGAIN: the socket is full, or the
 * handshake waits for the peer; 0: the peer's close_notify came in;
 * ED_ERROR). */
static size_t
ed_tls_encrypt(ed_tls_stream_t *t, const struct iovec *iov, int cnt, int *i,
               size_t *off, ssize_t *rc)
{
    char        buf[ED_TLS_WBUF];
    const char *p;
    size_t      len, take, done = 0, w, o;
    int         j, n;

    *rc = ED_OK;
    while (*i < cnt && done < ED_TLS_CORK_PLAIN) {
        if (iov[*i].iov_len - *off >= ED_TLS_WBUF) {
            p = (const char *)iov[*i].iov_base + *off;
            len = ed_min(iov[*i].iov_len - *off, ED_TLS_CORK_PLAIN - done);
        } else {
            len = 0;
            for (j = *i, o = *off; j < cnt && len < ED_TLS_WBUF; j++, o = 0) {
                take = ed_min(iov[j].iov_len - o, ED_TLS_WBUF - len);
                memcpy(buf + len, (const char *)iov[j].iov_base + o, take);
                len += take;
            }
            p = buf;
        }
        if (len == 0) {
            break;
        }
        for (w = 0; w < len; w += (size_t)n) {
            errno = 0;
            n = SSL_write(t->ssl, p + w, (int)ed_min(len - w, INT_MAX));
            if (n > 0) {
                continue;
            }
            *rc = ed_tls_result(t->ssl, n, "SSL_write()");
            if (*rc == ED_AGAIN && ed_tls_cork_len > 0
                && SSL_get_error(t->ssl, n) == SSL_ERROR_WANT_WRITE)
            {
                /* The cork is full: out with it, then the same write
                 * again. */
                *rc = ed_tls_cork_out(t);
                if (*rc == ED_OK) {
                    n = 0;
                    continue;
                }
                if (*rc == ED_ERROR) {
                    t->broken = 1;   /* as in ed_tls_writev */
                }
            }
            ed_tls_iov_advance(iov, cnt, i, off, w);
            return done + w;
        }
        done += len;
        ed_tls_iov_advance(iov, cnt, i, off, len);
    }
    return done;
}

/* Writes the vector: its records (with what the handshake sends) go out
 * with one write() per ED_TLS_CORK_PLAIN bytes, until it is all written
 * or the socket is full, so that a short result means what it means for
 * a plain socket (EPOLLOUT will come). Records the socket did not take
 * stay in t->pend for the next call, and the plaintext they hold (the
 * first t->ahead bytes the stream offers again) counts as written once
 * they are out; the stream offers its queue again from the first
 * unwritten byte, so a retried SSL_write sees the same bytes. Returns
 * the bytes written, ED_AGAIN or ED_ERROR. */
static ssize_t
ed_tls_writev(ed_stream_t *s, const struct iovec *iov, int cnt)
{
    ed_tls_stream_t *t = (ed_tls_stream_t *)s->io;
    size_t           done = 0, off = 0, enc;
    ssize_t          rc;
    int              i = 0, out;

    if (t->broken) {
        errno = EPIPE;
        return ED_ERROR;
    }
    if (t->plen) {
        out = ed_tls_pend_out(t);
        if (out != ED_OK) {
            return out;
        }
        done = t->ahead;
        t->ahead = 0;
        ed_tls_iov_advance(iov, cnt, &i, &off, done);
    }
    while (i < cnt) {
        ed_tls_cork_len = 0;
        ed_tls_corking = t;
        enc = ed_tls_encrypt(t, iov, cnt, &i, &off, &rc);
        ed_tls_corking = NULL;
        /* A full cork the socket did not take moved to t->pend. */
        out = t->plen ? ED_AGAIN : ed_tls_cork_out(t);
        if (out == ED_AGAIN) {
            /* Counted once the socket takes the rest. */
            t->ahead = enc;
            return done ? (ssize_t)done : ED_AGAIN;
        }
        if (out == ED_ERROR) {
            /* Records were lost (the socket failed, or no memory for
             * what it did not take): anything written after them would
             * be garbage to the peer. */
            t->broken = 1;
            return done ? (ssize_t)done : ED_ERROR;
        }
        done += enc;
        if (rc != ED_OK) {
            if (done > 0) {
                /* An error shows again on the next call. */
                return (ssize_t)done;
            }
            if (rc == 0) {
                /* The peer's close_notify came in: no more writes. */
                errno = EPIPE;
                return ED_ERROR;
            }
            return rc;
        }
        if (enc == 0) {
            break;
        }
    }
    return (ssize_t)done;
}

/* Sends close_notify once, without waiting for the peer's. */
static void
ed_tls_notify(SSL *ssl)
{
    if (SSL_is_init_finished(ssl)
        && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
    {
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
}

void
ed_tls_shutdown_write(ed_stream_t *s)
{
    SSL *ssl = ed_tls_ssl(s);

    if (ssl != NULL && !s->error) {
        ed_tls_notify(ssl);
    }
    shutdown(s->ev.fd, SHUT_WR);
}

static void
ed_tls_close(ed_stream_t *s)
{
    SSL *ssl = ed_tls_ssl(s);

    if (ssl == NULL) {
        return;
    }
    /* After a fatal error OpenSSL must not send anything more. */
    if (!s->error) {
        ed_tls_notify(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    free(((ed_tls_stream_t *)s->io)->pend);
    free(ed_container_of(s->io, ed_tls_stream_t, io));
    s->io = &ed_stream_plain_io;
}

const ed_stream_io_t ed_tls_io = {
    .recv = ed_tls_recv,
    .writev = ed_tls_writev,
    .close = ed_tls_close,
    .cross = 1,
};
