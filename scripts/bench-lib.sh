# Helpers shared by the benchmark scripts (sourced, not run): reading a node's /metrics and a
# process's CPU from /proc the same way in every script.

# metric_at URL NAME: the sum of every series of NAME on URL's /metrics (0 when absent or down).
metric_at() {
  curl -fsS "$1/metrics" 2>/dev/null \
    | awk -v name="$2" '$1 == name || index($1, name "{") == 1 {sum += $NF} END {printf "%.0f", sum + 0}'
}

# cpu_ticks PID: user + system CPU ticks PID has used.
cpu_ticks() { cut -d')' -f2- "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }

# sample_cpu PID FILE SECONDS: every SECONDS, "unix_ms cpu_ticks" until PID exits.
sample_cpu() {
  local pid="$1" file="$2" every="$3"
  : >"$file"
  while [[ -r "/proc/$pid/stat" ]]; do
    local ticks
    ticks="$(cpu_ticks "$pid")" || break
    [[ -n "$ticks" ]] || break
    echo "$(date +%s%3N) $ticks" >>"$file"
    sleep "$every"
  done
}

# A loopback cluster for the cluster benchmarks: the nodes of CLUSTER_NODES ("id:region"; by
# default eu-1 and eu-2 in region eu, us-1 in us; eu falls back to us), each on a
# fixed port, with its own nats-server. Callers set OUT (a scratch directory), SERVER_BIN and
# NATS_PORT, and may set CLUSTER_NODES, before calling cluster_regions.
CLUSTER_NODES=(eu-1:eu eu-2:eu us-1:us)
declare -A CLUSTER_PORTS=()
declare -A CLUSTER_PIDS=()
CLUSTER_NATS_PID=""

# cluster_ids: the node ids, in order.
cluster_ids() { local entry; for entry in "${CLUSTER_NODES[@]}"; do echo "${entry%%:*}"; done; }

# cluster_regions FILE [NODE_TIMEOUT_MS]: writes the region file (the region file's default
# heartbeat and node timeout unless NODE_TIMEOUT_MS is given; heartbeats then every fifth) and
# assigns ports 7901, 7911, ... in node order.
cluster_regions() {
  local timings=""
  if [[ -n "${2:-}" ]]; then
    timings="heartbeat_interval_ms = $(( $2 / 5 ))
node_timeout_ms = $2"
  fi
  cat >"$1" <<REGIONS
version = 1
default_region = "eu"
[cluster]
nats_url = "nats://127.0.0.1:$NATS_PORT"
$timings
REGIONS
  if [[ " ${CLUSTER_NODES[*]} " == *":us "* ]]; then
    printf '[regions.eu]\nfallbacks = ["us"]\n[regions.us]\n' >>"$1"
  else
    printf '[regions.eu]\n' >>"$1"
  fi
  local entry port=7901
  for entry in "${CLUSTER_NODES[@]}"; do
    CLUSTER_PORTS[${entry%%:*}]=$port
    cat >>"$1" <<REGIONS
[[nodes]]
id = "${entry%%:*}"
region = "${entry##*:}"
ws_url = "ws://127.0.0.1:$port"
http_url = "http://127.0.0.1:$port"
REGIONS
    port=$((port + 10))
  done
}

# cluster_nats LOG: starts a fresh nats-server (JetStream, store under OUT).
cluster_nats() {
  rm -rf "$OUT/nats-store"
  nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$OUT/nats-store" >"$1" 2>&1 &
  CLUSTER_NATS_PID=$!
}

# cluster_node NODE LOG [VAR=VALUE ...]: starts NODE of the region file OUT/regions.toml with
# limits loose enough for a swarm from one address, plus the given environment overrides.
cluster_node() {
  local node="$1" log="$2"
  shift 2
  env LUDUS__SERVER__SECRET=bench-cluster-secret \
    LUDUS__CLUSTER__REGIONS_FILE="$OUT/regions.toml" LUDUS__CLUSTER__NODE_ID="$node" \
    LUDUS__LOBBY__SEATS_PER_MINUTE_PER_IP=1000000 LUDUS__LOBBY__ROOMS_PER_MINUTE_PER_IP=1000000 \
    LUDUS__HTTP__MAX_CONNECTIONS_PER_IP=4096 LUDUS__HTTP__MAX_WEBSOCKETS_PER_IP=50000 \
    "$@" "$SERVER_BIN" --listen "127.0.0.1:${CLUSTER_PORTS[$node]}" >>"$log" 2>&1 &
  CLUSTER_PIDS[$node]=$!
}

# cluster_settled NODE: waits (30 s at most) until NODE trusts its directory view; fails if not.
cluster_settled() {
  local _
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:${CLUSTER_PORTS[$1]}/healthz" 2>/dev/null | grep -q '"directory_settled":true'; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# cluster_stop: kills every node and the broker (trap this on EXIT).
cluster_stop() {
  local pid
  for pid in "${CLUSTER_PIDS[@]}" $CLUSTER_NATS_PID; do kill -9 "$pid" 2>/dev/null || true; done
  CLUSTER_PIDS=()
  CLUSTER_NATS_PID=""
}

# log_ms LINE: the Unix milliseconds of a tracing log line's timestamp (colours removed first).
log_ms() { date -d "$(awk '{print $1}' <<<"$1")" +%s%3N; }
