/* The cgi script walk: from the root, one name at a time, to the first
 * regular file (the script; the rest is PATH_INFO), or a directory's
 * index; then the checks that decide whether the worker may run what it
 * opened (config.md, cgi: the 404 and 403 rows). */
#include "ed_http_cgi_handler.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

bool
ed_http_cgi_executable(mode_t mode, uid_t uid, gid_t gid, uid_t euid,
                       gid_t egid, const gid_t *groups, int ngroups)
{
    int i;

    /* The kernel takes the first class that matches, even when a later
     * one would allow more (a file 0701 is not executable by its
     * owner). */
    if (uid == euid) {
        return (mode & S_IXUSR) != 0;
    }
    if (gid == egid) {
        return (mode & S_IXGRP) != 0;
    }
    for (i = 0; i < ngroups; i++) {
        if (groups[i] == gid) {
            return (mode & S_IXGRP) != 0;
        }
    }
    return (mode & S_IXOTH) != 0;
}

int
ed_http_cgi_walk_status(int verdict)
{
    switch (verdict) {
    case ED_CGI_OK:
        return 200;
    case ED_CGI_NOT_FOUND:
        return 404;
    case ED_CGI_FAILED:
        return 500;
    default:
        return 403;
    }
}

const char *
ed_http_cgi_walk_reason(int verdict)
{
    switch (verdict) {
    case ED_CGI_NOT_EXECUTABLE:
        return "is not executable by the worker's user";
    case ED_CGI_SETID:
        return "is setuid or setgid";
    case ED_CGI_WRITABLE:
        return "is writable by others";
    case ED_CGI_DIR_WRITABLE:
        return "is in a directory writable by others";
    case ED_CGI_SYMLINK:
        return "is reached through a symbolic link that \"symlinks\" "
               "refuses";
    case ED_CGI_OUTSIDE:
        return "leads out of the root";
    case ED_CGI_NO_INDEX:
        return "is a directory without an index";
    case ED_CGI_DENIED:
        return "cannot be reached";
    default:
        return "cannot be run";
    }
}

/* Maps an errno of opening to a verdict. */
static int
ed_cgi_errno_verdict(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return ED_CGI_NOT_FOUND;
    case EACCES:
    case EPERM:
        return ED_CGI_DENIED;
    case EXDEV:
        return ED_CGI_OUTSIDE;
    case ELOOP:
        return ED_CGI_SYMLINK;
    default:
        return ED_CGI_FAILED;
    }
}

/* The fallback of openat2 RESOLVE_BENEATH (kernels before 5.6): opens
 * rel under rootfd following links, then checks where it landed through
 * /proc/self/fd. Returns the fd or -1 with errno (EXDEV: outside). */
static int
ed_cgi_open_beneath_proc(int rootfd, const char *rel)
{
    char   link[64], rp[PATH_MAX], fp[PATH_MAX];
    size_t rl;
    int    fd;
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", rootfd);
    n = readlink(link, rp, sizeof(rp) - 1);
    if (n < 0) {
        return -1;
    }
    rp[n] = '\0';
    rl = (size_t)n;
    fd = openat(rootfd, rel, O_PATH | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, fp, sizeof(fp) - 1);
    if (n < 0) {
        close(fd);
        return -1;
    }
    fp[n] = '\0';
    if (strncmp(fp, rp, rl) != 0
        || (fp[rl] != '/' && fp[rl] != '\0' && !(rl == 1 && rp[0] == '/')))
    {
        close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

/* Opens rel (relative to rootfd, links followed) without ever leaving
 * the root. Returns the fd (O_PATH) or -1 with errno. */
static int
ed_cgi_open_beneath(int rootfd, const char *rel)
{
#ifdef SYS_openat2
    struct open_how how;
    long            fd;

    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    if (fd >= 0 || errno != ENOSYS) {
        return (int)fd;
    }
#endif
    return ed_cgi_open_beneath_proc(rootfd, rel);
}

/* Opens name in dfd (rel: the same below the root) as the policy says.
 * Returns the fd (O_PATH) or -1 with *verdict. */
static int
ed_cgi_step(int rootfd, int dfd, const char *name, const char *rel,
            int symlinks, int *verdict, int *err)
{
    struct stat lst, st;
    int         fd;

    fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        *err = errno;
        *verdict = ed_cgi_errno_verdict(errno);
        return -1;
    }
    if (fstat(fd, &lst) != 0) {
        *err = errno;
        *verdict = ED_CGI_FAILED;
        close(fd);
        return -1;
    }
    if (!S_ISLNK(lst.st_mode)) {
        return fd;
    }
    close(fd);
    if (symlinks == ED_HTTP_SYMLINKS_DENY) {
        *verdict = ED_CGI_SYMLINK;
        return -1;
    }
    /* Followed from the root, never above it; then judged by what was
     * actually opened (a link swapped meanwhile fails just the same). */
    fd = ed_cgi_open_beneath(rootfd, rel);
    if (fd == -1) {
        *err = errno;
        *verdict = ed_cgi_errno_verdict(errno);
        return -1;
    }
    if (symlinks == ED_HTTP_SYMLINKS_OWNER
        && (fstat(fd, &st) != 0 || st.st_uid != lst.st_uid))
    {
        close(fd);
        *verdict = ED_CGI_SYMLINK;
        return -1;
    }
    return fd;
}

/* Judges the script opened as fd. */
static int
ed_cgi_judge(const struct stat *st)
{
    gid_t groups[64];
    int   n;

    if (S_ISDIR(st->st_mode)) {
        return ED_CGI_NO_INDEX;
    }
    if (!S_ISREG(st->st_mode)) {
        return ED_CGI_NOT_FOUND;
    }
    n = getgroups(64, groups);
    if (!ed_http_cgi_executable(st->st_mode, st->st_uid, st->st_gid,
                                geteuid(), getegid(), groups,
                                n < 0 ? 0 : n))
    {
        return ED_CGI_NOT_EXECUTABLE;
    }
    if (st->st_mode & (S_ISUID | S_ISGID)) {
        return ED_CGI_SETID;
    }
    if (st->st_mode & S_IWOTH) {
        return ED_CGI_WRITABLE;
    }
    return ED_CGI_OK;
}

/* Copies rest[0..end) without its leading slashes into rel (PATH_MAX).
 * Returns false when it does not fit. */
static bool
ed_cgi_rel(const char *rest, size_t end, const char *tail, size_t tlen,
           char *rel)
{
    size_t s = 0, n;

    while (s < end && rest[s] == '/') {
        s++;
    }
    n = end - s;
    if (n + tlen + 2 > PATH_MAX) {
        return false;
    }
    memcpy(rel, rest + s, n);
    if (tlen) {
        if (n) {
            rel[n++] = '/';
        }
        memcpy(rel + n, tail, tlen);
        n += tlen;
    }
    rel[n] = '\0';
    return n > 0;
}

/* The directory walk ended on dfd (rest[0..len) names it): the first
 * index name present. */
static void
ed_cgi_index(int rootfd, int dfd, const char *rest, size_t len,
             int symlinks, const ed_array_t *index, ed_http_cgi_walk_t *w)
{
    const ed_str_t *names = index ? index->elts : NULL;
    struct stat     st;
    char            rel[PATH_MAX];
    size_t          i;
    int             fd, verdict, err = 0;

    for (i = 0; names && i < index->nelts; i++) {
        if (!ed_cgi_rel(rest, len, names[i].data, names[i].len, rel)) {
            continue;
        }
        fd = ed_cgi_step(rootfd, dfd, names[i].data, rel, symlinks,
                         &verdict, &err);
        if (fd == -1) {
            if (verdict == ED_CGI_NOT_FOUND) {
                continue;
            }
            w->verdict = verdict;
            w->err = err;
            w->index = names[i].data;
            w->index_len = names[i].len;
            return;
        }
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            continue;
        }
        close(fd);
        w->index = names[i].data;
        w->index_len = names[i].len;
        w->verdict = ed_cgi_judge(&st);
        return;
    }
    w->verdict = ED_CGI_NO_INDEX;
}

void
ed_http_cgi_walk(const char *root, const char *rest, size_t len,
                 int symlinks, const ed_array_t *index,
                 ed_http_cgi_walk_t *w)
{
    struct stat st;
    char        name[NAME_MAX + 1], rel[PATH_MAX];
    size_t      s, e;
    int         rootfd, dfd, fd, verdict = ED_CGI_OK, err = 0;
    bool        dir_writable = false;

    memset(w, 0, sizeof(*w));
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd == -1 || fstat(rootfd, &st) != 0) {
        w->err = errno;
        w->verdict = ed_cgi_errno_verdict(errno);
        if (rootfd != -1) {
            close(rootfd);
        }
        return;
    }
    if (st.st_mode & S_IWOTH) {
        dir_writable = true;
    }
    dfd = rootfd;
    for (s = 0;;) {
        while (s < len && rest[s] == '/') {
            s++;
        }
        if (s == len) {
            w->script_end = len;
            ed_cgi_index(rootfd, dfd, rest, len, symlinks, index, w);
            break;
        }
        for (e = s; e < len && rest[e] != '/'; e++) {
            /* to the end of the name */
        }
        w->script_end = e;
        if (rest[s] == '.' || e - s > NAME_MAX
            || memchr(rest + s, '\0', e - s) != NULL)
        {
            /* A dot segment, a hidden name: never a script's way. */
            w->verdict = ED_CGI_NOT_FOUND;
            break;
        }
        memcpy(name, rest + s, e - s);
        name[e - s] = '\0';
        if (!ed_cgi_rel(rest, e, NULL, 0, rel)) {
            w->verdict = ED_CGI_NOT_FOUND;
            break;
        }
        fd = ed_cgi_step(rootfd, dfd, name, rel, symlinks, &verdict, &err);
        if (fd == -1) {
            w->verdict = verdict;
            w->err = err;
            break;
        }
        if (fstat(fd, &st) != 0) {
            w->err = errno;
            w->verdict = ED_CGI_FAILED;
            close(fd);
            break;
        }
        if (dfd != rootfd) {
            close(dfd);
        }
        dfd = fd;
        if (S_ISDIR(st.st_mode)) {
            if (st.st_mode & S_IWOTH) {
                dir_writable = true;
            }
            s = e;
            continue;
        }
        w->verdict = ed_cgi_judge(&st);
        break;
    }
    if (w->verdict == ED_CGI_OK && dir_writable) {
        w->verdict = ED_CGI_DIR_WRITABLE;
    }
    if (dfd != rootfd) {
        close(dfd);
    }
    close(rootfd);
}
