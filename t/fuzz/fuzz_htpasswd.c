/* libFuzzer target: a user file, line by line, through the htpasswd
 * parser, and the input as a password and as a setting through apr1
 * and {SHA}. An accepted line has a name without ':' or control
 * characters and a hash of a known kind inside the line; a refused one
 * says why. */
#include "ed_core.h"
#include "ed_http_htpasswd.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_htpasswd_entry_t e;
    const char         *err, *p, *end, *nl;
    char               *copy, out[ED_APR1_MAX], again[ED_APR1_MAX];
    char                sha[ED_SHA1_MAX];
    size_t              i;
    int                 rc, kind;

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, data, size);

    for (p = copy, end = copy + size; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            nl = end;
        }
        err = NULL;
        rc = ed_htpasswd_parse_line(p, (size_t)(nl - p), &e, &err);
        ed_fuzz_assert(rc == ED_OK || rc == ED_DECLINED || rc == ED_ERROR);
        ed_fuzz_assert(e.user.data == p && e.user.len <= (size_t)(nl - p));
        if (rc == ED_ERROR) {
            /* A reason; a name given stops before the first ':'. */
            ed_fuzz_assert(err != NULL && err[0] != '\0');
            ed_fuzz_assert(memchr(e.user.data, ':', e.user.len) == NULL);
            continue;
        }
        if (rc == ED_DECLINED) {
            continue;
        }
        ed_fuzz_assert(e.user.len > 0 && e.user.len <= ED_HTPASSWD_USER_MAX);
        ed_fuzz_assert(memchr(e.user.data, ':', e.user.len) == NULL);
        for (i = 0; i < e.user.len; i++) {
            ed_fuzz_assert((unsigned char)e.user.data[i] >= 0x20
                           && e.user.data[i] != 0x7f);
        }
        ed_fuzz_assert(e.hash.data == e.user.data + e.user.len + 1);
        ed_fuzz_assert(e.hash.data + e.hash.len <= nl);
        ed_fuzz_assert(memchr(e.hash.data, ':', e.hash.len) == NULL);
        ed_fuzz_assert(e.kind >= ED_HTPASSWD_BCRYPT
                       && e.kind <= ED_HTPASSWD_SHA1);
        kind = ed_htpasswd_kind(e.hash.data, e.hash.len, &err);
        ed_fuzz_assert(kind == e.kind);
        if (e.kind == ED_HTPASSWD_APR1) {
            /* Its salt and form give a hash of the same shape. */
            ed_fuzz_assert(ed_apr1_crypt("pw", 2, e.hash.data, e.hash.len,
                                         out) == ED_OK);
            ed_fuzz_assert(ed_htpasswd_kind(out, strlen(out), &err)
                           == ED_HTPASSWD_APR1);
        }
    }

    /* The input as a password: deterministic, well formed. */
    ed_fuzz_assert(ed_apr1_crypt(copy, size, "$apr1$fuzzsalt", 14, out)
                   == ED_OK);
    ed_fuzz_assert(strlen(out) == 37);
    ed_fuzz_assert(ed_apr1_crypt(copy, size, out, strlen(out), again)
                   == ED_OK);
    ed_fuzz_assert(strcmp(out, again) == 0);
    ed_fuzz_assert(ed_sha1_crypt(copy, size, sha) == ED_OK);
    ed_fuzz_assert(ed_htpasswd_kind(sha, strlen(sha), &err)
                   == ED_HTPASSWD_SHA1);
    /* The input as a setting: a hash or a refusal, never more bytes. */
    if (ed_apr1_crypt("pw", 2, copy, size, out) == ED_OK) {
        ed_fuzz_assert(strlen(out) < ED_APR1_MAX);
    }
    free(copy);
    return 0;
}
