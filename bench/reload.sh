#!/usr/bin/env bash
# usage: bench/reload.sh EDDY_BINARY LABEL
# 20 reloads (a new return body each, one a second) under wrk keep-alive
# load (2 workers, 64 connections, loopback); prints wrk's summary (socket
# errors and non-2xx responses appear there when there are any), the
# connections accepted (reconnects) and, with the handover, the connections
# handed to the new generations. Compare two binaries, e.g. one built with
# events.handover and one before it. Not part of make check.
set -u
EDDY=$1; LABEL=$2
DIR=$(mktemp -d /tmp/eddy-reload-XXXXXX)
mkdir -p $DIR/conf $DIR/logs $DIR/html
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
conf() {
cat > $DIR/conf/eddy.yaml <<EOT
workers: 2
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: notice}
servers:
  - listen: 127.0.0.1:$PORT
    keepalive_requests: 1000000
    locations:
      /:
        return: {status: 200, body: "v$1\n"}
      = /metrics:
        status: prometheus
EOT
}
conf 0
$EDDY -p $DIR -c $DIR/conf/eddy.yaml &
MPID=$!
sleep 1
wrk -t2 -c64 -d24s http://127.0.0.1:$PORT/ > $DIR/wrk.out 2>&1 &
WPID=$!
sleep 2
ok=0
for i in $(seq 1 20); do
  conf $i
  $EDDY -p $DIR -c $DIR/conf/eddy.yaml -s reload >/dev/null 2>&1 && ok=$((ok+1))
  sleep 1
done
wait $WPID
echo "== $LABEL: reloads ok: $ok/20"
cat $DIR/wrk.out
curl -s http://127.0.0.1:$PORT/metrics | grep -E "^eddy_(connections_accepted|accepted|handover)[^ ]* " 
grep -c "handed over" $DIR/logs/error.log | sed 's/^/handed-over lines: /'
kill -QUIT $MPID; wait $MPID 2>/dev/null
rm -rf $DIR
