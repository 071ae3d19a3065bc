/* The cgi module's private declarations (RFC 3875, a process per
 * request), shared by its configuration (ed_http_cgi_conf.c), the script
 * walk (ed_http_cgi_walk.c), the processes (ed_http_cgi_proc.c) and the
 * handler (ed_http_cgi.c). */
#ifndef ED_HTTP_CGI_HANDLER_H
#define ED_HTTP_CGI_HANDLER_H

#include "ed_http.h"
#include "ed_http_explain.h"
#include "ed_http_file_cache.h"

#include <sys/stat.h>
#include <sys/types.h>

/* The PATH every script gets unless `env` sets its own. */
#define ED_CGI_PATH "/usr/local/bin:/usr/bin:/bin"

/* One `interpreters` entry: ".py" -> argv prefix. */
typedef struct {
    ed_str_t     ext;         /* with its dot */
    ed_array_t  *argv;        /* ed_str_t, NUL-terminated each */
} ed_http_cgi_interp_t;

/* One `env` entry: a name and a template. */
typedef struct {
    ed_str_t             name;
    ed_http_template_t  *value;
} ed_http_cgi_env_t;

/* limits: each ED_CONF_UNSET* when not given. */
typedef struct {
    ed_node_t   *node;
    ed_msec_t    cpu;
    size_t       memory;
    int          files;
    int          processes;
    size_t       file_size;
} ed_http_cgi_limits_t;

/* A `cgi` block (a location's). */
typedef struct {
    ed_node_t            *node;
    ed_str_t              root;
    ed_str_t              alias;
    ed_array_t           *index;         /* ed_str_t */
    ed_array_t           *interpreters;  /* ed_http_cgi_interp_t */
    ed_array_t           *env;           /* ed_http_cgi_env_t */
    int                   max_processes;
    ed_msec_t             timeout;
    ed_msec_t             kill_after;
    int                   symlinks;
    int                   pass_authorization;
    size_t                buffer_size;
    ed_http_cgi_limits_t *limits;
    bool                  env_path;      /* env sets PATH itself */
} ed_http_cgi_conf_t;

typedef struct {
    ed_http_cgi_conf_t   *block;
} ed_http_cgi_loc_conf_t;

extern ed_module_t ed_http_cgi_module;

int ed_http_cgi_handler(ed_http_request_t *r);

/* The script walk (ed_http_cgi_walk.c). */

/* Why a walk refused a path: the 403 reasons of config.md's table. */
enum {
    ED_CGI_OK = 0,
    ED_CGI_NOT_FOUND,        /* 404 */
    ED_CGI_NOT_EXECUTABLE,   /* 403 from here on */
    ED_CGI_SETID,
    ED_CGI_WRITABLE,
    ED_CGI_DIR_WRITABLE,
    ED_CGI_SYMLINK,
    ED_CGI_OUTSIDE,
    ED_CGI_NO_INDEX,
    ED_CGI_DENIED,           /* EACCES while walking */
    ED_CGI_FAILED            /* 500, errno in err */
};

typedef struct {
    int          verdict;    /* ED_CGI_* */
    int          err;        /* errno for ED_CGI_FAILED, ED_CGI_DENIED */
    size_t       script_end; /* bytes of rest naming the script */
    const char  *index;      /* the index entry taken, or NULL */
    size_t       index_len;
    size_t       dir_len;    /* DIR_WRITABLE: rest bytes of that dir */
    /* ED_CGI_OK: the file the walk opened and judged, its links
     * resolved: what is executed, so that no link swapped in since is
     * followed. */
    char         resolved[PATH_MAX];
} ed_http_cgi_walk_t;

/* Walks rest (a normalised path below the directory root, starting with
 * '/' or empty) segment by segment from root, opening each name without
 * following links the policy refuses and never leaving root (openat2
 * RESOLVE_BENEATH where the kernel has it): a directory goes on, the
 * first regular file is the script (rest[0..script_end)), and a walk
 * ending on a directory takes the first of the index names present.
 * Then judges what was opened: executable by this process's user,
 * neither setuid nor setgid, not writable by others, nor any directory
 * walked. Fills w; its verdict is ED_CGI_OK or a reason. */
void ed_http_cgi_walk(const char *root, const char *rest, size_t len,
                      int symlinks, const ed_array_t *index,
                      ed_http_cgi_walk_t *w);
/* Whether a file of that mode and owner may be executed by a process
 * with euid, egid and the supplementary groups: the permission bits
 * alone, as the kernel judges them for a user other than root. */
bool ed_http_cgi_executable(mode_t mode, uid_t uid, gid_t gid, uid_t euid,
                            gid_t egid, const gid_t *groups, int ngroups);
/* The walk's verdict as a status (404, 403, 500). */
int ed_http_cgi_walk_status(int verdict);
/* The reason a log line gives for a 403 verdict. */
const char *ed_http_cgi_walk_reason(int verdict);

/* A request's script, as the handler (and eddy explain) find it. */
typedef struct {
    ed_http_cgi_walk_t  w;
    char               *root;        /* NUL-terminated; "/" for "" */
    size_t              root_len;    /* bytes of it in the path: "" 0 */
    char               *script;      /* the file, or where the walk
                                      * stopped (NUL-terminated) */
    size_t              script_len;
    ed_str_t            script_name; /* SCRIPT_NAME (ED_CGI_OK only) */
    ed_str_t            path_info;   /* PATH_INFO, in r->uri */
} ed_http_cgi_script_t;

/* Maps r->uri with the block's root or alias, then walks it: ED_OK with
 * f (f->w.verdict says whether a script was found), 404 (a URI the
 * alias does not hold, or one leaving the root) or 500. */
int ed_http_cgi_find(ed_http_request_t *r, const ed_http_cgi_conf_t *ccf,
                     ed_http_cgi_script_t *f);

/* eddy explain: the cgi module's part (ed_http_cgi_explain.c). */
int ed_http_cgi_explain(ed_explain_t *ex);

/* Processes (ed_http_cgi_proc.c). */

typedef struct ed_http_cgi_proc_s ed_http_cgi_proc_t;

/* Told when the script's process ended (code and status as waitid's
 * si_code and si_status), or with code -1 when its timeout passed (its
 * group is being killed). */
typedef void (*ed_http_cgi_exit_pt)(void *data, int code, int status);

/* What a spawn needs. argv and envp are NULL-terminated; path is the
 * file to execute; dir the directory to start in. */
typedef struct {
    const char                  *path;
    const char                  *dir;
    char *const                 *argv;
    char *const                 *envp;
    const ed_http_cgi_limits_t  *limits;
    int                          fds[3];   /* child's stdin, out, err */
} ed_http_cgi_spawn_t;

/* Whether another script may start under max: counts those running. */
bool ed_http_cgi_proc_room(int max);
/* Whether a counted process has no request any more (its output ended,
 * or it is being killed): its slot is about to be free. */
bool ed_http_cgi_proc_ending(void);

/* A request waiting for a slot under max_processes while a process is
 * ending: its wake is posted when a process is reaped (first come,
 * first woken, of those whose location's max_processes the freed slot
 * fits: locations share the worker's processes). Zeroed memory is a
 * slot not queued. */
typedef struct ed_http_cgi_slot_s ed_http_cgi_slot_t;
struct ed_http_cgi_slot_s {
    ed_http_cgi_slot_t *next;
    ed_http_cgi_slot_t *prev;
    ed_defer_t          wake;
    int                 max;     /* its location's max_processes */
    unsigned            queued:1;
};
void ed_http_cgi_slot_wait(ed_http_cgi_slot_t *s, int max);
/* Leaves the queue and drops a wake not yet run (handed to the next
 * waiter that fits: the slot it was for is still free). */
void ed_http_cgi_slot_cancel(ed_http_cgi_slot_t *s);
/* Starts a process as config.md says (clone(CLONE_VM|CLONE_VFORK), its
 * own session, PDEATHSIG, signals reset, pipes on 0-2, the rest closed,
 * chdir, limits, execve). Returns the process, or NULL with *err: the
 * errno of the exec (reported through a close-on-exec pipe; *exec_failed
 * set) or of the spawn itself. name is kept for log lines. */
ed_http_cgi_proc_t *ed_http_cgi_spawn(const ed_http_cgi_spawn_t *sp,
                                      const char *name, ed_msec_t timeout,
                                      ed_msec_t kill_after, int *err,
                                      bool *exec_failed);
/* The request end's side: exit reports go to cb(data) while attached. */
void ed_http_cgi_proc_attach(ed_http_cgi_proc_t *p, ed_http_cgi_exit_pt cb,
                             void *data);
/* The request is done with the process: it is reaped later by itself; a
 * process still running is killed when kill is set (SIGTERM to its
 * group, SIGKILL after kill_after), else left to finish. */
void ed_http_cgi_proc_detach(ed_http_cgi_proc_t *p, bool kill);
/* Sends SIGTERM to the process's group now, SIGKILL after kill_after. */
void ed_http_cgi_proc_kill(ed_http_cgi_proc_t *p);
/* A duration as written in the configuration: "60s", "1500ms". */
void ed_http_cgi_duration(ed_msec_t ms, char *buf, size_t size);
/* Worker exit: every group still running gets SIGKILL. */
void ed_http_cgi_proc_exit_worker(void);

#endif /* ED_HTTP_CGI_HANDLER_H */
