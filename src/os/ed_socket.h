/* Listening sockets: opened by the master before forking, kept across
 * reloads, inherited across binary upgrades. */
#ifndef ED_SOCKET_H
#define ED_SOCKET_H

#include "ed_cycle.h"

/* Opens every listener of cycle that has no socket yet: one shared socket,
 * or (accept: reuseport) one per worker. Takes over the sockets of old
 * (may be NULL) whose address and mode match, and those listed in
 * EDDY_INHERIT. ED_OK, or ED_ERROR after logging the failing address. */
int ed_listeners_open(ed_cycle_t *cycle, ed_cycle_t *old, ed_log_t *log);
/* The last error of ed_listeners_open as text ("bind() to ADDR failed
 * (98: Address already in use)"). */
const char *ed_listeners_error(void);
/* Closes the reuseport sockets of worker ids beyond cycle->workers
 * (taken from a cycle with more workers): the kernel would keep routing
 * connections to them, and no worker accepts there. */
void ed_listeners_trim(ed_cycle_t *cycle);
/* Closes the listeners' sockets; with unlink_files, the unix socket
 * files of the listeners that had sockets open here (not those handed
 * over to a new cycle) are removed. */
void ed_listeners_close(ed_cycle_t *cycle, bool unlink_files);
/* Clears FD_CLOEXEC on every listening socket and writes their numbers
 * as "6:7:8" into buf. ED_OK or ED_ERROR (buf too small). */
int ed_listeners_export(ed_cycle_t *cycle, char *buf, size_t size);

#endif /* ED_SOCKET_H */
