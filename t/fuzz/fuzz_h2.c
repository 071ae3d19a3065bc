/* libFuzzer target: arbitrary bytes from a client to a server-side
 * HTTP/2 connection (h2c, the preface put first when missing), through
 * the real worker loop, configuration and handlers, over a socketpair.
 * A corpus line "--MARK--" ends one write of the client's: the loop
 * turns a few times before the next (the libFuzzer build, with
 * ED_V2_COMPACT_MSEC 0, puts an idle session to sleep there, and the next
 * write wakes it).
 * Invariants: no crash and no sanitizer report; the connection always
 * ends (the client's EOF, or the shutdown at the end of the run), and
 * every stream with it (no request left, streams gauge back to 0). */
#include "ed_core.h"
#include "ed_conf.h"
#include "ed_cycle.h"
#include "ed_module.h"
#include "ed_http.h"
#include "ed_stats.h"
#include "fuzz.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Loop turns a run gets at most (each one non-blocking). */
#define ED_FUZZ_TURNS 2000
/* Loop turns between two of the client's writes. */
#define ED_FUZZ_PAUSE 3

static const char ed_fuzz_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char ed_fuzz_mark[] = "\n--MARK--\n";

static const char ed_fuzz_conf[] =
    "error_log: {path: logs/error.log, level: emerg}\n"
    "access_log: off\n"
    "http2: {max_concurrent_streams: 16}\n"
    "servers:\n"
    "  - listen: [{address: \"127.0.0.1:1\", http2: true}]\n"
    "    root: html\n"
    "    gzip: {enabled: true, types: [text/plain], min_length: 1}\n"
    "    max_header_size: 4k\n"
    "    client_max_body_size: 64k\n"
    "    locations:\n"
    "      /:\n"
    "        static: {}\n"
    "      /r:\n"
    "        return: {status: 200, body: \"$request $http_x\\n\"}\n";

static ed_worker_t    ed_fuzz_worker;
static ed_listener_t *ed_fuzz_ls;

static void
ed_fuzz_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ed_fuzz_assert(fd >= 0);
    ed_fuzz_assert(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void
ed_fuzz_init(void)
{
    static char    dir[] = "/tmp/ed_fuzz_h2.XXXXXX";
    char           path[256], text[20000];
    ed_conf_t     *errors = NULL;
    ed_cycle_t    *cycle;
    ed_listener_t **ls;
    size_t         i;

    signal(SIGPIPE, SIG_IGN);
    ed_modules_init();
    ed_fuzz_assert(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/logs", dir);
    ed_fuzz_assert(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "%s/html", dir);
    ed_fuzz_assert(mkdir(path, 0755) == 0);
    for (i = 0; i < sizeof(text); i++) {
        text[i] = (char)('a' + i % 26);
    }
    snprintf(path, sizeof(path), "%s/html/index.html", dir);
    ed_fuzz_file(path, text, 100);
    snprintf(path, sizeof(path), "%s/html/big.txt", dir);
    ed_fuzz_file(path, text, sizeof(text));
    snprintf(path, sizeof(path), "%s/eddy.yaml", dir);
    ed_fuzz_file(path, ed_fuzz_conf, sizeof(ed_fuzz_conf) - 1);
    cycle = ed_cycle_load(path, dir, &errors);
    ed_fuzz_assert(cycle != NULL);
    ed_log_stderr.level = ED_LOG_EMERG;
    ls = cycle->listeners.elts;
    for (i = 0; i < cycle->listeners.nelts; i++) {
        if (ls[i]->servers) {
            ed_fuzz_ls = ls[i];
        }
    }
    ed_fuzz_assert(ed_fuzz_ls != NULL);
    ed_fuzz_worker.cycle = cycle;
    ed_fuzz_worker.conns.next = ed_fuzz_worker.conns.prev =
        &ed_fuzz_worker.conns;
    ed_fuzz_worker.max_conns = 1000;
    ed_buf_pool_init(&ed_fuzz_worker.bufs, 16384, 16);
    ed_fuzz_worker.loop = ed_loop_create(ed_log_cur);
    ed_fuzz_assert(ed_fuzz_worker.loop != NULL);
    ed_worker = &ed_fuzz_worker;
}

/* The input without the corpus's write markers, the preface first; the
 * end of each write in cuts (ncuts of them, the last at *len). */
static char *
ed_fuzz_stream(const uint8_t *data, size_t size, size_t *len,
               size_t **cuts, size_t *ncuts)
{
    size_t  pl = sizeof(ed_fuzz_preface) - 1, ml = sizeof(ed_fuzz_mark) - 1;
    size_t  i, n = 0, k = 0;
    char   *out;

    out = malloc(size + pl + 1);
    *cuts = malloc((size / ml + 2) * sizeof(size_t));
    ed_fuzz_assert(out != NULL && *cuts != NULL);
    if (size < pl || memcmp(data, ed_fuzz_preface, pl) != 0) {
        memcpy(out, ed_fuzz_preface, pl);
        n = pl;
    }
    for (i = 0; i < size; i++) {
        if (size - i >= ml && memcmp(data + i, ed_fuzz_mark, ml) == 0) {
            i += ml - 1;
            if (k == 0 || (*cuts)[k - 1] != n) {
                (*cuts)[k++] = n;
            }
            continue;
        }
        out[n++] = (char)data[i];
    }
    (*cuts)[k++] = n;
    *len = n;
    *ncuts = k;
    return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int      ready;
    ed_peer_addr_t  peer;
    ed_conn_t      *c, *next;
    char           *in, sink[65536];
    size_t          len, off = 0, *cuts, ncuts, cut = 0;
    ssize_t         n;
    int             sv[2], turn, pause = 0;
    bool            shut = false;

    if (!ready) {
        ed_fuzz_init();
        ready = 1;
    }
    in = ed_fuzz_stream(data, size, &len, &cuts, &ncuts);
    ed_fuzz_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
                                           | SOCK_CLOEXEC, 0, sv)
                   == 0);
    memset(&peer, 0, sizeof(peer));
    peer.sa.sa_family = AF_UNIX;
    ed_http_accept(ed_fuzz_ls, sv[1], &peer);
    for (turn = 0; turn < ED_FUZZ_TURNS && ed_fuzz_worker.nconns; turn++) {
        if (off == cuts[cut] && cut + 1 < ncuts
            && pause++ == ED_FUZZ_PAUSE)
        {
            /* One write of the client's was in for a few turns: on to
             * the next. */
            pause = 0;
            cut++;
        }
        if (off < cuts[cut]) {
            n = write(sv[0], in + off, cuts[cut] - off);
            if (n > 0) {
                off += (size_t)n;
            }
        } else if (off == len && !shut) {
            shutdown(sv[0], SHUT_WR);
            shut = true;
        }
        while (read(sv[0], sink, sizeof(sink)) > 0) {
        }
        ed_loop_once(ed_fuzz_worker.loop, 0);
    }
    /* What is still open (a timer it waits on) ends as at a worker's
     * shutdown_timeout. */
    ed_fuzz_worker.terminating = 1;
    for (c = ed_fuzz_worker.conns.next; c != &ed_fuzz_worker.conns;
         c = next)
    {
        next = c->next;
        c->shutdown(c);
    }
    ed_fuzz_worker.terminating = 0;
    for (turn = 0; turn < 10; turn++) {
        ed_loop_once(ed_fuzz_worker.loop, 0);
    }
    ed_fuzz_assert(ed_fuzz_worker.nconns == 0);
    ed_fuzz_assert(atomic_load(&ed_stats_me->v2.streams_active) == 0);
    ed_fuzz_assert(atomic_load(&ed_stats_me->v2.connections_active) == 0);
    close(sv[0]);
    free(cuts);
    free(in);
    return 0;
}
