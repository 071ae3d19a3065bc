/* The cache manager: one process (`eddy: cache manager`), forked by the
 * master when `caches` is set, respawned when it dies, replaced at each
 * reload. It does the disk work no request should wait for and the
 * master must never do (a stuck disk would delay signals and reloads):
 * it loads the entries found on disk into the index, in slices, then
 * every second, and at once when a worker's write failed, removes
 * entries unused for `inactive`, least recently used ones over
 * `max_size` or while the file system has less than `min_free` (or a
 * worker found it full), and temp files left by dead processes or older
 * than ten minutes. Workers keep serving meanwhile: a lookup that finds
 * no index entry opens the file itself. */
#include "ed_http_cache.h"
#include "ed_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#define ED_CM_SLICE          1000     /* files per loading slice */
#define ED_CM_REST_USEC      50000    /* rest after a slice */
#define ED_CM_TMP_AGE        600      /* temp files older: removed */
#define ED_CM_EVICT          64       /* files removed per pass */
#define ED_CM_RESPAWN_MSEC   1000

/* An entry the walk added to the index, and its file's time. */
typedef struct {
    int64_t  used;             /* seconds, as the index has it */
    int64_t  nsec;             /* within the second: orders a burst */
    uint8_t  hash[ED_CACHE_HASH_LEN];
} ed_cm_seen_t;

static struct {
    ed_loop_t    *loop;
    ed_cycle_t   *cycle;
    char *const  *argv;
    pid_t         pid;
    pid_t         old[8];     /* replaced ones, reaped quietly */
    ed_timer_t    respawn;
    unsigned      loaded;     /* files loaded (in the manager) */
    ed_cm_seen_t *seen;       /* entries loaded: their hash and time */
    size_t        nseen, aseen;
    int           bell;       /* eventfd workers ring, -1: none */
} ed_cm = { .bell = -1 };

/* The manager. */

/* Shows `eddy: cache manager` in ps: argv's own memory is rewritten. */
static void
ed_cm_title(void)
{
    static const char title[] = "eddy: cache manager";
    char             *start, *end;
    size_t            i;

    (void)prctl(PR_SET_NAME, "eddy: cache", 0, 0, 0);
    if (ed_cm.argv == NULL || ed_cm.argv[0] == NULL) {
        return;
    }
    start = ed_cm.argv[0];
    end = start + strlen(start) + 1;
    for (i = 1; ed_cm.argv[i] && ed_cm.argv[i] == end; i++) {
        end += strlen(ed_cm.argv[i]) + 1;
    }
    if ((size_t)(end - start) < sizeof(title)) {
        return;
    }
    memset(start, 0, (size_t)(end - start));
    memcpy(start, title, sizeof(title));
}

/* Removes the files of hashes[0..n). */
static void
ed_cm_unlink(const ed_http_cache_t *c, const uint8_t *hashes, size_t n)
{
    char   path[PATH_MAX];
    size_t i;

    for (i = 0; i < n; i++) {
        if (ed_http_cache_path(c, hashes + i * ED_CACHE_HASH_LEN, path,
                               sizeof(path))
            && unlink(path) != 0 && errno != ENOENT)
        {
            ed_log(ED_LOG_ERR, ed_log_cur, errno, "cache \"%s\": "
                   "unlink(\"%s\") failed", c->name.data, path);
        }
    }
}

/* Kept for ed_cm_order(); without memory the order is the walk's. */
static void
ed_cm_seen(const uint8_t *hash, const struct timespec *t)
{
    ed_cm_seen_t *p;
    size_t        n;

    if (ed_cm.nseen == ed_cm.aseen) {
        n = ed_cm.aseen ? ed_cm.aseen * 2 : 4096;
        p = realloc(ed_cm.seen, n * sizeof(*p));
        if (p == NULL) {
            return;
        }
        ed_cm.seen = p;
        ed_cm.aseen = n;
    }
    p = &ed_cm.seen[ed_cm.nseen++];
    p->used = (int64_t)t->tv_sec;
    p->nsec = (int64_t)t->tv_nsec;
    memcpy(p->hash, hash, ED_CACHE_HASH_LEN);
}

static int
ed_cm_newer_first(const void *a, const void *b)
{
    const ed_cm_seen_t *x = a, *y = b;

    if (x->used != y->used) {
        return x->used > y->used ? -1 : 1;
    }
    return x->nsec > y->nsec ? -1 : x->nsec < y->nsec;
}

/* The walk put the loaded entries in the LRU in directory order: they
 * are ordered by their files' times (when each was stored: the disk
 * keeps no later use), behind any entry requested meanwhile, so that
 * max_size evicts the least recently used first after a restart too. */
static void
ed_cm_order(ed_http_cache_t *c)
{
    size_t i;

    if (ed_cm.nseen > 1) {
        /* (qsort's base may not be NULL, even for no element.) */
        qsort(ed_cm.seen, ed_cm.nseen, sizeof(ed_cm_seen_t),
              ed_cm_newer_first);
    }
    for (i = 0; i < ed_cm.nseen; i++) {
        ed_http_cache_index_sink(c->zone, ed_cm.seen[i].hash,
                                 ed_cm.seen[i].used);
    }
    free(ed_cm.seen);
    ed_cm.seen = NULL;
    ed_cm.nseen = ed_cm.aseen = 0;
}

/* One file found while loading: its header is checked (not its CRC,
 * which a hit checks) and it is counted in the index. */
static void
ed_cm_load_file(ed_http_cache_t *c, int dfd, const char *name, void *arg)
{
    ed_http_cache_hdr_t hdr;
    struct stat         st;
    uint8_t             hash[ED_CACHE_HASH_LEN], dropped[ED_CACHE_HASH_LEN];
    char                buf[sizeof(hdr)];
    ssize_t             n;
    size_t              nd;
    int                 fd, rc;

    ed_unused(arg);
    if (ed_http_cache_unhex(name, hash) != ED_OK) {
        return;
    }
    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    n = pread(fd, buf, sizeof(buf), 0);
    close(fd);
    rc = ed_http_cache_hdr_check(buf, n > 0 ? (size_t)n : 0,
                                 (uint64_t)st.st_size, &hdr);
    if (rc != ED_CACHE_HDR_SHORT && rc != ED_CACHE_HDR_OK) {
        ed_log(ED_LOG_ERR, ed_log_cur, 0, "cache \"%s\": invalid file "
               "\"%s\" (%s), removed", c->name.data, name,
               ed_http_cache_hdr_error(rc));
        (void)unlinkat(dfd, name, 0);
        return;
    }
    if (ed_http_cache_index_load(c->zone, hash, (int64_t)st.st_blocks * 512,
                                 (int64_t)st.st_mtim.tv_sec, dropped, &nd))
    {
        ed_cm_seen(hash, &st.st_mtim);
    }
    if (nd) {
        ed_cm_unlink(c, dropped, nd);
    }
    if (++ed_cm.loaded % ED_CM_SLICE == 0) {
        usleep(ED_CM_REST_USEC);
    }
}

typedef void (*ed_cm_file_pt)(ed_http_cache_t *c, int dfd, const char *name,
                              void *arg);

/* Walks dir at level depth (0: the cache's path) down to the files,
 * calling fn for each. */
static void
ed_cm_walk(ed_http_cache_t *c, int fd, unsigned depth, ed_cm_file_pt fn,
           void *arg)
{
    struct dirent *de;
    DIR           *d;
    int            sub;

    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;   /* ".", "..", ".tmp" */
        }
        if (depth == c->nlevels) {
            fn(c, dirfd(d), de->d_name, arg);
            continue;
        }
        if (strlen(de->d_name) != c->levels[depth]) {
            continue;
        }
        sub = openat(dirfd(d), de->d_name,
                     O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (sub >= 0) {
            ed_cm_walk(c, sub, depth + 1, fn, arg);
        }
    }
    closedir(d);
}

typedef struct {
    const char *prefix;
    size_t      len;
    unsigned    removed;
} ed_cm_purge_t;

/* A wildcard PURGE: the file goes when its key starts with the prefix. */
static void
ed_cm_purge_file(ed_http_cache_t *c, int dfd, const char *name, void *arg)
{
    ed_cm_purge_t      *job = arg;
    ed_http_cache_hdr_t hdr;
    struct stat         st;
    uint8_t             hash[ED_CACHE_HASH_LEN];
    char                buf[sizeof(hdr) + ED_CACHE_KEY_MAX];
    ssize_t             n;
    int                 fd, rc;

    if (ed_http_cache_unhex(name, hash) != ED_OK) {
        return;
    }
    fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return;
    }
    n = fstat(fd, &st) == 0 ? pread(fd, buf, sizeof(buf), 0) : -1;
    close(fd);
    rc = ed_http_cache_hdr_check(buf, n > 0 ? (size_t)n : 0,
                                 (uint64_t)st.st_size, &hdr);
    if ((rc == ED_CACHE_HDR_SHORT || rc == ED_CACHE_HDR_OK)
        && n >= (ssize_t)(hdr.key_off + hdr.key_len)
        && hdr.key_len >= job->len
        && memcmp(buf + hdr.key_off, job->prefix, job->len) == 0
        && unlinkat(dfd, name, 0) == 0)
    {
        ed_http_cache_index_remove(c->zone, hash);
        job->removed++;
    }
}

/* The wildcard PURGE jobs workers left in path/.purge/. */
static void
ed_cm_purge_jobs(ed_http_cache_t *c)
{
    struct dirent *de;
    ed_cm_purge_t  job;
    char           dir[PATH_MAX], prefix[ED_CACHE_KEY_MAX + 1];
    ssize_t        n;
    DIR           *d;
    int            fd;

    snprintf(dir, sizeof(dir), "%s/.purge", c->path.data);
    d = opendir(dir);
    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        n = fd >= 0 ? read(fd, prefix, sizeof(prefix) - 1) : -1;
        if (fd >= 0) {
            close(fd);
        }
        (void)unlinkat(dirfd(d), de->d_name, 0);
        if (n < 0) {
            continue;
        }
        prefix[n] = '\0';
        job.prefix = prefix;
        job.len = (size_t)n;
        job.removed = 0;
        fd = open(c->path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC
                                | O_NOFOLLOW);
        if (fd >= 0) {
            ed_cm_walk(c, fd, 0, ed_cm_purge_file, &job);
        }
        ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "cache \"%s\": purged %u "
               "files for \"%s*\"", c->name.data, job.removed, prefix);
    }
    closedir(d);
}

/* Temp files of dead processes, or older than ED_CM_TMP_AGE. */
static void
ed_cm_clean_tmp(ed_http_cache_t *c, time_t now)
{
    struct dirent *de;
    struct stat    st;
    char           path[PATH_MAX];
    long           pid;
    DIR           *d;

    snprintf(path, sizeof(path), "%s/.tmp", c->path.data);
    d = opendir(path);
    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.'
            || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        {
            continue;
        }
        pid = strtol(de->d_name, NULL, 10);
        if (st.st_mtim.tv_sec + ED_CM_TMP_AGE < now
            || (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH))
        {
            (void)unlinkat(dirfd(d), de->d_name, 0);
        }
    }
    closedir(d);
}

/* One pass of eviction over a cache; asked: a worker's write failed
 * (the disk is full), least recently used entries go as under
 * min_free. */
static void
ed_cm_evict(ed_http_cache_t *c, time_t now, bool asked)
{
    uint8_t        out[ED_CM_EVICT * ED_CACHE_HASH_LEN];
    struct statvfs vfs;
    size_t         n, force = 0;

    if (asked
        || (c->min_free && statvfs(c->path.data, &vfs) == 0
            && (uint64_t)vfs.f_bavail * vfs.f_frsize < c->min_free))
    {
        force = ED_CM_EVICT / 4;
    }
    do {
        n = ed_http_cache_index_evict(c->zone, (int64_t)now,
                                      (uint64_t)c->max_size,
                                      (int64_t)(c->inactive / 1000), force,
                                      out, ED_CM_EVICT);
        ed_cm_unlink(c, out, n);
        force = 0;
    } while (n == ED_CM_EVICT);
}

/* Closes every descriptor from 3 on but a and b (-1: none). */
static void
ed_cm_close_others(int a, int b)
{
    int keep[2], t, from = 3, i;

    keep[0] = a;
    keep[1] = b;
    if (keep[0] > keep[1]) {
        t = keep[0];
        keep[0] = keep[1];
        keep[1] = t;
    }
    for (i = 0; i < 2; i++) {
        if (keep[i] < from) {
            continue;
        }
        if (keep[i] > from) {
            close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
        }
        from = keep[i] + 1;
    }
    close_range((unsigned)from, ~0U, 0);
}

/* Waits up to a second for a worker's ring. */
static void
ed_cm_wait(void)
{
    struct pollfd pfd;
    uint64_t      v;

    if (ed_cm.bell < 0) {
        sleep(1);
        return;
    }
    pfd.fd = ed_cm.bell;
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll(&pfd, 1, 1000) > 0) {
        (void)!read(ed_cm.bell, &v, sizeof(v));
        /* Rings come with failed writes, as fast as requests: a pass
         * every 100 ms at most. */
        usleep(100 * 1000);
    }
}

void
ed_http_cache_manager_ask(ed_http_cache_zone_t *z)
{
    uint64_t one = 1;

    ed_http_cache_evict_ask(z);
    if (ed_cm.bell >= 0) {
        /* Non-blocking: a full counter has rung already. */
        (void)!write(ed_cm.bell, &one, sizeof(one));
    }
}

static void __attribute__((noreturn))
ed_cm_main(pid_t master)
{
    ed_http_cache_t **all;
    sigset_t          none;
    size_t            i, n;
    time_t            now, last_tmp = 0;
    bool              asked;
    int               logfd = ed_log_cur->fd, fd;

    ed_pid = getpid();
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    ed_log_tee_fd = -1;
    /* Listeners, channels, the master's epoll: none of them is ours;
     * the log and the bell are. */
    ed_cm_close_others(logfd, ed_cm.bell);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0
        || getppid() != master)
    {
        _exit(0);
    }
    ed_cm_title();
    if (ed_worker_setuid(ed_cm.cycle) != ED_OK
        || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    {
        _exit(1);
    }
    all = ed_http_cache_all(ed_cm.cycle, &n);
    for (i = 0; i < n; i++) {
        ed_cm_clean_tmp(all[i], time(NULL));
        fd = open(all[i]->path.data,
                  O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            ed_cm.loaded = 0;
            ed_cm_walk(all[i], fd, 0, ed_cm_load_file, NULL);
            ed_cm_order(all[i]);
            ed_log(ED_LOG_NOTICE, ed_log_cur, 0, "cache \"%s\": %u files "
                   "loaded", all[i]->name.data, ed_cm.loaded);
        }
    }
    for (;;) {
        now = time(NULL);
        for (i = 0; i < n; i++) {
            ed_cm_purge_jobs(all[i]);
            /* A disk that stays full (filled by something else) would
             * have each failed write take entries: a forced batch a
             * second at most, the ring is kept for later meanwhile. */
            asked = all[i]->evict_forced != now
                    && ed_http_cache_evict_asked(all[i]->zone);
            if (asked) {
                all[i]->evict_forced = now;
            }
            ed_cm_evict(all[i], now, asked);
            if (now - last_tmp >= 5) {
                ed_cm_clean_tmp(all[i], now);
            }
        }
        if (now - last_tmp >= 5) {
            last_tmp = now;
        }
        ed_cm_wait();
    }
}

/* The master's side. */

static void
ed_cm_spawn(void)
{
    pid_t pid, master = getpid();

    pid = fork();
    if (pid < 0) {
        ed_log(ED_LOG_ALERT, ed_log_cur, errno, "fork() failed for the "
               "cache manager; again in 1 s");
        ed_timer_add(ed_cm.loop, &ed_cm.respawn, ED_CM_RESPAWN_MSEC);
        return;
    }
    if (pid == 0) {
        ed_cm_main(master);
    }
    ed_cm.pid = pid;
}

static void
ed_cm_on_respawn(ed_timer_t *t)
{
    ed_unused(t);
    if (ed_cm.pid == 0 && ed_cm.cycle != NULL) {
        ed_cm_spawn();
    }
}

/* The running manager goes (SIGTERM); its exit is reaped quietly. */
static void
ed_cm_retire(void)
{
    size_t i;

    if (ed_cm.pid <= 0) {
        return;
    }
    kill(ed_cm.pid, SIGTERM);
    for (i = 0; i < ed_nelems(ed_cm.old); i++) {
        if (ed_cm.old[i] == 0) {
            ed_cm.old[i] = ed_cm.pid;
            break;
        }
    }
    ed_cm.pid = 0;
}

void
ed_http_cache_manager_start(ed_loop_t *loop, ed_cycle_t *cycle,
                            char *const *argv)
{
    size_t n;

    ed_cm.loop = loop;
    ed_cm.argv = argv;
    ed_cm.respawn.handler = ed_cm_on_respawn;
    ed_timer_del(loop, &ed_cm.respawn);
    ed_cm_retire();
    ed_cm.cycle = NULL;
    (void)ed_http_cache_all(cycle, &n);
    if (n == 0) {
        return;
    }
    ed_cm.cycle = cycle;
    if (ed_cm.bell < 0) {
        /* Made once, before any worker that may ring it is forked: the
         * workers of this cycle and later ones inherit it. Without it
         * the manager keeps its one-second round. */
        ed_cm.bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ed_cm.bell < 0) {
            ed_log(ED_LOG_WARN, ed_log_cur, errno, "eventfd() failed: the "
                   "cache manager evicts every second only");
        }
    }
    ed_cm_spawn();
}

bool
ed_http_cache_manager_reaped(pid_t pid, int status)
{
    size_t i;

    for (i = 0; i < ed_nelems(ed_cm.old); i++) {
        if (ed_cm.old[i] == pid) {
            ed_cm.old[i] = 0;
            return true;
        }
    }
    if (pid != ed_cm.pid || pid == 0) {
        return false;
    }
    ed_cm.pid = 0;
    if (WIFSIGNALED(status)) {
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "cache manager %d exited on "
               "signal %d; respawning", (int)pid, WTERMSIG(status));
    } else {
        ed_log(ED_LOG_ALERT, ed_log_cur, 0, "cache manager %d exited with "
               "code %d; respawning", (int)pid, WEXITSTATUS(status));
    }
    if (ed_cm.cycle != NULL) {
        ed_timer_add(ed_cm.loop, &ed_cm.respawn, ED_CM_RESPAWN_MSEC);
    }
    return true;
}

void
ed_http_cache_manager_stop(void)
{
    if (ed_cm.loop != NULL) {
        ed_timer_del(ed_cm.loop, &ed_cm.respawn);
    }
    ed_cm_retire();
    ed_cm.cycle = NULL;
}
