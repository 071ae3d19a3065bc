/* OCSP stapling (modules-2.md "TLS: OCSP stapling"): a server's OCSP
 * response, checked and kept in shared memory, stapled by the workers
 * without ever waiting; fetched by short-lived helpers the master forks,
 * or read from a file. */
#ifndef ED_TLS_OCSP_H
#define ED_TLS_OCSP_H

#include "ed_loop.h"
#include "ed_tls.h"

/* The longest response kept (responses are 1-3 KiB in practice). */
#define ED_TLS_OCSP_MAX        16384
/* A helper's whole request (DNS, connect, send, receive) is bounded. */
#define ED_TLS_OCSP_TIMEOUT_S  10
/* After a failed request: the first retry delay, doubled up to the last. */
#define ED_TLS_OCSP_RETRY_S    60
#define ED_TLS_OCSP_RETRY_MAX_S 3600
/* How often a response file's mtime is looked at. */
#define ED_TLS_OCSP_FILE_CHECK_S 60

/* What a failed ed_tls_ocsp_create was about, for the key the -t error
 * points at. */
enum {
    ED_TLS_OCSP_ERR_STAPLING = 0,   /* ocsp_stapling: no issuer, no URL */
    ED_TLS_OCSP_ERR_FILE            /* ocsp_response_file */
};

typedef struct ed_tls_ocsp_s ed_tls_ocsp_t;

/* At config load: stapling for the server context ctx (its certificate
 * chain loaded from cert, named so in messages), from the DER response
 * in file, or fetched when file is NULL. Checks that the issuer is in
 * the chain, that a certificate to fetch for has an http OCSP URL, and
 * that the file holds a valid response for it; makes the shared memory
 * (in cycle's pool) and sets ctx's status callback. Returns the object
 * (freed with the cycle), or NULL with a message in err (size bytes) and
 * *what set to an ED_TLS_OCSP_ERR_* value. */
ed_tls_ocsp_t *ed_tls_ocsp_create(ed_cycle_t *cycle, SSL_CTX *ctx,
                                  const char *cert, const char *file,
                                  char *err, size_t size, int *what);
/* The shared memory of one stapled certificate (the memory estimate). */
size_t ed_tls_ocsp_shm_size(void);

/* In the master, once a cycle is in force (start, reload): starts
 * fetching (or watching the file) for the cycle's certificates on loop.
 * A certificate the previous cycle had a valid response for keeps it
 * until that response's refresh time. */
void ed_tls_ocsp_start(ed_loop_t *loop, ed_cycle_t *cycle);
/* In the master, for each child reaped: true when pid was an OCSP
 * helper (its outcome sets the next request's time). */
bool ed_tls_ocsp_reaped(pid_t pid, int status);
/* In the master, before its loop goes: stops the timers and helpers. */
void ed_tls_ocsp_stop(void);

/* A responder's URL, cut up for the request. */
typedef struct {
    char *url;
    char *host;       /* without an IPv6 address's brackets */
    char *port;       /* "80" when not given */
    char *hostport;   /* for Host: */
    char *path;       /* starts with "/"; the query kept, no fragment */
} ed_tls_ocsp_url_t;

/* Cuts url (http://host[:port][/path][?query]) into u, strings in pool.
 * Returns ED_OK, or ED_ERROR when it is not http://, has user info, an
 * empty host or a port that is not a number (or memory ran out). */
int ed_tls_ocsp_parse_url(ed_pool_t *pool, const char *url,
                          ed_tls_ocsp_url_t *u);
/* Seconds from now until the request after a response valid from
 * this_update to next_update: at half its validity, but not at once when
 * that time has passed (a responder's cached answer): at least a minute
 * later, or half the time left when less than two minutes are; at least
 * one second. */
long ed_tls_ocsp_refresh(time_t this_update, time_t next_update,
                         time_t now);

#endif /* ED_TLS_OCSP_H */
