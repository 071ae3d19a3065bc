/* A cycle: one loaded configuration with its listeners. */
#include "ed_cycle.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>

static ed_conf_t *
ed_conf_new(ed_pool_t *pool)
{
    ed_conf_t *cf = ed_pcalloc(pool, sizeof(ed_conf_t));

    if (cf) {
        cf->pool = pool;
        cf->ctx = ED_CTX_MAIN;
        cf->ctx_name = "main level";
    }
    return cf;
}

void
ed_cycle_errors_free(ed_conf_t *cf)
{
    if (cf) {
        ed_pool_destroy(cf->pool);
    }
}

ed_cycle_t *
ed_cycle_load(const char *conf_file, const char *prefix, ed_conf_t **errors)
{
    ed_pool_t   *pool;
    ed_cycle_t  *cycle;
    ed_conf_t   *cf;
    ed_module_t *m;
    size_t       i;

    *errors = NULL;
    pool = ed_pool_create(16384);
    if (pool == NULL) {
        return NULL;
    }
    cycle = ed_pcalloc(pool, sizeof(ed_cycle_t));
    cf = ed_conf_new(pool);
    if (cycle == NULL || cf == NULL) {
        goto failed;
    }
    cycle->pool = pool;
    cycle->conf = cf;
    cycle->log.fd = -1;
    cf->cycle = cycle;
    cf->prefix = ed_pstrdup(pool, prefix, strlen(prefix));
    cycle->prefix = cf->prefix;
    /* Kept as the user wrote it: messages name the file that way, and the
     * master never changes directory, so reloads find it again. */
    cycle->conf_file = ed_pstrdup(pool, conf_file, strlen(conf_file));
    if (ed_array_init(&cycle->listeners, pool, 4, sizeof(ed_listener_t *))
        != ED_OK)
    {
        goto failed;
    }

    cycle->main_conf = ed_pcalloc(pool, ed_modules_n * sizeof(void *));
    cf->confs[ED_CONF_MAIN] = cycle->main_conf;
    cf->confs[ED_CONF_LOC] = ed_pcalloc(pool, ed_modules_n * sizeof(void *));
    if (cycle->main_conf == NULL || cf->confs[ED_CONF_LOC] == NULL) {
        goto failed;
    }
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (m->conf_size[ED_CONF_MAIN]) {
            cycle->main_conf[i] = ed_conf_create(cf, m, ED_CONF_MAIN);
            if (cycle->main_conf[i] == NULL) {
                goto failed;
            }
        }
        if (m->conf_size[ED_CONF_LOC]) {
            cf->confs[ED_CONF_LOC][i] = ed_conf_create(cf, m, ED_CONF_LOC);
            if (cf->confs[ED_CONF_LOC][i] == NULL) {
                goto failed;
            }
        }
    }

    cycle->root = ed_conf_load(cf, cycle->conf_file);
    if (cycle->root == NULL) {
        goto failed;
    }
    if (cycle->root->type != ED_NODE_MAP) {
        ed_conf_error(cf, cycle->root, "expected a mapping at the top level");
        goto failed;
    }
    ed_conf_apply(cf, cycle->root);

    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (cycle->main_conf[i]
            && ed_conf_defaults(cf, m->keys, ED_CONF_MAIN,
                                cycle->main_conf[i]) != ED_OK)
        {
            goto failed;
        }
        if (cf->confs[ED_CONF_LOC][i]
            && ed_conf_defaults(cf, m->keys, ED_CONF_LOC,
                                cf->confs[ED_CONF_LOC][i]) != ED_OK)
        {
            goto failed;
        }
    }
    if (cf->nerrors) {
        goto failed;
    }
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        cf->ctx = ED_CTX_MAIN;
        cf->ctx_name = "main level";
        if (m->postconf && m->postconf(cf) != ED_OK && cf->nerrors == 0) {
            ed_conf_error(cf, NULL, "module %s failed to initialise",
                          m->name);
        }
    }
    if (cf->nerrors) {
        goto failed;
    }
    return cycle;

failed:
    if (cf && cf->nerrors == 0) {
        ed_conf_error(cf, NULL, "out of memory");
    }
    if (cf) {
        /* The pool lives on as the holder of the messages. */
        *errors = cf;
        return NULL;
    }
    ed_pool_destroy(pool);
    return NULL;
}

void
ed_cycle_free(ed_cycle_t *cycle)
{
    ed_listener_t **ls;
    size_t          i;
    int             j;

    if (cycle == NULL) {
        return;
    }
    ls = cycle->listeners.elts;
    for (i = 0; i < cycle->listeners.nelts; i++) {
        if (ls[i]->fd >= 0) {
            close(ls[i]->fd);
        }
        for (j = 0; j < ls[i]->nfds; j++) {
            if (ls[i]->fds[j] >= 0) {
                close(ls[i]->fds[j]);
            }
        }
        free(ls[i]->fds);
    }
    if (cycle->log.fd >= 0) {
        ed_log_close(&cycle->log);
    }
    ed_pool_destroy(cycle->pool);
}

/* Parses "8080", "1.2.3.4:80", "[::1]:80", "unix:/path". ED_OK or a
 * message in *err. */
static int
ed_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len,
              const char **err)
{
    struct sockaddr_in  *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_un  *sun = (struct sockaddr_un *)ss;
    const char          *colon, *port;
    char                 host[64];
    int64_t              p;
    size_t               hl;

    memset(ss, 0, sizeof(*ss));
    if (strncmp(s, "unix:", 5) == 0) {
        if (strlen(s + 5) == 0 || strlen(s + 5) >= sizeof(sun->sun_path)) {
            *err = "invalid unix socket path";
            return ED_ERROR;
        }
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, s + 5);
        *len = sizeof(struct sockaddr_un);
        return ED_OK;
    }
    if (s[0] == '[') {
        colon = strchr(s, ']');
        if (colon == NULL || colon[1] != ':') {
            *err = "expected an address like \"[::1]:8080\"";
            return ED_ERROR;
        }
        hl = (size_t)(colon - s - 1);
        port = colon + 2;
        if (hl >= sizeof(host)) {
            *err = "invalid IPv6 address";
            return ED_ERROR;
        }
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        sin6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            *err = "invalid IPv6 address";
            return ED_ERROR;
        }
        *len = sizeof(struct sockaddr_in6);
    } else {
        colon = strrchr(s, ':');
        sin->sin_family = AF_INET;
        *len = sizeof(struct sockaddr_in);
        if (colon == NULL) {
            port = s;
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        } else {
            hl = (size_t)(colon - s);
            port = colon + 1;
            if (hl >= sizeof(host)) {
                *err = "invalid IPv4 address";
                return ED_ERROR;
            }
            memcpy(host, s, hl);
            host[hl] = '\0';
            if (strcmp(host, "*") == 0) {
                sin->sin_addr.s_addr = htonl(INADDR_ANY);
            } else if (strcmp(host, "localhost") == 0) {
                sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
                *err = "invalid IPv4 address (host names are not allowed "
                       "in listen)";
                return ED_ERROR;
            }
        }
    }
    p = ed_atoi(port, strlen(port));
    if (p < 1 || p > 65535) {
        *err = "invalid port: expected 1-65535";
        return ED_ERROR;
    }
    if (ss->ss_family == AF_INET6) {
        sin6->sin6_port = htons((uint16_t)p);
    } else {
        sin->sin_port = htons((uint16_t)p);
    }
    return ED_OK;
}

/* Canonical text of an address, as in logs and $server_addr. */
static char *
ed_addr_text(ed_pool_t *pool, const struct sockaddr_storage *ss)
{
    char text[sizeof(struct sockaddr_un) + 8], ip[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_UNIX) {
        snprintf(text, sizeof(text), "unix:%s",
                 ((const struct sockaddr_un *)ss)->sun_path);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "%s:%u", ip, ntohs(s4->sin_port));
    }
    return ed_pstrdup(pool, text, strlen(text));
}

char *
ed_cycle_addr_name(ed_pool_t *pool, const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t               len;
    const char             *err;

    if (ed_parse_addr(addr, &ss, &len, &err) != ED_OK) {
        return NULL;
    }
    return ed_addr_text(pool, &ss);
}

ed_listener_t *
ed_cycle_listener(ed_cycle_t *cycle, const char *addr, const char **err)
{
    struct sockaddr_storage ss;
    socklen_t               len;
    ed_listener_t          *ls, **lsp;
    size_t                  i;

    if (ed_parse_addr(addr, &ss, &len, err) != ED_OK) {
        return NULL;
    }
    lsp = cycle->listeners.elts;
    for (i = 0; i < cycle->listeners.nelts; i++) {
        if (lsp[i]->addrlen == len && memcmp(&lsp[i]->addr, &ss, len) == 0) {
            return lsp[i];
        }
    }
    lsp = ed_array_push(&cycle->listeners);
    ls = ed_pcalloc(cycle->pool, sizeof(ed_listener_t));
    if (lsp == NULL || ls == NULL) {
        *err = "out of memory";
        return NULL;
    }
    *lsp = ls;
    ls->addr = ss;
    ls->addrlen = len;
    ls->fd = -1;
    ls->name = ed_addr_text(cycle->pool, &ss);
    if (ls->name == NULL) {
        *err = "out of memory";
        return NULL;
    }
    return ls;
}

int
ed_cycle_give_file(ed_cycle_t *cycle, int fd, const char *path)
{
    ed_core_conf_t *ccf = ed_core_conf(cycle);
    struct passwd  *pw;
    struct stat     st;

    if (ccf->user.data == NULL || geteuid() != 0 || fd < 0) {
        return ED_OK;
    }
    pw = getpwnam(ccf->user.data);
    if (pw == NULL) {
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "unknown user \"%s\"",
               ccf->user.data);
        return ED_ERROR;
    }
    if (fstat(fd, &st) == 0 && st.st_uid == pw->pw_uid) {
        return ED_OK;
    }
    if (fchown(fd, pw->pw_uid, (gid_t)-1) != 0) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "chown(%s, %s) failed",
               path, ccf->user.data);
        return ED_ERROR;
    }
    return ED_OK;
}
