#!/usr/bin/env python3
"""daemon/'s layering, checked from its #include "..." lines (TAP).

  http/  may include: http, lib          (knows neither Vm nor Manager)
  pure/  may include: pure, lib          (pure builders)
  core/  may include: core, pure, lib    (never an HTTP header)
  rest/  may include: rest, core, pure, http, lib
  zvmd.c may include anything

"lib" is every header outside daemon/ (lib/, api/, the generated
zvm-config.h). Headers are included by base name (each layer's meson
dependency adds its folder), so a base name must be unique in daemon/.
Also fails on any include cycle between modules. A module is a .c file
and the .h of the same name (core/vm.c + core/vm.h); a private header
X-internal.h is a module of its own; a module depends on another when
any of its files includes one of the other's headers. A cycle of modules
(agent.c includes manager.h, manager.c includes agent.h) is a circle even
when no header includes another in a circle, so it fails too; so does a
cycle among headers.

usage: check-includes.py DAEMON_DIR     check a tree
       check-includes.py --selftest     prove the checks can fail
"""
import os
import re
import sys
import tempfile

ALLOWED = {
    "http": {"http", "lib"},
    "pure": {"pure", "lib"},
    "core": {"core", "pure", "lib"},
    "rest": {"rest", "core", "pure", "http", "lib"},
    "tools": {"tools", "lib"},                    # programs zvmd runs as children
    "": {"rest", "core", "pure", "http", "lib"},   # zvmd.c
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def scan(daemon):
    """{relative path: [included names]} for every .c/.h under daemon."""
    files = {}
    for root, _, names in os.walk(daemon):
        for n in names:
            if n.endswith((".c", ".h")):
                p = os.path.join(root, n)
                with open(p, encoding="utf-8", errors="replace") as f:
                    files[os.path.relpath(p, daemon)] = INCLUDE.findall(f.read())
    return files


def layer_of(rel):
    return rel.split(os.sep)[0] if os.sep in rel else ""


def check(daemon):
    files = scan(daemon)
    problems = []
    headers = {}
    for rel in files:
        if rel.endswith(".h"):
            base = os.path.basename(rel)
            if base in headers:
                problems.append(f"header name {base} is used twice: {headers[base]} and {rel}")
            headers[base] = rel
    edges = {}
    for rel, incs in sorted(files.items()):
        src = layer_of(rel)
        for inc in incs:
            target = headers.get(os.path.basename(inc))
            dst = layer_of(target) if target else "lib"
            if dst not in ALLOWED.get(src, set()):
                problems.append(f"{rel} includes {inc} ({dst or 'zvmd.c'}/): "
                                f"{src or 'zvmd.c'}/ may include only {', '.join(sorted(ALLOWED[src]))}")
            if target:
                edges.setdefault(rel, []).append(target)
    # Cycles among headers (a .c file is never included, so it cannot close one).
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                problems.append("include cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for h in sorted(headers.values()):
        if h not in state:
            visit(h, [])
    problems += module_cycles(files, headers)
    return files, problems


def module_of(rel):
    """core/vm.c and core/vm.h are module core/vm; a private header
    (core/vm-internal.h) is a module of its own, so it must not include its
    public header back (vm.c -> vm-internal.h -> vm.h would be a cycle)."""
    return rel.rsplit(".", 1)[0]


def module_cycles(files, headers):
    """One problem per strongly connected set of modules (Tarjan)."""
    deps = {}
    for rel, incs in files.items():
        src = module_of(rel)
        deps.setdefault(src, set())
        for inc in incs:
            target = headers.get(os.path.basename(inc))
            if target and module_of(target) != src:
                deps[src].add(module_of(target))
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(deps.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comp.sort()
                edges = [f"{a} -> {b}" for a in comp for b in sorted(deps.get(a, ())) if b in comp]
                out.append(f"include cycle between modules {', '.join(comp)}: {'; '.join(edges)}")

    for v in sorted(deps):
        if v not in index:
            strong(v)
    return out


def write(root, rel, text):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)


def selftest():
    cases = [
        ("clean tree", {"core/a.h": '#include "b.h"\n', "core/b.h": '#include "macro.h"\n',
                        "rest/r.c": '#include "a.h"\n#include "s.h"\n', "http/s.h": ""}, False),
        ("header cycle", {"core/a.h": '#include "b.h"\n', "core/b.h": '#include "a.h"\n'}, True),
        ("core includes http", {"core/vm.h": '#include "http-server.h"\n', "http/http-server.h": ""}, True),
        ("core includes rest", {"core/vm.c": '#include "operation.h"\n', "rest/operation.h": ""}, True),
        ("http includes core", {"http/x.c": '#include "vm.h"\n', "core/vm.h": ""}, True),
        ("pure includes core", {"pure/q.c": '#include "vm.h"\n', "core/vm.h": ""}, True),
        ("duplicate header name", {"core/x.h": "", "rest/x.h": ""}, True),
        ("module cycle through .c files", {"core/a.h": "", "core/a.c": '#include "b.h"\n',
                                           "core/b.h": "", "core/b.c": '#include "a.h"\n'}, True),
        ("module cycle of three", {"core/a.c": '#include "b.h"\n', "core/b.c": '#include "c.h"\n',
                                   "core/c.c": '#include "a.h"\n', "core/a.h": "", "core/b.h": "",
                                   "core/c.h": ""}, True),
        ("private header that is a leaf", {"core/vm.h": "", "core/vm-internal.h": "",
                                           "core/vm.c": '#include "vm-internal.h"\n#include "vm.h"\n',
                                           "core/vm-start.c": '#include "vm-internal.h"\n#include "vm.h"\n'},
         False),
        ("private header including its public header", {"core/vm.h": "", "core/vm-internal.h": '#include "vm.h"\n',
                                                        "core/vm.c": '#include "vm-internal.h"\n'}, True),
        ("one-way module use", {"core/a.c": '#include "b.h"\n#include "a.h"\n', "core/a.h": "",
                                "core/b.c": '#include "b.h"\n', "core/b.h": ""}, False),
    ]
    n = 0
    for name, tree, want_fail in cases:
        with tempfile.TemporaryDirectory() as d:
            for rel, text in tree.items():
                write(d, rel, text)
            _, problems = check(d)
        n += 1
        ok = bool(problems) == want_fail
        print(f"{'ok' if ok else 'not ok'} {n} - {name}: {'fails' if problems else 'passes'}"
              + (f" ({problems[0]})" if problems else ""))
        if not ok:
            return 1
    print(f"1..{n}")
    return 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    files, problems = check(sys.argv[1])
    if not files:
        print(f"Bail out! no sources under {sys.argv[1]}")
        return 1
    print("1..2")
    layering = [p for p in problems if not p.startswith("include cycle")]
    cycles = [p for p in problems if p.startswith("include cycle")]
    for i, (name, bad) in enumerate((("layer direction and unique header names", layering),
                                     ("no include cycle", cycles)), 1):
        print(f"{'not ok' if bad else 'ok'} {i} - {name} ({len(files)} files)")
        for p in bad:
            print(f"# {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
