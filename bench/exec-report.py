#!/usr/bin/env python3
"""Turn the exec benchmark's results into its table (markdown).

    bench/exec-report.py exec.json [--sdk NAME=exec-sdk.json]... [--throughput exec-sdk-concurrent.json]
                         [--commands exec-commands.tsv] [--out exec.md] [--note LINE]...

exec.json is hyperfine's --export-json; each --sdk file is one JSON line from the agent-sdk example
exec_bench (median_ms, p90_ms, p99_ms, min_ms, max_ms, ...), added as a row named NAME. Per row:
median ms, min-max ms, and the ratio of crun exec's and runc exec's medians to the row's ("crun ÷
row": how many times faster than crun exec the row is). Rows are matched by name: the first whose
name starts with "crun exec" / "runc exec". Then the issue's targets, checked on every --sdk row:
median under 1 ms, and at least 4x faster than crun exec. --throughput adds exec_bench's
concurrent run (execs/s). The table goes to stdout, and also to --out when given.
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing report.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt_ms, machine_line  # noqa: E402  (bench/report.py, the startup table)

TARGET_MS = 1.0
TARGET_X_CRUN = 4.0


def load_sdk(path):
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    if not lines:
        sys.exit("exec-report.py: %s is empty" % path)
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--sdk", action="append", default=[], metavar="NAME=FILE",
                    help="an exec_bench JSON line, as a row named NAME")
    ap.add_argument("--throughput", help="exec_bench JSON line of a --concurrency run")
    ap.add_argument("--commands", help="TSV: name<TAB>command")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--note", action="append", default=[], help="extra line printed under the table")
    args = ap.parse_args()

    with open(args.json) as f:
        hf = json.load(f)["results"]

    # Every row in seconds: name, median, min, max, extra text, runs.
    rows = []
    for r in hf:
        failed = any(c != 0 for c in (r.get("exit_codes") or []))
        rows.append({
            "name": r["command"],
            "median": r["median"],
            "min": r["min"],
            "max": r["max"],
            "runs": len(r.get("times", [])),
            "failed": failed,
            "sdk": None,
        })
    sdk_rows = []
    for spec in args.sdk:
        if "=" not in spec:
            sys.exit("exec-report.py: --sdk wants NAME=FILE, got %r" % spec)
        name, path = spec.split("=", 1)
        s = load_sdk(path)
        row = {
            "name": name,
            "median": s["median_ms"] / 1000.0,
            "min": s["min_ms"] / 1000.0,
            "max": s["max_ms"] / 1000.0,
            "runs": s["runs"],
            "failed": False,
            "sdk": s,
        }
        rows.append(row)
        sdk_rows.append(row)
    if not rows:
        sys.exit("exec-report.py: no results")

    def ref(prefix):
        for r in rows:
            if r["name"].startswith(prefix):
                return r["median"]
        return None

    crun = ref("crun exec")
    runc = ref("runc exec")

    def times(base, x):
        return "%.1f×" % (base / x) if base and x else "–"

    lines = [
        "| row | median ms | min–max ms | runs | crun exec ÷ row | runc exec ÷ row |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append("| %s | %s | %s–%s | %d | %s | %s |" % (
            r["name"], fmt_ms(r["median"]), fmt_ms(r["min"]), fmt_ms(r["max"]), r["runs"],
            times(crun, r["median"]), times(runc, r["median"])))

    out = ["# sandboxd exec benchmark: `/bin/true` in an existing sandbox / container", ""]
    out.append(machine_line())
    out.append("")
    out.extend(lines)
    out.append("")
    hf_runs = max((r["runs"] for r in rows if r["sdk"] is None), default=0)
    out.append(
        "hyperfine -N rows: %d runs each (a new client process per run). \"crun exec ÷ row\" = how "
        "many times faster than `crun exec` the row is (ratio of medians within this one run); "
        "absolute numbers drift 10–40 %% between runs on shared machines." % hf_runs)
    for r in sdk_rows:
        s = r["sdk"]
        out.append("")
        out.append(
            "%s: agent-sdk example exec_bench, %d execs after %d warmup on one connection "
            "(tokio %s-thread runtime): median %.3f ms, p90 %.3f, p99 %.3f, min %.3f, max %.3f, "
            "mean %.3f ms (%.0f execs/s sequential); its sandbox's create took %.1f ms."
            % (r["name"], s["runs"], s["warmup"], s.get("runtime", "multi"), s["median_ms"],
               s["p90_ms"], s["p99_ms"], s["min_ms"], s["max_ms"], s["mean_ms"],
               s["execs_per_s"], s["create_ms"]))
    for s in sdk_rows:
        verdicts = []
        ok_ms = s["median"] * 1000.0 < TARGET_MS
        verdicts.append("median %s ms < %g ms: %s" % (fmt_ms(s["median"]), TARGET_MS, "MET" if ok_ms else "NOT MET"))
        if crun:
            x = crun / s["median"]
            verdicts.append("%.1f× faster than crun exec (≥ %g×): %s" % (x, TARGET_X_CRUN, "MET" if x >= TARGET_X_CRUN else "NOT MET"))
        out.append("")
        out.append("Targets (issue), %s: %s." % (s["name"], "; ".join(verdicts)))
    if args.throughput:
        t = load_sdk(args.throughput)
        out.append("")
        out.append(
            "Throughput: exec_bench --concurrency %d (tasks sharing one connection, %d execs): "
            "%.0f execs/s; per-exec latency under that load: median %.3f ms, p90 %.3f, p99 %.3f ms."
            % (t["concurrency"], t["runs"], t["execs_per_s"], t["median_ms"], t["p90_ms"], t["p99_ms"]))
    for note in args.note:
        out.append("")
        out.append(note)
    failed = [r["name"] for r in rows if r["failed"]]
    if failed:
        out.append("")
        out.append("WARNING: non-zero exit codes in: " + ", ".join(failed))
    if args.commands:
        out.append("")
        out.append("Commands:")
        out.append("")
        with open(args.commands) as f:
            for line in f:
                line = line.rstrip("\n")
                if "\t" in line:
                    name, cmd = line.split("\t", 1)
                    out.append("- %s: `%s`" % (name, cmd))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
