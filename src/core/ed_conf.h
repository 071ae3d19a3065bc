/* The YAML configuration: node tree with positions, key dispatch through the
 * module table, typed setters, defaults and inheritance. */
#ifndef ED_CONF_H
#define ED_CONF_H

#include "ed_core.h"

enum { ED_NODE_SCALAR = 1, ED_NODE_SEQ, ED_NODE_MAP };

/* One YAML node. Scalars are NUL-terminated with ${env:...} already
 * substituted. A map keeps file order: items[2i] is the key (a scalar),
 * items[2i+1] its value. The tree lives in the cycle's pool. A null
 * (`key:`, `~`, `null`) is an empty unquoted scalar: value "" and
 * quoted 0. */
struct ed_node_s {
    int          type;
    const char  *file;
    unsigned     line;   /* 1-based */
    unsigned     col;    /* 1-based */
    ed_str_t     value;  /* scalars */
    unsigned     quoted; /* written in quotes (1), or as a | or >
                            block (2) */
    size_t       n;      /* sequence items, or map pairs */
    ed_node_t  **items;
};

/* Levels of configuration; a module has one struct per level it uses. */
enum { ED_CONF_MAIN = 0, ED_CONF_SRV, ED_CONF_LOC, ED_CONF_UPS, ED_CONFS };

/* Where a key may appear. */
#define ED_CTX_MAIN     0x01
#define ED_CTX_SERVER   0x02
#define ED_CTX_LOCATION 0x04
#define ED_CTX_UPSTREAM 0x08
#define ED_CTX_ANY_HTTP (ED_CTX_MAIN | ED_CTX_SERVER | ED_CTX_LOCATION)

/* Key flags. The low bits give the field kind, used to mark a field unset,
 * to apply defaults and to merge parent into child. */
#define ED_KEY_KIND_MASK 0x0f
#define ED_KEY_NONE      0x00 /* composite: the setter owns the field */
#define ED_KEY_INT       0x01 /* int, unset = ED_CONF_UNSET */
#define ED_KEY_SIZE      0x02 /* size_t, unset = ED_CONF_UNSET_SIZE */
#define ED_KEY_MSEC      0x03 /* ed_msec_t, unset = ED_CONF_UNSET_MSEC */
#define ED_KEY_PTR       0x04 /* any pointer, unset = NULL */
#define ED_KEY_STR       0x05 /* ed_str_t, unset = data NULL */
#define ED_KEY_BLOCK     0x06 /* a block: pointer, unset = NULL; arg is
                                 its ed_conf_block_t */
#define ED_KEY_INHERIT   0x10 /* main -> server -> location */
/* Include expansion by the loader (main-level keys only), as at main
 * level itself. A mapping value: its `include:` keys are replaced by
 * the pairs of the maps the files hold. A sequence value: an item that
 * is a map holding only `include:` is replaced by the files' items (a
 * map is one item, a sequence a list of them); messages name one item
 * by the key's name without its final "s" ("servers": "a server"). */
/* A key with ED_KEY_INCLUDE_KEYS may give as arg an ed_conf_block_t
 * whose keys each value of its map takes (`upstreams`), so that -T
 * shows them with their defaults. */
#define ED_KEY_INCLUDE_KEYS  0x20
#define ED_KEY_INCLUDE_ITEMS 0x40

#define ED_CONF_UNSET      (-1)
#define ED_CONF_UNSET_SIZE ((size_t)-1)
#define ED_CONF_UNSET_MSEC ((ed_msec_t)-1)

/* Returns NULL when the node was accepted, or a message (without
 * position; core adds it) such as "expected a size like 16k". */
typedef const char *(*ed_key_set_pt)(ed_conf_t *cf, const ed_key_t *key,
                                     ed_node_t *node, void *conf);

struct ed_key_s {
    const char    *name;   /* the YAML key as spelled in config.md */
    unsigned       ctx;    /* ED_CTX_* where it may appear */
    unsigned       flags;  /* ED_KEY_* */
    ed_key_set_pt  set;
    unsigned       conf;   /* ED_CONF_*: which struct of the module */
    size_t         offset; /* offsetof(that struct, field) */
    const void    *arg;    /* setter argument: bounds, enum names */
    const char    *def;    /* default as a YAML scalar, or NULL */
};

typedef struct {
    int64_t min;
    int64_t max;
} ed_conf_bounds_t;

/* A block-valued key (`static: {...}`, `limit_req: {...}`, a `listen`
 * item): a mapping applied against its own key table into its own
 * struct, with "did you mean" for a misspelt key like any other. The
 * struct starts with an `ed_node_t *node` the core sets to the block's
 * node (for messages and look-ups); the key's field points to it.
 *
 * Inheritance (the outer key has ED_KEY_INHERIT): a level without the
 * key shares its parent's block; a block written at both levels takes
 * the parent's value for each of its own ED_KEY_INHERIT keys it leaves
 * unset (block-to-block merge, in place, once per level). Defaults: a
 * block's keys without ED_KEY_INHERIT take theirs when the block is
 * made; inherited keys take them from the main level's block, which the
 * outer key's own default (a scalar such as "false") makes when main
 * has none. */
typedef struct {
    const char     *name;  /* names the block in messages: "static" */
    const ed_key_t *keys;  /* ends with { NULL }; ctx, conf unused */
    size_t          size;  /* of the struct the keys fill */
    /* A scalar instead of a mapping (`gzip: true`): fills the block;
     * NULL or a message. NULL here: only a mapping is accepted. */
    const char   *(*scalar)(ed_conf_t *cf, ed_node_t *node, void *block);
    /* After the keys and defaults (required keys, checks across keys):
     * NULL or a message (or NULL after recording errors). May be NULL. */
    const char   *(*check)(ed_conf_t *cf, ed_node_t *node, void *block);
    /* Message for a value of the wrong type. */
    const char     *expect;
    /* The value is a list of such blocks (one item alone is a list of
     * one); the field is an ed_array_t * of block pointers. */
    unsigned        list;
} ed_conf_block_t;

typedef struct {
    const char *name;
    int         value;
} ed_conf_enum_t; /* arrays end with { NULL, 0 } */

#define ED_CONF_MAX_ERRORS 10
#define ED_CONF_MAX_WARNINGS 10

struct ed_conf_s {
    ed_pool_t   *pool;      /* the cycle's pool: nodes and conf structs */
    ed_cycle_t  *cycle;
    const char  *prefix;    /* relative paths resolve against it */
    unsigned     ctx;       /* ED_CTX_* of the map being applied */
    const char  *ctx_name;  /* for messages: "location \"/\"" */
    void       **confs[ED_CONFS]; /* current per-module structs per level */
    /* Errors, each "file:line:col: message", at most ED_CONF_MAX_ERRORS
     * kept; nerrors counts them all. */
    char        *errors[ED_CONF_MAX_ERRORS];
    unsigned     nerrors;
    /* Warnings likewise, each "file:line:col: warning: message" or
     * "eddy: warning: message": printed by -t, logged at start and
     * reload, which they never stop. */
    char        *warnings[ED_CONF_MAX_WARNINGS];
    unsigned     nwarnings;
    /* Set by the fuzzer (and tests): `include` is an error instead of
     * reading files. */
    unsigned     no_include;
};

/* Records an error at node's position (node may be NULL). Returns
 * ED_ERROR so callers can `return ed_conf_error(...)`. */
int ed_conf_error(ed_conf_t *cf, const ed_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a warning at node's position (node may be NULL: no position).
 * Returns ED_OK: a warning never fails the load. */
int ed_conf_warn(ed_conf_t *cf, const ed_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes the kept warnings to log at warn level, and how many more there
 * were. */
void ed_conf_log_warnings(const ed_conf_t *cf, ed_log_t *log);
/* Writes the kept errors (warnings) of a load to stderr, a line each,
 * and how many more there were, for the command line. cf may be NULL. */
void ed_conf_print_errors(const ed_conf_t *cf);
void ed_conf_print_warnings(const ed_conf_t *cf);

/* Parses a YAML file into a node tree: positions kept, duplicate keys
 * rejected, ${env:NAME} and ${env:NAME:-default} substituted, and
 * `include` expanded at main level and in the values of main-level keys
 * flagged ED_KEY_INCLUDE_KEYS or ED_KEY_INCLUDE_ITEMS (in module table
 * order). NULL after recording errors. */
ed_node_t *ed_conf_load(ed_conf_t *cf, const char *path);
/* The same from memory, for tests and fuzzing; name is used in messages. */
ed_node_t *ed_conf_load_string(ed_conf_t *cf, const char *name,
                               const char *yaml, size_t len);

/* Applies each key of a map at level cf->ctx through the module table:
 * unknown key (with "did you mean"), wrong level and setter errors are
 * recorded. ED_OK or ED_ERROR. */
int ed_conf_apply(ed_conf_t *cf, ed_node_t *map);
/* Applies a map against one key table into one struct (for blocks such
 * as `events:` or `static:`); what names the block in messages. */
int ed_conf_apply_keys(ed_conf_t *cf, ed_node_t *map, const ed_key_t *keys,
                       void *conf, const char *what);
/* For an unknown key that is an nginx directive (server_name,
 * proxy_pass, ...): what eddy calls it, as the end of the message
 * ("eddy calls it \"names\""; a level note when that key is not allowed
 * in ctx, 0: none). Written into buf; NULL for any other name. */
const char *ed_conf_nginx_hint(const char *name, unsigned ctx, char *buf,
                               size_t size);
/* Finds the value of key in a map, or NULL. */
ed_node_t *ed_conf_get(ed_node_t *map, const char *key);

/* Allocates a module's struct for one level with every keyed field unset.
 * NULL on ENOMEM. */
void *ed_conf_create(ed_conf_t *cf, const ed_module_t *m, unsigned level);
/* Same for a key table used with ed_conf_apply_keys. */
void ed_conf_init_keys(const ed_key_t *keys, void *conf);
/* Fills unset fields that have a default. ED_OK or ED_ERROR. */
int ed_conf_defaults(ed_conf_t *cf, const ed_key_t *keys, unsigned level,
                     void *conf);
/* Copies the parent's value into each unset inheritable field; a block
 * set at both levels is merged block to block. */
void ed_conf_merge(const ed_key_t *keys, unsigned level, const void *parent,
                   void *child);

/* Where the prefix came from, for messages about a default path: "from
 * -p", "the current directory", "compiled in: --prefix=P". Set by main;
 * NULL says nothing. */
extern const char *ed_conf_prefix_origin;
/* The prefix and the configuration file of the command line's -p and -c
 * (*prefix, *conf: NULL when not given): the compiled-in prefix, or a
 * relative one made absolute in cwd (PATH_MAX bytes); the compiled-in
 * file, under the prefix in confbuf when relative. Sets
 * ed_conf_prefix_origin. ED_OK, or ED_ERROR after printing why. */
int ed_conf_locate(const char **prefix, const char **conf, char *cwd,
                   char *confbuf, size_t len);
/* Set by main for -t/-T: checks create nothing (log files are not
 * opened). */
extern unsigned ed_conf_test_only;

/* Checks that a file eddy writes (a log, the pid file) can be opened
 * for writing, creating nothing: the file is writable, or its directory
 * exists and is writable. what names it ("access log"); key is the key
 * that sets it; node is where it was set, or a default's node (line 0)
 * whose value is the default as written. ED_OK or ED_ERROR (recorded;
 * a default's message names its origin). */
int ed_conf_check_file(ed_conf_t *cf, const char *what, const char *path,
                       const char *key, const ed_node_t *node);

/* Resolves a path against the prefix into pool memory. */
char *ed_conf_path(ed_conf_t *cf, const char *path);
/* Writes the tree as YAML. */
void ed_conf_dump(FILE *out, const ed_node_t *node);
/* Writes one scalar as YAML, quoted when it must be; flow: for inside
 * [...] or {...}. */
void ed_conf_dump_scalar(FILE *out, const ed_node_t *node, unsigned flow);
/* Writes "key:" at indent; a long key takes the explicit "? key" form,
 * as YAML limits implicit keys to 1024 characters. */
void ed_conf_dump_key(FILE *out, const ed_node_t *key, unsigned indent);
/* -T (ed_conf_dump.c): "# sha256: HEX" of the YAML that follows
 * (comments excluded), the lines of head (comments, may be NULL), then
 * every key eddy uses with its value: set, inherited or default, at
 * every level where it applies. provenance: each value is followed by a
 * comment saying where it comes from. ED_OK or ED_ERROR (ENOMEM). */
int ed_conf_dump_effective(FILE *out, ed_cycle_t *cycle, const char *head,
                           unsigned provenance);
/* The sha256 (32 bytes into md) that -T prints for cycle, for
 * eddy_config_info. ED_OK or ED_ERROR (ENOMEM). */
int ed_conf_dump_sha256(ed_cycle_t *cycle, unsigned char *md);

/* Generic setters. The field kind is given by the key's flags. */
const char *ed_conf_set_bool(ed_conf_t *, const ed_key_t *, ed_node_t *,
                             void *);   /* int 0/1 */
const char *ed_conf_set_int(ed_conf_t *, const ed_key_t *, ed_node_t *,
                            void *);    /* int; arg: bounds */
const char *ed_conf_set_size(ed_conf_t *, const ed_key_t *, ed_node_t *,
                             void *);   /* size_t; arg: bounds */
const char *ed_conf_set_msec(ed_conf_t *, const ed_key_t *, ed_node_t *,
                             void *);   /* ed_msec_t; arg: bounds */
const char *ed_conf_set_enum(ed_conf_t *, const ed_key_t *, ed_node_t *,
                             void *);   /* int; arg: ed_conf_enum_t[] */
const char *ed_conf_set_str(ed_conf_t *, const ed_key_t *, ed_node_t *,
                            void *);    /* ed_str_t */
const char *ed_conf_set_path(ed_conf_t *, const ed_key_t *, ed_node_t *,
                             void *);   /* ed_str_t, prefix-resolved */
const char *ed_conf_set_str_list(ed_conf_t *, const ed_key_t *, ed_node_t *,
                                 void *); /* ed_array_t * of ed_str_t;
                                             a scalar is a list of one */
const char *ed_conf_set_block(ed_conf_t *, const ed_key_t *, ed_node_t *,
                              void *);  /* ED_KEY_BLOCK; arg: the
                                           ed_conf_block_t */
const char *ed_conf_set_node(ed_conf_t *, const ed_key_t *, ed_node_t *,
                             void *);   /* ed_node_t *, the value as is */

/* Scalar parsers shared by setters and modules; -1 when invalid. */
int64_t ed_conf_parse_size(const char *s, size_t len);
ed_msec_t ed_conf_parse_msec(const char *s, size_t len);
int ed_conf_parse_bool(const char *s, size_t len);

#endif /* ED_CONF_H */
