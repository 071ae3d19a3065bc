/* Shared memory: anonymous shared mappings made by the master at config
 * load and inherited by every worker it forks, and mutexes that live in
 * them. */
#ifndef ED_SHM_H
#define ED_SHM_H

#include "ed_core.h"

#include <pthread.h>

typedef pthread_mutex_t ed_shm_mutex_t;

/* Maps size bytes (rounded up to pages) of zeroed memory shared with the
 * processes forked afterwards, unmapped when pool (the cycle's) is
 * destroyed. Returns the address, or NULL on failure (errno set). */
void *ed_shm_alloc(ed_pool_t *pool, size_t size);

/* Makes m (in shared memory) a mutex for every process that maps it,
 * robust: when its holder dies (a worker killed mid-update), the next
 * locker takes it over. ED_OK, or ED_ERROR with errno set. */
int ed_shm_mutex_init(ed_shm_mutex_t *m);
/* ED_OK once m is held; ED_ERROR only if m cannot be used any more. The
 * data m guards may be half-updated after its holder died: code that
 * writes under it orders its stores so that any prefix is safe. */
int ed_shm_lock(ed_shm_mutex_t *m);
void ed_shm_unlock(ed_shm_mutex_t *m);

#endif /* ED_SHM_H */
