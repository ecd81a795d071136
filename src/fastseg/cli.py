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


class _Fail(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        raise _Fail(f"{self.prog}: {message}")


def _progress_enabled(args) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _check_input(path: str) -> None:
    if os.path.isdir(path):
        raise _Fail(f"{path}: is a directory")
    if not os.path.exists(path):
        raise _Fail(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise _Fail(f"{path}: permission denied")


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


# -- commands -------------------------------------------------------------
def _cmd_summary(args) -> int:
    from .analyze import analyze

    for path in args.files:
        _check_input(path)
    report = analyze(args.files, checksums=args.checksums, idle_timeout=args.idle_timeout,
                     max_connections=args.max_connections, progress=_progress_enabled(args))
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(report.render())
    return 0


def _table_output(args) -> bool:
    """Check a table command's input and output; True for a binary format."""
    _check_input(args.file)
    _check_output(args.output)
    binary = args.format == "parquet"
    if binary and (args.output is None or args.output == "-"):
        raise _Fail("--format parquet needs -o FILE")
    return binary


def _cmd_segments(args) -> int:
    from . import parse
    from .output import TableWriter, atomic_output

    binary = _table_output(args)
    with atomic_output(args.output, binary=binary) as fh:
        writer = TableWriter(fh, args.format)
        with parse.open(args.file) as cap:
            for seg in cap.batches():
                writer.write(seg)
        writer.close()
    return 0


def _cmd_conns(args) -> int:
    from .analyze import connections_of
    from .output import TableWriter, atomic_output

    binary = _table_output(args)
    conns = connections_of(args.file, checksums=args.checksums,
                           idle_timeout=args.idle_timeout, max_connections=args.max_connections)
    with atomic_output(args.output, binary=binary) as fh:
        if args.format == "zeek":
            conns.to_zeek(fh)
        else:
            writer = TableWriter(fh, args.format)
            writer.write(conns)
            writer.close()
    return 0


def _cmd_show(args) -> int:
    from .show import show_lines

    _check_input(args.file)
    out = sys.stdout
    for line in show_lines(args.file):
        out.write(line)
        out.write("\n")
    return 0


def _cmd_synth(args) -> int:
    from . import synth

    _check_output(args.output)
    synth.run_from_args(args)
    return 0


def _cmd_demo(args) -> int:
    from . import synth
    from .analyze import analyze

    with tempfile.TemporaryDirectory(prefix="fastseg-demo-") as tmp:
        path = os.path.join(tmp, "demo.pcap")
        result = synth.demo(path, connections=args.connections, seed=args.seed)
        if not args.quiet:
            sys.stderr.write(f"demo: synthesised {result.connections} connections, "
                             f"{result.packets} packets\n")
        report = analyze(path, progress=_progress_enabled(args))
        if args.json:
            sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        else:
            sys.stdout.write(report.render())
    return 0


def _cmd_plot(args) -> int:
    from .plot import plot_capture

    _check_input(args.file)
    _check_output(args.output)
    plot_capture(args.file, args.output)
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastseg", description="Fast batch analysis of TCP in packet captures.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def common(p, tracking=False):
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        if tracking:
            p.add_argument("--checksums", choices=("auto", "verify", "ignore"), default="auto",
                           help="how bad checksums affect tracking (default: auto, which "
                                "ignores checksums of hosts diagnosed as offloading)")
            p.add_argument("--idle-timeout", type=float, default=300.0,
                           help="seconds of silence that end a connection (default 300)")
            p.add_argument("--max-connections", type=int, default=None,
                           help="memory budget: connections held at once (the least "
                                "recently active beyond it are finished early and counted)")

    p = sub.add_parser("summary", help="the analysis report of one or more captures")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable JSON with stable keys")
    common(p, tracking=True)
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("segments", help="one row per TCP segment")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl")
    common(p)
    p.set_defaults(func=_cmd_segments)

    p = sub.add_parser("conns", help="one row per connection")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--format", choices=("jsonl", "csv", "parquet", "zeek"), default="jsonl")
    common(p, tracking=True)
    p.set_defaults(func=_cmd_conns)

    p = sub.add_parser("show", help="tcpdump-style lines (as tcpdump -n -S -tt -r FILE)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("synth", help="write a synthetic capture with ground truth")
    try:
        from . import synth as _synth
        _synth.add_arguments(p)
    except (ImportError, AttributeError):
        p.add_argument("-o", "--output", required=True)
    common(p)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("demo", help="synthesise a capture and summarise it")
    p.add_argument("--connections", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("plot", help="handshake RTTs, states, SYN rate, TIME-WAIT as a PNG")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", required=True)
    common(p)
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("whatif", help="replay the SYNs against a Linux listening socket "
                                      "(SYN cookies, backlog, retries): who would have been served")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--server", metavar="ADDR:PORT", help="the listener (default: every listener)")
    p.add_argument("--backlog", default="128,511,4096", help="listen backlog(s), comma-separated")
    p.add_argument("--syncookies", default="0,1,2", help="net.ipv4.tcp_syncookies value(s): 0,1,2")
    p.add_argument("--synack-retries", type=int, default=5)
    p.add_argument("--somaxconn", type=int, default=4096)
    p.add_argument("--max-syn-backlog", type=int, default=None)
    p.add_argument("--abort-on-overflow", action="store_true")
    p.add_argument("--accept", default="instant",
                   help="how the application accepts: instant, never, or accepts per second")
    p.add_argument("--give-up", type=float, default=None,
                   help="seconds after its first SYN when a client stops retrying")
    p.add_argument("--until", default=None, type=lambda v: v if v == "end" else float(v),
                   help="stop the replay at this second (or 'end' of the capture)")
    p.add_argument("--fit", action="store_true",
                   help="estimate the backlog and syncookies from the SYNs the server answered")
    p.add_argument("--json", action="store_true")
    p.add_argument("--syns", metavar="OUT.jsonl", help="write every SYN's fate per scenario")
    p.add_argument("--plot", metavar="OUT.png", help="queue occupancy and completions over time")
    common(p)
    p.set_defaults(func=_cmd_whatif)

    try:
        from . import cookie_cli
        cookie_cli.register(sub)
    except ImportError:
        pass
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
