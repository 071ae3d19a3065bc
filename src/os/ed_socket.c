/* Listening sockets: opened by the master before forking, kept across
 * reloads, inherited across binary upgrades. */
#include "ed_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>

/* Descriptors passed by a parent master through EDDY_INHERIT; taken
 * once. */
static int    ed_inherited[256];
static size_t ed_ninherited;
static bool   ed_inherit_parsed;

static void
ed_inherit_parse(void)
{
    const char *env = getenv("EDDY_INHERIT"), *p;
    char       *end;
    long        fd;

    ed_inherit_parsed = true;
    if (env == NULL) {
        return;
    }
    for (p = env; *p && ed_ninherited < ed_nelems(ed_inherited); p = end) {
        fd = strtol(p, &end, 10);
        if (end == p || fd < 0 || fd > 65535) {
            break;
        }
        ed_inherited[ed_ninherited++] = (int)fd;
        if (*end == ':' || *end == ';') {
            end++;
        }
    }
    unsetenv("EDDY_INHERIT");
}

/* Finds an inherited listening socket bound to ls's address. */
static int
ed_inherit_take(const ed_listener_t *ls)
{
    struct sockaddr_storage ss;
    socklen_t               len;
    size_t                  i;
    int                     fd;

    if (!ed_inherit_parsed) {
        ed_inherit_parse();
    }
    for (i = 0; i < ed_ninherited; i++) {
        fd = ed_inherited[i];
        if (fd < 0) {
            continue;
        }
        len = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
            continue;
        }
        if (ss.ss_family == ls->addr.ss_family
            && (ss.ss_family == AF_UNIX
                    ? strcmp(((struct sockaddr_un *)&ss)->sun_path,
                             ((struct sockaddr_un *)&ls->addr)->sun_path)
                          == 0
                    : memcmp(&ss, &ls->addr, ls->addrlen) == 0))
        {
            ed_inherited[i] = -1;
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            return fd;
        }
    }
    return -1;
}

/* The last failure of ed_listeners_open, for `eddy -s reload`. */
static char ed_socket_err[512];

const char *
ed_listeners_error(void)
{
    return ed_socket_err;
}

/* Logs what failed on ls (with errno) and keeps it as the last error. */
static void
ed_socket_error(ed_log_t *log, const char *what, const ed_listener_t *ls)
{
    int err = errno;

    snprintf(ed_socket_err, sizeof(ed_socket_err), "%s %s failed (%d: %s)",
             what, ls->name, err, strerror(err));
    ed_log(ED_LOG_EMERG, log, err, "%s %s failed", what, ls->name);
}

static int
ed_socket_open(ed_listener_t *ls, bool reuseport, ed_log_t *log)
{
    struct stat st;
    int         fd, one = 1;
    const char *path;

    fd = socket(ls->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0) {
        ed_socket_error(log, "socket() for", ls);
        return -1;
    }
    if (ls->addr.ss_family == AF_UNIX) {
        path = ((struct sockaddr_un *)&ls->addr)->sun_path;
        /* A stale socket file from a previous run would make bind fail. */
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(path);
        }
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ls->addr.ss_family == AF_INET6) {
            /* "[::]:80" and "80" may both be listed. */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
        if (reuseport
            && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
        {
            ed_socket_error(log, "SO_REUSEPORT on", ls);
            close(fd);
            return -1;
        }
    }
    if (bind(fd, (struct sockaddr *)&ls->addr, ls->addrlen) != 0) {
        ed_socket_error(log, "bind() to", ls);
        close(fd);
        return -1;
    }
    if (ls->addr.ss_family == AF_UNIX) {
        chmod(((struct sockaddr_un *)&ls->addr)->sun_path, 0666);
    }
    if (listen(fd, ls->backlog ? ls->backlog : 511) != 0) {
        ed_socket_error(log, "listen() on", ls);
        close(fd);
        return -1;
    }
    return fd;
}

/* Takes the sockets of the same address and mode from the old cycle. */
static void
ed_listener_take(ed_listener_t *ls, ed_cycle_t *old)
{
    ed_listener_t **ols;
    size_t          i;

    if (old == NULL) {
        return;
    }
    ols = old->listeners.elts;
    for (i = 0; i < old->listeners.nelts; i++) {
        ed_listener_t *o = ols[i];

        if (o->addrlen != ls->addrlen
            || memcmp(&o->addr, &ls->addr, ls->addrlen) != 0
            || o->reuseport != ls->reuseport)
        {
            continue;
        }
        ls->fd = o->fd;
        o->fd = -1;
        ls->fds = o->fds;
        ls->nfds = o->nfds;
        o->fds = NULL;
        o->nfds = 0;
        ls->inherited = 1;
        return;
    }
}

/* Sets TCP_DEFER_ACCEPT as the configuration says, on a new socket or
 * one taken over (a reload may change it). One second, as H2O: a client
 * that connects and stays silent is handed over after about that long
 * (then client_header_timeout runs); one that speaks first, as every
 * HTTP, PROXY protocol and TLS client does, wakes the worker once with
 * its bytes already there, and the kernel skips the handshake's last
 * ACK. */
static void
ed_socket_defer(ed_listener_t *ls, int fd)
{
    int secs = ls->deferred ? 1 : 0;

    if (fd >= 0 && ls->addr.ss_family != AF_UNIX) {
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
    }
}

int
ed_listeners_open(ed_cycle_t *cycle, ed_cycle_t *old, ed_log_t *log)
{
    ed_core_conf_t  *ccf = ed_core_conf(cycle);
    ed_listener_t  **lsp = cycle->listeners.elts, *ls;
    size_t           i;
    int              j, *fds;
    bool             reuseport;

    reuseport = ccf->events->accept == ED_ACCEPT_REUSEPORT;
    snprintf(ed_socket_err, sizeof(ed_socket_err),
             "cannot open the listening sockets");
    for (i = 0; i < cycle->listeners.nelts; i++) {
        ls = lsp[i];
        ls->reuseport = reuseport && ls->addr.ss_family != AF_UNIX;
        ed_listener_take(ls, old);
        if (!ls->reuseport) {
            if (ls->fd < 0) {
                ls->fd = ed_inherit_take(ls);
            }
            if (ls->fd < 0) {
                ls->fd = ed_socket_open(ls, false, log);
                if (ls->fd < 0) {
                    return ED_ERROR;
                }
            }
            ed_socket_defer(ls, ls->fd);
            continue;
        }
        /* One socket per worker; a new generation with more workers gets
         * more sockets. */
        if (ls->nfds < cycle->workers) {
            fds = realloc(ls->fds, (size_t)cycle->workers * sizeof(int));
            if (fds == NULL) {
                return ED_ERROR;
            }
            for (j = ls->nfds; j < cycle->workers; j++) {
                fds[j] = -1;
            }
            ls->fds = fds;
            ls->nfds = cycle->workers;
        }
        for (j = 0; j < ls->nfds; j++) {
            if (ls->fds[j] < 0) {
                ls->fds[j] = ed_inherit_take(ls);
            }
            if (ls->fds[j] < 0) {
                ls->fds[j] = ed_socket_open(ls, true, log);
                if (ls->fds[j] < 0) {
                    return ED_ERROR;
                }
            }
            ed_socket_defer(ls, ls->fds[j]);
        }
    }
    return ED_OK;
}

void
ed_listeners_trim(ed_cycle_t *cycle)
{
    ed_listener_t **lsp = cycle->listeners.elts;
    size_t          i;
    int             j;

    for (i = 0; i < cycle->listeners.nelts; i++) {
        for (j = cycle->workers; j < lsp[i]->nfds; j++) {
            if (lsp[i]->fds[j] >= 0) {
                close(lsp[i]->fds[j]);
                lsp[i]->fds[j] = -1;
            }
        }
        if (lsp[i]->nfds > cycle->workers) {
            lsp[i]->nfds = cycle->workers;
        }
    }
}

void
ed_listeners_close(ed_cycle_t *cycle, bool unlink_files)
{
    ed_listener_t **lsp = cycle->listeners.elts;
    size_t          i;
    int             j;
    bool            open;

    for (i = 0; i < cycle->listeners.nelts; i++) {
        /* A listener handed over to a new cycle has no descriptors left
         * here: its file belongs to that cycle now. */
        open = lsp[i]->fd >= 0;
        if (lsp[i]->fd >= 0) {
            close(lsp[i]->fd);
            lsp[i]->fd = -1;
        }
        for (j = 0; j < lsp[i]->nfds; j++) {
            if (lsp[i]->fds[j] >= 0) {
                open = true;
                close(lsp[i]->fds[j]);
                lsp[i]->fds[j] = -1;
            }
        }
        if (unlink_files && open && lsp[i]->addr.ss_family == AF_UNIX) {
            unlink(((struct sockaddr_un *)&lsp[i]->addr)->sun_path);
        }
    }
}

static int
ed_export_fd(int fd, char **p, char *end)
{
    int n;

    if (fd < 0) {
        return ED_OK;
    }
    fcntl(fd, F_SETFD, 0);
    n = snprintf(*p, (size_t)(end - *p), "%d:", fd);
    if (n < 0 || n >= end - *p) {
        return ED_ERROR;
    }
    *p += n;
    return ED_OK;
}

int
ed_listeners_export(ed_cycle_t *cycle, char *buf, size_t size)
{
    ed_listener_t **lsp = cycle->listeners.elts;
    char           *p = buf, *end = buf + size;
    size_t          i;
    int             j;

    *p = '\0';
    for (i = 0; i < cycle->listeners.nelts; i++) {
        if (ed_export_fd(lsp[i]->fd, &p, end) != ED_OK) {
            return ED_ERROR;
        }
        for (j = 0; j < lsp[i]->nfds; j++) {
            if (ed_export_fd(lsp[i]->fds[j], &p, end) != ED_OK) {
                return ED_ERROR;
            }
        }
    }
    if (p > buf) {
        p[-1] = '\0';
    }
    return ED_OK;
}
