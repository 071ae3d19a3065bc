/* Unit tests for the rewrite engine (modules/ed_http_rewrite.c) and the
 * map lookup (modules/ed_http_map.c): rules loaded through the real
 * loader, applied to requests parsed and routed as ed_http_process does;
 * maps looked up for such requests. */
#include "http_fixture.h"
#include "../../../modules/ed_http_rewrite.h"
#include "../../../modules/ed_http_map.h"

#include <check.h>
#include <stdio.h>

#define T_LISTEN "127.0.0.1:18381"

#define T_CONF                                                               \
    "access_log: off\n"                                                      \
    "maps:\n"                                                                \
    "  ver:\n"                                                               \
    "    source: $http_x_v\n"                                                \
    "    default: v1-$host\n"                                                \
    "    entries:\n"                                                         \
    "      \"Two\": v2\n"                                                    \
    "      \"~^beta-(?<n>\\\\d+)$\": beta-$n\n"                             \
    "      \"~*^GAMMA-(\\\\d+)$\": gamma-$1\n"                              \
    "      \"\\\\~lit\": tilde\n"                                            \
    "  site:\n"                                                              \
    "    source: $host\n"                                                    \
    "    hostnames: true\n"                                                  \
    "    entries:\n"                                                         \
    "      example.com: exact\n"                                             \
    "      .example.com: dot\n"                                              \
    "      \"*.deep.example.com\": deep\n"                                   \
    "      \"www.example.*\": tail\n"                                        \
    "      \"~^(?<s>[a-z]+)\\\\.re\\\\.test$\": re-$s\n"                    \
    "  chain:\n"                                                             \
    "    source: $ver\n"                                                     \
    "    entries: {v2: \"[$ver]\"}\n"                                        \
    "servers:\n"                                                             \
    "  - listen: \"" T_LISTEN "\"\n"                                         \
    "    locations:\n"                                                       \
    "      /:\n"                                                             \
    "      /a/:\n"                                                           \
    "        rewrite:\n"                                                     \
    "          - {regex: '^/a/one/(.*)$', replacement: /a/two/$1}\n"         \
    "          - {regex: '^/a/two/(.*)$', replacement: /a/three/$1}\n"       \
    "          - {regex: '^/a/last/(?<f>.*)$', replacement: /b/$f,\n"        \
    "             flag: last}\n"                                            \
    "          - {regex: '^/a/brk/(.*)$', replacement: /c/$1, flag: break}\n" \
    "          - {regex: '^/a/never', replacement: /never}\n"                \
    "          - {regex: '^/a/q/(.*)$', replacement: '/q?x=$1', flag: last}\n" \
    "          - {regex: '^/a/drop/(.*)$', replacement: '/d/$1?',\n"         \
    "             flag: last}\n"                                            \
    "          - {regex: '^/a/dq/(.*)$', replacement: '/d?y=$1?',\n"         \
    "             flag: last}\n"                                            \
    "          - {regex: '^/a/r/(.*)$', replacement: /r/$1, flag: redirect}\n" \
    "          - {regex: '^/a/p/(.*)$', replacement: /p/$1,\n"               \
    "             flag: permanent}\n"                                       \
    "          - {regex: '^/a/abs/(.*)$', replacement: 'https://$host/$1'}\n" \
    "          - {regex: '^/a/up/(.*)$', replacement: '/x/../../$1',\n"      \
    "             flag: last}\n"                                            \
    "          - {regex: '^/a/dots/(.*)$', replacement: '/x/./y//../$1',\n"  \
    "             flag: last}\n"                                            \
    "          - {regex: '^/a/nl/([^/]*)', replacement: '/n/$1',\n"       \
    "             flag: last}\n"                                            \
    "          - {regex: '^/a/var/(.*)$', replacement: '/v/$ver/$1',\n"      \
    "             flag: last}\n"                                            \
    "          - {regex: '^/a/lit$', replacement: '/x/../y', flag: last}\n"

static void
setup_conf(void)
{
    ed_test_http_setup();
    ed_test_http_load(T_CONF);
}

static ed_http_request_t *
req(const char *target, const char *extra)
{
    char raw[1024];

    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: rw.test\r\n%s\r\n",
             target, extra);
    return ed_test_http_route(ed_test_http_listener(T_LISTEN), raw);
}

static ed_http_rewrite_result_t
apply(ed_http_request_t *r)
{
    ed_http_rewrite_conf_t  *rcf = ed_http_loc_conf(r, ed_http_rewrite_module);
    ed_http_rewrite_result_t res;

    ck_assert_ptr_nonnull(rcf->rules);
    ck_assert_int_eq(ed_http_rewrite_apply(r, rcf->rules, &res), ED_OK);
    return res;
}

#define ck_str(s, want)                                                      \
    do {                                                                     \
        ck_assert_msg((s).len == strlen(want)                                \
                          && memcmp((s).data, (want), (s).len) == 0,         \
                      "expected \"%s\", got \"%.*s\"", (want),             \
                      (int)(s).len, (s).data ? (s).data : "");             \
    } while (0)

static void
ck_norm(const char *in, int rc, const char *want)
{
    char   buf[128];
    size_t len = strlen(in);

    memcpy(buf, in, len);
    ck_assert_int_eq(ed_http_rewrite_normalize(buf, &len), rc);
    if (rc == ED_OK) {
        ck_assert_msg(len == strlen(want) && memcmp(buf, want, len) == 0,
                      "\"%s\": expected \"%s\", got \"%.*s\"", in, want,
                      (int)len, buf);
    }
}

START_TEST(test_normalize)
{
    ck_norm("/", ED_OK, "/");
    ck_norm("/a/b", ED_OK, "/a/b");
    ck_norm("//a///b/", ED_OK, "/a/b/");
    ck_norm("/a/./b/.", ED_OK, "/a/b/");
    ck_norm("/a/b/..", ED_OK, "/a/");
    ck_norm("/a/b/../../c", ED_OK, "/c");
    ck_norm("/a/..b/.c", ED_OK, "/a/..b/.c");
    /* Decoded already: an escape is bytes, never decoded again. */
    ck_norm("/%2e%2e/x", ED_OK, "/%2e%2e/x");
    ck_norm("/..", 400, NULL);
    ck_norm("/a/../../b", 400, NULL);
    ck_norm("a/b", 500, NULL);
    ck_norm("", 500, NULL);
    ck_norm("/a\r\nX: y", 500, NULL);
}
END_TEST

START_TEST(test_no_match)
{
    ed_http_request_t       *r = req("/a/other?k=1", "");
    ed_http_rewrite_result_t res = apply(r);

    ck_assert(!res.changed && !res.stop && res.status == 0);
    ck_str(r->uri, "/a/other");
    ck_str(r->head.query, "k=1");
    ck_assert(!r->uri_rewritten);
}
END_TEST

START_TEST(test_chain_and_last)
{
    ed_http_request_t       *r = req("/a/one/f.txt?k=1", "");
    ed_http_rewrite_result_t res = apply(r);

    /* Without a flag the next rule sees the new URI. */
    ck_assert(res.changed && !res.stop && res.status == 0);
    ck_str(r->uri, "/a/three/f.txt");
    ck_str(r->head.query, "k=1");
    ck_assert(r->uri_rewritten);

    r = req("/a/last/x/y", "");
    res = apply(r);
    ck_assert(res.changed && !res.stop);
    ck_str(r->uri, "/b/x/y");
    ck_assert_ptr_null(r->head.query.data);

    r = req("/a/brk/z", "");
    res = apply(r);
    ck_assert(res.changed && res.stop);
    ck_str(r->uri, "/c/z");
}
END_TEST

START_TEST(test_query)
{
    ed_http_request_t       *r = req("/a/q/a%20b?k=1", "");
    ed_http_rewrite_result_t res = apply(r);

    /* The replacement's query first, the request's after '&'; a capture
     * (decoded) is %-encoded in the query. */
    ck_assert(res.changed);
    ck_str(r->uri, "/q");
    ck_str(r->head.query, "x=a%20b&k=1");

    r = req("/a/q/v", "");
    apply(r);
    ck_str(r->head.query, "x=v");

    r = req("/a/drop/v?k=1", "");
    apply(r);
    ck_str(r->uri, "/d/v");
    ck_assert_ptr_null(r->head.query.data);

    r = req("/a/dq/v?k=1", "");
    apply(r);
    ck_str(r->uri, "/d");
    ck_str(r->head.query, "y=v");
}
END_TEST

START_TEST(test_redirects)
{
    ed_http_request_t       *r = req("/a/r/x?k=1", "");
    ed_http_rewrite_result_t res = apply(r);

    ck_assert_int_eq(res.status, 302);
    ck_str(res.location, "/r/x?k=1");
    /* A redirect leaves the URI alone. */
    ck_str(r->uri, "/a/r/x");

    r = req("/a/p/y", "");
    res = apply(r);
    ck_assert_int_eq(res.status, 301);
    ck_str(res.location, "/p/y");

    r = req("/a/abs/z?q=2", "");
    res = apply(r);
    ck_assert_int_eq(res.status, 302);
    ck_str(res.location, "https://rw.test/z?q=2");
}
END_TEST

START_TEST(test_bad_results)
{
    ed_http_request_t       *r = req("/a/up/x", "");
    ed_http_rewrite_result_t res = apply(r);

    ck_assert_int_eq(res.status, 400);

    r = req("/a/dots/f", "");
    res = apply(r);
    ck_assert_int_eq(res.status, 0);
    ck_str(r->uri, "/x/f");

    /* %0D%0A decodes into $uri: the result may not carry it. */
    r = req("/a/nl/x%0D%0AHeader:%20y", "");
    res = apply(r);
    ck_assert_int_eq(res.status, 500);
}
END_TEST

START_TEST(test_literal_kept)
{
    ed_http_request_t       *r;
    ed_http_rewrite_result_t res;
    int                      i;

    /* A replacement without variables is normalised in a copy: the
     * rule's text serves the next request unchanged. */
    for (i = 0; i < 3; i++) {
        r = req("/a/lit", "");
        res = apply(r);
        ck_assert(res.changed);
        ck_str(r->uri, "/y");
    }
}
END_TEST

START_TEST(test_variables)
{
    ed_http_request_t       *r = req("/a/var/f", "X-V: TWO\r\n");
    ed_http_rewrite_result_t res = apply(r);

    ck_assert(res.changed);
    ck_str(r->uri, "/v/v2/f");
}
END_TEST

static const char *
map(ed_http_request_t *r, const char *name)
{
    ed_http_map_t *m = ed_http_map_find(ed_test_cycle, name, strlen(name));
    ed_str_t       out;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(ed_http_map_lookup(r, m, &out), ED_OK);
    return ed_pstrdup(ed_test_rpool, out.data ? out.data : "", out.len);
}

#define ck_map(r, name, want)                                                \
    do {                                                                     \
        const char *got_ = map((r), (name));                                 \
        ck_assert_msg(strcmp(got_, (want)) == 0,                             \
                      "map %s: expected \"%s\", got \"%s\"", (name),         \
                      (want), got_);                                         \
    } while (0)

START_TEST(test_map_exact_regex_default)
{
    ck_map(req("/", "X-V: two\r\n"), "ver", "v2");
    ck_map(req("/", "X-V: TWO\r\n"), "ver", "v2");
    ck_map(req("/", "X-V: beta-42\r\n"), "ver", "beta-42");
    /* "~" is case-sensitive, "~*" is not. */
    ck_map(req("/", "X-V: BETA-42\r\n"), "ver", "v1-rw.test");
    ck_map(req("/", "X-V: gamma-7\r\n"), "ver", "gamma-7");
    ck_map(req("/", "X-V: ~lit\r\n"), "ver", "tilde");
    ck_map(req("/", ""), "ver", "v1-rw.test");
    /* A map's value using another map. */
    ck_map(req("/", "X-V: two\r\n"), "chain", "[v2]");
    ck_map(req("/", "X-V: three\r\n"), "chain", "");
}
END_TEST

static ed_http_request_t *
host(const char *h)
{
    char raw[256];

    snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", h);
    return ed_test_http_route(ed_test_http_listener(T_LISTEN), raw);
}

START_TEST(test_map_hostnames)
{
    ck_map(host("example.com"), "site", "exact");
    ck_map(host("EXAMPLE.com."), "site", "exact");
    ck_map(host("a.example.com"), "site", "dot");
    /* The longest wildcard wins. */
    ck_map(host("a.deep.example.com"), "site", "deep");
    ck_map(host("deep.example.com"), "site", "dot");
    ck_map(host("www.example.org"), "site", "tail");
    ck_map(host("abc.re.test"), "site", "re-abc");
    ck_map(host("other.test"), "site", "");
}
END_TEST

START_TEST(test_map_cached)
{
    ed_http_request_t *r = req("/", "X-V: two\r\n");
    ed_http_template_t *t;
    ed_conf_t          cf = { 0 };
    ed_node_t          n = { 0 };
    const char        *err;
    ed_str_t           out;

    cf.pool = ed_test_rpool;
    cf.cycle = ed_test_cycle;
    n.type = ED_NODE_SCALAR;
    n.value.data = (char *)"$ver";
    n.value.len = 4;
    t = ed_http_template_compile(&cf, &n, &err);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(r->maps);
    ck_assert_int_eq(ed_http_template_run(r, t, &out), ED_OK);
    ck_str(out, "v2");
    ck_assert_ptr_nonnull(r->maps);
    /* Kept for the request: a changed header is not seen again. */
    r->head.headers[0].value.data = (char *)"beta-1";
    r->head.headers[0].value.len = 6;
    ck_assert_int_eq(ed_http_template_run(r, t, &out), ED_OK);
    ck_str(out, "v2");
}
END_TEST

Suite *
ed_test_http_rewrite_suite(void)
{
    Suite *s = suite_create("http_rewrite");
    TCase *tc = tcase_create("rewrite");

    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, setup_conf, ed_test_http_teardown);
    tcase_add_test(tc, test_normalize);
    tcase_add_test(tc, test_no_match);
    tcase_add_test(tc, test_chain_and_last);
    tcase_add_test(tc, test_query);
    tcase_add_test(tc, test_redirects);
    tcase_add_test(tc, test_bad_results);
    tcase_add_test(tc, test_variables);
    tcase_add_test(tc, test_literal_kept);
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, setup_conf, ed_test_http_teardown);
    tcase_add_test(tc, test_map_exact_regex_default);
    tcase_add_test(tc, test_map_hostnames);
    tcase_add_test(tc, test_map_cached);
    suite_add_tcase(s, tc);
    return s;
}
