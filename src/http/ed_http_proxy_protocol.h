/* The PROXY protocol header (v1 text, v2 binary) a balancer sends before
 * anything else on a connection: a pure parser, no I/O. */
#ifndef ED_HTTP_PROXY_PROTOCOL_H
#define ED_HTTP_PROXY_PROTOCOL_H

#include "ed_core.h"
#include "ed_conn.h"

/* v1: "PROXY TCP6 <39> <39> 65535 65535\r\n" is 104 bytes; the
 * protocol's own bound is 107. */
#define ED_PP_V1_MAX   107
#define ED_PP_V2_HEAD  16
/* v2: addresses and TLVs after the 16 bytes, at most this much (eddy's
 * bound: the length field allows 64 KiB). */
#define ED_PP_V2_BODY_MAX 4096
#define ED_PP_MAX      (ED_PP_V2_HEAD + ED_PP_V2_BODY_MAX)

/* TLV types (the PROXY protocol specification, AWS for 0xEA). */
#define ED_PP_TLV_ALPN        0x01
#define ED_PP_TLV_AUTHORITY   0x02
#define ED_PP_TLV_CRC32C      0x03
#define ED_PP_TLV_UNIQUE_ID   0x05
#define ED_PP_TLV_SSL         0x20
#define ED_PP_TLV_SSL_VERSION 0x21
#define ED_PP_TLV_SSL_CN      0x22
#define ED_PP_TLV_SSL_CIPHER  0x23
#define ED_PP_TLV_SSL_SIG_ALG 0x24
#define ED_PP_TLV_SSL_KEY_ALG 0x25
#define ED_PP_TLV_NETNS       0x30
#define ED_PP_TLV_AWS         0xea

typedef struct {
    int             version;   /* 1 or 2 */
    /* The header carries addresses (v1 TCP4/TCP6, v2 PROXY with INET or
     * INET6). Unset: v1 UNKNOWN, v2 LOCAL, AF_UNSPEC or AF_UNIX, which
     * keep the socket's addresses. */
    unsigned        has_addr:1;
    ed_peer_addr_t  src;
    ed_peer_addr_t  dst;
    /* v2: the TLVs, pointing into the parsed buffer; all checked. */
    const u_char   *tlv;
    size_t          tlv_len;
} ed_proxy_protocol_t;

/* How long the header starting at buf is, from its first len bytes: its
 * length when they hold it whole (it may be shorter than len), 0 when
 * more bytes are needed, -1 when they cannot start a valid header (no
 * signature, v1 longer than 107 bytes or without "\r\n", a v2 length
 * over ED_PP_V2_BODY_MAX). */
ssize_t ed_proxy_protocol_len(const u_char *buf, size_t len);
/* Parses the whole header buf[0..len) (len as ed_proxy_protocol_len
 * said). ED_OK, or ED_ERROR when it is malformed. pp->tlv points into
 * buf. */
int ed_proxy_protocol_parse(const u_char *buf, size_t len,
                            ed_proxy_protocol_t *pp);
/* Finds a TLV in tlv[0..len) (as checked by the parser): the SSL
 * sub-TLVs (0x21-0x25) inside the SSL TLV, AWS's 0xEA without its
 * subtype byte when aws is set. ED_OK with out set, or ED_DECLINED. */
int ed_proxy_protocol_tlv(const u_char *tlv, size_t len, unsigned type,
                          bool aws, ed_str_t *out);
/* A TLV type by its variable name ("alpn", "ssl_cn", "0xea"); -1 when
 * unknown. *aws is set for "aws_vpce_id". */
int ed_proxy_protocol_tlv_type(const char *name, size_t len, bool *aws);
/* CRC32C (Castagnoli), as v2's CRC32C TLV. */
uint32_t ed_crc32c(uint32_t crc, const u_char *p, size_t len);

#endif /* ED_HTTP_PROXY_PROTOCOL_H */
