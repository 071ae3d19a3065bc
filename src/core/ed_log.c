/* The error log: levels, the line format of process.md, reopening. */
#include "ed_core.h"

#include <fcntl.h>

pid_t     ed_pid;
int       ed_worker_id = -1;
ed_log_t  ed_log_stderr = { 2, ED_LOG_NOTICE, NULL };
ed_log_t *ed_log_cur = &ed_log_stderr;
int       ed_log_tee_fd = -1;

const char *ed_log_levels[] = { "",     "emerg",  "alert", "crit", "error",
                                "warn", "notice", "info",  "debug" };

/* Copies src into dst escaping as \xHH the bytes esc says; when it does
 * not all fit, as much as fits before "...". Returns the bytes written. */
static size_t
ed_log_copy(char *dst, size_t size, const char *src, size_t len,
            bool (*esc)(unsigned char c))
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            i, n = 0, w, room = size;
    unsigned char     c;

    for (i = 0; i < len; i++) {
        n += esc((unsigned char)src[i]) ? 4 : 1;
    }
    if (n > size) {
        room = size - 3;  /* the cut shows */
    }
    for (i = 0, n = 0; i < len; i++) {
        c = (unsigned char)src[i];
        w = esc(c) ? 4 : 1;
        if (n + w > room) {
            break;
        }
        if (w == 1) {
            dst[n++] = (char)c;
            continue;
        }
        dst[n++] = '\\';
        dst[n++] = 'x';
        dst[n++] = hex[c >> 4];
        dst[n++] = hex[c & 15];
    }
    if (i < len) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    return n;
}

/* In a message: control characters and DEL, which could end the line or
 * drive a terminal. */
static bool
ed_log_esc_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* In a quoted field: also what could end the field, and any byte that is
 * not ASCII (a log line stays ASCII whatever the client sent). */
static bool
ed_log_esc_field(unsigned char c)
{
    return c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
}

size_t
ed_log_escape(char *dst, size_t size, const char *src, size_t len)
{
    return ed_log_copy(dst, size, src, len, ed_log_esc_field);
}

/* A line: "TIME [LEVEL] PID#WORKER: " then the message (cut to what the
 * line has left), " (errno: text)", the context, a newline. The context
 * is written first so that a long message cannot push it out. */
void
ed_log_core(unsigned level, ed_log_t *log, int err, ed_log_ctx_pt ctx,
            void *data, const char *fmt, ...)
{
    char    line[ED_LOG_LINE_MAX], msg[ED_LOG_LINE_MAX];
    char    cbuf[ED_LOG_CTX_MAX], ebuf[128];
    size_t  n, n0, m, clen = 0, elen = 0;
    int     r;
    va_list ap;

    if (ed_cached_err_log_time.len == 0) {
        ed_time_update();
    }
    r = snprintf(line, sizeof(line), "%.*s [%s] %d#%d: ",
                 (int)ed_cached_err_log_time.len, ed_cached_err_log_time.data,
                 ed_log_levels[level], (int)(ed_pid ? ed_pid : getpid()),
                 ed_worker_id < 0 ? 0 : ed_worker_id);
    n = ed_min(sizeof(line) / 4, (size_t)(r < 0 ? 0 : r));
    n0 = n;

    va_start(ap, fmt);
    r = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    m = ed_min(sizeof(msg) - 1, (size_t)(r < 0 ? 0 : r));

    if (err) {
        r = snprintf(ebuf, sizeof(ebuf), " (%d: %s)", err, strerror(err));
        elen = ed_min(sizeof(ebuf) - 1, (size_t)(r < 0 ? 0 : r));
    }
    if (ctx) {
        clen = ed_min(sizeof(cbuf), ctx(data, cbuf, sizeof(cbuf)));
    }
    /* line: n + message + elen + clen + '\n' <= ED_LOG_LINE_MAX. */
    n += ed_log_copy(line + n, sizeof(line) - 1 - n - elen - clen, msg, m,
                     ed_log_esc_ctl);
    memcpy(line + n, ebuf, elen);
    n += elen;
    memcpy(line + n, cbuf, clen);
    n += clen;
    line[n++] = '\n';
    /* One write per line keeps lines whole between processes (O_APPEND). */
    if (write(log->fd, line, n) < 0) {
        /* Nowhere left to report it. */
    }
    if (ed_log_tee_fd >= 0 && level <= ED_LOG_ERR && n0 >= 6) {
        memcpy(line + n0 - 6, "eddy: ", 6);
        if (write(ed_log_tee_fd, line + n0 - 6, n - n0 + 6) < 0) {
            /* The launcher is gone: the log file has the line. */
        }
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
