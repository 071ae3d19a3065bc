/* The handover channel's messages: validation, sending and receiving
 * with a descriptor (see ed_handover.h and fleet.md). */
#include "ed_handover.h"

#include <sys/socket.h>

/* A HANDOFF retried after ETOOMANYREFS, which no EPOLLOUT announces. */
#define ED_HANDOVER_RETRY_MSEC 20

int      ed_handover_chan = -1;
unsigned ed_handover_generation;

static bool
ed_handover_family_ok(const ed_peer_addr_t *a)
{
    return a->sa.sa_family == AF_INET || a->sa.sa_family == AF_INET6;
}

const char *
ed_handover_check(const void *buf, size_t len, int nfds, int flags,
                  const ed_handover_peer_t *peer)
{
    ed_handover_msg_t m;

    if (flags & (MSG_TRUNC | MSG_CTRUNC)) {
        return "truncated";
    }
    if (len != sizeof(m)) {
        return "wrong size";
    }
    memcpy(&m, buf, sizeof(m));
    if (memcmp(m.magic, ED_HANDOVER_MAGIC, 4) != 0) {
        return "bad magic";
    }
    if (m.type == 0 || m.type >= ED_HO_TYPES) {
        return "unknown type";
    }
    if (!(peer->types & (1u << m.type))) {
        return "unexpected type";
    }
    if (m.generation != peer->generation) {
        return "wrong generation";
    }
    if (m.worker != peer->worker) {
        return "wrong worker id";
    }
    if (m.type == ED_HO_HANDOFF && nfds != 1) {
        return nfds == 0 ? "descriptor missing" : "extra descriptors";
    }
    if (m.type != ED_HO_HANDOFF && nfds != 0) {
        return "unexpected descriptor";
    }
    if ((m.flags & ~ED_HO_FLAGS) || m.reserved != 0) {
        return "unknown flags";
    }
    if (m.type == ED_HO_HANDOFF && (m.flags & ED_HO_F_PP_ADDR)
        && (!(m.flags & ED_HO_F_PROXY) || !ed_handover_family_ok(&m.pp_src)
            || m.pp_src.sa.sa_family != m.pp_dst.sa.sa_family))
    {
        return "bad PROXY addresses";
    }
    return NULL;
}

void
ed_handover_init_msg(ed_handover_msg_t *m, uint32_t type, unsigned generation,
                     int worker)
{
    memcpy(m->magic, ED_HANDOVER_MAGIC, 4);
    m->type = type;
    m->generation = generation;
    m->worker = worker;
}

int
ed_handover_send(int chan, const ed_handover_msg_t *m, int fd)
{
    struct msghdr   mh;
    struct iovec    iov;
    struct cmsghdr *cm;
    union {
        char           buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    ssize_t         n;

    memset(&mh, 0, sizeof(mh));
    iov.iov_base = (void *)m;
    iov.iov_len = sizeof(*m);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    do {
        n = sendmsg(chan, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    if (n == (ssize_t)sizeof(*m)) {
        return ED_OK;
    }
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK
                    || errno == ETOOMANYREFS || errno == ENOBUFS))
    {
        return ED_AGAIN;
    }
    return ED_ERROR;
}

int
ed_handover_recv(int chan, ed_handover_msg_t *m, size_t *len, int *fd,
                 int *nfds, int *flags)
{
    struct msghdr   mh;
    struct iovec    iov;
    struct cmsghdr *cm;
    union {
        char           buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    ssize_t         n;
    size_t          i, k;
    int             got;

    memset(&mh, 0, sizeof(mh));
    iov.iov_base = m;
    iov.iov_len = sizeof(*m);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    do {
        n = recvmsg(chan, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? ED_AGAIN : ED_ERROR;
    }
    if (n == 0 && !(mh.msg_flags & MSG_CTRUNC)
        && mh.msg_controllen == 0)
    {
        return ED_DONE;
    }
    *len = (size_t)n;
    *fd = -1;
    *nfds = 0;
    *flags = mh.msg_flags;
    for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < k; i++) {
            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*fd < 0) {
                *fd = got;
            } else {
                close(got);
            }
            (*nfds)++;
        }
    }
    return ED_OK;
}

static void
ed_handover_on_retry(ed_timer_t *t)
{
    ed_worker_t *w = t->data;

    ed_handover_resume(w);
}

int
ed_handover_give(ed_worker_t *w, int fd, ed_handover_msg_t *m)
{
    int rc;

    if (w->handover_blocked) {
        return ED_AGAIN;
    }
    ed_handover_init_msg(m, ED_HO_HANDOFF, ed_handover_generation, w->id);
    rc = ed_handover_send(ed_handover_chan, m, fd);
    if (rc == ED_OK) {
        if (w->handover_done_sent) {
            w->handed_late++;
        } else {
            w->handed++;
        }
        return ED_OK;
    }
    if (rc == ED_AGAIN) {
        /* Writable again (EPOLLOUT on the channel) or, for a limit on
         * descriptors in flight, the timer: the connections are asked
         * again then. */
        w->handover_blocked = 1;
        w->handover_timer.handler = ed_handover_on_retry;
        w->handover_timer.data = w;
        ed_timer_add(w->loop, &w->handover_timer, ED_HANDOVER_RETRY_MSEC);
        return ED_AGAIN;
    }
    ed_log(ED_LOG_ALERT, ed_log_cur, errno, "sending a connection to the "
           "master failed");
    return ED_ERROR;
}
