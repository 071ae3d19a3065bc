/* Counted strings and the small string helpers the tree shares. */
#include "ed_core.h"

int
ed_strncasecmp(const char *a, const char *b, size_t n)
{
    size_t i;
    char   ca, cb;

    for (i = 0; i < n; i++) {
        ca = ed_tolower(a[i]);
        cb = ed_tolower(b[i]);
        if (ca != cb) {
            return (unsigned char)ca - (unsigned char)cb;
        }
        if (ca == '\0') {
            return 0;
        }
    }
    return 0;
}

bool
ed_str_caseeq(const ed_str_t *a, const char *b)
{
    size_t n = strlen(b);

    return a->len == n && ed_strncasecmp(a->data, b, n) == 0;
}

void
ed_strlow(char *dst, const char *src, size_t n)
{
    while (n--) {
        *dst++ = ed_tolower(*src++);
    }
}

int64_t
ed_atoi(const char *s, size_t len)
{
    int64_t v = 0;

    if (len == 0) {
        return -1;
    }
    for (; len; len--, s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        if (v > (INT64_MAX - (*s - '0')) / 10) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

int64_t
ed_hextoi(const char *s, size_t len)
{
    int64_t v = 0;
    int     d;

    if (len == 0) {
        return -1;
    }
    for (; len; len--, s++) {
        if (*s >= '0' && *s <= '9') {
            d = *s - '0';
        } else if ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'f') {
            d = (*s | 0x20) - 'a' + 10;
        } else {
            return -1;
        }
        if (v > (INT64_MAX >> 4)) {
            return -1;
        }
        v = (v << 4) | d;
    }
    return v;
}

int
ed_str_dup(ed_pool_t *pool, ed_str_t *dst, const char *s, size_t len)
{
    dst->data = ed_pstrdup(pool, s, len);
    if (dst->data == NULL) {
        return ED_ERROR;
    }
    dst->len = len;
    return ED_OK;
}

char *
ed_sprint_u64(char *p, uint64_t n)
{
    char  tmp[20];
    char *t = tmp + sizeof(tmp);

    do {
        *--t = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    memcpy(p, t, (size_t)(tmp + sizeof(tmp) - t));
    return p + (tmp + sizeof(tmp) - t);
}

size_t
ed_str_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, tmp;
    size_t row[64];

    if (lb >= ed_nelems(row)) {
        return (size_t)-1;
    }
    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            tmp = row[j];
            cur = prev + (a[i - 1] != b[j - 1]);
            cur = ed_min(cur, row[j] + 1);
            cur = ed_min(cur, row[j - 1] + 1);
            row[j] = cur;
            prev = tmp;
        }
    }
    return row[lb];
}
