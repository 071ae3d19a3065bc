/* Session ticket keys from files (session_ticket_key_file), in nginx's
 * layouts, so that the nginx and eddy hosts of a fleet given the same
 * files resume each other's sessions:
 *   80 bytes: name 16, HMAC-SHA256 key 32, AES-256-CBC key 32;
 *   48 bytes: name 16, AES-128-CBC key 16, HMAC-SHA256 key 16.
 * The first key encrypts, every key decrypts. The keys live in the
 * configuration's pool: the master reads them at start and reload, the
 * workers it forks inherit them, and nothing rotates them. */
#include "ed_tls.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define ED_TLS_FILE_KEY_LONG  80
#define ED_TLS_FILE_KEY_SHORT 48

typedef struct {
    unsigned char  name[16];
    unsigned char  aes[32];
    unsigned char  hmac[32];
    size_t         size;      /* of the file: 48 or 80 */
    const char    *path;      /* for messages */
} ed_tls_file_key_t;

struct ed_tls_ticket_keys_s {
    size_t             n;
    size_t             max;
    ed_tls_file_key_t  keys[];
};

static int ed_tls_ticket_keys_index = -1;  /* SSL_CTX ex data */

/* Wipes the keys when the configuration's pool goes. */
static void
ed_tls_ticket_keys_cleanup(void *data)
{
    ed_tls_ticket_keys_t *keys = data;

    OPENSSL_cleanse(keys->keys, keys->max * sizeof(ed_tls_file_key_t));
}

ed_tls_ticket_keys_t *
ed_tls_ticket_keys_create(ed_pool_t *pool, size_t max)
{
    ed_tls_ticket_keys_t *keys;

    keys = ed_pcalloc(pool, sizeof(ed_tls_ticket_keys_t)
                                + max * sizeof(ed_tls_file_key_t));
    if (keys == NULL
        || ed_pool_cleanup_add(pool, ed_tls_ticket_keys_cleanup, keys)
               != ED_OK)
    {
        return NULL;
    }
    keys->max = max;
    return keys;
}

/* Reads exactly len bytes at the start of fd. Returns ED_OK, or ED_ERROR
 * (errno; 0 for a file shorter than it said). */
static int
ed_tls_read_all(int fd, unsigned char *buf, size_t len)
{
    size_t  got = 0;
    ssize_t n;

    while (got < len) {
        n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = 0;
            }
            return ED_ERROR;
        }
        got += (size_t)n;
    }
    return ED_OK;
}

int
ed_tls_ticket_keys_read(ed_tls_ticket_keys_t *keys, const char *path,
                        unsigned *mode, char *err, size_t size)
{
    ed_tls_file_key_t *k;
    unsigned char      buf[ED_TLS_FILE_KEY_LONG];
    struct stat        st;
    size_t             i, len;
    int                fd, rc = ED_ERROR;

    *mode = 0;
    if (keys->n == keys->max) {
        snprintf(err, size, "too many session ticket key files");
        return ED_ERROR;
    }
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer, the master blocked with every signal waiting; it is then
     * refused as not a regular file. Reads of a regular file ignore it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, size, "cannot read session ticket key file \"%s\": %s",
                 path, strerror(errno));
        goto done;
    }
    *mode = st.st_mode & 07777;
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, size, "session ticket key file \"%s\" is not a "
                 "regular file", path);
        goto done;
    }
    if (st.st_size != ED_TLS_FILE_KEY_LONG
        && st.st_size != ED_TLS_FILE_KEY_SHORT)
    {
        snprintf(err, size, "session ticket key file \"%s\" must be 48 or "
                 "80 bytes, got %lld", path, (long long)st.st_size);
        goto done;
    }
    len = (size_t)st.st_size;
    if (ed_tls_read_all(fd, buf, len) != ED_OK) {
        snprintf(err, size, "cannot read session ticket key file \"%s\": %s",
                 path, errno ? strerror(errno) : "it shrank while read");
        goto done;
    }
    for (i = 0; i < keys->n; i++) {
        if (memcmp(keys->keys[i].name, buf, 16) == 0) {
            snprintf(err, size, "session ticket key file \"%s\" repeats "
                     "the key name of \"%s\"", path, keys->keys[i].path);
            goto done;
        }
    }
    k = &keys->keys[keys->n];
    memcpy(k->name, buf, 16);
    if (len == ED_TLS_FILE_KEY_SHORT) {
        memcpy(k->aes, buf + 16, 16);
        memcpy(k->hmac, buf + 32, 16);
    } else {
        memcpy(k->hmac, buf + 16, 32);
        memcpy(k->aes, buf + 48, 32);
    }
    k->size = len;
    k->path = path;
    keys->n++;
    rc = ED_OK;

done:
    OPENSSL_cleanse(buf, sizeof(buf));
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

/* Sets the cipher and MAC of one key, as nginx does for its size.
 * Returns 1, or -1 on failure. */
static int
ed_tls_file_key_init(const ed_tls_file_key_t *k, unsigned char *iv,
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const EVP_CIPHER *cipher;
    OSSL_PARAM        params[3];
    size_t            klen;

    if (k->size == ED_TLS_FILE_KEY_SHORT) {
        cipher = EVP_aes_128_cbc();
        klen = 16;
    } else {
        cipher = EVP_aes_256_cbc();
        klen = 32;
    }
    if (enc) {
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1
            || EVP_EncryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1)
        {
            return -1;
        }
    } else if (EVP_DecryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1) {
        return -1;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                  (void *)k->hmac, klen);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 1 : -1;
}

/* OpenSSL's ticket key callback with keys from files. enc: the first key,
 * a random IV, its name. Otherwise the key of the ticket's name. Returns
 * 1 (key set), 2 (key set, and a fresh ticket is to be issued: TLS 1.3,
 * whose clients use a ticket once, or a key that no longer encrypts), 0
 * (no such key: a full handshake), or -1 on failure. */
static int
ed_tls_ticket_keys_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const ed_tls_ticket_keys_t *keys;
    size_t                      i;

    /* Every context of one configuration has the same keys, so the one
     * SNI chose answers as the one the connection started on. */
    keys = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                               ed_tls_ticket_keys_index);
    if (keys == NULL || keys->n == 0) {
        return enc ? -1 : 0;
    }
    if (enc) {
        memcpy(name, keys->keys[0].name, 16);
        return ed_tls_file_key_init(&keys->keys[0], iv, cctx, hctx, 1);
    }
    for (i = 0; i < keys->n; i++) {
        if (memcmp(name, keys->keys[i].name, 16) == 0) {
            break;
        }
    }
    if (i == keys->n) {
        return 0;
    }
    if (ed_tls_file_key_init(&keys->keys[i], iv, cctx, hctx, 0) != 1) {
        return -1;
    }
    return i != 0 || SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
}

int
ed_tls_ticket_keys_use(SSL_CTX *ctx, const ed_tls_ticket_keys_t *keys)
{
    if (ed_tls_ticket_keys_index < 0) {
        ed_tls_ticket_keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL,
                                                            NULL, NULL);
    }
    if (ed_tls_ticket_keys_index < 0
        || SSL_CTX_set_ex_data(ctx, ed_tls_ticket_keys_index, (void *)keys)
               != 1
        || SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ed_tls_ticket_keys_cb)
               != 1)
    {
        ERR_clear_error();
        return ED_ERROR;
    }
    return ED_OK;
}
