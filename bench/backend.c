/* A small, fast HTTP/1.1 backend for the proxy benchmark: answers every
 * request with the same keep-alive response of SIZE bytes, as fast as
 * epoll allows, on THREADS threads (SO_REUSEPORT).
 *
 * Usage: backend PORT [SIZE [THREADS]]     (defaults 1024, 1)
 * Build: cc -O2 -pthread -o backend bench/backend.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BK_BUF    16384
#define BK_EVENTS 256

typedef struct {
    int    fd;
    size_t len;         /* unparsed bytes in buf */
    char   buf[BK_BUF];
} bk_conn_t;

static char   *bk_resp;
static size_t  bk_resp_len;
static int     bk_port;

/* Counts the complete request heads at the start of c->buf, drops them,
 * and returns the count (bodies are not expected). */
static int
bk_requests(bk_conn_t *c)
{
    char  *p = c->buf, *end = c->buf + c->len, *e;
    int    n = 0;

    while ((e = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) != NULL) {
        p = e + 4;
        n++;
    }
    c->len = (size_t)(end - p);
    memmove(c->buf, p, c->len);
    return n;
}

static void
bk_close(int ep, bk_conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Reads what is there and answers each request; pipelined answers go in
 * one write. Returns -1 when the connection is done. */
static int
bk_serve(bk_conn_t *c)
{
    struct iovec iov[64];
    ssize_t      r;
    int          n, i;

    for (;;) {
        r = recv(c->fd, c->buf + c->len, BK_BUF - c->len, 0);
        if (r == 0) {
            return -1;
        }
        if (r < 0) {
            return errno == EAGAIN ? 0 : -1;
        }
        c->len += (size_t)r;
        if (c->len == BK_BUF) {
            return -1;
        }
        n = bk_requests(c);
        while (n > 0) {
            int k = n > 64 ? 64 : n;

            for (i = 0; i < k; i++) {
                iov[i].iov_base = bk_resp;
                iov[i].iov_len = bk_resp_len;
            }
            /* Small answers into a socket buffer that is never full in a
             * benchmark; a short write ends the connection. */
            if (writev(c->fd, iov, k) != (ssize_t)(bk_resp_len * k)) {
                return -1;
            }
            n -= k;
        }
        if ((size_t)r < BK_BUF / 2) {
            return 0;
        }
    }
}

static void *
bk_thread(void *arg)
{
    struct sockaddr_in  sin;
    struct epoll_event  ev, evs[BK_EVENTS];
    bk_conn_t          *c;
    int                 ls, ep, fd, one = 1, n, i;

    (void)arg;
    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)bk_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sin, sizeof(sin)) != 0
        || listen(ls, 1024) != 0)
    {
        perror("backend: bind/listen");
        exit(1);
    }
    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    for (;;) {
        n = epoll_wait(ep, evs, BK_EVENTS, -1);
        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            if (c != NULL) {
                if (bk_serve(c) < 0) {
                    bk_close(ep, c);
                }
                continue;
            }
            while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = malloc(sizeof(bk_conn_t));
                if (c == NULL) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->len = 0;
                ev.events = EPOLLIN | EPOLLRDHUP;
                ev.data.ptr = c;
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            }
        }
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    pthread_t t;
    size_t    size = 1024, i;
    int       threads = 1, n;
    char      head[128];

    if (argc < 2) {
        fprintf(stderr, "usage: backend PORT [SIZE [THREADS]]\n");
        return 2;
    }
    bk_port = atoi(argv[1]);
    if (argc > 2) {
        size = (size_t)atol(argv[2]);
    }
    if (argc > 3) {
        threads = atoi(argv[3]);
    }
    signal(SIGPIPE, SIG_IGN);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 "Content-Length: %zu\r\n\r\n", size);
    bk_resp_len = (size_t)n + size;
    bk_resp = malloc(bk_resp_len);
    if (bk_resp == NULL) {
        return 1;
    }
    memcpy(bk_resp, head, (size_t)n);
    for (i = 0; i < size; i++) {
        bk_resp[(size_t)n + i] = (char)('a' + i % 26);
    }
    for (n = 1; n < threads; n++) {
        pthread_create(&t, NULL, bk_thread, NULL);
    }
    bk_thread(NULL);
    return 0;
}
