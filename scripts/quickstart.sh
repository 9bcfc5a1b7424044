#!/usr/bin/env bash
# The main job on embedded defaults: install dependencies, build zvm and its
# guest artifacts, boot the demo microVM and print its stage timings.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${ZVM_BUILD_DIR:-$src/build}
cd "$src"
"$src/scripts/install-deps"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" >/dev/null
"$src/scripts/build-guest" "$build"
ZVM_BUILD_DIR=$build "$src/scripts/demo-boot"
