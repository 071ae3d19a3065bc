/* The auth_basic module: `auth_basic: {realm, user_file}` asks for HTTP
 * Basic credentials and checks them against an htpasswd file read at
 * load (and reload). Runs in the access phase, after access, limit_req
 * and limit_conn, so that cheap refusals shield the hashing.
 *
 * Hashes: bcrypt and SHA-crypt through the system's libcrypt
 * (crypt_rn), apr1 and {SHA} computed here (ed_http_htpasswd.c); the
 * file's other forms (plain text, DES, $1$) are load errors. Results
 * are compared in constant time; an unknown user costs a verification
 * of the same kind as a known one (against a hash of the kind most of
 * the file's users have), so that timing does not tell which names
 * exist.
 *
 * Each worker remembers up to ED_AUTH_CACHE pairs it verified, for
 * ED_AUTH_CACHE_TTL, as an HMAC-SHA256 of (user, hash, password) under
 * a key drawn when the worker starts: no password is kept, and bcrypt's
 * cost is paid once a minute per client instead of per request.
 * Failures are never remembered. */
#include "ed_http_explain.h"
#include "ed_http_htpasswd.h"

#include <crypt.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define ED_AUTH_CACHE_WAYS  8
#define ED_AUTH_CACHE_SETS  128
#define ED_AUTH_CACHE       (ED_AUTH_CACHE_WAYS * ED_AUTH_CACHE_SETS)
#define ED_AUTH_CACHE_TTL   60000
/* A user file is read whole; one larger is refused. */
#define ED_AUTH_FILE_MAX    (64 * 1024 * 1024)
/* Names in log lines. */
#define ED_AUTH_NAME_LOG    64

typedef struct {
    ed_str_t  user;
    ed_str_t  hash;    /* NUL-terminated */
    int       kind;    /* ED_HTPASSWD_* */
    unsigned  line;
} ed_auth_user_t;

typedef struct {
    ed_auth_user_t       *users;    /* sorted by name */
    size_t                nusers;
    const ed_auth_user_t *dummy;    /* verified for unknown names */
    const char           *name;     /* the path as written */
} ed_auth_file_t;

typedef struct {
    ed_node_t      *node;           /* the block (ed_conf_block_t) */
    ed_str_t        realm;
    ed_str_t        user_file;      /* prefix-resolved */
    ed_auth_file_t *file;
    ed_str_t        challenge;      /* the WWW-Authenticate value */
    unsigned        off:1;          /* `auth_basic: off` */
} ed_http_auth_basic_t;

typedef struct {
    ed_http_auth_basic_t *auth;
} ed_http_auth_basic_conf_t;

typedef struct {
    unsigned char mac[32];
    ed_msec_t     expires;          /* 0: empty */
} ed_auth_cache_slot_t;

static const char *ed_http_auth_basic_scalar(ed_conf_t *cf, ed_node_t *node,
                                             void *block);
static const char *ed_http_auth_basic_set_realm(ed_conf_t *cf,
                                                const ed_key_t *key,
                                                ed_node_t *node, void *conf);
static const char *ed_http_auth_basic_check_block(ed_conf_t *cf,
                                                  ed_node_t *node,
                                                  void *block);
static int ed_http_auth_basic_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_auth_basic_check(ed_http_request_t *r);
static int ed_http_auth_basic_init_worker(ed_worker_t *w);
static int ed_http_auth_basic_explain(ed_explain_t *ex);

#define ED_ABKEY(name, flags, set, field)                                    \
    { name, ED_CTX_ANY_HTTP, flags, set, ED_CONF_LOC,                        \
      offsetof(ed_http_auth_basic_t, field), NULL, NULL }

/* A block is inherited whole (the nearest level wins), so its keys are
 * not inherited one by one. */
static const ed_key_t ed_http_auth_basic_block_keys[] = {
    ED_ABKEY("realm", ED_KEY_STR, ed_http_auth_basic_set_realm, realm),
    ED_ABKEY("user_file", ED_KEY_STR, ed_conf_set_path, user_file),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_http_auth_basic_block = {
    .name = "auth_basic",
    .keys = ed_http_auth_basic_block_keys,
    .size = sizeof(ed_http_auth_basic_t),
    .scalar = ed_http_auth_basic_scalar,
    .check = ed_http_auth_basic_check_block,
    .expect = "expected off or a mapping {realm, user_file}",
};

static const ed_key_t ed_http_auth_basic_keys[] = {
    { "auth_basic", ED_CTX_ANY_HTTP, ED_KEY_BLOCK | ED_KEY_INHERIT,
      ed_conf_set_block, ED_CONF_LOC,
      offsetof(ed_http_auth_basic_conf_t, auth), &ed_http_auth_basic_block,
      NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_auth_basic_module = {
    .name = "auth_basic",
    .keys = ed_http_auth_basic_keys,
    .conf_size = { 0, 0, sizeof(ed_http_auth_basic_conf_t), 0 },
    .attach = ed_http_auth_basic_attach,
    .init_worker = ed_http_auth_basic_init_worker,
    .explain = ed_http_auth_basic_explain,
};

/* Per process: libcrypt's scratch (32 KiB, one verification at a time
 * on the event loop), the cache and its key. */
static struct crypt_data     ed_auth_crypt;
static ed_auth_cache_slot_t  ed_auth_cache[ED_AUTH_CACHE];
static unsigned char         ed_auth_key[32];

/* `auth_basic: off` cancels an inherited one. */
static const char *
ed_http_auth_basic_scalar(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_auth_basic_t *ab = block;

    ed_unused(cf);
    if (ed_conf_parse_bool(node->value.data, node->value.len) != 0) {
        /* nginx's `auth_basic "Staff only";` is the realm alone. */
        return "expected off or a mapping {realm, user_file} (nginx's "
               "auth_basic string is realm)";
    }
    ab->off = 1;
    return NULL;
}

/* realm: goes into a quoted-string as is, so no '"', '\' or control
 * characters (UTF-8 is fine: charset="UTF-8"). */
static const char *
ed_http_auth_basic_set_realm(ed_conf_t *cf, const ed_key_t *key,
                             ed_node_t *node, void *conf)
{
    size_t i;

    if (node->type != ED_NODE_SCALAR || node->value.len == 0) {
        return "expected a realm such as \"Staff only\"";
    }
    if (node->value.len > 256) {
        return "realm over 256 bytes";
    }
    for (i = 0; i < node->value.len; i++) {
        unsigned char c = (unsigned char)node->value.data[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            return "a realm may not hold '\"', '\\' or control characters";
        }
    }
    return ed_conf_set_str(cf, key, node, conf);
}

static int
ed_auth_user_cmp(const void *a, const void *b)
{
    const ed_auth_user_t *x = a, *y = b;
    int                   c;

    c = memcmp(x->user.data, y->user.data, ed_min(x->user.len, y->user.len));
    if (c != 0) {
        return c;
    }
    return x->user.len < y->user.len ? -1 : x->user.len > y->user.len;
}

/* A name for a message: escaped, cut at ED_AUTH_NAME_LOG bytes, in buf
 * (ED_AUTH_NAME_LOG + 1 bytes). */
static const char *
ed_auth_esc(char *buf, const ed_str_t *name)
{
    buf[ed_log_escape(buf, ED_AUTH_NAME_LOG, name->data, name->len)] = '\0';
    return buf;
}

/* The user file's line ln (a name the line gave, or none) and why it is
 * refused. */
static void
ed_auth_file_error(ed_conf_t *cf, const char *name, unsigned ln,
                   const ed_str_t *user, const char *why)
{
    char esc[ED_AUTH_NAME_LOG + 1];

    if (user && user->len) {
        ed_conf_error(cf, NULL, "%s:%u: user \"%s\": %s", name, ln,
                      ed_auth_esc(esc, user), why);
    } else {
        ed_conf_error(cf, NULL, "%s:%u: %s", name, ln, why);
    }
}

/* Reads the whole file at path into pool memory (NUL-terminated).
 * NULL with errno set. */
static char *
ed_auth_read(ed_pool_t *pool, const char *path, size_t *len)
{
    struct stat st;
    char       *buf;
    ssize_t     n;
    size_t      got = 0;
    int         fd, err;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        goto failed;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > ED_AUTH_FILE_MAX) {
        errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        goto failed;
    }
    buf = ed_pnalloc(pool, (size_t)st.st_size + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        goto failed;
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                break;
            }
            goto failed;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return buf;

failed:
    err = errno;
    close(fd);
    errno = err;
    return NULL;
}

/* Loads and checks the user file: every line a user with a hash eddy
 * verifies, each user once. The hashes never reach a message. NULL
 * after recording errors. */
static ed_auth_file_t *
ed_auth_file_load(ed_conf_t *cf, ed_node_t *fnode, const char *path)
{
    ed_auth_file_t     *f;
    ed_auth_user_t     *u;
    ed_htpasswd_entry_t e;
    const char         *err, *p, *end, *nl;
    char               *data;
    size_t              len, lines = 1, i;
    unsigned            ln = 0, nerr = cf->nerrors;
    char                esc[ED_AUTH_NAME_LOG + 1], why[64];
    size_t              kinds[ED_HTPASSWD_SHA1 + 1] = { 0 };

    data = ed_auth_read(cf->pool, path, &len);
    if (data == NULL) {
        ed_conf_error(cf, fnode, "cannot read user_file \"%s\": %s", path,
                      strerror(errno));
        return NULL;
    }
    for (p = data; (p = memchr(p, '\n', (size_t)(data + len - p))); p++) {
        lines++;
    }
    f = ed_pcalloc(cf->pool, sizeof(ed_auth_file_t));
    if (f == NULL
        || (f->users = ed_pnalloc(cf->pool, lines * sizeof(*u))) == NULL)
    {
        ed_conf_error(cf, fnode, "out of memory");
        return NULL;
    }
    f->name = fnode->value.data;
    for (p = data, end = data + len; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            nl = end;
        }
        ln++;
        switch (ed_htpasswd_parse_line(p, (size_t)(nl - p), &e, &err)) {
        case ED_DECLINED:
            continue;
        case ED_ERROR:
            ed_auth_file_error(cf, f->name, ln, &e.user, err);
            continue;
        }
        u = &f->users[f->nusers++];
        u->kind = e.kind;
        u->line = ln;
        if (ed_str_dup(cf->pool, &u->user, e.user.data, e.user.len) != ED_OK
            || ed_str_dup(cf->pool, &u->hash, e.hash.data, e.hash.len)
                   != ED_OK)
        {
            ed_conf_error(cf, fnode, "out of memory");
            return NULL;
        }
        if (e.kind == ED_HTPASSWD_SHA1) {
            /* The same password gives the same hash everywhere. */
            ed_conf_warn(cf, NULL, "%s:%u: user \"%s\": {SHA} is unsalted "
                         "and weak; prefer bcrypt (htpasswd -B)", f->name,
                         ln, ed_auth_esc(esc, &u->user));
        }
    }
    OPENSSL_cleanse(data, len);
    if (f->nusers == 0 && cf->nerrors == nerr) {
        ed_conf_warn(cf, fnode, "user_file \"%s\" has no users: every "
                     "request is refused", f->name);
    }
    if (f->nusers) {
        /* The dummy: the first hash of the kind most users have, so that
         * a name not in the file costs what most names in it cost.
         * Copied before sorting. */
        for (i = 0; i < f->nusers; i++) {
            kinds[f->users[i].kind]++;
        }
        for (i = 0; i < f->nusers; i++) {
            if (f->dummy == NULL
                || kinds[f->users[i].kind] > kinds[f->dummy->kind])
            {
                f->dummy = &f->users[i];
            }
        }
        u = ed_palloc(cf->pool, sizeof(*u));
        if (u == NULL) {
            ed_conf_error(cf, fnode, "out of memory");
            return NULL;
        }
        *u = *f->dummy;
        f->dummy = u;
        qsort(f->users, f->nusers, sizeof(*u), ed_auth_user_cmp);
    }
    for (i = 1; i < f->nusers; i++) {
        if (ed_auth_user_cmp(&f->users[i - 1], &f->users[i]) == 0) {
            /* Named at its later line, the earlier one said. */
            u = &f->users[i];
            ln = f->users[i - 1].line;
            if (u->line < ln) {
                ln = u->line;
                u = &f->users[i - 1];
            }
            snprintf(why, sizeof(why), "duplicate user (also on line %u)",
                     ln);
            ed_auth_file_error(cf, f->name, u->line, &u->user, why);
        }
    }
    return cf->nerrors == nerr ? f : NULL;
}

/* A block needs both keys, unless it says off; the file is read now, so
 * that -t finds its errors and workers fork with it. */
static const char *
ed_http_auth_basic_check_block(ed_conf_t *cf, ed_node_t *node, void *block)
{
    ed_http_auth_basic_t *ab = block;
    ed_node_t            *fnode;
    size_t                n;

    if (ab->off) {
        return NULL;
    }
    if (ab->realm.data == NULL) {
        return "expected \"realm\" in auth_basic, such as realm: "
               "\"Staff only\"";
    }
    fnode = ed_conf_get(node, "user_file");
    if (fnode == NULL || ab->user_file.data == NULL) {
        return "expected \"user_file\" in auth_basic, such as user_file: "
               "conf/htpasswd";
    }
    n = sizeof("Basic realm=\"\", charset=\"UTF-8\"") - 1 + ab->realm.len;
    ab->challenge.data = ed_pnalloc(cf->pool, n + 1);
    if (ab->challenge.data == NULL) {
        return "out of memory";
    }
    ab->challenge.len = (size_t)snprintf(ab->challenge.data, n + 1,
                                         "Basic realm=\"%s\", "
                                         "charset=\"UTF-8\"",
                                         ab->realm.data);
    ab->file = ed_auth_file_load(cf, fnode, ab->user_file.data);
    return NULL;
}

static int
ed_http_auth_basic_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_auth_basic_conf_t *acf;

    acf = ed_http_conf_at(loc, ed_http_auth_basic_module);
    if (acf->auth == NULL || acf->auth->off || acf->auth->file == NULL) {
        return ED_OK;
    }
    return ed_http_access_add(cf, loc, ed_http_auth_basic_check);
}

static int
ed_http_auth_basic_init_worker(ed_worker_t *w)
{
    ed_unused(w);
    memset(ed_auth_cache, 0, sizeof(ed_auth_cache));
    if (RAND_bytes(ed_auth_key, sizeof(ed_auth_key)) != 1) {
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "auth_basic: no random key for "
               "the credential cache");
        return ED_ERROR;
    }
    return ED_OK;
}

/* Whether pw (NUL-terminated at pw[len]) is u's password. */
static bool
ed_auth_verify(const ed_auth_user_t *u, const char *pw, size_t len)
{
    char        buf[ED_APR1_MAX + ED_SHA1_MAX];
    const char *out;
    bool        ok;

    switch (u->kind) {
    case ED_HTPASSWD_APR1:
        out = ed_apr1_crypt(pw, len, u->hash.data, u->hash.len, buf) == ED_OK
                  ? buf : NULL;
        break;
    case ED_HTPASSWD_SHA1:
        out = ed_sha1_crypt(pw, len, buf) == ED_OK ? buf : NULL;
        break;
    default:
        /* bcrypt, SHA-crypt: libcrypt takes the salt and cost from the
         * hash itself. */
        out = crypt_rn(pw, u->hash.data, &ed_auth_crypt,
                       sizeof(ed_auth_crypt));
        break;
    }
    ok = out != NULL && strlen(out) == u->hash.len
         && CRYPTO_memcmp(out, u->hash.data, u->hash.len) == 0;
    if (out == buf) {
        OPENSSL_cleanse(buf, sizeof(buf));
    }
    return ok;
}

/* The cache's name for (user, hash, password). ED_OK or ED_ERROR. */
static int
ed_auth_mac(ed_http_request_t *r, const ed_auth_user_t *u, const char *pw,
            size_t len, unsigned char *mac)
{
    unsigned int   n = 32;
    unsigned char *in;
    size_t         total;
    bool           ok;

    total = u->user.len + 1 + u->hash.len + 1 + len;
    in = ed_pnalloc(r->pool, total);
    if (in == NULL) {
        return ED_ERROR;
    }
    memcpy(in, u->user.data, u->user.len);
    in[u->user.len] = '\0';
    memcpy(in + u->user.len + 1, u->hash.data, u->hash.len + 1);
    memcpy(in + u->user.len + 1 + u->hash.len + 1, pw, len);
    ok = HMAC(EVP_sha256(), ed_auth_key, sizeof(ed_auth_key), in, total,
              mac, &n) != NULL;
    OPENSSL_cleanse(in, total);
    return ok && n == 32 ? ED_OK : ED_ERROR;
}

/* The slot holding mac and still fresh, or NULL. */
static ed_auth_cache_slot_t *
ed_auth_cache_find(const unsigned char *mac)
{
    ed_auth_cache_slot_t *set;
    size_t                i;

    set = &ed_auth_cache[(mac[0] | (size_t)mac[1] << 8) % ED_AUTH_CACHE_SETS
                         * ED_AUTH_CACHE_WAYS];
    for (i = 0; i < ED_AUTH_CACHE_WAYS; i++) {
        if (set[i].expires > ed_current_msec
            && CRYPTO_memcmp(set[i].mac, mac, 32) == 0)
        {
            return &set[i];
        }
    }
    return NULL;
}

/* Remembers a verified pair: an empty or expired way of its set, else
 * the one closest to expiring. */
static void
ed_auth_cache_add(const unsigned char *mac)
{
    ed_auth_cache_slot_t *set, *victim;
    size_t                i;

    set = &ed_auth_cache[(mac[0] | (size_t)mac[1] << 8) % ED_AUTH_CACHE_SETS
                         * ED_AUTH_CACHE_WAYS];
    victim = &set[0];
    for (i = 0; i < ED_AUTH_CACHE_WAYS; i++) {
        if (set[i].expires <= ed_current_msec) {
            victim = &set[i];
            break;
        }
        if (set[i].expires < victim->expires) {
            victim = &set[i];
        }
    }
    memcpy(victim->mac, mac, 32);
    victim->expires = ed_current_msec + ED_AUTH_CACHE_TTL;
}

static const ed_auth_user_t *
ed_auth_find(const ed_auth_file_t *f, const ed_str_t *name)
{
    ed_auth_user_t key;

    key.user = *name;
    return f->nusers ? bsearch(&key, f->users, f->nusers, sizeof(key),
                               ed_auth_user_cmp)
                     : NULL;
}

/* The Authorization field, NULL when absent; *many when it is there more
 * than once. */
static const ed_str_t *
ed_auth_field(ed_http_request_t *r, bool *many)
{
    const ed_str_t *v = NULL;
    size_t          i;

    *many = false;
    for (i = 0; i < r->head.nheaders; i++) {
        if (r->head.headers[i].name.len == 13
            && ed_strncasecmp(r->head.headers[i].name.data, "authorization",
                              13) == 0)
        {
            if (v) {
                *many = true;
            }
            v = &r->head.headers[i].value;
        }
    }
    return v;
}

/* The verdict on r's credentials without touching the cache or the log
 * (check and explain share it): ED_OK with *user set, or why not. */
enum {
    ED_AUTH_NONE = 1, ED_AUTH_NOT_BASIC, ED_AUTH_MALFORMED, ED_AUTH_UNKNOWN,
    ED_AUTH_MISMATCH
};

typedef struct {
    ed_str_t              user;
    ed_str_t              pass;     /* NUL-terminated, wiped after use */
    const ed_auth_user_t *u;
} ed_auth_creds_t;

static int
ed_auth_creds(ed_http_request_t *r, ed_auth_creds_t *c)
{
    const ed_str_t *v;
    bool            many;
    char           *buf;
    int             rc;

    v = ed_auth_field(r, &many);
    if (v == NULL) {
        return ED_AUTH_NONE;
    }
    if (many) {
        return ED_AUTH_MALFORMED;
    }
    buf = ed_pnalloc(r->pool, v->len + 4);
    if (buf == NULL) {
        return ED_ERROR;
    }
    rc = ed_http_basic_decode(v->data, v->len, buf, v->len + 3, &c->user,
                              &c->pass);
    if (rc != ED_OK) {
        return rc == ED_DECLINED ? ED_AUTH_NOT_BASIC : ED_AUTH_MALFORMED;
    }
    c->pass.data[c->pass.len] = '\0';
    return ED_OK;
}

static int
ed_http_auth_basic_refuse(ed_http_request_t *r, ed_http_auth_basic_t *ab)
{
    /* One challenge, this location's, after an internal redirect to a
     * location that asks again. */
    ed_http_out_header_del(r, "WWW-Authenticate", 16);
    if (ed_http_add_header(r, "WWW-Authenticate", 16, ab->challenge.data,
                           ab->challenge.len) != ED_OK)
    {
        return 500;
    }
    return 401;
}

static int
ed_http_auth_basic_check(ed_http_request_t *r)
{
    ed_http_auth_basic_conf_t *acf;
    ed_http_auth_basic_t      *ab;
    ed_auth_creds_t            c;
    unsigned char              mac[32];
    bool                       ok;
    int                        rc;

    acf = ed_http_loc_conf(r, ed_http_auth_basic_module);
    ab = acf->auth;
    rc = ed_auth_creds(r, &c);
    switch (rc) {
    case ED_OK:
        break;
    case ED_AUTH_NONE:
        /* A browser's first request: not worth a log line. */
        return ed_http_auth_basic_refuse(r, ab);
    case ED_AUTH_NOT_BASIC:
        ed_http_log(ED_LOG_ERR, r, 0, "no Basic credentials in "
                    "Authorization");
        return ed_http_auth_basic_refuse(r, ab);
    case ED_AUTH_MALFORMED:
        ed_http_log(ED_LOG_ERR, r, 0, "malformed Basic credentials in "
                    "Authorization");
        return ed_http_auth_basic_refuse(r, ab);
    default:
        return 500;
    }
    c.u = ed_auth_find(ab->file, &c.user);
    if (c.u == NULL) {
        /* The same cost as a known name's verification. */
        if (ab->file->dummy) {
            (void)ed_auth_verify(ab->file->dummy, c.pass.data, c.pass.len);
        }
        OPENSSL_cleanse(c.pass.data, c.pass.len);
        ed_http_log(ED_LOG_ERR, r, 0, "user \"%s\": not found in \"%s\"",
                    ed_http_log_str(r, c.user.data, c.user.len,
                                    ED_AUTH_NAME_LOG),
                    ab->file->name);
        return ed_http_auth_basic_refuse(r, ab);
    }
    ok = false;
    rc = ed_auth_mac(r, c.u, c.pass.data, c.pass.len, mac);
    if (rc == ED_OK && ed_auth_cache_find(mac)) {
        ok = true;
    } else if (ed_auth_verify(c.u, c.pass.data, c.pass.len)) {
        ok = true;
        if (rc == ED_OK) {
            ed_auth_cache_add(mac);
        }
    }
    OPENSSL_cleanse(c.pass.data, c.pass.len);
    OPENSSL_cleanse(mac, sizeof(mac));
    if (!ok) {
        ed_http_log(ED_LOG_ERR, r, 0, "user \"%s\": password mismatch",
                    ed_http_log_str(r, c.user.data, c.user.len,
                                    ED_AUTH_NAME_LOG));
        return ed_http_auth_basic_refuse(r, ab);
    }
    r->remote_user = c.user;
    return ED_DECLINED;
}

static const char *
ed_auth_kind_name(int kind)
{
    switch (kind) {
    case ED_HTPASSWD_BCRYPT:
        return "bcrypt";
    case ED_HTPASSWD_SHA512:
        return "SHA-512-crypt";
    case ED_HTPASSWD_SHA256:
        return "SHA-256-crypt";
    case ED_HTPASSWD_APR1:
        return "apr1";
    default:
        return "{SHA}";
    }
}

/* eddy explain: the verdict on the request's credentials, verified as
 * the server would (without its cache, logging nothing). */
static int
ed_http_auth_basic_explain(ed_explain_t *ex)
{
    ed_http_auth_basic_conf_t *acf;
    ed_http_auth_basic_t      *ab;
    ed_auth_creds_t            c;
    const char                *from, *name;
    int                        rc;

    acf = ed_http_conf_at(ex->loc, ed_http_auth_basic_module);
    ab = acf->auth;
    if (ex->phase != ED_EXPLAIN_RULES || ab == NULL || ab->off
        || ab->file == NULL)
    {
        return ED_DECLINED;
    }
    from = ed_explain_from(ex, NULL, "auth_basic", NULL, 0);
    rc = ed_auth_creds(ex->r, &c);
    switch (rc) {
    case ED_OK:
        break;
    case ED_AUTH_NONE:
        ed_explain_rule(ex, "auth_basic", "deny", 401, "no credentials: "
                        "401 with realm \"%s\", %zu users in %s (%s)",
                        ab->realm.data, ab->file->nusers, ab->file->name,
                        from);
        return ED_OK;
    case ED_AUTH_NOT_BASIC:
    case ED_AUTH_MALFORMED:
        ed_explain_rule(ex, "auth_basic", "deny", 401, "%s credentials: "
                        "401 with realm \"%s\" (%s)",
                        rc == ED_AUTH_NOT_BASIC ? "no Basic" : "malformed",
                        ab->realm.data, from);
        return ED_OK;
    default:
        return ED_ERROR;
    }
    name = ed_explain_quote(ex, c.user.data, c.user.len, ED_AUTH_NAME_LOG);
    c.u = ed_auth_find(ab->file, &c.user);
    if (c.u == NULL) {
        ed_explain_rule(ex, "auth_basic", "deny", 401, "user %s not found "
                        "in %s (%s)", name, ab->file->name, from);
    } else if (!ed_auth_verify(c.u, c.pass.data, c.pass.len)) {
        ed_explain_rule(ex, "auth_basic", "deny", 401, "user %s: password "
                        "mismatch (%s, %s:%u) (%s)", name,
                        ed_auth_kind_name(c.u->kind), ab->file->name,
                        c.u->line, from);
    } else {
        ed_explain_rule(ex, "auth_basic", "allow", 0, "user %s: password "
                        "verified (%s, %s:%u) (%s)", name,
                        ed_auth_kind_name(c.u->kind), ab->file->name,
                        c.u->line, from);
    }
    OPENSSL_cleanse(c.pass.data, c.pass.len);
    return ED_OK;
}
