/* Server counters in shared memory, for the status module: one slot per
 * live worker (written only by that worker, read by any), the totals of
 * workers that exited, and the master's own counters. Made once by the
 * master, so they survive reloads. */
#ifndef ED_STATS_H
#define ED_STATS_H

#include "ed_core.h"

#include <stdatomic.h>

/* Worker processes alive at once, old generations draining included;
 * a worker beyond it counts nothing. */
#define ED_STATS_SLOTS 256

/* The state of a client connection, for the gauges. */
enum {
    ED_STATS_NONE = 0,
    ED_STATS_READING,   /* waiting for or reading a request head */
    ED_STATS_WRITING,   /* a request in progress */
    ED_STATS_IDLE,      /* keep-alive, between requests */
    ED_STATS_STATES
};

/* HTTP/2 (spec/http2.md, Logs and status). Counters first, the two
 * gauges last. */
enum {
    ED_STATS_PROTO_10 = 0,   /* requests_by_protocol: HTTP/1.0 */
    ED_STATS_PROTO_11,
    ED_STATS_PROTO_20,
    ED_STATS_PROTOS
};

/* GOAWAY codes 0..13 (RFC 9113 7); others count in the last. */
#define ED_STATS_GOAWAY_CODES 15

enum {
    ED_STATS_FLOOD_RESETS = 0,
    ED_STATS_FLOOD_REFUSED,
    ED_STATS_FLOOD_CONTINUATIONS,
    ED_STATS_FLOOD_CONTROL,
    ED_STATS_FLOOD_WINDOW_UPDATES,
    ED_STATS_FLOODS
};

typedef struct {
    _Atomic uint64_t requests[ED_STATS_PROTOS];
    _Atomic uint64_t connections[2];      /* h2 (TLS), h2c */
    _Atomic uint64_t refused_streams;
    _Atomic uint64_t resets_received;
    _Atomic uint64_t goaway[ED_STATS_GOAWAY_CODES];
    _Atomic uint64_t floods[ED_STATS_FLOODS];
    _Atomic int64_t  connections_active;
    _Atomic int64_t  streams_active;
} ed_stats_v2_t;

typedef struct {
    _Alignas(64) _Atomic int32_t pid;  /* 0: free, -1: being spawned */
    _Atomic uint64_t accepted;
    _Atomic uint64_t accept_empty;     /* wake-ups that accepted nothing */
    _Atomic uint64_t proxy_protocol_errors; /* missing, malformed, late */
    _Atomic uint64_t requests;
    _Atomic uint64_t responses[5];     /* 1xx .. 5xx */
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    /* Gauges: only meaningful while the worker lives. */
    _Atomic int64_t  active;
    _Atomic int64_t  states[ED_STATS_STATES];
    ed_stats_v2_t    v2;
    /* cgi (fastcgi-cgi.md): scripts spawned, refused at max_processes,
     * timed out; and the gauge of those running. */
    _Atomic uint64_t cgi_spawned;
    _Atomic uint64_t cgi_refused;
    _Atomic uint64_t cgi_timeouts;
    _Atomic int64_t  cgi_active;
} ed_stats_worker_t;

typedef struct {
    ed_msec_t          start_msec;     /* the master's start, monotonic */
    _Atomic uint64_t   reloads;
    _Atomic uint64_t   restarts;
    /* The master's state, for the fleet metrics and the drain (written
     * only by the master). */
    _Atomic uint64_t   reload_failures;
    _Atomic uint32_t   generation;
    _Atomic uint32_t   draining;       /* QUIT's drain_delay is running */
    _Atomic int64_t    last_reload;    /* unix time of the last good load */
    /* The sha256 of the configuration in force, as -T prints it: a
     * sequence lock (odd while the master writes) over 32 bytes. */
    _Atomic uint32_t   config_seq;
    _Atomic uint64_t   config_sha256[4];
    /* The last $connection given: numbers are unique across workers and
     * generations, so a connection handed over keeps its own. */
    _Atomic uint64_t   connections;
    /* Connections handed over at reloads, by result: adopted by a new
     * worker, or closed on the way (ED_STATS_HANDOVER_*). */
    _Atomic uint64_t   handover[2];
    ed_stats_worker_t  retired;        /* sums of exited workers */
    ed_stats_worker_t  workers[ED_STATS_SLOTS];
} ed_stats_t;

/* NULL until ed_stats_init. */
extern ed_stats_t        *ed_stats;
/* This process's slot: a private one in the master (and when every
 * slot is taken), so updates never check for NULL. */
extern ed_stats_worker_t *ed_stats_me;

/* Only the owning process writes its slot: a relaxed load and store (no
 * locked instruction) is enough and keeps readers tear-free. */
#define ed_stats_add(field, n)                                               \
    atomic_store_explicit(&ed_stats_me->field,                               \
                          atomic_load_explicit(&ed_stats_me->field,          \
                                               memory_order_relaxed)         \
                              + (n),                                         \
                          memory_order_relaxed)

#define ed_stats_v2(field, n) ed_stats_add(v2.field, n)
enum { ED_STATS_HANDOVER_ADOPTED = 0, ED_STATS_HANDOVER_CLOSED };

/* Counts a handed over connection's result (any process). */
void ed_stats_handover(int result);
/* The next $connection number. */
uint64_t ed_stats_connection_number(void);

/* Master: maps the counters once (kept for the process's life). ED_OK or
 * ED_ERROR (errno). */
int ed_stats_init(void);
/* Master, before forking a worker: a zeroed slot, or NULL when full. */
ed_stats_worker_t *ed_stats_claim(void);
/* Master, after the fork: the slot belongs to pid (0: the fork failed,
 * the slot is free again). */
void ed_stats_bind(ed_stats_worker_t *slot, pid_t pid);
/* Worker, first thing after the fork: count into slot (may be NULL). */
void ed_stats_attach(ed_stats_worker_t *slot);
/* Master, when a worker was reaped: its counters go to the retired
 * totals, its gauges are dropped, the slot is free. */
void ed_stats_exited(pid_t pid);
/* Master: the configuration in force is the one whose -T dump hashes
 * to md (32 bytes); loaded now (the last good load's time). */
void ed_stats_config(const unsigned char *md);
/* Any process: the sha256 of the configuration in force, 64 hex digits
 * and a NUL, or "" when the master has not said. */
void ed_stats_config_hex(char *hex);
/* Whether the master is draining (QUIT with drain_delay): health answers
 * 503 and every response closes its connection. */
static inline bool
ed_stats_draining(void)
{
    return ed_stats
           && atomic_load_explicit(&ed_stats->draining, memory_order_relaxed);
}
/* Moves a connection's gauge from state cur to state next; returns
 * next, the connection's new state. */
unsigned ed_stats_state(unsigned cur, unsigned next);

#endif /* ED_STATS_H */
