/* The systemd notification protocol (sd_notify), spoken by the master
 * itself: KEY=value lines in one AF_UNIX datagram to NOTIFY_SOCKET. */
#ifndef ED_NOTIFY_H
#define ED_NOTIFY_H

#include "ed_core.h"

/* Reads NOTIFY_SOCKET (a path, or "@name" for an abstract socket) once;
 * the calling process becomes the only one that sends. Returns whether
 * a service manager listens. */
bool ed_notify_init(void);
bool ed_notify_active(void);
/* Sends the formatted lines; does nothing without NOTIFY_SOCKET or in
 * another process than the one that called ed_notify_init (workers
 * never speak). A failed send is logged once. */
void ed_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* ED_NOTIFY_H */
