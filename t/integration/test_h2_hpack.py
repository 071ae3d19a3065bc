"""HPACK as eddy encodes responses (spec/http2.md, idle connections): the
encoder's dynamic table holds 512 bytes whatever table size the client
allows (repeated fields cost an index, and an idle connection keeps at
most that); the client's own table (SETTINGS_HEADER_TABLE_SIZE, the
decoder's) stays as configured."""

import hpack

from h2util import Raw, hf

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    root: html
    locations:
      /:
        static: {}
      /padded/:
        static: {}
        headers: {set: {X-Pad-1: @P1@, X-Pad-2: @P2@, X-Pad-3: @P3@}}
"""
for _i in (1, 2, 3):
    CONFIG = CONFIG.replace("@P%d@" % _i, chr(ord("a") + _i) * 150)


def hpack_int(block, i, prefix):
    """An HPACK integer with a prefix of that many bits at block[i]:
    (value, next offset)."""
    mask = (1 << prefix) - 1
    v = block[i] & mask
    i += 1
    if v < mask:
        return v, i
    shift = 0
    while True:
        b = block[i]
        i += 1
        v += (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def representations(block):
    """The representations of a header block (RFC 7541, 6): (kind,
    index) with kind one of indexed, incremental, size_update, literal;
    index 0 for a literal name."""
    out, i = [], 0
    while i < len(block):
        b = block[i]
        if b & 0x80:
            idx, i = hpack_int(block, i, 7)
            out.append(("indexed", idx))
            continue
        if b & 0x40:
            kind, prefix = "incremental", 6
        elif b & 0x20:
            size, i = hpack_int(block, i, 5)
            out.append(("size_update", size))
            continue
        else:
            kind, prefix = "literal", 4
        idx, i = hpack_int(block, i, prefix)
        strings = 1 if idx else 2
        for _ in range(strings):
            n, i = hpack_int(block, i, 7)
            i += n
        out.append((kind, idx))
    assert i == len(block), block
    return out


def test_encoder_table_held_to_512_bytes(eddy):
    # Fields of 3 x 150 bytes plus the usual ones would need about 800
    # bytes of table: the client allows 64 KiB, eddy keeps to 512.
    e = eddy(CONFIG, start=False)
    e.write_file("html/index.html", b"hello\n")
    e.write_file("html/padded/index.html", b"hello\n")
    e.start()
    raw = Raw(e.port, settings=False)
    raw.send(hf.SettingsFrame(0, settings={
        hf.SettingsFrame.HEADER_TABLE_SIZE: 65536}))
    blocks = []
    sid = 1
    for path in ("/index.html",) * 3 + ("/padded/index.html",) * 3:
        raw.send(raw.headers(sid, raw.get_fields(path)))
        f = raw.until(lambda f, sid=sid: isinstance(f, hf.HeadersFrame)
                      and f.stream_id == sid)
        assert f is not None and "END_HEADERS" in f.flags
        blocks.append(f.data)
        sid += 2
    dec = hpack.Decoder()
    dec.max_allowed_table_size = 65536
    for i, block in enumerate(blocks):
        fields = dict(dec.decode(block))
        assert fields[":status"] == "200"
        assert fields["content-length"] == "6"
        reps = representations(block)
        assert all(r[1] <= 512 for r in reps if r[0] == "size_update"), reps
        # What the table holds never passes 512 bytes (RFC 7541 4.1).
        assert dec.header_table._current_size <= 512, i
        # content-length, etag: never indexed.
        assert ("incremental", 28) not in reps, reps
    # Repeated fields cost an index: later responses are smaller.
    assert len(blocks[1]) < len(blocks[0]) - 10, [len(b) for b in blocks]
    assert len(blocks[2]) <= len(blocks[1])
    assert dec.header_table.dynamic_entries
    raw.close()


def test_decoder_table_as_advertised(eddy):
    """The client's encoder may keep using its dynamic table: eddy's
    first SETTINGS carry header_table_size, and an indexed :authority is
    decoded on a later request."""
    e = eddy(CONFIG, start=False)
    e.write_file("html/index.html", b"hello\n")
    e.start()
    raw = Raw(e.port)
    s = raw.until(lambda f: isinstance(f, hf.SettingsFrame)
                  and "ACK" not in f.flags)
    assert s.settings[hf.SettingsFrame.HEADER_TABLE_SIZE] == 4096
    for sid in (1, 3):
        raw.send(raw.headers(sid, raw.get_fields("/index.html",
                                                 "indexed.test")))
        f = raw.until(lambda f: isinstance(f, hf.DataFrame)
                      and f.stream_id == sid and "END_STREAM" in f.flags)
        assert f is not None and f.data == b"hello\n"
    assert raw.enc.header_table.dynamic_entries
    raw.close()
