/* libFuzzer target: the master's check of a handover message from a
 * worker (fleet.md), which it treats as untrusted. The first four bytes
 * choose the descriptor count, the recvmsg flags, the types the peer may
 * send and whether the peer's generation and id are the message's own
 * (so the deeper checks are reached); the rest is the message. What is
 * accepted must be one whole message of an allowed type from that peer,
 * with the descriptors its type carries, and PROXY addresses the new
 * worker can print. */
#include "ed_core.h"
#include "ed_handover.h"
#include "fuzz.h"

#include <sys/socket.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_handover_peer_t  peer;
    ed_handover_msg_t   m;
    const char         *err;
    char                text[128];
    size_t              n;
    int                 nfds, flags;

    if (size < 4) {
        return 0;
    }
    nfds = data[0] % 4;
    flags = (data[1] & 1 ? MSG_TRUNC : 0) | (data[1] & 2 ? MSG_CTRUNC : 0);
    peer.types = data[2];
    peer.generation = 7;
    peer.worker = 1;
    data += 4;
    size -= 4;
    memset(&m, 0, sizeof(m));
    memcpy(&m, data, ed_min(size, sizeof(m)));
    if (data[-1] & 1) {
        peer.generation = m.generation;
        peer.worker = m.worker;
    }

    err = ed_handover_check(data, size, nfds, flags, &peer);
    if (err != NULL) {
        ed_fuzz_assert(strlen(err) > 0);
        return 0;
    }
    ed_fuzz_assert(flags == 0 && size == sizeof(m));
    ed_fuzz_assert(memcmp(m.magic, ED_HANDOVER_MAGIC, 4) == 0);
    ed_fuzz_assert(m.type > 0 && m.type < ED_HO_TYPES);
    ed_fuzz_assert(peer.types & (1u << m.type));
    ed_fuzz_assert(m.generation == peer.generation
                   && m.worker == peer.worker);
    ed_fuzz_assert(nfds == (m.type == ED_HO_HANDOFF ? 1 : 0));
    ed_fuzz_assert((m.flags & ~ED_HO_FLAGS) == 0 && m.reserved == 0);
    if (m.type == ED_HO_HANDOFF && (m.flags & ED_HO_F_PP_ADDR)) {
        ed_fuzz_assert(m.flags & ED_HO_F_PROXY);
        n = ed_peer_text(&m.pp_src, text, sizeof(text));
        ed_fuzz_assert(n < sizeof(text) && text[n] == '\0');
        n = ed_peer_text(&m.pp_dst, text, sizeof(text));
        ed_fuzz_assert(n < sizeof(text) && text[n] == '\0');
    }
    return 0;
}
