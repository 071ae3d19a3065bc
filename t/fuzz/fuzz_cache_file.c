/* libFuzzer target: the cache file header parser. The input is a whole
 * cache file; whatever it holds, the check returns a verdict, and a
 * header it accepts has every part inside the file, in order, within
 * its bounds. The same bytes then go through the storage rules as a
 * response head's Cache-Control, Vary and Expires values. */
#include "ed_core.h"
#include "ed_http_cache.h"
#include "fuzz.h"

static void
ed_fuzz_rules(const char *in, size_t len)
{
    static const ed_http_cache_valid_t valid[] = { { 200, 60 }, { 0, 5 } };
    ed_http_cache_verdict_t            v;
    ed_http_cache_rules_t              r;
    ed_http_header_t                   h[4];
    ed_str_t                           out;
    ed_pool_t                         *pool;

    pool = ed_pool_create(4096);
    if (pool == NULL) {
        abort();
    }
    h[0].name = (ed_str_t) ed_string("Cache-Control");
    h[1].name = (ed_str_t) ed_string("Vary");
    h[2].name = (ed_str_t) ed_string("Expires");
    h[3].name = (ed_str_t) ed_string("Age");
    h[0].value.data = h[1].value.data = (char *)in;
    h[2].value.data = h[3].value.data = (char *)in;
    h[0].value.len = h[1].value.len = h[2].value.len = h[3].value.len = len;
    r.valid = valid;
    r.nvalid = 2;
    r.ignore = 0;
    r.authorization = len & 1;
    r.now = 1700000000;
    ed_http_cache_decide(pool, &r, 200, h, 4, &v);
    ed_fuzz_assert(v.lifetime >= 0 && v.initial_age >= 0);
    if (v.detail == NULL && v.vary.len) {
        ed_fuzz_assert(ed_http_cache_variant(pool, &v.vary, h, 4, &out)
                       == ED_OK);
    }
    ed_pool_destroy(pool);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_http_cache_hdr_t h;
    char               *copy;
    int                 rc;

    /* Exactly size bytes, so ASan sees any read past the file. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, data, size);
    rc = ed_http_cache_hdr_check(copy, size, size, &h);
    ed_fuzz_assert(rc >= ED_CACHE_HDR_OK && rc <= ED_CACHE_HDR_CRC);
    ed_fuzz_assert(ed_http_cache_hdr_error(rc) != NULL);
    if (rc == ED_CACHE_HDR_OK) {
        ed_fuzz_assert(h.key_off == sizeof(h) && h.key_len > 0
                       && h.key_len <= ED_CACHE_KEY_MAX);
        ed_fuzz_assert(h.body_off <= size
                       && h.body_off + h.body_len == size);
        ed_fuzz_assert(h.etag_len == 0
                       || (h.etag_off >= h.head_off
                           && h.etag_off + h.etag_len <= h.body_off));
    }
    /* The header alone, for a file claimed longer. */
    rc = ed_http_cache_hdr_check(copy, size, (uint64_t)size * 2 + 1, &h);
    ed_fuzz_assert(rc != ED_CACHE_HDR_OK || size == 0);
    ed_fuzz_rules(copy, size < 512 ? size : 512);
    free(copy);
    return 0;
}
