/* Session ticket keys in shared memory: made by the master before it
 * forks, rotated by the master, used by every worker to encrypt and
 * decrypt tickets, so a session resumes on any worker and across
 * reloads. */
#include "ed_tls.h"
#include "ed_shm.h"

#include <stdatomic.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Three slots used as a ring: the current key encrypts, the one before
 * it still decrypts, and the master writes the next key into the third,
 * which no worker has read for a whole rotation period. So no lock is
 * needed between the master writing and the workers reading. */
#define ED_TLS_KEY_SLOTS 3

typedef struct {
    unsigned char name[16];   /* sent in the ticket to find the key */
    unsigned char aes[32];    /* AES-256-CBC */
    unsigned char hmac[32];   /* HMAC-SHA256 */
} ed_tls_key_t;

typedef struct {
    /* Rotations so far; slot current % ED_TLS_KEY_SLOTS encrypts. */
    _Atomic unsigned current;
    ed_tls_key_t     keys[ED_TLS_KEY_SLOTS];
} ed_tls_keys_t;

/* The mapping, inherited by every process forked after it was made;
 * never unmapped, so reloads keep it. */
static ed_tls_keys_t *ed_tls_keys;
static ed_timer_t     ed_tls_keys_rotate_timer;

/* Fills a slot with fresh random key material. Returns ED_OK, or
 * ED_ERROR when the random generator fails. */
static int
ed_tls_key_make(ed_tls_key_t *k)
{
    ed_tls_key_t tmp;

    if (RAND_bytes((unsigned char *)&tmp, sizeof(tmp)) != 1) {
        ERR_clear_error();
        errno = EIO;
        return ED_ERROR;
    }
    memcpy(k, &tmp, sizeof(tmp));
    OPENSSL_cleanse(&tmp, sizeof(tmp));
    return ED_OK;
}

/* Returns ED_OK or ED_ERROR (errno). */
int
ed_tls_keys_init(void)
{
    static ed_pool_t *pool;
    ed_tls_keys_t    *keys;
    size_t            i;

    if (ed_tls_keys != NULL) {
        return ED_OK;
    }
    /* A pool of the process's lifetime: the mapping must outlive every
     * cycle, since tickets outlive reloads. */
    if (pool == NULL) {
        pool = ed_pool_create(512);
        if (pool == NULL) {
            errno = ENOMEM;
            return ED_ERROR;
        }
    }
    keys = ed_shm_alloc(pool, sizeof(ed_tls_keys_t));
    if (keys == NULL) {
        return ED_ERROR;
    }
    /* Every slot gets a random key, also those not in use yet: a ticket
     * naming an all-zero key must never decrypt. */
    for (i = 0; i < ED_TLS_KEY_SLOTS; i++) {
        if (ed_tls_key_make(&keys->keys[i]) != ED_OK) {
            return ED_ERROR;
        }
    }
    atomic_init(&keys->current, 0);
    ed_tls_keys = keys;
    return ED_OK;
}

/* Returns ED_OK, or ED_ERROR (no keys, or no random bytes). */
int
ed_tls_keys_rotate(void)
{
    unsigned next;

    if (ed_tls_keys == NULL) {
        return ED_ERROR;
    }
    next = atomic_load_explicit(&ed_tls_keys->current, memory_order_relaxed)
           + 1;
    if (ed_tls_key_make(&ed_tls_keys->keys[next % ED_TLS_KEY_SLOTS])
        != ED_OK)
    {
        return ED_ERROR;
    }
    /* Publishes the key after its bytes. */
    atomic_store_explicit(&ed_tls_keys->current, next, memory_order_release);
    return ED_OK;
}

/* OpenSSL's ticket key callback. enc: picks the current key, a random
 * IV and the key's name. Otherwise finds the key by name. Returns 1 (key
 * set), 2 (key set, and OpenSSL is to issue a fresh ticket), 0 (no such
 * key: a full handshake), or -1 on failure. */
static int
ed_tls_keys_ticket(SSL *ssl, unsigned char name[16], unsigned char *iv,
                   EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const EVP_CIPHER *cipher = EVP_aes_256_cbc();
    ed_tls_key_t     *k;
    OSSL_PARAM        params[3];
    unsigned          cur;
    int               rc = 1;

    if (ed_tls_keys == NULL) {
        return enc ? -1 : 0;
    }
    cur = atomic_load_explicit(&ed_tls_keys->current, memory_order_acquire);
    k = &ed_tls_keys->keys[cur % ED_TLS_KEY_SLOTS];
    if (enc) {
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1) {
            return -1;
        }
        memcpy(name, k->name, sizeof(k->name));
        if (EVP_EncryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1) {
            return -1;
        }
    } else {
        if (memcmp(name, k->name, sizeof(k->name)) != 0) {
            /* The previous key, kept for one period. */
            k = &ed_tls_keys->keys[(cur + ED_TLS_KEY_SLOTS - 1)
                                   % ED_TLS_KEY_SLOTS];
            if (memcmp(name, k->name, sizeof(k->name)) != 0) {
                return 0;
            }
            rc = 2;
        }
        if (EVP_DecryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1) {
            return -1;
        }
        /* TLS 1.3 clients use a ticket once (RFC 8446 C.4; OpenSSL's
         * client cache drops it): without a fresh one after each
         * resumption, only every other connection would resume. OpenSSL
         * renews by itself only with its internal keys. */
        if (SSL_version(ssl) == TLS1_3_VERSION) {
            rc = 2;
        }
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                  k->hmac, sizeof(k->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1) {
        return -1;
    }
    return rc;
}

/* Returns ED_OK or ED_ERROR. */
int
ed_tls_keys_use(SSL_CTX *ctx)
{
    if (ed_tls_keys == NULL
        || SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ed_tls_keys_ticket)
               != 1)
    {
        ERR_clear_error();
        return ED_ERROR;
    }
    return ED_OK;
}

static void
ed_tls_keys_on_timer(ed_timer_t *t)
{
    ed_loop_t *loop = t->data;

    /* Nothing to rotate until a configuration with tickets made keys. */
    if (ed_tls_keys != NULL && ed_tls_keys_rotate() != ED_OK) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno,
               "rotating the TLS session ticket keys failed");
    }
    ed_timer_add(loop, t, ED_TLS_KEY_ROTATE_MSEC);
}

void
ed_tls_keys_timer(ed_loop_t *loop)
{
    ed_tls_keys_rotate_timer.handler = ed_tls_keys_on_timer;
    ed_tls_keys_rotate_timer.data = loop;
    ed_timer_add(loop, &ed_tls_keys_rotate_timer, ED_TLS_KEY_ROTATE_MSEC);
}
