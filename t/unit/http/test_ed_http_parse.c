/* Unit tests of the request-head scanner and parser (ed_http_parse.c). */
#include <check.h>

#include "ed_core.h"
#include "ed_http_parse.h"
#include "ed_http_fields.h"

#define MAXH 16

typedef struct {
    const char *name;
    const char *in;
    size_t      len;
    int         rc;
    long        max;  /* max_headers; -1 means MAXH */
} parse_case_t;

#define C(name, s, rc) { name, s, sizeof(s) - 1, rc, -1 }
#define CM(name, s, rc, max) { name, s, sizeof(s) - 1, rc, max }
#define RL "GET / HTTP/1.1\r\n"
#define H "Host: a\r\n"

static const parse_case_t cases[] = {
    /* Request line and line endings. */
    C("plain", RL H "\r\n", ED_OK),
    C("bare LF", "GET / HTTP/1.1\nHost: a\n\n", ED_OK),
    C("mixed endings", "GET / HTTP/1.1\r\nHost: a\n\r\n", ED_OK),
    C("leading CRLF", "\r\n\r\n" RL H "\r\n", ED_OK),
    C("leading LF", "\n\n" RL H "\r\n", ED_OK),
    C("leading bare CR", "\r" RL H "\r\n", 400),
    C("leading SP", " " RL H "\r\n", 400),
    C("only empty lines", "\r\n\r\n", 400),
    C("empty", "", 400),
    C("no empty line", RL H, 400),
    C("request line only", RL, 400),
    C("bare CR ends line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    C("bare CR ends header", RL "Host: a\r\r\n\r\n", 400),
    C("bare CR in value", RL H "X: a\rb\r\n\r\n", 400),
    C("bare CR empty line", RL H "\r\r\n", 400),
    C("double SP after method", "GET  / HTTP/1.1\r\n" H "\r\n", 400),
    C("double SP before version", "GET /  HTTP/1.1\r\n" H "\r\n", 400),
    C("SP after version", "GET / HTTP/1.1 \r\n" H "\r\n", 400),
    C("HTAB separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", 400),
    C("HTTP/0.9 line", "GET /\r\n\r\n", 400),
    C("no target", "GET HTTP/1.1\r\n" H "\r\n", 400),
    C("no method", " / HTTP/1.1\r\n" H "\r\n", 400),
    C("method not token", "GE(T / HTTP/1.1\r\n" H "\r\n", 400),
    C("method non-ASCII", "G\xc3\xa9T / HTTP/1.1\r\n" H "\r\n", 400),
    C("unknown method", "BREW / HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("lowercase method", "get / HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("token method", "M-SEARCH! / HTTP/1.1\r\n" H "\r\n", ED_OK),

    /* Versions. */
    C("HTTP/1.0 no Host", "GET / HTTP/1.0\r\n\r\n", ED_OK),
    C("HTTP/1.2 as 1.1", "GET / HTTP/1.2\r\n" H "\r\n", ED_OK),
    C("HTTP/1.9 no Host", "GET / HTTP/1.9\r\n\r\n", 400),
    C("HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", 505),
    C("HTTP/3.0", "GET / HTTP/3.0\r\n" H "\r\n", 505),
    C("HTTP/9.9", "GET / HTTP/9.9\r\n" H "\r\n", 505),
    C("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505),
    C("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    C("lowercase http", "GET / http/1.1\r\n" H "\r\n", 400),
    C("HTTP/1", "GET / HTTP/1\r\n" H "\r\n", 400),
    C("HTTP/1.", "GET / HTTP/1.\r\n" H "\r\n", 400),
    C("HTTP/11.1", "GET / HTTP/11.1\r\n" H "\r\n", 400),
    C("HTTP/1.10", "GET / HTTP/1.10\r\n" H "\r\n", 400),
    C("HTTP/1,1", "GET / HTTP/1,1\r\n" H "\r\n", 400),
    C("HTTPS/1.1", "GET / HTTPS/1.1\r\n" H "\r\n", 400),
    C("HTTP/a.1", "GET / HTTP/a.1\r\n" H "\r\n", 400),
    C("version cut", "GET / HTTP/1.1", 400),

    /* Targets. */
    C("query", "GET /a?b=c HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400),
    C("encoded non-ASCII", "GET /caf%C3%A9 HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("CTL in target", "GET /a\x01 HTTP/1.1\r\n" H "\r\n", 400),
    C("NUL in target", "GET /a\0b HTTP/1.1\r\n" H "\r\n", 400),
    C("DEL in target", "GET /a\x7f HTTP/1.1\r\n" H "\r\n", 400),
    C("HTAB in target", "GET /a\tb HTTP/1.1\r\n" H "\r\n", 400),
    C("relative target", "GET a/b HTTP/1.1\r\n" H "\r\n", 400),
    C("empty-ish target", "GET ? HTTP/1.1\r\n" H "\r\n", 400),
    C("OPTIONS *", "OPTIONS * HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("GET *", "GET * HTTP/1.1\r\n" H "\r\n", 400),
    C("OPTIONS *a", "OPTIONS *a HTTP/1.1\r\n" H "\r\n", 400),
    C("OPTIONS /", "OPTIONS / HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("CONNECT authority", "CONNECT a.example:443 HTTP/1.1\r\n" H "\r\n",
      ED_OK),
    C("CONNECT IPv6", "CONNECT [::1]:443 HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("CONNECT no port", "CONNECT a.example HTTP/1.1\r\n" H "\r\n", 400),
    C("CONNECT empty port", "CONNECT a.example: HTTP/1.1\r\n" H "\r\n", 400),
    C("CONNECT long port", "CONNECT a:123456 HTTP/1.1\r\n" H "\r\n", 400),
    C("CONNECT origin-form", "CONNECT / HTTP/1.1\r\n" H "\r\n", 400),
    C("CONNECT absolute", "CONNECT http://a/ HTTP/1.1\r\n" H "\r\n", 400),
    C("GET authority-form", "GET a.example:443 HTTP/1.1\r\n" H "\r\n", 400),
    C("absolute", "GET http://a.example/x?y HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("absolute https", "GET https://a.example:8443/ HTTP/1.1\r\n" H "\r\n",
      ED_OK),
    C("absolute uppercase", "GET HTTP://A/ HTTP/1.1\r\n" H "\r\n", ED_OK),
    C("absolute no path", "GET http://a.example HTTP/1.1\r\n" H "\r\n",
      ED_OK),
    C("absolute query no path", "GET http://a?q HTTP/1.1\r\n" H "\r\n",
      ED_OK),
    C("absolute 1.0 no Host", "GET http://a/ HTTP/1.0\r\n\r\n", ED_OK),
    C("absolute 1.1 no Host", "GET http://a/ HTTP/1.1\r\n\r\n", 400),
    C("absolute empty host", "GET http:///x HTTP/1.1\r\n" H "\r\n", 400),
    C("absolute userinfo", "GET http://u@a/ HTTP/1.1\r\n" H "\r\n", 400),
    C("absolute bad port", "GET http://a:8x/ HTTP/1.1\r\n" H "\r\n", 400),
    C("ftp scheme", "GET ftp://a/ HTTP/1.1\r\n" H "\r\n", 400),
    C("scheme only", "GET http:// HTTP/1.1\r\n" H "\r\n", 400),
    C("half scheme", "GET http:/a HTTP/1.1\r\n" H "\r\n", 400),

    /* Header lines. */
    C("obs-fold SP", RL H "X: a\r\n b\r\n\r\n", 400),
    C("obs-fold HTAB", RL H "X: a\r\n\tb\r\n\r\n", 400),
    C("SP before first field", RL " Host: a\r\n\r\n", 400),
    C("SP before colon", RL "Host : a\r\n\r\n", 400),
    C("HTAB before colon", RL "Host\t: a\r\n\r\n", 400),
    C("SP in name", RL H "X Y: a\r\n\r\n", 400),
    C("empty name", RL H ": a\r\n\r\n", 400),
    C("no colon", RL H "Xa\r\n\r\n", 400),
    C("name not token", RL H "X(: a\r\n\r\n", 400),
    C("name non-ASCII", RL H "X\xc3\xa9: a\r\n\r\n", 400),
    C("NUL in value", RL H "X: a\0b\r\n\r\n", 400),
    C("CTL in value", RL H "X: a\x01" "b\r\n\r\n", 400),
    C("DEL in value", RL H "X: a\x7f\r\n\r\n", 400),
    C("obs-text value", RL H "X: caf\xc3\xa9\r\n\r\n", ED_OK),
    C("HTAB in value", RL H "X: a\tb\r\n\r\n", ED_OK),
    C("empty value", RL H "X:\r\n\r\n", ED_OK),
    C("only OWS value", RL H "X: \t \r\n\r\n", ED_OK),
    C("no space after colon", RL "Host:a\r\n\r\n", ED_OK),
    CM("max fields", RL H "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", ED_OK, 4),
    CM("too many fields", RL H "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
       431, 4),
    CM("no room at all", RL H "\r\n", 431, 0),

    /* Host. */
    C("no Host 1.1", RL "X: a\r\n\r\n", 400),
    C("two Hosts", RL H H "\r\n", 400),
    C("two Hosts 1.0", "GET / HTTP/1.0\r\n" H H "\r\n", 400),
    C("two Hosts case", RL H "HOST: a\r\n\r\n", 400),
    C("empty Host", RL "Host:\r\n\r\n", 400),
    C("empty Host OWS", RL "Host:  \r\n\r\n", 400),
    C("Host SP inside", RL "Host: a b\r\n\r\n", 400),
    C("Host slash", RL "Host: a/b\r\n\r\n", 400),
    C("Host backslash", RL "Host: a\\b\r\n\r\n", 400),
    C("Host userinfo", RL "Host: u@a\r\n\r\n", 400),
    C("Host port", RL "Host: a.example:8080\r\n\r\n", ED_OK),
    C("Host empty port", RL "Host: a.example:\r\n\r\n", ED_OK),
    C("Host bad port", RL "Host: a:80a\r\n\r\n", 400),
    C("Host long port", RL "Host: a:123456\r\n\r\n", 400),
    C("Host only port", RL "Host: :80\r\n\r\n", 400),
    C("Host IPv6", RL "Host: [::1]:80\r\n\r\n", ED_OK),
    C("Host IPv6 open", RL "Host: [::1\r\n\r\n", 400),
    C("Host IPv6 empty", RL "Host: []\r\n\r\n", 400),
    C("Host IPv6 junk", RL "Host: [::1]x\r\n\r\n", 400),
    C("Host pct", RL "Host: a%41\r\n\r\n", ED_OK),
    C("Host bad pct", RL "Host: a%4\r\n\r\n", 400),
    C("Host trailing dot", RL "Host: a.example.\r\n\r\n", ED_OK),
    C("Host obs-text", RL "Host: caf\xc3\xa9\r\n\r\n", 400),

    /* Content-Length. */
    C("CL", RL H "Content-Length: 5\r\n\r\n", ED_OK),
    C("CL zero", RL H "Content-Length: 0\r\n\r\n", ED_OK),
    C("CL list same", RL H "Content-Length: 5, 5\r\n\r\n", ED_OK),
    C("CL fields same", RL H "Content-Length: 5\r\ncontent-length: 5\r\n"
      "\r\n", ED_OK),
    C("CL list differs", RL H "Content-Length: 5, 6\r\n\r\n", 400),
    C("CL fields differ", RL H "Content-Length: 5\r\nContent-Length: 6\r\n"
      "\r\n", 400),
    C("CL spelled differently", RL H "Content-Length: 5\r\n"
      "Content-Length: 05\r\n\r\n", 400),
    C("CL empty", RL H "Content-Length:\r\n\r\n", 400),
    C("CL empty element", RL H "Content-Length: 5,\r\n\r\n", 400),
    C("CL sign", RL H "Content-Length: +5\r\n\r\n", 400),
    C("CL negative", RL H "Content-Length: -1\r\n\r\n", 400),
    C("CL hex", RL H "Content-Length: 0x5\r\n\r\n", 400),
    C("CL inner space", RL H "Content-Length: 5 5\r\n\r\n", 400),
    C("CL overflow", RL H "Content-Length: 99999999999999999999\r\n\r\n",
      400),
    C("CL max", RL H "Content-Length: 9223372036854775807\r\n\r\n", ED_OK),
    C("CL max+1", RL H "Content-Length: 9223372036854775808\r\n\r\n", 400),

    /* Transfer-Encoding. */
    C("TE chunked", RL H "Transfer-Encoding: chunked\r\n\r\n", ED_OK),
    C("TE Chunked", RL H "transfer-encoding: CHUNKED\r\n\r\n", ED_OK),
    C("TE gzip, chunked", RL H "Transfer-Encoding: gzip, chunked\r\n\r\n",
      501),
    C("TE two fields", RL H "Transfer-Encoding: gzip\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", 501),
    C("TE identity", RL H "Transfer-Encoding: identity,chunked\r\n\r\n",
      501),
    C("TE empty elements", RL H "Transfer-Encoding: , chunked ,\r\n\r\n",
      ED_OK),
    C("TE and CL", RL H "Transfer-Encoding: chunked\r\n"
      "Content-Length: 5\r\n\r\n", 400),
    C("CL and TE", RL H "Content-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", 400),
    C("TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      400),
    C("TE gzip only", RL H "Transfer-Encoding: gzip\r\n\r\n", 400),
    C("TE chunked, gzip", RL H "Transfer-Encoding: chunked, gzip\r\n\r\n",
      400),
    C("TE chunked twice", RL H "Transfer-Encoding: chunked, chunked\r\n"
      "\r\n", 400),
    C("TE chunked twice fields", RL H "Transfer-Encoding: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n", 400),
    C("TE empty", RL H "Transfer-Encoding:\r\n\r\n", 400),
    C("TE commas only", RL H "Transfer-Encoding: , ,\r\n\r\n", 400),
    C("TE params", RL H "Transfer-Encoding: chunked;q=1\r\n\r\n", 400),
    C("TE not token", RL H "Transfer-Encoding: chun ked\r\n\r\n", 400),
    C("TE quoted", RL H "Transfer-Encoding: \"chunked\"\r\n\r\n", 400),
    C("TE unknown", RL H "Transfer-Encoding: foo\r\n\r\n", 501),
    C("TE unknown, chunked", RL H "Transfer-Encoding: br, chunked\r\n\r\n",
      501),
    C("TE chunked, unknown", RL H "Transfer-Encoding: chunked, foo\r\n\r\n",
      400),
    C("TE xchunked", RL H "Transfer-Encoding: xchunked\r\n\r\n", 501),

    /* Connection and Expect never fail. */
    C("Connection list", RL H "Connection: Upgrade, close\r\n\r\n", ED_OK),
    C("Connection junk", RL H "Connection: ,;x\r\n\r\n", ED_OK),
    C("Expect", RL H "Expect: 100-continue\r\n\r\n", ED_OK),
    C("Expect other", RL H "Expect: 200-ok\r\n\r\n", ED_OK),
};

START_TEST(test_parse_table)
{
    const parse_case_t *c = &cases[_i];
    ed_http_header_t    hdrs[MAXH];
    ed_http_req_head_t  h;
    char               *buf;
    int                 rc;

    /* An exact-size copy, so ASan sees any read past the end. */
    buf = malloc(c->len ? c->len : 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, c->in, c->len);
    rc = ed_http_parse_request(buf, c->len, &h, hdrs,
                               c->max < 0 ? MAXH : (size_t)c->max);
    ck_assert_msg(rc == c->rc, "%s: got %d, want %d", c->name, rc, c->rc);
    if (rc == ED_OK) {
        /* Every good case is also found whole by the scanner. */
        ck_assert_msg(ed_http_head_end(buf, c->len, NULL) == c->len, "%s",
                      c->name);
        ck_assert_uint_eq(h.head_len, c->len);
    }
    free(buf);
}
END_TEST

/* Parses s (NUL-terminated) and asserts ED_OK. */
static void
parse_ok(const char *s, ed_http_req_head_t *h, ed_http_header_t *hdrs)
{
    int rc = ed_http_parse_request(s, strlen(s), h, hdrs, MAXH);

    ck_assert_msg(rc == ED_OK, "rc %d for %s", rc, s);
}

#define ck_str(str, lit)                                                     \
    do {                                                                     \
        ck_assert_uint_eq((str).len, sizeof(lit) - 1);                       \
        ck_assert(memcmp((str).data, lit, sizeof(lit) - 1) == 0);            \
    } while (0)

START_TEST(test_parse_methods)
{
    static const struct {
        const char *m;
        int         id;
    } m[] = {
        { "GET", ED_HTTP_GET },         { "HEAD", ED_HTTP_HEAD },
        { "POST", ED_HTTP_POST },       { "PUT", ED_HTTP_PUT },
        { "DELETE", ED_HTTP_DELETE },   { "OPTIONS", ED_HTTP_OPTIONS },
        { "PATCH", ED_HTTP_PATCH },     { "TRACE", ED_HTTP_TRACE },
        { "get", ED_HTTP_UNKNOWN },     { "GETS", ED_HTTP_UNKNOWN },
        { "PROPFIND", ED_HTTP_UNKNOWN }, { "X", ED_HTTP_UNKNOWN },
    };
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;
    char               buf[128];
    size_t             i;

    for (i = 0; i < ed_nelems(m); i++) {
        snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n",
                 m[i].m);
        parse_ok(buf, &h, hdrs);
        ck_assert_int_eq(h.method_id, m[i].id);
        ck_assert_uint_eq(h.method.len, strlen(m[i].m));
        ck_assert(memcmp(h.method.data, m[i].m, h.method.len) == 0);
    }
    parse_ok("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", &h, hdrs);
    ck_assert_int_eq(h.method_id, ED_HTTP_CONNECT);
}
END_TEST

START_TEST(test_parse_fields)
{
    static const char  s[] = "\r\nPOST /a/b?x=1&y HTTP/1.1\r\n"
                             "Host:  example.com:8080 \t\r\n"
                             "X-Empty:\r\n"
                             "X-Inner: a  b\t c \r\n"
                             "Content-Length: 12\r\n"
                             "Connection: keep-alive, Upgrade\r\n"
                             "Expect: 100-Continue\r\n"
                             "\r\n";
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;

    parse_ok(s, &h, hdrs);
    ck_str(h.method, "POST");
    ck_assert_int_eq(h.method_id, ED_HTTP_POST);
    ck_str(h.target, "/a/b?x=1&y");
    ck_str(h.path, "/a/b");
    ck_str(h.query, "x=1&y");
    ck_assert_uint_eq(h.authority.len, 0);
    ck_assert_int_eq(h.version, 11);
    ck_assert(!h.asterisk && !h.absolute);
    ck_assert_ptr_eq(h.headers, hdrs);
    ck_assert_uint_eq(h.nheaders, 6);
    ck_str(hdrs[0].name, "Host");
    ck_str(hdrs[0].value, "example.com:8080");
    ck_str(hdrs[1].name, "X-Empty");
    ck_assert_uint_eq(hdrs[1].value.len, 0);
    ck_str(hdrs[2].value, "a  b\t c");
    ck_str(h.host, "example.com:8080");
    ck_assert_int_eq(h.content_length, 12);
    ck_assert(!h.chunked);
    ck_assert(h.conn_keepalive && h.conn_upgrade && !h.conn_close);
    ck_assert(h.expect_continue && !h.expect_other);
    ck_assert_uint_eq(h.line_len, sizeof("POST /a/b?x=1&y HTTP/1.1\r\n") - 1);
    ck_assert_uint_eq(h.head_len, sizeof(s) - 1);
    /* Zero-copy: strings point into the buffer. */
    ck_assert_ptr_eq(h.method.data, s + 2);
}
END_TEST

START_TEST(test_parse_defaults)
{
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;

    parse_ok("GET /x HTTP/1.0\n\n", &h, hdrs);
    ck_assert_int_eq(h.version, 10);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert_uint_eq(h.host.len, 0);
    ck_assert_uint_eq(h.query.len, 0);
    ck_assert_uint_eq(h.nheaders, 0);
    ck_assert(!h.chunked && !h.conn_close && !h.conn_keepalive);
    ck_assert(!h.conn_upgrade && !h.expect_continue && !h.expect_other);
    ck_assert_uint_eq(h.line_len, 16);
    ck_assert_uint_eq(h.head_len, 17);

    parse_ok("GET / HTTP/1.7\r\nHost: a\r\n\r\n", &h, hdrs);
    ck_assert_int_eq(h.version, 11);
}
END_TEST

START_TEST(test_parse_flags)
{
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;

    parse_ok("POST / HTTP/1.1\r\nHost: a\r\n"
             "Transfer-Encoding: , Chunked\r\n"
             "connection: CLOSE\r\nexpect: x\r\n\r\n", &h, hdrs);
    ck_assert(h.chunked);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert(h.conn_close && !h.conn_keepalive);
    ck_assert(h.expect_other && !h.expect_continue);

    parse_ok("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 7 , 7\r\n"
             "Content-Length: 7\r\nExpect: 100-continue, foo\r\n"
             "Connection: x\r\nConnection: keep-alive\r\n\r\n", &h, hdrs);
    ck_assert_int_eq(h.content_length, 7);
    ck_assert(!h.chunked && h.conn_keepalive && !h.conn_close);
    ck_assert(h.expect_continue && h.expect_other);

    /* HTTP/1.0 clients get no 100 Continue (RFC 9110 10.1.1). */
    parse_ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
             "Content-Length: 1\r\n\r\n", &h, hdrs);
    ck_assert(!h.expect_continue && !h.expect_other);

    /* Lookalike names are plain fields. */
    parse_ok("GET / HTTP/1.1\r\nHost: a\r\nHosts: b\r\n"
             "Content-Lengths: x\r\nTransfer-Encodings: x\r\n\r\n", &h,
             hdrs);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert(!h.chunked);
    ck_str(h.host, "a");
}
END_TEST

START_TEST(test_parse_targets)
{
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;

    /* Absolute-form: the authority overrides Host. */
    parse_ok("GET http://www.example:81/p/q?r=s HTTP/1.1\r\n"
             "Host: other\r\n\r\n", &h, hdrs);
    ck_assert(h.absolute);
    ck_str(h.authority, "www.example:81");
    ck_str(h.host, "www.example:81");
    ck_str(h.path, "/p/q");
    ck_str(h.query, "r=s");
    ck_str(h.target, "http://www.example:81/p/q?r=s");

    parse_ok("GET https://a.example HTTP/1.1\r\nHost: b\r\n\r\n", &h, hdrs);
    ck_str(h.authority, "a.example");
    ck_str(h.path, "/");
    ck_assert_uint_eq(h.query.len, 0);

    parse_ok("GET http://a?x HTTP/1.0\r\n\r\n", &h, hdrs);
    ck_str(h.host, "a");
    ck_str(h.path, "/");
    ck_str(h.query, "x");

    parse_ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h, hdrs);
    ck_assert(h.asterisk && !h.absolute);
    ck_str(h.path, "*");
    ck_str(h.host, "a");

    parse_ok("CONNECT db.example:5432 HTTP/1.1\r\nHost: x\r\n\r\n", &h,
             hdrs);
    ck_str(h.authority, "db.example:5432");
    ck_str(h.host, "db.example:5432");
    ck_assert_uint_eq(h.path.len, 0);

    parse_ok("GET /? HTTP/1.1\r\nHost: a\r\n\r\n", &h, hdrs);
    ck_str(h.path, "/");
    ck_assert_uint_eq(h.query.len, 0);

    parse_ok("GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n", &h, hdrs);
    ck_str(h.path, "/a");
    ck_str(h.query, "b?c");
}
END_TEST

/* Parses "<pre><c><post>" as a request line and returns the status. */
static int
parse_target_byte(const char *pre, int c, const char *post)
{
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;
    char               buf[256];
    int                n;

    n = snprintf(buf, sizeof(buf), "GET %s%c%s HTTP/1.1\r\nHost: a\r\n\r\n",
                 pre, c, post);
    ck_assert(n > 0 && (size_t)n < sizeof(buf));
    return ed_http_parse_request(buf, (size_t)n, &h, hdrs, MAXH);
}

START_TEST(test_regress_target_bytes)
{
    /* RFC 3986 written out here, not taken from the parser's table:
     * pchar without '%' (unreserved, sub-delims, ':', '@') and '/'; '?'
     * starts (or continues) the query. Every other byte value, in the
     * path or the query of either form, is a 400: '#', SP, the CTLs,
     * DEL, bytes >= 0x80, and "<>[\]^`{|}. */
    static const char *const places[][2] = {
        { "/a", "b" },
        { "/", "" },
        { "/a?x", "y" },
        { "/a?", "" },
        { "http://h/a", "b" },
        { "http://h/?x", "" },
    };
    static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                             "-._~!$&'()*+,;=:@/?";
    size_t i;
    int    c, rc, want;

    for (i = 0; i < ed_nelems(places); i++) {
        for (c = 1; c < 256; c++) {
            want = strchr(ok, c) != NULL ? ED_OK : 400;
            rc = parse_target_byte(places[i][0], c, places[i][1]);
            ck_assert_msg(rc == want, "byte 0x%02x after \"%s\": got %d, "
                          "want %d", c, places[i][0], rc, want);
        }
    }
    /* NUL cannot go through snprintf: the table case covers it. */
}
END_TEST

START_TEST(test_regress_target_fragment_and_escapes)
{
    static const struct {
        const char *target;
        int         rc;
    } t[] = {
        { "/echo/admin#", 400 },
        { "/echo/admin#x", 400 },
        { "/#/../echo/admin", 400 },
        { "/echo/admin?#", 400 },
        { "/echo/admin?a=b#c", 400 },
        { "#", 400 },
        { "http://h/echo/admin#", 400 },
        { "http://h#/echo/admin", 400 },
        { "http://h?#", 400 },
        { "/echo/admin%23", ED_OK },
        { "/a%zz", 400 },
        { "/a%4", 400 },
        { "/a%", 400 },
        { "/a%4g", 400 },
        { "/a%g4", 400 },
        { "/a%%41", 400 },
        { "/a?q=%zz", 400 },
        { "/a?q=%4", 400 },
        { "/a?q=100%", 400 },
        { "http://h/%zz", 400 },
        { "http://h?%", 400 },
        { "/a%41%2f%2F%7e%00", ED_OK },
        { "/a?q=%41&r=%2f?s=/t", ED_OK },
        { "/a/b/c;p=1,2:@!$&'()*+=~-._", ED_OK },
        { "/a\\b", 400 },
        { "/a|b", 400 },
        { "/a[1]", 400 },
        { "/{x}", 400 },
        { "/\"x\"", 400 },
        { "/<x>", 400 },
        { "/a^b", 400 },
        { "/a`b", 400 },
    };
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;
    char               buf[256];
    size_t             i;
    int                n, rc;

    for (i = 0; i < ed_nelems(t); i++) {
        n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
                     t[i].target);
        rc = ed_http_parse_request(buf, (size_t)n, &h, hdrs, MAXH);
        ck_assert_msg(rc == t[i].rc, "%s: got %d, want %d", t[i].target, rc,
                      t[i].rc);
    }
    /* The escape stays escaped: %23 is a '#' inside a name, not the end
     * of the path. */
    parse_ok("GET /echo/admin%23?q HTTP/1.1\r\nHost: a\r\n\r\n", &h, hdrs);
    ck_str(h.path, "/echo/admin%23");
    ck_str(h.query, "q");
}
END_TEST

START_TEST(test_parse_underscore_fields)
{
    /* Names with '_' are parsed and counted like any other; the parser
     * only counts them for the caller, which decides whether to hide. */
    static const char  many[] = "GET / HTTP/1.1\r\nHost: a\r\nA_1: x\r\n"
                                "A_2: x\r\n\r\n";
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;

    parse_ok("GET / HTTP/1.1\r\nHost: a\r\nX_Real_IP: 1\r\n_: 2\r\n"
             "X-Ok: 3\r\nA_B_C: 4\r\n\r\n", &h, hdrs);
    ck_assert_uint_eq(h.nheaders, 5);
    ck_assert_uint_eq(h.nfields, 5);
    ck_assert_uint_eq(h.underscores, 3);
    ck_assert_ptr_eq(h.headers, hdrs);
    ck_assert_ptr_eq(h.fields, hdrs);
    ck_str(hdrs[1].name, "X_Real_IP");

    parse_ok("GET / HTTP/1.1\r\nHost: a\r\nX-A: _\r\n\r\n", &h, hdrs);
    ck_assert_uint_eq(h.underscores, 0);
    ck_assert_int_eq(ed_http_parse_request(many, sizeof(many) - 1, &h, hdrs,
                                           2),
                     431);
}
END_TEST

START_TEST(test_parse_trailing_bytes)
{
    /* Bytes after the head (a body, a pipelined request) are not part of
     * it: head_len says where it ends. */
    static const char  s[] = "POST / HTTP/1.1\r\nHost: a\r\n"
                             "Content-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n";
    ed_http_header_t   hdrs[MAXH];
    ed_http_req_head_t h;
    size_t             end = ed_http_head_end(s, sizeof(s) - 1, NULL);

    ck_assert_uint_eq(end, sizeof(s) - 1 - 3 - 16);
    ck_assert_int_eq(ed_http_parse_request(s, sizeof(s) - 1, &h, hdrs, MAXH),
                     ED_OK);
    ck_assert_uint_eq(h.head_len, end);
    ck_assert_int_eq(ed_http_parse_request(s, end, &h, hdrs, MAXH), ED_OK);
    ck_assert_uint_eq(h.head_len, end);
}
END_TEST

/*
 * The steps HTTP/2 fills a head with (ed_http_head_begin, _request,
 * _field, _verdict) judge a head as the HTTP/1 parser does: each case
 * of the table whose text splits plainly (one request line "M T
 * HTTP/1.x", CRLF field lines) is given to both, field by field to the
 * steps, and the answers and heads must agree.
 */
static bool
head_steps_case(const parse_case_t *c)
{
    ed_http_header_t      hdrs[MAXH], steps[MAXH], hd;
    ed_http_req_head_t    a, b;
    ed_http_head_state_t  st;
    const char           *p, *end, *sp1, *sp2, *eol;
    size_t                max = c->max < 0 ? MAXH : (size_t)c->max, i;
    int                   ra, rb;

    p = c->in;
    end = c->in + c->len;
    eol = c->len ? memmem(p, c->len, "\r\n", 2) : NULL;
    sp1 = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp2 == NULL || *p == '\n' || eol - sp2 != 9
        || memcmp(sp2, " HTTP/1.", 8) != 0
        || (sp2[8] != '0' && sp2[8] != '1') || c->len < 2
        || memcmp(end - 2, "\r\n", 2) != 0)
    {
        return false;  /* not a plain head: the table alone judges it */
    }
    ra = ed_http_parse_request(c->in, c->len, &a, hdrs, max);

    ed_http_head_begin(&b, &st, steps, max);
    b.version = sp2[8] == '0' ? 10 : 11;
    rb = ed_http_head_request(&b, p, (size_t)(sp1 - p), sp1 + 1,
                              (size_t)(sp2 - sp1 - 1));
    for (p = eol + 2; rb == ED_OK && !(p[0] == '\r' && p[1] == '\n');) {
        p = ed_http_parse_field(p, end, &hd);
        if (p == NULL) {
            return false;  /* a line no HTTP/2 field could be */
        }
        if (ed_http_value_len(hd.value.data, hd.value.len) != hd.value.len) {
            rb = 400;
            break;
        }
        rb = ed_http_head_field(&b, &st, hd.name.data, hd.name.len,
                                hd.value.data, hd.value.len);
    }
    if (rb == ED_OK) {
        rb = ed_http_head_verdict(&b, &st);
    }
    ck_assert_msg(ra == rb, "%s: parser %d, steps %d", c->name, ra, rb);
    if (ra != ED_OK) {
        return true;
    }
    ck_assert_int_eq(a.method_id, b.method_id);
    ck_assert_int_eq(a.version, b.version);
    ck_assert_uint_eq(a.nfields, b.nfields);
    ck_assert_uint_eq(a.nheaders, b.nheaders);
    ck_assert_uint_eq(a.underscores, b.underscores);
    ck_assert_int_eq(a.content_length, b.content_length);
    ck_assert_uint_eq(a.chunked, b.chunked);
    ck_assert_uint_eq(a.asterisk, b.asterisk);
    ck_assert_uint_eq(a.absolute, b.absolute);
    ck_assert_uint_eq(a.conn_close, b.conn_close);
    ck_assert_uint_eq(a.conn_keepalive, b.conn_keepalive);
    ck_assert_uint_eq(a.conn_upgrade, b.conn_upgrade);
    ck_assert_uint_eq(a.expect_continue, b.expect_continue);
    ck_assert_uint_eq(a.expect_other, b.expect_other);
    ck_assert(ed_str_eq(&a.path, &b.path));
    ck_assert(ed_str_eq(&a.query, &b.query));
    ck_assert(ed_str_eq(&a.host, &b.host));
    ck_assert(ed_str_eq(&a.authority, &b.authority));
    for (i = 0; i < a.nfields; i++) {
        ck_assert(ed_str_eq(&a.fields[i].name, &b.fields[i].name));
        ck_assert(ed_str_eq(&a.fields[i].value, &b.fields[i].value));
    }
    return true;
}

START_TEST(test_head_steps_table)
{
    size_t i, compared = 0;

    for (i = 0; i < ed_nelems(cases); i++) {
        compared += head_steps_case(&cases[i]);
    }
    /* Most of the table goes through both. */
    ck_assert_msg(compared >= 100, "only %zu of %zu cases compared",
                  compared, ed_nelems(cases));
}
END_TEST

/* Fills a head from name/value pairs as HTTP/2 does. */
static int
steps(ed_http_req_head_t *h, ed_http_header_t *hdrs, size_t max,
      const char *method, const char *target, const char *const *f)
{
    ed_http_head_state_t st;
    int                  rc;

    ed_http_head_begin(h, &st, hdrs, max);
    h->version = 11;
    rc = ed_http_head_request(h, method, strlen(method), target,
                              strlen(target));
    for (; rc == ED_OK && f[0] != NULL; f += 2) {
        rc = ed_http_head_field(h, &st, f[0], strlen(f[0]), f[1],
                                strlen(f[1]));
    }
    return rc == ED_OK ? ed_http_head_verdict(h, &st) : rc;
}

START_TEST(test_head_steps_rules)
{
    static const char *const host[] = {"host", "a.test", NULL};
    static const char *const two_hosts[] = {"host", "a", "host", "b", NULL};
    static const char *const bad_host[] = {"host", "a b", NULL};
    static const char *const none[] = {NULL};
    static const char *const cl[] = {"host", "a", "content-length", "7",
                                     "x_y", "1", NULL};
    static const char *const cl_te[] = {"host", "a", "content-length", "1",
                                        "transfer-encoding", "chunked",
                                        NULL};
    static const char *const three[] = {"host", "a", "b", "1", "c", "2",
                                        NULL};
    static const char *const ws[] = {"host", "a", "connection", "upgrade",
                                     "upgrade", "websocket", NULL};
    ed_http_header_t   hdrs[4];
    ed_http_req_head_t h;

    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "/p?q", host), ED_OK);
    ck_assert_int_eq(h.method_id, ED_HTTP_GET);
    ck_str(h.path, "/p");
    ck_str(h.query, "q");
    ck_str(h.host, "a.test");
    ck_assert_int_eq(h.content_length, -1);
    ck_assert_ptr_eq(h.fields, hdrs);
    ck_assert_uint_eq(h.nfields, 1);

    /* HTTP/1.1's Host rules: one, valid, present. */
    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "/", two_hosts), 400);
    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "/", bad_host), 400);
    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "/", none), 400);

    /* The request line's grammar: a token, a target. */
    ck_assert_int_eq(steps(&h, hdrs, 4, "G T", "/", host), 400);
    ck_assert_int_eq(steps(&h, hdrs, 4, "", "/", host), 400);
    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "/a b", host), 400);
    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "/a\x7f", host), 400);
    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "*", host), 400);
    ck_assert_int_eq(steps(&h, hdrs, 4, "OPTIONS", "*", host), ED_OK);
    ck_assert_uint_eq(h.asterisk, 1);

    /* CONNECT's authority-form is the host. */
    ck_assert_int_eq(steps(&h, hdrs, 4, "CONNECT", "b.test:443", host),
                     ED_OK);
    ck_str(h.host, "b.test:443");
    ck_assert_int_eq(steps(&h, hdrs, 4, "CONNECT", "b.test", host), 400);

    /* Framing, underscores. */
    ck_assert_int_eq(steps(&h, hdrs, 4, "POST", "/", cl), ED_OK);
    ck_assert_int_eq(h.content_length, 7);
    ck_assert_uint_eq(h.underscores, 1);
    ck_assert_int_eq(steps(&h, hdrs, 4, "POST", "/", cl_te), 400);

    /* max_headers: the fourth field of three is 431. */
    ck_assert_int_eq(steps(&h, hdrs, 3, "GET", "/", three), ED_OK);
    ck_assert_int_eq(steps(&h, hdrs, 2, "GET", "/", three), 431);

    /* The upgrade an extended CONNECT stands for. */
    ck_assert_int_eq(steps(&h, hdrs, 4, "GET", "/chat", ws), ED_OK);
    ck_assert_uint_eq(h.conn_upgrade, 1);
}
END_TEST

START_TEST(test_value_len)
{
    static const char ok[] = "text/html; charset=utf-8, \t\x80\xff~ ok";
    char              buf[40];
    size_t            n, at;

    ck_assert_uint_eq(ed_http_value_len("", 0), 0);
    ck_assert_uint_eq(ed_http_value_len(ok, sizeof(ok) - 1), sizeof(ok) - 1);
    /* A CTL or DEL at every place of values of every length up to 40,
     * across words and tails. */
    for (n = 1; n <= sizeof(buf); n++) {
        for (at = 0; at < n; at++) {
            memset(buf, 'v', n);
            buf[at] = at & 1 ? '\x7f' : '\x01';
            ck_assert_uint_eq(ed_http_value_len(buf, n), at);
            buf[at] = '\t';
            ck_assert_uint_eq(ed_http_value_len(buf, n), n);
        }
    }
}
END_TEST

/* Asserts that every proper prefix of s is incomplete and s is whole. */
static void
check_head_end_prefixes(const char *s, size_t len, size_t want)
{
    size_t i;
    char  *buf;

    for (i = 0; i <= len; i++) {
        buf = malloc(i ? i : 1);
        ck_assert_ptr_nonnull(buf);
        memcpy(buf, s, i);
        ck_assert_msg(ed_http_head_end(buf, i, NULL) == (i >= want ? want : 0),
                      "prefix %zu of %zu", i, len);
        free(buf);
    }
}

START_TEST(test_head_end)
{
    static const char *heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET / HTTP/1.1\nHost: a\r\n\n",
        "\r\n\r\n\n\nGET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\n\n",
    };
    size_t      i;
    const char *s;

    for (i = 0; i < ed_nelems(heads); i++) {
        check_head_end_prefixes(heads[i], strlen(heads[i]),
                                strlen(heads[i]));
    }

    /* A body after the head. */
    s = "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\r\n\r\n";
    check_head_end_prefixes(s, strlen(s), strlen(s) - 8);

    /* Only empty lines, or nothing, is never a head. */
    ck_assert_uint_eq(ed_http_head_end("\r\n\r\n\n", 5, NULL), 0);
    ck_assert_uint_eq(ed_http_head_end("", 0, NULL), 0);
    ck_assert_uint_eq(ed_http_head_end("\r", 1, NULL), 0);
    /* A CR alone on a line does not end a head. */
    ck_assert_uint_eq(ed_http_head_end("GET / HTTP/1.1\r\n\rX\r\n", 20, NULL),
                      0);
    /* Garbage still ends at an empty line; the parser judges it. */
    ck_assert_uint_eq(ed_http_head_end("\rx\n\n", 4, NULL), 4);
}
END_TEST

START_TEST(test_head_end_split)
{
    /* Pieces arriving in every split give the same answer as whole, the
     * second call going on where the first stopped. */
    static const char s[] = "\r\nGET /x HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\nZ";
    size_t            len = sizeof(s) - 1, want = len - 1, i, j, got, r;
    char              buf[sizeof(s)];

    for (i = 0; i <= len; i++) {
        for (j = i; j <= len; j++) {
            memcpy(buf, s, j);
            r = 0;
            got = ed_http_head_end(buf, i, &r);
            ck_assert_uint_eq(got, i >= want ? want : 0);
            if (got == 0) {
                ck_assert_uint_le(r, i);
                got = ed_http_head_end(buf, j, &r);
            }
            ck_assert_uint_eq(got, j >= want ? want : 0);
        }
    }
}
END_TEST

/* Scans s[0..len) as it would arrive one byte at a time, going on where
 * each call stopped; every answer must be the one-shot answer for that
 * prefix, and no call may look again at more than the two bytes an end
 * can start with ("\n" and "\n\r"). */
static void
check_head_end_trickled(const char *s, size_t len)
{
    size_t i, r = 0, got, want;

    for (i = 0; i <= len; i++) {
        want = ed_http_head_end(s, i, NULL);
        got = ed_http_head_end(s, i, &r);
        ck_assert_msg(got == want, "prefix %zu: got %zu, want %zu", i, got,
                      want);
        if (got != 0) {
            return;
        }
        ck_assert_msg(r <= i && i - r <= 2, "prefix %zu: resume at %zu", i,
                      r);
    }
}

START_TEST(test_regress_head_end_resumes)
{
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\nHost: a\n\r\n",
        "\r\n\r\n\n\nGET / HTTP/1.1\r\n\r\n",
        "\r\n\r\r\n\r\n",
        "\r\rx\n\r\r\n\n",
        "GET / HTTP/1.1\r\nA: \r\r\nB: b\r\n\r\n",
    };
    char   buf[12], big[8192];
    size_t i, n, len, k;

    for (i = 0; i < ed_nelems(heads); i++) {
        check_head_end_trickled(heads[i], strlen(heads[i]));
    }

    /* Every string of up to 9 bytes from CR, LF and 'a': whatever the
     * bytes, going on gives what starting over gives. */
    for (len = 0; len <= 9; len++) {
        for (n = 0, k = 1; k <= len; k++) {
            n = n * 3 + 2;
        }
        for (k = 0; k <= n; k++) {
            size_t v = k, j;

            for (j = 0; j < len; j++, v /= 3) {
                buf[j] = "\r\na"[v % 3];
            }
            check_head_end_trickled(buf, len);
        }
    }

    /* A long head: the answer comes at the very end. */
    n = (size_t)sprintf(big, "GET / HTTP/1.1\r\n");
    while (n < sizeof(big) - 32) {
        n += (size_t)sprintf(big + n, "X-%zu: \r\r\n", n);
    }
    n += (size_t)sprintf(big + n, "\r\n");
    check_head_end_trickled(big, n);
    ck_assert_uint_eq(ed_http_head_end(big, n, NULL), n);
}
END_TEST

START_TEST(test_parse_many_fields)
{
    /* 100 fields fit in 100 slots; one more is 431. */
    static ed_http_header_t hdrs[101];
    ed_http_req_head_t      h;
    char                    buf[4096], *p = buf;
    int                     i;

    p += sprintf(p, "GET / HTTP/1.1\r\n");
    for (i = 0; i < 100; i++) {
        p += sprintf(p, "%s: v%d\r\n", i == 0 ? "Host" : "X-F", i);
    }
    p += sprintf(p, "\r\n");
    ck_assert_int_eq(ed_http_parse_request(buf, (size_t)(p - buf), &h, hdrs,
                                           100), ED_OK);
    ck_assert_uint_eq(h.nheaders, 100);
    ck_str(hdrs[99].value, "v99");
    ck_assert_int_eq(ed_http_parse_request(buf, (size_t)(p - buf), &h, hdrs,
                                           99), 431);
}
END_TEST

START_TEST(test_parse_head_lines)
{
    static const char h[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\nY: 2\r\n\r\n";
    ed_http_header_t  hdrs[3];
    ed_http_req_head_t head;

    ck_assert_uint_eq(ed_http_head_lines(h, sizeof(h) - 1, 100), 5);
    ck_assert_uint_eq(ed_http_head_lines(h, sizeof(h) - 1, 3), 3);
    ck_assert_uint_eq(ed_http_head_lines("", 0, 100), 1);
    /* An array of that size takes the head; one field more than max is
     * still the 431 a max-sized array gives. */
    memset(&head, 0, sizeof(head));
    ck_assert_int_eq(ed_http_parse_request(h, sizeof(h) - 1, &head, hdrs,
                         ed_http_head_lines(h, sizeof(h) - 1, 3)), ED_OK);
    ck_assert_uint_eq(head.nfields, 3);
    memset(&head, 0, sizeof(head));
    ck_assert_int_eq(ed_http_parse_request(h, sizeof(h) - 1, &head, hdrs,
                         ed_http_head_lines(h, sizeof(h) - 1, 2)), 431);
}
END_TEST

Suite *
ed_test_http_parse_suite(void)
{
    Suite *s = suite_create("http_parse");
    TCase *tc;

    tc = tcase_create("table");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_parse_table, 0, (int)ed_nelems(cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("head_steps");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_head_steps_table);
    tcase_add_test(tc, test_head_steps_rules);
    tcase_add_test(tc, test_value_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("fields");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_parse_methods);
    tcase_add_test(tc, test_parse_head_lines);
    tcase_add_test(tc, test_parse_fields);
    tcase_add_test(tc, test_parse_defaults);
    tcase_add_test(tc, test_parse_flags);
    tcase_add_test(tc, test_parse_targets);
    tcase_add_test(tc, test_regress_target_bytes);
    tcase_add_test(tc, test_regress_target_fragment_and_escapes);
    tcase_add_test(tc, test_parse_trailing_bytes);
    tcase_add_test(tc, test_parse_underscore_fields);
    tcase_add_test(tc, test_parse_many_fields);
    suite_add_tcase(s, tc);

    tc = tcase_create("head_end");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_head_end);
    tcase_add_test(tc, test_head_end_split);
    tcase_add_test(tc, test_regress_head_end_resumes);
    suite_add_tcase(s, tc);

    return s;
}
