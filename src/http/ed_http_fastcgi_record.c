/* FastCGI records: the writers and the incremental parser
 * (ed_http_fastcgi_record.h). Pure: nothing here allocates. */
#include "ed_http_fastcgi_record.h"

#include <stdio.h>

enum {
    ED_FCGI_S_HEAD = 0,
    ED_FCGI_S_CONTENT,
    ED_FCGI_S_PAD
};

u_char *
ed_fcgi_header(u_char *p, int type, size_t clen, size_t pad)
{
    p[0] = ED_FCGI_VERSION;
    p[1] = (u_char)type;
    p[2] = 0;
    p[3] = ED_FCGI_REQUEST_ID;
    p[4] = (u_char)(clen >> 8);
    p[5] = (u_char)clen;
    p[6] = (u_char)pad;
    p[7] = 0;
    return p + ED_FCGI_HEADER_LEN;
}

u_char *
ed_fcgi_begin_request(u_char *p, bool keep)
{
    p = ed_fcgi_header(p, ED_FCGI_BEGIN_REQUEST, 8, 0);
    p[0] = 0;
    p[1] = ED_FCGI_RESPONDER;
    p[2] = keep ? ED_FCGI_KEEP_CONN : 0;
    memset(p + 3, 0, 5);
    return p + 8;
}

static size_t
ed_fcgi_len_len(size_t n)
{
    return n < 128 ? 1 : 4;
}

static u_char *
ed_fcgi_put_len(u_char *p, size_t n)
{
    if (n < 128) {
        *p++ = (u_char)n;
        return p;
    }
    *p++ = (u_char)(((n >> 24) & 0x7f) | 0x80);
    *p++ = (u_char)(n >> 16);
    *p++ = (u_char)(n >> 8);
    *p++ = (u_char)n;
    return p;
}

size_t
ed_fcgi_pair_len(size_t nlen, size_t vlen)
{
    return ed_fcgi_len_len(nlen) + ed_fcgi_len_len(vlen) + nlen + vlen;
}

u_char *
ed_fcgi_pair(u_char *p, const char *name, size_t nlen, const char *value,
             size_t vlen)
{
    p = ed_fcgi_put_len(p, nlen);
    p = ed_fcgi_put_len(p, vlen);
    memcpy(p, name, nlen);
    p += nlen;
    if (vlen) {
        memcpy(p, value, vlen);
    }
    return p + vlen;
}

size_t
ed_fcgi_stream_len(size_t len)
{
    size_t n = 0, c;

    while (len) {
        c = ed_min(len, (size_t)ED_FCGI_CONTENT_MAX);
        n += ED_FCGI_HEADER_LEN + c + ed_fcgi_pad(c);
        len -= c;
    }
    return n;
}

u_char *
ed_fcgi_stream(u_char *p, int type, const char *data, size_t len)
{
    size_t c, pad;

    while (len) {
        c = ed_min(len, (size_t)ED_FCGI_CONTENT_MAX);
        pad = ed_fcgi_pad(c);
        p = ed_fcgi_header(p, type, c, pad);
        memcpy(p, data, c);
        p += c;
        memset(p, 0, pad);
        p += pad;
        data += c;
        len -= c;
    }
    return p;
}

static const char *const ed_fcgi_status_names[] = {
    "REQUEST_COMPLETE", "CANT_MPX_CONN", "OVERLOADED", "UNKNOWN_ROLE"
};

/* A complete header: checked, the record begins. ED_OK or ED_ERROR. */
static int
ed_fcgi_record(ed_fcgi_parser_t *fp)
{
    const u_char *h = fp->head;
    unsigned      id = (unsigned)h[2] << 8 | h[3];
    size_t        clen = (size_t)h[4] << 8 | h[5];

    if (h[0] != ED_FCGI_VERSION) {
        snprintf(fp->error, sizeof(fp->error), "version %u", h[0]);
        return ED_ERROR;
    }
    if (id != ED_FCGI_REQUEST_ID) {
        snprintf(fp->error, sizeof(fp->error), "request id %u", id);
        return ED_ERROR;
    }
    fp->type = h[1];
    switch (fp->type) {
    case ED_FCGI_STDOUT:
    case ED_FCGI_STDERR:
        break;
    case ED_FCGI_END_REQUEST:
        if (clen != 8) {
            snprintf(fp->error, sizeof(fp->error),
                     "END_REQUEST of %zu bytes", clen);
            return ED_ERROR;
        }
        fp->elen = 0;
        break;
    default:
        snprintf(fp->error, sizeof(fp->error), "type %d", fp->type);
        return ED_ERROR;
    }
    fp->left = clen;
    fp->pad = h[6];
    fp->records++;
    return ED_OK;
}

/* END_REQUEST's body and padding are in: ED_OK (complete) or
 * ED_ERROR. */
static int
ed_fcgi_end(ed_fcgi_parser_t *fp)
{
    const u_char *e = fp->end;

    fp->app_status = (uint32_t)e[0] << 24 | (uint32_t)e[1] << 16
                     | (uint32_t)e[2] << 8 | e[3];
    fp->protocol_status = e[4];
    fp->ended = 1;
    if (fp->protocol_status != ED_FCGI_REQUEST_COMPLETE) {
        if (fp->protocol_status < (int)ed_nelems(ed_fcgi_status_names)) {
            snprintf(fp->error, sizeof(fp->error), "%s",
                     ed_fcgi_status_names[fp->protocol_status]);
        } else {
            snprintf(fp->error, sizeof(fp->error), "protocolStatus %d",
                     fp->protocol_status);
        }
        return ED_ERROR;
    }
    return ED_OK;
}

int
ed_fcgi_parse(ed_fcgi_parser_t *fp, const char *p, size_t len,
              size_t *used, int *ev, size_t *off, size_t *n)
{
    size_t i = 0, k;

    *n = 0;
    *off = 0;
    if (fp->error[0] != '\0') {
        return ED_ERROR;
    }
    while (i < len) {
        if (fp->ended) {
            snprintf(fp->error, sizeof(fp->error),
                     "record after END_REQUEST");
            *used = i;
            return ED_ERROR;
        }
        switch (fp->state) {
        case ED_FCGI_S_HEAD:
            k = ed_min(len - i, ED_FCGI_HEADER_LEN - fp->hlen);
            memcpy(fp->head + fp->hlen, p + i, k);
            fp->hlen += k;
            i += k;
            fp->mid = 1;
            if (fp->hlen < ED_FCGI_HEADER_LEN) {
                break;
            }
            fp->hlen = 0;
            if (ed_fcgi_record(fp) != ED_OK) {
                *used = i;
                return ED_ERROR;
            }
            fp->state = ED_FCGI_S_CONTENT;
            /* fall through */
        case ED_FCGI_S_CONTENT:
            if (fp->left > 0 && i == len) {
                break;
            }
            if (fp->type == ED_FCGI_END_REQUEST) {
                k = ed_min(len - i, fp->left);
                memcpy(fp->end + fp->elen, p + i, k);
                fp->elen += k;
                fp->left -= k;
                i += k;
            } else if (fp->left > 0) {
                k = ed_min(len - i, fp->left);
                fp->left -= k;
                *off = i;
                *n = k;
                *ev = fp->type == ED_FCGI_STDOUT ? ED_FCGI_EV_STDOUT
                                                 : ED_FCGI_EV_STDERR;
                i += k;
                if (fp->left == 0) {
                    fp->state = ED_FCGI_S_PAD;
                    if (fp->pad == 0) {
                        fp->state = ED_FCGI_S_HEAD;
                        fp->mid = 0;
                    }
                }
                *used = i;
                return ED_OK;
            }
            if (fp->left > 0) {
                break;
            }
            fp->state = ED_FCGI_S_PAD;
            /* fall through */
        case ED_FCGI_S_PAD:
            k = ed_min(len - i, fp->pad);
            fp->pad -= k;
            i += k;
            if (fp->pad > 0) {
                break;
            }
            fp->state = ED_FCGI_S_HEAD;
            fp->mid = 0;
            if (fp->type == ED_FCGI_END_REQUEST) {
                *used = i;
                if (ed_fcgi_end(fp) != ED_OK) {
                    return ED_ERROR;
                }
                *ev = ED_FCGI_EV_END;
                return ED_OK;
            }
            break;
        }
    }
    *used = i;
    return ED_AGAIN;
}
