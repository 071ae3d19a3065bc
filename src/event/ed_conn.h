/* Accepted connections and the worker that owns them. */
#ifndef ED_CONN_H
#define ED_CONN_H

#include "ed_cycle.h"
#include "ed_stream.h"

#include <netinet/in.h>

union ed_peer_addr_u {
    struct sockaddr     sa;
    struct sockaddr_in  in;
    struct sockaddr_in6 in6;
};

/* The part of every connection the worker knows about: the stream, the
 * peer, and a place in the worker's list for graceful shutdown. */
struct ed_conn_s {
    ed_stream_t     stream;
    ed_conn_t      *prev;
    ed_conn_t      *next;
    ed_listener_t  *ls;
    ed_peer_addr_t  peer;      /* family AF_UNIX: no address */
    /* For the owner (in what would be padding): when the connection
     * last went idle, the low 32 bits of ed_current_msec (differences
     * are right for 49 days). */
    uint32_t        idle_since;
    /* Asked to stop (graceful shutdown): close now if idle, else finish
     * the request in flight and close. */
    void          (*shutdown)(ed_conn_t *c);
};

struct ed_worker_s {
    int             id;
    ed_cycle_t     *cycle;
    ed_loop_t      *loop;
    ed_buf_pool_t   bufs;        /* read buffers */
    ed_conn_t       conns;       /* list head (sentinel) */
    size_t          nconns;
    size_t          max_conns;
    ed_event_t     *accept_evs;  /* one per listener, in cycle order */
    size_t          naccept;
    unsigned        accepting:1;
    unsigned        quitting:1;
    unsigned        terminating:1;
    uint64_t        accepted;
    uint64_t        accept_empty; /* wake-ups that accepted nothing */
    ed_timer_t      quit_timer;
    /* The handover to the new generation at a reload (ed_handover.c):
     * the channel to the master, and while quitting with a handover,
     * the generation the connections go to (0: none). */
    ed_event_t      chan;
    unsigned        handover_gen;
    unsigned        handover_blocked:1;  /* the channel is full */
    unsigned        handover_done_sent:1;
    uint32_t        handover_taken;      /* TAKEN not yet sent */
    uint32_t        handed;              /* before HANDOFF_DONE */
    uint32_t        handed_late;         /* after it */
    uint32_t        handover_closed;     /* idle ones closed instead */
    ed_timer_t      handover_timer;
    /* A SIGCHLD came through the signalfd (the cgi module reaps its
     * processes there on kernels without pidfd); NULL: ignored. */
    void          (*on_child)(ed_worker_t *w);
};

extern ed_worker_t *ed_worker;  /* this process's worker, or NULL */

/* Whether a quitting worker may end: no connection left, and the end of
 * its handover told to the master (HANDOFF_DONE sent: a full channel
 * may hold it back after the last connection went). */
#define ed_worker_may_end(w)                                             \
    ((w)->nconns == 0 && (!(w)->handover_gen || (w)->handover_done_sent))

/* Links a connection into the worker's list. */
void ed_conn_link(ed_conn_t *c);
/* Unlinks it; in a quitting worker, the last one ends the loop. */
void ed_conn_unlink(ed_conn_t *c);
/* Starts accepting on every listener of the worker's cycle.
 * ED_OK or ED_ERROR. */
int ed_accept_start(ed_worker_t *w);
/* Graceful shutdown: accepts what waits in the queues of this worker's
 * own reuseport sockets, which may close with this copy (fewer workers
 * after a reload); what is queued there would be reset. */
void ed_accept_drain(ed_worker_t *w);
/* Stops accepting (max_connections reached or shutdown). close_fds:
 * also close this process's copies of the listening sockets. */
void ed_accept_stop(ed_worker_t *w, bool close_fds);
/* Text form of a peer ("127.0.0.1"); returns the length written. */
size_t ed_peer_text(const ed_peer_addr_t *peer, char *buf, size_t size);

#endif /* ED_CONN_H */
