/* Unit tests for the cgi script walk (modules/ed_http_cgi_walk.c): where
 * the script ends and PATH_INFO starts, index files, and each refusal,
 * on a tree made in a temporary directory; and the execute-permission
 * rule. */
#include "../../../modules/ed_http_cgi_handler.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char t_root[64];

static void
t_file(const char *name, mode_t mode)
{
    char path[256];
    int  fd;

    snprintf(path, sizeof(path), "%s/%s", t_root, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    ck_assert_int_eq(chmod(path, mode), 0);
}

static void
t_dir(const char *name, mode_t mode)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", t_root, name);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

static void
t_link(const char *target, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", t_root, name);
    ck_assert_int_eq(symlink(target, path), 0);
}

static void
t_setup(void)
{
    snprintf(t_root, sizeof(t_root), "/tmp/ed-cgi-walk-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t_root));
    ck_assert_int_eq(chmod(t_root, 0755), 0);
    t_file("a.cgi", 0755);
    t_file("plain.cgi", 0644);
    t_file("suid.cgi", 04755);
    t_file("ww.cgi", 0757);
    t_dir("d", 0755);
    t_file("d/index.cgi", 0755);
    t_dir("noidx", 0755);
    t_dir("open", 0777);
    t_file("open/x.cgi", 0755);
    t_link("a.cgi", "ln.cgi");
    t_link("/bin/sh", "abs.cgi");
    t_link("../a.cgi", "d/up.cgi");
}

static void
t_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", t_root);
    ck_assert_int_eq(system(cmd), 0);
}

static ed_array_t *
t_index(void)
{
    static ed_str_t   names[2] = { ed_string("missing.cgi"),
                                   ed_string("index.cgi") };
    static ed_array_t a;

    a.elts = names;
    a.nelts = 2;
    a.size = sizeof(ed_str_t);
    a.nalloc = 2;
    return &a;
}

static int
t_walk(const char *rest, int symlinks, ed_http_cgi_walk_t *w)
{
    ed_http_cgi_walk(t_root, rest, strlen(rest), symlinks, t_index(), w);
    return w->verdict;
}

START_TEST(test_script_and_path_info)
{
    ed_http_cgi_walk_t w;

    ck_assert_int_eq(t_walk("/a.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_OK);
    ck_assert_uint_eq(w.script_end, 6);
    ck_assert_int_eq(t_walk("/a.cgi/x/y.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_OK);
    ck_assert_uint_eq(w.script_end, 6);
    ck_assert_ptr_null(w.index);
    ck_assert_int_eq(t_walk("/d/", ED_HTTP_SYMLINKS_OWNER, &w), ED_CGI_OK);
    ck_assert_str_eq(w.index, "index.cgi");
    ck_assert_int_eq(t_walk("/d", ED_HTTP_SYMLINKS_OWNER, &w), ED_CGI_OK);
    ck_assert_int_eq(t_walk("/noidx/", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_NO_INDEX);
}
END_TEST

START_TEST(test_refusals)
{
    ed_http_cgi_walk_t w;

    ck_assert_int_eq(t_walk("/nope.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_NOT_FOUND);
    ck_assert_uint_eq(w.script_end, 9);
    ck_assert_int_eq(t_walk("/nope/a.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_NOT_FOUND);
    ck_assert_int_eq(t_walk("/.a.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_NOT_FOUND);
    ck_assert_int_eq(t_walk("/plain.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_NOT_EXECUTABLE);
    ck_assert_int_eq(t_walk("/suid.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_SETID);
    ck_assert_int_eq(t_walk("/ww.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_WRITABLE);
    ck_assert_int_eq(t_walk("/open/x.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_DIR_WRITABLE);
    ck_assert_int_eq(ed_http_cgi_walk_status(ED_CGI_NOT_FOUND), 404);
    ck_assert_int_eq(ed_http_cgi_walk_status(ED_CGI_WRITABLE), 403);
}
END_TEST

START_TEST(test_symlinks)
{
    ed_http_cgi_walk_t w;

    ck_assert_int_eq(t_walk("/ln.cgi", ED_HTTP_SYMLINKS_DENY, &w),
                     ED_CGI_SYMLINK);
    ck_assert_int_eq(t_walk("/ln.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_OK);
    ck_assert_int_eq(t_walk("/ln.cgi", ED_HTTP_SYMLINKS_FOLLOW, &w),
                     ED_CGI_OK);
    ck_assert_int_eq(t_walk("/d/up.cgi", ED_HTTP_SYMLINKS_FOLLOW, &w),
                     ED_CGI_OK);
    /* Never out of the root, whatever the policy. */
    ck_assert_int_eq(t_walk("/abs.cgi", ED_HTTP_SYMLINKS_FOLLOW, &w),
                     ED_CGI_OUTSIDE);
    ck_assert_int_eq(t_walk("/abs.cgi", ED_HTTP_SYMLINKS_OWNER, &w),
                     ED_CGI_OUTSIDE);
}
END_TEST

START_TEST(test_executable)
{
    gid_t groups[] = { 20, 30 };

    /* The first class that matches decides. */
    ck_assert(ed_http_cgi_executable(0700, 5, 6, 5, 9, NULL, 0));
    ck_assert(!ed_http_cgi_executable(0071, 5, 6, 5, 6, NULL, 0));
    ck_assert(ed_http_cgi_executable(0010, 1, 6, 5, 6, NULL, 0));
    ck_assert(ed_http_cgi_executable(0010, 1, 30, 5, 6, groups, 2));
    ck_assert(!ed_http_cgi_executable(0601, 1, 30, 5, 6, groups, 2));
    ck_assert(ed_http_cgi_executable(0001, 1, 2, 5, 6, groups, 2));
    ck_assert(!ed_http_cgi_executable(0770, 1, 2, 5, 6, groups, 2));
}
END_TEST

Suite *
ed_test_http_cgi_walk_suite(void)
{
    Suite *s = suite_create("http_cgi_walk");
    TCase *tc = tcase_create("walk");

    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_add_test(tc, test_script_and_path_info);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_symlinks);
    suite_add_tcase(s, tc);
    tc = tcase_create("executable");
    tcase_add_test(tc, test_executable);
    suite_add_tcase(s, tc);
    return s;
}
