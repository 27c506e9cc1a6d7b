#!/usr/bin/env python3
"""Write cascade's inputs for a Timeloop parity case from its golden.json: the same problem
(a .ein cascade), the same architecture (an architecture TOML) and the same mapping (a
mapping TOML), under CASE_DIR/cascade/. Deterministic; needs only the standard library.

Usage: to_cascade.py CASE_DIR [GOLDEN_JSON OUT_SUBDIR]

Conversions (Timeloop v3 → cascade):
* a storage level's instances per parent instance become its `fanout` ([meshX, meshY] ratio);
  the MAC instances per innermost-level instance the compute unit's fanout;
* Timeloop's spatial loops "targeting" a level distribute that level's children: they become
  loops over the child's fanout (X → dim 0, Y → dim 1);
* a level's temporal loops keep their order (outermost first); levels above the fusion level
  (the first level below the root, or the root itself in a one-level design) are shared,
  the others belong to the MAC unit;
* keep/bypass directives become `[[groups.keep]]` bypass entries;
* capacities (words × word bits), bandwidths (words per cycle at the case's clock) and
  energies (per vector access of `width` bits) are copied.
"""
import json
import re
import sys
from pathlib import Path


def parse_einsum(e):
    """'O[k,p] = I[c,p+r] * W[c,k,r]' -> ('O', ['k','p'], [('I', ['c','p+r']), ('W', [...])])."""
    lhs, rhs = [x.strip() for x in e.split("=", 1)]
    m = re.match(r"(\w+)\[(.*)\]", lhs)
    out = (m.group(1), [x.strip() for x in m.group(2).split(",")])
    ins = [(n, [x.strip() for x in idx.split(",")]) for n, idx in re.findall(r"(\w+)\[([^\]]*)\]", rhs)]
    return out, ins


def ein_text(g):
    (on, oidx), ins = parse_einsum(g["problem"]["einsum"])
    decls = []
    window = 0
    for n, idx in ins:
        dims = []
        for x in idx:
            if re.fullmatch(r"[a-z][a-z0-9]*", x):
                dims.append(x.upper())
            else:
                window += 1
                dims.append(f"Z{window}")
        decls.append(f"{n}[{','.join(dims)}]")
    rhs = " * ".join(f"{n}[{','.join(idx)}]" for n, idx in ins)
    return (
        f"# {g['case']}: the problem given to {g['tool']} (tests/parity/{g['case']}/golden.json).\n"
        f"# Z ranks are input windows (derived from the affine indices).\n"
        f"input {', '.join(decls)}\n"
        f"output {on}[{','.join(oidx)}] = {rhs}\n"
    )


def fmt(x):
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


def arch_toml(g):
    a = g["arch"]
    clock = float(a["clock_hz"])
    levels = a["levels"]
    bits = {l["word_bits"] for l in levels}
    assert len(bits) == 1, "one word size per design"
    word = bits.pop()
    kind = {"DRAM": "dram", "SRAM": "sram", "regfile": "regfile", "smartbuffer_SRAM": "sram",
            "smartbuffer_RF": "regfile"}
    out = [
        f'name = "{g["case"]}"',
        f'description = "{g["case"]}: the design given to {g["tool"]}"',
        f'source = "tests/parity/{g["case"]}/golden.json (converted by tests/parity/tools/to_cascade.py)"',
        f'clock = "{clock / 1e9:g} GHz"',
        "",
        "[precision]",
        f"default = {word}",
    ]
    parent_mesh = [1, 1]
    for i, l in enumerate(levels):
        mesh = l["mesh"]
        fan = [mesh[0] // parent_mesh[0], mesh[1] // parent_mesh[1]]
        out += ["", "[[levels]]", f'name = "{l["name"]}"', f'kind = "{kind.get(l["class"], "sram")}"']
        if i > 0 and fan != [1, 1]:
            out.append(f"fanout = [{fan[0]}, {fan[1]}]")
        if l.get("capacity_words"):
            out.append(f'capacity = "{l["capacity_words"] * word // 8} B"')
        out.append(f"width_bits = {l['width_bits']}")
        for key, field in (("read_bw_words_per_cycle", "read_bandwidth"),
                           ("write_bw_words_per_cycle", "write_bandwidth")):
            if l.get(key):
                out.append(f'{field} = "{fmt(l[key] * word / 8 * clock / 1e9)} GB/s"')
        if not l.get("multicast", True):
            out.append("multicast = false")
        if not l.get("spatial_reduction", True):
            out.append("spatial_reduction = false")
        e = l["energy_pj"]
        out += ["[levels.energy]", f'read = "{fmt(e["read"])} pJ"', f'write = "{fmt(e["write"])} pJ"']
        parent_mesh = mesh
    mac = a["mac"]
    inner = levels[-1]["instances"]
    out += ["", "[[compute]]", 'name = "mac"', f'level = "{levels[-1]["name"]}"']
    if mac["instances"] // inner > 1:
        out.append(f"fanout = [{mac['instances'] // inner}]")
    out += ["[compute.ops]", f'mac = {{ cycles = 1, energy = "{fmt(mac["energy_pj"])} pJ" }}']
    return "\n".join(out) + "\n"


def mapping_toml(g, case_rel):
    (on, _), ins = parse_einsum(g["problem"]["einsum"])
    levels = [l["name"] for l in g["arch"]["levels"]]
    fuse = levels[1] if len(levels) > 1 else levels[0]
    fuse_at = levels.index(fuse)
    word = g["arch"]["levels"][0]["word_bits"]
    lines = [
        f'cascade = "{case_rel}/problem.ein"',
        f'arch = "{case_rel}/arch.toml"',
        f"dtype_bytes = {max(1, word // 8)}",
        "",
        "[extents]",
    ]
    for r, x in sorted(g["problem"]["extents"].items()):
        lines.append(f"{r} = {x}")
    lines += ["", "[[groups]]", f'einsums = ["{on}"]', f'fuse = "{fuse}"', f'bindings = {{ {on} = "mac" }}']
    mlevels = {m["level"]: m for m in g["mapping"]["levels"]}
    loops = []
    for i, name in enumerate(levels):
        # Spatial loops distributing this level come from its parent's spatial directives.
        if i > 0:
            for r, f, d in mlevels.get(levels[i - 1], {}).get("spatial", []):
                if f > 1:
                    loops.append((name, None, 0 if d == "X" else 1, i >= fuse_at, r, f))
        for r, f in mlevels.get(name, {}).get("temporal", []):
            if f > 1:
                loops.append((name, None, None, i >= fuse_at, r, f))
    for r, f, d in mlevels.get(levels[-1], {}).get("spatial", []):
        if f > 1:
            loops.append((None, "mac", 0 if d == "X" else 1, True, r, f))
    for level, unit, dim, own, r, f in loops:
        lines += ["", "[[groups.loops]]"]
        lines.append(f'level = "{level}"' if level else f'unit = "{unit}"')
        if dim is not None:
            lines.append(f"dim = {dim}")
        if own and level:
            lines.append('owner = "mac"')
        lines += [f'rank = "{r}"', f"factor = {f}"]
    for m in g["mapping"]["levels"]:
        for t in m.get("bypass", []):
            lines += ["", "[[groups.keep]]", f'tensor = "{t}"', f'level = "{m["level"]}"', "bypass = true"]
    return "\n".join(lines) + "\n"


def main():
    case = Path(sys.argv[1])
    golden = Path(sys.argv[2]) if len(sys.argv) > 2 else case / "golden.json"
    sub = sys.argv[3] if len(sys.argv) > 3 else "cascade"
    g = json.loads(golden.read_text())
    out = case / sub
    out.mkdir(exist_ok=True)
    rel = f"tests/parity/{case.name}/{sub}"
    (out / "problem.ein").write_text(ein_text(g))
    (out / "arch.toml").write_text(arch_toml(g))
    (out / "mapping.toml").write_text(mapping_toml(g, rel))


if __name__ == "__main__":
    main()
