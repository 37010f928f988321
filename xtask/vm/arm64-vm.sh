#!/usr/bin/env bash
# arm64-vm.sh <kettlewatch-aarch64> <capture> <outdir>
#
# Boots Debian 12's arm64 Linux 6.1 (the -cloud-arm64 kernel package) under
# qemu-system-aarch64 with an initramfs that holds Debian's arm64 static busybox,
# the arm64 glibc the cross-built sensor links against, the sensor and one
# capture, and inside:
#   1. `kettlewatch replay` of the capture: the XDP and egress programs load and
#      pass 6.1's verifier on arm64, every frame runs through BPF_PROG_TEST_RUN;
#      its EVE lines are written to <outdir>/eve.json for the host to compare
#      with the x86-64 replay of the same capture;
#   2. `kettlewatch run --iface lo`: XDP attaches (generic, through a link) and the
#      egress program attaches (before 6.6: the netlink filter on a clsact
#      qdisc), traffic on lo is seen, SIGINT detaches; then `tc filter show` says
#      what was left on the interface.
# The guest's log is <outdir>/console.log; exit status: 0 when both steps passed.
#
# Why not the host root as run-in-vm.sh does: the host's binaries are x86-64. Why
# an initramfs and no disk: nothing to partition or clean up, and everything the
# guest needs comes from three Debian packages fetched with private apt lists
# (the host's apt configuration and architectures are not touched).
#
# Tunables: VM_TIMEOUT seconds for the whole run (1500), VM_MEM (1024), VM_SMP (2),
# RUN_SECONDS the live attach's duration (20).
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 <kettlewatch-aarch64> <capture> <outdir>" >&2; exit 2; }
BIN=$(realpath "$1"); CAPTURE=$(realpath "$2"); OUT=$3
VM_TIMEOUT=${VM_TIMEOUT:-1500}
VM_MEM=${VM_MEM:-1024}
VM_SMP=${VM_SMP:-2}
RUN_SECONDS=${RUN_SECONDS:-20}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kettlewatch/vm-arm64
die() { echo "arm64-vm: error: $*" >&2; exit 125; }

[ "$(id -u)" = 0 ] || die "must run as root (apt downloads into the cache as root)"
need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
    echo "arm64-vm: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
for t in gzip dpkg-deb apt-get; do command -v $t >/dev/null || die "$t is missing"; done

# ------------------------------------------------ arm64 packages, private apt lists
mkdir -p "$CACHE/lists/partial" "$CACHE/cache/archives/partial" "$CACHE/debs"
touch "$CACHE/status"
APT=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
     -o "Dir::State::Lists=$CACHE/lists" -o "Dir::Cache=$CACHE/cache"
     -o "Dir::State::status=$CACHE/status" -o APT::Sandbox::User=root)
if [ -z "$(find "$CACHE/lists" -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get "${APT[@]}" -qq update >&2
fi
KPKG=$(apt-cache "${APT[@]}" search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-arm64-unsigned$' \
       | awk '{print $1}' | sort -V | tail -1)
[ -n "$KPKG" ] || die "no linux-image-6.1.0-*-cloud-arm64-unsigned in Debian's lists"
(cd "$CACHE/debs" && for p in "$KPKG" busybox-static libc6 libgcc-s1; do
    ls ./"${p}"_*_arm64.deb >/dev/null 2>&1 || apt-get "${APT[@]}" -qq download "$p" >&2
done)
KVER=${KPKG#linux-image-}; KVER=${KVER%-unsigned}
echo "arm64-vm: kernel $KPKG" >&2

# ------------------------------------------------------------------- initramfs
WORK=$(mktemp -d /tmp/kw-arm64.XXXXXX)
QEMU_PID=
cleanup() {
    [ -n "$QEMU_PID" ] && kill -9 "$QEMU_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
ROOT=$WORK/root
mkdir -p "$ROOT" "$WORK/kernel"
dpkg-deb -x "$CACHE/debs/${KPKG}"_*_arm64.deb "$WORK/kernel"
for p in busybox-static libc6 libgcc-s1; do
    dpkg-deb -x "$(ls "$CACHE/debs/${p}"_*_arm64.deb | head -1)" "$ROOT"
done
# Only the modules the live step needs: the clsact qdisc and the tc BPF classifier.
MODS=$WORK/kernel/lib/modules/$KVER
mkdir -p "$ROOT/modules"
for m in sch_ingress cls_bpf; do
    f=$(find "$MODS" -name "$m.ko*" | head -1)
    [ -n "$f" ] && cp "$f" "$ROOT/modules/"
done
mkdir -p "$ROOT"/{proc,sys,dev,tmp,run}
cp "$BIN" "$ROOT/kettlewatch"
cp "$CAPTURE" "$ROOT/capture.pcap"
cat > "$ROOT/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp; mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
for m in /modules/*; do insmod "\$m" 2>/dev/null; done
ip link set lo up
echo "KW-UNAME \$(uname -srm)"
echo KW-REPLAY-BEGIN
/kettlewatch replay --state-dir /tmp/replay-state /capture.pcap > /tmp/eve.json 2>/tmp/replay.log
rc=\$?
while IFS= read -r l; do echo "KW-EVE \$l"; done < /tmp/eve.json
sed 's/^/KW-LOG /' /tmp/replay.log
echo "KW-REPLAY-END rc=\$rc"
echo KW-RUN-BEGIN
/kettlewatch run --iface lo --state-dir /tmp/run-state --output /tmp/live.json 2>/tmp/run.log &
pid=\$!
sleep 5
ping -c 5 -i 0.5 127.0.0.1 >/dev/null 2>&1
sleep $RUN_SECONDS
kill -INT \$pid; wait \$pid; rrc=\$?
sed 's/^/KW-LOG /' /tmp/run.log
echo "KW-LIVE-LINES \$(wc -l < /tmp/live.json)"
echo "KW-LIVE-FLOWS \$(grep -c '\"event_type\":\"flow\"' /tmp/live.json)"
echo "KW-LEFT-ON-LO \$(ip link show lo | grep -c xdp) xdp, \$(tc filter show dev lo egress 2>/dev/null | grep -c bpf) tc"
echo "KW-RUN-END rc=\$rrc"
poweroff -f
EOF
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initramfs.gz"

# -------------------------------------------------------------------------- boot
mkdir -p "$OUT"
CONSOLE=$OUT/console.log
echo "arm64-vm: booting under qemu-system-aarch64 (TCG), at most ${VM_TIMEOUT}s" >&2
timeout -s KILL "$VM_TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a57 -m "$VM_MEM" \
    -smp "$VM_SMP" -nographic -no-reboot \
    -kernel "$WORK/kernel/boot/vmlinuz-$KVER" -initrd "$WORK/initramfs.gz" \
    -append "console=ttyAMA0 rdinit=/init panic=-1 quiet loglevel=3" \
    > "$CONSOLE" 2>&1 < /dev/null &
QEMU_PID=$!
wait "$QEMU_PID" || true
QEMU_PID=
tr -d '\r' < "$CONSOLE" > "$CONSOLE.tmp" && mv "$CONSOLE.tmp" "$CONSOLE"
sed -n 's/^KW-EVE //p' "$CONSOLE" > "$OUT/eve.json"
grep -E '^KW-(UNAME|REPLAY-END|LIVE|LEFT|RUN-END)' "$CONSOLE" >&2 || true
grep -q '^KW-REPLAY-END rc=0$' "$CONSOLE" || die "the replay in the guest failed: see $CONSOLE"
grep -q '^KW-RUN-END rc=0$' "$CONSOLE" || die "the live run in the guest failed: see $CONSOLE"
flows=$(sed -n 's/^KW-LIVE-FLOWS //p' "$CONSOLE")
[ "${flows:-0}" -gt 0 ] || die "the live run saw no flow on lo: see $CONSOLE"
grep -q '^KW-LEFT-ON-LO 0 xdp, 0 tc$' "$CONSOLE" || die "the stopped sensor left a program on lo: see $CONSOLE"
echo "arm64-vm: replay and live attach passed on $(sed -n 's/^KW-UNAME //p' "$CONSOLE")" >&2
