/* Unit tests of an HTTP/2 connection's arena (ed_http_v2_arena.c):
 * blocks reused by class, the bound on its pages (blocks past it come
 * from the worker's lists and stay put), and sleep: the pages given
 * back to the kernel and every live byte back in place at wake. */
#include <check.h>

#include "ed_http_v2.h"

#if ED_HAVE_HTTP2

#define NBLOCKS 300

typedef struct {
    unsigned char *p;
    size_t         len;
    unsigned char  seed;
} blk_t;

/* The byte at i of a block: zeros runs too, as nghttp2's structs
 * have. */
static unsigned char
byte_at(const blk_t *b, size_t i)
{
    return (i / 7) % 3 == 0 ? 0 : (unsigned char)(b->seed + i * 31);
}

static void
fill(blk_t *b)
{
    size_t i;

    for (i = 0; i < b->len; i++) {
        b->p[i] = byte_at(b, i);
    }
}

static bool
intact(const blk_t *b)
{
    size_t i;

    for (i = 0; i < b->len && b->p[i] == byte_at(b, i); i++) {
    }
    return i == b->len;
}

START_TEST(test_arena_reuses_by_class)
{
    ed_v2_arena_t a;
    void         *p, *q;

    memset(&a, 0, sizeof(a));
    p = ed_v2_arena_alloc(&a, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(ed_v2_arena_block_size(p), 100);
    memset(p, 0xab, 100);
    ed_v2_arena_release(&a, p);
    q = ed_v2_arena_alloc(&a, 90);
    ck_assert_ptr_eq(p, q);
    ck_assert_uint_eq(a.npages, 1);
    ck_assert_uint_eq(a.outside, 0);
    ed_v2_arena_release(&a, q);
    ed_v2_arena_drop(&a);
    ck_assert_uint_eq(a.npages, 0);
}
END_TEST

START_TEST(test_arena_sleep_keeps_every_byte)
{
    static blk_t  b[NBLOCKS];
    static bool   out[NBLOCKS];
    ed_v2_arena_t a;
    unsigned      i, round, before;
    size_t        asleep;
    void         *tmp[60];

    memset(&a, 0, sizeof(a));
    for (i = 0; i < NBLOCKS; i++) {
        b[i].len = 8 + (i * 37) % 300;
        b[i].seed = (unsigned char)i;
        before = a.outside;
        b[i].p = ed_v2_arena_alloc(&a, b[i].len);
        ck_assert_ptr_nonnull(b[i].p);
        out[i] = a.outside > before;
        fill(&b[i]);
    }
    /* Past the bound the blocks came from the worker's lists: they stay
     * where they are while the arena sleeps. */
    ck_assert_uint_eq(a.npages, 8);
    ck_assert_uint_gt(a.outside, 0);
    ck_assert(ed_v2_arena_sleep(&a));
    ed_v2_arena_wake(&a);
    for (i = 0; i < NBLOCKS; i++) {
        ck_assert_msg(intact(&b[i]), "block %u", i);
    }
    for (i = 0; i < NBLOCKS; i++) {
        if (out[i]) {
            ed_v2_arena_release(&a, b[i].p);
            b[i].p = NULL;
        }
    }
    ck_assert_uint_eq(a.outside, 0);
    for (round = 0; round < 3; round++) {
        /* Some blocks freed each round: their bytes are dead. */
        for (i = round; i < NBLOCKS; i += 3 + round) {
            if (b[i].p != NULL) {
                ed_v2_arena_release(&a, b[i].p);
                b[i].p = NULL;
            }
        }
        ck_assert(ed_v2_arena_sleep(&a));
        asleep = ed_v2_arena_asleep_bytes(&a);
        ck_assert_uint_gt(asleep, 0);
        ck_assert_uint_lt(asleep, (size_t)a.npages * 4096);
        /* The pages went back: they read as zeros until the wake. */
        ck_assert_uint_eq(*(size_t *)(void *)a.pages[0], 0);
        ed_v2_arena_wake(&a);
        ck_assert_uint_eq(ed_v2_arena_asleep_bytes(&a), 0);
        for (i = 0; i < NBLOCKS; i++) {
            if (b[i].p != NULL) {
                ck_assert_msg(intact(&b[i]), "block %u, round %u", i, round);
            }
        }
        /* Freed blocks serve new ones after the wake (their lists were
         * made again), none over a live one. */
        for (i = 0; i < 60; i++) {
            tmp[i] = ed_v2_arena_alloc(&a, 8 + (i * 37) % 300);
            ck_assert_ptr_nonnull(tmp[i]);
            memset(tmp[i], 0xee, 8 + (i * 37) % 300);
        }
        for (i = 0; i < NBLOCKS; i++) {
            if (b[i].p != NULL) {
                ck_assert_msg(intact(&b[i]), "block %u, round %u", i, round);
            }
        }
        for (i = 0; i < 60; i++) {
            ed_v2_arena_release(&a, tmp[i]);
        }
    }
    /* Dropped asleep: the pages go back to the worker, the blob is
     * freed (the sanitizer build checks for leaks). */
    ck_assert(ed_v2_arena_sleep(&a));
    ed_v2_arena_drop(&a);
    ck_assert_ptr_null(a.blob);
}
END_TEST

START_TEST(test_arena_big_block_is_outside)
{
    ed_v2_arena_t a;
    void         *small, *big;

    memset(&a, 0, sizeof(a));
    small = ed_v2_arena_alloc(&a, 2928);
    ck_assert_ptr_nonnull(small);
    memset(small, 1, 2928);
    big = ed_v2_arena_alloc(&a, 5000);
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_eq(a.outside, 1);
    ck_assert_uint_ge(ed_v2_arena_block_size(big), 5000);
    memset(big, 2, 5000);
    ck_assert(ed_v2_arena_sleep(&a));
    ck_assert_uint_eq(((unsigned char *)big)[4999], 2);
    ed_v2_arena_wake(&a);
    ed_v2_arena_release(&a, big);
    ck_assert_uint_eq(a.outside, 0);
    ck_assert(ed_v2_arena_sleep(&a));
    ed_v2_arena_wake(&a);
    ck_assert_uint_eq(((unsigned char *)small)[2927], 1);
    ed_v2_arena_release(&a, small);
    ed_v2_arena_drop(&a);
}
END_TEST

#endif /* ED_HAVE_HTTP2 */

Suite *
ed_test_http_v2_arena_suite(void)
{
    Suite *s = suite_create("http_v2_arena");
    TCase *tc;

    tc = tcase_create("arena");
    tcase_set_timeout(tc, 10);
#if ED_HAVE_HTTP2
    tcase_add_test(tc, test_arena_reuses_by_class);
    tcase_add_test(tc, test_arena_sleep_keeps_every_byte);
    tcase_add_test(tc, test_arena_big_block_is_outside);
#endif
    suite_add_tcase(s, tc);
    return s;
}
