#!/usr/bin/env bash
# auth_basic: a 1 KiB file behind bcrypt (cost 10) for 8 users, under
# keep-alive load from CONNS clients, against the same location without
# auth_basic, with Debian's nginx (which pays bcrypt on every request)
# beside it in the same run (see bench/README.md). Installs nothing.
#
# usage: bench/auth_basic.sh
# environment: WORKERS (1), THREADS (wrk threads, 1), CONNS (64),
#   DURATION (10s), ROUNDS (3), COST (bcrypt cost, 10), EDDY (objs/eddy),
#   NGINX (nginx), EDDY_PORT (18482), NGINX_PORT (18483).
set -u

cd "$(dirname "$0")/.."
REPO=$(pwd)
EDDY=${EDDY:-$REPO/objs/eddy}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-1}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
COST=${COST:-10}
EDDY_PORT=${EDDY_PORT:-18482}
NGINX_PORT=${NGINX_PORT:-18483}

missing=""
[ -x "$EDDY" ] || missing="$missing eddy($EDDY: run make)"
[ -x "$NGINX" ] || missing="$missing nginx(apt-get install nginx)"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk(apt-get install wrk)"
command -v htpasswd >/dev/null 2>&1 \
    || missing="$missing htpasswd(apt-get install apache2-utils)"
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

mkdir -p "$DIR/html/open" "$DIR/html/auth" "$DIR/logs" "$DIR/conf"
chmod 755 "$DIR" "$DIR/html" "$DIR/html/open" "$DIR/html/auth"
head -c 1024 /dev/urandom > "$DIR/html/open/1k.bin"
cp "$DIR/html/open/1k.bin" "$DIR/html/auth/1k.bin"
chmod 644 "$DIR"/html/*/*

# 8 users, bcrypt at COST; the wrk script cycles through them, so every
# connection sends each user's credentials in turn.
: > "$DIR/conf/htpasswd"
LUA_USERS=""
for i in 1 2 3 4 5 6 7 8; do
    htpasswd -b -B -C "$COST" "$DIR/conf/htpasswd" "user$i" "password-$i" \
        2>/dev/null
    LUA_USERS="$LUA_USERS\"$(printf 'user%d:password-%d' $i $i | base64)\","
done
chmod 644 "$DIR/conf/htpasswd"
cat > "$DIR/users.lua" <<EOF
local creds = { $LUA_USERS }
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", nil,
        { ["Authorization"] = "Basic " .. creds[(n % #creds) + 1] })
end
EOF

cat > "$DIR/conf/eddy.yaml" <<EOF
workers: $WORKERS
pid_file: logs/eddy.pid
error_log: {path: logs/eddy-error.log, level: warn}
open_file_cache: {max: 10000, valid: 30s}
access_log: off
keepalive_requests: 100000000
servers:
  - listen: 127.0.0.1:$EDDY_PORT
    root: html
    locations:
      /open/:
        static: {}
      /auth/:
        auth_basic: {realm: bench, user_file: conf/htpasswd}
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
        location /open/ { }
        location /auth/ {
            auth_basic bench;
            auth_basic_user_file $DIR/conf/htpasswd;
        }
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

# Both let the users in, and nobody else.
for port in "$EDDY_PORT" "$NGINX_PORT"; do
    ok=$(curl -s -o /dev/null -w '%{http_code}' -u user3:password-3 \
        "http://127.0.0.1:$port/auth/1k.bin")
    no=$(curl -s -o /dev/null -w '%{http_code}' -u user3:password-4 \
        "http://127.0.0.1:$port/auth/1k.bin")
    if [ "$ok" != 200 ] || [ "$no" != 401 ]; then
        echo "bench: port $port answers $ok and $no, not 200 and 401" >&2
        exit 1
    fi
done

# run PORT PATH: prints req/s.
run() {
    local out
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$DIR/users.lua" \
        "http://127.0.0.1:$1$2" 2>&1)
    if echo "$out" | grep -q "Non-2xx\|Socket errors: connect [1-9]"; then
        echo "bench: wrk reported errors:" >&2
        echo "$out" >&2
    fi
    echo "$out" | awk '/^Requests\/sec/ {print $2}'
}

ROWS=("eddy|$EDDY_PORT|/open/1k.bin" "eddy auth_basic|$EDDY_PORT|/auth/1k.bin"
      "nginx|$NGINX_PORT|/open/1k.bin"
      "nginx auth_basic|$NGINX_PORT|/auth/1k.bin")
RES="$DIR/results"
: > "$RES"

echo "eddy $("$EDDY" -v 2>&1) vs $("$NGINX" -v 2>&1 | sed 's/.*: //');" \
     "workers $WORKERS, wrk -t$THREADS -c$CONNS -d$DURATION, 8 users," \
     "bcrypt cost $COST, $ROUNDS rounds, $(nproc) CPUs"
for round in $(seq 1 "$ROUNDS"); do
    for i in "${!ROWS[@]}"; do
        IFS='|' read -r name port path <<< "${ROWS[$i]}"
        r=$(run "$port" "$path")
        echo "$i $r" >> "$RES"
        printf '  round %d  %-18s %10s req/s\n' "$round" "$name" "$r" >&2
    done
done

median() {
    sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2];
        else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo
printf '%-18s %12s %14s\n' "case" "req/s" "vs no auth"
for i in "${!ROWS[@]}"; do
    IFS='|' read -r name port path <<< "${ROWS[$i]}"
    m=$(awk -v i="$i" '$1 == i {print $2}' "$RES" | median)
    base=$(awk -v i="$(( i - i % 2 ))" '$1 == i {print $2}' "$RES" | median)
    printf '%-18s %12.0f %13s\n' "$name" "$m" "$(awk -v a="$m" -v b="$base" \
        'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }')"
done
