"""Registers, spills, shared memory and hot-loop instructions per element of every generated CUDA kernel,
read from the sm_90 SASS: a speed budget that needs nvcc and cuobjdump, not a GPU (issue 15).

    python benchmarks/sass_table.py [--json FILE] [--only cross_entropy,nll]

Each ``codegen/cuda/*.cu`` is compiled to a cubin with the flags of ``tests/test_cuda_compile.py``
(``-arch=sm_90 -O3 -std=c++17``, torch's ``__CUDA_NO_HALF_*`` defines, ``--expt-relaxed-constexpr``, the
runtime's include folder; two nvcc at a time, cubins cached in the temp folder). ``cuobjdump -res-usage``
gives REG, STACK, LOCAL and (static) SHARED bytes, ``cuobjdump -sass`` the instructions; per kernel
function (demangled with c++filt: module, kernel, case, dtype) also the STL/LDL (spill) instructions.

HOT LOOPS OF A ROW KERNEL (rows_kernel<M, T, Case>, rows.cuh). A loop is a backward BRA (target below
it; body = target .. branch; no EXIT/RET inside; innermost only). Per CTA a long row runs the cp.async
copy of its share into shared memory, then three passes: the row maximum, the sums (which keep each
element's exp(z - m) in shared memory when the output reuses it) and the output. Each pass is compiled
once per path: cached (the share in shared memory: LDS.128, no 16-byte row load from global memory) and
streamed (a row too long for the cluster: LDG.E.128 of the row, not .CONSTANT), and the sums and the
output once more when the exponentials are kept (the sums store them: STS.128; the output reads them back
and computes none). Roles, from what a body contains: copy = LDGSTS; stage = STS.128 and no row load (the
class vector staged element by element, or ones); output = STG.E.128 and a load or FP instructions; sums =
a row load, no STG.E.128, and MUFU.EX2, FADD or FFMA; max = a row load, FMNMX, none of those; zero = STG.E.128
alone (an ignored row's fill); merge = no 16-byte access (warp, CTA and cluster merges). Each pass loops
over its packs four at a time, then one at a time (each_pack): of the two loops of a pass and path the
four-pack one is where a long row spends its time. Its packs per iteration = its marker count over the
one-pack loop's (markers: STG.E.128 for the output, LDS.128 cached, row LDG.E.128 streamed), elements
per iteration = packs x VEC (8 bf16/fp16, 4 fp32 values per 16-byte pack); '?' when a pass has not
exactly one pair of loops on a path, '-' when the kernel has no such pass.

COUNTING METHOD (issue 15's): instructions per element (ipe) = sum over the passes of (instruction count
of the hot loop's body, branch target to backward branch inclusive) / (elements per iteration), on the
cached path (the kept variants where the case keeps its exponentials: what a row that fits in the
cluster's shared memory runs); MUFU.EX2 per element likewise; "ipe streamed" the same sum over the
streamed loops. Static: every instruction in the body counts once, predicated-off ones included; a
CALL's callee is not counted (+call). The copy loop (cp.async) is not counted, as in the issue. Helper
kernels (prepare, scale_rows): resources only. Elementwise kernels (grid-stride loop): per loop version
the nvcc made (split on output pointers, unrolled), elements per iteration = scalar loads / kInputs,
ipe shown as the range over the versions.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from symxent.runtime.cuda import include_dir  # noqa: E402

SOURCES = sorted((ROOT / "codegen" / "cuda").glob("*.cu"))
#: as tests/test_cuda_compile.py (torch's COMMON_NVCC_FLAGS, the runtime's include folder)
FLAGS = ["-arch=sm_90", "-O3", "-std=c++17", "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
         "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__", "--expt-relaxed-constexpr",
         f"-I{include_dir()}"]
VEC = {"bf16": 8, "fp16": 8, "fp32": 4}
DTYPES = {"__nv_bfloat16": "bf16", "__half": "fp16", "float": "fp32"}
INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
BRANCH = re.compile(r"^(@!?P\w+\s+)?BRA(?:\.U)?\s+(!?U?P\w+,\s*)?0x([0-9a-f]+)$")


def tool(name):
    """Path of a CUDA binary: PATH, CUDA_HOME/bin, /usr/local/cuda/bin, then the triton wheel's copy."""
    places = [shutil.which(name)] + [str(Path(h) / "bin" / name) for h in
                                     (os.environ.get("CUDA_HOME"), "/usr/local/cuda") if h]
    try:
        import triton
        places.append(str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name))
    except ImportError:
        pass
    found = next((p for p in places if p and Path(p).is_file() and os.access(p, os.X_OK)), None)
    if found is None:
        sys.exit(f"{name} not found (PATH, CUDA_HOME, or the triton wheel)")
    return found


def compile_cubin(source: Path, folder: Path) -> Path:
    """``nvcc FLAGS -cubin`` of one source into ``folder`` (reused while source, headers and flags agree)."""
    headers = "".join(p.read_text() for p in sorted(Path(include_dir()).rglob("*.*h")))
    version = subprocess.run([tool("nvcc"), "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([source.read_text(), headers, version, *FLAGS]).encode()).hexdigest()[:16]
    cubin = folder / f"{source.stem}-{key}.cubin"
    if not cubin.exists():
        done = subprocess.run([tool("nvcc"), *FLAGS, "-cubin", "-o", str(cubin), str(source)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"nvcc failed on {source.name}:\n{done.stderr[-3000:]}")
    return cubin


def resource_usage(cubin: Path) -> dict:
    """``{mangled name: {REG, STACK, SHARED, LOCAL}}`` from ``cuobjdump -res-usage``."""
    text = subprocess.run([tool("cuobjdump"), "-res-usage", str(cubin)], capture_output=True, text=True).stdout
    usage = {}
    for name, fields in re.findall(r"Function (\S+):\s*\n\s*(REG:.*)", text):
        values = dict(re.findall(r"(\w+(?:\[\d+\])?):(\d+)", fields))
        usage[name] = {k: int(values[k]) for k in ("REG", "STACK", "SHARED", "LOCAL")}
    return usage


def sass(cubin: Path) -> dict:
    """``{mangled name: [(address, instruction text without ';'), ...]}`` from ``cuobjdump -sass``."""
    text = subprocess.run([tool("cuobjdump"), "-sass", str(cubin)], capture_output=True, text=True).stdout
    functions = {}
    for chunk in text.split("Function : ")[1:]:
        name, body = chunk.split("\n", 1)
        functions[name.strip()] = [(int(a, 16), t) for a, t in INSTRUCTION.findall(body)]
    return functions


def demangle(names) -> dict:
    """``{mangled: demangled}`` through c++filt (the mangled name itself when there is none)."""
    filt = shutil.which("c++filt") or shutil.which("cu++filt")
    if filt is None:
        return {n: n for n in names}
    out = subprocess.run([filt], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out))


def describe(demangled: str) -> dict:
    """Kernel kind (rows / elementwise / prepare / scale_rows), case index and dtype of a demangled name."""
    m = re.search(r"(rows_kernel|elementwise_kernel|prepare_kernel|scale_rows_kernel)<([^()]*)>\(", demangled)
    if m is None:
        return {"kernel": "?", "case": None, "dtype": "?"}
    args = [a.strip() for a in m.group(2).split(",")]
    dtype = next((DTYPES[a] for a in args if a in DTYPES), "?")
    case = next((int(c) for c in re.findall(r"::Case(\d+)$", args[-1])), None)
    return {"kernel": m.group(1).replace("_kernel", ""), "case": case, "dtype": dtype}


def opcode(text: str) -> str:
    """The opcode of an instruction, without its predicate (``@!P1 LDG.E.128 ...`` -> ``LDG.E.128``)."""
    parts = text.split()
    return parts[1] if parts[0].startswith("@") else parts[0]


def branch(text: str):
    """``(target address, conditional?)`` of a BRA (not BRA.DIV, BRX, CALL), else None."""
    m = BRANCH.match(text)
    return (int(m.group(3), 16), bool(m.group(1) or m.group(2))) if m else None


def loops(code: list) -> list:
    """Innermost loops as ``(first index, last index)``: a backward BRA with no EXIT/RET in its body."""
    index = {address: i for i, (address, _) in enumerate(code)}
    found = []
    for i, (address, text) in enumerate(code):
        jump = branch(text)
        if jump and jump[0] < address and jump[0] in index:
            first = index[jump[0]]
            if not any(opcode(t) in ("EXIT", "RET") for _, t in code[first:i]):
                found.append((first, i))
    return [(a, b) for a, b in found if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in found)]


def body_counts(code: list, first: int, last: int) -> dict:
    """What a loop body holds: instructions, MUFU.EX2, 16-byte loads/stores, LDGSTS, scalar loads, calls,
    FP instructions, spills, and ``smem``: the instructions left when the conditional forward branches
    over a row LDG.E.128 (and no LDS.128), the global-load alternative of a pack, are taken."""
    body = code[first:last + 1]
    ops = [opcode(t) for _, t in body]
    row_ldg = [o.startswith("LDG.E.128") and ".CONSTANT" not in o for o in ops]
    position = {address: j for j, (address, _) in enumerate(body)}
    skipped = set()
    for i, (_, text) in enumerate(body[:-1]):
        jump = branch(text)
        if jump and jump[1] and position.get(jump[0], -1) > i:
            region = range(i + 1, position[jump[0]])
            if any(row_ldg[j] for j in region) and "LDS.128" not in (ops[j] for j in region):
                skipped.update(region)
    return {"instructions": len(ops), "smem": len(ops) - len(skipped),
            "ex2": ops.count("MUFU.EX2"), "lds128": ops.count("LDS.128"), "ldg128_row": sum(row_ldg),
            "stg128": sum(o.startswith("STG.E.128") for o in ops), "ldgsts": sum(o.startswith("LDGSTS") for o in ops),
            "ldg_scalar": sum(o.startswith("LDG") and ".128" not in o and ".64" not in o for o in ops),
            "calls": sum(o.startswith("CALL") for o in ops), "float_ops": sum(o[:1] == "F" for o in ops),
            "fmnmx": sum(o.startswith("FMNMX") for o in ops), "fadd": sum(o.startswith("FADD") for o in ops),
            "ffma": sum(o.startswith("FFMA") for o in ops),
            "sts128": ops.count("STS.128"),
            "spills": sum(o.startswith(("STL", "LDL")) for o in ops)}


def role(c: dict) -> str:
    """The role of a row-kernel loop from its body counts (module docstring)."""
    row_load = c["lds128"] or c["ldg128_row"]
    if c["ldgsts"]:
        return "copy"
    if c["stg128"]:
        return "output" if (row_load or c["float_ops"]) else "zero"
    if c["sts128"] and not row_load:
        return "stage"
    if row_load:
        return "max" if c["fmnmx"] and not (c["ex2"] or c["fadd"] or c["ffma"]) else "sums"
    return "merge" if not c["ldg_scalar"] else "?"


#: the passes of a row kernel, in order
PASSES = ("max", "sums", "output")


def _path(c: dict) -> str:
    return "streamed" if c["ldg128_row"] else "cached"


def _hot(found: list, marker, vec: int) -> dict:
    """The four-pack loop of one pass on one path (``found``: its loops) with its elements per iteration."""
    if len(found) != 2:
        return {**(max(found, key=lambda l: l["instructions"]) if found else {}), "elements": None}
    one, four = sorted(found, key=marker)
    packs = marker(four) / marker(one) if marker(one) else None
    return {**four, "elements": int(packs * vec) if packs and packs == int(packs) else None}


def hot_loops(code: list, kind: str, dtype: str, inputs: int) -> dict:
    """Per pass of a row kernel (max, sums, output: the cached path's hot loop, its kept variant where there is
    one; and ``streamed_*``), or of an elementwise kernel (``loop``): elements per iteration and instructions
    / MUFU.EX2 per element. Elementwise kernels get the range (lowest, highest) over their loop versions."""
    candidates = {}
    for first, last in loops(code):
        c = body_counts(code, first, last)
        loop = {"start": hex(code[first][0]), "end": hex(code[last][0]), **c}
        if kind == "elementwise":
            each = c["ldg_scalar"] // inputs if inputs and not c["ldg128_row"] and c["ldg_scalar"] % inputs == 0 else 0
            candidates.setdefault("loop", []).append({**loop, "elements": each or None})
        else:
            candidates.setdefault(role(c), []).append(loop)
    rate = lambda l, k: round(l[k] / l["elements"], 2) if l.get("elements") else None
    result = {}
    if kind == "elementwise":
        found = candidates.get("loop", [])
        known = [l for l in found if l["elements"]]
        whole = found and len(known) == len(found)
        spans = {k: [min(rate(l, k) for l in known), max(rate(l, k) for l in known)] if whole else None
                 for k in ("instructions", "ex2")}
        if found:
            result["loop"] = {"versions": len(found), "elements": [min(l["elements"] or 0 for l in found),
                                                                   max(l["elements"] or 0 for l in found)],
                              "ipe": spans["instructions"], "ex2_pe": spans["ex2"],
                              "calls": sum(l["calls"] for l in found), "all_loops": found}
        return result
    vec = VEC.get(dtype, 0)
    for name in PASSES:
        found = candidates.get(name, [])
        for path in ("cached", "streamed"):
            mine = [l for l in found if _path(l) == path]
            if path == "cached" and name == "sums" and any(l["sts128"] for l in mine):
                mine = [l for l in mine if l["sts128"]]  # the exponentials kept: what the output pass reads back
            if path == "cached" and name == "output" and len(mine) > 2:
                fewest = min(l["ex2"] for l in mine)  # the kept variant computes no exponential of its own
                mine = [l for l in mine if l["ex2"] == fewest]
            if not mine:
                continue
            marker = (lambda l: l["stg128"]) if name == "output" else \
                     (lambda l: l["lds128"]) if path == "cached" else (lambda l: l["ldg128_row"])
            hot = _hot(mine, marker, vec)
            key = name if path == "cached" else f"streamed_{name}"
            result[key] = {**hot, "ipe": rate(hot, "instructions"), "ex2_pe": rate(hot, "ex2"), "all_loops": mine}
    return result


def summarize(cubin: Path, source: Path) -> list:
    """One record per kernel function of a cubin: names, resources, spill instructions, hot-loop metrics."""
    usage, code = resource_usage(cubin), sass(cubin)
    names = demangle(list(code))
    text = source.read_text()
    cases = dict((int(i), w) for i, w in re.findall(r"^// case (\d+) \((.*?)\):", text, re.M))
    inputs = int(next(iter(re.findall(r"constexpr int kInputs = (\d+)", text)), 0))
    records = []
    for mangled, instrs in code.items():
        info = describe(names[mangled])
        spills = sum(opcode(t).startswith(("STL", "LDL")) for _, t in instrs)
        looped = info["kernel"] in ("rows", "elementwise")
        hot = hot_loops(instrs, info["kernel"], info["dtype"], inputs) if looped else {}
        total = {}
        if info["kernel"] == "rows":
            for key, prefix in (("ipe", ""), ("ex2_pe", ""), ("ipe_streamed", "streamed_")):
                values = [hot[prefix + p]["ex2_pe" if key == "ex2_pe" else "ipe"] for p in PASSES if prefix + p in hot]
                total[key] = round(sum(values), 2) if values and None not in values and prefix + "output" in hot else None
        elif "loop" in hot:
            total = {key: hot["loop"][key] for key in ("ipe", "ex2_pe")}
        records.append({"module": source.stem, **info, "when": cases.get(info["case"]), "mangled": mangled,
                        "demangled": names[mangled], **usage.get(mangled, {}), "spill_instructions": spills,
                        "instructions": len(instrs), "hot": hot, **total})
    order = {"rows": 0, "elementwise": 0, "prepare": 1, "scale_rows": 2}
    return sorted(records, key=lambda r: (order.get(r["kernel"], 3), r["case"] or 0, r["dtype"]))


def cell(value) -> str:
    """A table cell: '?' for unknown, 'lo-hi' for a range."""
    if isinstance(value, list):
        return str(value[0]) if value[0] == value[1] else f"{value[0]}-{value[1]}"
    return "?" if value is None else str(value)


def pass_cell(record: dict, name: str) -> str:
    """``ipe (elements/iteration)`` of one pass, '-' when the kernel has no such loop."""
    loop = record["hot"].get(name)
    if loop is None:
        return "-"
    call = " +call" if loop["calls"] else ""
    versions = f", {loop['versions']} versions" if loop.get("versions", 1) > 1 else ""
    return f"{cell(loop['ipe'])} ({cell(loop['elements'])}/it{versions}){call}"


def markdown(records: list) -> str:
    """The table: one row per kernel function."""
    head = ["module", "kernel", "case", "dtype", "REG", "LOCAL/STACK B", "STL+LDL", "SHARED B",
            "max ipe", "sums ipe", "output ipe", "**ipe**", "EX2/elem", "ipe streamed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        case = "" if r["case"] is None else f"{r['case']}" + (f" ({r['when']})" if r["when"] else "")
        rows = r["kernel"] == "rows"
        passes = [pass_cell(r, p) for p in PASSES] if rows else ["", pass_cell(r, "loop") if r["hot"] else "", ""]
        lines.append("| " + " | ".join([
            r["module"], r["kernel"], case, r["dtype"], cell(r.get("REG")),
            f"{cell(r.get('LOCAL'))}/{cell(r.get('STACK'))}", str(r["spill_instructions"]), cell(r.get("SHARED")),
            *passes, f"**{cell(r.get('ipe'))}**" if r["hot"] else "", cell(r.get("ex2_pe")) if r["hot"] else "",
            cell(r.get("ipe_streamed")) if rows else ""]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every record (loops included) to this file")
    parser.add_argument("--only", help="comma-separated module names (default: every codegen/cuda/*.cu)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "symxent_sass",
                        help="folder of the compiled cubins (default: %(default)s)")
    args = parser.parse_args(argv)
    sources = [s for s in SOURCES if not args.only or s.stem in args.only.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two nvcc at a time
        cubins = list(pool.map(lambda s: compile_cubin(s, args.cache), sources))
    records = [r for cubin, source in zip(cubins, sources) for r in summarize(cubin, source)]
    method = __doc__[__doc__.index("HOT LOOPS"):].strip()
    print(markdown(records))
    print("\n" + method)
    if args.json:
        args.json.write_text(json.dumps({"flags": FLAGS, "method": method, "kernels": records}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
