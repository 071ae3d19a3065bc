/* eddy: the command line, then the master, a test of the configuration,
 * or a signal to a running master. */
#include "ed_control.h"
#include "ed_http.h"
#include "ed_http_explain.h"
#include "ed_notify.h"
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
            "usage: eddy [-c FILE] [-p PREFIX] [-t | -T [--provenance]] [-q] "
            "[--strict] [-d] [-s SIGNAL] [-v | -V] [-h]\n"
            "       eddy explain [-c FILE] [-p DIR] [--method M] "
            "[--header 'Name: v']...\n"
            "                    [--remote-addr A] [--listen A] [--json] "
            "URL\n\n"
            "  -c, --config FILE   configuration file (default "
            ED_CONF_PATH ")\n"
            "  -p, --prefix DIR    prefix for relative paths (default "
            ED_PREFIX ")\n"
            "  -t, --test          test the configuration and exit\n"
            "  -T, --dump          test, then print the effective "
            "configuration\n"
            "      --provenance    with -T: say where each value comes "
            "from\n"
            "  -q, --quiet         with -t/-T: print only errors\n"
            "      --strict        with -t/-T: warnings count as errors\n"
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
    /* The compiled-in layout: a relative path is under the prefix. */
    printf("prefix: %s\n", ED_PREFIX);
    printf("sbin path: %s\n", ED_SBIN_PATH);
    printf("conf path: %s\n", ED_CONF_PATH);
    printf("pid path: %s\n", ED_PID_PATH);
    printf("error log path: %s\n", ED_ERROR_LOG_PATH);
    printf("http log path: %s\n", ED_HTTP_LOG_PATH);
    printf("html path: %s\n", ED_HTML_PATH);
    printf("man dir: %s\n", ED_MAN_DIR);
    printf("systemd unit dir: %s\n", ED_SYSTEMD_UNIT_DIR);
    printf("logrotate dir: %s\n", ED_LOGROTATE_DIR);
}

/* -d: the launching process waits on a pipe until the master serves
 * (a NUL byte: exit 0) or fails (end of file: the error lines the
 * master wrote there are printed, exit 2). Returns in the master only. */
static int
ed_daemonize(void)
{
    char    buf[4096];
    ssize_t n;
    int     fd, pfd[2];
    bool    said = false;

    if (pipe2(pfd, O_CLOEXEC) != 0) {
        return ED_ERROR;
    }
    switch (fork()) {
    case -1:
        return ED_ERROR;
    case 0:
        break;
    default:
        close(pfd[1]);
        while ((n = read(pfd[0], buf, sizeof(buf))) != 0) {
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                break;
            }
            if (buf[n - 1] == '\0') {
                fwrite(buf, 1, (size_t)n - 1, stderr);
                _exit(0);
            }
            fwrite(buf, 1, (size_t)n, stderr);
            said = true;
        }
        if (!said) {
            fprintf(stderr, "eddy: the master exited before serving; see "
                    "the error log %s\n",
                    ed_log_cur->path ? ed_log_cur->path : "");
        }
        _exit(2);
    }
    close(pfd[0]);
    ed_log_tee_fd = pfd[1];
    if (setsid() < 0) {
        return ED_ERROR;
    }
    fd = open("/dev/null", O_RDWR);
    if (fd < 0) {
        return ED_ERROR;
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    /* fd 2 is the error log file: what a library prints goes there. */
    dup2(ed_log_cur->fd != STDERR_FILENO ? ed_log_cur->fd : fd,
         STDERR_FILENO);
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
        { "quiet", no_argument, NULL, 'q' },
        { "strict", no_argument, NULL, 'S' },
        { "provenance", no_argument, NULL, 'P' },
        { NULL, 0, NULL, 0 }
    };
    const char     *conf = NULL, *prefix = NULL, *sig = NULL;
    char            cwd[PATH_MAX], confbuf[PATH_MAX + 32];
    char            errlog[PATH_MAX + 32];
    const char     *logpath;
    bool            test = false, dump = false, daemon_flag = false;
    bool            quiet = false, strict = false, provenance = false;
    ed_cycle_t     *cycle;
    ed_conf_t      *errors;
    ed_core_conf_t *ccf;
    int             c, rc;

    if (argc > 1 && strcmp(argv[1], "explain") == 0) {
        return ed_http_explain_main(argc - 1, argv + 1);
    }
    while ((c = getopt_long(argc, argv, "c:p:tTqds:vVh", longopts, NULL))
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
        case 'q':
            quiet = true;
            break;
        case 'S':
            strict = true;
            break;
        case 'P':
            provenance = true;
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
    if (provenance && !dump) {
        fprintf(stderr, "eddy: --provenance needs -T\n");
        ed_usage(stderr);
        return 1;
    }
    if (optind < argc) {
        fprintf(stderr, "eddy: unexpected argument \"%s\"\n", argv[optind]);
        ed_usage(stderr);
        return 1;
    }

    ed_pid = getpid();
    ed_time_update();
    ed_modules_init();
    /* Set before the listeners take EDDY_INHERIT out of the
     * environment. */
    ed_master_upgraded = getenv("EDDY_INHERIT") != NULL;
    if (ed_conf_locate(&prefix, &conf, cwd, confbuf, sizeof(confbuf))
        != ED_OK)
    {
        return 1;
    }
    ed_conf_test_only = test;

    cycle = ed_cycle_load(conf, prefix, &errors);
    if (sig) {
        rc = ed_control(sig, prefix, cycle, errors);
        if (cycle) {
            ed_cycle_free(cycle);
        } else {
            ed_cycle_errors_free(errors);
        }
        return rc;
    }
    if (cycle && test && strict && cycle->conf->nwarnings) {
        /* --strict: the warnings are the errors. */
        errors = cycle->conf;
        ed_conf_print_warnings(errors);
        fprintf(stderr, "eddy: configuration file %s test failed (warnings "
                "with --strict)\n", conf);
        ed_cycle_free(cycle);
        return 1;
    }
    if (cycle == NULL) {
        if (test && (!quiet || strict)) {
            ed_conf_print_warnings(errors);
        }
        ed_conf_print_errors(errors);
        ed_cycle_errors_free(errors);
        if (test) {
            fprintf(stderr, "eddy: configuration file %s test failed\n",
                    conf);
        }
        return 1;
    }
    if (test) {
        if (!quiet) {
            ed_conf_print_warnings(cycle->conf);
            if (!dump && ed_http_memory_text(cycle)) {
                fputs(ed_http_memory_text(cycle), stderr);
            }
            fprintf(stderr, "eddy: configuration file %s test is "
                    "successful\n", conf);
        }
        if (dump && ed_conf_dump_effective(stdout, cycle,
                                           ed_http_memory_text(cycle),
                                           provenance)
                    != ED_OK)
        {
            fprintf(stderr, "eddy: -T failed: out of memory\n");
            ed_cycle_free(cycle);
            return 1;
        }
        ed_cycle_free(cycle);
        return 0;
    }

    ccf = ed_core_conf(cycle);
    ed_log_stderr.level = (unsigned)ccf->error_level;
    daemon_flag = daemon_flag || ccf->daemon == 1;
    if (ed_notify_init() && daemon_flag) {
        /* The service manager supervises the process it started: a
         * daemon would leave it. */
        fprintf(stderr, "eddy: warning: -d and \"daemon: true\" are ignored "
                "when NOTIFY_SOCKET is set\n");
        daemon_flag = false;
    }
    if (ed_listeners_open(cycle, NULL, ed_log_cur) != ED_OK) {
        ed_cycle_free(cycle);
        return 2;
    }
    if (daemon_flag && strcmp(ccf->error_log.data, "stderr") == 0) {
        if (ED_ERROR_LOG_PATH[0] == '/') {
            snprintf(errlog, sizeof(errlog), "%s", ED_ERROR_LOG_PATH);
        } else {
            snprintf(errlog, sizeof(errlog), "%s/%s", prefix,
                     ED_ERROR_LOG_PATH);
        }
        ed_daemon_error_log = errlog;
        fprintf(stderr, "eddy: daemon logs to %s\n", errlog);
    }
    logpath = ccf->error_log.data;
    if (ed_daemon_error_log && strcmp(logpath, "stderr") == 0) {
        logpath = ed_daemon_error_log;
    }
    if (ed_log_open(&cycle->log, logpath, (unsigned)ccf->error_level)
        != ED_OK)
    {
        fprintf(stderr, "eddy: cannot open error log %s: %s\n", logpath,
                strerror(errno));
        ed_cycle_free(cycle);
        return 2;
    }
    ed_log_cur = &cycle->log;
    ed_conf_log_warnings(cycle->conf, ed_log_cur);
    if (daemon_flag && ed_daemonize() != ED_OK) {
        ed_log(ED_LOG_EMERG, ed_log_cur, errno, "daemonizing failed");
        ed_cycle_free(cycle);
        return 2;
    }
    ed_pid = getpid();
    signal(SIGPIPE, SIG_IGN);

    return ed_master_run(cycle, argv);
}
