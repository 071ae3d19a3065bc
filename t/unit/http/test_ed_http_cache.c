/* Unit tests of the cache's pure parts: the file header (layout, checks,
 * CRC32C), the storage rules and variants, and the shared index. */
#include <check.h>

#include "ed_core.h"
#include "ed_http_cache.h"

#include <sys/mman.h>

static ed_pool_t *pool;

static void
setup(void)
{
    pool = ed_pool_create(4096);
    ck_assert_ptr_nonnull(pool);
}

static void
teardown(void)
{
    ed_pool_destroy(pool);
}

/* A complete entry (prefix and body) in pool memory. */
static char *
make_entry(ed_http_cache_hdr_t *h, size_t *len, const char *body)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\n"
                               "Content-Type: text/plain\r\n\r\n";
    ed_str_t          key = ed_string("httpexample.com/x");
    ed_str_t          vary = ed_null_string;
    ed_str_t          hd, etag;
    char             *prefix, *all;
    size_t            plen, blen = strlen(body);

    hd.data = (char *)head;
    hd.len = sizeof(head) - 1;
    etag.data = strstr(hd.data, "\"abc\"");
    etag.len = 5;
    memset(h, 0, sizeof(*h));
    h->stored = 1700000000;
    h->lifetime = 60;
    h->last_modified = -1;
    h->swr = -1;
    h->sie = -1;
    h->status = 200;
    prefix = ed_http_cache_prefix(pool, h, &key, &vary, &hd, &etag, &plen);
    ck_assert_ptr_nonnull(prefix);
    ed_http_cache_hdr_seal(prefix, h, blen);
    all = ed_pnalloc(pool, plen + blen);
    memcpy(all, prefix, plen);
    memcpy(all + plen, body, blen);
    *len = plen + blen;
    return all;
}

START_TEST(test_crc32c)
{
    /* The check value of CRC-32C (RFC 3720 B.4 family). */
    ck_assert_uint_eq(ed_http_cache_crc32c(0, "123456789", 9), 0xe3069283u);
    ck_assert_uint_eq(ed_http_cache_crc32c(0, "", 0), 0);
    /* Continued in pieces, the same. */
    ck_assert_uint_eq(ed_http_cache_crc32c(ed_http_cache_crc32c(0, "1234",
                                                                4),
                                           "56789", 5),
                      0xe3069283u);
}
END_TEST

START_TEST(test_hdr_roundtrip)
{
    ed_http_cache_hdr_t h, got;
    char               *e;
    size_t              len;

    e = make_entry(&h, &len, "hello");
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_OK);
    ck_assert_uint_eq(got.body_len, 5);
    ck_assert_uint_eq(got.key_len, 17);
    ck_assert(memcmp(e + got.key_off, "httpexample.com/x", 17) == 0);
    ck_assert(memcmp(e + got.etag_off, "\"abc\"", 5) == 0);
    ck_assert(memcmp(e + got.body_off, "hello", 5) == 0);
    /* Only the header: it asks for the prefix. */
    ck_assert_int_eq(ed_http_cache_hdr_check(e, sizeof(h), len, &got),
                     ED_CACHE_HDR_SHORT);
    ck_assert_int_eq(ed_http_cache_hdr_check(e, 10, len, &got),
                     ED_CACHE_HDR_SHORT);
}
END_TEST

START_TEST(test_hdr_faults)
{
    ed_http_cache_hdr_t h, got;
    char               *e;
    size_t              len;

    e = make_entry(&h, &len, "hello");
    /* A truncated or longer file. */
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len - 1, &got),
                     ED_CACHE_HDR_SIZE);
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len + 1, &got),
                     ED_CACHE_HDR_SIZE);
    /* A flipped byte of the key, the head, or a time. */
    e[h.key_off + 3] ^= 1;
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_CRC);
    e[h.key_off + 3] ^= 1;
    e[h.head_off + 5] ^= 0x20;
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_CRC);
    e[h.head_off + 5] ^= 0x20;
    e[offsetof(ed_http_cache_hdr_t, lifetime)] ^= 1;
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_CRC);
    e[offsetof(ed_http_cache_hdr_t, lifetime)] ^= 1;
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_OK);
    /* Magic, version, layout. */
    e[0] = 'X';
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_MAGIC);
    e[0] = ED_CACHE_MAGIC[0];
    e[offsetof(ed_http_cache_hdr_t, version)] = 9;
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_VERSION);
    e[offsetof(ed_http_cache_hdr_t, version)] = ED_CACHE_VERSION;
    e[offsetof(ed_http_cache_hdr_t, vary_off)] += 1;
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_LAYOUT);
    e[offsetof(ed_http_cache_hdr_t, vary_off)] -= 1;
    e[offsetof(ed_http_cache_hdr_t, etag_off)] += 100;
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_LAYOUT);
    e[offsetof(ed_http_cache_hdr_t, etag_off)] -= 100;
    e[offsetof(ed_http_cache_hdr_t, status)] = (char)(206 & 0xff);
    ck_assert_int_eq(ed_http_cache_hdr_check(e, len, len, &got),
                     ED_CACHE_HDR_LAYOUT);
}
END_TEST

/* The fuzz corpus's seed is a valid file of this format. */
START_TEST(test_seed_file)
{
    ed_http_cache_hdr_t h;
    char                buf[4096];
    FILE               *f;
    size_t              n;

    f = fopen("t/fuzz/corpus/cache_file/entry", "rb");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ck_assert_int_eq(ed_http_cache_hdr_check(buf, n, n, &h),
                     ED_CACHE_HDR_OK);
    ck_assert_uint_eq(h.body_len, 11);
    ck_assert(memcmp(buf + h.body_off, "hello world", 11) == 0);
}
END_TEST

START_TEST(test_hash_hex)
{
    uint8_t hash[ED_CACHE_HASH_LEN];
    char    hex[33];

    /* SHA-256("abc") starts ba7816bf 8f01cfea 414140de 5dae2223. */
    ck_assert_int_eq(ed_http_cache_hash("abc", 3, hash), ED_OK);
    ed_http_cache_hex(hash, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223");
}
END_TEST

/* The storage rules. */

#define H(n, v) { ed_string(n), ed_string(v) }

static void
decide(const ed_http_header_t *h, size_t n, int status, int ignore,
       bool auth, ed_http_cache_verdict_t *v)
{
    static const ed_http_cache_valid_t valid[] = { { 404, 60 } };
    ed_http_cache_rules_t r;

    r.valid = valid;
    r.nvalid = 1;
    r.ignore = ignore;
    r.authorization = auth;
    r.now = 1700000000;
    ed_http_cache_decide(pool, &r, status, h, n, v);
}

START_TEST(test_lifetime_order)
{
    ed_http_cache_verdict_t v;
    ed_http_header_t        a[] = {
        H("Cache-Control", "max-age=10, s-maxage=20"),
        H("Expires", "Tue, 14 Nov 2023 22:14:20 GMT"),
        H("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
    };

    decide(a, 3, 200, 0, false, &v);
    ck_assert_ptr_null(v.detail);
    ck_assert_int_eq(v.lifetime, 20);
    ck_assert(v.flags & ED_CACHE_F_S_MAXAGE);
    a[0].value.data = "max-age=10";
    a[0].value.len = 10;
    decide(a, 3, 200, 0, false, &v);
    ck_assert_int_eq(v.lifetime, 10);
    /* Expires - Date: 60 s. */
    decide(a, 3, 200, ED_CACHE_IGN_CACHE_CONTROL, false, &v);
    ck_assert_ptr_null(v.detail);
    ck_assert_int_eq(v.lifetime, 60);
    /* cache_valid for the status, else nothing. */
    decide(a, 0, 404, 0, false, &v);
    ck_assert_ptr_null(v.detail);
    ck_assert_int_eq(v.lifetime, 60);
    decide(a, 0, 200, 0, false, &v);
    ck_assert_str_eq(v.detail, "no-lifetime");
}
END_TEST

START_TEST(test_never_stored)
{
    ed_http_cache_verdict_t v;
    ed_http_header_t        ns[] = {
        H("Cache-Control", "max-age=9, no-store") };
    ed_http_header_t        mu[] = {
        H("Cache-Control", "no-store, must-understand, max-age=9") };
    ed_http_header_t        pr[] = {
        H("Cache-Control", "private=\"Set-Cookie, X\", max-age=9") };
    ed_http_header_t        vs[] = { H("Cache-Control", "max-age=9"),
                                     H("Vary", "Accept, *") };
    ed_http_header_t        sc[] = { H("Cache-Control", "max-age=9"),
                                     H("Set-Cookie", "a=b") };
    ed_http_header_t        pub[] = { H("Cache-Control", "public, max-age=9") };
    ed_http_header_t        z[] = { H("Cache-Control", "max-age=0") };
    ed_http_header_t        zv[] = { H("Cache-Control", "no-cache, max-age=9"),
                                     H("ETag", "\"v1\"") };

    decide(ns, 1, 200, 0, false, &v);
    ck_assert_str_eq(v.detail, "no-store");
    decide(mu, 1, 200, 0, false, &v);
    ck_assert_ptr_null(v.detail);
    decide(pr, 1, 200, 0, false, &v);
    ck_assert_str_eq(v.detail, "private");
    decide(vs, 2, 200, 0, false, &v);
    ck_assert_str_eq(v.detail, "vary");
    decide(sc, 2, 200, 0, false, &v);
    ck_assert_str_eq(v.detail, "set-cookie");
    decide(sc, 2, 200, ED_CACHE_IGN_SET_COOKIE, false, &v);
    ck_assert_ptr_null(v.detail);
    ck_assert(v.set_cookie);
    decide(sc, 1, 200, 0, true, &v);
    ck_assert_str_eq(v.detail, "authorization");
    decide(pub, 1, 200, 0, true, &v);
    ck_assert_ptr_null(v.detail);
    /* A zero lifetime needs a validator; no-cache is stored with one. */
    decide(z, 1, 200, 0, false, &v);
    ck_assert_str_eq(v.detail, "no-lifetime");
    decide(zv, 2, 200, 0, false, &v);
    ck_assert_ptr_null(v.detail);
    ck_assert_int_eq(v.lifetime, 0);
    ck_assert(v.flags & ED_CACHE_F_MUST_REVAL);
    ck_assert_int_eq(v.etag.len, 4);
    decide(zv, 2, 206, 0, false, &v);
    ck_assert_ptr_nonnull(v.detail);
}
END_TEST

START_TEST(test_age_and_windows)
{
    ed_http_cache_verdict_t v;
    ed_http_header_t        a[] = {
        H("Cache-Control", "max-age=100, stale-while-revalidate=30, "
                           "stale-if-error=\"5\""),
        H("Date", "Tue, 14 Nov 2023 22:13:10 GMT"),   /* now - 10 s */
        H("Age", "3"),
    };

    decide(a, 3, 200, 0, false, &v);
    ck_assert_ptr_null(v.detail);
    ck_assert_int_eq(v.initial_age, 10);
    ck_assert_int_eq(v.swr, 30);
    ck_assert_int_eq(v.sie, 5);
    a[2].value.data = "50";
    a[2].value.len = 2;
    decide(a, 3, 200, 0, false, &v);
    ck_assert_int_eq(v.initial_age, 50);
}
END_TEST

START_TEST(test_variant)
{
    ed_http_cache_verdict_t v;
    ed_http_header_t        resp[] = { H("Cache-Control", "max-age=9"),
                                       H("Vary", "Accept-Encoding"),
                                       H("vary", " X-Lang ,") };
    ed_http_header_t        req[] = {
        H("Accept-Encoding", "gzip;q=1, deflate, identity, br;q=0"),
        H("X-Lang", "fr"), H("x-lang", "de") };
    ed_str_t                out;

    decide(resp, 3, 200, 0, false, &v);
    ck_assert_ptr_null(v.detail);
    ck_assert_str_eq(v.vary.data, "accept-encoding, x-lang");
    ck_assert_int_eq(ed_http_cache_variant(pool, &v.vary, req, 3, &out),
                     ED_OK);
    ck_assert_uint_eq(out.len, strlen("accept-encoding:gzip\nx-lang:fr, de\n"));
    ck_assert(memcmp(out.data, "accept-encoding:gzip\nx-lang:fr, de\n",
                     out.len) == 0);
    /* No Accept-Encoding: identity only, not every coding. */
    ck_assert_int_eq(ed_http_cache_variant(pool, &v.vary, req + 1, 2, &out),
                     ED_OK);
    ck_assert(memcmp(out.data, "accept-encoding:\nx-lang:fr, de\n",
                     out.len) == 0);
    decide(resp, 3, 200, ED_CACHE_IGN_VARY, false, &v);
    ck_assert_int_eq(v.vary.len, 0);
}
END_TEST

/* The index. */

START_TEST(test_index)
{
    size_t                size = 262144;
    ed_http_cache_zone_t *z;
    uint8_t               h[ED_CACHE_HASH_LEN], out[16 * ED_CACHE_HASH_LEN];
    uint64_t              entries, bytes, ev;
    size_t                n, i, cap, nd;

    z = mmap(NULL, size, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(z != MAP_FAILED);
    ck_assert_int_eq(ed_http_cache_index_init(z, size), ED_OK);
    cap = ed_http_cache_zone_entries(z);
    ck_assert(cap > 1500 && cap < 2100);
    memset(h, 0, sizeof(h));
    /* Uses count per key. */
    ck_assert_uint_eq(ed_http_cache_index_use(z, h, 100, out, &nd), 1);
    ck_assert_uint_eq(ed_http_cache_index_use(z, h, 100, out, &nd), 2);
    ck_assert_uint_eq(nd, 0);
    /* Three stored entries of 100 bytes under max_size 250: the least
     * recently used one goes. */
    for (i = 1; i <= 3; i++) {
        h[0] = (uint8_t)i;
        ed_http_cache_index_use(z, h, 100 + (int64_t)i, out, &nd);
        n = ed_http_cache_index_stored(z, h, 100, 100 + (int64_t)i, 250,
                                       1000, out, 16);
        ck_assert_uint_eq(n, i == 3 ? 1 : 0);
    }
    ck_assert_uint_eq(out[0], 1);
    ed_http_cache_index_stats(z, &entries, &bytes, &ev);
    ck_assert_uint_eq(entries, 2);
    ck_assert_uint_eq(bytes, 200);
    ck_assert_uint_eq(ev, 1);
    /* Inactive: unused since before now - inactive. */
    h[0] = 4;
    ed_http_cache_index_use(z, h, 5000, out, &nd);
    n = ed_http_cache_index_stored(z, h, 10, 5000, 1000000, 600, out, 16);
    ck_assert_uint_eq(n, 2);
    ed_http_cache_index_remove(z, h);
    ed_http_cache_index_stats(z, &entries, &bytes, &ev);
    ck_assert_uint_eq(entries, 0);
    ck_assert_uint_eq(bytes, 0);
    /* A full zone drops its least recently used entry at once. */
    for (i = 0; i < cap + 10; i++) {
        memcpy(h, &i, sizeof(i));
        h[15] = 0x77;
        ed_http_cache_index_use(z, h, 6000 + (int64_t)i, out, &nd);
        ed_http_cache_index_stored(z, h, 1, 6000 + (int64_t)i,
                                   UINT64_MAX / 2, 1000000, out, 16);
    }
    ed_http_cache_index_stats(z, &entries, &bytes, &ev);
    ck_assert_uint_eq(entries, cap);
    /* The write-failure latch: logged once until a write works. */
    ck_assert(ed_http_cache_write_failed(z));
    ck_assert(!ed_http_cache_write_failed(z));
    ed_http_cache_write_ok(z);
    ck_assert(ed_http_cache_write_failed(z));
    munmap(z, size);
}
END_TEST

/* RFC 9111 3.2: a 304's fields replace the stored ones of their names,
 * but for those an entry never takes from it. */
START_TEST(test_update_head)
{
    static const char stored[] = "HTTP/1.1 200 OK\r\n"
                                 "Cache-Control: max-age=1\r\n"
                                 "ETag: \"a\"\r\n"
                                 "X-Version: 1\r\n"
                                 "Content-Encoding: gzip\r\n"
                                 "Vary: Accept-Encoding\r\n"
                                 "X-Multi: 1\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "X-Multi: 2\r\n\r\n";
    ed_http_header_t        old[] = {
        H("Cache-Control", "max-age=1"), H("ETag", "\"a\""),
        H("X-Version", "1"), H("Content-Encoding", "gzip"),
        H("Vary", "Accept-Encoding"), H("X-Multi", "1"),
        H("Content-Type", "text/plain"), H("X-Multi", "2"),
    };
    ed_http_header_t        upd[] = {
        H("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        H("cache-control", "max-age=60"), H("ETag", "\"b\""),
        H("X-Version", "2"), H("Content-Length", "5"),
        H("Set-Cookie", "s=1"), H("Content-Encoding", "br"),
        H("Vary", "Cookie"), H("Age", "3"), H("Server", "origin"),
        H("Transfer-Encoding", "chunked"), H("X-Hop", "x"),
        H("Connection", "X-Hop"), H("X-Multi", "3"), H("X-New", "n"),
    };
    ed_str_t                head = { sizeof(stored) - 1, (char *)stored };
    ed_str_t                out, etag;

    ck_assert_int_eq(ed_http_cache_update_head(pool, &head, old, 8, upd, 15,
                                               &out, &etag), ED_OK);
    ck_assert_str_eq(ed_pstrdup(pool, out.data, out.len),
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Encoding: gzip\r\n"
                     "Vary: Accept-Encoding\r\n"
                     "Content-Type: text/plain\r\n"
                     "cache-control: max-age=60\r\n"
                     "ETag: \"b\"\r\n"
                     "X-Version: 2\r\n"
                     "X-Multi: 3\r\n"
                     "X-New: n\r\n\r\n");
    ck_assert_uint_eq(etag.len, 3);
    ck_assert(memcmp(etag.data, "\"b\"", 3) == 0);
    ck_assert_ptr_eq(etag.data, strstr(out.data, "\"b\""));

    /* A 304 with nothing to update: the stored head as it was. */
    ck_assert_int_eq(ed_http_cache_update_head(pool, &head, old, 8, upd, 1,
                                               &out, &etag), ED_OK);
    ck_assert_uint_eq(out.len, head.len);
    ck_assert(memcmp(out.data, stored, head.len) == 0);
    ck_assert_uint_eq(etag.len, 3);
    ck_assert(memcmp(etag.data, "\"a\"", 3) == 0);
}
END_TEST

/* The generation a worker keeps a checked entry by: 0 while no file is
 * known, a new one with every store, load or PURGE, and for an entry
 * dropped and made again. */
START_TEST(test_index_gen)
{
    size_t                size = 262144;
    ed_http_cache_zone_t *z;
    uint8_t               h[ED_CACHE_HASH_LEN], out[16 * ED_CACHE_HASH_LEN];
    uint32_t              g0, g1, g2, g3;
    size_t                nd;

    z = mmap(NULL, size, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(z != MAP_FAILED);
    ck_assert_int_eq(ed_http_cache_index_init(z, size), ED_OK);
    memset(h, 7, sizeof(h));
    ed_http_cache_index_use_gen(z, h, 100, &g0, out, &nd);
    ck_assert_uint_eq(g0, 0);
    ed_http_cache_index_stored(z, h, 10, 100, 1000000, 1000, out, 16);
    ed_http_cache_index_use_gen(z, h, 101, &g1, out, &nd);
    ck_assert_uint_ne(g1, 0);
    ed_http_cache_index_use_gen(z, h, 102, &g2, out, &nd);
    ck_assert_uint_eq(g2, g1);
    /* Stored again: a new file. */
    ed_http_cache_index_stored(z, h, 10, 103, 1000000, 1000, out, 16);
    ed_http_cache_index_use_gen(z, h, 104, &g2, out, &nd);
    ck_assert_uint_ne(g2, 0);
    ck_assert_uint_ne(g2, g1);
    /* PURGE: no file known; loaded again: another generation. */
    ed_http_cache_index_purge(z, h, 105000);
    ed_http_cache_index_use_gen(z, h, 105, &g3, out, &nd);
    ck_assert_uint_eq(g3, 0);
    ed_http_cache_index_load(z, h, 10, 106, out, &nd);
    ed_http_cache_index_use_gen(z, h, 106, &g3, out, &nd);
    ck_assert_uint_ne(g3, 0);
    ck_assert_uint_ne(g3, g2);
    ck_assert_uint_ne(g3, g1);
    /* Removed (a bad file) and made again by a lookup: none known. */
    ed_http_cache_index_remove(z, h);
    ed_http_cache_index_use_gen(z, h, 107, &g0, out, &nd);
    ck_assert_uint_eq(g0, 0);
    ed_http_cache_index_stored(z, h, 10, 108, 1000000, 1000, out, 16);
    ed_http_cache_index_use_gen(z, h, 108, &g0, out, &nd);
    ck_assert(g0 != 0 && g0 != g1 && g0 != g2 && g0 != g3);
    /* What a worker's sweep asks: the same, the entry not made. */
    ck_assert_uint_eq(ed_http_cache_index_gen(z, h), g0);
    ed_http_cache_index_purge(z, h, 109000);
    ck_assert_uint_eq(ed_http_cache_index_gen(z, h), 0);
    memset(h, 8, sizeof(h));
    ck_assert_uint_eq(ed_http_cache_index_gen(z, h), 0);
    ed_http_cache_index_use_gen(z, h, 110, &g0, out, &nd);
    ck_assert_uint_eq(g0, 0);
    munmap(z, size);
}
END_TEST

Suite *
ed_test_http_cache_suite(void)
{
    Suite *s = suite_create("http_cache");
    TCase *tc;

    tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_crc32c);
    tcase_add_test(tc, test_hdr_roundtrip);
    tcase_add_test(tc, test_hdr_faults);
    tcase_add_test(tc, test_hash_hex);
    tcase_add_test(tc, test_seed_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lifetime_order);
    tcase_add_test(tc, test_never_stored);
    tcase_add_test(tc, test_age_and_windows);
    tcase_add_test(tc, test_variant);
    tcase_add_test(tc, test_update_head);
    suite_add_tcase(s, tc);

    tc = tcase_create("index");
    tcase_add_test(tc, test_index);
    tcase_add_test(tc, test_index_gen);
    suite_add_tcase(s, tc);
    return s;
}
