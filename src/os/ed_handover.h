/* Handing idle keep-alive connections to the new generation at a reload
 * (fleet.md): the messages on the AF_UNIX SOCK_SEQPACKET channel between
 * the master and each worker, their validation, and sending and
 * receiving them with a descriptor in SCM_RIGHTS. */
#ifndef ED_HANDOVER_H
#define ED_HANDOVER_H

#include "ed_conn.h"

#define ED_HANDOVER_MAGIC "EDH1"

/* Descriptors the master holds or has forwarded and no new worker has
 * taken yet: above this it stops reading the old workers' channels (a
 * descriptor in flight counts against RLIMIT_NOFILE). */
#define ED_HANDOVER_TRANSIT_MAX 1024

enum {
    ED_HO_READY = 1,   /* worker -> master: its loop runs */
    ED_HO_QUIT,        /* master -> old worker: stop, handing over to
                        * generation (the new one) */
    ED_HO_HANDOFF,     /* old worker -> master -> new worker: one
                        * connection, its descriptor in SCM_RIGHTS */
    ED_HO_DONE,        /* old worker -> master: the idle connections are
                        * handed over (count) or closed (closed) */
    ED_HO_TAKEN,       /* new worker -> master: count HANDOFFs taken
                        * (adopted or closed): no longer in transit */
    ED_HO_TYPES
};

#define ED_HO_F_HTTP10   0x1u  /* the last request was HTTP/1.0 keep-alive */
#define ED_HO_F_PROXY    0x2u  /* the address has proxy_protocol: its
                                * header was read */
#define ED_HO_F_PP_ADDR  0x4u  /* pp_src and pp_dst are what it named */
#define ED_HO_FLAGS      0x7u

/* Fixed size, native byte order: the same binary is at both ends. */
struct ed_handover_msg_s {
    char            magic[4];     /* ED_HANDOVER_MAGIC */
    uint32_t        type;         /* ED_HO_* */
    uint32_t        generation;   /* the sender's; QUIT: the new one */
    int32_t         worker;       /* the sender's id; -1: the master */
    uint64_t        connection;   /* $connection */
    uint64_t        requests;     /* requests served so far */
    uint32_t        flags;        /* ED_HO_F_* */
    uint32_t        count;
    uint32_t        closed;
    uint32_t        reserved;     /* 0 */
    uint64_t        idle_since;   /* CLOCK_MONOTONIC, ms */
    ed_peer_addr_t  pp_src;
    ed_peer_addr_t  pp_dst;
};

/* What the master knows of the worker at the other end of a channel. */
typedef struct {
    unsigned  generation;
    int       worker;
    unsigned  types;      /* 1 << type for each type it may send */
} ed_handover_peer_t;

/* Validates a message received from a channel: len bytes, with nfds
 * descriptors, recvmsg flags (MSG_TRUNC, MSG_CTRUNC), from peer. NULL
 * when it is valid, else what is wrong. Pure: the master treats what a
 * worker sends as untrusted. */
const char *ed_handover_check(const void *buf, size_t len, int nfds,
                              int flags, const ed_handover_peer_t *peer);

/* A message of type from this process (generation, worker id). */
void ed_handover_init_msg(ed_handover_msg_t *m, uint32_t type,
                          unsigned generation, int worker);

/* Sends m, with fd in SCM_RIGHTS when fd >= 0. ED_OK; ED_AGAIN when the
 * channel is full or too many descriptors are in flight (retry later);
 * ED_ERROR (errno). */
int ed_handover_send(int chan, const ed_handover_msg_t *m, int fd);

/* Receives one message into m (with MSG_CMSG_CLOEXEC): ED_OK with *len
 * the bytes, *fd the first descriptor (-1: none; further ones are
 * closed), *nfds how many came and *flags the recvmsg flags; ED_AGAIN;
 * ED_DONE when the peer closed; ED_ERROR (errno). */
int ed_handover_recv(int chan, ed_handover_msg_t *m, size_t *len, int *fd,
                     int *nfds, int *flags);

/* Worker: this process's end of its channel (-1: none) and generation,
 * set between fork and ed_worker_main. */
extern int      ed_handover_chan;
extern unsigned ed_handover_generation;

/* Worker, quitting with handover: hands fd over with what m says of its
 * connection (type, generation and id are filled in). ED_OK (the caller
 * closes its copy), ED_AGAIN (the channel is full: keep the connection,
 * it is asked again once the channel is writable), ED_ERROR. */
int ed_handover_give(ed_worker_t *w, int fd, ed_handover_msg_t *m);

/* Worker (ed_worker.c): the channel may take messages again: sends the
 * HANDOFF_DONE that waits and asks every connection again. */
void ed_handover_resume(ed_worker_t *w);

#endif /* ED_HANDOVER_H */
