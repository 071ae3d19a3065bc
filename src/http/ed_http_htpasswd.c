/* htpasswd lines, `Authorization: Basic` values, apr1 and {SHA}: pure
 * functions (ed_http_htpasswd.h). bcrypt and SHA-crypt are the system
 * libcrypt's (modules/ed_http_auth_basic.c); only their form is checked
 * here, so that a broken file is refused at load, not at a login. */
#include "ed_http_htpasswd.h"

#include <openssl/evp.h>

/* crypt(3)'s alphabet, also apr1's output and salt. */
static const char ed_crypt64[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool
ed_is_crypt64(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '.' || c == '/';
}

/* Whether s[0..len) is all crypt64 characters. */
static bool
ed_all_crypt64(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (!ed_is_crypt64((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static int
ed_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

ssize_t
ed_base64_decode(const char *in, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    size_t   i, pad = 0, n = 0;
    int      v, bits = 0;

    while (pad < 2 && len > 0 && in[len - 1] == '=') {
        len--;
        pad++;
    }
    if (pad && (len + pad) % 4 != 0) {
        return -1;
    }
    if (len % 4 == 1) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        v = ed_b64_value((unsigned char)in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (ssize_t)n;
}

size_t
ed_base64_encode(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t            i, n = 0;
    uint32_t          v;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[n++] = tab[v >> 18];
        out[n++] = tab[(v >> 12) & 63];
        out[n++] = tab[(v >> 6) & 63];
        out[n++] = tab[v & 63];
    }
    if (i < len) {
        v = (uint32_t)in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        out[n++] = tab[v >> 18];
        out[n++] = tab[(v >> 12) & 63];
        out[n++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[n++] = '=';
    }
    out[n] = '\0';
    return n;
}

int
ed_http_basic_decode(const char *value, size_t len, char *buf, size_t size,
                     ed_str_t *user, ed_str_t *pass)
{
    const char *p = value, *end = value + len, *tok;
    ssize_t     n;
    size_t      i;
    char       *colon;

    if (len < 5 || ed_strncasecmp(p, "basic", 5) != 0
        || (len > 5 && p[5] != ' ' && p[5] != '\t'))
    {
        return ED_DECLINED;
    }
    p += 5;
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    tok = p;
    if (tok == end || (size_t)(end - tok) / 4 * 3 + 3 > size) {
        return ED_ERROR;
    }
    /* A token68 alone: a space inside means parameters, not Basic's. */
    n = ed_base64_decode(tok, (size_t)(end - tok), (unsigned char *)buf);
    if (n < 0) {
        return ED_ERROR;
    }
    colon = memchr(buf, ':', (size_t)n);
    if (colon == NULL) {
        return ED_ERROR;
    }
    user->data = buf;
    user->len = (size_t)(colon - buf);
    pass->data = colon + 1;
    pass->len = (size_t)n - user->len - 1;
    for (i = 0; i < user->len; i++) {
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
            return ED_ERROR;
        }
    }
    /* crypt(3) stops at a NUL: "a\0b" must not pass as "a". */
    if (memchr(pass->data, '\0', pass->len) != NULL) {
        return ED_ERROR;
    }
    return ED_OK;
}

/* "$6$[rounds=N$]SALT$HASH" (id is "5" or "6", hlen 43 or 86). */
static bool
ed_sha_crypt_form(const char *s, size_t len, size_t hlen)
{
    const char *p = s + 3, *end = s + len, *d;

    if ((size_t)(end - p) > 7 && memcmp(p, "rounds=", 7) == 0) {
        p += 7;
        d = memchr(p, '$', (size_t)(end - p));
        if (d == NULL || d == p || d - p > 9
            || ed_atoi(p, (size_t)(d - p)) < 1000)
        {
            return false;
        }
        p = d + 1;
    }
    d = memchr(p, '$', (size_t)(end - p));
    if (d == NULL || d == p || d - p > 16
        || !ed_all_crypt64(p, (size_t)(d - p)))
    {
        return false;
    }
    p = d + 1;
    return (size_t)(end - p) == hlen && ed_all_crypt64(p, hlen);
}

int
ed_htpasswd_kind(const char *h, size_t len, const char **err)
{
    const char *d;
    int64_t     cost;

    if (len == 0) {
        *err = "no password hash";
        return -1;
    }
    if (len >= 4 && h[0] == '$' && h[1] == '2' && h[3] == '$'
        && (h[2] == 'y' || h[2] == 'b' || h[2] == 'a'))
    {
        cost = len == 60 && h[6] == '$' ? ed_atoi(h + 4, 2) : -1;
        if (cost < 4 || cost > 31 || !ed_all_crypt64(h + 7, 53)) {
            *err = "malformed bcrypt hash";
            return -1;
        }
        return ED_HTPASSWD_BCRYPT;
    }
    if (len >= 3 && h[0] == '$' && (h[1] == '6' || h[1] == '5')
        && h[2] == '$')
    {
        if (!ed_sha_crypt_form(h, len, h[1] == '6' ? 86 : 43)) {
            *err = h[1] == '6' ? "malformed SHA-512-crypt hash"
                               : "malformed SHA-256-crypt hash";
            return -1;
        }
        return h[1] == '6' ? ED_HTPASSWD_SHA512 : ED_HTPASSWD_SHA256;
    }
    if (len >= 6 && memcmp(h, "$apr1$", 6) == 0) {
        d = memchr(h + 6, '$', len - 6);
        if (d == NULL || d == h + 6 || d - (h + 6) > 8
            || !ed_all_crypt64(h + 6, (size_t)(d - (h + 6)))
            || (size_t)(h + len - (d + 1)) != 22
            || !ed_all_crypt64(d + 1, 22))
        {
            *err = "malformed apr1 hash";
            return -1;
        }
        return ED_HTPASSWD_APR1;
    }
    if (len >= 5 && memcmp(h, "{SHA}", 5) == 0) {
        unsigned char sha[32];

        if (len != 33 || ed_base64_decode(h + 5, 28, sha) != 20) {
            *err = "malformed {SHA} hash";
            return -1;
        }
        return ED_HTPASSWD_SHA1;
    }
    if (len >= 3 && memcmp(h, "$1$", 3) == 0) {
        *err = "MD5-crypt ($1$) hash refused: too weak; use bcrypt "
               "(htpasswd -B) or SHA-512-crypt";
        return -1;
    }
    if (len >= 7 && memcmp(h, "{PLAIN}", 7) == 0) {
        *err = "plain-text password refused";
        return -1;
    }
    if (h[0] == '$' || h[0] == '{') {
        *err = "unsupported hash type; use bcrypt ($2y$), $6$, $5$, "
               "$apr1$ or {SHA}";
        return -1;
    }
    if (len == 13 && ed_all_crypt64(h, 13)) {
        *err = "DES-crypt hash refused: too weak; use bcrypt "
               "(htpasswd -B) or SHA-512-crypt";
        return -1;
    }
    *err = "plain-text password refused";
    return -1;
}

int
ed_htpasswd_parse_line(const char *line, size_t len, ed_htpasswd_entry_t *e,
                       const char **err)
{
    const char *p, *end = line + len, *colon, *h;
    size_t      i;

    e->user.len = 0;
    e->user.data = (char *)line;
    e->hash.len = 0;
    e->hash.data = NULL;
    e->kind = 0;
    while (end > line && (end[-1] == '\r' || end[-1] == ' '
                          || end[-1] == '\t'))
    {
        end--;
    }
    for (p = line; p < end && (*p == ' ' || *p == '\t'); p++) {
        /* void */
    }
    if (p == end || *p == '#') {
        return ED_DECLINED;
    }
    colon = memchr(line, ':', (size_t)(end - line));
    if (colon == NULL) {
        /* The line may be a password typed in the wrong place: not
         * quoted. */
        *err = "expected \"user:hash\"";
        return ED_ERROR;
    }
    if (colon == line) {
        *err = "empty user name";
        return ED_ERROR;
    }
    e->user.len = (size_t)(colon - line);
    for (i = 0; i < e->user.len; i++) {
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
            *err = "control character in the user name";
            return ED_ERROR;
        }
    }
    if (e->user.len > ED_HTPASSWD_USER_MAX) {
        *err = "user name over 255 bytes";
        return ED_ERROR;
    }
    h = colon + 1;
    p = memchr(h, ':', (size_t)(end - h));
    e->hash.data = (char *)h;
    e->hash.len = (size_t)((p ? p : end) - h);
    if (e->hash.len > ED_HTPASSWD_HASH_MAX) {
        *err = "password hash over 255 bytes";
        return ED_ERROR;
    }
    e->kind = ed_htpasswd_kind(e->hash.data, e->hash.len, err);
    return e->kind < 0 ? ED_ERROR : ED_OK;
}

/* Appends the 6-bit groups of v, low first (crypt's order). */
static char *
ed_to64(char *p, uint32_t v, int n)
{
    while (n-- > 0) {
        *p++ = ed_crypt64[v & 0x3f];
        v >>= 6;
    }
    return p;
}

int
ed_apr1_crypt(const char *pw, size_t pwlen, const char *setting,
              size_t slen, char *out)
{
    static const char  magic[] = "$apr1$";
    const EVP_MD      *md5 = EVP_md5();
    EVP_MD_CTX        *ctx;
    unsigned char      fin[16];
    const char        *salt, *d;
    size_t             saltlen, i;
    ssize_t            pl;
    char              *p;
    int                ok = 1;

    if (slen < 6 || memcmp(setting, magic, 6) != 0) {
        return ED_ERROR;
    }
    salt = setting + 6;
    d = memchr(salt, '$', slen - 6);
    saltlen = ed_min((size_t)((d ? d : setting + slen) - salt), 8);
    if (saltlen == 0 || !ed_all_crypt64(salt, saltlen)) {
        return ED_ERROR;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return ED_ERROR;
    }
    /* fin = MD5(pw salt pw) */
    ok &= EVP_DigestInit_ex(ctx, md5, NULL);
    ok &= EVP_DigestUpdate(ctx, pw, pwlen);
    ok &= EVP_DigestUpdate(ctx, salt, saltlen);
    ok &= EVP_DigestUpdate(ctx, pw, pwlen);
    ok &= EVP_DigestFinal_ex(ctx, fin, NULL);

    ok &= EVP_DigestInit_ex(ctx, md5, NULL);
    ok &= EVP_DigestUpdate(ctx, pw, pwlen);
    ok &= EVP_DigestUpdate(ctx, magic, 6);
    ok &= EVP_DigestUpdate(ctx, salt, saltlen);
    for (pl = (ssize_t)pwlen; pl > 0; pl -= 16) {
        ok &= EVP_DigestUpdate(ctx, fin, pl > 16 ? 16 : (size_t)pl);
    }
    memset(fin, 0, sizeof(fin));
    /* The historical quirk: a zero byte for a 1 bit, else pw's first. */
    for (i = pwlen; i; i >>= 1) {
        ok &= EVP_DigestUpdate(ctx, (i & 1) ? (const void *)fin
                                            : (const void *)pw, 1);
    }
    ok &= EVP_DigestFinal_ex(ctx, fin, NULL);

    for (i = 0; i < 1000; i++) {
        ok &= EVP_DigestInit_ex(ctx, md5, NULL);
        if (i & 1) {
            ok &= EVP_DigestUpdate(ctx, pw, pwlen);
        } else {
            ok &= EVP_DigestUpdate(ctx, fin, 16);
        }
        if (i % 3) {
            ok &= EVP_DigestUpdate(ctx, salt, saltlen);
        }
        if (i % 7) {
            ok &= EVP_DigestUpdate(ctx, pw, pwlen);
        }
        if (i & 1) {
            ok &= EVP_DigestUpdate(ctx, fin, 16);
        } else {
            ok &= EVP_DigestUpdate(ctx, pw, pwlen);
        }
        ok &= EVP_DigestFinal_ex(ctx, fin, NULL);
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return ED_ERROR;
    }
    p = out;
    memcpy(p, magic, 6);
    p += 6;
    memcpy(p, salt, saltlen);
    p += saltlen;
    *p++ = '$';
    p = ed_to64(p, (uint32_t)fin[0] << 16 | (uint32_t)fin[6] << 8 | fin[12],
                4);
    p = ed_to64(p, (uint32_t)fin[1] << 16 | (uint32_t)fin[7] << 8 | fin[13],
                4);
    p = ed_to64(p, (uint32_t)fin[2] << 16 | (uint32_t)fin[8] << 8 | fin[14],
                4);
    p = ed_to64(p, (uint32_t)fin[3] << 16 | (uint32_t)fin[9] << 8 | fin[15],
                4);
    p = ed_to64(p, (uint32_t)fin[4] << 16 | (uint32_t)fin[10] << 8 | fin[5],
                4);
    p = ed_to64(p, fin[11], 2);
    *p = '\0';
    OPENSSL_cleanse(fin, sizeof(fin));
    return ED_OK;
}

int
ed_sha1_crypt(const char *pw, size_t pwlen, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  n;

    if (!EVP_Digest(pw, pwlen, md, &n, EVP_sha1(), NULL) || n != 20) {
        return ED_ERROR;
    }
    memcpy(out, "{SHA}", 5);
    ed_base64_encode(md, 20, out + 5);
    return ED_OK;
}
