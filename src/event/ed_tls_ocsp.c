/* OCSP stapling. A stapled certificate has a slot of shared memory made
 * at config load: the response's DER bytes, its times and status, under
 * a robust mutex. Workers copy it into each handshake that asks for it
 * while thisUpdate <= now < nextUpdate, and never wait for anything.
 * Responses come from a file (read at load, and by the master again
 * when its mtime changes) or from the certificate's OCSP responder,
 * which a short-lived helper forked by the master asks over a blocking
 * socket: DNS and the network stay out of the master and the workers.
 * Every response is checked the same way: signed by the issuer or its
 * delegate, for this certificate, and current. */
#include "ed_tls_ocsp.h"
#include "ed_cycle.h"
#include "ed_process.h"
#include "ed_shm.h"

#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

/* The shared slot. len is 0 while there is nothing to staple. */
typedef struct {
    ed_shm_mutex_t lock;
    time_t         this_update;
    time_t         next_update;
    int            status;       /* V_OCSP_CERTSTATUS_* */
    size_t         len;
    unsigned char  der[ED_TLS_OCSP_MAX];
} ed_tls_ocsp_shm_t;

/* What a response that passed the checks says. */
typedef struct {
    int     status;
    time_t  this_update;
    time_t  next_update;
    time_t  revoked_at;
} ed_tls_ocsp_res_t;

struct ed_tls_ocsp_s {
    ed_tls_ocsp_t     *next;        /* the registry of loaded ones */
    ed_cycle_t        *cycle;
    const char        *cert;        /* the certificate file, for messages */
    const char        *file;        /* the response file, or NULL */
    X509              *leaf;
    X509              *issuer;
    STACK_OF(X509)    *chain;       /* for OCSP_basic_verify */
    X509_STORE        *store;       /* the issuer, trusted */
    OCSP_CERTID       *id;
    ed_tls_ocsp_shm_t *shm;
    ed_tls_ocsp_url_t  u;           /* fetching: the first http URL */
    /* The master's. */
    ed_loop_t         *loop;        /* set once started */
    ed_timer_t         timer;
    pid_t              pid;         /* a helper running, or 0 */
    unsigned           retry;       /* seconds after a failure */
    struct stat        st;          /* the file as last read */
    unsigned           warned:1;    /* the file's expiry was logged */
};

static ed_tls_ocsp_t *ed_tls_ocsp_all;
static pid_t          ed_tls_ocsp_master;   /* the pid that started them */

static void ed_tls_ocsp_on_timer(ed_timer_t *t);

/* The first OpenSSL error's reason, or what. */
static const char *
ed_tls_ocsp_reason(char *buf, size_t size, const char *what)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0) {
        snprintf(buf, size, "%s", what);
    } else {
        ERR_error_string_n(e, buf, size);
    }
    ERR_clear_error();
    return buf;
}

static time_t
ed_tls_ocsp_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return (time_t)-1;
    }
    return timegm(&tm);
}

/* Formats a time for messages: 2026-12-07T07:00:00Z. */
static const char *
ed_tls_ocsp_fmt(time_t t, char *buf, size_t size)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, size, "%lld", (long long)t);
    }
    return buf;
}

/* The checks every response passes before it is stapled: a successful
 * response, signed by the issuer or a responder it delegated to
 * (OCSPSigning), with a status for this certificate that is good or
 * revoked, and thisUpdate <= now < nextUpdate. Returns ED_OK with res
 * filled, or ED_ERROR with a message in err (size bytes). */
static int
ed_tls_ocsp_check(const ed_tls_ocsp_t *o, const unsigned char *der,
                  size_t len, time_t now, ed_tls_ocsp_res_t *res, char *err,
                  size_t size)
{
    const unsigned char  *p = der;
    OCSP_RESPONSE        *resp;
    OCSP_BASICRESP       *bs = NULL;
    ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
    int                   st, reason, rc = ED_ERROR;
    char                  reason_buf[256], t1[32];

    if (len > ED_TLS_OCSP_MAX) {
        snprintf(err, size, "the response is over %d bytes", ED_TLS_OCSP_MAX);
        return ED_ERROR;
    }
    resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (resp == NULL || p != der + len) {
        ERR_clear_error();
        snprintf(err, size, "not a DER OCSP response");
        goto done;
    }
    st = OCSP_response_status(resp);
    if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, size, "the responder answered \"%s\"",
                 OCSP_response_status_str(st));
        goto done;
    }
    bs = OCSP_response_get1_basic(resp);
    if (bs == NULL) {
        snprintf(err, size, "not a basic OCSP response: %s",
                 ed_tls_ocsp_reason(reason_buf, sizeof(reason_buf), "?"));
        goto done;
    }
    if (OCSP_basic_verify(bs, o->chain, o->store, 0) <= 0) {
        snprintf(err, size, "the response is not signed by the issuer or "
                 "its delegate: %s",
                 ed_tls_ocsp_reason(reason_buf, sizeof(reason_buf),
                                    "verification failed"));
        goto done;
    }
    if (OCSP_resp_find_status(bs, o->id, &st, &reason, &revtime, &thisupd,
                              &nextupd)
        != 1)
    {
        ERR_clear_error();
        snprintf(err, size, "the response is not for this certificate");
        goto done;
    }
    if (st != V_OCSP_CERTSTATUS_GOOD && st != V_OCSP_CERTSTATUS_REVOKED) {
        snprintf(err, size, "the certificate's status is \"%s\"",
                 OCSP_cert_status_str(st));
        goto done;
    }
    res->status = st;
    res->this_update = ed_tls_ocsp_time(thisupd);
    res->next_update = ed_tls_ocsp_time(nextupd);
    res->revoked_at = ed_tls_ocsp_time(revtime);
    if (res->this_update == (time_t)-1) {
        snprintf(err, size, "the response has no valid thisUpdate");
        goto done;
    }
    if (nextupd == NULL || res->next_update == (time_t)-1) {
        /* No nextUpdate: nothing says how long to staple it. */
        snprintf(err, size, "the response has no nextUpdate");
        goto done;
    }
    if (now < res->this_update) {
        snprintf(err, size, "the response is not valid yet (thisUpdate %s)",
                 ed_tls_ocsp_fmt(res->this_update, t1, sizeof(t1)));
        goto done;
    }
    if (now >= res->next_update) {
        snprintf(err, size, "the response expired (nextUpdate %s)",
                 ed_tls_ocsp_fmt(res->next_update, t1, sizeof(t1)));
        goto done;
    }
    rc = ED_OK;

done:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return rc;
}

static void
ed_tls_ocsp_store(ed_tls_ocsp_shm_t *shm, const unsigned char *der,
                  size_t len, const ed_tls_ocsp_res_t *res)
{
    if (ed_shm_lock(&shm->lock) != ED_OK) {
        return;
    }
    memcpy(shm->der, der, len);
    shm->this_update = res->this_update;
    shm->next_update = res->next_update;
    shm->status = res->status;
    shm->len = len;
    ed_shm_unlock(&shm->lock);
}

/* The handshake's status callback (workers): the response in force, if
 * any, copied for OpenSSL, which frees it. */
static int
ed_tls_ocsp_staple(SSL *ssl, void *arg)
{
    ed_tls_ocsp_t     *o = arg;
    ed_tls_ocsp_shm_t *shm = o->shm;
    unsigned char     *der = NULL;
    size_t             len = 0;
    time_t             now = time(NULL);

    if (ed_shm_lock(&shm->lock) != ED_OK) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    if (shm->len > 0 && shm->this_update <= now && now < shm->next_update) {
        der = OPENSSL_malloc(shm->len);
        if (der != NULL) {
            memcpy(der, shm->der, shm->len);
            len = shm->len;
        }
    }
    ed_shm_unlock(&shm->lock);
    if (der == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    if (SSL_set_tlsext_status_ocsp_resp(ssl, der, (long)len) != 1) {
        OPENSSL_free(der);
        ERR_clear_error();
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Reads the response file into buf (ED_TLS_OCSP_MAX + 1 bytes); st gets
 * its metadata. Returns the length, or -1 with a message in err. */
static ssize_t
ed_tls_ocsp_read(const char *path, unsigned char *buf, struct stat *st,
                 char *err, size_t size)
{
    ssize_t n, total = 0;
    int     fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, st) != 0) {
        snprintf(err, size, "cannot read \"%s\": %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        snprintf(err, size, "\"%s\" is not a regular file", path);
        return -1;
    }
    while (total <= ED_TLS_OCSP_MAX) {
        n = read(fd, buf + total, (size_t)(ED_TLS_OCSP_MAX + 1 - total));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(err, size, "cannot read \"%s\": %s", path,
                     strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        total += n;
    }
    close(fd);
    if (total > ED_TLS_OCSP_MAX) {
        snprintf(err, size, "\"%s\" is over %d bytes", path,
                 ED_TLS_OCSP_MAX);
        return -1;
    }
    return total;
}

/* Reads and checks the response file; a valid one goes to the slot.
 * Returns ED_OK or ED_ERROR (err). */
static int
ed_tls_ocsp_load_file(ed_tls_ocsp_t *o, ed_tls_ocsp_res_t *res, char *err,
                      size_t size)
{
    unsigned char buf[ED_TLS_OCSP_MAX + 1];
    struct stat   st;
    ssize_t       n;
    char          why[512];

    n = ed_tls_ocsp_read(o->file, buf, &st, err, size);
    if (n < 0) {
        return ED_ERROR;
    }
    o->st = st;
    if (ed_tls_ocsp_check(o, buf, (size_t)n, time(NULL), res, why,
                          sizeof(why))
        != ED_OK)
    {
        snprintf(err, size, "OCSP response file \"%s\" for certificate "
                 "\"%s\": %s", o->file, o->cert, why);
        return ED_ERROR;
    }
    ed_tls_ocsp_store(o->shm, buf, (size_t)n, res);
    o->warned = 0;
    return ED_OK;
}

int
ed_tls_ocsp_parse_url(ed_pool_t *pool, const char *url, ed_tls_ocsp_url_t *u)
{
    const char *h, *end, *port = NULL, *path;
    size_t      hlen, plen;

    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "http://", 7) != 0) {
        return ED_ERROR;
    }
    h = url + 7;
    path = h + strcspn(h, "/?#");
    if (*h == '[') {
        end = memchr(h, ']', (size_t)(path - h));
        if (end == NULL) {
            return ED_ERROR;
        }
        h++;
        hlen = (size_t)(end - h);
        end++;
    } else {
        end = memchr(h, ':', (size_t)(path - h));
        if (end == NULL) {
            end = path;
        }
        hlen = (size_t)(end - h);
    }
    if (end < path) {
        if (*end != ':' || end + 1 == path
            || strspn(end + 1, "0123456789") != (size_t)(path - end - 1))
        {
            return ED_ERROR;
        }
        port = end + 1;
    }
    if (hlen == 0 || memchr(h, '@', hlen) != NULL) {
        return ED_ERROR;
    }
    u->url = ed_pstrdup(pool, url, strlen(url));
    u->host = ed_pstrdup(pool, h, hlen);
    u->port = port ? ed_pstrdup(pool, port, (size_t)(path - port))
                   : ed_pstrdup(pool, "80", 2);
    u->hostport = ed_pstrdup(pool, url + 7, (size_t)(path - url - 7));
    /* The fragment is the client's; a bare query gets its "/". */
    plen = strcspn(path, "#");
    u->path = ed_palloc(pool, plen + 2);
    if (u->path != NULL) {
        u->path[0] = '/';
        memcpy(u->path + (*path != '/'), path, plen);
        u->path[plen + (*path != '/')] = '\0';
    }
    if (u->url == NULL || u->host == NULL || u->port == NULL
        || u->hostport == NULL || u->path == NULL)
    {
        return ED_ERROR;
    }
    return ED_OK;
}

/* The certificate's first http OCSP URL (AIA). Returns ED_OK, or
 * ED_ERROR with a message in err. */
static int
ed_tls_ocsp_find_url(ed_tls_ocsp_t *o, ed_pool_t *pool, char *err,
                     size_t size)
{
    STACK_OF(OPENSSL_STRING) *aia = X509_get1_ocsp(o->leaf);
    int                       i, rc = ED_ERROR;

    for (i = 0; aia && i < sk_OPENSSL_STRING_num(aia); i++) {
        if (ed_tls_ocsp_parse_url(pool, sk_OPENSSL_STRING_value(aia, i),
                                  &o->u)
            == ED_OK)
        {
            rc = ED_OK;
            break;
        }
    }
    if (rc != ED_OK) {
        snprintf(err, size, "ocsp_stapling: certificate \"%s\" has no http "
                 "OCSP responder URL (Authority Information Access)%s",
                 o->cert, aia ? "" : "; give ocsp_response_file instead");
    }
    X509_email_free(aia);
    return rc;
}

static void
ed_tls_ocsp_cleanup(void *data)
{
    ed_tls_ocsp_t  *o = data;
    ed_tls_ocsp_t **pp;

    for (pp = &ed_tls_ocsp_all; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    /* Only the master runs the timers and helpers: a worker freeing its
     * copy of the cycle must not touch them. */
    if (o->loop != NULL && getpid() == ed_tls_ocsp_master) {
        ed_timer_del(o->loop, &o->timer);
        if (o->pid > 0) {
            kill(o->pid, SIGTERM);
        }
    }
    OCSP_CERTID_free(o->id);
    X509_STORE_free(o->store);
    sk_X509_pop_free(o->chain, X509_free);
    X509_free(o->issuer);
    X509_free(o->leaf);
}

ed_tls_ocsp_t *
ed_tls_ocsp_create(ed_cycle_t *cycle, SSL_CTX *ctx, const char *cert,
                   const char *file, char *err, size_t size, int *what)
{
    ed_tls_ocsp_t     *o;
    ed_tls_ocsp_res_t  res;
    STACK_OF(X509)    *extra = NULL;
    X509              *leaf, *c;
    int                i;
    char               reason[256];

    *what = ED_TLS_OCSP_ERR_STAPLING;
    o = ed_pcalloc(cycle->pool, sizeof(ed_tls_ocsp_t));
    if (o == NULL
        || ed_pool_cleanup_add(cycle->pool, ed_tls_ocsp_cleanup, o) != ED_OK)
    {
        snprintf(err, size, "out of memory");
        return NULL;
    }
    o->cycle = cycle;
    o->cert = cert;
    o->file = file;
    o->retry = ED_TLS_OCSP_RETRY_S;
    o->timer.handler = ed_tls_ocsp_on_timer;
    o->timer.data = o;
    o->next = ed_tls_ocsp_all;
    ed_tls_ocsp_all = o;

    leaf = SSL_CTX_get0_certificate(ctx);
    SSL_CTX_get0_chain_certs(ctx, &extra);
    for (i = 0; leaf && extra && i < sk_X509_num(extra); i++) {
        c = sk_X509_value(extra, i);
        if (X509_check_issued(c, leaf) == X509_V_OK) {
            o->issuer = c;
            break;
        }
    }
    if (leaf == NULL || o->issuer == NULL) {
        o->issuer = NULL;
        snprintf(err, size, "ocsp_stapling: the issuer of certificate "
                 "\"%s\" is not in that file: put its chain there (the "
                 "certificate, then its issuer)", cert);
        return NULL;
    }
    X509_up_ref(leaf);
    o->leaf = leaf;
    X509_up_ref(o->issuer);
    o->chain = X509_chain_up_ref(extra);
    o->store = X509_STORE_new();
    o->id = OCSP_cert_to_id(NULL, leaf, o->issuer);
    if (o->chain == NULL || o->store == NULL || o->id == NULL
        || X509_STORE_add_cert(o->store, o->issuer) != 1)
    {
        snprintf(err, size, "ocsp_stapling: certificate \"%s\": %s", cert,
                 ed_tls_ocsp_reason(reason, sizeof(reason),
                                    "out of memory"));
        return NULL;
    }
    /* The issuer may be an intermediate: it is the trust anchor here. */
    X509_STORE_set_flags(o->store, X509_V_FLAG_PARTIAL_CHAIN);

    o->shm = ed_shm_alloc(cycle->pool, sizeof(ed_tls_ocsp_shm_t));
    if (o->shm == NULL || ed_shm_mutex_init(&o->shm->lock) != ED_OK) {
        snprintf(err, size, "shared memory for OCSP stapling: %s",
                 strerror(errno));
        return NULL;
    }
    if (file != NULL) {
        *what = ED_TLS_OCSP_ERR_FILE;
        if (ed_tls_ocsp_load_file(o, &res, err, size) != ED_OK) {
            return NULL;
        }
        if (res.status == V_OCSP_CERTSTATUS_REVOKED) {
            ed_log(ED_LOG_CRIT, ed_log_cur, 0, "OCSP: certificate \"%s\" is "
                   "revoked (response file \"%s\"); its response is "
                   "stapled", cert, file);
        }
    } else if (ed_tls_ocsp_find_url(o, cycle->pool, err, size) != ED_OK) {
        return NULL;
    }
    SSL_CTX_set_tlsext_status_cb(ctx, ed_tls_ocsp_staple);
    SSL_CTX_set_tlsext_status_arg(ctx, o);
    return o;
}

size_t
ed_tls_ocsp_shm_size(void)
{
    return sizeof(ed_tls_ocsp_shm_t);
}

/* --- the helper: one request, then _exit --- */

/* Writes all of buf. ED_OK or ED_ERROR (errno). */
static int
ed_tls_ocsp_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    ssize_t     n;

    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return ED_ERROR;
        }
        p += n;
        len -= (size_t)n;
    }
    return ED_OK;
}

/* Connects to the responder (every address the name has, in turn).
 * Returns the socket, or -1 with a message in err. */
static int
ed_tls_ocsp_connect(const ed_tls_ocsp_t *o, char *err, size_t size)
{
    struct addrinfo hints, *res, *ai;
    struct timeval  tv = { ED_TLS_OCSP_TIMEOUT_S, 0 };
    int             fd = -1, rc, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(o->u.host, o->u.port, &hints, &res);
    if (rc != 0) {
        snprintf(err, size, "cannot resolve \"%s\": %s", o->u.host,
                 gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, size, "cannot connect to %s: %s", o->u.hostport,
                 strerror(saved));
    }
    return fd;
}

/* POSTs the DER request (HTTP/1.0: the responder closes after its
 * answer) and reads the answer into buf (size bytes). Returns the
 * body's length with *body set, or -1 with a message in err. */
static ssize_t
ed_tls_ocsp_post(const ed_tls_ocsp_t *o, const unsigned char *req,
                 size_t len, unsigned char *buf, size_t size,
                 const unsigned char **body, char *err, size_t esize)
{
    char        head[2048], *end, *cl;
    const char *p;
    ssize_t     n;
    size_t      got = 0, hlen;
    int         fd, hn, status;
    long long   clen;

    hn = snprintf(head, sizeof(head),
                  "POST %s HTTP/1.0\r\nHost: %s\r\n"
                  "Content-Type: application/ocsp-request\r\n"
                  "Accept: application/ocsp-response\r\n"
                  "Content-Length: %zu\r\n\r\n", o->u.path, o->u.hostport,
                  len);
    if (hn < 0 || (size_t)hn >= sizeof(head)) {
        snprintf(err, esize, "the responder's URL is too long");
        return -1;
    }
    fd = ed_tls_ocsp_connect(o, err, esize);
    if (fd < 0) {
        return -1;
    }
    if (ed_tls_ocsp_write(fd, head, (size_t)hn) != ED_OK
        || ed_tls_ocsp_write(fd, req, len) != ED_OK)
    {
        snprintf(err, esize, "cannot send to %s: %s", o->u.hostport,
                 strerror(errno));
        close(fd);
        return -1;
    }
    for (;;) {
        if (got == size - 1) {
            snprintf(err, esize, "the answer of %s is over %zu bytes",
                     o->u.hostport, size - 1);
            close(fd);
            return -1;
        }
        n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(err, esize, "cannot read from %s: %s", o->u.hostport,
                     strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (got < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
        snprintf(err, esize, "%s did not answer in HTTP", o->u.hostport);
        return -1;
    }
    status = atoi((const char *)buf + 9);
    end = strstr((char *)buf, "\r\n\r\n");
    if (end == NULL) {
        snprintf(err, esize, "the answer of %s has no end of head",
                 o->u.hostport);
        return -1;
    }
    if (status != 200) {
        snprintf(err, esize, "%s answered status %d", o->u.hostport,
                 status);
        return -1;
    }
    *end = '\0';
    hlen = (size_t)(end - (char *)buf) + 4;
    *body = buf + hlen;
    n = (ssize_t)(got - hlen);
    for (p = (const char *)buf; (cl = strstr(p, "\r\n")) != NULL;
         p = cl + 2)
    {
        if (strncasecmp(cl + 2, "Content-Length:", 15) == 0) {
            clen = strtoll(cl + 17, NULL, 10);
            if (clen < 0 || clen > n) {
                snprintf(err, esize, "the answer of %s was cut short",
                         o->u.hostport);
                return -1;
            }
            n = (ssize_t)clen;
        }
    }
    return n;
}

long
ed_tls_ocsp_refresh(time_t this_update, time_t next_update, time_t now)
{
    time_t half = this_update + (next_update - this_update) / 2;
    time_t least = (next_update - now) / 2;

    if (least > ED_TLS_OCSP_RETRY_S) {
        least = ED_TLS_OCSP_RETRY_S;
    }
    if (least < 1) {
        least = 1;
    }
    if (half < now + least) {
        half = now + least;
    }
    return (long)(half - now);
}

/* In the helper: asks the responder, checks the answer, stores it.
 * Returns the exit status: 0 stored, 1 failed (logged). */
static int
ed_tls_ocsp_fetch(ed_tls_ocsp_t *o)
{
    static unsigned char buf[ED_TLS_OCSP_MAX + 4096];
    const unsigned char *body = NULL;
    unsigned char       *der = NULL;
    OCSP_REQUEST        *req;
    OCSP_CERTID         *id;
    ed_tls_ocsp_res_t    res;
    ssize_t              n = -1;
    time_t               now;
    int                  len = -1;
    char                 err[1024], t1[32], t2[32];

    req = OCSP_REQUEST_new();
    id = OCSP_CERTID_dup(o->id);
    if (req && id && OCSP_request_add0_id(req, id) != NULL) {
        id = NULL;
        len = i2d_OCSP_REQUEST(req, &der);
    }
    OCSP_CERTID_free(id);
    OCSP_REQUEST_free(req);
    if (len <= 0) {
        snprintf(err, sizeof(err), "cannot make the request");
    } else {
        n = ed_tls_ocsp_post(o, der, (size_t)len, buf, sizeof(buf), &body,
                             err, sizeof(err));
    }
    OPENSSL_free(der);
    now = time(NULL);
    if (n >= 0
        && ed_tls_ocsp_check(o, body, (size_t)n, now, &res, err, sizeof(err))
           == ED_OK)
    {
        ed_tls_ocsp_store(o->shm, body, (size_t)n, &res);
        if (res.status == V_OCSP_CERTSTATUS_REVOKED) {
            ed_log(ED_LOG_CRIT, ed_log_cur, 0, "OCSP: certificate \"%s\" is "
                   "revoked since %s (responder %s); its response is "
                   "stapled", o->cert,
                   ed_tls_ocsp_fmt(res.revoked_at, t1, sizeof(t1)),
                   o->u.url);
        }
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "OCSP: certificate \"%s\": "
               "status %s from %s, valid until %s; next request in %ld s",
               o->cert, OCSP_cert_status_str(res.status), o->u.url,
               ed_tls_ocsp_fmt(res.next_update, t2, sizeof(t2)),
               ed_tls_ocsp_refresh(res.this_update, res.next_update, now));
        return 0;
    }
    ed_log(ED_LOG_ERR, ed_log_cur, 0, "OCSP: certificate \"%s\": no "
           "response stapled from %s: %s; next request in %u s", o->cert,
           o->u.url, err, o->retry);
    return 1;
}

/* The helper's life: signals back to their defaults, only the error
 * log kept open, the privileges of a worker (it parses what the network
 * sent, and its memory holds the master's keys: not dumpable), the whole
 * request bounded by an alarm. */
static void __attribute__((noreturn))
ed_tls_ocsp_helper(ed_tls_ocsp_t *o)
{
    sigset_t none;
    int      logfd = ed_log_cur->fd;

    ed_pid = getpid();
    signal(SIGALRM, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    ed_log_tee_fd = -1;
    /* Listeners, channels, the master's epoll: none of them is ours. */
    if (logfd > 3) {
        close_range(3, (unsigned)logfd - 1, 0);
    }
    close_range(logfd > 2 ? (unsigned)logfd + 1 : 3, ~0U, 0);
    alarm(ED_TLS_OCSP_TIMEOUT_S);
    if (ed_worker_setuid(o->cycle) != ED_OK
        || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    {
        _exit(1);
    }
    _exit(ed_tls_ocsp_fetch(o));
}

/* --- the master --- */

static void
ed_tls_ocsp_schedule(ed_tls_ocsp_t *o, long seconds)
{
    ed_timer_add(o->loop, &o->timer, (ed_msec_t)seconds * 1000);
}

/* A response file: read again when it changed; its expiry logged once.
 * Looked at every minute, and when the response in force expires. */
static void
ed_tls_ocsp_watch(ed_tls_ocsp_t *o)
{
    ed_tls_ocsp_res_t res;
    struct stat       st;
    time_t            now = time(NULL), next = 0;
    long              delay = ED_TLS_OCSP_FILE_CHECK_S;
    char              err[1024], t1[32];

    if (stat(o->file, &st) == 0
        && (st.st_mtim.tv_sec != o->st.st_mtim.tv_sec
            || st.st_mtim.tv_nsec != o->st.st_mtim.tv_nsec
            || st.st_ino != o->st.st_ino || st.st_size != o->st.st_size))
    {
        if (ed_tls_ocsp_load_file(o, &res, err, sizeof(err)) == ED_OK) {
            ed_log(res.status == V_OCSP_CERTSTATUS_REVOKED ? ED_LOG_CRIT
                                                          : ED_LOG_NOTICE,
                   ed_log_cur, 0, "OCSP: certificate \"%s\": response file "
                   "\"%s\" read again: status %s, valid until %s", o->cert,
                   o->file, OCSP_cert_status_str(res.status),
                   ed_tls_ocsp_fmt(res.next_update, t1, sizeof(t1)));
        } else {
            ed_log(ED_LOG_ERR, ed_log_cur, 0, "%s; the previous response "
                   "stays until it expires", err);
        }
    }
    if (ed_shm_lock(&o->shm->lock) == ED_OK) {
        next = o->shm->len ? o->shm->next_update : 0;
        ed_shm_unlock(&o->shm->lock);
    }
    if (next != 0 && now >= next && !o->warned) {
        o->warned = 1;
        ed_log(ED_LOG_WARN, ed_log_cur, 0, "OCSP: response file \"%s\" for "
               "certificate \"%s\" expired at %s: not stapled", o->file,
               o->cert, ed_tls_ocsp_fmt(next, t1, sizeof(t1)));
    }
    if (next > now && next - now < delay) {
        delay = (long)(next - now);
    }
    ed_tls_ocsp_schedule(o, delay);
}

static void
ed_tls_ocsp_on_timer(ed_timer_t *t)
{
    ed_tls_ocsp_t *o = t->data;
    pid_t          pid;

    if (o->file != NULL) {
        ed_tls_ocsp_watch(o);
        return;
    }
    if (o->pid > 0) {
        return;   /* the helper's exit schedules the next one */
    }
    pid = fork();
    if (pid < 0) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "fork() failed for an OCSP "
               "request; next in %u s", o->retry);
        ed_tls_ocsp_schedule(o, o->retry);
        return;
    }
    if (pid == 0) {
        ed_tls_ocsp_helper(o);
    }
    o->pid = pid;
}

/* The valid response (an older cycle's) for the same certificate, to go
 * on stapling across a reload. Returns it, or NULL. */
static ed_tls_ocsp_t *
ed_tls_ocsp_previous(const ed_tls_ocsp_t *o, time_t now)
{
    ed_tls_ocsp_t *p;

    for (p = ed_tls_ocsp_all; p; p = p->next) {
        if (p->cycle != o->cycle && p->file == NULL && p->shm->len > 0
            && p->shm->this_update <= now && now < p->shm->next_update
            && X509_cmp(p->leaf, o->leaf) == 0
            && X509_cmp(p->issuer, o->issuer) == 0)
        {
            return p;
        }
    }
    return NULL;
}

void
ed_tls_ocsp_start(ed_loop_t *loop, ed_cycle_t *cycle)
{
    ed_tls_ocsp_t *o, *prev;
    time_t         now = time(NULL);

    ed_tls_ocsp_master = getpid();
    for (o = ed_tls_ocsp_all; o; o = o->next) {
        if (o->cycle != cycle || o->loop != NULL) {
            continue;
        }
        o->loop = loop;
        if (o->file != NULL) {
            ed_tls_ocsp_watch(o);
            continue;
        }
        prev = ed_tls_ocsp_previous(o, now);
        if (prev == NULL || ed_shm_lock(&prev->shm->lock) != ED_OK) {
            ed_tls_ocsp_schedule(o, 0);
            continue;
        }
        memcpy(o->shm->der, prev->shm->der, prev->shm->len);
        o->shm->this_update = prev->shm->this_update;
        o->shm->next_update = prev->shm->next_update;
        o->shm->status = prev->shm->status;
        o->shm->len = prev->shm->len;
        ed_shm_unlock(&prev->shm->lock);
        ed_tls_ocsp_schedule(o, ed_tls_ocsp_refresh(o->shm->this_update,
                                                    o->shm->next_update,
                                                    now));
    }
}

bool
ed_tls_ocsp_reaped(pid_t pid, int status)
{
    ed_tls_ocsp_t *o;
    time_t         this_update = 0, next_update = 0;

    for (o = ed_tls_ocsp_all; o; o = o->next) {
        if (o->pid == pid && o->loop != NULL) {
            break;
        }
    }
    if (o == NULL) {
        return false;
    }
    o->pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0
        && ed_shm_lock(&o->shm->lock) == ED_OK)
    {
        this_update = o->shm->this_update;
        next_update = o->shm->next_update;
        ed_shm_unlock(&o->shm->lock);
        o->retry = ED_TLS_OCSP_RETRY_S;
        ed_tls_ocsp_schedule(o, ed_tls_ocsp_refresh(this_update, next_update,
                                                    time(NULL)));
        return true;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        ed_log(ED_LOG_ERR, ed_log_cur, 0, "OCSP: certificate \"%s\": no "
               "response stapled from %s: timed out after %d s; next "
               "request in %u s", o->cert, o->u.url, ED_TLS_OCSP_TIMEOUT_S,
               o->retry);
    } else if (WIFSIGNALED(status)) {
        ed_log(ED_LOG_ERR, ed_log_cur, 0, "OCSP: certificate \"%s\": no "
               "response stapled from %s: the request was killed by signal "
               "%d; next request in %u s", o->cert, o->u.url,
               WTERMSIG(status), o->retry);
    }
    ed_tls_ocsp_schedule(o, o->retry);
    o->retry = o->retry * 2 > ED_TLS_OCSP_RETRY_MAX_S
                   ? ED_TLS_OCSP_RETRY_MAX_S
                   : o->retry * 2;
    return true;
}

void
ed_tls_ocsp_stop(void)
{
    ed_tls_ocsp_t *o;

    for (o = ed_tls_ocsp_all; o; o = o->next) {
        if (o->loop == NULL) {
            continue;
        }
        ed_timer_del(o->loop, &o->timer);
        if (o->pid > 0) {
            kill(o->pid, SIGTERM);
            o->pid = 0;
        }
        o->loop = NULL;
    }
}
