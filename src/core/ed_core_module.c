/* The core module: process-level keys of the main level (workers, logs,
 * pid file, events). */
#include "ed_cycle.h"

static const char *ed_core_set_workers(ed_conf_t *cf, const ed_key_t *key,
                                       ed_node_t *node, void *conf);
static const char *ed_core_set_error_log(ed_conf_t *cf, const ed_key_t *key,
                                         ed_node_t *node, void *conf);

static const ed_conf_bounds_t ed_core_restarts_bounds = { 0, 1000000 };
static const ed_conf_bounds_t ed_core_conns_bounds = { 1, 1000000 };
static const ed_conf_bounds_t ed_core_backlog_bounds = { 1, 65535 };

static const ed_conf_enum_t ed_core_accept_enum[] = {
    { "exclusive", ED_ACCEPT_EXCLUSIVE },
    { "reuseport", ED_ACCEPT_REUSEPORT },
    { "shared", ED_ACCEPT_SHARED },
    { NULL, 0 }
};

#define ED_CORE_KEY(name, flags, set, field, arg, def)                       \
    { name, ED_CTX_MAIN, flags, set, ED_CONF_MAIN,                           \
      offsetof(ed_core_conf_t, field), arg, def }

#define ED_EVENTS_KEY(name, set, field, arg, def)                            \
    { name, ED_CTX_MAIN, ED_KEY_INT, set, ED_CONF_MAIN,                      \
      offsetof(ed_core_events_t, field), arg, def }

/* The keys of the `events:` block. */
const ed_key_t ed_core_events_keys[] = {
    ED_EVENTS_KEY("max_connections", ed_conf_set_int, max_connections,
                  &ed_core_conns_bounds, "10000"),
    ED_EVENTS_KEY("accept", ed_conf_set_enum, accept, ed_core_accept_enum,
                  "exclusive"),
    ED_EVENTS_KEY("backlog", ed_conf_set_int, backlog,
                  &ed_core_backlog_bounds, "511"),
    ED_EVENTS_KEY("handover", ed_conf_set_bool, handover, NULL, "true"),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static const ed_conf_block_t ed_core_events_block = {
    .name = "events",
    .keys = ed_core_events_keys,
    .size = sizeof(ed_core_events_t),
    .expect = "expected a mapping",
};

static const ed_key_t ed_core_keys[] = {
    ED_CORE_KEY("workers", ED_KEY_INT, ed_core_set_workers, workers, NULL,
                "auto"),
    ED_CORE_KEY("max_restarts", ED_KEY_INT, ed_conf_set_int, max_restarts,
                &ed_core_restarts_bounds, "100"),
    ED_CORE_KEY("shutdown_timeout", ED_KEY_MSEC, ed_conf_set_msec,
                shutdown_timeout, NULL, "10s"),
    ED_CORE_KEY("drain_delay", ED_KEY_MSEC, ed_conf_set_msec, drain_delay,
                NULL, "0s"),
    ED_CORE_KEY("pid_file", ED_KEY_STR, ed_conf_set_path, pid_file, NULL,
                ED_PID_PATH),
    ED_CORE_KEY("daemon", ED_KEY_INT, ed_conf_set_bool, daemon, NULL,
                "false"),
    ED_CORE_KEY("user", ED_KEY_STR, ed_conf_set_str, user, NULL, NULL),
    ED_CORE_KEY("worker_core_dumps", ED_KEY_INT, ed_conf_set_bool,
                worker_core_dumps, NULL, "false"),
    ED_CORE_KEY("error_log", ED_KEY_STR, ed_core_set_error_log, error_log,
                NULL, NULL),
    ED_CORE_KEY("events", ED_KEY_BLOCK, ed_conf_set_block, events,
                &ed_core_events_block, NULL),
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

static int ed_core_postconf(ed_conf_t *cf);

ed_module_t ed_core_module = {
    .name = "core",
    .keys = ed_core_keys,
    .conf_size = { sizeof(ed_core_conf_t), 0, 0, 0 },
    .postconf = ed_core_postconf,
};

static const char *
ed_core_set_workers(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                    void *conf)
{
    ed_core_conf_t *ccf = conf;
    int64_t         n;

    ed_unused(cf);
    ed_unused(key);
    if (node->type != ED_NODE_SCALAR) {
        return "expected a number or \"auto\"";
    }
    if (strcmp(node->value.data, "auto") == 0) {
        ccf->workers = 0;
        return NULL;
    }
    n = ed_atoi(node->value.data, node->value.len);
    if (n < 1 || n > 1024) {
        return "expected a number from 1 to 1024 or \"auto\"";
    }
    ccf->workers = (int)n;
    return NULL;
}

/* error_log: stderr | PATH | {path: PATH, level: LEVEL} */
static const char *
ed_core_set_error_log(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                      void *conf)
{
    ed_core_conf_t *ccf = conf;
    ed_node_t      *path, *level;
    size_t          i;
    int             lv;

    ed_unused(key);
    path = node;
    level = NULL;
    if (node->type == ED_NODE_MAP) {
        path = NULL;
        for (i = 0; i < node->n; i++) {
            const char *k = node->items[2 * i]->value.data;

            if (strcmp(k, "path") == 0) {
                path = node->items[2 * i + 1];
            } else if (strcmp(k, "level") == 0) {
                level = node->items[2 * i + 1];
            } else {
                ed_conf_error(cf, node->items[2 * i],
                              "unknown key \"%s\" in error_log; expected "
                              "\"path\" or \"level\"", k);
            }
        }
        if (path == NULL) {
            return "expected \"path\" in error_log";
        }
    }
    if (path->type != ED_NODE_SCALAR || path->value.len == 0) {
        return "expected \"stderr\", a path, or {path, level}";
    }
    if (level) {
        lv = level->type == ED_NODE_SCALAR ? ed_log_level(level->value.data)
                                           : -1;
        if (lv < 0) {
            ed_conf_error(cf, level,
                          "invalid error_log level \"%s\"; expected debug, "
                          "info, notice, warn, error, crit, alert or emerg",
                          level->type == ED_NODE_SCALAR ? level->value.data
                                                        : "");
            return NULL;
        }
        ccf->error_level = lv;
    }
    if (strcmp(path->value.data, "stderr") == 0) {
        ed_str_set(&ccf->error_log, "stderr");
        return NULL;
    }
    ccf->error_log.data = ed_conf_path(cf, path->value.data);
    if (ccf->error_log.data == NULL) {
        return "out of memory";
    }
    ccf->error_log.len = strlen(ccf->error_log.data);
    return NULL;
}

/* The pid file and the error log file must be creatable (checked, not
 * created: -t writes nothing). ED_OK or ED_ERROR (recorded). */
static int
ed_core_check_files(ed_conf_t *cf, ed_core_conf_t *ccf)
{
    ed_node_t  *root = cf->cycle->root, *n, def;
    int         rc = ED_OK;

    memset(&def, 0, sizeof(def));
    def.type = ED_NODE_SCALAR;
    n = ed_conf_get(root, "pid_file");
    if (n == NULL) {
        ed_str_set(&def.value, ED_PID_PATH);
        n = &def;
    }
    if (ccf->pid_file.data
        && ed_conf_check_file(cf, "pid file", ccf->pid_file.data,
                              "pid_file", n) != ED_OK)
    {
        rc = ED_ERROR;
    }
    if (ccf->error_log.data == NULL
        || strcmp(ccf->error_log.data, "stderr") == 0)
    {
        return rc;
    }
    n = ed_conf_get(root, "error_log");
    if (n && n->type == ED_NODE_MAP) {
        n = ed_conf_get(n, "path");
    }
    if (n == NULL) {
        ed_str_set(&def.value, ED_ERROR_LOG_PATH);
        n = &def;
    }
    if (ed_conf_check_file(cf, "error log", ccf->error_log.data, "error_log",
                           n) != ED_OK)
    {
        rc = ED_ERROR;
    }
    return rc;
}

static int
ed_core_postconf(ed_conf_t *cf)
{
    ed_core_conf_t *ccf = cf->confs[ED_CONF_MAIN][ed_core_module.index];
    long            n;

    if (ccf->events == NULL) {
        /* Not written: a block of defaults, as `events: {}` makes. */
        ccf->events = ed_pcalloc(cf->pool, sizeof(ed_core_events_t));
        if (ccf->events == NULL) {
            return ED_ERROR;
        }
        ed_conf_init_keys(ed_core_events_keys, ccf->events);
        if (ed_conf_defaults(cf, ed_core_events_keys, ED_CONF_MAIN,
                             ccf->events)
            != ED_OK)
        {
            return ED_ERROR;
        }
    }
    if (ccf->error_level == 0) {
        ccf->error_level = ED_LOG_INFO;
    }
    if (ccf->error_log.data == NULL) {
        /* stderr; a daemon's stderr is the compiled-in error log file
         * (operator.md), which the master opens for it. */
        ed_str_set(&ccf->error_log, "stderr");
    }
    if (ed_core_check_files(cf, ccf) != ED_OK) {
        return ED_ERROR;
    }
    cf->cycle->workers = ccf->workers;
    if (ccf->workers == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        cf->cycle->workers = n > 0 ? (int)n : 1;
    }
    return ED_OK;
}
