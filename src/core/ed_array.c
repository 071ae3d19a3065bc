/* Growable arrays allocated from an arena. */
#include "ed_core.h"

int
ed_array_init(ed_array_t *a, ed_pool_t *pool, size_t n, size_t size)
{
    a->nelts = 0;
    a->size = size;
    a->nalloc = n ? n : 1;
    a->pool = pool;
    a->elts = ed_palloc(pool, a->nalloc * size);
    return a->elts ? ED_OK : ED_ERROR;
}

ed_array_t *
ed_array_create(ed_pool_t *pool, size_t n, size_t size)
{
    ed_array_t *a = ed_palloc(pool, sizeof(ed_array_t));

    if (a == NULL || ed_array_init(a, pool, n, size) != ED_OK) {
        return NULL;
    }
    return a;
}

void *
ed_array_push(ed_array_t *a)
{
    void *p;

    if (a->nelts == a->nalloc) {
        p = ed_palloc(a->pool, 2 * a->nalloc * a->size);
        if (p == NULL) {
            return NULL;
        }
        memcpy(p, a->elts, a->nelts * a->size);
        a->elts = p;
        a->nalloc *= 2;
    }
    p = (char *)a->elts + a->size * a->nelts++;
    memset(p, 0, a->size);
    return p;
}
