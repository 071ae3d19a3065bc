/* The cache's on-disk entry: the fixed header, its checks and its CRC,
 * and the layout of a new entry's prefix. No I/O here: the header
 * parser is what unit tests and the fuzz target (t/fuzz/fuzz_cache_file.c)
 * exercise, and every byte of a file is distrusted until it passed. */
#include "ed_http_cache.h"

#include <openssl/evp.h>

_Static_assert(sizeof(ed_http_cache_hdr_t) == 120,
               "the cache file header is 120 bytes");

static uint32_t ed_crc32c_table[256];

static void
ed_crc32c_init(void)
{
    uint32_t c;
    unsigned i, k;

    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++) {
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        }
        ed_crc32c_table[i] = c;
    }
}

#if defined(__x86_64__)
/* SSE4.2's crc32 instruction computes CRC32C: 8 bytes a step, which
 * keeps the check of every hit's prefix cheap. */
__attribute__((target("sse4.2"))) static uint32_t
ed_crc32c_hw(uint32_t crc, const uint8_t *s, size_t n)
{
    uint64_t c = ~crc & 0xffffffffu, w;

    while (n >= 8) {
        memcpy(&w, s, 8);
        c = __builtin_ia32_crc32di(c, w);
        s += 8;
        n -= 8;
    }
    while (n--) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *s++);
    }
    return ~(uint32_t)c;
}
#endif

uint32_t
ed_http_cache_crc32c(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *s = p;

#if defined(__x86_64__)
    static int hw = -1;

    if (hw < 0) {
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (hw) {
        return ed_crc32c_hw(crc, s, n);
    }
#endif
    if (ed_crc32c_table[1] == 0) {
        /* Filled on first use; the same values in every process. */
        ed_crc32c_init();
    }
    crc = ~crc;
    while (n--) {
        crc = ed_crc32c_table[(crc ^ *s++) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

/* The CRC of a prefix whose header is hdr (crc taken as 0). */
static uint32_t
ed_cache_prefix_crc(const char *buf, const ed_http_cache_hdr_t *hdr)
{
    ed_http_cache_hdr_t h = *hdr;
    uint32_t            crc;

    h.crc = 0;
    crc = ed_http_cache_crc32c(0, &h, sizeof(h));
    return ed_http_cache_crc32c(crc, buf + sizeof(h),
                                (size_t)hdr->body_off - sizeof(h));
}

/* The checks of the fixed header alone: magic, version, layout. With
 * any_status, the private file of a response not stored (for one client
 * only): any final status, 206 and 304 too, which no entry has. */
static int
ed_cache_hdr_layout(const void *buf, size_t len, ed_http_cache_hdr_t *h,
                    bool any_status)
{
    if (len < sizeof(*h)) {
        return ED_CACHE_HDR_SHORT;
    }
    memcpy(h, buf, sizeof(*h));
    if (memcmp(h->magic, ED_CACHE_MAGIC, 8) != 0) {
        return ED_CACHE_HDR_MAGIC;
    }
    if (h->version != ED_CACHE_VERSION) {
        return ED_CACHE_HDR_VERSION;
    }
    /* The parts follow each other in order, each within its bound. */
    if (h->key_off != sizeof(*h) || h->key_len == 0
        || h->key_len > ED_CACHE_KEY_MAX
        || h->vary_off != h->key_off + h->key_len
        || h->vary_len > ED_CACHE_VARY_MAX
        || h->head_off != h->vary_off + h->vary_len
        || h->head_len > (any_status ? ED_CACHE_SPOOL_HEAD_MAX
                                     : ED_CACHE_HEAD_MAX)
        || h->body_off != (uint64_t)h->head_off + h->head_len
        || (h->flags & ~(uint32_t)ED_CACHE_F_ALL) != 0
        || h->stored < 0 || h->initial_age < 0 || h->lifetime < 0
        || h->last_modified < -1 || h->swr < -1 || h->sie < -1
        || h->reserved != 0)
    {
        return ED_CACHE_HDR_LAYOUT;
    }
    if (h->flags & ED_CACHE_F_VARY) {
        /* A marker: the Vary names, nothing to serve. */
        if (h->vary_len == 0 || h->head_len != 0 || h->body_len != 0
            || h->status != 0 || h->etag_len != 0 || h->etag_off != 0
            || (h->flags & ED_CACHE_F_VARIANT))
        {
            return ED_CACHE_HDR_LAYOUT;
        }
    } else {
        if (h->status < 200 || h->status > 599 || h->head_len == 0
            || (!any_status && (h->status == 206 || h->status == 304)))
        {
            return ED_CACHE_HDR_LAYOUT;
        }
        if (h->etag_len == 0 ? h->etag_off != 0
            : h->etag_off < h->head_off
              || (uint64_t)h->etag_off + h->etag_len > h->body_off)
        {
            return ED_CACHE_HDR_LAYOUT;
        }
    }
    return ED_CACHE_HDR_OK;
}

int
ed_http_cache_hdr_partial(const void *buf, size_t len,
                          ed_http_cache_hdr_t *hdr, bool any_status)
{
    int rc = ed_cache_hdr_layout(buf, len, hdr, any_status);

    if (rc == ED_CACHE_HDR_OK && len < hdr->body_off) {
        return ED_CACHE_HDR_SHORT;
    }
    return rc;
}

int
ed_http_cache_hdr_followed(const void *buf, size_t len, uint64_t file_size,
                           ed_http_cache_hdr_t *hdr, bool any_status)
{
    ed_http_cache_hdr_t *h = hdr;
    uint64_t             end;
    int                  rc;

    rc = ed_cache_hdr_layout(buf, len, h, any_status);
    if (rc != ED_CACHE_HDR_OK) {
        return rc;
    }
    end = h->body_off + h->body_len;
    if (h->body_len > INT64_MAX - h->body_off || end != file_size) {
        return ED_CACHE_HDR_SIZE;
    }
    if (len < h->body_off) {
        return ED_CACHE_HDR_SHORT;
    }
    if (ed_cache_prefix_crc(buf, h) != h->crc) {
        return ED_CACHE_HDR_CRC;
    }
    return ED_CACHE_HDR_OK;
}

int
ed_http_cache_hdr_check(const void *buf, size_t len, uint64_t file_size,
                        ed_http_cache_hdr_t *hdr)
{
    return ed_http_cache_hdr_followed(buf, len, file_size, hdr, false);
}

const char *
ed_http_cache_hdr_error(int rc)
{
    switch (rc) {
    case ED_CACHE_HDR_OK:
        return "valid";
    case ED_CACHE_HDR_SHORT:
        return "short file";
    case ED_CACHE_HDR_MAGIC:
        return "bad magic";
    case ED_CACHE_HDR_VERSION:
        return "unknown version";
    case ED_CACHE_HDR_LAYOUT:
        return "bad header";
    case ED_CACHE_HDR_SIZE:
        return "size disagrees with the header";
    default:
        return "bad CRC";
    }
}

static char *
ed_cache_prefix(ed_pool_t *pool, ed_http_cache_hdr_t *hdr,
                const ed_str_t *key, const ed_str_t *vary,
                const ed_str_t *head, const ed_str_t *etag, size_t head_max,
                size_t *len)
{
    char   *buf;
    size_t  n;

    if (key->len == 0 || key->len > ED_CACHE_KEY_MAX
        || vary->len > ED_CACHE_VARY_MAX || head->len > head_max
        || (etag && (etag->len > 0xffff || etag->data < head->data
                     || etag->data + etag->len > head->data + head->len)))
    {
        return NULL;
    }
    n = sizeof(*hdr) + key->len + vary->len + head->len;
    buf = ed_pnalloc(pool, n);
    if (buf == NULL) {
        return NULL;
    }
    memcpy(hdr->magic, ED_CACHE_MAGIC, 8);
    hdr->version = ED_CACHE_VERSION;
    hdr->crc = 0;
    hdr->reserved = 0;
    hdr->key_off = sizeof(*hdr);
    hdr->key_len = (uint32_t)key->len;
    hdr->vary_off = hdr->key_off + hdr->key_len;
    hdr->vary_len = (uint32_t)vary->len;
    hdr->head_off = hdr->vary_off + hdr->vary_len;
    hdr->head_len = (uint32_t)head->len;
    hdr->body_off = (uint64_t)hdr->head_off + hdr->head_len;
    hdr->body_len = 0;
    if (etag && etag->len) {
        hdr->etag_off = hdr->head_off
                        + (uint32_t)(etag->data - head->data);
        hdr->etag_len = (uint16_t)etag->len;
    } else {
        hdr->etag_off = 0;
        hdr->etag_len = 0;
    }
    memcpy(buf, hdr, sizeof(*hdr));
    memcpy(buf + hdr->key_off, key->data, key->len);
    if (vary->len) {
        memcpy(buf + hdr->vary_off, vary->data, vary->len);
    }
    if (head->len) {
        memcpy(buf + hdr->head_off, head->data, head->len);
    }
    *len = n;
    return buf;
}

char *
ed_http_cache_prefix(ed_pool_t *pool, ed_http_cache_hdr_t *hdr,
                     const ed_str_t *key, const ed_str_t *vary,
                     const ed_str_t *head, const ed_str_t *etag,
                     size_t *len)
{
    return ed_cache_prefix(pool, hdr, key, vary, head, etag,
                           ED_CACHE_HEAD_MAX, len);
}

char *
ed_http_cache_spool_prefix(ed_pool_t *pool, ed_http_cache_hdr_t *hdr,
                           const ed_str_t *key, const ed_str_t *head,
                           const ed_str_t *etag, size_t *len)
{
    ed_str_t none = ed_null_string;

    return ed_cache_prefix(pool, hdr, key, &none, head, etag,
                           ED_CACHE_SPOOL_HEAD_MAX, len);
}

void
ed_http_cache_hdr_seal(char *prefix, ed_http_cache_hdr_t *hdr,
                       uint64_t body_len)
{
    hdr->body_len = body_len;
    hdr->crc = 0;
    memcpy(prefix, hdr, sizeof(*hdr));
    hdr->crc = ed_cache_prefix_crc(prefix, hdr);
    memcpy(prefix, hdr, sizeof(*hdr));
}

int
ed_http_cache_hash(const char *key, size_t len,
                   uint8_t out[ED_CACHE_HASH_LEN])
{
    static EVP_MD *sha256;
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned       mdlen;

    if (sha256 == NULL) {
        /* Fetched once: an implicit fetch per digest takes the library's
         * locks on every hit. */
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (sha256 == NULL) {
            return ED_ERROR;
        }
    }
    if (EVP_Digest(key, len, md, &mdlen, sha256, NULL) != 1
        || mdlen < ED_CACHE_HASH_LEN)
    {
        return ED_ERROR;
    }
    memcpy(out, md, ED_CACHE_HASH_LEN);
    return ED_OK;
}

void
ed_http_cache_hex(const uint8_t hash[ED_CACHE_HASH_LEN], char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t            i;

    for (i = 0; i < ED_CACHE_HASH_LEN; i++) {
        out[2 * i] = hex[hash[i] >> 4];
        out[2 * i + 1] = hex[hash[i] & 0x0f];
    }
    out[2 * ED_CACHE_HASH_LEN] = '\0';
}

size_t
ed_http_cache_path(const ed_http_cache_t *c, const uint8_t *hash, char *buf,
                   size_t size)
{
    char     hex[2 * ED_CACHE_HASH_LEN + 1];
    size_t   end = 2 * ED_CACHE_HASH_LEN, n;
    unsigned i;
    int      w;

    ed_http_cache_hex(hash, hex);
    w = snprintf(buf, size, "%s", c->path.data);
    if (w < 0 || (size_t)w >= size) {
        return 0;
    }
    n = (size_t)w;
    for (i = 0; i < c->nlevels; i++) {
        end -= c->levels[i];
        w = snprintf(buf + n, size - n, "/%.*s", (int)c->levels[i],
                     hex + end);
        if (w < 0 || (size_t)w >= size - n) {
            return 0;
        }
        n += (size_t)w;
    }
    w = snprintf(buf + n, size - n, "/%s", hex);
    if (w < 0 || (size_t)w >= size - n) {
        return 0;
    }
    return n + (size_t)w;
}

int
ed_http_cache_unhex(const char *name, uint8_t *hash)
{
    size_t i;
    int    hi, lo;

    for (i = 0; i < ED_CACHE_HASH_LEN; i++) {
        hi = name[2 * i];
        lo = hi ? name[2 * i + 1] : 0;
        hi = hi >= '0' && hi <= '9' ? hi - '0'
             : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
        lo = lo >= '0' && lo <= '9' ? lo - '0'
             : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
        if (hi < 0 || lo < 0) {
            return ED_ERROR;
        }
        hash[i] = (uint8_t)(hi << 4 | lo);
    }
    return name[2 * ED_CACHE_HASH_LEN] == '\0' ? ED_OK : ED_ERROR;
}
