/* The status module: `status: prometheus | json | html` answers with the
 * server's counters summed over every worker (ed_stats.h) and the state
 * of each server of the named upstream groups. */
#include "ed_http_explain.h"
#include "ed_http_upstream.h"
#include "ed_http_cache.h"
#include "ed_stats.h"

enum { ED_STATUS_PROMETHEUS = 1, ED_STATUS_JSON, ED_STATUS_HTML };

typedef struct {
    int format;   /* ED_STATUS_*, ED_CONF_UNSET when not configured */
} ed_http_status_conf_t;

typedef struct {
    ed_array_t groups;   /* ed_http_upstream_t *, in config order */
} ed_http_status_main_conf_t;

/* The counters of one moment. */
typedef struct {
    uint64_t uptime;
    uint64_t reloads;
    uint64_t restarts;
    uint64_t workers;
    uint64_t accepted;
    uint64_t accept_empty;
    uint64_t proxy_protocol_errors;
    int64_t  active;
    int64_t  states[ED_STATS_STATES];
    uint64_t requests;
    uint64_t responses[5];
    uint64_t bytes_in;
    uint64_t bytes_out;
    struct {
        uint64_t requests[ED_STATS_PROTOS];
        uint64_t connections[2];
        uint64_t refused_streams;
        uint64_t resets_received;
        uint64_t goaway[ED_STATS_GOAWAY_CODES];
        uint64_t floods[ED_STATS_FLOODS];
        int64_t  connections_active;
        int64_t  streams_active;
    } v2;
    /* cgi (fastcgi-cgi.md): scripts running, spawned, refused at
     * max_processes, timed out. */
    struct {
        int64_t  active;
        uint64_t spawned;
        uint64_t refused;
        uint64_t timeouts;
    } cgi;
    /* The master's, for a fleet. */
    uint64_t generation;
    uint64_t reload_failures;
    uint64_t draining;
    int64_t  last_reload;
    char     sha256[65];
} ed_http_status_t;

static int ed_http_status_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_status_postconf(ed_conf_t *cf);
static int ed_http_status_explain(ed_explain_t *ex);

static const ed_conf_enum_t ed_http_status_formats[] = {
    { "prometheus", ED_STATUS_PROMETHEUS },
    { "json", ED_STATUS_JSON },
    { "html", ED_STATUS_HTML },
    { NULL, 0 }
};

static const ed_key_t ed_http_status_keys[] = {
    { "status", ED_CTX_LOCATION, ED_KEY_INT, ed_conf_set_enum, ED_CONF_LOC,
      offsetof(ed_http_status_conf_t, format), ed_http_status_formats,
      NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_status_module = {
    .name = "status",
    .keys = ed_http_status_keys,
    .conf_size = { sizeof(ed_http_status_main_conf_t), 0,
                   sizeof(ed_http_status_conf_t), 0 },
    .attach = ed_http_status_attach,
    .postconf = ed_http_status_postconf,
    .explain = ed_http_status_explain,
};

/* A bounded text buffer in the request's pool. */
typedef struct {
    char   *data;
    size_t  len;
    size_t  size;
} ed_http_status_buf_t;

static void ed_http_status_printf(ed_http_status_buf_t *b, const char *fmt,
                                  ...) __attribute__((format(printf, 2, 3)));

static void
ed_http_status_printf(ed_http_status_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int     n;

    if (b->len >= b->size) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->size - b->len, fmt, ap);
    va_end(ap);
    b->len = n < 0 ? b->size : ed_min(b->len + (size_t)n, b->size);
}

/* Appends s escaped for a Prometheus label, a JSON string or HTML. */
static void
ed_http_status_escape(ed_http_status_buf_t *b, const ed_str_t *s, int format)
{
    size_t        i;
    unsigned char c;

    for (i = 0; i < s->len; i++) {
        c = (unsigned char)s->data[i];
        if (format == ED_STATUS_HTML) {
            if (c == '<' || c == '>' || c == '&' || c == '"') {
                ed_http_status_printf(b, "&#%u;", c);
                continue;
            }
        } else if (c == '"' || c == '\\') {
            ed_http_status_printf(b, "\\%c", c);
            continue;
        } else if (c == '\n') {
            ed_http_status_printf(b, "\\n");
            continue;
        } else if (c < 0x20 && format == ED_STATUS_JSON) {
            ed_http_status_printf(b, "\\u%04x", c);
            continue;
        }
        ed_http_status_printf(b, "%c", c);
    }
}

static ed_http_status_main_conf_t *
ed_http_status_main(ed_cycle_t *cycle)
{
    return cycle->main_conf[ed_http_status_module.index];
}

/* The HTTP/2 counters of one slot (its gauges when live). */
static void
ed_http_status_v2_collect(ed_http_status_t *st, ed_stats_worker_t *w,
                          bool live)
{
    size_t j;

#define ED_V2SUM(f) st->v2.f += atomic_load_explicit(&w->v2.f,              \
                                                     memory_order_relaxed)
    for (j = 0; j < ED_STATS_PROTOS; j++) {
        ED_V2SUM(requests[j]);
    }
    ED_V2SUM(connections[0]);
    ED_V2SUM(connections[1]);
    ED_V2SUM(refused_streams);
    ED_V2SUM(resets_received);
    for (j = 0; j < ED_STATS_GOAWAY_CODES; j++) {
        ED_V2SUM(goaway[j]);
    }
    for (j = 0; j < ED_STATS_FLOODS; j++) {
        ED_V2SUM(floods[j]);
    }
    if (live) {
        ED_V2SUM(connections_active);
        ED_V2SUM(streams_active);
    }
#undef ED_V2SUM
}

static const char *ed_http_status_protos[ED_STATS_PROTOS] = {
    "HTTP/1.0", "HTTP/1.1", "HTTP/2.0"
};
static const char *ed_http_status_floods[ED_STATS_FLOODS] = {
    "resets", "refused", "continuations", "control", "window_updates"
};

/* The HTTP/2 metrics (spec/http2.md, Logs and status), Prometheus. */
static void
ed_http_status_v2_prometheus(ed_http_status_buf_t *b,
                             const ed_http_status_t *st)
{
    size_t i;

    ed_http_status_printf(b, "# HELP eddy_requests_by_protocol_total "
                          "Requests, by protocol.\n# TYPE "
                          "eddy_requests_by_protocol_total counter\n");
    for (i = 0; i < ED_STATS_PROTOS; i++) {
        ed_http_status_printf(b, "eddy_requests_by_protocol_total{protocol="
                              "\"%s\"} %llu\n", ed_http_status_protos[i],
                              (unsigned long long)st->v2.requests[i]);
    }
    ed_http_status_printf(b, "# HELP eddy_http2_connections_total HTTP/2 "
        "connections, by mode.\n# TYPE eddy_http2_connections_total counter\n"
        "eddy_http2_connections_total{mode=\"h2\"} %llu\n"
        "eddy_http2_connections_total{mode=\"h2c\"} %llu\n"
        "# HELP eddy_http2_connections_active HTTP/2 connections open.\n"
        "# TYPE eddy_http2_connections_active gauge\n"
        "eddy_http2_connections_active %lld\n"
        "# HELP eddy_http2_streams_active HTTP/2 streams holding a request."
        "\n# TYPE eddy_http2_streams_active gauge\n"
        "eddy_http2_streams_active %lld\n"
        "# HELP eddy_http2_refused_streams_total Streams refused over "
        "max_concurrent_streams.\n# TYPE eddy_http2_refused_streams_total "
        "counter\neddy_http2_refused_streams_total %llu\n"
        "# HELP eddy_http2_resets_received_total RST_STREAM frames from "
        "clients.\n# TYPE eddy_http2_resets_received_total counter\n"
        "eddy_http2_resets_received_total %llu\n"
        "# HELP eddy_http2_goaway_sent_total GOAWAY frames sent, by code.\n"
        "# TYPE eddy_http2_goaway_sent_total counter\n",
        (unsigned long long)st->v2.connections[0],
        (unsigned long long)st->v2.connections[1],
        (long long)ed_max(st->v2.connections_active, 0),
        (long long)ed_max(st->v2.streams_active, 0),
        (unsigned long long)st->v2.refused_streams,
        (unsigned long long)st->v2.resets_received);
    for (i = 0; i < ED_STATS_GOAWAY_CODES; i++) {
        if (st->v2.goaway[i]) {
            ed_http_status_printf(b, "eddy_http2_goaway_sent_total{code="
                                  "\"%zu\"} %llu\n", i,
                                  (unsigned long long)st->v2.goaway[i]);
        }
    }
    ed_http_status_printf(b, "# HELP eddy_http2_floods_total Connections "
                          "closed for a flood, by limit.\n# TYPE "
                          "eddy_http2_floods_total counter\n");
    for (i = 0; i < ED_STATS_FLOODS; i++) {
        ed_http_status_printf(b, "eddy_http2_floods_total{limit=\"%s\"} "
                              "%llu\n", ed_http_status_floods[i],
                              (unsigned long long)st->v2.floods[i]);
    }
}

/* The same under "http2" in JSON. */
static void
ed_http_status_v2_json(ed_http_status_buf_t *b, const ed_http_status_t *st)
{
    size_t i;

    ed_http_status_printf(b, "\"http2\":{\"requests_by_protocol\":{");
    for (i = 0; i < ED_STATS_PROTOS; i++) {
        ed_http_status_printf(b, "%s\"%s\":%llu", i ? "," : "",
                              ed_http_status_protos[i],
                              (unsigned long long)st->v2.requests[i]);
    }
    ed_http_status_printf(b, "},\"connections\":{\"h2\":%llu,\"h2c\":%llu},"
        "\"connections_active\":%lld,\"streams_active\":%lld,"
        "\"refused_streams\":%llu,\"resets_received\":%llu,"
        "\"goaway_sent\":{",
        (unsigned long long)st->v2.connections[0],
        (unsigned long long)st->v2.connections[1],
        (long long)ed_max(st->v2.connections_active, 0),
        (long long)ed_max(st->v2.streams_active, 0),
        (unsigned long long)st->v2.refused_streams,
        (unsigned long long)st->v2.resets_received);
    for (i = 0; i < ED_STATS_GOAWAY_CODES; i++) {
        ed_http_status_printf(b, "%s\"%zu\":%llu", i ? "," : "", i,
                              (unsigned long long)st->v2.goaway[i]);
    }
    ed_http_status_printf(b, "},\"floods\":{");
    for (i = 0; i < ED_STATS_FLOODS; i++) {
        ed_http_status_printf(b, "%s\"%s\":%llu", i ? "," : "",
                              ed_http_status_floods[i],
                              (unsigned long long)st->v2.floods[i]);
    }
    ed_http_status_printf(b, "}},");
}

/* Sums the live workers' slots (gauges and counters) and the retired
 * totals (counters only: an exited worker's connections are gone). */
static void
ed_http_status_collect(ed_http_status_t *st)
{
    ed_stats_worker_t *w;
    size_t             i, j;

    memset(st, 0, sizeof(*st));
    if (ed_stats == NULL) {
        return;
    }
    st->uptime = (uint64_t)(ed_current_msec - ed_stats->start_msec) / 1000;
    st->reloads = atomic_load_explicit(&ed_stats->reloads,
                                       memory_order_relaxed);
    st->restarts = atomic_load_explicit(&ed_stats->restarts,
                                        memory_order_relaxed);
    st->generation = atomic_load_explicit(&ed_stats->generation,
                                          memory_order_relaxed);
    st->reload_failures = atomic_load_explicit(&ed_stats->reload_failures,
                                               memory_order_relaxed);
    st->draining = atomic_load_explicit(&ed_stats->draining,
                                        memory_order_relaxed);
    st->last_reload = atomic_load_explicit(&ed_stats->last_reload,
                                           memory_order_relaxed);
    ed_stats_config_hex(st->sha256);
    for (i = 0; i <= ED_STATS_SLOTS; i++) {
        w = i < ED_STATS_SLOTS ? &ed_stats->workers[i] : &ed_stats->retired;
        if (i < ED_STATS_SLOTS) {
            if (atomic_load_explicit(&w->pid, memory_order_relaxed) <= 0) {
                continue;
            }
            st->workers++;
            st->active += atomic_load_explicit(&w->active,
                                               memory_order_relaxed);
            for (j = 1; j < ED_STATS_STATES; j++) {
                st->states[j] += atomic_load_explicit(&w->states[j],
                                                      memory_order_relaxed);
            }
        }
#define ED_SUM(f) st->f += atomic_load_explicit(&w->f, memory_order_relaxed)
        ED_SUM(accepted);
        ED_SUM(accept_empty);
        ED_SUM(proxy_protocol_errors);
        ED_SUM(requests);
        ED_SUM(bytes_in);
        ED_SUM(bytes_out);
        for (j = 0; j < 5; j++) {
            ED_SUM(responses[j]);
        }
        ed_http_status_v2_collect(st, w, i < ED_STATS_SLOTS);
        st->cgi.spawned += atomic_load_explicit(&w->cgi_spawned,
                                                memory_order_relaxed);
        st->cgi.refused += atomic_load_explicit(&w->cgi_refused,
                                                memory_order_relaxed);
        st->cgi.timeouts += atomic_load_explicit(&w->cgi_timeouts,
                                                 memory_order_relaxed);
        if (i < ED_STATS_SLOTS) {
            st->cgi.active += atomic_load_explicit(&w->cgi_active,
                                                   memory_order_relaxed);
        }
#undef ED_SUM
    }
}

typedef struct {
    const char *name;
    const char *type;
    const char *help;
} ed_http_status_metric_t;

static const ed_http_status_metric_t ed_http_status_metrics[] = {
    { "uptime_seconds", "gauge", "Seconds since the master started." },
    { "reloads_total", "counter", "Configuration reloads done." },
    { "worker_restarts_total", "counter",
      "Workers respawned after they died." },
    { "workers", "gauge", "Worker processes alive." },
    { "connections_accepted_total", "counter",
      "Client connections accepted." },
    { "accept_empty_wakeups_total", "counter",
      "Accept wake-ups that found no connection." },
    { "connections_active", "gauge", "Client connections open." },
    { "connections_reading", "gauge",
      "Connections waiting for or reading a request head." },
    { "connections_writing", "gauge", "Connections with a request in "
      "progress." },
    { "connections_idle", "gauge", "Keep-alive connections between "
      "requests." },
    { "requests_total", "counter", "Requests started." },
    { "received_bytes_total", "counter",
      "Bytes of request heads and Content-Length bodies received." },
    { "sent_bytes_total", "counter", "Bytes of responses sent." },
    { "proxy_protocol_errors_total", "counter",
      "Connections closed for a missing, malformed or late PROXY "
      "protocol header." },
    { "generation", "gauge",
      "Generation of workers serving: 1 at start, one more per reload." },
    { "reload_failures_total", "counter",
      "Reloads that kept the running configuration (errors in the new "
      "one, or its listeners or log could not be opened)." },
    { "draining", "gauge",
      "1 once QUIT started the drain (drain_delay): health answers 503." },
    { "last_reload_success_timestamp_seconds", "gauge",
      "Unix time of the last configuration loaded, at start or reload." },
};

/* Connections handed to a new generation at reloads (fleet.md): read
 * from the shared counters the master and workers add to. */
static void
ed_http_status_handover(ed_http_status_buf_t *b)
{
    static const char *result[] = { "adopted", "closed" };
    size_t             i;

    ed_http_status_printf(b, "# HELP eddy_handover_connections_total Idle "
                          "connections handed to a new generation at "
                          "reloads: adopted, or closed on the way.\n"
                          "# TYPE eddy_handover_connections_total counter\n");
    for (i = 0; i < 2; i++) {
        ed_http_status_printf(b, "eddy_handover_connections_total"
                              "{result=\"%s\"} %llu\n", result[i],
                              (unsigned long long)(ed_stats
                                  ? atomic_load_explicit(
                                        &ed_stats->handover[i],
                                        memory_order_relaxed)
                                  : 0));
    }
}

/* The caches: requests by status, size, entries, evictions. */
static void
ed_http_status_caches(ed_http_status_buf_t *b, int format)
{
    static const char *head[] = {
        "# HELP eddy_cache_requests_total Requests that used the cache, by "
        "cache status.\n# TYPE eddy_cache_requests_total counter\n",
        "# HELP eddy_cache_size_bytes Disk used by the entries the index "
        "counts.\n# TYPE eddy_cache_size_bytes gauge\n",
        "# HELP eddy_cache_entries Entries the index counts.\n"
        "# TYPE eddy_cache_entries gauge\n",
        "# HELP eddy_cache_evictions_total Entries removed for room or "
        "disuse.\n# TYPE eddy_cache_evictions_total counter\n",
    };
    static const char *name[] = { "", "cache_size_bytes", "cache_entries",
                                  "cache_evictions_total" };
    ed_http_cache_t **all;
    uint64_t          v[3];
    size_t            i, j, n, pass;
    char              low[16];

    all = ed_http_cache_all(ed_worker->cycle, &n);
    if (format == ED_STATUS_JSON) {
        ed_http_status_printf(b, "\"caches\":{");
        for (i = 0; i < n; i++) {
            ed_http_cache_index_stats(all[i]->zone, &v[1], &v[0], &v[2]);
            ed_http_status_printf(b, "%s\"", i ? "," : "");
            ed_http_status_escape(b, &all[i]->name, ED_STATUS_JSON);
            ed_http_status_printf(b, "\":{\"requests\":{");
            for (j = 0; j < ED_CACHE_STATUSES; j++) {
                ed_strlow(low, ed_http_cache_statuses[j],
                          strlen(ed_http_cache_statuses[j]) + 1);
                ed_http_status_printf(b, "%s\"%s\":%llu", j ? "," : "",
                    low, (unsigned long long)
                             ed_http_cache_requests(all[i]->zone, j));
            }
            ed_http_status_printf(b, "},\"size_bytes\":%llu,\"entries\":"
                                  "%llu,\"evictions\":%llu}",
                                  (unsigned long long)v[0],
                                  (unsigned long long)v[1],
                                  (unsigned long long)v[2]);
        }
        ed_http_status_printf(b, "},");
        return;
    }
    if (n == 0) {
        return;
    }
    for (pass = 0; pass < 4; pass++) {
        ed_http_status_printf(b, "%s", head[pass]);
        for (i = 0; i < n; i++) {
            ed_http_cache_index_stats(all[i]->zone, &v[1], &v[0], &v[2]);
            if (pass > 0) {
                ed_http_status_printf(b, "eddy_%s{cache=\"", name[pass]);
                ed_http_status_escape(b, &all[i]->name, ED_STATUS_PROMETHEUS);
                ed_http_status_printf(b, "\"} %llu\n",
                                      (unsigned long long)v[pass - 1]);
                continue;
            }
            for (j = 0; j < ED_CACHE_STATUSES; j++) {
                ed_strlow(low, ed_http_cache_statuses[j],
                          strlen(ed_http_cache_statuses[j]) + 1);
                ed_http_status_printf(b, "eddy_cache_requests_total{cache="
                                      "\"");
                ed_http_status_escape(b, &all[i]->name, ED_STATUS_PROMETHEUS);
                ed_http_status_printf(b, "\",status=\"%s\"} %llu\n", low,
                    (unsigned long long)ed_http_cache_requests(all[i]->zone,
                                                               j));
            }
        }
    }
}

static void
ed_http_status_prometheus(ed_http_status_buf_t *b, const ed_http_status_t *st,
                          ed_array_t *groups)
{
    static const ed_msec_t     bounds[] = ED_HTTP_UPSTREAM_TIME_BOUNDS;
    ed_http_upstream_t       **g = groups->elts;
    ed_http_upstream_server_t *s;
    ed_http_upstream_shm_t    *shm;
    uint64_t                   v[18], cum;
    ed_str_t                   label;
    size_t                     i, j, k, pass;

    v[0] = st->uptime;
    v[1] = st->reloads;
    v[2] = st->restarts;
    v[3] = st->workers;
    v[4] = st->accepted;
    v[5] = st->accept_empty;
    v[6] = (uint64_t)ed_max(st->active, 0);
    v[7] = (uint64_t)ed_max(st->states[ED_STATS_READING], 0);
    v[8] = (uint64_t)ed_max(st->states[ED_STATS_WRITING], 0);
    v[9] = (uint64_t)ed_max(st->states[ED_STATS_IDLE], 0);
    v[10] = st->requests;
    v[11] = st->bytes_in;
    v[12] = st->bytes_out;
    v[13] = st->proxy_protocol_errors;
    v[14] = st->generation;
    v[15] = st->reload_failures;
    v[16] = st->draining;
    v[17] = (uint64_t)ed_max(st->last_reload, 0);
    ed_http_status_printf(b, "# HELP eddy_build_info The version of this "
                          "eddy binary.\n# TYPE eddy_build_info gauge\n"
                          "eddy_build_info{version=\"");
    ed_str_set(&label, ED_VERSION);
    ed_http_status_escape(b, &label, ED_STATUS_PROMETHEUS);
    ed_http_status_printf(b, "\"} 1\n# HELP eddy_config_info The "
                          "configuration in force: the sha256 that eddy -T "
                          "prints for it.\n# TYPE eddy_config_info gauge\n"
                          "eddy_config_info{sha256=\"%s\"} 1\n", st->sha256);
    for (i = 0; i < ed_nelems(ed_http_status_metrics); i++) {
        const ed_http_status_metric_t *m = &ed_http_status_metrics[i];

        ed_http_status_printf(b, "# HELP eddy_%s %s\n# TYPE eddy_%s %s\n"
                              "eddy_%s %llu\n", m->name, m->help, m->name,
                              m->type, m->name, (unsigned long long)v[i]);
    }
    ed_http_status_printf(b, "# HELP eddy_responses_total Responses sent, "
                          "by status class.\n# TYPE eddy_responses_total "
                          "counter\n");
    for (i = 0; i < 5; i++) {
        ed_http_status_printf(b, "eddy_responses_total{class=\"%zuxx\"} "
                              "%llu\n", i + 1,
                              (unsigned long long)st->responses[i]);
    }
    ed_http_status_v2_prometheus(b, st);
    ed_http_status_printf(b, "# HELP eddy_cgi_processes_active cgi scripts "
        "running.\n# TYPE eddy_cgi_processes_active gauge\n"
        "eddy_cgi_processes_active %lld\n"
        "# HELP eddy_cgi_processes_spawned_total cgi scripts started.\n"
        "# TYPE eddy_cgi_processes_spawned_total counter\n"
        "eddy_cgi_processes_spawned_total %llu\n"
        "# HELP eddy_cgi_processes_refused_total cgi requests refused at "
        "max_processes (503).\n"
        "# TYPE eddy_cgi_processes_refused_total counter\n"
        "eddy_cgi_processes_refused_total %llu\n"
        "# HELP eddy_cgi_processes_timeouts_total cgi scripts killed at "
        "their timeout.\n# TYPE eddy_cgi_processes_timeouts_total counter\n"
        "eddy_cgi_processes_timeouts_total %llu\n",
        (long long)ed_max(st->cgi.active, 0),
        (unsigned long long)st->cgi.spawned,
        (unsigned long long)st->cgi.refused,
        (unsigned long long)st->cgi.timeouts);
    ed_http_status_handover(b);
    ed_http_status_caches(b, ED_STATUS_PROMETHEUS);
    if (groups->nelts == 0) {
        return;
    }
    /* One family at a time, as the text format wants. */
    for (pass = 0; pass < 4; pass++) {
        static const char *head[] = {
            "# HELP eddy_upstream_requests_total Attempts sent to the "
            "server.\n# TYPE eddy_upstream_requests_total counter\n",
            "# HELP eddy_upstream_failures_total Attempts that failed.\n"
            "# TYPE eddy_upstream_failures_total counter\n",
            "# HELP eddy_upstream_up Whether the server may be chosen "
            "(1) or is down (0).\n# TYPE eddy_upstream_up gauge\n",
            "# HELP eddy_upstream_response_time_seconds Time to the "
            "response head (or the failure) of attempts.\n"
            "# TYPE eddy_upstream_response_time_seconds histogram\n",
        };

        ed_http_status_printf(b, "%s", head[pass]);
        for (i = 0; i < groups->nelts; i++) {
            for (j = 0; j < g[i]->nservers; j++) {
                static const char *name[] = {
                    "upstream_requests_total", "upstream_failures_total",
                    "upstream_up", "upstream_response_time_seconds_bucket"
                };

                s = &g[i]->servers[j];
                shm = s->shm;
                if (shm == NULL) {
                    continue;
                }
                for (k = 0, cum = 0; k < (pass == 3 ? 12 : 1); k++) {
                    ed_http_status_printf(b, "eddy_%s{upstream=\"",
                                          name[pass]);
                    ed_http_status_escape(b, &g[i]->name,
                                          ED_STATUS_PROMETHEUS);
                    ed_http_status_printf(b, "\",server=\"");
                    ed_http_status_escape(b, &s->name, ED_STATUS_PROMETHEUS);
                    if (pass == 0) {
                        v[0] = atomic_load(&shm->requests);
                    } else if (pass == 1) {
                        v[0] = atomic_load(&shm->failures);
                    } else if (pass == 2) {
                        v[0] = ed_http_upstream_available(s,
                                                          ed_current_msec);
                    } else {
                        cum += atomic_load(&shm->time_hist[k]);
                        v[0] = cum;
                        if (k < 11) {
                            ed_http_status_printf(b, "\",le=\"%g",
                                                  (double)bounds[k] / 1000);
                        } else {
                            ed_http_status_printf(b, "\",le=\"+Inf");
                        }
                    }
                    ed_http_status_printf(b, "\"} %llu\n",
                                          (unsigned long long)v[0]);
                }
                if (pass != 3) {
                    continue;
                }
                for (k = 0; k < 2; k++) {
                    ed_http_status_printf(b, "eddy_upstream_response_time_"
                                          "seconds_%s{upstream=\"",
                                          k ? "count" : "sum");
                    ed_http_status_escape(b, &g[i]->name,
                                          ED_STATUS_PROMETHEUS);
                    ed_http_status_printf(b, "\",server=\"");
                    ed_http_status_escape(b, &s->name, ED_STATUS_PROMETHEUS);
                    if (k) {
                        ed_http_status_printf(b, "\"} %llu\n",
                                              (unsigned long long)cum);
                    } else {
                        ed_http_status_printf(
                            b, "\"} %.3f\n",
                            (double)atomic_load(&shm->time_sum) / 1000);
                    }
                }
            }
        }
    }
}

static void
ed_http_status_json(ed_http_status_buf_t *b, const ed_http_status_t *st,
                    ed_array_t *groups)
{
    static const ed_msec_t     bounds[] = ED_HTTP_UPSTREAM_TIME_BOUNDS;
    ed_http_upstream_t       **g = groups->elts;
    ed_http_upstream_server_t *s;
    ed_http_upstream_shm_t    *shm;
    size_t                     i, j, k;
    bool                       first;

    ed_http_status_printf(b, "{\"uptime\":%llu,\"reloads\":%llu,"
        "\"worker_restarts\":%llu,\"workers\":%llu,"
        "\"connections\":{\"accepted\":%llu,\"active\":%lld,"
        "\"reading\":%lld,\"writing\":%lld,\"idle\":%lld,"
        "\"accept_empty_wakeups\":%llu,\"proxy_protocol_errors\":%llu},",
        (unsigned long long)st->uptime, (unsigned long long)st->reloads,
        (unsigned long long)st->restarts, (unsigned long long)st->workers,
        (unsigned long long)st->accepted, (long long)st->active,
        (long long)st->states[ED_STATS_READING],
        (long long)st->states[ED_STATS_WRITING],
        (long long)st->states[ED_STATS_IDLE],
        (unsigned long long)st->accept_empty,
        (unsigned long long)st->proxy_protocol_errors);
    ed_http_status_printf(b, "\"requests\":{\"total\":%llu",
                          (unsigned long long)st->requests);
    for (i = 0; i < 5; i++) {
        ed_http_status_printf(b, ",\"%zuxx\":%llu", i + 1,
                              (unsigned long long)st->responses[i]);
    }
    ed_http_status_printf(b, "},\"bytes\":{\"in\":%llu,\"out\":%llu},",
                          (unsigned long long)st->bytes_in,
                          (unsigned long long)st->bytes_out);
    ed_http_status_v2_json(b, st);
    ed_http_status_printf(b, "\"cgi\":{\"processes_active\":%lld,"
                          "\"processes_spawned_total\":%llu,"
                          "\"processes_refused_total\":%llu,"
                          "\"processes_timeouts_total\":%llu},",
                          (long long)ed_max(st->cgi.active, 0),
                          (unsigned long long)st->cgi.spawned,
                          (unsigned long long)st->cgi.refused,
                          (unsigned long long)st->cgi.timeouts);
    ed_http_status_caches(b, ED_STATUS_JSON);
    ed_http_status_printf(b, "\"upstreams\":{");
    for (i = 0; i < groups->nelts; i++) {
        ed_http_status_printf(b, "%s\"", i ? "," : "");
        ed_http_status_escape(b, &g[i]->name, ED_STATUS_JSON);
        ed_http_status_printf(b, "\":[");
        first = true;
        for (j = 0; j < g[i]->nservers; j++) {
            s = &g[i]->servers[j];
            shm = s->shm;
            if (shm == NULL) {
                continue;
            }
            ed_http_status_printf(b, "%s{\"server\":\"", first ? "" : ",");
            first = false;
            ed_http_status_escape(b, &s->name, ED_STATUS_JSON);
            ed_http_status_printf(b, "\",\"requests\":%llu,\"failures\":%llu,"
                "\"state\":\"%s\",\"response_time_ms\":{",
                (unsigned long long)atomic_load(&shm->requests),
                (unsigned long long)atomic_load(&shm->failures),
                ed_http_upstream_available(s, ed_current_msec) ? "up"
                                                               : "down");
            for (k = 0; k < 12; k++) {
                if (k < 11) {
                    ed_http_status_printf(b, "\"%lld\":",
                                          (long long)bounds[k]);
                } else {
                    ed_http_status_printf(b, ",\"+Inf\":");
                }
                ed_http_status_printf(b, "%llu%s",
                    (unsigned long long)atomic_load(&shm->time_hist[k]),
                    k < 10 ? "," : "");
            }
            ed_http_status_printf(b, "},\"response_time_sum_ms\":%llu}",
                (unsigned long long)atomic_load(&shm->time_sum));
        }
        ed_http_status_printf(b, "]");
    }
    ed_http_status_printf(b, "}}\n");
}

static void
ed_http_status_html(ed_http_status_buf_t *b, const ed_http_status_t *st,
                    ed_array_t *groups)
{
    ed_http_upstream_t       **g = groups->elts;
    ed_http_upstream_server_t *s;
    ed_http_upstream_shm_t    *shm;
    uint64_t                   n;
    size_t                     i, j, k;

#define ED_ROW(name, v)                                                      \
    ed_http_status_printf(b, "<tr><td>%s</td><td>%lld</td></tr>\n", name,    \
                          (long long)(v))
    ed_http_status_printf(b, "<!DOCTYPE html>\n<html>\n<head><title>eddy "
                          "status</title></head>\n<body>\n<h1>eddy "
                          "status</h1>\n<table border=\"1\">\n");
    ED_ROW("uptime (s)", st->uptime);
    ED_ROW("reloads", st->reloads);
    ED_ROW("worker restarts", st->restarts);
    ED_ROW("workers", st->workers);
    ED_ROW("connections accepted", st->accepted);
    ED_ROW("connections active", st->active);
    ED_ROW("connections reading", st->states[ED_STATS_READING]);
    ED_ROW("connections writing", st->states[ED_STATS_WRITING]);
    ED_ROW("connections idle", st->states[ED_STATS_IDLE]);
    ED_ROW("accept wake-ups with nothing", st->accept_empty);
    ED_ROW("broken PROXY protocol headers", st->proxy_protocol_errors);
    ED_ROW("requests", st->requests);
    for (i = 0; i < 5; i++) {
        ed_http_status_printf(b, "<tr><td>responses %zuxx</td><td>%llu"
                              "</td></tr>\n", i + 1,
                              (unsigned long long)st->responses[i]);
    }
    ED_ROW("bytes in", st->bytes_in);
    ED_ROW("bytes out", st->bytes_out);
    ED_ROW("cgi processes active", ed_max(st->cgi.active, 0));
    ED_ROW("cgi processes spawned", st->cgi.spawned);
    ED_ROW("cgi processes refused", st->cgi.refused);
    ED_ROW("cgi processes timed out", st->cgi.timeouts);
#undef ED_ROW
    ed_http_status_printf(b, "</table>\n");
    if (groups->nelts) {
        ed_http_status_printf(b, "<h2>upstreams</h2>\n<table border=\"1\">\n"
                              "<tr><th>upstream</th><th>server</th>"
                              "<th>state</th><th>requests</th>"
                              "<th>failures</th><th>mean time (ms)</th>"
                              "</tr>\n");
    }
    for (i = 0; i < groups->nelts; i++) {
        for (j = 0; j < g[i]->nservers; j++) {
            s = &g[i]->servers[j];
            shm = s->shm;
            if (shm == NULL) {
                continue;
            }
            for (k = 0, n = 0; k < 12; k++) {
                n += atomic_load(&shm->time_hist[k]);
            }
            ed_http_status_printf(b, "<tr><td>");
            ed_http_status_escape(b, &g[i]->name, ED_STATUS_HTML);
            ed_http_status_printf(b, "</td><td>");
            ed_http_status_escape(b, &s->name, ED_STATUS_HTML);
            ed_http_status_printf(b, "</td><td>%s</td><td>%llu</td><td>%llu"
                "</td><td>%llu</td></tr>\n",
                ed_http_upstream_available(s, ed_current_msec) ? "up"
                                                               : "down",
                (unsigned long long)atomic_load(&shm->requests),
                (unsigned long long)atomic_load(&shm->failures),
                (unsigned long long)(n ? atomic_load(&shm->time_sum) / n
                                       : 0));
        }
    }
    if (groups->nelts) {
        ed_http_status_printf(b, "</table>\n");
    }
    ed_http_status_printf(b, "</body>\n</html>\n");
}

static int
ed_http_status_handler(ed_http_request_t *r)
{
    static const ed_str_t types[] = {
        ed_string(""),
        ed_string("text/plain; version=0.0.4; charset=utf-8"),
        ed_string("application/json"),
        ed_string("text/html; charset=utf-8"),
    };
    ed_http_status_conf_t *scf = ed_http_loc_conf(r, ed_http_status_module);
    ed_array_t            *groups;
    ed_http_upstream_t   **g;
    ed_http_status_buf_t   b;
    ed_http_status_t       st;
    size_t                 i, j, n = 0;

    if (r->head.method_id != ED_HTTP_GET && r->head.method_id != ED_HTTP_HEAD)
    {
        if (ed_http_add_header(r, "Allow", 5, "GET, HEAD", 9) != ED_OK) {
            return 500;
        }
        return 405;
    }
    groups = &ed_http_status_main(ed_worker->cycle)->groups;
    g = groups->elts;
    /* Room for everything: the fixed part, then per server its 17
     * Prometheus lines with both names escaped (JSON escapes grow a byte
     * to six at most). */
    for (i = 0; i < groups->nelts; i++) {
        for (j = 0; j < g[i]->nservers; j++) {
            n += 2048 + 17 * 6 * (g[i]->name.len + g[i]->servers[j].name.len);
        }
    }
    b.size = 8192 + n;
    b.len = 0;
    b.data = ed_pnalloc(r->pool, b.size);
    if (b.data == NULL) {
        return 500;
    }
    ed_http_status_collect(&st);
    if (scf->format == ED_STATUS_PROMETHEUS) {
        ed_http_status_prometheus(&b, &st, groups);
    } else if (scf->format == ED_STATUS_JSON) {
        ed_http_status_json(&b, &st, groups);
    } else {
        ed_http_status_html(&b, &st, groups);
    }
    if (ed_http_add_header(r, "Cache-Control", 13, "no-store", 8) != ED_OK) {
        return 500;
    }
    return ed_http_send_response(r, 200, &types[scf->format], b.data, b.len)
                   == ED_OK
               ? ED_OK
               : ED_ERROR;
}

static int
ed_http_status_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_status_conf_t *scf = ed_http_conf_at(loc, ed_http_status_module);

    if (scf->format == ED_CONF_UNSET) {
        return ED_OK;
    }
    if (loc->handler) {
        ed_conf_error(cf, loc->node, "a location has one content handler; "
                      "\"status\" conflicts with another one");
        return ED_ERROR;
    }
    loc->handler = ed_http_status_handler;
    return ED_OK;
}

/* Finds the named upstream groups (those under `upstreams`, includes
 * merged); groups made for a URL in `pass` have no name to report. */
static int
ed_http_status_postconf(ed_conf_t *cf)
{
    ed_http_status_main_conf_t *smcf = ed_http_status_main(cf->cycle);
    ed_http_upstream_t         *ups, **slot;
    ed_node_t                  *map;
    size_t                      i;

    if (ed_array_init(&smcf->groups, cf->pool, 4,
                      sizeof(ed_http_upstream_t *)) != ED_OK)
    {
        return ED_ERROR;
    }
    map = ed_conf_get(cf->cycle->root, "upstreams");
    if (map == NULL || map->type != ED_NODE_MAP) {
        return ED_OK;
    }
    for (i = 0; i < map->n; i++) {
        ups = ed_http_upstream_find(cf, &map->items[2 * i]->value);
        if (ups == NULL) {
            continue;
        }
        slot = ed_array_push(&smcf->groups);
        if (slot == NULL) {
            return ED_ERROR;
        }
        *slot = ups;
    }
    return ED_OK;
}

/* eddy explain: the page and its format. */
static int
ed_http_status_explain(ed_explain_t *ex)
{
    static const char     *formats[] = { "", "prometheus", "json", "html" };
    ed_http_status_conf_t *scf = ed_http_conf_at(ex->loc,
                                                 ed_http_status_module);
    const char            *f;

    if (ex->loc->handler != ed_http_status_handler) {
        return ED_DECLINED;
    }
    f = formats[scf->format >= 1 && scf->format <= 3 ? scf->format : 0];
    if (ex->phase == ED_EXPLAIN_HANDLER) {
        ed_explain_handler(ex, "status");
        ed_explain_set(ex, "format", f,
                       ed_explain_from(ex, NULL, "status", NULL, 0));
        return ED_OK;
    }
    if (ex->phase != ED_EXPLAIN_RESULT) {
        return ED_DECLINED;
    }
    ed_explain_result(ex, 200, "the server's counters as %s (read from "
                      "the running server's shared memory)", f);
    return ED_OK;
}
