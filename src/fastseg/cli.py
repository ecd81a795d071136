"""The ``fastseg`` command line (also ``python -m fastseg``).

Bad input never produces a traceback: one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from typing import List, Optional

EXIT_BAD_INPUT = 2
SEGMENT_FORMATS = ("jsonl", "csv", "parquet")
CONN_FORMATS = ("jsonl", "csv", "parquet", "zeek")


class _Fail(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        raise _Fail(f"{self.prog}: {message}")


def _progress_enabled(args) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _check_input(path: str) -> None:
    if path == "-":
        return
    if os.path.isdir(path):
        raise _Fail(f"{path}: is a directory")
    if not os.path.exists(path):
        raise _Fail(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise _Fail(f"{path}: permission denied")


def _check_inputs(paths: List[str]) -> None:
    for path in paths:
        _check_input(path)
    if paths.count("-") > 1:
        raise _Fail("-: standard input can be read only once")


def _check_output(path: Optional[str]) -> None:
    if path is None or path == "-":
        return
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise _Fail(f"{path}: is a directory")
    if not os.path.isdir(directory):
        raise _Fail(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise _Fail(f"{path}: permission denied")


def _say_not_decoded(capture: dict) -> None:
    """One stderr line per link type whose packets were not decoded: a
    capture of 802.11 or USB frames is not silently an empty report."""
    from .render import not_decoded_lines

    for line in not_decoded_lines(capture):
        sys.stderr.write(f"fastseg: {line}\n")


# -- commands -------------------------------------------------------------
def _cmd_summary(args) -> int:
    from .analyze import analyze

    _check_inputs(args.files)
    if args.dask:
        report = _dask_summary(args)
    else:
        report = analyze(args.files, checksums=args.checksums, idle_timeout=args.idle_timeout,
                         max_connections=args.max_connections,
                         progress=_progress_enabled(args), threads=args.threads)
    _say_not_decoded(report["capture"])
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        sys.stdout.write(report.render())
    return 0


def _dask_summary(args):
    """``summary --dask ADDRESS``: the same report, computed on a Dask
    cluster (``local:N`` starts N local worker processes)."""
    if "-" in args.files:
        raise _Fail("--dask reads files, not standard input")
    if args.max_connections is not None:
        raise _Fail("--dask does not take --max-connections")
    try:
        from dask.distributed import Client, LocalCluster
        from . import dask as fdask
    except ImportError:
        raise _Fail("--dask needs the dask extra (pip install 'fastseg[dask]')") from None
    address = args.dask
    cluster = None
    try:
        if address.startswith("local:"):
            try:
                workers = int(address[len("local:"):])
            except ValueError:
                raise _Fail(f"--dask {address}: expected local:N") from None
            if workers < 1:
                raise _Fail(f"--dask {address}: expected local:N with N >= 1")
            import dask
            # Dask starts workers with MALLOC_TRIM_THRESHOLD_, which also
            # freezes glibc's mmap threshold: every batch array would then be
            # a fresh mapping, paid in page faults (docs/scale.md)
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_":
                                  1 << 30}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address, timeout="10s")
    except OSError as exc:
        raise _Fail(f"--dask {address}: {exc}") from None
    try:
        return fdask.summary(args.files, client=client, checksums=args.checksums,
                             idle_timeout=args.idle_timeout)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _table_output(args, allowed) -> bool:
    """Check a table command's inputs and output and settle its format
    (``--format``, else -o's extension); True for a binary format."""
    from .output import output_format

    _check_inputs(args.files)
    _check_output(args.output)
    try:
        args.format = output_format(args.output, args.format, allowed)
    except ValueError as exc:
        raise _Fail(str(exc)) from None
    binary = args.format == "parquet"
    if binary and (args.output is None or args.output == "-"):
        raise _Fail("--format parquet needs -o FILE")
    return binary


def _segment_tracker(args):
    """A Tracker for ``segments --analysis`` (one per file), else None."""
    if not args.analysis:
        return None
    from .track import Tracker
    return Tracker(checksums=args.checksums, idle_timeout=args.idle_timeout,
                   max_connections=args.max_connections)


def _cmd_segments(args) -> int:
    from . import parse
    from .analyze import default_threads, read_ahead
    from .output import TableWriter, atomic_output
    from .segments import CaptureStats

    binary = _table_output(args, SEGMENT_FORMATS)
    stats = CaptureStats()
    with atomic_output(args.output, binary=binary) as fh:
        writer = TableWriter(fh, args.format)
        for path in args.files:
            tracker = _segment_tracker(args)
            with parse.open(path) as cap:
                batches = cap.batches()
                if (args.threads or default_threads()) > 1:
                    batches = read_ahead(batches)
                for seg in batches:
                    if tracker is not None:
                        tracker.update(seg)    # adds conn and the tcp.analysis columns
                    writer.write(seg)
                stats += cap.stats
        writer.close()
    _say_not_decoded(stats.to_dict())
    return 0


def _cmd_conns(args) -> int:
    from .analyze import stream_connections
    from .connections import Connections
    from .output import TableWriter, atomic_output

    binary = _table_output(args, CONN_FORMATS)
    with atomic_output(args.output, binary=binary) as fh:
        # Rows are written as the tracker finishes them, in first-seen order.
        if args.format == "zeek":
            Connections.empty().to_zeek(fh, footer=False)

            def write(conns):
                conns.to_zeek(fh, header=False, footer=False)
        else:
            writer = TableWriter(fh, args.format)
            write = writer.write
        report = stream_connections(args.files, write, checksums=args.checksums,
                                    idle_timeout=args.idle_timeout,
                                    max_connections=args.max_connections, threads=args.threads,
                                    text_bytes=args.format != "parquet")
        if args.format == "zeek":
            Connections.empty().to_zeek(fh, header=False)
        else:
            if writer.rows == 0:
                writer.write(Connections.empty())
            writer.close()
    _say_not_decoded(report["capture"])
    return 0


def _cmd_show(args) -> int:
    from .segments import CaptureStats
    from .show import show_lines

    _check_inputs(args.files)
    out = sys.stdout
    stats = CaptureStats()
    for path in args.files:
        for line in show_lines(path, stats):
            out.write(line)
            out.write("\n")
    _say_not_decoded(stats.to_dict())
    return 0


def run_synth(args: argparse.Namespace):
    """Run ``fastseg synth`` from parsed arguments; returns the
    ``synth.SynthResult``.  Raises ValueError on bad arguments."""
    from . import synth

    name = str(args.output).lower()
    for ext in (".gz", ".zst"):
        name = name[:-len(ext)] if name.endswith(ext) else name
    fmt = args.format or ("pcapng" if name.endswith(".pcapng") else "pcap")
    return synth.generate(args.output, args.connections, seed=args.seed, mix=args.mix,
                          ipv6_fraction=args.ipv6_fraction, start_ts=args.start,
                          duration=args.duration, format=fmt, nanosecond=args.nanosecond,
                          truth=args.truth, bad_checksum_fraction=args.bad_checksum_fraction,
                          snaplen=args.snaplen, block_size=args.block_size,
                          flood_bursts=args.flood_bursts, link=args.link)


def _cmd_synth(args) -> int:
    _check_output(args.output)
    run_synth(args)
    return 0


def _cmd_demo(args) -> int:
    from . import synth
    from .analyze import analyze

    with tempfile.TemporaryDirectory(prefix="fastseg-demo-") as tmp:
        path = os.path.join(tmp, "demo.pcap")
        result = synth.demo(path, connections=args.connections, seed=args.seed)
        if not args.quiet:
            sys.stderr.write(f"demo: synthesised {result.connections} connections, "
                             f"{result.packets} packets; {synth.demo_note(result)}\n")
        report = analyze(path, progress=_progress_enabled(args))
        if args.json:
            sys.stdout.write(report.to_json() + "\n")
        else:
            sys.stdout.write(report.render())
    return 0


def _cmd_plot(args) -> int:
    from .plot import plot_capture

    _check_input(args.file)
    _check_output(args.output)
    plot_capture(args.file, args.output)
    return 0


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid thread count {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("thread count must be at least 1")
    return n


def _cmd_whatif(args) -> int:
    from . import whatif

    _check_input(args.file)
    for out in (args.syns, args.plot):
        _check_output(out)

    def ints(text, name):
        try:
            return [int(v) for v in text.split(",") if v != ""]
        except ValueError:
            raise _Fail(f"--{name}: comma-separated integers, not {text!r}") from None

    backlogs, cookies = ints(args.backlog, "backlog"), ints(args.syncookies, "syncookies")
    settings = dict(somaxconn=args.somaxconn, synack_retries=args.synack_retries,
                    max_syn_backlog=args.max_syn_backlog, abort_on_overflow=args.abort_on_overflow,
                    accept=args.accept, server=args.server, give_up=args.give_up, until=args.until)
    if args.fit:
        found = whatif.fit(args.file, syncookies=cookies if args.syncookies != "0,1,2" else (0, 1),
                           **{k: v for k, v in settings.items() if k != "server"},
                           server=args.server)
        sys.stdout.write(json.dumps(found, indent=2) + "\n" if args.json else whatif.render_fit(found))
        return 0
    result = whatif.listen_queue(args.file, backlog=backlogs, syncookies=cookies, **settings)
    if args.syns:
        whatif.write_syns(result, args.syns)
    if args.plot:
        whatif.plot(result, args.plot, server=args.server)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(whatif.render(result))
    return 0


FILES_HELP = ("capture files (pcap or pcapng, optionally .gz/.zst), read in order as one "
              "capture; - reads standard input")


def _synth_arguments(parser: argparse.ArgumentParser) -> None:
    from . import synth

    parser.add_argument("-o", "--output", required=True, help="capture file to write")
    parser.add_argument("--connections", "-n", type=int, default=10000,
                        help="number of connections (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default=None,
                        help="capture format (default: from the file name, else pcap)")
    parser.add_argument("--nanosecond", action="store_true",
                        help="nanosecond timestamps (default microseconds)")
    parser.add_argument("--mix", default=None,
                        help="scenario weights, e.g. 'fin_orig=50,refused=5,flood=10'; "
                             "kinds: " + ", ".join(synth.KINDS))
    parser.add_argument("--truth", default=None,
                        help="ground-truth file (CSV, or JSON lines for .jsonl)")
    parser.add_argument("--ipv6-fraction", type=float, default=0.2,
                        help="share of connections over IPv6 (default 0.2)")
    parser.add_argument("--start", type=float, default=1_700_000_000.0,
                        help="first SYN time, seconds since the epoch")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds over which connections start")
    parser.add_argument("--bad-checksum-fraction", type=float, default=0.0,
                        help="share of packets also seen as a damaged copy (default 0)")
    parser.add_argument("--snaplen", type=int, default=262144,
                        help="captured bytes per packet at most (default 262144)")
    parser.add_argument("--flood-bursts", type=int, default=2,
                        help="SYN-flood bursts formed by the flood connections (default 2)")
    parser.add_argument("--link", choices=tuple(synth.LINKS), default="ethernet",
                        help="link layer (default ethernet)")
    parser.add_argument("--block-size", type=int, default=20_000,
                        help="connections generated at a time (bounds memory)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastseg", description="Fast batch analysis of TCP in packet captures.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def command(name, summary):
        return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")

    def common(p, tracking=False):
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        p.add_argument("-j", "--threads", type=_threads, default=None, metavar="N",
                       help="threads (default: the machine's cores); the output is the "
                            "same whatever N")
        if tracking:
            p.add_argument("--checksums", choices=("auto", "verify", "ignore"), default="auto",
                           help="how bad checksums affect tracking (default: auto, which "
                                "ignores checksums of hosts diagnosed as offloading)")
            p.add_argument("--idle-timeout", type=float, default=300.0,
                           help="seconds of silence that end a connection (default 300)")
            p.add_argument("--max-connections", type=int, default=None,
                           help="memory budget: connections held at once (the least "
                                "recently active beyond it are finished early and counted)")

    def table_output(p, formats):
        p.add_argument("-o", "--output", metavar="OUT",
                       help="output file (default: standard output); its extension "
                            "(.jsonl/.json, .csv, .parquet" + (", .log/.tsv" if "zeek" in formats
                                                               else "") + ") sets the format")
        p.add_argument("--format", choices=formats, default=None,
                       help="output format (default: from -o's extension, else jsonl); "
                            "zeek is conn.log TSV" if "zeek" in formats else
                            "output format (default: from -o's extension, else jsonl)")

    p = command("summary", "the analysis report of one or more captures")
    p.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable JSON with stable keys")
    p.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="compute on the Dask scheduler at ADDRESS (local:N starts N local "
                        "worker processes); same report")
    common(p, tracking=True)
    p.set_defaults(func=_cmd_summary)

    p = command("segments", "one row per TCP segment")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="capture files (pcap or pcapng, optionally .gz/.zst), their rows "
                        "one file after another; - reads standard input")
    table_output(p, SEGMENT_FORMATS)
    p.add_argument("--analysis", action="store_true",
                   help="track connections and add conn and Wireshark's tcp.analysis per "
                        "segment: analysis (the flag names set), ack_rtt, bytes_in_flight, "
                        "dup_ack_num")
    common(p, tracking=True)
    p.set_defaults(func=_cmd_segments)

    p = command("conns", "one row per connection (Zeek conn.log columns and more)")
    p.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    table_output(p, CONN_FORMATS)
    common(p, tracking=True)
    p.set_defaults(func=_cmd_conns)

    p = command("show", "tcpdump-style lines for TCP packets (as tcpdump -n -S -tt -r FILE)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="capture files, printed one after another; - reads standard input")
    p.set_defaults(func=_cmd_show)

    p = command("synth", "write a synthetic capture with ground truth")
    _synth_arguments(p)
    common(p)
    p.set_defaults(func=_cmd_synth)

    p = command("demo", "synthesise a capture and summarise it (no input needed)")
    p.add_argument("--connections", type=int, default=20000,
                   help="connections to synthesise (default 20000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON with stable keys")
    common(p)
    p.set_defaults(func=_cmd_demo)

    p = command("plot", "handshake RTTs, states, SYN rate and TIME-WAIT of a capture as a PNG")
    p.add_argument("file", metavar="FILE", help="capture file; - reads standard input")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="image to write")
    common(p)
    p.set_defaults(func=_cmd_plot)

    p = command("whatif", "replay a capture's SYNs against a Linux listening socket: which "
                          "legitimate clients SYN cookies or another backlog would have served")
    p.add_argument("file", metavar="FILE", help="capture file; - reads standard input")
    p.add_argument("--server", metavar="ADDR:PORT", help="the listener (default: every listener)")
    p.add_argument("--backlog", default="128,511,4096",
                   help="listen() backlog(s), comma-separated (default 128,511,4096)")
    p.add_argument("--syncookies", default="0,1,2",
                   help="net.ipv4.tcp_syncookies value(s), comma-separated (default 0,1,2)")
    p.add_argument("--synack-retries", type=int, default=5,
                   help="net.ipv4.tcp_synack_retries (default 5)")
    p.add_argument("--somaxconn", type=int, default=4096, help="net.core.somaxconn (default 4096)")
    p.add_argument("--max-syn-backlog", type=int, default=None,
                   help="net.ipv4.tcp_max_syn_backlog (default 4096; matters with syncookies 0)")
    p.add_argument("--abort-on-overflow", action="store_true",
                   help="net.ipv4.tcp_abort_on_overflow=1: RST a final ACK the accept queue "
                        "cannot take")
    p.add_argument("--accept", default="instant",
                   help="how the application accepts: instant, never, or accepts per second")
    p.add_argument("--give-up", type=float, default=None,
                   help="seconds after its first SYN when a client stops retrying")
    p.add_argument("--until", default=None, type=lambda v: v if v == "end" else float(v),
                   help="stop the replay at this second after the first packet, or at the "
                        "capture's 'end' (to compare with counters read then)")
    p.add_argument("--fit", action="store_true",
                   help="estimate the backlog and syncookies from the SYNs the server answered")
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.add_argument("--syns", metavar="OUT.jsonl", help="write every SYN's fate per scenario")
    p.add_argument("--plot", metavar="OUT.png",
                   help="write queue occupancy and legitimate completions over time")
    common(p)
    p.set_defaults(func=_cmd_whatif)

    from . import cookie_cli
    cookie_cli.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from .errors import CaptureError

    def _warn(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(f"fastseg: warning: {message}\n")

    warnings.showwarning = _warn
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from . import __version__
            print(__version__)
            return 0
        if not args.command:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        return args.func(args) or 0
    except _Fail as exc:
        sys.stderr.write(f"fastseg: error: {exc}\n")
        return EXIT_BAD_INPUT
    except CaptureError as exc:
        sys.stderr.write(f"fastseg: error: {exc}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except (OSError, ValueError) as exc:
        name = getattr(exc, "filename", None)
        msg = f"{name}: {exc.strerror}" if name and getattr(exc, "strerror", None) else str(exc)
        sys.stderr.write(f"fastseg: error: {msg}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("fastseg: interrupted\n")
        return 130
