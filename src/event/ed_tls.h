/* TLS through OpenSSL under ed_stream: server contexts from certificate
 * files, and a stream transport that drives the handshake and records
 * non-blockingly. */
#ifndef ED_TLS_H
#define ED_TLS_H

#include "ed_stream.h"

#include <openssl/ssl.h>

#define ED_TLS_V12 0x01
#define ED_TLS_V13 0x02

/* Creates a server context for a certificate chain (leaf first) and its
 * key, for the protocols (ED_TLS_* bits) and cipher list (NULL: a modern
 * default). NULL with a message in err (size bytes) on failure: a file
 * that cannot be read, a key that does not match, bad ciphers. */
SSL_CTX *ed_tls_server_ctx(const char *cert, const char *key,
                           unsigned protocols, const char *ciphers,
                           bool tickets, char *err, size_t size);
/* Puts a TLS server session on an initialised stream: the handshake runs
 * inside the first reads and writes. data is kept for callbacks
 * (ed_tls_conn_data). ED_OK or ED_ERROR. */
int ed_tls_accept(ed_stream_t *s, SSL_CTX *ctx, void *data);
/* The data given to ed_tls_accept, from inside an OpenSSL callback. */
void *ed_tls_conn_data(SSL *ssl);
/* The SSL object of a TLS stream, NULL for a plain one. */
#define ed_tls_ssl(s) ((SSL *)((s)->io_data))

extern const ed_stream_io_t ed_tls_io;

#endif /* ED_TLS_H */
