/* Unit tests of the shared counters of limit_conn (ed_slots.c): max per
 * key across workers, release, a full table refusing new keys only, and
 * the master giving back a dead worker's slots. */
#include <check.h>

#include "ed_slots.h"
#include "ed_pool.h"

START_TEST(test_slots_max_and_release)
{
    ed_pool_t  *pool = ed_pool_create(4096);
    ed_slots_t *t = ed_slots_create(pool, 64 * 1024, 2);
    uint64_t    h = ed_slots_hash(t, "1.2.3.4", 7);
    uint32_t    a, b, c;

    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(ed_slots_acquire(t, h, 0, 2, &a), ED_OK);
    ck_assert_int_eq(ed_slots_acquire(t, h, 1, 2, &b), ED_OK);
    ck_assert_uint_eq(a, b);
    /* The two workers together hold max. */
    ck_assert_int_eq(ed_slots_acquire(t, h, 0, 2, &c), ED_DECLINED);
    ck_assert_int_eq(ed_slots_acquire(t, h, 1, 2, &c), ED_DECLINED);
    ck_assert_uint_eq(ed_slots_held(t, h), 2);
    ed_slots_release(t, a, h, 1);
    ck_assert_uint_eq(ed_slots_held(t, h), 1);
    ck_assert_int_eq(ed_slots_acquire(t, h, 0, 2, &c), ED_OK);
    ed_slots_release(t, a, h, 0);
    ed_slots_release(t, a, h, 0);
    ck_assert_uint_eq(ed_slots_held(t, h), 0);
    /* A release of what is not held changes nothing. */
    ed_slots_release(t, a, h, 0);
    ck_assert_uint_eq(ed_slots_held(t, h), 0);
    /* Out of range ids are refused. */
    ck_assert_int_eq(ed_slots_acquire(t, h, 2, 2, &c), ED_ERROR);
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_slots_worker_gone)
{
    ed_pool_t  *pool = ed_pool_create(4096);
    ed_slots_t *t = ed_slots_create(pool, 64 * 1024, 3);
    uint64_t    h = ed_slots_hash(t, "k", 1), g = ed_slots_hash(t, "g", 1);
    uint32_t    i;
    int         n;

    ck_assert_ptr_nonnull(t);
    for (n = 0; n < 3; n++) {
        ck_assert_int_eq(ed_slots_acquire(t, h, 1, 5, &i), ED_OK);
    }
    ck_assert_int_eq(ed_slots_acquire(t, h, 2, 5, &i), ED_OK);
    ck_assert_int_eq(ed_slots_acquire(t, g, 1, 5, &i), ED_OK);
    ed_slots_worker_gone(t, 1);
    ck_assert_uint_eq(ed_slots_held(t, h), 1);
    ck_assert_uint_eq(ed_slots_held(t, g), 0);
    /* The new worker 1 starts from nothing; its releases of slots the
     * dead one took change nothing. */
    ed_slots_release(t, i, g, 1);
    ck_assert_uint_eq(ed_slots_held(t, g), 0);
    for (n = 0; n < 4; n++) {
        ck_assert_int_eq(ed_slots_acquire(t, h, 1, 5, &i), ED_OK);
    }
    ck_assert_int_eq(ed_slots_acquire(t, h, 0, 5, &i), ED_DECLINED);
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_slots_full)
{
    ed_pool_t  *pool = ed_pool_create(4096);
    ed_slots_t *t;
    uint64_t    h;
    uint32_t    i, first = 0;
    size_t      cap = ed_slots_capacity(1024, 1);
    char        key[16];
    unsigned    k;

    ck_assert_uint_eq(ed_slots_capacity(100, 1), 0);
    ck_assert_uint_ge(cap, 16);
    t = ed_slots_create(pool, 1024, 1);
    ck_assert_ptr_nonnull(t);
    /* Every counter of the table can be used before it refuses. */
    for (k = 0; k < 10000; k++) {
        snprintf(key, sizeof(key), "k%u", k);
        h = ed_slots_hash(t, key, strlen(key));
        if (ed_slots_acquire(t, h, 0, 1, &i) == ED_AGAIN) {
            first = k;
            break;
        }
    }
    ck_assert_uint_gt(first, 0);
    ck_assert_uint_le(first, cap);
    /* A key held keeps its count: a full table never lifts its limit. */
    h = ed_slots_hash(t, "k0", 2);
    ck_assert_int_eq(ed_slots_acquire(t, h, 0, 1, &i), ED_DECLINED);
    ck_assert(ed_slots_full_report(t, 1000000));
    ck_assert(!ed_slots_full_report(t, 1000001));
    ed_pool_destroy(pool);
}
END_TEST

Suite *
ed_test_slots_suite(void)
{
    Suite *s = suite_create("slots");
    TCase *tc = tcase_create("slots");

    tcase_add_test(tc, test_slots_max_and_release);
    tcase_add_test(tc, test_slots_worker_gone);
    tcase_add_test(tc, test_slots_full);
    suite_add_tcase(s, tc);
    return s;
}
