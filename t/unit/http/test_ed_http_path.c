/* Unit tests of the path normaliser (ed_http_path.c). */
#include <check.h>

#include "ed_core.h"
#include "ed_http_parse.h"

typedef struct {
    const char *in;
    size_t      len;
    const char *out;  /* NULL: ED_ERROR expected */
} path_case_t;

#define P(in, out) { in, sizeof(in) - 1, out }

static const path_case_t cases[] = {
    P("/", "/"),
    P("/a", "/a"),
    P("/a/b", "/a/b"),
    P("/a/", "/a/"),
    P("/a/b/", "/a/b/"),
    /* Dot segments. */
    P("/.", "/"),
    P("/./", "/"),
    P("/./././", "/"),
    P("/a/./b", "/a/b"),
    P("/a/.", "/a/"),
    P("/a/../b", "/b"),
    P("/a/b/..", "/a/"),
    P("/a/b/../", "/a/"),
    P("/a/b/../../c", "/c"),
    P("/a/b/c/../../d/./e/..", "/a/d/"),
    P("/a/..", "/"),
    P("/a/../", "/"),
    P("/..", NULL),
    P("/../", NULL),
    P("/../a", NULL),
    P("/a/../..", NULL),
    P("/a/../../b", NULL),
    P("/./..", NULL),
    P("/a/./../..", NULL),
    /* Names that only look like dot segments. */
    P("/...", "/..."),
    P("/.a", "/.a"),
    P("/a.", "/a."),
    P("/a..", "/a.."),
    P("/..a/b", "/..a/b"),
    P("/a/.../b", "/a/.../b"),
    /* Merged slashes. */
    P("//", "/"),
    P("//a//b//", "/a/b/"),
    P("///a", "/a"),
    P("/a//../b", "/b"),
    P("//..", NULL),
    /* Percent-decoding, then resolution. */
    P("/%41%42c", "/ABc"),
    P("/a%20b", "/a b"),
    P("/%7e%7E", "/~~"),
    P("/%2e", "/"),
    P("/%2e%2e", NULL),
    P("/%2E%2E/", NULL),
    P("/.%2e", NULL),
    P("/%2e.", NULL),
    P("/a/%2e%2e/b", "/b"),
    P("/a/.%2E", "/"),
    P("/a%2fb", "/a/b"),
    P("/a%2F%2Fb", "/a/b"),
    P("/a%2f..%2f..%2fetc%2fpasswd", NULL),
    P("/a%2f..%2fb", "/b"),
    P("/%2f%2e%2e", NULL),
    P("/a/b%2f%2e%2e%2f%2e%2e%2f..", NULL),
    P("/%25", "/%"),
    P("/%252e%252e", "/%2e%2e"),
    P("/%c3%a9", "/\xc3\xa9"),
    P("/\xc3\xa9", "/\xc3\xa9"),
    /* Backslash is an ordinary byte. */
    P("/a\\..\\..\\b", "/a\\..\\..\\b"),
    P("/%5c..%5c", "/\\..\\"),
    /* Errors. */
    P("", NULL),
    P("a", NULL),
    P("a/b", NULL),
    P("%2fa", NULL),
    P("*", NULL),
    P("/%", NULL),
    P("/%2", NULL),
    P("/a%", NULL),
    P("/%zz", NULL),
    P("/%2g", NULL),
    P("/%g2", NULL),
    P("/%-1", NULL),
    P("/% 2", NULL),
    P("/%00", NULL),
    P("/a%00b", NULL),
    P("/a\0b", NULL),
};

START_TEST(test_path_table)
{
    const path_case_t *c = &cases[_i];
    char              *in, *out;
    size_t             olen = 12345;
    int                rc;

    /* Exact-size buffers: the output may be as long as the input. */
    in = malloc(c->len ? c->len : 1);
    out = malloc(c->len ? c->len : 1);
    ck_assert(in != NULL && out != NULL);
    memcpy(in, c->in, c->len);
    rc = ed_http_normalize_path(in, c->len, out, &olen);
    if (c->out == NULL) {
        ck_assert_msg(rc == ED_ERROR, "case %d: want ED_ERROR, got %d", _i,
                      rc);
    } else {
        ck_assert_msg(rc == ED_OK, "case %d: got %d", _i, rc);
        ck_assert_msg(olen == strlen(c->out)
                      && memcmp(out, c->out, olen) == 0,
                      "case %d: got '%.*s', want '%s'", _i, (int)olen, out,
                      c->out);
    }

    /* The same in place. */
    rc = ed_http_normalize_path(in, c->len, in, &olen);
    ck_assert_int_eq(rc, c->out == NULL ? ED_ERROR : ED_OK);
    if (c->out != NULL) {
        ck_assert(olen == strlen(c->out) && memcmp(in, c->out, olen) == 0);
    }
    free(in);
    free(out);
}
END_TEST

/* Checks what any successful result must satisfy. */
static void
check_normal(const char *out, size_t olen, size_t len)
{
    size_t i, s, n;

    ck_assert_uint_le(olen, len);
    ck_assert(olen >= 1 && out[0] == '/');
    for (i = 0; i < olen; i++) {
        ck_assert(out[i] != '\0');
    }
    /* Every segment is non-empty and neither "." nor "..". */
    for (s = 1; s < olen; s = i + 1) {
        for (i = s; i < olen && out[i] != '/'; i++) {
            /* find the end of the segment */
        }
        n = i - s;
        ck_assert(n != 0);
        ck_assert(!(n == 1 && out[s] == '.'));
        ck_assert(!(n == 2 && out[s] == '.' && out[s + 1] == '.'));
    }
}

START_TEST(test_path_random)
{
    /* Random paths over a small alphabet rich in the interesting bytes:
     * the output is always normal, and normalising again (when nothing is
     * left to decode) changes nothing. */
    static const char alpha[] = "/./..%2e2fF0a";
    char              in[40], out[40], again[40];
    size_t            len, olen, alen, i;
    unsigned          seed = 12345, k;
    int               rc;

    for (k = 0; k < 200000; k++) {
        seed = seed * 1103515245 + 12345;
        len = 1 + (seed >> 16) % (sizeof(in) - 1);
        in[0] = '/';
        for (i = 1; i < len; i++) {
            seed = seed * 1103515245 + 12345;
            in[i] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
        }
        rc = ed_http_normalize_path(in, len, out, &olen);
        if (rc != ED_OK) {
            ck_assert_int_eq(rc, ED_ERROR);
            continue;
        }
        check_normal(out, olen, len);
        if (memchr(out, '%', olen) == NULL) {
            ck_assert_int_eq(ed_http_normalize_path(out, olen, again, &alen),
                             ED_OK);
            ck_assert(alen == olen && memcmp(again, out, olen) == 0);
        }
    }
}
END_TEST

Suite *
ed_test_http_path_suite(void)
{
    Suite *s = suite_create("http_path");
    TCase *tc;

    tc = tcase_create("normalize");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_path_table, 0, (int)ed_nelems(cases));
    tcase_add_test(tc, test_path_random);
    suite_add_tcase(s, tc);
    return s;
}
