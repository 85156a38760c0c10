#!/usr/bin/env bash
# A replicated supsup on 127.0.0.1: PostgreSQL (the shared task store), three `supsup serve` replicas
# and HAProxy in front (health checks on /readyz, retries on another replica), from Debian's packages.
#
#   deploy/local/cluster.sh up        start everything; returns once all are ready and prints, last line,
#                                     {"lb": {"http", "grpc"}, "replicas": [{"http", "grpc", "pid"}, …], "adminToken", "store"}
#   deploy/local/cluster.sh down      stop everything and delete the data directory
#   deploy/local/cluster.sh replica N kill|start    SIGKILL replica N (1-3), or start it again
#   deploy/local/cluster.sh store stop|start        stop the store (fast shutdown) or start it again
#
# Settings (environment): SUPSUP_CLUSTER_DIR (default /tmp/supsup-cluster), SUPSUP_CLUSTER_MODEL (the model
# pushed into a new store; default models/example-lenet). Ports are picked free at `up` and kept in the dir.
# Run as root, the store runs as the `postgres` user (PostgreSQL refuses root); missing packages are installed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${SUPSUP_CLUSTER_DIR:-/tmp/supsup-cluster}
MODEL=${SUPSUP_CLUSTER_MODEL:-$ROOT/models/example-lenet}
REPLICAS=3
STATE=$DIR/cluster.env
SUPSUP=(node "$ROOT/bin/supsup.js")

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

ensure_packages() {
  local missing=()
  [ -n "$(pg_bin)" ] || missing+=(postgresql)
  command -v haproxy >/dev/null || missing+=(haproxy)
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root"
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"; } >"$DIR/apt.log" 2>&1 ||
    { tail -20 "$DIR/apt.log" >&2; die "apt-get failed"; }
}

# As the store's owner: postgres when we are root, else ourselves.
as_store_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_ports() { # N free TCP ports on 127.0.0.1
  node -e 'const net=require("net");const n=+process.argv[1];const s=[];let left=n;for(let i=0;i<n;i++){const v=net.createServer();v.listen(0,"127.0.0.1",()=>{s.push(v);if(--left===0){console.log(s.map(x=>x.address().port).join(" "));s.forEach(x=>x.close());}});}' "$1"
}

wait_http() { # URL SECONDS
  local deadline=$(( $(date +%s) + $2 ))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

store_url() { echo "postgres://supsup@127.0.0.1:$STORE_PORT/supsup?model=cluster"; }

store_start() {
  as_store_owner "$(pg_bin)/pg_ctl" -D "$DIR/store/data" -l "$DIR/store/pg.log" -w -t 60 \
    -o "-p $STORE_PORT -k $DIR/store -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" start >/dev/null
}
store_stop() { as_store_owner "$(pg_bin)/pg_ctl" -D "$DIR/store/data" -m fast -w -t 60 stop >/dev/null; }

replica_start() { # N
  local n=$1 http grpc
  http=$(echo "$REPLICA_HTTP" | cut -d' ' -f"$n"); grpc=$(echo "$REPLICA_GRPC" | cut -d' ' -f"$n")
  SUPSUP_ADMIN_TOKEN=$ADMIN_TOKEN setsid "${SUPSUP[@]}" serve --model "$DIR/replica-$n" --store "$(store_url)" \
    --host 127.0.0.1 --http-port "$http" --grpc-port "$grpc" --drain-delay-ms 1000 --shutdown-timeout-ms 10000 \
    >>"$DIR/replica-$n.log" 2>&1 </dev/null &
  echo $! >"$DIR/replica-$n.pid"
}

replica_wait() { # N
  local http; http=$(echo "$REPLICA_HTTP" | cut -d' ' -f"$1")
  wait_http "http://127.0.0.1:$http/readyz" 120 || { tail -20 "$DIR/replica-$1.log" >&2; die "replica $1 did not turn ready"; }
}

write_haproxy_cfg() {
  local servers_http="" servers_grpc="" n http grpc
  for n in $(seq 1 $REPLICAS); do
    http=$(echo "$REPLICA_HTTP" | cut -d' ' -f"$n"); grpc=$(echo "$REPLICA_GRPC" | cut -d' ' -f"$n")
    servers_http+="    server r$n 127.0.0.1:$http check inter 500 fall 2 rise 1"$'\n'
    servers_grpc+="    server r$n 127.0.0.1:$grpc proto h2 check port $http check-proto h1 inter 500 fall 2 rise 1"$'\n'
  done
  cat >"$DIR/haproxy.cfg" <<CFG
global
    pidfile $DIR/haproxy.pid
    log stdout format raw local0 warning
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    # A request that found a replica gone (refused, reset, no answer) goes to another one. Classification is
    # a pure function of its input, so replaying it is safe; task changes are never replayed (see below).
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 503
    option httpchk GET /readyz
    http-check expect status 200
frontend http_in
    bind 127.0.0.1:$LB_HTTP
    default_backend replicas_http
frontend grpc_in
    bind 127.0.0.1:$LB_GRPC proto h2
    default_backend replicas_grpc
backend replicas_http
    balance roundrobin
    # A PUT or DELETE replayed after its first try committed would answer 409/404: only a refused connection is retried.
    http-request disable-l7-retry if METH_PUT || { method DELETE }
$servers_http
backend replicas_grpc
    balance roundrobin
$servers_grpc
CFG
}

up() {
  [ -f "$STATE" ] && die "$DIR already holds a cluster: run '$0 down' first"
  [ -f "$MODEL/manifest.json" ] || die "no model at $MODEL (SUPSUP_CLUSTER_MODEL)"
  mkdir -p "$DIR/store"
  ensure_packages
  read -r STORE_PORT LB_HTTP LB_GRPC H1 H2 H3 G1 G2 G3 <<<"$(free_ports 9)"
  REPLICA_HTTP="$H1 $H2 $H3"; REPLICA_GRPC="$G1 $G2 $G3"
  ADMIN_TOKEN=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')
  for v in STORE_PORT LB_HTTP LB_GRPC REPLICA_HTTP REPLICA_GRPC ADMIN_TOKEN; do printf '%s=%q\n' "$v" "${!v}"; done >"$STATE"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DIR/store"; chmod 755 "$DIR"; fi

  log "store: PostgreSQL on 127.0.0.1:$STORE_PORT, data in $DIR/store/data"
  as_store_owner "$(pg_bin)/initdb" -D "$DIR/store/data" -U supsup --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
  store_start
  "$(pg_bin)/createdb" -h 127.0.0.1 -p "$STORE_PORT" -U supsup supsup
  "${SUPSUP[@]}" store push --model "$MODEL" --store "$(store_url)" >"$DIR/push.log"

  log "replicas: HTTP $REPLICA_HTTP, gRPC $REPLICA_GRPC"
  for n in $(seq 1 $REPLICAS); do replica_start "$n"; done
  for n in $(seq 1 $REPLICAS); do replica_wait "$n"; done

  log "load balancer: HAProxy, HTTP 127.0.0.1:$LB_HTTP, gRPC 127.0.0.1:$LB_GRPC"
  write_haproxy_cfg
  haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy refused its configuration ($DIR/haproxy.cfg)"
  haproxy -D -f "$DIR/haproxy.cfg" >>"$DIR/haproxy.log" 2>&1
  wait_http "http://127.0.0.1:$LB_HTTP/readyz" 30 || die "the load balancer does not answer"
  summary
}

summary() {
  local replicas="" n http grpc
  for n in $(seq 1 $REPLICAS); do
    http=$(echo "$REPLICA_HTTP" | cut -d' ' -f"$n"); grpc=$(echo "$REPLICA_GRPC" | cut -d' ' -f"$n")
    replicas+="${replicas:+, }{\"http\": \"http://127.0.0.1:$http\", \"grpc\": \"127.0.0.1:$grpc\", \"pid\": $(cat "$DIR/replica-$n.pid")}"
  done
  echo "{\"lb\": {\"http\": \"http://127.0.0.1:$LB_HTTP\", \"grpc\": \"127.0.0.1:$LB_GRPC\"}, \"replicas\": [$replicas], \"adminToken\": \"$ADMIN_TOKEN\", \"store\": \"$(store_url)\", \"dir\": \"$DIR\"}"
}

down() {
  if [ -f "$STATE" ]; then
    [ -f "$DIR/haproxy.pid" ] && kill "$(cat "$DIR/haproxy.pid")" 2>/dev/null || true
    for n in $(seq 1 $REPLICAS); do [ -f "$DIR/replica-$n.pid" ] && kill "$(cat "$DIR/replica-$n.pid")" 2>/dev/null || true; done
    [ -d "$DIR/store/data" ] && store_stop 2>/dev/null || true
    for n in $(seq 1 $REPLICAS); do
      pid=$(cat "$DIR/replica-$n.pid" 2>/dev/null || true)
      for _ in $(seq 1 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && sleep 0.2 || break; done
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
  fi
  rm -rf "$DIR"
  log "down"
}

load_state() { [ -f "$STATE" ] || die "no cluster in $DIR: run '$0 up' first"; source "$STATE"; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  replica)
    load_state; n=${2:-}; [[ "$n" =~ ^[1-3]$ ]] || die "replica: N is 1, 2 or 3"
    case "${3:-}" in
      kill) kill -9 "$(cat "$DIR/replica-$n.pid")" ;;
      start) replica_start "$n"; replica_wait "$n"; cat "$DIR/replica-$n.pid" ;;
      *) die "replica N kill|start" ;;
    esac ;;
  store)
    load_state
    case "${2:-}" in stop) store_stop ;; start) store_start ;; *) die "store stop|start" ;; esac ;;
  *) echo "usage: $0 up|down|replica N kill|start|store stop|start" >&2; exit 2 ;;
esac
