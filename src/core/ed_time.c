/* Time read once per loop turn and cached, with its formatted forms. */
#include "ed_core.h"

ed_msec_t ed_current_msec;
time_t    ed_time_sec;
unsigned  ed_time_msec_part;
ed_str_t  ed_cached_http_time;
ed_str_t  ed_cached_err_log_time;
ed_str_t  ed_cached_http_log_time;
ed_str_t  ed_cached_iso8601;

static char ed_http_time_buf[sizeof("Mon, 28 Sep 1970 06:00:00 GMT")];
static char ed_err_log_time_buf[sizeof("1970/09/28 12:00:00")];
static char ed_http_log_time_buf[sizeof("28/Sep/1970:12:00:00 +0600")];
static char ed_iso8601_buf[sizeof("1970-09-28T12:00:00+06:00")];

static const char *ed_week[] = { "Sun", "Mon", "Tue", "Wed",
                                 "Thu", "Fri", "Sat" };
static const char *ed_months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* The last second an IMF-fixdate can write (RFC 9110 5.6.7: four
 * digits of year): 9999-12-31 23:59:59 GMT. */
#define ED_HTTP_TIME_MAX 253402300799LL

char *
ed_http_time(char *buf, time_t t)
{
    struct tm tm;

    /* A file's mtime can be anything a file system keeps (tmpfs: any
     * 64-bit second): a longer year overran the callers' buffers (29
     * bytes and a NUL), one gmtime_r cannot convert left tm unset. */
    if (t < 0) {
        t = 0;
    } else if ((long long)t > ED_HTTP_TIME_MAX) {
        t = (time_t)ED_HTTP_TIME_MAX;
    }
    gmtime_r(&t, &tm);
    return buf + sprintf(buf, "%s, %02d %s %4d %02d:%02d:%02d GMT",
                         ed_week[tm.tm_wday], tm.tm_mday,
                         ed_months[tm.tm_mon], tm.tm_year + 1900,
                         tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
ed_time_update(void)
{
    struct timespec ts;
    struct tm       tm;
    long            off;
    int             n;
    char            sign;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    ed_current_msec = (ed_msec_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    ed_time_msec_part = (unsigned)(ts.tv_nsec / 1000000);
    if (ts.tv_sec == ed_time_sec && ed_cached_http_time.len) {
        return;
    }
    ed_time_sec = ts.tv_sec;

    ed_cached_http_time.data = ed_http_time_buf;
    ed_cached_http_time.len = (size_t)(ed_http_time(ed_http_time_buf,
                                                    ed_time_sec)
                                       - ed_http_time_buf);

    localtime_r(&ed_time_sec, &tm);
    off = tm.tm_gmtoff / 60;
    sign = off < 0 ? '-' : '+';
    off = off < 0 ? -off : off;

    n = snprintf(ed_err_log_time_buf, sizeof(ed_err_log_time_buf),
                 "%4d/%02d/%02d %02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ed_cached_err_log_time.data = ed_err_log_time_buf;
    ed_cached_err_log_time.len = (size_t)n;

    n = snprintf(ed_http_log_time_buf, sizeof(ed_http_log_time_buf),
                 "%02d/%s/%d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
                 ed_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
    ed_cached_http_log_time.data = ed_http_log_time_buf;
    ed_cached_http_log_time.len = (size_t)n;

    n = snprintf(ed_iso8601_buf, sizeof(ed_iso8601_buf),
                 "%4d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
    ed_cached_iso8601.data = ed_iso8601_buf;
    ed_cached_iso8601.len = (size_t)n;
}

static int
ed_month_index(const char *p)
{
    int i;

    for (i = 0; i < 12; i++) {
        if (memcmp(p, ed_months[i], 3) == 0) {
            return i;
        }
    }
    return -1;
}

static int
ed_digits(const char *p, int n)
{
    int v = 0;

    while (n--) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (*p++ - '0');
    }
    return v;
}

time_t
ed_parse_http_time(const char *s, size_t len)
{
    char      buf[40];
    const char *p;
    struct tm tm;
    int       day, mon, year, hh, mm, ss;

    if (len >= sizeof(buf) || len < 24) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&tm, 0, sizeof(tm));

    p = strchr(buf, ',');
    if (p && len == 29 && p == buf + 3) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (memcmp(buf + 25, " GMT", 4) != 0 || buf[4] != ' ') {
            return -1;
        }
        day = ed_digits(buf + 5, 2);
        mon = ed_month_index(buf + 8);
        year = ed_digits(buf + 12, 4);
        p = buf + 17;
    } else if (p) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        p++;
        if (strlen(p) != 23 || p[0] != ' ' || p[3] != '-' || p[7] != '-'
            || memcmp(p + 19, " GMT", 4) != 0)
        {
            return -1;
        }
        day = ed_digits(p + 1, 2);
        mon = ed_month_index(p + 4);
        year = ed_digits(p + 8, 2);
        year += year < 70 ? 2000 : 1900;
        p += 11;
    } else if (len == 24) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        mon = ed_month_index(buf + 4);
        day = buf[8] == ' ' ? ed_digits(buf + 9, 1) : ed_digits(buf + 8, 2);
        year = ed_digits(buf + 20, 4);
        p = buf + 11;
    } else {
        return -1;
    }
    if (p[2] != ':' || p[5] != ':') {
        return -1;
    }
    hh = ed_digits(p, 2);
    mm = ed_digits(p + 3, 2);
    ss = ed_digits(p + 6, 2);
    if (day < 1 || day > 31 || mon < 0 || year < 1970 || hh < 0 || hh > 23
        || mm < 0 || mm > 59 || ss < 0 || ss > 60)
    {
        return -1;
    }
    tm.tm_mday = day;
    tm.tm_mon = mon;
    tm.tm_year = year - 1900;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return timegm(&tm);
}
