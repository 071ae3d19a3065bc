/* Files for the static module: URI to path mapping, opening below a root
 * with a symlink policy, the per-worker open-file cache, and directory
 * listings. */
#include "ed_http_file_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>

/* The cache of one process: a chained hash of entries and an LRU list.
 * Entries are malloc'd (they outlive requests), each holding an open fd
 * (large files) or the file's bytes (small files), never both. */
typedef struct {
    ed_http_file_cache_conf_t  conf;
    ed_http_file_t           **buckets;
    size_t                     mask;
    size_t                     n;
    size_t                     memory;   /* bytes of inline content */
    ed_http_file_t            *lru_head;
    ed_http_file_t            *lru_tail;
} ed_http_file_cache_t;

static ed_http_file_cache_t ed_file_cache;

/* Mapping. */

/* Whether rest, joined below a directory, stays below it: empty, or a
 * '/' followed by names none of which is "." or "..", and no NUL (which
 * would cut the path short). Whatever the caller made of the URI (the
 * request's, normalised, or a try_files result), this is what keeps the
 * joined path under the root or alias. */
static bool
ed_path_confined(const char *rest, size_t len)
{
    size_t i, s, n;

    if (len == 0) {
        return true;
    }
    if (rest[0] != '/' || memchr(rest, '\0', len) != NULL) {
        return false;
    }
    for (s = 1; s <= len; s = i + 1) {
        for (i = s; i < len && rest[i] != '/'; i++) {
            /* to the end of the name */
        }
        n = i - s;
        if ((n == 1 && rest[s] == '.')
            || (n == 2 && rest[s] == '.' && rest[s + 1] == '.'))
        {
            return false;
        }
    }
    return true;
}

int
ed_http_map_path(ed_pool_t *pool, const ed_str_t *root,
                 const ed_str_t *alias, const ed_str_t *prefix,
                 const ed_str_t *uri, size_t extra, ed_str_t *out,
                 size_t *root_len)
{
    const char *base, *rest;
    size_t      blen, rlen;
    char       *p;

    if (alias != NULL && alias->len) {
        base = alias->data;
        blen = alias->len;
        if (uri->len < prefix->len
            || memcmp(uri->data, prefix->data, prefix->len) != 0)
        {
            return 404;
        }
        /* The rest starts at the prefix's own trailing slash, if any: it
         * is then empty or starts with '/', or the URI goes on in the
         * middle of the prefix's last name ("/static" + "../x",
         * "/static" + "-private/x"), which names no file under the
         * alias. */
        rlen = uri->len - prefix->len;
        if (prefix->len && prefix->data[prefix->len - 1] == '/') {
            rlen++;
        }
        rest = uri->data + uri->len - rlen;
    } else {
        base = root->data;
        blen = root->len;
        rest = uri->data;
        rlen = uri->len;
    }
    if (!ed_path_confined(rest, rlen)) {
        return 404;
    }
    /* The directory's trailing slashes are dropped: the rest brings its
     * own ("/" becomes "", the root of the file system). */
    while (blen && base[blen - 1] == '/') {
        blen--;
    }
    *root_len = blen;
    p = ed_pnalloc(pool, blen + rlen + extra + 2);
    if (p == NULL) {
        return 500;
    }
    out->data = p;
    if (blen) {
        memcpy(p, base, blen);
        p += blen;
    }
    if (rlen) {
        memcpy(p, rest, rlen);
        p += rlen;
    }
    if (p == out->data) {
        *p++ = '/';  /* alias "/" and nothing after the prefix */
    }
    *p = '\0';
    out->len = (size_t)(p - out->data);
    return ED_OK;
}

bool
ed_http_path_has_dotfile(const char *path, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (path[i] == '.' && (i == 0 || path[i - 1] == '/')) {
            return true;
        }
    }
    return false;
}

/* Opening. */

/* Maps an errno from opening to a status. For a 500, errno is left set
 * to err: the caller logs it with its request's context. */
static int
ed_file_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case ELOOP:
        return 403;
    default:
        errno = err;
        return 500;
    }
}

/* Opens path below its first root_len bytes one component at a time, so
 * that a symbolic link the policy refuses is never followed, even when a
 * component is swapped while we walk: every refused link is opened with
 * O_NOFOLLOW and fails. dir: the final component must be a directory.
 * Returns 0 with *fd (O_RDONLY, O_NONBLOCK so a FIFO cannot block), or an
 * errno (EACCES for a refused link). */
static int
ed_file_walk(const char *path, size_t len, size_t root_len, int symlinks,
             bool dir, int *fd)
{
    char        root[PATH_MAX], name[NAME_MAX + 1];
    const char *p, *q, *end = path + len;
    struct stat lst, st;
    int         dfd, nfd, flags, final, err;
    bool        last;

    if (root_len == 0) {
        root[0] = '/';
        root[1] = '\0';
    } else if (root_len < sizeof(root)) {
        memcpy(root, path, root_len);
        root[root_len] = '\0';
    } else {
        return ENAMETOOLONG;
    }
    final = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (dir ? O_DIRECTORY : 0);
    p = path + root_len;
    while (p < end && *p == '/') {
        p++;
    }
    if (p == end) {
        /* The root itself is trusted, as written in the config. */
        *fd = open(root, final);
        return *fd == -1 ? errno : 0;
    }
    dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd == -1) {
        return errno;
    }
    for (;;) {
        q = memchr(p, '/', (size_t)(end - p));
        if (q == NULL) {
            q = end;
        }
        if ((size_t)(q - p) > NAME_MAX) {
            close(dfd);
            return ENAMETOOLONG;
        }
        memcpy(name, p, (size_t)(q - p));
        name[q - p] = '\0';
        for (last = true; q + 1 < end; q++) {
            if (q[1] != '/') {
                last = false;
                break;
            }
        }
        flags = last ? final : O_PATH | O_DIRECTORY | O_CLOEXEC;

        if (symlinks == ED_HTTP_SYMLINKS_OWNER
            && fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0
            && S_ISLNK(lst.st_mode))
        {
            /* Followed once, then judged by what was actually opened:
             * a link swapped meanwhile for one to someone else's file
             * fails the owner test just the same. */
            nfd = openat(dfd, name, flags);
            if (nfd == -1) {
                err = errno;
                close(dfd);
                return err;
            }
            if (fstat(nfd, &st) != 0 || st.st_uid != lst.st_uid) {
                close(nfd);
                close(dfd);
                return EACCES;
            }
        } else {
            nfd = openat(dfd, name, flags | O_NOFOLLOW);
            if (nfd == -1) {
                err = errno;
                if ((err == ELOOP || err == ENOTDIR)
                    && fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0
                    && S_ISLNK(lst.st_mode))
                {
                    err = EACCES;
                }
                close(dfd);
                return err;
            }
        }
        close(dfd);
        dfd = nfd;
        if (last) {
            break;
        }
        for (p = q + 1; p < end && *p == '/'; p++) {
            /* merged slashes */
        }
    }
    *fd = dfd;
    return 0;
}

/* Opens path with the policy. Returns 0 with *fd, or an errno. */
static int
ed_file_open_fd(const char *path, size_t len, size_t root_len,
                int symlinks, bool dir, int *fd)
{
    if (symlinks == ED_HTTP_SYMLINKS_FOLLOW) {
        *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC
                             | (dir ? O_DIRECTORY : 0));
        return *fd == -1 ? errno : 0;
    }
    return ed_file_walk(path, len, root_len, symlinks, dir, fd);
}

int
ed_http_dir_open(const char *path, size_t len, size_t root_len,
                 int symlinks, int *fd)
{
    int err;

    err = ed_file_open_fd(path, len, root_len, symlinks, true, fd);
    return err ? ed_file_status(err) : ED_OK;
}

/* The cache. */

/* FNV-1a over the key: path, policy and trusted length. */
static uint32_t
ed_file_hash(const char *s, size_t len, size_t root_len, int symlinks)
{
    uint32_t h = 2166136261u ^ (uint32_t)symlinks;
    size_t   i;

    for (i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h ^ (uint32_t)root_len;
}

int
ed_http_file_cache_init(const ed_http_file_cache_conf_t *conf)
{
    ed_http_file_cache_t *c = &ed_file_cache;
    size_t                nb;

    c->conf = *conf;
    if (c->buckets == NULL && conf->max > 0) {
        for (nb = 64; nb < conf->max && nb < ((size_t)1 << 20); nb <<= 1) {
            /* about one entry per bucket when full */
        }
        c->buckets = calloc(nb, sizeof(ed_http_file_t *));
        if (c->buckets == NULL) {
            return ED_ERROR;
        }
        c->mask = nb - 1;
    }
    return ED_OK;
}

/* Closes and frees an entry nobody references. */
static void
ed_file_free(ed_http_file_t *f)
{
    if (f->aux_free) {
        f->aux_free(f);
    }
    if (f->fd != -1) {
        close(f->fd);
    }
    if (f->content) {
        ed_file_cache.memory -= (size_t)f->size;
        free(f->content);
    }
    free(f);
}

/* Takes f out of the hash and the LRU list; frees it unless referenced
 * (the last release does). */
static void
ed_file_uncache(ed_http_file_t *f)
{
    ed_http_file_cache_t *c = &ed_file_cache;
    ed_http_file_t      **pp;

    if (!f->cached) {
        return;
    }
    for (pp = &c->buckets[f->hash & c->mask]; *pp != f; pp = &(*pp)->hnext) {
        /* find the link to f */
    }
    *pp = f->hnext;
    if (f->prev) {
        f->prev->next = f->next;
    } else {
        c->lru_head = f->next;
    }
    if (f->next) {
        f->next->prev = f->prev;
    } else {
        c->lru_tail = f->prev;
    }
    f->cached = 0;
    c->n--;
    if (f->refs == 0) {
        ed_file_free(f);
    }
}

void
ed_http_file_cache_free(void)
{
    ed_http_file_cache_t *c = &ed_file_cache;

    while (c->lru_head) {
        ed_file_uncache(c->lru_head);
    }
    free(c->buckets);
    c->buckets = NULL;
}

size_t
ed_http_file_cache_count(void)
{
    return ed_file_cache.n;
}

/* Marks a cached entry most recently used. */
static void
ed_file_lru_front(ed_http_file_t *f)
{
    ed_http_file_cache_t *c = &ed_file_cache;

    if (c->lru_head == f) {
        return;
    }
    /* Unlink (f is in the list, not at its head). */
    f->prev->next = f->next;
    if (f->next) {
        f->next->prev = f->prev;
    } else {
        c->lru_tail = f->prev;
    }
    f->prev = NULL;
    f->next = c->lru_head;
    c->lru_head->prev = f;
    c->lru_head = f;
}

/* Whether the file at f->path is still the one f describes. */
static bool
ed_file_unchanged(const ed_http_file_t *f)
{
    struct stat st;

    if (stat(f->path, &st) != 0) {
        return false;
    }
    return st.st_ino == f->ino && st.st_dev == f->dev
           && (int64_t)st.st_size == f->size
           && st.st_mtim.tv_sec == f->mtim.tv_sec
           && st.st_mtim.tv_nsec == f->mtim.tv_nsec
           && (S_ISDIR(st.st_mode) != 0) == f->is_dir;
}

/* Reads a small file whole. Returns the bytes (malloc) or NULL when it
 * cannot (then the fd serves it). */
static char *
ed_file_read_all(int fd, int64_t size)
{
    char    *buf;
    size_t   got = 0;
    ssize_t  n;

    buf = malloc(size ? (size_t)size : 1);
    if (buf == NULL) {
        return NULL;
    }
    while (got < (size_t)size) {
        n = pread(fd, buf + got, (size_t)size - got, (off_t)got);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                continue;
            }
            /* Shrank or failed while read: keep serving from the fd,
             * which sendfile checks against the size again. */
            free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
    return buf;
}

/* An entry (not yet cached) for fd, opened at path, whose stat is st;
 * content, when not NULL, is all of the file's bytes, already read.
 * NULL on ENOMEM (fd is left to the caller). */
static ed_http_file_t *
ed_file_new(const char *path, size_t len, size_t root_len, int symlinks,
            uint32_t hash, int fd, const struct stat *st,
            const char *content)
{
    ed_http_file_cache_t *c = &ed_file_cache;
    ed_http_file_t       *f;
    char                 *p;

    f = malloc(sizeof(ed_http_file_t) + len + 1);
    if (f == NULL) {
        return NULL;
    }
    memset(f, 0, sizeof(ed_http_file_t));
    f->path = (char *)(f + 1);
    memcpy(f->path, path, len);
    f->path[len] = '\0';
    f->len = len;
    f->root_len = root_len;
    f->symlinks = symlinks;
    f->hash = hash;
    f->fd = fd;
    f->size = (int64_t)st->st_size;
    f->mtime = st->st_mtim.tv_sec;
    f->mtim = st->st_mtim;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->checked = ed_current_msec;
    f->is_dir = S_ISDIR(st->st_mode) != 0;
    if (f->is_dir) {
        /* Directories are only looked at (301, index): no fd kept. */
        close(fd);
        f->fd = -1;
    } else if (c->conf.max > 0 && f->size <= (int64_t)c->conf.inline_max
               && c->memory + (size_t)f->size <= c->conf.memory_max)
    {
        if (content) {
            f->content = malloc(f->size ? (size_t)f->size : 1);
            if (f->content) {
                memcpy(f->content, content, (size_t)f->size);
            }
        } else {
            f->content = ed_file_read_all(fd, f->size);
        }
        if (f->content) {
            c->memory += (size_t)f->size;
            close(fd);
            f->fd = -1;
        }
    }
    p = f->etag_buf;
    p += snprintf(p, sizeof(f->etag_buf), "\"%llx-%llx\"",
                  (unsigned long long)f->mtime,
                  (unsigned long long)f->size);
    f->etag.data = f->etag_buf;
    f->etag.len = (size_t)(p - f->etag_buf);
    f->last_modified.data = f->lm_buf;
    f->last_modified.len = (size_t)(ed_http_time(f->lm_buf, f->mtime)
                                    - f->lm_buf);
    return f;
}

/* Opens a new entry (not yet cached). Returns ED_OK with *out or a
 * status. */
static int
ed_file_create(const char *path, size_t len, size_t root_len, int symlinks,
               uint32_t hash, ed_http_file_t **out)
{
    ed_http_file_cache_t *c = &ed_file_cache;
    ed_http_file_t       *f;
    struct stat           st;
    int                   fd = -1, err, tries;
    size_t                keep;

    for (tries = 0;; tries++) {
        err = ed_file_open_fd(path, len, root_len, symlinks, false, &fd);
        if ((err != EMFILE && err != ENFILE) || tries == 1
            || c->lru_tail == NULL)
        {
            break;
        }
        /* Out of descriptors: give half the cached ones back, retry. */
        keep = c->n / 2;
        while (c->lru_tail && c->n > keep) {
            ed_file_uncache(c->lru_tail);
        }
    }
    if (err) {
        return ed_file_status(err);
    }
    if (fstat(fd, &st) != 0) {
        err = errno;
        close(fd);
        return ed_file_status(err);
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        close(fd);
        return 404;
    }
    f = ed_file_new(path, len, root_len, symlinks, hash, fd, &st, NULL);
    if (f == NULL) {
        close(fd);
        errno = ENOMEM;
        return 500;
    }
    *out = f;
    return ED_OK;
}

/* The cached entry of a key, or NULL. Inline: the static hot path. */
static inline ed_http_file_t *
ed_file_lookup(const char *path, size_t len, size_t root_len, int symlinks,
               uint32_t hash)
{
    ed_http_file_cache_t *c = &ed_file_cache;
    ed_http_file_t       *f;

    if (c->buckets == NULL || c->conf.max == 0) {
        return NULL;
    }
    for (f = c->buckets[hash & c->mask]; f; f = f->hnext) {
        if (f->hash == hash && f->len == len && f->root_len == root_len
            && f->symlinks == symlinks && memcmp(f->path, path, len) == 0)
        {
            return f;
        }
    }
    return NULL;
}

static inline bool
ed_file_current(ed_http_file_t *f)
{
    if (!f->cached) {
        return false;
    }
    if (ed_current_msec - f->checked >= ed_file_cache.conf.valid) {
        if (!ed_file_unchanged(f)) {
            /* Replaced or changed on disk: opened again when next
             * asked. */
            ed_file_uncache(f);
            return false;
        }
        f->checked = ed_current_msec;
    }
    ed_file_lru_front(f);
    return true;
}

bool
ed_http_file_current(ed_http_file_t *f)
{
    return ed_file_current(f);
}

void
ed_http_file_drop(ed_http_file_t *f)
{
    ed_file_uncache(f);
}

/* Caches a new entry (when the cache is on); f->refs is 1. */
static void
ed_file_insert(ed_http_file_t *f)
{
    ed_http_file_cache_t *c = &ed_file_cache;

    f->refs = 1;
    if (c->buckets != NULL && c->conf.max > 0) {
        f->hnext = c->buckets[f->hash & c->mask];
        c->buckets[f->hash & c->mask] = f;
        f->next = c->lru_head;
        if (c->lru_head) {
            c->lru_head->prev = f;
        } else {
            c->lru_tail = f;
        }
        c->lru_head = f;
        f->cached = 1;
        c->n++;
        while (c->n > c->conf.max) {
            ed_file_uncache(c->lru_tail);
        }
    }
}

int
ed_http_file_open(const char *path, size_t len, size_t root_len,
                  int symlinks, ed_http_file_t **out)
{
    ed_http_file_t *f;
    uint32_t        hash;
    int             rc;

    if (symlinks == ED_HTTP_SYMLINKS_FOLLOW) {
        root_len = 0;  /* the walk does not apply: one key per path */
    }
    hash = ed_file_hash(path, len, root_len, symlinks);
    f = ed_file_lookup(path, len, root_len, symlinks, hash);
    if (f != NULL && ed_file_current(f)) {
        f->refs++;
        *out = f;
        return ED_OK;
    }
    /* None, or replaced or changed on disk (dropped by
     * ed_http_file_current): open it again. */
    rc = ed_file_create(path, len, root_len, symlinks, hash, &f);
    if (rc != ED_OK) {
        return rc;
    }
    ed_file_insert(f);
    *out = f;
    return ED_OK;
}

int
ed_http_file_adopt(const char *path, size_t len, int fd,
                   const struct stat *st, const char *content,
                   ed_http_file_t **out)
{
    ed_http_file_t *f;
    uint32_t        hash;

    if (!ed_http_file_cache_on() || !S_ISREG(st->st_mode)) {
        return ED_DECLINED;
    }
    hash = ed_file_hash(path, len, 0, ED_HTTP_SYMLINKS_FOLLOW);
    f = ed_file_lookup(path, len, 0, ED_HTTP_SYMLINKS_FOLLOW, hash);
    if (f != NULL) {
        ed_file_uncache(f);
    }
    f = ed_file_new(path, len, 0, ED_HTTP_SYMLINKS_FOLLOW, hash, fd, st,
                    content);
    if (f == NULL) {
        return ED_ERROR;
    }
    ed_file_insert(f);
    *out = f;
    return ED_OK;
}

bool
ed_http_file_cache_on(void)
{
    return ed_file_cache.buckets != NULL && ed_file_cache.conf.max > 0;
}

void
ed_http_file_release(ed_http_file_t *f)
{
    if (--f->refs == 0 && !f->cached) {
        ed_file_free(f);
    }
}

/* Escaping. */

int
ed_http_escape_path(ed_pool_t *pool, const char *s, size_t len, bool name,
                    ed_str_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            i, n = 0;
    char             *p;
    uint8_t           c;

#define ed_path_plain(c)                                                     \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z')               \
     || ((c) >= '0' && (c) <= '9')                                           \
     || ((c) != '\0' && strchr("-._~!$&'()*+,;=@", (c)) != NULL)             \
     || (!name && ((c) == '/' || (c) == ':')))

    for (i = 0; i < len; i++) {
        c = (uint8_t)s[i];
        n += ed_path_plain(c) ? 1 : 3;
    }
    p = ed_pnalloc(pool, n + 1);
    if (p == NULL) {
        return ED_ERROR;
    }
    out->data = p;
    out->len = n;
    for (i = 0; i < len; i++) {
        c = (uint8_t)s[i];
        if (ed_path_plain(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }
    *p = '\0';
#undef ed_path_plain
    return ED_OK;
}

/* Directory listings. */

typedef struct {
    char    *name;
    size_t   len;
    int64_t  size;
    time_t   mtime;
    bool     dir;
} ed_dir_entry_t;

/* qsort order of listings: directories first, then names bytewise. */
static int
ed_dir_entry_cmp(const void *a, const void *b)
{
    const ed_dir_entry_t *x = a, *y = b;
    int                   c;

    if (x->dir != y->dir) {
        return x->dir ? -1 : 1;  /* directories first */
    }
    c = memcmp(x->name, y->name, ed_min(x->len, y->len));
    if (c != 0) {
        return c;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Reads the entries of the directory open on fd (consumed), as they
 * would be served: links the policy refuses, broken links, dotfiles when
 * hide_dot, and what is neither a file nor a directory are left out.
 * Sorted: directories first, then by name. Returns ED_OK with *list, or
 * 500. */
static int
ed_dir_read(ed_pool_t *pool, int fd, int symlinks, bool hide_dot,
            ed_array_t **list)
{
    ed_dir_entry_t *e;
    struct dirent  *de;
    struct stat     st, lst;
    ed_array_t     *a;
    size_t          len;
    DIR            *dir;

    dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return 500;
    }
    a = ed_array_create(pool, 32, sizeof(ed_dir_entry_t));
    if (a == NULL) {
        closedir(dir);
        return 500;
    }
    while ((de = readdir(dir)) != NULL) {
        len = strlen(de->d_name);
        if ((len == 1 && de->d_name[0] == '.')
            || (len == 2 && de->d_name[0] == '.' && de->d_name[1] == '.')
            || (de->d_name[0] == '.' && hide_dot))
        {
            continue;
        }
        if (fstatat(dirfd(dir), de->d_name, &lst, AT_SYMLINK_NOFOLLOW)
            != 0)
        {
            continue;
        }
        st = lst;
        if (S_ISLNK(lst.st_mode)) {
            if (symlinks == ED_HTTP_SYMLINKS_DENY
                || fstatat(dirfd(dir), de->d_name, &st, 0) != 0
                || (symlinks == ED_HTTP_SYMLINKS_OWNER
                    && st.st_uid != lst.st_uid))
            {
                continue;
            }
        }
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
            continue;
        }
        e = ed_array_push(a);
        if (e == NULL || (e->name = ed_pstrdup(pool, de->d_name, len))
                             == NULL)
        {
            closedir(dir);
            return 500;
        }
        e->len = len;
        e->dir = S_ISDIR(st.st_mode) != 0;
        e->size = (int64_t)st.st_size;
        e->mtime = st.st_mtim.tv_sec;
    }
    closedir(dir);
    qsort(a->elts, a->nelts, sizeof(ed_dir_entry_t), ed_dir_entry_cmp);
    *list = a;
    return ED_OK;
}

/* A growing output buffer in a pool. */
typedef struct {
    ed_pool_t *pool;
    char      *data;
    size_t     len;
    size_t     cap;
    bool       failed;
} ed_dir_buf_t;

/* Makes room for n more bytes. Returns where they go, or NULL once an
 * allocation failed (then b->failed stays set). */
static char *
ed_dir_reserve(ed_dir_buf_t *b, size_t n)
{
    char   *p;
    size_t  cap;

    if (b->failed) {
        return NULL;
    }
    if (b->len + n > b->cap) {
        cap = ed_max(b->cap * 2, b->len + n + 1024);
        p = ed_pnalloc(b->pool, cap);
        if (p == NULL) {
            b->failed = true;
            return NULL;
        }
        if (b->len) {
            memcpy(p, b->data, b->len);
        }
        b->data = p;
        b->cap = cap;
    }
    return b->data + b->len;
}

/* Appends n bytes (nothing after a failed allocation). */
static void
ed_dir_put(ed_dir_buf_t *b, const char *s, size_t n)
{
    char *p = ed_dir_reserve(b, n);

    if (p != NULL) {
        memcpy(p, s, n);
        b->len += n;
    }
}

#define ed_dir_puts(b, s) ed_dir_put(b, s, sizeof(s) - 1)

/* HTML text: & < > " ' escaped. */
static void
ed_dir_put_html(ed_dir_buf_t *b, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            ed_dir_puts(b, "&amp;");
            break;
        case '<':
            ed_dir_puts(b, "&lt;");
            break;
        case '>':
            ed_dir_puts(b, "&gt;");
            break;
        case '"':
            ed_dir_puts(b, "&quot;");
            break;
        case '\'':
            ed_dir_puts(b, "&#39;");
            break;
        default:
            ed_dir_put(b, &s[i], 1);
        }
    }
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t
ed_dir_utf8(const uint8_t *s, size_t n)
{
    size_t   len, i;
    uint32_t c;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = c << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF. */
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000)
        || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
    {
        return 0;
    }
    return len;
}

/* A JSON string: quotes, backslashes and controls escaped; bytes that
 * are not UTF-8 become \u00XX so the document stays valid. */
static void
ed_dir_put_json(ed_dir_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char              u[6] = { '\\', 'u', '0', '0', 0, 0 };
    size_t            i, k;
    uint8_t           c;

    ed_dir_puts(b, "\"");
    for (i = 0; i < n; i += k) {
        c = (uint8_t)s[i];
        k = ed_dir_utf8((const uint8_t *)s + i, n - i);
        if (c == '"' || c == '\\') {
            ed_dir_puts(b, "\\");
            ed_dir_put(b, (const char *)&s[i], 1);
        } else if (c < 0x20 || k == 0) {
            u[4] = hex[c >> 4];
            u[5] = hex[c & 0xf];
            ed_dir_put(b, u, 6);
            k = 1;
        } else {
            ed_dir_put(b, s + i, k);
        }
    }
    ed_dir_puts(b, "\"");
}

int
ed_http_dir_list(ed_pool_t *pool, const char *path, size_t len,
                 size_t root_len, int symlinks, bool hide_dot, int format,
                 const ed_str_t *uri, ed_str_t *out)
{
    ed_dir_entry_t *e;
    ed_dir_buf_t    b;
    ed_array_t     *list;
    ed_str_t        href;
    struct tm       tm;
    char            line[128];
    size_t          i, n, pad;
    int             rc, fd;

    rc = ed_http_dir_open(path, len, root_len, symlinks, &fd);
    if (rc != ED_OK) {
        return rc;
    }
    rc = ed_dir_read(pool, fd, symlinks, hide_dot, &list);
    if (rc != ED_OK) {
        return rc;
    }
    memset(&b, 0, sizeof(b));
    b.pool = pool;
    e = list->elts;
    if (format == ED_HTTP_LIST_JSON) {
        ed_dir_puts(&b, "[");
        for (i = 0; i < list->nelts; i++) {
            if (i) {
                ed_dir_puts(&b, ",");
            }
            ed_dir_puts(&b, "\n{\"name\":");
            ed_dir_put_json(&b, e[i].name, e[i].len);
            n = (size_t)snprintf(line, sizeof(line),
                                 ",\"type\":\"%s\",\"mtime\":\"",
                                 e[i].dir ? "directory" : "file");
            ed_dir_put(&b, line, n);
            n = (size_t)(ed_http_time(line, e[i].mtime) - line);
            ed_dir_put(&b, line, n);
            n = e[i].dir ? (size_t)snprintf(line, sizeof(line), "\"}")
                         : (size_t)snprintf(line, sizeof(line),
                                            "\",\"size\":%lld}",
                                            (long long)e[i].size);
            ed_dir_put(&b, line, n);
        }
        ed_dir_puts(&b, "\n]\n");
    } else {
        ed_dir_puts(&b, "<!DOCTYPE html>\n<html>\n<head>"
                           "<meta charset=\"utf-8\"><title>Index of ");
        ed_dir_put_html(&b, uri->data, uri->len);
        ed_dir_puts(&b, "</title></head>\n<body>\n<h1>Index of ");
        ed_dir_put_html(&b, uri->data, uri->len);
        ed_dir_puts(&b, "</h1><hr><pre><a href=\"../\">../</a>\n");
        for (i = 0; i < list->nelts; i++) {
            if (ed_http_escape_path(pool, e[i].name, e[i].len, true, &href)
                != ED_OK)
            {
                return 500;
            }
            ed_dir_puts(&b, "<a href=\"");
            ed_dir_put_html(&b, href.data, href.len);
            if (e[i].dir) {
                ed_dir_puts(&b, "/");
            }
            ed_dir_puts(&b, "\">");
            ed_dir_put_html(&b, e[i].name, e[i].len);
            if (e[i].dir) {
                ed_dir_puts(&b, "/");
            }
            ed_dir_puts(&b, "</a>");
            pad = e[i].len + e[i].dir < 50 ? 50 - e[i].len - e[i].dir : 1;
            while (pad--) {
                ed_dir_puts(&b, " ");
            }
            gmtime_r(&e[i].mtime, &tm);
            n = strftime(line, sizeof(line), "%d-%b-%Y %H:%M", &tm);
            ed_dir_put(&b, line, n);
            n = e[i].dir ? (size_t)snprintf(line, sizeof(line), "%20s\n",
                                            "-")
                         : (size_t)snprintf(line, sizeof(line), "%20lld\n",
                                            (long long)e[i].size);
            ed_dir_put(&b, line, n);
        }
        ed_dir_puts(&b, "</pre><hr></body>\n</html>\n");
    }
    if (b.failed) {
        return 500;
    }
    out->data = b.data;
    out->len = b.len;
    return ED_OK;
}
