"""The ``mmbench`` command.

Exit codes: 0 success; 1 some runs failed (a timed-out run included; their results say why)
or ``compare`` found a regression; 2 bad input (a suite, a name, a path; an output file
mmbench did not generate, never overwritten), reported as one short message without a
traceback unless ``--debug``; 3 a file could not be written (no space left on device, a
read-only folder): the message names it, finished results are kept and running the same
command again resumes; 4 the leaderboard is incomplete because a reporter failed (each is
named in a warning; the other reporters' files are written; when runs failed too, 1 wins);
130 interrupted (Ctrl-C, SIGINT, SIGTERM): finished results are kept, the same command
resumes; a second Ctrl-C exits at once. docs/design.md "Failure model" says what each fault
does. Heavy modules are imported inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

EXIT_OK, EXIT_RUNS_FAILED, EXIT_USAGE, EXIT_CANNOT_WRITE = 0, 1, 2, 3
EXIT_LEADERBOARD_INCOMPLETE = 4
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    import warnings

    from mmbench.errors import PluginDeprecationWarning, UserError

    # Python hides DeprecationWarnings outside __main__: a plugin author must see these
    warnings.filterwarnings("once", category=PluginDeprecationWarning)
    try:
        return args.handler(args)
    except UserError as exc:
        if args.debug:
            raise
        from rich.console import Console
        from rich.markup import escape

        # soft wrap: a file name or key is never split across lines in a CI log
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        return EXIT_USAGE
    except OSError as exc:
        if args.debug or not cannot_write(exc):
            raise
        print(f"error: {cannot_write(exc)}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    except KeyboardInterrupt:
        print("interrupted: finished runs are saved; run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


def cannot_write(exc: OSError) -> str | None:
    """The message for a file mmbench could not write (any failed atomic write, and a full
    disk wherever it hit), or None for another OSError (a bug: its traceback is shown)."""
    from mmbench.files import DISK_FULL, WriteFailed

    if not isinstance(exc, WriteFailed) and exc.errno not in DISK_FULL:
        return None
    what = f"could not write {exc.filename}" if exc.filename else "could not write a file"
    if exc.errno in DISK_FULL:
        fix = "free some space on that device"
    else:
        fix = "make that folder writable (or choose another with --results / --output)"
    return (f"{what}: {exc.strerror or exc}. Finished results are kept (each is written whole or "
            f"not at all); {fix} and run the same command again: it resumes where it stopped.")


def build_parser() -> argparse.ArgumentParser:
    from mmbench import __version__

    parser = argparse.ArgumentParser(
        prog="mmbench",
        description="Benchmark multimodal fusion (image + text + tabular) on a CPU laptop or a cluster.",
    )
    parser.add_argument("--version", action="version", version=f"mmbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite (skips runs that already have results)")
    run.add_argument("suite", type=Path, help="suite TOML file")
    run.add_argument("--dry-run", action="store_true", help="validate and print the expanded grid; run nothing")
    run.add_argument("--workers", type=int, default=None, help="worker processes (default 1: in-process; "
                     "with --executor dask and no --scheduler: the local Dask cluster's workers)")
    run.add_argument("--threads", type=int, default=0, help="torch threads per run (overrides the suite)")
    run.add_argument("--rerun", action="store_true", help="run again even where results exist")
    run.add_argument("--device", default="cpu", help="torch device for extraction and training: cpu "
                     "(default), cuda, cuda:N, mps or auto; the cache and run ids do not depend on it")
    run.add_argument("--executor", choices=("local", "dask"), help="where runs execute (default: the "
                     "suite's [executor] kind, else local); dask needs `pip install \"mmbench[dask]\"`")
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786 (implies "
                     "--executor dask); without it a local Dask cluster is started")
    run.add_argument("--retries", type=int, help="times a run is retried after its worker process died "
                     "(--workers or dask; default: the suite's [executor] retries, else 2)")
    run.add_argument("--run-timeout", type=float, metavar="SECONDS", help="stop a run after SECONDS and "
                     "record it failed (default: the suite's [suite] run_timeout, else no limit)")
    _output_options(run)
    _rows_option(run)
    run.set_defaults(handler=cmd_run)

    validate = sub.add_parser("validate", help="check a suite without running it")
    validate.add_argument("suite", type=Path)
    validate.set_defaults(handler=cmd_validate)

    plugins = sub.add_parser("plugins", help="list installed plugins, their status and parameters")
    plugins.add_argument("name", nargs="*", help="show one plugin's details and parameters (with --check: "
                         "the plugins to check)")
    plugins.add_argument("--check", action="store_true", help="run the conformance kit (mmbench.testing) on the "
                         "named plugins, default all; exit 1 naming each failure")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=cmd_plugins)

    results = sub.add_parser("results", help="show a suite's run results as a table")
    results.add_argument("suite", type=Path)
    results.add_argument("--results", type=Path, help="results folder (default: the suite's [report] results)")
    results.set_defaults(handler=cmd_results)

    gap = sub.add_parser("gap", help="modality-gap diagnostics and PCA plots per dataset / encoder / alignment")
    gap.add_argument("suite", type=Path)
    gap.add_argument("--seed", type=int, help="seed of the split to inspect (default: the suite's first)")
    gap.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                     help="samples the numbers and plots describe (default: all, the whole dataset, as the "
                     "modality-gap paper's Table 1 gives R per dataset; runs align on train's gap)")
    gap.add_argument("--out", type=Path, help="folder for the JSON and PNG files "
                     "(default: <[report] output>/gap/<suite>)")
    gap.set_defaults(handler=cmd_gap)

    extract = sub.add_parser("extract", help="precompute every embedding a suite's runs need "
                             "(a later `mmbench run` reads them from the cache)")
    extract.add_argument("suite", type=Path)
    extract.add_argument("--device", default="cpu", help="torch device for extraction: cpu (default), "
                         "cuda, cuda:N, mps or auto; the cache does not depend on it")
    extract.add_argument("--threads", type=int, default=0, help="torch threads (overrides the suite)")
    extract.set_defaults(handler=cmd_extract)

    export = sub.add_parser("export", help="write one dataset x encoder's embeddings as a CSV or Parquet "
                            "table (id, label, split, img_emb_*, text_emb_*, ...)")
    export.add_argument("suite", type=Path)
    export.add_argument("--out", type=Path, required=True, help="FILE.csv or FILE.parquet")
    export.add_argument("--dataset", help="dataset label (required when the suite has several)")
    export.add_argument("--encoder", help="encoder label (required when the suite has several)")
    export.add_argument("--seed", type=int, help="seed of the split in the split column "
                        "(default: the suite's first)")
    export.set_defaults(handler=cmd_export)

    board = sub.add_parser("leaderboard", help="rebuild a suite's leaderboard from its result files")
    board.add_argument("suite", type=Path)
    _output_options(board)
    _rows_option(board)
    readme = board.add_mutually_exclusive_group()
    readme.add_argument("--update-readme", type=Path, nargs="?", const=Path("README.md"), metavar="README",
                        help="also write the ranking across datasets into README (default README.md) "
                        "between <!-- mmbench:leaderboard SUITE --> and <!-- /mmbench:leaderboard SUITE -->")
    readme.add_argument("--check-readme", type=Path, nargs="?", const=Path("README.md"), metavar="README",
                        help="write nothing: exit 1 if README's section differs from the one the committed "
                        "leaderboard JSON (<output>/SUITE.json) gives (for CI)")
    board.set_defaults(handler=cmd_leaderboard)
    new = sub.add_parser("new", help="write a pip-installable plugin package mmbench-NAME/ to start from "
                         "(pyproject, the plugin class, a test with the conformance kit, a suite)")
    new.add_argument("kind", choices=("dataset", "encoder", "alignment", "fusion", "reporter"))
    new.add_argument("plugin_name", metavar="NAME", help="the plugin's name in suites (lower case, digits, _)")
    new.add_argument("--dir", type=Path, default=Path("."), help="folder to create mmbench-NAME/ in (default: .)")
    new.set_defaults(handler=cmd_new)
    _cache_parser(sub)
    _datasets_parser(sub)
    _compare_parser(sub)
    _history_parser(sub)
    return parser


def _thresholds(parser: argparse.ArgumentParser) -> None:
    """The gate's noise model options, shared by ``compare`` and ``history check``."""
    parser.add_argument("--tolerance", type=float, default=0.02, help="absolute drop of a quality "
                        "metric always accepted (default 0.02)")
    parser.add_argument("--k", type=float, default=3.0, help="a quality drop within k x the seed std "
                        "(the larger side's) is noise (default 3)")
    parser.add_argument("--time-ratio", type=float, default=1.5, help="times may grow up to this factor "
                        "(default 1.5); compared only on the same machine id")
    parser.add_argument("--memory-ratio", type=float, default=1.3, help="memory may grow up to this "
                        "factor (default 1.3); compared only on the same machine id")


def _history_parser(sub) -> None:
    history = sub.add_parser("history", help="a suite's leaderboard over commits: record, show the trend, "
                             "check the last point for a step change")
    history.set_defaults(handler=lambda args: _print_help(history))
    commands = history.add_subparsers(title="history commands", metavar="ACTION")
    record = commands.add_parser("record", help="append the suite's leaderboard summary to "
                                 "<output>/history/SUITE.jsonl")
    record.add_argument("suite", type=Path)
    record.add_argument("--commit", help="commit id of the point (default: git rev-parse HEAD beside the suite)")
    record.add_argument("--machine", help="machine id (default: the results' machine id, else this machine's)")
    _output_options(record)
    record.set_defaults(handler=cmd_history_record)
    show = commands.add_parser("show", help="print a metric's trend and write its plot to "
                               "<output>/history/SUITE/METRIC.png (the site page shows it)")
    show.add_argument("suite", type=Path)
    show.add_argument("--metric", help="metric (default: the suite's primary); times and memory are shown "
                      "for one machine id only")
    show.add_argument("--config", metavar="TEXT", help="only configurations whose 'dataset | encoder / "
                      "alignment / fusion' label contains TEXT")
    show.add_argument("--machine", help="only points of this machine id (times: default the last point's)")
    show.add_argument("--last", type=int, default=6, help="commits printed per configuration (default 6; "
                      "the plot has all)")
    _output_options(show)
    show.set_defaults(handler=cmd_history_show)
    check = commands.add_parser("check", help="exit 1 when the last point differs from the previous ones "
                                "by more than seed noise (compare's model)")
    check.add_argument("suite", type=Path)
    _thresholds(check)
    _output_options(check)
    check.set_defaults(handler=cmd_history_check)


def _history_file(args: argparse.Namespace):
    from mmbench import history

    _, suite = _load(args)
    out = _console()
    points, notes = history.read(history.path_of(Path(suite.report["output"]), suite.name))
    for note in notes:
        out.print(f"[yellow]note:[/yellow] {_escape(note)}")
    return suite, points, out


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def cmd_history_record(args: argparse.Namespace) -> int:
    from mmbench import history, leaderboard

    _, suite = _load(args)
    out = _console()
    board, notes = leaderboard.build(suite)
    for note in notes:
        out.print(f"[yellow]note:[/yellow] {_escape(note)}")
    if not board.datasets:
        from mmbench.errors import UserError

        raise UserError(f"no finished runs in {suite.results_dir}: run `mmbench run {args.suite}` first")
    commit = args.commit or _git_head(args.suite)
    machine = args.machine or history.machine_of(board)
    path = history.append(history.path_of(Path(suite.report["output"]), suite.name),
                          history.summary(board, commit, machine))
    rows = sum(len(d.rows) for d in board.datasets)
    out.print(f"recorded {rows} configurations of suite {suite.name!r} at commit {commit[:12]} on machine "
              f"{machine} -> {path}")
    return EXIT_OK


def _git_head(suite: Path) -> str:
    import subprocess

    from mmbench.errors import UserError

    try:
        done = subprocess.run(["git", "-C", str(suite.resolve().parent), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise UserError(f"cannot ask git for the commit ({exc}): pass --commit SHA") from None
    if done.returncode != 0 or not done.stdout.strip():
        raise UserError(f"{suite} is not in a git checkout with a commit: pass --commit SHA (or any label "
                        "of this point, e.g. a date)")
    return done.stdout.strip()


def cmd_history_show(args: argparse.Namespace) -> int:
    from rich.table import Table

    from mmbench import history
    from mmbench.metric_catalog import METRICS

    if args.last < 1:
        from mmbench.errors import UserError

        raise UserError(f"--last must be at least 1, got {args.last}")
    suite, points, out = _history_file(args)
    if not points:
        out.print(f"no history for suite {suite.name!r} yet: `mmbench history record {args.suite}` adds a point")
        return EXIT_OK
    metric = history.metric_or_primary(points, args.metric)
    shown, keys, machine = history.select(points, metric, args.config, args.machine)
    if not keys:
        out.print(f"no configuration with {metric!r} matches {args.config!r}" if args.config
                  else f"no point records {metric!r}")
        return EXIT_OK
    recent = shown[-args.last:]
    fmt = METRICS[metric].fmt
    where = f" on machine {machine}" if machine else ""
    table = Table("dataset | configuration", *(p.short for p in recent), "change",
                  title=f"{suite.name}: {metric}{where}, last {len(recent)} of {len(shown)} point(s)",
                  title_justify="left")
    for key in keys:
        values = [history.value(p, key, metric) for p in recent]
        cells = ["–" if v is None else format(v[0], fmt) for v in values]
        present = [v[0] for v in values if v is not None]
        change = format(present[-1] - present[0], "+" + fmt) if len(present) > 1 else ""
        table.add_row(_escape(history.label(key)), *cells, change)
    out.print(table)
    name = metric if not args.config else f"{metric}-{_slug(args.config)}"
    png = history.plot(shown, keys, metric, f"{suite.name}: {metric}{where} by commit",
                       history.plot_dir(Path(suite.report["output"]), suite.name) / f"{name}.png")
    out.print(f"plot: {png}")
    return EXIT_OK


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:60] or "config"


def cmd_history_check(args: argparse.Namespace) -> int:
    from mmbench import compare as gate
    from mmbench import history

    suite, points, out = _history_file(args)
    thresholds = gate.Thresholds(args.tolerance, args.k, args.time_ratio, args.memory_ratio)
    comparison = history.check(points, thresholds)
    if comparison is None:
        out.print(f"{len(points)} point(s) in the history of {suite.name!r}: nothing to check before a second "
                  "is recorded")
        return EXIT_OK
    gate.show(out, comparison)
    return gate.EXIT_REGRESSION if comparison.regressions else EXIT_OK


def _compare_parser(sub) -> None:
    compare = sub.add_parser("compare", help="compare results with a baseline; exit 1 on a regression "
                             "beyond seed noise (the CI gate)")
    for name in ("baseline", "current"):
        compare.add_argument(name, type=Path, help=f"{name}: a results folder (one JSON per run) or a "
                             "leaderboard JSON")
    _thresholds(compare)
    compare.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON")
    compare.set_defaults(handler=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from mmbench import compare as gate

    thresholds = gate.Thresholds(args.tolerance, args.k, args.time_ratio, args.memory_ratio)
    comparison = gate.compare(gate.load_side(args.baseline), gate.load_side(args.current), thresholds)
    out = _console()
    gate.show(out, comparison)
    if args.json:
        out.print(f"wrote {gate.write_json(comparison, args.json)}")
    return gate.EXIT_REGRESSION if comparison.regressions else EXIT_OK


def _datasets_parser(sub) -> None:
    datasets = sub.add_parser("datasets", help="inspect a dataset as its loader reads it")
    datasets.set_defaults(handler=lambda args: _print_help(datasets))
    commands = datasets.add_subparsers(title="datasets commands", metavar="ACTION")
    info = commands.add_parser("info", help="counts per split and class, modalities, missing values, "
                               "skipped samples and an example text")
    info.add_argument("name", help="dataset plugin name (mmbench plugins lists them)")
    info.add_argument("--root", help="the dataset's folder (its 'root' parameter)")
    info.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="another parameter, value in TOML syntax (repeatable): --set task=\"dr_3class\"")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=cmd_datasets_info)


def _cache_parser(sub) -> None:
    cache = sub.add_parser("cache", help="list, size or clear the embedding cache ($MMBENCH_CACHE)")
    cache.set_defaults(handler=lambda args: _print_help(cache))
    commands = cache.add_subparsers(title="cache commands", metavar="ACTION")
    ls = commands.add_parser("ls", help="list entries: key, encoder, modality, shape, size, created")
    ls.set_defaults(handler=cmd_cache_ls)
    du = commands.add_parser("du", help="total size of the cache")
    du.set_defaults(handler=cmd_cache_du)
    rm = commands.add_parser("rm", help="remove entries: all (no arguments), by KEY, or --older-than DAYS")
    rm.add_argument("keys", nargs="*", metavar="KEY", help="entry keys (a unique prefix is enough)")
    rm.add_argument("--older-than", type=float, metavar="DAYS", help="only entries created (a sample store: last added to) more than DAYS ago")
    rm.set_defaults(handler=cmd_cache_rm)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, help="results folder (default: the suite's [report] results)")
    parser.add_argument("--output", type=Path, help="leaderboard folder (default: the suite's [report] output)")


def _rows_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=_rows, default=TERMINAL_ROWS, metavar="N|all",
                        help=f"rows per dataset the terminal shows, best first (default {TERMINAL_ROWS}; "
                        "the leaderboard files hold every row)")


#: rows per dataset printed by default: a 600-configuration board is read in its files
TERMINAL_ROWS = 40


def _rows(text: str) -> int | None:
    if text == "all":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a positive number of rows or 'all', got {text!r}")


def _console():
    """Wide tables in logs too: rich would wrap at 80 columns when not on a terminal."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def _load(args: argparse.Namespace):
    from mmbench.registry import load_registry
    from mmbench.suite import load_suite

    registry = load_registry()
    suite = load_suite(args.suite, registry)
    if getattr(args, "results", None):
        suite.report["results"] = str(args.results)
    if getattr(args, "output", None):
        suite.report["output"] = str(args.output)
    return registry, suite


def cmd_validate(args: argparse.Namespace) -> int:
    _, suite = _load(args)
    _console().print(f"[green]ok[/green] {args.suite}: suite {suite.name!r}, {len(suite.runs())} runs")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from mmbench import console as show
    from mmbench.device import resolve_device
    from mmbench.executor import RETRIES, pending_runs, run_suite

    if args.workers is not None and args.workers < 1:
        from mmbench.errors import UserError

        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.retries is not None and args.retries < 0:
        from mmbench.errors import UserError

        raise UserError(f"--retries must be 0 or more, got {args.retries}")
    if args.run_timeout is not None and not args.run_timeout > 0:
        from mmbench.errors import UserError

        raise UserError(f"--run-timeout takes a number of seconds > 0, got {args.run_timeout}")
    registry, suite = _load(args)
    out = _console()
    if args.dry_run:
        todo, done = pending_runs(suite, args.rerun)
        show.grid(out, suite, {r.run_id for r in todo})
        out.print(f"{len(todo) + done} runs: {len(todo)} to run, {done} already done "
                  f"(results in {suite.results_dir})")
        _print_encodes(out, suite, registry, todo)
        return EXIT_OK
    device = resolve_device(args.device)
    executor = suite.executor.get("kind", "local") if args.executor is None else args.executor
    if args.scheduler:
        executor = "dask"
    retries = suite.executor.get("retries", RETRIES) if args.retries is None else args.retries
    run_timeout = suite.run_timeout if args.run_timeout is None else args.run_timeout
    with _sigterm_interrupts():
        if executor == "dask":
            from mmbench.dask_executor import run_suite_dask

            cluster = suite.executor.get("local_cluster", {})
            outcome = run_suite_dask(suite, registry,
                                     address=args.scheduler or suite.executor.get("address") or None,
                                     n_workers=args.workers or cluster.get("n_workers") or None,
                                     threads_per_worker=cluster.get("threads_per_worker"), threads=args.threads,
                                     rerun=args.rerun, device=device, retries=retries, run_timeout=run_timeout)
        else:
            outcome = run_suite(suite, registry, workers=args.workers or 1, threads=args.threads,
                                rerun=args.rerun, device=device, retries=retries, run_timeout=run_timeout)
    paths, complete = _write_leaderboard(suite, registry, out, args.rows)
    out.print(f"{len(outcome.ok)} runs finished, {len(outcome.failed)} failed, {outcome.skipped} "
              f"skipped (already done); results in {suite.results_dir}; leaderboard: "
              + ", ".join(str(p) for p in paths))
    if outcome.failed:
        out.print(f"[red]{len(outcome.failed)} run(s) failed[/red]: `mmbench results {args.suite}` shows why")
        return EXIT_RUNS_FAILED
    return EXIT_OK if complete else EXIT_LEADERBOARD_INCOMPLETE


def _print_encodes(out, suite, registry, todo) -> None:
    """The dry run's extraction forecast: items each encoder will encode, and those cached."""
    from rich.markup import escape

    from mmbench.extract import to_encode

    rows = to_encode(suite, registry, todo)
    if rows:
        out.print("embeddings:")
    for row in rows:
        what = f"  {escape(row['dataset'])} | {escape(row['encoder'])}: "
        if row["error"]:
            out.print(what + f"cannot count the {row['modality']} items ({escape(row['error'])})")
        else:
            out.print(what + f"{row['to_encode']:,} {row['modality']} items to encode, {row['cached']:,} cached")


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a scheduler's or `kill`'s stop) stops a suite as Ctrl-C does: exit 130."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mmbench import readme

    registry, suite = _load(args)
    out = _console()
    page = Path(suite.report["output"]) / f"{suite.name}.md"
    if args.check_readme:
        old, new = readme.rendered(args.check_readme, _committed_board(suite), page)
        if old != new:
            print(readme.diff(old, new, args.check_readme), end="")
            out.print(f"[red]{args.check_readme} is out of date[/red] with {page.with_suffix('.json')}: run "
                      f"`mmbench leaderboard {args.suite} --update-readme {args.check_readme}`")
            return EXIT_RUNS_FAILED
        out.print(f"{args.check_readme} is current with {page.with_suffix('.json')}")
        return EXIT_OK
    paths, complete = _write_leaderboard(suite, registry, out, args.rows)
    if args.update_readme:
        from mmbench.files import write_text_atomic

        old, new = readme.rendered(args.update_readme, _committed_board(suite), page)
        if old != new:
            paths.append(write_text_atomic(args.update_readme, new))
    out.print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK if complete else EXIT_LEADERBOARD_INCOMPLETE


def _committed_board(suite):
    """The leaderboard as its JSON file holds it (what a commit would carry)."""
    import json

    from mmbench.errors import UserError
    from mmbench.leaderboard import Leaderboard

    path = Path(suite.report["output"]) / f"{suite.name}.json"
    try:
        return Leaderboard.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UserError(f"{path}: no leaderboard JSON; the json reporter writes it with "
                        f"`mmbench leaderboard {suite.path}`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a leaderboard JSON this mmbench can read ({exc!r}); rebuild it with "
                        f"`mmbench leaderboard {suite.path}`") from None


def _write_leaderboard(suite, registry, out, rows: int | None = TERMINAL_ROWS) -> tuple[list[Path], bool]:
    """Write the leaderboard with every installed reporter (and print its first ``rows``
    rows per dataset); return the files and whether every reporter wrote (a failed or
    broken reporter is a warning naming it)."""
    from rich.markup import escape

    from mmbench import console as show
    from mmbench import leaderboard

    board, notes = leaderboard.build(suite)
    show.notes(out, notes)
    show.leaderboard(out, board, rows, Path(suite.report["output"]) / f"{suite.name}.md")
    for warning in board.warnings:
        out.print("[yellow]warning:[/yellow] " + escape(warning))
    reporters = [info.cls() for info in registry.all() if info.kind == "reporter"]
    failed: dict[str, str] = {b.name: f"failed to load: {b.reason}" for b in registry.broken
                              if b.kind == "reporter"}
    paths = leaderboard.write(board, Path(suite.report["output"]), reporters, failed)
    for name, reason in failed.items():
        out.print(f"[bold yellow]warning:[/bold yellow] reporter {name!r} wrote nothing, the leaderboard is "
                  f"incomplete: {escape(reason)}")
    packages = sorted({b.source.distribution for b in registry.broken if b.kind is None})
    if packages:
        out.print(f"[yellow]warning:[/yellow] plugin package(s) {', '.join(packages)} failed to load; any "
                  "reporter they provide was skipped (`mmbench plugins` says why)")
    return paths, not failed


def cmd_gap(args: argparse.Namespace) -> int:
    import re

    from mmbench.files import refuse_foreign
    from mmbench.gap import diagnostics, is_plot_ours, is_record_ours, pca_plot, pooled, write_record
    from mmbench.run import prepare

    registry, suite = _load(args)
    seed = suite.seeds[0] if args.seed is None else args.seed
    out_dir = args.out or Path(suite.report["output"]) / "gap" / suite.name
    out = _console()
    todo = {}
    for spec in suite.runs():
        labels = spec.labels()
        key = (labels["dataset"], labels["encoder"], labels["alignment"])
        if key not in todo and spec.seed == suite.seeds[0]:
            todo[key] = replace(spec, seed=seed, robustness=None)
    stems = {key: re.sub(r"[^A-Za-z0-9_.=-]+", "_", "__".join(key)) for key in todo}
    for stem in stems.values():  # every target first: a file of the user's stops the command before any is written
        refuse_foreign(out_dir / f"{stem}.json", is_record_ours, "--out")
        refuse_foreign(out_dir / f"{stem}.png", is_plot_ours, "--out")
    for key, spec in todo.items():
        prepared = prepare(spec, registry)
        before = pooled(prepared.unaligned, args.split)
        after = pooled(prepared.splits, args.split) if spec.alignment is not None else None
        gap = {"before": diagnostics(before), **({"after": diagnostics(after)} if after is not None else {})}
        record = {"suite": suite.name, "seed": seed, "split": args.split, "n": len(before), "labels": dict(zip(
            ("dataset", "encoder", "alignment"), key)), **gap}
        write_record(out_dir / f"{stems[key]}.json", record)
        png = pca_plot(before, after, " | ".join(key), out_dir / f"{stems[key]}.png")
        out.print(f"{' | '.join(key)} ({args.split}): " + _gap_summary(gap) + f" -> {png}")
    return EXIT_OK


def cmd_extract(args: argparse.Namespace) -> int:
    from rich.table import Table

    from mmbench.device import resolve_device
    from mmbench.errors import UserError
    from mmbench.extract import describe, extract_suite, summary

    if args.threads < 0:
        raise UserError(f"--threads must be 0 (the suite's setting) or more, got {args.threads}")
    registry, suite = _load(args)
    out = _console()
    report = extract_suite(suite, registry, device=resolve_device(args.device), threads=args.threads)
    table = Table("dataset", "encoder", "modality", "extractions", "items", "computed", "cached", "seconds",
                  "s/sample", title=f"suite {suite.name}: embeddings", title_justify="left")
    for row in summary(report.rows):
        table.add_row(row["dataset"], row["encoder"], row["modality"], str(row["extractions"]), str(row["items"]),
                      str(row["computed"]), str(row["cached"]), f"{row['seconds']:.2f}",
                      f"{row['s_per_sample']:.2g}")
    out.print(table)
    if report.plan.raw_runs:
        out.print(f"skipped {report.plan.raw_runs} run(s) whose fusion consumes raw inputs: they train "
                  "their encoders and extract nothing")
    for label in report.plan.vector_datasets:
        out.print(f"dataset {label!r} holds vectors already: nothing to extract")
    if report.failures:
        raise UserError(f"{len(report.failures)} extraction(s) failed (the others are cached):\n"
                        + "\n".join(f"{what}: {describe(exc)}" for what, exc in report.failures)
                        ) from report.failures[0][1]
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mmbench.export import choose, embeddings_frame, table_format, write_table
    from mmbench.extract import items_progress, split_seed

    table_format(args.out)  # a wrong suffix is found before any extraction
    registry, suite = _load(args)
    spec = choose(suite, args.dataset, args.encoder, args.seed)
    with items_progress(Console(stderr=True), f"export {spec.dataset.label}", 1) as (on_items, advance):
        frame = embeddings_frame(spec, registry, on_items)
        advance()
    path = write_table(frame, args.out)
    labels = spec.labels()
    _console().print(f"wrote {path}: {len(frame)} rows x {frame.shape[1]} columns (dataset "
                     f"{labels['dataset']!r}, encoder {labels['encoder']!r}, split seed {split_seed(spec)})")
    return EXIT_OK


def _gap_summary(gap: dict) -> str:
    parts = []
    for stage in ("before", "after"):
        if stage not in gap:
            continue
        pairs = ", ".join(f"||Delta|| {k} {v['gap_norm']:.3f}" for k, v in gap[stage]["pairs"].items()
                          if v["gap_norm"] is not None)
        cones = ", ".join(f"R {m} {v['R']:.3f}" for m, v in gap[stage]["modalities"].items() if v["R"] is not None)
        parts.append(f"{stage}: {pairs or 'no pair of equal dimension'}; {cones}")
    return "; ".join(parts)


def cmd_results(args: argparse.Namespace) -> int:
    from mmbench import console as show
    from mmbench.results import left_out_notes, load_results

    _, suite = _load(args)
    results, left_out = load_results(suite.results_dir)
    out = _console()
    show.results(out, results, suite.report["primary"])
    show.notes(out, left_out_notes(left_out))
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    import json

    from mmbench import console as show
    from mmbench.errors import UserError, did_you_mean
    from mmbench.registry import load_registry

    registry = load_registry()
    if args.check:
        return _check_plugins(registry, args.name, args.json)
    if len(args.name) > 1:
        raise UserError("give one plugin name (several only with --check)")
    args.name = args.name[0] if args.name else None
    entries = [info.describe() for info in registry.all()]
    entries += [conflict.describe() | {"status": "conflict"} for infos in registry.conflicts.values()
                for conflict in infos]
    broken = [b.describe() for b in registry.broken]
    if args.name:
        entries = [e for e in entries if e["name"] == args.name]
        # a class of that name that broke its contract, else every failed package (it may be the
        # one that provides the name)
        broken = [b for b in broken if b["name"] == args.name] or [b for b in broken if not b["kind"]]
        if not entries and not any(b["name"] == args.name for b in broken):
            known = [i.name for i in registry.all()] + [name for _, name in registry.conflicts]
            raise UserError(f"no plugin named {args.name!r}; " + did_you_mean(args.name, known)
                            + registry.broken_hint())
    if args.json:
        print(json.dumps({"plugins": entries, "broken": broken}, indent=2, sort_keys=True))
    elif args.name:
        show.plugin_details(_console(), entries, broken)
    else:
        show.plugins(_console(), entries, broken)
    return EXIT_OK


def cmd_new(args: argparse.Namespace) -> int:
    from mmbench.scaffold import new_package

    root = new_package(args.kind, args.plugin_name, args.dir)
    _console().print(f"wrote {root}/ (the {args.kind} {args.plugin_name!r}); next:\n"
                     f'  pip install -e "{root}[test]"\n  python -m pytest {root}\n  mmbench run {root}/suite.toml')
    return EXIT_OK


def _check_plugins(registry, names: list[str], as_json: bool) -> int:
    """``mmbench plugins --check``: the conformance kit on each named (default: every) plugin;
    a plugin broken at registration is a failure too."""
    import json

    from mmbench import console as show
    from mmbench.errors import UserError, did_you_mean
    from mmbench.testing import CheckResult, run_checks

    infos = [i for i in registry.all() if not names or i.name in names]
    broken = [b for b in registry.broken if not names or b.name in names or (b.kind is None and not infos)]
    unknown = [n for n in names if n not in {i.name for i in infos} | {b.name for b in broken}]
    if unknown:
        raise UserError(f"no plugin named {unknown[0]!r}; " + did_you_mean(unknown[0], [i.name for i in registry.all()])
                        + registry.broken_hint())
    results = [CheckResult(f"{b.kind} {b.name!r}" if b.kind else f"package {b.source.distribution}", "loads",
                           "failed", b.reason) for b in broken]
    out = _console()
    for info in infos:
        found = run_checks(info.cls)
        results += found
        if not as_json:
            show.check_results(out, found)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for result in results[: len(broken)]:
            show.check_results(out, [result])
        out.print(f"{len(infos)} plugin(s) checked: {sum(r.status == 'passed' for r in results)} checks passed, "
                  f"{len(failed)} failed, {sum(r.status == 'skipped' for r in results)} skipped")
    return EXIT_RUNS_FAILED if failed else EXIT_OK


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def cmd_cache_ls(args: argparse.Namespace) -> int:
    from rich.table import Table

    from mmbench.cache import FORMAT_VERSION, EmbeddingCache

    cache = EmbeddingCache()
    entries = cache.entries()
    out = _console()
    if entries:
        table = Table("key", "encoder", "modality", "shape", "size", "created")
        for entry in entries:
            m = entry.manifest
            if m is None:
                table.add_row(entry.key, "[red]unreadable manifest[/red]", "", "", _size(entry.size_bytes),
                              entry.created.isoformat(timespec="seconds"))
                continue
            encoder = m.get("encoder") or {}
            if m.get("format_version") != FORMAT_VERSION:  # never read: `mmbench cache rm KEY` frees it
                encoder = {"name": f"[yellow]old format {m.get('format_version')}, unused[/yellow]"}
            table.add_row(entry.key, f"{encoder.get('name', '?')} {encoder.get('version', '')}".strip(),
                          str(m.get("modality", "?")), "x".join(str(d) for d in m.get("shape", [])),
                          _size(entry.size_bytes), entry.created.isoformat(timespec="seconds"))
        out.print(table)
    out.print(f"{len(entries)} entries, {_size(sum(e.size_bytes for e in entries))} in {cache.root}")
    return EXIT_OK


def cmd_cache_du(args: argparse.Namespace) -> int:
    from mmbench.cache import EmbeddingCache

    cache = EmbeddingCache()
    entries = cache.entries()
    _console().print(f"{_size(sum(e.size_bytes for e in entries))} in {len(entries)} entries ({cache.root})")
    return EXIT_OK


def cmd_cache_rm(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from mmbench.cache import EmbeddingCache
    from mmbench.errors import UserError

    cache = EmbeddingCache()
    entries = cache.entries()
    chosen = entries
    if args.keys:
        chosen = []
        for key in args.keys:
            matches = [e for e in entries if e.key == key] or [e for e in entries if e.key.startswith(key)]
            if len(matches) != 1:
                problem = "no entry" if not matches else f"{len(matches)} entries"
                raise UserError(f"{problem} in the embedding cache matches key {key!r}; "
                                "`mmbench cache ls` lists the keys")
            chosen.append(matches[0])
    if args.older_than is not None:
        if args.older_than < 0:
            raise UserError(f"--older-than takes a number of days >= 0, got {args.older_than}")
        cutoff = datetime.now(UTC) - timedelta(days=args.older_than)
        chosen = [e for e in chosen if e.created < cutoff]
    freed = sum(cache.remove(e.key) for e in {e.key: e for e in chosen}.values())
    _console().print(f"removed {len({e.key for e in chosen})} entries, {_size(freed)} from {cache.root}")
    return EXIT_OK


def cmd_datasets_info(args: argparse.Namespace) -> int:
    import json

    from mmbench import console as show
    from mmbench.dataset_info import load_dataset, parse_settings, summarise
    from mmbench.registry import load_registry

    given = parse_settings(args.set)
    if args.root is not None:
        given["root"] = args.root
    dataset, table = load_dataset(load_registry(), args.name, given)
    summary = summarise(dataset, table)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        show.dataset_info(_console(), summary)
    return EXIT_OK
