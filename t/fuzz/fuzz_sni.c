/* libFuzzer target: the server_name extension of a ClientHello, read
 * before OpenSSL parses it (SNI chooses the server), with its output
 * checked. */
#include "ed_tls.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char   low[256], tiny[4];
    size_t n, i;

    memset(low, 'X', sizeof(low));
    n = ed_tls_sni(data, size, low, sizeof(low));
    ed_fuzz_assert(n < sizeof(low));
    if (n == 0) {
        /* Nothing, malformed, or too long: the buffer is untouched. */
        for (i = 0; i < sizeof(low); i++) {
            ed_fuzz_assert(low[i] == 'X');
        }
    } else {
        /* A well-formed list with one host_name first: the name is the
         * input's, lowercased, without NULs, NUL-terminated. */
        ed_fuzz_assert(size >= 6);
        ed_fuzz_assert((((size_t)data[0] << 8) | data[1]) + 2 == size);
        ed_fuzz_assert(data[2] == 0);
        ed_fuzz_assert(low[n] == '\0');
        ed_fuzz_assert(n <= (((size_t)data[3] << 8) | data[4]));
        for (i = 0; i < n; i++) {
            ed_fuzz_assert(low[i] != '\0');
            ed_fuzz_assert(low[i] == ed_tolower((char)data[5 + i]));
            ed_fuzz_assert(!(low[i] >= 'A' && low[i] <= 'Z'));
        }
    }
    /* A buffer too small is never overrun. */
    memset(tiny, 'X', sizeof(tiny));
    n = ed_tls_sni(data, size, tiny, sizeof(tiny));
    ed_fuzz_assert(n < sizeof(tiny));
    return 0;
}
