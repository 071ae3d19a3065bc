/* Unit tests of rate limiting (ed_rate.c): rate parsing, the leaky-bucket
 * step, the keyed hash, and the shared table (bursts, refill, keys, a
 * full table failing closed). */
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

/* 1r/m: a key that passed once refills 62.5 s later. */
#define RATE_1M   16
#define REFILL_1M 62500

START_TEST(test_siphash_vectors)
{
    /* The reference vectors: key 00..0f, message 00..len-1. */
    static const struct {
        size_t   len;
        uint64_t h;
    } v[] = {
        { 0, UINT64_C(0x726fdb47dd0e0e31) },
        { 8, UINT64_C(0x93f5f5799a932462) },
        { 15, UINT64_C(0xa129ca6149be45e5) },
        { 63, UINT64_C(0x958a324ceb064572) },
    };
    uint64_t      k[2] = { UINT64_C(0x0706050403020100),
                           UINT64_C(0x0f0e0d0c0b0a0908) };
    unsigned char m[64];
    size_t        i;

    for (i = 0; i < sizeof(m); i++) {
        m[i] = (unsigned char)i;
    }
    for (i = 0; i < ed_nelems(v); i++) {
        ck_assert_msg(ed_siphash(k, m, v[i].len) == v[i].h, "len %zu",
                      v[i].len);
    }
}
END_TEST

START_TEST(test_rate_hash_keyed)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t1, *t2;

    t1 = ed_rate_table_create(pool);
    t2 = ed_rate_table_create(pool);
    ck_assert_ptr_nonnull(t1);
    ck_assert_ptr_nonnull(t2);
    ck_assert(ed_rate_hash(t1, "10.0.0.1", 8) == ed_rate_hash(t1, "10.0.0.1",
                                                              8));
    ck_assert(ed_rate_hash(t1, "10.0.0.1", 8) != ed_rate_hash(t1, "10.0.0.2",
                                                              8));
    /* Each table has its own key: what collides in one does not in the
     * other. */
    ck_assert(ed_rate_hash(t1, "10.0.0.1", 8) != ed_rate_hash(t2, "10.0.0.1",
                                                              8));
    ck_assert(ed_rate_hash(t1, "", 0) != 0);
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_rate_table)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;
    uint64_t         a, b;
    ed_msec_t        now = 1000000;
    int              i;

    ck_assert_ptr_nonnull(pool);
    t = ed_rate_table_create(pool);
    ck_assert_ptr_nonnull(t);
    a = ed_rate_hash(t, "10.0.0.1", 8);
    b = ed_rate_hash(t, "10.0.0.2", 8);
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
    uint64_t         a;
    ed_msec_t        now = 1000000;
    int              i;

    ck_assert_ptr_nonnull(pool);
    t = ed_rate_table_create(pool);
    ck_assert_ptr_nonnull(t);
    a = ed_rate_hash(t, "10.0.0.1", 8);
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

/* The i-th of many keys whose two sets are both s1 and s2 (the bits in
 * between pick neither set). */
static uint64_t
colliding(size_t s1, size_t s2, uint64_t i)
{
    return (uint64_t)s2 << 32 | (i + 1) << 16 | s1;
}

/* Keys that all fall in the same two sets: while the 32 buckets hold
 * keys over their rate, a new key is refused (ED_AGAIN), never given a
 * bucket that another key still needs; a bucket goes to a new key only
 * once it has refilled. */
START_TEST(test_rate_table_full_fails_closed)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;
    ed_msec_t        now = 5000;
    uint64_t         k, ways = 2 * ED_RATE_WAYS;

    t = ed_rate_table_create(pool);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(ED_RATE_SET1(colliding(7, 900, 40)), 7);
    ck_assert_uint_eq(ED_RATE_SET2(colliding(7, 900, 40)), 900);
    /* Fill both sets, one key per ms; 1r/m, burst 0. */
    for (k = 0; k < ways; k++) {
        ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, k),
                                            now + (ed_msec_t)k, RATE_1M, 0),
                         ED_OK);
    }
    now += (ed_msec_t)ways;
    /* The table is full there: new keys are refused, and every key in
     * it keeps its state (refused too). */
    for (k = ways; k < ways + 8; k++) {
        ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, k), now,
                                            RATE_1M, 0), ED_AGAIN);
    }
    for (k = 0; k < ways; k++) {
        ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, k), now,
                                            RATE_1M, 0), ED_DECLINED);
    }
    /* A key of only one of the sets finds room in its other one. */
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 901, 0), now,
                                        RATE_1M, 0), ED_OK);
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 901, 0), now,
                                        RATE_1M, 0), ED_DECLINED);
    /* Just before the first key refills: still full. */
    now = 5000 + REFILL_1M - 1;
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, ways), now,
                                        RATE_1M, 0), ED_AGAIN);
    /* Once it has, a new key takes its bucket (the first key's alone),
     * and the first key comes back as a new key only when a bucket is
     * refilled again: with the next ms, the second key's. */
    now++;
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, ways), now,
                                        RATE_1M, 0), ED_OK);
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, 0), now,
                                        RATE_1M, 0), ED_AGAIN);
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, 1), now,
                                        RATE_1M, 0), ED_DECLINED);
    now++;
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, 0), now,
                                        RATE_1M, 0), ED_OK);
    ck_assert_int_eq(ed_rate_table_take(t, colliding(7, 900, 1), now,
                                        RATE_1M, 0), ED_AGAIN);
    ed_pool_destroy(pool);
}
END_TEST

/* The attack of the issue: more colliding keys than buckets, each
 * trying once a second for three minutes at 1r/m, burst 0. No key ever
 * passes twice within a minute (62.5 s at 16 milli-requests/s). */
START_TEST(test_rate_table_colliding_keys_keep_rate)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;
    ed_msec_t        now, last[80];
    uint64_t         k, n = 80;
    int              rc, passes = 0;

    t = ed_rate_table_create(pool);
    ck_assert_ptr_nonnull(t);
    for (k = 0; k < n; k++) {
        last[k] = -1;
    }
    for (now = 1000; now < 1000 + 180000; now += 1000) {
        for (k = 0; k < n; k++) {
            rc = ed_rate_table_take(t, colliding(33, 33, k), now, RATE_1M, 0);
            if (rc != ED_OK) {
                continue;
            }
            ck_assert_msg(last[k] < 0 || now - last[k] >= REFILL_1M,
                          "key %llu passed at %lld and %lld",
                          (unsigned long long)k, (long long)last[k],
                          (long long)now);
            last[k] = now;
            passes++;
        }
    }
    /* One set (both choices the same) holds 16 keys: those pass at
     * once, and again each time their buckets refill (s 64, 127), the
     * others never: 48 in all. */
    ck_assert_int_eq(passes, 3 * ED_RATE_WAYS);
    ed_pool_destroy(pool);
}
END_TEST

/* Keys from the real (keyed) hash, many more than buckets: the two
 * choices fill most of the table before any key is refused, no key
 * passes twice within its refill time, and all pass again once every
 * bucket has refilled. */
START_TEST(test_rate_table_fills_evenly)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;
    char             key[32];
    int              i, n = ED_RATE_SLOTS + ED_RATE_SLOTS / 4, len, rc;
    int              ok = 0, again = 0, first_again = -1;
    ed_msec_t        now = 1000;

    t = ed_rate_table_create(pool);
    ck_assert_ptr_nonnull(t);
    for (i = 0; i < n; i++) {
        len = snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16,
                       (i >> 8) & 255, i & 255);
        rc = ed_rate_table_take(t, ed_rate_hash(t, key, (size_t)len), now,
                                RATE_1M, 0);
        ck_assert(rc == ED_OK || rc == ED_AGAIN);
        if (rc == ED_OK) {
            ok++;
        } else if (again++ == 0) {
            first_again = i;
        }
    }
    ck_assert_int_le(ok, ED_RATE_SLOTS);
    ck_assert_int_ge(first_again, ED_RATE_SLOTS * 3 / 4);
    ck_assert_int_ge(ok, ED_RATE_SLOTS * 9 / 10);
    /* Within the minute no key passes again, stored or not. */
    now += REFILL_1M - 1;
    for (i = 0; i < n; i++) {
        len = snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16,
                       (i >> 8) & 255, i & 255);
        ck_assert_int_ne(ed_rate_table_take(t, ed_rate_hash(t, key,
                                                            (size_t)len),
                                            now, RATE_1M, 0), ED_OK);
    }
    /* Once refilled, the first keys pass again (their buckets or
     * refilled ones). */
    now += 1;
    for (i = 0; i < ED_RATE_SLOTS / 2; i++) {
        len = snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16,
                       (i >> 8) & 255, i & 255);
        ck_assert_int_eq(ed_rate_table_take(t, ed_rate_hash(t, key,
                                                            (size_t)len),
                                            now, RATE_1M, 0), ED_OK);
    }
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_rate_table_full_report)
{
    ed_pool_t       *pool = ed_pool_create(1024);
    ed_rate_table_t *t;

    t = ed_rate_table_create(pool);
    ck_assert_ptr_nonnull(t);
    ck_assert(ed_rate_table_full_report(t, 1000));
    ck_assert(!ed_rate_table_full_report(t, 1000));
    ck_assert(!ed_rate_table_full_report(t, 1000 + ED_RATE_FULL_REPORT - 1));
    ck_assert(ed_rate_table_full_report(t, 1000 + ED_RATE_FULL_REPORT));
    ck_assert(!ed_rate_table_full_report(t, 1000 + ED_RATE_FULL_REPORT));
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
    tcase_add_test(tc, test_siphash_vectors);
    tcase_add_test(tc, test_rate_hash_keyed);
    tcase_add_test(tc, test_rate_table);
    tcase_add_test(tc, test_rate_table_clock_skew);
    tcase_add_test(tc, test_rate_table_full_fails_closed);
    tcase_add_test(tc, test_rate_table_colliding_keys_keep_rate);
    tcase_add_test(tc, test_rate_table_fills_evenly);
    tcase_add_test(tc, test_rate_table_full_report);
    suite_add_tcase(s, tc);
    return s;
}
