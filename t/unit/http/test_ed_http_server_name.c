/* Unit tests for choosing the server by Host (ed_http_find_server in
 * src/http/ed_http_location.c): exact name, the longest leading wildcard,
 * the longest trailing wildcard, regex names in order (with their
 * captures), then the address's default server, else the first server
 * listed for that address. Configurations go through the real loader
 * (ed_cycle_load), so names and addresses are built as in production. */
#include "http_fixture.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <unistd.h>

#define T_LISTEN  "127.0.0.1:18280"
#define T_LISTEN2 "127.0.0.1:18281"
#define T_LISTEN3 "127.0.0.1:18282"


/* A variable of the request as a NUL-terminated string, or NULL when it
 * has no value. */
static const char *
var(ed_http_request_t *r, const char *name)
{
    ed_str_t v;
    int      rc = ed_http_variable(r, name, strlen(name), &v);

    if (rc == ED_DECLINED) {
        return NULL;
    }
    ck_assert_int_eq(rc, ED_OK);
    return ed_pstrdup(ed_test_rpool, v.data, v.len);
}

#define ck_var(r, name, want)                                                \
    do {                                                                     \
        const char *got_ = var((r), (name));                                 \
        ck_assert_msg(got_ != NULL && strcmp(got_, (want)) == 0,             \
                      "$%s: expected \"%s\", got \"%s\"", (name), (want),    \
                      got_ ? got_ : "(none)");                               \
    } while (0)

#define ck_novar(r, name)                                                    \
    do {                                                                     \
        const char *got_ = var((r), (name));                                 \
        ck_assert_msg(got_ == NULL, "$%s: expected no value, got \"%s\"",   \
                      (name), got_);                                         \
    } while (0)

/* The server chosen on address lsname for host (already lowercased and
 * without port, as the request code passes it); its 1-based index. */
static unsigned
server_for(const char *lsname, const char *host)
{
    ed_http_request_t *r = ed_pcalloc(ed_test_rpool, sizeof(ed_http_request_t));
    ed_http_server_t  *srv;
    ed_str_t           h;

    ck_assert_ptr_nonnull(r);
    r->pool = ed_test_rpool;
    h.len = strlen(host);
    h.data = ed_pstrdup(ed_test_rpool, host, h.len);
    srv = ed_http_find_server(ed_test_http_listener(lsname)->servers, r, &h);
    ck_assert_ptr_nonnull(srv);
    return srv->index;
}

#define ck_srv(ls, host, want)                                               \
    do {                                                                     \
        unsigned got_ = server_for((ls), (host));                            \
        ck_assert_msg(got_ == (want),                                        \
                      "Host \"%s\" on %s: expected server #%u, got #%u",    \
                      (host), (ls), (unsigned)(want), got_);                 \
    } while (0)

/* The whole way from a request head with this Host line. */
static ed_http_request_t *
request_host(const char *lsname, const char *host)
{
    char raw[512];

    snprintf(raw, sizeof(raw), "GET /x HTTP/1.1\r\nHost: %s\r\n\r\n", host);
    return ed_test_http_route(ed_test_http_listener(lsname), raw);
}

#define T_SERVER(names)                                                      \
    "  - listen: \"" T_LISTEN "\"\n"                                         \
    "    names: " names "\n"

/* Names are kept lowercased, wildcards without the star, in kinds. */
START_TEST(test_names_built)
{
    ed_http_server_t **srvs;
    ed_http_name_t    *n;

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("[Example.COM, '*.Example.com', 'www.example.*', "
                  "'~^(?<sub>[a-z]+)\\.example\\.org$']"));
    srvs = ((ed_http_addr_t *)ed_test_http_listener(T_LISTEN)->servers)->servers.elts;
    ck_assert_uint_eq(srvs[0]->names.nelts, 4);
    n = srvs[0]->names.elts;
    ck_assert_int_eq(n[0].kind, 0);
    ck_assert(n[0].name.len == 11 && memcmp(n[0].name.data, "example.com",
                                            11) == 0);
    ck_assert_int_eq(n[1].kind, 1);
    ck_assert(n[1].name.len == 12 && memcmp(n[1].name.data, ".example.com",
                                            12) == 0);
    ck_assert_int_eq(n[2].kind, 2);
    ck_assert(n[2].name.len == 12 && memcmp(n[2].name.data, "www.example.",
                                            12) == 0);
    ck_assert_int_eq(n[3].kind, 3);
    ck_assert_ptr_nonnull(n[3].re);
    /* $server_name is the first name as written. */
    ck_assert_str_eq(srvs[0]->server_name.data, "Example.COM");
}
END_TEST

/* Exact names, compared with the lowercased Host; an exact name wins
 * over wildcards and regexes of servers listed earlier. */
START_TEST(test_exact)
{
    ed_http_request_t *r;

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("[a.test]")
         T_SERVER("['*.b.test', 'www.b.*', '~^x\\.']")
         T_SERVER("[B.Test, x.b.test, www.b.test]"));
    ck_srv(T_LISTEN, "a.test", 1);
    ck_srv(T_LISTEN, "b.test", 3);
    ck_srv(T_LISTEN, "x.b.test", 3);
    ck_srv(T_LISTEN, "www.b.test", 3);
    ck_srv(T_LISTEN, "y.b.test", 2);
    ck_srv(T_LISTEN, "a.test2", 1); /* nothing: the first server */
    ck_srv(T_LISTEN, "a.tes", 1);

    /* Through the request head: case, port and a trailing dot. */
    r = request_host(T_LISTEN, "A.TEST:8080");
    ck_assert_uint_eq(r->server->index, 1);
    r = request_host(T_LISTEN, "X.B.Test.");
    ck_assert_uint_eq(r->server->index, 3);
    r = request_host(T_LISTEN, "Y.b.TEST:80");
    ck_assert_uint_eq(r->server->index, 2);
}
END_TEST

/* "*.example.com" matches any name ending in ".example.com" (several
 * labels too) but not "example.com" itself; the longest wins whatever
 * the order. */
START_TEST(test_leading_wildcard)
{
    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("[first.test]")
         T_SERVER("['*.example.com']")
         T_SERVER("['*.www.example.com']")
         T_SERVER("['*.com']")
         T_SERVER("['*.deep.example.net']")
         T_SERVER("['*.example.net']"));
    ck_srv(T_LISTEN, "a.example.com", 2);
    ck_srv(T_LISTEN, "a.b.c.example.com", 2);
    ck_srv(T_LISTEN, "www.example.com", 2);
    ck_srv(T_LISTEN, "x.www.example.com", 3);
    ck_srv(T_LISTEN, "a.x.www.example.com", 3);
    ck_srv(T_LISTEN, "other.com", 4);
    ck_srv(T_LISTEN, "example.com", 4);       /* "*.com" */
    ck_srv(T_LISTEN, "a.deep.example.net", 5); /* longer, listed first */
    ck_srv(T_LISTEN, "a.example.net", 6);
    ck_srv(T_LISTEN, "deep.example.net", 6);
    /* The bare name, and a name that only ends with the letters. */
    ck_srv(T_LISTEN, "example.net", 1);
    ck_srv(T_LISTEN, "aexample.net", 1);
    ck_srv(T_LISTEN, ".example.net", 1);
}
END_TEST

/* "www.example.*" matches names starting with "www.example."; the longest
 * wins; any leading wildcard match comes first. */
START_TEST(test_trailing_wildcard)
{
    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("[first.test]")
         T_SERVER("['www.*']")
         T_SERVER("['www.example.*']")
         T_SERVER("['*.example.net']")
         T_SERVER("['www.example.co.*']"));
    ck_srv(T_LISTEN, "www.example.org", 3);
    ck_srv(T_LISTEN, "www.example.org.uk", 3);
    ck_srv(T_LISTEN, "www.example.co.uk", 5);
    ck_srv(T_LISTEN, "www.other.org", 2);
    ck_srv(T_LISTEN, "www.example", 2);   /* "www.example." is longer */
    ck_srv(T_LISTEN, "www.example.net", 4); /* leading before trailing */
    ck_srv(T_LISTEN, "www", 1);
    ck_srv(T_LISTEN, "wwwx.example.org", 1);
    ck_srv(T_LISTEN, "a.www.example.org", 1);
}
END_TEST

/* Regex names are tried after the wildcards, in the order of the
 * servers; named and numbered captures reach the request. */
START_TEST(test_regex_names)
{
    ed_http_request_t *r;

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("[first.test]")
         T_SERVER("['~^(?<sub>[a-z]+)\\.example\\.org$', '~\\.w\\.test$']")
         T_SERVER("['~^(?<sub>[a-z0-9]+)\\.example\\.org$', "
                  "'~^api-(\\d+)\\.']")
         T_SERVER("[exact.example.org]")
         T_SERVER("['*.w.test']"));
    ck_srv(T_LISTEN, "shop.example.org", 2);
    ck_srv(T_LISTEN, "shop1.example.org", 3);
    ck_srv(T_LISTEN, "exact.example.org", 4); /* exact before regex */
    ck_srv(T_LISTEN, "a.w.test", 5);          /* wildcard before regex */
    ck_srv(T_LISTEN, "api-7.anything", 3);
    ck_srv(T_LISTEN, "shop.example.org.x", 1);

    r = request_host(T_LISTEN, "Shop.Example.ORG");
    ck_assert_uint_eq(r->server->index, 2);
    ck_var(r, "sub", "shop");
    ck_var(r, "1", "shop");
    r = request_host(T_LISTEN, "shop1.example.org:8080");
    ck_assert_uint_eq(r->server->index, 3);
    ck_var(r, "sub", "shop1");
    r = request_host(T_LISTEN, "api-42.internal");
    ck_assert_uint_eq(r->server->index, 3);
    ck_var(r, "1", "42");
    ck_novar(r, "sub");
    /* No regex involved: no captures. */
    r = request_host(T_LISTEN, "exact.example.org");
    ck_assert_ptr_null(r->caps);
    ck_novar(r, "sub");
}
END_TEST

/* During the TLS handshake there is no request yet (r == NULL). */
START_TEST(test_regex_without_request)
{
    ed_http_server_t *srv;
    ed_str_t          h = ed_string("shop.example.org");

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("[first.test]")
         T_SERVER("['~^(?<sub>[a-z]+)\\.example\\.org$']"));
    srv = ed_http_find_server(ed_test_http_listener(T_LISTEN)->servers, NULL, &h);
    ck_assert_ptr_nonnull(srv);
    ck_assert_uint_eq(srv->index, 2);
}
END_TEST

/* Nothing matches: the server marked default on that address, else the
 * first server listed for the address; the choice is per address. */
START_TEST(test_default_server)
{
    ed_http_addr_t *ha;

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         "  - listen: \"" T_LISTEN "\"\n"
         "    names: [one.test]\n"
         "  - listen: [{address: \"" T_LISTEN "\", default: true}, \""
         T_LISTEN2 "\"]\n"
         "    names: [two.test]\n"
         "  - listen: [\"" T_LISTEN2 "\", \"" T_LISTEN3 "\"]\n"
         "    names: [three.test]\n"
         "  - listen: \"" T_LISTEN3 "\"\n"
         "    names: [four.test]\n");
    ha = ed_test_http_listener(T_LISTEN)->servers;
    ck_assert_uint_eq(ha->servers.nelts, 2);
    ck_assert_uint_eq(ha->default_server->index, 2);

    ck_srv(T_LISTEN, "unknown.test", 2);
    ck_srv(T_LISTEN, "", 2);
    ck_srv(T_LISTEN, "one.test", 1);
    ck_srv(T_LISTEN, "two.test", 2);
    ck_srv(T_LISTEN, "three.test", 2); /* #3 does not listen there */

    ck_srv(T_LISTEN2, "unknown.test", 2); /* first listed for it */
    ck_srv(T_LISTEN2, "three.test", 3);
    ck_srv(T_LISTEN2, "one.test", 2);

    ck_srv(T_LISTEN3, "unknown.test", 3);
    ck_srv(T_LISTEN3, "four.test", 4);
    ck_srv(T_LISTEN3, "two.test", 3);
}
END_TEST

/* Without a default: the first server; an HTTP/1.0 request without Host
 * goes there too. */
START_TEST(test_first_server)
{
    ed_http_request_t *r;

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("[one.test]")
         T_SERVER("[two.test]")
         "  - listen: \"" T_LISTEN "\"\n");
    ck_srv(T_LISTEN, "unknown.test", 1);
    ck_srv(T_LISTEN, "", 1);
    ck_srv(T_LISTEN, "two.test", 2);
    r = ed_test_http_route(ed_test_http_listener(T_LISTEN), "GET / HTTP/1.0\r\n\r\n");
    ck_assert_uint_eq(r->server->index, 1);
    ck_assert_uint_eq(r->host.len, 0);
}
END_TEST

/* A default server listed after others with wildcards still loses to
 * them: default is only the last resort. */
START_TEST(test_default_is_last_resort)
{
    ed_test_http_load("access_log: off\n"
         "servers:\n"
         T_SERVER("['*.example.com']")
         "  - listen: {address: \"" T_LISTEN "\", default: true}\n"
         "    names: [other.test]\n");
    ck_srv(T_LISTEN, "a.example.com", 1);
    ck_srv(T_LISTEN, "example.com", 2);
    ck_srv(T_LISTEN, "x.test", 2);
}
END_TEST

/* Two default servers on one address are a configuration error. */
START_TEST(test_two_defaults_rejected)
{
    char        path[] = "/tmp/ed_test_server_name.XXXXXX";
    const char *yaml =
        "access_log: off\n"
        "servers:\n"
        "  - listen: {address: \"" T_LISTEN "\", default: true}\n"
        "  - listen: {address: \"" T_LISTEN "\", default: true}\n";
    ed_conf_t  *errors = NULL;
    ed_cycle_t *c;
    int         fd;

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    c = ed_cycle_load(path, ed_test_http_prefix(), &errors);
    unlink(path);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(errors);
    ck_assert_uint_ge(errors->nerrors, 1);
    ck_assert_msg(strstr(errors->errors[0], "default server") != NULL, "%s",
                  errors->errors[0]);
    ed_cycle_errors_free(errors);
}
END_TEST

Suite *
ed_test_http_server_name_suite(void)
{
    Suite *s = suite_create("http_server_name");
    TCase *tc;

    tc = tcase_create("names");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, ed_test_http_setup, ed_test_http_teardown);
    tcase_add_test(tc, test_names_built);
    tcase_add_test(tc, test_exact);
    tcase_add_test(tc, test_leading_wildcard);
    tcase_add_test(tc, test_trailing_wildcard);
    tcase_add_test(tc, test_regex_names);
    tcase_add_test(tc, test_regex_without_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("default");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, ed_test_http_setup, ed_test_http_teardown);
    tcase_add_test(tc, test_default_server);
    tcase_add_test(tc, test_first_server);
    tcase_add_test(tc, test_default_is_last_resort);
    tcase_add_test(tc, test_two_defaults_rejected);
    suite_add_tcase(s, tc);
    return s;
}
