/* Growable arrays allocated from an arena. */
#ifndef ED_ARRAY_H
#define ED_ARRAY_H

struct ed_array_s {
    void      *elts;
    size_t     nelts;
    size_t     size;
    size_t     nalloc;
    ed_pool_t *pool;
};

/* ED_OK or ED_ERROR. */
int ed_array_init(ed_array_t *a, ed_pool_t *pool, size_t n, size_t size);
ed_array_t *ed_array_create(ed_pool_t *pool, size_t n, size_t size);
/* Returns a new zeroed slot at the end, NULL on ENOMEM. */
void *ed_array_push(ed_array_t *a);

#endif /* ED_ARRAY_H */
