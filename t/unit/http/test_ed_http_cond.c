/* Unit tests of conditional-request evaluation (ed_http_range.c): entity
 * tag lists, the RFC 9110 13.2.2 order, If-Range; and Accept-Encoding. */
#include <check.h>

#include "ed_core.h"
#include "ed_http_range.h"

/* 1994-11-06 08:49:37 GMT and its HTTP forms. */
#define T0 784111777
#define D0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D0_850 "Sunday, 06-Nov-94 08:49:37 GMT"
#define D0_ASC "Sun Nov  6 08:49:37 1994"
#define D_BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define D_AFTER "Sun, 06 Nov 1994 08:49:38 GMT"

static const ed_str_t etag = ed_string("\"5f3a-1c2\"");

typedef struct {
    const char *list;
    bool        weak;
    bool        match;
} etag_case_t;

static const etag_case_t etag_cases[] = {
    { "\"5f3a-1c2\"", false, true },
    { "\"5f3a-1c2\"", true, true },
    { "W/\"5f3a-1c2\"", true, true },
    { "W/\"5f3a-1c2\"", false, false },
    { "*", false, true },
    { "*", true, true },
    { "\"x\", \"5f3a-1c2\"", false, true },
    { "\"x\",\"5f3a-1c2\"", true, true },
    { "\"x\" , W/\"5f3a-1c2\"", true, true },
    { ", ,\"5f3a-1c2\"", false, true },
    { "\"x\", \"y\"", true, false },
    { "\"5f3a-1c\"", true, false },
    { "\"5f3a-1c2", true, false },        /* unterminated */
    { "5f3a-1c2", true, false },          /* unquoted */
    { "\"5F3A-1C2\"", true, false },      /* tags are case-sensitive */
    { "w/\"5f3a-1c2\"", true, false },    /* W must be upper case */
    { "\"x\" \"5f3a-1c2\"", true, false }, /* no comma: malformed */
    { "", true, false },
    { "\"\"", true, false },
};

START_TEST(test_etag_match)
{
    const etag_case_t *c = &etag_cases[_i];

    ck_assert_msg(ed_http_etag_match(c->list, strlen(c->list), &etag,
                                     c->weak)
                      == c->match,
                  "%s (%s): expected %s", c->list,
                  c->weak ? "weak" : "strong", c->match ? "match" : "none");
}
END_TEST

START_TEST(test_etag_none)
{
    static const ed_str_t empty = ed_null_string;

    /* A representation without a tag matches only "*". */
    ck_assert(!ed_http_etag_match("\"x\"", 3, &empty, true));
    ck_assert(ed_http_etag_match("*", 1, &empty, true));
    ck_assert(!ed_http_etag_match("\"\"", 2, &empty, true));
}
END_TEST

typedef struct {
    const char *name;
    const char *im, *inm, *ims, *ius;   /* NULL: absent */
    bool        get_head;
    int         expect;
} cond_case_t;

#define C(name, im, inm, ims, ius, gh, expect)                               \
    { name, im, inm, ims, ius, gh, expect }

static const cond_case_t cond_cases[] = {
    C("nothing", NULL, NULL, NULL, NULL, true, 0),
    /* If-None-Match. */
    C("inm match", NULL, "\"5f3a-1c2\"", NULL, NULL, true, 304),
    C("inm weak match", NULL, "W/\"5f3a-1c2\"", NULL, NULL, true, 304),
    C("inm star", NULL, "*", NULL, NULL, true, 304),
    C("inm list", NULL, "\"a\", \"5f3a-1c2\"", NULL, NULL, true, 304),
    C("inm other", NULL, "\"a\"", NULL, NULL, true, 0),
    C("inm match POST", NULL, "\"5f3a-1c2\"", NULL, NULL, false, 412),
    C("inm other POST", NULL, "\"a\"", NULL, NULL, false, 0),
    /* If-Modified-Since: not modified when mtime <= date. */
    C("ims equal", NULL, NULL, D0, NULL, true, 304),
    C("ims later", NULL, NULL, D_AFTER, NULL, true, 304),
    C("ims earlier", NULL, NULL, D_BEFORE, NULL, true, 0),
    C("ims rfc850", NULL, NULL, D0_850, NULL, true, 304),
    C("ims asctime", NULL, NULL, D0_ASC, NULL, true, 304),
    C("ims invalid", NULL, NULL, "yesterday", NULL, true, 0),
    C("ims POST", NULL, NULL, D0, NULL, false, 0),
    /* If-None-Match wins over If-Modified-Since. */
    C("inm miss ims hit", NULL, "\"a\"", D0, NULL, true, 0),
    C("inm hit ims miss", NULL, "\"5f3a-1c2\"", D_BEFORE, NULL, true, 304),
    /* If-Match: strong comparison. */
    C("im match", "\"5f3a-1c2\"", NULL, NULL, NULL, true, 0),
    C("im star", "*", NULL, NULL, NULL, true, 0),
    C("im list", "\"a\", \"5f3a-1c2\"", NULL, NULL, NULL, false, 0),
    C("im other", "\"a\"", NULL, NULL, NULL, true, 412),
    C("im weak", "W/\"5f3a-1c2\"", NULL, NULL, NULL, true, 412),
    C("im empty", "", NULL, NULL, NULL, true, 412),
    /* If-Unmodified-Since: failed when mtime > date. */
    C("ius equal", NULL, NULL, NULL, D0, true, 0),
    C("ius later", NULL, NULL, NULL, D_AFTER, true, 0),
    C("ius earlier", NULL, NULL, NULL, D_BEFORE, true, 412),
    C("ius invalid", NULL, NULL, NULL, "soon", true, 0),
    /* If-Match present: If-Unmodified-Since is not looked at. */
    C("im hit ius miss", "\"5f3a-1c2\"", NULL, NULL, D_BEFORE, true, 0),
    C("im miss ius hit", "\"a\"", NULL, NULL, D_AFTER, true, 412),
    /* 412 comes before 304. */
    C("im miss inm hit", "\"a\"", "\"5f3a-1c2\"", NULL, NULL, true, 412),
    C("ius miss ims hit", NULL, NULL, D0, D_BEFORE, true, 412),
    C("im hit inm hit", "\"5f3a-1c2\"", "*", NULL, NULL, true, 304),
};

static ed_str_t *
str(ed_str_t *s, const char *v)
{
    if (v == NULL) {
        return NULL;
    }
    s->data = (char *)v;
    s->len = strlen(v);
    return s;
}

START_TEST(test_cond_table)
{
    const cond_case_t *c = &cond_cases[_i];
    ed_http_cond_t     cond;
    ed_str_t           a, b, d, e;
    int                rc;

    cond.if_match = str(&a, c->im);
    cond.if_none_match = str(&b, c->inm);
    cond.if_modified_since = str(&d, c->ims);
    cond.if_unmodified_since = str(&e, c->ius);
    rc = ed_http_cond_eval(&cond, &etag, T0, c->get_head);
    ck_assert_msg(rc == c->expect, "%s: %d, expected %d", c->name, rc,
                  c->expect);
}
END_TEST

/* last_modified off (mtime -1): the date conditions are not evaluated;
 * etag off (no tag): only "*" matches. */
START_TEST(test_cond_disabled)
{
    static const ed_str_t empty = ed_null_string;
    ed_http_cond_t        cond;
    ed_str_t              v;

    memset(&cond, 0, sizeof(cond));
    cond.if_modified_since = str(&v, D_AFTER);
    ck_assert_int_eq(ed_http_cond_eval(&cond, &etag, -1, true), 0);
    cond.if_modified_since = NULL;
    cond.if_unmodified_since = str(&v, D_BEFORE);
    ck_assert_int_eq(ed_http_cond_eval(&cond, &etag, -1, true), 0);
    cond.if_unmodified_since = NULL;
    cond.if_none_match = str(&v, "\"5f3a-1c2\"");
    ck_assert_int_eq(ed_http_cond_eval(&cond, &empty, T0, true), 0);
    cond.if_none_match = NULL;
    cond.if_match = str(&v, "\"5f3a-1c2\"");
    ck_assert_int_eq(ed_http_cond_eval(&cond, NULL, T0, true), 412);
}
END_TEST

START_TEST(test_if_range)
{
    static const ed_str_t empty = ed_null_string;
    ed_str_t              v;

    ck_assert(ed_http_cond_if_range(str(&v, "\"5f3a-1c2\""), &etag, T0));
    ck_assert(!ed_http_cond_if_range(str(&v, "\"other\""), &etag, T0));
    /* Weak tags never validate a range. */
    ck_assert(!ed_http_cond_if_range(str(&v, "W/\"5f3a-1c2\""), &etag,
                                     T0));
    ck_assert(!ed_http_cond_if_range(str(&v, "\"5f3a-1c2\""), &empty, T0));
    /* Dates match exactly. */
    ck_assert(ed_http_cond_if_range(str(&v, D0), &etag, T0));
    ck_assert(!ed_http_cond_if_range(str(&v, D_AFTER), &etag, T0));
    ck_assert(!ed_http_cond_if_range(str(&v, D_BEFORE), &etag, T0));
    ck_assert(!ed_http_cond_if_range(str(&v, D0), &etag, -1));
    ck_assert(!ed_http_cond_if_range(str(&v, "garbage"), &etag, T0));
    ck_assert(!ed_http_cond_if_range(str(&v, ""), &etag, T0));
}
END_TEST

/* ed_http_time writes an IMF-fixdate of 29 bytes whatever the time (a
 * file's mtime from tmpfs can be any 64-bit second). */
START_TEST(test_http_time_bounds)
{
    static const struct {
        long long   t;
        const char *date;
    } cases[] = {
        { T0, D0 },
        { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
        { -1, "Thu, 01 Jan 1970 00:00:00 GMT" },
        { -(1LL << 40), "Thu, 01 Jan 1970 00:00:00 GMT" },
        { 253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT" },
        { 253402300800LL, "Fri, 31 Dec 9999 23:59:59 GMT" },
        { 1LL << 45, "Fri, 31 Dec 9999 23:59:59 GMT" },
        { 1LL << 55, "Fri, 31 Dec 9999 23:59:59 GMT" },
        { 1LL << 62, "Fri, 31 Dec 9999 23:59:59 GMT" },
    };
    char   buf[64];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(buf, 'x', sizeof(buf));
        ck_assert_ptr_eq(ed_http_time(buf, (time_t)cases[i].t), buf + 29);
        ck_assert_str_eq(buf, cases[i].date);
    }
}
END_TEST

typedef struct {
    const char *ae;
    bool        br, gzip;
} ae_case_t;

static const ae_case_t ae_cases[] = {
    { "gzip", false, true },
    { "br", true, false },
    { "gzip, br", true, true },
    { "GZIP, Br", true, true },
    { "gzip;q=0", false, false },
    { "gzip; q=0.000, br;q=0.001", true, false },
    { "gzip;Q=0.5", false, true },
    { "gzip;q=1.0", false, true },
    { "br;q=0, gzip;q=0.5", false, true },
    { "*", true, true },
    { "*;q=0", false, false },
    { "*;q=1, br;q=0", false, true },
    { "br;q=0, *", false, true },
    { "identity", false, false },
    { "", false, false },
    { "x-gzip", false, true },
    { "gzipx, brotli", false, false },
    { " ,gzip ,, br ", true, true },
    { "gzip;level=1;q=0", false, false },
    { "deflate;q=0.5, gzip", false, true },
};

START_TEST(test_accepts)
{
    const ae_case_t *c = &ae_cases[_i];
    ed_str_t         v;

    v.data = (char *)c->ae;
    v.len = strlen(c->ae);
    ck_assert_msg(ed_http_accepts_coding(&v, "br", 2) == c->br,
                  "\"%s\": br", c->ae);
    ck_assert_msg(ed_http_accepts_coding(&v, "gzip", 4) == c->gzip,
                  "\"%s\": gzip", c->ae);
}
END_TEST

Suite *
ed_test_http_cond_suite(void)
{
    Suite *s = suite_create("http_cond");
    TCase *tc;

    tc = tcase_create("etag");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_etag_match, 0,
                        (int)ed_nelems(etag_cases));
    tcase_add_test(tc, test_etag_none);
    suite_add_tcase(s, tc);

    tc = tcase_create("eval");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_cond_table, 0, (int)ed_nelems(cond_cases));
    tcase_add_test(tc, test_cond_disabled);
    tcase_add_test(tc, test_if_range);
    tcase_add_test(tc, test_http_time_bounds);
    suite_add_tcase(s, tc);

    tc = tcase_create("accept_encoding");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_accepts, 0, (int)ed_nelems(ae_cases));
    suite_add_tcase(s, tc);
    return s;
}
