/* Unit tests of the header-field rules and the body decoder
 * (ed_http_fields.c). */
#include <check.h>

#include "ed_core.h"
#include "ed_http_fields.h"

#define S(lit) lit, sizeof(lit) - 1

/* Joins the elements of a list as "[a][b][]..." into out. */
static void
list_join(const char *v, size_t len, char *out, size_t cap)
{
    ed_http_list_t l;
    ed_str_t       e;
    size_t         o = 0;

    ed_http_list_init(&l, v, len);
    while (ed_http_list_next(&l, &e)) {
        ck_assert(o + e.len + 3 < cap);
        out[o++] = '[';
        memcpy(out + o, e.data, e.len);
        o += e.len;
        out[o++] = ']';
    }
    out[o] = '\0';
}

START_TEST(test_fields_list_walk)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        { "", "[]" },
        { "a", "[a]" },
        { " a ,\tb\t", "[a][b]" },
        { "a,,b", "[a][][b]" },
        { ",", "[][]" },
        { " , ", "[][]" },
        { "a b, c", "[a b][c]" },
        { "close ,", "[close][]" },
        { "\"x,y\"", "[\"x][y\"]" },
    };
    char   out[64];
    size_t i;

    for (i = 0; i < ed_nelems(t); i++) {
        list_join(t[i].in, strlen(t[i].in), out, sizeof(out));
        ck_assert_msg(strcmp(out, t[i].out) == 0, "%s: %s", t[i].in, out);
    }
}
END_TEST

START_TEST(test_fields_list_skip)
{
    const char  v[] = " , ,\tx , y";
    const char *p = v, *end = v + sizeof(v) - 1;

    p = ed_http_list_skip(p, end);
    ck_assert_int_eq(*p, 'x');
    p++;
    ck_assert(ed_http_list_elt_end(&p, end));
    ck_assert_int_eq(*p, ',');
    p = ed_http_list_skip(p, end);
    ck_assert_int_eq(*p, 'y');
    p++;
    ck_assert(ed_http_list_elt_end(&p, end));
    ck_assert(p == end);
    p = v + 5;  /* "x , y": an element that goes on past its token */
    p++;
    ck_assert(ed_http_list_elt_end(&p, end));
    p = ed_http_list_skip(v, v);
    ck_assert(p == v);
    p = "x y";
    p++;
    end = p + 2;
    ck_assert(!ed_http_list_elt_end(&p, end));
}
END_TEST

START_TEST(test_fields_token_eq)
{
    ck_assert(ed_http_token_eq_lit("Content-Length", 14, "content-length"));
    ck_assert(ed_http_token_eq_lit("CHUNKED", 7, "chunked"));
    ck_assert(!ed_http_token_eq_lit("chunke", 6, "chunked"));
    ck_assert(!ed_http_token_eq_lit("chunkedx", 8, "chunked"));
    ck_assert(!ed_http_token_eq_lit("chunkeD ", 8, "chunked"));
    ck_assert(ed_http_token_eq("", 0, "", 0));
    ck_assert(ed_http_token_eq("aBc", 3, "AbC", 3));
    /* No folding beyond ASCII: 0xC3 0xA9 is no 'e'. */
    ck_assert(!ed_http_token_eq_lit("chunk\xc3\xa9", 7, "chunked"));
    /* A NUL is a byte like another, not an end. */
    ck_assert(!ed_http_token_eq("a\0b", 3, "a\0c", 3));
}
END_TEST

START_TEST(test_fields_field_id)
{
    ck_assert_int_eq(ed_http_field_id(S("Host")), ED_HTTP_F_HOST);
    ck_assert_int_eq(ed_http_field_id(S("TRANSFER-ENCODING")),
                     ED_HTTP_F_TRANSFER_ENCODING);
    ck_assert_int_eq(ed_http_field_id(S("content-length")),
                     ED_HTTP_F_CONTENT_LENGTH);
    ck_assert_int_eq(ed_http_field_id(S("Te")), ED_HTTP_F_TE);
    ck_assert_int_eq(ed_http_field_id(S("Content-Lengths")),
                     ED_HTTP_F_OTHER);
    ck_assert_int_eq(ed_http_field_id(S("Transfer_Encoding")),
                     ED_HTTP_F_OTHER);
    ck_assert_int_eq(ed_http_field_id(S("")), ED_HTTP_F_OTHER);
}
END_TEST

START_TEST(test_fields_hop_by_hop)
{
    static const char *hop[] = {
        "Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
        "Transfer-Encoding", "UPGRADE"
    };
    static const char *not_hop[] = {
        "Content-Length", "Host", "Expect", "Date", "Server", "X-Te",
        "Upgrade-Insecure-Requests", "HTTP2-Settings"
    };
    ed_str_t n;
    size_t   i;

    for (i = 0; i < ed_nelems(hop); i++) {
        n.data = (char *)hop[i];
        n.len = strlen(hop[i]);
        ck_assert_msg(ed_http_hop_by_hop(&n), "%s", hop[i]);
    }
    for (i = 0; i < ed_nelems(not_hop); i++) {
        n.data = (char *)not_hop[i];
        n.len = strlen(not_hop[i]);
        ck_assert_msg(!ed_http_hop_by_hop(&n), "%s", not_hop[i]);
    }
}
END_TEST

START_TEST(test_fields_content_length)
{
    ed_http_framing_t f;

    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("42")), ED_OK);
    ck_assert_int_eq(f.content_length, 42);
    ck_assert_int_eq(ed_http_content_length(&f, S(" 42 , 42")), ED_OK);
    ck_assert_int_eq(ed_http_content_length(&f, S("42")), ED_OK);
    /* Identical spelling, not equal value. */
    ck_assert_int_eq(ed_http_content_length(&f, S("042")), ED_ERROR);

    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("")), ED_ERROR);
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("1,")), ED_ERROR);
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("1,2")), ED_ERROR);
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("+1")), ED_ERROR);
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("1 2")), ED_ERROR);
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("0x10")), ED_ERROR);
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("9223372036854775807")),
                     ED_OK);
    ck_assert_int_eq(f.content_length, INT64_MAX);
    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(ed_http_content_length(&f, S("9223372036854775808")),
                     ED_ERROR);
}
END_TEST

/* The verdict on Transfer-Encoding fields v[0..n) of a message. */
static int
te_verdict(const char *const *v, size_t n, int version, bool cl, bool *other)
{
    ed_http_framing_t f;
    size_t            i;

    memset(&f, 0, sizeof(f));
    if (cl) {
        ck_assert_int_eq(ed_http_content_length(&f, S("1")), ED_OK);
    }
    for (i = 0; i < n; i++) {
        if (ed_http_transfer_encoding(&f, v[i], strlen(v[i])) != ED_OK) {
            return ED_ERROR;
        }
    }
    *other = f.te_other;
    return ed_http_framing_verdict(&f, version);
}

START_TEST(test_fields_transfer_encoding)
{
    static const struct {
        const char *v[2];
        int         rc;
        bool        other;
    } t[] = {
        { { "chunked", NULL }, ED_OK, false },
        { { "Chunked", NULL }, ED_OK, false },
        { { " , chunked ,", NULL }, ED_OK, false },
        { { "gzip, chunked", NULL }, 501, true },
        { { "gzip", "chunked" }, 501, true },
        { { "identity", "CHUNKED" }, 501, true },
        { { "chunked, gzip", NULL }, 400, true },
        { { "chunked", "gzip" }, 400, true },
        { { "gzip", NULL }, 400, true },
        { { "", NULL }, 400, false },
        { { ",", " " }, 400, false },
        { { "foo, chunked", NULL }, 501, true },
        { { "chunked", "chunked" }, ED_ERROR, false },
        { { "chunked, chunked", NULL }, ED_ERROR, false },
        { { "chunked;x=1", NULL }, ED_ERROR, false },
        { { "chunked x", NULL }, ED_ERROR, false },
        { { "\"chunked\"", NULL }, ED_ERROR, false },
        { { "chunk\xc3\xa9", NULL }, ED_ERROR, false },
    };
    size_t i;
    bool   other;
    int    rc;

    for (i = 0; i < ed_nelems(t); i++) {
        rc = te_verdict(t[i].v, t[i].v[1] ? 2 : 1, 11, false, &other);
        ck_assert_msg(rc == t[i].rc, "case %zu: %d", i, rc);
        if (rc != ED_ERROR) {
            ck_assert_msg(other == t[i].other, "case %zu", i);
        }
    }
    /* No chunked in HTTP/1.0, nor with a Content-Length. */
    ck_assert_int_eq(te_verdict(t[0].v, 1, 10, false, &other), 400);
    ck_assert_int_eq(te_verdict(t[0].v, 1, 11, true, &other), 400);
    ck_assert_int_eq(te_verdict(NULL, 0, 10, true, &other), ED_OK);
}
END_TEST

START_TEST(test_fields_connection)
{
    ck_assert_uint_eq(ed_http_connection(S("close")), ED_HTTP_CONN_CLOSE);
    ck_assert_uint_eq(ed_http_connection(S(" Keep-Alive , Upgrade")),
                      ED_HTTP_CONN_KEEPALIVE | ED_HTTP_CONN_UPGRADE);
    ck_assert_uint_eq(ed_http_connection(S(",,CLOSE,,")),
                      ED_HTTP_CONN_CLOSE);
    ck_assert_uint_eq(ed_http_connection(S("closed, xclose")), 0);
    ck_assert_uint_eq(ed_http_connection(S("close x")), 0);
    ck_assert_uint_eq(ed_http_connection(S("")), 0);
}
END_TEST

START_TEST(test_fields_list_has)
{
    ed_http_header_t h[3] = {
        { ed_string("Upgrade"), ed_string("h2c, WebSocket") },
        { ed_string("connection"), ed_string("") },
        { ed_string("UPGRADE"), ed_string(" ,foo/1 ,") },
    };
    bool found;

    ck_assert(ed_http_list_has(S("Accept-Encoding, Cookie"), S("cookie")));
    ck_assert(ed_http_list_has(S("a;q=1, b=2, c d"), S("c")));
    ck_assert(ed_http_list_has(S("x, b=2"), S("b")));
    ck_assert(!ed_http_list_has(S("ab, abc"), S("a")));
    ck_assert(!ed_http_list_has(S(""), S("a")));

    ck_assert_uint_eq(ed_http_fields_list(h, 3, S("upgrade"), S("websocket"),
                                          &found),
                      3);
    ck_assert(found);
    ck_assert_uint_eq(ed_http_fields_list(h, 3, S("Connection"), S("close"),
                                          &found),
                      0);
    ck_assert(!found);
    ck_assert_uint_eq(ed_http_fields_list(h, 1, S("upgrade"), S("h2"),
                                          &found),
                      2);
    ck_assert(!found);
}
END_TEST

/* Feeds in[0..len) to d in pieces of step bytes, gathering the body;
 * returns the last answer, with *used the input consumed. */
static int
decode_all(ed_http_decoder_t *d, const char *in, size_t len, size_t step,
           char *body, size_t *blen, size_t *used)
{
    size_t pos = 0, avail, u, off, n;
    int    rc = ED_AGAIN;

    *blen = 0;
    for (avail = ed_min(step, len);; avail = ed_min(avail + step, len)) {
        do {
            rc = ed_http_decode(d, in + pos, avail - pos, &u, &off, &n);
            ck_assert(u <= avail - pos);
            memcpy(body + *blen, in + pos + off, n);
            *blen += n;
            pos += u;
        } while (rc == ED_OK && pos < avail);
        if (rc == ED_DONE || rc == ED_ERROR || avail == len) {
            break;
        }
    }
    if (rc == ED_OK) {
        /* All of it consumed: what the decoder says of no more input. */
        rc = ed_http_decode(d, in + pos, 0, &u, &off, &n);
        ck_assert(u == 0 && n == 0);
    }
    *used = pos;
    return rc;
}

START_TEST(test_fields_decoder)
{
    static const size_t steps[] = { 1, 3, 1000 };
    ed_http_decoder_t   d;
    char                body[64];
    size_t              i, blen, used;
    int                 rc;

    for (i = 0; i < ed_nelems(steps); i++) {
        ed_http_decoder_init(&d, ED_HTTP_BODY_LENGTH, 5);
        rc = decode_all(&d, S("helloGET"), steps[i], body, &blen, &used);
        ck_assert_int_eq(rc, ED_DONE);
        ck_assert_uint_eq(used, 5);
        ck_assert(blen == 5 && memcmp(body, "hello", 5) == 0);
        ck_assert(ed_http_decoder_done(&d));
        ck_assert_int_eq(ed_http_decode_eof(&d), ED_DONE);

        ed_http_decoder_init(&d, ED_HTTP_BODY_LENGTH, 9);
        rc = decode_all(&d, S("hello"), steps[i], body, &blen, &used);
        ck_assert_int_eq(rc, ED_AGAIN);
        ck_assert_int_eq(d.left, 4);
        ck_assert_int_eq(ed_http_decode_eof(&d), ED_ERROR);

        ed_http_decoder_init(&d, ED_HTTP_BODY_CHUNKED, -1);
        rc = decode_all(&d, S("3\r\nabc\r\n0\r\n\r\nX"), steps[i], body,
                        &blen, &used);
        ck_assert_int_eq(rc, ED_DONE);
        ck_assert_uint_eq(used, 13);
        ck_assert(blen == 3 && memcmp(body, "abc", 3) == 0);
        ck_assert_int_eq(d.total, 3);
        /* Over after its last chunk, like a length read whole. */
        ck_assert(ed_http_decoder_done(&d));
        ck_assert_int_eq(ed_http_decode_eof(&d), ED_DONE);

        ed_http_decoder_init(&d, ED_HTTP_BODY_CHUNKED, -1);
        rc = decode_all(&d, S("3\nabc"), steps[i], body, &blen, &used);
        ck_assert_int_eq(rc, ED_ERROR);
        /* Invalid framing never ends the body. */
        ck_assert(!ed_http_decoder_done(&d));

        ed_http_decoder_init(&d, ED_HTTP_BODY_CLOSE, -1);
        rc = decode_all(&d, S("0\r\n\r\nall"), steps[i], body, &blen,
                        &used);
        ck_assert_int_eq(rc, ED_AGAIN);
        ck_assert(blen == 8 && memcmp(body, "0\r\n\r\nall", 8) == 0);
        ck_assert_int_eq(ed_http_decode_eof(&d), ED_DONE);
    }
    ed_http_decoder_init(&d, ED_HTTP_BODY_NONE, -1);
    ck_assert_int_eq(decode_all(&d, S("x"), 1, body, &blen, &used), ED_DONE);
    ck_assert_uint_eq(used, 0);
    ed_http_decoder_init(&d, ED_HTTP_BODY_LENGTH, 0);
    ck_assert_int_eq(decode_all(&d, S("x"), 1, body, &blen, &used), ED_DONE);
    ck_assert_uint_eq(used, 0);
}
END_TEST

/* A request's body from its head, and how much a read of it may ask. */
START_TEST(test_fields_decoder_request)
{
    ed_http_req_head_t h;
    ed_http_decoder_t  d;
    size_t             used, off, n;

    memset(&h, 0, sizeof(h));
    h.content_length = -1;
    ed_http_decoder_request(&d, &h);
    ck_assert_int_eq(d.kind, ED_HTTP_BODY_NONE);
    ck_assert(ed_http_decoder_done(&d));

    h.content_length = 0;
    ed_http_decoder_request(&d, &h);
    ck_assert_int_eq(d.kind, ED_HTTP_BODY_NONE);
    ck_assert(ed_http_decoder_done(&d));

    h.content_length = 70000;
    ed_http_decoder_request(&d, &h);
    ck_assert_int_eq(d.kind, ED_HTTP_BODY_LENGTH);
    ck_assert(!ed_http_decoder_done(&d));
    ck_assert_uint_eq(ed_http_decoder_want(&d, 65536), 65536);
    ck_assert_int_eq(ed_http_decode(&d, "x", 1, &used, &off, &n), ED_OK);
    d.left = 10;
    ck_assert_uint_eq(ed_http_decoder_want(&d, 65536), 10);

    h.content_length = -1;
    h.chunked = 1;
    ed_http_decoder_request(&d, &h);
    ck_assert_int_eq(d.kind, ED_HTTP_BODY_CHUNKED);
    ck_assert(!ed_http_decoder_done(&d));
    ck_assert_uint_eq(ed_http_decoder_want(&d, 4096), 4096);

    ed_http_decoder_init(&d, ED_HTTP_BODY_CLOSE, -1);
    ck_assert(!ed_http_decoder_done(&d));
    ck_assert_uint_eq(ed_http_decoder_want(&d, 4096), 4096);
}
END_TEST

/* A slice sink for ed_http_decode_run: gathers, stops after max. */
typedef struct {
    char   buf[64];
    size_t len;
    size_t calls, max;
} sink_t;

static int
sink(void *data, const char *p, size_t n)
{
    sink_t *k = data;

    ck_assert(k->len + n <= sizeof(k->buf));
    memcpy(k->buf + k->len, p, n);
    k->len += n;
    return ++k->calls == k->max ? 7 : ED_OK;
}

START_TEST(test_fields_decode_run)
{
    static const char in[] = "2\r\nab\r\n1\r\nc\r\n0\r\n\r\nnext";
    ed_http_decoder_t d;
    sink_t            k;
    size_t            pos;

    memset(&k, 0, sizeof(k));
    ed_http_decoder_init(&d, ED_HTTP_BODY_CHUNKED, -1);
    pos = 0;
    ck_assert_int_eq(ed_http_decode_run(&d, S(in), &pos, sink, &k), ED_DONE);
    ck_assert_uint_eq(pos, sizeof(in) - 1 - 4);
    ck_assert(k.len == 3 && memcmp(k.buf, "abc", 3) == 0);

    /* A sink that stops: the run ends just past its slice. */
    memset(&k, 0, sizeof(k));
    k.max = 1;
    ed_http_decoder_init(&d, ED_HTTP_BODY_CHUNKED, -1);
    pos = 0;
    ck_assert_int_eq(ed_http_decode_run(&d, S(in), &pos, sink, &k), 7);
    ck_assert_uint_eq(pos, 5);
    ck_assert_int_eq(ed_http_decode_run(&d, S(in), &pos, sink, &k), ED_DONE);
    ck_assert(k.len == 3 && memcmp(k.buf, "abc", 3) == 0);

    /* Dropped slices; an error stops just past the bad byte. */
    ed_http_decoder_init(&d, ED_HTTP_BODY_CHUNKED, -1);
    pos = 0;
    ck_assert_int_eq(ed_http_decode_run(&d, S("2\r\nab\rX"), &pos, NULL,
                                        NULL),
                     ED_ERROR);
    ck_assert_uint_eq(pos, 7);

    ed_http_decoder_init(&d, ED_HTTP_BODY_LENGTH, 3);
    pos = 0;
    ck_assert_int_eq(ed_http_decode_run(&d, S("ab"), &pos, NULL, NULL),
                     ED_AGAIN);
    ck_assert_uint_eq(pos, 2);
    pos = 0;
    ck_assert_int_eq(ed_http_decode_run(&d, S("cde"), &pos, NULL, NULL),
                     ED_DONE);
    ck_assert_uint_eq(pos, 1);
}
END_TEST

START_TEST(test_fields_trailers)
{
    static const char in[] = "X-Sum:  abc \r\nContent-Length: 3\r\n"
                             "SET-COOKIE: a=b\r\nConnection: close\r\n"
                             "Grpc-Status:0\r\nE:\r\nTe: trailers\r\n";
    char   out[2 * sizeof(in)];
    size_t n;

    ck_assert(ed_http_trailer_allowed(S("x-sum")));
    ck_assert(!ed_http_trailer_allowed(S("Content-Length")));
    ck_assert(!ed_http_trailer_allowed(S("transfer-encoding")));
    ck_assert(!ed_http_trailer_allowed(S("Authorization")));
    ck_assert(!ed_http_trailer_allowed(S("keep-alive")));
    n = ed_http_trailers_copy(out, in, sizeof(in) - 1, false);
    ck_assert_str_eq((out[n] = '\0', out),
                     "X-Sum: abc\r\nGrpc-Status: 0\r\nE: \r\n");
    n = ed_http_trailers_copy(out, in, sizeof(in) - 1, true);
    ck_assert_str_eq((out[n] = '\0', out),
                     "x-sum: abc\r\ngrpc-status: 0\r\ne: \r\n");
    ck_assert_uint_eq(ed_http_trailers_copy(out, in, 0, true), 0);
}
END_TEST

Suite *
ed_test_http_fields_suite(void)
{
    Suite *s = suite_create("http_fields");
    TCase *tc;

    tc = tcase_create("rules");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_fields_list_walk);
    tcase_add_test(tc, test_fields_list_skip);
    tcase_add_test(tc, test_fields_token_eq);
    tcase_add_test(tc, test_fields_field_id);
    tcase_add_test(tc, test_fields_hop_by_hop);
    tcase_add_test(tc, test_fields_content_length);
    tcase_add_test(tc, test_fields_transfer_encoding);
    tcase_add_test(tc, test_fields_connection);
    tcase_add_test(tc, test_fields_list_has);
    tcase_add_test(tc, test_fields_trailers);
    suite_add_tcase(s, tc);

    tc = tcase_create("decoder");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_fields_decoder);
    tcase_add_test(tc, test_fields_decoder_request);
    tcase_add_test(tc, test_fields_decode_run);
    suite_add_tcase(s, tc);

    return s;
}
