#!/usr/bin/env bash
# Two `vani serve` processes behind nginx on loopback, as an operator would run them behind a
# load balancer (docs/SCALING.md "The load balancer"):
#   phase 1, a burst: requests are spread over both instances, and the 503s that the small
#            instance answers when its worker is busy (--queue 0) are retried on the other by
#            nginx (proxy_next_upstream http_503), so no client sees one;
#   phase 2, a burst during which the small instance gets SIGTERM: it finishes what it holds and
#            exits 0, nginx sends the rest to the other, and no request fails.
# Everything listens on 127.0.0.1; the bursts are bounded in count.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/tools.sh

start=$SECONDS
REQUESTS=${VANI_LB_REQUESTS:-200}
CLIENTS=${VANI_LB_CLIENTS:-6}
deploy_apt nginx nginx-light
deploy_apt curl curl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# VANI_BIN: a vani binary to use instead of building the release one.
vani=${VANI_BIN:-}
if [ -z "$vani" ]; then
    swift build -c release --static-swift-stdlib --product vani
    vani="$(swift build -c release --show-bin-path)/vani"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

read -r PORT_A PORT_B PORT_LB < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

# A: one worker, no queue: busy means 503 + Retry-After at once. B: one worker, a queue.
"$vani" serve --host 127.0.0.1 --port "$PORT_A" --preload --concurrency 1 --threads 1 --queue 0 \
    --log-level info --model Weights/default.safetensors 2> "$work/a.log" &
pid_a=$!; pids+=("$pid_a")
"$vani" serve --host 127.0.0.1 --port "$PORT_B" --preload --concurrency 1 --threads 1 --queue 64 \
    --log-level info --model Weights/default.safetensors 2> "$work/b.log" &
pid_b=$!; pids+=("$pid_b")

mkdir -p "$work/nginx-temp"
# What the load balancer must do (docs/SCALING.md): spread by load, retry a 503 or a refused or
# broken connection on the next instance (transcription has no side effects, so POST is safe to
# retry: non_idempotent), and keep connections to the instances alive.
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
user $(id -un) $(id -gn);
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 256; }
http {
    client_body_temp_path $work/nginx-temp/body;
    proxy_temp_path $work/nginx-temp/proxy;
    fastcgi_temp_path $work/nginx-temp/fastcgi;
    uwsgi_temp_path $work/nginx-temp/uwsgi;
    scgi_temp_path $work/nginx-temp/scgi;
    log_format upstreams '\$request_method|\$upstream_addr|\$upstream_status|\$status';
    access_log $work/nginx-access.log upstreams;
    client_max_body_size 64m;
    client_body_buffer_size 1m;
    upstream vani {
        least_conn;
        server 127.0.0.1:$PORT_A max_fails=0;
        server 127.0.0.1:$PORT_B max_fails=0;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$PORT_LB;
        location / {
            proxy_pass http://vani;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_read_timeout 150s;
        }
    }
}
EOF
"$NGINX" -t -q -c "$work/nginx.conf" -p "$work" 2> "$work/nginx-t.log" \
    || { cat "$work/nginx-t.log" >&2; deploy_fail "nginx refused the configuration"; }
"$NGINX" -c "$work/nginx.conf" -p "$work"

for port in "$PORT_A" "$PORT_B" "$PORT_LB"; do
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null || deploy_fail "nothing ready on 127.0.0.1:$port"
done
expected=$(python3 -c 'import json; print(json.load(open("Samples/samples.json"))["hi-sample.wav"]["text"])')

# count CONDITION: nginx log lines of the current phase matching an awk condition. Fields:
# method | upstream addresses tried (", "-separated; the last answered) | their statuses | client status.
count() { awk -F'|' "\$1 == \"POST\" && ($1)" "$work/nginx-access.log" | wc -l; }
check_burst() {  # RESULT.json: every answer a 200 with the right text
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = {k: v for k, v in r["statuses"].items() if k != "200"}
if bad or r["wrong_text"]:
    print(f"failed requests: {bad}, wrong text: {r['wrong_text']}, {r['errors']}", file=sys.stderr)
    sys.exit(1)
PY
}

# --- phase 1: spread and retried 503s ------------------------------------------------------------
deploy_log "phase 1: $REQUESTS requests from $CLIENTS clients through nginx"
python3 deploy/lb_burst.py "http://127.0.0.1:$PORT_LB/asr" Samples/hi-sample.wav hi "$expected" \
    "$REQUESTS" "$CLIENTS" "$work/burst1.json" >/dev/null
check_burst "$work/burst1.json" || deploy_fail "phase 1: a client saw a failure"
served_a=$(count "\$4 == 200 && \$2 ~ /:$PORT_A\$/")
served_b=$(count "\$4 == 200 && \$2 ~ /:$PORT_B\$/")
retried=$(count "\$3 ~ /^503, 200\$/")
deploy_log "phase 1: all $REQUESTS answered 200; answered by A $served_a, by B $served_b (of which $retried after a 503 from the other)"
[ "$served_a" -ge $((REQUESTS / 20)) ] && [ "$served_b" -ge $((REQUESTS / 20)) ] \
    || deploy_fail "phase 1: the requests were not spread over both instances (A $served_a, B $served_b)"
[ "$retried" -ge 1 ] || deploy_fail "phase 1: no 503 was retried on the other instance (see $work/nginx-access.log)"
grep -q 'status=503' "$work/a.log" || deploy_fail "phase 1: instance A logged no 503"

# --- phase 2: drain A with SIGTERM mid-burst -----------------------------------------------------
: > "$work/nginx-access.log"
kill -USR1 "$(cat "$work/nginx.pid")"   # reopen the log
sleep 0.2
deploy_log "phase 2: $REQUESTS requests; SIGTERM to instance A after $((REQUESTS / 4)) answers"
python3 deploy/lb_burst.py "http://127.0.0.1:$PORT_LB/asr" Samples/hi-sample.wav hi "$expected" \
    "$REQUESTS" "$CLIENTS" "$work/burst2.json" "$work/progress" >/dev/null &
burst=$!
for _ in $(seq 1 600); do
    [ "$(cat "$work/progress" 2>/dev/null || echo 0)" -ge $((REQUESTS / 4)) ] && break
    kill -0 "$burst" 2>/dev/null || break
    sleep 0.05
done
kill -TERM "$pid_a"
sent_at=$(cat "$work/progress" 2>/dev/null || echo 0)
wait "$pid_a" && a_status=0 || a_status=$?
wait "$burst" || deploy_fail "phase 2: the burst client failed"
check_burst "$work/burst2.json" || deploy_fail "phase 2: a request failed while instance A drained"
[ "$a_status" = 0 ] || deploy_fail "phase 2: instance A exited with status $a_status after SIGTERM"
[ "$sent_at" -lt "$REQUESTS" ] || deploy_fail "phase 2: the burst was over before SIGTERM (make it longer)"
after=$((REQUESTS - sent_at))
drained_a=$(count "\$4 == 200 && \$2 ~ /:$PORT_A\$/")
moved=$(count "\$4 == 200 && \$2 ~ /:$PORT_A, /")
deploy_log "phase 2: SIGTERM after $sent_at answers; A exited 0; all $REQUESTS answered 200 ($after after the signal); A answered $drained_a; $moved were tried on A first and answered by B (503 while busy, or refused while draining)"
kill -0 "$pid_b" || deploy_fail "instance B is gone"
deploy_log "passed in $((SECONDS - start)) s"
