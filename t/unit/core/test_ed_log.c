/* Unit tests of the error log (ed_log.c): escaping what a client sent for
 * a quoted field, and the bounds of a line with its context. */
#include <check.h>

#include "ed_core.h"

#include <unistd.h>

/* Escapes in into a buffer of size bytes (followed by canaries that must
 * stay untouched) and compares with want. */
static void
check_escape(const char *in, size_t len, size_t size, const char *want)
{
    char   buf[256];
    size_t n;

    ck_assert_uint_lt(size, sizeof(buf));
    memset(buf, '#', sizeof(buf));
    n = ed_log_escape(buf, size, in, len);
    ck_assert_uint_le(n, size);
    ck_assert_msg(n == strlen(want) && memcmp(buf, want, n) == 0,
                  "escape of %zu bytes into %zu: got \"%.*s\", want \"%s\"",
                  len, size, (int)n, buf, want);
    for (n = size; n < sizeof(buf); n++) {
        ck_assert_int_eq(buf[n], '#');
    }
}

START_TEST(test_escape_bytes)
{
    check_escape("GET / HTTP/1.1", 14, 64, "GET / HTTP/1.1");
    check_escape("a\"b\\c", 5, 64, "a\\x22b\\x5Cc");
    check_escape("\r\n\t\x1b\x7f", 5, 64, "\\x0D\\x0A\\x09\\x1B\\x7F");
    check_escape("\x80\xff\xc3\xa9", 4, 64, "\\x80\\xFF\\xC3\\xA9");
    check_escape("a\0b", 3, 64, "a\\x00b");
    /* The printable rest of ASCII is kept: nothing else ends a field. */
    check_escape("~!#$%&'()*+,-./:;<=>?@[]^_`{|}", 30, 64,
                 "~!#$%&'()*+,-./:;<=>?@[]^_`{|}");
    check_escape("", 0, 64, "");
}
END_TEST

START_TEST(test_escape_bounds)
{
    /* Exactly fitting: whole; one byte more: cut, with "...". */
    check_escape("abcde", 5, 5, "abcde");
    check_escape("abcdef", 6, 5, "ab...");
    check_escape("a\n", 2, 5, "a\\x0A");
    check_escape("a\n", 2, 4, "a...");
    check_escape("a\nb", 3, 6, "a\\x0Ab");
    check_escape("a\nb", 3, 5, "a...");
    check_escape("\xff\xff\xff", 3, 3, "...");
    check_escape("xyz", 3, 3, "xyz");
    check_escape("xyzw", 4, 3, "...");
}
END_TEST

static size_t
fixed_ctx(void *data, char *buf, size_t size)
{
    size_t n = ed_min(size, strlen(data));

    memcpy(buf, data, n);
    return n;
}

/* Logs through a pipe and returns the bytes written (one line). */
static size_t
log_line(char *out, size_t size, const char *ctx, const char *msg)
{
    ed_log_t log = { -1, ED_LOG_DEBUG, NULL };
    int      fds[2];
    ssize_t  n;

    ck_assert_int_eq(pipe(fds), 0);
    log.fd = fds[1];
    ed_log_ctx(ED_LOG_ERR, &log, 2, fixed_ctx, (void *)ctx, "%s", msg);
    close(fds[1]);
    n = read(fds[0], out, size);
    close(fds[0]);
    ck_assert_int_gt(n, 0);
    return (size_t)n;
}

START_TEST(test_line_bounds)
{
    static char msg[10000], ctx[3000], out[16384];
    const char *c = ", client: 192.0.2.1, server: x";
    size_t      n;

    /* A message cannot end the line: its control characters are escaped,
     * the context follows it, the line ends once. */
    n = log_line(out, sizeof(out), c, "bad\nline\r\x1b[0m done");
    ck_assert_msg(memmem(out, n, "bad\\x0Aline\\x0D\\x1B[0m done (2: ", 30)
                      != NULL, "%.*s", (int)n, out);
    ck_assert(memchr(out, '\n', n) == out + n - 1);
    ck_assert(memcmp(out + n - 1 - strlen(c), c, strlen(c)) == 0);

    /* A long message is cut ("..."), the error and the context stay. */
    memset(msg, 'm', sizeof(msg) - 1);
    n = log_line(out, sizeof(out), c, msg);
    ck_assert_uint_le(n, ED_LOG_LINE_MAX);
    ck_assert(memchr(out, '\n', n) == out + n - 1);
    ck_assert(memmem(out, n, "mmm... (2: ", 11) != NULL);
    ck_assert(memcmp(out + n - 1 - strlen(c), c, strlen(c)) == 0);

    /* A context is bounded too. */
    memset(ctx, 'c', sizeof(ctx) - 1);
    n = log_line(out, sizeof(out), ctx, msg);
    ck_assert_uint_le(n, ED_LOG_LINE_MAX);
    ck_assert(memchr(out, '\n', n) == out + n - 1);
}
END_TEST

Suite *
ed_test_log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc;

    tc = tcase_create("log");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_escape_bytes);
    tcase_add_test(tc, test_escape_bounds);
    tcase_add_test(tc, test_line_bounds);
    suite_add_tcase(s, tc);
    return s;
}
