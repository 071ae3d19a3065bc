/* Unit tests of the chunked-body decoder (ed_http_chunked.c). */
#include <check.h>

#include "ed_core.h"
#include "ed_http_parse.h"

typedef struct {
    const char *name;
    const char *in;
    size_t      len;
    int         rc;      /* ED_DONE, ED_AGAIN or ED_ERROR at the end */
    const char *body;    /* decoded body (ED_DONE and ED_AGAIN) */
    size_t      used;    /* input consumed at ED_DONE */
} chunk_case_t;

#define DONE(name, s, body, used)                                            \
    { name, s, sizeof(s) - 1, ED_DONE, body, used }
#define AGAIN(name, s, body) { name, s, sizeof(s) - 1, ED_AGAIN, body, 0 }
#define BAD(name, s) { name, s, sizeof(s) - 1, ED_ERROR, NULL, 0 }
#define END "0\r\n\r\n"

static const chunk_case_t cases[] = {
    DONE("one chunk", "5\r\nhello\r\n" END, "hello", 15),
    DONE("two chunks", "3\r\nabc\r\n2\r\nde\r\n" END, "abcde", 20),
    DONE("empty body", END, "", 5),
    DONE("upper hex", "A\r\n0123456789\r\n" END, "0123456789", 20),
    DONE("lower hex", "a\r\n0123456789\r\n" END, "0123456789", 20),
    DONE("leading zeros", "0005\r\nhello\r\n0000\r\n\r\n", "hello", 21),
    DONE("16 digits", "0000000000000005\r\nhello\r\n" END, "hello", 30),
    DONE("CRLF in data", "4\r\n\r\n\r\n\r\n" END, "\r\n\r\n", 14),
    DONE("NUL in data", "3\r\na\0b\r\n" END, "a\0b", 13),
    DONE("extension", "5;foo=bar\r\nhello\r\n0;x\r\n\r\n", "hello", 25),
    DONE("extension BWS", "5 ; foo = \"a b\"\r\nhello\r\n" END, "hello",
         29),
    DONE("extension list", "5;a;b=1;c=\"x;y\"\r\nhello\r\n" END, "hello",
         29),
    DONE("trailers", "1\r\nx\r\n0\r\nX-T: 1\r\nY:\r\n\r\n", "x", 23),
    DONE("trailer obs-text", "0\r\nX: caf\xc3\xa9\r\n\r\n", "", 15),
    DONE("leftover", END "GET / HTTP/1.1\r\n", "", 5),
    DONE("leftover after trailers", "0\r\nA: b\r\n\r\nXYZ", "", 11),

    AGAIN("size line only", "5\r\n", ""),
    AGAIN("partial data", "5\r\nhel", "hel"),
    AGAIN("before data CRLF", "5\r\nhello", "hello"),
    AGAIN("mid trailers", "0\r\nX: y\r\n", ""),
    AGAIN("max size", "7fffffffffffffff\r\n", ""),
    AGAIN("mid extension", "5;abc", ""),

    BAD("not hex", "x\r\n"),
    BAD("sign", "+5\r\nhello\r\n" END),
    BAD("minus", "-5\r\nhello\r\n" END),
    BAD("0x prefix", "0x5\r\nhello\r\n" END),
    BAD("leading SP", " 5\r\nhello\r\n" END),
    BAD("leading HTAB", "\t5\r\nhello\r\n" END),
    BAD("trailing SP", "5 \r\nhello\r\n" END),
    BAD("empty size", "\r\nhello\r\n" END),
    BAD("17 digits", "00000000000000005\r\nhello\r\n" END),
    BAD("overflow", "8000000000000000\r\n"),
    BAD("overflow all f", "ffffffffffffffff\r\n"),
    BAD("bare LF size", "5\nhello\r\n" END),
    BAD("bare CR size", "5\rhello\r\n" END),
    BAD("bare LF after data", "5\r\nhello\n" END),
    BAD("no CRLF after data", "5\r\nhelloX\r\n" END),
    BAD("data too long", "3\r\nhello\r\n" END),
    BAD("CR only after data", "5\r\nhello\r0\r\n\r\n"),
    BAD("empty extension", "5;\r\nhello\r\n" END),
    BAD("extension not token", "5;=x\r\nhello\r\n" END),
    BAD("bare CR in extension", "5;a\rb\r\nhello\r\n" END),
    BAD("LF in extension", "5;a\nhello\r\n" END),
    BAD("CTL in extension", "5;a\x01\r\nhello\r\n" END),
    BAD("NUL in extension", "5;a\0\r\nhello\r\n" END),
    BAD("bare LF last chunk", "0\n\r\n"),
    BAD("bare LF final", "0\r\n\n"),
    BAD("CR final no LF", "0\r\n\rX"),
    BAD("trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n"),
    BAD("trailer starts with SP", "0\r\n X: a\r\n\r\n"),
    BAD("trailer no colon", "0\r\nXa\r\n\r\n"),
    BAD("trailer SP before colon", "0\r\nX : a\r\n\r\n"),
    BAD("trailer empty name", "0\r\n: a\r\n\r\n"),
    BAD("trailer NUL", "0\r\nX: a\0\r\n\r\n"),
    BAD("trailer bare LF", "0\r\nX: a\n\r\n"),
    BAD("trailer bare CR", "0\r\nX: a\rb\r\n\r\n"),
    BAD("garbage", "GET / HTTP/1.1\r\n"),
};

/*
 * Feeds in[0..len) to a fresh decoder the way a stream would: the bytes
 * up to cuts[0] arrive, then up to cuts[1], and so on, then the rest.
 * Unconsumed input stays buffered. Collects the body into body (at least
 * len bytes); *consumed is the input used. Returns the last result.
 */
static int
feed(const char *in, size_t len, const size_t *cuts, size_t ncuts,
     char *body, size_t *blen, size_t *consumed)
{
    ed_http_chunked_t c;
    size_t            pos = 0, avail, used, off, n, k = 0;
    int               rc;

    memset(&c, 0, sizeof(c));
    *blen = 0;
    avail = ncuts ? cuts[0] : len;
    for (;;) {
        rc = ed_http_chunked_parse(&c, in + pos, avail - pos, &used, &off,
                                   &n);
        ck_assert_uint_le(used, avail - pos);
        if (rc == ED_OK) {
            ck_assert_uint_gt(n, 0);
            ck_assert_uint_eq(off + n, used);
            memcpy(body + *blen, in + pos + off, n);
            *blen += n;
            pos += used;
            continue;
        }
        pos += used;
        if (rc != ED_AGAIN) {
            break;
        }
        ck_assert_uint_eq(pos, avail);
        if (avail == len) {
            break;
        }
        k++;
        avail = k < ncuts ? cuts[k] : len;
    }
    *consumed = pos;
    ck_assert_int_eq(c.total, (int64_t)*blen);
    return rc;
}

/* Copies a case into an exact-size heap buffer for ASan. */
static char *
dup_case(const chunk_case_t *t)
{
    char *buf = malloc(t->len ? t->len : 1);

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, t->in, t->len);
    return buf;
}

static void
check_result(const chunk_case_t *t, int rc, const char *body, size_t blen,
             size_t consumed, const char *how)
{
    ck_assert_msg(rc == t->rc, "%s (%s): got %d, want %d", t->name, how, rc,
                  t->rc);
    if (t->body != NULL) {
        size_t want = strlen(t->body);

        /* Bodies with NUL: compare by the known length. */
        if (strcmp(t->name, "NUL in data") == 0) {
            want = 3;
        }
        ck_assert_msg(blen == want && memcmp(body, t->body, want) == 0,
                      "%s (%s): body", t->name, how);
    }
    if (t->rc == ED_DONE) {
        ck_assert_msg(consumed == t->used, "%s (%s): used %zu, want %zu",
                      t->name, how, consumed, t->used);
    }
}

START_TEST(test_chunked_whole)
{
    const chunk_case_t *t = &cases[_i];
    char               *buf = dup_case(t), *body = malloc(t->len + 1);
    size_t              blen, consumed;
    int                 rc;

    rc = feed(buf, t->len, NULL, 0, body, &blen, &consumed);
    check_result(t, rc, body, blen, consumed, "whole");
    free(buf);
    free(body);
}
END_TEST

START_TEST(test_chunked_bytewise)
{
    const chunk_case_t *t = &cases[_i];
    char               *buf = dup_case(t), *body = malloc(t->len + 1);
    size_t             *cuts = malloc((t->len + 1) * sizeof(size_t));
    size_t              blen, consumed, i;
    int                 rc;

    for (i = 0; i < t->len; i++) {
        cuts[i] = i + 1;
    }
    rc = feed(buf, t->len, cuts, t->len, body, &blen, &consumed);
    check_result(t, rc, body, blen, consumed, "bytewise");
    free(cuts);
    free(buf);
    free(body);
}
END_TEST

START_TEST(test_chunked_split)
{
    const chunk_case_t *t = &cases[_i];
    char               *buf = dup_case(t), *body = malloc(t->len + 1);
    size_t              blen, consumed, cuts[2];
    char                how[32];
    int                 rc;

    for (cuts[0] = 0; cuts[0] <= t->len; cuts[0]++) {
        for (cuts[1] = cuts[0]; cuts[1] <= t->len; cuts[1]++) {
            rc = feed(buf, t->len, cuts, 2, body, &blen, &consumed);
            snprintf(how, sizeof(how), "split %zu %zu", cuts[0], cuts[1]);
            check_result(t, rc, body, blen, consumed, how);
        }
    }
    free(buf);
    free(body);
}
END_TEST

START_TEST(test_chunked_slices)
{
    /* Slices point into the input; framing is never copied out. */
    static const char s[] = "3\r\nabc\r\n10\r\n0123456789abcdef\r\n" END;
    ed_http_chunked_t c;
    size_t            used, off, n;

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ed_http_chunked_parse(&c, s, sizeof(s) - 1, &used, &off,
                                           &n), ED_OK);
    ck_assert_uint_eq(off, 3);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(used, 6);
    ck_assert_int_eq(ed_http_chunked_parse(&c, s + 6, sizeof(s) - 7, &used,
                                           &off, &n), ED_OK);
    ck_assert_uint_eq(off, 6);
    ck_assert_uint_eq(n, 16);
    ck_assert_uint_eq(used, 22);
    ck_assert_int_eq(c.total, 19);
    ck_assert_int_eq(ed_http_chunked_parse(&c, s + 28, sizeof(s) - 29, &used,
                                           &off, &n), ED_DONE);
    ck_assert_uint_eq(used, 7);
    ck_assert_int_eq(c.total, 19);
}
END_TEST

START_TEST(test_chunked_sticky)
{
    ed_http_chunked_t c;
    size_t            used, off, n;

    /* After ED_DONE nothing more is consumed. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ed_http_chunked_parse(&c, END "5\r\n", 8, &used, &off,
                                           &n), ED_DONE);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(ed_http_chunked_parse(&c, "5\r\n", 3, &used, &off, &n),
                     ED_DONE);
    ck_assert_uint_eq(used, 0);

    /* After ED_ERROR, good input does not revive the decoder. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ed_http_chunked_parse(&c, "z", 1, &used, &off, &n),
                     ED_ERROR);
    ck_assert_int_eq(ed_http_chunked_parse(&c, END, 5, &used, &off, &n),
                     ED_ERROR);

    /* No input: nothing to do. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ed_http_chunked_parse(&c, "", 0, &used, &off, &n),
                     ED_AGAIN);
    ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(test_chunked_size_state)
{
    ed_http_chunked_t c;
    size_t            used, off, n;

    /* The size of the chunk being read is visible (for body limits). */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ed_http_chunked_parse(&c, "1F4\r\n", 5, &used, &off,
                                           &n), ED_AGAIN);
    ck_assert_int_eq(c.size, 500);
    ck_assert_uint_eq(used, 5);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ed_http_chunked_parse(&c, "7FFFFFFFFFFFFFFF\r\n", 18,
                                           &used, &off, &n), ED_AGAIN);
    ck_assert_int_eq(c.size, INT64_MAX);
}
END_TEST

/* A size line with an extension of ext bytes, or trailers of tr bytes. */
static char *
make_long(size_t ext, size_t tr, size_t *len)
{
    char  *buf = malloc(ext + tr + 64), *p = buf;
    size_t i;

    ck_assert_ptr_nonnull(buf);
    *p++ = '1';
    if (ext) {
        *p++ = ';';
        for (i = 1; i < ext; i++) {
            *p++ = 'e';
        }
    }
    p += sprintf(p, "\r\nx\r\n0\r\n");
    if (tr) {
        p += sprintf(p, "X:");
        for (i = 4; i < tr; i++) {
            *p++ = 'v';
        }
        p += sprintf(p, "\r\n");
    }
    p += sprintf(p, "\r\n");
    *len = (size_t)(p - buf);
    return buf;
}

START_TEST(test_chunked_limits)
{
    ed_http_chunked_t c;
    size_t            used, off, n, len, pos;
    char             *buf;
    int               rc;
    struct {
        size_t ext, tr;
        int    rc;
    } t[] = {
        { 4096, 0, ED_DONE }, { 4097, 0, ED_ERROR },
        { 0, 8190, ED_DONE }, { 0, 8200, ED_ERROR },
    };
    size_t i;

    for (i = 0; i < ed_nelems(t); i++) {
        buf = make_long(t[i].ext, t[i].tr, &len);
        memset(&c, 0, sizeof(c));
        pos = 0;
        do {
            rc = ed_http_chunked_parse(&c, buf + pos, len - pos, &used, &off,
                                       &n);
            pos += used;
        } while (rc == ED_OK);
        ck_assert_msg(rc == t[i].rc, "limit case %zu: %d", i, rc);
        free(buf);
    }
}
END_TEST

START_TEST(test_chunked_keep_trailers)
{
    /* The trailer section is kept as sent, whatever the reads' cuts. */
    static const char s[] = "2\r\nab\r\n0\r\nX-T:  1 \r\nY:\r\n\r\nNEXT";
    static const char want[] = "X-T:  1 \r\nY:\r\n";
    char              keep[ED_HTTP_TRAILERS_MAX];
    ed_http_chunked_t c;
    size_t            used, off, n, pos, step;
    int               rc;

    for (step = 1; step <= sizeof(s) - 1; step++) {
        memset(&c, 0, sizeof(c));
        c.keep = keep;
        pos = 0;
        do {
            rc = ed_http_chunked_parse(&c, s + pos,
                                       ed_min(step, sizeof(s) - 1 - pos),
                                       &used, &off, &n);
            pos += used;
        } while (rc == ED_OK || (rc == ED_AGAIN && pos < sizeof(s) - 1));
        ck_assert_int_eq(rc, ED_DONE);
        ck_assert_uint_eq(pos, sizeof(s) - 1 - 4);
        ck_assert_uint_eq(c.trailers - 1, sizeof(want) - 1);
        ck_assert(memcmp(keep, want, sizeof(want) - 1) == 0);
    }
    /* No trailers: only the last line's CR was counted. */
    memset(&c, 0, sizeof(c));
    c.keep = keep;
    ck_assert_int_eq(ed_http_chunked_parse(&c, END, 5, &used, &off, &n),
                     ED_DONE);
    ck_assert_uint_eq(c.trailers, 1);
}
END_TEST

Suite *
ed_test_http_chunked_suite(void)
{
    Suite *s = suite_create("http_chunked");
    TCase *tc;
    int    n = (int)ed_nelems(cases);

    tc = tcase_create("table");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_chunked_whole, 0, n);
    tcase_add_loop_test(tc, test_chunked_bytewise, 0, n);
    tcase_add_loop_test(tc, test_chunked_split, 0, n);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_chunked_slices);
    tcase_add_test(tc, test_chunked_sticky);
    tcase_add_test(tc, test_chunked_size_state);
    tcase_add_test(tc, test_chunked_limits);
    tcase_add_test(tc, test_chunked_keep_trailers);
    suite_add_tcase(s, tc);

    return s;
}
