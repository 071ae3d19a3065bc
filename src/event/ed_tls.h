/* TLS through OpenSSL under ed_stream: server contexts from certificate
 * files, client contexts for upstreams, a stream transport that drives the handshake and records
 * non-blockingly, and session ticket keys shared by every process. */
#ifndef ED_TLS_H
#define ED_TLS_H

#include "ed_stream.h"

#include <openssl/ssl.h>

#define ED_TLS_V12 0x01
#define ED_TLS_V13 0x02

/* What a failed ed_tls_server_ctx was about, so that the configuration
 * error points at the right key. */
enum {
    ED_TLS_ERR_OTHER = 0,
    ED_TLS_ERR_CERT,      /* the certificate file */
    ED_TLS_ERR_KEY,       /* the key file, or a key that does not match */
    ED_TLS_ERR_CIPHERS    /* the cipher string */
};

/* How long a ticket key encrypts new tickets; it then decrypts for one
 * more period. */
#define ED_TLS_KEY_ROTATE_MSEC (3600 * 1000)

/* Creates a server context for a certificate chain (leaf first) and its
 * key, for the protocols (ED_TLS_* bits) and cipher list (NULL: a modern
 * default; the string must outlive the context). Session tickets (if
 * tickets) use the shared keys of ed_tls_keys_init. Returns the context,
 * or NULL with a message in err (size bytes) and *what set to an
 * ED_TLS_ERR_* value: a file that cannot be read, a key that does not
 * match, bad ciphers. */
SSL_CTX *ed_tls_server_ctx(const char *cert, const char *key,
                           unsigned protocols, const char *ciphers,
                           bool tickets, char *err, size_t size, int *what);
/* Moves a connection in its handshake to another server context (SNI):
 * certificate, session id context, protocols, options and ciphers.
 * Returns ED_OK or ED_ERROR. */
int ed_tls_switch_ctx(SSL *ssl, SSL_CTX *ctx);
/* Finds the host name in the raw server_name extension of a ClientHello
 * (ext, len bytes; untrusted: OpenSSL has not parsed it yet) and writes
 * it lowercased and NUL-terminated into low (size bytes), a trailing dot
 * dropped. Returns its length, or 0 when there is none, it is malformed,
 * holds a NUL or does not fit (OpenSSL rejects malformed ones later). */
size_t ed_tls_sni(const unsigned char *ext, size_t len, char *low,
                  size_t size);
/* Puts a TLS server session on an initialised stream: the handshake runs
 * inside the first reads and writes. data is kept for callbacks
 * (ed_tls_conn_data). Returns ED_OK or ED_ERROR. */
int ed_tls_accept(ed_stream_t *s, SSL_CTX *ctx, void *data);
/* Creates a client context (https upstreams): TLS 1.2 and 1.3, ALPN
 * http/1.1, sessions kept in the slots given to ed_tls_connect. With
 * verify, servers must show a certificate chaining to the CA file ca (NULL:
 * the system's store). Returns the context, or NULL with a message in
 * err (size bytes). */
SSL_CTX *ed_tls_client_ctx(bool verify, const char *ca, char *err,
                           size_t size);
/* Puts a TLS client session on an initialised stream (its socket may
 * still be connecting): the handshake runs inside the first writes and
 * reads. name is sent as SNI unless it is "" or an IP address; with
 * verify the certificate must match it (and "" is refused). slot (may be NULL) holds
 * the session to resume and receives the server's new ones; it must
 * outlive the stream. Returns ED_OK or ED_ERROR. */
int ed_tls_connect(ed_stream_t *s, SSL_CTX *ctx, const char *name,
                   bool verify, SSL_SESSION **slot);
/* The data given to ed_tls_accept, from inside an OpenSSL callback. */
void *ed_tls_conn_data(SSL *ssl);
/* Shuts the write side of a stream down (lingering close): a TLS stream
 * sends its close_notify first, so the peer sees a clean end. */
void ed_tls_shutdown_write(ed_stream_t *s);
/* A TLS stream's transport, a block of its own per connection that
 * s->io points to (plain streams carry no pointer for TLS state): a copy
 * of ed_tls_io, the SSL object, and the records of a write the socket did
 * not take whole (pend: ciphertext of the first `ahead` bytes the stream
 * still offers, written before anything else). */
typedef struct {
    ed_stream_io_t  io;
    SSL            *ssl;
    int             fd;
    uint32_t        plen;   /* bytes in pend */
    uint32_t        poff;   /* of which written */
    char           *pend;
    size_t          ahead;  /* plaintext bytes encrypted into pend */
    unsigned        broken; /* records were lost: no more writes */
} ed_tls_stream_t;

/* The SSL object of a TLS stream, NULL for a plain one. */
#define ed_tls_ssl(s)                                                        \
    ((s)->io->recv == ed_tls_io.recv ? ((const ed_tls_stream_t *)(s)->io)->ssl \
                                     : NULL)
/* Whether a TLS stream's handshake is still to finish. */
#define ed_tls_handshaking(s)                                                \
    (ed_tls_ssl(s) != NULL && !SSL_is_init_finished(ed_tls_ssl(s)))

extern const ed_stream_io_t ed_tls_io;

/* Session ticket keys (ed_tls_keys.c). The master makes them in shared
 * memory before it forks, so a ticket made by one worker is accepted by
 * every other one, and by the workers of later reloads. */

/* Creates the shared keys once per process; later calls do nothing.
 * Returns ED_OK, or ED_ERROR (errno) when memory cannot be mapped or no
 * random bytes are available. */
int ed_tls_keys_init(void);
/* The bytes of the shared ticket keys' mapping (the memory estimate). */
size_t ed_tls_keys_size(void);
/* Makes a new encrypting key; the current one is kept for decrypting
 * tickets until the next rotation. Returns ED_OK, or ED_ERROR without
 * keys or random bytes. */
int ed_tls_keys_rotate(void);
/* Makes ctx encrypt and decrypt tickets with the shared keys. Returns
 * ED_OK or ED_ERROR (no keys: ed_tls_keys_init failed or was not run). */
int ed_tls_keys_use(SSL_CTX *ctx);
/* In the child forked for a binary upgrade, just before exec: passes
 * the keys on (EDDY_TLS_KEYS), so sessions resume on the new binary. */
void ed_tls_keys_pass_on(void);
/* Rotates the keys every ED_TLS_KEY_ROTATE_MSEC from the master's loop. */
void ed_tls_keys_timer(ed_loop_t *loop);

/* Ticket keys from files (ed_tls_key_files.c, session_ticket_key_file):
 * nginx's 48- and 80-byte layouts; the first key encrypts, all decrypt.
 * They replace the shared keys above for the contexts given them. */
typedef struct ed_tls_ticket_keys_s ed_tls_ticket_keys_t;

/* Room for max keys in pool, wiped when the pool goes. Returns it, or
 * NULL (ENOMEM). */
ed_tls_ticket_keys_t *ed_tls_ticket_keys_create(ed_pool_t *pool,
                                                size_t max);
/* Adds the key of the file at path (kept as it is, for messages). *mode
 * gets the file's permission bits (0 when it could not be opened).
 * Returns ED_OK, or ED_ERROR with a message in err (size bytes): the
 * file cannot be read, is not 48 or 80 bytes, or repeats the name of a
 * key already added. The key bytes never go into a message. */
int ed_tls_ticket_keys_read(ed_tls_ticket_keys_t *keys, const char *path,
                            unsigned *mode, char *err, size_t size);
/* Makes ctx encrypt and decrypt tickets with keys (which must outlive
 * it) instead of the shared keys. Returns ED_OK or ED_ERROR. */
int ed_tls_ticket_keys_use(SSL_CTX *ctx, const ed_tls_ticket_keys_t *keys);

#endif /* ED_TLS_H */
