/* libFuzzer target: the FastCGI record parser (ed_http_fastcgi_record.c)
 * on any bytes from an application, whole and split in three pieces: the
 * same content, the same END_REQUEST, the same verdict. */
#include "ed_http_fastcgi_record.h"
#include "fuzz.h"

typedef struct {
    uint64_t out;     /* STDOUT bytes, and a hash of them */
    uint64_t outh;
    uint64_t err;
    int      ends;
    int      rc;
    char     error[48];
} ed_fuzz_res_t;

static void
ed_fuzz_feed(const char *buf, size_t size, size_t c1, size_t c2,
             ed_fuzz_res_t *res)
{
    ed_fcgi_parser_t fp;
    size_t           cuts[3] = { c1, c2, size }, from = 0, at, used, off, n;
    size_t           i, k;
    int              rc, ev;

    memset(&fp, 0, sizeof(fp));
    memset(res, 0, sizeof(*res));
    res->rc = ED_AGAIN;
    for (i = 0; i < 3; i++) {
        at = from;
        while (at < cuts[i]) {
            rc = ed_fcgi_parse(&fp, buf + at, cuts[i] - at, &used, &ev, &off,
                               &n);
            ed_fuzz_assert(used <= cuts[i] - at);
            if (rc == ED_ERROR) {
                ed_fuzz_assert(fp.error[0] != '\0');
                res->rc = ED_ERROR;
                memcpy(res->error, fp.error, sizeof(res->error));
                return;
            }
            if (rc == ED_OK) {
                ed_fuzz_assert(off + n <= used);
                if (ev == ED_FCGI_EV_STDOUT) {
                    ed_fuzz_assert(n > 0);
                    res->out += n;
                    for (k = 0; k < n; k++) {
                        res->outh = res->outh * 31 + (u_char)buf[at + off + k];
                    }
                } else if (ev == ED_FCGI_EV_STDERR) {
                    ed_fuzz_assert(n > 0);
                    res->err += n;
                } else {
                    ed_fuzz_assert(ev == ED_FCGI_EV_END);
                    ed_fuzz_assert(fp.protocol_status == 0);
                    res->ends++;
                }
            } else {
                ed_fuzz_assert(rc == ED_AGAIN && used == cuts[i] - at);
            }
            at += used;
        }
        from = cuts[i];
    }
    ed_fuzz_assert(res->ends <= 1);
    ed_fuzz_assert(res->ends == (int)fp.ended);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_fuzz_res_t a, b;
    char         *buf;
    size_t        c1, c2;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    ed_fuzz_feed(buf, size, size, size, &a);
    c1 = size ? (size_t)data[0] % (size + 1) : 0;
    c2 = size > 1 ? c1 + (size_t)data[1] % (size - c1 + 1) : size;
    ed_fuzz_feed(buf, size, c1, c2, &b);
    ed_fuzz_assert(a.rc == b.rc && a.ends == b.ends && a.err == b.err);
    ed_fuzz_assert(a.out == b.out && a.outh == b.outh);
    ed_fuzz_assert(strcmp(a.error, b.error) == 0);
    free(buf);
    return 0;
}
