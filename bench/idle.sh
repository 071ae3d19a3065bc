#!/usr/bin/env bash
# Memory of idle keep-alive connections: eddy against Debian's nginx and
# H2O (when installed), the worker's VmRSS growth per connection (see
# bench/README.md). Installs nothing.
#
# usage: bench/idle.sh [connections [h1|h2c]]   (default 8000 h1; ulimit -n
#   must allow that many, plus a few). h2c: HTTP/2 by prior knowledge,
#   one stream per connection, then idle.
# environment: EDDY (objs/eddy), NGINX (nginx), H2O (h2o), EDDY_PORT
#   (18482), NGINX_PORT (18483), H2O_PORT (18484).
set -u

cd "$(dirname "$0")/.."
REPO=$(pwd)
EDDY=${EDDY:-$REPO/objs/eddy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
EDDY_PORT=${EDDY_PORT:-18482}
NGINX_PORT=${NGINX_PORT:-18483}
H2O=${H2O:-$(command -v h2o || echo /usr/bin/h2o)}
H2O_PORT=${H2O_PORT:-18484}
N=${1:-8000}
MODE=${2:-h1}
case "$MODE" in
h1) H2=false; NGINX_H2="" ;;
h2c) H2=true; NGINX_H2=" http2" ;;
*) echo "bench: mode is h1 or h2c, not $MODE" >&2; exit 1 ;;
esac

if [ ! -x "$EDDY" ]; then
    echo "bench: missing eddy ($EDDY: run make)" >&2
    exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "bench: missing python3 (apt-get install python3)" >&2
    exit 1
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 300)) ]
then
    echo "bench: ulimit -n is $(ulimit -n), $N connections need more" >&2
    exit 1
fi

DIR=$(mktemp -d /tmp/eddy-idle-XXXXXX)
EDDY_PID=""
NGINX_PID=""
H2O_PID=""

cleanup() {
    [ -n "$EDDY_PID" ] && kill "$EDDY_PID" 2>/dev/null
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null
    [ -n "$H2O_PID" ] && kill "$H2O_PID" 2>/dev/null
    sleep 0.5
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

mkdir -p "$DIR/html" "$DIR/logs" "$DIR/conf"
chmod 755 "$DIR" "$DIR/html"
echo hello > "$DIR/html/index.html"
chmod 644 "$DIR/html/index.html"

# One worker each, no access log, keep-alive long enough for the run.
cat > "$DIR/conf/eddy.yaml" <<EOF
workers: 1
pid_file: logs/eddy.pid
error_log: {path: logs/eddy-error.log, level: warn}
events: {max_connections: $((N + 1000))}
access_log: off
keepalive_timeout: 300s
servers:
  - listen: {address: "127.0.0.1:$EDDY_PORT", http2: $H2}
    root: html
    locations:
      /:
        static: {}
EOF

cat > "$DIR/conf/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $((N + 1000));
daemon off;
pid $DIR/logs/nginx.pid;
error_log $DIR/logs/nginx-error.log warn;
events { worker_connections $((N + 1000)); }
http {
    access_log off;
    keepalive_timeout 300s;
    client_body_temp_path $DIR/logs;
    proxy_temp_path $DIR/logs;
    fastcgi_temp_path $DIR/logs;
    uwsgi_temp_path $DIR/logs;
    scgi_temp_path $DIR/logs;
    server {
        listen 127.0.0.1:$NGINX_PORT$NGINX_H2;
        root $DIR/html;
        location / { }
    }
}
EOF

cat > "$DIR/conf/h2o.conf" <<EOF
num-threads: 1
max-connections: $((N + 1000))
listen: {host: 127.0.0.1, port: $H2O_PORT}
error-log: $DIR/logs/h2o-error.log
http1-request-timeout: 300
http2-idle-timeout: 300
hosts:
  default:
    paths:
      /: {file.dir: $DIR/html}
EOF

# The probe: warms the worker up with 200 connections, then opens N
# idle keep-alive connections after one request each and prints the
# growth of the workers' VmRSS per connection.
cat > "$DIR/probe.py" <<'EOF'
import socket, sys, time
port = int(sys.argv[1]); n = int(sys.argv[2]); h2 = sys.argv[3] == "h2c"
pids = [int(p) for p in sys.argv[4:]]
# h2c: the preface, an empty SETTINGS, HEADERS (GET / on stream 1:
# static table entries, :authority "x"), then the ACK of the server's
# SETTINGS once they came.
H2REQ = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0\0\0\4\0\0\0\0\0"
         + b"\0\0\6\1\5\0\0\0\1" + b"\x82\x86\x84\x41\x01x")
H2ACK = b"\0\0\0\4\1\0\0\0\0"
def rss():
    t = 0
    for p in pids:
        for line in open("/proc/%d/status" % p):
            if line.startswith("VmRSS:"):
                t += int(line.split()[1]) * 1024
    return t
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(H2REQ if h2 else
              b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while b"hello" not in d:
        b = s.recv(4096)
        if not b:
            sys.exit("bench: the server closed a connection")
        d += b
    if h2:
        s.sendall(H2ACK)
    return s
warm = [conn() for _ in range(200)]
for s in warm:
    s.close()
time.sleep(0.5); r0 = rss()
socks = [conn() for _ in range(n)]
time.sleep(2); r1 = rss()
print("%.0f" % ((r1 - r0) / n))
EOF

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench: nothing listens on port $1" >&2
    cat "$DIR"/logs/*.out "$DIR"/logs/*error.log >&2 2>/dev/null
    exit 1
}

# workers PID: the children of a master.
workers() {
    pgrep -P "$1" | tr '\n' ' '
}

"$EDDY" -p "$DIR" -c "$DIR/conf/eddy.yaml" > "$DIR/logs/eddy.out" 2>&1 &
EDDY_PID=$!
wait_port "$EDDY_PORT"
# shellcheck disable=SC2046
eddy_b=$(python3 "$DIR/probe.py" "$EDDY_PORT" "$N" "$MODE" \
    $(workers "$EDDY_PID"))
kill "$EDDY_PID"
EDDY_PID=""

nginx_b="-"
if [ -x "$NGINX" ]; then
    "$NGINX" -p "$DIR" -c "$DIR/conf/nginx.conf" \
        > "$DIR/logs/nginx.out" 2>&1 &
    NGINX_PID=$!
    wait_port "$NGINX_PORT"
    # shellcheck disable=SC2046
    nginx_b=$(python3 "$DIR/probe.py" "$NGINX_PORT" "$N" "$MODE" \
        $(workers "$NGINX_PID"))
    kill -QUIT "$NGINX_PID"
    NGINX_PID=""
fi

h2o_b="-"
if [ -x "$H2O" ]; then
    "$H2O" -c "$DIR/conf/h2o.conf" > "$DIR/logs/h2o.out" 2>&1 &
    H2O_PID=$!
    wait_port "$H2O_PORT"
    # One process: its threads serve the connections.
    h2o_b=$(python3 "$DIR/probe.py" "$H2O_PORT" "$N" "$MODE" "$H2O_PID")
fi

echo "idle keep-alive connections ($MODE): $N, one worker each"
printf '%-8s %8s bytes each\n' eddy "$eddy_b" nginx "$nginx_b" h2o "$h2o_b"
echo "(nginx allocates its connection and event arrays at start: its growth"
echo " leaves out an ngx_connection_t and two ngx_event_t per connection)"
