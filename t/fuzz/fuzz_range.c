/* libFuzzer target: the Range parser (its output checked), and the same
 * bytes through the precondition, If-Range and Accept-Encoding code. */
#include "ed_core.h"
#include "ed_http_range.h"
#include "fuzz.h"

/* Checks one parse against a representation of size bytes: ranges lie
 * inside it, are not empty, do not overlap, and there are at most max. */
static void
ed_fuzz_range(const char *in, size_t len, int64_t size, size_t max)
{
    ed_http_range_t out[ED_HTTP_RANGES_MAX];
    size_t          n = (size_t)-1, i, j;
    int64_t         total = 0;
    int             rc;

    rc = ed_http_range_parse(in, len, size, out, max, &n);
    ed_fuzz_assert(rc == ED_HTTP_RANGE_OK || rc == ED_HTTP_RANGE_IGNORE
                   || rc == ED_HTTP_RANGE_UNSATISFIABLE);
    if (rc != ED_HTTP_RANGE_OK) {
        ed_fuzz_assert(n == 0);
        return;
    }
    ed_fuzz_assert(n >= 1 && n <= max);
    for (i = 0; i < n; i++) {
        ed_fuzz_assert(out[i].start >= 0 && out[i].start < out[i].end);
        ed_fuzz_assert(out[i].end <= size);
        total += out[i].end - out[i].start;
        for (j = i + 1; j < n; j++) {
            ed_fuzz_assert(out[i].end <= out[j].start
                           || out[j].end <= out[i].start);
        }
    }
    /* No amplification: never more bytes than the file has. */
    ed_fuzz_assert(total <= size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t sizes[] = { 0, 1, 2, 10, 100, 4096, 1 << 20,
                                     INT64_MAX / 2, INT64_MAX };
    static const ed_str_t etag = ed_string("\"5f3a-1c2\"");
    const char           *in;
    char                 *copy;
    ed_http_cond_t        cond;
    ed_str_t              v;
    size_t                i;

    /* Exactly size bytes, so ASan sees any read past the value. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, data, size);
    in = copy;
    for (i = 0; i < ed_nelems(sizes); i++) {
        ed_fuzz_range(in, size, sizes[i], ED_HTTP_RANGES_MAX);
        ed_fuzz_range(in, size, sizes[i], 1);
    }

    /* The same bytes as validator lists and dates. */
    v.data = copy;
    v.len = size;
    ed_http_etag_match(in, size, &etag, true);
    ed_http_etag_match(in, size, &etag, false);
    ed_http_cond_if_range(&v, &etag, 784111777);
    ed_http_accepts_coding(&v, "br", 2);
    ed_http_accepts_coding(&v, "gzip", 4);
    memset(&cond, 0, sizeof(cond));
    cond.if_match = &v;
    cond.if_modified_since = &v;
    ed_fuzz_assert(ed_http_cond_eval(&cond, &etag, 784111777, true) != 304
                   || ed_http_etag_match(in, size, &etag, false));
    memset(&cond, 0, sizeof(cond));
    cond.if_none_match = &v;
    cond.if_unmodified_since = &v;
    i = (size_t)ed_http_cond_eval(&cond, &etag, 784111777, false);
    ed_fuzz_assert(i == 0 || i == 412);
    free(copy);
    return 0;
}
