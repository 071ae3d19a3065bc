/* Counters of things in progress per key (limit_conn's requests), shared
 * by the workers in a fixed-size table in shared memory. Each counter
 * keeps what each worker holds, so that the master can give back the
 * slots of a worker that died. */
#ifndef ED_SLOTS_H
#define ED_SLOTS_H

#include "ed_core.h"

/* Counters per set: a key lives in one of two sets of that many. */
#define ED_SLOTS_WAYS 8
/* How often, at most, a table says it is full (ed_slots_full_report). */
#define ED_SLOTS_FULL_REPORT 60000
/* Slots one worker may hold per key. */
#define ED_SLOTS_PER_WORKER 65535

typedef struct ed_slots_s ed_slots_t;

/* The counters a table of size bytes holds for workers processes (0
 * when size is too small for even two sets). */
size_t ed_slots_capacity(size_t size, unsigned workers);
/* Makes a table in shared memory (made before the workers fork; unmapped
 * with pool) of size bytes for worker ids 0..workers-1, with a random
 * hash key of its own. NULL on failure (errno; EINVAL: too small). */
ed_slots_t *ed_slots_create(ed_pool_t *pool, size_t size, unsigned workers);
/* The hash that stands for a key in t (keyed by t; never 0). */
uint64_t ed_slots_hash(const ed_slots_t *t, const char *s, size_t len);
/* Takes a slot of key hash for worker id when fewer than max are held:
 * ED_OK with *index set (give it back with ed_slots_release), ED_DECLINED
 * when max are held (all workers together), ED_AGAIN when the key has no
 * counter and none is free where it may have one (the table is full
 * there), ED_ERROR when the table cannot be used. */
int ed_slots_acquire(ed_slots_t *t, uint64_t hash, unsigned id,
                     uint32_t max, uint32_t *index);
/* Gives back a slot taken by worker id. */
void ed_slots_release(ed_slots_t *t, uint32_t index, uint64_t hash,
                      unsigned id);
/* From the master when worker id is gone: every slot it held is given
 * back (it may have died with the table's lock held, mid-update). */
void ed_slots_worker_gone(ed_slots_t *t, unsigned id);
/* The slots held for key hash (all workers), for tests. */
uint32_t ed_slots_held(ed_slots_t *t, uint64_t hash);
/* True for the first call at or after ED_SLOTS_FULL_REPORT ms since the
 * last true one, across every process: whether to log that t is full. */
bool ed_slots_full_report(ed_slots_t *t, ed_msec_t now);

#endif /* ED_SLOTS_H */
