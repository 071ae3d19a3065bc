/* Unit tests of the Accept-Encoding parser (ed_http_accepts_coding in
 * ed_http_range.c) as the gzip filter asks it: q-values, case, "*",
 * identity, x-gzip and malformed lists. */
#include <check.h>

#include "ed_core.h"
#include "ed_http_range.h"

typedef struct {
    const char *ae;
    bool        gzip;
} gz_case_t;

static const gz_case_t gz_cases[] = {
    /* Plain lists and case. */
    { "gzip", true },
    { "GZIP", true },
    { "GZip", true },
    { "deflate, gzip, br", true },
    { "br, deflate", false },
    { "gzip, deflate, br, zstd", true },
    { "x-gzip", true },
    { "X-GZIP;q=0.5", true },
    { "gzipx", false },
    { "gzi", false },
    { "xgzip", false },
    /* q-values: 0 in any spelling refuses; anything above accepts. */
    { "gzip;q=0", false },
    { "gzip;q=0.", false },
    { "gzip;q=0.0", false },
    { "gzip;q=0.000", false },
    { "gzip;q=0.001", true },
    { "gzip;q=0.5", true },
    { "gzip;q=1", true },
    { "gzip;q=1.", true },
    { "gzip;q=1.000", true },
    { "gzip;Q=0.8", true },
    { "gzip ; q=0.5", true },
    { "gzip;\tq=0", false },
    { "br;q=1, gzip;q=0", false },
    { "gzip;q=0, br", false },
    /* The first mention counts. */
    { "gzip;q=0, gzip", false },
    { "gzip, gzip;q=0", true },
    /* Invalid q-values are q=0 (not acceptable). */
    { "gzip;q=", false },
    { "gzip;q=2", false },
    { "gzip;q=1.5", false },
    { "gzip;q=0.0001", false },
    { "gzip;q=abc", false },
    { "gzip;q=-1", false },
    { "gzip;q=.5", false },
    { "gzip;q=\"1\"", false },
    /* "*": stands for codings not listed. */
    { "*", true },
    { "*;q=0", false },
    { "*;q=0.1", true },
    { "*, gzip;q=0", false },
    { "gzip;q=0, *", false },
    { "br, *;q=0", false },
    { "gzip, *;q=0", true },
    { "x-gzip;q=0, *", false },
    /* identity is another coding: it neither accepts nor refuses gzip. */
    { "identity", false },
    { "identity;q=0", false },
    { "identity;q=0, *", true },
    { "identity, gzip;q=0.3", true },
    /* Empty and odd separators. */
    { "", false },
    { ",", false },
    { " , ,gzip ,, ", true },
    { "\tgzip\t", true },
    /* Other parameters are skipped; quoted strings may hold commas. */
    { "gzip;level=1", true },
    { "gzip;level=1;q=0", false },
    { "gzip;a=\"x,y\";q=0", false },
    { "br;a=\"gzip, x\"", false },
    { "br;a=\"\\\"gzip\", gzip", true },
    /* Malformed elements are skipped, the rest still counts. */
    { "gzip q=1", false },
    { "gzip;", false },
    { "gzip;=1", false },
    { "gzip;q", false },
    { "gz ip, gzip", true },
    { "gzip;a=\"unterminated", false },
    { "@gzip", false },
    { ";q=1, gzip", true },
    { "gzip/1", false },
};

START_TEST(test_gzip_accepted)
{
    const gz_case_t *c = &gz_cases[_i];
    ed_str_t         v;

    v.data = (char *)c->ae;
    v.len = strlen(c->ae);
    ck_assert_msg(ed_http_accepts_coding(&v, "gzip", 4) == c->gzip,
                  "\"%s\": expected %s", c->ae, c->gzip ? "gzip" : "none");
}
END_TEST

START_TEST(test_absent_header)
{
    ck_assert(!ed_http_accepts_coding(NULL, "gzip", 4));
}
END_TEST

/* The value is not NUL-terminated: nothing past len is read. */
START_TEST(test_bounded)
{
    const char *buf = "gzip;q=0.5XXXX";
    ed_str_t    v;

    v.data = (char *)buf;
    v.len = 4;
    ck_assert(ed_http_accepts_coding(&v, "gzip", 4));
    v.len = 8;              /* "gzip;q=0" */
    ck_assert(!ed_http_accepts_coding(&v, "gzip", 4));
    v.len = 3;              /* "gzi" */
    ck_assert(!ed_http_accepts_coding(&v, "gzip", 4));
}
END_TEST

/* Asking for another coding: x-gzip is an alias of gzip only. */
START_TEST(test_other_codings)
{
    ed_str_t v;

    ed_str_set(&v, "x-gzip, br;q=0");
    ck_assert(!ed_http_accepts_coding(&v, "br", 2));
    ck_assert(!ed_http_accepts_coding(&v, "deflate", 7));
    ed_str_set(&v, "gzip, *;q=0.2");
    ck_assert(ed_http_accepts_coding(&v, "br", 2));
    ck_assert(ed_http_accepts_coding(&v, "x-gzip", 6));
    ed_str_set(&v, "identity;q=0");
    ck_assert(!ed_http_accepts_coding(&v, "identity", 8));
}
END_TEST

Suite *
ed_test_http_accept_encoding_suite(void)
{
    Suite *s = suite_create("http_accept_encoding");
    TCase *tc;

    tc = tcase_create("gzip");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_gzip_accepted, 0,
                        (int)ed_nelems(gz_cases));
    tcase_add_test(tc, test_absent_header);
    tcase_add_test(tc, test_bounded);
    tcase_add_test(tc, test_other_codings);
    suite_add_tcase(s, tc);
    return s;
}
