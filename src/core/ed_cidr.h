/* Address ranges for access rules: "all", an IPv4 or IPv6 address, or a
 * CIDR block, matched against a peer's address. */
#ifndef ED_CIDR_H
#define ED_CIDR_H

#include "ed_core.h"

#include <sys/socket.h>

typedef struct {
    int      family;    /* AF_INET, AF_INET6, or AF_UNSPEC for `all` */
    unsigned prefix;    /* bits that must match */
    uint8_t  addr[16];  /* network order, host bits cleared */
    uint8_t  mask[16];
} ed_cidr_t;

/* Parses "all", "10.1.2.3", "10.0.0.0/8", "::1", "fd00::/8". A range in
 * ::ffff:0:0/96 becomes the IPv4 range it maps. Host bits beyond the
 * prefix are ignored (nginx's rule). ED_OK, or ED_ERROR with a message
 * in *err. */
int ed_cidr_parse(const char *s, size_t len, ed_cidr_t *c, const char **err);
/* Whether a peer address matches: an IPv4-mapped IPv6 peer matches as
 * IPv4, and a peer without an address (unix socket) matches only
 * `all`. */
bool ed_cidr_match(const ed_cidr_t *c, const struct sockaddr *sa);

#endif /* ED_CIDR_H */
