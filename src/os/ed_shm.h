/* Shared memory: anonymous shared mappings made by the master at config
 * load and inherited by every worker it forks. */
#ifndef ED_SHM_H
#define ED_SHM_H

#include "ed_core.h"

/* Maps size bytes (rounded up to pages) of zeroed memory shared with the
 * processes forked afterwards, unmapped when pool (the cycle's) is
 * destroyed. Returns the address, or NULL on failure (errno set). */
void *ed_shm_alloc(ed_pool_t *pool, size_t size);

#endif /* ED_SHM_H */
