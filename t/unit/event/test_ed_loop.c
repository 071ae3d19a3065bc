/* Unit tests of the event loop: timers, deferred callbacks, signals. */
#include <check.h>

#include "ed_loop.h"

#include <sys/socket.h>

static ed_loop_t *loop;

static void
setup(void)
{
    loop = ed_loop_create(NULL);
    ck_assert_ptr_nonnull(loop);
}

static void
teardown(void)
{
    ed_loop_destroy(loop);
    loop = NULL;
}

/* Turns the loop until *count reaches want, at most for 5 seconds. */
static void
run_until(const int *count, int want)
{
    ed_msec_t end = ed_current_msec + 5000;

    while (*count < want && ed_current_msec < end) {
        ck_assert_int_eq(ed_loop_once(loop, 50), ED_OK);
    }
    ck_assert_int_eq(*count, want);
}

/* Timers. */

#define NTIMERS 300

static ed_timer_t timers[NTIMERS];
static int        fired[NTIMERS];
static int        nfired;
static ed_msec_t  last_when;
static int        order[NTIMERS];

static void
on_timer(ed_timer_t *t)
{
    int i = (int)(t - timers);

    ck_assert_uint_eq(t->index, 0);
    ck_assert(t->when >= last_when);
    ck_assert(t->when <= ed_current_msec);
    last_when = t->when;
    fired[i]++;
    order[nfired++] = i;
}

START_TEST(test_timers_fire_in_order)
{
    unsigned seed = 12345;
    int      i, want = 0;

    nfired = 0;
    last_when = 0;
    for (i = 0; i < NTIMERS; i++) {
        seed = seed * 1103515245 + 12345;
        timers[i].handler = on_timer;
        ed_timer_add(loop, &timers[i], (ed_msec_t)((seed >> 16) % 60));
        ck_assert_uint_ne(timers[i].index, 0);
    }
    ck_assert_uint_eq(ed_loop_timers(loop), NTIMERS);

    /* Cancel every third, re-arm every fifth (later or earlier). */
    for (i = 0; i < NTIMERS; i++) {
        if (i % 3 == 0) {
            ed_timer_del(loop, &timers[i]);
            ck_assert(!ed_timer_active(&timers[i]));
            ed_timer_del(loop, &timers[i]); /* twice is harmless */
        } else if (i % 5 == 0) {
            ed_timer_add(loop, &timers[i], (i % 2) ? 70 : 1);
        }
    }
    for (i = 0; i < NTIMERS; i++) {
        want += i % 3 != 0;
    }
    ck_assert_uint_eq(ed_loop_timers(loop), (size_t)want);

    run_until(&nfired, want);
    for (i = 0; i < NTIMERS; i++) {
        ck_assert_int_eq(fired[i], i % 3 != 0);
    }
    ck_assert_uint_eq(ed_loop_timers(loop), 0);
}
END_TEST

/* The heap against a model: random adds, re-arms and deletes keep the
 * minimum at the root (index 1) and the indices a permutation of 1..n. */
START_TEST(test_timers_heap_model)
{
    unsigned   seed = 777;
    int        i, op, n, armed, bad;
    ed_msec_t  min, root;
    char       seen[NTIMERS + 1];

    for (n = 0; n < 5000; n++) {
        seed = seed * 1103515245 + 12345;
        i = (int)((seed >> 16) % NTIMERS);
        op = (int)((seed >> 8) % 3);
        timers[i].handler = on_timer;
        if (op == 2) {
            ed_timer_del(loop, &timers[i]);
        } else {
            ed_timer_add(loop, &timers[i], (ed_msec_t)((seed >> 4) % 100000));
        }
        /* Plain checks, one assertion per step: ck_assert is slow. */
        armed = 0;
        bad = 0;
        min = INT64_MAX;
        root = -1;
        memset(seen, 0, sizeof(seen));
        for (i = 0; i < NTIMERS; i++) {
            if (!ed_timer_active(&timers[i])) {
                continue;
            }
            armed++;
            if (timers[i].index > NTIMERS || seen[timers[i].index]) {
                bad++;
                continue;
            }
            seen[timers[i].index] = 1;
            min = ed_min(min, timers[i].when);
            if (timers[i].index == 1) {
                root = timers[i].when;
            }
        }
        for (i = 1; i <= armed; i++) {
            bad += !seen[i];
        }
        bad += ed_loop_timers(loop) != (size_t)armed;
        bad += armed > 0 && root != min;
        ck_assert_int_eq(bad, 0);
    }
    for (i = 0; i < NTIMERS; i++) {
        ed_timer_del(loop, &timers[i]);
    }
    ck_assert_uint_eq(ed_loop_timers(loop), 0);
}
END_TEST

static ed_timer_t victim, killer;
static int        victim_fired, killer_fired;

static void
on_victim(ed_timer_t *t)
{
    ed_unused(t);
    victim_fired++;
}

static void
on_killer(ed_timer_t *t)
{
    ed_unused(t);
    killer_fired++;
    /* Both are due in this turn: cancelling must still work. */
    ed_timer_del(loop, &victim);
}

START_TEST(test_timer_cancel_from_handler)
{
    killer.handler = on_killer;
    victim.handler = on_victim;
    ed_timer_add(loop, &killer, 5);
    ed_timer_add(loop, &victim, 10);
    usleep(30 * 1000);
    run_until(&killer_fired, 1);
    ck_assert_int_eq(victim_fired, 0);
    ck_assert_uint_eq(ed_loop_timers(loop), 0);
}
END_TEST

static int self_rearms;

static void
on_self_rearm(ed_timer_t *t)
{
    self_rearms++;
    ed_timer_add(loop, t, 0);
}

START_TEST(test_timer_rearm)
{
    ed_timer_t t = { 0 };
    ed_msec_t  start;

    /* Re-arming an armed timer moves it: it fires once, at the new time. */
    victim.handler = on_victim;
    ed_timer_add(loop, &victim, 10000);
    ed_timer_add(loop, &victim, 10);
    ck_assert_uint_eq(ed_loop_timers(loop), 1);
    start = ed_current_msec;
    run_until(&victim_fired, 1);
    ck_assert(ed_current_msec - start >= 9);
    ck_assert_uint_eq(ed_loop_timers(loop), 0);

    /* A timer re-arming itself with no delay cannot hold a turn. */
    t.handler = on_self_rearm;
    ed_timer_add(loop, &t, 0);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_int_eq(self_rearms, 1);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_int_eq(self_rearms, 2);
    ed_timer_del(loop, &t);
}
END_TEST

START_TEST(test_timer_sets_wait_timeout)
{
    ed_msec_t start;

    victim.handler = on_victim;
    ed_timer_add(loop, &victim, 40);
    start = ed_current_msec;
    /* -1 would sleep forever without the timer. */
    while (victim_fired == 0) {
        ck_assert_int_eq(ed_loop_once(loop, -1), ED_OK);
    }
    ck_assert(ed_current_msec - start >= 35);
    ck_assert(ed_current_msec - start < 2000);
}
END_TEST

/* Deferred callbacks. */

static char        trace[64];
static size_t      ntrace;
static ed_defer_t  da, db, dc, dflush, dlate, dself;
static int         self_runs;

/* The name a test gave each callback. */
static char
defer_name(ed_defer_t *d)
{
    return d == &da ? 'a' : d == &db ? 'b' : d == &dc ? 'c'
         : d == &dflush ? 'f' : d == &dlate ? 'l' : 's';
}

static void
on_defer(ed_defer_t *d)
{
    ck_assert(!ed_defer_posted(d));
    trace[ntrace++] = defer_name(d);
}

static void
defer_init(ed_defer_t *d, ed_defer_pt h, const char *name)
{
    memset(d, 0, sizeof(*d));
    d->handler = h;
    ck_assert_int_eq(defer_name(d), name[0]);
}

START_TEST(test_post_order_once)
{
    defer_init(&da, on_defer, "a");
    defer_init(&db, on_defer, "b");
    defer_init(&dc, on_defer, "c");
    ed_loop_post(loop, &da);
    ed_loop_post(loop, &db);
    ed_loop_post(loop, &dc);
    ed_loop_post(loop, &da); /* already posted: no-op */
    ck_assert(ed_defer_posted(&da));
    /* -1: posted callbacks must keep the wait from sleeping. */
    ck_assert_int_eq(ed_loop_once(loop, -1), ED_OK);
    trace[ntrace] = '\0';
    ck_assert_str_eq(trace, "abc");
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_uint_eq(ntrace, 3);
}
END_TEST

START_TEST(test_unpost)
{
    defer_init(&da, on_defer, "a");
    defer_init(&db, on_defer, "b");
    defer_init(&dc, on_defer, "c");
    defer_init(&dflush, on_defer, "f");
    ed_loop_post(loop, &da);
    ed_loop_post(loop, &db);
    ed_loop_post(loop, &dc);
    ed_loop_post_flush(loop, &dflush);
    ed_loop_unpost(loop, &db);
    ed_loop_unpost(loop, &dflush);
    ed_loop_unpost(loop, &dflush); /* twice is harmless */
    ck_assert(!ed_defer_posted(&db));
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    trace[ntrace] = '\0';
    ck_assert_str_eq(trace, "ac");
}
END_TEST

static void
on_a_unposts_b(ed_defer_t *d)
{
    on_defer(d);
    ed_loop_unpost(loop, &db);
    ed_loop_post(loop, &dlate);
}

static void
on_self_repost(ed_defer_t *d)
{
    self_runs++;
    ed_loop_post(loop, d);
}

START_TEST(test_post_from_callback)
{
    defer_init(&da, on_a_unposts_b, "a");
    defer_init(&db, on_defer, "b");
    defer_init(&dlate, on_defer, "l");
    ed_loop_post(loop, &da);
    ed_loop_post(loop, &db);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    trace[ntrace] = '\0';
    /* b was unposted from the list being run; l ran in the same drain. */
    ck_assert_str_eq(trace, "al");

    /* A callback posting itself forever is bounded per turn. */
    defer_init(&dself, on_self_repost, "s");
    ed_loop_post(loop, &dself);
    ck_assert_int_eq(ed_loop_once(loop, 0), ED_OK);
    ck_assert_int_gt(self_runs, 1);
    ck_assert_int_lt(self_runs, 100);
    ck_assert(ed_defer_posted(&dself));
    ed_loop_unpost(loop, &dself);
}
END_TEST

static void
on_flush_posts(ed_defer_t *d)
{
    on_defer(d);
    ed_loop_post(loop, &dlate);
}

START_TEST(test_flush_after_posted)
{
    defer_init(&dflush, on_flush_posts, "f");
    defer_init(&da, on_defer, "a");
    defer_init(&dlate, on_defer, "l");
    ed_loop_post_flush(loop, &dflush);
    ed_loop_post(loop, &da);
    ed_loop_post(loop, &dflush); /* in the flush queue: no-op */
    ck_assert_int_eq(ed_loop_once(loop, -1), ED_OK);
    trace[ntrace] = '\0';
    /* Posted before flush; what the flush posts runs before sleeping. */
    ck_assert_str_eq(trace, "afl");
}
END_TEST

/* Signals and the waker. */

static int got_signo, nsignals;

static void
on_signal(void *data, int signo)
{
    ck_assert_ptr_eq(data, &got_signo);
    got_signo = signo;
    nsignals++;
}

START_TEST(test_signals)
{
    sigset_t set, cur;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ck_assert_int_eq(ed_loop_signals(loop, &set, on_signal, &got_signo),
                     ED_OK);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    ck_assert_int_eq(sigismember(&cur, SIGUSR1), 1);
    /* Blocked, so raise() queues it for the signalfd. */
    raise(SIGUSR1);
    run_until(&nsignals, 1);
    ck_assert_int_eq(got_signo, SIGUSR1);

    /* A second call widens the set. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    ck_assert_int_eq(ed_loop_signals(loop, &set, on_signal, &got_signo),
                     ED_OK);
    raise(SIGUSR2);
    raise(SIGUSR1);
    run_until(&nsignals, 3);
}
END_TEST

START_TEST(test_wake)
{
    ed_msec_t start;

    ed_time_update();
    start = ed_current_msec;
    ed_loop_wake(loop);
    ed_loop_wake(loop);
    ck_assert_int_eq(ed_loop_once(loop, 3000), ED_OK);
    ck_assert(ed_current_msec - start < 1000);
    /* The counter was reset: the next wait sleeps its full timeout. */
    start = ed_current_msec;
    ck_assert_int_eq(ed_loop_once(loop, 30), ED_OK);
    ck_assert(ed_current_msec - start >= 20);
}
END_TEST

/* Descriptors. */

static ed_event_t evs[2];
static int        sv0[2], sv1[2], ev_calls[2];

static void
on_ev(ed_event_t *ev, uint32_t events)
{
    int i = (int)(ev - evs);

    ck_assert(events & EPOLLIN);
    ev_calls[i]++;
    /* Whichever comes first removes the other, still in the batch. */
    ed_loop_del(loop, &evs[1 - i]);
    memset(&evs[1 - i], 0xff, sizeof(ed_event_t));
}

START_TEST(test_del_drops_pending_event)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv0),
                     0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv1),
                     0);
    evs[0].fd = sv0[0];
    evs[1].fd = sv1[0];
    evs[0].handler = evs[1].handler = on_ev;
    ck_assert_int_eq(ed_loop_add(loop, &evs[0], EPOLLIN | EPOLLET), ED_OK);
    ck_assert_int_eq(ed_loop_add(loop, &evs[1], EPOLLIN | EPOLLET), ED_OK);
    ck_assert_uint_eq(evs[0].mask, EPOLLIN | EPOLLET);
    ck_assert_int_eq(write(sv0[1], "x", 1), 1);
    ck_assert_int_eq(write(sv1[1], "y", 1), 1);
    ck_assert_int_eq(ed_loop_once(loop, 1000), ED_OK);
    ck_assert_int_eq(ev_calls[0] + ev_calls[1], 1);
}
END_TEST

static ed_timer_t stopper;

static void
on_stop(ed_timer_t *t)
{
    ed_unused(t);
    ed_loop_stop(loop);
}

START_TEST(test_run_stop)
{
    stopper.handler = on_stop;
    ed_timer_add(loop, &stopper, 10);
    ck_assert_int_eq(ed_loop_run(loop), ED_OK);
    ck_assert_uint_eq(ed_loop_timers(loop), 0);
}
END_TEST

Suite *
ed_test_loop_suite(void)
{
    Suite *s = suite_create("ed_loop");
    TCase *tc = tcase_create("loop");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_timers_fire_in_order);
    tcase_add_test(tc, test_timers_heap_model);
    tcase_add_test(tc, test_timer_cancel_from_handler);
    tcase_add_test(tc, test_timer_rearm);
    tcase_add_test(tc, test_timer_sets_wait_timeout);
    tcase_add_test(tc, test_post_order_once);
    tcase_add_test(tc, test_unpost);
    tcase_add_test(tc, test_post_from_callback);
    tcase_add_test(tc, test_flush_after_posted);
    tcase_add_test(tc, test_signals);
    tcase_add_test(tc, test_wake);
    tcase_add_test(tc, test_del_drops_pending_event);
    tcase_add_test(tc, test_run_stop);
    suite_add_tcase(s, tc);
    return s;
}
