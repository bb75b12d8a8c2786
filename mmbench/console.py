"""What the CLI prints: rich tables built from the same data the files hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmbench.leaderboard import Leaderboard
from mmbench.metric_catalog import METRICS
from mmbench.results import error_text
from mmbench.suite import Suite


def leaderboard(out: Console, board: Leaderboard, rows: int | None = None, page: Path | None = None) -> None:
    """Each dataset's table, its first ``rows`` rows (best first; None: all) and a line
    saying how many more ``page`` holds."""
    for dataset in board.datasets:
        table = Table(title=f"{board.suite} | {dataset.dataset} ({dataset.task})", title_justify="left")
        extra = ["robustness"] if dataset.has_robustness else []
        for header in ("rank", "encoder", "alignment", "fusion", *extra, "n", *board.columns):
            table.add_column(header, justify="right" if header in METRICS or header in ("rank", "n") else "left")
        for row in dataset.rows[:rows]:
            # labels hold parameter values such as ["red", "cyan"]: never rich markup
            cells = [str(row.rank), escape(row.encoder), escape(row.alignment), escape(row.fusion),
                     *([escape(row.robustness)] if extra else []), str(len(row.seeds))]
            for metric in board.columns:
                fmt = METRICS[metric].fmt
                text = escape(row.stats[metric].format(fmt))
                if metric == board.primary and row.ci is not None:
                    text += f" [{row.ci[0]:{fmt}}, {row.ci[1]:{fmt}}]" + (" ≈" if row.not_different else "")
                cells.append(f"[bold green]{text}[/bold green]" if metric in row.best else text)
            table.add_row(*cells)
        out.print(table)
        hidden = len(dataset.rows) - len(dataset.rows[:rows])
        if hidden:
            where = f" in {escape(str(page))}" if page is not None else ""
            out.print(f"[dim]{hidden} more row(s) of {escape(dataset.dataset)}{where}; --rows all prints them[/dim]")


def notes(out: Console, lines: list[str]) -> None:
    """What a command left out or wants the user to know, one line each (never markup)."""
    for line in lines:
        out.print(f"[yellow]note:[/yellow] {escape(line)}")


def grid(out: Console, suite: Suite, todo: set[str]) -> None:
    table = Table(title=f"suite {suite.name}: expanded grid", title_justify="left")
    for header in ("#", "dataset", "encoder", "alignment", "fusion", "seed", "run id", "state"):
        table.add_column(header)
    for i, spec in enumerate(suite.runs(), start=1):
        labels = spec.labels()
        table.add_row(str(i), *(escape(labels[k]) for k in ("dataset", "encoder", "alignment", "fusion")),
                      str(spec.seed), spec.run_id, "to run" if spec.run_id in todo else "[dim]done[/dim]")
    out.print(table)


def results(out: Console, records: list[dict[str, Any]], primary: str) -> None:
    table = Table(title="results", title_justify="left")
    for header in ("dataset", "configuration", "seed", "status", primary, "seconds", "run id"):
        table.add_column(header)
    for r in sorted(records, key=lambda r: (r["labels"]["dataset"], r["labels"]["config"], r["spec"]["seed"])):
        value = (r.get("metrics") or {}).get(primary)
        status = "[green]ok[/green]" if r["status"] == "ok" else \
            f"[red]failed[/red]: {escape(error_text(r['error']))}"
        table.add_row(escape(r["labels"]["dataset"]), escape(r["labels"]["config"]), str(r["spec"]["seed"]), status,
                      "–" if value is None else format(value, METRICS[primary].fmt),
                      "–" if r.get("duration_s") is None else f"{r['duration_s']:.2f}", r["run_id"])
    out.print(table)


def plugins(out: Console, entries: list[dict], broken: list[dict]) -> None:
    table = Table(title="mmbench plugins", title_justify="left")
    for header in ("kind", "name", "version", "distribution", "status", "description"):
        table.add_column(header)
    for e in entries:
        table.add_row(e["kind"], e["name"], e["version"], e["distribution"], _status(e), escape(e["description"]))
    for b in broken:
        # a class that broke its contract has a kind and name; a distribution that failed
        # as a whole (import error, bad hook) is shown as a package, never as a plugin kind
        if b.get("kind"):
            row = (b["kind"], b["name"], b["reason"])
        else:
            row = ("(package)", b["distribution"], f"entry point {b['entry_point']!r}: {b['reason']}")
        table.add_row(row[0], row[1], b["version"], b["distribution"], "[red]broken[/red]", escape(row[2]))
    out.print(table)
    conflicts = sorted({(e["kind"], e["name"]) for e in entries if e["status"] == "conflict"})
    for kind, name in conflicts:
        sources = [e["distribution"] for e in entries if (e["kind"], e["name"], e["status"]) == (kind, name, "conflict")]
        out.print(f"[red]conflict:[/red] {kind} {name!r} is registered by {' and '.join(sources)}; suites cannot "
                  "use it until one is uninstalled or MMBENCH_PLUGINS chooses one")
    for e in entries:
        for note in e.get("deprecations", []):
            out.print(f"[yellow]deprecated:[/yellow] {e['kind']} {e['name']} ({e['distribution']}): {escape(note)}")
    if broken:
        out.print(f"[yellow]{len(broken)} plugin(s) failed to load and were skipped; the others work.[/yellow]")


def check_results(out: Console, results: list) -> None:
    """One plugin's conformance checks: a line for the plugin, then each failure and skip."""
    failed = [r for r in results if r.status == "failed"]
    skipped = [r for r in results if r.status == "skipped"]
    mark = "[red]FAIL[/red]" if failed else "[green]ok[/green]"
    out.print(f"{mark} {results[0].plugin}: {len(results) - len(failed) - len(skipped)} passed"
              + (f", {len(failed)} failed" if failed else "") + (f", {len(skipped)} skipped" if skipped else ""))
    for r in failed:
        out.print(f"  [red]failed[/red] {escape(r.check)}: {escape(r.message)}")
    for r in skipped:  # the first sentence: why (a missing data root or model), not how to get it
        out.print(f"  [dim]skipped {escape(r.check)}: {escape(r.message.split('; ')[0][:160])}[/dim]")


#: the training settings ``mmbench plugins NAME`` names first
TRAIN_SHOWN_FIRST = ("epochs", "lr", "batch_size", "optimizer", "patience")


def _status(entry: dict) -> str:
    if entry["status"] != "ok":
        return f"[red]{entry['status']}[/red]"
    return "[yellow]ok (deprecated)[/yellow]" if entry.get("deprecations") else "[green]ok[/green]"


def plugin_details(out: Console, entries: list[dict], broken: list[dict] | None = None) -> None:
    """One plugin's details; ``entries`` holds several when two distributions register the
    name (a conflict, said first). ``broken`` are the failures to mention: a package that
    failed to load may be the one meant to provide it."""
    if len(entries) > 1:
        out.print(f"[red]conflict:[/red] {entries[0]['kind']} {entries[0]['name']!r} is registered by "
                  f"{' and '.join(e['distribution'] for e in entries)}; suites cannot use it until one is "
                  "uninstalled or MMBENCH_PLUGINS chooses one")
    for e in entries:
        out.print(f"[bold]{e['kind']} {e['name']}[/bold] {e['version']} ({e['distribution']}, "
                  f"entry point {e['entry_point']!r}): {escape(e['description'])}")
        out.print(f"  modalities: {', '.join(e['modalities']) or 'any'}; tasks: {', '.join(e['task_kinds'])}")
        if e.get("capabilities"):
            out.print("  " + "; ".join(f"{k}: {v}" for k, v in e["capabilities"].items()))
        if e.get("citation"):
            out.print(f"  cite: {escape(e['citation'])}")
        for note in e.get("deprecations", []):
            out.print(f"  [yellow]deprecated:[/yellow] {escape(note)}")
        if e.get("train_defaults"):
            train = e["train_defaults"]
            shown = ", ".join(f"{k} {train[k]}" for k in TRAIN_SHOWN_FIRST if k in train)
            rest = ", ".join(f"{k} {v}" for k, v in train.items() if k not in TRAIN_SHOWN_FIRST)
            out.print("  training defaults (a suite's \\[train] overrides them): " + escape(f"{shown}; {rest}"))
        if e["parameters"]:
            table = Table(show_edge=False)
            for header in ("parameter", "type", "default", "allowed", "help"):
                table.add_column(header)
            for p in e["parameters"]:
                allowed = ", ".join(map(str, p["choices"])) if "choices" in p else \
                    " ".join(s for s in (f">= {p['min']}" if "min" in p else "",
                                         f"<= {p['max']}" if "max" in p else "") if s)
                default = "(required)" if p["required"] else repr(p["default"])
                table.add_row(p["name"], p["type"], escape(default), escape(allowed), escape(p["help"]))
            out.print(table)
    for b in broken or []:
        what = f"{b['kind']} {b['name']!r}" if b.get("kind") else f"package {b['distribution']}"
        out.print(f"[yellow]broken:[/yellow] {what} (entry point {b['entry_point']!r}) failed to load: "
                  f"{escape(b['reason'])}")


#: classes shown per split by ``mmbench datasets info`` (``--json`` has them all)
TOP_CLASSES = 20


def dataset_info(out: Console, summary: dict[str, Any]) -> None:
    out.print(f"[bold]{escape(summary['dataset'])}[/bold]: {summary['n']} samples, {summary['task']} task, "
              f"{len(summary['classes'])} classes")
    # one row per class (hundreds of answer classes in COCO-QA, DAQUAR): the most frequent
    # TOP_CLASSES, then the rest summed
    splits = summary["splits"]
    totals = {c: sum(counts.get(c, 0) for counts in splits.values()) for c in summary["classes"]}
    ranked = sorted(totals, key=lambda c: -totals[c]) if len(totals) > TOP_CLASSES else list(totals)
    shown, rest = ranked[:TOP_CLASSES], ranked[TOP_CLASSES:]
    table = Table(title="samples per class and split", title_justify="left")
    table.add_column("class")
    for split in splits:
        table.add_column(escape(split), justify="right")
    table.add_column("total", justify="right")
    for c in shown:
        table.add_row(escape(c), *(str(counts.get(c, 0)) for counts in splits.values()), str(totals[c]))
    if rest:
        table.add_row(f"[dim]{len(rest)} other classes[/dim]",
                      *(str(sum(counts.get(c, 0) for c in rest)) for counts in splits.values()),
                      str(sum(totals[c] for c in rest)))
    table.add_section()
    table.add_row("[bold]all[/bold]", *(str(counts["n"]) for counts in splits.values()), str(summary["n"]))
    out.print(table)
    modalities = Table(title="modalities", title_justify="left")
    for header in ("modality", "kind", "missing"):
        modalities.add_column(header)
    for name, entry in summary["modalities"].items():
        modalities.add_row(escape(name), escape(entry["kind"]), str(entry["missing"]))
    out.print(modalities)
    if summary["groups"] is not None:
        out.print(f"groups (kept within one split): {summary['groups']}")
    skipped = summary["skipped"]
    out.print(f"skipped samples: {skipped['n']}" + "".join(f"\n  {escape(k)}: {escape(v)}"
                                                         for k, v in skipped["examples"].items()))
    for key, value in summary["info"].items():
        out.print(f"{escape(key)}: {escape(str(value))}")
    if summary["example_text"] is not None:
        out.print(f"example text: {escape(summary['example_text'])}")
