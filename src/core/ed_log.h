/* The error log: levels, the line format of process.md, reopening. */
#ifndef ED_LOG_H
#define ED_LOG_H

enum {
    ED_LOG_EMERG = 1,
    ED_LOG_ALERT,
    ED_LOG_CRIT,
    ED_LOG_ERR,
    ED_LOG_WARN,
    ED_LOG_NOTICE,
    ED_LOG_INFO,
    ED_LOG_DEBUG
};

/* Writes the context that ends a line (", client: ...") into buf[0..size)
 * and returns the bytes written (at most size; no NUL). */
typedef size_t (*ed_log_ctx_pt)(void *data, char *buf, size_t size);

/* The longest line, newline included: at most PIPE_BUF, so that one
 * write(2) keeps a line whole even on a pipe. A context gets up to
 * ED_LOG_CTX_MAX of it; the message is cut to fit the rest. */
#define ED_LOG_LINE_MAX 4096
#define ED_LOG_CTX_MAX  2048

struct ed_log_s {
    int      fd;     /* 2 for stderr */
    unsigned level;  /* lines above this level are skipped */
    char    *path;   /* NULL for stderr; owned by the log */
};

extern pid_t     ed_pid;
extern int       ed_worker_id;  /* -1 in the master */
extern ed_log_t  ed_log_stderr; /* used before the config's log opens */
extern ed_log_t *ed_log_cur;    /* the process's current error log */

extern const char *ed_log_levels[];
/* When >= 0 (eddy -d, until the master serves), the message of every
 * line at error level or worse is also written there, after "eddy: ",
 * for the launching process to print. */
extern int ed_log_tee_fd;

void ed_log_core(unsigned level, ed_log_t *log, int err, ed_log_ctx_pt ctx,
                 void *data, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define ed_log(lvl, log, err, ...)                                           \
    do {                                                                     \
        if ((log)->level >= (unsigned)(lvl)) {                               \
            ed_log_core(lvl, log, err, NULL, NULL, __VA_ARGS__);             \
        }                                                                    \
    } while (0)

#define ed_log_ctx(lvl, log, err, ctx, data, ...)                            \
    do {                                                                     \
        if ((log)->level >= (unsigned)(lvl)) {                               \
            ed_log_core(lvl, log, err, ctx, data, __VA_ARGS__);              \
        }                                                                    \
    } while (0)

#if (ED_DEBUG)
#define ed_log_debug(log, ...) ed_log(ED_LOG_DEBUG, log, 0, __VA_ARGS__)
#else
#define ed_log_debug(log, ...)                                               \
    do {                                                                     \
    } while (0)
#endif

/* Copies src[0..len) into dst[0..size) for a quoted field of a log line:
 * control characters, DEL, '"', backslash and bytes >= 0x80 become \xHH, so
 * that nothing a client sent can end the field or the line. When it does
 * not all fit, the output ends with "..." (size >= 3). Returns the bytes
 * written (no NUL). */
size_t ed_log_escape(char *dst, size_t size, const char *src, size_t len);

/* Parses a level name; -1 when unknown. */
int ed_log_level(const char *name);
/* Opens path for appending ("stderr" or NULL: fd 2). ED_OK or ED_ERROR
 * with errno set. */
int ed_log_open(ed_log_t *log, const char *path, unsigned level);
/* Reopens a file log in place (USR1). ED_OK or ED_ERROR. */
int ed_log_reopen(ed_log_t *log);
void ed_log_close(ed_log_t *log);

#endif /* ED_LOG_H */
