/* The master process (workers, signals, respawn, reload) and the worker
 * process main. */
#ifndef ED_PROCESS_H
#define ED_PROCESS_H

#include "ed_cycle.h"

/* Runs the master on a loaded cycle whose listeners are open, until it
 * is told to stop; the cycle (and those reloads make) is freed on return.
 * argv is kept for binary upgrades. Returns the exit status (0, or 2
 * after a runtime failure). */
int ed_master_run(ed_cycle_t *cycle, char *const *argv);

/* eddy -d: the error log file that "stderr" stands for (NULL in the
 * foreground). */
extern const char *ed_daemon_error_log;
/* Set when this master was started by a binary upgrade (EDDY_INHERIT):
 * it tells the service manager its pid once it serves. */
extern bool ed_master_upgraded;

/* Runs a worker; never returns. */
void ed_worker_main(ed_cycle_t *cycle, int id, pid_t master)
    __attribute__((noreturn));

/* Drops root privileges to `user:` (workers, and the master's helpers).
 * ED_OK, or ED_ERROR (logged). */
int ed_worker_setuid(ed_cycle_t *cycle);

/* The file next to the pid file where the master reports reload
 * outcomes for `eddy -s reload`. */
void ed_reload_status_path(const char *pid_file, char *buf, size_t size);

#endif /* ED_PROCESS_H */
