/* Time read once per loop turn and cached, with its formatted forms. */
#ifndef ED_TIME_H
#define ED_TIME_H

#include <time.h>

extern ed_msec_t ed_current_msec;   /* monotonic milliseconds */
extern time_t    ed_time_sec;       /* wall clock seconds */
extern unsigned  ed_time_msec_part; /* wall clock milliseconds 0..999 */
extern ed_str_t  ed_cached_http_time;     /* Mon, 23 Nov 2026 00:00:00 GMT */
extern ed_str_t  ed_cached_err_log_time;  /* 2026/11/23 00:00:00 */
extern ed_str_t  ed_cached_http_log_time; /* 23/Nov/2026:00:00:00 +0000 */
extern ed_str_t  ed_cached_iso8601;       /* 2026-11-23T00:00:00+00:00 */

/* Reads the clocks; reformats the strings when the second changed. */
void ed_time_update(void);
/* Formats t as an HTTP date (29 bytes and a NUL) into buf, t taken
 * within 1970 to 9999; returns buf's end. */
char *ed_http_time(char *buf, time_t t);
/* Parses an HTTP date (IMF-fixdate, RFC 850, asctime); -1 if invalid. */
time_t ed_parse_http_time(const char *s, size_t len);

#endif /* ED_TIME_H */
