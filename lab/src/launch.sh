#!/bin/sh
# kprov lab host launcher. Stage "outer" runs on the machine inside the host's network
# namespace; stage "inner" runs as PID 1 of the host's new PID namespace and execs systemd.
# Arguments after the stage: cgroup.procs files to join, lower, upper, work and merged
# directories, hostname, v1 controllers to mount, $container value, cgroup mode.
set -eu
stage=$1; shift
case "$stage" in
outer)
    procs=$1
    # Join the host's own cgroups first, so the cgroup namespace created next is rooted there.
    for f in $procs; do echo $$ > "$f"; done
    exec unshare --mount --uts --ipc --pid --cgroup --fork --propagation private \
        sh "$0" inner "$@"
    ;;
inner)
    shift # cgroup.procs list, used by the outer stage only
    lower=$1 upper=$2 work=$3 r=$4 host=$5 controllers=$6 container=$7 mode=$8
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$r"
    # Container runtimes stack their own overlay mounts, which an overlayfs upper dir
    # refuses: their state lives on the machine's filesystem, next to the host's upper dir.
    storage="$(dirname "$upper")/storage"
    for d in kprov-agent containerd; do
        mkdir -p "$storage/$d" "$r/var/lib/$d"
        mount --bind "$storage/$d" "$r/var/lib/$d"
    done
    mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
    if [ "$mode" = unified ]; then
        mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup"
        own="$r/sys/fs/cgroup/cgroup.procs"
    else
        mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs "$r/sys/fs/cgroup"
        mkdir "$r/sys/fs/cgroup/systemd" "$r/sys/fs/cgroup/unified"
        mount -t cgroup -o none,name=systemd,nosuid,nodev,noexec cgroup "$r/sys/fs/cgroup/systemd"
        mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup/unified"
        for c in $controllers; do
            mkdir "$r/sys/fs/cgroup/$c"
            mount -t cgroup -o "$c,nosuid,nodev,noexec" cgroup "$r/sys/fs/cgroup/$c"
            case "$c" in
            *,*) for part in $(echo "$c" | tr , ' '); do ln -s "$c" "$r/sys/fs/cgroup/$part"; done ;;
            esac
        done
        mount -o remount,ro,nosuid,nodev,noexec,mode=755 "$r/sys/fs/cgroup"
        own="$r/sys/fs/cgroup/systemd/cgroup.procs"
    fi
    mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$r/run"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/tmp"
    mount -t tmpfs -o mode=755,nosuid tmpfs "$r/dev"
    for d in null zero full random urandom tty; do
        touch "$r/dev/$d"
        mount --bind "/dev/$d" "$r/dev/$d"
    done
    # Devices nested containers and CNI plugins use, when the machine has them.
    for d in net/tun fuse kmsg; do
        if [ -c "/dev/$d" ]; then
            mkdir -p "$(dirname "$r/dev/$d")"
            touch "$r/dev/$d"
            mount --bind "/dev/$d" "$r/dev/$d"
        fi
    done
    # The machine's kernel modules (read-only), so modprobe inside finds them.
    if [ -d /lib/modules ]; then
        mkdir -p "$r/lib/modules"
        mount --rbind -o ro /lib/modules "$r/lib/modules"
    fi
    mkdir "$r/dev/pts" "$r/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$r/dev/pts"
    ln -s pts/ptmx "$r/dev/ptmx"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$r/dev/shm"
    ln -s /proc/self/fd "$r/dev/fd"
    ln -s /proc/self/fd/0 "$r/dev/stdin"
    ln -s /proc/self/fd/1 "$r/dev/stdout"
    ln -s /proc/self/fd/2 "$r/dev/stderr"
    hostname "$host"
    # kprov moves the launcher (our parent, pid 0 from in here) out of this cgroup; wait for
    # that so systemd finds a cgroup holding only its own processes.
    tries=0
    while grep -qx 0 "$own"; do
        tries=$((tries + 1))
        if [ "$tries" -gt 1000 ]; then
            echo "kprov lab: the launcher never left the host's cgroup" >&2
            exit 1
        fi
        sleep 0.01
    done
    cd "$r"
    exec env -i container="$container" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$r" /lib/systemd/systemd
    ;;
esac
echo "unknown stage $stage" >&2
exit 2
