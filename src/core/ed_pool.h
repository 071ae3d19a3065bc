/* Arenas: bump allocation from linked blocks, freed or reset as a whole. */
#ifndef ED_POOL_H
#define ED_POOL_H

typedef void (*ed_pool_cleanup_pt)(void *data);

typedef struct ed_pool_block_s ed_pool_block_t;
typedef struct ed_pool_large_s ed_pool_large_t;
typedef struct ed_pool_cleanup_s ed_pool_cleanup_t;

struct ed_pool_s {
    ed_pool_block_t   *current;  /* block allocations are taken from */
    ed_pool_block_t   *first;    /* embedded first block, kept on reset */
    ed_pool_large_t   *large;    /* allocations over the block limit */
    ed_pool_cleanup_t *cleanup;  /* run in reverse order on reset/destroy */
    size_t             block_size;
};

/* Creates an arena whose blocks hold block_size bytes. NULL on ENOMEM. */
ed_pool_t *ed_pool_create(size_t block_size);
void ed_pool_destroy(ed_pool_t *pool);
/* Frees every allocation and runs the cleanups; keeps the first block. */
void ed_pool_reset(ed_pool_t *pool);

/* Aligned allocation; NULL on ENOMEM. */
void *ed_palloc(ed_pool_t *pool, size_t size);
void *ed_pcalloc(ed_pool_t *pool, size_t size);
/* Unaligned allocation, for strings. */
void *ed_pnalloc(ed_pool_t *pool, size_t size);
char *ed_pstrdup(ed_pool_t *pool, const char *s, size_t len);
/* Registers fn(data) to run when the pool is reset or destroyed. */
int ed_pool_cleanup_add(ed_pool_t *pool, ed_pool_cleanup_pt fn, void *data);

#endif /* ED_POOL_H */
