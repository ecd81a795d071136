"""Print the benchmark table (rates and ratios per group) from pytest-benchmark
JSON:  python bench/report.py bench-results.json

Each benchmark may put into ``benchmark.extra_info``: ``items`` and ``unit``
(e.g. 1_000_000 "packets") and/or ``bytes``; rates are items/s or bytes/s of
the median round.  Within a group, every row is compared with the row whose
name contains ``fastseg``; in a group holding a ``tshark`` row, every row's
rate is also given as a multiple of tshark's, and ``peak_rss_mb`` / ``cpu_s``
(when recorded) are printed.  Rates come from wall time: on a shared machine
CPU time (``cpu_s``) is the steadier figure."""
import json
import sys
from collections import defaultdict


def _rate(b):
    med = b["stats"]["median"]
    info = b.get("extra_info", {})
    if "items" in info:
        return info["items"] / med, info.get("unit", "items")
    for key in ("packets_per_s", "segments_per_s", "cookies_per_s"):
        if key in info:
            return info[key], key[:-6]
    for key, unit in (("packets", "packets"), ("segments", "segments"), ("rows", "rows")):
        if key in info:
            return info[key] / med, unit
    if "bytes" in info:
        return info["bytes"] / med, "bytes"
    return 1.0 / med, "calls"


def _fmt(rate, unit):
    if unit == "bytes":
        return f"{rate / 1e9:8.2f} GB/s"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= div:
            return f"{rate / div:8.2f} {suf}{unit}/s"
    return f"{rate:8.2f} {unit}/s"


def main(path):
    with open(path) as fh:
        data = json.load(fh)
    groups = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b.get("group") or b["name"].split("[")[0]].append(b)
    print()
    print(f"{'group':<22} {'benchmark':<44} {'median':>10} {'rate':>18} {'x ref':>10}")
    print("-" * 108)
    for group, rows in sorted(groups.items()):
        ref = next((r for r in rows if "fastseg" in r["name"]), rows[0])
        ref_rate, _ = _rate(ref)
        tshark = next((r for r in rows if "tshark" in r["name"]), None)
        if tshark is not None:
            ref, ref_rate = tshark, _rate(tshark)[0]
        for r in sorted(rows, key=lambda r: -_rate(r)[0]):
            rate, unit = _rate(r)
            if tshark is not None:
                ratio = rate / ref_rate if ref_rate else float("inf")
            else:
                ratio = ref_rate / rate if rate else float("inf")
            extra = r.get("extra_info", {})
            if "bytes" in extra and unit != "bytes":
                extra_s = f" ({extra['bytes'] / r['stats']['median'] / 1e9:.2f} GB/s)"
            else:
                extra_s = ""
            if "peak_rss_mb" in extra:
                extra_s += f"  peak RSS {extra['peak_rss_mb']:.0f} MB, CPU {extra['cpu_s']:.2f} s"
            if tshark is not None:
                t_cpu = tshark.get("extra_info", {}).get("cpu_s")
                if t_cpu and extra.get("cpu_s"):
                    extra_s += f" ({t_cpu / extra['cpu_s']:.1f}x tshark by CPU time)"
            print(f"{group:<22} {r['name'][:44]:<44} {r['stats']['median'] * 1e3:8.2f}ms "
                  f"{_fmt(rate, unit):>18} {ratio:9.1f}x{extra_s}")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
