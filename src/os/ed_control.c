/* `eddy -s SIGNAL`: finds the master through pid_file, signals it, and
 * waits for what the operator asked: the reload's verdict, or the
 * master's exit on quit and stop. */
#include "ed_control.h"
#include "ed_process.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>

static int
ed_signal_number(const char *word)
{
    static const struct {
        const char *word;
        int         signo;
    } words[] = {
        { "reload", SIGHUP }, { "quit", SIGQUIT }, { "stop", SIGTERM },
        { "reopen", SIGUSR1 }, { "upgrade", SIGUSR2 },
    };
    size_t i;

    for (i = 0; i < ed_nelems(words); i++) {
        if (strcmp(word, words[i].word) == 0) {
            return words[i].signo;
        }
    }
    return -1;
}

/* Reads "PID SEQ STATUS" from the reload status file. */
static bool
ed_read_reload_status(const char *path, long *pid, unsigned long *seq,
                      char *text, size_t size)
{
    FILE  *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        return false;
    }
    n = fread(text, 1, size - 1, f);
    fclose(f);
    text[n] = '\0';
    return sscanf(text, "%ld %lu", pid, seq) == 2;
}

/* Waits (up to 10 s) for the master's verdict on the new configuration,
 * newer than seq. */
static int
ed_control_reload_wait(const char *spath, long pid, unsigned long seq)
{
    char          text[8192], *nl;
    long          spid;
    unsigned long nseq;
    int           i;

    for (i = 0; i < 200; i++) {
        usleep(50000);
        if (ed_read_reload_status(spath, &spid, &nseq, text, sizeof(text))
            && spid == pid && nseq > seq)
        {
            nl = strchr(text, '\n');
            if (strstr(text, " ok\n") && nl && strstr(text, " ok\n") < nl + 1)
            {
                fprintf(stderr, "eddy: reload done\n");
                return 0;
            }
            fprintf(stderr, "%s", nl ? nl + 1 : "");
            fprintf(stderr, "eddy: reload failed: the running configuration "
                    "was kept\n");
            return 1;
        }
    }
    fprintf(stderr, "eddy: no answer from the master (pid %ld) within 10 s\n",
            pid);
    return 1;
}

/* Whether pid is gone: no such process, or a zombie its parent has not
 * reaped yet (it has exited all the same). */
static bool
ed_control_gone(pid_t pid)
{
    char  path[64], buf[512], *p;
    FILE *f;
    size_t n;

    if (kill(pid, 0) != 0 && errno == ESRCH) {
        return true;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return errno == ENOENT;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Waits until the master pid has exited, at most bound ms: a pidfd
 * becomes readable when the process exits (no race with a reused pid);
 * without pidfd_open (before Linux 5.3), kill(pid, 0) is polled. */
static bool
ed_control_exit_wait(pid_t pid, int pidfd, ed_msec_t bound)
{
    struct pollfd pfd;
    ed_msec_t     deadline;
    int           rc;

    ed_time_update();
    deadline = ed_current_msec + bound;
    if (pidfd >= 0) {
        pfd.fd = pidfd;
        pfd.events = POLLIN;
        for (;;) {
            ed_time_update();
            if (ed_current_msec >= deadline) {
                return false;
            }
            rc = poll(&pfd, 1, (int)(deadline - ed_current_msec));
            if (rc > 0) {
                return true;
            }
            if (rc < 0 && errno != EINTR) {
                break;
            }
        }
    }
    for (;;) {
        if (ed_control_gone(pid)) {
            return true;
        }
        ed_time_update();
        if (ed_current_msec >= deadline) {
            return false;
        }
        usleep(20000);
    }
}

/* The pid in a pid file: digits and an optional newline, as the master
 * writes it; -1 for anything else ("12abc" is no pid 12). */
static long
ed_control_pid(const char *buf)
{
    char *end;
    long  pid;

    if (buf[0] < '0' || buf[0] > '9') {
        return -1;
    }
    errno = 0;
    pid = strtol(buf, &end, 10);
    if (errno != 0 || (*end != '\0' && strcmp(end, "\n") != 0)) {
        return -1;
    }
    return pid;
}

/* The file name of the executable of /proc/PID (self for our own),
 * without the " (deleted)" of a binary replaced on disk; false when it
 * cannot be read. */
static bool
ed_control_exe(const char *pid, char *name, size_t size)
{
    char    path[64], buf[PATH_MAX + 16], *base;
    ssize_t n;
    size_t  len;

    snprintf(path, sizeof(path), "/proc/%s/exe", pid);
    n = readlink(path, buf, sizeof(buf) - 1);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    len = (size_t)n;
    if (len > 10 && strcmp(buf + len - 10, " (deleted)") == 0) {
        buf[len - 10] = '\0';
    }
    base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    len = ed_min(strlen(base), size - 1);
    memcpy(name, base, len);
    name[len] = '\0';
    return true;
}

/* Whether pid may be a master of ours: its executable has this one's
 * name (the same binary, or the one a binary upgrade started). A pid
 * file left by a master that died names, once the pid is reused, a
 * process of another program, which must not get the signal. What
 * cannot be read (no /proc, no permission) is not held against it. */
static bool
ed_control_is_eddy(long pid, char *name, size_t size)
{
    char self[NAME_MAX + 1], num[24];

    snprintf(num, sizeof(num), "%ld", pid);
    if (!ed_control_exe("self", self, sizeof(self))
        || !ed_control_exe(num, name, size))
    {
        return true;
    }
    return strcmp(self, name) == 0;
}

/* pid_file and the time a quit may take (drain_delay plus
 * shutdown_timeout) when the configuration has errors: read from the
 * file's tree when it parsed, else the defaults. */
static void
ed_control_fallback(ed_conf_t *errors, const char *prefix, char *pid_file,
                    size_t size, ed_msec_t *timeout)
{
    ed_node_t *root = errors && errors->cycle ? errors->cycle->root : NULL;
    ed_node_t *n;
    ed_msec_t  t;

    *timeout = 10000;
    if (ED_PID_PATH[0] == '/') {
        snprintf(pid_file, size, "%s", ED_PID_PATH);
    } else {
        snprintf(pid_file, size, "%s/%s", prefix, ED_PID_PATH);
    }
    if (root == NULL || root->type != ED_NODE_MAP) {
        return;
    }
    n = ed_conf_get(root, "pid_file");
    if (n && n->type == ED_NODE_SCALAR && n->value.len) {
        if (n->value.data[0] == '/') {
            snprintf(pid_file, size, "%s", n->value.data);
        } else {
            snprintf(pid_file, size, "%s/%s", prefix, n->value.data);
        }
    }
    n = ed_conf_get(root, "shutdown_timeout");
    if (n && n->type == ED_NODE_SCALAR) {
        t = ed_conf_parse_msec(n->value.data, n->value.len);
        if (t != (ed_msec_t)-1) {
            *timeout = t;
        }
    }
    n = ed_conf_get(root, "drain_delay");
    if (n && n->type == ED_NODE_SCALAR) {
        t = ed_conf_parse_msec(n->value.data, n->value.len);
        if (t != (ed_msec_t)-1) {
            *timeout += t;
        }
    }
}

int
ed_control(const char *word, const char *prefix, ed_cycle_t *cycle,
           ed_conf_t *errors)
{
    char          buf[64], pid_file[PATH_MAX + 1], spath[PATH_MAX + 16];
    char          text[8192], exe[NAME_MAX + 1];
    long          pid, spid = 0;
    unsigned long seq = 0;
    ed_msec_t     timeout;
    int           signo, fd, pidfd = -1;
    ssize_t       n;

    signo = ed_signal_number(word);
    if (signo < 0) {
        fprintf(stderr, "eddy: invalid signal \"%s\": expected reload, quit, "
                "stop, reopen or upgrade\n", word);
        return 1;
    }
    if (cycle) {
        snprintf(pid_file, sizeof(pid_file), "%s",
                 ed_core_conf(cycle)->pid_file.data);
        timeout = ed_core_conf(cycle)->shutdown_timeout
                  + ed_core_conf(cycle)->drain_delay;
    } else if (signo == SIGHUP || signo == SIGUSR2) {
        /* The master would refuse this configuration: say why now. */
        ed_conf_print_errors(errors);
        fprintf(stderr, "eddy: the configuration has errors: not sending "
                "%s\n", word);
        return 1;
    } else {
        /* Stopping or reopening needs only the pid file: a broken
         * configuration must not keep the operator from doing it. */
        ed_control_fallback(errors, prefix, pid_file, sizeof(pid_file),
                            &timeout);
        fprintf(stderr, "eddy: warning: the configuration has errors "
                "(eddy -t lists them); using pid_file %s\n", pid_file);
    }

    fd = open(pid_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "eddy: no running master: cannot open pid file %s "
                "(%s)\n", pid_file, strerror(errno));
        return 1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    pid = ed_control_pid(buf);
    if (pid <= 0 || pid > INT_MAX || kill((pid_t)pid, 0) != 0) {
        fprintf(stderr, "eddy: no running master: pid file %s names %s\n",
                pid_file, pid > 0 ? "a process that is gone"
                                  : "no process");
        return 1;
    }
    if (!ed_control_is_eddy(pid, exe, sizeof(exe))) {
        fprintf(stderr, "eddy: no running master: pid file %s names pid "
                "%ld, which runs \"%s\", not eddy (a stale pid file?)\n",
                pid_file, pid, exe);
        return 1;
    }
    ed_reload_status_path(pid_file, spath, sizeof(spath));
    if (!ed_read_reload_status(spath, &spid, &seq, text, sizeof(text))
        || spid != pid)
    {
        seq = 0;
    }
#ifdef SYS_pidfd_open
    if (signo == SIGQUIT || signo == SIGTERM) {
        /* Opened before the signal: the pid cannot be reused under us. */
        pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    }
#endif
    if (kill((pid_t)pid, signo) != 0) {
        fprintf(stderr, "eddy: kill(%ld) failed: %s\n", pid, strerror(errno));
        if (pidfd >= 0) {
            close(pidfd);
        }
        return 1;
    }
    if (signo == SIGHUP) {
        return ed_control_reload_wait(spath, pid, seq);
    }
    if (signo != SIGQUIT && signo != SIGTERM) {
        return 0;
    }
    /* The master drains for drain_delay, gives its workers
     * shutdown_timeout, then kills them; 5 s more covers that and its
     * own exit. */
    timeout += 5000;
    if (ed_control_exit_wait((pid_t)pid, pidfd, timeout)) {
        fprintf(stderr, "eddy: stopped (pid %ld)\n", pid);
        signo = 0;
    } else {
        fprintf(stderr, "eddy: master (pid %ld) still running after %llu s\n",
                pid, (unsigned long long)(timeout + 999) / 1000);
        signo = 1;
    }
    if (pidfd >= 0) {
        close(pidfd);
    }
    return signo;
}
