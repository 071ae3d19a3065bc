/* Shared fixture of the HTTP routing unit tests. */
#ifndef ED_TEST_HTTP_FIXTURE_H
#define ED_TEST_HTTP_FIXTURE_H

#include "ed_core.h"
#include "ed_conf.h"
#include "ed_cycle.h"
#include "ed_module.h"
#include "ed_http.h"

#include <check.h>

/* The cycle the test loaded, and the pool requests are built in. */
extern ed_cycle_t *ed_test_cycle;
extern ed_pool_t  *ed_test_rpool;

/* Checked fixture: module table, request pool; frees both. */
void ed_test_http_setup(void);
void ed_test_http_teardown(void);
/* Loads yaml as a configuration; the test fails with the loader's
 * messages when it is rejected. */
void ed_test_http_load(const char *yaml);
/* A prefix directory with logs/ in it (made once), as the loader checks
 * that the default pid file could be written there. */
const char *ed_test_http_prefix(void);
/* The listener of that address (with servers); fails the test if none. */
ed_listener_t *ed_test_http_listener(const char *name);
/* Parses a raw request head arriving on ls and chooses its server and
 * location. */
ed_http_request_t *ed_test_http_route(ed_listener_t *ls, const char *raw);

#endif /* ED_TEST_HTTP_FIXTURE_H */
