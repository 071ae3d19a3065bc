/* The entry a 304 revalidated, written anew (RFC 9111 4.3.4): its new
 * prefix (times, lifetime, validators and the updated head) and the
 * body of the stored file, copied, in path/.tmp/ and
 * renamed over the old file. A reader of the old file keeps its
 * descriptor and finishes from it. */
#include "ed_http_cache_int.h"

#include <fcntl.h>
#include <sys/stat.h>

/* Copies len bytes at off of in to out, whose end is at pos, through
 * buf (ED_CACHE_STAGE bytes): each write ends at a multiple of
 * ED_CACHE_STAGE in out, as a stored body's do, so that the page cache
 * holds the new file in large folios (copy_file_range's in-kernel copy
 * writes it a pipe's worth at a time, at any offset, leaving folios of
 * one to a few pages; and the prefixes' lengths differ, so no file
 * system could share the blocks instead). 0 or errno; EIO when in is
 * shorter. */
static int
ed_pc_copy_body(int in, uint64_t off, uint64_t len, int out, uint64_t pos,
                char *buf)
{
    ssize_t n;
    size_t  want;
    int     err;

    while (len > 0) {
        want = ED_CACHE_STAGE - (size_t)(pos % ED_CACHE_STAGE);
        want = (size_t)ed_min((uint64_t)want, len);
        n = pread(in, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? errno : EIO;
        }
        err = ed_pc_write(out, buf, (size_t)n);
        if (err) {
            return err;
        }
        off += (uint64_t)n;
        pos += (uint64_t)n;
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
    char       *path, *buf, tmp[PATH_MAX];
    size_t      n;
    int         fd, err;

    if (ed_http_cache_index_purged(c->cache->zone, c->main_hash)
        > c->start)
    {
        /* PURGEd since the lookup: not put back. */
        return ED_DECLINED;
    }
    path = ed_pc_file_path(r->pool, c->cache, c->hash, NULL, NULL);
    buf = ed_pnalloc(r->pool, ED_CACHE_STAGE);
    if (path == NULL || buf == NULL) {
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
        err = ed_pc_copy_body(c->fd, c->hdr.body_off, c->hdr.body_len, fd,
                              len, buf);
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
