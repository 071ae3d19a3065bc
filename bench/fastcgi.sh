#!/bin/sh
# FastCGI side by side with nginx: both pass a tiny PHP page to the same
# php-fpm pool (pm = static, a unix socket) with kept connections
# (eddy: the group's keepalive, FCGI_KEEP_CONN; nginx: upstream
# keepalive with fastcgi_keep_conn on), one worker each; wrk on
# keep-alive client connections. Rounds alternate between the servers;
# the median requests/s, p99 and the server worker's CPU time per
# request are reported with the ratios eddy/nginx. The CPU per request
# holds even when php-fpm or wrk is what limits the rate.
#
# Usage: bench/fastcgi.sh [-r ROUNDS] [-d SECONDS] [-c CONNECTIONS]
#                         [-k KEEPALIVE] [-n FPM_CHILDREN]
# Needs: objs/eddy (make), nginx, wrk, php-fpm (Debian php8.2-fpm).
set -eu

ROUNDS=3
DURATION=5
CONNS=4
KEEP=4
CHILDREN=12

while getopts r:d:c:k:n: opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    k) KEEP=$OPTARG ;;
    n) CHILDREN=$OPTARG ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
    esac
done

TOP=$(cd "$(dirname "$0")/.." && pwd)
EDDY=${EDDY:-$TOP/objs/eddy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
FPM=${FPM:-$(ls /usr/sbin/php-fpm* 2>/dev/null | tail -1)}
for tool in "$EDDY" "$NGINX" "$FPM" "$(command -v wrk || true)"; do
    if [ -z "$tool" ] || [ ! -x "$tool" ]; then
        echo "fastcgi.sh: missing ${tool:-wrk or php-fpm}" >&2
        exit 2
    fi
done

DIR=$(mktemp -d /tmp/eddy-bench-fastcgi.XXXXXX)
chmod 755 "$DIR"
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
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
EPORT=$(free_port)
NPORT=$(free_port)

mkdir -p "$DIR/www" "$DIR/eddy/logs" "$DIR/nginx/logs"
chmod 755 "$DIR/www"
printf '<?php echo "hello from php\\n";\n' > "$DIR/www/index.php"
chmod 644 "$DIR/www/index.php"

FPM_USER=""
FPM_ROOT=""
if [ "$(id -u)" -eq 0 ]; then
    FPM_USER="user = nobody
group = nogroup"
    FPM_ROOT="-R"
fi
cat > "$DIR/php-fpm.conf" <<EOF
[global]
pid = $DIR/php-fpm.pid
error_log = $DIR/php-fpm.log
daemonize = no
[bench]
$FPM_USER
listen = $DIR/php.sock
listen.mode = 0666
listen.backlog = 1024
pm = static
pm.max_children = $CHILDREN
pm.max_requests = 0
EOF
printf 'opcache.enable=1\n' > "$DIR/php.ini"

cat > "$DIR/eddy/eddy.yaml" <<EOF
workers: 1
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: warn}
events: {max_connections: 4096}
upstreams:
  php:
    keepalive: $KEEP
    servers: ["unix:$DIR/php.sock"]
servers:
  - listen: 127.0.0.1:$EPORT
    access_log: off
    keepalive_requests: 1000000
    root: $DIR/www
    locations:
      /:
        fastcgi: {pass: php, index: index.php}
EOF

cat > "$DIR/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx/logs/nginx.pid;
error_log $DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream php {
        server unix:$DIR/php.sock;
        keepalive $KEEP;
    }
    server {
        listen 127.0.0.1:$NPORT;
        root $DIR/www;
        location / {
            fastcgi_index index.php;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param SCRIPT_NAME \$fastcgi_script_name;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param REQUEST_URI \$request_uri;
            fastcgi_param DOCUMENT_URI \$document_uri;
            fastcgi_param DOCUMENT_ROOT \$document_root;
            fastcgi_param SERVER_PROTOCOL \$server_protocol;
            fastcgi_param REQUEST_SCHEME \$scheme;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx;
            fastcgi_param REMOTE_ADDR \$remote_addr;
            fastcgi_param REMOTE_PORT \$remote_port;
            fastcgi_param SERVER_ADDR \$server_addr;
            fastcgi_param SERVER_PORT \$server_port;
            fastcgi_param SERVER_NAME \$host;
            fastcgi_param REDIRECT_STATUS 200;
            fastcgi_keep_conn on;
            fastcgi_pass php;
        }
    }
}
EOF

"$FPM" -F -y "$DIR/php-fpm.conf" -c "$DIR/php.ini" $FPM_ROOT \
    >"$DIR/fpm.out" 2>&1 &
PIDS="$PIDS $!"
i=0
until [ -S "$DIR/php.sock" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "fastcgi.sh: php-fpm did not start" >&2
        cat "$DIR/fpm.out" "$DIR/php-fpm.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
"$EDDY" -p "$DIR/eddy" -c "$DIR/eddy/eddy.yaml" >"$DIR/eddy/stdout" 2>&1 &
PIDS="$PIDS $!"
"$NGINX" -p "$DIR/nginx" -e "$DIR/nginx/logs/error.log" \
    -c "$DIR/nginx/nginx.conf" -g 'daemon off;' >"$DIR/nginx/stdout" 2>&1 &
PIDS="$PIDS $!"

want="hello from php"
for p in "$EPORT" "$NPORT"; do
    i=0
    until [ "$(curl -s "http://127.0.0.1:$p/" 2>/dev/null)" = "$want" ]; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "fastcgi.sh: port $p does not answer \"$want\"" >&2
            cat "$DIR/fpm.out" "$DIR/eddy/logs/error.log" \
                "$DIR/nginx/logs/error.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
done

# The CPU time (user + system, in clock ticks) of a master's workers.
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
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
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
echo "fastcgi: a PHP page through php-fpm (pm static, $CHILDREN children)," \
     "$CONNS connections, upstream keepalive $KEEP, 1 worker each," \
     "${DURATION}s x $ROUNDS rounds"
for f in eddy.rps nginx.rps eddy.p99 nginx.p99 eddy.cpu nginx.cpu; do
    : >"$DIR/$f"
done
wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$EPORT/" >/dev/null 2>&1
wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$NPORT/" >/dev/null 2>&1
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
if grep -q '\[error\]' "$DIR/eddy/logs/error.log"; then
    echo "eddy logged errors:" >&2
    grep '\[error\]' "$DIR/eddy/logs/error.log" | head -5 >&2
fi
