"""HPACK as eddy encodes responses (spec/http2.md, idle connections): no
field goes into the dynamic table, whatever table size the client allows,
so that an idle connection keeps no encoder entries; the client's own
table (SETTINGS_HEADER_TABLE_SIZE, the decoder's) stays as configured."""

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
"""


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


def test_responses_use_no_dynamic_table(eddy):
    e = eddy(CONFIG, start=False)
    e.write_file("html/index.html", b"hello\n")
    e.start()
    raw = Raw(e.port, settings=False)
    # The client allows a table of 64 KiB for eddy's encoder.
    raw.send(hf.SettingsFrame(0, settings={
        hf.SettingsFrame.HEADER_TABLE_SIZE: 65536}))
    blocks = []
    for sid in (1, 3, 5):
        raw.send(raw.headers(sid, raw.get_fields("/index.html")))
        f = raw.until(lambda f: isinstance(f, hf.HeadersFrame)
                      and f.stream_id == sid)
        assert f is not None and "END_HEADERS" in f.flags
        blocks.append(f.data)
    dec = hpack.Decoder()
    for block in blocks:
        fields = dict(dec.decode(block))
        assert fields[":status"] == "200"
        assert fields["content-length"] == "6"
        reps = representations(block)
        # Static table entries only (1-61), never an insertion; a size
        # update (to 0) may start a block.
        assert not [r for r in reps if r[0] == "incremental"
                    or (r[0] != "size_update" and r[1] > 61)], reps
        assert all(r[1] == 0 for r in reps if r[0] == "size_update"), reps
    assert not dec.header_table.dynamic_entries
    # Later responses cost what the first did.
    assert len(blocks[2]) >= len(blocks[0]) - 2
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
