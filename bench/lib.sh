# Shared by the bench/run_*.sh scripts (source it; it defines functions only).
#
# Each start_* function starts one server on a free loopback port, in the
# background, and sets <NAME>_PID and <NAME>_PORT; stop_pid ends it. The
# caller owns cleanup (a trap that calls stop_pid for what it started).

# Raises the open-file limit to `want` (or the hard limit) for this shell and
# its children; warns when below `need`.
raise_fd_limit() {  # want need
  local hard want=$1
  hard=$(ulimit -Hn)
  [[ $hard != unlimited && $hard -lt $want ]] && want=$hard
  ulimit -n "$want"
  (($(ulimit -n) >= $2)) || echo "bench: only $(ulimit -n) file descriptors (want $2)" >&2
}

# Synced 4 KiB appends per second in directory $1 (count x write + fdatasync,
# dd oflag=dsync).
fsync_rate() {  # dir count
  local seconds
  seconds=$(dd if=/dev/zero of="$1/fsync.probe" bs=4k count="$2" oflag=dsync 2>&1 |
    sed -n 's/.* copied, \([0-9.]*\) s,.*/\1/p')
  rm -f "$1/fsync.probe"
  awk -v n="$2" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }'
}

# Waits until file $2 has a line matching sed address $3 capturing the port
# (as \1), while pid $1 lives, for START_TIMEOUT seconds (default 20);
# prints the port.
wait_for_port() {  # pid log sed-regex
  local port
  for _ in $(seq $((${START_TIMEOUT:-20} * 10))); do
    port=$(sed -n "s/$3/\1/p" "$2" | head -1)
    [[ -n $port ]] && { echo "$port"; return; }
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: a server did not start:" >&2
  cat "$2" >&2
  return 1
}

# etherply serve with a generated secret in data dir $2; extra flags after.
# Sets ETHERPLY_PID, ETHERPLY_PORT and TOKEN (read write, every workspace).
start_etherply() {  # etherply-binary data-dir [serve flags...]
  local bin=$1 dir=$2
  shift 2
  export ETHERPLY_JWT_SECRET
  ETHERPLY_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
  mkdir -p "$dir"
  : >"$dir.log"
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$dir" "$@" 2>"$dir.log" &
  ETHERPLY_PID=$!
  ETHERPLY_PORT=$(wait_for_port "$ETHERPLY_PID" "$dir.log" \
    '.*etherply listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*')
  TOKEN=$("$bin" token --sub etherply-bench --scope "read write" --workspace '*' --ttl 2h)
}

# A node server script that prints "... listening on ws://127.0.0.1:PORT".
# Sets NODE_PID and NODE_PORT; its stdout goes to $1.
start_node_server() {  # log script [args...]
  local log=$1
  shift
  : >"$log"
  node "$@" >"$log" 2>&1 &
  NODE_PID=$!
  NODE_PORT=$(wait_for_port "$NODE_PID" "$log" '.*listening on ws:\/\/127\.0\.0\.1:\([0-9]*\).*')
}

stop_pid() {  # pid
  if [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1"
    wait "$1" 2>/dev/null || true
  fi
}

cpu_ticks() {  # pid: its utime + stime, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# CPU % of pid over a span: ticks before, ticks after, ns before, ns after.
cpu_pct() {  # ticks0 ticks1 ns0 ns1
  awk -v d=$(($2 - $1)) -v hz="$(getconf CLK_TCK)" -v ns=$(($4 - $3)) \
    'BEGIN { printf "%.0f", d / hz / (ns / 1e9) * 100 }'
}

rss_kb() {  # pid
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Installs bench/package-lock.json's packages when one is missing. npm 11
# writes the lock without cbor-extract's optional platform packages (a
# dependency of automerge-repo's cbor-x) and then refuses it in `npm ci`;
# `npm install --no-save` installs the same pinned versions without
# touching the lock.
ensure_node_modules() {  # bench-dir
  command -v node >/dev/null || { echo "bench: node is required" >&2; return 1; }
  local m=$1/node_modules
  if [[ ! -d $m/@automerge/automerge || ! -d $m/@automerge/automerge-repo-network-websocket ||
        ! -d $m/ws ]]; then
    echo "bench: installing bench/package-lock.json (npm ci in bench/)" >&2
    (cd "$1" && { npm ci --no-audit --no-fund >&2 2>/dev/null ||
      npm install --no-save --no-audit --no-fund >&2; })
  fi
}
