/* `eddy -s SIGNAL`: signals the running master found through pid_file
 * and, for reload, quit and stop, waits for the outcome. */
#ifndef ED_CONTROL_H
#define ED_CONTROL_H

#include "ed_cycle.h"

/* Sends word (reload, quit, stop, reopen, upgrade) to the master. cycle
 * is the loaded configuration, or NULL when it has errors (in errors):
 * reopen, quit and stop then still find the master through the file's
 * pid_file (or the default); reload and upgrade print the errors. The
 * exit status: 0, or 1 with the reason printed. */
int ed_control(const char *word, const char *prefix, ed_cycle_t *cycle,
               ed_conf_t *errors);

#endif /* ED_CONTROL_H */
