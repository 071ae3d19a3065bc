/* The access log: combined, common, json or custom formats, per server
 * or location; buffered per worker, flushed every second, when full and
 * on exit; reopened on USR1. */
#include "ed_http.h"

#include <fcntl.h>

#define ED_ALOG_BUF   65536
#define ED_ALOG_FLUSH 1000

enum { ED_ALOG_COMBINED = 1, ED_ALOG_COMMON, ED_ALOG_JSON, ED_ALOG_CUSTOM };

/* One open log file, shared by every location that names its path. */
typedef struct ed_alog_file_s ed_alog_file_t;
struct ed_alog_file_s {
    ed_alog_file_t *next;
    char           *path;
    ed_node_t      *node;    /* where first named (line 0: default) */
    int             fd;
    char           *buf;     /* the worker's buffer */
    size_t          len;
};

typedef struct {
    ed_alog_file_t     *file;   /* NULL: off */
    int                 format;
    ed_http_template_t *tpl;
} ed_alog_t;

typedef struct {
    ed_alog_t *log;
} ed_alog_conf_t;

typedef struct {
    ed_alog_file_t *files;
} ed_alog_main_conf_t;

static const char *ed_alog_set(ed_conf_t *cf, const ed_key_t *key,
                               ed_node_t *node, void *conf);
static int ed_alog_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_alog_init_worker(ed_worker_t *w);
static void ed_alog_exit_worker(ed_worker_t *w);
static void ed_alog_reopen(ed_worker_t *w);
static void ed_alog_reopen_master(ed_cycle_t *cycle);
static int ed_alog_postconf(ed_conf_t *cf);

static const ed_key_t ed_alog_keys[] = {
    { "access_log", ED_CTX_ANY_HTTP, ED_KEY_PTR | ED_KEY_INHERIT, ed_alog_set,
      ED_CONF_LOC, offsetof(ed_alog_conf_t, log), NULL, ED_HTTP_LOG_PATH },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_access_log_module = {
    .name = "access_log",
    .keys = ed_alog_keys,
    .conf_size = { sizeof(ed_alog_main_conf_t), 0, sizeof(ed_alog_conf_t), 0 },
    .attach = ed_alog_attach,
    .postconf = ed_alog_postconf,
    .init_worker = ed_alog_init_worker,
    .exit_worker = ed_alog_exit_worker,
    .reopen = ed_alog_reopen,
    .reopen_master = ed_alog_reopen_master,
};

static ed_alog_t  ed_alog_off;
static ed_timer_t ed_alog_timer;
static ed_loop_t *ed_alog_loop;

static ed_alog_main_conf_t *
ed_alog_main(ed_cycle_t *cycle)
{
    return cycle->main_conf[ed_http_access_log_module.index];
}

/* Opens (once per path) the file a log writes to. */
static ed_alog_file_t *
ed_alog_file(ed_conf_t *cf, ed_node_t *node)
{
    ed_alog_main_conf_t *amcf = ed_alog_main(cf->cycle);
    ed_alog_file_t      *f;
    char                *path;

    path = ed_conf_path(cf, node->value.data);
    if (path == NULL) {
        return NULL;
    }
    for (f = amcf->files; f; f = f->next) {
        if (strcmp(f->path, path) == 0) {
            return f;
        }
    }
    f = ed_pcalloc(cf->pool, sizeof(ed_alog_file_t));
    if (f == NULL) {
        return NULL;
    }
    f->path = path;
    f->node = node;
    f->fd = -1;
    f->next = amcf->files;
    amcf->files = f;
    return f;
}

/* access_log: PATH | off | {path: PATH, format: NAME or "custom $vars"} */
static const char *
ed_alog_set(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node, void *conf)
{
    ed_alog_t  *log;
    ed_node_t  *path = node, *format = NULL;
    const char *err, *f;
    size_t      i;

    if (node->type == ED_NODE_SCALAR && strcmp(node->value.data, "off") == 0)
    {
        *(ed_alog_t **)((char *)conf + key->offset) = &ed_alog_off;
        return NULL;
    }
    if (node->type == ED_NODE_MAP) {
        path = NULL;
        for (i = 0; i < node->n; i++) {
            ed_node_t *k = node->items[2 * i];

            if (strcmp(k->value.data, "path") == 0) {
                path = node->items[2 * i + 1];
            } else if (strcmp(k->value.data, "format") == 0) {
                format = node->items[2 * i + 1];
            } else {
                ed_conf_error(cf, k, "unknown key \"%s\" in access_log; "
                              "expected \"path\" or \"format\"",
                              k->value.data);
            }
        }
        if (path == NULL) {
            return "expected \"path\" in access_log";
        }
    }
    if (path->type != ED_NODE_SCALAR || path->value.len == 0) {
        return "expected a path, \"off\" or {path, format}";
    }
    log = ed_pcalloc(cf->pool, sizeof(ed_alog_t));
    if (log == NULL) {
        return "out of memory";
    }
    log->format = ED_ALOG_COMBINED;
    if (format) {
        f = format->value.data;
        if (format->type != ED_NODE_SCALAR || format->value.len == 0) {
            return "expected a format name or a format string";
        } else if (strcmp(f, "combined") == 0) {
            log->format = ED_ALOG_COMBINED;
        } else if (strcmp(f, "common") == 0) {
            log->format = ED_ALOG_COMMON;
        } else if (strcmp(f, "json") == 0) {
            log->format = ED_ALOG_JSON;
        } else if (strchr(f, '$') == NULL) {
            ed_conf_error(cf, format, "unknown access_log format \"%s\": "
                          "expected combined, common, json or a string with "
                          "variables", f);
            return NULL;
        } else {
            log->format = ED_ALOG_CUSTOM;
            log->tpl = ed_http_template_compile(cf, format, &err);
            if (log->tpl == NULL) {
                ed_conf_error(cf, format, "invalid access_log format: %s",
                              err);
                return NULL;
            }
        }
    }
    log->file = ed_alog_file(cf, path);
    if (log->file == NULL) {
        return "out of memory";
    }
    *(ed_alog_t **)((char *)conf + key->offset) = log;
    return NULL;
}

static void
ed_alog_close(void *data)
{
    ed_alog_file_t *f = data;

    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

static int
ed_alog_postconf(ed_conf_t *cf)
{
    ed_alog_file_t *f;

    for (f = ed_alog_main(cf->cycle)->files; f; f = f->next) {
        /* Says why a default path applies; -t creates no file. */
        if (ed_conf_check_file(cf, "access log", f->path, "access_log",
                               f->node) != ED_OK
            || ed_conf_test_only)
        {
            continue;
        }
        f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                     0644);
        if (f->fd < 0) {
            ed_conf_error(cf, NULL, "cannot open access log %s: %s", f->path,
                          strerror(errno));
            continue;
        }
        if (ed_pool_cleanup_add(cf->pool, ed_alog_close, f) != ED_OK) {
            close(f->fd);
            f->fd = -1;
            return ED_ERROR;
        }
    }
    return ED_OK;
}

/* Appends s, escaped for a quoted log field: '"', '\' and bytes outside
 * printable ASCII become \xHH (nothing can forge a line or a field). In
 * JSON they become \" \\ and \u00HH: the line is JSON whatever the
 * client sent (invalid UTF-8 included), and each byte reads back as the
 * code point of the same value (Latin-1). */
static char *
ed_alog_escape(char *p, const char *s, size_t len, bool json)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char lhex[] = "0123456789abcdef";
    size_t            i;
    unsigned char     c;

    for (i = 0; i < len; i++) {
        c = (unsigned char)s[i];
        if (json) {
            if (c == '"' || c == '\\') {
                *p++ = '\\';
                *p++ = (char)c;
            } else if (c < 0x20 || c >= 0x7f) {
                memcpy(p, "\\u00", 4);
                p += 4;
                *p++ = lhex[c >> 4];
                *p++ = lhex[c & 15];
            } else {
                *p++ = (char)c;
            }
        } else if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

static void
ed_alog_flush(ed_alog_file_t *f)
{
    if (f->len && f->fd >= 0) {
        if (write(f->fd, f->buf, f->len) < 0) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "writing %s failed",
                   f->path);
        }
    }
    f->len = 0;
}

static void
ed_alog_on_timer(ed_timer_t *t)
{
    ed_alog_file_t *f;

    for (f = ed_alog_main(ed_worker->cycle)->files; f; f = f->next) {
        ed_alog_flush(f);
    }
    ed_timer_add(ed_alog_loop, t, ED_ALOG_FLUSH);
}

/* Returns a variable's value, or "-" when it has none. */
static ed_str_t
ed_alog_var(ed_http_request_t *r, const char *name)
{
    ed_str_t v;

    if (ed_http_variable(r, name, strlen(name), &v) != ED_OK || v.len == 0) {
        ed_str_set(&v, "-");
    }
    return v;
}

#define ED_ALOG_FIELDS 14
#define ed_alog_lit(p, s) ((char *)memcpy(p, s, sizeof(s) - 1) + sizeof(s) - 1)

static void
ed_alog_write(ed_http_request_t *r)
{
    static const char *names[ED_ALOG_FIELDS] = {
        "remote_addr", "time_local", "request", "status", "body_bytes_sent",
        "http_referer", "http_user_agent", "request_time", "upstream_addr",
        "upstream_status", "upstream_response_time", "upstream_cache_status",
        "request_id", "remote_user"
    };
    ed_alog_conf_t *acf = ed_http_loc_conf(r, ed_http_access_log_module);
    ed_alog_t      *log = acf->log;
    ed_alog_file_t *f = log->file;
    ed_str_t        v[ED_ALOG_FIELDS], line;
    size_t          i, max, n;
    char           *p;

    if (f == NULL || f->buf == NULL) {
        return;
    }
    if (log->format == ED_ALOG_CUSTOM) {
        if (ed_http_template_run(r, log->tpl, &line) != ED_OK) {
            return;
        }
        v[0] = line;
        n = 1;
    } else {
        n = log->format == ED_ALOG_COMMON ? 5 : ED_ALOG_FIELDS;
        if (log->format == ED_ALOG_COMBINED) {
            n = 7;
        }
        for (i = 0; i < n; i++) {
            v[i] = ed_alog_var(r, names[i]);
        }
        /* remote_user is last in the table (json's order); combined and
         * common write it in place of their second "-". */
        v[ED_ALOG_FIELDS - 1] = ed_alog_var(r, "remote_user");
    }
    max = 128;
    for (i = 0; i < n; i++) {
        max += 6 * v[i].len + 32;
    }
    if (log->format != ED_ALOG_CUSTOM && n < ED_ALOG_FIELDS) {
        max += 6 * v[ED_ALOG_FIELDS - 1].len + 32;
    }
    if (f->len + max > ED_ALOG_BUF) {
        ed_alog_flush(f);
        if (max > ED_ALOG_BUF) {
            return;
        }
    }
    p = f->buf + f->len;
    if (log->format == ED_ALOG_CUSTOM) {
        p = ed_alog_escape(p, v[0].data, v[0].len, false);
    } else if (log->format == ED_ALOG_JSON) {
        *p++ = '{';
        for (i = 0; i < n; i++) {
            p += sprintf(p, "%s\"%s\":\"", i ? "," : "", names[i]);
            if (v[i].len == 1 && v[i].data[0] == '-') {
                p[-1] = 'n';
                p = ed_alog_lit(p, "ull");
                continue;
            }
            p = ed_alog_escape(p, v[i].data, v[i].len, true);
            *p++ = '"';
        }
        *p++ = '}';
    } else {
        /* $remote_addr - $remote_user [$time_local] "$request" $status
         * $body_bytes_sent "$http_referer" "$http_user_agent" */
        p = ed_alog_escape(p, v[0].data, v[0].len, false);
        p = ed_alog_lit(p, " - ");
        p = ed_alog_escape(p, v[ED_ALOG_FIELDS - 1].data,
                           v[ED_ALOG_FIELDS - 1].len, false);
        p = ed_alog_lit(p, " [");
        p = ed_alog_escape(p, v[1].data, v[1].len, false);
        p = ed_alog_lit(p, "] \"");
        p = ed_alog_escape(p, v[2].data, v[2].len, false);
        p = ed_alog_lit(p, "\" ");
        p = ed_alog_escape(p, v[3].data, v[3].len, false);
        *p++ = ' ';
        p = ed_alog_escape(p, v[4].data, v[4].len, false);
        if (n == 7) {
            p = ed_alog_lit(p, " \"");
            p = ed_alog_escape(p, v[5].data, v[5].len, false);
            p = ed_alog_lit(p, "\" \"");
            p = ed_alog_escape(p, v[6].data, v[6].len, false);
            *p++ = '"';
        }
    }
    *p++ = '\n';
    f->len = (size_t)(p - f->buf);
}

static int
ed_alog_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_alog_conf_t *acf = ed_http_conf_at(loc, ed_http_access_log_module);

    ed_unused(cf);
    if (acf->log && acf->log->file) {
        loc->log = ed_alog_write;
    }
    return ED_OK;
}

static int
ed_alog_init_worker(ed_worker_t *w)
{
    ed_alog_file_t *f;
    bool            any = false;

    for (f = ed_alog_main(w->cycle)->files; f; f = f->next) {
        f->buf = malloc(ED_ALOG_BUF);
        if (f->buf == NULL) {
            return ED_ERROR;
        }
        any = true;
    }
    if (any) {
        ed_alog_loop = w->loop;
        ed_alog_timer.handler = ed_alog_on_timer;
        ed_timer_add(w->loop, &ed_alog_timer, ED_ALOG_FLUSH);
    }
    return ED_OK;
}

static void
ed_alog_exit_worker(ed_worker_t *w)
{
    ed_alog_file_t *f;

    for (f = ed_alog_main(w->cycle)->files; f; f = f->next) {
        ed_alog_flush(f);
        free(f->buf);
        f->buf = NULL;
    }
    if (ed_timer_active(&ed_alog_timer)) {
        ed_timer_del(w->loop, &ed_alog_timer);
    }
}

/* Opens f's path anew onto f's descriptor. ED_OK or ED_ERROR (logged). */
static int
ed_alog_reopen_file(ed_alog_file_t *f)
{
    int fd;

    fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "reopening %s failed",
               f->path);
        return ED_ERROR;
    }
    dup3(fd, f->fd, O_CLOEXEC);
    close(fd);
    return ED_OK;
}

static void
ed_alog_reopen(ed_worker_t *w)
{
    ed_alog_file_t *f;

    for (f = ed_alog_main(w->cycle)->files; f; f = f->next) {
        ed_alog_flush(f);
        ed_alog_reopen_file(f);
    }
}

/* The master creates the new files (it may be root where the workers
 * are not) and keeps them for the workers it forks later. */
static void
ed_alog_reopen_master(ed_cycle_t *cycle)
{
    ed_alog_file_t *f;

    for (f = ed_alog_main(cycle)->files; f; f = f->next) {
        if (f->fd >= 0 && ed_alog_reopen_file(f) == ED_OK) {
            ed_cycle_give_file(cycle, f->fd, f->path);
        }
    }
}
