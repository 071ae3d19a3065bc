"""HTTP/2 requests (spec/http2.md, Requests): each malformed case is an
RST_STREAM(PROTOCOL_ERROR) with an info line and a 400 in the access log,
its sibling streams unhurt; what HTTP/1.1 answers is answered on the
stream (400, 405, 414, 431, 413, 421); bodies, 100-continue, late DATA."""

import os

import pytest

from h2util import (H2, PROTOCOL_ERROR, NO_ERROR, CANCEL, Raw, hf,
                    log_lines)

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    max_header_size: 1k
    max_headers: 10
    client_max_body_size: 1k
    access_log: {path: logs/access.log, format: "$status $request"}
    locations:
      /:
        return: {status: 200, body: "ok $host\n"}
      /up/:
        proxy: {pass: "http://127.0.0.1:1"}
"""

GET = [(":method", "GET"), (":scheme", "http"), (":path", "/"),
       (":authority", "a.test")]


@pytest.fixture
def srv(eddy):
    return eddy(CONFIG)


def check_malformed(srv, fields, reason, end=True):
    c = H2(srv.port)
    bad = c.request(pseudo=fields, end=end)
    good = c.request("/", authority="sibling")
    b = c.wait(bad)
    g = c.wait(good)
    c.close()
    assert b.reset == PROTOCOL_ERROR and b.status is None, b
    assert g.status == 200 and g.body == b"ok sibling\n"
    log = log_lines(srv, "access.log", 2)
    assert "400 " in log
    assert reason in srv.error_log
    assert "[info]" in srv.error_log


@pytest.mark.parametrize("fields,reason", [
    ([(":method", "GET"), (":scheme", "http"), (":authority", "a")],
     'client sent no ":path" pseudo-header'),
    ([(":scheme", "http"), (":path", "/"), (":authority", "a")],
     'client sent no ":method" pseudo-header'),
    ([(":method", "GET"), (":path", "/"), (":authority", "a")],
     'client sent no ":scheme" pseudo-header'),
    (GET[:2] + [(":path", ""), GET[3]], 'invalid ":path"'),
    (GET[:2] + [(":path", "x"), GET[3]], 'invalid ":path"'),
    (GET[:2] + [(":path", "*"), GET[3]], 'invalid ":path"'),
    (GET + [(":path", "/again")], 'duplicate pseudo-header ":path"'),
    (GET + [(":status", "200")], 'invalid pseudo-header ":status"'),
    (GET + [(":foo", "x")], 'invalid pseudo-header ":foo"'),
    (GET + [("a", "b"), (":x", "y")], 'after a regular header'),
    (GET + [(":protocol", "websocket")], 'invalid pseudo-header ":protocol"'),
    (GET + [("connection", "close")],
     'client sent invalid header "connection" in HTTP/2 request'),
    (GET + [("keep-alive", "1")], 'invalid header "keep-alive"'),
    (GET + [("proxy-connection", "1")], 'invalid header "proxy-connection"'),
    (GET + [("transfer-encoding", "chunked")],
     'invalid header "transfer-encoding"'),
    (GET + [("upgrade", "h2c")], 'invalid header "upgrade"'),
    (GET + [("te", "gzip")], 'invalid header "te"'),
    (GET + [("Upper", "x")], 'invalid header "Upper"'),
    (GET + [("bad name", "x")], 'invalid header "bad name"'),
    (GET + [("x", "a\x00b")], 'invalid header "x"'),
    (GET + [("x", " lead")], 'invalid header "x"'),
    (GET + [("x", "trail\t")], 'invalid header "x"'),
    (GET + [("content-length", "1x")], 'invalid header "content-length"'),
    (GET + [("content-length", "0"), ("content-length", "0")],
     'invalid header "content-length"'),
    (GET[:3], 'invalid ":authority"'),
    (GET[:3] + [(":authority", "")], 'invalid ":authority"'),
    (GET[:3] + [(":authority", "u@a.test")], 'invalid ":authority"'),
    (GET + [("host", "other.test")], '"host" unlike :authority'),
    (GET + [("content-length", "5")], 'END_STREAM short of'),
])
def test_malformed(srv, fields, reason):
    check_malformed(srv, fields, reason)


def test_host_equal_to_authority_after_normalisation(srv):
    c = H2(srv.port)
    st = c.get("/", authority="A.test:80", headers=[("host", "a.TEST")])
    assert st.status == 200 and st.body == b"ok a.test\n"
    st = c.get("/", pseudo=GET[:3], headers=[("host", "h.test")])
    assert st.status == 200 and st.body == b"ok h.test\n"
    c.close()


def test_te_trailers_allowed(srv):
    c = H2(srv.port)
    st = c.get("/", headers=[("te", "trailers")])
    assert st.status == 200
    c.close()


def test_data_over_content_length_is_malformed(srv):
    c = H2(srv.port)
    sid = c.request("/", method="POST", headers=[("content-length", "2")],
                    body=b"abcd")
    st = c.wait(sid)
    assert st.reset == PROTOCOL_ERROR
    assert "client sent DATA over \"content-length\"" in srv.error_log
    c.close()


def test_bad_scheme_is_400(srv):
    c = H2(srv.port)
    st = c.get("/", scheme="ftp")
    assert st.status == 400 and st.reset is None
    c.close()


def test_plain_connect_is_405(srv):
    c = H2(srv.port)
    st = c.get(pseudo=[(":method", "CONNECT"), (":authority", "a:443")])
    assert st.status == 405
    c.close()


def test_path_normalisation_as_http1(srv):
    c = H2(srv.port)
    st = c.get("/../x")
    assert st.status == 400
    c.close()


def test_414_and_431(srv):
    c = H2(srv.port)
    st = c.get("/" + "a" * 1100)
    assert st.status == 414
    st = c.get("/", headers=[("x-big", "b" * 1000)])
    assert st.status == 431
    st = c.get("/", headers=[("x-%d" % i, "v") for i in range(12)])
    assert st.status == 431
    # HPACK stays in step: the connection goes on.
    st = c.get("/", authority="after")
    assert st.status == 200 and st.body == b"ok after\n"
    c.close()


def test_cookie_crumbs_joined(eddy):
    e = eddy(CONFIG.replace('body: "ok $host\\n"',
                            'body: "$http_cookie\\n"'))
    c = H2(e.port)
    st = c.get("/", headers=[("cookie", "a=1"), ("cookie", "b=2")])
    assert st.body == b"a=1; b=2\n"
    c.close()


def test_content_length_over_limit_is_413(srv):
    c = H2(srv.port)
    st = c.get("/", method="POST", headers=[("content-length", "5000")],
               end=False)
    assert st.status == 413
    c.close()


def test_response_before_body_end_resets_no_error(srv):
    # return answers without reading the body: RST_STREAM(NO_ERROR)
    # after the response's END_STREAM, late DATA consumed.
    c = H2(srv.port)
    sid = c.request("/", method="POST", headers=[("content-length", "10")],
                    end=False)
    st = c.wait(sid)
    assert st.status == 200 and st.body == b"ok localhost\n"
    c.recv(0.5)
    assert st.reset in (None, NO_ERROR)
    st2 = c.get("/", authority="next")
    assert st2.status == 200
    c.close()


def test_request_body_over_max_is_413(eddy):
    from proxy_backend import Backend, response

    def handler(req, conn):
        return response(200, b"len %d\n" % len(req.body))

    with Backend(handler) as b:
        e = eddy(CONFIG.replace("127.0.0.1:1", "127.0.0.1:%d" % b.port))
        c = H2(e.port)
        st = c.get("/up/x", method="POST", body=os.urandom(3000))
        assert st.status == 413 or st.reset == CANCEL
        c.close()


def test_expect_100_continue(eddy):
    from proxy_backend import Backend, response

    def handler(req, conn):
        return response(200, b"len %d\n" % len(req.body))

    with Backend(handler) as b:
        e = eddy(CONFIG.replace("127.0.0.1:1", "127.0.0.1:%d" % b.port))
        c = H2(e.port)
        sid = c.request("/up/x", method="POST", end=False,
                        headers=[("content-length", "3"),
                                 ("expect", "100-continue")])
        deadline = 50
        while not c.streams[sid].informational and deadline:
            c.recv(0.1)
            deadline -= 1
        assert c.streams[sid].informational[0][0] == (":status", "100")
        c.send_data(sid, b"abc", end=True)
        st = c.wait(sid)
        assert st.status == 200 and st.body == b"len 3\n"
        c.close()


def test_client_reset_logged_and_sibling_served(srv):
    raw = Raw(srv.port)
    raw.send(raw.headers(1, raw.get_fields("/"), end_stream=False),
             hf.RstStreamFrame(1, error_code=CANCEL),
             raw.headers(3, raw.get_fields("/")))
    f = raw.until(lambda f: isinstance(f, hf.DataFrame) and f.stream_id == 3)
    assert f is not None and f.data == b"ok localhost\n"
    raw.close()


def test_head_counted_as_its_http1_text(srv):
    """max_headers (10) counts the fields of the HTTP/1.1 head a request
    stands for (the Host from :authority, the cookie crumbs as one), and
    max_header_size (1k) measures its text: 414 for the request line
    alone over it."""
    c = H2(srv.port)
    nine = [("x-%d" % i, "v") for i in range(9)]
    host = [("host", "h.test")]
    crumbs = [("cookie", "a=1"), ("cookie", "b=2")]
    assert c.get("/", headers=nine).status == 200
    assert c.get("/", headers=nine + [("x-9", "v")]).status == 431
    assert c.get("/", pseudo=GET[:3], headers=host + nine).status == 200
    assert c.get("/", pseudo=GET[:3],
                 headers=host + nine + [("x-9", "v")]).status == 431
    assert c.get("/", headers=nine[:8] + crumbs).status == 200
    assert c.get("/", headers=nine + crumbs).status == 431
    # "GET / HTTP/1.1\r\n" 16, "host: a.test\r\n" 14, "x-big: V\r\n"
    # 9 + len(V), "\r\n" 2: 1024 bytes with 983.
    big = [("x-big", "b" * 983)]
    assert c.get("/", authority="a.test", headers=big).status == 200
    big = [("x-big", "b" * 984)]
    assert c.get("/", authority="a.test", headers=big).status == 431
    # "GET /aaa... HTTP/1.1\r\n": 1024 bytes with a path of 1009.
    assert c.get("/" + "a" * 1008).status == 431
    assert c.get("/" + "a" * 1009).status == 414
    st = c.get("/", authority="after")
    assert st.status == 200 and st.body == b"ok after\n"
    c.close()
    log = log_lines(srv, "access.log", 11).splitlines()
    assert log[-3] == "431 GET /%s HTTP/2.0" % ("a" * 1008)
    assert log[-2].startswith("414 ")


def test_head_bytes_http1_refuses_are_400(srv):
    """A value HTTP/2 allows with a CTL or DEL in it (no field line of
    HTTP/1.1 may hold one), a method that is no token: 400 on the
    stream, as HTTP/1.1 answers; $request says HTTP/2.0 (empty without
    a valid request line, as on HTTP/1.1)."""
    c = H2(srv.port)
    st = c.get("/ctl", headers=[("x", "a\x01b")])
    assert st.status == 400 and st.reset is None
    st = c.get("/del", headers=[("cookie", "a=1"), ("cookie", "b=\x7f")])
    assert st.status == 400 and st.reset is None
    st = c.get("/m", method="G@T")
    assert st.status == 400 and st.reset is None
    st = c.get("/ok", headers=[("x", "a\tb")])
    assert st.status == 200
    c.close()
    log = log_lines(srv, "access.log", 4).splitlines()
    assert log[:2] == ["400 GET /ctl HTTP/2.0", "400 GET /del HTTP/2.0"]
    # No request line by HTTP/1.1's grammar: none logged, as there.
    assert log[2] == "400 "
    assert log[3] == "200 GET /ok HTTP/2.0"


def test_fields_relayed_as_http1(eddy):
    """The head the upstream gets: Host from :authority first, the fields
    in order, the crumbs joined, fields with '_' dropped
    (underscores_in_headers off)."""
    from proxy_backend import Backend, response

    seen = []

    def handler(req, conn):
        seen.append(req)
        return response(200, b"ok\n")

    with Backend(handler) as b:
        e = eddy(CONFIG.replace("127.0.0.1:1", "127.0.0.1:%d" % b.port))
        c = H2(e.port)
        st = c.get("/up/x?q=1", authority="a.test:80",
                   headers=[("x-one", "1"), ("cookie", "a=1"),
                            ("x_under", "u"), ("x-two", "2 2"),
                            ("cookie", "b=2")])
        assert st.status == 200
        c.close()
    r = seen[-1]
    assert r.target == "/up/x?q=1"
    assert r.header("Host") == "a.test:80"
    assert r.header("X-One") == "1" and r.header("X-Two") == "2 2"
    assert r.header("Cookie") == "a=1; b=2"
    assert r.header("X_Under") is None
