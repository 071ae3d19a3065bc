/* Unit tests of the FastCGI records (ed_http_fastcgi_record.c): the
 * writers, and the parser on valid and invalid input, whole and split at
 * every byte. */
#include <check.h>
#include <stdio.h>

#include "ed_core.h"
#include "ed_http_fastcgi_record.h"

/* A record as the application writes it. */
static size_t
rec(u_char *p, int version, int type, unsigned id, const char *c,
    size_t clen, size_t pad)
{
    p[0] = (u_char)version;
    p[1] = (u_char)type;
    p[2] = (u_char)(id >> 8);
    p[3] = (u_char)id;
    p[4] = (u_char)(clen >> 8);
    p[5] = (u_char)clen;
    p[6] = (u_char)pad;
    p[7] = 0;
    memcpy(p + 8, c, clen);
    memset(p + 8 + clen, 'P', pad);
    return 8 + clen + pad;
}

static size_t
end_rec(u_char *p, uint32_t app, int proto, size_t pad)
{
    char b[8] = { (char)(app >> 24), (char)(app >> 16), (char)(app >> 8),
                  (char)app, (char)proto, 0, 0, 0 };

    return rec(p, 1, ED_FCGI_END_REQUEST, 1, b, 8, pad);
}

typedef struct {
    char     out[4096];
    size_t   nout;
    char     err[4096];
    size_t   nerr;
    int      ends;
    int      rc;     /* ED_AGAIN at the end, or ED_ERROR */
    uint32_t app;
} result_t;

/* Feeds in[0..len) in pieces of step bytes (0: whole). */
static void
feed(const u_char *in, size_t len, size_t step, ed_fcgi_parser_t *fp,
     result_t *res)
{
    size_t pos = 0, piece, used, off, n, at;
    int    rc, ev;

    memset(fp, 0, sizeof(*fp));
    memset(res, 0, sizeof(*res));
    res->rc = ED_AGAIN;
    while (pos < len) {
        piece = step ? ed_min(step, len - pos) : len - pos;
        at = 0;
        while (at < piece) {
            rc = ed_fcgi_parse(fp, (const char *)in + pos + at, piece - at,
                               &used, &ev, &off, &n);
            ck_assert_uint_le(used, piece - at);
            if (rc == ED_ERROR) {
                res->rc = ED_ERROR;
                return;
            }
            if (rc == ED_OK) {
                ck_assert_uint_le(off + n, used);
                if (ev == ED_FCGI_EV_STDOUT) {
                    ck_assert_uint_gt(n, 0);
                    memcpy(res->out + res->nout, in + pos + at + off, n);
                    res->nout += n;
                } else if (ev == ED_FCGI_EV_STDERR) {
                    memcpy(res->err + res->nerr, in + pos + at + off, n);
                    res->nerr += n;
                } else {
                    ck_assert_int_eq(ev, ED_FCGI_EV_END);
                    res->ends++;
                    res->app = fp->app_status;
                }
            } else {
                ck_assert_int_eq(rc, ED_AGAIN);
                ck_assert_uint_eq(used, piece - at);
            }
            at += used;
        }
        pos += piece;
    }
}

START_TEST(test_parse_valid)
{
    u_char           in[1024], *p = in;
    ed_fcgi_parser_t fp;
    result_t         res;
    size_t           len, step;

    p += rec(p, 1, ED_FCGI_STDOUT, 1, "Status: 200\r\n", 13, 3);
    p += rec(p, 1, ED_FCGI_STDERR, 1, "oops", 4, 255);
    p += rec(p, 1, ED_FCGI_STDOUT, 1, "", 0, 0);
    p += rec(p, 1, ED_FCGI_STDOUT, 1, "\r\nbody", 6, 0);
    p += rec(p, 1, ED_FCGI_STDERR, 1, "", 0, 7);
    p += end_rec(p, 3, ED_FCGI_REQUEST_COMPLETE, 0);
    len = (size_t)(p - in);
    for (step = 0; step <= len; step++) {
        feed(in, len, step, &fp, &res);
        ck_assert_int_eq(res.rc, ED_AGAIN);
        ck_assert_int_eq(res.ends, 1);
        ck_assert_uint_eq(res.app, 3);
        ck_assert_uint_eq(res.nout, 19);
        ck_assert(memcmp(res.out, "Status: 200\r\n\r\nbody", 19) == 0);
        ck_assert_uint_eq(res.nerr, 4);
        ck_assert(ed_fcgi_done(&fp));
    }
    /* Before END_REQUEST it is not done. */
    feed(in, len - 1, 0, &fp, &res);
    ck_assert(!ed_fcgi_done(&fp));
    ck_assert(fp.mid);
}
END_TEST

typedef struct {
    const char *error;
    int         version;
    int         type;
    unsigned    id;
    size_t      clen;
    int         proto;
} bad_t;

static const bad_t bads[] = {
    { "version 2", 2, ED_FCGI_STDOUT, 1, 4, 0 },
    { "version 0", 0, ED_FCGI_STDOUT, 1, 4, 0 },
    { "request id 2", 1, ED_FCGI_STDOUT, 2, 4, 0 },
    { "request id 256", 1, ED_FCGI_STDOUT, 256, 4, 0 },
    { "request id 0", 1, ED_FCGI_STDERR, 0, 4, 0 },
    { "type 10", 1, ED_FCGI_GET_VALUES_RESULT, 1, 4, 0 },
    { "type 11", 1, ED_FCGI_UNKNOWN_TYPE, 1, 8, 0 },
    { "type 5", 1, ED_FCGI_STDIN, 1, 4, 0 },
    { "type 1", 1, ED_FCGI_BEGIN_REQUEST, 1, 8, 0 },
    { "END_REQUEST of 4 bytes", 1, ED_FCGI_END_REQUEST, 1, 4, 0 },
    { "END_REQUEST of 0 bytes", 1, ED_FCGI_END_REQUEST, 1, 0, 0 },
    { "CANT_MPX_CONN", 1, ED_FCGI_END_REQUEST, 1, 8, 1 },
    { "OVERLOADED", 1, ED_FCGI_END_REQUEST, 1, 8, 2 },
    { "UNKNOWN_ROLE", 1, ED_FCGI_END_REQUEST, 1, 8, 3 },
    { "protocolStatus 9", 1, ED_FCGI_END_REQUEST, 1, 8, 9 },
};

START_TEST(test_parse_invalid)
{
    const bad_t      *b = &bads[_i];
    u_char            in[256], *p = in;
    char              c[8] = { 0, 0, 0, 0, (char)b->proto, 0, 0, 0 };
    ed_fcgi_parser_t  fp;
    result_t          res;
    size_t            len, step, u, o, n;
    int               ev;

    p += rec(p, 1, ED_FCGI_STDOUT, 1, "X: 1", 4, 4);
    p += rec(p, b->version, b->type, b->id, c, b->clen, 0);
    len = (size_t)(p - in);
    for (step = 0; step <= len; step++) {
        feed(in, len, step, &fp, &res);
        ck_assert_msg(res.rc == ED_ERROR, "%s: step %zu", b->error, step);
        ck_assert_str_eq(fp.error, b->error);
        /* The error sticks. */
        ck_assert_int_eq(ed_fcgi_parse(&fp, "x", 1, &u, &ev, &o, &n),
                         ED_ERROR);
    }
}
END_TEST

START_TEST(test_parse_after_end)
{
    u_char           in[256], *p = in;
    ed_fcgi_parser_t fp;
    result_t         res;
    size_t           len, step;

    p += end_rec(p, 0, 0, 0);
    p += rec(p, 1, ED_FCGI_STDOUT, 1, "x", 1, 0);
    len = (size_t)(p - in);
    for (step = 1; step <= len; step++) {
        feed(in, len, step, &fp, &res);
        ck_assert_int_eq(res.rc, ED_ERROR);
        ck_assert_int_eq(res.ends, 1);
        ck_assert_str_eq(fp.error, "record after END_REQUEST");
    }
}
END_TEST

START_TEST(test_writers)
{
    static u_char big[70000];
    u_char        buf[80000], *p;
    size_t        n;

    p = ed_fcgi_begin_request(buf, true);
    ck_assert_uint_eq((size_t)(p - buf), 16);
    ck_assert(memcmp(buf, "\1\1\0\1\0\10\0\0\0\1\1\0\0\0\0\0", 16) == 0);
    ed_fcgi_begin_request(buf, false);
    ck_assert_int_eq(buf[10], 0);

    /* Lengths of 1 byte below 128, else 4 with the high bit. */
    ck_assert_uint_eq(ed_fcgi_pair_len(3, 127), 2 + 3 + 127);
    ck_assert_uint_eq(ed_fcgi_pair_len(3, 128), 5 + 3 + 128);
    p = ed_fcgi_pair(buf, "ABC", 3, "x", 1);
    ck_assert_uint_eq((size_t)(p - buf), 6);
    ck_assert(memcmp(buf, "\3\1ABCx", 6) == 0);
    memset(big, 'v', sizeof(big));
    p = ed_fcgi_pair(buf, "N", 1, (char *)big, 300);
    ck_assert(memcmp(buf, "\1\x80\0\1\x2cN", 6) == 0);
    ck_assert_uint_eq((size_t)(p - buf), 306);

    /* Streams: records of at most 65535 bytes, each padded to 8. */
    ck_assert_uint_eq(ed_fcgi_stream_len(0), 0);
    ck_assert_uint_eq(ed_fcgi_stream_len(1), 16);
    ck_assert_uint_eq(ed_fcgi_stream_len(8), 16);
    ck_assert_uint_eq(ed_fcgi_stream_len(70000),
                      8 + 65535 + 1 + 8 + 4465 + 7);
    p = ed_fcgi_stream(buf, ED_FCGI_PARAMS, (char *)big, 70000);
    n = (size_t)(p - buf);
    ck_assert_uint_eq(n, ed_fcgi_stream_len(70000));
    ck_assert(memcmp(buf, "\1\4\0\1\xff\xff\1\0", 8) == 0);
    ck_assert(memcmp(buf + 8 + 65536, "\1\4\0\1\x11\x71\7\0", 8) == 0);
}
END_TEST

Suite *
ed_test_http_fastcgi_record_suite(void)
{
    Suite *s = suite_create("http_fastcgi_record");
    TCase *tc = tcase_create("records");

    tcase_add_test(tc, test_parse_valid);
    tcase_add_loop_test(tc, test_parse_invalid, 0, ed_nelems(bads));
    tcase_add_test(tc, test_parse_after_end);
    tcase_add_test(tc, test_writers);
    suite_add_tcase(s, tc);
    return s;
}
