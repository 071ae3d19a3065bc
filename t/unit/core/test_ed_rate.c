/* Unit tests of rate limiting (ed_rate.c): rate parsing, the leaky-bucket
 * step, and the shared table (bursts, refill, keys, eviction). */
#include <check.h>

#include "ed_rate.h"

typedef struct {
    const char *in;
    int64_t     rate;
} rate_case_t;

static const rate_case_t rate_cases[] = {
    { "10r/s", 10000 }, { "1r/s", 1000 }, { "1000000r/s", 1000000000 },
    { "60r/m", 1000 }, { "30r/m", 500 }, { "1r/m", 16 },
    { "0r/s", -1 }, { "1000001r/s", -1 }, { "10r/h", -1 }, { "10/s", -1 },
    { "r/s", -1 }, { "10", -1 }, { "", -1 }, { "-1r/s", -1 },
    { "10 r/s", -1 }, { "10r/ss", -1 }, { "1.5r/s", -1 },
};

START_TEST(test_rate_parse)
{
    const rate_case_t *t = &rate_cases[_i];

    ck_assert_msg(ed_rate_parse(t->in, strlen(t->in)) == t->rate, "%s",
                  t->in);
}
END_TEST

START_TEST(test_rate_step)
{
    int64_t e = 0;

    /* 1r/s, burst 2: the bucket holds two requests beyond the first. */
    ck_assert_int_eq(ed_rate_step(&e, 0, 1000, 2), ED_OK);
    ck_assert_int_eq(e, 1000);
    ck_assert_int_eq(ed_rate_step(&e, 0, 1000, 2), ED_OK);
    ck_assert_int_eq(e, 2000);
    ck_assert_int_eq(ed_rate_step(&e, 0, 1000, 2), ED_DECLINED);
    ck_assert_int_eq(e, 2000);
    /* Half a second drains half a request: still too much. */
    ck_assert_int_eq(ed_rate_step(&e, 500, 1000, 2), ED_DECLINED);
    ck_assert_int_eq(ed_rate_step(&e, 1000, 1000, 2), ED_OK);
    ck_assert_int_eq(e, 2000);
    /* A long pause empties the bucket; the excess never goes negative. */
    ck_assert_int_eq(ed_rate_step(&e, 3600000, 1000, 2), ED_OK);
    ck_assert_int_eq(e, 0);
    /* Keeping exactly to the rate passes with burst 0. */
    e = 0;
    ck_assert_int_eq(ed_rate_step(&e, 1000, 1000, 0), ED_OK);
    ck_assert_int_eq(ed_rate_step(&e, 1000, 1000, 0), ED_OK);
    ck_assert_int_eq(ed_rate_step(&e, 999, 1000, 0), ED_DECLINED);
    /* Huge gaps and rates stay within 64 bits. */
    e = ED_BURST_MAX * 1000;
    ck_assert_int_eq(ed_rate_step(&e, INT64_MAX, ED_RATE_MAX * 1000,
                                  ED_BURST_MAX), ED_OK);
    ck_assert_int_eq(e, 0);
    ck_assert_int_eq(ed_rate_step(&e, -5, 1000, 1), ED_OK);
    ck_assert_int_eq(e, 1000);
}
END_TEST

START_TEST(test_rate_table)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;
    uint64_t         a = ed_rate_hash("10.0.0.1", 8);
    uint64_t         b = ed_rate_hash("10.0.0.2", 8);
    ed_msec_t        now = 1000000;
    int              i;

    ck_assert_ptr_nonnull(pool);
    t = ed_rate_table_create(pool, now);
    ck_assert_ptr_nonnull(t);
    ck_assert(a != b);
    /* 1r/s burst 2: three pass, the fourth is refused. */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(ed_rate_table_take(t, a, now, 1000, 2), ED_OK);
    }
    ck_assert_int_eq(ed_rate_table_take(t, a, now, 1000, 2), ED_DECLINED);
    /* Another key has its own bucket. */
    ck_assert_int_eq(ed_rate_table_take(t, b, now, 1000, 2), ED_OK);
    /* A second later one more request passes, then none. */
    now += 1000;
    ck_assert_int_eq(ed_rate_table_take(t, a, now, 1000, 2), ED_OK);
    ck_assert_int_eq(ed_rate_table_take(t, a, now, 1000, 2), ED_DECLINED);
    ed_pool_destroy(pool);
}
END_TEST

/* Workers' clocks differ by a few ms: a request stamped just before the
 * stored time counts as no time passed, not as an idle century. */
START_TEST(test_rate_table_clock_skew)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;
    uint64_t         a = ed_rate_hash("10.0.0.1", 8);
    ed_msec_t        now = 1000000;
    int              i;

    ck_assert_ptr_nonnull(pool);
    t = ed_rate_table_create(pool, now - 5000);
    ck_assert_ptr_nonnull(t);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(ed_rate_table_take(t, a, now + 1, 1000, 2), ED_OK);
    }
    ck_assert_int_eq(ed_rate_table_take(t, a, now + 1, 1000, 2),
                     ED_DECLINED);
    for (i = 0; i < 20; i++) {
        ck_assert_int_eq(ed_rate_table_take(t, a, now + (i & 1), 1000, 2),
                         ED_DECLINED);
    }
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_rate_table_evicts_oldest)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;
    uint64_t         sets = ED_RATE_SLOTS / ED_RATE_WAYS, k;
    ed_msec_t        now = 5000;
    int              i;

    t = ed_rate_table_create(pool, now);
    ck_assert_ptr_nonnull(t);
    /* Fill one set (same index, different keys), each key to its limit
     * (burst 0: one request), oldest first. */
    for (i = 0; i < ED_RATE_WAYS; i++) {
        k = 7 + (uint64_t)i * sets;
        ck_assert_int_eq(ed_rate_table_take(t, k, now + i, 1, 0), ED_OK);
        ck_assert_int_eq(ed_rate_table_take(t, k, now + i, 1, 0),
                         ED_DECLINED);
    }
    /* A fifth key takes the oldest slot (the first key's), which then
     * starts over; the others keep their state. */
    k = 7 + (uint64_t)ED_RATE_WAYS * sets;
    ck_assert_int_eq(ed_rate_table_take(t, k, now + 10, 1, 0), ED_OK);
    ck_assert_int_eq(ed_rate_table_take(t, 7 + sets, now + 10, 1, 0),
                     ED_DECLINED);
    ck_assert_int_eq(ed_rate_table_take(t, k, now + 10, 1, 0), ED_DECLINED);
    ck_assert_int_eq(ed_rate_table_take(t, 7, now + 11, 1, 0), ED_OK);
    ed_pool_destroy(pool);
}
END_TEST

Suite *
ed_test_rate_suite(void)
{
    Suite *s = suite_create("rate");
    TCase *tc;

    tc = tcase_create("rate");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_rate_parse, 0, (int)ed_nelems(rate_cases));
    tcase_add_test(tc, test_rate_step);
    tcase_add_test(tc, test_rate_table);
    tcase_add_test(tc, test_rate_table_evicts_oldest);
    tcase_add_test(tc, test_rate_table_clock_skew);
    suite_add_tcase(s, tc);
    return s;
}
