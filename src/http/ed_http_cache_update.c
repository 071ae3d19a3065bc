/* The entry a 304 revalidated, written anew (RFC 9111 4.3.4): its new
 * prefix (times, lifetime, validators and the updated head) and the
 * body of the stored file, copied by the kernel, in path/.tmp/ and
 * renamed over the old file. A reader of the old file keeps its
 * descriptor and finishes from it. */
#include "ed_http_cache_int.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

/* Body bytes per copy call: each call is bounded I/O, and a page cache
 * copy of 8 MiB takes a few milliseconds. */
#define ED_PC_COPY_MAX  ((size_t)8 << 20)

/* Copies len bytes at off of in to the end of out without a copy in
 * user space: copy_file_range (a reflink or an in-kernel copy), else
 * sendfile (another file system, an old kernel). 0 or errno; EIO when
 * in is shorter. */
static int
ed_pc_copy_body(int in, uint64_t off, uint64_t len, int out)
{
    loff_t  pos;
    off_t   spos;
    ssize_t n;
    bool    cfr = true;

    while (len > 0) {
        if (cfr) {
            pos = (loff_t)off;
            n = copy_file_range(in, &pos, out, NULL,
                                (size_t)ed_min(len, (uint64_t)ED_PC_COPY_MAX),
                                0);
            if (n < 0 && (errno == EXDEV || errno == EINVAL
                          || errno == ENOSYS || errno == EOPNOTSUPP))
            {
                cfr = false;
                continue;
            }
        } else {
            spos = (off_t)off;
            n = sendfile(out, in, &spos,
                         (size_t)ed_min(len, (uint64_t)ED_PC_COPY_MAX));
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? errno : EIO;
        }
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

int
ed_pc_update_file(ed_http_request_t *r, ed_http_cache_req_t *c,
                  const char *prefix, size_t len)
{
    uint8_t     out[ED_CACHE_EVICT * ED_CACHE_HASH_LEN];
    struct stat st;
    char       *path, tmp[PATH_MAX];
    size_t      n;
    int         fd, err;

    if (ed_http_cache_index_purged(c->cache->zone, c->main_hash)
        > c->start)
    {
        /* PURGEd since the lookup: not put back. */
        return ED_DECLINED;
    }
    path = ed_pc_file_path(r->pool, c->cache, c->hash, NULL, NULL);
    if (path == NULL) {
        return ED_ERROR;
    }
    snprintf(tmp, sizeof(tmp), "%s/.tmp/%d.%u", c->cache->path.data,
             (int)getpid(), ++ed_pc_tmp_serial);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ed_pc_write_failed(r, c, errno);
        return ED_DECLINED;
    }
    err = ed_pc_write(fd, prefix, len);
    if (err == 0) {
        err = ed_pc_copy_body(c->fd, c->hdr.body_off, c->hdr.body_len, fd);
    }
    if (err == 0 && fstat(fd, &st) != 0) {
        err = errno;
    }
    if (close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err) {
        ed_pc_write_failed(r, c, err);
        unlink(tmp);
        return ED_DECLINED;
    }
    if (c->igen != 0
        && ed_http_cache_index_gen(c->cache->zone, c->main_hash) != c->igen)
    {
        /* Another response was stored for the key since the lookup
         * (a bypass, another worker): the 304 answered for the older
         * one, which is not put back. */
        unlink(tmp);
        return ED_DECLINED;
    }
    if (rename(tmp, path) != 0) {
        /* The directories went with the entry (removed meanwhile): it
         * is not put back. */
        ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": rename(\"%s\", "
                    "\"%s\") failed", c->cache->name.data, tmp, path);
        unlink(tmp);
        return ED_DECLINED;
    }
    ed_http_cache_write_ok(c->cache->zone);
    n = ed_http_cache_index_stored(c->cache->zone, c->main_hash,
                                   (int64_t)st.st_blocks * 512,
                                   (int64_t)ed_time_sec,
                                   (uint64_t)c->cache->max_size,
                                   (int64_t)(c->cache->inactive / 1000),
                                   out, ED_CACHE_EVICT);
    ed_pc_unlink_all(r, c->cache, out, n);
    return ED_OK;
}
