#!/usr/bin/env bash
# run-in-vm.sh <kernel-dir> <workdir> -- <command...>
#
# Boot an extracted Debian kernel package under qemu, with the HOST root
# filesystem as the guest's root, and run <command> in <workdir> inside it.
# Prints the guest console, exits with the command's exit status.
#
# Why a VM at all: the project's kernel-facing tests need a known kernel
# (Debian 6.1 LTS) with BTF, and need to create veth/netns/tc/bpf state
# that must not touch the host.
#
# Why the host root is the guest root: the test binaries are dynamically
# linked against the host's libc and use host tools (ip, tc, bpftool,
# dnsmasq...). Sharing the host's / means nothing has to be copied or
# packaged, and the guest sees exactly the same binaries at the same paths.
#
# <kernel-dir> is the `dpkg-deb -x` of a linux-image-*-unsigned package
# (boot/vmlinuz-<ver>, lib/modules/<ver>/). If it does not exist and its
# basename is linux-<ver> (e.g. linux-6.1.0-47-cloud-amd64), it is fetched
# with `apt-get download linux-image-<ver>-unsigned` -- never installed on
# the host.
#
# Tunables (environment):
#   VM_MEM (2048)  VM_SMP (2)  VM_TIMEOUT seconds for the whole run (1800)
#   VM_ACCEL auto|kvm|tcg (auto)  VM_KVM_PROBE_TIMEOUT seconds (10)
#   VM_MODULES  modules to preload in the guest (autoload works too, see below)
#   VM_PASS_ENV extra host variable names to pass into the guest
#   VM_OVERLAY 1|0  writable overlay over the read-only host root (1)
#   VM_ROOT_CACHE / VM_WORK_CACHE  virtiofsd cache= for the two shares (always)
#   VM_QEMU_EXTRA  extra qemu arguments (word-split)
#   VM_EXIT_FILE name of the exit-status file inside <workdir> (.vm-exit-code)
#   VM_VERBOSE 1   show kernel boot messages and host-side progress
set -euo pipefail

usage() { echo "usage: $0 <kernel-dir> <workdir> -- <command...>" >&2; exit 2; }
[ $# -ge 4 ] && [ "$3" = "--" ] || usage
KDIR=$1; WORKDIR=$2; shift 3

VM_MEM=${VM_MEM:-2048}
VM_SMP=${VM_SMP:-2}
VM_TIMEOUT=${VM_TIMEOUT:-1800}
VM_ACCEL=${VM_ACCEL:-auto}
VM_KVM_PROBE_TIMEOUT=${VM_KVM_PROBE_TIMEOUT:-10}
# clsact lives in sch_ingress; cls_bpf/act_bpf for tc-bpf. These are also
# autoloaded on demand (kernel.modprobe is pointed at busybox modprobe), but
# preloading makes failures show up early and explicitly.
VM_MODULES=${VM_MODULES:-veth sch_ingress cls_bpf act_bpf}
VM_OVERLAY=${VM_OVERLAY:-1}
VM_EXIT_FILE=${VM_EXIT_FILE:-.vm-exit-code}
VM_VERBOSE=${VM_VERBOSE:-0}
VM_PASS_ENV=${VM_PASS_ENV:-}
# virtiofs cache mode. "always" lets the guest cache lookups/attrs/pages
# indefinitely: 4-6x faster exec under TCG (dynamic /bin/true 0.43s -> 0.07s)
# and correct as long as the host does not modify the shared trees while the
# VM runs (guest writes are write-through either way). Use "auto" if it does.
VM_ROOT_CACHE=${VM_ROOT_CACHE:-always}
VM_WORK_CACHE=${VM_WORK_CACHE:-always}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kettlewatch/vm

log() { [ "$VM_VERBOSE" = 1 ] && echo "run-in-vm: $*" >&2 || true; }
die() { echo "run-in-vm: error: $*" >&2; exit 125; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
T0=$(now)

[ "$(id -u)" = 0 ] || die "must run as root (virtiofsd and kernel fetch need it)"

# ---------------------------------------------------------------- host deps
# busybox must be the *static* one: it runs in the initramfs before the host
# root (and its libc) is mounted.
VIRTIOFSD=/usr/lib/qemu/virtiofsd
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
[ -x "$VIRTIOFSD" ] || need_pkgs+=(qemu-system-common)
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    need_pkgs+=(busybox-static)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "run-in-vm: installing ${need_pkgs[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need_pkgs[@]}" >&2 || { apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${need_pkgs[@]}" >&2; } || die "apt-get install ${need_pkgs[*]} failed"
fi
# Debian's qemu 7.2 still ships the C virtiofsd; newer qemu dropped it in
# favour of the separate Rust `virtiofsd` package (/usr/libexec/virtiofsd).
for c in /usr/libexec/virtiofsd /usr/lib/qemu/virtiofsd; do
    [ -x "$c" ] && VIRTIOFSD=$c && break
done
[ -x "$VIRTIOFSD" ] || die "no virtiofsd found"

# ------------------------------------------------------------- kernel fetch
if [ ! -d "$KDIR/boot" ]; then
    kver=$(basename "$KDIR"); kver=${kver#linux-}
    [ "$kver" != "$(basename "$KDIR")" ] || die "$KDIR missing and its name is not linux-<version>"
    tf=$(now)
    echo "run-in-vm: fetching linux-image-$kver-unsigned into $KDIR" >&2
    dl=$(mktemp -d)
    # apt-get download drops to the _apt user when it can write the target
    # dir; otherwise it downloads as root with a (harmless) warning.
    chown _apt "$dl" 2>/dev/null || true
    (cd "$dl" && apt-get download -q "linux-image-$kver-unsigned" >&2) ||
        { rm -rf "$dl"; die "apt-get download linux-image-$kver-unsigned failed"; }
    mkdir -p "$KDIR.tmp" && dpkg-deb -x "$dl"/*.deb "$KDIR.tmp" && rm -rf "$dl"
    mv "$KDIR.tmp" "$KDIR"
    echo "run-in-vm: kernel fetch took $(elapsed "$tf")s" >&2
fi
KVER=$(ls "$KDIR/lib/modules" | head -n1)
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
MODDIR=$KDIR/lib/modules/$KVER
[ -f "$VMLINUZ" ] && [ -d "$MODDIR" ] || die "$KDIR does not look like an extracted linux-image package"
# The package ships no modules.dep (its postinst runs depmod on install). Make
# one with busybox depmod so the guest can use busybox modprobe (and the
# kernel can autoload modules) straight from this directory.
[ -s "$MODDIR/modules.dep" ] || busybox depmod -b "$KDIR" "$KVER" ||
    die "depmod failed for $MODDIR"

WORKDIR=$(cd "$WORKDIR" && pwd -P) || die "workdir $2 does not exist"
[ "$WORKDIR" != / ] || die "workdir must not be /"

# ---------------------------------------------------------- per-run state
RUN=$(mktemp -d /tmp/run-in-vm.XXXXXX)
PIDS=()
cleanup() {
    # Every exit path (success, error, timeout, ^C) must take the VM and the
    # file servers down, or they keep a core busy and the sockets around.
    # qemu (started last) goes first, so it does not complain about its
    # vhost-user backends vanishing under it.
    local i
    for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
    sleep 0.2
    for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -9 "${PIDS[i]}" 2>/dev/null || true; done
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ------------------------------------------------------------ initramfs
# Only what is needed to get the host root mounted lives in the initramfs:
# virtio-pci transport, virtiofs, overlay. Debian's *cloud* kernel has no 9p
# at all (CONFIG_NET_9P is not set), hence virtiofs. Everything else is
# loaded later from $MODDIR through the shared host root.
EARLY_WANT="virtio_pci virtiofs overlay"
is_builtin() { grep -q "/$1\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; }
modpath() { # name -> relative path of its .ko (names use - and _ interchangeably)
    local n=${1//-/_}
    awk -F: -v n="$n" '{p=$1; b=p; sub(/.*\//,"",b); sub(/\.ko.*$/,"",b); gsub(/-/,"_",b); if (b==n) {print p; exit}}' "$MODDIR/modules.dep"
}
EARLY_ORDER=()
add_mod() { # depth-first over the .modinfo "depends=" so deps load first
    local m=${1//-/_} p d deps
    is_builtin "$m" && return 0
    for d in "${EARLY_ORDER[@]}"; do [ "$d" = "$m" ] && return 0; done
    p=$(modpath "$m"); [ -n "$p" ] || die "module $m not found in $MODDIR"
    deps=$(tr '\0' '\n' < "$MODDIR/$p" | sed -n 's/^depends=//p' | head -n1)
    for d in ${deps//,/ }; do add_mod "$d"; done
    EARLY_ORDER+=("$m")
}
for m in $EARLY_WANT; do add_mod "$m"; done
log "early modules: ${EARLY_ORDER[*]}"

IR=$RUN/initramfs
mkdir -p "$IR"/{bin,dev,proc,sys,mods,lower,upper,newroot}
cp /bin/busybox "$IR/bin/busybox"
for m in "${EARLY_ORDER[@]}"; do
    cp "$MODDIR/$(modpath "$m")" "$IR/mods/$m.ko"
    echo "$m" >> "$IR/mods/order"
done

# Single-quote for sh: the command and env cross into the guest as a script.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

SANE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
{
    echo "WORKDIR=$(q "$WORKDIR")"
    echo "KDIR=$(q "$(cd "$KDIR" && pwd -P)")"
    echo "KVER=$(q "$KVER")"
    echo "VM_MODULES=$(q "$VM_MODULES")"
    echo "VM_OVERLAY=$(q "$VM_OVERLAY")"
    echo "VM_EXIT_FILE=$(q "$VM_EXIT_FILE")"
    echo "VM_VERBOSE=$(q "$VM_VERBOSE")"
} > "$IR/vmtest.conf"
{
    # Host PATH first so the guest resolves the same binaries (cargo, pyenv
    # shims...); the sane dirs after it guarantee ip/tc/bpftool are found.
    echo "export PATH=$(q "${PATH:+$PATH:}$SANE_PATH")"
    echo "export HOME=$(q "${HOME:-/root}")"
    echo "export TERM=dumb"
    for v in USER LOGNAME LANG LC_ALL TZ RUST_BACKTRACE RUST_LOG RUST_TEST_THREADS \
             RUST_MIN_STACK CARGO_TERM_COLOR NO_COLOR CI $VM_PASS_ENV; do
        [ -n "${!v+x}" ] && echo "export $v=$(q "${!v}")"
    done
    echo "export RUN_IN_VM=1"
} > "$IR/vmtest.env"
{
    printf 'exec'
    for a in "$@"; do printf ' %s' "$(q "$a")"; done
    echo
} > "$IR/vmtest.cmd"

cat > "$IR/init" <<'EOF_INIT'
#!/bin/busybox sh
# Stage 1 (PID 1 in the initramfs): mount the host root, build the new root,
# switch_root into it. Failures here print and power off; the host then
# reports "no exit status".
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The host waits for this line to tell a hung (KVM) boot from a slow one.
echo "VMTEST: init $(cut -d' ' -f1 /proc/uptime)"
. /vmtest.conf
fail() { echo "VMTEST: stage1 failed: $*"; poweroff -f; echo o > /proc/sysrq-trigger; sleep 5; }
for m in $(cat /mods/order); do
    insmod /mods/$m.ko || fail "insmod $m"
done
# virtio devices probe asynchronously after virtio_pci loads.
i=0; until mount -t virtiofs -o ro hostroot /lower 2>/dev/null; do
    i=$((i+1)); [ $i -lt 50 ] || fail "mount virtiofs hostroot"; sleep 0.1
done

# A writable view of the host root, with all writes going to guest RAM: tests
# and tools can write /etc, /var, $HOME... without touching the host, and
# nothing needs a hand-maintained list of "dirs that must be writable".
ROOTMODE=ro
if [ "$VM_OVERLAY" = 1 ]; then
    mount -t tmpfs -o mode=0755 upper /upper && mkdir -p /upper/u /upper/w &&
    mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot &&
    ROOTMODE=overlay || echo "VMTEST: overlay failed, falling back to read-only root"
fi
if [ $ROOTMODE = ro ]; then
    mount --bind /lower /newroot
fi
N=/newroot
# Fresh /run (netns dir, pid files) and /dev/shm like a real boot; in ro mode
# also the other places programs expect to write.
mount -t tmpfs -o mode=0755,nosuid,nodev run $N/run
if [ $ROOTMODE = ro ]; then
    # Not /root: it holds rustup/cargo, which must stay visible.
    for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmp $N$d; done
fi
mount --move /proc $N/proc
mount --move /sys $N/sys
mount --move /dev $N/dev
mkdir -p $N/dev/pts $N/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=000 devpts $N/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm $N/dev/shm
mount -t bpf -o mode=0700 bpf $N/sys/fs/bpf
mount -t debugfs debugfs $N/sys/kernel/debug
mount -t tracefs tracefs $N/sys/kernel/tracing
mount -t cgroup2 -o nsdelegate cgroup2 $N/sys/fs/cgroup
# Workdir last: it may live under a dir mounted above (e.g. /tmp).
mkdir -p "$N$WORKDIR" 2>/dev/null
mount -t virtiofs work "$N$WORKDIR" || fail "mount virtiofs work at $WORKDIR"
# systemd makes / rshared; match it so mount-propagation-sensitive code
# (ip netns, unshare -m) behaves as on a normal host.
mount --make-rshared $N

# Stage 2 needs a shell that exists in the new root whatever the host has.
mkdir -p $N/run/vmtest/bin
cp /bin/busybox $N/run/vmtest/bin/busybox
ln -s busybox $N/run/vmtest/bin/modprobe
cp /vmtest.conf /vmtest.env /vmtest.cmd $N/run/vmtest/
cp /stage2 $N/run/vmtest/stage2
# Module autoload: the kernel execs kernel.modprobe with the module name;
# busybox modprobe reads /lib/modules/$KVER, which we point at the extracted
# package (visible through the host root). Needs the overlay: the host may
# have no /lib/modules to mount over; on a read-only root stage 2 falls back
# to insmod by path for VM_MODULES and there is no autoload.
if [ $ROOTMODE = overlay ]; then
    rm -rf $N/lib/modules/$KVER 2>/dev/null
    mkdir -p $N/lib/modules && ln -s "$KDIR/lib/modules/$KVER" $N/lib/modules/$KVER
    # libbpf (Kconfig externs), bpftool feature probe and aya look here when
    # /proc/config.gz is absent, which it is in Debian kernels.
    mkdir -p $N/boot && ln -sf "$KDIR/boot/config-$KVER" $N/boot/config-$KVER
    ln -sf "$KDIR/boot/System.map-$KVER" $N/boot/System.map-$KVER
fi
echo /run/vmtest/bin/modprobe > $N/proc/sys/kernel/modprobe
echo "VMTEST: root=$ROOTMODE"
exec switch_root $N /run/vmtest/stage2
fail "switch_root"
EOF_INIT

cat > "$IR/stage2" <<'EOF_STAGE2'
#!/run/vmtest/bin/busybox sh
# Stage 2 (PID 1 in the host root): run the command as a child so PID 1
# survives to record its status and power off cleanly.
B=/run/vmtest/bin/busybox
. /run/vmtest/vmtest.conf
. /run/vmtest/vmtest.env
# \n -> \r\n on the serial line only adds noise to logs on the host.
$B stty -F /dev/console -onlcr 2>/dev/null
$B ip link set lo up
$B hostname vmtest
M=$KDIR/lib/modules/$KVER
load_mod() { # modprobe, or by hand from modules.dep when /lib/modules is missing
    if [ -e /lib/modules/$KVER/modules.dep ]; then $B modprobe "$1"; return; fi
    line=$($B awk -F: -v n="$1" '{b=$1; sub(/.*\//,"",b); sub(/\.ko.*$/,"",b); gsub(/-/,"_",b); if (b==n) {print; exit}}' "$M/modules.dep")
    [ -n "$line" ] || return 1
    # modules.dep lists dependencies nearest-first: load them in reverse.
    for f in $(echo "${line#*:}" | $B tr ' ' '\n' | $B tac) "${line%%:*}"; do
        $B insmod "$M/$f" 2>/dev/null || $B grep -q "^$($B basename "$f" .ko | $B tr - _) " /proc/modules || return 1
    done
}
for m in $VM_MODULES; do
    load_mod "$m" || echo "VMTEST: warning: loading module $m failed"
done
ulimit -l unlimited 2>/dev/null
rm -f "$WORKDIR/$VM_EXIT_FILE"
cd "$WORKDIR" || { echo "VMTEST: cd $WORKDIR failed"; $B poweroff -f; }
echo "VMTEST: command start $($B cut -d' ' -f1 /proc/uptime)"
$B sh /run/vmtest/vmtest.cmd </dev/null
rc=$?
echo "VMTEST: command exit $rc $($B cut -d' ' -f1 /proc/uptime)"
echo $rc > "$WORKDIR/$VM_EXIT_FILE"
$B sync
[ "$VM_VERBOSE" = 1 ] && echo "VMTEST: synced $($B cut -d' ' -f1 /proc/uptime)"
$B umount "$WORKDIR" 2>/dev/null
[ "$VM_VERBOSE" = 1 ] && echo "VMTEST: umounted $($B cut -d' ' -f1 /proc/uptime)"
$B poweroff -f
echo o > /proc/sysrq-trigger
EOF_STAGE2
chmod +x "$IR/init" "$IR/stage2"
# Uncompressed: the kernel unpacks it faster than it would gunzip, and the
# host spends no CPU compressing.
(cd "$IR" && find . | busybox cpio -o -H newc 2>/dev/null) > "$RUN/initramfs.cpio"

# ------------------------------------------------------------------- boot
KCMD="console=ttyS0 panic=-1 rdinit=/init mitigations=off"
[ "$VM_VERBOSE" = 1 ] || KCMD="$KCMD quiet loglevel=1"
BIOS=()
# qboot: a minimal firmware that boots -kernel directly, skipping SeaBIOS's
# screen-clearing escape codes and a bit of time.
[ -f /usr/share/qemu/qboot.rom ] && BIOS=(-bios qboot.rom)

start_virtiofsd() { # tag source readonly(0|1)
    local sock=$RUN/$1.sock
    rm -f "$sock"
    if [ "$3" = 1 ]; then
        # virtiofsd has no read-only switch. Serve a read-only bind mount made
        # in a private mount namespace: the host root is protected by the
        # kernel, not by guest goodwill, and the mount vanishes with the
        # process (no host mount to clean up).
        mkdir -p "$RUN/$1.ro"
        unshare -m --propagation private sh -c '
            mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" &&
            exec "$3" --socket-path="$4" -o source="$2" -o cache="$5" \
                 -o sandbox=namespace -o log_level=err' \
            sh "$2" "$RUN/$1.ro" "$VIRTIOFSD" "$sock" "$VM_ROOT_CACHE" >>"$RUN/virtiofsd.log" 2>&1 &
    else
        "$VIRTIOFSD" --socket-path="$sock" -o source="$2" -o cache="$VM_WORK_CACHE" \
            -o sandbox=namespace -o log_level=err >>"$RUN/virtiofsd.log" 2>&1 &
    fi
    PIDS+=($!)
    local i=0
    until [ -S "$sock" ]; do
        i=$((i+1)); [ $i -lt 100 ] || die "virtiofsd for $1 did not start: $(cat "$RUN/virtiofsd.log")"
        sleep 0.05
    done
}

QPID=
boot() { # accel
    local accel=$1 cpu
    case $accel in kvm) cpu=host ;; *) cpu=max; accel=tcg,thread=multi ;; esac
    # virtiofsd serves exactly one connection; start fresh ones per boot.
    start_virtiofsd hostroot / 1
    start_virtiofsd work "$WORKDIR" 0
    : > "$RUN/console.log"
    # vhost-user (virtiofsd) needs guest RAM in a shared memfd.
    # q35, not pc: with pc each virtio-pci device costs ~0.4s of ACPI
    # interrupt-link setup under TCG; q35 uses MSI-X. No virtio-rng: with
    # -cpu max the guest crng is ready at once from RDRAND.
    timeout -k 5 "$VM_TIMEOUT" qemu-system-x86_64 \
        -machine q35 -accel "$accel" -cpu "$cpu" -m "$VM_MEM" -smp "$VM_SMP" \
        -object memory-backend-memfd,id=mem,size="${VM_MEM}M",share=on \
        -numa node,memdev=mem \
        "${BIOS[@]}" -nodefaults -no-user-config -nographic -serial stdio -monitor none \
        -no-reboot ${VM_QEMU_EXTRA:-} \
        -kernel "$VMLINUZ" -initrd "$RUN/initramfs.cpio" -append "$KCMD" \
        -chardev socket,id=fs0,path="$RUN/hostroot.sock" \
        -device vhost-user-fs-pci,chardev=fs0,tag=hostroot,queue-size=1024 \
        -chardev socket,id=fs1,path="$RUN/work.sock" \
        -device vhost-user-fs-pci,chardev=fs1,tag=work,queue-size=1024 \
        </dev/null >"$RUN/console.log" 2>&1 &
    QPID=$!
    PIDS+=($QPID)
}

# Wait for the init marker; 0 = seen, 1 = qemu exited, 2 = timed out.
wait_marker() {
    local deadline=$(( $(date +%s) + $1 ))
    while :; do
        grep -q '^VMTEST: init' "$RUN/console.log" && return 0
        kill -0 "$QPID" 2>/dev/null || return 1
        [ "$(date +%s)" -lt "$deadline" ] || return 2
        sleep 0.1
    done
}
# qemu may have exited already (a KVM guest that aborts instead of hanging): not an error.
kill_vm() { kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; }

# A nested KVM guest has been seen to hang in early boot on these machines
# (before the kernel prints anything), so KVM is only trusted once it has
# been seen to reach the initramfs; the verdict is cached per host kernel.
# A stale status file from an earlier run would turn a guest that died
# before running the command into a pass.
rm -f "$WORKDIR/$VM_EXIT_FILE"
KVM_STATUS=$CACHE/kvm-status.$(uname -r)
ACCEL=tcg
if [ "$VM_ACCEL" = kvm ] || { [ "$VM_ACCEL" = auto ] && [ -w /dev/kvm ] &&
        [ "$(cat "$KVM_STATUS" 2>/dev/null)" != broken ]; }; then
    log "trying KVM"
    boot kvm
    probe=0; wait_marker "$VM_KVM_PROBE_TIMEOUT" || probe=$?
    if [ $probe = 0 ]; then
        ACCEL=kvm; mkdir -p "$CACHE"; echo ok > "$KVM_STATUS"
    else
        kill_vm
        # Seen on these machines: a hang in early boot (2), or qemu aborting at once (1).
        why="did not reach init in ${VM_KVM_PROBE_TIMEOUT}s"
        [ $probe = 1 ] && why="exited before init (qemu aborted)"
        [ "$VM_ACCEL" = kvm ] && die "KVM guest $why"
        echo "run-in-vm: KVM guest $why; using TCG from now on (delete $KVM_STATUS to re-probe)" >&2
        mkdir -p "$CACHE"; echo broken > "$KVM_STATUS"
        # Fresh servers: the old ones may still hold the dead connection.
        for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
        PIDS=()
        T0=$(now)
    fi
fi
if [ $ACCEL = tcg ]; then
    log "booting with TCG"
    boot tcg
fi
TBOOT=$T0

# Stream the console as it arrives; filter our protocol lines out unless
# verbose, but keep them in the log for timing.
if [ "$VM_VERBOSE" = 1 ]; then
    tail -s 0.2 -n +1 -F --pid="$QPID" "$RUN/console.log" 2>/dev/null &
else
    tail -s 0.2 -n +1 -F --pid="$QPID" "$RUN/console.log" 2>/dev/null | grep --line-buffered -v -e '^VMTEST: \(init\|root=\|command start\|command exit\)' -e '^\[ *[0-9.]*\] reboot: Power down' &
fi
TAILPID=$!
set +e
wait "$QPID"; qrc=$?
set -e
wait "$TAILPID" 2>/dev/null || true

# Stage-1 lines still carry the serial line's \r (stty runs in stage 2).
tr -d '\r' < "$RUN/console.log" > "$RUN/console.txt"
t_cmd=$(sed -n 's/^VMTEST: command start \([0-9.]*\).*/\1/p' "$RUN/console.txt")
t_end=$(sed -n 's/^VMTEST: command exit [0-9]* \([0-9.]*\).*/\1/p' "$RUN/console.txt")
echo "run-in-vm: accel=$ACCEL root=$(sed -n 's/^VMTEST: root=//p' "$RUN/console.txt") guest-uptime-at-command=${t_cmd:-?}s command=$( [ -n "$t_cmd" ] && [ -n "$t_end" ] && awk -v a="$t_cmd" -v b="$t_end" 'BEGIN{printf "%.2f", b-a}' || echo '?')s total=$(elapsed "$TBOOT")s" >&2

if [ -f "$WORKDIR/$VM_EXIT_FILE" ]; then
    rc=$(cat "$WORKDIR/$VM_EXIT_FILE")
    exit "${rc:-125}"
fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "run-in-vm: timed out after ${VM_TIMEOUT}s" >&2; exit 124
fi
echo "run-in-vm: guest exited (qemu status $qrc) without reporting an exit status" >&2
[ -s "$RUN/virtiofsd.log" ] && sed 's/^/run-in-vm: virtiofsd: /' "$RUN/virtiofsd.log" >&2
exit 125
