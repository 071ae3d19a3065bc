/* Unit tests for the YAML loader, key dispatch, setters, defaults and
 * inheritance (src/core/ed_conf.c, ed_conf_yaml.c, ed_module.c). */
#include "ed_core.h"
#include "ed_conf.h"
#include "ed_module.h"

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>

/* A pool and a conf per test; fork mode gives each test a process. */
static ed_pool_t *pool;
static ed_conf_t *cf;
static char tmpdir[64];

static void
setup(void)
{
    pool = ed_pool_create(4096);
    ck_assert_ptr_nonnull(pool);
    cf = ed_pcalloc(pool, sizeof(ed_conf_t));
    ck_assert_ptr_nonnull(cf);
    cf->pool = pool;
    cf->prefix = "/srv/eddy";
    cf->ctx = ED_CTX_MAIN;
    cf->ctx_name = "main level";
    tmpdir[0] = '\0';
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    ed_unused(st);
    ed_unused(flag);
    ed_unused(ftw);
    return remove(path);
}

static void
teardown(void)
{
    ed_conf_modules_override = NULL;
    if (tmpdir[0]) {
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    ed_pool_destroy(pool);
}

static ed_node_t *
load(const char *yaml)
{
    return ed_conf_load_string(cf, "t.yaml", yaml, strlen(yaml));
}

/* Creates the temporary directory for include tests. */
static const char *
mktmp(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ed_conf_test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    return tmpdir;
}

/* Writes tmpdir/rel, creating one level of directory if needed; returns
 * the full path in the pool. */
static char *
put(const char *rel, const char *content)
{
    char path[PATH_MAX], *slash;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    return ed_pstrdup(pool, path, strlen(path));
}

static char *
path_of(const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    return ed_pstrdup(pool, path, strlen(path));
}

/* The keys of a map, joined with spaces, for order checks. */
static const char *
keys_of(const ed_node_t *map)
{
    static char buf[512];
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < map->n && n < sizeof(buf); i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "",
                              map->items[2 * i]->value.data);
    }
    return buf;
}

/* A test module table: a main-level module and an http-like one whose
 * location struct exists at main, server and location level. */

typedef struct {
    int workers;
    ed_msec_t shutdown_timeout;
    int daemon;
} t_main_conf_t;

typedef struct {
    ed_str_t root;
    size_t body;
    ed_msec_t keepalive;
    int tokens;
    ed_array_t *index;
    int mode;
    ed_str_t name;
} t_loc_conf_t;

static const ed_conf_bounds_t t_workers_bounds = {1, 64};

static const ed_conf_enum_t t_modes[] = {
    {"fast", 1}, {"safe", 2}, {"slow", 3}, {NULL, 0}};

static const ed_key_t t_main_keys[] = {
    {"workers", ED_CTX_MAIN, ED_KEY_INT, ed_conf_set_int, ED_CONF_MAIN,
     offsetof(t_main_conf_t, workers), &t_workers_bounds, "1"},
    {"shutdown_timeout", ED_CTX_MAIN, ED_KEY_MSEC, ed_conf_set_msec,
     ED_CONF_MAIN, offsetof(t_main_conf_t, shutdown_timeout), NULL, "10s"},
    {"daemon", ED_CTX_MAIN, ED_KEY_INT, ed_conf_set_bool, ED_CONF_MAIN,
     offsetof(t_main_conf_t, daemon), NULL, "off"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

#define T_LKEY(name, ctx, flags, set, field, arg, def)                         \
    {                                                                          \
        name, ctx, flags, set, ED_CONF_LOC, offsetof(t_loc_conf_t, field),     \
            arg, def                                                           \
    }

static const ed_key_t t_http_keys[] = {
    T_LKEY("root", ED_CTX_ANY_HTTP, ED_KEY_STR | ED_KEY_INHERIT,
           ed_conf_set_path, root, NULL, "html"),
    T_LKEY("client_max_body_size", ED_CTX_ANY_HTTP,
           ED_KEY_SIZE | ED_KEY_INHERIT, ed_conf_set_size, body, NULL, "1m"),
    T_LKEY("keepalive_timeout", ED_CTX_ANY_HTTP, ED_KEY_MSEC | ED_KEY_INHERIT,
           ed_conf_set_msec, keepalive, NULL, "75s"),
    T_LKEY("server_tokens", ED_CTX_ANY_HTTP, ED_KEY_INT | ED_KEY_INHERIT,
           ed_conf_set_bool, tokens, NULL, "true"),
    T_LKEY("index", ED_CTX_LOCATION, ED_KEY_PTR, ed_conf_set_str_list, index,
           NULL, NULL),
    T_LKEY("mode", ED_CTX_LOCATION, ED_KEY_INT, ed_conf_set_enum, mode, t_modes,
           "safe"),
    T_LKEY("name", ED_CTX_SERVER, ED_KEY_STR, ed_conf_set_str, name, NULL,
           NULL),
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static ed_module_t t_main_module = {
    .name = "t_main",
    .keys = t_main_keys,
    .conf_size = {[ED_CONF_MAIN] = sizeof(t_main_conf_t)},
};

static ed_module_t t_http_module = {
    .name = "t_http",
    .keys = t_http_keys,
    .conf_size = {[ED_CONF_LOC] = sizeof(t_loc_conf_t)},
};

static ed_module_t *t_modules[] = {&t_main_module, &t_http_module, NULL};

/* Structs of the test modules, indexed like cf->confs. */
static void *t_main[2], *t_loc[2];

static void
use_test_modules(void)
{
    ed_conf_modules_override = t_modules;
    ed_modules_init();
    ck_assert_uint_eq(ed_modules_n, 2);
    ck_assert_uint_eq(t_http_module.index, 1);
    t_main[0] = ed_conf_create(cf, &t_main_module, ED_CONF_MAIN);
    t_main[1] = NULL;
    t_loc[0] = NULL;
    t_loc[1] = ed_conf_create(cf, &t_http_module, ED_CONF_LOC);
    ck_assert_ptr_nonnull(t_main[0]);
    ck_assert_ptr_nonnull(t_loc[1]);
    cf->confs[ED_CONF_MAIN] = t_main;
    cf->confs[ED_CONF_LOC] = t_loc;
}

/* Scalar parsers. */

START_TEST(test_parse_size)
{
    ck_assert_int_eq(ed_conf_parse_size("512", 3), 512);
    ck_assert_int_eq(ed_conf_parse_size("0", 1), 0);
    ck_assert_int_eq(ed_conf_parse_size("16k", 3), 16384);
    ck_assert_int_eq(ed_conf_parse_size("16K", 3), 16384);
    ck_assert_int_eq(ed_conf_parse_size("8m", 2), 8 << 20);
    ck_assert_int_eq(ed_conf_parse_size("1g", 2), 1 << 30);
    ck_assert_int_eq(ed_conf_parse_size("3G", 2), 3LL << 30);
    ck_assert_int_eq(ed_conf_parse_size("", 0), -1);
    ck_assert_int_eq(ed_conf_parse_size("k", 1), -1);
    ck_assert_int_eq(ed_conf_parse_size("-1", 2), -1);
    ck_assert_int_eq(ed_conf_parse_size("-1k", 3), -1);
    ck_assert_int_eq(ed_conf_parse_size("1.5m", 4), -1);
    ck_assert_int_eq(ed_conf_parse_size("16kb", 4), -1);
    ck_assert_int_eq(ed_conf_parse_size("1t", 2), -1);
    ck_assert_int_eq(ed_conf_parse_size(" 1", 2), -1);
    ck_assert_int_eq(ed_conf_parse_size("9223372036854775807", 19), INT64_MAX);
    ck_assert_int_eq(ed_conf_parse_size("9223372036854775808", 19), -1);
    ck_assert_int_eq(ed_conf_parse_size("9007199254740992k", 17), -1);
    ck_assert_int_eq(ed_conf_parse_size("8589934592g", 11), -1);
}
END_TEST

START_TEST(test_parse_msec)
{
    ck_assert_int_eq(ed_conf_parse_msec("250ms", 5), 250);
    ck_assert_int_eq(ed_conf_parse_msec("10s", 3), 10000);
    ck_assert_int_eq(ed_conf_parse_msec("5m", 2), 300000);
    ck_assert_int_eq(ed_conf_parse_msec("1h", 2), 3600000);
    ck_assert_int_eq(ed_conf_parse_msec("1d", 2), 86400000);
    ck_assert_int_eq(ed_conf_parse_msec("75", 2), 75000);
    ck_assert_int_eq(ed_conf_parse_msec("0", 1), 0);
    ck_assert_int_eq(ed_conf_parse_msec("1m30s", 5), 90000);
    ck_assert_int_eq(ed_conf_parse_msec("", 0), -1);
    ck_assert_int_eq(ed_conf_parse_msec("s", 1), -1);
    ck_assert_int_eq(ed_conf_parse_msec("ms", 2), -1);
    ck_assert_int_eq(ed_conf_parse_msec("-1s", 3), -1);
    ck_assert_int_eq(ed_conf_parse_msec("10x", 3), -1);
    ck_assert_int_eq(ed_conf_parse_msec("10 s", 4), -1);
    ck_assert_int_eq(ed_conf_parse_msec("1s5", 3), -1);
    ck_assert_int_eq(ed_conf_parse_msec("1.5s", 4), -1);
    ck_assert_int_eq(ed_conf_parse_msec("9223372036854775807", 19), -1);
    ck_assert_int_eq(ed_conf_parse_msec("9223372036854775d", 17), -1);
}
END_TEST

START_TEST(test_parse_bool)
{
    ck_assert_int_eq(ed_conf_parse_bool("true", 4), 1);
    ck_assert_int_eq(ed_conf_parse_bool("on", 2), 1);
    ck_assert_int_eq(ed_conf_parse_bool("yes", 3), 1);
    ck_assert_int_eq(ed_conf_parse_bool("True", 4), 1);
    ck_assert_int_eq(ed_conf_parse_bool("false", 5), 0);
    ck_assert_int_eq(ed_conf_parse_bool("off", 3), 0);
    ck_assert_int_eq(ed_conf_parse_bool("no", 2), 0);
    ck_assert_int_eq(ed_conf_parse_bool("1", 1), -1);
    ck_assert_int_eq(ed_conf_parse_bool("", 0), -1);
    ck_assert_int_eq(ed_conf_parse_bool("yess", 4), -1);
    ck_assert_int_eq(ed_conf_parse_bool("tru", 3), -1);
}
END_TEST

/* Setters through ed_conf_apply_keys with a local table. */

typedef struct {
    int n;
    int flag;
    int mode;
    size_t size;
    ed_msec_t time;
    ed_str_t s;
    ed_str_t path;
    ed_array_t *list;
    int small; /* a size stored in an int field */
    int neg;
} t_block_t;

static const ed_conf_bounds_t t_port_bounds = {1, 65535};
static const ed_conf_bounds_t t_neg_bounds = {-10, 10};
static const ed_conf_bounds_t t_size_bounds = {256, 1048576};
static const ed_conf_bounds_t t_time_bounds = {1000, 3600000};

#define T_BKEY(name, flags, set, field, arg)                                   \
    {                                                                          \
        name, ED_CTX_MAIN, flags, set, ED_CONF_MAIN,                           \
            offsetof(t_block_t, field), arg, NULL                              \
    }

static const ed_key_t t_block_keys[] = {
    T_BKEY("port", ED_KEY_INT, ed_conf_set_int, n, &t_port_bounds),
    T_BKEY("flag", ED_KEY_INT, ed_conf_set_bool, flag, NULL),
    T_BKEY("mode", ED_KEY_INT, ed_conf_set_enum, mode, t_modes),
    T_BKEY("size", ED_KEY_SIZE, ed_conf_set_size, size, NULL),
    T_BKEY("bounded_size", ED_KEY_SIZE, ed_conf_set_size, size, &t_size_bounds),
    T_BKEY("time", ED_KEY_MSEC, ed_conf_set_msec, time, NULL),
    T_BKEY("bounded_time", ED_KEY_MSEC, ed_conf_set_msec, time, &t_time_bounds),
    T_BKEY("str", ED_KEY_STR, ed_conf_set_str, s, NULL),
    T_BKEY("path", ED_KEY_STR, ed_conf_set_path, path, NULL),
    T_BKEY("list", ED_KEY_PTR, ed_conf_set_str_list, list, NULL),
    T_BKEY("small", ED_KEY_INT, ed_conf_set_size, small, NULL),
    T_BKEY("count", ED_KEY_INT, ed_conf_set_int, neg, NULL),
    T_BKEY("offset", ED_KEY_INT, ed_conf_set_int, neg, &t_neg_bounds),
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

/* Applies one YAML map to a fresh block; returns the result. */
static int
apply_block(const char *yaml, t_block_t *b)
{
    ed_node_t *root;

    memset(b, 0, sizeof(*b));
    ed_conf_init_keys(t_block_keys, b);
    root = load(yaml);
    ck_assert_msg(root != NULL, "load: %s", cf->nerrors ? cf->errors[0] : "");
    return ed_conf_apply_keys(cf, root, t_block_keys, b, "block");
}

START_TEST(test_set_good)
{
    t_block_t b;
    ed_str_t *items;

    ck_assert_int_eq(apply_block("port: 8080\nflag: yes\nmode: slow\n"
                                 "size: 16k\ntime: 250ms\nstr: hello\n"
                                 "path: logs/x.log\nlist: [a, \"b c\"]\n"
                                 "small: 2m\noffset: -7\n",
                                 &b),
                     ED_OK);
    ck_assert_uint_eq(cf->nerrors, 0);
    ck_assert_int_eq(b.n, 8080);
    ck_assert_int_eq(b.flag, 1);
    ck_assert_int_eq(b.mode, 3);
    ck_assert_uint_eq(b.size, 16384);
    ck_assert_int_eq(b.time, 250);
    ck_assert_str_eq(b.s.data, "hello");
    ck_assert_uint_eq(b.s.len, 5);
    ck_assert_str_eq(b.path.data, "/srv/eddy/logs/x.log");
    ck_assert_uint_eq(b.path.len, strlen("/srv/eddy/logs/x.log"));
    ck_assert_uint_eq(b.list->nelts, 2);
    items = b.list->elts;
    ck_assert_str_eq(items[0].data, "a");
    ck_assert_str_eq(items[1].data, "b c");
    ck_assert_int_eq(b.small, 2 << 20);
    ck_assert_int_eq(b.neg, -7);

    ck_assert_int_eq(apply_block("flag: off\nlist: one\npath: /abs\n"
                                 "time: 10\nstr: ''\nbounded_size: 1m\n",
                                 &b),
                     ED_OK);
    ck_assert_int_eq(b.flag, 0);
    ck_assert_uint_eq(b.list->nelts, 1);
    ck_assert_str_eq(((ed_str_t *)b.list->elts)[0].data, "one");
    ck_assert_str_eq(b.path.data, "/abs");
    ck_assert_int_eq(b.time, 10000);
    ck_assert_ptr_nonnull(b.s.data);
    ck_assert_uint_eq(b.s.len, 0);
    ck_assert_uint_eq(b.size, 1048576);
}
END_TEST

/* Each bad value gives one exact message at the value's position. */
static void
expect_bad(const char *yaml, const char *msg)
{
    t_block_t b;

    cf->nerrors = 0;
    ck_assert_int_eq(apply_block(yaml, &b), ED_ERROR);
    ck_assert_uint_eq(cf->nerrors, 1);
    ck_assert_str_eq(cf->errors[0], msg);
}

START_TEST(test_set_bad)
{
    expect_bad("port: 0\n",
               "t.yaml:1:7: invalid value for \"port\": "
               "\"0\" is out of range: expected an integer from 1 to 65535");
    expect_bad("port: 70000\n",
               "t.yaml:1:7: invalid value for \"port\": "
               "\"70000\" is out of range: expected an integer from 1 to "
               "65535");
    expect_bad("port: 80x\n", "t.yaml:1:7: invalid value for \"port\": "
                              "expected an integer from 1 to 65535");
    expect_bad("port: 99999999999999999999\n",
               "t.yaml:1:7: invalid value "
               "for \"port\": expected an integer from 1 to 65535");
    expect_bad("count: -1\n",
               "t.yaml:1:8: invalid value for \"count\": "
               "\"-1\" is out of range: expected an integer from 0 to "
               "2147483647");
    expect_bad("count: abc\n", "t.yaml:1:8: invalid value for \"count\": "
                               "expected an integer");
    expect_bad("offset: -11\n",
               "t.yaml:1:9: invalid value for \"offset\": "
               "\"-11\" is out of range: expected an integer from -10 to "
               "10");
    expect_bad("flag: maybe\n", "t.yaml:1:7: invalid value for \"flag\": "
                                "expected true or false (or on/off, yes/no)");
    expect_bad("flag:\n", "t.yaml:1:6: invalid value for \"flag\": "
                          "expected true or false (or on/off, yes/no)");
    expect_bad("mode: quick\n", "t.yaml:1:7: invalid value for \"mode\": "
                                "expected one of: fast, safe, slow");
    expect_bad("size: 16q\n", "t.yaml:1:7: invalid value for \"size\": "
                              "expected a size like 512, 16k, 8m or 1g");
    expect_bad("size: -5\n", "t.yaml:1:7: invalid value for \"size\": "
                             "expected a size like 512, 16k, 8m or 1g");
    expect_bad("bounded_size: 2m\n",
               "t.yaml:1:15: invalid value for "
               "\"bounded_size\": \"2m\" is out of range: expected a size "
               "from 256 to 1m");
    expect_bad("time: 5x\n",
               "t.yaml:1:7: invalid value for \"time\": "
               "expected a duration like 250ms, 10s, 5m, 1h or 1d");
    expect_bad("bounded_time: 2h\n",
               "t.yaml:1:15: invalid value for "
               "\"bounded_time\": \"2h\" is out of range: expected a "
               "duration from 1s to 1h");
    expect_bad("small: 4g\n", "t.yaml:1:8: invalid value for \"small\": "
                              "the value is too large");
    expect_bad("size: {a: 1}\n", "t.yaml:1:7: invalid value for \"size\": "
                                 "expected a scalar");
    expect_bad("str: [a]\n", "t.yaml:1:6: invalid value for \"str\": "
                             "expected a scalar");
    expect_bad("str: ~\n", "t.yaml:1:6: invalid value for \"str\": "
                           "expected a string");
    expect_bad("path: ''\n", "t.yaml:1:7: invalid value for \"path\": "
                             "expected a path");
    expect_bad("list: {a: b}\n", "t.yaml:1:7: invalid value for \"list\": "
                                 "expected a list");
    expect_bad("list: [a, [b]]\n", "t.yaml:1:7: invalid value for "
                                   "\"list\": expected a list of strings");
    expect_bad("sise: 1k\n", "t.yaml:1:1: unknown key \"sise\" in block; "
                             "did you mean \"size\"?");
    expect_bad("zzzzzz: 1\n", "t.yaml:1:1: unknown key \"zzzzzz\" in "
                              "block");
}
END_TEST

START_TEST(test_apply_keys_not_map)
{
    t_block_t b;
    ed_node_t *root;

    ed_conf_init_keys(t_block_keys, &b);
    root = load("- a\n- b\n");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(ed_conf_apply_keys(cf, root, t_block_keys, &b, "block"),
                     ED_ERROR);
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:1: expected a mapping for "
                                    "block");
}
END_TEST

/* The loader. */

START_TEST(test_load_tree)
{
    ed_node_t *root, *v;

    root = load("b: 1\na: \"two\"\nc:\n  - x\n  - {y: z}\nd: ~\ne: null\n"
                "f: ''\ng: |\n  text\n");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(root->type, ED_NODE_MAP);
    ck_assert_str_eq(keys_of(root), "b a c d e f g");
    ck_assert_str_eq(root->file, "t.yaml");
    ck_assert_uint_eq(root->line, 1);
    ck_assert_uint_eq(root->col, 1);
    v = ed_conf_get(root, "a");
    ck_assert_str_eq(v->value.data, "two");
    ck_assert_uint_eq(v->quoted, 1);
    ck_assert_uint_eq(v->line, 2);
    ck_assert_uint_eq(v->col, 4);
    ck_assert_uint_eq(ed_conf_get(root, "b")->quoted, 0);
    v = ed_conf_get(root, "c");
    ck_assert_int_eq(v->type, ED_NODE_SEQ);
    ck_assert_uint_eq(v->n, 2);
    ck_assert_uint_eq(v->items[1]->line, 5);
    ck_assert_uint_eq(v->items[1]->col, 5);
    ck_assert_str_eq(ed_conf_get(v->items[1], "y")->value.data, "z");
    v = ed_conf_get(root, "d");
    ck_assert_int_eq(v->type, ED_NODE_SCALAR);
    ck_assert_uint_eq(v->value.len, 0);
    ck_assert_str_eq(v->value.data, "");
    ck_assert_uint_eq(v->quoted, 0);
    ck_assert_uint_eq(ed_conf_get(root, "e")->value.len, 0);
    ck_assert_uint_eq(ed_conf_get(root, "f")->quoted, 1);
    ck_assert_str_eq(ed_conf_get(root, "g")->value.data, "text\n");
    ck_assert_ptr_null(ed_conf_get(root, "zz"));
    ck_assert_ptr_null(ed_conf_get(v, "a"));
    ck_assert_ptr_null(ed_conf_get(NULL, "a"));
}
END_TEST

START_TEST(test_load_empty)
{
    ed_node_t *root;

    root = load("");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(root->type, ED_NODE_MAP);
    ck_assert_uint_eq(root->n, 0);
    root = load("# only a comment\n");
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(root->n, 0);
    root = ed_conf_load_string(cf, "t.yaml", NULL, 0);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(cf->nerrors, 0);
}
END_TEST

START_TEST(test_load_syntax_error)
{
    ck_assert_ptr_null(load("a: 1\n b: 2\n"));
    ck_assert_uint_eq(cf->nerrors, 1);
    ck_assert_str_eq(cf->errors[0],
                     "t.yaml:2:3: YAML syntax error: "
                     "mapping values are not allowed in this context");
    cf->nerrors = 0;
    ck_assert_ptr_null(load("a:\n  - 1\n  b: 2\n"));
    ck_assert_str_eq(cf->errors[0],
                     "t.yaml:3:3: YAML syntax error: did "
                     "not find expected '-' indicator (while parsing a "
                     "block collection at line 2, column 3)");
    cf->nerrors = 0;
    ck_assert_ptr_null(load("k: \"\xff\"\n"));
    ck_assert_str_eq(cf->errors[0], "t.yaml: YAML error: invalid leading "
                                    "UTF-8 octet (#FF) at byte 4");
}
END_TEST

START_TEST(test_load_duplicate)
{
    ck_assert_ptr_null(load("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\na: 2\n"));
    ck_assert_uint_eq(cf->nerrors, 2);
    ck_assert_str_eq(cf->errors[0], "t.yaml:5:3: duplicate key \"c\" "
                                    "(first at line 3)");
    ck_assert_str_eq(cf->errors[1], "t.yaml:6:1: duplicate key \"a\" "
                                    "(first at line 1)");
}
END_TEST

START_TEST(test_load_rejects)
{
    ck_assert_ptr_null(load("a: &x 1\nb: *x\n"));
    ck_assert_str_eq(cf->errors[0], "t.yaml:2:4: YAML aliases are not "
                                    "supported (\"*x\")");
    cf->nerrors = 0;
    ck_assert_ptr_null(load("a: 1\n---\nb: 2\n"));
    ck_assert_str_eq(cf->errors[0], "t.yaml:2:1: only one YAML document is "
                                    "allowed");
    cf->nerrors = 0;
    ck_assert_ptr_null(load("? [a, b]\n: 1\n"));
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:3: expected a scalar key");
}
END_TEST

START_TEST(test_load_depth)
{
    char buf[300];
    size_t i;

    for (i = 0; i < 100; i++) {
        buf[i] = '[';
        buf[100 + i] = ']';
    }
    buf[200] = '\0';
    ck_assert_ptr_null(load(buf));
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:65: nesting deeper than 64 "
                                    "levels");
    cf->nerrors = 0;
    buf[60] = '\0';
    memset(buf + 30, ']', 30);
    ck_assert_ptr_nonnull(load(buf));
}
END_TEST

START_TEST(test_env)
{
    ed_node_t *root;

    setenv("ED_TEST_HOST", "example.org", 1);
    setenv("ED_TEST_EMPTY", "", 1);
    unsetenv("ED_TEST_UNSET");
    root = load("a: http://${env:ED_TEST_HOST}/x\n"
                "b: ${env:ED_TEST_UNSET:-fallback}\n"
                "c: \"${env:ED_TEST_HOST:-no} ${name} $name ${env:"
                "ED_TEST_EMPTY}|\"\n"
                "d: ${env:ED_TEST_EMPTY:-dflt}\n"
                "e: ${env:ED_TEST_UNSET:-}\n"
                "${env:ED_TEST_HOST}: key\n");
    ck_assert_msg(root != NULL, "%s", cf->nerrors ? cf->errors[0] : "");
    ck_assert_str_eq(ed_conf_get(root, "a")->value.data,
                     "http://example.org/x");
    ck_assert_uint_eq(ed_conf_get(root, "a")->value.len,
                      strlen("http://example.org/x"));
    ck_assert_str_eq(ed_conf_get(root, "b")->value.data, "fallback");
    ck_assert_str_eq(ed_conf_get(root, "c")->value.data,
                     "example.org ${name} $name |");
    ck_assert_str_eq(ed_conf_get(root, "d")->value.data, "dflt");
    ck_assert_str_eq(ed_conf_get(root, "e")->value.data, "");
    ck_assert_str_eq(ed_conf_get(root, "example.org")->value.data, "key");

    ck_assert_ptr_null(load("a: 1\nb: x${env:ED_TEST_UNSET}y\n"
                            "c: ${env:ED_TEST_HOST\n"
                            "d: ${env:1X}\n"));
    ck_assert_uint_eq(cf->nerrors, 3);
    ck_assert_str_eq(cf->errors[0],
                     "t.yaml:2:4: environment variable "
                     "\"ED_TEST_UNSET\" is not set (use "
                     "${env:ED_TEST_UNSET:-default} for a default)");
    ck_assert_str_eq(cf->errors[1],
                     "t.yaml:3:4: invalid environment "
                     "reference in \"${env:ED_TEST_HOST\": expected "
                     "${env:NAME} or ${env:NAME:-default}");
    ck_assert_str_eq(cf->errors[2],
                     "t.yaml:4:4: invalid environment "
                     "reference in \"${env:1X}\": expected ${env:NAME} or "
                     "${env:NAME:-default}");
}
END_TEST

/* Includes. */

/* nginx's names: what eddy calls them, instead of a guess. */
START_TEST(test_nginx_hint)
{
    char buf[256];

    ck_assert_str_eq(ed_conf_nginx_hint("server_name", 0, buf, sizeof(buf)),
                     "eddy calls it \"names\"");
    ck_assert_str_eq(ed_conf_nginx_hint("proxy_pass", 0, buf, sizeof(buf)),
                     "eddy calls it \"proxy.pass\" (proxy: {pass: ...})");
    ck_assert_str_eq(ed_conf_nginx_hint("location", 0, buf, sizeof(buf)),
                     "eddy calls it a key of \"locations\"");
    ck_assert_str_eq(ed_conf_nginx_hint("sendfile", 0, buf, sizeof(buf)),
                     "sendfile is always on in eddy");
    ck_assert_str_eq(ed_conf_nginx_hint("deny", 0, buf, sizeof(buf)),
                     "eddy calls it \"access\" (access: [{allow: ...}, "
                     "{deny: all}])");
    ck_assert_ptr_null(ed_conf_nginx_hint("roots", 0, buf, sizeof(buf)));
    ck_assert_ptr_null(ed_conf_nginx_hint("names", 0, buf, sizeof(buf)));
}
END_TEST

START_TEST(test_include_main)
{
    ed_node_t *root;
    char *main_file;

    mktmp();
    main_file = put("eddy.yaml", "a: 1\ninclude: conf.d/*.yaml\nz: 2\n"
                                 "include: [other/none-*.yaml, one.yaml]\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    /* A key can appear once, include included. */
    ck_assert_str_eq(cf->errors[0] + strlen(tmpdir) + 1,
                     "eddy.yaml:4:1: duplicate key \"include\" (first at "
                     "line 2)");

    cf->nerrors = 0;
    main_file = put("eddy.yaml", "a: 1\ninclude: [conf.d/*.yaml, "
                                 "other/none-*.yaml, one.yaml]\nz: 2\n");
    put("conf.d/20-c.yaml", "c: 3\nd: 4\n");
    put("conf.d/10-b.yaml", "b: 2\n");
    put("conf.d/30-empty.yaml", "");
    put("conf.d/ignored.txt", "x: 1\n");
    put("one.yaml", "o: 1\ninclude: nested/n.yaml\n");
    put("nested/n.yaml", "n: 1\n");
    root = ed_conf_load(cf, main_file);
    ck_assert_msg(root != NULL, "%s", cf->nerrors ? cf->errors[0] : "");
    ck_assert_str_eq(keys_of(root), "a b c d o n z");
    ck_assert_str_eq(ed_conf_get(root, "c")->file, path_of("conf.d/20-c.yaml"));
    ck_assert_uint_eq(ed_conf_get(root, "d")->line, 2);
}
END_TEST

START_TEST(test_include_errors)
{
    char *main_file;

    mktmp();
    main_file = put("eddy.yaml", "a: 1\ninclude: conf.d/*.yaml\n"
                                 "include_x: 1\n");
    put("conf.d/1.yaml", "b: 1\n");
    put("conf.d/2.yaml", "a: 2\nc: [\n");
    put("conf.d/3.yaml", "b: 3\n");
    put("conf.d/4.yaml", "- not a map\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_uint_eq(cf->nerrors, 3);
    /* The syntax error and the duplicate name the included file. */
    ck_assert_str_eq(cf->errors[0] + strlen(tmpdir) + 1,
                     "conf.d/2.yaml:3:1: "
                     "YAML syntax error: did not find expected node content "
                     "(while parsing a flow node at line 3, column 1)");
    ck_assert_msg(strstr(cf->errors[1], "/conf.d/3.yaml:1:1: duplicate key "
                                        "\"b\" (already set at ")
                      != NULL,
                  "%s", cf->errors[1]);
    ck_assert_msg(strstr(cf->errors[1], "/conf.d/1.yaml:1:1)") != NULL, "%s",
                  cf->errors[1]);
    ck_assert_str_eq(cf->errors[2] + strlen(tmpdir) + 1,
                     "conf.d/4.yaml:1:1: "
                     "an included file here must hold a mapping");

    cf->nerrors = 0;
    main_file = put("eddy.yaml", "include: missing.yaml\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_uint_eq(cf->nerrors, 1);
    ck_assert_msg(strstr(cf->errors[0], "/eddy.yaml:1:10: cannot open "
                                        "include \"")
                      != NULL,
                  "%s", cf->errors[0]);
    ck_assert_msg(strstr(cf->errors[0], "/missing.yaml\": No such file or "
                                        "directory")
                      != NULL,
                  "%s", cf->errors[0]);

    cf->nerrors = 0;
    main_file = put("eddy.yaml", "include: conf.d\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_msg(strstr(cf->errors[0], "/conf.d\" is not a regular file")
                      != NULL,
                  "%s", cf->errors[0]);

    cf->nerrors = 0;
    main_file = put("eddy.yaml", "include: {a: b}\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_str_eq(cf->errors[0] + strlen(tmpdir) + 1,
                     "eddy.yaml:1:10: "
                     "expected a file pattern or a list of them");

    cf->nerrors = 0;
    main_file = put("eddy.yaml", "include: eddy.yaml\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_uint_eq(cf->nerrors, 1);
    ck_assert_str_eq(cf->errors[0] + strlen(tmpdir) + 1,
                     "eddy.yaml:1:10: "
                     "includes nested deeper than 8 levels (does a file "
                     "include itself?)");

    cf->nerrors = 0;
    ck_assert_ptr_null(ed_conf_load(cf, path_of("nope.yaml")));
    ck_assert_str_eq(cf->errors[0] + strlen("cannot open \"") + strlen(tmpdir),
                     "/nope.yaml\": No such file or directory");
}
END_TEST

START_TEST(test_include_servers)
{
    ed_node_t *root, *servers, *ups;
    char *main_file;

    mktmp();
    main_file = put("eddy.yaml", "servers:\n"
                                 "  - {listen: 1}\n"
                                 "  - include: servers.d/*.yaml\n"
                                 "  - {listen: 9, include: kept-as-is}\n"
                                 "  - include: none/*.yaml\n"
                                 "upstreams:\n"
                                 "  a: {keepalive: 1}\n"
                                 "  include: [ups.d/*.yaml]\n");
    put("servers.d/1.yaml", "listen: 2\n");
    put("servers.d/2.yaml", "- listen: 3\n- listen: 4\n"
                            "- include: ../more/*.yaml\n");
    put("more/m.yaml", "listen: 5\n");
    put("ups.d/b.yaml", "b: {keepalive: 2}\nc: {}\n");
    root = ed_conf_load(cf, main_file);
    ck_assert_msg(root != NULL, "%s", cf->nerrors ? cf->errors[0] : "");
    servers = ed_conf_get(root, "servers");
    ck_assert_uint_eq(servers->n, 6);
    ck_assert_str_eq(ed_conf_get(servers->items[0], "listen")->value.data, "1");
    ck_assert_str_eq(ed_conf_get(servers->items[1], "listen")->value.data, "2");
    ck_assert_str_eq(servers->items[1]->file, path_of("servers.d/1.yaml"));
    ck_assert_str_eq(ed_conf_get(servers->items[2], "listen")->value.data, "3");
    ck_assert_str_eq(ed_conf_get(servers->items[3], "listen")->value.data, "4");
    ck_assert_str_eq(ed_conf_get(servers->items[4], "listen")->value.data, "5");
    ck_assert_str_eq(ed_conf_get(servers->items[5], "listen")->value.data, "9");
    ups = ed_conf_get(root, "upstreams");
    ck_assert_str_eq(keys_of(ups), "a b c");

    cf->nerrors = 0;
    put("servers.d/3.yaml", "plain scalar\n");
    put("ups.d/c.yaml", "a: {}\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_uint_eq(cf->nerrors, 2);
    ck_assert_str_eq(cf->errors[0] + strlen(tmpdir) + 1,
                     "servers.d/3.yaml:"
                     "1:1: an included file here must hold a server (a "
                     "mapping) or a list of servers");
    ck_assert_msg(strstr(cf->errors[1], "/ups.d/c.yaml:1:1: duplicate key "
                                        "\"a\" (first at ")
                      != NULL,
                  "%s", cf->errors[1]);
}
END_TEST

/* The loader expands includes in the values of main-level keys that ask
 * for it by a flag, whatever module declares them. */
static const ed_key_t t_inc_keys[] = {
    {"widgets", ED_CTX_MAIN, ED_KEY_PTR | ED_KEY_INCLUDE_ITEMS,
     ed_conf_set_node, ED_CONF_MAIN, 0, NULL, NULL},
    {"gadgets", ED_CTX_MAIN, ED_KEY_PTR | ED_KEY_INCLUDE_KEYS,
     ed_conf_set_node, ED_CONF_MAIN, 0, NULL, NULL},
    {"plain", ED_CTX_MAIN, ED_KEY_PTR, ed_conf_set_node, ED_CONF_MAIN, 0,
     NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static ed_module_t t_inc_module = {
    .name = "t_inc",
    .keys = t_inc_keys,
    .conf_size = {[ED_CONF_MAIN] = sizeof(void *)},
};

static ed_module_t *t_inc_modules[] = {&t_main_module, &t_inc_module, NULL};

START_TEST(test_include_key_flags)
{
    ed_node_t *root, *v;
    char *main_file;

    mktmp();
    ed_conf_modules_override = t_inc_modules;
    main_file = put("eddy.yaml", "widgets:\n"
                                 "  - {id: 1}\n"
                                 "  - include: w.d/*.yaml\n"
                                 "gadgets:\n"
                                 "  a: 1\n"
                                 "  include: g.yaml\n"
                                 "plain:\n"
                                 "  - include: kept.yaml\n"
                                 "servers:\n"
                                 "  - include: kept-too.yaml\n");
    put("w.d/1.yaml", "- id: 2\n- id: 3\n");
    put("w.d/2.yaml", "id: 4\n");
    put("g.yaml", "b: 2\n");
    root = ed_conf_load(cf, main_file);
    ck_assert_msg(root != NULL, "%s", cf->nerrors ? cf->errors[0] : "");
    v = ed_conf_get(root, "widgets");
    ck_assert_uint_eq(v->n, 4);
    ck_assert_str_eq(ed_conf_get(v->items[3], "id")->value.data, "4");
    ck_assert_str_eq(keys_of(ed_conf_get(root, "gadgets")), "a b");
    /* No flag, no expansion: not "plain", and not "servers" either when
     * no module of the table declares it. */
    v = ed_conf_get(root, "plain");
    ck_assert_str_eq(keys_of(v->items[0]), "include");
    v = ed_conf_get(root, "servers");
    ck_assert_str_eq(keys_of(v->items[0]), "include");

    cf->nerrors = 0;
    put("w.d/3.yaml", "just text\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_uint_eq(cf->nerrors, 1);
    ck_assert_str_eq(cf->errors[0] + strlen(tmpdir) + 1,
                     "w.d/3.yaml:1:1: an included file here must hold a "
                     "widget (a mapping) or a list of widgets");
}
END_TEST

/* At main level, lists of a key flagged ED_KEY_INCLUDE_ITEMS are
 * concatenated and maps of one flagged ED_KEY_INCLUDE_KEYS merged over
 * the main file and its includes, each include standing where it is. */
START_TEST(test_include_merge_main)
{
    ed_node_t *root, *v;
    char *main_file;

    mktmp();
    ed_conf_modules_override = t_inc_modules;
    main_file = put("eddy.yaml", "gadgets: {a: 1}\n"
                                 "include: d/*.yaml\n"
                                 "widgets: [{id: 9}]\n");
    put("d/2.yaml", "widgets: [{id: 3}]\ngadgets: {c: 1, include: g.inc}\n");
    put("d/1.yaml", "widgets: [{id: 1}, {id: 2}]\ngadgets: {b: 1}\n"
                    "include: ../e.yaml\n");
    put("e.yaml", "widgets: [{id: 1.5}]\n");
    put("d/g.inc", "g: 1\n");
    root = ed_conf_load(cf, main_file);
    ck_assert_msg(root != NULL, "%s", cf->nerrors ? cf->errors[0] : "");
    ck_assert_str_eq(keys_of(root), "gadgets widgets");
    v = ed_conf_get(root, "widgets");
    ck_assert_uint_eq(v->n, 5);
    ck_assert_str_eq(ed_conf_get(v->items[0], "id")->value.data, "1");
    ck_assert_str_eq(ed_conf_get(v->items[1], "id")->value.data, "2");
    ck_assert_str_eq(ed_conf_get(v->items[2], "id")->value.data, "1.5");
    ck_assert_str_eq(ed_conf_get(v->items[3], "id")->value.data, "3");
    ck_assert_str_eq(ed_conf_get(v->items[4], "id")->value.data, "9");
    ck_assert_str_eq(keys_of(ed_conf_get(root, "gadgets")), "a b c g");

    cf->nerrors = 0;
    put("d/2.yaml", "gadgets: {b: 2}\nplain: 1\n");
    put("e.yaml", "plain: 2\n");
    ck_assert_ptr_null(ed_conf_load(cf, main_file));
    ck_assert_uint_eq(cf->nerrors, 2);
    ck_assert_msg(strstr(cf->errors[0], "/d/2.yaml:1:11: gadget \"b\" is "
                                        "defined twice (first at ")
                      && strstr(cf->errors[0], "/d/1.yaml:2:11)"),
                  "%s", cf->errors[0]);
    ck_assert_msg(strstr(cf->errors[1], "/d/2.yaml:2:1: duplicate key "
                                        "\"plain\" (already set at ")
                      && strstr(cf->errors[1], "/e.yaml:1:1)"),
                  "%s", cf->errors[1]);
}
END_TEST

START_TEST(test_include_disabled)
{
    cf->no_include = 1;
    ck_assert_ptr_null(load("include: x.yaml\n"));
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:10: include is disabled "
                                    "here");
}
END_TEST

/* Dispatch through the module table. */

START_TEST(test_module_find_key)
{
    ed_module_t *m;
    const ed_key_t *k;

    use_test_modules();
    k = ed_module_find_key("root", ED_CTX_LOCATION, &m);
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->name, "root");
    ck_assert_ptr_eq(m, &t_http_module);
    k = ed_module_find_key("workers", ED_CTX_LOCATION, &m);
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_eq(m, &t_main_module);
    ck_assert_ptr_null(ed_module_find_key("nope", ED_CTX_MAIN, &m));
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(ed_module_find_key("index", ED_CTX_MAIN, NULL));
}
END_TEST

START_TEST(test_apply)
{
    t_main_conf_t *mc;
    t_loc_conf_t *lc;
    ed_node_t *root;

    use_test_modules();
    root = load("workers: 4\nshutdown_timeout: 1m\nroot: www\n");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_OK);
    mc = t_main[0];
    lc = t_loc[1];
    ck_assert_int_eq(mc->workers, 4);
    ck_assert_int_eq(mc->shutdown_timeout, 60000);
    ck_assert_int_eq(mc->daemon, ED_CONF_UNSET);
    ck_assert_str_eq(lc->root.data, "/srv/eddy/www");
    ck_assert_ptr_null(lc->index);
    ck_assert_int_eq(lc->mode, ED_CONF_UNSET);
}
END_TEST

START_TEST(test_apply_errors)
{
    ed_node_t *root;

    use_test_modules();
    cf->ctx = ED_CTX_LOCATION;
    cf->ctx_name = "location \"/\"";
    root = load("roots: html\nworkers: 4\nindex: [a]\nmode: turbo\n"
                "server_tokns: on\nclient_max_body_size: 1x\n"
                "qqqqqqqq: 1\nname: x\n");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_ERROR);
    ck_assert_uint_eq(cf->nerrors, 7);
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:1: unknown key \"roots\" in "
                                    "location \"/\"; did you mean \"root\"?");
    ck_assert_str_eq(cf->errors[1],
                     "t.yaml:2:1: key \"workers\" is not "
                     "allowed in location \"/\" (allowed in: main level)");
    ck_assert_str_eq(cf->errors[2], "t.yaml:4:7: invalid value for \"mode\": "
                                    "expected one of: fast, safe, slow");
    ck_assert_str_eq(cf->errors[3],
                     "t.yaml:5:1: unknown key "
                     "\"server_tokns\" in location \"/\"; did you mean "
                     "\"server_tokens\"?");
    ck_assert_str_eq(cf->errors[4],
                     "t.yaml:6:23: invalid value for "
                     "\"client_max_body_size\": expected a size like 512, "
                     "16k, 8m or 1g");
    ck_assert_str_eq(cf->errors[5], "t.yaml:7:1: unknown key \"qqqqqqqq\" "
                                    "in location \"/\"");
    ck_assert_str_eq(cf->errors[6],
                     "t.yaml:8:1: key \"name\" is not "
                     "allowed in location \"/\" (allowed in: server)");

    /* "workers" is not suggested in a location: it is not allowed there. */
    cf->nerrors = 0;
    root = load("worker: 1\n");
    ed_conf_apply(cf, root);
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:1: unknown key \"worker\" in "
                                    "location \"/\"");

    cf->nerrors = 0;
    cf->ctx = ED_CTX_MAIN;
    cf->ctx_name = NULL;
    root = load("workers: 100\n");
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_ERROR);
    ck_assert_str_eq(cf->errors[0],
                     "t.yaml:1:10: invalid value for "
                     "\"workers\": \"100\" is out of range: expected an "
                     "integer from 1 to 64");
    cf->nerrors = 0;
    root = load("- 1\n");
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_ERROR);
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:1: expected a mapping in main "
                                    "level");
}
END_TEST

START_TEST(test_error_limit)
{
    char yaml[1024];
    size_t n, i;
    ed_node_t *root;

    use_test_modules();
    n = 0;
    for (i = 0; i < 15; i++) {
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "bad%zu: 1\n", i);
    }
    root = load(yaml);
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_ERROR);
    ck_assert_uint_eq(cf->nerrors, 15);
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:1: unknown key \"bad0\" in "
                                    "main level");
    ck_assert_str_eq(cf->errors[ED_CONF_MAX_ERRORS - 1],
                     "t.yaml:10:1: "
                     "unknown key \"bad9\" in main level");
    ck_assert_int_eq(ed_conf_error(cf, NULL, "plain %d", 1), ED_ERROR);
    ck_assert_uint_eq(cf->nerrors, 16);
}
END_TEST

START_TEST(test_error_format)
{
    ed_node_t n;

    memset(&n, 0, sizeof(n));
    ed_conf_error(cf, NULL, "no position");
    n.file = "f.yaml";
    ed_conf_error(cf, &n, "file only");
    n.line = 3;
    n.col = 7;
    ed_conf_error(cf, &n, "at %s", "pos");
    n.file = NULL;
    ed_conf_error(cf, &n, "no file");
    ck_assert_str_eq(cf->errors[0], "no position");
    ck_assert_str_eq(cf->errors[1], "f.yaml: file only");
    ck_assert_str_eq(cf->errors[2], "f.yaml:3:7: at pos");
    ck_assert_str_eq(cf->errors[3], "3:7: no file");
}
END_TEST

/* Unset values, defaults and inheritance main -> server -> location. */

START_TEST(test_defaults_merge)
{
    t_loc_conf_t *main_lc, *srv_lc, *loc_lc;
    t_main_conf_t *mc;
    ed_node_t *root;

    use_test_modules();
    mc = t_main[0];
    ck_assert_int_eq(mc->workers, ED_CONF_UNSET);
    ck_assert_int_eq(mc->shutdown_timeout, ED_CONF_UNSET_MSEC);
    main_lc = t_loc[1];
    ck_assert_ptr_null(main_lc->root.data);
    ck_assert_uint_eq(main_lc->body, ED_CONF_UNSET_SIZE);
    ck_assert_int_eq(main_lc->keepalive, ED_CONF_UNSET_MSEC);
    ck_assert_ptr_null(main_lc->index);
    srv_lc = ed_conf_create(cf, &t_http_module, ED_CONF_LOC);
    loc_lc = ed_conf_create(cf, &t_http_module, ED_CONF_LOC);
    ck_assert_ptr_null(ed_conf_create(cf, &t_http_module, ED_CONF_SRV));

    /* main sets the body size, the server the keep-alive, the location
     * turns server tokens off and picks a mode. */
    root = load("client_max_body_size: 2m\nworkers: 3\n");
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_OK);
    cf->ctx = ED_CTX_SERVER;
    t_loc[1] = srv_lc;
    root = load("keepalive_timeout: 5s\nroot: /srv\n");
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_OK);
    cf->ctx = ED_CTX_LOCATION;
    t_loc[1] = loc_lc;
    root = load("server_tokens: off\nmode: fast\n");
    ck_assert_int_eq(ed_conf_apply(cf, root), ED_OK);

    ck_assert_int_eq(ed_conf_defaults(cf, t_main_keys, ED_CONF_MAIN, mc),
                     ED_OK);
    ck_assert_int_eq(mc->workers, 3);
    ck_assert_int_eq(mc->shutdown_timeout, 10000);
    ck_assert_int_eq(mc->daemon, 0);
    /* Defaults at the top, then inheritance carries them down. */
    ck_assert_int_eq(ed_conf_defaults(cf, t_http_keys, ED_CONF_LOC, main_lc),
                     ED_OK);
    ck_assert_str_eq(main_lc->root.data, "/srv/eddy/html");
    ck_assert_int_eq(main_lc->keepalive, 75000);
    ck_assert_int_eq(main_lc->tokens, 1);
    ed_conf_merge(t_http_keys, ED_CONF_LOC, main_lc, srv_lc);
    ed_conf_merge(t_http_keys, ED_CONF_LOC, srv_lc, loc_lc);
    /* The other level's keys are not touched. */
    ed_conf_merge(t_http_keys, ED_CONF_MAIN, srv_lc, loc_lc);
    ck_assert_uint_eq(srv_lc->body, 2 << 20);
    ck_assert_uint_eq(loc_lc->body, 2 << 20);
    ck_assert_int_eq(srv_lc->keepalive, 5000);
    ck_assert_int_eq(loc_lc->keepalive, 5000);
    ck_assert_str_eq(loc_lc->root.data, "/srv");
    ck_assert_int_eq(srv_lc->tokens, 1);
    ck_assert_int_eq(loc_lc->tokens, 0);
    /* Not inheritable: mode stays unset until the location's defaults. */
    ck_assert_int_eq(srv_lc->mode, ED_CONF_UNSET);
    ck_assert_int_eq(loc_lc->mode, 1);
    ck_assert_int_eq(ed_conf_defaults(cf, t_http_keys, ED_CONF_LOC, srv_lc),
                     ED_OK);
    ck_assert_int_eq(srv_lc->mode, 2);
    ck_assert_uint_eq(cf->nerrors, 0);
}
END_TEST

START_TEST(test_bad_default)
{
    static const ed_key_t keys[] = {{"n", ED_CTX_MAIN, ED_KEY_INT,
                                     ed_conf_set_int, ED_CONF_MAIN, 0,
                                     &t_port_bounds, "0"},
                                    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    int n;

    ed_conf_init_keys(keys, &n);
    ck_assert_int_eq(n, ED_CONF_UNSET);
    ck_assert_int_eq(ed_conf_defaults(cf, keys, ED_CONF_MAIN, &n), ED_ERROR);
    ck_assert_str_eq(cf->errors[0],
                     "(default): invalid default \"0\" for "
                     "\"n\": \"0\" is out of range: expected an integer "
                     "from 1 to 65535");
}
END_TEST

/* Block keys: a sub-table of their own, a scalar shorthand, the block
 * merged into the block below it, defaults from main's block. */

typedef struct {
    ed_node_t *node;
    int        on;
    int        level;  /* inherited */
    ed_msec_t  wait;   /* not inherited: a default when made */
} t_blk_t;

typedef struct {
    t_blk_t    *blk;
    ed_array_t *items; /* t_blk_t * */
} t_blk_conf_t;

static const ed_conf_bounds_t t_level_bounds = {1, 9};

static const ed_key_t t_blk_keys[] = {
    {"on", 0, ED_KEY_INT | ED_KEY_INHERIT, ed_conf_set_bool, 0,
     offsetof(t_blk_t, on), NULL, "false"},
    {"level", 0, ED_KEY_INT | ED_KEY_INHERIT, ed_conf_set_int, 0,
     offsetof(t_blk_t, level), &t_level_bounds, "5"},
    {"wait", 0, ED_KEY_MSEC, ed_conf_set_msec, 0, offsetof(t_blk_t, wait),
     NULL, "2s"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const char *
t_blk_scalar(ed_conf_t *c, ed_node_t *node, void *block)
{
    t_blk_t *b = block;

    ed_unused(c);
    b->on = ed_conf_parse_bool(node->value.data, node->value.len);
    return b->on < 0 ? "expected true, false or a mapping" : NULL;
}

static const ed_conf_block_t t_blk = {
    .name = "blk",
    .keys = t_blk_keys,
    .size = sizeof(t_blk_t),
    .scalar = t_blk_scalar,
    .expect = "expected true, false or a mapping",
};

static const ed_conf_block_t t_blk_list = {
    .name = "item",
    .keys = t_blk_keys,
    .size = sizeof(t_blk_t),
    .expect = "expected a mapping",
    .list = 1,
};

static const ed_key_t t_blk_outer[] = {
    {"blk", ED_CTX_MAIN, ED_KEY_BLOCK | ED_KEY_INHERIT, ed_conf_set_block,
     ED_CONF_LOC, offsetof(t_blk_conf_t, blk), &t_blk, "false"},
    {"items", ED_CTX_MAIN, ED_KEY_BLOCK, ed_conf_set_block, ED_CONF_LOC,
     offsetof(t_blk_conf_t, items), &t_blk_list, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static t_blk_conf_t *
t_blk_apply(const char *yaml)
{
    t_blk_conf_t *c = ed_pcalloc(cf->pool, sizeof(t_blk_conf_t));

    ck_assert_ptr_nonnull(c);
    ed_conf_init_keys(t_blk_outer, c);
    ed_conf_apply_keys(cf, load(yaml), t_blk_outer, c, "level");
    return c;
}

START_TEST(test_block_keys)
{
    t_blk_conf_t *m, *s, *l, *none;
    t_blk_t      **items;

    m = t_blk_apply("blk: {level: 9}\n");
    s = t_blk_apply("blk: true\n");
    l = t_blk_apply("blk: {wait: 1s}\n");
    none = t_blk_apply("items: [{on: yes}, {level: 2}]\n");
    ck_assert_uint_eq(cf->nerrors, 0);
    /* Made: its node kept, non-inherited keys defaulted at once. */
    ck_assert_ptr_nonnull(m->blk->node);
    ck_assert_int_eq(m->blk->wait, 2000);
    ck_assert_int_eq(s->blk->on, 1);
    ck_assert_int_eq(s->blk->level, ED_CONF_UNSET);
    /* Main takes its defaults; below, each block takes what it leaves
     * unset from the block above. */
    ck_assert_int_eq(ed_conf_defaults(cf, t_blk_outer, ED_CONF_LOC, m),
                     ED_OK);
    ck_assert_int_eq(m->blk->on, 0);
    ed_conf_merge(t_blk_outer, ED_CONF_LOC, m, s);
    ed_conf_merge(t_blk_outer, ED_CONF_LOC, s, l);
    ck_assert_int_eq(s->blk->level, 9);
    ck_assert_int_eq(l->blk->level, 9);
    ck_assert_int_eq(l->blk->on, 1);
    ck_assert_int_eq(l->blk->wait, 1000);
    ck_assert_int_eq(m->blk->on, 0);  /* the parent is left alone */
    /* A level without the key shares its parent's block. */
    ed_conf_merge(t_blk_outer, ED_CONF_LOC, l, none);
    ck_assert_ptr_eq(none->blk, l->blk);
    /* Main without the key gets one from the key's default. */
    ck_assert_int_eq(ed_conf_defaults(cf, t_blk_outer, ED_CONF_LOC, none),
                     ED_OK);
    ck_assert_ptr_eq(none->blk, l->blk);
    m = t_blk_apply("{}\n");
    ck_assert_int_eq(ed_conf_defaults(cf, t_blk_outer, ED_CONF_LOC, m),
                     ED_OK);
    ck_assert_int_eq(m->blk->on, 0);
    ck_assert_int_eq(m->blk->level, 5);
    /* A list of blocks. */
    ck_assert_uint_eq(none->items->nelts, 2);
    items = none->items->elts;
    ck_assert_int_eq(items[0]->on, 1);
    ck_assert_int_eq(items[1]->level, 2);
    ck_assert_int_eq(items[1]->wait, 2000);
}
END_TEST

START_TEST(test_block_errors)
{
    t_blk_apply("blk: {levl: 2, level: 10, on: maybe, colour: red}\n"
                "items: [{wait: 1s}, 3]\n"
                "blk2: 1\n");
    ck_assert_uint_eq(cf->nerrors, 6);
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:7: unknown key \"levl\" in "
                                    "blk; did you mean \"level\"?");
    ck_assert_str_eq(cf->errors[1], "t.yaml:1:23: invalid value for "
                                    "\"blk.level\": \"10\" is out of "
                                    "range: expected an integer from 1 "
                                    "to 9");
    ck_assert_str_eq(cf->errors[2], "t.yaml:1:31: invalid value for "
                                    "\"blk.on\": expected true or false "
                                    "(or on/off, yes/no)");
    ck_assert_str_eq(cf->errors[3], "t.yaml:1:38: unknown key \"colour\" "
                                    "in blk; expected on, level or wait");
    ck_assert_str_eq(cf->errors[4], "t.yaml:2:21: invalid value for "
                                    "\"items\": expected a mapping");
    ck_assert_str_eq(cf->errors[5], "t.yaml:3:1: unknown key \"blk2\" in "
                                    "level; did you mean \"blk\"?");
    cf->nerrors = 0;
    t_blk_apply("blk: [a]\n");
    ck_assert_str_eq(cf->errors[0], "t.yaml:1:6: invalid value for "
                                    "\"blk\": expected true, false or a "
                                    "mapping");
}
END_TEST

START_TEST(test_conf_path)
{
    ck_assert_str_eq(ed_conf_path(cf, "html"), "/srv/eddy/html");
    ck_assert_str_eq(ed_conf_path(cf, "/etc/x"), "/etc/x");
    cf->prefix = "/p/";
    ck_assert_str_eq(ed_conf_path(cf, "a/b"), "/p/a/b");
    cf->prefix = NULL;
    ck_assert_str_eq(ed_conf_path(cf, "a"), "a");
}
END_TEST

/* The dump reads back as the same tree. */

static int
same(const ed_node_t *a, const ed_node_t *b)
{
    size_t i, n;

    if (a->type != b->type) {
        return 0;
    }
    if (a->type == ED_NODE_SCALAR) {
        return a->value.len == b->value.len
               && memcmp(a->value.data, b->value.data, a->value.len) == 0;
    }
    n = a->type == ED_NODE_MAP ? 2 * a->n : a->n;
    if (a->n != b->n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!same(a->items[i], b->items[i])) {
            return 0;
        }
    }
    return 1;
}

START_TEST(test_dump)
{
    static const char yaml[] =
        "workers: auto\n"
        "a: \"x: y\"\n"
        "b: ~\n"
        "c: ''\n"
        "d: [1, 2, {x: 1, y: [[]]}, [a, b]]\n"
        "\"~ ^/old/(.*)$\": {redirect: {to: \"/new/$1\", status: 301}}\n"
        "e: |\n  two\n  lines\n"
        "f: \"tab\\t \\u2028 \\x01 \\x85 caf\\u00e9 #x\"\n"
        "'- dash': '# hash'\n"
        "g: \"null\"\n"
        "h: \" padded \"\n"
        "i: {}\n"
        "j: '---'\n"
        "k: 'a #b'\n"
        "l: '@at'\n"
        "m: 'end:'\n";
    ed_node_t *root, *again;
    char *buf, longkey[300];
    size_t len;
    FILE *out;

    root = load(yaml);
    ck_assert_msg(root != NULL, "%s", cf->nerrors ? cf->errors[0] : "");
    out = open_memstream(&buf, &len);
    ed_conf_dump(out, root);
    fclose(out);
    ck_assert_msg(strstr(buf, "workers: auto\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "a: \"x: y\"\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "b: ~\nc: \"\"\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "d:\n  - 1\n  - 2\n  - x: 1\n    y:\n"
                              "      - []\n  - - a\n    - b\n")
                      != NULL,
                  "%s", buf);
    ck_assert_msg(strstr(buf, "e: \"two\\nlines\\n\"\n") != NULL, "%s", buf);
    again = ed_conf_load_string(cf, "dump.yaml", buf, len);
    ck_assert_msg(again != NULL, "%s\n%s", buf,
                  cf->nerrors ? cf->errors[0] : "");
    ck_assert_msg(same(root, again), "%s", buf);
    free(buf);

    memset(longkey, 'k', 200);
    memcpy(longkey + 200, ": [v]\n", 7);
    root = load(longkey);
    ck_assert_ptr_nonnull(root);
    out = open_memstream(&buf, &len);
    ed_conf_dump(out, root);
    fclose(out);
    again = ed_conf_load_string(cf, "dump.yaml", buf, len);
    ck_assert_ptr_nonnull(again);
    ck_assert(same(root, again));
    free(buf);
}
END_TEST

Suite *
ed_test_conf_suite(void)
{
    Suite *s;
    TCase *tc;

    s = suite_create("conf");
    tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_parse_size);
    tcase_add_test(tc, test_parse_msec);
    tcase_add_test(tc, test_parse_bool);
    tcase_add_test(tc, test_set_good);
    tcase_add_test(tc, test_set_bad);
    tcase_add_test(tc, test_apply_keys_not_map);
    tcase_add_test(tc, test_load_tree);
    tcase_add_test(tc, test_load_empty);
    tcase_add_test(tc, test_load_syntax_error);
    tcase_add_test(tc, test_load_duplicate);
    tcase_add_test(tc, test_load_rejects);
    tcase_add_test(tc, test_load_depth);
    tcase_add_test(tc, test_env);
    tcase_add_test(tc, test_include_main);
    tcase_add_test(tc, test_nginx_hint);
    tcase_add_test(tc, test_include_merge_main);
    tcase_add_test(tc, test_include_errors);
    tcase_add_test(tc, test_include_servers);
    tcase_add_test(tc, test_include_key_flags);
    tcase_add_test(tc, test_include_disabled);
    tcase_add_test(tc, test_module_find_key);
    tcase_add_test(tc, test_apply);
    tcase_add_test(tc, test_apply_errors);
    tcase_add_test(tc, test_error_limit);
    tcase_add_test(tc, test_error_format);
    tcase_add_test(tc, test_defaults_merge);
    tcase_add_test(tc, test_bad_default);
    tcase_add_test(tc, test_block_keys);
    tcase_add_test(tc, test_block_errors);
    tcase_add_test(tc, test_conf_path);
    tcase_add_test(tc, test_dump);
    suite_add_tcase(s, tc);
    return s;
}
