#!/usr/bin/env bash
# Engine benchmark: wall time of first apply, idempotent apply (fresh and persisted
# connections) and plan of bench/node-prep-config.yaml on 3, 10 and 30 lab hosts, next
# to the floor: plain parallel ssh running ~30 stat+sha256 checks in one shell per host.
#
# BASELINE=/path/to/an/older/kprov measures that binary too, row beside row, each on a
# fresh lab of the same size in the same run (the before/after of an engine change):
#   git worktree add /tmp/kprov-before REV
#   (cd /tmp/kprov-before && CARGO_TARGET_DIR=/tmp/before-target cargo build --release -p kprov)
#   BASELINE=/tmp/before-target/release/kprov bench/engine.sh 3 10
#
# Run as root from the repository root: bench/engine.sh [HOST COUNTS...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/kprov/target}"
cargo build --release -q -p kprov
K="$CARGO_TARGET_DIR/release/kprov"
PB=bench/node-prep-config.yaml
counts=("${@:-3 10 30}")
# shellcheck disable=SC2206
counts=(${counts[@]})
binaries=("current=$K")
if [ -n "${BASELINE:-}" ]; then
  [ -x "$BASELINE" ] || { echo "BASELINE=$BASELINE is not an executable kprov" >&2; exit 1; }
  binaries=("baseline=$BASELINE" "${binaries[@]}")
fi

seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
best_of() { local n=$1 best=; shift; for _ in $(seq "$n"); do t=$(seconds "$@"); if [ -z "$best" ] || (( $(echo "$t < $best" | bc) )); then best=$t; fi; done; printf '%.2f' "$best"; }

# The kprov rows of one binary on a fresh lab of N hosts.
measure() {
  local label=$1 bin=$2 n=$3 lab="kb$3" inv first idem persisted plan
  "$K" lab down --name "$lab" >/dev/null 2>&1 || true
  "$K" lab up --name "$lab" --hosts "$n" >/dev/null 2>&1
  inv="/var/lib/kprov/lab/$lab/inventory.yaml"
  first=$(seconds "$bin" apply "$PB" -i "$inv" -q)
  idem=$(best_of 3 "$bin" apply "$PB" -i "$inv" -q)
  "$bin" apply "$PB" -i "$inv" -q --persist 120 >/dev/null 2>&1 || true
  persisted=$(best_of 3 "$bin" apply "$PB" -i "$inv" -q --persist 120)
  plan=$(best_of 3 "$bin" plan "$PB" -i "$inv" -q)
  printf '%-6s %-9s %11.2fs %13ss %15ss %7ss\n' "$n" "$label" "$first" "$idem" "$persisted" "$plan"
}

# The floor: the same number of stat+sha256 checks with plain ssh, one shell per host.
floor() {
  local n=$1 lab="kb$1" inv key kh addrs check ctl ssh_fresh ssh_mux
  inv="/var/lib/kprov/lab/$lab/inventory.yaml"
  key="/var/lib/kprov/lab/$lab/key"; kh="/var/lib/kprov/lab/$lab/known_hosts"
  addrs=$(grep -o 'address: "[^"]*"' "$inv" | cut -d'"' -f2)
  check='for i in $(seq 30); do stat -c %a /etc/hostname >/dev/null; sha256sum /etc/hostname >/dev/null; done'
  plain() { for a in $addrs; do ssh -i "$key" -o UserKnownHostsFile="$kh" -o BatchMode=yes "$@" "root@$a" "$check" & done; wait; }
  ssh_fresh=$(best_of 3 plain)
  ctl=$(mktemp -d)
  for a in $addrs; do ssh -i "$key" -o UserKnownHostsFile="$kh" -o BatchMode=yes -o ControlMaster=yes -o ControlPath="$ctl/%h" -o ControlPersist=60 -fN "root@$a"; done
  ssh_mux=$(best_of 3 plain -o ControlPath="$ctl/%h")
  for a in $addrs; do ssh -o ControlPath="$ctl/%h" -O exit "root@$a" 2>/dev/null || true; done
  rm -rf "$ctl"
  printf '%-6s %-9s %12s %14s %16s %8s   (plain ssh: fresh %ss, multiplexed %ss)\n' "$n" "ssh floor" - - - - "$ssh_fresh" "$ssh_mux"
}

printf '%-6s %-9s %12s %14s %16s %8s\n' hosts binary first_apply idem_fresh idem_persisted plan
for n in "${counts[@]}"; do
  for b in "${binaries[@]}"; do
    measure "${b%%=*}" "${b#*=}" "$n"
  done
  floor "$n"
  "$K" lab down --name "kb$n" >/dev/null
done
