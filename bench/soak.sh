#!/usr/bin/env bash
# Soak: eddy under wrk load while it reloads every second. Two wrk runs
# at once, one on a static file and one on a proxied location (served by
# bench/backend.c), while `eddy -s reload` runs once a second. Reports
# the requests, the errors (wrk's socket errors and non-2xx answers: there
# must be none), the reloads and their outcome, and the master's RSS
# before and after. Exit status 0 only with zero errors and every reload
# done. Not part of make check (see bench/README.md).
#
# usage: bench/soak.sh
# environment: SOAK_SECONDS (60), WORKERS (2), CONNS (wrk connections per
#   run, 32), THREADS (wrk threads per run, 1), EDDY (objs/eddy),
#   PROXY (1; 0: static only).
set -u

cd "$(dirname "$0")/.."
REPO=$(pwd)
EDDY=${EDDY:-$REPO/objs/eddy}
SOAK_SECONDS=${SOAK_SECONDS:-60}
WORKERS=${WORKERS:-2}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
PROXY=${PROXY:-1}

missing=""
[ -x "$EDDY" ] || missing="$missing eddy($EDDY: run make)"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk(install wrk)"
command -v curl >/dev/null 2>&1 || missing="$missing curl(install curl)"
if [ "$PROXY" = 1 ] && ! command -v cc >/dev/null 2>&1; then
    missing="$missing cc(install gcc, or PROXY=0)"
fi
if [ -n "$missing" ]; then
    echo "soak: missing:$missing" >&2
    exit 1
fi

DIR=$(mktemp -d /tmp/eddy-soak-XXXXXX)
PIDS=""
cleanup() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null
    done
    sleep 0.5
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
BPORT=$(free_port)

mkdir -p "$DIR/html" "$DIR/logs" "$DIR/conf"
head -c 1024 /dev/urandom > "$DIR/html/1k.bin"

PROXY_LOC=""
if [ "$PROXY" = 1 ]; then
    cc -O2 -pthread -o "$DIR/backend" "$REPO/bench/backend.c" || exit 1
    "$DIR/backend" "$BPORT" 1024 > "$DIR/logs/backend.out" 2>&1 &
    PIDS="$PIDS $!"
    PROXY_LOC="      /api/:
        proxy: {pass: backend}"
fi

# Each reload writes a new body for /tag, so every one really changes
# the configuration.
write_conf() { # TAG
    cat > "$DIR/conf/eddy.yaml" <<EOF
workers: $WORKERS
shutdown_timeout: 5s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: notice}
events: {max_connections: 4096}
access_log: off
keepalive_requests: 100000000
upstreams:
  backend:
    keepalive: 32
    servers: [127.0.0.1:$BPORT]
servers:
  - listen: 127.0.0.1:$PORT
    root: html
    locations:
      /tag:
        return: {status: 200, body: "$1\n"}
$PROXY_LOC
      /:
        static: {}
EOF
}
write_conf 0

"$EDDY" -p "$DIR" -c "$DIR/conf/eddy.yaml" > "$DIR/logs/eddy.out" 2>&1 &
MASTER=$!
PIDS="$MASTER $PIDS"

for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/1k.bin" && break
    sleep 0.05
done
if ! curl -sf -o /dev/null "http://127.0.0.1:$PORT/1k.bin" \
    || { [ "$PROXY" = 1 ] \
         && ! curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/x"; }; then
    echo "soak: eddy does not answer on port $PORT" >&2
    cat "$DIR"/logs/* >&2
    exit 1
fi

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$MASTER/status"
}
RSS0=$(rss_kb)

wrk -t"$THREADS" -c"$CONNS" -d"${SOAK_SECONDS}s" \
    "http://127.0.0.1:$PORT/1k.bin" > "$DIR/wrk-static.out" 2>&1 &
W1=$!
W2=""
if [ "$PROXY" = 1 ]; then
    wrk -t"$THREADS" -c"$CONNS" -d"${SOAK_SECONDS}s" \
        "http://127.0.0.1:$PORT/api/x" > "$DIR/wrk-proxy.out" 2>&1 &
    W2=$!
fi

# One reload at each second of the run but the first and the last.
RELOADS=0
FAILED=0
start=$(date +%s)
while [ $((RELOADS + 2)) -lt "$SOAK_SECONDS" ]; do
    while [ "$(date +%s)" -lt $((start + RELOADS + 1)) ]; do
        sleep 0.05
    done
    RELOADS=$((RELOADS + 1))
    write_conf "$RELOADS"
    if ! "$EDDY" -p "$DIR" -c "$DIR/conf/eddy.yaml" -s reload \
        > "$DIR/reload.out" 2>&1; then
        FAILED=$((FAILED + 1))
        cat "$DIR/reload.out" >&2
    fi
done
wait $W1 $W2

# Let the last old generation leave, then measure.
sleep 1
RSS1=$(rss_kb)
TAG=$(curl -s "http://127.0.0.1:$PORT/tag")

# wrk output: "N requests in ...", "Socket errors: connect A, read B,
# write C, timeout D", "Non-2xx or 3xx responses: E".
summary() { # FILE
    awk '/requests in/ { n = $1 }
         /Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
         /Non-2xx/ { e += $NF }
         END { printf "%d %d\n", n, e }' "$1"
}
read -r REQ ERR < <(summary "$DIR/wrk-static.out")
if [ "$PROXY" = 1 ]; then
    read -r REQ2 ERR2 < <(summary "$DIR/wrk-proxy.out")
    REQ=$((REQ + REQ2))
    ERR=$((ERR + ERR2))
fi

echo "soak: ${SOAK_SECONDS}s, $WORKERS workers, wrk -t$THREADS -c$CONNS" \
     "x $([ "$PROXY" = 1 ] && echo "2 (static, proxy)" || echo "1 (static)")"
for f in "$DIR"/wrk-*.out; do
    echo "  $(basename "$f" .out): $(grep -E 'requests in|Socket errors|Non-2xx' "$f" | tr -s ' ' | tr '\n' ';')"
done
echo "requests:      $REQ"
echo "errors:        $ERR"
echo "reloads:       $RELOADS ($FAILED failed; /tag answers \"$TAG\")"
echo "master RSS:    ${RSS0} kB before, ${RSS1} kB after"
echo "error log:     $(grep -c '\[alert\]\|\[crit\]\|\[emerg\]' \
    "$DIR/logs/error.log") alert/crit/emerg lines"

if [ "$ERR" -ne 0 ] || [ "$FAILED" -ne 0 ] || [ "$TAG" != "$RELOADS" ]; then
    echo "soak: FAILED" >&2
    exit 1
fi
echo "soak: ok"
