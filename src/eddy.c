/* eddy: the command line, then the master, a test of the configuration,
 * or a signal to a running master. */
#include "ed_process.h"
#include "ed_socket.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <sys/stat.h>
#include <yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static void
ed_usage(FILE *out)
{
    fprintf(out,
            "usage: eddy [-c FILE] [-p PREFIX] [-t | -T] [-d] [-s SIGNAL] "
            "[-v | -V] [-h]\n\n"
            "  -c, --config FILE   configuration file (default "
            "conf/eddy.yaml under the prefix)\n"
            "  -p, --prefix DIR    prefix for relative paths (default: the "
            "current directory)\n"
            "  -t, --test          test the configuration and exit\n"
            "  -T, --dump          test, then print the effective "
            "configuration\n"
            "  -d, --daemon        detach from the terminal\n"
            "  -s, --signal SIG    send reload, quit, stop, reopen or "
            "upgrade to the master\n"
            "  -v, --version       print the version\n"
            "  -V                  print the version, modules and "
            "libraries\n"
            "  -h, --help          this help\n");
}

static void
ed_print_versions(void)
{
    char         pcre[64];
    ed_module_t *m;
    size_t       i;

    printf("eddy/%s\n", ED_VERSION);
    printf("configure arguments: %s\n", ED_CONFIGURE_ARGS);
    printf("modules:");
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        printf(" %s", m->name);
    }
    printf("\n");
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    printf("OpenSSL: %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("PCRE2: %s\n", pcre);
    printf("libyaml: %s\n", yaml_get_version_string());
}

static void
ed_print_errors(ed_conf_t *cf)
{
    unsigned i;

    for (i = 0; cf && i < cf->nerrors && i < ED_CONF_MAX_ERRORS; i++) {
        fprintf(stderr, "%s\n", cf->errors[i]);
    }
    if (cf && cf->nerrors > ED_CONF_MAX_ERRORS) {
        fprintf(stderr, "eddy: %u more errors not shown\n",
                cf->nerrors - ED_CONF_MAX_ERRORS);
    }
}

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

static int
ed_send_signal(ed_cycle_t *cycle, const char *word)
{
    ed_core_conf_t *ccf = ed_core_conf(cycle);
    char            buf[64], spath[PATH_MAX + 16], text[8192];
    long            pid, spid = 0;
    unsigned long   seq = 0, nseq;
    int             signo, fd, i;
    ssize_t         n;
    char           *nl;

    signo = ed_signal_number(word);
    if (signo < 0) {
        fprintf(stderr, "eddy: invalid signal \"%s\": expected reload, quit, "
                "stop, reopen or upgrade\n", word);
        return 1;
    }
    fd = open(ccf->pid_file.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "eddy: no running master: cannot open pid file %s "
                "(%s)\n", ccf->pid_file.data, strerror(errno));
        return 1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    pid = strtol(buf, NULL, 10);
    if (pid <= 0 || kill((pid_t)pid, 0) != 0) {
        fprintf(stderr, "eddy: no running master: pid file %s names %s\n",
                ccf->pid_file.data, pid > 0 ? "a process that is gone"
                                            : "no process");
        return 1;
    }
    ed_reload_status_path(ccf->pid_file.data, spath, sizeof(spath));
    if (!ed_read_reload_status(spath, &spid, &seq, text, sizeof(text))
        || spid != pid)
    {
        seq = 0;
    }
    if (kill((pid_t)pid, signo) != 0) {
        fprintf(stderr, "eddy: kill(%ld) failed: %s\n", pid, strerror(errno));
        return 1;
    }
    if (signo != SIGHUP) {
        return 0;
    }
    /* Wait for the master's verdict on the new configuration. */
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

static ed_node_t *
ed_dump_scalar(ed_pool_t *pool, const char *text)
{
    ed_node_t *n = ed_pcalloc(pool, sizeof(ed_node_t));

    if (n) {
        n->type = ED_NODE_SCALAR;
        n->file = "(default)";
        n->value.data = (char *)text;
        n->value.len = strlen(text);
    }
    return n;
}

/* Adds to map every key of keys allowed in ctx that has a default and is
 * not set, so that -T shows the effective configuration. */
static int
ed_dump_defaults(ed_pool_t *pool, ed_node_t *map, const ed_key_t *keys,
                 unsigned ctx)
{
    const ed_key_t *k;
    ed_node_t     **items;
    size_t          extra = 0;

    for (k = keys; k && k->name; k++) {
        if ((k->ctx & ctx) && k->def && ed_conf_get(map, k->name) == NULL) {
            extra++;
        }
    }
    if (extra == 0) {
        return ED_OK;
    }
    items = ed_palloc(pool, 2 * (map->n + extra) * sizeof(ed_node_t *));
    if (items == NULL) {
        return ED_ERROR;
    }
    if (map->n) {
        memcpy(items, map->items, 2 * map->n * sizeof(ed_node_t *));
    }
    map->items = items;
    for (k = keys; k->name; k++) {
        if ((k->ctx & ctx) && k->def && ed_conf_get(map, k->name) == NULL) {
            items[2 * map->n] = ed_dump_scalar(pool, k->name);
            items[2 * map->n + 1] = ed_dump_scalar(pool, k->def);
            if (items[2 * map->n] == NULL || items[2 * map->n + 1] == NULL) {
                return ED_ERROR;
            }
            map->n++;
        }
    }
    return ED_OK;
}

static void
ed_dump(ed_cycle_t *cycle)
{
    ed_module_t *m;
    ed_node_t   *events;
    size_t       i;

    events = ed_conf_get(cycle->root, "events");
    if (events == NULL) {
        static const ed_key_t key[] = {
            { "events", ED_CTX_MAIN, 0, NULL, 0, 0, NULL, "" },
            { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
        };

        if (ed_dump_defaults(cycle->pool, cycle->root, key, ED_CTX_MAIN)
            != ED_OK)
        {
            return;
        }
        events = ed_conf_get(cycle->root, "events");
        events->type = ED_NODE_MAP;
    }
    if (events->type == ED_NODE_MAP
        && ed_dump_defaults(cycle->pool, events, ed_core_events_keys,
                            ED_CTX_MAIN) != ED_OK)
    {
        return;
    }
    for (i = 0; (m = ed_modules[i]) != NULL; i++) {
        if (ed_dump_defaults(cycle->pool, cycle->root, m->keys, ED_CTX_MAIN)
            != ED_OK)
        {
            return;
        }
    }
    ed_conf_dump(stdout, cycle->root);
}

static int
ed_daemonize(void)
{
    int fd;

    switch (fork()) {
    case -1:
        return ED_ERROR;
    case 0:
        break;
    default:
        _exit(0);
    }
    if (setsid() < 0) {
        return ED_ERROR;
    }
    fd = open("/dev/null", O_RDWR);
    if (fd < 0) {
        return ED_ERROR;
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (ed_log_cur->fd != STDERR_FILENO) {
        dup2(fd, STDERR_FILENO);
    }
    if (fd > STDERR_FILENO) {
        close(fd);
    }
    return ED_OK;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "prefix", required_argument, NULL, 'p' },
        { "test", no_argument, NULL, 't' },
        { "dump", no_argument, NULL, 'T' },
        { "daemon", no_argument, NULL, 'd' },
        { "signal", required_argument, NULL, 's' },
        { "version", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char     *conf = NULL, *prefix = NULL, *sig = NULL;
    char            cwd[PATH_MAX], confbuf[PATH_MAX + 32];
    bool            test = false, dump = false, daemon_flag = false;
    ed_cycle_t     *cycle;
    ed_conf_t      *errors;
    ed_core_conf_t *ccf;
    int             c, rc;

    while ((c = getopt_long(argc, argv, "c:p:tTds:vVh", longopts, NULL))
           != -1)
    {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'T':
            test = dump = true;
            break;
        case 'd':
            daemon_flag = true;
            break;
        case 's':
            sig = optarg;
            break;
        case 'v':
            printf("eddy/%s\n", ED_VERSION);
            return 0;
        case 'V':
            ed_modules_init();
            ed_print_versions();
            return 0;
        case 'h':
            ed_usage(stdout);
            return 0;
        default:
            ed_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "eddy: unexpected argument \"%s\"\n", argv[optind]);
        ed_usage(stderr);
        return 1;
    }

    ed_pid = getpid();
    ed_time_update();
    ed_modules_init();
    if (prefix == NULL) {
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            fprintf(stderr, "eddy: getcwd() failed: %s\n", strerror(errno));
            return 2;
        }
        prefix = cwd;
    } else if (prefix[0] != '/') {
        if (realpath(prefix, cwd) == NULL) {
            fprintf(stderr, "eddy: invalid prefix %s: %s\n", prefix,
                    strerror(errno));
            return 1;
        }
        prefix = cwd;
    }
    if (conf == NULL) {
        snprintf(confbuf, sizeof(confbuf), "%s/conf/eddy.yaml", prefix);
        conf = confbuf;
    }

    cycle = ed_cycle_load(conf, prefix, &errors);
    if (cycle == NULL) {
        ed_print_errors(errors);
        ed_cycle_errors_free(errors);
        if (test) {
            fprintf(stderr, "eddy: configuration file %s test failed\n",
                    conf);
        }
        return 1;
    }
    if (sig) {
        rc = ed_send_signal(cycle, sig);
        ed_cycle_free(cycle);
        return rc;
    }
    if (test) {
        fprintf(stderr, "eddy: configuration file %s test is successful\n",
                conf);
        if (dump) {
            ed_dump(cycle);
        }
        ed_cycle_free(cycle);
        return 0;
    }

    ccf = ed_core_conf(cycle);
    ed_log_stderr.level = (unsigned)ccf->error_level;
    if (ed_listeners_open(cycle, NULL, ed_log_cur) != ED_OK) {
        ed_cycle_free(cycle);
        return 2;
    }
    if (ed_log_open(&cycle->log, ccf->error_log.data,
                    (unsigned)ccf->error_level) != ED_OK)
    {
        fprintf(stderr, "eddy: cannot open error log %s: %s\n",
                ccf->error_log.data, strerror(errno));
        ed_cycle_free(cycle);
        return 2;
    }
    ed_log_cur = &cycle->log;
    if ((daemon_flag || ccf->daemon == 1) && ed_daemonize() != ED_OK) {
        ed_log(ED_LOG_EMERG, ed_log_cur, errno, "daemonizing failed");
        ed_cycle_free(cycle);
        return 2;
    }
    ed_pid = getpid();
    signal(SIGPIPE, SIG_IGN);

    return ed_master_run(cycle, argv);
}
