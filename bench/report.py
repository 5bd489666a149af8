#!/usr/bin/env python3
"""Turn a hyperfine --export-json file into the startup table (markdown).

    bench/report.py startup.json [--commands startup-commands.tsv] [--out startup.md]
                    [--note LINE]...

Per row: median ms, min-max ms, and the ratio of the row's median to the bwrap row's and to the
crun row's median (rows are matched by name: the first whose name starts with "bwrap" / "crun").
--commands is a TSV of "name<TAB>command" lines; the exact commands are listed under the table.
The table goes to stdout, and also to --out when given.
"""

import argparse
import json
import os
import platform
import sys


def cgroup_mode():
    mounts = {}
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    mounts[parts[1]] = parts[2]
    except OSError:
        return "unknown"
    top = mounts.get("/sys/fs/cgroup")
    if top == "cgroup2":
        return "v2 (unified)"
    if mounts.get("/sys/fs/cgroup/unified") == "cgroup2":
        return "v1 hybrid (cgroup2 at /sys/fs/cgroup/unified)"
    if top is not None or any(t == "cgroup" for t in mounts.values()):
        return "v1 (legacy)"
    return "none mounted"


def machine_line():
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB RAM" % (int(line.split()[1]) / 1024 / 1024)
                    break
    except OSError:
        pass
    bits = ["nproc %s" % ncpu, "kernel %s" % platform.release(), "cgroup %s" % cgroup_mode()]
    if model:
        bits.append(model)
    if mem:
        bits.append(mem)
    return "Machine: " + ", ".join(bits)


def fmt_ms(seconds):
    ms = seconds * 1000.0
    if ms >= 100:
        return "%.0f" % ms
    if ms >= 10:
        return "%.1f" % ms
    return "%.2f" % ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--commands", help="TSV: name<TAB>command")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--note", action="append", default=[], help="extra line printed under the table")
    args = ap.parse_args()

    with open(args.json) as f:
        results = json.load(f)["results"]
    if not results:
        sys.exit("report.py: no results in %s" % args.json)

    commands = {}
    if args.commands:
        with open(args.commands) as f:
            for line in f:
                line = line.rstrip("\n")
                if "\t" in line:
                    name, cmd = line.split("\t", 1)
                    commands[name] = cmd

    def ref(prefix):
        for r in results:
            if r["command"].startswith(prefix):
                return r["median"]
        return None

    bwrap = ref("bwrap")
    crun = ref("crun")

    def ratio(x, base):
        return "%.2f×" % (x / base) if base else "–"

    runs = max(len(r.get("times", [])) for r in results)
    lines = []
    lines.append("| row | median ms | min–max ms | ÷ bwrap | ÷ crun |")
    lines.append("|---|---:|---:|---:|---:|")
    for r in results:
        lines.append(
            "| %s | %s | %s–%s | %s | %s |"
            % (
                r["command"],
                fmt_ms(r["median"]),
                fmt_ms(r["min"]),
                fmt_ms(r["max"]),
                ratio(r["median"], bwrap),
                ratio(r["median"], crun),
            )
        )
    # Rows that go through bench/oci-run.sh, net of the wrapper's own cost (the row that runs it
    # with no runtime), so the runtimes can be compared with rows that need no wrapper.
    wrapper = None
    for r in results:
        if " none " in commands.get(r["command"], "") and "oci-run.sh" in commands[r["command"]]:
            wrapper = r
    net = []
    if wrapper is not None:
        for r in results:
            cmd = commands.get(r["command"], "")
            if r is wrapper or "oci-run.sh" not in cmd:
                continue
            d = r["median"] - wrapper["median"]
            net.append(
                "%s ≈ %s ms net of the wrapper (%s − %s)%s"
                % (
                    r["command"],
                    fmt_ms(d),
                    fmt_ms(r["median"]),
                    fmt_ms(wrapper["median"]),
                    ", %s bwrap" % ratio(d, bwrap) if bwrap else "",
                )
            )
    failed = [r["command"] for r in results if any(c != 0 for c in (r.get("exit_codes") or []))]

    out = []
    out.append("# sandboxd startup benchmark: `/bin/true` in the same busybox root")
    out.append("")
    out.append(machine_line())
    out.append("")
    out.extend(lines)
    out.append("")
    out.append(
        "hyperfine -N, %d runs per row. Ratios are medians within this one run; absolute numbers "
        "drift 10–40 %% between runs on shared machines." % runs
    )
    if net:
        out.append("")
        out.append("Runtime cost without bench/oci-run.sh (difference of medians): " + "; ".join(net) + ".")
    for note in args.note:
        out.append("")
        out.append(note)
    if failed:
        out.append("")
        out.append("WARNING: non-zero exit codes in: " + ", ".join(failed))
    if commands:
        out.append("")
        out.append("Commands:")
        out.append("")
        for r in results:
            cmd = commands.get(r["command"])
            if cmd:
                out.append("- %s: `%s`" % (r["command"], cmd))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
