/* What every libFuzzer target shares: the entry point libFuzzer (or
 * replay.c) calls, and a check that aborts with the failed invariant. */
#ifndef ED_FUZZ_H
#define ED_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ed_fuzz_assert(c)                                                    \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #c);                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

#endif /* ED_FUZZ_H */
