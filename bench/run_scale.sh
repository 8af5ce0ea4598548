#!/usr/bin/env bash
# Memory at scale: EtherPly's sync server holding many idle connections and
# many loaded workspaces, beside the automerge-repo sync server
# (bench/repo/server.mjs) holding the same, in one run.
#
#   bench/run_scale.sh [BUILD_DIR]        (default: build beside bench/)
#
# Needs BUILD_DIR/etherply and BUILD_DIR/etherply_load, node, jq, curl; installs
# bench/package-lock.json (npm ci) if its packages are missing. Raises the
# open-file limit to 2 x CONNECTIONS + 1000 (the hard limit must allow it).
#
# Figures (server RSS from /proc/PID/status; for the node peer, RSS right
# after two full garbage collections):
#   idle connection   etherply: a fresh server, then CONNECTIONS (10,000)
#                     connections to one empty workspace, each past its
#                     "init" (bench/scale/hold.mjs); RSS delta / CONNECTIONS.
#                     automerge-repo: a fresh server, then CONNECTIONS peers
#                     that `join` and wait for `peer`.
#   workspace         etherply: WORKSPACES (10,000) workspaces of KEYS (100)
#                     keys, each written by etherply_load (one writer per
#                     workspace, KEYS ops: one change each); then a restart
#                     on the same data, and one connection per workspace
#                     (each connection loads its workspace; every workspace
#                     with a client stays loaded): (RSS delta - connections'
#                     share) / WORKSPACES. Also the RSS once they have all
#                     closed (the Hub keeps up to 64 warm).
#                     automerge-repo: a server that imports REPO_DOCS
#                     documents of KEYS keys (KEYS changes each) before it
#                     listens (bench/repo/server.mjs --preload), beside a fresh
#                     one: RSS delta / REPO_DOCS. REPO_DOCS is 1,000, not
#                     10,000: each Repo.import costs more as the Repo grows
#                     (10 ms at first, 60-100 ms past 1,000 documents, on this
#                     machine), so 10,000 would take well over 15 minutes.
#
# Prints a markdown table and writes it to BUILD_DIR/bench-scale.md.
# Environment: CONNECTIONS, WORKSPACES, KEYS, REPO_DOCS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
source "$ROOT/bench/lib.sh"
ETHERPLY=${ETHERPLY_BIN:-$BUILD/etherply}
LOAD=${LOAD_BIN:-$BUILD/etherply_load}
CONNECTIONS=${CONNECTIONS:-10000}
WORKSPACES=${WORKSPACES:-10000}
KEYS=${KEYS:-100}
REPO_DOCS=${REPO_DOCS:-1000}
OUT_MD=$BUILD/bench-scale.md
HOLD=$ROOT/bench/scale/hold.mjs

for bin in "$ETHERPLY" "$LOAD"; do
  [[ -x $bin ]] || { echo "run_scale.sh: $bin is missing: build it first" >&2; exit 1; }
done
for tool in jq curl; do command -v $tool >/dev/null || { echo "run_scale.sh: $tool is required" >&2; exit 1; }; done
ensure_node_modules "$ROOT/bench"
raise_fd_limit $((2 * CONNECTIONS + 1000)) $((CONNECTIONS + 500))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/etherply-scale.XXXXXX")
ETHERPLY_PID= NODE_PID= HOLD_PID=
cleanup() {
  stop_pid "$HOLD_PID"
  stop_pid "$ETHERPLY_PID"
  stop_pid "$NODE_PID"
  if [[ ${KEEP:-0} == 1 ]]; then echo "run_scale.sh: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
SERVE_FLAGS=(--max-connections $((CONNECTIONS + WORKSPACES + 100)))

# Holds connections (hold.mjs flags) until stop_hold; returns once all are open.
start_hold() {
  : >"$WORK/hold.out"
  (cd "$ROOT/bench" && exec node "$HOLD" "$@") >"$WORK/hold.out" &
  HOLD_PID=$!
  while ! grep -q '^held' "$WORK/hold.out"; do
    kill -0 "$HOLD_PID" 2>/dev/null || { echo "run_scale.sh: hold.mjs failed" >&2; exit 1; }
    sleep 0.5
  done
  sleep 2  # let the server settle
}
stop_hold() { stop_pid "$HOLD_PID"; HOLD_PID=; sleep 2; }

# RSS of the node peer (pid $1, log $2) after garbage collection.
node_rss_kb() {
  local lines
  lines=$(wc -l <"$2")
  kill -USR2 "$1"
  while (($(wc -l <"$2") <= lines)); do sleep 0.2; done
  tail -1 "$2" | jq .rss_kb
}

per() { awk -v d="$1" -v n="$2" 'BEGIN { printf "%.1f", d / n }'; }  # KiB delta, count

# --- etherply: idle connections ---
echo "run_scale.sh: etherply, $CONNECTIONS idle connections" >&2
start_etherply "$ETHERPLY" "$WORK/data" "${SERVE_FLAGS[@]}"
sleep 1
E_BASE=$(rss_kb "$ETHERPLY_PID")
start_hold --protocol etherply --url "ws://127.0.0.1:$ETHERPLY_PORT" --token "$TOKEN" --count "$CONNECTIONS"
E_IDLE=$(rss_kb "$ETHERPLY_PID")
stop_hold
E_IDLE_CLOSED=$(rss_kb "$ETHERPLY_PID")
E_CONN_KB=$(per $((E_IDLE - E_BASE)) "$CONNECTIONS")

# --- etherply: workspaces ---
echo "run_scale.sh: etherply, writing $WORKSPACES workspaces x $KEYS keys" >&2
t0=$(date +%s)
populate=$(timeout 1800 "$LOAD" --url "ws://127.0.0.1:$ETHERPLY_PORT" --token "$TOKEN" \
  --workspaces "$WORKSPACES" --writers 1 --ops "$KEYS" --window "$KEYS" \
  --workspace-prefix scale --label populate)
populate_s=$(($(date +%s) - t0))
jq -e .ok <<<"$populate" >/dev/null || { echo "run_scale.sh: populating failed: $populate" >&2; exit 1; }
stop_pid "$ETHERPLY_PID"
echo "run_scale.sh: etherply restarted, one connection per workspace" >&2
start_etherply "$ETHERPLY" "$WORK/data" "${SERVE_FLAGS[@]}"
sleep 1
E_BASE2=$(rss_kb "$ETHERPLY_PID")
start_hold --protocol etherply --url "ws://127.0.0.1:$ETHERPLY_PORT" --token "$TOKEN" \
  --count "$WORKSPACES" --spread --prefix scale
E_LOADED=$(rss_kb "$ETHERPLY_PID")
stop_hold
E_LOADED_CLOSED=$(rss_kb "$ETHERPLY_PID")
E_LOADED_LEFT=$(curl -sf "http://127.0.0.1:$ETHERPLY_PORT/v1/status" | jq .workspaces)
stop_pid "$ETHERPLY_PID"
E_WS_CONN_KB=$(per $((E_LOADED - E_BASE2)) "$WORKSPACES")
E_WS_KB=$(awk -v a="$E_WS_CONN_KB" -v c="$E_CONN_KB" 'BEGIN { printf "%.1f", a - c }')
DATA_MB=$(du -sm "$WORK/data" | cut -f1)

# --- automerge-repo: idle connections ---
echo "run_scale.sh: automerge-repo, $CONNECTIONS idle peers" >&2
start_node_server "$WORK/repo.log" --expose-gc "$ROOT/bench/repo/server.mjs"
sleep 1
R_BASE=$(node_rss_kb "$NODE_PID" "$WORK/repo.log")
start_hold --protocol repo --url "ws://127.0.0.1:$NODE_PORT" --count "$CONNECTIONS"
R_IDLE=$(node_rss_kb "$NODE_PID" "$WORK/repo.log")
stop_hold
stop_pid "$NODE_PID"
R_CONN_KB=$(per $((R_IDLE - R_BASE)) "$CONNECTIONS")

# --- automerge-repo: documents ---
echo "run_scale.sh: automerge-repo, importing $REPO_DOCS documents x $KEYS keys" >&2
t0=$(date +%s)
START_TIMEOUT=3600 start_node_server "$WORK/repo-docs.log" --expose-gc "$ROOT/bench/repo/server.mjs" \
  --preload "$REPO_DOCS" --keys "$KEYS"
preload_s=$(($(date +%s) - t0))
sleep 1
R_DOCS=$(node_rss_kb "$NODE_PID" "$WORK/repo-docs.log")
stop_pid "$NODE_PID"
R_DOC_KB=$(per $((R_DOCS - R_BASE)) "$REPO_DOCS")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
  echo "| figure | etherply | automerge-repo | etherply / automerge-repo |"
  echo "|---|---:|---:|---:|"
  echo "| per idle connection, KiB | $E_CONN_KB ($CONNECTIONS connections) | $R_CONN_KB ($CONNECTIONS peers) | $(ratio "$E_CONN_KB" "$R_CONN_KB") |"
  echo "| per loaded workspace / document of $KEYS keys, KiB | $E_WS_KB ($WORKSPACES, connection share taken off) | $R_DOC_KB ($REPO_DOCS) | $(ratio "$E_WS_KB" "$R_DOC_KB") |"
  echo "| per workspace with its connection, KiB | $E_WS_CONN_KB | – | – |"
  echo
  echo "etherply RSS, MiB: fresh $((E_BASE / 1024)); $CONNECTIONS idle connections $((E_IDLE / 1024)); after they closed $((E_IDLE_CLOSED / 1024)). After a restart on the $WORKSPACES workspaces ($DATA_MB MB on disk): fresh $((E_BASE2 / 1024)); one connection per workspace $((E_LOADED / 1024)); after they closed $((E_LOADED_CLOSED / 1024)), with $E_LOADED_LEFT workspaces still in memory (/v1/status; the Hub keeps up to 64 warm)."
  echo "automerge-repo RSS after GC, MiB: fresh $((R_BASE / 1024)); $CONNECTIONS idle peers $((R_IDLE / 1024)); $REPO_DOCS documents imported $((R_DOCS / 1024)) (import took $preload_s s, server start included)."
  echo "Writing the etherply workspaces: $populate_s s, $(jq .ops_per_s <<<"$populate") ops/s ($(jq .ops_acked <<<"$populate") ops, checks $(jq -r 'if .ok then "ok" else "FAILED" end' <<<"$populate"))."
  echo "etherply serve ${SERVE_FLAGS[*]} (otherwise defaults); automerge-repo $(jq -r .version "$ROOT/bench/node_modules/@automerge/automerge-repo/package.json") in memory (no storage adapter), node $(node --version). Machine: nproc $(nproc)."
} | tee "$OUT_MD"
echo "run_scale.sh: table written to $OUT_MD" >&2
