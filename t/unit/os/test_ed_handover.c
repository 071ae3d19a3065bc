/* Unit tests of the handover channel (ed_handover.c): the validation the
 * master applies to every message a worker sends (size, magic, type,
 * generation, worker id, descriptors, flags), and one HANDOFF through a
 * real SOCK_SEQPACKET pair with its descriptor. */
#include <check.h>

#include "ed_handover.h"

#include <fcntl.h>
#include <sys/socket.h>

/* What the master expects from worker 1 of generation 3, told to hand
 * over. */
static const ed_handover_peer_t old_worker = {
    3, 1, 1u << ED_HO_READY | 1u << ED_HO_HANDOFF | 1u << ED_HO_DONE
              | 1u << ED_HO_TAKEN
};

static ed_handover_msg_t
handoff(void)
{
    ed_handover_msg_t m;

    memset(&m, 0, sizeof(m));
    ed_handover_init_msg(&m, ED_HO_HANDOFF, 3, 1);
    m.connection = 42;
    m.requests = 7;
    return m;
}

START_TEST(test_check_valid)
{
    ed_handover_msg_t m = handoff();

    ck_assert_ptr_null(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker));
    m.type = ED_HO_DONE;
    m.count = 812;
    ck_assert_ptr_null(ed_handover_check(&m, sizeof(m), 0, 0, &old_worker));
    m = handoff();
    m.flags = ED_HO_F_PROXY | ED_HO_F_PP_ADDR | ED_HO_F_HTTP10;
    m.pp_src.sa.sa_family = AF_INET;
    m.pp_dst.sa.sa_family = AF_INET;
    ck_assert_ptr_null(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker));
}
END_TEST

START_TEST(test_check_size)
{
    ed_handover_msg_t m = handoff();
    char              big[sizeof(m) + 8];

    ck_assert_str_eq(ed_handover_check(&m, sizeof(m) - 1, 1, 0, &old_worker),
                     "wrong size");
    ck_assert_str_eq(ed_handover_check(&m, 0, 0, 0, &old_worker),
                     "wrong size");
    memset(big, 0, sizeof(big));
    memcpy(big, &m, sizeof(m));
    ck_assert_str_eq(ed_handover_check(big, sizeof(big), 1, 0, &old_worker),
                     "wrong size");
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, MSG_TRUNC,
                                       &old_worker), "truncated");
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, MSG_CTRUNC,
                                       &old_worker), "truncated");
}
END_TEST

START_TEST(test_check_magic_type)
{
    ed_handover_msg_t          m = handoff();
    static const ed_handover_peer_t fresh = {
        4, 0, 1u << ED_HO_READY | 1u << ED_HO_TAKEN
    };

    memcpy(m.magic, "EDH2", 4);
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "bad magic");
    m = handoff();
    m.type = 0;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "unknown type");
    m.type = ED_HO_TYPES;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "unknown type");
    /* Only the master sends QUIT. */
    m.type = ED_HO_QUIT;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 0, 0, &old_worker),
                     "unexpected type");
    /* A worker not told to hand over sends no HANDOFF. */
    m = handoff();
    m.generation = 4;
    m.worker = 0;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &fresh),
                     "unexpected type");
}
END_TEST

START_TEST(test_check_sender)
{
    ed_handover_msg_t m = handoff();

    m.generation = 2;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "wrong generation");
    m.generation = 4;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "wrong generation");
    m = handoff();
    m.worker = 0;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "wrong worker id");
}
END_TEST

START_TEST(test_check_descriptors)
{
    ed_handover_msg_t m = handoff();

    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 0, 0, &old_worker),
                     "descriptor missing");
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 2, 0, &old_worker),
                     "extra descriptors");
    m.type = ED_HO_DONE;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "unexpected descriptor");
    m.type = ED_HO_READY;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "unexpected descriptor");
}
END_TEST

START_TEST(test_check_flags)
{
    ed_handover_msg_t m = handoff();

    m.flags = 0x80;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "unknown flags");
    m.flags = 0;
    m.reserved = 1;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "unknown flags");
    /* PROXY addresses without the PROXY flag, or of no known family. */
    m = handoff();
    m.flags = ED_HO_F_PP_ADDR;
    m.pp_src.sa.sa_family = AF_INET;
    m.pp_dst.sa.sa_family = AF_INET;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "bad PROXY addresses");
    m.flags |= ED_HO_F_PROXY;
    m.pp_src.sa.sa_family = AF_UNIX;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "bad PROXY addresses");
    m.pp_src.sa.sa_family = AF_INET6;
    ck_assert_str_eq(ed_handover_check(&m, sizeof(m), 1, 0, &old_worker),
                     "bad PROXY addresses");
}
END_TEST

START_TEST(test_send_recv)
{
    ed_handover_msg_t m = handoff(), got;
    size_t            len;
    int               sv[2], p[2], fd, nfds, flags;
    char              c;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0,
                                sv), 0);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(ed_handover_recv(sv[1], &got, &len, &fd, &nfds,
                                      &flags), ED_AGAIN);
    ck_assert_int_eq(ed_handover_send(sv[0], &m, p[0]), ED_OK);
    ck_assert_int_eq(ed_handover_recv(sv[1], &got, &len, &fd, &nfds,
                                      &flags), ED_OK);
    ck_assert_uint_eq(len, sizeof(got));
    ck_assert_int_eq(nfds, 1);
    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_null(ed_handover_check(&got, len, nfds, flags,
                                         &old_worker));
    ck_assert_uint_eq(got.connection, 42);
    /* Received close-on-exec, and the same pipe. */
    ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(read(fd, &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    close(fd);
    /* A message without its descriptor. */
    ck_assert_int_eq(ed_handover_send(sv[0], &m, -1), ED_OK);
    ck_assert_int_eq(ed_handover_recv(sv[1], &got, &len, &fd, &nfds,
                                      &flags), ED_OK);
    ck_assert_int_eq(fd, -1);
    ck_assert_str_eq(ed_handover_check(&got, len, nfds, flags, &old_worker),
                     "descriptor missing");
    close(sv[0]);
    ck_assert_int_eq(ed_handover_recv(sv[1], &got, &len, &fd, &nfds,
                                      &flags), ED_DONE);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}
END_TEST

Suite *
ed_test_handover_suite(void)
{
    Suite *s = suite_create("handover");
    TCase *tc;

    tc = tcase_create("handover");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_check_valid);
    tcase_add_test(tc, test_check_size);
    tcase_add_test(tc, test_check_magic_type);
    tcase_add_test(tc, test_check_sender);
    tcase_add_test(tc, test_check_descriptors);
    tcase_add_test(tc, test_check_flags);
    tcase_add_test(tc, test_send_recv);
    suite_add_tcase(s, tc);
    return s;
}
