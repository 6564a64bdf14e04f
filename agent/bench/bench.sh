#!/usr/bin/env bash
# Side-by-side benchmark: kprov-agent vs Debian's containerd 1.6 (runc, cgroupfs,
# restrict_oom_score_adj), same CNI plugins (bridge + host-local + portmap from
# /usr/lib/cni), same loopback registry, same CRI client (agent/bench/cri_bench.rs).
# Measures: idle RSS (daemon + per-pod helpers: monitors / shims), RSS with N
# running pods, median run-sandbox+create+start of one busybox container with the
# image present, List latency with 0 and N pods, and with N pods running the exec
# round trip in one busybox container: ExecSync of `true`, and the streaming Exec
# (RPC, then `echo hi` over WebSocket v4.channel.k8s.io and over SPDY/3.1 until
# the exit status arrives); both streaming servers listen on loopback.
# Not a test: run by hand.
#   sudo agent/bench/bench.sh            # PODS="10 50" by default
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: run as root" >&2; exit 1; }
cd "$(dirname "$0")/../.."
PODS=${PODS:-"10 50"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/kprov/target}
for t in docker-registry containerd runc /usr/lib/cni/bridge busybox; do
  command -v "$t" >/dev/null || [ -x "$t" ] || { echo "bench.sh: missing $t (apt-get install docker-registry containerd runc containernetworking-plugins busybox-static)" >&2; exit 1; }
done
cargo build --release -q -p kprov-agent --bins --example cri-bench
BIN=$CARGO_TARGET_DIR/release
W=$(mktemp -d /tmp/kprov-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  ip link del kpb0 2>/dev/null || true
  ip link del kpb1 2>/dev/null || true
  grep "$W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

free_port() { # first free TCP port from $1
  local p=$1
  while ss -ltn | grep -q ":$p "; do p=$((p + 1)); done
  echo "$p"
}
port=$(free_port 5300)
REG=127.0.0.1:$port
cat > "$W/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/registry}}
http: {addr: $REG}
YML
docker-registry serve "$W/registry.yml" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$BIN/examples/cri-bench" push "$REG" >/dev/null
IMAGE=$REG/test/busybox:1

netconf() { # dir bridge subnet
  mkdir -p "$1"
  cat > "$1/10-bench.conflist" <<JSON
{"cniVersion":"1.0.0","name":"bench-$2","plugins":[
 {"type":"bridge","bridge":"$2","isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","ranges":[[{"subnet":"$3"}]],"dataDir":"$W/ipam-$2"}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
JSON
}
wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

# --- kprov-agent ---
netconf "$W/agent-net.d" kpb0 10.99.250.0/24
cat > "$W/agent.toml" <<TOML
socket = "unix://$W/agent.sock"
state_dir = "$W/agent/state"
root_dir = "$W/agent/root"
run_dir = "$W/agent/run"
[cni]
bin_dirs = ["/usr/lib/cni"]
conf_dir = "$W/agent-net.d"
[registry.hosts."$REG"]
plain_http = true
[logs]
level = "warn"
[stream]
address = "127.0.0.1:0"
TOML
"$BIN/kprov-agent" --config "$W/agent.toml" 2>"$W/agent.log" & apid=$!; pids+=($apid)
wait_sock "$W/agent.sock"
"$BIN/examples/cri-bench" run "$W/agent.sock" "$IMAGE" /kprov-bench-agent "$apid" "__monitor" $PODS > "$W/agent.json"
kill "$apid"; wait "$apid" 2>/dev/null || true

# --- containerd ---
netconf "$W/ctd-net.d" kpb1 10.99.251.0/24
SPORT=$(free_port 10350)
cat > "$W/containerd.toml" <<TOML
version = 2
root = "$W/ctd/root"
state = "$W/ctd/state"
[grpc]
  address = "$W/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "$SPORT"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/ctd-net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
TOML
containerd --config "$W/containerd.toml" >"$W/containerd.log" 2>&1 & cpid=$!; pids+=($cpid)
wait_sock "$W/containerd.sock"
sleep 2
"$BIN/examples/cri-bench" run "$W/containerd.sock" "$IMAGE" /kprov-bench-ctd "$cpid" "containerd-shim-runc-v2" $PODS > "$W/ctd.json"
kill "$cpid"; wait "$cpid" 2>/dev/null || true
for d in /sys/fs/cgroup/*/kprov-bench-agent /sys/fs/cgroup/*/kprov-bench-ctd; do rmdir "$d" 2>/dev/null || true; done

echo "kprov-agent: $(cat "$W/agent.json")"
echo "containerd:  $(cat "$W/ctd.json")"
python3 - "$W/agent.json" "$W/ctd.json" <<'PY'
import json, sys
a, c = (json.load(open(p)) for p in sys.argv[1:3])
rows = [(k, a[k], c[k]) for k in a if k in c]
print(f"{'metric':28} {'kprov-agent':>12} {'containerd':>12} {'ratio':>7}")
for k, x, y in rows:
    r = f"{x / y:.2f}" if y else "-"
    unit = " MiB" if "rss" in k else (" ms" if k.endswith("_ms") or "_ms_" in k else "")
    fx, fy = (x / 1024, y / 1024) if "rss" in k else (x, y)
    d = 2 if unit == " ms" else 1
    print(f"{k:28} {fx:>10.{d}f}{unit:4} {fy:>8.{d}f}{unit:4} {r:>7}")
PY
