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

/* Appends context (", client: ...") to a log line; returns bytes written. */
typedef size_t (*ed_log_ctx_pt)(void *data, char *buf, size_t size);

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

/* Parses a level name; -1 when unknown. */
int ed_log_level(const char *name);
/* Opens path for appending ("stderr" or NULL: fd 2). ED_OK or ED_ERROR
 * with errno set. */
int ed_log_open(ed_log_t *log, const char *path, unsigned level);
/* Reopens a file log in place (USR1). ED_OK or ED_ERROR. */
int ed_log_reopen(ed_log_t *log);
void ed_log_close(ed_log_t *log);

#endif /* ED_LOG_H */
