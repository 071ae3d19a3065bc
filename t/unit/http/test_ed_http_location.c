/* Unit tests for choosing a location (src/http/ed_http_location.c):
 * exact first, the longest prefix, "^~" skipping the regexes, regexes in
 * file order, "~*" case-insensitive, captures copied into the request,
 * and the server's fallback when nothing matches. Configurations go
 * through the real loader (ed_cycle_load), so locations are built
 * exactly as in production; requests are parsed by the real parser. */
#include "http_fixture.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <unistd.h>

#define T_LISTEN "127.0.0.1:18180"


static ed_http_request_t *
route(const char *target)
{
    char raw[512];

    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: loc.test\r\n\r\n",
             target);
    return ed_test_http_route(ed_test_http_listener(T_LISTEN), raw);
}

/* The location's key as written in the file. */
static const char *
loc_of(const char *target)
{
    return route(target)->loc->name.data;
}

#define ck_loc(target, name)                                                 \
    do {                                                                     \
        const char *got_ = loc_of(target);                                   \
        ck_assert_msg(strcmp(got_, (name)) == 0,                             \
                      "%s: expected location \"%s\", got \"%s\"", (target), \
                      (name), got_);                                         \
    } while (0)

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

#define T_HEAD                                                               \
    "access_log: off\n"                                                      \
    "servers:\n"                                                             \
    "  - listen: \"" T_LISTEN "\"\n"                                         \
    "    names: [loc.test]\n"                                                \
    "    locations:\n"

/* The kinds are parsed from the keys. */
START_TEST(test_location_kinds)
{
    ed_http_server_t    *srv;
    ed_http_location_t **locs;

    ed_test_http_load(T_HEAD
         "      /a/:\n"
         "      = /b:\n"
         "      ^~ /c/:\n"
         "      '~ ^/d':\n"
         "      '~* ^/e':\n");
    srv = ((ed_http_server_t **)((ed_http_addr_t *)ed_test_http_listener(T_LISTEN)
                                     ->servers)->servers.elts)[0];
    ck_assert_uint_eq(srv->locations.nelts, 5);
    locs = srv->locations.elts;
    ck_assert_int_eq(locs[0]->kind, ED_HTTP_LOC_PREFIX);
    ck_assert_int_eq(locs[1]->kind, ED_HTTP_LOC_EXACT);
    ck_assert_int_eq(locs[2]->kind, ED_HTTP_LOC_NOREGEX);
    ck_assert_int_eq(locs[3]->kind, ED_HTTP_LOC_REGEX);
    ck_assert_int_eq(locs[4]->kind, ED_HTTP_LOC_REGEX_CASELESS);
    ck_assert(locs[0]->match.len == 3
              && memcmp(locs[0]->match.data, "/a/", 3) == 0);
    ck_assert(locs[1]->match.len == 2
              && memcmp(locs[1]->match.data, "/b", 2) == 0);
    ck_assert(locs[2]->match.len == 3
              && memcmp(locs[2]->match.data, "/c/", 3) == 0);
    ck_assert_ptr_null(locs[0]->re);
    ck_assert_ptr_nonnull(locs[3]->re);
    ck_assert_ptr_nonnull(locs[4]->re);
}
END_TEST

/* "= path" wins over prefixes, "^~" and regexes, wherever it is in the
 * file, and only for exactly that path. */
START_TEST(test_exact_beats_everything)
{
    ed_test_http_load(T_HEAD
         "      /:\n"
         "      ^~ /health:\n"
         "      '~ ^/healthz$':\n"
         "      /healthz:\n"
         "      '~ ^/':\n"
         "      = /healthz:\n"
         "      = /:\n");
    ck_loc("/healthz", "= /healthz");
    ck_loc("/", "= /");
    /* Not exactly: the rest of the rules apply. */
    ck_loc("/healthz/", "~ ^/");
    ck_loc("/healthx", "^~ /health");
    ck_loc("/healthz?x=1", "= /healthz"); /* the query is not matched */
}
END_TEST

/* The longest matching prefix wins whatever the file order; prefixes
 * compare bytes (no path-segment rule), and case-sensitively. */
START_TEST(test_longest_prefix)
{
    ed_test_http_load(T_HEAD
         "      /a/b/:\n"
         "      /:\n"
         "      /a/:\n"
         "      /a/b/cd:\n"
         "      /Upper/:\n");
    ck_loc("/a/b/c", "/a/b/");
    ck_loc("/a/b/", "/a/b/");
    ck_loc("/a/b/cd", "/a/b/cd");
    ck_loc("/a/b/cde/f", "/a/b/cd");
    ck_loc("/a/x", "/a/");
    ck_loc("/a", "/");       /* "/a/" is longer than the path */
    ck_loc("/b", "/");
    ck_loc("/Upper/x", "/Upper/");
    ck_loc("/upper/x", "/");
}
END_TEST

/* "^~" as the longest prefix skips the regexes; when a longer plain
 * prefix matches, the regexes are tried again. */
START_TEST(test_noregex_prefix)
{
    ed_test_http_load(T_HEAD
         "      /:\n"
         "      '~ \\.png$':\n"
         "      ^~ /static/:\n"
         "      /static/img/:\n"
         "      ^~ /static/img/raw/:\n");
    ck_loc("/static/a.png", "^~ /static/");
    ck_loc("/static/a.txt", "^~ /static/");
    ck_loc("/static/img/a.png", "~ \\.png$");
    ck_loc("/static/img/a.txt", "/static/img/");
    ck_loc("/static/img/raw/a.png", "^~ /static/img/raw/");
    ck_loc("/other/a.png", "~ \\.png$");
    ck_loc("/other/a.txt", "/");
}
END_TEST

/* The first regex in file order wins, not the most specific one, and a
 * regex beats any plain prefix. */
START_TEST(test_regex_file_order)
{
    ed_test_http_load(T_HEAD
         "      /api/v1/users:\n"
         "      '~ ^/api/':\n"
         "      '~ ^/api/v1/':\n"
         "      '~ /v1/':\n"
         "      /:\n");
    ck_loc("/api/v1/users/1", "~ ^/api/");
    ck_loc("/api/v1/x", "~ ^/api/");
    ck_loc("/x/v1/y", "~ /v1/");
    ck_loc("/x/v2/y", "/");
}
END_TEST

/* "~" is case-sensitive, "~*" is not. */
START_TEST(test_regex_caseless)
{
    ed_test_http_load(T_HEAD
         "      /:\n"
         "      '~* \\.(png|jpg)$':\n"
         "      '~ \\.GIF$':\n");
    ck_loc("/A.PNG", "~* \\.(png|jpg)$");
    ck_loc("/a.Jpg", "~* \\.(png|jpg)$");
    ck_loc("/a.png", "~* \\.(png|jpg)$");
    ck_loc("/a.GIF", "~ \\.GIF$");
    ck_loc("/a.gif", "/");
    ck_loc("/a.Gif", "/");
}
END_TEST

/* $1..$9 and named captures of the matching regex are copied into the
 * request: they survive later matches of other requests. */
START_TEST(test_captures)
{
    ed_http_request_t *r1, *r2, *r3, *r4;

    ed_test_http_load(T_HEAD
         "      /:\n"
         "      '~ ^/api/(v\\d+)/(\\w+)/(?<id>\\d+)$':\n"
         "      '~ ^/(a)(b)(c)(d)(e)(f)(g)(h)(i)$':\n"
         "      '~ ^/opt(/x)?(/y)$':\n");
    r1 = route("/api/v2/users/42");
    ck_assert_str_eq(r1->loc->name.data,
                     "~ ^/api/(v\\d+)/(\\w+)/(?<id>\\d+)$");
    ck_assert_ptr_nonnull(r1->caps);
    ck_assert_uint_ge(r1->ncaps, 4);
    ck_var(r1, "0", "/api/v2/users/42");
    ck_var(r1, "1", "v2");
    ck_var(r1, "2", "users");
    ck_var(r1, "3", "42");
    ck_var(r1, "id", "42");
    ck_novar(r1, "4");
    ck_novar(r1, "9");
    ck_novar(r1, "nosuch");

    r2 = route("/abcdefghi");
    ck_var(r2, "1", "a");
    ck_var(r2, "5", "e");
    ck_var(r2, "9", "i");

    r3 = route("/opt/y");
    ck_novar(r3, "1"); /* the optional group did not take part */
    ck_var(r3, "2", "/y");

    /* Another request matching the first regex on another subject, and
     * one matching nothing: r1 keeps its own values. */
    r4 = route("/api/v9/items/7");
    ck_var(r4, "1", "v9");
    ck_var(r4, "id", "7");
    route("/nothing");
    ck_var(r1, "1", "v2");
    ck_var(r1, "2", "users");
    ck_var(r1, "id", "42");
    ck_var(r2, "9", "i");
}
END_TEST

/* A prefix location sets no captures; neither does a regex that fails. */
START_TEST(test_no_captures_without_regex)
{
    ed_http_request_t *r;

    ed_test_http_load(T_HEAD
         "      /:\n"
         "      '~ ^/re/(.*)$':\n");
    r = route("/plain/x");
    ck_assert_str_eq(r->loc->name.data, "/");
    ck_assert_ptr_null(r->caps);
    ck_novar(r, "1");
    r = route("/re/x");
    ck_var(r, "1", "x");
}
END_TEST

/* No location matches: the server's fallback, with the server's own
 * settings. */
START_TEST(test_fallback)
{
    ed_http_request_t *r;

    ed_test_http_load(T_HEAD
         "      /a/:\n"
         "      = /b:\n"
         "      '~ ^/c':\n");
    r = route("/z");
    ck_assert_ptr_eq(r->loc, r->server->fallback);
    ck_assert_ptr_eq(r->loc->conf, r->server->loc_conf);
    ck_assert_ptr_eq(r->loc->server, r->server);
    ck_assert_str_eq(r->loc->name.data, "(none)");
    ck_assert_ptr_null(r->caps);
    r = route("/b/");  /* "= /b" only for "/b" */
    ck_assert_ptr_eq(r->loc, r->server->fallback);
    r = route("/a");
    ck_assert_ptr_eq(r->loc, r->server->fallback);
    ck_loc("/a/", "/a/");
    ck_loc("/b", "= /b");
    ck_loc("/cat", "~ ^/c");
}
END_TEST

/* A server without locations answers everything from its fallback. */
START_TEST(test_no_locations)
{
    ed_http_request_t *r;

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         "  - listen: \"" T_LISTEN "\"\n"
         "    names: [loc.test]\n");
    r = route("/anything");
    ck_assert_ptr_eq(r->loc, r->server->fallback);
}
END_TEST

/* Matching is done on the normalised path. */
START_TEST(test_normalised_path)
{
    ed_http_request_t *r;

    ed_test_http_load(T_HEAD
         "      /:\n"
         "      ^~ /static/:\n"
         "      = /exact:\n"
         "      '~ ^/api/(v\\d+)/(.*)$':\n");
    ck_loc("//static//a.png", "^~ /static/");
    ck_loc("/x/../exact", "= /exact");
    ck_loc("/%65xact", "= /exact");
    r = route("/static/../api/./v1/%78y");
    ck_assert_str_eq(r->loc->name.data, "~ ^/api/(v\\d+)/(.*)$");
    ck_var(r, "1", "v1");
    ck_var(r, "2", "xy");
}
END_TEST

/* Each server has its own locations. */
START_TEST(test_locations_per_server)
{
    ed_http_request_t *r;
    const char        *one = "GET /x/y HTTP/1.1\r\nHost: one.test\r\n\r\n";
    const char        *two = "GET /x/y HTTP/1.1\r\nHost: two.test\r\n\r\n";

    ed_test_http_load("access_log: off\n"
         "servers:\n"
         "  - listen: \"" T_LISTEN "\"\n"
         "    names: [one.test]\n"
         "    locations:\n"
         "      /x/:\n"
         "  - listen: \"" T_LISTEN "\"\n"
         "    names: [two.test]\n"
         "    locations:\n"
         "      /:\n"
         "      '~ ^/x/(y)':\n");
    r = ed_test_http_route(ed_test_http_listener(T_LISTEN), one);
    ck_assert_uint_eq(r->server->index, 1);
    ck_assert_str_eq(r->loc->name.data, "/x/");
    ck_assert_ptr_eq(r->loc->server, r->server);
    r = ed_test_http_route(ed_test_http_listener(T_LISTEN), two);
    ck_assert_uint_eq(r->server->index, 2);
    ck_assert_str_eq(r->loc->name.data, "~ ^/x/(y)");
    ck_assert_ptr_eq(r->loc->server, r->server);
    ck_var(r, "1", "y");
}
END_TEST

/* ed_http_regex_compile: JIT or not, a bad pattern gives a message. */
START_TEST(test_regex_compile)
{
    const char *err = NULL;
    pcre2_code *re;

    re = ed_http_regex_compile(ed_test_rpool, "^/a(b)$", 7, false, &err);
    ck_assert_ptr_nonnull(re);
    re = ed_http_regex_compile(ed_test_rpool, "^/a(b$", 6, true, &err);
    ck_assert_ptr_null(re);
    ck_assert_ptr_nonnull(err);
    ck_assert(strstr(err, "offset") != NULL);
}
END_TEST

/* An invalid regex location is a configuration error. */
START_TEST(test_bad_regex_rejected)
{
    char       path[] = "/tmp/ed_test_location.XXXXXX";
    const char *yaml = T_HEAD "      '~ ^/(a':\n";
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
    ck_assert_msg(strstr(errors->errors[0], "invalid location") != NULL,
                  "%s", errors->errors[0]);
    ed_cycle_errors_free(errors);
}
END_TEST

Suite *
ed_test_http_location_suite(void)
{
    Suite *s = suite_create("http_location");
    TCase *tc;

    tc = tcase_create("choice");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, ed_test_http_setup, ed_test_http_teardown);
    tcase_add_test(tc, test_location_kinds);
    tcase_add_test(tc, test_exact_beats_everything);
    tcase_add_test(tc, test_longest_prefix);
    tcase_add_test(tc, test_noregex_prefix);
    tcase_add_test(tc, test_regex_file_order);
    tcase_add_test(tc, test_regex_caseless);
    tcase_add_test(tc, test_fallback);
    tcase_add_test(tc, test_no_locations);
    tcase_add_test(tc, test_normalised_path);
    tcase_add_test(tc, test_locations_per_server);
    suite_add_tcase(s, tc);

    tc = tcase_create("captures");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, ed_test_http_setup, ed_test_http_teardown);
    tcase_add_test(tc, test_captures);
    tcase_add_test(tc, test_no_captures_without_regex);
    suite_add_tcase(s, tc);

    tc = tcase_create("regex");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, ed_test_http_setup, ed_test_http_teardown);
    tcase_add_test(tc, test_regex_compile);
    tcase_add_test(tc, test_bad_regex_rejected);
    suite_add_tcase(s, tc);
    return s;
}
