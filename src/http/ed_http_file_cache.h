/* Files for the static module: mapping URIs to paths under a root or an
 * alias, opening them without escaping the root, a per-worker cache of
 * open descriptors, their stat and (for small files) their bytes, and
 * directory listings. */
#ifndef ED_HTTP_FILE_CACHE_H
#define ED_HTTP_FILE_CACHE_H

#include "ed_core.h"

#include <sys/stat.h>

/* What to do with symbolic links below the root (`symlinks`). */
enum {
    ED_HTTP_SYMLINKS_FOLLOW = 0,
    ED_HTTP_SYMLINKS_OWNER,     /* only when link and target owners match */
    ED_HTTP_SYMLINKS_DENY
};

/* Maps a URI to a file system path: root + uri, or, with an alias, alias
 * + (uri minus the location prefix). The part joined to the directory is
 * re-rooted at a '/': under an alias it starts at the prefix's trailing
 * slash, or right after a prefix without one, where it must be empty or
 * start with '/' ("/img" + "x" or "/img" + ".." would name a sibling of
 * the alias or its parent: 404). It may hold no "." or ".." name and no
 * NUL, normalised or not (404). Trailing slashes of the directory are
 * dropped. extra bytes of room are left after the path (index names,
 * ".gz"). Returns ED_OK with out (NUL-terminated, pool memory) and
 * *root_len, the length of its trusted leading part (the root or alias
 * directory; the symlink policy applies below it); 404 when the URI does
 * not lie under the alias or would leave the directory; 500 on ENOMEM. */
int ed_http_map_path(ed_pool_t *pool, const ed_str_t *root,
                     const ed_str_t *alias, const ed_str_t *prefix,
                     const ed_str_t *uri, size_t extra, ed_str_t *out,
                     size_t *root_len);

/* Whether some component of path starts with '.' (dotfiles: deny).
 * Returns true or false. */
bool ed_http_path_has_dotfile(const char *path, size_t len);

typedef struct ed_http_file_s ed_http_file_t;

/* A file (or directory) as opened and cached. Read-only for users; valid
 * while referenced. */
struct ed_http_file_s {
    /* Cache links and key. */
    ed_http_file_t  *hnext;
    ed_http_file_t  *prev;      /* LRU: most recently used first */
    ed_http_file_t  *next;
    char            *path;      /* NUL-terminated */
    size_t           len;
    size_t           root_len;
    uint32_t         hash;
    int              symlinks;

    int              fd;        /* -1 for directories and inline files */
    int64_t          size;
    time_t           mtime;
    struct timespec  mtim;
    dev_t            dev;
    ino_t            ino;
    char            *content;   /* the whole file when small, or NULL */
    ed_msec_t        checked;   /* last validation (ed_current_msec) */
    unsigned         refs;
    unsigned         is_dir:1;
    unsigned         cached:1;  /* in the hash; else freed at refs 0 */

    /* A user's data about this version of the file (the proxy cache's
     * checked entry head): aux_free(f) is called when f is freed. */
    void            *aux;
    void           (*aux_free)(ed_http_file_t *f);

    ed_str_t         etag;           /* "mtime-size" in hex, quoted */
    ed_str_t         last_modified;  /* HTTP date */
    char             etag_buf[40];
    char             lm_buf[32];
};

typedef struct {
    size_t     max;         /* entries kept; 0: nothing is cached */
    ed_msec_t  valid;       /* re-check an entry's stat after this */
    size_t     inline_max;  /* files up to this size are held in memory */
    size_t     memory_max;  /* at most this many bytes held in memory */
} ed_http_file_cache_conf_t;

/* Sets the process's cache up (or changes its limits; entries stay).
 * ED_OK or ED_ERROR (ENOMEM). */
int ed_http_file_cache_init(const ed_http_file_cache_conf_t *conf);
/* Closes every unreferenced entry and frees the table (worker exit).
 * Referenced entries are freed by their last release. */
void ed_http_file_cache_free(void);
/* Entries in the cache (for tests). */
size_t ed_http_file_cache_count(void);

/* Opens path (NUL-terminated, len bytes) through the cache: its first
 * root_len bytes are trusted, every component below them is opened
 * according to symlinks (ED_HTTP_SYMLINKS_*) without races (openat with
 * O_NOFOLLOW, one component at a time). Directories and regular files
 * only. Returns ED_OK with *out referenced (give it back with
 * ed_http_file_release), or an HTTP status: 404 (missing, or not a file
 * nor a directory), 403 (refused by the symlink policy, or EACCES), 500
 * (other errors, errno set: the caller logs them). */
int ed_http_file_open(const char *path, size_t len, size_t root_len,
                      int symlinks, ed_http_file_t **out);
/* Drops a reference; an entry no longer cached is closed at the last. */
void ed_http_file_release(ed_http_file_t *f);
/* Caches fd, a regular file the caller opened at path (no symlink
 * policy: the key is the path as ed_http_file_open with
 * ED_HTTP_SYMLINKS_FOLLOW), st its stat; content, when not NULL, all of
 * its bytes already read (kept when small, as a file the cache read). An
 * entry cached for path is dropped. Returns ED_OK with *out referenced
 * (fd is the entry's now), ED_DECLINED when the cache is off, ED_ERROR
 * (ENOMEM); fd stays the caller's but for ED_OK. */
int ed_http_file_adopt(const char *path, size_t len, int fd,
                       const struct stat *st, const char *content,
                       ed_http_file_t **out);
/* Whether the cache is on (open_file_cache max above 0). */
bool ed_http_file_cache_on(void);
/* One more reference to f (give it back with ed_http_file_release). */
static inline void
ed_http_file_hold(ed_http_file_t *f)
{
    f->refs++;
}
/* Whether f, held by the caller, still stands for its path by the cache's
 * rules: cached, and checked within `valid` or unchanged on a new stat
 * (then checked again); it becomes the most recently used. A file found
 * changed is dropped. */
bool ed_http_file_current(ed_http_file_t *f);
/* Takes f out of the cache (the next open of its path opens the file
 * again); it stays valid while referenced. */
void ed_http_file_drop(ed_http_file_t *f);
/* Opens a directory for listing (not cached), with the same policy.
 * Returns ED_OK with *fd (O_RDONLY|O_DIRECTORY), or a status as
 * ed_http_file_open does. */
int ed_http_dir_open(const char *path, size_t len, size_t root_len,
                     int symlinks, int *fd);

/* Percent-encodes s for a URI path: what is not unreserved, a sub-delim,
 * '@', and (unless name: one name of a path) '/' or ':'. Returns ED_OK
 * with out (NUL-terminated, pool memory) or ED_ERROR (ENOMEM). */
int ed_http_escape_path(ed_pool_t *pool, const char *s, size_t len,
                        bool name, ed_str_t *out);

/* Formats of ed_http_dir_list. */
enum { ED_HTTP_LIST_HTML = 0, ED_HTTP_LIST_JSON };

/* Lists the directory at path (opened with the symlink policy, like
 * ed_http_file_open) for the URI uri: entries the policy refuses, broken
 * links, dotfiles when hide_dot, and what is neither a file nor a
 * directory are left out; directories come first, then names in byte
 * order. HTML (names escaped, sizes, dates) or a JSON array of {name,
 * type, mtime, size}. Returns ED_OK with out in pool memory, or a status
 * (404, 403, 500 with errno set: the caller logs it). */
int ed_http_dir_list(ed_pool_t *pool, const char *path, size_t len,
                     size_t root_len, int symlinks, bool hide_dot,
                     int format, const ed_str_t *uri, ed_str_t *out);

#endif /* ED_HTTP_FILE_CACHE_H */
