/* Unit tests of MIME types (ed_http_mime.c): the file format, look-ups by
 * extension, charset for text types, and the shipped conf/mime.types. */
#include <check.h>

#include "ed_core.h"
#include "ed_http_mime.h"

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

static ed_http_mime_t *
parse(const char *text, unsigned *line, unsigned *col, const char **err)
{
    return ed_http_mime_parse(pool, text, strlen(text), line, col, err);
}

static const char *
lookup(const ed_http_mime_t *m, const char *path)
{
    const ed_str_t *v = ed_http_mime_lookup(m, path, strlen(path));

    return v ? v->data : NULL;
}

/* Checks the type of path; expect NULL: no entry. */
static void
check_type(const ed_http_mime_t *m, const char *path, const char *expect)
{
    const char *got = lookup(m, path);
    bool        ok;

    ok = expect == NULL ? got == NULL : got != NULL && !strcmp(got, expect);
    ck_assert_msg(ok, "%s: got %s, expected %s", path, got ? got : "(none)",
                  expect ? expect : "none");
}

#define ck_type check_type

START_TEST(test_mime_parse)
{
    ed_http_mime_t *m;
    const char     *err;
    unsigned        line, col;

    m = parse("# comment\n"
              "text/html html htm\n"
              "\n"
              "  image/png\tpng   # trailing comment\n"
              "application/octet-stream\n"
              "application/javascript js mjs\r\n"
              "text/plain; charset=latin1 latin\n",
              &line, &col, &err);
    ck_assert_msg(m == NULL, "parameters are not a token");
    ck_assert_uint_eq(line, 7);

    m = parse("# comment\n"
              "text/html html htm\n"
              "\n"
              "  image/png\tpng   # trailing comment\n"
              "application/octet-stream\n"
              "application/javascript js mjs\r\n"
              "Image/SVG+XML SVG",
              &line, &col, &err);
    ck_assert_msg(m != NULL, "%u:%u: %s", line, col, err);
    ck_assert_uint_eq(ed_http_mime_count(m), 6);
    ck_type(m, "/index.html", "text/html; charset=utf-8");
    ck_type(m, "/a/b.htm", "text/html; charset=utf-8");
    ck_type(m, "/a/b.HTML", "text/html; charset=utf-8");
    ck_type(m, "/x.png", "image/png");
    ck_type(m, "/x.PnG", "image/png");
    ck_type(m, "/app.js", "application/javascript; charset=utf-8");
    ck_type(m, "/app.mjs", "application/javascript; charset=utf-8");
    ck_type(m, "/logo.svg", "Image/SVG+XML");
    /* The extension of the last component only. */
    ck_type(m, "/a.png/b", NULL);
    ck_type(m, "/a.html.png", "image/png");
    ck_type(m, "/a.png.gz", NULL);
    ck_type(m, "/.html", NULL);
    ck_type(m, "/dir/.htm", NULL);
    ck_type(m, "/a.", NULL);
    ck_type(m, "/noext", NULL);
    ck_type(m, "/", NULL);
    ck_type(m, "", NULL);
    ck_type(m, "x.html", "text/html; charset=utf-8");
    ck_type(m, "/..html", "text/html; charset=utf-8");
}
END_TEST

typedef struct {
    const char *text;
    unsigned    line;
    unsigned    col;
    const char *msg;   /* a part of the message */
} mime_error_t;

static const mime_error_t errors[] = {
    { "html text/html\n", 1, 1, "media type" },
    { "text/html html\n/x y\n", 2, 1, "media type" },
    { "text/ html\n", 1, 1, "media type" },
    { "text/a/b c\n", 1, 1, "media type" },
    { "text/html .html\n", 1, 11, "extension" },
    { "text/html a/b\n", 1, 11, "extension" },
    { "text/html ok\n  text/css c\"ss\n", 2, 13, "invalid character" },
    { "text/html html\ntext/plain HTML\n", 2, 12, "already mapped" },
    { "text/html html\ntext/plain txt\nimage/x txt\n", 3, 9,
      "line 2" },
    { "text/html aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1, 11, "extension" },
    { "text/html{ html\n", 1, 10, "invalid character" },
};

START_TEST(test_mime_errors)
{
    const mime_error_t *e = &errors[_i];
    const char         *err;
    unsigned            line, col;

    ck_assert_ptr_null(parse(e->text, &line, &col, &err));
    ck_assert_msg(line == e->line && col == e->col,
                  "%s: at %u:%u, expected %u:%u (%s)", e->text, line, col,
                  e->line, e->col, err);
    ck_assert_msg(strstr(err, e->msg) != NULL, "%s: \"%s\" lacks \"%s\"",
                  e->text, err, e->msg);
}
END_TEST

START_TEST(test_mime_value)
{
    ed_str_t *v;

    v = ed_http_mime_value(pool, "text/css", 8);
    ck_assert_str_eq(v->data, "text/css; charset=utf-8");
    ck_assert_uint_eq(v->len, strlen(v->data));
    v = ed_http_mime_value(pool, "TEXT/Plain", 10);
    ck_assert_str_eq(v->data, "TEXT/Plain; charset=utf-8");
    v = ed_http_mime_value(pool, "image/png", 9);
    ck_assert_str_eq(v->data, "image/png");
    v = ed_http_mime_value(pool, "application/json", 16);
    ck_assert_str_eq(v->data, "application/json");
    v = ed_http_mime_value(pool, "text/plain; charset=latin1", 26);
    ck_assert_str_eq(v->data, "text/plain; charset=latin1");
    v = ed_http_mime_value(pool, "textual/x", 9);
    ck_assert_str_eq(v->data, "textual/x");
}
END_TEST

START_TEST(test_mime_builtin)
{
    ed_http_mime_t *m = ed_http_mime_builtin(pool);

    ck_assert_ptr_nonnull(m);
    ck_assert_uint_gt(ed_http_mime_count(m), 40);
    ck_type(m, "/index.html", "text/html; charset=utf-8");
    ck_type(m, "/s.css", "text/css; charset=utf-8");
    ck_type(m, "/a.js", "application/javascript; charset=utf-8");
    ck_type(m, "/d.json", "application/json");
    ck_type(m, "/i.jpeg", "image/jpeg");
    ck_type(m, "/i.svg", "image/svg+xml");
    ck_type(m, "/f.woff2", "font/woff2");
    ck_type(m, "/v.mp4", "video/mp4");
    ck_type(m, "/x.unknownext", NULL);
}
END_TEST

/* The shipped file loads, is large, and maps what a site serves. */
START_TEST(test_mime_shipped)
{
    ed_http_mime_t *m;
    const char     *err;
    unsigned        line, col;
    char           *text;
    size_t          len = 0;
    FILE           *f;
    size_t          n;

    f = fopen("conf/mime.types", "rb");
    ck_assert_msg(f != NULL, "conf/mime.types: %s", strerror(errno));
    text = ed_pnalloc(pool, 1 << 20);
    while ((n = fread(text + len, 1, (1 << 20) - len, f)) > 0) {
        len += n;
    }
    fclose(f);
    m = ed_http_mime_parse(pool, text, len, &line, &col, &err);
    ck_assert_msg(m != NULL, "conf/mime.types:%u:%u: %s", line, col, err);
    ck_assert_uint_gt(ed_http_mime_count(m), 300);
    ck_type(m, "/index.html", "text/html; charset=utf-8");
    ck_type(m, "/a.htm", "text/html; charset=utf-8");
    ck_type(m, "/s.css", "text/css; charset=utf-8");
    ck_type(m, "/a.js", "application/javascript; charset=utf-8");
    ck_type(m, "/a.mjs", "text/javascript; charset=utf-8");
    ck_type(m, "/r.txt", "text/plain; charset=utf-8");
    ck_type(m, "/d.json", "application/json");
    ck_type(m, "/d.xml", "text/xml; charset=utf-8");
    ck_type(m, "/i.png", "image/png");
    ck_type(m, "/i.jpg", "image/jpeg");
    ck_type(m, "/i.gif", "image/gif");
    ck_type(m, "/i.webp", "image/webp");
    ck_type(m, "/i.avif", "image/avif");
    ck_type(m, "/i.svg", "image/svg+xml");
    ck_type(m, "/i.ico", "image/x-icon");
    ck_type(m, "/f.woff", "font/woff");
    ck_type(m, "/f.woff2", "font/woff2");
    ck_type(m, "/d.pdf", "application/pdf");
    ck_type(m, "/a.zip", "application/zip");
    ck_type(m, "/a.wasm", "application/wasm");
    ck_type(m, "/v.mp4", "video/mp4");
    ck_type(m, "/v.webm", "video/webm");
    ck_type(m, "/m.mp3", "audio/mpeg");
    ck_type(m, "/x.unknownext", NULL);
}
END_TEST

Suite *
ed_test_http_mime_suite(void)
{
    Suite *s = suite_create("http_mime");
    TCase *tc;

    tc = tcase_create("mime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_mime_parse);
    tcase_add_loop_test(tc, test_mime_errors, 0, (int)ed_nelems(errors));
    tcase_add_test(tc, test_mime_value);
    tcase_add_test(tc, test_mime_builtin);
    tcase_add_test(tc, test_mime_shipped);
    suite_add_tcase(s, tc);
    return s;
}
