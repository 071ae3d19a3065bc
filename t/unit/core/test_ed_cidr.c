/* Unit tests of address ranges (ed_cidr.c): parsing, errors and matching
 * IPv4, IPv6, IPv4-mapped and unix peers. */
#include <check.h>

#include "ed_cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

typedef struct {
    const char *rule;
    const char *peer;    /* NULL: a unix socket peer */
    bool        match;
} match_case_t;

static const match_case_t match_cases[] = {
    { "all", "1.2.3.4", true },
    { "all", "::1", true },
    { "all", NULL, true },
    { "127.0.0.1", "127.0.0.1", true },
    { "127.0.0.1", "127.0.0.2", false },
    { "127.0.0.1/32", "127.0.0.1", true },
    { "10.0.0.0/8", "10.255.1.2", true },
    { "10.0.0.0/8", "11.0.0.1", false },
    { "10.1.2.3/8", "10.9.9.9", true },        /* host bits ignored */
    { "192.168.0.0/23", "192.168.1.200", true },
    { "192.168.0.0/23", "192.168.2.1", false },
    { "0.0.0.0/0", "8.8.8.8", true },
    { "0.0.0.0/0", "::1", false },
    { "::1", "::1", true },
    { "::1/128", "::2", false },
    { "fd00::/8", "fd12:3456::1", true },
    { "fd00::/8", "fe80::1", false },
    { "fd00::/7", "fc00::1", true },
    { "::/0", "2001:db8::1", true },
    { "::/0", "1.2.3.4", false },
    /* An IPv4-mapped peer matches IPv4 rules, and a mapped rule is an
     * IPv4 rule. */
    { "127.0.0.1", "::ffff:127.0.0.1", true },
    { "10.0.0.0/8", "::ffff:10.1.1.1", true },
    { "10.0.0.0/8", "::ffff:11.1.1.1", false },
    { "::ffff:10.0.0.0/104", "10.2.3.4", true },
    { "::ffff:10.0.0.0/104", "::ffff:10.2.3.4", true },
    { "::1", "127.0.0.1", false },
    { "127.0.0.1", NULL, false },
    { "::1", NULL, false },
};

static void
make_peer(const char *text, struct sockaddr_storage *ss)
{
    struct sockaddr_in  *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (text == NULL) {
        ss->ss_family = AF_UNIX;
    } else if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else {
        ck_assert_int_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
        sin6->sin6_family = AF_INET6;
    }
}

START_TEST(test_cidr_match)
{
    const match_case_t     *t = &match_cases[_i];
    struct sockaddr_storage ss;
    ed_cidr_t               c;
    const char             *err = NULL;

    ck_assert_msg(ed_cidr_parse(t->rule, strlen(t->rule), &c, &err) == ED_OK,
                  "%s: %s", t->rule, err);
    make_peer(t->peer, &ss);
    ck_assert_msg(ed_cidr_match(&c, (struct sockaddr *)&ss) == t->match,
                  "%s vs %s", t->rule, t->peer ? t->peer : "unix");
}
END_TEST

static const char *bad_cases[] = {
    "", "al", "allow", "1.2.3", "1.2.3.4.5", "256.0.0.1", "10.0.0.0/33",
    "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "::1/129", "fd00::/abc",
    "/8", "example.com", "1.2.3.4 ", "::g", "[::1]",
};

START_TEST(test_cidr_bad)
{
    const char *s = bad_cases[_i], *err = NULL;
    ed_cidr_t   c;

    ck_assert_msg(ed_cidr_parse(s, strlen(s), &c, &err) == ED_ERROR,
                  "\"%s\" accepted", s);
    ck_assert_ptr_nonnull(err);
}
END_TEST

START_TEST(test_cidr_prefix)
{
    ed_cidr_t   c;
    const char *err;

    ck_assert_int_eq(ed_cidr_parse("10.1.2.3/12", 11, &c, &err), ED_OK);
    ck_assert_int_eq(c.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 12);
    ck_assert_uint_eq(c.addr[0], 10);
    ck_assert_uint_eq(c.addr[1], 0);
    ck_assert_uint_eq(c.mask[1], 0xf0);
    ck_assert_int_eq(ed_cidr_parse("::ffff:1.2.3.4", 14, &c, &err), ED_OK);
    ck_assert_int_eq(c.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 32);
    /* The length given is what counts, not a NUL. */
    ck_assert_int_eq(ed_cidr_parse("10.0.0.0/8junk", 10, &c, &err), ED_OK);
    ck_assert_uint_eq(c.prefix, 8);
}
END_TEST

Suite *
ed_test_cidr_suite(void)
{
    Suite *s = suite_create("cidr");
    TCase *tc;

    tc = tcase_create("cidr");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_cidr_match, 0, (int)ed_nelems(match_cases));
    tcase_add_loop_test(tc, test_cidr_bad, 0, (int)ed_nelems(bad_cases));
    tcase_add_test(tc, test_cidr_prefix);
    suite_add_tcase(s, tc);
    return s;
}
