import sys, time
from test_attack_fastcgi import FcgiServer, replying, response, HEAD, h2_config, stdout, end
from fcgiutil import read_request
def test_short(eddy):
    from h2util import H2
    got = []
    def handler(req, conn):
        conn.settimeout(2)
        data = b""
        try:
            while True:
                d = conn.recv(65536)
                if not d: break
                data += d
        except OSError:
            pass
        got.append(data)
        return False
    with FcgiServer(handler, want_stdin=False) as srv:
        e = eddy(h2_config(srv))
        for cl, body in (("10", b"12345"), ("5", b"1234567890")):
            c = H2(e.port)
            sid = c.request("/x", method="POST", headers=[("content-length", cl)], body=body[:3], end=False)
            time.sleep(0.5)
            c.send_data(sid, body[3:], end=True)
            st = c.wait(sid, 4)
            print("CASE", cl, st.status, st.reset, c.goaway)
            c.close()
        time.sleep(2.5)
        print("GOT", got)
