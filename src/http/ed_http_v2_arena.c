/* A connection's nghttp2 memory in pages of its own, so that an idle
 * connection can sleep: its session (2.9 KB in libnghttp2 1.52), its two
 * HPACK ring buffers (1 KiB each, mostly empty) and its dynamic tables'
 * entries are encoded as runs of non-zero bytes, the pages go back to
 * the kernel, and on the next event the bytes are written back at the
 * same addresses: every pointer inside stays valid, and nghttp2 never
 * knows. The blocks are served from free lists per size class, carved
 * from the arena's pages; what does not fit (a block over a page, an
 * arena at its bound) comes from the worker's lists, and stays where it
 * is while the connection sleeps (a session that holds such blocks is
 * woken to be deleted). */
#include "ed_http_v2.h"

#include <sys/mman.h>

#if ED_HAVE_HTTP2

#if defined(__SANITIZE_ADDRESS__)
#define ED_V2A_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ED_V2A_ASAN 1
#endif
#endif
#ifdef ED_V2A_ASAN
#include <sanitizer/asan_interface.h>
/* Free blocks are poisoned: a use after free inside the arena is caught
 * as it would be in the C library's heap. */
#define ed_v2a_poison(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define ed_v2a_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ed_v2a_poison(p, n)
#define ed_v2a_unpoison(p, n)
#endif

#define ED_V2A_PAGE       4096
#define ED_V2A_HDR        16
/* The first word of a block's header: ED_V2A_TAG plus its class, never
 * a class of the worker's lists (see ed_http_v2_block_size). */
#define ED_V2A_TAG        0x5a00
/* Pages a connection takes at most: 32 KiB, a few dozen streams'
 * worth (an arena does not shrink while its connection is awake);
 * beyond, blocks come from the worker's lists. */
#define ED_V2A_MAX_PAGES  8
/* Pages kept on the worker's free list with their memory; the rest are
 * given back to the kernel (and stay mapped). */
#define ED_V2A_KEEP_PAGES 256
#define ED_V2A_SLAB       64

/* Block sizes, header included: fitted to libnghttp2 1.52's own (its
 * ring buffers are 1024 bytes, its session 2928), any other size takes
 * the next class up. */
static const uint16_t ed_v2a_sizes[ED_V2A_CLASSES] = {
    32, 48, 64, 96, 128, 160, 192, 256, 384, 512, 768, 1040, 1536, 2048,
    2960, ED_V2A_PAGE
};

static ed_v2_slab_t   ed_v2a_slab;
/* The free pages, a stack kept outside them: a link written into a page
 * given back to the kernel would take a page of memory back. */
static ed_v2_stack_t  ed_v2a_free_pages;

char *
ed_v2_slab_take(ed_v2_slab_t *s, size_t unit)
{
    char *p;

    if (s->next == s->end) {
        p = mmap(NULL, ED_V2A_SLAB * unit, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            return NULL;
        }
        (void)madvise(p, ED_V2A_SLAB * unit, MADV_NOHUGEPAGE);
        s->next = p;
        s->end = p + ED_V2A_SLAB * unit;
    }
    p = s->next;
    s->next += unit;
    return p;
}

bool
ed_v2_stack_push(ed_v2_stack_t *s, char *p)
{
    char     **v;
    unsigned   cap;

    if (s->n == s->cap) {
        cap = s->cap ? 2 * s->cap : ED_V2A_SLAB;
        v = realloc(s->v, cap * sizeof(char *));
        if (v == NULL) {
            return false;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = p;
    return true;
}

char *
ed_v2_stack_pop(ed_v2_stack_t *s)
{
    return s->n != 0 ? s->v[--s->n] : NULL;
}

static char *
ed_v2a_page_get(void)
{
    char *p;

    p = ed_v2_stack_pop(&ed_v2a_free_pages);
    if (p != NULL) {
        ed_v2a_unpoison(p, ED_V2A_PAGE);
        memset(p, 0, ED_V2A_PAGE);
        return p;
    }
    return ed_v2_slab_take(&ed_v2a_slab, ED_V2A_PAGE);
}

static void
ed_v2a_page_put(char *p, bool dirty)
{
    if (dirty && ed_v2a_free_pages.n >= ED_V2A_KEEP_PAGES) {
        (void)madvise(p, ED_V2A_PAGE, MADV_DONTNEED);
    }
    if (!ed_v2_stack_push(&ed_v2a_free_pages, p)) {
        /* Lost to the address space only: no memory under it. */
        (void)madvise(p, ED_V2A_PAGE, MADV_DONTNEED);
        return;
    }
    ed_v2a_poison(p, ED_V2A_PAGE);
}

/* The class of a block of n 16-byte units (header included): built
 * once from ed_v2a_sizes. */
static uint8_t ed_v2a_class_of[ED_V2A_PAGE / 16 + 1];

static unsigned
ed_v2a_class(size_t size)
{
    unsigned k, u;

    /* Only the largest size's class is not 0 once built. */
    if (ed_v2a_class_of[ED_V2A_PAGE / 16] == 0) {
        for (u = 0, k = 0; u <= ED_V2A_PAGE / 16; u++) {
            while (u * 16 > ed_v2a_sizes[k]) {
                k++;
            }
            ed_v2a_class_of[u] = (uint8_t)k;
        }
    }
    return ed_v2a_class_of[(size + ED_V2A_HDR + 15) / 16];
}

void *
ed_v2_arena_alloc(ed_v2_arena_t *a, size_t size)
{
    char     **pages;
    char      *b;
    unsigned   k;
    size_t     csize;

    k = size <= ED_V2A_PAGE - ED_V2A_HDR ? ed_v2a_class(size) : ED_V2A_CLASSES;
    if (k == ED_V2A_CLASSES) {
        goto outside;
    }
    csize = ed_v2a_sizes[k];
    if (a->free[k] != NULL) {
        b = a->free[k];
        ed_v2a_unpoison(b, csize);
        a->free[k] = *(void **)(b + ED_V2A_HDR);
        return b + ED_V2A_HDR;
    }
    if ((size_t)(a->end - a->bump) < csize) {
        if (a->npages == ED_V2A_MAX_PAGES) {
            goto outside;
        }
        if (a->npages == a->cap) {
            pages = realloc(a->pages, (a->cap ? 2 * a->cap : 4)
                                          * sizeof(char *));
            if (pages == NULL) {
                goto outside;
            }
            a->pages = pages;
            a->cap = a->cap ? 2 * a->cap : 4;
        }
        b = ed_v2a_page_get();
        if (b == NULL) {
            goto outside;
        }
        a->pages[a->npages++] = b;
        a->bump = b;
        a->end = b + ED_V2A_PAGE;
    }
    b = a->bump;
    a->bump += csize;
    *(size_t *)(void *)b = ED_V2A_TAG + k;
    return b + ED_V2A_HDR;

outside:
    b = ed_http_v2_alloc(size);
    if (b != NULL) {
        a->outside++;
    }
    return b;
}

/* What a block from ed_v2_arena_alloc holds. */
size_t
ed_v2_arena_block_size(const void *p)
{
    size_t tag = *(const size_t *)(const void *)((const char *)p - ED_V2A_HDR);

    if (tag >= ED_V2A_TAG && tag < ED_V2A_TAG + ED_V2A_CLASSES) {
        return ed_v2a_sizes[tag - ED_V2A_TAG] - ED_V2A_HDR;
    }
    return ed_http_v2_block_size(p);
}

void
ed_v2_arena_release(ed_v2_arena_t *a, void *p)
{
    char   *b;
    size_t  tag;

    if (p == NULL) {
        return;
    }
    b = (char *)p - ED_V2A_HDR;
    tag = *(size_t *)(void *)b;
    if (tag < ED_V2A_TAG || tag >= ED_V2A_TAG + ED_V2A_CLASSES) {
        a->outside--;
        ed_http_v2_release(p);
        return;
    }
    *(void **)p = a->free[tag - ED_V2A_TAG];
    a->free[tag - ED_V2A_TAG] = b;
    ed_v2a_poison(b + ED_V2A_HDR + sizeof(void *),
                  ed_v2a_sizes[tag - ED_V2A_TAG] - ED_V2A_HDR
                      - sizeof(void *));
}

/* The encoding of a page: records of a 16-bit count of zero bytes, a
 * 16-bit count of bytes that follow, those bytes; up to the page's
 * end. */
static size_t
ed_v2a_encode(const unsigned char *p, unsigned char *out)
{
    size_t   i = 0, o = 0, z, n;
    uint16_t v;

    while (i < ED_V2A_PAGE) {
        for (z = i; z < ED_V2A_PAGE && p[z] == 0; z++) {
        }
        /* A literal ends at four zero bytes in a row (a record costs
         * four), or at the page's end. */
        for (n = z; n < ED_V2A_PAGE; n++) {
            if (p[n] == 0 && n + 4 <= ED_V2A_PAGE && p[n + 1] == 0
                && p[n + 2] == 0 && p[n + 3] == 0)
            {
                break;
            }
        }
        v = (uint16_t)(z - i);
        memcpy(out + o, &v, 2);
        v = (uint16_t)(n - z);
        memcpy(out + o + 2, &v, 2);
        memcpy(out + o + 4, p + z, n - z);
        o += 4 + (n - z);
        i = n;
    }
    return o;
}

static void
ed_v2a_decode(unsigned char *p, const unsigned char *in, size_t len)
{
    size_t   i = 0, o = 0;
    uint16_t z, n;

    while (i < len) {
        memcpy(&z, in + i, 2);
        memcpy(&n, in + i + 2, 2);
        o += z;
        memcpy(p + o, in + i + 4, n);
        o += n;
        i += 4 + (size_t)n;
    }
}

/* Makes the free lists again, each in its order, from where their
 * blocks are (frees: per class in turn, nfree[k] of them): headers,
 * links, and the poison over what they held. */
static void
ed_v2a_relist(ed_v2_arena_t *a, const uint16_t *nfree, const void *frees)
{
    const unsigned char *f = frees;
    uint16_t             w;
    unsigned             k, j;
    char                *b;

    for (k = 0; k < ED_V2A_CLASSES; k++) {
        a->free[k] = NULL;
        for (j = nfree[k]; j-- > 0;) {
            memcpy(&w, f + 2 * j, 2);
            b = a->pages[w >> 8] + (size_t)(w & 0xff) * 16;
            *(size_t *)(void *)b = ED_V2A_TAG + k;
            *(void **)(b + ED_V2A_HDR) = a->free[k];
            a->free[k] = b;
            ed_v2a_poison(b + ED_V2A_HDR + sizeof(void *),
                          ed_v2a_sizes[k] - ED_V2A_HDR - sizeof(void *));
        }
        f += 2 * (size_t)nfree[k];
    }
}

/* Where a free block is, for the blob: its page's index and its offset
 * in 16-byte units. */
static uint16_t
ed_v2a_where(const ed_v2_arena_t *a, const char *b)
{
    unsigned i;

    for (i = 0; b < a->pages[i] || b >= a->pages[i] + ED_V2A_PAGE; i++) {
    }
    return (uint16_t)(i << 8 | (unsigned)(b - a->pages[i]) / 16);
}

/* The blob: the size of what follows; each page's encoding (a 16-bit
 * length, then the records); per class, a 16-bit count of free blocks
 * and where each is. Free blocks are zeros in the pages (what they held
 * is dead; a page of them encodes in 4 bytes), their lists are made
 * again at the wake. */
bool
ed_v2_arena_sleep(ed_v2_arena_t *a)
{
    static unsigned char scratch[ED_V2A_MAX_PAGES][ED_V2A_PAGE + 8];
    static uint16_t      lens[ED_V2A_MAX_PAGES];
    /* At most one free block per smallest block (32 bytes). */
    static uint16_t      frees[ED_V2A_MAX_PAGES * ED_V2A_PAGE / 32];
    uint16_t             nfree[ED_V2A_CLASSES];
    unsigned char       *blob, *q;
    char                *b, *next;
    size_t               total, csize, n = 0;
    unsigned             i, k;

    if (a->npages == 0 || a->blob != NULL) {
        return false;
    }
    for (k = 0; k < ED_V2A_CLASSES; k++) {
        csize = ed_v2a_sizes[k];
        nfree[k] = 0;
        for (b = a->free[k]; b != NULL; b = next) {
            ed_v2a_unpoison(b, csize);
            next = *(void **)(b + ED_V2A_HDR);
            frees[n++] = ed_v2a_where(a, b);
            nfree[k]++;
            memset(b, 0, csize);
        }
    }
    total = sizeof(nfree) + n * sizeof(uint16_t);
    for (i = 0; i < a->npages; i++) {
        /* A page's worst case: one record (4 bytes) per 5 bytes. */
        lens[i] = (uint16_t)ed_v2a_encode((unsigned char *)a->pages[i],
                                          scratch[i]);
        total += 2 + lens[i];
    }
    blob = malloc(sizeof(size_t) + total);
    if (blob == NULL) {
        ed_v2a_relist(a, nfree, frees);
        return false;
    }
    memcpy(blob, &total, sizeof(size_t));
    q = blob + sizeof(size_t);
    for (i = 0; i < a->npages; i++) {
        memcpy(q, &lens[i], 2);
        memcpy(q + 2, scratch[i], lens[i]);
        q += 2 + lens[i];
        (void)madvise(a->pages[i], ED_V2A_PAGE, MADV_DONTNEED);
    }
    memcpy(q, nfree, sizeof(nfree));
    memcpy(q + sizeof(nfree), frees, n * sizeof(uint16_t));
    a->blob = (char *)blob;
    return true;
}

void
ed_v2_arena_wake(ed_v2_arena_t *a)
{
    uint16_t       nfree[ED_V2A_CLASSES];
    unsigned char *q;
    uint16_t       len;
    unsigned       i;

    if (a->blob == NULL) {
        return;
    }
    q = (unsigned char *)a->blob + sizeof(size_t);
    for (i = 0; i < a->npages; i++) {
        memcpy(&len, q, 2);
        ed_v2a_decode((unsigned char *)a->pages[i], q + 2, len);
        q += 2 + len;
    }
    memcpy(nfree, q, sizeof(nfree));
    ed_v2a_relist(a, nfree, q + sizeof(nfree));
    free(a->blob);
    a->blob = NULL;
}

void
ed_v2_arena_drop(ed_v2_arena_t *a)
{
    unsigned i;

    for (i = 0; i < a->npages; i++) {
        ed_v2a_page_put(a->pages[i], a->blob == NULL);
    }
    free(a->pages);
    free(a->blob);
    memset(a, 0, sizeof(*a));
}

size_t
ed_v2_arena_asleep_bytes(const ed_v2_arena_t *a)
{
    size_t total;

    if (a->blob == NULL) {
        return 0;
    }
    memcpy(&total, a->blob, sizeof(size_t));
    return sizeof(size_t) + total;
}

#endif /* ED_HAVE_HTTP2 */
