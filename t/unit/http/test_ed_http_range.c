/* Unit tests of the Range header parser (ed_http_range.c). */
#include <check.h>

#include "ed_core.h"
#include "ed_http_range.h"

typedef struct {
    const char *in;
    int64_t     size;
    int         rc;        /* ED_HTTP_RANGE_* */
    size_t      n;
    int64_t     r[6];      /* start, end (exclusive) pairs */
} range_case_t;

#define OK1(in, size, a, b) { in, size, ED_HTTP_RANGE_OK, 1, { a, b } }
#define OK2(in, size, a, b, c, d)                                            \
    { in, size, ED_HTTP_RANGE_OK, 2, { a, b, c, d } }
#define OK3(in, size, a, b, c, d, e, f)                                      \
    { in, size, ED_HTTP_RANGE_OK, 3, { a, b, c, d, e, f } }
#define IGN(in, size) { in, size, ED_HTTP_RANGE_IGNORE, 0, { 0 } }
#define BAD(in, size) { in, size, ED_HTTP_RANGE_UNSATISFIABLE, 0, { 0 } }

static const range_case_t cases[] = {
    /* Single ranges. */
    OK1("bytes=0-0", 100, 0, 1),
    OK1("bytes=0-99", 100, 0, 100),
    OK1("bytes=10-19", 100, 10, 20),
    OK1("bytes=99-99", 100, 99, 100),
    OK1("bytes=0-", 100, 0, 100),
    OK1("bytes=50-", 100, 50, 100),
    OK1("bytes=99-", 100, 99, 100),
    /* A last-pos past the end is clamped. */
    OK1("bytes=10-1000", 100, 10, 100),
    OK1("bytes=0-99999999999999999999999999", 100, 0, 100),
    /* Suffixes. */
    OK1("bytes=-1", 100, 99, 100),
    OK1("bytes=-10", 100, 90, 100),
    OK1("bytes=-100", 100, 0, 100),
    OK1("bytes=-1000", 100, 0, 100),
    OK1("bytes=-99999999999999999999999999", 100, 0, 100),
    /* Unit case, list syntax, whitespace around commas. */
    OK1("BYTES=1-2", 100, 1, 3),
    OK1("Bytes=1-2", 100, 1, 3),
    OK1("bytes=1-2,", 100, 1, 3),
    OK1("bytes=,1-2", 100, 1, 3),
    OK1("bytes=1-2 ,", 100, 1, 3),
    OK2("bytes=0-9,20-29", 100, 0, 10, 20, 30),
    OK2("bytes=0-9, 20-29", 100, 0, 10, 20, 30),
    OK2("bytes=0-9 , 20-29", 100, 0, 10, 20, 30),
    OK2("bytes=0-9,\t20-29", 100, 0, 10, 20, 30),
    OK2("bytes=0-9,,,20-29", 100, 0, 10, 20, 30),
    OK2("bytes=20-29,0-9", 100, 20, 30, 0, 10),
    OK2("bytes=0-0,-1", 100, 0, 1, 99, 100),
    OK2("bytes=0-9,10-19", 100, 0, 10, 10, 20),   /* adjacent: fine */
    OK3("bytes=0-0,2-2,4-", 5, 0, 1, 2, 3, 4, 5),
    /* Unsatisfiable parts are dropped, the rest served. */
    OK1("bytes=0-9,200-300", 100, 0, 10),
    OK1("bytes=200-,5-5", 100, 5, 6),
    OK1("bytes=-0,5-5", 100, 5, 6),
    /* Nothing satisfiable: 416. */
    BAD("bytes=100-", 100),
    BAD("bytes=100-200", 100),
    BAD("bytes=1000-", 100),
    BAD("bytes=-0", 100),
    BAD("bytes=100-,200-", 100),
    BAD("bytes=0-", 0),
    BAD("bytes=0-0", 0),
    BAD("bytes=99999999999999999999999999-", 100),
    /* An empty file asked for its end: the whole (empty) file. */
    IGN("bytes=-5", 0),
    /* Invalid: ignored. */
    IGN("", 100),
    IGN("bytes", 100),
    IGN("bytes=", 100),
    IGN("bytes= ", 100),
    IGN("bytes=,", 100),
    IGN("bytes =0-1", 100),
    IGN("bytes= 0-1x", 100),
    IGN("items=0-1", 100),
    IGN("bites=0-1", 100),
    IGN("bytes=a-b", 100),
    IGN("bytes=1", 100),
    IGN("bytes=-", 100),
    IGN("bytes=--1", 100),
    IGN("bytes=1--2", 100),
    IGN("bytes=-1-2", 100),
    IGN("bytes=+1-2", 100),
    IGN("bytes=1-+2", 100),
    IGN("bytes=0x1-2", 100),
    IGN("bytes=1 -2", 100),
    IGN("bytes=1- 2", 100),
    IGN("bytes=5-4", 100),
    IGN("bytes=0-1;x", 100),
    IGN("bytes=0-1 2-3", 100),
    IGN("bytes=0-1,x", 100),
    IGN("bytes=0-1,5-4", 100),
    IGN("bytes=5-4,200-", 100),
    /* Overlaps: the file once, not many times. */
    IGN("bytes=0-9,5-14", 100),
    IGN("bytes=0-,0-", 100),
    IGN("bytes=0-99,0-99", 100),
    IGN("bytes=-50,0-", 100),
    IGN("bytes=10-20,0-10", 100),
    IGN("bytes=1-1,1-1", 100),
};

START_TEST(test_range_table)
{
    const range_case_t *c = &cases[_i];
    ed_http_range_t     out[ED_HTTP_RANGES_MAX];
    size_t              n = 99, i;
    int                 rc;

    rc = ed_http_range_parse(c->in, strlen(c->in), c->size, out,
                             ED_HTTP_RANGES_MAX, &n);
    ck_assert_msg(rc == c->rc, "\"%s\" size %lld: rc %d, expected %d",
                  c->in, (long long)c->size, rc, c->rc);
    if (rc != ED_HTTP_RANGE_OK) {
        ck_assert_msg(n == 0, "\"%s\": n %zu", c->in, n);
        return;
    }
    ck_assert_msg(n == c->n, "\"%s\": %zu ranges, expected %zu", c->in, n,
                  c->n);
    for (i = 0; i < n; i++) {
        ck_assert_msg(out[i].start == c->r[2 * i]
                          && out[i].end == c->r[2 * i + 1],
                      "\"%s\" range %zu: [%lld, %lld), expected [%lld, "
                      "%lld)",
                      c->in, i, (long long)out[i].start,
                      (long long)out[i].end, (long long)c->r[2 * i],
                      (long long)c->r[2 * i + 1]);
    }
}
END_TEST

/* The cap counts range-specs, satisfiable or not: a thousand tiny parts
 * cost the server nothing but the whole file once. */
START_TEST(test_range_cap)
{
    ed_http_range_t out[ED_HTTP_RANGES_MAX];
    char            buf[4096], *p;
    size_t          n, i;
    int             rc;

    p = buf + sprintf(buf, "bytes=");
    for (i = 0; i < ED_HTTP_RANGES_MAX; i++) {
        p += sprintf(p, "%s%zu-%zu", i ? "," : "", i * 10, i * 10 + 4);
    }
    rc = ed_http_range_parse(buf, (size_t)(p - buf), 1000, out,
                             ED_HTTP_RANGES_MAX, &n);
    ck_assert_int_eq(rc, ED_HTTP_RANGE_OK);
    ck_assert_uint_eq(n, ED_HTTP_RANGES_MAX);
    ck_assert(out[15].start == 150 && out[15].end == 155);

    p += sprintf(p, ",900-901");
    rc = ed_http_range_parse(buf, (size_t)(p - buf), 1000, out,
                             ED_HTTP_RANGES_MAX, &n);
    ck_assert_int_eq(rc, ED_HTTP_RANGE_IGNORE);
    ck_assert_uint_eq(n, 0);

    /* Unsatisfiable specs count too. */
    p = buf + sprintf(buf, "bytes=0-0");
    for (i = 0; i < ED_HTTP_RANGES_MAX; i++) {
        p += sprintf(p, ",5000-");
    }
    rc = ed_http_range_parse(buf, (size_t)(p - buf), 1000, out,
                             ED_HTTP_RANGES_MAX, &n);
    ck_assert_int_eq(rc, ED_HTTP_RANGE_IGNORE);

    /* A smaller cap. */
    rc = ed_http_range_parse("bytes=0-0,2-2,4-4", 17, 10, out, 2, &n);
    ck_assert_int_eq(rc, ED_HTTP_RANGE_IGNORE);
    rc = ed_http_range_parse("bytes=0-0,2-2", 13, 10, out, 2, &n);
    ck_assert_int_eq(rc, ED_HTTP_RANGE_OK);
    ck_assert_uint_eq(n, 2);
}
END_TEST

/* Only len bytes are read: what follows is not part of the value. */
START_TEST(test_range_length)
{
    ed_http_range_t out[ED_HTTP_RANGES_MAX];
    size_t          n;
    int             rc;

    rc = ed_http_range_parse("bytes=0-9XYZ", 8, 100, out,
                             ED_HTTP_RANGES_MAX, &n);
    ck_assert_int_eq(rc, ED_HTTP_RANGE_OK);
    ck_assert(n == 1 && out[0].start == 0 && out[0].end == 100);
    rc = ed_http_range_parse("bytes=5-", 7, 100, out, ED_HTTP_RANGES_MAX,
                             &n);
    ck_assert_int_eq(rc, ED_HTTP_RANGE_IGNORE);
}
END_TEST

/* Whatever the input, satisfiable ranges lie within the file, are not
 * empty and do not overlap. */
START_TEST(test_range_random)
{
    static const char alpha[] = "bytes=0123456789-, \t";
    ed_http_range_t   out[ED_HTTP_RANGES_MAX];
    char              in[40];
    uint32_t          seed = 12345;
    size_t            len, n, i, j, k;
    int64_t           size;
    int               rc;

    for (k = 0; k < 200000; k++) {
        seed = seed * 1103515245 + 12345;
        len = 6 + (seed >> 16) % 30;
        memcpy(in, "bytes=", 6);
        for (i = 6; i < len; i++) {
            seed = seed * 1103515245 + 12345;
            in[i] = alpha[6 + (seed >> 16) % (sizeof(alpha) - 7)];
        }
        seed = seed * 1103515245 + 12345;
        size = (seed >> 16) % 200;
        rc = ed_http_range_parse(in, len, size, out, ED_HTTP_RANGES_MAX,
                                 &n);
        if (rc != ED_HTTP_RANGE_OK) {
            ck_assert_uint_eq(n, 0);
            continue;
        }
        ck_assert(n >= 1 && n <= ED_HTTP_RANGES_MAX);
        for (i = 0; i < n; i++) {
            ck_assert(out[i].start >= 0 && out[i].start < out[i].end
                      && out[i].end <= size);
            for (j = i + 1; j < n; j++) {
                ck_assert(out[i].end <= out[j].start
                          || out[j].end <= out[i].start);
            }
        }
    }
}
END_TEST

Suite *
ed_test_http_range_suite(void)
{
    Suite *s = suite_create("http_range");
    TCase *tc;

    tc = tcase_create("parse");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_range_table, 0, (int)ed_nelems(cases));
    tcase_add_test(tc, test_range_cap);
    tcase_add_test(tc, test_range_length);
    tcase_add_test(tc, test_range_random);
    suite_add_tcase(s, tc);
    return s;
}
