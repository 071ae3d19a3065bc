#!/usr/bin/env bash
# Memory of idle keep-alive connections: eddy against Debian's nginx (when
# installed), the worker's VmRSS growth per connection (see
# bench/README.md). Installs nothing.
#
# usage: bench/idle.sh [connections]   (default 8000; ulimit -n must allow
#   that many, plus a few)
# environment: EDDY (objs/eddy), NGINX (nginx), EDDY_PORT (18482),
#   NGINX_PORT (18483).
set -u

cd "$(dirname "$0")/.."
REPO=$(pwd)
EDDY=${EDDY:-$REPO/objs/eddy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
EDDY_PORT=${EDDY_PORT:-18482}
NGINX_PORT=${NGINX_PORT:-18483}
N=${1:-8000}

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

cleanup() {
    [ -n "$EDDY_PID" ] && kill "$EDDY_PID" 2>/dev/null
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null
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
  - listen: 127.0.0.1:$EDDY_PORT
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
        listen 127.0.0.1:$NGINX_PORT;
        root $DIR/html;
        location / { }
    }
}
EOF

# The probe: warms the worker up with 200 connections, then opens N
# idle keep-alive connections after one request each and prints the
# growth of the workers' VmRSS per connection.
cat > "$DIR/probe.py" <<'EOF'
import socket, sys, time
port = int(sys.argv[1]); n = int(sys.argv[2])
pids = [int(p) for p in sys.argv[3:]]
def rss():
    t = 0
    for p in pids:
        for line in open("/proc/%d/status" % p):
            if line.startswith("VmRSS:"):
                t += int(line.split()[1]) * 1024
    return t
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while b"hello" not in d:
        d += s.recv(4096)
    return s
warm = [conn() for _ in range(200)]
for s in warm:
    s.close()
time.sleep(0.5); r0 = rss()
socks = [conn() for _ in range(n)]
time.sleep(1); r1 = rss()
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
eddy_b=$(python3 "$DIR/probe.py" "$EDDY_PORT" "$N" $(workers "$EDDY_PID"))
kill "$EDDY_PID"
EDDY_PID=""

nginx_b="-"
if [ -x "$NGINX" ]; then
    "$NGINX" -p "$DIR" -c "$DIR/conf/nginx.conf" \
        > "$DIR/logs/nginx.out" 2>&1 &
    NGINX_PID=$!
    wait_port "$NGINX_PORT"
    # shellcheck disable=SC2046
    nginx_b=$(python3 "$DIR/probe.py" "$NGINX_PORT" "$N" \
        $(workers "$NGINX_PID"))
fi

echo "idle keep-alive connections: $N, one worker each"
printf '%-8s %8s bytes each\n' eddy "$eddy_b" nginx "$nginx_b"
echo "(nginx allocates its connection and event arrays at start: its growth"
echo " leaves out an ngx_connection_t and two ngx_event_t per connection)"
