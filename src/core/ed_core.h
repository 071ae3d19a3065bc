/* Common definitions every eddy source file includes first. */
#ifndef ED_CORE_H
#define ED_CORE_H

#include "ed_auto_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define ED_OK 0
#define ED_ERROR -1
#define ED_AGAIN -2
#define ED_DONE -3
#define ED_DECLINED -4

typedef intptr_t ed_int_t;
typedef uintptr_t ed_uint_t;
typedef int64_t ed_msec_t;

#define ed_min(a, b) ((a) < (b) ? (a) : (b))
#define ed_max(a, b) ((a) > (b) ? (a) : (b))
#define ed_nelems(a) (sizeof(a) / sizeof((a)[0]))
#define ed_align(n, a) (((n) + ((a)-1)) & ~((size_t)(a)-1))
#define ed_unused(x) (void)(x)
#define ed_likely(x) __builtin_expect(!!(x), 1)
#define ed_unlikely(x) __builtin_expect(!!(x), 0)
#define ed_container_of(p, type, member)                                     \
    ((type *)((char *)(p)-offsetof(type, member)))

#include "ed_types.h"
#include "ed_pool.h"
#include "ed_str.h"
#include "ed_array.h"
#include "ed_time.h"
#include "ed_log.h"

#endif /* ED_CORE_H */
