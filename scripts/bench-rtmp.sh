#!/usr/bin/env bash
# RTMP fan-out, side by side: LiveSwarm and nginx-rtmp (Debian's libnginx-mod-rtmp, one worker) under the same
# load from the same generator: one synthetic 2 Mbps stream, N RTMP players. Prints one table per server.
# Usage: scripts/bench-rtmp.sh [VIEWER COUNTS...]   (default: 250 500 1000); SERVERS="nginx" runs one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install nginx-light libnginx-mod-rtmp
build_release liveswarm liveswarm-bench
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(250 500 1000)
args=()
for n in "${counts[@]}"; do args+=(--viewers "$n"); done
ulimit -n 20000 2>/dev/null || true
machine_line

servers=${SERVERS:-liveswarm nginx}
for port in 11935 11936; do
    if ss -ltn "sport = :$port" | grep -q LISTEN; then echo "port $port is in use: stop what listens there first" >&2; exit 1; fi
done

if [[ " $servers " == *" liveswarm "* ]]; then
echo; echo "LiveSwarm $(git rev-parse --short HEAD 2>/dev/null || echo)"
.build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --log-level warning &
server=$!
sleep 1
.build/release/liveswarm-bench fanout --protocol-name rtmp --pid "$server" --rtmp-port 11935 --http-port 18080 --seconds 15 "${args[@]}"
kill $server; wait $server 2>/dev/null || true
fi

if [[ " $servers " == *" nginx "* ]]; then
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 20000; }
rtmp {
    server {
        listen 127.0.0.1:11936;
        chunk_size 4096;
        application live { live on; }
    }
}
CONF
echo; echo "nginx-rtmp $(dpkg-query -W -f='${Version}' libnginx-mod-rtmp) on nginx $(dpkg-query -W -f='${Version}' nginx-light)"
nginx -p "$dir" -c "$dir/nginx.conf" &
server=$!
sleep 1
.build/release/liveswarm-bench fanout --protocol-name rtmp --pid "$server" --rtmp-port 11936 --http-port 1 --seconds 15 "${args[@]}"
kill $server; wait $server 2>/dev/null || true
fi
