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

/* Body bytes copied in one turn of the loop: a larger body goes on a
 * step per turn, from a timer a millisecond later (the socket events
 * run between steps: posted callbacks, or a timer due at once, would
 * run the next step in the same turn), so that no revalidation of a
 * large entry holds the worker for the whole copy. */
#define ED_PC_UPDATE_STEP  ((uint64_t)8 << 20)

typedef struct ed_pc_update_s ed_pc_update_t;

struct ed_pc_update_s {
    ed_timer_t           step;
    ed_http_request_t   *r;
    ed_http_cache_req_t *c;
    ed_pc_update_pt      done;
    int                  fd;
    uint64_t             off;     /* in c->fd */
    uint64_t             left;
    uint64_t             pos;     /* in fd */
    char                *buf;
    char                 tmp[PATH_MAX];
};

/* The copy is over (err 0) or failed: the file closed, checked again
 * against a PURGE or a newer store, and renamed over the entry. ED_OK,
 * ED_DECLINED. */
static int
ed_pc_update_end(ed_pc_update_t *u, int err)
{
    ed_http_request_t   *r = u->r;
    ed_http_cache_req_t *c = u->c;
    struct stat          st;
    char                *path;

    c->update = NULL;
    if (err == 0 && fstat(u->fd, &st) != 0) {
        err = errno;
    }
    if (close(u->fd) != 0 && err == 0) {
        err = errno;
    }
    if (err) {
        ed_pc_write_failed(r, c, err);
        unlink(u->tmp);
        return ED_DECLINED;
    }
    if (ed_http_cache_index_purged(c->cache->zone, c->main_hash) > c->start
        || (c->igen != 0
            && ed_http_cache_index_gen(c->cache->zone, c->main_hash)
               != c->igen))
    {
        /* PURGEd, or another response stored for the key (a bypass,
         * another worker) since the lookup: the 304 answered for the
         * older one, which is not put back. */
        unlink(u->tmp);
        return ED_DECLINED;
    }
    path = ed_pc_file_path(r->pool, c->cache, c->hash, NULL, NULL);
    if (path == NULL || rename(u->tmp, path) != 0) {
        /* The directories went with the entry (removed meanwhile): it
         * is not put back. */
        if (path != NULL) {
            ed_http_log(ED_LOG_ERR, r, errno, "cache \"%s\": rename(\"%s\""
                        ", \"%s\") failed", c->cache->name.data, u->tmp,
                        path);
        }
        unlink(u->tmp);
        return ED_DECLINED;
    }
    ed_pc_counted(r, c, (int64_t)st.st_blocks * 512);
    return ED_OK;
}

/* One step of the copy: 0 and u->left 0 when over, or errno. */
static int
ed_pc_update_step(ed_pc_update_t *u)
{
    uint64_t k = ed_min(u->left, ED_PC_UPDATE_STEP);
    int      err;

    err = ed_pc_copy_body(u->c->fd, u->off, k, u->fd, u->pos, u->buf);
    u->off += k;
    u->pos += k;
    u->left -= k;
    return err;
}

static void
ed_pc_update_next(ed_timer_t *t)
{
    ed_pc_update_t *u = t->data;
    int             err;

    err = ed_pc_update_step(u);
    if (err == 0 && u->left > 0) {
        ed_timer_add(ed_worker->loop, &u->step, 1);
        return;
    }
    u->done(u->r, u->c, ed_pc_update_end(u, err));
}

void
ed_pc_update_cancel(ed_http_cache_req_t *c)
{
    ed_pc_update_t *u = c->update;

    if (u == NULL) {
        return;
    }
    c->update = NULL;
    if (ed_timer_active(&u->step)) {
        ed_timer_del(ed_worker->loop, &u->step);
    }
    close(u->fd);
    unlink(u->tmp);
}

int
ed_pc_update_file(ed_http_request_t *r, ed_http_cache_req_t *c,
                  const char *prefix, size_t len, ed_pc_update_pt done)
{
    ed_pc_update_t *u;
    int             err;

    if (ed_http_cache_index_purged(c->cache->zone, c->main_hash)
        > c->start)
    {
        /* PURGEd since the lookup: not put back. */
        return ED_DECLINED;
    }
    u = ed_pcalloc(r->pool, sizeof(*u));
    if (u == NULL) {
        return ED_ERROR;
    }
    u->buf = ed_pnalloc(r->pool, ED_CACHE_STAGE);
    if (u->buf == NULL) {
        return ED_ERROR;
    }
    u->r = r;
    u->c = c;
    u->done = done;
    u->off = c->hdr.body_off;
    u->left = c->hdr.body_len;
    u->pos = len;
    u->step.handler = ed_pc_update_next;
    u->step.data = u;
    snprintf(u->tmp, sizeof(u->tmp), "%s/.tmp/%d.%u", c->cache->path.data,
             (int)getpid(), ++ed_pc_tmp_serial);
    u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (u->fd < 0) {
        ed_pc_write_failed(r, c, errno);
        return ED_DECLINED;
    }
    c->update = u;
    err = ed_pc_write(u->fd, prefix, len);
    if (err == 0) {
        err = ed_pc_update_step(u);
    }
    if (err == 0 && u->left > 0) {
        ed_timer_add(ed_worker->loop, &u->step, 1);
        return ED_AGAIN;
    }
    return ed_pc_update_end(u, err);
}
