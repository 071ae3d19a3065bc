/* TLS through OpenSSL under ed_stream: server contexts from certificate
 * files, and a stream transport that drives the handshake and records
 * non-blockingly. */
#include "ed_tls.h"

#include <openssl/err.h>

/* TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 has its own
 * modern defaults). */
#define ED_TLS_CIPHERS                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"             \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"             \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Bytes coalesced into one SSL_write: one record for a whole response. */
#define ED_TLS_WBUF 16384

static int ed_tls_index = -1;

/* Copies OpenSSL's last error into err. */
static void
ed_tls_error(char *err, size_t size, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char          msg[256];

    if (e) {
        ERR_error_string_n(e, msg, sizeof(msg));
    } else {
        snprintf(msg, sizeof(msg), "%s", strerror(errno));
    }
    ERR_clear_error();
    snprintf(err, size, "%s %s: %s", what, file, msg);
}

SSL_CTX *
ed_tls_server_ctx(const char *cert, const char *key, unsigned protocols,
                  const char *ciphers, bool tickets, char *err, size_t size)
{
    SSL_CTX *ctx;

    if (ed_tls_index < 0) {
        ed_tls_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ed_tls_error(err, size, "cannot create a TLS context for", cert);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, (protocols & ED_TLS_V12)
                                           ? TLS1_2_VERSION
                                           : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, (protocols & ED_TLS_V13)
                                           ? TLS1_3_VERSION
                                           : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE
                                 | SSL_OP_NO_RENEGOTIATION
                                 | SSL_OP_NO_COMPRESSION);
    if (!tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    /* Partial writes with a moving buffer: the stream re-offers what is
     * left from its own queue. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                              | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : ED_TLS_CIPHERS)
        != 1)
    {
        ed_tls_error(err, size, "invalid ciphers", ciphers ? ciphers : "");
        goto failed;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ed_tls_error(err, size, "cannot load certificate", cert);
        goto failed;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ed_tls_error(err, size, "cannot load key", key);
        goto failed;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ed_tls_error(err, size, "key does not match the certificate", cert);
        goto failed;
    }
    /* The session cache is per process: resumption across workers goes
     * through tickets, whose keys every worker inherits from the master
     * that made this context before forking. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"eddy", 4);
    return ctx;

failed:
    SSL_CTX_free(ctx);
    return NULL;
}

int
ed_tls_accept(ed_stream_t *s, SSL_CTX *ctx, void *data)
{
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL) {
        ERR_clear_error();
        return ED_ERROR;
    }
    if (SSL_set_fd(ssl, s->ev.fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return ED_ERROR;
    }
    SSL_set_ex_data(ssl, ed_tls_index, data);
    SSL_set_accept_state(ssl);
    s->io = &ed_tls_io;
    s->io_data = ssl;
    return ED_OK;
}

void *
ed_tls_conn_data(SSL *ssl)
{
    return SSL_get_ex_data(ssl, ed_tls_index);
}

/* Maps an SSL call's failure to the stream's results. */
static ssize_t
ed_tls_result(SSL *ssl, int n)
{
    int e = SSL_get_error(ssl, n);

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
        ERR_clear_error();
        errno = EPROTO;
        return ED_ERROR;
    }
}

/* Reads records until len is filled or the socket is drained, so that a
 * short result means what it means for a plain socket. */
static ssize_t
ed_tls_recv(ed_stream_t *s, char *buf, size_t len)
{
    SSL    *ssl = s->io_data;
    size_t  got = 0;
    int     n;
    ssize_t rc;

    while (got < len) {
        errno = 0;
        n = SSL_read(ssl, buf + got, (int)ed_min(len - got, INT32_MAX));
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        rc = ed_tls_result(ssl, n);
        if (got) {
            return (ssize_t)got;
        }
        return rc;
    }
    return (ssize_t)got;
}

/* Writes the vector as few records as possible: small pieces are
 * coalesced into one buffer first. */
static ssize_t
ed_tls_writev(ed_stream_t *s, const struct iovec *iov, int cnt)
{
    SSL        *ssl = s->io_data;
    char        buf[ED_TLS_WBUF];
    const char *p;
    size_t      len = 0, done = 0;
    int         i, n;

    if (cnt == 1 || iov[0].iov_len >= ED_TLS_WBUF) {
        p = iov[0].iov_base;
        len = iov[0].iov_len;
    } else {
        for (i = 0; i < cnt && len < ED_TLS_WBUF; i++) {
            size_t take = ed_min(iov[i].iov_len, ED_TLS_WBUF - len);

            memcpy(buf + len, iov[i].iov_base, take);
            len += take;
        }
        p = buf;
    }
    while (done < len) {
        errno = 0;
        n = SSL_write(ssl, p + done, (int)ed_min(len - done, INT32_MAX));
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (done) {
            break;
        }
        return ed_tls_result(ssl, n);
    }
    return (ssize_t)done;
}

static void
ed_tls_close(ed_stream_t *s)
{
    SSL *ssl = s->io_data;

    if (ssl == NULL) {
        return;
    }
    /* One non-blocking close_notify: a clean end for the peer, without
     * waiting for its answer. */
    if (SSL_is_init_finished(ssl) && !s->error) {
        SSL_set_quiet_shutdown(ssl, 0);
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    s->io_data = NULL;
}

const ed_stream_io_t ed_tls_io = {
    .recv = ed_tls_recv,
    .writev = ed_tls_writev,
    .close = ed_tls_close,
    .cross = 1,
};
