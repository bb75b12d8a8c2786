"""`mmbench history`: one line per record that survives crashes and concurrent writers, a
trend with its plot, and a check that flags a step change beyond seed noise only."""

from __future__ import annotations

import copy
import json
import multiprocessing
import textwrap
from pathlib import Path

import pytest
from support import TINY_SUITE

from mmbench import history
from mmbench.compare import Thresholds
from mmbench.leaderboard import Leaderboard

COMMITTED = Path(__file__).resolve().parent.parent / "leaderboard" / "quickstart.json"
BRSET_EARLY = ("brset_like", "- / - / early", "-")


def board(shift: float = 0.0, std: float | None = None, time_factor: float = 1.0) -> Leaderboard:
    """The committed quickstart leaderboard, brset_like early's auroc moved by ``shift``."""
    data = json.loads(COMMITTED.read_text())
    data = copy.deepcopy(data)
    for dataset in data["datasets"]:
        for row in dataset["rows"]:
            if dataset["dataset"] == "brset_like" and row["fusion"] == "early":
                row["metrics"]["auroc"]["mean"] += shift
                if std is not None:
                    row["metrics"]["auroc"]["std"] = std
            row["metrics"]["train_s_per_epoch"]["mean"] *= time_factor
    return Leaderboard.from_dict(data)


def record(path: Path, commit: str, machine: str = "m1", **kwargs) -> None:
    history.append(path, history.summary(board(**kwargs), commit, machine, recorded_at="2026-01-01T00:00:00Z"))


def test_each_record_is_one_line_with_every_configuration_and_its_interval(tmp_path):
    path = tmp_path / "h.jsonl"
    record(path, "c1")
    record(path, "c2", shift=0.01)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    points, notes = history.read(path)
    assert notes == [] and [p.commit for p in points] == ["c1", "c2"]
    assert len(points[0].side.rows) == 12
    first, second = (p.side.rows[BRSET_EARLY]["auroc"].mean for p in points)
    assert second - first == pytest.approx(0.01)
    lo, hi = points[0].intervals[BRSET_EARLY]
    assert lo < first < hi
    assert points[0].side.rows[BRSET_EARLY]["peak_rss_mb"].mean > 0  # memory and times travel too


def test_a_torn_or_damaged_line_is_skipped_with_a_note_and_the_next_record_is_readable(tmp_path):
    path = tmp_path / "h.jsonl"
    record(path, "c1")
    record(path, "c2")
    text = path.read_bytes()
    # line 2 damaged in place, then a writer killed mid-line (no newline at the end)
    lines = text.split(b"\n")
    lines[1] = lines[1][:50] + b"#garbage#" + lines[1][60:]
    path.write_bytes(b"\n".join(lines[:2]) + b"\n" + lines[0][:100])
    record(path, "c3")
    points, notes = history.read(path)
    assert [p.commit for p in points] == ["c1", "c3"]
    assert len(notes) == 2 and all("damaged line skipped" in n for n in notes)
    assert notes[0].startswith(f"{path}:2:") and notes[1].startswith(f"{path}:3:")


def _append_many(path: str, worker: int) -> None:
    for i in range(15):
        record(Path(path), f"w{worker}-{i}")


def test_two_processes_appending_at_once_lose_and_mix_no_line(tmp_path):
    path = tmp_path / "h.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w)) for w in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    points, notes = history.read(path)
    assert notes == [] and len(points) == 30
    assert sorted(p.commit for p in points) == sorted(f"w{w}-{i}" for w in range(2) for i in range(15))


def test_check_flags_a_step_beyond_seed_noise_and_nothing_within_it(tmp_path):
    path = tmp_path / "h.jsonl"
    for i in range(4):
        record(path, f"c{i}", shift=0.002 * (i % 2))
    points, _ = history.read(path)
    assert history.check(points).regressions == []

    record(path, "drop", shift=-0.08)  # std over seeds ~0.01: 0.08 is far past max(0.02, 3 x std)
    points, _ = history.read(path)
    regressions = history.check(points).regressions
    assert [(c.dataset, c.config, c.metric) for c in regressions] == [("brset_like", "- / - / early", "auroc")]

    noisy = tmp_path / "noisy.jsonl"
    for i in range(3):
        record(noisy, f"c{i}", std=0.04)
    record(noisy, "drop", shift=-0.08, std=0.04)  # within 3 x 0.04: seed noise
    points, _ = history.read(noisy)
    assert history.check(points).regressions == []


def test_times_are_judged_within_one_machine_only(tmp_path):
    path = tmp_path / "h.jsonl"
    for i in range(3):
        record(path, f"c{i}", machine="laptop")
    record(path, "ci", machine="runner", time_factor=5.0)  # another machine: not a slowdown
    points, _ = history.read(path)
    comparison = history.check(points)
    assert comparison.regressions == [] and not comparison.costs_compared
    record(path, "slow", machine="laptop", time_factor=5.0)  # the same machine five times slower
    points, _ = history.read(path)
    regressions = history.check(points, Thresholds(time_ratio=1.5)).regressions
    assert regressions and {c.metric for c in regressions} == {"train_s_per_epoch"}
    # and a time trend shows one machine's points only
    shown, keys, machine = history.select(points, "train_s_per_epoch")
    assert machine == "laptop" and [p.commit for p in shown] == ["c0", "c1", "c2", "slow"]
    assert len(history.select(points, "auroc")[0]) == 5


def test_the_plot_is_byte_identical_for_the_same_history(tmp_path):
    path = tmp_path / "h.jsonl"
    for i in range(3):
        record(path, f"c{i}", shift=0.01 * i)
    points, _ = history.read(path)
    shown, keys, _ = history.select(points, "auroc", "brset")
    assert [k[0] for k in keys] == ["brset_like"] * 3
    a = history.plot(shown, keys, "auroc", "t", tmp_path / "a.png").read_bytes()
    b = history.plot(shown, keys, "auroc", "t", tmp_path / "b.png").read_bytes()
    assert a == b and a[:8] == b"\x89PNG\r\n\x1a\n"




def test_record_show_check_from_the_command_line(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "tiny.toml"
    suite.write_text(textwrap.dedent(TINY_SUITE))
    assert run_cli("history", "record", suite).code == 2  # nothing ran yet: says so
    assert run_cli("run", suite).code == 0
    for commit in ("a1", "b2"):
        out = run_cli("history", "record", suite, "--commit", commit, "--machine", "box")
        assert out.code == 0 and f"at commit {commit} on machine box" in out.out
    assert len((tmp_path / "leaderboard" / "history" / "tiny.jsonl").read_text().splitlines()) == 2
    shown = run_cli("history", "show", suite, "--config", "early")
    assert shown.code == 0 and "late_joint" not in shown.out and "early" in shown.out
    assert (tmp_path / "leaderboard" / "history" / "tiny" / "auroc-early.png").is_file()
    assert run_cli("history", "check", suite).code == 0
    # a result edited to a much worse AUROC: the next point is a step change
    for result in (tmp_path / "results" / "tiny").glob("*.json"):
        data = json.loads(result.read_text())
        data["metrics"]["auroc"] = 0.2
        result.write_text(json.dumps(data))
    assert run_cli("history", "record", suite, "--commit", "c3", "--machine", "box").code == 0
    flagged = run_cli("history", "check", suite)
    assert flagged.code == 1 and "REGRESSION" in flagged.out
    # the site page shows the trend plots
    assert run_cli("leaderboard", suite).code == 0
    assert 'src="history/tiny/auroc-early.png"' in (tmp_path / "leaderboard" / "tiny.html").read_text()
