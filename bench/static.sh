#!/usr/bin/env bash
# Static files: eddy against Debian's nginx, side by side in one run, with
# wrk on loopback (see bench/README.md). Installs nothing.
#
# usage: bench/static.sh [strace]
#   strace: also count eddy's system calls per request (1 KiB keep-alive).
# environment: WORKERS (1), THREADS (wrk threads, 1), CONNS (50),
#   DURATION (10s), ROUNDS (3), EDDY (objs/eddy), NGINX (nginx),
#   EDDY_PORT (18480), NGINX_PORT (18481).
set -u

cd "$(dirname "$0")/.."
REPO=$(pwd)
EDDY=${EDDY:-$REPO/objs/eddy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-1}
CONNS=${CONNS:-50}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
EDDY_PORT=${EDDY_PORT:-18480}
NGINX_PORT=${NGINX_PORT:-18481}

missing=""
[ -x "$EDDY" ] || missing="$missing eddy($EDDY: run make)"
[ -x "$NGINX" ] || missing="$missing nginx(apt-get install nginx)"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk(apt-get install wrk)"
if [ "${1:-}" = strace ] && ! command -v strace >/dev/null 2>&1; then
    missing="$missing strace(apt-get install strace)"
fi
if [ -n "$missing" ]; then
    echo "bench: missing:$missing" >&2
    exit 1
fi

DIR=$(mktemp -d /tmp/eddy-bench-XXXXXX)
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
head -c 1024 /dev/urandom > "$DIR/html/1k.bin"
head -c 65536 /dev/urandom > "$DIR/html/64k.bin"
head -c 1048576 /dev/urandom > "$DIR/html/1m.bin"
chmod 644 "$DIR"/html/*

# The same work for both: no access log, sendfile, open files cached,
# keep-alive connections kept for the whole run.
cat > "$DIR/conf/eddy.yaml" <<EOF
workers: $WORKERS
pid_file: logs/eddy.pid
error_log: {path: logs/eddy-error.log, level: warn}
open_file_cache: {max: 10000, valid: 30s}
events: {max_connections: 10000}
access_log: off
keepalive_requests: 100000000
servers:
  - listen: 127.0.0.1:$EDDY_PORT
    root: html
    locations:
      /:
        static: {}
EOF

cat > "$DIR/conf/nginx.conf" <<EOF
worker_processes $WORKERS;
daemon off;
pid $DIR/logs/nginx.pid;
error_log $DIR/logs/nginx-error.log warn;
events { worker_connections 10000; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    open_file_cache max=10000 inactive=30s;
    open_file_cache_valid 30s;
    default_type application/octet-stream;
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

"$EDDY" -p "$DIR" -c "$DIR/conf/eddy.yaml" > "$DIR/logs/eddy.out" 2>&1 &
EDDY_PID=$!
"$NGINX" -p "$DIR" -c "$DIR/conf/nginx.conf" > "$DIR/logs/nginx.out" 2>&1 &
NGINX_PID=$!

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
wait_port "$EDDY_PORT"
wait_port "$NGINX_PORT"

# Both serve the same bytes.
for f in 1k.bin 64k.bin 1m.bin; do
    if ! cmp -s <(curl -s "http://127.0.0.1:$EDDY_PORT/$f") "$DIR/html/$f" \
        || ! cmp -s <(curl -s "http://127.0.0.1:$NGINX_PORT/$f") \
            "$DIR/html/$f"; then
        echo "bench: $f differs from the file" >&2
        exit 1
    fi
done

# wrk's 99th percentile in milliseconds.
p99_ms() {
    awk '$1 == "99%" {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000;
        printf "%.3f", v }'
}

# run NAME PORT FILE [wrk args...]: prints "req/s p99ms".
run() {
    local port=$2 file=$3 out
    shift 3
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" \
        "http://127.0.0.1:$port/$file" 2>&1)
    if echo "$out" | grep -q "Non-2xx\|Socket errors: connect [1-9]"; then
        echo "bench: wrk reported errors:" >&2
        echo "$out" >&2
    fi
    printf '%s %s\n' "$(echo "$out" | awk '/^Requests\/sec/ {print $2}')" \
        "$(echo "$out" | p99_ms)"
}

ROWS=("1 KiB keep-alive|1k.bin|" "64 KiB keep-alive|64k.bin|"
      "1 MiB keep-alive|1m.bin|" "1 KiB Connection: close|1k.bin|close")
RES="$DIR/results"
: > "$RES"

echo "eddy $("$EDDY" -v 2>&1) vs $("$NGINX" -v 2>&1 | sed 's/.*: //');" \
     "workers $WORKERS, wrk -t$THREADS -c$CONNS -d$DURATION," \
     "$ROUNDS rounds, $(nproc) CPUs"
for round in $(seq 1 "$ROUNDS"); do
    for i in "${!ROWS[@]}"; do
        IFS='|' read -r name file mode <<< "${ROWS[$i]}"
        extra=()
        [ "$mode" = close ] && extra=(-H "Connection: close")
        # Alternate who goes first, so neither always gets a warm CPU.
        if [ $((round % 2)) -eq 1 ]; then
            order="eddy nginx"
        else
            order="nginx eddy"
        fi
        for srv in $order; do
            port=$EDDY_PORT
            [ "$srv" = nginx ] && port=$NGINX_PORT
            r=$(run "$srv" "$port" "$file" "${extra[@]}")
            echo "$i $srv $r" >> "$RES"
            printf '  round %d  %-24s %-5s %10s req/s  p99 %s ms\n' \
                "$round" "$name" "$srv" $r >&2
        done
    done
done

median() {
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2];
        else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo
printf '%-24s %12s %12s %7s %10s %10s\n' "case" "eddy req/s" \
    "nginx req/s" "ratio" "eddy p99" "nginx p99"
for i in "${!ROWS[@]}"; do
    IFS='|' read -r name file mode <<< "${ROWS[$i]}"
    er=$(awk -v i="$i" '$1 == i && $2 == "eddy" {print $3}' "$RES" | median)
    nr=$(awk -v i="$i" '$1 == i && $2 == "nginx" {print $3}' "$RES" | median)
    ep=$(awk -v i="$i" '$1 == i && $2 == "eddy" {print $4}' "$RES" | median)
    np=$(awk -v i="$i" '$1 == i && $2 == "nginx" {print $4}' "$RES" | median)
    ratio=$(awk -v a="$er" -v b="$nr" 'BEGIN {
        if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-24s %12.0f %12.0f %7s %8.2fms %8.2fms\n' "$name" "$er" "$nr" \
        "$ratio" "$ep" "$np"
done

if [ "${1:-}" = strace ]; then
    # System calls of eddy's worker(s) while wrk runs the 1 KiB case.
    pids=$(pgrep -P "$EDDY_PID" | sed 's/^/-p /' | tr '\n' ' ')
    # shellcheck disable=SC2086
    strace -c -f $pids -o "$DIR/strace.txt" &
    STRACE_PID=$!
    sleep 1
    out=$(wrk -t"$THREADS" -c"$CONNS" -d5s "http://127.0.0.1:$EDDY_PORT/1k.bin")
    kill -INT "$STRACE_PID"
    wait "$STRACE_PID" 2>/dev/null
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    echo
    echo "eddy system calls, 1 KiB keep-alive, $reqs requests (under strace):"
    awk -v n="$reqs" '
        /^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ && $NF != "total" {
            printf "  %-14s %10d  %.3f per request\n", $NF, $4, $4 / n;
            total += $4 }
        END { printf "  %-14s %10d  %.3f per request\n", "total", total,
              total / n }' "$DIR/strace.txt"
fi
