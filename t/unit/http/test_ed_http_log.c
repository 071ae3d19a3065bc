/* Unit tests of the error log's request context (ed_http_log.c): the
 * fields and their order (process.md), what the client sent escaped,
 * each field and the whole bounded. Requests are parsed and routed by
 * the real code (http_fixture.c); a request line the parser would refuse
 * is set by hand, the context must escape it all the same. */
#include "http_fixture.h"
#include "ed_http_upstream.h"

#define T_LISTEN "127.0.0.1:18181"

#define T_CONF                                                               \
    "access_log: off\n"                                                      \
    "servers:\n"                                                             \
    "  - listen: \"" T_LISTEN "\"\n"                                         \
    "    names: [log.test, b.test]\n"                                        \
    "    locations:\n"                                                       \
    "      /:\n"                                                             \
    "        return: 204\n"

static ed_http_request_t *
route(const char *raw)
{
    ed_test_http_load(T_CONF);
    return ed_test_http_route(ed_test_http_listener(T_LISTEN), raw);
}

/* The context of r as a string (pool memory). */
static const char *
ctx(ed_http_request_t *r)
{
    char  *buf = ed_pnalloc(ed_test_rpool, ED_LOG_CTX_MAX + 1);
    size_t n;

    ck_assert_ptr_nonnull(buf);
    n = ed_http_log_ctx(r, buf, ED_LOG_CTX_MAX);
    ck_assert_uint_le(n, ED_LOG_CTX_MAX);
    buf[n] = '\0';
    return buf;
}

#define ck_ctx(r, want)                                                      \
    do {                                                                     \
        const char *got_ = ctx(r);                                           \
        ck_assert_msg(strcmp(got_, (want)) == 0, "got  %s\nwant %s", got_,  \
                      (want));                                               \
    } while (0)

START_TEST(test_ctx_fields)
{
    ed_http_request_t *r;

    r = route("GET /x?y=1 HTTP/1.1\r\nHost: B.test:8080\r\n\r\n");
    ck_ctx(r, ", client: 192.0.2.10, server: log.test, request: \"GET "
              "/x?y=1 HTTP/1.1\", host: \"B.test:8080\"");
    /* No Host: no host field. */
    ed_test_http_teardown();
    ed_test_http_setup();
    r = route("GET /z HTTP/1.0\r\n\r\n");
    ck_ctx(r, ", client: 192.0.2.10, server: log.test, request: \"GET /z "
              "HTTP/1.0\"");
    ck_assert_uint_eq(ed_http_log_ctx(NULL, (char *)"", 0), 0);
}
END_TEST

START_TEST(test_ctx_escapes)
{
    static const char line[] = "GET /a\"b\\c\x01\x7f\xff\xc3\xa9 HTTP/1.1\n";
    ed_http_request_t *r;

    r = route("GET / HTTP/1.1\r\nHost: log.test\r\n\r\n");
    r->head.method.data = (char *)line;
    r->head.line = line;
    r->head.line_len = sizeof(line) - 1;
    ck_ctx(r, ", client: 192.0.2.10, server: log.test, request: \"GET "
              "/a\\x22b\\x5Cc\\x01\\x7F\\xFF\\xC3\\xA9 HTTP/1.1\", host: "
              "\"log.test\"");
    /* A forged field stays inside the quotes. */
    r->head.method.data = (char *)"GET /\", host: \"evil HTTP/1.1\r\n";
    r->head.line = r->head.method.data;
    r->head.line_len = strlen(r->head.method.data);
    ck_ctx(r, ", client: 192.0.2.10, server: log.test, request: \"GET "
              "/\\x22, host: \\x22evil HTTP/1.1\", host: \"log.test\"");
}
END_TEST

START_TEST(test_ctx_upstream)
{
    static const char head[] = "GET /up/x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    ed_http_request_t *r;

    r = route("GET /x?y=1 HTTP/1.1\r\nHost: log.test\r\n\r\n");
    r->upstream = ed_pcalloc(ed_test_rpool, sizeof(*r->upstream));
    ck_assert_ptr_nonnull(r->upstream);
    /* Not proxied yet: nothing. */
    ck_ctx(r, ", client: 192.0.2.10, server: log.test, request: \"GET "
              "/x?y=1 HTTP/1.1\", host: \"log.test\"");
    /* Before a head is sent: the group and the request's URI. */
    r->upstream->scheme = "http://";
    ed_str_set(&r->upstream->peer, "app");
    ck_ctx(r, ", client: 192.0.2.10, server: log.test, request: \"GET "
              "/x?y=1 HTTP/1.1\", upstream: \"http://app/x?y=1\", host: "
              "\"log.test\"");
    /* Then the server and the target of the head sent to it. */
    r->upstream->scheme = "https://";
    ed_str_set(&r->upstream->peer, "[::1]:8443");
    r->upstream->head.data = (char *)head;
    r->upstream->head.len = sizeof(head) - 1;
    ck_ctx(r, ", client: 192.0.2.10, server: log.test, request: \"GET "
              "/x?y=1 HTTP/1.1\", upstream: \"https://[::1]:8443/up/x?y=1\", "
              "host: \"log.test\"");
}
END_TEST

START_TEST(test_ctx_bounds)
{
    ed_http_request_t *r;
    const char        *got;
    char              *line, buf[ED_LOG_CTX_MAX + 64];
    size_t             i, n, len = 6000;

    r = route("GET / HTTP/1.1\r\nHost: log.test\r\n\r\n");
    line = ed_pnalloc(ed_test_rpool, len);
    ck_assert_ptr_nonnull(line);
    memcpy(line, "GET /", 5);
    memset(line + 5, '\xff', len - 5 - 2);
    memcpy(line + len - 2, "\r\n", 2);
    r->head.method.data = line;
    r->head.line = line;
    r->head.line_len = len;
    r->upstream = ed_pcalloc(ed_test_rpool, sizeof(*r->upstream));
    ck_assert_ptr_nonnull(r->upstream);
    r->upstream->scheme = "http://";
    ed_str_set(&r->upstream->peer, "app");
    r->uri.data = line + 4;
    r->uri.len = len - 6;
    /* Each field is cut ("..."); the host, last, still fits. */
    got = ctx(r);
    ck_assert_msg(strstr(got, "\\xFF...\", upstream: \"http://app/\\xFF")
                      != NULL, "%s", got);
    ck_assert_msg(strstr(got, "...\", host: \"log.test\"") != NULL, "%s",
                  got);
    /* Whatever the room, nothing is written past it. */
    for (i = 0; i <= ED_LOG_CTX_MAX; i += 7) {
        memset(buf, '#', sizeof(buf));
        n = ed_http_log_ctx(r, buf, i);
        ck_assert_uint_le(n, i);
        for (n = i; n < sizeof(buf); n++) {
            ck_assert_int_eq(buf[n], '#');
        }
    }
}
END_TEST

START_TEST(test_log_str)
{
    ed_http_request_t *r;

    r = route("GET / HTTP/1.1\r\nHost: log.test\r\n\r\n");
    ck_assert_str_eq(ed_http_log_str(r, "/a\"\n\xff", 5, 64),
                     "/a\\x22\\x0A\\xFF");
    ck_assert_str_eq(ed_http_log_str(r, "/abcdefgh", 9, 6), "/ab...");
}
END_TEST

Suite *
ed_test_http_log_suite(void)
{
    Suite *s = suite_create("http_log");
    TCase *tc;

    tc = tcase_create("context");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, ed_test_http_setup, ed_test_http_teardown);
    tcase_add_test(tc, test_ctx_fields);
    tcase_add_test(tc, test_ctx_escapes);
    tcase_add_test(tc, test_ctx_upstream);
    tcase_add_test(tc, test_ctx_bounds);
    tcase_add_test(tc, test_log_str);
    suite_add_tcase(s, tc);
    return s;
}
