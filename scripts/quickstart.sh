#!/usr/bin/env bash
# The main job on embedded defaults: install dependencies, build zvm and its
# guest artifacts, then start a private zvmd and
#  1. create and boot the tiny demo microVM, print its boot stages and status;
#  2. build the llm template (Debian sid + llama.cpp's llama-server; cached by
#     content), generate a small random-weight model into the model store,
#     boot an llm microVM serving it, and ask it through zvmd's
#     OpenAI-compatible API (curl) and `zvm chat`;
# then shut everything down and clean up. Every wait is bounded.
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

# Template builds share the content cache of the kernel build and the tests
# (~/.cache/zvm): the llm template is built once per content, not per run.
export ZVM_CACHE_DIR=${ZVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zvm}
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

echo "== zvm template build llm --profile llm (cached by content after the first time)"
zvm template build llm --profile llm
echo "== zvm model generate tiny --shape tiny (random weights, a real vocabulary layout)"
zvm model generate tiny --shape tiny
zvm model list
echo "== zvm create chat --template llm --set model=tiny; zvm start chat"
zvm create chat --template llm --memory 1024 --cores 2 --no-ssh-keys --set model=tiny \
        --set inference=ctx=512 >/dev/null
start=$(date +%s.%N)
zvm start chat
state=
for _ in $(seq 1 900); do   # at most 15 minutes (TCG on a loaded host)
        state=$(curl -s --unix-socket "$root/run/zvm/api.sock" http://zvm/api/v1/vms/chat/status |
                jq -r '.inference.state // empty')
        [ "$state" = ready ] && break
        [ "$state" = failed ] && break
        sleep 1
done
end=$(date +%s.%N)
[ "$state" = ready ] || { echo "llama-server in VM chat is not ready (state: ${state:-none})"; zvm status chat; exit 1; }
printf 'chat: zvm start → llama-server ready in %.1f s wall\n' "$(echo "$end - $start" | bc)"
echo "== POST /v1/chat/completions (the OpenAI API, on zvmd's socket)"
curl -sf --unix-socket "$root/run/zvm/api.sock" http://zvm/v1/chat/completions \
        -H 'Content-Type: application/json' \
        -d '{"model":"tiny","messages":[{"role":"user","content":"Hello, microVM"}],"max_tokens":16}' |
        jq '{model, finish_reason: .choices[0].finish_reason, usage}'
echo "== zvm chat tiny -p ... (streamed; a random model answers in random tokens)"
zvm chat tiny -p "Hello again" --max-tokens 16
echo
echo "== zvm stop chat; zvm delete chat"
zvm stop chat
zvm delete chat
rm -f "$root.zvmd.log"
