/* Incremental, zero-copy decoder of chunked request bodies (RFC 9112 7.1). */
#include "ed_core.h"
#include "ed_http_parse.h"

/*
 * Line endings: unlike the request head, which accepts a bare LF as RFC
 * 9112 2.2 allows, every line of the chunked framing (size lines, the CRLF
 * after chunk data, trailer fields and the final empty line) must end in
 * CRLF exactly. Parsers that disagree on where a chunk line ends are the
 * root of chunked request smuggling, and no conforming client sends a
 * bare LF, so one strict rule for the whole body is the safe choice.
 *
 * A chunk size is 1 to 16 hex digits with no sign and no leading
 * whitespace; BWS is allowed only between the size and a ';' that starts
 * extensions (RFC 9112 7.1.1). Extensions are checked to be a token after
 * the ';' followed by field-value bytes, then ignored. Trailer fields are
 * checked like header fields (token name, colon, value bytes), and kept
 * in c->keep when the caller gave one, else dropped.
 */

#define ED_CHUNK_MAX_DIGITS   16
#define ED_CHUNK_MAX_EXT      4096  /* bytes after the size, per line */
#define ED_CHUNK_MAX_TRAILERS ED_HTTP_TRAILERS_MAX

enum {
    ED_CHUNK_SIZE_START = 0,  /* first hex digit of a size line */
    ED_CHUNK_SIZE,            /* more digits, BWS, ';' or CR */
    ED_CHUNK_SIZE_WS,         /* BWS after the size: more BWS or ';' */
    ED_CHUNK_EXT_START,       /* after ';': BWS or an extension name */
    ED_CHUNK_EXT,             /* the rest of the extensions, up to CR */
    ED_CHUNK_SIZE_LF,         /* LF ending a size line */
    ED_CHUNK_DATA,            /* c->size bytes of data */
    ED_CHUNK_DATA_CR,         /* CRLF after the data */
    ED_CHUNK_DATA_LF,
    ED_CHUNK_TRAILER_START,   /* start of a trailer field or the end */
    ED_CHUNK_TRAILER_NAME,
    ED_CHUNK_TRAILER_VALUE,
    ED_CHUNK_TRAILER_LF,
    ED_CHUNK_FINAL_LF,        /* LF of the empty line ending the body */
    ED_CHUNK_DONE,
    ED_CHUNK_ERROR
};

/*
 * Runs the state machine over p[0..len). Body data is never copied: the
 * data state returns a slice of p. Errors are sticky, and so is the end.
 * Returns ED_OK (a slice), ED_AGAIN, ED_DONE or ED_ERROR as documented in
 * ed_http_parse.h.
 */
int
ed_http_chunked_parse(ed_http_chunked_t *c, const char *p, size_t len,
                      size_t *used, size_t *off, size_t *n)
{
    size_t i = 0, k;
    u_char ch;
    int    d;

    *off = 0;
    *n = 0;
    *used = 0;

    if (c->state == ED_CHUNK_DONE) {
        return ED_DONE;
    }
    if (c->state == ED_CHUNK_ERROR) {
        return ED_ERROR;
    }

    while (i < len) {
        if (c->state == ED_CHUNK_DATA) {
            k = len - i;
            if ((uint64_t)c->size < k) {
                k = (size_t)c->size;
            }
            c->size -= (int64_t)k;
            c->total += (int64_t)k;
            if (c->size == 0) {
                c->state = ED_CHUNK_DATA_CR;
            }
            *off = i;
            *n = k;
            *used = i + k;
            return ED_OK;
        }

        ch = (u_char)p[i++];

        switch (c->state) {
        case ED_CHUNK_SIZE_START:
            d = ed_http_hex(ch);
            if (d < 0) {
                goto failed;
            }
            c->size = d;
            c->digits = 1;
            c->ext = 0;
            c->state = ED_CHUNK_SIZE;
            break;

        case ED_CHUNK_SIZE:
            d = ed_http_hex(ch);
            if (d >= 0) {
                if (++c->digits > ED_CHUNK_MAX_DIGITS
                    || c->size > (INT64_MAX >> 4))
                {
                    goto failed;
                }
                c->size = (c->size << 4) | d;
            } else if (ch == '\r') {
                c->state = ED_CHUNK_SIZE_LF;
            } else if (ch == ';') {
                c->state = ED_CHUNK_EXT_START;
            } else if (ch == ' ' || ch == '\t') {
                c->state = ED_CHUNK_SIZE_WS;
            } else {
                goto failed;
            }
            break;

        case ED_CHUNK_SIZE_WS:
        case ED_CHUNK_EXT_START:
        case ED_CHUNK_EXT:
            if (++c->ext > ED_CHUNK_MAX_EXT) {
                goto failed;
            }
            if (c->state == ED_CHUNK_EXT) {
                if (ch == '\r') {
                    c->state = ED_CHUNK_SIZE_LF;
                } else if (!(ed_http_char[ch] & ED_HTTP_C_VALUE)) {
                    goto failed;
                }
            } else if (ch == ' ' || ch == '\t') {
                /* BWS stays in the same state. */
            } else if (c->state == ED_CHUNK_SIZE_WS && ch == ';') {
                c->state = ED_CHUNK_EXT_START;
            } else if (c->state == ED_CHUNK_EXT_START
                       && (ed_http_char[ch] & ED_HTTP_C_TOKEN))
            {
                c->state = ED_CHUNK_EXT;
            } else {
                goto failed;
            }
            break;

        case ED_CHUNK_SIZE_LF:
            if (ch != '\n') {
                goto failed;
            }
            if (c->size == 0) {
                c->trailers = 0;
                c->state = ED_CHUNK_TRAILER_START;
                break;
            }
            if (c->size > INT64_MAX - c->total) {
                goto failed;
            }
            c->state = ED_CHUNK_DATA;
            break;

        case ED_CHUNK_DATA_CR:
            if (ch != '\r') {
                goto failed;
            }
            c->state = ED_CHUNK_DATA_LF;
            break;

        case ED_CHUNK_DATA_LF:
            if (ch != '\n') {
                goto failed;
            }
            c->state = ED_CHUNK_SIZE_START;
            break;

        case ED_CHUNK_TRAILER_START:
        case ED_CHUNK_TRAILER_NAME:
        case ED_CHUNK_TRAILER_VALUE:
        case ED_CHUNK_TRAILER_LF:
            if (++c->trailers > ED_CHUNK_MAX_TRAILERS) {
                goto failed;
            }
            if (c->keep != NULL) {
                c->keep[c->trailers - 1] = (char)ch;
            }
            switch (c->state) {
            case ED_CHUNK_TRAILER_START:
                if (ch == '\r') {
                    c->state = ED_CHUNK_FINAL_LF;
                } else if (ed_http_char[ch] & ED_HTTP_C_TOKEN) {
                    /* SP or HTAB here would be obs-fold: refused. */
                    c->state = ED_CHUNK_TRAILER_NAME;
                } else {
                    goto failed;
                }
                break;
            case ED_CHUNK_TRAILER_NAME:
                if (ch == ':') {
                    c->state = ED_CHUNK_TRAILER_VALUE;
                } else if (!(ed_http_char[ch] & ED_HTTP_C_TOKEN)) {
                    goto failed;
                }
                break;
            case ED_CHUNK_TRAILER_VALUE:
                if (ch == '\r') {
                    c->state = ED_CHUNK_TRAILER_LF;
                } else if (!(ed_http_char[ch] & ED_HTTP_C_VALUE)) {
                    goto failed;
                }
                break;
            default: /* ED_CHUNK_TRAILER_LF */
                if (ch != '\n') {
                    goto failed;
                }
                c->state = ED_CHUNK_TRAILER_START;
                break;
            }
            break;

        case ED_CHUNK_FINAL_LF:
            if (ch != '\n') {
                goto failed;
            }
            c->state = ED_CHUNK_DONE;
            *used = i;
            return ED_DONE;

        default:
            goto failed;
        }
    }

    *used = len;
    return ED_AGAIN;

failed:
    c->state = ED_CHUNK_ERROR;
    *used = i;
    return ED_ERROR;
}
