/* libFuzzer target: the `Authorization: Basic` decoder and base64. A
 * decoded value splits at its first ':' into a name without control
 * characters and a password without NUL that encode back to the same
 * token; base64 round trips any bytes. */
#include "ed_core.h"
#include "ed_http_htpasswd.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *copy, *buf, *enc, *joined;
    unsigned char *dec;
    ed_str_t       user, pass;
    ssize_t        n;
    size_t         i, len;
    int            rc;

    /* Exactly size bytes, so ASan sees any read past the value. */
    copy = malloc(size ? size : 1);
    buf = malloc(size + 3);
    enc = malloc(4 * (size / 3 + 1) + 8);
    dec = malloc(size + 3);
    if (copy == NULL || buf == NULL || enc == NULL || dec == NULL) {
        abort();
    }
    memcpy(copy, data, size);

    rc = ed_http_basic_decode(copy, size, buf, size + 3, &user, &pass);
    ed_fuzz_assert(rc == ED_OK || rc == ED_DECLINED || rc == ED_ERROR);
    if (rc == ED_OK) {
        ed_fuzz_assert(user.data == buf && pass.data == buf + user.len + 1);
        ed_fuzz_assert(memchr(user.data, ':', user.len) == NULL);
        for (i = 0; i < user.len; i++) {
            ed_fuzz_assert((unsigned char)user.data[i] >= 0x20
                           && user.data[i] != 0x7f);
        }
        ed_fuzz_assert(memchr(pass.data, '\0', pass.len) == NULL);
        /* "Basic " + base64(user ":" pass) decodes to the same pair. */
        len = user.len + 1 + pass.len;
        joined = malloc(len + 8 + 4 * (len / 3 + 1));
        if (joined == NULL) {
            abort();
        }
        memcpy(joined, "Basic ", 6);
        memcpy(enc, user.data, user.len);
        enc[user.len] = ':';
        memcpy(enc + user.len + 1, pass.data, pass.len);
        ed_base64_encode((unsigned char *)enc, len, joined + 6);
        rc = ed_http_basic_decode(joined, strlen(joined), (char *)dec,
                                  size + 3, &user, &pass);
        ed_fuzz_assert(rc == ED_OK);
        ed_fuzz_assert(user.len + 1 + pass.len == len);
        ed_fuzz_assert(memcmp(dec, buf, len) == 0);
        free(joined);
    }

    /* Any bytes survive base64. */
    len = ed_base64_encode(data, size, enc);
    ed_fuzz_assert(len == 4 * ((size + 2) / 3) && enc[len] == '\0');
    n = ed_base64_decode(enc, len, dec);
    ed_fuzz_assert(n == (ssize_t)size && memcmp(dec, data, size) == 0);
    /* Decoding arbitrary input stays within its bound. */
    n = ed_base64_decode(copy, size, dec);
    ed_fuzz_assert(n <= (ssize_t)(size / 4 * 3 + 2));

    free(dec);
    free(enc);
    free(buf);
    free(copy);
    return 0;
}
