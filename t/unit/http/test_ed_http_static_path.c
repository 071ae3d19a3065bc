/* Unit tests of static path handling (ed_http_file_cache.c): root and
 * alias mapping, dotfiles, escaping, opening with the symlink policies,
 * the open-file cache, and directory listings. */
#include <check.h>

#include "ed_core.h"
#include "ed_http_file_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

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

typedef struct {
    const char *root;     /* NULL: alias mapping */
    const char *alias;
    const char *prefix;
    const char *uri;
    int         rc;
    const char *path;
    size_t      root_len;
} map_case_t;

#define ROOT(root, uri, path, rl) { root, NULL, "", uri, ED_OK, path, rl }
#define ALIAS(alias, prefix, uri, path, rl)                                  \
    { NULL, alias, prefix, uri, ED_OK, path, rl }
#define ALIAS_NO(alias, prefix, uri) { NULL, alias, prefix, uri, 404, NULL, 0 }

#define ROOT_NO(root, uri) { root, NULL, "", uri, 404, NULL, 0 }

static const map_case_t map_cases[] = {
    ROOT("/srv/www", "/", "/srv/www/", 8),
    ROOT("/srv/www", "/a.html", "/srv/www/a.html", 8),
    ROOT("/srv/www/", "/a.html", "/srv/www/a.html", 8),
    ROOT("/srv/www//", "/d/e/", "/srv/www/d/e/", 8),
    ROOT("/", "/a.html", "/a.html", 0),
    ROOT("html", "/x", "html/x", 4),
    ROOT("/srv/www", "/a..b/c.", "/srv/www/a..b/c.", 8),
    ROOT("/srv/www", "/...", "/srv/www/...", 8),
    /* Aliases ending with '/'. */
    ALIAS("/srv/img/", "/i/", "/i/a.png", "/srv/img/a.png", 8),
    ALIAS("/srv/img/", "/i/", "/i/", "/srv/img/", 8),
    ALIAS("/srv/img/", "/i", "/i/a.png", "/srv/img/a.png", 8),
    ALIAS("/srv/img/", "/i", "/i", "/srv/img", 8),
    ALIAS("/srv/img/", "/i", "/i//a.png", "/srv/img//a.png", 8),
    /* Aliases without a slash. */
    ALIAS("/srv/img", "/i/", "/i/a.png", "/srv/img/a.png", 8),
    ALIAS("/srv/img", "/i/", "/i/", "/srv/img/", 8),
    ALIAS("/srv/img", "/i", "/i/a.png", "/srv/img/a.png", 8),
    ALIAS("/srv/img", "/i", "/i", "/srv/img", 8),
    ALIAS("/", "/i/", "/i/a.png", "/a.png", 0),
    ALIAS("/", "/i", "/i", "/", 0),
    ALIAS("/srv/img/", "/i/", "/i/a..b", "/srv/img/a..b", 8),
    ALIAS("/srv/img/", "/i", "/i/...", "/srv/img/...", 8),
    /* nginx's off-by-slash: a prefix without a trailing slash maps only
     * the URIs that go on at a '/' after it. "/i" + "x" must not become
     * "/srv/imgx" nor "/srv/img/x", nor "/i" + ".." a way out: "/i.."
     * is a normalised URI (the name "i.." is no dot segment), but joined
     * in the middle of a name it would be one. Whatever the alias's
     * spelling. */
    ALIAS_NO("/srv/img", "/i", "/ix"),
    ALIAS_NO("/srv/img/", "/i", "/ix"),
    ALIAS_NO("/srv/img", "/i", "/i.."),
    ALIAS_NO("/srv/img/", "/i", "/i.."),
    ALIAS_NO("/srv/img/", "/i", "/i../"),
    ALIAS_NO("/srv/img/", "/i", "/i../etc/passwd"),
    ALIAS_NO("/srv/img", "/i", "/i../etc/passwd"),
    ALIAS_NO("/srv/img/", "/i", "/i."),
    ALIAS_NO("/srv/img/", "/i", "/i./x"),
    ALIAS_NO("/srv/img/", "/i", "/i..."),
    ALIAS_NO("/srv/img/", "/i", "/i-private/key"),
    ALIAS_NO("/srv/img//", "/i", "/i../x"),
    ALIAS_NO("/", "/i", "/ietc/passwd"),
    /* A rest that was not normalised (a try_files result): no dot
     * segment and no NUL reach the file system, under an alias or a
     * root. */
    ALIAS_NO("/srv/img/", "/i/", "/i/../x"),
    ALIAS_NO("/srv/img/", "/i/", "/i/.."),
    ALIAS_NO("/srv/img/", "/i/", "/i/./x"),
    ALIAS_NO("/srv/img/", "/i/", "/i/a/../../x"),
    ALIAS_NO("/srv/img/", "/i", "/i/.."),
    ALIAS_NO("/srv/img", "/i", "/i//../x"),
    ROOT_NO("/srv/www", "/../x"),
    ROOT_NO("/srv/www", "/a/.."),
    ROOT_NO("/srv/www", "/a/./b"),
    ROOT_NO("/srv/www", "//.."),
    ROOT_NO("/srv/www", "x"),
    ROOT_NO("/srv/www", "-private/x"),
    ROOT_NO("/srv/www", ".."),
    /* Exact locations: the alias is the file. */
    ALIAS("/srv/favicon.ico", "/favicon.ico", "/favicon.ico",
          "/srv/favicon.ico", 16),
    ALIAS_NO("/srv/favicon.ico", "/favicon.ico", "/favicon.ico.."),
    /* A URI outside the prefix (a try_files fallback). */
    ALIAS_NO("/srv/img/", "/i/", "/other"),
    ALIAS_NO("/srv/img/", "/i/", "/"),
    ALIAS_NO("/srv/img/", "/i/", "/i"),
};

/* A NUL inside the rest would cut the path at the C level. */
START_TEST(test_map_nul)
{
    ed_str_t root = ed_string("/srv/www"), alias = ed_string("/srv/img/");
    ed_str_t prefix = ed_string("/i/"), none = ed_null_string, out;
    ed_str_t uri = { 4, (char *)"/a\0b" };
    size_t   rl;

    ck_assert_int_eq(ed_http_map_path(pool, &root, NULL, &none, &uri, 0,
                                      &out, &rl),
                     404);
    uri.data = (char *)"/i/x\0y";
    uri.len = 6;
    ck_assert_int_eq(ed_http_map_path(pool, &root, &alias, &prefix, &uri, 0,
                                      &out, &rl),
                     404);
}
END_TEST

START_TEST(test_map)
{
    const map_case_t *c = &map_cases[_i];
    ed_str_t          root, alias, prefix, uri, out;
    size_t            rl = 99;
    int               rc;

    root.data = (char *)(c->root ? c->root : "");
    root.len = strlen(root.data);
    alias.data = (char *)(c->alias ? c->alias : "");
    alias.len = strlen(alias.data);
    prefix.data = (char *)c->prefix;
    prefix.len = strlen(c->prefix);
    uri.data = (char *)c->uri;
    uri.len = strlen(c->uri);
    rc = ed_http_map_path(pool, &root, c->alias ? &alias : NULL, &prefix,
                          &uri, 5, &out, &rl);
    ck_assert_msg(rc == c->rc, "%s %s %s: rc %d", c->alias ? c->alias
                                                            : c->root,
                  c->prefix, c->uri, rc);
    if (rc != ED_OK) {
        return;
    }
    ck_assert_str_eq(out.data, c->path);
    ck_assert_uint_eq(out.len, strlen(c->path));
    ck_assert_msg(rl == c->root_len, "%s: root_len %zu, expected %zu",
                  c->uri, rl, c->root_len);
    /* The room asked for is there. */
    memset(out.data + out.len, 'x', 5);
}
END_TEST

START_TEST(test_dotfiles)
{
    ck_assert(ed_http_path_has_dotfile("/.env", 5));
    ck_assert(ed_http_path_has_dotfile("/a/.git/config", 14));
    ck_assert(ed_http_path_has_dotfile("/a/.", 4));
    ck_assert(ed_http_path_has_dotfile(".x", 2));
    ck_assert(!ed_http_path_has_dotfile("/a.b/c.d", 8));
    ck_assert(!ed_http_path_has_dotfile("/a./b", 5));
    ck_assert(!ed_http_path_has_dotfile("/", 1));
    ck_assert(!ed_http_path_has_dotfile("/a/b.", 5));
}
END_TEST

START_TEST(test_escape)
{
    ed_str_t out;

    ck_assert_int_eq(ed_http_escape_path(pool, "/a b/c%d?e#f", 12, false,
                                         &out),
                     ED_OK);
    ck_assert_str_eq(out.data, "/a%20b/c%25d%3Fe%23f");
    ck_assert_int_eq(ed_http_escape_path(pool, "/x:y/~z!$&'()*+,;=@", 19,
                                         false, &out),
                     ED_OK);
    ck_assert_str_eq(out.data, "/x:y/~z!$&'()*+,;=@");
    /* One name: '/' and ':' too (a name "a:b" must not read as a
     * scheme in a relative link). */
    ck_assert_int_eq(ed_http_escape_path(pool, "a:b/c", 5, true, &out),
                     ED_OK);
    ck_assert_str_eq(out.data, "a%3Ab%2Fc");
    ck_assert_int_eq(ed_http_escape_path(pool, "\xc3\xa9\x01\x7f\"<>", 7,
                                         true, &out),
                     ED_OK);
    ck_assert_str_eq(out.data, "%C3%A9%01%7F%22%3C%3E");
    ck_assert_int_eq(ed_http_escape_path(pool, "", 0, true, &out), ED_OK);
    ck_assert_uint_eq(out.len, 0);
}
END_TEST

/* A scratch tree:
 *   d/root/file.txt, d/root/sub/in.txt, d/secret.txt,
 *   d/root/out -> ../secret.txt, d/root/in -> file.txt,
 *   d/root/subl -> sub, d/root/fifo */
static char dir[64];

static void
mkfile(const char *name, const char *text)
{
    char path[256];
    int  fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static void
mklink(const char *target, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(symlink(target, path), 0);
}

static void
tree_setup(void)
{
    char path[256];

    setup();
    strcpy(dir, "/tmp/ed-static-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/root", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/root/sub", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    mkfile("root/file.txt", "hello\n");
    mkfile("root/sub/in.txt", "inside\n");
    mkfile("secret.txt", "secret\n");
    mklink("../secret.txt", "root/out");
    mklink("file.txt", "root/in");
    mklink("sub", "root/subl");
    snprintf(path, sizeof(path), "%s/root/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0644), 0);
}

static void
tree_teardown(void)
{
    char cmd[128];

    ed_http_file_cache_free();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    teardown();
}

/* Opens root-relative name with a policy; returns the status and, on
 * ED_OK, the first bytes read in buf. */
static int
try_open(const char *name, int symlinks, char *buf, size_t size)
{
    ed_http_file_t *f;
    char            path[256];
    size_t          rl;
    ssize_t         n;
    int             rc;

    rl = (size_t)snprintf(path, sizeof(path), "%s/root", dir);
    snprintf(path + rl, sizeof(path) - rl, "%s", name);
    rc = ed_http_file_open(path, strlen(path), rl, symlinks, &f);
    if (rc != ED_OK) {
        return rc;
    }
    buf[0] = '\0';
    if (f->is_dir) {
        snprintf(buf, size, "<dir>");
    } else if (f->content) {
        snprintf(buf, size, "%.*s", (int)f->size, f->content);
    } else {
        n = pread(f->fd, buf, size - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
    ed_http_file_release(f);
    return rc;
}

static void
check_policies(void)
{
    char buf[64];

    /* Plain files and directories: every policy. */
    ck_assert_int_eq(try_open("/file.txt", ED_HTTP_SYMLINKS_DENY, buf, 64),
                     ED_OK);
    ck_assert_str_eq(buf, "hello\n");
    ck_assert_int_eq(try_open("/sub/in.txt", ED_HTTP_SYMLINKS_DENY, buf, 64),
                     ED_OK);
    ck_assert_str_eq(buf, "inside\n");
    ck_assert_int_eq(try_open("/sub/", ED_HTTP_SYMLINKS_DENY, buf, 64),
                     ED_OK);
    ck_assert_str_eq(buf, "<dir>");
    ck_assert_int_eq(try_open("", ED_HTTP_SYMLINKS_DENY, buf, 64), ED_OK);
    ck_assert_int_eq(try_open("/missing", ED_HTTP_SYMLINKS_DENY, buf, 64),
                     404);
    ck_assert_int_eq(try_open("/file.txt/x", ED_HTTP_SYMLINKS_DENY, buf, 64),
                     404);
    ck_assert_int_eq(try_open("/fifo", ED_HTTP_SYMLINKS_FOLLOW, buf, 64),
                     404);
    ck_assert_int_eq(try_open("/fifo", ED_HTTP_SYMLINKS_DENY, buf, 64), 404);

    /* follow: links are followed, also out of the root. */
    ck_assert_int_eq(try_open("/in", ED_HTTP_SYMLINKS_FOLLOW, buf, 64),
                     ED_OK);
    ck_assert_str_eq(buf, "hello\n");
    ck_assert_int_eq(try_open("/out", ED_HTTP_SYMLINKS_FOLLOW, buf, 64),
                     ED_OK);
    ck_assert_int_eq(try_open("/subl/in.txt", ED_HTTP_SYMLINKS_FOLLOW, buf,
                              64),
                     ED_OK);

    /* deny: no link, final or intermediate. */
    ck_assert_int_eq(try_open("/in", ED_HTTP_SYMLINKS_DENY, buf, 64), 403);
    ck_assert_int_eq(try_open("/out", ED_HTTP_SYMLINKS_DENY, buf, 64), 403);
    ck_assert_int_eq(try_open("/subl/in.txt", ED_HTTP_SYMLINKS_DENY, buf,
                              64),
                     403);
    ck_assert_int_eq(try_open("/subl/", ED_HTTP_SYMLINKS_DENY, buf, 64),
                     403);

    /* owner: the test user owns links and targets alike. */
    ck_assert_int_eq(try_open("/in", ED_HTTP_SYMLINKS_OWNER, buf, 64),
                     ED_OK);
    ck_assert_str_eq(buf, "hello\n");
    ck_assert_int_eq(try_open("/subl/in.txt", ED_HTTP_SYMLINKS_OWNER, buf,
                              64),
                     ED_OK);
    ck_assert_str_eq(buf, "inside\n");
}

START_TEST(test_open_policies)
{
    ed_http_file_cache_conf_t conf = { 0, 0, 0, 0 };

    /* Without a cache, then with one (twice: misses, then hits). */
    ck_assert_int_eq(ed_http_file_cache_init(&conf), ED_OK);
    check_policies();
    ed_http_file_cache_free();
    conf.max = 100;
    conf.valid = 60000;
    conf.inline_max = 4;
    conf.memory_max = 1 << 20;
    ck_assert_int_eq(ed_http_file_cache_init(&conf), ED_OK);
    check_policies();
    check_policies();
}
END_TEST

/* owner: a link owned by someone else than its target's owner is
 * refused (needs root to give files away). */
START_TEST(test_open_owner)
{
    char buf[64], path[256];

    if (geteuid() != 0) {
        return;
    }
    snprintf(path, sizeof(path), "%s/root/in", dir);
    ck_assert_int_eq(lchown(path, 12345, 12345), 0);
    ck_assert_int_eq(try_open("/in", ED_HTTP_SYMLINKS_OWNER, buf, 64), 403);
    ck_assert_int_eq(try_open("/in", ED_HTTP_SYMLINKS_FOLLOW, buf, 64),
                     ED_OK);
    snprintf(path, sizeof(path), "%s/root/file.txt", dir);
    ck_assert_int_eq(chown(path, 12345, 12345), 0);
    ck_assert_int_eq(try_open("/in", ED_HTTP_SYMLINKS_OWNER, buf, 64),
                     ED_OK);
}
END_TEST

START_TEST(test_cache)
{
    ed_http_file_cache_conf_t conf = { 2, 60000, 16, 1 << 20 };
    ed_http_file_t           *f, *g;
    char                      path[256], big[64];
    size_t                    rl;

    ck_assert_int_eq(ed_http_file_cache_init(&conf), ED_OK);
    rl = (size_t)snprintf(path, sizeof(path), "%s/root", dir);
    strcat(path, "/file.txt");

    /* A small file is held in memory, without a descriptor. */
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &f),
                     ED_OK);
    ck_assert_ptr_nonnull(f->content);
    ck_assert_int_eq(f->fd, -1);
    ck_assert_int_eq(f->size, 6);
    ck_assert_uint_eq(ed_http_file_cache_count(), 1);
    ck_assert(f->etag.len > 4 && f->etag.data[0] == '"'
              && f->etag.data[f->etag.len - 1] == '"');
    ck_assert_uint_eq(f->last_modified.len, 29);

    /* The same entry again. */
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &g),
                     ED_OK);
    ck_assert_ptr_eq(f, g);
    ed_http_file_release(g);

    /* A larger one keeps its descriptor. */
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mkfile("root/big.txt", big);
    snprintf(path + rl, sizeof(path) - rl, "/big.txt");
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &g),
                     ED_OK);
    ck_assert_ptr_null(g->content);
    ck_assert_int_ge(g->fd, 0);
    ck_assert_uint_eq(ed_http_file_cache_count(), 2);

    /* Over max: the least recently used entry (file.txt) leaves the
     * cache but lives on while referenced. */
    snprintf(path + rl, sizeof(path) - rl, "/sub/in.txt");
    ed_http_file_release(g);
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &g),
                     ED_OK);
    ck_assert_uint_eq(ed_http_file_cache_count(), 2);
    ck_assert_uint_eq(f->cached, 0);
    ck_assert(memcmp(f->content, "hello\n", 6) == 0);
    ed_http_file_release(f);
    ed_http_file_release(g);
}
END_TEST

/* A file replaced on disk is noticed once `valid` has passed. */
START_TEST(test_cache_revalidate)
{
    ed_http_file_cache_conf_t conf = { 10, 1000, 64, 1 << 20 };
    ed_http_file_t           *f, *g;
    char                      path[256], tmp[256];
    size_t                    rl;

    ck_assert_int_eq(ed_http_file_cache_init(&conf), ED_OK);
    ed_current_msec = 1000000;
    rl = (size_t)snprintf(path, sizeof(path), "%s/root", dir);
    strcat(path, "/file.txt");
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &f),
                     ED_OK);
    ck_assert(memcmp(f->content, "hello\n", 6) == 0);
    ed_http_file_release(f);

    /* Replaced by rename, as deploy tools do. */
    mkfile("root/new.txt", "changed!\n");
    snprintf(tmp, sizeof(tmp), "%s/root/new.txt", dir);
    ck_assert_int_eq(rename(tmp, path), 0);

    ed_current_msec += 500;
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &g),
                     ED_OK);
    ck_assert_ptr_eq(g, f);   /* within valid: the cached one */
    ed_http_file_release(g);

    ed_current_msec += 600;
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &g),
                     ED_OK);
    ck_assert_int_eq(g->size, 9);
    ck_assert(memcmp(g->content, "changed!\n", 9) == 0);
    ed_http_file_release(g);

    /* Removed: 404 after valid. */
    ck_assert_int_eq(unlink(path), 0);
    ed_current_msec += 1001;
    ck_assert_int_eq(ed_http_file_open(path, strlen(path), rl,
                                       ED_HTTP_SYMLINKS_FOLLOW, &g),
                     404);
    ck_assert_uint_eq(ed_http_file_cache_count(), 0);
}
END_TEST

START_TEST(test_dir_list)
{
    static const ed_str_t uri = ed_string("/d/<x>/");
    char                  path[256];
    ed_str_t              out;
    size_t                rl;

    mkfile("root/.dot", "hidden\n");
    mkfile("root/sub/z\"q.txt", "q\n");
    rl = (size_t)snprintf(path, sizeof(path), "%s/root", dir);
    strcat(path, "/");

    /* HTML: directories first, escaped, dotfiles and the FIFO left out,
     * links as the policy serves them. */
    ck_assert_int_eq(ed_http_dir_list(pool, path, strlen(path), rl,
                                      ED_HTTP_SYMLINKS_DENY, true,
                                      ED_HTTP_LIST_HTML, &uri, &out),
                     ED_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "<title>Index of /d/&lt;x&gt;/"));
    ck_assert_ptr_nonnull(strstr(out.data, "<a href=\"sub/\">sub/</a>"));
    ck_assert_ptr_nonnull(strstr(out.data,
                                 "<a href=\"file.txt\">file.txt</a>"));
    ck_assert(strstr(out.data, "sub/") < strstr(out.data, "file.txt"));
    ck_assert_ptr_null(strstr(out.data, ".dot"));
    ck_assert_ptr_null(strstr(out.data, "fifo"));
    ck_assert_ptr_null(strstr(out.data, "\"in\""));
    ck_assert_ptr_null(strstr(out.data, "out"));

    ck_assert_int_eq(ed_http_dir_list(pool, path, strlen(path), rl,
                                      ED_HTTP_SYMLINKS_FOLLOW, false,
                                      ED_HTTP_LIST_HTML, &uri, &out),
                     ED_OK);
    ck_assert_ptr_nonnull(strstr(out.data, ">.dot</a>"));
    ck_assert_ptr_nonnull(strstr(out.data, ">in</a>"));
    ck_assert_ptr_nonnull(strstr(out.data, ">subl/</a>"));

    /* JSON. */
    strcat(path, "sub/");
    ck_assert_int_eq(ed_http_dir_list(pool, path, strlen(path), rl,
                                      ED_HTTP_SYMLINKS_FOLLOW, true,
                                      ED_HTTP_LIST_JSON, &uri, &out),
                     ED_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "{\"name\":\"in.txt\",\"type\":"
                                           "\"file\",\"mtime\":\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"size\":7}"));
    ck_assert_ptr_nonnull(strstr(out.data, "{\"name\":\"z\\\"q.txt\""));
    ck_assert(out.data[0] == '[' && out.data[out.len - 2] == ']');

    /* Missing, or not a directory. */
    snprintf(path + rl, sizeof(path) - rl, "/nope/");
    ck_assert_int_eq(ed_http_dir_list(pool, path, strlen(path), rl,
                                      ED_HTTP_SYMLINKS_DENY, true,
                                      ED_HTTP_LIST_JSON, &uri, &out),
                     404);
    snprintf(path + rl, sizeof(path) - rl, "/file.txt/");
    ck_assert_int_eq(ed_http_dir_list(pool, path, strlen(path), rl,
                                      ED_HTTP_SYMLINKS_FOLLOW, true,
                                      ED_HTTP_LIST_JSON, &uri, &out),
                     404);
    snprintf(path + rl, sizeof(path) - rl, "/subl/");
    ck_assert_int_eq(ed_http_dir_list(pool, path, strlen(path), rl,
                                      ED_HTTP_SYMLINKS_DENY, true,
                                      ED_HTTP_LIST_JSON, &uri, &out),
                     403);
}
END_TEST

Suite *
ed_test_http_static_path_suite(void)
{
    Suite *s = suite_create("http_static_path");
    TCase *tc;

    tc = tcase_create("map");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_map, 0, (int)ed_nelems(map_cases));
    tcase_add_test(tc, test_map_nul);
    tcase_add_test(tc, test_dotfiles);
    tcase_add_test(tc, test_escape);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_open_policies);
    tcase_add_test(tc, test_open_owner);
    tcase_add_test(tc, test_cache);
    tcase_add_test(tc, test_cache_revalidate);
    tcase_add_test(tc, test_dir_list);
    suite_add_tcase(s, tc);
    return s;
}
