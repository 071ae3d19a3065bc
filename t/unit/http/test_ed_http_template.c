/* Unit tests for templates and variables (src/http/ed_http_variables.c):
 * compiling strings with $name / ${name}, literal '$', errors, and
 * running them against requests: core variables, $http_NAME, $arg_NAME,
 * $cookie_NAME, regex captures, unknown names. The configuration goes
 * through the real loader (ed_cycle_load) and requests through the real
 * parser, then are routed as ed_http_process does. */
#include "http_fixture.h"
#include "ed_http_upstream.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <unistd.h>

#define T_LISTEN "127.0.0.1:18380"


#define T_CONF                                                               \
    "access_log: off\n"                                                      \
    "servers:\n"                                                             \
    "  - listen: \"" T_LISTEN "\"\n"                                         \
    "    names: [main.test, '~^(?<sub>[a-z]+)\\.cap\\.test$']\n"            \
    "    locations:\n"                                                       \
    "      /:\n"                                                             \
    "      '~ ^/api/(v\\d+)/(?<rest>.*)$':\n"

/* The per-test ed_test_http_setup also loads the configuration. */
static void
setup_conf(void)
{
    ed_test_http_setup();
    ed_test_http_load(T_CONF);
}

/* Compiles a template as a module does at configuration time (only the
 * conf's pool is used). NULL with *err on an error. */
static ed_http_template_t *
compile(const char *s, const char **err)
{
    ed_conf_t *cf = ed_pcalloc(ed_test_rpool, sizeof(ed_conf_t));
    ed_node_t *n = ed_pcalloc(ed_test_rpool, sizeof(ed_node_t));

    ck_assert(cf && n);
    cf->pool = ed_test_rpool;
    cf->cycle = ed_test_cycle;
    cf->ctx = ED_CTX_LOCATION;
    cf->ctx_name = "location \"/\"";
    n->type = ED_NODE_SCALAR;
    n->file = "t.yaml";
    n->line = 1;
    n->col = 1;
    n->value.len = strlen(s);
    n->value.data = ed_pstrdup(ed_test_rpool, s, n->value.len);
    ck_assert_ptr_nonnull(n->value.data);
    *err = NULL;
    return ed_http_template_compile(cf, n, err);
}

static const char *
run(ed_http_request_t *r, const char *s)
{
    ed_http_template_t *t;
    const char         *err;
    ed_str_t            out;

    t = compile(s, &err);
    ck_assert_msg(t != NULL, "template \"%s\" rejected: %s", s,
                  err ? err : "?");
    ck_assert_int_eq(ed_http_template_run(r, t, &out), ED_OK);
    ck_assert(out.len == 0 || out.data != NULL);
    return ed_pstrdup(ed_test_rpool, out.data ? out.data : "", out.len);
}

#define ck_tpl(r, tpl, want)                                                 \
    do {                                                                     \
        const char *got_ = run((r), (tpl));                                  \
        ck_assert_msg(strcmp(got_, (want)) == 0,                             \
                      "template \"%s\": expected \"%s\", got \"%s\"", (tpl), \
                      (want), got_);                                         \
    } while (0)

/* Compiling must fail with a message containing want. */
#define ck_tpl_error(tpl, want)                                              \
    do {                                                                     \
        const char *err_;                                                    \
        ck_assert_msg(compile((tpl), &err_) == NULL,                         \
                      "template \"%s\" accepted", (tpl));                    \
        ck_assert_msg(err_ != NULL && strstr(err_, (want)) != NULL,          \
                      "template \"%s\": error \"%s\"", (tpl),                \
                      err_ ? err_ : "(none)");                               \
    } while (0)

/* One variable by name: its value, or NULL (ED_DECLINED). */
static const char *
var(ed_http_request_t *r, const char *name)
{
    ed_str_t v;
    int      rc = ed_http_variable(r, name, strlen(name), &v);

    if (rc == ED_DECLINED) {
        return NULL;
    }
    ck_assert_int_eq(rc, ED_OK);
    return ed_pstrdup(ed_test_rpool, v.data ? v.data : "", v.len);
}

static ed_http_request_t *
req(const char *raw)
{
    return ed_test_http_route(ed_test_http_listener(T_LISTEN), raw);
}

#define T_GET                                                                \
    "GET /p/./b/../a?x=1&y=2 HTTP/1.1\r\n"                                   \
    "Host: Main.Test:8080\r\n"                                               \
    "User-Agent: UA/1\r\n"                                                   \
    "\r\n"

START_TEST(test_literals)
{
    ed_http_request_t *r = req(T_GET);

    ck_tpl(r, "plain text", "plain text");
    ck_tpl(r, "", "");
    ck_tpl(r, "100% {braces} and \\ backslash",
           "100% {braces} and \\ backslash");
}
END_TEST

START_TEST(test_simple_variables)
{
    ed_http_request_t *r = req(T_GET);

    ck_tpl(r, "$uri", "/p/a");
    ck_tpl(r, "$host", "main.test");
    ck_tpl(r, "host=$host;", "host=main.test;");
    ck_tpl(r, "$request_method", "GET");
    ck_tpl(r, "$request_uri", "/p/./b/../a?x=1&y=2");
    ck_tpl(r, "$args", "x=1&y=2");
    ck_tpl(r, "$query_string", "x=1&y=2");
    ck_tpl(r, "$server_name", "main.test");
    ck_tpl(r, "$scheme://$host$request_uri",
           "http://main.test/p/./b/../a?x=1&y=2");
    ck_tpl(r, "$remote_addr:$remote_port", "192.0.2.10:40000");
    ck_tpl(r, "$request", "GET /p/./b/../a?x=1&y=2 HTTP/1.1");
}
END_TEST

/* ${name} ends the name explicitly. */
START_TEST(test_braces)
{
    ed_http_request_t *r = req(T_GET);

    ck_tpl(r, "${uri}", "/p/a");
    ck_tpl(r, "${uri}x", "/p/ax");
    ck_tpl(r, "a${args}b", "ax=1&y=2b");
    ck_tpl(r, "${request_method}_x", "GET_x");
    /* Without braces the name runs on: an unknown name, empty. */
    ck_tpl(r, "[$request_method_x]", "[]");
    ck_tpl(r, "${host}${uri}", "main.test/p/a");
}
END_TEST

START_TEST(test_adjacent)
{
    ed_http_request_t *r = req(T_GET);

    ck_tpl(r, "$host$uri", "main.test/p/a");
    ck_tpl(r, "$request_method$uri?$args", "GET/p/a?x=1&y=2");
    ck_tpl(r, "[$host][$uri]", "[main.test][/p/a]");
    ck_tpl(r, "$host${uri}$args", "main.test/p/ax=1&y=2");
}
END_TEST

/* A '$' not followed by a name character or '{' is literal text. */
START_TEST(test_dollar_literal)
{
    ed_http_request_t *r = req(T_GET);

    ck_tpl(r, "$", "$");
    ck_tpl(r, "50$", "50$");
    ck_tpl(r, "a$-b", "a$-b");
    ck_tpl(r, "$ x", "$ x");
    ck_tpl(r, "$.$/$:", "$.$/$:");
    /* "$$" is one literal '$', also before a name. */
    ck_tpl(r, "$$", "$");
    ck_tpl(r, "$$host", "$host");
    ck_tpl(r, "$$$host", "$main.test");
    ck_tpl(r, "a$$$$b$$", "a$$b$");
    ck_tpl(r, "$host$", "main.test$");
    ck_tpl(r, "cost: $-$uri-$", "cost: $-/p/a-$");
}
END_TEST

/* The first error compiling s records (at main level: every regex of
 * the configuration is in scope), or "" when none. */
static const char *
check_names(const char *s)
{
    ed_conf_t  *cf = ed_pcalloc(ed_test_rpool, sizeof(ed_conf_t));
    ed_node_t  *n = ed_pcalloc(ed_test_rpool, sizeof(ed_node_t));
    const char *err = NULL;

    ck_assert(cf && n);
    cf->pool = ed_test_rpool;
    cf->cycle = ed_test_cycle;
    n->type = ED_NODE_SCALAR;
    n->file = "t.yaml";
    n->line = 3;
    n->col = 10;
    n->quoted = 1;
    n->value.len = strlen(s);
    n->value.data = ed_pstrdup(ed_test_rpool, s, n->value.len);
    ck_assert_ptr_nonnull(ed_http_template_compile(cf, n, &err));
    return cf->nerrors ? cf->errors[0] : "";
}

/* Unknown names: the closest within edit distance 2, or the family;
 * captures of any regex in scope are names too. */
START_TEST(test_unknown_names)
{
    ck_assert_str_eq(check_names("$remote_addr $http_x_y $arg_q "
                                 "$cookie_c $upstream_addr $sub $rest $1"),
                     "");
    ck_assert_str_eq(check_names("x $remote_adr"),
                     "t.yaml:3:13: unknown variable \"$remote_adr\"; did "
                     "you mean \"$remote_addr\"?");
    ck_assert_str_eq(check_names("${hots}"),
                     "t.yaml:3:11: unknown variable \"$hots\"; did you "
                     "mean \"$host\"?");
    ck_assert_str_eq(check_names("$restt"),
                     "t.yaml:3:11: unknown variable \"$restt\"; did you "
                     "mean \"$rest\"?");
    ck_assert_str_eq(check_names("$htp_user_agent"),
                     "t.yaml:3:11: unknown variable \"$htp_user_agent\"; "
                     "did you mean \"$http_user_agent\"?");
    ck_assert_str_eq(check_names("$cookie"),
                     "t.yaml:3:11: unknown variable \"$cookie\"; did you "
                     "mean \"$cookie_NAME\"?");
    /* Three edits away: no guess. */
    ck_assert_str_eq(check_names("$$x $requets_tiem"),
                     "t.yaml:3:15: unknown variable \"$requets_tiem\"");
    ck_assert_str_eq(check_names("$zz"), "t.yaml:3:11: unknown variable "
                                         "\"$zz\"");
}
END_TEST

START_TEST(test_compile_errors)
{
    ck_tpl_error("${host", "unterminated");
    ck_tpl_error("abc${", "unterminated");
    ck_tpl_error("${", "unterminated");
    ck_tpl_error("$host${uri", "unterminated");
    ck_tpl_error("${}", "empty variable name");
    ck_tpl_error("a${}b", "empty variable name");
}
END_TEST

/* $http_NAME: the header, case-insensitive, '-' written as '_'; the
 * value as received. */
START_TEST(test_http_headers)
{
    ed_http_request_t *r;

    r = req("GET / HTTP/1.1\r\n"
            "Host: Main.Test:8080\r\n"
            "X-Foo: bar\r\n"
            "X-FORWARDED-For: 1.2.3.4, 5.6.7.8\r\n"
            "user-agent: UA/1\r\n"
            "Accept-Language: fr\r\n"
            "X-Empty:\r\n"
            "X-Foo: second\r\n"
            "\r\n");
    ck_tpl(r, "$http_x_foo", "bar");
    ck_tpl(r, "${http_x_foo}!", "bar!");
    ck_tpl(r, "$http_x_forwarded_for", "1.2.3.4, 5.6.7.8");
    ck_tpl(r, "$http_user_agent", "UA/1");
    ck_tpl(r, "$http_accept_language", "fr");
    ck_tpl(r, "$http_host", "Main.Test:8080");
    ck_tpl(r, "[$http_x_empty]", "[]");
    ck_tpl(r, "[$http_missing]", "[]");
    ck_tpl(r, "[$http_x_fo]", "[]");     /* whole names only */
    ck_tpl(r, "[$http_x_foo_]", "[]");
    ck_assert_str_eq(var(r, "http_x_foo"), "bar");
    ck_assert_str_eq(var(r, "http_x_empty"), "");
    ck_assert_ptr_null(var(r, "http_missing"));
}
END_TEST

/* $arg_NAME: the first argument of that name, raw (not decoded). */
START_TEST(test_args)
{
    ed_http_request_t *r;

    r = req("GET /p?a=1&bb=2&b=3&flag&a=4&empty=&c=x%20y HTTP/1.1\r\n"
            "Host: main.test\r\n\r\n");
    ck_tpl(r, "$arg_a", "1");
    ck_tpl(r, "$arg_b", "3");
    ck_tpl(r, "$arg_bb", "2");
    ck_tpl(r, "$arg_c", "x%20y");
    ck_tpl(r, "[$arg_flag][$arg_empty][$arg_zz]", "[][][]");
    ck_tpl(r, "${arg_a}-${arg_b}", "1-3");
    ck_assert_str_eq(var(r, "arg_flag"), "");
    ck_assert_str_eq(var(r, "arg_empty"), "");
    ck_assert_ptr_null(var(r, "arg_zz"));
    ck_assert_ptr_null(var(r, "arg_e"));
    /* Names match without regard to case, as nginx's. */
    ck_tpl(r, "$arg_A-$arg_BB-$arg_Flag.", "1-2-.");

    r = req("GET /p HTTP/1.1\r\nHost: main.test\r\n\r\n");
    ck_assert_ptr_null(var(r, "arg_a"));
    ck_tpl(r, "[$arg_a]", "[]");
    r = req("GET /p? HTTP/1.1\r\nHost: main.test\r\n\r\n");
    ck_assert_ptr_null(var(r, "arg_a"));
}
END_TEST

/* $cookie_NAME from every Cookie header. */
START_TEST(test_cookies)
{
    ed_http_request_t *r;

    r = req("GET / HTTP/1.1\r\n"
            "Host: main.test\r\n"
            "Cookie: sess=1; session=abc;x=y\r\n"
            "cookie: second=2\r\n"
            "\r\n");
    ck_tpl(r, "$cookie_session", "abc");
    ck_tpl(r, "$cookie_sess", "1");
    ck_tpl(r, "$cookie_x", "y");
    ck_tpl(r, "$cookie_second", "2");
    ck_tpl(r, "[$cookie_ses][$cookie_nope]", "[][]");
    ck_assert_ptr_null(var(r, "cookie_ses"));
    ck_assert_ptr_null(var(r, "cookie_nope"));

    r = req("GET / HTTP/1.1\r\nHost: main.test\r\n\r\n");
    ck_tpl(r, "[$cookie_session]", "[]");
}
END_TEST

/* $1..$9 and named captures of the location's regex. */
START_TEST(test_captures)
{
    ed_http_request_t *r;

    r = req("GET /api/v3/users/7 HTTP/1.1\r\nHost: main.test\r\n\r\n");
    ck_assert_str_eq(r->loc->name.data, "~ ^/api/(v\\d+)/(?<rest>.*)$");
    ck_tpl(r, "$1", "v3");
    ck_tpl(r, "$2", "users/7");
    ck_tpl(r, "$rest", "users/7");
    ck_tpl(r, "/new/$1/$2", "/new/v3/users/7");
    ck_tpl(r, "${1}-${rest}", "v3-users/7");
    ck_tpl(r, "$1.html", "v3.html");
    ck_tpl(r, "${1}abc", "v3abc");
    ck_tpl(r, "[$3][$9]", "[][]");
    /* As nginx: a capture is one digit, the rest is text. */
    ck_tpl(r, "$1abc", "v3abc");
    ck_tpl(r, "$12", "v32");
    ck_tpl(r, "$1_$2", "v3_users/7");
}
END_TEST

/* Named captures of a regex server name. */
START_TEST(test_server_name_captures)
{
    ed_http_request_t *r;

    r = req("GET /x HTTP/1.1\r\nHost: Shop.cap.test\r\n\r\n");
    ck_assert_str_eq(r->loc->name.data, "/");
    ck_tpl(r, "$sub", "shop");
    ck_tpl(r, "$1-$host", "shop-shop.cap.test");
    /* Note: when a regex location matches as well, its captures replace
     * the server name's (here "$sub" would be empty, where nginx keeps
     * it); config.md does not say, so it is not asserted. */
}
END_TEST

/* Unknown names, and captures when nothing was captured, are empty. */
START_TEST(test_unknown_empty)
{
    ed_http_request_t *r = req(T_GET);

    ck_assert_ptr_null(r->caps);
    ck_tpl(r, "[$nosuch]", "[]");
    ck_tpl(r, "[${no_such_var}]", "[]");
    ck_tpl(r, "[${nosuch}x]", "[x]");
    ck_tpl(r, "[$1][$9][$rest]", "[][][]");
    ck_tpl(r, "[$http_][$arg_][$cookie_]", "[][][]");
    ck_tpl(r, "a$nosuch$uri", "a/p/a");
    ck_assert_ptr_null(var(r, "nosuch"));
    ck_assert_ptr_null(var(r, "1"));
}
END_TEST

/* $host without a Host header is the server's name. */
START_TEST(test_host_without_header)
{
    ed_http_request_t *r = req("GET /h HTTP/1.0\r\n\r\n");

    ck_tpl(r, "[$host]", "[main.test]");
    ck_tpl(r, "[$http_host]", "[]");
}
END_TEST

/* More parts than the run-time stack array holds. */
START_TEST(test_many_parts)
{
    ed_http_request_t *r = req(T_GET);
    char               tpl[1024], want[1024];
    size_t             i, t = 0, w = 0;

    for (i = 0; i < 50; i++) {
        t += (size_t)snprintf(tpl + t, sizeof(tpl) - t, "$uri,");
        w += (size_t)snprintf(want + w, sizeof(want) - w, "/p/a,");
    }
    ck_tpl(r, tpl, want);
    t = 0;
    w = 0;
    for (i = 0; i < 100; i++) {
        t += (size_t)snprintf(tpl + t, sizeof(tpl) - t, "$host");
        w += (size_t)snprintf(want + w, sizeof(want) - w, "main.test");
    }
    ck_tpl(r, tpl, want);
}
END_TEST

START_TEST(test_variable_known)
{
    ck_assert(ed_http_variable_known("host", 4));
    ck_assert(ed_http_variable_known("request_uri", 11));
    ck_assert(ed_http_variable_known("http_x_foo", 10));
    ck_assert(ed_http_variable_known("arg_a", 5));
    ck_assert(ed_http_variable_known("cookie_a", 8));
    ck_assert(!ed_http_variable_known("nosuch", 6));
    ck_assert(!ed_http_variable_known("http_", 5));
    ck_assert(!ed_http_variable_known("hos", 3));
}
END_TEST

/* The upstream module provides $upstream_*: found by name at compile
 * time and by ed_http_variable, one value per attempt. */
START_TEST(test_module_variables)
{
    ed_http_request_t        *r = req(T_GET);
    ed_http_upstream_state_t *st;

    ck_assert(ed_http_variable_known("upstream_addr", 13));
    ck_assert(ed_http_variable_known("upstream_status", 15));
    ck_assert(ed_http_variable_known("upstream_response_time", 22));
    ck_assert(!ed_http_variable_known("upstream_nosuch", 15));
    ck_assert_ptr_null(var(r, "upstream_addr"));
    ck_tpl(r, "[$upstream_addr|$upstream_status]", "[|]");

    st = ed_pcalloc(r->pool, sizeof(*st));
    ck_assert_ptr_nonnull(st);
    ed_str_set(&st->tries[0].addr, "127.0.0.1:81");
    st->tries[0].status = 0;
    st->tries[0].msec = 1234;
    ed_str_set(&st->tries[1].addr, "unix:/s");
    st->tries[1].status = 200;
    st->tries[1].msec = 5;
    st->ntries = 2;
    r->upstream = st;
    ck_assert_str_eq(var(r, "upstream_addr"), "127.0.0.1:81, unix:/s");
    ck_tpl(r, "$upstream_status;${upstream_response_time}",
           "502, 200;1.234, 0.005");
}
END_TEST

Suite *
ed_test_http_template_suite(void)
{
    Suite *s = suite_create("http_template");
    TCase *tc;

    tc = tcase_create("compile");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, setup_conf, ed_test_http_teardown);
    tcase_add_test(tc, test_literals);
    tcase_add_test(tc, test_simple_variables);
    tcase_add_test(tc, test_braces);
    tcase_add_test(tc, test_adjacent);
    tcase_add_test(tc, test_dollar_literal);
    tcase_add_test(tc, test_compile_errors);
    tcase_add_test(tc, test_unknown_names);
    tcase_add_test(tc, test_many_parts);
    suite_add_tcase(s, tc);

    tc = tcase_create("variables");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, setup_conf, ed_test_http_teardown);
    tcase_add_test(tc, test_http_headers);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_cookies);
    tcase_add_test(tc, test_captures);
    tcase_add_test(tc, test_server_name_captures);
    tcase_add_test(tc, test_unknown_empty);
    tcase_add_test(tc, test_host_without_header);
    tcase_add_test(tc, test_variable_known);
    tcase_add_test(tc, test_module_variables);
    suite_add_tcase(s, tc);
    return s;
}
