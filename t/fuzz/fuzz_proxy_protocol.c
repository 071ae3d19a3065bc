/* libFuzzer target: the PROXY protocol header parser. The length scan
 * and the parse must agree, a parsed header must stay inside its bytes,
 * and feeding the bytes one at a time to the length scan (as a header
 * trickles in) must give the answer the whole buffer gives. */
#include "ed_core.h"
#include "ed_http_proxy_protocol.h"
#include "fuzz.h"

static const char *ed_fuzz_tlv_names[] = {
    "alpn", "authority", "unique_id", "netns", "ssl_version", "ssl_cn",
    "ssl_cipher", "ssl_sig_alg", "ssl_key_alg", "aws_vpce_id", "0xea",
    "0x04", "0xE0"
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_proxy_protocol_t pp;
    ed_str_t            v;
    ssize_t             n, m;
    size_t              i;
    bool                aws;
    int                 type;

    n = ed_proxy_protocol_len(data, size);
    ed_fuzz_assert(n >= -1 && n <= (ssize_t)size && n <= ED_PP_MAX);
    /* Prefixes: never longer than what they hold, and once the length
     * is known, it is the same one. */
    for (i = 0; i <= size && i <= ED_PP_MAX; i++) {
        m = ed_proxy_protocol_len(data, i);
        ed_fuzz_assert(m <= (ssize_t)i);
        if (m > 0) {
            ed_fuzz_assert(m == n);
            break;
        }
        if (m < 0) {
            ed_fuzz_assert(n < 0);
            break;
        }
    }
    if (n > 0) {
        if (ed_proxy_protocol_parse(data, (size_t)n, &pp) == ED_OK) {
            ed_fuzz_assert(pp.version == 1 || pp.version == 2);
            if (pp.version == 1) {
                ed_fuzz_assert(n <= ED_PP_V1_MAX && pp.tlv_len == 0);
            } else {
                ed_fuzz_assert(pp.tlv_len == 0
                               || (pp.tlv >= data
                                   && pp.tlv + pp.tlv_len == data + n));
            }
            if (pp.has_addr) {
                ed_fuzz_assert(pp.src.sa.sa_family == pp.dst.sa.sa_family);
            }
            for (i = 0; i < ed_nelems(ed_fuzz_tlv_names); i++) {
                type = ed_proxy_protocol_tlv_type(ed_fuzz_tlv_names[i],
                                                  strlen(ed_fuzz_tlv_names[i]),
                                                  &aws);
                ed_fuzz_assert(type >= 0 && type <= 0xff);
                if (ed_proxy_protocol_tlv(pp.tlv, pp.tlv_len,
                                          (unsigned)type, aws, &v) == ED_OK)
                {
                    ed_fuzz_assert((const uint8_t *)v.data >= pp.tlv
                                   && (const uint8_t *)v.data + v.len
                                      <= pp.tlv + pp.tlv_len);
                }
            }
        }
    }
    /* Any other length is refused. */
    if (size && (ssize_t)size != n) {
        ed_fuzz_assert(ed_proxy_protocol_parse(data, size, &pp) == ED_ERROR);
    }
    return 0;
}
