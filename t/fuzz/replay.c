/* Replays saved inputs through a fuzz target without libFuzzer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Runs the target over one file, in a buffer of exactly its size so that
 * sanitizers see any read past the end. A crash ends the process, which
 * is how a failure is reported. Returns 0, or -1 if it cannot be read.
 */
static int
replay_file(const char *path)
{
    struct stat st;
    uint8_t    *buf;
    size_t      got = 0;
    ssize_t     n;
    int         fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &st) == -1) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

/* Replays every regular file directly in dir. Returns inputs run. */
static size_t
replay_dir(const char *dir)
{
    struct dirent *de;
    struct stat    st;
    DIR           *d;
    char          *path;
    size_t         n = 0, len;

    d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        len = strlen(dir) + strlen(de->d_name) + 2;
        path = malloc(len);
        if (path == NULL) {
            break;
        }
        snprintf(path, len, "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)
            && replay_file(path) == 0)
        {
            n++;
        }
        free(path);
    }
    closedir(d);
    return n;
}

/*
 * Each argument is an input file or a directory of them. Prints the count
 * and exits 0: any failing input has aborted the run before that.
 */
int
main(int argc, char **argv)
{
    struct stat st;
    size_t      n = 0;
    int         i;

    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) == -1) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            n += replay_dir(argv[i]);
        } else if (replay_file(argv[i]) == 0) {
            n++;
        }
    }
    printf("replay: %zu inputs, 0 crashes\n", n);
    return 0;
}
