/* Zero-copy HTTP/1.x parsing: request heads, chunked bodies, paths.
 * Everything here points into the caller's buffer and allocates nothing. */
#ifndef ED_HTTP_PARSE_H
#define ED_HTTP_PARSE_H

#include "ed_core.h"

enum {
    ED_HTTP_UNKNOWN = 0,
    ED_HTTP_GET,
    ED_HTTP_HEAD,
    ED_HTTP_POST,
    ED_HTTP_PUT,
    ED_HTTP_DELETE,
    ED_HTTP_OPTIONS,
    ED_HTTP_PATCH,
    ED_HTTP_CONNECT,
    ED_HTTP_TRACE
};

/* Character classes shared by the HTTP parsers: ed_http_char[c] & class. */
#define ED_HTTP_C_TOKEN  0x01  /* tchar (RFC 9110 5.6.2) */
#define ED_HTTP_C_VALUE  0x02  /* field-vchar, SP, HTAB (no CTL, no DEL) */
#define ED_HTTP_C_TARGET 0x04  /* where a request-target ends: > 0x20,
                                * not DEL */
#define ED_HTTP_C_HOST   0x08  /* reg-name: unreserved, sub-delims */
#define ED_HTTP_C_HEX    0x10  /* HEXDIG */
#define ED_HTTP_C_PATH   0x20  /* path byte: pchar but '%', and '/' */

extern const uint8_t ed_http_char[256];

/* Value of a hex digit, or -1. */
static inline int
ed_http_hex(u_char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    return -1;
}

typedef struct {
    ed_str_t name;   /* as received */
    ed_str_t value;  /* optional whitespace trimmed */
} ed_http_header_t;

/* A parsed request head. All strings point into the parsed buffer. */
typedef struct {
    ed_str_t          method;
    int               method_id;    /* ED_HTTP_* */
    ed_str_t          target;       /* request-target as received */
    ed_str_t          path;         /* raw path of the target (no query);
                                     * "*" for OPTIONS *, empty for the
                                     * authority-form, a static "/" for an
                                     * absolute-form target without one */
    ed_str_t          query;        /* after '?', without it; len 0: none */
    ed_str_t          authority;    /* absolute-form or authority-form host */
    int               version;      /* 10 or 11 */
    unsigned          asterisk:1;   /* OPTIONS * */
    unsigned          absolute:1;   /* absolute-form target */

    ed_http_header_t *headers;      /* the fields the request shows */
    size_t            nheaders;
    ed_http_header_t *fields;       /* every field as received (the
                                     * caller's array); headers is the
                                     * same until the caller hides some */
    size_t            nfields;
    size_t            underscores;  /* fields whose name holds '_' */

    /* Interpreted fields. */
    ed_str_t          host;         /* Host header, or the authority */
    int64_t           content_length; /* -1 when absent */
    unsigned          chunked:1;      /* Transfer-Encoding: chunked */
    unsigned          conn_close:1;   /* Connection: close */
    unsigned          conn_keepalive:1; /* Connection: keep-alive */
    unsigned          conn_upgrade:1;   /* Connection: upgrade */
    unsigned          expect_continue:1;
    unsigned          expect_other:1;   /* another Expect value: 417 */
    /* The request line as received, CRLF included ($request, log
     * lines): it stays when an internal redirect changes the method
     * (a cgi local redirect is a GET). NULL: method.data starts it. */
    const char       *line;
    size_t            line_len;
    size_t            head_len;     /* the whole head, final CRLF included */
} ed_http_req_head_t;

/* Finds the end of a request head in buf (skipping leading empty lines,
 * accepting CRLF or bare LF); returns its length, or 0 if incomplete.
 * An ed_stream_scan_pt: with resume, a call goes on where the previous
 * one on the same bytes stopped; NULL scans from the start. */
size_t ed_http_head_end(const char *buf, size_t len, size_t *resume);

/* Parses the field line at p into hd (name; value, OWS trimmed) for a
 * head parser whose buffer ends, at end[-1], in the head's last LF.
 * Returns the byte after the line (CRLF or LF), or NULL when the line is
 * not a valid field. */
const char *ed_http_parse_field(const char *p, const char *end,
                                ed_http_header_t *hd);

/* Whether every byte of s has class c: ED_HTTP_C_VALUE for a field
 * value (RFC 9110 5.5: VCHAR, obs-text, SP and HTAB), ED_HTTP_C_TOKEN
 * for a name (5.1: tchar). */
int ed_http_field_ok(const ed_str_t *s, uint8_t c);

/*
 * SWAR tests on 8 bytes at a time (Bit Twiddling Hacks): whether a word
 * holds a byte below n (n <= 128; bytes >= 0x80 never count), or a given
 * byte. Both answers are exact for the word as a whole.
 */
#define ED_SWAR_ONES  0x0101010101010101ULL
#define ED_SWAR_HIGHS 0x8080808080808080ULL
#define ed_swar_less(w, n) (((w) - ED_SWAR_ONES * (n)) & ~(w) & ED_SWAR_HIGHS)
#define ed_swar_has(w, b) ed_swar_less((w) ^ (ED_SWAR_ONES * (b)), 1)

/* How many bytes of s[0..len) from its start a field value may hold
 * (ED_HTTP_C_VALUE: no CTL but HTAB, no DEL): len when all of them.
 * Words of bytes >= 0x20 and not DEL (all VALUE) go eight bytes a step,
 * the tail as the last eight; from a word with another byte, byte by
 * byte. Inline: values are short, a call would cost as much. */
static inline size_t
ed_http_value_len(const char *s, size_t len)
{
    const u_char *p = (const u_char *)s;
    uint64_t      w;
    size_t        i = 0;

    if (len >= 8) {
        for (; i + 8 <= len; i += 8) {
            memcpy(&w, p + i, 8);
            if (ed_swar_less(w, 0x20) | ed_swar_has(w, 0x7f)) {
                goto bytes;
            }
        }
        memcpy(&w, p + len - 8, 8);
        if (!(ed_swar_less(w, 0x20) | ed_swar_has(w, 0x7f))) {
            return len;
        }
    }
bytes:
    for (; i < len; i++) {
        if (!(ed_http_char[p[i]] & ED_HTTP_C_VALUE)) {
            return i;
        }
    }
    return len;
}

/* Whether p[0..len) is a path a request target may hold (RFC 3986:
 * pchar and '/', '%' only before two hex digits; no query, no '#'). */
int ed_http_path_ok(const char *p, size_t len);

/* Parses one complete request head buf[0..len) (as found by
 * ed_http_head_end) into h, using hdrs[0..max_headers) for the fields.
 * Returns ED_OK, or an HTTP status for the error response:
 * 400 malformed, 431 too many fields, 501 unknown transfer coding,
 * 505 unsupported version. Applies the rules of spec/http.md: Host,
 * Content-Length and Transfer-Encoding. */
int ed_http_parse_request(const char *buf, size_t len, ed_http_req_head_t *h,
                          ed_http_header_t *hdrs, size_t max_headers);

/* How many fields ed_http_parse_request may find in the head buf[0..len)
 * (its line ends), at most max: the size of the array it needs, which
 * then answers 431 past max_headers as a max_headers array would. A
 * head's array sized for max_headers (100 by default) would be a large
 * pool allocation, a malloc of its own, on every request. */
size_t ed_http_head_lines(const char *buf, size_t len, size_t max);

/* Incremental chunked-body decoder state; all zero (memset) before the
 * first call of each body. */
typedef struct {
    int      state;
    uint32_t digits;     /* chunk-size digits seen */
    int64_t  size;       /* bytes left in the current chunk */
    int64_t  total;      /* body bytes so far */
    /* Counters bounded by small limits: 32 bits keep the decoder, which
     * every request embeds, small. */
    uint32_t ext;        /* extension or trailer bytes seen */
    uint32_t trailers;   /* trailer section bytes */
    /* Where the trailer section is kept (ED_HTTP_TRAILERS_MAX bytes,
     * given by the caller), or NULL: dropped. Once the body is done its
     * fields are keep[0 .. trailers - 1), "name:value\r\n"... as sent
     * (checked: token names, value bytes, CRLF line ends). */
    char    *keep;
} ed_http_chunked_t;

/* The largest trailer section of a chunked body (else ED_ERROR). */
#define ED_HTTP_TRAILERS_MAX 8192

/* Decodes from p[0..len). Returns:
 *   ED_OK      a body slice p[*off .. *off + *n) is ready; *used bytes of
 *              input were consumed (slice included); call again with the
 *              rest;
 *   ED_AGAIN   all input consumed (framing only); need more;
 *   ED_DONE    the last chunk and trailers ended; *used bytes consumed,
 *              what follows belongs to the next request;
 *   ED_ERROR   malformed framing, oversized size line, extension or
 *              trailers, or a size overflow (answer 400). */
int ed_http_chunked_parse(ed_http_chunked_t *c, const char *p, size_t len,
                          size_t *used, size_t *off, size_t *n);

/* Normalises a raw path into out (at least len bytes): percent-decodes,
 * merges "//", resolves "." and "..". Returns ED_OK with *out_len set,
 * or ED_ERROR for a path that does not start with '/', climbs above '/',
 * holds an invalid escape, or decodes to NUL. */
int ed_http_normalize_path(const char *in, size_t len, char *out,
                           size_t *out_len);

#endif /* ED_HTTP_PARSE_H */
