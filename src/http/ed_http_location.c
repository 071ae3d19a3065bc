/* Choosing the server by Host and the location by path; PCRE2 regexes
 * compiled once with JIT, matched with one match-data block per process. */
#include "ed_http.h"

static pcre2_match_data *ed_http_match_data;

pcre2_code *
ed_http_regex_compile(ed_pool_t *pool, const char *pattern, size_t len,
                      bool caseless, const char **err)
{
    pcre2_code *re;
    int         rc;
    PCRE2_SIZE  off;
    char        msg[256], full[320];

    re = pcre2_compile((PCRE2_SPTR)pattern, len,
                       caseless ? PCRE2_CASELESS : 0, &rc, &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(full, sizeof(full), "%s at offset %zu", msg, (size_t)off);
        *err = ed_pstrdup(pool, full, strlen(full));
        return NULL;
    }
    /* JIT is an optimisation: when it is unavailable matching still
     * works through the interpreter. */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if (ed_pool_cleanup_add(pool, (ed_pool_cleanup_pt)pcre2_code_free, re)
        != ED_OK)
    {
        pcre2_code_free(re);
        *err = "out of memory";
        return NULL;
    }
    return re;
}

bool
ed_http_regex_jit(pcre2_code *re)
{
    size_t size = 0;

    return pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &size) == 0
           && size > 0;
}

/* Matches subject against re; on a match copies the captures into the
 * request. Returns true on a match. */
static bool
ed_http_regex_match(ed_http_request_t *r, pcre2_code *re, const char *s,
                    size_t len)
{
    PCRE2_SIZE *ov;
    uint32_t    n;
    int         rc;

    if (ed_http_match_data == NULL) {
        ed_http_match_data = pcre2_match_data_create(32, NULL);
        if (ed_http_match_data == NULL) {
            return false;
        }
    }
    rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, ed_http_match_data, NULL);
    if (rc < 0) {
        return false;
    }
    if (r == NULL) {
        /* Choosing a server during the TLS handshake: no request yet. */
        return true;
    }
    n = rc == 0 ? 32 : (uint32_t)rc;
    ov = pcre2_get_ovector_pointer(ed_http_match_data);
    r->caps = ed_palloc(r->pool, 2 * n * sizeof(PCRE2_SIZE));
    if (r->caps == NULL) {
        r->ncaps = 0;
        return true;
    }
    memcpy(r->caps, ov, 2 * n * sizeof(PCRE2_SIZE));
    r->ncaps = n;
    r->cap_subject = s;
    r->cap_re = re;
    return true;
}

ed_http_server_t *
ed_http_find_server(ed_http_addr_t *addr, ed_http_request_t *r,
                    const ed_str_t *host)
{
    ed_http_server_t **srvs = addr->servers.elts, *lead = NULL,
                     *trail = NULL;
    ed_http_name_t    *names;
    size_t             i, j, lead_len = 0, trail_len = 0;

    if (host->len == 0) {
        return addr->default_server;
    }
    for (i = 0; i < addr->servers.nelts; i++) {
        names = srvs[i]->names.elts;
        for (j = 0; j < srvs[i]->names.nelts; j++) {
            ed_http_name_t *n = &names[j];

            if (n->kind == 0) {
                if (ed_str_eq(&n->name, host)) {
                    return srvs[i];
                }
            } else if (n->kind == 1) {
                /* ".example.com" matches "a.example.com", not
                 * "example.com". */
                if (host->len > n->name.len && n->name.len > lead_len
                    && memcmp(host->data + host->len - n->name.len,
                              n->name.data, n->name.len) == 0)
                {
                    lead = srvs[i];
                    lead_len = n->name.len;
                }
            } else if (n->kind == 2) {
                if (host->len > n->name.len && n->name.len > trail_len
                    && memcmp(host->data, n->name.data, n->name.len) == 0)
                {
                    trail = srvs[i];
                    trail_len = n->name.len;
                }
            }
        }
    }
    if (lead) {
        return lead;
    }
    if (trail) {
        return trail;
    }
    for (i = 0; i < addr->servers.nelts; i++) {
        names = srvs[i]->names.elts;
        for (j = 0; j < srvs[i]->names.nelts; j++) {
            if (names[j].kind == 3 && names[j].re
                && ed_http_regex_match(r, names[j].re, host->data,
                                       host->len))
            {
                if (r) {
                    r->srv_cap_subject = r->cap_subject;
                    r->srv_caps = r->caps;
                    r->srv_ncaps = r->ncaps;
                    r->srv_cap_re = r->cap_re;
                }
                return srvs[i];
            }
        }
    }
    return addr->default_server;
}

ed_http_location_t *
ed_http_find_location(ed_http_server_t *srv, ed_http_request_t *r,
                      const ed_str_t *path)
{
    ed_http_location_t **locs = srv->locations.elts, *best = NULL, *l;
    size_t               i;

    for (i = 0; i < srv->locations.nelts; i++) {
        l = locs[i];
        if (l->conf == NULL) {
            continue;
        }
        switch (l->kind) {
        case ED_HTTP_LOC_EXACT:
            if (ed_str_eq(&l->match, path)) {
                return l;
            }
            break;
        case ED_HTTP_LOC_PREFIX:
        case ED_HTTP_LOC_NOREGEX:
            if (path->len >= l->match.len
                && memcmp(path->data, l->match.data, l->match.len) == 0
                && (best == NULL || l->match.len > best->match.len))
            {
                best = l;
            }
            break;
        default:
            break;
        }
    }
    if (best && best->kind == ED_HTTP_LOC_NOREGEX) {
        return best;
    }
    for (i = 0; i < srv->locations.nelts; i++) {
        l = locs[i];
        if (l->re && l->conf
            && ed_http_regex_match(r, l->re, path->data, path->len))
        {
            return l;
        }
    }
    return best ? best : srv->fallback;
}
