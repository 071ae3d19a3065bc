/* What the fastcgi and cgi content handlers share (spec fastcgi-cgi.md):
 * the meta-variables (RFC 3875 4.1) and their $variables, the strict
 * parser of a CGI response head (RFC 3875 6), the local redirect
 * (6.2.2), and the logging of the application's stderr.
 *
 * A handler goes:
 * 1. ed_http_cgi_request(r) for its per-request record, then sets root,
 *    script_name, script_filename, path_info (and content_length once a
 *    body of unknown length was read);
 * 2. ed_http_cgi_meta(r, flags, cb, data): every meta-variable with a
 *    value, as name/value pairs (FastCGI params, an envp);
 * 3. ed_http_cgi_head_parse() on the output until ED_OK, then
 *    ed_http_cgi_head_apply(): either the response head is set (send it,
 *    then the body after h->head_len), or a local redirect is asked:
 *    ed_http_cgi_redirect();
 * 4. ed_http_cgi_stderr() for what the application writes on stderr,
 *    ed_http_cgi_stderr_end() once it is over. */
#ifndef ED_HTTP_CGI_H
#define ED_HTTP_CGI_H

#include "ed_http.h"

/* The request's CGI state: what the handler found, read by the
 * meta-variables and by $document_root, $fastcgi_script_name,
 * $fastcgi_path_info. Strings live in r's pool. */
typedef struct ed_http_cgi_req_s {
    ed_str_t  root;             /* the handler's root; len 0: the
                                 * location's `root` */
    ed_str_t  script_name;      /* SCRIPT_NAME, $fastcgi_script_name */
    ed_str_t  script_filename;  /* SCRIPT_FILENAME; len 0: root +
                                 * script_name */
    ed_str_t  path_info;        /* PATH_INFO, $fastcgi_path_info
                                 * (decoded; may be empty) */
    int64_t   content_length;   /* the body's length once read to learn
                                 * it (unknown-length bodies); -1: the
                                 * request's Content-Length */
} ed_http_cgi_req_t;

/* r's record, made (zeroed, content_length -1) on first use; NULL on
 * ENOMEM. A local redirect drops it (the next handler makes its own). */
ed_http_cgi_req_t *ed_http_cgi_request(ed_http_request_t *r);

/* Whether r's body goes to the application: not after a local redirect
 * or an error page (internal requests are GETs without a body; what is
 * left of the client's is discarded by core). */
#define ed_http_cgi_has_body(r) (!(r)->internal && ed_http_has_body(r))

/* ed_http_cgi_meta flags. */
#define ED_HTTP_CGI_AUTHORIZATION 0x01  /* HTTP_AUTHORIZATION is sent
                                         * (cgi: pass_authorization;
                                         * always for fastcgi) */
#define ED_HTTP_CGI_REMOTE_HOST   0x02  /* REMOTE_HOST = the address */

/* Receives one meta-variable: name[0..nlen), value[0..vlen) (neither
 * NUL-terminated; both valid during the call only). ED_OK to go on,
 * else the walk stops with that answer. */
typedef int (*ed_http_cgi_var_pt)(void *data, const char *name, size_t nlen,
                                  const char *value, size_t vlen);

/* Gives every meta-variable of r with a value to cb, in the order of the
 * spec's table, then the HTTP_* ones: a request field as HTTP_ + its
 * name upper-cased with '-' as '_'; repeats joined with ", " (Cookie:
 * "; "); a name holding '_' only when underscores_in_headers shows it,
 * and then a '-' name wins the variable they share; never Proxy,
 * Content-Type, Content-Length, nor Authorization without
 * ED_HTTP_CGI_AUTHORIZATION. Returns ED_OK, ED_ERROR (ENOMEM) or the
 * first other answer of cb. */
int ed_http_cgi_meta(ed_http_request_t *r, unsigned flags,
                     ed_http_cgi_var_pt cb, void *data);

/* Whether name[0..len) is a meta-variable ed_http_cgi_meta may give
 * (the table's names, REMOTE_HOST, HTTPS, or any HTTP_*): cgi's `env`
 * may not set those. */
bool ed_http_cgi_meta_name(const char *name, size_t len);

/* The CGI response head (RFC 3875 6): "Name: value" lines ended by LF or
 * CRLF, then an empty line. Names are tokens; values are trimmed and hold
 * no NUL nor CR; no obs-fold; at most `max` bytes (buffer_size) and
 * ED_HTTP_CGI_MAX_FIELDS lines. Status is "NNN[ reason]" with NNN in
 * 200-599; Status, Location and Content-Type at most once; Content-Length
 * valid (ed_http_content_length). */
#define ED_HTTP_CGI_MAX_FIELDS 100

typedef struct {
    /* Results, valid once the parse returned ED_OK; strings point into
     * the caller's buffer. */
    int               status;          /* Status's code; 0: none */
    ed_str_t          reason;          /* its reason phrase (may be "") */
    ed_str_t          location;        /* data NULL: no Location */
    ed_str_t          content_type;    /* data NULL: none */
    int64_t           content_length;  /* -1: none */
    /* The fields to pass on: all but Status, Location, Content-Type,
     * Content-Length and the dropped ones (Connection and what it names,
     * Keep-Alive, Transfer-Encoding, Upgrade, TE, Trailer,
     * Proxy-Connection, Date, Server). */
    ed_http_header_t *fields;
    size_t            nfields;
    size_t            head_len;        /* bytes of the head, the empty
                                        * line included */
    const char       *error;           /* why it is invalid (ED_ERROR) */

    /* The parser's own. */
    size_t            max;
    size_t            pos;             /* the next line starts here */
    size_t            lines;
    ed_str_t          connection[8];   /* Connection values */
    size_t            nconnection;
    ed_http_framing_t framing;
} ed_http_cgi_head_t;

/* Starts a head: fields is an array of ED_HTTP_CGI_MAX_FIELDS entries;
 * max is the largest head (buffer_size). */
void ed_http_cgi_head_init(ed_http_cgi_head_t *h, ed_http_header_t *fields,
                           size_t max);

/* Parses buf[0..len), all the output so far (the same buffer each call,
 * grown at its end, never moved: lines already parsed are not read
 * again). Returns ED_OK (the head ends at h->head_len; the body follows),
 * ED_AGAIN (more output is needed; ED_ERROR instead once len reaches
 * max), or ED_ERROR (invalid: h->error says why). At the end of the
 * output, a head still ED_AGAIN is invalid too. */
int ed_http_cgi_head_parse(ed_http_cgi_head_t *h, const char *buf,
                           size_t len);

/* Maps a parsed head onto r's response, copying what it keeps into r's
 * pool: r->status (Status, else 302 with a Location, else 200),
 * content_type (none without Content-Type: no default_type),
 * content_length (-1 without Content-Length), the fields and Location in
 * headers_out. Returns ED_OK (send the head), ED_DECLINED (a local
 * redirect: Location starts with '/' (not "//") and there is no Status;
 * nothing was set: call ed_http_cgi_redirect with h->location) or
 * ED_ERROR (ENOMEM). */
int ed_http_cgi_head_apply(ed_http_request_t *r, const ed_http_cgi_head_t *h);

/* The local redirect (RFC 3875 6.2.2): r is served again, as a GET (a
 * HEAD stays a HEAD) without a body, for the path and query of location,
 * its location chosen anew as for error_pages; the 11th in a row is a
 * 500. The handler has stopped its application (the rest of its output
 * is dropped) and its body reader. Returns what ed_http_internal_redirect
 * returns, for the handler to return, or pass to ed_http_finalize when it
 * runs asynchronously (ED_AGAIN: nothing to do). */
int ed_http_cgi_redirect(ed_http_request_t *r, const ed_str_t *location);

/* Application stderr: each line (split at LF, CR dropped, non-printable
 * bytes as \xHH, a line over ED_HTTP_CGI_LINE_MAX split) logged at
 * `error` as PREFIX: "LINE"SUFFIX with r's context; past
 * ED_HTTP_CGI_STDERR_MAX bytes of a request the rest is counted, and
 * logged once at the end as PREFIX: N more bytes of stderr not
 * loggedSUFFIX. */
#define ED_HTTP_CGI_LINE_MAX   2048
#define ED_HTTP_CGI_STDERR_MAX 65536

typedef struct {
    const char *prefix;    /* "fastcgi stderr from unix:/run/php.sock" */
    const char *suffix;    /* " (upstream \"php\")", or "" */
    uint64_t    seen;      /* bytes taken so far */
    uint64_t    dropped;   /* bytes past the cap */
    size_t      len;       /* bytes of the line not yet ended */
    char        line[ED_HTTP_CGI_LINE_MAX];
} ed_http_cgi_stderr_t;

/* Receives a line to log: raw bytes (CR removed, not escaped yet). */
typedef void (*ed_http_cgi_line_pt)(void *data, const char *line,
                                    size_t len);

/* Starts e (prefix and suffix in memory outliving it). */
void ed_http_cgi_stderr_init(ed_http_cgi_stderr_t *e, const char *prefix,
                             const char *suffix);
/* The splitter alone, without logging (for tests): gives each complete
 * line of p[0..n) to emit; eof ends the last partial line. Empty lines
 * are skipped. */
void ed_http_cgi_stderr_split(ed_http_cgi_stderr_t *e, const char *p,
                              size_t n, bool eof, ed_http_cgi_line_pt emit,
                              void *data);
/* Logs the lines of p[0..n) for r. */
void ed_http_cgi_stderr(ed_http_request_t *r, ed_http_cgi_stderr_t *e,
                        const char *p, size_t n);
/* Stderr is over: logs the last partial line and the count of what was
 * not logged. */
void ed_http_cgi_stderr_end(ed_http_request_t *r, ed_http_cgi_stderr_t *e);

extern ed_module_t ed_http_cgi_vars_module;

#endif /* ED_HTTP_CGI_H */
