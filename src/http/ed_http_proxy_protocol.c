/* The PROXY protocol header, v1 and v2 (haproxy's proxy-protocol.txt):
 * pure functions over bytes, shared by the connection code, the unit
 * tests and the fuzz target. Anything the specification does not allow
 * is malformed: a balancer that sends it is misconfigured, and a client
 * that sends it is not a balancer. */
#include "ed_http_proxy_protocol.h"

#include <arpa/inet.h>
#include <strings.h>

static const u_char ed_pp_v2_sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

ssize_t
ed_proxy_protocol_len(const u_char *buf, size_t len)
{
    const u_char *nl;
    size_t        n, body;

    if (len == 0) {
        return 0;
    }
    if (buf[0] == 'P') {
        n = ed_min(len, 5);
        if (memcmp(buf, "PROXY", n) != 0) {
            return -1;
        }
        nl = memchr(buf, '\n', ed_min(len, ED_PP_V1_MAX));
        if (nl == NULL) {
            return len >= ED_PP_V1_MAX ? -1 : 0;
        }
        if (nl == buf || nl[-1] != '\r') {
            return -1;
        }
        return nl - buf + 1;
    }
    n = ed_min(len, sizeof(ed_pp_v2_sig));
    if (memcmp(buf, ed_pp_v2_sig, n) != 0) {
        return -1;
    }
    if (len < ED_PP_V2_HEAD) {
        return 0;
    }
    body = ((size_t)buf[14] << 8) | buf[15];
    if (body > ED_PP_V2_BODY_MAX) {
        return -1;
    }
    return len >= ED_PP_V2_HEAD + body ? (ssize_t)(ED_PP_V2_HEAD + body) : 0;
}

/* One space-delimited v1 field: [p, end of field); *p moves past the
 * delimiter sep. NULL when the field is empty or longer than max. */
static const u_char *
ed_pp_v1_field(const u_char **p, const u_char *end, u_char sep, size_t max,
               size_t *flen)
{
    const u_char *s = *p, *q;

    q = memchr(s, sep, (size_t)(end - s));
    if (q == NULL || q == s || (size_t)(q - s) > max) {
        return NULL;
    }
    *flen = (size_t)(q - s);
    *p = q + 1;
    return s;
}

static int
ed_pp_v1_addr(const u_char *s, size_t n, int family, ed_peer_addr_t *a)
{
    char buf[48];

    if (n >= sizeof(buf)) {
        return ED_ERROR;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        a->in.sin_family = AF_INET;
        return inet_pton(AF_INET, buf, &a->in.sin_addr) == 1 ? ED_OK
                                                              : ED_ERROR;
    }
    a->in6.sin6_family = AF_INET6;
    return inet_pton(AF_INET6, buf, &a->in6.sin6_addr) == 1 ? ED_OK
                                                             : ED_ERROR;
}

/* A decimal port 0-65535 without a sign or leading zeros. */
static int
ed_pp_v1_port(const u_char *s, size_t n, ed_peer_addr_t *a)
{
    unsigned v = 0;
    size_t   i;

    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) {
        return ED_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return ED_ERROR;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) {
        return ED_ERROR;
    }
    if (a->sa.sa_family == AF_INET) {
        a->in.sin_port = htons((uint16_t)v);
    } else {
        a->in6.sin6_port = htons((uint16_t)v);
    }
    return ED_OK;
}

static int
ed_pp_v1(const u_char *buf, size_t len, ed_proxy_protocol_t *pp)
{
    const u_char *p = buf + 6, *end = buf + len - 2, *f;
    size_t        n;
    int           family;

    if (len < 8 || memcmp(buf, "PROXY ", 6) != 0) {
        return ED_ERROR;
    }
    pp->version = 1;
    if (end - p >= 7 && memcmp(p, "UNKNOWN", 7) == 0) {
        /* Whatever follows UNKNOWN is to be ignored (the spec), up to
         * the CRLF; a bare CR or LF inside is not. */
        return memchr(p, '\r', (size_t)(end - p)) == NULL
               && memchr(p, '\n', (size_t)(end - p)) == NULL
               && (end - p == 7 || p[7] == ' ') ? ED_OK : ED_ERROR;
    }
    if (end - p < 5 || (memcmp(p, "TCP4 ", 5) != 0
                        && memcmp(p, "TCP6 ", 5) != 0))
    {
        return ED_ERROR;
    }
    family = p[3] == '4' ? AF_INET : AF_INET6;
    p += 5;
    /* The last field ends at the CR: end[0] is '\r'. */
    if ((f = ed_pp_v1_field(&p, end, ' ', 39, &n)) == NULL
        || ed_pp_v1_addr(f, n, family, &pp->src) != ED_OK
        || (f = ed_pp_v1_field(&p, end, ' ', 39, &n)) == NULL
        || ed_pp_v1_addr(f, n, family, &pp->dst) != ED_OK
        || (f = ed_pp_v1_field(&p, end, ' ', 5, &n)) == NULL
        || ed_pp_v1_port(f, n, &pp->src) != ED_OK)
    {
        return ED_ERROR;
    }
    n = (size_t)(end - p);
    if (ed_pp_v1_port(p, n, &pp->dst) != ED_OK) {
        return ED_ERROR;
    }
    pp->has_addr = 1;
    return ED_OK;
}

/* Checks that the TLVs in p[0..len) tile it exactly, the SSL TLV's
 * sub-TLVs likewise; finds the CRC32C TLV's value. */
static int
ed_pp_tlvs_check(const u_char *p, size_t len, bool nested,
                 const u_char **crc)
{
    size_t n;

    while (len) {
        if (len < 3) {
            return ED_ERROR;
        }
        n = ((size_t)p[1] << 8) | p[2];
        if (n > len - 3) {
            return ED_ERROR;
        }
        if (!nested && p[0] == ED_PP_TLV_CRC32C) {
            if (n != 4 || *crc != NULL) {
                return ED_ERROR;
            }
            *crc = p + 3;
        }
        if (!nested && p[0] == ED_PP_TLV_SSL) {
            /* client (1 byte), verify (4), then sub-TLVs. */
            if (n < 5 || ed_pp_tlvs_check(p + 8, n - 5, true, crc)
                         != ED_OK)
            {
                return ED_ERROR;
            }
        }
        p += 3 + n;
        len -= 3 + n;
    }
    return ED_OK;
}

static int
ed_pp_v2(const u_char *buf, size_t len, ed_proxy_protocol_t *pp)
{
    const u_char *a = buf + ED_PP_V2_HEAD, *crc = NULL;
    size_t        alen = len - ED_PP_V2_HEAD, need;
    unsigned      cmd = buf[12] & 0x0f, fam = buf[13] >> 4;
    u_char        zero[4] = { 0, 0, 0, 0 };
    uint32_t      c, want;

    if ((buf[12] >> 4) != 2 || cmd > 1 || fam > 3 || (buf[13] & 0x0f) > 2) {
        return ED_ERROR;
    }
    pp->version = 2;
    need = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
    if (alen < need) {
        return ED_ERROR;
    }
    if (ed_pp_tlvs_check(a + need, alen - need, false, &crc) != ED_OK) {
        return ED_ERROR;
    }
    if (crc != NULL) {
        /* Over the whole header with the checksum's own bytes zero. */
        want = ((uint32_t)crc[0] << 24) | ((uint32_t)crc[1] << 16)
               | ((uint32_t)crc[2] << 8) | crc[3];
        c = ed_crc32c(0, buf, (size_t)(crc - buf));
        c = ed_crc32c(c, zero, 4);
        c = ed_crc32c(c, crc + 4, (size_t)(buf + len - crc - 4));
        if (c != want) {
            return ED_ERROR;
        }
    }
    pp->tlv = a + need;
    pp->tlv_len = alen - need;
    if (cmd == 0 || fam == 0 || fam == 3) {
        /* LOCAL (a health check), AF_UNSPEC, AF_UNIX: the socket's own
         * addresses stay. */
        return ED_OK;
    }
    memset(&pp->src, 0, sizeof(pp->src));
    memset(&pp->dst, 0, sizeof(pp->dst));
    if (fam == 1) {
        pp->src.in.sin_family = AF_INET;
        pp->dst.in.sin_family = AF_INET;
        memcpy(&pp->src.in.sin_addr, a, 4);
        memcpy(&pp->dst.in.sin_addr, a + 4, 4);
        memcpy(&pp->src.in.sin_port, a + 8, 2);
        memcpy(&pp->dst.in.sin_port, a + 10, 2);
    } else {
        pp->src.in6.sin6_family = AF_INET6;
        pp->dst.in6.sin6_family = AF_INET6;
        memcpy(&pp->src.in6.sin6_addr, a, 16);
        memcpy(&pp->dst.in6.sin6_addr, a + 16, 16);
        memcpy(&pp->src.in6.sin6_port, a + 32, 2);
        memcpy(&pp->dst.in6.sin6_port, a + 34, 2);
    }
    pp->has_addr = 1;
    return ED_OK;
}

int
ed_proxy_protocol_parse(const u_char *buf, size_t len,
                        ed_proxy_protocol_t *pp)
{
    memset(pp, 0, sizeof(*pp));
    if (len == 0 || ed_proxy_protocol_len(buf, len) != (ssize_t)len) {
        return ED_ERROR;
    }
    return buf[0] == 'P' ? ed_pp_v1(buf, len, pp) : ed_pp_v2(buf, len, pp);
}

int
ed_proxy_protocol_tlv(const u_char *tlv, size_t len, unsigned type,
                      bool aws, ed_str_t *out)
{
    size_t n;

    while (len >= 3) {
        n = ((size_t)tlv[1] << 8) | tlv[2];
        if (n > len - 3) {
            return ED_DECLINED;
        }
        if (tlv[0] == type) {
            out->data = (char *)tlv + 3;
            out->len = n;
            if (aws && type == ED_PP_TLV_AWS) {
                /* Subtype 0x01: the VPC endpoint id follows. */
                if (n < 1 || tlv[3] != 0x01) {
                    return ED_DECLINED;
                }
                out->data++;
                out->len--;
            }
            return ED_OK;
        }
        if (tlv[0] == ED_PP_TLV_SSL && type >= ED_PP_TLV_SSL_VERSION
            && type <= ED_PP_TLV_SSL_KEY_ALG && n >= 5
            && ed_proxy_protocol_tlv(tlv + 8, n - 5, type, false, out)
               == ED_OK)
        {
            return ED_OK;
        }
        tlv += 3 + n;
        len -= 3 + n;
    }
    return ED_DECLINED;
}

static const struct {
    const char *name;
    unsigned    type;
} ed_pp_tlv_names[] = {
    { "alpn", ED_PP_TLV_ALPN },
    { "authority", ED_PP_TLV_AUTHORITY },
    { "unique_id", ED_PP_TLV_UNIQUE_ID },
    { "netns", ED_PP_TLV_NETNS },
    { "ssl_version", ED_PP_TLV_SSL_VERSION },
    { "ssl_cn", ED_PP_TLV_SSL_CN },
    { "ssl_cipher", ED_PP_TLV_SSL_CIPHER },
    { "ssl_sig_alg", ED_PP_TLV_SSL_SIG_ALG },
    { "ssl_key_alg", ED_PP_TLV_SSL_KEY_ALG },
    { "aws_vpce_id", ED_PP_TLV_AWS },
};

int
ed_proxy_protocol_tlv_type(const char *name, size_t len, bool *aws)
{
    unsigned v = 0;
    size_t   i;

    *aws = false;
    for (i = 0; i < ed_nelems(ed_pp_tlv_names); i++) {
        if (strlen(ed_pp_tlv_names[i].name) == len
            && memcmp(ed_pp_tlv_names[i].name, name, len) == 0)
        {
            *aws = ed_pp_tlv_names[i].type == ED_PP_TLV_AWS;
            return (int)ed_pp_tlv_names[i].type;
        }
    }
    /* 0x0 to 0xff, any case. */
    if (len < 3 || len > 4 || name[0] != '0'
        || (name[1] != 'x' && name[1] != 'X'))
    {
        return -1;
    }
    for (i = 2; i < len; i++) {
        char c = name[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (unsigned)(c - '0');
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = v * 16 + (unsigned)((c | 0x20) - 'a' + 10);
        } else {
            return -1;
        }
    }
    return (int)v;
}

uint32_t
ed_crc32c(uint32_t crc, const u_char *p, size_t len)
{
    int k;

    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0x82f63b78 & (0U - (crc & 1)));
        }
    }
    return ~crc;
}
