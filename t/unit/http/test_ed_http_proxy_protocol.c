/* Unit tests of the PROXY protocol parser (ed_http_proxy_protocol.c). */
#include <check.h>

#include "ed_core.h"
#include "ed_http_proxy_protocol.h"

#include <arpa/inet.h>

#define SIG "\r\n\r\n\0\r\nQUIT\n"

typedef struct {
    const char *name;
    const char *in;
    size_t      len;
    ssize_t     hlen;    /* ed_proxy_protocol_len: 0 more, -1 bad */
    int         rc;      /* parse of the first hlen bytes */
    const char *src;     /* NULL: no addresses */
    unsigned    sport;
} pp_case_t;

#define OK(n, s, hl, src, port) { n, s, sizeof(s) - 1, hl, ED_OK, src, port }
#define BAD(n, s, hl) { n, s, sizeof(s) - 1, hl, ED_ERROR, NULL, 0 }
#define MORE(n, s) { n, s, sizeof(s) - 1, 0, ED_ERROR, NULL, 0 }

/* v2, TCP4 198.18.1.1:40312 -> 10.0.0.1:443. */
#define V2A "\xc6\x12\x01\x01\x0a\x00\x00\x01\x9d\x78\x01\xbb"

static const pp_case_t cases[] = {
    OK("v1 tcp4", "PROXY TCP4 198.18.1.1 10.0.0.1 40312 443\r\nGET", 42,
       "198.18.1.1", 40312),
    OK("v1 tcp6", "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", 36,
       "2001:db8::1", 0),
    OK("v1 unknown", "PROXY UNKNOWN\r\n", 15, NULL, 0),
    OK("v1 unknown rest", "PROXY UNKNOWN 1 2 3 4\r\n", 23, NULL, 0),
    BAD("v1 no CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", -1),
    BAD("v1 lower", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 32),
    BAD("v1 double space", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 33),
    BAD("v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 33),
    BAD("v1 port range", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", 36),
    BAD("v1 port zero lead", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 33),
    BAD("v1 port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", 33),
    BAD("v1 family", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 28),
    BAD("v1 family 6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 28),
    BAD("v1 missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 30),
    BAD("v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 34),
    BAD("v1 bare", "PROXY\r\n", 7),
    BAD("v1 unknownx", "PROXY UNKNOWNX\r\n", 16),
    BAD("not proxy", "PROXZ TCP4", -1),
    BAD("http", "GET / HTTP/1.1\r\n", -1),
    BAD("tls", "\x16\x03\x01", -1),
    MORE("v1 partial", "PROXY TCP4 1.2.3.4"),
    MORE("v1 prefix", "PRO"),
    MORE("v2 prefix", "\r\n\r\n\0\r\n"),
    MORE("v2 head partial", SIG "\x21\x11\x00"),
    MORE("v2 body partial", SIG "\x21\x11\x00\x0c\xc6\x12"),
    OK("v2 tcp4", SIG "\x21\x11\x00\x0c" V2A "GET", 28, "198.18.1.1",
       40312),
    OK("v2 local", SIG "\x20\x00\x00\x00", 16, NULL, 0),
    OK("v2 local addr", SIG "\x20\x11\x00\x0c" V2A, 28, NULL, 0),
    OK("v2 unspec", SIG "\x21\x00\x00\x00", 16, NULL, 0),
    OK("v2 tlv", SIG "\x21\x11\x00\x11" V2A "\x01\x00\x02h2", 33,
       "198.18.1.1", 40312),
    OK("v2 empty tlv", SIG "\x21\x11\x00\x0f" V2A "\x04\x00\x00", 31,
       "198.18.1.1", 40312),
    BAD("v2 version 1", SIG "\x11\x11\x00\x0c" V2A, 28),
    BAD("v2 command 2", SIG "\x22\x11\x00\x0c" V2A, 28),
    BAD("v2 family 4", SIG "\x21\x41\x00\x0c" V2A, 28),
    BAD("v2 transport 3", SIG "\x21\x13\x00\x0c" V2A, 28),
    BAD("v2 short addr", SIG "\x21\x11\x00\x08" V2A, 24),
    BAD("v2 tlv overrun", SIG "\x21\x11\x00\x11" V2A "\x01\x00\x03h2", 33),
    BAD("v2 half tlv", SIG "\x21\x11\x00\x0e" V2A "\x01\x00", 30),
    BAD("v2 ssl tlv short", SIG "\x21\x11\x00\x11" V2A "\x20\x00\x02\x01\x00",
        33),
    BAD("v2 too long", SIG "\x21\x11\x10\x01", -1),
    BAD("v2 bad sig", "\r\n\r\n\0\r\nQUIX\n", -1),
};

START_TEST(test_pp_table)
{
    const pp_case_t     *c = &cases[_i];
    ed_proxy_protocol_t  pp;
    ssize_t              n;
    size_t               i;
    char                 text[64];

    n = ed_proxy_protocol_len((const u_char *)c->in, c->len);
    ck_assert_msg(n == c->hlen, "%s: len %zd, want %zd", c->name, n,
                  c->hlen);
    /* Fed byte by byte, the length is known at the same point. */
    for (i = 1; i < c->len && c->hlen > 0; i++) {
        n = ed_proxy_protocol_len((const u_char *)c->in, i);
        ck_assert_msg(n == ((ssize_t)i >= c->hlen ? c->hlen : 0),
                      "%s: prefix %zu gave %zd", c->name, i, n);
    }
    if (c->hlen <= 0) {
        ck_assert_int_eq(ed_proxy_protocol_parse((const u_char *)c->in,
                                                 c->len, &pp), ED_ERROR);
        return;
    }
    ck_assert_msg(ed_proxy_protocol_parse((const u_char *)c->in,
                                          (size_t)c->hlen, &pp) == c->rc,
                  "%s: parse", c->name);
    if (c->rc != ED_OK) {
        return;
    }
    ck_assert_int_eq(pp.has_addr, c->src != NULL);
    if (c->src) {
        ck_assert_ptr_nonnull(inet_ntop(pp.src.sa.sa_family,
                                        pp.src.sa.sa_family == AF_INET
                                        ? (void *)&pp.src.in.sin_addr
                                        : (void *)&pp.src.in6.sin6_addr,
                                        text, sizeof(text)));
        ck_assert_str_eq(text, c->src);
        ck_assert_uint_eq(ntohs(pp.src.sa.sa_family == AF_INET
                                ? pp.src.in.sin_port
                                : pp.src.in6.sin6_port), c->sport);
    }
}
END_TEST

START_TEST(test_pp_v1_max)
{
    char                buf[200];
    ed_proxy_protocol_t pp;

    /* 107 bytes with the CRLF: taken; 108: refused before the LF. */
    memcpy(buf, "PROXY UNKNOWN", 13);
    memset(buf + 13, ' ', sizeof(buf) - 13);
    memcpy(buf + 105, "\r\n", 2);
    ck_assert_int_eq(ed_proxy_protocol_len((u_char *)buf, 107), 107);
    ck_assert_int_eq(ed_proxy_protocol_parse((u_char *)buf, 107, &pp), ED_OK);
    memset(buf + 105, ' ', 2);
    memcpy(buf + 106, "\r\n", 2);
    ck_assert_int_eq(ed_proxy_protocol_len((u_char *)buf, 108), -1);
    ck_assert_int_eq(ed_proxy_protocol_len((u_char *)buf, 106), 0);
}
END_TEST

/* A v2 header with the TLVs given and a CRC32C TLV last. */
static size_t
pp_v2_crc(u_char *buf, const char *tlvs, size_t tlen)
{
    size_t   body = 12 + tlen + 7, n;
    uint32_t c;

    memcpy(buf, SIG "\x21\x11", 14);
    buf[14] = (u_char)(body >> 8);
    buf[15] = (u_char)body;
    memcpy(buf + 16, V2A, 12);
    memcpy(buf + 28, tlvs, tlen);
    n = 28 + tlen;
    memcpy(buf + n, "\x03\x00\x04\0\0\0\0", 7);
    c = ed_crc32c(0, buf, n + 7);
    buf[n + 3] = (u_char)(c >> 24);
    buf[n + 4] = (u_char)(c >> 16);
    buf[n + 5] = (u_char)(c >> 8);
    buf[n + 6] = (u_char)c;
    return n + 7;
}

START_TEST(test_pp_crc_and_tlvs)
{
    static const char tlvs[] =
        "\x01\x00\x02h2"
        "\x02\x00\x0b" "example.com"
        "\xea\x00\x07\x01vpce-1"
        "\x20\x00\x0f\x01\0\0\0\0" "\x21\x00\x02v3" "\x22\x00\x02" "cn"
        "\x30\x00\x02ns";
    u_char              buf[256];
    ed_proxy_protocol_t pp;
    ed_str_t            v;
    size_t              n;
    bool                aws;
    int                 t;

    /* The standard check value of CRC32C. */
    ck_assert_uint_eq(ed_crc32c(0, (u_char *)"123456789", 9), 0xe3069283);
    n = pp_v2_crc(buf, tlvs, sizeof(tlvs) - 1);
    ck_assert_int_eq(ed_proxy_protocol_len(buf, n), (ssize_t)n);
    ck_assert_int_eq(ed_proxy_protocol_parse(buf, n, &pp), ED_OK);
#define TLV(name, want)                                                      \
    t = ed_proxy_protocol_tlv_type(name, strlen(name), &aws);                \
    ck_assert_int_ge(t, 0);                                                  \
    ck_assert_int_eq(ed_proxy_protocol_tlv(pp.tlv, pp.tlv_len, (unsigned)t,  \
                                           aws, &v), ED_OK);                 \
    ck_assert_uint_eq(v.len, sizeof(want) - 1);                              \
    ck_assert(memcmp(v.data, want, v.len) == 0)
    TLV("alpn", "h2");
    TLV("authority", "example.com");
    TLV("aws_vpce_id", "vpce-1");
    TLV("0xea", "\x01vpce-1");
    TLV("0xEA", "\x01vpce-1");
    TLV("ssl_version", "v3");
    TLV("ssl_cn", "cn");
    TLV("netns", "ns");
#undef TLV
    t = ed_proxy_protocol_tlv_type("ssl_cipher", 10, &aws);
    ck_assert_int_eq(ed_proxy_protocol_tlv(pp.tlv, pp.tlv_len, (unsigned)t,
                                           aws, &v), ED_DECLINED);
    ck_assert_int_eq(ed_proxy_protocol_tlv_type("bogus", 5, &aws), -1);
    ck_assert_int_eq(ed_proxy_protocol_tlv_type("0x", 2, &aws), -1);
    ck_assert_int_eq(ed_proxy_protocol_tlv_type("0x100", 5, &aws), -1);
    ck_assert_int_eq(ed_proxy_protocol_tlv_type("0xg1", 4, &aws), -1);
    /* One bit off anywhere: refused. */
    buf[20] ^= 1;
    ck_assert_int_eq(ed_proxy_protocol_parse(buf, n, &pp), ED_ERROR);
    buf[20] ^= 1;
    buf[n - 1] ^= 0x80;
    ck_assert_int_eq(ed_proxy_protocol_parse(buf, n, &pp), ED_ERROR);
}
END_TEST

Suite *
ed_test_http_proxy_protocol_suite(void)
{
    Suite *s = suite_create("http_proxy_protocol");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, test_pp_table, 0, (int)ed_nelems(cases));
    tcase_add_test(tc, test_pp_v1_max);
    tcase_add_test(tc, test_pp_crc_and_tlvs);
    suite_add_tcase(s, tc);
    return s;
}
