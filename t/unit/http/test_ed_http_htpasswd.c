/* Unit tests of the htpasswd line parser, the Basic credentials decoder,
 * base64, apr1 and {SHA} (ed_http_htpasswd.c). The apr1 and {SHA}
 * vectors were written by Apache's htpasswd (-m, -s). */
#include <check.h>

#include "ed_core.h"
#include "ed_http_htpasswd.h"

#define BCRYPT_BODY "05$UGcli78jZk8nNKjRjAB1ZeQJpxq9OWcNdvn5kSqJOKMRUCwykvV9u"
#define BCRYPT "$2y$" BCRYPT_BODY
#define SHA512 "$6$p75AtCn7.JTPu1/b$eB2n1c6z3kQqAJjOebtk5CdKKIyFsfwndLT.QJUQ" \
               "MzQOR9xma87gDrPMRHMVzFf/8qYRoV3HeX1./GYgs6/vh1"
#define SHA256 "$5$8s1xxeF72MxLa9i5$DwnSViWcBnqIr1PGrt4AwtA2Dx7rAUPceEYFGSd" \
               "1P16"
#define APR1   "$apr1$WCZanmmD$tgOKzQXhPZNwUlODnV.Os."

/* Parses a line given as a C string. */
static int
parse(const char *line, ed_htpasswd_entry_t *e, const char **err)
{
    *err = NULL;
    return ed_htpasswd_parse_line(line, strlen(line), e, err);
}

START_TEST(test_htpasswd_kinds)
{
    static const struct {
        const char *line;
        int         kind;
    } ok[] = {
        { "alice:" BCRYPT, ED_HTPASSWD_BCRYPT },
        { "alice:$2b$" BCRYPT_BODY, ED_HTPASSWD_BCRYPT },
        { "alice:$2a$" BCRYPT_BODY, ED_HTPASSWD_BCRYPT },
        { "dave:" SHA512, ED_HTPASSWD_SHA512 },
        { "dave:$6$rounds=5000$p75AtCn7.JTPu1/b$eB2n1c6z3kQqAJjOebtk5CdKKIy"
          "FsfwndLT.QJUQMzQOR9xma87gDrPMRHMVzFf/8qYRoV3HeX1./GYgs6/vh1",
          ED_HTPASSWD_SHA512 },
        { "erin:" SHA256, ED_HTPASSWD_SHA256 },
        { "carol:" APR1, ED_HTPASSWD_APR1 },
        { "bob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", ED_HTPASSWD_SHA1 },
        /* CRLF, trailing blanks, a comment field after the hash. */
        { "carol:" APR1 "\r", ED_HTPASSWD_APR1 },
        { "carol:" APR1 "  \t", ED_HTPASSWD_APR1 },
        { "carol:" APR1 ":Carol, room 3", ED_HTPASSWD_APR1 },
        /* Names are bytes: spaces and UTF-8 are fine. */
        { "J\xc3\xa9r\xc3\xb4me D:" APR1, ED_HTPASSWD_APR1 },
    };
    ed_htpasswd_entry_t e;
    const char         *err;
    size_t              i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(parse(ok[i].line, &e, &err) == ED_OK, "%s: %s",
                      ok[i].line, err);
        ck_assert_int_eq(e.kind, ok[i].kind);
        ck_assert_ptr_eq(e.user.data, ok[i].line);
        ck_assert_ptr_eq(e.hash.data, ok[i].line + e.user.len + 1);
        ck_assert_msg(e.hash.data[e.hash.len] == '\0'
                      || e.hash.data[e.hash.len] == '\r'
                      || e.hash.data[e.hash.len] == ' '
                      || e.hash.data[e.hash.len] == ':', "%s", ok[i].line);
    }
    ck_assert(parse("carol:" APR1 ":x", &e, &err) == ED_OK);
    ck_assert_uint_eq(e.user.len, 5);
    ck_assert_uint_eq(e.hash.len, strlen(APR1));
}
END_TEST

START_TEST(test_htpasswd_skipped)
{
    static const char  *lines[] = { "", "   ", "\t\r", "# alice:x",
                                    "  # indented comment", "\r" };
    ed_htpasswd_entry_t e;
    const char         *err;
    size_t              i;

    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        ck_assert_int_eq(parse(lines[i], &e, &err), ED_DECLINED);
    }
}
END_TEST

START_TEST(test_htpasswd_refused)
{
    static const struct {
        const char *line;
        const char *err;    /* start of the message */
        size_t      user;   /* length of the name it gives */
    } bad[] = {
        { "bob:secret", "plain-text password refused", 3 },
        { "bob:{PLAIN}secret", "plain-text password refused", 3 },
        { "bob:ab01FDEsd9.3s", "DES-crypt hash refused", 3 },
        { "bob:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "MD5-crypt", 3 },
        { "bob:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9Sq"
          "C.5i5rd.RhAtQ7", "unsupported hash type", 3 },
        { "bob:{SSHA}abcdefgh", "unsupported hash type", 3 },
        { "bob:", "no password hash", 3 },
        { "bob::comment", "no password hash", 3 },
        { "bob:$2y$05$short", "malformed bcrypt", 3 },
        { "bob:$2y$03$UGcli78jZk8nNKjRjAB1ZeQJpxq9OWcNdvn5kSqJOKMRUCwykvV9u",
          "malformed bcrypt", 3 },
        { "bob:$2y$05$UGcli78jZk8nNKjRjAB1ZeQJpxq9OWcNdvn5kSqJOKMRUCwykvV9!",
          "malformed bcrypt", 3 },
        { "bob:$2x$05$UGcli78jZk8nNKjRjAB1ZeQJpxq9OWcNdvn5kSqJOKMRUCwykvV9u",
          "unsupported hash type", 3 },
        { "bob:$6$salt$short", "malformed SHA-512-crypt", 3 },
        { "bob:$6$rounds=99$p75AtCn7.JTPu1/b$eB2n1c6z3kQqAJjOebtk5CdKKIyFsf"
          "wndLT.QJUQMzQOR9xma87gDrPMRHMVzFf/8qYRoV3HeX1./GYgs6/vh1",
          "malformed SHA-512-crypt", 3 },
        { "bob:$5$$DwnSViWcBnqIr1PGrt4AwtA2Dx7rAUPceEYFGSd1P16",
          "malformed SHA-256-crypt", 3 },
        { "bob:$apr1$WCZanmmD$tgOKzQXhPZNwUlODnV.Os", "malformed apr1", 3 },
        { "bob:$apr1$toolongsalt$tgOKzQXhPZNwUlODnV.Os.", "malformed apr1",
          3 },
        { "bob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ", "malformed {SHA}", 3 },
        { "bob:{SHA}5en6G6MezRroT3XKqkdPOmY/Bf==", "malformed {SHA}", 3 },
        { "JustAPassword", "expected \"user:hash\"", 0 },
        { ":" APR1, "empty user name", 0 },
        { "b\x01ob:" APR1, "control character", 4 },
    };
    ed_htpasswd_entry_t e;
    const char         *err;
    size_t              i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(parse(bad[i].line, &e, &err) == ED_ERROR, "%s",
                      bad[i].line);
        ck_assert_msg(err && strncmp(err, bad[i].err, strlen(bad[i].err))
                                 == 0, "%s: %s", bad[i].line, err);
        ck_assert_uint_eq(e.user.len, bad[i].user);
    }
}
END_TEST

START_TEST(test_base64)
{
    static const struct {
        const char *plain;
        const char *b64;
    } v[] = {
        /* RFC 4648 section 10. */
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
    };
    static const char  *bad[] = { "Z", "Zg=", "Zg===", "Z===", "Zm9v!",
                                  "Zm 9v", "Zg==Zg==", "=Zg=", "Zm-_" };
    unsigned char       out[64];
    char                enc[64];
    ssize_t             n;
    size_t              i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        n = ed_base64_decode(v[i].b64, strlen(v[i].b64), out);
        ck_assert_int_eq(n, (ssize_t)strlen(v[i].plain));
        ck_assert(memcmp(out, v[i].plain, (size_t)n) == 0);
        ck_assert_uint_eq(ed_base64_encode((const unsigned char *)v[i].plain,
                                           strlen(v[i].plain), enc),
                          strlen(v[i].b64));
        ck_assert_str_eq(enc, v[i].b64);
    }
    /* Padding is optional. */
    ck_assert_int_eq(ed_base64_decode("Zg", 2, out), 1);
    ck_assert_int_eq(ed_base64_decode("Zm8", 3, out), 2);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(ed_base64_decode(bad[i], strlen(bad[i]), out) < 0,
                      "%s", bad[i]);
    }
}
END_TEST

/* Decodes a value given as a C string. */
static int
basic(const char *value, ed_str_t *user, ed_str_t *pass)
{
    static char buf[256];

    return ed_http_basic_decode(value, strlen(value), buf, sizeof(buf),
                                user, pass);
}

#define STR_IS(s, lit)                                                       \
    ck_assert((s).len == sizeof(lit) - 1                                     \
              && memcmp((s).data, lit, sizeof(lit) - 1) == 0)

START_TEST(test_basic_decode)
{
    static const char *not_basic[] = { "Bearer abc", "Basicx YTpi", "",
                                       "Bas", "Digest username=\"a\"" };
    static const char *malformed[] = {
        "Basic", "Basic ", "Basic !!!!", "Basic YWxpY2U=", /* no ':' */
        "Basic YTpi c", "Basic YTpiAGM=",                 /* a:b NUL c */
        "Basic AWE6Yg==",                                 /* \x01a:b */
        "Basic YTpi=", "Basic Y",
    };
    ed_str_t           user, pass;
    size_t             i;

    /* RFC 7617's example. */
    ck_assert_int_eq(basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", &user,
                           &pass), ED_OK);
    STR_IS(user, "Aladdin");
    STR_IS(pass, "open sesame");
    /* Any case, blanks around the token, no padding. */
    ck_assert_int_eq(basic("bAsIc \t QWxhZGRpbjpvcGVuIHNlc2FtZQ \t", &user,
                           &pass), ED_OK);
    STR_IS(user, "Aladdin");
    /* Only the first ':' separates: the password may hold more. */
    ck_assert_int_eq(basic("Basic dTpwOnc6", &user, &pass), ED_OK);
    STR_IS(user, "u");
    STR_IS(pass, "p:w:");
    /* An empty name or password decodes (and fails verification). */
    ck_assert_int_eq(basic("Basic OnB3", &user, &pass), ED_OK);
    ck_assert_uint_eq(user.len, 0);
    ck_assert_int_eq(basic("Basic dTo=", &user, &pass), ED_OK);
    STR_IS(user, "u");
    ck_assert_uint_eq(pass.len, 0);
    for (i = 0; i < sizeof(not_basic) / sizeof(not_basic[0]); i++) {
        ck_assert_msg(basic(not_basic[i], &user, &pass) == ED_DECLINED, "%s",
                      not_basic[i]);
    }
    for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        ck_assert_msg(basic(malformed[i], &user, &pass) == ED_ERROR, "%s",
                      malformed[i]);
    }
}
END_TEST

START_TEST(test_basic_decode_bounds)
{
    char     buf[4];
    ed_str_t user, pass;

    /* A buffer too small for the decoded bytes: refused, not overrun. */
    ck_assert_int_eq(ed_http_basic_decode("Basic YWJjZGVmOmdoaQ==", 22, buf,
                                          sizeof(buf), &user, &pass),
                     ED_ERROR);
}
END_TEST

START_TEST(test_apr1)
{
    static const struct {
        const char *pw;
        const char *hash;
    } v[] = {
        { "secret", "$apr1$rltxulAK$3dQsC.1royUO4uQRsvQO21" },
        { "cpw", APR1 },
        { "a much longer password than sixteen bytes, 48 b",
          "$apr1$6iwpATd6$2wSyjt02y9rjjZ.17tDpf0" },
        { "", "$apr1$kdoSWyWD$Ac/flLfPv3sWaBMToIV7d1" },
    };
    char   out[ED_APR1_MAX];
    size_t i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        ck_assert_int_eq(ed_apr1_crypt(v[i].pw, strlen(v[i].pw), v[i].hash,
                                       strlen(v[i].hash), out),
                         ED_OK);
        ck_assert_str_eq(out, v[i].hash);
    }
    /* The salt alone is a setting too. */
    ck_assert_int_eq(ed_apr1_crypt("secret", 6, "$apr1$rltxulAK", 14, out),
                     ED_OK);
    ck_assert_str_eq(out, "$apr1$rltxulAK$3dQsC.1royUO4uQRsvQO21");
    ck_assert_int_eq(ed_apr1_crypt("secret", 6, "$apr1$rltxulAK", 14, out),
                     ED_OK);
    ck_assert_int_eq(ed_apr1_crypt("secreT", 6, v[0].hash,
                                   strlen(v[0].hash), out), ED_OK);
    ck_assert_str_ne(out, v[0].hash);
    ck_assert_int_eq(ed_apr1_crypt("x", 1, "$1$abc$", 7, out), ED_ERROR);
    ck_assert_int_eq(ed_apr1_crypt("x", 1, "$apr1$$", 7, out), ED_ERROR);
}
END_TEST

START_TEST(test_sha1)
{
    char out[ED_SHA1_MAX];

    ck_assert_int_eq(ed_sha1_crypt("secret", 6, out), ED_OK);
    ck_assert_str_eq(out, "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=");
    ck_assert_int_eq(ed_sha1_crypt("", 0, out), ED_OK);
    ck_assert_str_eq(out, "{SHA}2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
}
END_TEST

Suite *
ed_test_htpasswd_suite(void)
{
    Suite *s = suite_create("htpasswd");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_htpasswd_kinds);
    tcase_add_test(tc, test_htpasswd_skipped);
    tcase_add_test(tc, test_htpasswd_refused);
    tcase_add_test(tc, test_base64);
    tcase_add_test(tc, test_basic_decode);
    tcase_add_test(tc, test_basic_decode_bounds);
    tcase_add_test(tc, test_apr1);
    tcase_add_test(tc, test_sha1);
    suite_add_tcase(s, tc);
    return s;
}
