/* Unit tests of the TLS transport under ed_stream: a server stream on a
 * loopback TCP connection against an OpenSSL client in the same process,
 * the loop driven turn by turn; contexts, errors and ticket keys. */
#include <check.h>

#include "ed_tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static ed_loop_t     *loop;
static ed_buf_pool_t  bufs;
static ed_stream_t   *st;
static SSL_CTX       *sctx;    /* server */
static SSL_CTX       *cctx;    /* client */
static SSL           *cli;
static int            cfd = -1;
static char           dir[64];
static char           cert[128], key[128], cert2[128], key2[128];

/* Server-side deliveries. */
static int    last_status, n_reads, n_flushed, n_close;
static char   got[256];
static size_t got_len;
static bool   echo;

/* Writes a self-signed P-256 certificate for cn and its key. */
static void
make_cert(const char *cn, const char *cert_path, const char *key_path)
{
    EVP_PKEY  *pkey = EVP_EC_gen("P-256");
    X509      *x = X509_new();
    X509_NAME *name;
    FILE      *f;

    ck_assert_ptr_nonnull(pkey);
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pkey);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    ck_assert_int_gt(X509_sign(x, pkey, EVP_sha256()), 0);
    f = fopen(cert_path, "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
}

static SSL_CTX *
server_ctx(unsigned protocols, bool tickets)
{
    char     err[512];
    int      what = -1;
    SSL_CTX *ctx;

    ctx = ed_tls_server_ctx(cert, key, protocols, NULL, tickets, err,
                            sizeof(err), &what);
    ck_assert_msg(ctx != NULL, "%s", err);
    return ctx;
}

static void
setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    loop = ed_loop_create(NULL);
    ck_assert_ptr_nonnull(loop);
    ed_buf_pool_init(&bufs, 16384, 4);
    snprintf(dir, sizeof(dir), "/tmp/ed_tls_test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/a.pem", dir);
    snprintf(key, sizeof(key), "%s/a.key", dir);
    snprintf(cert2, sizeof(cert2), "%s/b.pem", dir);
    snprintf(key2, sizeof(key2), "%s/b.key", dir);
    make_cert("a.test", cert, key);
    make_cert("b.test", cert2, key2);
    sctx = server_ctx(ED_TLS_V12 | ED_TLS_V13, true);
    cctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(cctx);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    last_status = 1;
    n_reads = n_flushed = n_close = 0;
    got_len = 0;
    echo = false;
}

static void
close_client(void)
{
    if (cli != NULL) {
        /* A session freed without close_notify is not resumable. */
        SSL_shutdown(cli);
        SSL_free(cli);
        cli = NULL;
    }
    if (cfd != -1) {
        close(cfd);
        cfd = -1;
    }
}

static void
close_server(void)
{
    if (st != NULL) {
        ed_stream_close(st);
        free(st);
        st = NULL;
    }
}

static void
teardown(void)
{
    char path[160];

    close_server();
    close_client();
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    ed_buf_pool_free(&bufs);
    ed_loop_destroy(loop);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    ck_assert_int_eq(system(path), 0);
}

static void
on_flushed(ed_stream_t *s)
{
    ed_unused(s);
    n_flushed++;
}

static void
on_close(ed_stream_t *s)
{
    ed_unused(s);
    n_close++;
}

/* A loopback TCP connection: the server end becomes a TLS stream, the
 * client end gets an OpenSSL client. sndbuf > 0 sets the server's send
 * buffer and the client's receive buffer (small: partial writes). */
static void
connect_pair(SSL_CTX *ctx, int sndbuf)
{
    struct sockaddr_in sin;
    socklen_t          len = sizeof(sin);
    int                lfd, sfd, one = 1;

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(lfd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(lfd, 1), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(cfd, 0);
    if (sndbuf > 0) {
        setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
    }
    ck_assert_int_eq(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ck_assert_int_ge(sfd, 0);
    close(lfd);
    if (sndbuf > 0) {
        setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(cfd, F_SETFL, O_NONBLOCK);

    st = calloc(1, sizeof(ed_stream_t));
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(ed_stream_init(st, loop, &bufs, sfd, NULL), ED_OK);
    st->on_flushed = on_flushed;
    st->on_close = on_close;
    ck_assert_int_eq(ed_tls_accept(st, ctx, NULL), ED_OK);
    ck_assert_ptr_nonnull(ed_tls_ssl(st));

    cli = SSL_new(cctx);
    ck_assert_ptr_nonnull(cli);
    SSL_set_fd(cli, cfd);
    SSL_set_connect_state(cli);
    SSL_set_tlsext_host_name(cli, "a.test");
}

/* One turn of the server's loop (waiting at most ms). */
static void
turn(int ms)
{
    ck_assert_int_eq(ed_loop_once(loop, ms), ED_OK);
}

static void
on_read(ed_stream_t *s, int status, char *data, size_t len)
{
    n_reads++;
    last_status = status;
    if (status == ED_OK) {
        ck_assert_uint_lt(got_len + len, sizeof(got));
        memcpy(got + got_len, data, len);
        got_len += len;
        got[got_len] = '\0';
        if (echo) {
            ck_assert_int_eq(ed_stream_write(s, "echo: ", 6), ED_OK);
            ck_assert_int_eq(ed_stream_write(s, data, len), ED_OK);
            ck_assert_int_eq(ed_stream_read_until(s, "\n", 1, 1024,
                                                  on_read),
                             ED_OK);
        }
    }
}

/* Runs the client's handshake against the loop. */
static void
handshake(void)
{
    int i, rc = 0;

    for (i = 0; i < 1000; i++) {
        rc = SSL_do_handshake(cli);
        if (rc == 1) {
            return;
        }
        ck_assert_msg(SSL_get_error(cli, rc) == SSL_ERROR_WANT_READ
                          || SSL_get_error(cli, rc) == SSL_ERROR_WANT_WRITE,
                      "client handshake failed");
        turn(10);
    }
    ck_abort_msg("handshake did not finish");
}

/* Writes all of buf from the client, turning the loop meanwhile. */
static void
client_write(const char *buf, size_t len)
{
    size_t done = 0;
    int    n, i;

    for (i = 0; done < len && i < 1000; i++) {
        n = SSL_write(cli, buf + done, (int)(len - done));
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        ck_assert_int_eq(SSL_get_error(cli, n), SSL_ERROR_WANT_WRITE);
        turn(10);
    }
    ck_assert_uint_eq(done, len);
}

/* Reads exactly len bytes into buf (at most step per read), turning the
 * loop between reads. Returns the bytes read (short at the end). */
static size_t
client_read(char *buf, size_t len, size_t step)
{
    size_t done = 0;
    int    n, i, e;

    for (i = 0; done < len && i < 100000; i++) {
        n = SSL_read(cli, buf + done, (int)ed_min(len - done, step));
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        e = SSL_get_error(cli, n);
        if (e != SSL_ERROR_WANT_READ) {
            break;
        }
        turn(1);
    }
    return done;
}

/* Lets the client read what the server sent (tickets) for a few turns. */
static void
client_drain(void)
{
    char buf[16];
    int  i, n;

    for (i = 0; i < 10; i++) {
        n = SSL_read(cli, buf, sizeof(buf));
        ck_assert_int_le(n, 0);
        ck_assert_int_eq(SSL_get_error(cli, n), SSL_ERROR_WANT_READ);
        turn(1);
    }
}

START_TEST(test_tls_handshake_and_echo)
{
    char buf[64];

    connect_pair(sctx, 0);
    echo = true;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 1024, on_read), ED_OK);
    handshake();
    ck_assert_int_eq(SSL_version(cli), TLS1_3_VERSION);
    client_write("hello\nworld\n", 12);
    ck_assert_uint_eq(client_read(buf, 24, sizeof(buf)), 24);
    ck_assert_int_eq(memcmp(buf, "echo: hello\necho: world\n", 24), 0);
    ck_assert_int_eq(n_reads, 2);
    ck_assert_str_eq(got, "hello\nworld\n");
}
END_TEST

START_TEST(test_tls12_handshake)
{
    char buf[16];

    SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
    connect_pair(sctx, 0);
    echo = true;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 1024, on_read), ED_OK);
    handshake();
    ck_assert_int_eq(SSL_version(cli), TLS1_2_VERSION);
    client_write("x\n", 2);
    ck_assert_uint_eq(client_read(buf, 8, sizeof(buf)), 8);
    ck_assert_int_eq(memcmp(buf, "echo: x\n", 8), 0);
}
END_TEST

/* The expected bytes of the write test: a pattern that shows misordered
 * or repeated records. */
static char *
pattern(size_t len, unsigned seed)
{
    char  *p = malloc(len);
    size_t i;

    ck_assert_ptr_nonnull(p);
    for (i = 0; i < len; i++) {
        p[i] = (char)('a' + (i * 7 + seed + i / 1000) % 26);
    }
    return p;
}

/* A queue of small and big pieces through a small socket buffer and a
 * slow reader: every byte arrives once, in order, through many partial
 * writes and retried records. */
START_TEST(test_tls_partial_writes)
{
    size_t sizes[] = { 100, 1 << 20, 10, 3, 200000, 16384, 16383, 40000 };
    size_t total = 0, i, off = 0;
    char  *pieces[ed_nelems(sizes)], *want, *buf;

    connect_pair(sctx, 8192);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    for (i = 0; i < ed_nelems(sizes); i++) {
        pieces[i] = pattern(sizes[i], (unsigned)i);
        total += sizes[i];
    }
    want = malloc(total);
    buf = malloc(total);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(buf);
    for (i = 0; i < ed_nelems(sizes); i++) {
        memcpy(want + off, pieces[i], sizes[i]);
        off += sizes[i];
        /* Copies and references mixed, as a response head and body. */
        if (i % 2 == 0) {
            ck_assert_int_eq(ed_stream_write(st, pieces[i], sizes[i]),
                             ED_OK);
        } else {
            ck_assert_int_eq(ed_stream_write_ref(st, pieces[i], sizes[i]),
                             ED_OK);
        }
    }
    ck_assert_uint_eq(client_read(buf, total, 3000), total);
    ck_assert_int_eq(memcmp(buf, want, total), 0);
    turn(0);
    ck_assert_uint_eq(st->wqueued, 0);
    ck_assert_int_ge(n_flushed, 1);
    ck_assert_int_eq(n_close, 0);
    for (i = 0; i < ed_nelems(sizes); i++) {
        free(pieces[i]);
    }
    free(want);
    free(buf);
}
END_TEST

/* Regression: a queue of several pieces larger than one record is
 * written whole while the socket takes it, without the reader doing
 * anything: a short write must mean a full socket (no EPOLLOUT comes
 * otherwise). */
START_TEST(test_tls_write_all_while_room)
{
    char *body = pattern(100000, 1), *buf = malloc(100200);
    int   i;

    ck_assert_ptr_nonnull(buf);
    connect_pair(sctx, 1 << 20);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    ck_assert_int_eq(ed_stream_write(st, "HTTP/1.1 200 OK\r\n\r\n", 19),
                     ED_OK);
    ck_assert_int_eq(ed_stream_write_ref(st, body, 100000), ED_OK);
    ck_assert_int_eq(ed_stream_write(st, "tail", 4), ED_OK);
    for (i = 0; i < 5 && st->wqueued > 0; i++) {
        turn(10);
    }
    ck_assert_uint_eq(st->wqueued, 0);
    ck_assert_uint_eq(client_read(buf, 100023, 65536), 100023);
    ck_assert_int_eq(memcmp(buf + 19, body, 100000), 0);
    ck_assert_int_eq(memcmp(buf + 100019, "tail", 4), 0);
    free(body);
    free(buf);
}
END_TEST

START_TEST(test_tls_close_notify_from_peer)
{
    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    client_write("abc", 3);
    SSL_shutdown(cli);
    for (int i = 0; i < 100 && last_status != ED_DONE; i++) {
        turn(10);
        if (last_status == ED_OK) {
            ed_stream_read_some(st, 1024, on_read);
            last_status = 1;
        }
    }
    ck_assert_int_eq(last_status, ED_DONE);
    ck_assert_str_eq(got, "abc");
}
END_TEST

/* Data and close_notify in one read: the end is seen without another
 * edge (the TCP connection stays open). */
START_TEST(test_tls_data_then_close_notify_in_one_read)
{
    int i;

    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    client_write("x", 1);
    for (i = 0; i < 100 && got_len < 1; i++) {
        turn(10);
    }
    client_drain();
    client_write("abc", 3);
    SSL_shutdown(cli);
    last_status = 1;
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    for (i = 0; i < 50 && last_status != ED_DONE; i++) {
        turn(10);
        if (last_status == ED_OK) {
            last_status = 1;
            ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
        }
    }
    ck_assert_str_eq(got, "xabc");
    ck_assert_int_eq(last_status, ED_DONE);
}
END_TEST

/* A peer that closes TCP without close_notify has simply ended. */
START_TEST(test_tls_eof_without_close_notify)
{
    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    close_client();
    for (int i = 0; i < 100 && last_status == 1; i++) {
        turn(10);
    }
    ck_assert_int_eq(last_status, ED_DONE);
}
END_TEST

START_TEST(test_tls_garbage_is_an_error)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    ck_assert_int_eq(write(cfd, junk, sizeof(junk) - 1),
                     (ssize_t)sizeof(junk) - 1);
    for (int i = 0; i < 100 && last_status == 1; i++) {
        turn(10);
    }
    ck_assert_int_eq(last_status, ED_ERROR);
    ck_assert_int_eq(n_reads, 1);
}
END_TEST

/* Closing the stream sends close_notify: the client reads a clean end. */
START_TEST(test_tls_close_sends_close_notify)
{
    char buf[16];
    int  n;

    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    /* The client reads the server's tickets first (TLS 1.3). */
    client_drain();
    close_server();
    n = SSL_read(cli, buf, sizeof(buf));
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(SSL_get_error(cli, n), SSL_ERROR_ZERO_RETURN);
}
END_TEST

/* ed_tls_shutdown_write: close_notify, then the TCP write side. */
START_TEST(test_tls_shutdown_write)
{
    char buf[16];
    int  n;

    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    /* The server's handshake ends when it reads the client's Finished. */
    client_write("x", 1);
    for (int i = 0; i < 100 && got_len < 1; i++) {
        turn(10);
    }
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    ed_tls_shutdown_write(st);
    for (int i = 0; i < 100; i++) {
        n = SSL_read(cli, buf, sizeof(buf));
        if (n <= 0 && SSL_get_error(cli, n) == SSL_ERROR_WANT_READ) {
            turn(1);
            continue;
        }
        break;
    }
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(SSL_get_error(cli, n), SSL_ERROR_ZERO_RETURN);
    /* The stream still reads: lingering close drains the client. */
    client_write("late", 4);
    for (int i = 0; i < 100 && got_len < 5; i++) {
        turn(10);
    }
    ck_assert_str_eq(got, "xlate");
}
END_TEST

/* A full connection whose session the client keeps; returns whether it
 * was resumed from session (NULL: a new one). */
static bool
session_round(SSL_SESSION *session, SSL_SESSION **out)
{
    char buf[8];
    bool reused;

    connect_pair(sctx, 0);
    echo = true;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 1024, on_read), ED_OK);
    if (session != NULL) {
        SSL_set_session(cli, session);
    }
    handshake();
    client_write("s\n", 2);
    /* Reading the answer also reads the TLS 1.3 tickets. */
    ck_assert_uint_eq(client_read(buf, 8, sizeof(buf)), 8);
    reused = SSL_session_reused(cli);
    if (out != NULL) {
        *out = SSL_get1_session(cli);
        ck_assert_ptr_nonnull(*out);
    }
    close_client();
    close_server();
    return reused;
}

START_TEST(test_tls_ticket_keys_rotation)
{
    SSL_SESSION *s1, *s2;

    ck_assert(!session_round(NULL, &s1));
    ck_assert(SSL_SESSION_has_ticket(s1));
    ck_assert(session_round(s1, NULL));
    /* After one rotation the key still decrypts (and a renewed ticket
     * comes); after two it is gone. */
    ck_assert_int_eq(ed_tls_keys_rotate(), ED_OK);
    ck_assert(session_round(s1, &s2));
    ck_assert_int_eq(ed_tls_keys_rotate(), ED_OK);
    ck_assert(!session_round(s1, NULL));
    /* The ticket renewed after the first rotation is from the newer key. */
    ck_assert(session_round(s2, NULL));
    SSL_SESSION_free(s1);
    SSL_SESSION_free(s2);
}
END_TEST

/* A client with a session cache (OpenSSL's, browsers') uses a TLS 1.3
 * ticket once: every resumption must bring a fresh ticket, or only every
 * other connection resumes. */
START_TEST(test_tls_resumption_chain)
{
    SSL_SESSION *s, *next;
    int          i;

    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT);
    SSL_CTX_set_max_proto_version(cctx, _i ? TLS1_2_VERSION : 0);
    ck_assert(!session_round(NULL, &s));
    for (i = 0; i < 4; i++) {
        ck_assert_msg(session_round(s, &next), "round %d not resumed", i);
        SSL_SESSION_free(s);
        s = next;
    }
    SSL_SESSION_free(s);
}
END_TEST

/* Contexts made later (a reload) decrypt the tickets of earlier ones. */
START_TEST(test_tls_ticket_keys_survive_new_ctx)
{
    SSL_SESSION *s1;

    SSL_CTX_set_max_proto_version(cctx, _i ? TLS1_2_VERSION : 0);
    ck_assert(!session_round(NULL, &s1));
    SSL_CTX_free(sctx);
    sctx = server_ctx(ED_TLS_V12 | ED_TLS_V13, true);
    ck_assert(session_round(s1, NULL));
    SSL_SESSION_free(s1);
}
END_TEST

START_TEST(test_tls_no_tickets)
{
    SSL_SESSION *s1;

    SSL_CTX_free(sctx);
    sctx = server_ctx(ED_TLS_V12 | ED_TLS_V13, false);
    SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
    ck_assert(!session_round(NULL, &s1));
    ck_assert(!SSL_SESSION_has_ticket(s1));
    /* The process's own cache resumes it. */
    ck_assert(session_round(s1, NULL));
    SSL_SESSION_free(s1);
}
END_TEST

/* Sessions are tied to the certificate: another server's context does
 * not resume them. */
START_TEST(test_tls_session_bound_to_certificate)
{
    SSL_SESSION *s1;
    char         err[256];
    int          what;

    ck_assert(!session_round(NULL, &s1));
    SSL_CTX_free(sctx);
    sctx = ed_tls_server_ctx(cert2, key2, ED_TLS_V12 | ED_TLS_V13, NULL,
                             true, err, sizeof(err), &what);
    ck_assert_ptr_nonnull(sctx);
    ck_assert(!session_round(s1, NULL));
    SSL_SESSION_free(s1);
}
END_TEST

START_TEST(test_tls_protocols)
{
    SSL_CTX_free(sctx);
    sctx = server_ctx(ED_TLS_V12, true);
    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    ck_assert_int_eq(SSL_version(cli), TLS1_2_VERSION);
}
END_TEST

/* ed_tls_switch_ctx (SNI) brings the other context's protocols along,
 * not only its certificate. */
static int
switch_cb(SSL *ssl, int *alert, void *arg)
{
    ed_unused(alert);
    return ed_tls_switch_ctx(ssl, arg) == ED_OK ? SSL_CLIENT_HELLO_SUCCESS
                                                : SSL_CLIENT_HELLO_ERROR;
}

START_TEST(test_tls_switch_ctx)
{
    SSL_CTX *other;
    char     err[256];
    int      what;
    X509    *peer;
    char     cn[64];

    other = ed_tls_server_ctx(cert2, key2, ED_TLS_V12, NULL, false, err,
                              sizeof(err), &what);
    ck_assert_ptr_nonnull(other);
    SSL_CTX_set_client_hello_cb(sctx, switch_cb, other);
    connect_pair(sctx, 0);
    ck_assert_int_eq(ed_stream_read_some(st, 1024, on_read), ED_OK);
    handshake();
    ck_assert_int_eq(SSL_version(cli), TLS1_2_VERSION);
    peer = SSL_get1_peer_certificate(cli);
    ck_assert_ptr_nonnull(peer);
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                              cn, sizeof(cn));
    ck_assert_str_eq(cn, "b.test");
    ck_assert(SSL_get_options(ed_tls_ssl(st)) & SSL_OP_NO_TICKET);
    X509_free(peer);
    close_client();
    close_server();
    SSL_CTX_free(other);
}
END_TEST

/* The session id context is nginx's (SHA-1 of "HTTP" and the leaf's
 * SHA-1), or tickets from nginx hosts with the same key files and
 * certificate would not resume: OpenSSL refuses a session of another
 * context even when its ticket decrypts. */
START_TEST(test_tls_sid_ctx_as_nginx)
{
    unsigned char        md[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
    unsigned int         len, wlen;
    const unsigned char *got_ctx;
    unsigned int         got_len_ctx;
    EVP_MD_CTX          *mdctx = EVP_MD_CTX_new();
    char                 buf[8];

    ck_assert(X509_digest(SSL_CTX_get0_certificate(sctx), EVP_sha1(), md,
                          &len) == 1);
    ck_assert(EVP_DigestInit_ex(mdctx, EVP_sha1(), NULL) == 1);
    ck_assert(EVP_DigestUpdate(mdctx, "HTTP", 4) == 1);
    ck_assert(EVP_DigestUpdate(mdctx, md, len) == 1);
    ck_assert(EVP_DigestFinal_ex(mdctx, want, &wlen) == 1);
    EVP_MD_CTX_free(mdctx);
    connect_pair(sctx, 0);
    echo = true;
    ck_assert_int_eq(ed_stream_read_until(st, "\n", 1, 1024, on_read), ED_OK);
    handshake();
    client_write("s\n", 2);
    ck_assert_uint_eq(client_read(buf, 8, sizeof(buf)), 8);
    got_ctx = SSL_SESSION_get0_id_context(SSL_get_session(ed_tls_ssl(st)),
                                          &got_len_ctx);
    ck_assert_uint_eq(got_len_ctx, wlen);
    ck_assert_int_eq(memcmp(got_ctx, want, wlen), 0);
}
END_TEST

/* Writes a key file of size bytes whose name starts with tag. */
static void
write_key_file(const char *path, size_t size, char tag)
{
    unsigned char b[80];
    FILE         *f;
    size_t        i;

    for (i = 0; i < size; i++) {
        b[i] = (unsigned char)(i < 16 ? tag : rand());
    }
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, size, f), size);
    fclose(f);
}

/* Keys from files: a ticket resumes on another context with the same
 * files (another host), not on one with other files; _i picks the
 * 80- or 48-byte layout and TLS 1.3 or 1.2. */
START_TEST(test_tls_ticket_key_files)
{
    ed_pool_t            *pool = ed_pool_create(4096);
    ed_tls_ticket_keys_t *keys, *other;
    SSL_SESSION          *s1;
    char                  p1[160], p2[160], err[256];
    unsigned              mode;

    snprintf(p1, sizeof(p1), "%s/t1.key", dir);
    snprintf(p2, sizeof(p2), "%s/t2.key", dir);
    write_key_file(p1, _i & 1 ? 48 : 80, 'a');
    write_key_file(p2, _i & 1 ? 48 : 80, 'b');
    keys = ed_tls_ticket_keys_create(pool, 1);
    other = ed_tls_ticket_keys_create(pool, 1);
    ck_assert_int_eq(ed_tls_ticket_keys_read(keys, p1, &mode, err,
                                             sizeof(err)), ED_OK);
    ck_assert_int_eq(ed_tls_ticket_keys_read(other, p2, &mode, err,
                                             sizeof(err)), ED_OK);
    SSL_CTX_set_max_proto_version(cctx, _i & 2 ? TLS1_2_VERSION : 0);
    ck_assert_int_eq(ed_tls_ticket_keys_use(sctx, keys), ED_OK);
    ck_assert(!session_round(NULL, &s1));
    ck_assert(SSL_SESSION_has_ticket(s1));
    SSL_CTX_free(sctx);
    sctx = server_ctx(ED_TLS_V12 | ED_TLS_V13, true);
    /* the shared keys do not know it */
    ck_assert(!session_round(s1, NULL));
    ck_assert_int_eq(ed_tls_ticket_keys_use(sctx, keys), ED_OK);
    ck_assert(session_round(s1, NULL));
    ck_assert_int_eq(ed_tls_ticket_keys_use(sctx, other), ED_OK);
    ck_assert(!session_round(s1, NULL));
    SSL_SESSION_free(s1);
    SSL_CTX_free(sctx);
    sctx = NULL;
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_tls_ticket_key_file_errors)
{
    ed_pool_t            *pool = ed_pool_create(4096);
    ed_tls_ticket_keys_t *keys = ed_tls_ticket_keys_create(pool, 2);
    char                  p1[160], p2[160], err[512], want[512];
    unsigned              mode;

    snprintf(p1, sizeof(p1), "%s/t1.key", dir);
    snprintf(p2, sizeof(p2), "%s/t2.key", dir);
    write_key_file(p1, 32, 'a');
    ck_assert_int_eq(ed_tls_ticket_keys_read(keys, p1, &mode, err,
                                             sizeof(err)), ED_ERROR);
    snprintf(want, sizeof(want), "session ticket key file \"%s\" must be "
             "48 or 80 bytes, got 32", p1);
    ck_assert_str_eq(err, want);
    write_key_file(p1, 80, 'a');
    write_key_file(p2, 48, 'a');
    ck_assert_int_eq(ed_tls_ticket_keys_read(keys, p1, &mode, err,
                                             sizeof(err)), ED_OK);
    ck_assert_int_eq(ed_tls_ticket_keys_read(keys, p2, &mode, err,
                                             sizeof(err)), ED_ERROR);
    snprintf(want, sizeof(want), "session ticket key file \"%s\" repeats "
             "the key name of \"%s\"", p2, p1);
    ck_assert_str_eq(err, want);
    unlink(p2);
    ck_assert_int_eq(ed_tls_ticket_keys_read(keys, p2, &mode, err,
                                             sizeof(err)), ED_ERROR);
    ck_assert(strstr(err, "No such file or directory") != NULL);
    unlink(p1);
    ed_pool_destroy(pool);
}
END_TEST

START_TEST(test_tls_ctx_errors)
{
    char     err[512];
    int      what = -1;
    char     missing[160];
    SSL_CTX *ctx;

    ctx = ed_tls_server_ctx(cert, key2, ED_TLS_V12 | ED_TLS_V13, NULL, true,
                            err, sizeof(err), &what);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(what, ED_TLS_ERR_KEY);
    ck_assert_msg(strstr(err, "does not match") != NULL, "%s", err);

    snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
    ctx = ed_tls_server_ctx(missing, key, ED_TLS_V12, NULL, true, err,
                            sizeof(err), &what);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(what, ED_TLS_ERR_CERT);
    ck_assert_msg(strstr(err, "No such file") != NULL, "%s", err);

    ctx = ed_tls_server_ctx(key, key, ED_TLS_V12, NULL, true, err,
                            sizeof(err), &what);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(what, ED_TLS_ERR_CERT);

    ctx = ed_tls_server_ctx(cert, cert, ED_TLS_V12, NULL, true, err,
                            sizeof(err), &what);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(what, ED_TLS_ERR_KEY);

    ctx = ed_tls_server_ctx(cert, key, ED_TLS_V12, "NOT-A-CIPHER", true, err,
                            sizeof(err), &what);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(what, ED_TLS_ERR_CIPHERS);
    ck_assert_msg(strstr(err, "NOT-A-CIPHER") != NULL, "%s", err);
    ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

/* The server_name extension as OpenSSL hands it over, unparsed. */
START_TEST(test_tls_sni_parse)
{
    static const unsigned char ok[] = "\x00\x0a\x00\x00\x07" "A.Test.";
    static const unsigned char two[] = "\x00\x0b\x00\x00\x01x"
                                       "\x00\x00\x04b.cd";
    static const unsigned char nul[] = "\x00\x06\x00\x00\x03a\x00b";
    static const unsigned char type[] = "\x00\x04\x01\x00\x01x";
    static const unsigned char over[] = "\x00\x04\x00\x00\x05x";
    char low[16] = "untouched";

    ck_assert_uint_eq(ed_tls_sni(ok, 12, low, sizeof(low)), 6);
    ck_assert_str_eq(low, "a.test");
    /* The first entry counts. */
    ck_assert_uint_eq(ed_tls_sni(two, 13, low, sizeof(low)), 1);
    ck_assert_str_eq(low, "x");
    strcpy(low, "untouched");
    ck_assert_uint_eq(ed_tls_sni(nul, 8, low, sizeof(low)), 0);
    ck_assert_uint_eq(ed_tls_sni(type, 6, low, sizeof(low)), 0);
    ck_assert_uint_eq(ed_tls_sni(over, 6, low, sizeof(low)), 0);
    ck_assert_uint_eq(ed_tls_sni(ok, 11, low, sizeof(low)), 0);
    ck_assert_uint_eq(ed_tls_sni(ok, 1, low, sizeof(low)), 0);
    /* Too long for the buffer. */
    ck_assert_uint_eq(ed_tls_sni(ok, 12, low, 7), 0);
    ck_assert_str_eq(low, "untouched");
}
END_TEST

Suite *
ed_test_tls_suite(void)
{
    Suite *s = suite_create("ed_tls");
    TCase *tc = tcase_create("tls");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_tls_handshake_and_echo);
    tcase_add_test(tc, test_tls12_handshake);
    tcase_add_test(tc, test_tls_partial_writes);
    tcase_add_test(tc, test_tls_write_all_while_room);
    tcase_add_test(tc, test_tls_close_notify_from_peer);
    tcase_add_test(tc, test_tls_data_then_close_notify_in_one_read);
    tcase_add_test(tc, test_tls_eof_without_close_notify);
    tcase_add_test(tc, test_tls_garbage_is_an_error);
    tcase_add_test(tc, test_tls_close_sends_close_notify);
    tcase_add_test(tc, test_tls_shutdown_write);
    tcase_add_test(tc, test_tls_ticket_keys_rotation);
    tcase_add_loop_test(tc, test_tls_resumption_chain, 0, 2);
    tcase_add_loop_test(tc, test_tls_ticket_keys_survive_new_ctx, 0, 2);
    tcase_add_test(tc, test_tls_no_tickets);
    tcase_add_test(tc, test_tls_session_bound_to_certificate);
    tcase_add_test(tc, test_tls_protocols);
    tcase_add_test(tc, test_tls_switch_ctx);
    tcase_add_test(tc, test_tls_sid_ctx_as_nginx);
    tcase_add_loop_test(tc, test_tls_ticket_key_files, 0, 4);
    tcase_add_test(tc, test_tls_ticket_key_file_errors);
    tcase_add_test(tc, test_tls_ctx_errors);
    tcase_add_test(tc, test_tls_sni_parse);
    suite_add_tcase(s, tc);
    return s;
}
