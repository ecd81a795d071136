"""One process against Dask on the same capture: the figures of docs/scale.md.

Rotates CAPTURE into FILES pcap files with ``editcap -F pcap -c`` (into
OUT_DIR), then times, best of --repeat, on a LocalCluster of --workers worker
processes (1 thread each, warm):

    one process -j 1 | one process -j 2 | Dask, rotated files |
    Dask, the unsplit capture in byte ranges of --range-mb

and checks that both Dask reports equal one process's.  ``--tuned`` starts
the workers with ``MALLOC_MMAP_THRESHOLD_`` = 1 GiB (see docs/scale.md).

    python bench/dask_scale.py 6m.pcap rotated/ --files 8 --tuned

(the 6M-packet capture: ``bench/scale_capture.py bench/data/lo_http.pcap.gz
6m.pcap --packets 6000000``)
"""
import argparse
import glob
import os
import subprocess
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("capture")
    ap.add_argument("out_dir")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--range-mb", type=int, default=64)
    ap.add_argument("--tuned", action="store_true")
    args = ap.parse_args()

    import dask
    from dask.distributed import Client, LocalCluster

    import fastseg
    from fastseg import dask as fdask

    os.makedirs(args.out_dir, exist_ok=True)
    files = sorted(glob.glob(os.path.join(args.out_dir, "*.pcap")))
    if not files:
        with fastseg.open_capture(args.capture) as reader:
            packets = sum(len(batch) for batch in reader)
        per_file = -(-packets // args.files) + 1      # boundaries inside connections
        subprocess.run(["editcap", "-F", "pcap", "-c", str(per_file), args.capture,
                        os.path.join(args.out_dir, "part.pcap")], check=True)
        files = sorted(glob.glob(os.path.join(args.out_dir, "*.pcap")))
    if args.tuned:
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 1 << 30})

    def timed(run):
        t0 = time.perf_counter()
        out = run()
        return time.perf_counter() - t0, out

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        fdask.summary(files, client=client)
        runs = {
            "one process -j 1": lambda: fastseg.analyze(files, threads=1),
            "one process -j 2": lambda: fastseg.analyze(files, threads=2),
            "Dask, rotated files": lambda: fdask.summary(files, client=client),
            "Dask, byte ranges": lambda: fdask.summary(
                args.capture, client=client, partition_bytes=args.range_mb << 20),
        }
        best, last = {}, {}
        for _ in range(args.repeat):
            for name, run in runs.items():
                t, last[name] = timed(run)
                best[name] = min(best.get(name, t), t)
    j1, j2 = best["one process -j 1"], best["one process -j 2"]
    print(f"{len(files)} files, {args.workers} workers, best of {args.repeat}")
    for name, t in best.items():
        print(f"{name:22s} {t:6.2f} s   speed vs -j 1 {j1 / t:5.2f}x   time vs -j 2 {t / j2:5.2f}x")
    refs = {"Dask, rotated files": last["one process -j 1"],
            "Dask, byte ranges": fastseg.analyze(args.capture, threads=1)}
    for name, ref in refs.items():
        got, ref = last[name].to_dict(), ref.to_dict()
        got.pop("files"), ref.pop("files")
        print(f"{name}: same report as one process: {got == ref}")


if __name__ == "__main__":
    main()
