#!/usr/bin/env bash
# The main job on embedded defaults: install dependencies, build zvm and its
# guest artifacts, then start a private zvmd, create and boot the demo
# microVM with `zvm`, print its boot stages and status, shut it down and
# clean up.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${ZVM_BUILD_DIR:-$src/build}
cd "$src"
"$src/scripts/install-deps"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" >/dev/null
"$src/scripts/build-guest" "$build"

root=$(mktemp -d /tmp/zvm-quickstart.XXXXXX)
zvm() { "$build/cli/zvm" --root "$root" "$@"; }
cleanup() {
        [ -n "${zvmd_pid:-}" ] && kill "$zvmd_pid" 2>/dev/null && wait "$zvmd_pid" 2>/dev/null
        # Any VM still up after zvmd left is stopped by pid.
        for s in "$root"/run/zvm/vms/*/state.json; do
                [ -f "$s" ] && kill -9 $(grep -o '"[a-z_]*pid": *[0-9]*' "$s" | grep -o '[0-9]*$') 2>/dev/null
        done
        rm -rf "$root"
}
trap cleanup EXIT

echo "== zvmd (private instance under $root)"
"$build/daemon/zvmd" --root "$root" >"$root.zvmd.log" 2>&1 &
zvmd_pid=$!
for _ in $(seq 1 300); do
        zvm host >/dev/null 2>&1 && break
        kill -0 "$zvmd_pid" 2>/dev/null || { cat "$root.zvmd.log"; exit 1; }
        sleep 0.1
done
zvm host

echo "== zvm create demo; zvm start demo"
vmid=$(zvm create demo --memory 128)
echo "created VM $vmid"
start=$(date +%s.%N)
zvm start demo
for _ in $(seq 1 600); do
        zvm logs demo 2>/dev/null | grep -q 'zvm-tiny: ready' && break
        sleep 0.1
done
end=$(date +%s.%N)
echo "== boot stages (serial console)"
zvm logs demo | grep -E '^zvm-(initrd|tiny):' || { zvm logs demo | tail -30; exit 1; }
printf 'demo: zvm start → guest ready in %.2f s wall\n' "$(echo "$end - $start" | bc)"
echo "== zvm status demo"
zvm status demo
echo "== zvm shutdown demo; zvm delete demo"
zvm shutdown demo
zvm delete demo
rm -f "$root.zvmd.log"
