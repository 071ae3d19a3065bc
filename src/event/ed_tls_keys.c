/* Session ticket keys in shared memory: made by the master before it
 * forks, rotated by the master, used by every worker to encrypt and
 * decrypt tickets, so a session resumes on any worker, across reloads
 * and across a binary upgrade (the memory is a memfd whose descriptor a
 * new binary inherits through EDDY_TLS_KEYS). Keys from files
 * (session_ticket_key_file, ed_tls_key_files.c) replace these in the
 * contexts they are given to. */
#include "ed_tls.h"
#include "ed_shm.h"

#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

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

/* Tells an inherited mapping is keys of this layout. */
#define ED_TLS_KEYS_MAGIC 0x65644b32u   /* "edK2" */
#define ED_TLS_KEYS_ENV   "EDDY_TLS_KEYS"

typedef struct {
    uint32_t         magic;
    /* Rotations so far; slot current % ED_TLS_KEY_SLOTS encrypts. */
    _Atomic unsigned current;
    /* Monotonic msec of the last rotation: during a binary upgrade two
     * masters share the keys, and only the first to claim a period
     * rotates. */
    _Atomic int64_t  rotated;
    ed_tls_key_t     keys[ED_TLS_KEY_SLOTS];
} ed_tls_keys_t;

/* The mapping, inherited by every process forked after it was made;
 * never unmapped, so reloads keep it. */
static ed_tls_keys_t *ed_tls_keys;
static int            ed_tls_keys_fd = -1;  /* the memfd, close-on-exec */
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

/* The keys of the binary this one upgrades, when EDDY_TLS_KEYS names a
 * descriptor holding them (USR2 passes it through exec); both masters
 * then share them. Returns the mapping, or NULL (the variable is then
 * dropped). */
static ed_tls_keys_t *
ed_tls_keys_inherit(void)
{
    const char    *env = getenv(ED_TLS_KEYS_ENV);
    ed_tls_keys_t *keys;
    struct stat    st;
    char          *end;
    long           fd;

    if (env == NULL) {
        return NULL;
    }
    unsetenv(ED_TLS_KEYS_ENV);
    errno = 0;
    fd = strtol(env, &end, 10);
    if (errno || end == env || *end || fd < 0 || fd > INT_MAX
        || fstat((int)fd, &st) != 0
        || st.st_size != (off_t)sizeof(ed_tls_keys_t))
    {
        goto ignored;
    }
    keys = mmap(NULL, sizeof(ed_tls_keys_t), PROT_READ | PROT_WRITE,
                MAP_SHARED, (int)fd, 0);
    if (keys == MAP_FAILED) {
        goto ignored;
    }
    if (keys->magic != ED_TLS_KEYS_MAGIC) {
        munmap(keys, sizeof(ed_tls_keys_t));
        goto ignored;
    }
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    ed_tls_keys_fd = (int)fd;
    return keys;

ignored:
    /* Sessions made before the upgrade will not resume: say why. */
    ed_log(ED_LOG_WARN, ed_log_cur, 0,
           ED_TLS_KEYS_ENV " does not name inherited ticket keys; "
           "new keys are made");
    return NULL;
}

/* Passes the keys to a binary about to be executed (USR2): the memfd
 * stays open across exec and EDDY_TLS_KEYS names it. For the child of
 * a fork, just before exec. */
void
ed_tls_keys_pass_on(void)
{
    char num[16];

    if (ed_tls_keys_fd < 0) {
        return;
    }
    fcntl(ed_tls_keys_fd, F_SETFD, 0);
    snprintf(num, sizeof(num), "%d", ed_tls_keys_fd);
    setenv(ED_TLS_KEYS_ENV, num, 1);
}

/* Maps fresh memory for the keys: a memfd that ed_tls_keys_pass_on can
 * hand to the binary started on USR2; anonymous memory where memfds are
 * missing. The mapping lives as long as the process, since tickets
 * outlive reloads. Returns it, or NULL (errno). */
static ed_tls_keys_t *
ed_tls_keys_map(void)
{
    static ed_pool_t *pool;
    ed_tls_keys_t    *keys;
    int               fd;

    fd = memfd_create("eddy-tls-keys", MFD_CLOEXEC);
    if (fd >= 0) {
        if (ftruncate(fd, sizeof(ed_tls_keys_t)) != 0) {
            close(fd);
            return NULL;
        }
        keys = mmap(NULL, sizeof(ed_tls_keys_t), PROT_READ | PROT_WRITE,
                    MAP_SHARED, fd, 0);
        if (keys == MAP_FAILED) {
            close(fd);
            return NULL;
        }
        ed_tls_keys_fd = fd;
        return keys;
    }
    if (pool == NULL) {
        pool = ed_pool_create(512);
        if (pool == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    return ed_shm_alloc(pool, sizeof(ed_tls_keys_t));
}

size_t
ed_tls_keys_size(void)
{
    return sizeof(ed_tls_keys_t);
}

/* Returns ED_OK or ED_ERROR (errno). */
int
ed_tls_keys_init(void)
{
    ed_tls_keys_t *keys;
    size_t         i;

    if (ed_tls_keys != NULL) {
        return ED_OK;
    }
    ed_tls_keys = ed_tls_keys_inherit();
    if (ed_tls_keys != NULL) {
        return ED_OK;
    }
    keys = ed_tls_keys_map();
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
    atomic_init(&keys->rotated, (int64_t)ed_current_msec);
    keys->magic = ED_TLS_KEYS_MAGIC;
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

    ed_msec_t last;

    /* Nothing to rotate until a configuration with tickets made keys;
     * nothing either when the other master of an upgrade just did. */
    last = ed_tls_keys
               ? atomic_load(&ed_tls_keys->rotated)
               : 0;
    if (ed_tls_keys != NULL
        && ed_current_msec - last >= ED_TLS_KEY_ROTATE_MSEC / 2
        && atomic_compare_exchange_strong(&ed_tls_keys->rotated, &last,
                                          (int64_t)ed_current_msec)
        && ed_tls_keys_rotate() != ED_OK)
    {
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
