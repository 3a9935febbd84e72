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
