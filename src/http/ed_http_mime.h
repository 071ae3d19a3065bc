/* MIME types by file extension: the mime_types file format, a hash of
 * extensions, and the Content-Type values (with charset for text). */
#ifndef ED_HTTP_MIME_H
#define ED_HTTP_MIME_H

#include "ed_core.h"

typedef struct ed_http_mime_s ed_http_mime_t;

/* Extensions longer than this never match (and are refused in files). */
#define ED_HTTP_MIME_EXT_MAX 32

/* Parses the text of a mime types file: lines of "type ext ext ...",
 * '#' comments, blank lines. Types must look like "major/minor" and
 * extensions carry no dot or slash; an extension listed twice is an
 * error. Returns the table in pool memory, or NULL with *line, *col
 * (1-based) and *err (static text, or pool memory) describing the first
 * error; *err is "out of memory" on ENOMEM (line 0). */
ed_http_mime_t *ed_http_mime_parse(ed_pool_t *pool, const char *text,
                                   size_t len, unsigned *line,
                                   unsigned *col, const char **err);

/* The built-in table used when no mime types file is found: the common
 * types of the web. NULL on ENOMEM. */
ed_http_mime_t *ed_http_mime_builtin(ed_pool_t *pool);

/* The Content-Type value for a type: "; charset=utf-8" appended for
 * text types (text/...) and application/javascript. Returns the value in
 * pool memory, or NULL on ENOMEM. */
ed_str_t *ed_http_mime_value(ed_pool_t *pool, const char *type, size_t len);

/* The Content-Type for the extension of the last component of path
 * (case-insensitive; "a.tar.gz" looks up "gz"; a leading dot alone is no
 * extension). Returns NULL when the table has no entry. */
const ed_str_t *ed_http_mime_lookup(const ed_http_mime_t *m,
                                    const char *path, size_t len);

/* Loads the mime types file at path for the config key at node. When
 * optional, a missing file gives the built-in table. Errors are recorded
 * with ed_conf_error: at node when the file cannot be read, at the
 * file's own line and column when its text is wrong. Returns the table,
 * or NULL after recording an error. */
ed_http_mime_t *ed_http_mime_load(ed_conf_t *cf, const ed_node_t *node,
                                  const char *path, bool optional);

/* Number of extensions in the table. */
size_t ed_http_mime_count(const ed_http_mime_t *m);

#endif /* ED_HTTP_MIME_H */
