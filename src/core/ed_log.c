/* The error log: levels, the line format of process.md, reopening. */
#include "ed_core.h"

#include <fcntl.h>

pid_t     ed_pid;
int       ed_worker_id = -1;
ed_log_t  ed_log_stderr = { 2, ED_LOG_NOTICE, NULL };
ed_log_t *ed_log_cur = &ed_log_stderr;

const char *ed_log_levels[] = { "",     "emerg",  "alert", "crit", "error",
                                "warn", "notice", "info",  "debug" };

#define ED_LOG_LINE 2048

void
ed_log_core(unsigned level, ed_log_t *log, int err, ed_log_ctx_pt ctx,
            void *data, const char *fmt, ...)
{
    char    line[ED_LOG_LINE];
    size_t  n, room;
    int     r;
    va_list ap;

    if (ed_cached_err_log_time.len == 0) {
        ed_time_update();
    }
    room = sizeof(line) - 1;
    r = snprintf(line, room, "%.*s [%s] %d#%d: ",
                 (int)ed_cached_err_log_time.len, ed_cached_err_log_time.data,
                 ed_log_levels[level], (int)(ed_pid ? ed_pid : getpid()),
                 ed_worker_id < 0 ? 0 : ed_worker_id);
    n = (size_t)r;

    va_start(ap, fmt);
    r = vsnprintf(line + n, room - n, fmt, ap);
    va_end(ap);
    n = ed_min(room - 1, n + (size_t)(r < 0 ? 0 : r));

    if (err && n < room) {
        r = snprintf(line + n, room - n, " (%d: %s)", err, strerror(err));
        n = ed_min(room - 1, n + (size_t)(r < 0 ? 0 : r));
    }
    if (ctx && n < room) {
        n += ctx(data, line + n, room - n);
        n = ed_min(room - 1, n);
    }
    line[n++] = '\n';
    /* One write per line keeps lines whole between processes (O_APPEND). */
    if (write(log->fd, line, n) < 0) {
        /* Nowhere left to report it. */
    }
}

int
ed_log_level(const char *name)
{
    unsigned i;

    for (i = 1; i < ed_nelems(ed_log_levels); i++) {
        if (strcmp(name, ed_log_levels[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int
ed_log_open(ed_log_t *log, const char *path, unsigned level)
{
    int fd;

    log->level = level;
    if (path == NULL || strcmp(path, "stderr") == 0) {
        log->fd = 2;
        log->path = NULL;
        return ED_OK;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return ED_ERROR;
    }
    log->path = strdup(path);
    if (log->path == NULL) {
        close(fd);
        return ED_ERROR;
    }
    log->fd = fd;
    return ED_OK;
}

int
ed_log_reopen(ed_log_t *log)
{
    int fd;

    if (log->path == NULL) {
        return ED_OK;
    }
    fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return ED_ERROR;
    }
    /* dup3 keeps the descriptor number, so nothing holding it goes stale. */
    if (dup3(fd, log->fd, O_CLOEXEC) < 0) {
        close(fd);
        return ED_ERROR;
    }
    close(fd);
    return ED_OK;
}

void
ed_log_close(ed_log_t *log)
{
    if (log->path) {
        close(log->fd);
        free(log->path);
        log->path = NULL;
    }
    log->fd = 2;
}
