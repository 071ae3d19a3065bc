/* Address ranges for access rules: parsing and matching. */
#include "ed_cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static const uint8_t ed_cidr_v4mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int
ed_cidr_parse(const char *s, size_t len, ed_cidr_t *c, const char **err)
{
    char        buf[INET6_ADDRSTRLEN + 8];
    const char *slash;
    size_t      alen, bytes, i;
    int64_t     prefix;
    unsigned    max;

    memset(c, 0, sizeof(*c));
    if (len == 3 && memcmp(s, "all", 3) == 0) {
        c->family = AF_UNSPEC;
        return ED_OK;
    }
    slash = memchr(s, '/', len);
    alen = slash ? (size_t)(slash - s) : len;
    if (alen == 0 || alen >= INET6_ADDRSTRLEN) {
        *err = "expected an IPv4 or IPv6 address, a CIDR block or \"all\"";
        return ED_ERROR;
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        *err = "expected an IPv4 or IPv6 address, a CIDR block or \"all\"";
        return ED_ERROR;
    }
    prefix = max;
    if (slash) {
        prefix = ed_atoi(slash + 1, len - alen - 1);
        if (prefix < 0 || prefix > max) {
            *err = c->family == AF_INET
                       ? "invalid prefix length: expected /0 to /32"
                       : "invalid prefix length: expected /0 to /128";
            return ED_ERROR;
        }
    }
    if (c->family == AF_INET6 && prefix >= 96
        && memcmp(c->addr, ed_cidr_v4mapped, 12) == 0)
    {
        /* ::ffff:a.b.c.d/n is the IPv4 range a.b.c.d/(n - 96). */
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = AF_INET;
        prefix -= 96;
        max = 32;
    }
    c->prefix = (unsigned)prefix;
    bytes = max / 8;
    for (i = 0; i < bytes; i++) {
        unsigned bits = prefix >= 8 ? 8 : (unsigned)prefix;

        c->mask[i] = (uint8_t)(0xff00 >> bits);
        c->addr[i] &= c->mask[i];
        prefix -= bits;
    }
    return ED_OK;
}

bool
ed_cidr_match(const ed_cidr_t *c, const struct sockaddr *sa)
{
    const uint8_t *a;
    size_t         i, n;

    if (c->family == AF_UNSPEC) {
        return true;
    }
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
    } else if (sa->sa_family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        n = 16;
        if (memcmp(a, ed_cidr_v4mapped, 12) == 0) {
            a += 12;
            n = 4;
        }
    } else {
        return false;
    }
    if ((n == 4) != (c->family == AF_INET)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if ((a[i] & c->mask[i]) != c->addr[i]) {
            return false;
        }
    }
    return true;
}
