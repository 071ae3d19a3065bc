/* Unit tests of upstreams (ed_http_upstream*.c): the response-head
 * parser, the balancers, passive health and the consistent-hash ring. */
#include <check.h>

#include "ed_http_upstream.h"

#include <arpa/inet.h>

/* Response heads. */

typedef struct {
    const char *name;
    const char *in;
    int         rc;
    int         status;
    int         version;
    int64_t     cl;
    unsigned    chunked;
    unsigned    close;
    size_t      nheaders;
} resp_case_t;

#define OK(name, s, st, v, cl, ch, cls, nh)                                  \
    { name, s, ED_OK, st, v, cl, ch, cls, nh }
#define BAD(name, s) { name, s, ED_ERROR, 0, 0, 0, 0, 0, 0 }

static const resp_case_t resp_cases[] = {
    OK("simple", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, 11, 5,
       0, 0, 1),
    OK("no reason", "HTTP/1.1 204\r\n\r\n", 204, 11, -1, 0, 0, 0),
    OK("empty reason", "HTTP/1.1 404 \r\n\r\n", 404, 11, -1, 0, 0, 0),
    OK("reason with spaces", "HTTP/1.1 500 Internal Server Error\r\n\r\n",
       500, 11, -1, 0, 0, 0),
    OK("http/1.0", "HTTP/1.0 200 OK\r\nX: y\r\n\r\n", 200, 10, -1, 0, 0, 1),
    OK("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 200, 11, 0, 0,
       0, 1),
    OK("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
       200, 11, -1, 1, 0, 1),
    OK("chunked case", "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n",
       200, 11, -1, 1, 0, 1),
    OK("close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n\r\n",
       200, 11, -1, 0, 1, 1),
    OK("same lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n"
       "Content-Length: 3\r\n\r\n", 200, 11, 3, 0, 0, 2),
    OK("OWS trimmed", "HTTP/1.1 200 OK\r\nContent-Length: \t 7 \t\r\n\r\n",
       200, 11, 7, 0, 0, 1),
    OK("leading CRLF", "\r\nHTTP/1.1 200 OK\r\n\r\n", 200, 11, -1, 0, 0, 0),
    OK("obs-text", "HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\n\r\n", 200, 11, -1,
       0, 0, 1),
    OK("1xx", "HTTP/1.1 100 Continue\r\n\r\n", 100, 11, -1, 0, 0, 0),
    OK("101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\n\r\n", 101, 11, -1, 0, 0, 2),
    OK("http/1.2 as 1.1", "HTTP/1.2 200 OK\r\n\r\n", 200, 11, -1, 0, 0, 0),
    OK("599", "HTTP/1.1 599 X\r\n\r\n", 599, 11, -1, 0, 0, 0),

    BAD("empty", ""),
    BAD("no head end", "HTTP/1.1 200 OK\r\nX: y\r\n"),
    BAD("http/2", "HTTP/2.0 200 OK\r\n\r\n"),
    BAD("http/0.9", "HTTP/0.9 200 OK\r\n\r\n"),
    BAD("lowercase", "http/1.1 200 OK\r\n\r\n"),
    BAD("two digits", "HTTP/1.1 20 OK\r\n\r\n"),
    BAD("four digits", "HTTP/1.1 2000 OK\r\n\r\n"),
    BAD("status 099", "HTTP/1.1 099 X\r\n\r\n"),
    BAD("status 600", "HTTP/1.1 600 X\r\n\r\n"),
    BAD("letters", "HTTP/1.1 2x0 OK\r\n\r\n"),
    BAD("two spaces", "HTTP/1.1  200 OK\r\n\r\n"),
    BAD("bare CR", "HTTP/1.1 200 OK\rX: y\r\n\r\n"),
    BAD("CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"),
    BAD("space before colon", "HTTP/1.1 200 OK\r\nX : y\r\n\r\n"),
    BAD("obs-fold", "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n"),
    BAD("no colon", "HTTP/1.1 200 OK\r\nXy\r\n\r\n"),
    BAD("NUL in value", "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"),
    BAD("CR in value", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"),
    BAD("CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
    BAD("different lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
        "Content-Length: 4\r\n\r\n"),
    BAD("length list differs", "HTTP/1.1 200 OK\r\nContent-Length: 3, 03"
        "\r\n\r\n"),
    BAD("negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
    BAD("length overflow", "HTTP/1.1 200 OK\r\nContent-Length: "
        "99999999999999999999\r\n\r\n"),
    BAD("empty length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"),
    BAD("chunked not last", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
        "gzip\r\n\r\n"),
    BAD("gzip only", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
    BAD("chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
    BAD("chunked param", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;a=b"
        "\r\n\r\n"),
    BAD("TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
        "\r\n"),
    BAD("only CRLFs", "\r\n\r\n"),
};

START_TEST(test_parse_response_table)
{
    const resp_case_t   *t = &resp_cases[_i];
    ed_http_header_t     hdrs[8];
    ed_http_resp_head_t  h;
    size_t               len = strlen(t->in);
    char                *buf;
    int                  rc;

    if (strcmp(t->name, "NUL in value") == 0) {
        len = sizeof("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n") - 1;
    }
    buf = malloc(len + 1);
    memcpy(buf, t->in, len);
    rc = ed_http_parse_response(buf, len, &h, hdrs, ed_nelems(hdrs));
    ck_assert_msg(rc == t->rc, "%s: rc %d, want %d", t->name, rc, t->rc);
    if (rc == ED_OK) {
        ck_assert_msg(h.status == t->status, "%s: status %d", t->name,
                      h.status);
        ck_assert_msg(h.version == t->version, "%s: version", t->name);
        ck_assert_msg(h.content_length == t->cl, "%s: length %lld",
                      t->name, (long long)h.content_length);
        ck_assert_msg(h.chunked == t->chunked, "%s: chunked", t->name);
        ck_assert_msg(h.conn_close == t->close, "%s: close", t->name);
        ck_assert_msg(h.nheaders == t->nheaders, "%s: %zu headers",
                      t->name, h.nheaders);
        ck_assert_msg(h.head_len == len, "%s: head_len", t->name);
    }
    free(buf);
}
END_TEST

START_TEST(test_parse_response_fields)
{
    static const char    in[] = "HTTP/1.1 101 Switching\r\n"
                                "Upgrade: websocket\r\n"
                                "Content-Type:  text/plain \r\n"
                                "Connection: Upgrade\r\n\r\n";
    ed_http_header_t     hdrs[4];
    ed_http_resp_head_t  h;

    ck_assert_int_eq(ed_http_parse_response(in, sizeof(in) - 1, &h, hdrs, 4),
                     ED_OK);
    ck_assert(h.reason.len == 9 && memcmp(h.reason.data, "Switching", 9)
                                       == 0);
    ck_assert(h.upgrade.len == 9
              && memcmp(h.upgrade.data, "websocket", 9) == 0);
    ck_assert(h.content_type.len == 10
              && memcmp(h.content_type.data, "text/plain", 10) == 0);
    ck_assert(h.conn_upgrade);
    ck_assert(hdrs[1].value.len == 10);
    /* Too many fields for the array. */
    ck_assert_int_eq(ed_http_parse_response(in, sizeof(in) - 1, &h, hdrs, 2),
                     ED_ERROR);
}
END_TEST

/* Every prefix of a valid head is refused (no half-parsed answer). */
START_TEST(test_parse_response_prefixes)
{
    static const char    in[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
                                "X-A: b\r\n\r\n";
    ed_http_header_t     hdrs[4];
    ed_http_resp_head_t  h;
    size_t               i;

    for (i = 0; i < sizeof(in) - 1; i++) {
        ck_assert_msg(ed_http_parse_response(in, i, &h, hdrs, 4) == ED_ERROR,
                      "prefix %zu accepted", i);
    }
    ck_assert_int_eq(ed_http_parse_response(in, sizeof(in) - 1, &h, hdrs, 4),
                     ED_OK);
}
END_TEST

/* Groups built by hand. */

static ed_pool_t          *pool;
static ed_http_upstream_t  ups;

static void
group(int balance, const int *weights, const int *backup, size_t n)
{
    ed_http_upstream_server_t *s;
    struct sockaddr_in        *sin;
    char                       name[32];
    size_t                     i;

    if (pool) {
        ed_pool_destroy(pool);
    }
    pool = ed_pool_create(4096);
    memset(&ups, 0, sizeof(ups));
    ed_str_set(&ups.name, "test");
    ups.balance = balance;
    ups.servers = ed_pcalloc(pool, n * sizeof(*s));
    ups.nservers = n;
    for (i = 0; i < n; i++) {
        s = &ups.servers[i];
        sin = (struct sockaddr_in *)&s->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)(9000 + i));
        sin->sin_addr.s_addr = htonl(0x7f000001);
        snprintf(name, sizeof(name), "127.0.0.1:%zu", 9000 + i);
        ed_str_dup(pool, &s->name, name, strlen(name));
        s->weight = weights ? weights[i] : 1;
        s->backup = backup ? (unsigned)backup[i] : 0;
        s->max_fails = 1;
        s->fail_timeout = 10000;
    }
    ck_assert_int_eq(ed_http_upstream_init(pool, &ups), ED_OK);
}

static void
teardown(void)
{
    if (pool) {
        ed_pool_destroy(pool);
        pool = NULL;
    }
}

START_TEST(test_rr_smooth)
{
    static const int w[] = { 5, 1, 1 };
    /* nginx's documented sequence for weights 5, 1, 1. */
    static const int want[] = { 0, 0, 1, 0, 2, 0, 0 };
    size_t           i, round;

    group(ED_HTTP_BALANCE_ROUND_ROBIN, w, NULL, 3);
    for (round = 0; round < 3; round++) {
        for (i = 0; i < ed_nelems(want); i++) {
            ck_assert_int_eq(ed_http_upstream_pick(&ups, 0, NULL, 0),
                             want[i]);
        }
    }
}
END_TEST

START_TEST(test_rr_skips_down_and_tried)
{
    uint8_t tried[1] = { 0 };
    int     i, counts[3] = { 0, 0, 0 };

    group(ED_HTTP_BALANCE_ROUND_ROBIN, NULL, NULL, 3);
    ups.servers[1].down_until = 5000;
    for (i = 0; i < 100; i++) {
        counts[ed_http_upstream_pick(&ups, 0, NULL, 1000)]++;
    }
    ck_assert_int_eq(counts[1], 0);
    ck_assert_int_eq(counts[0], 50);
    ck_assert_int_eq(counts[2], 50);
    /* After fail_timeout it is back. */
    ck_assert(ed_http_upstream_available(&ups.servers[1], 5000));

    tried[0] = 1 | 4;
    ck_assert_int_eq(ed_http_upstream_pick(&ups, 0, tried, 6000), 1);
    tried[0] = 7;
    ck_assert_int_eq(ed_http_upstream_pick(&ups, 0, tried, 6000), -1);
}
END_TEST

START_TEST(test_backup)
{
    static const int backup[] = { 0, 1, 0, 1 };
    int              i, b;

    group(ED_HTTP_BALANCE_ROUND_ROBIN, NULL, backup, 4);
    ck_assert_int_eq(ups.nprimary, 2);
    /* Primary servers first, backups after, in file order. */
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ups.servers[1].addr)
                               ->sin_port), 9002);
    for (i = 0; i < 10; i++) {
        ck_assert_int_lt(ed_http_upstream_pick(&ups, 0, NULL, 0), 2);
    }
    ups.servers[0].down_until = 100;
    ck_assert_int_eq(ed_http_upstream_pick(&ups, 0, NULL, 0), 1);
    ups.servers[1].down_until = 100;
    for (i = 0; i < 10; i++) {
        b = ed_http_upstream_pick(&ups, 0, NULL, 0);
        ck_assert(b == 2 || b == 3);
    }
    ups.servers[2].down_until = 100;
    ups.servers[3].down_until = 100;
    ck_assert_int_eq(ed_http_upstream_pick(&ups, 0, NULL, 0), -1);
}
END_TEST

START_TEST(test_passive_health)
{
    ed_http_upstream_server_t *s;

    group(ED_HTTP_BALANCE_ROUND_ROBIN, NULL, NULL, 2);
    s = &ups.servers[0];
    s->max_fails = 2;
    s->fail_timeout = 1000;
    ed_http_upstream_failed(&ups, s, 10000, NULL);
    ck_assert(ed_http_upstream_available(s, 10001));
    ed_http_upstream_failed(&ups, s, 10500, NULL);
    ck_assert(!ed_http_upstream_available(s, 10600));
    ck_assert(ed_http_upstream_available(s, 11500));
    /* Failures further apart than fail_timeout do not add up. */
    ed_http_upstream_failed(&ups, s, 20000, NULL);
    ed_http_upstream_failed(&ups, s, 21500, NULL);
    ck_assert(ed_http_upstream_available(s, 21600));
    ed_http_upstream_succeeded(s);
    ed_http_upstream_failed(&ups, s, 21700, NULL);
    ck_assert(ed_http_upstream_available(s, 21800));
    /* max_fails 0 turns the accounting off. */
    s->max_fails = 0;
    ed_http_upstream_failed(&ups, s, 30000, NULL);
    ed_http_upstream_failed(&ups, s, 30000, NULL);
    ck_assert(ed_http_upstream_available(s, 30000));
}
END_TEST

START_TEST(test_single_server_never_out)
{
    group(ED_HTTP_BALANCE_ROUND_ROBIN, NULL, NULL, 1);
    ed_http_upstream_failed(&ups, &ups.servers[0], 100, NULL);
    ed_http_upstream_failed(&ups, &ups.servers[0], 100, NULL);
    ck_assert_int_eq(ed_http_upstream_pick(&ups, 0, NULL, 200), 0);
}
END_TEST

START_TEST(test_least_conn)
{
    static const int w[] = { 1, 1, 2 };
    int              i, counts[3] = { 0, 0, 0 };

    group(ED_HTTP_BALANCE_LEAST_CONN, w, NULL, 3);
    ups.servers[0].conns = 3;
    ups.servers[1].conns = 1;
    ups.servers[2].conns = 4;
    /* 1/1 < 3/1 and 1/1 < 4/2. */
    ck_assert_int_eq(ed_http_upstream_pick(&ups, 0, NULL, 0), 1);
    ups.servers[1].conns = 2;
    /* 2/1 == 4/2: a tie, shared by weight. */
    for (i = 0; i < 30; i++) {
        counts[ed_http_upstream_pick(&ups, 0, NULL, 0)]++;
    }
    ck_assert_int_eq(counts[0], 0);
    ck_assert_int_eq(counts[1], 10);
    ck_assert_int_eq(counts[2], 20);
}
END_TEST

START_TEST(test_ip_hash)
{
    int      i, a, counts[3] = { 0, 0, 0 };
    uint32_t h, addr;

    group(ED_HTTP_BALANCE_IP_HASH, NULL, NULL, 3);
    for (addr = 0; addr < 3000; addr++) {
        h = ed_http_upstream_hash(&addr, sizeof(addr));
        a = ed_http_upstream_pick(&ups, h, NULL, 0);
        counts[a]++;
        /* The same client always gets the same server. */
        for (i = 0; i < 3; i++) {
            ck_assert_int_eq(ed_http_upstream_pick(&ups, h, NULL, 0), a);
        }
    }
    for (i = 0; i < 3; i++) {
        ck_assert_msg(counts[i] > 800 && counts[i] < 1200, "server %d: %d",
                      i, counts[i]);
    }
    /* Its server down: another one, and back after. */
    h = ed_http_upstream_hash("x", 1);
    a = ed_http_upstream_pick(&ups, h, NULL, 0);
    ups.servers[a].down_until = 1000;
    ck_assert_int_ne(ed_http_upstream_pick(&ups, h, NULL, 0), a);
    ck_assert_int_eq(ed_http_upstream_pick(&ups, h, NULL, 1000), a);
}
END_TEST

START_TEST(test_hash_ring_distribution)
{
    int      i, counts[4] = { 0, 0, 0, 0 };
    char     key[32];
    uint32_t h;

    group(ED_HTTP_BALANCE_HASH, NULL, NULL, 4);
    ck_assert_int_eq(ups.npoints, 4 * 160);
    for (i = 1; i < (int)ups.npoints; i++) {
        ck_assert(ups.points[i - 1].hash <= ups.points[i].hash);
    }
    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "/item/%d", i);
        h = ed_http_upstream_hash(key, strlen(key));
        counts[ed_http_upstream_pick(&ups, h, NULL, 0)]++;
    }
    /* 5000 each, within 20%. */
    for (i = 0; i < 4; i++) {
        ck_assert_msg(counts[i] > 4000 && counts[i] < 6000, "server %d: %d",
                      i, counts[i]);
    }
}
END_TEST

START_TEST(test_hash_ring_weights)
{
    static const int w[] = { 1, 3 };
    int              i, counts[2] = { 0, 0 };
    char             key[32];
    uint32_t         h;

    group(ED_HTTP_BALANCE_HASH, w, NULL, 2);
    ck_assert_int_eq(ups.npoints, 4 * 160);
    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        h = ed_http_upstream_hash(key, strlen(key));
        counts[ed_http_upstream_pick(&ups, h, NULL, 0)]++;
    }
    ck_assert_msg(counts[0] > 3500 && counts[0] < 6500, "light: %d",
                  counts[0]);
}
END_TEST

/* Consistency: taking a server out moves only its own keys, and they
 * spread over the others. */
START_TEST(test_hash_ring_stability)
{
    int      i, before[5000], moved_to[3] = { 0, 0, 0 }, a;
    char     key[32];
    uint32_t h;

    group(ED_HTTP_BALANCE_HASH, NULL, NULL, 3);
    for (i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        h = ed_http_upstream_hash(key, strlen(key));
        before[i] = ed_http_upstream_pick(&ups, h, NULL, 0);
    }
    ups.servers[1].down_until = 1000;
    for (i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        h = ed_http_upstream_hash(key, strlen(key));
        a = ed_http_upstream_pick(&ups, h, NULL, 0);
        if (before[i] != 1) {
            ck_assert_msg(a == before[i], "key %d moved from %d to %d", i,
                          before[i], a);
        } else {
            ck_assert_int_ne(a, 1);
            moved_to[a]++;
        }
    }
    ck_assert_msg(moved_to[0] > 300 && moved_to[2] > 300,
                  "moved keys: %d / %d", moved_to[0], moved_to[2]);
}
END_TEST

START_TEST(test_random_two)
{
    int i, counts[3] = { 0, 0, 0 };

    group(ED_HTTP_BALANCE_RANDOM_TWO, NULL, NULL, 3);
    for (i = 0; i < 3000; i++) {
        counts[ed_http_upstream_pick(&ups, 0, NULL, 0)]++;
    }
    for (i = 0; i < 3; i++) {
        ck_assert_msg(counts[i] > 700 && counts[i] < 1300, "server %d: %d",
                      i, counts[i]);
    }
    /* The loaded server loses whenever it is drawn with another. */
    ups.servers[0].conns = 10;
    memset(counts, 0, sizeof(counts));
    for (i = 0; i < 3000; i++) {
        counts[ed_http_upstream_pick(&ups, 0, NULL, 0)]++;
    }
    ck_assert_msg(counts[0] < 150, "loaded server chosen %d times",
                  counts[0]);
}
END_TEST

START_TEST(test_hash_function)
{
    /* MurmurHash3 x86_32, seed 0, published vectors. */
    ck_assert_uint_eq(ed_http_upstream_hash("", 0), 0);
    ck_assert_uint_eq(ed_http_upstream_hash("hello", 5), 0x248bfa47);
    ck_assert_uint_eq(
        ed_http_upstream_hash("The quick brown fox jumps over the lazy dog",
                              43),
        0x2e4ff723);
}
END_TEST

START_TEST(test_resolve)
{
    ed_pool_t                 *p = ed_pool_create(4096);
    ed_array_t                 a;
    ed_http_upstream_server_t *s;
    const char                *err = NULL;

    ed_array_init(&a, p, 2, sizeof(ed_http_upstream_server_t));
    ck_assert_int_eq(ed_http_upstream_resolve(p, "127.0.0.1:9001", &a, &err),
                     ED_OK);
    ck_assert_int_eq(ed_http_upstream_resolve(p, "[::1]:9002", &a, &err),
                     ED_OK);
    ck_assert_int_eq(ed_http_upstream_resolve(p, "unix:/run/x.sock", &a,
                                              &err), ED_OK);
    s = a.elts;
    ck_assert_str_eq(s[0].name.data, "127.0.0.1:9001");
    ck_assert_str_eq(s[1].name.data, "[::1]:9002");
    ck_assert_str_eq(s[2].name.data, "unix:/run/x.sock");
    ck_assert_str_eq(s[2].host.data, "localhost");
    ck_assert_int_eq(ed_http_upstream_resolve(p, "127.0.0.1:0", &a, &err),
                     ED_ERROR);
    ck_assert_int_eq(ed_http_upstream_resolve(p, "127.0.0.1:x", &a, &err),
                     ED_ERROR);
    ck_assert_int_eq(ed_http_upstream_resolve(p, "unix:rel", &a, &err),
                     ED_ERROR);
    ck_assert_int_eq(ed_http_upstream_resolve(p, ":80", &a, &err), ED_ERROR);
    ck_assert_int_eq(ed_http_upstream_resolve(p, "no-such-host.invalid:80",
                                              &a, &err), ED_ERROR);
    ed_pool_destroy(p);
}
END_TEST

Suite *
ed_test_http_upstream_suite(void)
{
    Suite *s = suite_create("http_upstream");
    TCase *tc;

    tc = tcase_create("response");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_parse_response_table, 0,
                        (int)ed_nelems(resp_cases));
    tcase_add_test(tc, test_parse_response_fields);
    tcase_add_test(tc, test_parse_response_prefixes);
    suite_add_tcase(s, tc);

    tc = tcase_create("balance");
    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_rr_smooth);
    tcase_add_test(tc, test_rr_skips_down_and_tried);
    tcase_add_test(tc, test_backup);
    tcase_add_test(tc, test_passive_health);
    tcase_add_test(tc, test_single_server_never_out);
    tcase_add_test(tc, test_least_conn);
    tcase_add_test(tc, test_ip_hash);
    tcase_add_test(tc, test_hash_ring_distribution);
    tcase_add_test(tc, test_hash_ring_weights);
    tcase_add_test(tc, test_hash_ring_stability);
    tcase_add_test(tc, test_random_two);
    tcase_add_test(tc, test_hash_function);
    tcase_add_test(tc, test_resolve);
    suite_add_tcase(s, tc);

    return s;
}
