/* Counted strings and the small string helpers the tree shares. */
#ifndef ED_STR_H
#define ED_STR_H

struct ed_str_s {
    size_t len;
    char  *data;
};

#define ed_string(s) { sizeof(s) - 1, (char *)(s) }
#define ed_null_string { 0, NULL }
#define ed_str_set(str, s) ((str)->len = sizeof(s) - 1, (str)->data = (char *)(s))
/* Empty strings may have no data: memcmp must not see their NULL. */
#define ed_str_eq(a, b)                                                      \
    ((a)->len == (b)->len                                                    \
     && ((a)->len == 0 || memcmp((a)->data, (b)->data, (a)->len) == 0))

static inline char
ed_tolower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
}

/* Case-insensitive comparison of n bytes; 0 when equal. */
int ed_strncasecmp(const char *a, const char *b, size_t n);
/* Case-insensitive equality of a counted string and a C string. */
bool ed_str_caseeq(const ed_str_t *a, const char *b);
void ed_strlow(char *dst, const char *src, size_t n);
/* Parses decimal digits; -1 on empty input, non-digits or overflow. */
int64_t ed_atoi(const char *s, size_t len);
/* Parses hex digits; -1 on empty input, non-hex or overflow. */
int64_t ed_hextoi(const char *s, size_t len);
/* Copies a string into pool memory. ED_OK or ED_ERROR. */
int ed_str_dup(ed_pool_t *pool, ed_str_t *dst, const char *s, size_t len);
/* Writes the decimal form of n; returns the end of what was written. */
char *ed_sprint_u64(char *p, uint64_t n);
/* Levenshtein distance, for "did you mean". */
size_t ed_str_distance(const char *a, const char *b);

#endif /* ED_STR_H */
