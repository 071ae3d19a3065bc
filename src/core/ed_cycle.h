/* A cycle: one loaded configuration with its listeners. Reload builds a
 * new cycle and retires the old one whole. */
#ifndef ED_CYCLE_H
#define ED_CYCLE_H

#include "ed_module.h"

#include <sys/socket.h>

enum { ED_ACCEPT_EXCLUSIVE = 0, ED_ACCEPT_REUSEPORT, ED_ACCEPT_SHARED };

/* The `events:` block. */
typedef struct {
    ed_node_t  *node;           /* NULL: not written, all defaults */
    int         max_connections;
    int         accept;         /* ED_ACCEPT_* */
    int         backlog;
    int         handover;       /* reloads hand idle connections over */
} ed_core_events_t;

/* The core module's main-level settings. */
typedef struct {
    int         workers;        /* 0 = auto */
    int         max_restarts;
    ed_msec_t   shutdown_timeout;
    ed_msec_t   drain_delay;    /* QUIT: health says 503 first; 0: off */
    ed_str_t    pid_file;
    int         daemon;
    ed_str_t    user;
    int         worker_core_dumps;  /* workers stay dumpable */
    ed_str_t    error_log;      /* path or "stderr" */
    int         error_level;
    ed_core_events_t *events;   /* never NULL after the load */
} ed_core_conf_t;

/* A new connection on a listener: the protocol takes the fd over. */
typedef void (*ed_accept_pt)(ed_listener_t *ls, int fd,
                             const ed_peer_addr_t *peer);

/* A listening address, shared by the servers that listen on it. */
struct ed_listener_s {
    struct sockaddr_storage addr;
    socklen_t               addrlen;
    char                   *name;      /* "127.0.0.1:8080", "unix:/p" */
    int                     backlog;
    int                     fd;        /* shared socket, or -1 */
    int                    *fds;       /* reuseport: one per worker */
    int                     nfds;
    unsigned                tls:1;
    unsigned                reuseport:1;
    unsigned                inherited:1; /* taken over from a cycle */
    /* TCP_DEFER_ACCEPT: the kernel hands a connection over only once
     * its first bytes have arrived (or about a second has passed). */
    unsigned                deferred:1;
    /* Set by the protocol module that listens here, at postconf: the
     * worker hands each accepted connection to it. */
    ed_accept_pt            handler;
    void                   *servers;   /* the protocol's: its servers */
    /* Set with handler: writes what listens here for the notice lines
     * at start and reload, e.g. "(http) for a, b; default: F:L:C";
     * returns the length (at most size - 1). */
    size_t                (*describe)(ed_listener_t *ls, char *buf,
                                      size_t size);
    /* Set with handler: takes over an idle connection an old worker
     * handed over at a reload (fd, and what m says of it). ED_OK, or
     * ED_DECLINED: fd stays the caller's. */
    int                   (*adopt)(ed_listener_t *ls, int fd,
                                   const ed_handover_msg_t *m);
};

struct ed_cycle_s {
    ed_pool_t      *pool;
    const char     *conf_file;   /* absolute */
    const char     *prefix;      /* absolute, ends without '/' */
    ed_node_t      *root;
    void          **main_conf;   /* per module, by index */
    ed_array_t      listeners;   /* ed_listener_t * */
    ed_log_t        log;         /* the error log */
    int             workers;     /* resolved */
    ed_conf_t      *conf;        /* errors of the load */
};

#define ed_core_conf(cycle)                                                  \
    ((ed_core_conf_t *)(cycle)->main_conf[ed_core_module.index])

extern ed_module_t    ed_core_module;
extern const ed_key_t ed_core_events_keys[];

/* Loads and validates the config file. Returns the cycle, or NULL with
 * the errors in *errors (a cycle-less ed_conf_t the caller frees with
 * ed_cycle_errors_free). full: also run checks meant for -t (none differ
 * yet). */
ed_cycle_t *ed_cycle_load(const char *conf_file, const char *prefix,
                          ed_conf_t **errors);
void ed_cycle_errors_free(ed_conf_t *cf);
void ed_cycle_free(ed_cycle_t *cycle);
/* Makes the file open on fd belong to `user:` when the master runs as
 * root, so that workers (running as that user) can reopen it on USR1.
 * ED_OK, or ED_ERROR (logged). */
int ed_cycle_give_file(ed_cycle_t *cycle, int fd, const char *path);
/* The canonical text of an address as written in a config ("8080":
 * "0.0.0.0:8080"), as logs name it; NULL when invalid or on ENOMEM. */
char *ed_cycle_addr_name(ed_pool_t *pool, const char *addr);
/* Adds a listener for addr (parsed from a config string) or returns the
 * existing one with the same address. NULL with *err set on failure. */
ed_listener_t *ed_cycle_listener(ed_cycle_t *cycle, const char *addr,
                                 const char **err);

#endif /* ED_CYCLE_H */
