#!/bin/sh
# HTTPS side by side with nginx, same certificate, same machine:
#   1. small responses on keep-alive connections (requests/s);
#   2. handshakes: every request on a new connection (Connection: close).
# Rounds alternate between the servers; the median of each is reported
# with the ratio eddy/nginx, and the median of the per-round ratios.
#
# Usage: bench/tls.sh [-r ROUNDS] [-d SECONDS] [-c CONNECTIONS]
#                     [-w WORKERS] [-t WRK_THREADS] [-k ec|rsa]
# Needs: objs/eddy (make), nginx, wrk, openssl.
set -eu

ROUNDS=3
DURATION=5
CONNS=50
WORKERS=1
THREADS=1
KEYTYPE=ec

while getopts r:d:c:w:t:k: opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    w) WORKERS=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    k) KEYTYPE=$OPTARG ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
    esac
done

TOP=$(cd "$(dirname "$0")/.." && pwd)
EDDY=${EDDY:-$TOP/objs/eddy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
for tool in "$EDDY" "$NGINX" "$(command -v wrk || true)" \
    "$(command -v openssl || true)"; do
    if [ -z "$tool" ] || [ ! -x "$tool" ]; then
        echo "tls.sh: missing ${tool:-wrk or openssl}" >&2
        exit 2
    fi
done

DIR=$(mktemp -d /tmp/eddy-bench-tls.XXXXXX)
PIDS=""
cleanup() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
EPORT=$(free_port)
NPORT=$(free_port)
while [ "$NPORT" = "$EPORT" ]; do
    NPORT=$(free_port)
done

# One certificate for both.
if [ "$KEYTYPE" = rsa ]; then
    KEYOPT="-newkey rsa:2048"
else
    KEYOPT="-newkey ec -pkeyopt ec_paramgen_curve:P-256"
fi
# shellcheck disable=SC2086
openssl req -x509 $KEYOPT -nodes -days 2 -subj /CN=bench.test \
    -keyout "$DIR/bench.key" -out "$DIR/bench.pem" 2>/dev/null

mkdir -p "$DIR/eddy/logs" "$DIR/nginx/logs"
cat > "$DIR/eddy/eddy.yaml" <<EOF
workers: $WORKERS
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: warn}
events: {max_connections: 4096}
servers:
  - listen: 127.0.0.1:$EPORT
    tls: {certificate: $DIR/bench.pem, key: $DIR/bench.key}
    access_log: off
    keepalive_requests: 1000000
    locations:
      /:
        return: {status: 200, body: "hello, world\n", content_type: text/plain}
EOF

cat > "$DIR/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $DIR/nginx/logs/nginx.pid;
error_log $DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $DIR/bench.pem;
        ssl_certificate_key $DIR/bench.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        location / {
            default_type text/plain;
            return 200 "hello, world\n";
        }
    }
}
EOF

"$EDDY" -p "$DIR/eddy" -c "$DIR/eddy/eddy.yaml" \
    >"$DIR/eddy/stdout" 2>&1 &
PIDS="$PIDS $!"
"$NGINX" -p "$DIR/nginx" -e "$DIR/nginx/logs/error.log" \
    -c "$DIR/nginx/nginx.conf" -g 'daemon off;' >"$DIR/nginx/stdout" 2>&1 &
PIDS="$PIDS $!"

wait_port() {
    i=0
    until curl -sk -o /dev/null "https://127.0.0.1:$1/"; do
        i=$((i + 1))
        if [ $i -gt 50 ]; then
            echo "tls.sh: nothing answers on port $1" >&2
            cat "$DIR"/*/stdout "$DIR"/*/logs/error.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}
wait_port "$EPORT"
wait_port "$NPORT"

# Requests/s of one wrk run; extra arguments go to wrk.
run() {
    port=$1
    shift
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$@" \
        "https://127.0.0.1:$port/" 2>&1 \
        | awk '/^Requests\/sec:/ { print $2 }'
}

median() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print 0; exit }
        if (NR % 2) { print v[(NR + 1) / 2] }
        else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'
}

# Warm both up (page cache, CPU frequency, first handshakes).
wrk -t1 -c4 -d1s "https://127.0.0.1:$EPORT/" >/dev/null 2>&1 || true
wrk -t1 -c4 -d1s "https://127.0.0.1:$NPORT/" >/dev/null 2>&1 || true

: >"$DIR/ka.eddy"; : >"$DIR/ka.nginx"
: >"$DIR/hs.eddy"; : >"$DIR/hs.nginx"
r=1
while [ $r -le "$ROUNDS" ]; do
    run "$EPORT" >>"$DIR/ka.eddy"
    run "$NPORT" >>"$DIR/ka.nginx"
    run "$EPORT" -H 'Connection: close' >>"$DIR/hs.eddy"
    run "$NPORT" -H 'Connection: close' >>"$DIR/hs.nginx"
    printf 'round %d: keep-alive eddy %s nginx %s;' "$r" \
        "$(tail -1 "$DIR/ka.eddy")" "$(tail -1 "$DIR/ka.nginx")"
    printf ' handshakes eddy %s nginx %s\n' \
        "$(tail -1 "$DIR/hs.eddy")" "$(tail -1 "$DIR/hs.nginx")"
    r=$((r + 1))
done

# Ratios within each round too: on a busy machine the load drifts between
# rounds, and a round compares the servers under the same load.
paired() {
    paste "$1" "$2" | awk '$2 > 0 { print $1 / $2 }' | median
}
KP=$(paired "$DIR/ka.eddy" "$DIR/ka.nginx")
HP=$(paired "$DIR/hs.eddy" "$DIR/hs.nginx")

KE=$(median <"$DIR/ka.eddy")
KN=$(median <"$DIR/ka.nginx")
HE=$(median <"$DIR/hs.eddy")
HN=$(median <"$DIR/hs.nginx")
echo
echo "HTTPS, $KEYTYPE certificate, $WORKERS worker(s), wrk -t$THREADS" \
    "-c$CONNS -d${DURATION}s, median of $ROUNDS rounds ($(nproc) CPUs)"
printf '%-34s %9s %9s %6s %7s\n' test eddy nginx ratio paired
awk -v ke="$KE" -v kn="$KN" -v he="$HE" -v hn="$HN" -v kp="$KP" \
    -v hp="$HP" 'BEGIN {
    kr = kn > 0 ? ke / kn : 0
    hr = hn > 0 ? he / hn : 0
    printf "%-34s %9.0f %9.0f %6.2f %7.2f\n",
        "keep-alive small response req/s", ke, kn, kr, kp
    printf "%-34s %9.0f %9.0f %6.2f %7.2f\n",
        "handshakes (Connection: close)/s", he, hn, hr, hp
}'
echo "ratio: of the medians; paired: median of the per-round ratios"
