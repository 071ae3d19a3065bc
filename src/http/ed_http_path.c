/* Normalisation of request paths: percent-decoding and dot segments. */
#include "ed_core.h"
#include "ed_http_parse.h"

/*
 * One pass over the input: each byte is decoded first, then a '/' (sent
 * as is or as %2F) closes the segment written so far, which is dropped
 * when it is empty or ".", and removes the previous segment when it is
 * "..". Decoding before resolving is what makes %2e%2e and %2f unable to
 * sneak past: they are judged as the file system will see them. The
 * output never grows (each byte written stands for at least one byte
 * read), so out may even be in.
 *
 * A backslash is an ordinary byte: on the file systems eddy serves from it
 * does not separate names, so "..\" cannot leave the root.
 *
 * A trailing slash is kept ("/a/" stays "/a/"; "/a/b/.." gives "/a/").
 * Returns ED_OK with *out_len set, or ED_ERROR: no leading '/', an escape
 * that is not %XX, a NUL (raw or %00), or a ".." above the root.
 */
int
ed_http_normalize_path(const char *in, size_t len, char *out,
                       size_t *out_len)
{
    size_t i, o, seg, n;
    u_char ch;
    bool   last;
    int    hi, lo;

    if (len == 0 || in[0] != '/') {
        return ED_ERROR;
    }
    out[0] = '/';
    o = 1;
    seg = 1;  /* out[seg..o) is the segment being written */

    for (i = 1; i <= len; i++) {
        last = i == len;
        if (last) {
            ch = '/';
        } else {
            ch = (u_char)in[i];
            if (ch == '%') {
                if (len - i < 3) {
                    return ED_ERROR;
                }
                hi = ed_http_hex((u_char)in[i + 1]);
                lo = ed_http_hex((u_char)in[i + 2]);
                if (hi < 0 || lo < 0) {
                    return ED_ERROR;
                }
                ch = (u_char)(hi << 4 | lo);
                i += 2;
            }
            if (ch == '\0') {
                return ED_ERROR;
            }
        }

        if (ch != '/') {
            out[o++] = (char)ch;
            continue;
        }

        n = o - seg;
        if (n == 0) {
            /* "//": merged. */
            continue;
        }
        if (n == 1 && out[seg] == '.') {
            o = seg;
            continue;
        }
        if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 1) {
                return ED_ERROR;
            }
            /* Back over the '/' before "..", then over the segment before
             * it; out[0] == '/' stops the walk. */
            o = seg - 1;
            while (out[o - 1] != '/') {
                o--;
            }
            seg = o;
            continue;
        }
        if (!last) {
            out[o++] = '/';
            seg = o;
        }
    }

    *out_len = o;
    return ED_OK;
}
