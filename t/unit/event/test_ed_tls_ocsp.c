/* Unit tests of OCSP stapling's pure parts: cutting the responder's URL
 * up for the request, and when to ask again. */
#include <check.h>

#include "ed_tls_ocsp.h"

static ed_pool_t *pool;

static void
setup(void)
{
    pool = ed_pool_create(4096);
    ck_assert_ptr_nonnull(pool);
}

static void
teardown(void)
{
    ed_pool_destroy(pool);
}

static void
url_ok(const char *url, const char *host, const char *port,
       const char *hostport, const char *path)
{
    ed_tls_ocsp_url_t u;

    ck_assert_int_eq(ed_tls_ocsp_parse_url(pool, url, &u), ED_OK);
    ck_assert_str_eq(u.url, url);
    ck_assert_str_eq(u.host, host);
    ck_assert_str_eq(u.port, port);
    ck_assert_str_eq(u.hostport, hostport);
    ck_assert_str_eq(u.path, path);
}

START_TEST(test_url)
{
    url_ok("http://ocsp.example.com", "ocsp.example.com", "80",
           "ocsp.example.com", "/");
    url_ok("HTTP://r3.o.lencr.org/", "r3.o.lencr.org", "80",
           "r3.o.lencr.org", "/");
    url_ok("http://127.0.0.1:8888/ocsp/a?x=1#frag", "127.0.0.1", "8888",
           "127.0.0.1:8888", "/ocsp/a?x=1");
    url_ok("http://[::1]:9/", "::1", "9", "[::1]:9", "/");
    url_ok("http://[2001:db8::1]", "2001:db8::1", "80", "[2001:db8::1]",
           "/");
    url_ok("http://h?q", "h", "80", "h", "/?q");
    url_ok("http://h#f", "h", "80", "h", "/");
}
END_TEST

START_TEST(test_url_refused)
{
    static const char *bad[] = {
        "https://ocsp.example.com/", "ftp://h/", "ocsp.example.com",
        "http://", "http:///path", "http://:80/", "http://h:/",
        "http://h:8x/", "http://user@h/", "http://[::1/", "http://[::1]x/",
        "http://[]/",
    };
    ed_tls_ocsp_url_t u;
    size_t            i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(ed_tls_ocsp_parse_url(pool, bad[i], &u) == ED_ERROR,
                      "%s was taken", bad[i]);
    }
}
END_TEST

START_TEST(test_refresh)
{
    time_t now = 1000000;

    /* A day from now: at half, 12 hours. */
    ck_assert_int_eq(ed_tls_ocsp_refresh(now, now + 86400, now), 43200);
    /* A week made three days ago: in half a day. */
    ck_assert_int_eq(ed_tls_ocsp_refresh(now - 3 * 86400, now + 4 * 86400,
                                         now), 43200);
    /* Half passed (a cached answer): a minute later, not at once. */
    ck_assert_int_eq(ed_tls_ocsp_refresh(now - 6 * 86400, now + 86400,
                                         now), 60);
    /* Less than two minutes left: half of them, at least a second. */
    ck_assert_int_eq(ed_tls_ocsp_refresh(now - 600, now + 80, now), 40);
    ck_assert_int_eq(ed_tls_ocsp_refresh(now - 600, now + 1, now), 1);
}
END_TEST

Suite *
ed_test_tls_ocsp_suite(void)
{
    Suite *s = suite_create("tls_ocsp");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_url);
    tcase_add_test(tc, test_url_refused);
    tcase_add_test(tc, test_refresh);
    suite_add_tcase(s, tc);
    return s;
}
