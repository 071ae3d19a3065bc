/* Unit tests of ed_peer_text (ed_accept.c): an IPv4 address is written
 * by hand and must read as inet_ntop writes it; a short buffer, IPv6
 * and unix peers as before. */
#include <check.h>

#include "ed_conn.h"

#include <arpa/inet.h>
#include <string.h>

static ed_peer_addr_t
peer4(uint32_t a)
{
    ed_peer_addr_t p;

    memset(&p, 0, sizeof(p));
    p.in.sin_family = AF_INET;
    p.in.sin_addr.s_addr = htonl(a);
    return p;
}

START_TEST(test_peer_text_ipv4)
{
    static const uint32_t fixed[] = {
        0, 0xffffffff, 0x7f000001, 0x0a000001, 0xc0a80164, 0x09630a64,
        0x636400ff, 0x01020304, 0x0a140a14, 0x64646464, 0xc8fa0963,
    };
    char           buf[64], want[64];
    ed_peer_addr_t p;
    uint32_t       a, x = 2463534242u;
    size_t         n, i;

    for (i = 0; i < ed_nelems(fixed) + 5000; i++) {
        if (i < ed_nelems(fixed)) {
            a = fixed[i];
        } else {
            x ^= x << 13;    /* xorshift: every byte length, mixed */
            x ^= x >> 17;
            x ^= x << 5;
            a = x;
        }
        p = peer4(a);
        memset(buf, 'x', sizeof(buf));
        n = ed_peer_text(&p, buf, sizeof(buf));
        ck_assert_ptr_nonnull(inet_ntop(AF_INET, &p.in.sin_addr, want,
                                        sizeof(want)));
        ck_assert_str_eq(buf, want);
        ck_assert_uint_eq(n, strlen(want));
    }
    /* Exactly INET_ADDRSTRLEN fits the longest. */
    p = peer4(0xffffffff);
    n = ed_peer_text(&p, buf, INET_ADDRSTRLEN);
    ck_assert_str_eq(buf, "255.255.255.255");
    ck_assert_uint_eq(n, 15);
}
END_TEST

START_TEST(test_peer_text_other)
{
    char           buf[64];
    ed_peer_addr_t p;

    memset(&p, 0, sizeof(p));
    p.in6.sin6_family = AF_INET6;
    ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &p.in6.sin6_addr),
                     1);
    ck_assert_uint_eq(ed_peer_text(&p, buf, sizeof(buf)), 11);
    ck_assert_str_eq(buf, "2001:db8::1");

    memset(&p, 0, sizeof(p));
    p.sa.sa_family = AF_UNIX;
    ck_assert_uint_eq(ed_peer_text(&p, buf, sizeof(buf)), 5);
    ck_assert_str_eq(buf, "unix:");

    /* Too short a buffer: inet_ntop's refusal, as before. */
    p = peer4(0x7f000001);
    ck_assert_uint_eq(ed_peer_text(&p, buf, 4), 0);
}
END_TEST

Suite *
ed_test_peer_text_suite(void)
{
    Suite *s = suite_create("peer_text");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_peer_text_ipv4);
    tcase_add_test(tc, test_peer_text_other);
    suite_add_tcase(s, tc);
    return s;
}
