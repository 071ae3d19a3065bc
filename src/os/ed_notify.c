/* The systemd notification protocol without libsystemd: the message
 * format is KEY=value lines, one datagram per state change, sent to the
 * socket named by NOTIFY_SOCKET (sd_notify(3)). */
#include "ed_notify.h"

#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct sockaddr_un ed_notify_addr;
static socklen_t          ed_notify_addrlen;
static pid_t              ed_notify_pid;
static bool               ed_notify_failed;

bool
ed_notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t      len;

    ed_notify_addrlen = 0;
    if (path == NULL || path[0] == '\0') {
        return false;
    }
    len = strlen(path);
    if ((path[0] != '/' && path[0] != '@')
        || len >= sizeof(ed_notify_addr.sun_path))
    {
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "NOTIFY_SOCKET \"%s\" is not an "
               "absolute path or an @abstract name: not notifying", path);
        return false;
    }
    memset(&ed_notify_addr, 0, sizeof(ed_notify_addr));
    ed_notify_addr.sun_family = AF_UNIX;
    memcpy(ed_notify_addr.sun_path, path, len);
    if (path[0] == '@') {
        /* An abstract address: a leading NUL, and the length counts
         * exactly the name's bytes. */
        ed_notify_addr.sun_path[0] = '\0';
        ed_notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un,
                                                 sun_path) + len);
    } else {
        ed_notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un,
                                                 sun_path) + len + 1);
    }
    ed_notify_pid = getpid();
    return true;
}

bool
ed_notify_active(void)
{
    return ed_notify_addrlen != 0 && getpid() == ed_notify_pid;
}

void
ed_notify(const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;
    int     fd, n;
    bool    ok;

    if (!ed_notify_active()) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(msg)) {
        n = (int)sizeof(msg) - 1;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ok = fd >= 0
         && sendto(fd, msg, (size_t)n, MSG_NOSIGNAL,
                   (struct sockaddr *)&ed_notify_addr, ed_notify_addrlen)
                == n;
    if (!ok && !ed_notify_failed) {
        ed_notify_failed = true;
        ed_log(ED_LOG_WARN, ed_log_cur, errno, "notifying the service "
               "manager through NOTIFY_SOCKET failed (logged once)");
    }
    if (fd >= 0) {
        close(fd);
    }
}
