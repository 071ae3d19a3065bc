/* libFuzzer target: the path normaliser, with its output checked, and
 * the mapping of URIs (normalised or not) under a root or an alias. */
#include "ed_core.h"
#include "ed_http_file_cache.h"
#include "ed_http_parse.h"
#include "fuzz.h"

/* A normal path: starts with '/', no NUL, no empty, "." or ".." segment. */
static void
ed_fuzz_check_normal(const char *out, size_t olen)
{
    size_t i, s, n;

    ed_fuzz_assert(olen >= 1 && out[0] == '/');
    ed_fuzz_assert(memchr(out, '\0', olen) == NULL);
    for (s = 1; s < olen; s = i + 1) {
        for (i = s; i < olen && out[i] != '/'; i++) {
            /* the end of the segment */
        }
        n = i - s;
        ed_fuzz_assert(n != 0);
        ed_fuzz_assert(!(n == 1 && out[s] == '.'));
        ed_fuzz_assert(!(n == 2 && out[s] == '.' && out[s + 1] == '.'));
    }
}

/* Each spelling of a root or an alias location. */
static const struct {
    const char *dir;
    const char *prefix;     /* NULL: a root */
} ed_fuzz_maps[] = {
    { "/srv/www", NULL },
    { "/srv/www/", NULL },
    { "/", NULL },
    { "/srv/st/", "/st" },
    { "/srv/st", "/st" },
    { "/srv/st/", "/st/" },
    { "/srv/st", "/st/" },
    { "/srv/st//", "/s" },
    { "/", "/st" },
};

/* uri mapped with each: refused, or a path made of the directory (its
 * trailing slashes dropped) and a rest that is empty or starts with '/'
 * and has no NUL, "." or ".." name (nothing outside the directory, nor a
 * sibling of it). An alias's rest is the URI after the prefix, less the
 * prefix's trailing slash. */
static void
ed_fuzz_check_map(ed_pool_t *pool, const char *uri, size_t len)
{
    ed_str_t    dir, prefix, u, out;
    size_t      i, s, n, rl, dlen, plen, rlen;
    const char *rest;
    int         rc;

    u.data = (char *)uri;
    u.len = len;
    for (i = 0; i < ed_nelems(ed_fuzz_maps); i++) {
        dir.data = (char *)ed_fuzz_maps[i].dir;
        dir.len = strlen(dir.data);
        prefix.data = (char *)(ed_fuzz_maps[i].prefix
                               ? ed_fuzz_maps[i].prefix : "");
        prefix.len = strlen(prefix.data);
        rc = ed_http_map_path(pool, &dir, ed_fuzz_maps[i].prefix ? &dir
                                                                 : NULL,
                              &prefix, &u, 4, &out, &rl);
        ed_fuzz_assert(rc == ED_OK || rc == 404);
        if (rc != ED_OK) {
            continue;
        }
        for (dlen = dir.len; dlen && dir.data[dlen - 1] == '/'; dlen--) {
            /* the directory as joined */
        }
        ed_fuzz_assert(rl == dlen && memcmp(out.data, dir.data, dlen) == 0);
        ed_fuzz_assert(out.data[out.len] == '\0');
        /* What the rest must be: the URI after the prefix (less its
         * trailing slash), or the whole URI under a root. */
        plen = 0;
        if (ed_fuzz_maps[i].prefix) {
            plen = prefix.len - (prefix.data[prefix.len - 1] == '/');
            ed_fuzz_assert(len >= plen
                           && memcmp(uri, prefix.data, plen) == 0);
        }
        rest = out.data + rl;
        rlen = out.len - rl;
        if (dlen == 0 && len == plen) {
            /* Nothing joined to "/": the path is "/" itself. */
            ed_fuzz_assert(out.len == 1 && out.data[0] == '/');
            continue;
        }
        ed_fuzz_assert(rlen == len - plen
                       && memcmp(rest, uri + plen, rlen) == 0);
        ed_fuzz_assert(rlen == 0 || rest[0] == '/');
        ed_fuzz_assert(memchr(rest, '\0', rlen) == NULL);
        for (s = 1; s <= rlen; s = n + 1) {
            for (n = s; n < rlen && rest[n] != '/'; n++) {
                /* the end of the name */
            }
            ed_fuzz_assert(!(n - s == 1 && rest[s] == '.'));
            ed_fuzz_assert(!(n - s == 2 && rest[s] == '.'
                             && rest[s + 1] == '.'));
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char       *out, *again;
    size_t      olen, alen;
    int         rc;
    ed_pool_t  *pool;

    /* Exactly size bytes: the documented minimum, so ASan sees overruns. */
    out = malloc(size ? size : 1);
    again = malloc(size ? size : 1);
    if (out == NULL || again == NULL) {
        abort();
    }
    pool = ed_pool_create(4096);
    if (pool == NULL) {
        abort();
    }
    /* Raw, as a try_files result may be. */
    ed_fuzz_check_map(pool, in, size);
    olen = (size_t)-1;
    rc = ed_http_normalize_path(in, size, out, &olen);
    ed_fuzz_assert(rc == ED_OK || rc == ED_ERROR);
    if (size == 0 || in[0] != '/') {
        ed_fuzz_assert(rc == ED_ERROR);
    }
    if (rc == ED_OK) {
        ed_fuzz_assert(olen <= size);
        ed_fuzz_check_normal(out, olen);
        ed_fuzz_check_map(pool, out, olen);
        /* Idempotent when nothing is left to decode. */
        if (memchr(out, '%', olen) == NULL) {
            rc = ed_http_normalize_path(out, olen, again, &alen);
            ed_fuzz_assert(rc == ED_OK && alen == olen
                           && memcmp(again, out, olen) == 0);
        }
        /* In place gives the same answer. */
        memcpy(again, in, size);
        rc = ed_http_normalize_path(again, size, again, &alen);
        ed_fuzz_assert(rc == ED_OK && alen == olen
                       && memcmp(again, out, olen) == 0);
    }
    ed_pool_destroy(pool);
    free(out);
    free(again);
    return 0;
}
