/* Unit tests of the layer fastcgi and cgi share (ed_http_cgi.c,
 * ed_http_cgi_head.c): the CGI response-head parser (whole, byte by
 * byte, limits), the stderr splitter and escaping, and the
 * meta-variables of routed requests. */
#include "http_fixture.h"
#include "ed_http_cgi.h"

#include <check.h>
#include <stdio.h>

/* The head parser. */

typedef struct {
    const char *name;
    const char *in;
    int         rc;       /* ED_OK, ED_AGAIN or ED_ERROR */
    int         status;
    const char *location;
    const char *type;
    int64_t     length;
    const char *fields;   /* "name=value;" for each field passed on */
    size_t      head_len;
} head_case_t;

#define OK(n, in, st, loc, ty, len, f, hl)                                   \
    { n, in, ED_OK, st, loc, ty, len, f, hl }
#define BAD(n, in) { n, in, ED_ERROR, 0, NULL, NULL, -1, NULL, 0 }
#define MORE(n, in) { n, in, ED_AGAIN, 0, NULL, NULL, -1, NULL, 0 }

static const head_case_t head_cases[] = {
    OK("empty head", "\nbody", 0, NULL, NULL, -1, "", 1),
    OK("CRLF empty head", "\r\nbody", 0, NULL, NULL, -1, "", 2),
    OK("type", "Content-Type: text/plain\n\nhi", 0, NULL, "text/plain", -1,
       "", 26),
    OK("CRLF lines", "Content-type: a/b\r\nX-A: 1\r\n\r\n", 0, NULL, "a/b",
       -1, "X-A=1;", 29),
    OK("mixed endings", "X-A: 1\r\nX-B: 2\n\n", 0, NULL, NULL, -1,
       "X-A=1;X-B=2;", 16),
    OK("status", "Status: 404 Not Found\n\n", 404, NULL, NULL, -1, "", 23),
    OK("status no reason", "Status: 201\n\n", 201, NULL, NULL, -1, "", 13),
    OK("status 599", "status:599 x\n\n", 599, NULL, NULL, -1, "", 14),
    OK("trimmed", "X-A: \t v  \t\n\n", 0, NULL, NULL, -1, "X-A=v;", 13),
    OK("empty value", "X-A:\n\n", 0, NULL, NULL, -1, "X-A=;", 6),
    OK("local location", "Location: /a?b=1\n\n", 0, "/a?b=1", NULL, -1, "",
       18),
    OK("client location", "Location: http://x/\nStatus: 301 M\n\n", 301,
       "http://x/", NULL, -1, "", 35),
    OK("length", "Content-Length: 5\n\nhello", 0, NULL, NULL, 5, "", 19),
    OK("length list", "Content-Length: 5, 5\n\n", 0, NULL, NULL, 5, "", 22),
    OK("hop-by-hop dropped",
       "Connection: x-a, close\nX-A: 1\nX-B: 2\nKeep-Alive: 5\n"
       "Transfer-Encoding: chunked\nUpgrade: h2c\nTE: t\nTrailer: x\n"
       "Proxy-Connection: k\nDate: d\nServer: s\n\n",
       0, NULL, NULL, -1, "X-B=2;", 147),
    OK("repeated field", "Set-Cookie: a=1\nSet-Cookie: b=2\n\n", 0, NULL,
       NULL, -1, "Set-Cookie=a=1;Set-Cookie=b=2;", 33),
    OK("obs-text value", "X-A: caf\xc3\xa9\n\n", 0, NULL, NULL, -1,
       "X-A=caf\xc3\xa9;", 12),
    OK("body may hold anything", "X: 1\n\n\0\r\n", 0, NULL, NULL, -1,
       "X=1;", 6),

    MORE("nothing", ""),
    MORE("no empty line", "Content-Type: a/b\n"),
    MORE("half a line", "Content-Ty"),
    MORE("CR before LF", "X: 1\r"),

    BAD("obs-fold", "X-A: 1\n  more\n\n"),
    BAD("leading space", " X-A: 1\n\n"),
    BAD("space before colon", "X-A : 1\n\n"),
    BAD("no colon", "X-A 1\n\n"),
    BAD("empty name", ": 1\n\n"),
    BAD("name not a token", "X(A): 1\n\n"),
    BAD("NUL in value", "X-A: a\0b\n\n"),
    BAD("CR in value", "X-A: a\rb\n\n"),
    BAD("bare CR line", "\r\r\n"),
    BAD("status 199", "Status: 199\n\n"),
    BAD("status 600", "Status: 600\n\n"),
    BAD("status 2 digits", "Status: 20\n\n"),
    BAD("status letters", "Status: abc\n\n"),
    BAD("status glued reason", "Status: 200OK\n\n"),
    BAD("status twice", "Status: 200\nStatus: 200\n\n"),
    BAD("location twice", "Location: /a\nLocation: /a\n\n"),
    BAD("empty location", "Location:\n\n"),
    BAD("type twice", "Content-Type: a/b\nContent-Type: a/b\n\n"),
    BAD("length letters", "Content-Length: 5x\n\n"),
    BAD("length negative", "Content-Length: -1\n\n"),
    BAD("length differs", "Content-Length: 5\nContent-Length: 6\n\n"),
    BAD("length empty", "Content-Length:\n\n"),
    BAD("status line (nph)", "HTTP/1.1 200 OK\n\n"),
};

/* "name=value;" for each field passed on. */
static void
fields_text(const ed_http_cgi_head_t *h, char *buf, size_t size)
{
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < h->nfields && n < size; i++) {
        n += (size_t)snprintf(buf + n, size - n, "%.*s=%.*s;",
                              (int)h->fields[i].name.len,
                              h->fields[i].name.data,
                              (int)h->fields[i].value.len,
                              h->fields[i].value.data);
    }
}

static void
check_head(const head_case_t *c, const ed_http_cgi_head_t *h, int rc)
{
    char got[1024];

    ck_assert_msg(rc == c->rc, "%s: rc %d, expected %d (%s)", c->name, rc,
                  c->rc, h->error ? h->error : "");
    if (rc == ED_ERROR) {
        ck_assert_ptr_nonnull(h->error);
    }
    if (rc != ED_OK) {
        return;
    }
    ck_assert_msg(h->status == c->status, "%s: status %d", c->name,
                  h->status);
    ck_assert_msg(h->head_len == c->head_len, "%s: head_len %zu", c->name,
                  h->head_len);
    ck_assert_msg(h->content_length == c->length, "%s: length", c->name);
    if (c->location) {
        ck_assert_msg(h->location.len == strlen(c->location)
                      && memcmp(h->location.data, c->location,
                                h->location.len) == 0,
                      "%s: location", c->name);
    } else {
        ck_assert_ptr_null(h->location.data);
    }
    if (c->type) {
        ck_assert_msg(h->content_type.len == strlen(c->type)
                      && memcmp(h->content_type.data, c->type,
                                h->content_type.len) == 0,
                      "%s: type", c->name);
    } else {
        ck_assert_ptr_null(h->content_type.data);
    }
    fields_text(h, got, sizeof(got));
    ck_assert_msg(strcmp(got, c->fields) == 0, "%s: fields \"%s\"", c->name,
                  got);
}

/* Length of a case's input: up to the first NUL of the head, then what
 * the literal holds (the body cases hold NULs). */
static size_t
case_len(const head_case_t *c)
{
    if (strcmp(c->name, "NUL in value") == 0) {
        return 11;
    }
    if (strcmp(c->name, "body may hold anything") == 0) {
        return 9;
    }
    return strlen(c->in);
}

START_TEST(test_head_cases)
{
    const head_case_t *c = &head_cases[_i];
    ed_http_header_t   fields[ED_HTTP_CGI_MAX_FIELDS];
    ed_http_cgi_head_t h;
    int                rc;

    ed_http_cgi_head_init(&h, fields, 4096);
    rc = ed_http_cgi_head_parse(&h, c->in, case_len(c));
    check_head(c, &h, rc);
}
END_TEST

/* The same heads fed a byte at a time: the same answers, and no line
 * parsed twice (the fields are not repeated). */
START_TEST(test_head_bytewise)
{
    const head_case_t *c = &head_cases[_i];
    ed_http_header_t   fields[ED_HTTP_CGI_MAX_FIELDS];
    ed_http_cgi_head_t h;
    size_t             len = case_len(c), i;
    int                rc = ED_AGAIN;

    ed_http_cgi_head_init(&h, fields, 4096);
    for (i = 0; i <= len && rc == ED_AGAIN; i++) {
        rc = ed_http_cgi_head_parse(&h, c->in, i);
    }
    check_head(c, &h, rc);
}
END_TEST

START_TEST(test_head_limits)
{
    ed_http_header_t   fields[ED_HTTP_CGI_MAX_FIELDS];
    ed_http_cgi_head_t h;
    char               buf[4096];
    size_t             n = 0;
    int                i;

    /* 100 fields pass, 101 do not. */
    for (i = 0; i < 100; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: 1\n", i);
    }
    buf[n] = '\n';
    ed_http_cgi_head_init(&h, fields, sizeof(buf));
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, buf, n + 1), ED_OK);
    ck_assert_uint_eq(h.nfields, 100);
    memcpy(buf + n, "Y: 1\n\n", 6);
    ed_http_cgi_head_init(&h, fields, sizeof(buf));
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, buf, n + 6), ED_ERROR);
    ck_assert_str_eq(h.error, "more than 100 header fields");

    /* A head of exactly max bytes passes; one byte over fails, and so
     * does a full buffer without the empty line. */
    ed_http_cgi_head_init(&h, fields, 9);
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, "X-A: 12\n\n", 9), ED_OK);
    ed_http_cgi_head_init(&h, fields, 9);
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, "X-A: 123\n\n", 10),
                     ED_ERROR);
    ed_http_cgi_head_init(&h, fields, 9);
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, "X-A: 1234", 9), ED_ERROR);
    ck_assert_str_eq(h.error, "head larger than buffer_size");
    ed_http_cgi_head_init(&h, fields, 9);
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, "X-A: 123", 8), ED_AGAIN);
    /* An error sticks. */
    ed_http_cgi_head_init(&h, fields, 100);
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, " x\n", 3), ED_ERROR);
    ck_assert_int_eq(ed_http_cgi_head_parse(&h, " x\n\n", 4), ED_ERROR);
}
END_TEST

/* The stderr splitter. */

typedef struct {
    char   out[8192];
    size_t n;
    size_t bytes;
    int    lines;
} sink_t;

static void
sink_line(void *data, const char *line, size_t len)
{
    sink_t *s = data;

    ck_assert_uint_gt(len, 0);
    ck_assert_uint_le(len, ED_HTTP_CGI_LINE_MAX);
    s->lines++;
    s->bytes += len;
    if (4 * len + 2 > sizeof(s->out) - s->n) {
        /* Counted only: the long-line cases check sizes. */
        return;
    }
    s->n += ed_log_escape(s->out + s->n, sizeof(s->out) - s->n, line, len);
    s->out[s->n++] = '|';
    s->out[s->n] = '\0';
}

START_TEST(test_stderr_split)
{
    ed_http_cgi_stderr_t *e = malloc(sizeof(*e));
    sink_t                s = { .n = 0 };
    const char           *in = "one\r\ntwo\n\nth\x01ree\"\\\xff\nfour";
    size_t                i;

    ck_assert_ptr_nonnull(e);
    ed_http_cgi_stderr_init(e, "p", "");
    /* Byte by byte: lines span the calls. */
    for (i = 0; i < strlen(in); i++) {
        ed_http_cgi_stderr_split(e, in + i, 1, false, sink_line, &s);
    }
    ck_assert_str_eq(s.out, "one|two|th\\x01ree\\x22\\x5C\\xFF|");
    ed_http_cgi_stderr_split(e, NULL, 0, true, sink_line, &s);
    ck_assert_str_eq(s.out, "one|two|th\\x01ree\\x22\\x5C\\xFF|four|");
    ck_assert_int_eq(s.lines, 4);
    free(e);
}
END_TEST

START_TEST(test_stderr_long_and_cap)
{
    ed_http_cgi_stderr_t *e = malloc(sizeof(*e));
    sink_t                s = { .n = 0 };
    char                 *big = malloc(70000);

    ck_assert(e && big);
    /* A line of 5000 bytes goes out as 2048 + 2048 + 904. */
    memset(big, 'a', 5000);
    big[5000] = '\n';
    ed_http_cgi_stderr_init(e, "p", "");
    ed_http_cgi_stderr_split(e, big, 5001, false, sink_line, &s);
    ck_assert_int_eq(s.lines, 3);
    ck_assert_uint_eq(s.bytes, 5000);

    /* Past 64 KiB the rest is counted, not split. */
    memset(big, 'b', 70000);
    s.n = 0;
    s.bytes = 0;
    s.lines = 0;
    ed_http_cgi_stderr_split(e, big, 70000, true, sink_line, &s);
    ck_assert_uint_eq(s.bytes, ED_HTTP_CGI_STDERR_MAX - 5001);
    ck_assert_uint_eq(e->seen, ED_HTTP_CGI_STDERR_MAX);
    ck_assert_uint_eq(e->dropped, 70000 - (ED_HTTP_CGI_STDERR_MAX - 5001));
    ed_http_cgi_stderr_split(e, "c\n", 2, false, sink_line, &s);
    ck_assert_uint_eq(e->dropped, 70000 - (ED_HTTP_CGI_STDERR_MAX - 5001) + 2);
    free(big);
    free(e);
}
END_TEST

/* The meta-variables of a routed request. */

#define T_CONF                                                               \
    "access_log: off\n"                                                      \
    "servers:\n"                                                             \
    "  - listen: \"127.0.0.1:18381\"\n"                                      \
    "    names: [main.test]\n"                                               \
    "    root: /tmp\n"                                                   \
    "    locations:\n"                                                       \
    "      /:\n"                                                             \
    "      /u/:\n"                                                           \
    "        underscores_in_headers: true\n"

static void
setup_conf(void)
{
    ed_test_http_setup();
    ed_test_http_load(T_CONF);
}

typedef struct {
    char   text[4096];
    size_t n;
} env_t;

static int
env_add(void *data, const char *name, size_t nlen, const char *v,
        size_t vlen)
{
    env_t *e = data;

    e->n += (size_t)snprintf(e->text + e->n, sizeof(e->text) - e->n,
                             "%.*s=%.*s\n", (int)nlen, name, (int)vlen, v);
    return ED_OK;
}

static const char *
meta(const char *raw, unsigned flags)
{
    ed_http_request_t *r;
    static env_t       e;

    r = ed_test_http_route(ed_test_http_listener("127.0.0.1:18381"), raw);
    r->clcf = r->loc_conf[ed_http_core_module.index];
    ed_http_underscores(r);
    e.n = 0;
    e.text[0] = '\0';
    ck_assert_int_eq(ed_http_cgi_meta(r, flags, env_add, &e), ED_OK);
    return e.text;
}

#define ck_has(env, line)                                                    \
    ck_assert_msg(strstr(env, "\n" line "\n") != NULL                        \
                  || strncmp(env, line "\n", sizeof(line)) == 0,             \
                  "no \"%s\" in:\n%s", line, env)
#define ck_lacks(env, s)                                                     \
    ck_assert_msg(strstr(env, s) == NULL, "\"%s\" in:\n%s", s, env)

START_TEST(test_meta_table)
{
    const char *env = meta("POST /a/b.php?x=1&y HTTP/1.1\r\n"
                           "Host: Main.Test:8080\r\n"
                           "Content-Type: text/plain\r\n"
                           "Content-Length: 3\r\n"
                           "Proxy: http://evil/\r\n"
                           "Authorization: Basic eA==\r\n"
                           "Accept: a\r\nAccept: b\r\n"
                           "Cookie: c=1\r\nCookie: d=2\r\n"
                           "X-Dash: 1\r\n\r\n", 0);

    ck_has(env, "GATEWAY_INTERFACE=CGI/1.1");
    ck_has(env, "SERVER_SOFTWARE=eddy/" ED_VERSION);
    ck_has(env, "SERVER_PROTOCOL=HTTP/1.1");
    ck_has(env, "REQUEST_SCHEME=http");
    ck_has(env, "SERVER_NAME=main.test");
    ck_has(env, "REMOTE_ADDR=192.0.2.10");
    ck_has(env, "REMOTE_PORT=40000");
    ck_has(env, "REQUEST_METHOD=POST");
    ck_has(env, "REQUEST_URI=/a/b.php?x=1&y");
    ck_has(env, "QUERY_STRING=x=1&y");
    ck_has(env, "SCRIPT_NAME=/a/b.php");
    ck_has(env, "SCRIPT_FILENAME=/tmp/a/b.php");
    ck_has(env, "PATH_INFO=");
    ck_has(env, "DOCUMENT_ROOT=/tmp");
    ck_has(env, "DOCUMENT_URI=/a/b.php");
    ck_has(env, "CONTENT_TYPE=text/plain");
    ck_has(env, "CONTENT_LENGTH=3");
    ck_has(env, "REDIRECT_STATUS=200");
    ck_has(env, "HTTP_HOST=Main.Test:8080");
    ck_has(env, "HTTP_ACCEPT=a, b");
    ck_has(env, "HTTP_COOKIE=c=1; d=2");
    ck_has(env, "HTTP_X_DASH=1");
    ck_lacks(env, "HTTPS=");
    ck_lacks(env, "HTTP_PROXY");
    ck_lacks(env, "HTTP_AUTHORIZATION");
    ck_lacks(env, "HTTP_CONTENT");
    ck_lacks(env, "PATH_TRANSLATED");
    ck_lacks(env, "REMOTE_HOST");

    env = meta("GET / HTTP/1.1\r\nHost: main.test\r\n"
               "Authorization: Basic eA==\r\n\r\n",
               ED_HTTP_CGI_AUTHORIZATION | ED_HTTP_CGI_REMOTE_HOST);
    ck_has(env, "HTTP_AUTHORIZATION=Basic eA==");
    ck_has(env, "REMOTE_HOST=192.0.2.10");
    ck_has(env, "QUERY_STRING=");
    ck_lacks(env, "CONTENT_LENGTH");
    ck_lacks(env, "CONTENT_TYPE");
}
END_TEST

START_TEST(test_meta_underscores)
{
    const char *env;

    /* Hidden by default. */
    env = meta("GET /a HTTP/1.1\r\nHost: main.test\r\nX_Foo: u\r\n\r\n", 0);
    ck_lacks(env, "HTTP_X_FOO");
    /* Shown where allowed; a '-' name wins over it, whatever the
     * order. */
    env = meta("GET /u/a HTTP/1.1\r\nHost: main.test\r\nX_Foo: u\r\n\r\n",
               0);
    ck_has(env, "HTTP_X_FOO=u");
    env = meta("GET /u/a HTTP/1.1\r\nHost: main.test\r\nX_Foo: u\r\n"
               "X-Foo: d\r\n\r\n", 0);
    ck_has(env, "HTTP_X_FOO=d");
    ck_lacks(env, "HTTP_X_FOO=u");
}
END_TEST

START_TEST(test_meta_script)
{
    ed_http_request_t *r;
    ed_http_cgi_req_t *c;
    env_t              e = { .n = 0 };

    r = ed_test_http_route(ed_test_http_listener("127.0.0.1:18381"),
                           "GET /x.php/p/q HTTP/1.1\r\nHost: main.test\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
    r->clcf = r->loc_conf[ed_http_core_module.index];
    c = ed_http_cgi_request(r);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(ed_http_cgi_request(r), c);
    ed_str_set(&c->root, "/app");
    ed_str_set(&c->script_name, "/x.php");
    ed_str_set(&c->path_info, "/p/q");
    c->content_length = 12;
    ck_assert_int_eq(ed_http_cgi_meta(r, 0, env_add, &e), ED_OK);
    ck_has(e.text, "SCRIPT_NAME=/x.php");
    ck_has(e.text, "SCRIPT_FILENAME=/app/x.php");
    ck_has(e.text, "PATH_INFO=/p/q");
    ck_has(e.text, "PATH_TRANSLATED=/app/p/q");
    ck_has(e.text, "DOCUMENT_ROOT=/app");
    ck_has(e.text, "DOCUMENT_URI=/x.php/p/q");
    ck_has(e.text, "CONTENT_LENGTH=12");

    ck_assert(ed_http_cgi_meta_name("PATH_INFO", 9));
    ck_assert(ed_http_cgi_meta_name("HTTP_X", 6));
    ck_assert(!ed_http_cgi_meta_name("LANG", 4));
    ck_assert(!ed_http_cgi_meta_name("PATH", 4));
}
END_TEST

Suite *
ed_test_http_cgi_suite(void)
{
    Suite *s = suite_create("http_cgi");
    TCase *tc;

    tc = tcase_create("head");
    tcase_add_loop_test(tc, test_head_cases, 0, ed_nelems(head_cases));
    tcase_add_loop_test(tc, test_head_bytewise, 0, ed_nelems(head_cases));
    tcase_add_test(tc, test_head_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("stderr");
    tcase_add_test(tc, test_stderr_split);
    tcase_add_test(tc, test_stderr_long_and_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("meta");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, setup_conf, ed_test_http_teardown);
    tcase_add_test(tc, test_meta_table);
    tcase_add_test(tc, test_meta_underscores);
    tcase_add_test(tc, test_meta_script);
    suite_add_tcase(s, tc);
    return s;
}
