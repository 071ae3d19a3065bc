/* The pure parts of HTTP Basic authentication: an htpasswd line, the
 * `Authorization: Basic` value, and the two hash kinds eddy computes
 * itself (Apache's apr1 and {SHA}). No I/O, no state: the auth_basic
 * module, unit tests and fuzz targets use them. */
#ifndef ED_HTTP_HTPASSWD_H
#define ED_HTTP_HTPASSWD_H

#include "ed_core.h"

/* The hash kinds accepted in a user file. */
enum {
    ED_HTPASSWD_BCRYPT = 1,   /* $2y$ $2b$ $2a$ (libcrypt) */
    ED_HTPASSWD_SHA512,       /* $6$ (libcrypt) */
    ED_HTPASSWD_SHA256,       /* $5$ (libcrypt) */
    ED_HTPASSWD_APR1,         /* $apr1$ (eddy) */
    ED_HTPASSWD_SHA1          /* {SHA} unsalted (eddy), weak */
};

/* A user name is at most this long; a hash too. */
#define ED_HTPASSWD_USER_MAX  255
#define ED_HTPASSWD_HASH_MAX  255
/* "$apr1$" + 8 salt + "$" + 22 + NUL. */
#define ED_APR1_MAX           38
/* "{SHA}" + 28 + NUL. */
#define ED_SHA1_MAX           34

/* One line of a user file. user and hash point into the line. */
typedef struct {
    ed_str_t user;
    ed_str_t hash;
    int      kind;     /* ED_HTPASSWD_* */
} ed_htpasswd_entry_t;

/* Parses one line (without its '\n'; a trailing '\r' is ignored):
 * `user:hash`, optionally followed by `:comment`. Returns ED_OK with *e
 * filled, ED_DECLINED for a blank or `#` comment line, or ED_ERROR with
 * *err a message that never quotes the hash (e->user is set, len > 0,
 * when the line named a user; the message does not hold it). */
int ed_htpasswd_parse_line(const char *line, size_t len,
                           ed_htpasswd_entry_t *e, const char **err);

/* The kind of a hash (ED_HTPASSWD_*), checking its whole form, or -1
 * with *err saying why it is refused (never quoting it). */
int ed_htpasswd_kind(const char *hash, size_t len, const char **err);

/* Decodes the value of an Authorization field. Returns ED_OK with user
 * and pass pointing into buf (size at least len), ED_DECLINED when the
 * scheme is not Basic, ED_ERROR when the credentials are malformed (bad
 * base64, no ':', a NUL or another control character in the name, a NUL
 * in the password, parameters after the token). */
int ed_http_basic_decode(const char *value, size_t len, char *buf,
                         size_t size, ed_str_t *user, ed_str_t *pass);

/* Standard base64 (RFC 4648 section 4); padding optional but, when
 * present, right. Returns the decoded length, or -1. out has room for
 * len * 3 / 4 + 3 bytes. */
ssize_t ed_base64_decode(const char *in, size_t len, unsigned char *out);
/* Encodes len bytes; out has room for 4 * ((len + 2) / 3) + 1. Returns
 * the length written (NUL-terminated). */
size_t ed_base64_encode(const unsigned char *in, size_t len, char *out);

/* Apache's apr1 (MD5-crypt with the "$apr1$" magic) of pw with the salt
 * of setting ("$apr1$SALT" or a whole hash), written NUL-terminated into
 * out (ED_APR1_MAX bytes). ED_OK, or ED_ERROR for a bad setting or when
 * OpenSSL fails. */
int ed_apr1_crypt(const char *pw, size_t pwlen, const char *setting,
                  size_t slen, char *out);
/* "{SHA}" + base64(SHA1(pw)) into out (ED_SHA1_MAX bytes). ED_OK or
 * ED_ERROR. */
int ed_sha1_crypt(const char *pw, size_t pwlen, char *out);

#endif /* ED_HTTP_HTPASSWD_H */
