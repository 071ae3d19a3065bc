/* Arenas: bump allocation from linked blocks, freed or reset as a whole. */
#include "ed_core.h"

#define ED_POOL_ALIGN 16

struct ed_pool_block_s {
    ed_pool_block_t *next;
    char            *last;
    char            *end;
    unsigned         failed;
};

struct ed_pool_large_s {
    ed_pool_large_t *next;
};

struct ed_pool_cleanup_s {
    ed_pool_cleanup_t *next;
    ed_pool_cleanup_pt fn;
    void              *data;
};

#define ed_pool_hdr ed_align(sizeof(ed_pool_t) + sizeof(ed_pool_block_t), 16)

ed_pool_t *
ed_pool_create(size_t block_size)
{
    ed_pool_t       *pool;
    ed_pool_block_t *b;

    if (block_size < 256) {
        block_size = 256;
    }
    pool = malloc(ed_pool_hdr + block_size);
    if (pool == NULL) {
        return NULL;
    }
    b = (ed_pool_block_t *)(pool + 1);
    b->next = NULL;
    b->last = (char *)pool + ed_pool_hdr;
    b->end = b->last + block_size;
    b->failed = 0;
    pool->current = b;
    pool->first = b;
    pool->large = NULL;
    pool->cleanup = NULL;
    pool->block_size = block_size;
    return pool;
}

static void
ed_pool_release(ed_pool_t *pool)
{
    ed_pool_cleanup_t *c;
    ed_pool_large_t   *l, *ln;
    ed_pool_block_t   *b, *bn;

    /* Cleanups may use pool memory, so they run before anything is freed. */
    for (c = pool->cleanup; c; c = c->next) {
        c->fn(c->data);
    }
    pool->cleanup = NULL;
    for (l = pool->large; l; l = ln) {
        ln = l->next;
        free(l);
    }
    pool->large = NULL;
    for (b = pool->first->next; b; b = bn) {
        bn = b->next;
        free(b);
    }
}

void
ed_pool_destroy(ed_pool_t *pool)
{
    if (pool == NULL) {
        return;
    }
    ed_pool_release(pool);
    free(pool);
}

void
ed_pool_reset(ed_pool_t *pool)
{
    ed_pool_release(pool);
    pool->first->next = NULL;
    pool->first->last = (char *)pool + ed_pool_hdr;
    pool->first->failed = 0;
    pool->current = pool->first;
}

static void *
ed_pool_large(ed_pool_t *pool, size_t size)
{
    ed_pool_large_t *l;

    l = malloc(ed_align(sizeof(ed_pool_large_t), ED_POOL_ALIGN) + size);
    if (l == NULL) {
        return NULL;
    }
    l->next = pool->large;
    pool->large = l;
    return (char *)l + ed_align(sizeof(ed_pool_large_t), ED_POOL_ALIGN);
}

static void *
ed_pool_block(ed_pool_t *pool, size_t size, size_t align)
{
    ed_pool_block_t *b, *nb;
    char            *p;
    size_t           hdr;

    hdr = ed_align(sizeof(ed_pool_block_t), ED_POOL_ALIGN);
    nb = malloc(hdr + pool->block_size);
    if (nb == NULL) {
        return NULL;
    }
    nb->next = NULL;
    nb->failed = 0;
    nb->end = (char *)nb + hdr + pool->block_size;
    p = (char *)nb + hdr;
    nb->last = p + size;
    ed_unused(align);

    /* Blocks that failed to serve several requests stop being tried. */
    for (b = pool->current; b->next; b = b->next) {
        if (b->failed++ > 4) {
            pool->current = b->next;
        }
    }
    b->next = nb;
    return p;
}

static inline void *
ed_pool_alloc(ed_pool_t *pool, size_t size, size_t align)
{
    ed_pool_block_t *b;
    char            *p;

    if (size > pool->block_size / 2) {
        return ed_pool_large(pool, size);
    }
    for (b = pool->current; b; b = b->next) {
        p = (char *)(((uintptr_t)b->last + (align - 1)) & ~(align - 1));
        if ((size_t)(b->end - p) >= size) {
            b->last = p + size;
            return p;
        }
    }
    return ed_pool_block(pool, size, align);
}

void *
ed_palloc(ed_pool_t *pool, size_t size)
{
    return ed_pool_alloc(pool, size, sizeof(void *) * 2);
}

void *
ed_pnalloc(ed_pool_t *pool, size_t size)
{
    return ed_pool_alloc(pool, size, 1);
}

void *
ed_pcalloc(ed_pool_t *pool, size_t size)
{
    void *p = ed_palloc(pool, size);

    if (p) {
        memset(p, 0, size);
    }
    return p;
}

char *
ed_pstrdup(ed_pool_t *pool, const char *s, size_t len)
{
    char *p = ed_pnalloc(pool, len + 1);

    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

int
ed_pool_cleanup_add(ed_pool_t *pool, ed_pool_cleanup_pt fn, void *data)
{
    ed_pool_cleanup_t *c = ed_palloc(pool, sizeof(*c));

    if (c == NULL) {
        return ED_ERROR;
    }
    c->fn = fn;
    c->data = data;
    c->next = pool->cleanup;
    pool->cleanup = c;
    return ED_OK;
}
