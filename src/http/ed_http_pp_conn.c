/* The PROXY protocol on a connection: the header read before anything
 * else (before the TLS handshake), bounded and timed, kept on the
 * connection for real_ip and the $proxy_protocol_* variables. */
#include "ed_http.h"
#include "ed_http_proxy_protocol.h"
#include "ed_handover.h"
#include "ed_stats.h"

#include <arpa/inet.h>
#include <sys/socket.h>

struct ed_http_pp_info_s {
    ed_peer_addr_t  src;
    ed_peer_addr_t  dst;
    unsigned        has_addr:1;
    size_t          tlv_len;
    u_char          tlv[];     /* kept only when a variable reads them */
};

/* Set at config load when some template names $proxy_protocol_tlv_*:
 * connections then keep their TLVs (else they cost nothing). Never
 * cleared: a reload that drops the last such variable keeps them. */
static bool ed_http_pp_keep_tlvs;

static void ed_http_pp_on_header(ed_stream_t *s, int status, char *data,
                                 size_t len);

/* The stream scanner: a malformed start ends the "message" at once, so
 * the parser refuses it without waiting for the timeout. */
static size_t
ed_http_pp_scan(const char *buf, size_t len, size_t *resume)
{
    ssize_t n = ed_proxy_protocol_len((const u_char *)buf, len);

    *resume = 0;
    if (n < 0) {
        return len;
    }
    return (size_t)n;
}

/* A transport for TLS addresses: it peeks, then takes only the header's
 * bytes, so the ClientHello after it stays in the socket for OpenSSL
 * (which reads the fd itself). */
static ssize_t
ed_http_pp_recv(ed_stream_t *s, char *buf, size_t len)
{
    size_t  have = s->rend - s->rpos, take;
    ssize_t r, total;

    len = ed_min(len, ED_PP_MAX);
    do {
        r = recv(s->ev.fd, buf, len, MSG_PEEK);
    } while (r == -1 && errno == EINTR);
    if (r <= 0) {
        return r == 0 ? 0
               : errno == EAGAIN || errno == EWOULDBLOCK ? ED_AGAIN
               : ED_ERROR;
    }
    /* buf follows the bytes read before, at rbuf + rend. */
    total = ed_proxy_protocol_len((u_char *)s->rbuf + s->rpos,
                                  have + (size_t)r);
    take = (size_t)r;
    if (total > 0 && (size_t)total > have) {
        take = ed_min((size_t)total - have, (size_t)r);
    }
    do {
        r = recv(s->ev.fd, buf, take, 0);
    } while (r == -1 && errno == EINTR);
    if (r < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? ED_AGAIN : ED_ERROR;
    }
    return r;
}

static ed_stream_io_t ed_http_pp_io;

static void
ed_http_pp_broken(ed_http_conn_t *hc, const char *what)
{
    const ed_peer_addr_t *p = &hc->c.peer;
    char                  addr[64];
    size_t                n;
    unsigned              port = 0;

    n = ed_peer_text(p, addr, sizeof(addr));
    if (p->sa.sa_family == AF_INET) {
        port = ntohs(p->in.sin_port);
    } else if (p->sa.sa_family == AF_INET6) {
        port = ntohs(p->in6.sin6_port);
    }
    if (p->sa.sa_family == AF_INET6) {
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "broken PROXY protocol header "
               "from [%.*s]:%u (%s)", (int)n, addr, port, what);
    } else if (p->sa.sa_family == AF_INET) {
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "broken PROXY protocol header "
               "from %.*s:%u (%s)", (int)n, addr, port, what);
    } else {
        ed_log(ED_LOG_INFO, ed_log_cur, 0, "broken PROXY protocol header "
               "from %.*s (%s)", (int)n, addr, what);
    }
    ed_stats_add(proxy_protocol_errors, 1);
    ed_http_accept_done(hc, ED_ERROR);
}

static void
ed_http_pp_on_timeout(ed_timer_t *t)
{
    ed_http_pp_broken(t->data, "timed out");
}

void
ed_http_pp_read(ed_http_conn_t *hc)
{
    ed_stream_t *s = &hc->c.stream;

    if (hc->c.ls->tls) {
        if (ed_http_pp_io.recv == NULL) {
            ed_http_pp_io = ed_stream_plain_io;
            ed_http_pp_io.recv = ed_http_pp_recv;
        }
        s->io = &ed_http_pp_io;
    }
    if (ed_stream_read_until_scan(s, ed_http_pp_scan, ED_PP_MAX,
                                  ed_http_pp_on_header) != ED_OK)
    {
        ed_http_accept_done(hc, ED_ERROR);
        return;
    }
    hc->timer.handler = ed_http_pp_on_timeout;
    ed_timer_add(ed_worker->loop, &hc->timer,
                 ((ed_http_core_loc_conf_t *)ed_http_conn_addr(hc)
                      ->default_server->loc_conf[ed_http_core_module.index])
                     ->client_header_timeout);
}

static void
ed_http_pp_on_header(ed_stream_t *s, int status, char *data, size_t len)
{
    ed_http_conn_t      *hc = s->data;
    ed_proxy_protocol_t  pp;
    size_t               keep;

    ed_timer_del(ed_worker->loop, &hc->timer);
    if (s->io == &ed_http_pp_io) {
        s->io = &ed_stream_plain_io;
        /* What follows the header is still in the socket (peeked, not
         * taken): the edge that brought it is spent. */
        s->readable = 1;
    }
    if (status == ED_ERROR) {
        ed_http_accept_done(hc, ED_ERROR);
        return;
    }
    if (status != ED_OK) {
        ed_http_pp_broken(hc, len ? "truncated" : "missing");
        return;
    }
    if (ed_proxy_protocol_parse((u_char *)data, len, &pp) != ED_OK) {
        ed_http_pp_broken(hc, "malformed");
        return;
    }
    keep = ed_http_pp_keep_tlvs ? pp.tlv_len : 0;
    if (pp.has_addr || keep) {
        hc->pp = malloc(sizeof(struct ed_http_pp_info_s) + keep);
        if (hc->pp == NULL) {
            ed_log(ED_LOG_ALERT, ed_log_cur, errno, "malloc() failed");
            ed_http_accept_done(hc, ED_ERROR);
            return;
        }
        hc->pp->src = pp.src;
        hc->pp->dst = pp.dst;
        hc->pp->has_addr = pp.has_addr;
        hc->pp->tlv_len = keep;
        if (keep) {
            memcpy(hc->pp->tlv, pp.tlv, keep);
        }
    }
    ed_http_accept_done(hc, ED_OK);
}

void
ed_http_pp_free(ed_http_conn_t *hc)
{
    free(hc->pp);
    hc->pp = NULL;
}

void
ed_http_pp_export(ed_http_conn_t *hc, ed_handover_msg_t *m)
{
    if (!ed_http_conn_addr(hc)->proxy_protocol) {
        return;
    }
    m->flags |= ED_HO_F_PROXY;
    if (hc->pp && hc->pp->has_addr) {
        /* The message has a fixed size: a connection with TLVs kept is
         * not handed over (ed_http_pp_movable). */
        m->flags |= ED_HO_F_PP_ADDR;
        m->pp_src = hc->pp->src;
        m->pp_dst = hc->pp->dst;
    }
}

bool
ed_http_pp_movable(ed_http_conn_t *hc)
{
    return hc->pp == NULL || hc->pp->tlv_len == 0;
}

int
ed_http_pp_import(ed_http_conn_t *hc, const ed_handover_msg_t *m)
{
    if (!(m->flags & ED_HO_F_PP_ADDR)) {
        return ED_OK;
    }
    hc->pp = malloc(sizeof(struct ed_http_pp_info_s));
    if (hc->pp == NULL) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "malloc() failed");
        return ED_ERROR;
    }
    hc->pp->src = m->pp_src;
    hc->pp->dst = m->pp_dst;
    hc->pp->has_addr = 1;
    hc->pp->tlv_len = 0;
    return ED_OK;
}

const ed_peer_addr_t *
ed_http_pp_src(ed_http_conn_t *hc)
{
    return hc->pp && hc->pp->has_addr ? &hc->pp->src : NULL;
}

static int
ed_http_pp_port(ed_http_request_t *r, const ed_peer_addr_t *a, ed_str_t *out)
{
    char     buf[8];
    unsigned port;

    port = a->sa.sa_family == AF_INET ? ntohs(a->in.sin_port)
                                      : ntohs(a->in6.sin6_port);
    return ed_str_dup(r->pool, out, buf,
                      (size_t)snprintf(buf, sizeof(buf), "%u", port));
}

static int
ed_http_pp_addr(ed_http_request_t *r, const ed_peer_addr_t *a, ed_str_t *out)
{
    char buf[64];

    return ed_str_dup(r->pool, out, buf, ed_peer_text(a, buf, sizeof(buf)));
}

int
ed_http_pp_variable(ed_http_request_t *r, const char *name, size_t len,
                    ed_str_t *out)
{
    struct ed_http_pp_info_s *pp = r->hc->pp;
    bool                      aws;
    int                       type;

    if (pp == NULL) {
        return ED_DECLINED;
    }
#define ED_PP_IS(lit) (len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
    if (len > 4 && memcmp(name, "tlv_", 4) == 0) {
        type = ed_proxy_protocol_tlv_type(name + 4, len - 4, &aws);
        if (type < 0
            || ed_proxy_protocol_tlv(pp->tlv, pp->tlv_len, (unsigned)type,
                                     aws, out) != ED_OK)
        {
            return ED_DECLINED;
        }
        return ED_OK;
    }
    if (!pp->has_addr) {
        return ED_DECLINED;
    }
    if (ED_PP_IS("addr")) {
        return ed_http_pp_addr(r, &pp->src, out);
    }
    if (ED_PP_IS("port")) {
        return ed_http_pp_port(r, &pp->src, out);
    }
    if (ED_PP_IS("server_addr")) {
        return ed_http_pp_addr(r, &pp->dst, out);
    }
    if (ED_PP_IS("server_port")) {
        return ed_http_pp_port(r, &pp->dst, out);
    }
    return ED_DECLINED;
}

bool
ed_http_pp_variable_known(const char *name, size_t len)
{
    bool aws;

    if (len > 4 && memcmp(name, "tlv_", 4) == 0) {
        if (ed_proxy_protocol_tlv_type(name + 4, len - 4, &aws) < 0) {
            return false;
        }
        ed_http_pp_keep_tlvs = true;
        return true;
    }
    return ED_PP_IS("addr") || ED_PP_IS("port") || ED_PP_IS("server_addr")
           || ED_PP_IS("server_port");
#undef ED_PP_IS
}
