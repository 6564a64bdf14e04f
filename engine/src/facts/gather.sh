# kprov facts: prints one `key=value` line per fact. POSIX sh + coreutils only;
# every probe tolerates a missing tool so one odd host never fails the run.
os_id=; os_version=; os_like=; os_codename=
if [ -r /etc/os-release ]; then
  . /etc/os-release
  os_id=${ID:-}; os_version=${VERSION_ID:-}; os_like=${ID_LIKE:-}; os_codename=${VERSION_CODENAME:-}
fi
echo "os_id=$os_id"
echo "os_version=$os_version"
echo "os_codename=$os_codename"
echo "os_like=$os_like"
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
echo "hostname=$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)"
if command -v ip >/dev/null 2>&1; then
  echo "addresses=$(ip -o addr show scope global 2>/dev/null | while read -r _ _ _ a _; do printf '%s ' "${a%/*}"; done)"
else
  echo "addresses=$(hostname -I 2>/dev/null)"
fi
echo "cpus=$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
while read -r k v _; do
  case $k in
    MemTotal:) echo "memory_kib=$v" ;;
    SwapTotal:) echo "swap_total_kib=$v" ;;
  esac
done < /proc/meminfo
echo "swap_devices=$(tail -n +2 /proc/swaps 2>/dev/null | wc -l)"
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
  echo "cgroup=v2"
elif [ -d /sys/fs/cgroup/unified ] && [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
  echo "cgroup=hybrid"
else
  echo "cgroup=v1"
fi
echo "init=$(cat /proc/1/comm 2>/dev/null)"
pm=
for c in apt-get dnf yum zypper apk; do
  if command -v $c >/dev/null 2>&1; then pm=$c; break; fi
done
echo "package_manager=$pm"
rt=
for c in kprov-agent containerd crio dockerd; do
  if command -v $c >/dev/null 2>&1; then rt="$rt$c "; fi
done
echo "runtimes=$rt"
sockets=
for s in /run/kprov/agent.sock /run/containerd/containerd.sock /var/run/crio/crio.sock; do
  if [ -S "$s" ]; then sockets="$sockets$s "; fi
done
echo "runtime_sockets=$sockets"
echo "kubelet=$(command -v kubelet 2>/dev/null)"
if (echo -1 > /proc/self/oom_score_adj) 2>/dev/null; then echo "negative_oom_score_adj=yes"; else echo "negative_oom_score_adj=no"; fi
echo "container=$(cat /run/systemd/container 2>/dev/null || true)"
# kubeadm points the kubelet at resolved's real resolv.conf when resolved is active.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet systemd-resolved 2>/dev/null; then
  echo "systemd_resolved=yes"
else
  echo "systemd_resolved=no"
fi
# CA-trust directories control-plane pods mount (kubeadm mounts the ones that exist).
dirs=
for d in /etc/ssl/certs /etc/ca-certificates /usr/share/ca-certificates /usr/local/share/ca-certificates /etc/pki /etc/pki/ca-trust /etc/pki/tls/certs; do
  if [ -d "$d" ]; then dirs="$dirs$d "; fi
done
echo "ca_trust_dirs=$dirs"
# Handlers a change notified that have not run yet (kprov's markers; see run/notify.rs).
echo "pending_handlers=$(ls "${KPROV_STATE_DIR:-/var/lib/kprov}/handlers" 2>/dev/null | grep -v '\.tmp$' | tr '\n' ' ')"
