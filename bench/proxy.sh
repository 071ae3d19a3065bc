#!/bin/sh
# Reverse proxy side by side with nginx: both proxy to the same small,
# fast backend (bench/backend.c) with upstream keep-alive; 1 KiB
# responses; wrk on keep-alive client connections. Rounds alternate
# between the servers; the median requests/s, p99 and worker CPU time
# per request of each are reported with the ratios eddy/nginx. The CPU
# time per request holds even when wrk or the backend is what limits
# the rate (as on small machines). -p pins the servers to CPU 0 and wrk
# and the backend to the other CPUs (useful with 4+ CPUs). Then (with
# -s) the system calls a request costs in each worker, counted with
# strace -c.
#
# Usage: bench/proxy.sh [-r ROUNDS] [-d SECONDS] [-c CONNECTIONS]
#                       [-w WORKERS] [-t WRK_THREADS] [-b BYTES] [-s] [-p]
# Needs: objs/eddy (make), nginx, wrk, cc; strace for -s; taskset.
set -eu

ROUNDS=3
DURATION=5
CONNS=50
WORKERS=1
THREADS=1
BYTES=1024
SYSCALLS=no
PIN=no

while getopts r:d:c:w:t:b:sp opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    w) WORKERS=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    b) BYTES=$OPTARG ;;
    s) SYSCALLS=yes ;;
    p) PIN=yes ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
    esac
done

TOP=$(cd "$(dirname "$0")/.." && pwd)
EDDY=${EDDY:-$TOP/objs/eddy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
for tool in "$EDDY" "$NGINX" "$(command -v wrk || true)" \
    "$(command -v cc || true)"; do
    if [ -z "$tool" ] || [ ! -x "$tool" ]; then
        echo "proxy.sh: missing ${tool:-wrk or cc}" >&2
        exit 2
    fi
done
if [ "$SYSCALLS" = yes ] && ! command -v strace >/dev/null; then
    echo "proxy.sh: -s needs strace" >&2
    exit 2
fi

DIR=$(mktemp -d /tmp/eddy-bench-proxy.XXXXXX)
PIDS=""
cleanup() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# Pinning: servers on CPU 0, load generator and backend elsewhere.
NCPU=$(getconf _NPROCESSORS_ONLN)
SRV_CPU=""
CLI_CPU=""
if [ "$PIN" = yes ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null
then
    SRV_CPU="taskset -c 0"
    CLI_CPU="taskset -c 1-$((NCPU - 1))"
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
BPORT=$(free_port)
EPORT=$(free_port)
NPORT=$(free_port)

cc -O2 -pthread -o "$DIR/backend" "$TOP/bench/backend.c"
$CLI_CPU "$DIR/backend" "$BPORT" "$BYTES" >"$DIR/backend.log" 2>&1 &
PIDS="$PIDS $!"

mkdir -p "$DIR/eddy/logs" "$DIR/nginx/logs"
cat > "$DIR/eddy/eddy.yaml" <<EOF
workers: $WORKERS
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: warn}
events: {max_connections: 4096}
upstreams:
  backend:
    keepalive: 64
    servers: [127.0.0.1:$BPORT]
servers:
  - listen: 127.0.0.1:$EPORT
    access_log: off
    keepalive_requests: 1000000
    locations:
      /:
        proxy: {pass: backend}
EOF

cat > "$DIR/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $DIR/nginx/logs/nginx.pid;
error_log $DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream backend {
        server 127.0.0.1:$BPORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NPORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF

$SRV_CPU "$EDDY" -p "$DIR/eddy" -c "$DIR/eddy/eddy.yaml" \
    >"$DIR/eddy/stdout" 2>&1 &
PIDS="$PIDS $!"
$SRV_CPU "$NGINX" -p "$DIR/nginx" -e "$DIR/nginx/logs/error.log" \
    -c "$DIR/nginx/nginx.conf" -g 'daemon off;' >"$DIR/nginx/stdout" 2>&1 &
PIDS="$PIDS $!"

wait_port() {
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$1/"; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "proxy.sh: nothing answers on port $1" >&2
            exit 1
        fi
        sleep 0.1
    done
}
wait_port "$BPORT"
wait_port "$EPORT"
wait_port "$NPORT"
for p in "$EPORT" "$NPORT"; do
    got=$(curl -s "http://127.0.0.1:$p/" | wc -c)
    if [ "$got" -ne "$BYTES" ]; then
        echo "proxy.sh: port $p answered $got bytes, not $BYTES" >&2
        exit 1
    fi
done

# The CPU time (user + system, in clock ticks) of the workers of a
# master so far.
cpu_ticks() {
    t=0
    for pid in $(pgrep -P "$1"); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$t"
}
TCK=$(getconf CLK_TCK)

# One wrk run: prints "REQS_PER_S P99_MS CPU_US_PER_REQUEST".
run_wrk() { # PORT MASTER_PID
    c0=$(cpu_ticks "$2")
    $CLI_CPU wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
        "http://127.0.0.1:$1/" >"$DIR/wrk.out" 2>&1
    c1=$(cpu_ticks "$2")
    awk -v c=$((c1 - c0)) -v tck="$TCK" '
        /requests in/ { n = $1 }
        /Requests\/sec:/ { rps = $2 }
        /^ *99%/ {
            v = $2
            if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
            else if (v ~ /ms$/) { sub(/ms$/, "", v) }
            else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
            p99 = v
        }
        END { printf "%.0f %.3f %.2f\n", rps, p99, c / tck * 1e6 / n }' \
        "$DIR/wrk.out"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

EMASTER=$(cat "$DIR/eddy/logs/eddy.pid")
NMASTER=$(cat "$DIR/nginx/logs/nginx.pid")
echo "proxy: ${BYTES}-byte responses, $CONNS connections, $THREADS wrk" \
     "thread(s), $WORKERS worker(s), ${DURATION}s x $ROUNDS rounds," \
     "pinning: ${SRV_CPU:-none}"
for f in eddy.rps nginx.rps eddy.p99 nginx.p99 eddy.cpu nginx.cpu; do
    : >"$DIR/$f"
done
# Warm-up, not counted.
$CLI_CPU wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$EPORT/" >/dev/null 2>&1
$CLI_CPU wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$NPORT/" >/dev/null 2>&1
r=1
while [ $r -le "$ROUNDS" ]; do
    for s in eddy nginx; do
        if [ $s = eddy ]; then
            set -- $(run_wrk "$EPORT" "$EMASTER")
        else
            set -- $(run_wrk "$NPORT" "$NMASTER")
        fi
        echo "$1" >>"$DIR/$s.rps"
        echo "$2" >>"$DIR/$s.p99"
        echo "$3" >>"$DIR/$s.cpu"
        printf '  round %d: %-5s %8s req/s  p99 %7s ms  %6s us CPU/req\n' \
            "$r" "$s" "$1" "$2" "$3"
    done
    r=$((r + 1))
done
ERPS=$(median <"$DIR/eddy.rps")
NRPS=$(median <"$DIR/nginx.rps")
EP99=$(median <"$DIR/eddy.p99")
NP99=$(median <"$DIR/nginx.p99")
ECPU=$(median <"$DIR/eddy.cpu")
NCPUR=$(median <"$DIR/nginx.cpu")
echo
echo "| server | req/s (median) | p99 ms (median) | worker CPU us/req |"
echo "|--------|---------------:|----------------:|------------------:|"
echo "| eddy   | $ERPS | $EP99 | $ECPU |"
echo "| nginx  | $NRPS | $NP99 | $NCPUR |"
awk -v e="$ERPS" -v n="$NRPS" -v ec="$ECPU" -v nc="$NCPUR" 'BEGIN {
    printf "ratio eddy/nginx: %.2f (requests/s), %.2f (CPU per request)\n",
        e / n, nc / ec }'

if [ "$SYSCALLS" = no ]; then
    exit 0
fi

# System calls per request: strace counts the calls of one worker while
# wrk runs; requests come from wrk's own count.
worker_of() {
    for pid in $(pgrep -P "$1"); do
        echo "$pid"
        return
    done
}
count_syscalls() { # NAME PORT MASTER_PID
    w=$(worker_of "$3")
    strace -c -f -q -p "$w" -o "$DIR/$1.strace" &
    spid=$!
    sleep 0.5
    $CLI_CPU wrk -t1 -c"$CONNS" -d3s "http://127.0.0.1:$2/" \
        >"$DIR/$1.wrk" 2>&1
    kill -INT "$spid"
    wait "$spid" 2>/dev/null || true
    reqs=$(awk '/requests in/ { print $1 }' "$DIR/$1.wrk")
    calls=$(awk '/^100.00|total/ { print $4; exit }' "$DIR/$1.strace")
    echo "$1: $calls system calls / $reqs requests =" \
        "$(awk -v c="$calls" -v r="$reqs" 'BEGIN { printf "%.2f", c / r }')" \
        "per request"
    sort -k4 -n -r "$DIR/$1.strace" | awk 'NR > 1 && NR <= 8 && $NF != "total" { printf "    %-14s %s\n", $NF, $4 }'
}
echo
count_syscalls eddy "$EPORT" "$EMASTER"
count_syscalls nginx "$NPORT" "$NMASTER"
