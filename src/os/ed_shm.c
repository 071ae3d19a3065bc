/* Shared memory zones: one anonymous shared mapping per request, tied to
 * the lifetime of a pool, and robust process-shared mutexes. */
#include "ed_shm.h"

#include <sys/mman.h>

typedef struct {
    void   *addr;
    size_t  size;
} ed_shm_t;

static void
ed_shm_cleanup(void *data)
{
    ed_shm_t *shm = data;

    munmap(shm->addr, shm->size);
}

/* Returns the zeroed mapping, or NULL (ENOMEM, or mmap's errno). Workers
 * forked later share it; the process that destroys pool unmaps only its
 * own view. */
void *
ed_shm_alloc(ed_pool_t *pool, size_t size)
{
    ed_shm_t *shm;
    long      page = sysconf(_SC_PAGESIZE);
    void     *addr;

    if (size == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (page <= 0) {
        page = 4096;
    }
    size = ed_align(size, (size_t)page);
    shm = ed_palloc(pool, sizeof(ed_shm_t));
    if (shm == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    addr = mmap(NULL, size, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (addr == MAP_FAILED) {
        return NULL;
    }
    shm->addr = addr;
    shm->size = size;
    if (ed_pool_cleanup_add(pool, ed_shm_cleanup, shm) != ED_OK) {
        munmap(addr, size);
        errno = ENOMEM;
        return NULL;
    }
    return addr;
}

int
ed_shm_mutex_init(ed_shm_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int                 rc;

    rc = pthread_mutexattr_init(&attr);
    if (rc == 0) {
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (rc == 0) {
            rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        }
        if (rc == 0) {
            rc = pthread_mutex_init(m, &attr);
        }
        pthread_mutexattr_destroy(&attr);
    }
    if (rc != 0) {
        errno = rc;
        return ED_ERROR;
    }
    return ED_OK;
}

int
ed_shm_lock(ed_shm_mutex_t *m)
{
    int rc;

    rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
        /* The holder died: its last update may be partial, which the
         * data's writers allow for (see ed_shm.h). */
        rc = pthread_mutex_consistent(m);
    }
    return rc == 0 ? ED_OK : ED_ERROR;
}

void
ed_shm_unlock(ed_shm_mutex_t *m)
{
    pthread_mutex_unlock(m);
}
