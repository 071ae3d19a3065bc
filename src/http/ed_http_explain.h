/* eddy explain: how one request would be handled, shown without binding,
 * starting or contacting anything. The core chooses listener, server and
 * location with the server's own code (ed_http_find_server,
 * ed_http_find_location); each module's `explain` hook (ed_module.h)
 * describes its own part through the functions below. */
#ifndef ED_HTTP_EXPLAIN_H
#define ED_HTTP_EXPLAIN_H

#include "ed_http.h"

/* What a hook is asked (ex->phase). */
enum {
    /* The content handler's effective settings: the module whose handler
     * loc->handler is calls ed_explain_handler, then ed_explain_set. */
    ED_EXPLAIN_HANDLER = 1,
    /* The output filters of loc: each calls ed_explain_handler, then
     * ed_explain_set. */
    ED_EXPLAIN_FILTERS,
    /* The access phase: each module with a check in loc gives its
     * verdict with ed_explain_rule. */
    ED_EXPLAIN_RULES,
    /* The content handler's result: ed_explain_result, ed_explain_step,
     * ed_explain_field*, or ed_explain_redirect. */
    ED_EXPLAIN_RESULT,
    /* The server's rewrite rules (before the location is chosen), then
     * the location's: the module applies them to ex->r, writes ex->head,
     * and sets ex->rewrite (ed_http_rewrite_pt's codes; a redirect is
     * its status, 301 or 302, with ex->redirect the Location). */
    ED_EXPLAIN_REWRITE_SERVER,
    ED_EXPLAIN_REWRITE
};

/* A growing string (malloc); failed after ENOMEM (then left empty). */
typedef struct {
    char   *data;
    size_t  len;
    size_t  cap;
    int     failed;
} ed_explain_buf_t;

struct ed_explain_s {
    ed_http_request_t  *r;        /* the request as the server would see
                                   * it: head, uri, server, loc, loc_conf */
    ed_http_location_t *loc;
    ed_cycle_t         *cycle;
    int                 phase;    /* ED_EXPLAIN_* */

    /* Set by the hooks. */
    int                 refused;  /* a rule's status: the handler is not
                                   * run, later rules are not reached */
    int                 status;   /* the result's status, 0: not known
                                   * here (proxied) */
    ed_str_t            redirect; /* an internal redirect asked for */
    ed_str_t            redirect_args;
    unsigned            redirect_has_args:1;
    const char         *redirect_why;
    int                 rewrite;  /* ED_EXPLAIN_REWRITE*'s verdict */

    /* The section being written (explain's own). */
    ed_explain_buf_t    head;     /* text of the section's first line */
    ed_explain_buf_t    more;     /* its further lines */
    ed_explain_buf_t    json;     /* the members of its JSON object */
    ed_explain_buf_t    items;    /* a JSON array being filled */
    ed_explain_buf_t    steps;    /* result steps (JSON strings) */
    unsigned            nsettings;
    unsigned            nitems;
    unsigned            nsteps;
    unsigned            opened:1;
};

/* For the hooks. */

/* Names the module describing itself at ED_EXPLAIN_HANDLER or
 * ED_EXPLAIN_FILTERS; ed_explain_set then adds its settings. */
void ed_explain_handler(ed_explain_t *ex, const char *module);
/* One effective setting: name, value as text, where it comes from
 * (ed_explain_from). */
void ed_explain_set(ed_explain_t *ex, const char *name, const char *value,
                    const char *from);
/* Where key (inside the block named block, or NULL for a key of its
 * own) of ex's location comes from: "FILE:LINE:COL" when the location
 * sets it, "inherited from server at FILE:LINE" (or main), or "default".
 * The node found goes to *node when node is not NULL. In a static
 * buffer reused per call of the same slot (0 to 3). */
const char *ed_explain_from(ed_explain_t *ex, const char *block,
                            const char *key, ed_node_t **node, int slot);
/* The text of a node as written: a scalar's value, or "[a, b]" for a
 * list of scalars. In the request pool. */
const char *ed_explain_node_text(ed_explain_t *ex, const ed_node_t *node);
/* A setting of block (NULL: of the location itself) as written, with
 * where it comes from; nothing when it is not written anywhere. */
void ed_explain_key(ed_explain_t *ex, const char *block, const char *key);
/* The setting "upstream": the group's name, its servers (backups
 * marked) and tail (its balancing, say), from where the group is
 * defined, or `implicit` for a group made for a pass address. */
struct ed_http_upstream_s;
void ed_explain_upstream(ed_explain_t *ex,
                         const struct ed_http_upstream_s *ups,
                         const char *tail, const char *implicit);
/* An access-phase verdict: module, verdict ("allow", "deny", "not
 * consulted", ...), status when the module refuses the request (0:
 * it goes on), and a detail. */
void ed_explain_rule(ed_explain_t *ex, const char *module,
                     const char *verdict, int status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A verdict that needs runtime state explain does not consult (shared
 * counters): "module: detail, state not consulted". */
void ed_explain_rule_runtime(ed_explain_t *ex, const char *module,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* s[0..len) quoted and escaped for a line of text, cut after max bytes
 * ("..."). In the request pool. */
const char *ed_explain_quote(ed_explain_t *ex, const char *s, size_t len,
                             size_t max);
/* The result: status (0: not known without contacting anything) and
 * its summary. */
void ed_explain_result(ed_explain_t *ex, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One more line of the result: a step on the way (a try_files
 * candidate, an index file). */
void ed_explain_step(ed_explain_t *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Extra members of the result's JSON object. */
void ed_explain_field(ed_explain_t *ex, const char *name, const char *value,
                      size_t len);
void ed_explain_field_int(ed_explain_t *ex, const char *name, int64_t n);
/* The request is served again for uri (internal redirect: try_files
 * fallback, index file); args NULL keeps the query. why says so. */
void ed_explain_redirect(ed_explain_t *ex, const ed_str_t *uri,
                         const ed_str_t *args, const char *why);
/* "14.2 KiB" into buf. */
const char *ed_explain_size(int64_t size, char *buf, size_t len);

/* Explain's own. */

/* `eddy explain ...` (argv[0] is "explain"): the exit status. */
int ed_http_explain_main(int argc, char **argv);
/* Appends to a buffer. */
void ed_explain_puts(ed_explain_buf_t *b, const char *s, size_t len);
void ed_explain_printf(ed_explain_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string (quoted, escaped). */
void ed_explain_jstr(ed_explain_buf_t *b, const char *s, size_t len);
void ed_explain_buf_free(ed_explain_buf_t *b);
#define ed_explain_jcstr(b, s) ed_explain_jstr(b, s, strlen(s))
#define ed_explain_lit(b, s) ed_explain_puts(b, s, sizeof(s) - 1)

/* The request explain builds, and what it chose. */
typedef struct {
    ed_cycle_t        *cycle;
    ed_listener_t     *ls;
    ed_http_request_t *r;
    int                json;
    ed_explain_buf_t   out;       /* text output */
    ed_explain_buf_t   jout;      /* JSON output */
} ed_explain_run_t;

/* Writes the location, handler, rules and result sections of the
 * request in run (its server chosen), following internal redirects.
 * ED_OK or ED_ERROR (ENOMEM). */
int ed_explain_passes(ed_explain_run_t *run);
/* Appends a text section: "NAME" padded to 10 columns, then head, then
 * the further lines indented as much. */
void ed_explain_section(ed_explain_buf_t *out, const char *name,
                        const char *head, const char *more);

#endif /* ED_HTTP_EXPLAIN_H */
