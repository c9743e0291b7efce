# Sourced by ci/bench-client.sh and ci/bench-server.sh: the setup both side-by-side
# benchmarks share.
#
# bench_setup "TOOL..." "APT_PACKAGES": exits 2 naming the apt packages when a tool is
# missing; sets loadgen (LOADGEN=path uses a prebuilt binary instead of building one)
# and work (a temporary directory, removed on exit, when the background jobs are
# killed); builds the floor server (../shared/yardsticks/floor_server.c) into
# $work/floor_server.
bench_setup() {
  local tool
  for tool in $1; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $2" >&2; exit 2; }
  done
  loadgen=${LOADGEN:-target/release/loadgen}
  [ -n "${LOADGEN:-}" ] || cargo build --release -p loadgen --locked -q
  work=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
  gcc -O2 -o "$work/floor_server" ../shared/yardsticks/floor_server.c
}
