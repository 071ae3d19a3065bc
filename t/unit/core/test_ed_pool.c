/* Unit tests for arenas, arrays and the string helpers (src/core/ed_pool.c,
 * ed_array.c, ed_str.c). */
#include "ed_core.h"

#include <check.h>

START_TEST(test_pool_alignment)
{
    ed_pool_t *pool;
    void *p;
    char *s;
    size_t i;

    pool = ed_pool_create(1024);
    ck_assert_ptr_nonnull(pool);
    /* Odd-sized unaligned allocations in between must not break the
     * alignment of the next aligned one, in any block. */
    for (i = 1; i < 200; i++) {
        s = ed_pnalloc(pool, i % 13 + 1);
        ck_assert_ptr_nonnull(s);
        p = ed_palloc(pool, i);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % (2 * sizeof(void *)), 0);
        memset(p, 0xab, i);
    }
    p = ed_pcalloc(pool, 100);
    ck_assert_ptr_nonnull(p);
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(((unsigned char *)p)[i], 0);
    }
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_pool_small_block_size)
{
    ed_pool_t *pool;
    char *a, *b;

    /* A block size under the minimum is raised, not trusted. */
    pool = ed_pool_create(1);
    ck_assert_ptr_nonnull(pool);
    ck_assert_uint_ge(pool->block_size, 256);
    a = ed_palloc(pool, 100);
    b = ed_palloc(pool, 100);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ed_pool_destroy(pool);
    ed_pool_destroy(NULL);
}
END_TEST

START_TEST(test_pool_large)
{
    ed_pool_t *pool;
    char *big[8], *small;
    size_t i;

    pool = ed_pool_create(1024);
    for (i = 0; i < ed_nelems(big); i++) {
        big[i] = ed_palloc(pool, 100000 + i);
        ck_assert_ptr_nonnull(big[i]);
        ck_assert_uint_eq((uintptr_t)big[i] % 16, 0);
        memset(big[i], (int)i, 100000 + i);
        small = ed_pnalloc(pool, 10);
        ck_assert_ptr_nonnull(small);
        memset(small, 0xff, 10);
    }
    ck_assert_ptr_nonnull(pool->large);
    /* Every large allocation kept its contents. */
    for (i = 0; i < ed_nelems(big); i++) {
        ck_assert_int_eq(big[i][0], (char)i);
        ck_assert_int_eq(big[i][100000 + i - 1], (char)i);
    }
    ed_pool_destroy(pool);
}
END_TEST

static char order[16];
static int norder;

static void
record(void *data)
{
    order[norder++] = *(char *)data;
}

START_TEST(test_pool_reset)
{
    ed_pool_t *pool;
    char *first, *p;
    size_t i;
    static char a = 'a', b = 'b', c = 'c';

    pool = ed_pool_create(512);
    first = ed_palloc(pool, 16);
    for (i = 0; i < 100; i++) {
        ck_assert_ptr_nonnull(ed_palloc(pool, 200));
    }
    ck_assert_ptr_nonnull(ed_palloc(pool, 10000));
    ck_assert_int_eq(ed_pool_cleanup_add(pool, record, &a), ED_OK);
    ck_assert_int_eq(ed_pool_cleanup_add(pool, record, &b), ED_OK);
    ck_assert_int_eq(ed_pool_cleanup_add(pool, record, &c), ED_OK);
    norder = 0;
    ed_pool_reset(pool);
    /* Cleanups run once, last registered first. */
    ck_assert_int_eq(norder, 3);
    ck_assert_int_eq(memcmp(order, "cba", 3), 0);
    ck_assert_ptr_null(pool->large);
    /* The first block is reused from its start. */
    p = ed_palloc(pool, 16);
    ck_assert_ptr_eq(p, first);
    for (i = 0; i < 100; i++) {
        p = ed_palloc(pool, 300);
        ck_assert_ptr_nonnull(p);
        memset(p, 1, 300);
    }
    ck_assert_int_eq(ed_pool_cleanup_add(pool, record, &a), ED_OK);
    ck_assert_int_eq(ed_pool_cleanup_add(pool, record, &b), ED_OK);
    norder = 0;
    ed_pool_destroy(pool);
    ck_assert_int_eq(norder, 2);
    ck_assert_int_eq(memcmp(order, "ba", 2), 0);
}
END_TEST

START_TEST(test_pstrdup)
{
    ed_pool_t *pool;
    ed_str_t s;
    char *p;

    pool = ed_pool_create(256);
    p = ed_pstrdup(pool, "hello world", 5);
    ck_assert_str_eq(p, "hello");
    ck_assert_int_eq(ed_str_dup(pool, &s, "abc", 3), ED_OK);
    ck_assert_uint_eq(s.len, 3);
    ck_assert_str_eq(s.data, "abc");
    p = ed_pstrdup(pool, "", 0);
    ck_assert_str_eq(p, "");
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_array)
{
    ed_pool_t *pool;
    ed_array_t *a, b;
    int *v;
    size_t i;

    pool = ed_pool_create(512);
    a = ed_array_create(pool, 2, sizeof(int));
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->nelts, 0);
    for (i = 0; i < 1000; i++) {
        v = ed_array_push(a);
        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(*v, 0);
        *v = (int)i * 3;
    }
    ck_assert_uint_eq(a->nelts, 1000);
    ck_assert_uint_ge(a->nalloc, 1000);
    v = a->elts;
    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(v[i], (int)i * 3);
    }
    /* n = 0 still gives a usable array. */
    ck_assert_int_eq(ed_array_init(&b, pool, 0, sizeof(ed_str_t)), ED_OK);
    ck_assert_ptr_nonnull(ed_array_push(&b));
    ck_assert_ptr_nonnull(ed_array_push(&b));
    ck_assert_uint_eq(b.nelts, 2);
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_atoi)
{
    ck_assert_int_eq(ed_atoi("0", 1), 0);
    ck_assert_int_eq(ed_atoi("12345", 5), 12345);
    ck_assert_int_eq(ed_atoi("123", 2), 12);
    ck_assert_int_eq(ed_atoi("", 0), -1);
    ck_assert_int_eq(ed_atoi("-1", 2), -1);
    ck_assert_int_eq(ed_atoi("+1", 2), -1);
    ck_assert_int_eq(ed_atoi("1a", 2), -1);
    ck_assert_int_eq(ed_atoi(" 1", 2), -1);
    ck_assert_int_eq(ed_atoi("9223372036854775807", 19), INT64_MAX);
    ck_assert_int_eq(ed_atoi("9223372036854775808", 19), -1);
    ck_assert_int_eq(ed_atoi("9223372036854775810", 19), -1);
    ck_assert_int_eq(ed_atoi("99999999999999999999", 20), -1);
    ck_assert_int_eq(ed_atoi("00000000000000000000042", 23), 42);
}
END_TEST

START_TEST(test_hextoi)
{
    ck_assert_int_eq(ed_hextoi("0", 1), 0);
    ck_assert_int_eq(ed_hextoi("ff", 2), 255);
    ck_assert_int_eq(ed_hextoi("FF", 2), 255);
    ck_assert_int_eq(ed_hextoi("1aB2", 4), 0x1ab2);
    ck_assert_int_eq(ed_hextoi("", 0), -1);
    ck_assert_int_eq(ed_hextoi("g", 1), -1);
    ck_assert_int_eq(ed_hextoi("0x10", 4), -1);
    ck_assert_int_eq(ed_hextoi("12 ", 3), -1);
    ck_assert_int_eq(ed_hextoi("7fffffffffffffff", 16), INT64_MAX);
    ck_assert_int_eq(ed_hextoi("8000000000000000", 16), -1);
    ck_assert_int_eq(ed_hextoi("10000000000000000", 17), -1);
    ck_assert_int_eq(ed_hextoi("000000000000000000ff", 20), 255);
}
END_TEST

START_TEST(test_str_distance)
{
    ck_assert_uint_eq(ed_str_distance("root", "root"), 0);
    ck_assert_uint_eq(ed_str_distance("roots", "root"), 1);
    ck_assert_uint_eq(ed_str_distance("rot", "root"), 1);
    ck_assert_uint_eq(ed_str_distance("rost", "root"), 1);
    ck_assert_uint_eq(ed_str_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(ed_str_distance("", "abc"), 3);
    ck_assert_uint_eq(ed_str_distance("abc", ""), 3);
    ck_assert_uint_eq(ed_str_distance("", ""), 0);
    ck_assert_uint_eq(ed_str_distance("flaw", "lawn"), 2);
    ck_assert_uint_eq(ed_str_distance("keepalive_timout", "keepalive_timeout"),
                      1);
    /* Symmetric. */
    ck_assert_uint_eq(ed_str_distance("sitting", "kitten"), 3);
}
END_TEST

START_TEST(test_str_helpers)
{
    ed_str_t s = ed_string("Content-Length");
    char buf[32], *end;

    ck_assert_int_eq(ed_strncasecmp("HeLLo", "hello", 5), 0);
    ck_assert_int_ne(ed_strncasecmp("hellp", "hello", 5), 0);
    ck_assert_int_eq(ed_strncasecmp("abc", "ABD", 2), 0);
    ck_assert(ed_str_caseeq(&s, "content-length"));
    ck_assert(!ed_str_caseeq(&s, "content-lengt"));
    ck_assert(!ed_str_caseeq(&s, "content-lengths"));
    ed_strlow(buf, "MiXeD-1", 8);
    ck_assert_str_eq(buf, "mixed-1");
    end = ed_sprint_u64(buf, 0);
    *end = '\0';
    ck_assert_str_eq(buf, "0");
    end = ed_sprint_u64(buf, UINT64_MAX);
    *end = '\0';
    ck_assert_str_eq(buf, "18446744073709551615");
    ck_assert_int_eq(ed_tolower('Z'), 'z');
    ck_assert_int_eq(ed_tolower('['), '[');
}
END_TEST

Suite *
ed_test_pool_suite(void)
{
    Suite *s;
    TCase *tc;

    s = suite_create("pool");
    tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_pool_alignment);
    tcase_add_test(tc, test_pool_small_block_size);
    tcase_add_test(tc, test_pool_large);
    tcase_add_test(tc, test_pool_reset);
    tcase_add_test(tc, test_pstrdup);
    tcase_add_test(tc, test_array);
    tcase_add_test(tc, test_atoi);
    tcase_add_test(tc, test_hextoi);
    tcase_add_test(tc, test_str_distance);
    tcase_add_test(tc, test_str_helpers);
    suite_add_tcase(s, tc);
    return s;
}
