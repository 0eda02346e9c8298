"""The command line's options: help texts generated from AnalyzeConfig and the registries, the
exit codes documented, and times that cannot be times refused."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import pytest

import videocam.cli
from videocam.cam import METHODS
from videocam.cli import EXIT_CODES, build_parser, main
from videocam.config import AnalyzeConfig, config_fields
from videocam.errors import ConfigError

SUBCOMMANDS = ("analyze", "demo", "evaluate", "batch", "models", "info", "export")


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def _entries(text: str) -> dict[str, str]:
    """Each option's help entry (invocation and text, whitespace collapsed), by option string."""
    entries: dict[str, str] = {}
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if re.match(r"^  -", line) or not line.startswith("   "):
            if current:
                entry = " ".join(" ".join(current).split())
                for option in re.findall(r"(?:^|, )(--?[\w-]+)", entry.split("  ")[0]):
                    entries[option] = entry
                current = []
            if re.match(r"^  -", line):
                current = [line]
        elif current:
            current.append(line)
    return entries


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.fixture(autouse=True)
def _wide_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per entry wherever it fits


def test_every_analysis_option_shows_its_config_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every AnalyzeConfig field with a value as default (not None, not a flag) shows that value
    in the help of analyze, evaluate and batch; the values come from the dataclass itself."""
    defaults = AnalyzeConfig()
    expected = {}
    for field in config_fields():
        value = getattr(defaults, field.name)
        if value is None or isinstance(value, bool):
            continue
        expected[field.name] = format(value, "g") if isinstance(value, float) else str(value)
    assert {"topk", "min_gap", "alpha", "box_threshold", "model", "device"} <= set(expected)
    for command in ("analyze", "evaluate", "batch"):
        entries = _entries(_help(capsys, command, "x", "-o", "y"))
        actions = _subparsers()[command]._actions
        options = {a.dest: a.option_strings[0] for a in actions if a.option_strings}
        for name, shown in expected.items():
            entry = entries[options[name]]
            assert f"(default: {shown})" in entry, (command, name, entry)


def test_every_option_with_a_default_says_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Every option of every subcommand whose argparse default is a value says its default."""
    for command, parser in _subparsers().items():
        entries = _entries(_help(capsys, command))
        for action in parser._actions:
            if action.nargs == 0 or not action.option_strings:
                continue
            if action.default is None or isinstance(action.default, bool):
                continue
            entry = entries[action.option_strings[0]]
            assert "default" in entry, (command, entry)


def test_the_help_of_min_gap_topk_alpha(capsys: pytest.CaptureFixture[str]) -> None:
    entries = _entries(_help(capsys, "analyze", "x", "-o", "y"))
    assert entries["--topk"].endswith("number of keyframes (default: 5)")
    assert entries["--min-gap"].endswith("least time between keyframes (default: 1)")
    assert entries["--alpha"].endswith("heatmap opacity (default: 0.5)")


def test_the_method_list_is_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("analyze", "demo"):
        entry = _entries(_help(capsys, command))["--method"]
        listed = re.search(r"--method METHOD (?:CAM method: )?(.*?) \(default", entry)
        assert listed is not None, entry
        assert listed.group(1).split(", ") == list(METHODS)


def test_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(EXIT_CODES) == {0, 1, 2, 3, 130, 143}
    text = _help(capsys)
    epilog = text[text.index("exit codes:") :]
    for code, meaning in EXIT_CODES.items():
        assert f"  {code:<4} {meaning}" in epilog
    docstring = videocam.cli.__doc__ or ""
    for code in EXIT_CODES:
        assert re.search(rf"\b{code}\b", docstring), code


@pytest.mark.parametrize(
    ("flags", "option"),
    [
        (["--start", "-3"], "start_s"),
        (["--start=-0.5"], "start_s"),
        (["--end", "-1"], "end_s"),
        (["--end", "0"], "end_s"),
        (["--start", "nan"], "start_s"),
        (["--end", "inf"], "end_s"),
        (["--min-gap", "inf"], "min_gap"),
        (["--min-gap", "nan"], "min_gap"),
        (["--min-gap", "-1"], "min_gap"),
        (["--sample-fps", "inf"], "sample_fps"),
        (["--alpha", "nan"], "alpha"),
    ],
)
def test_a_time_that_cannot_be_one_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], option: str
) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "missing.mp4"), "-o", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("videocam: error: ")
    assert f"option {option}=" in err
    assert not out.exists()


@pytest.mark.parametrize("value", ["-2", "0", "inf", "nan"])
def test_batch_timeout_must_be_finite_and_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    (tmp_path / "in").mkdir()
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), f"--timeout={value}"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--timeout must be a finite number > 0" in err


def test_times_checked_in_the_api_and_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="start_s"):
        AnalyzeConfig(start_s=-3.0)
    with pytest.raises(ConfigError, match="min_gap"):
        AnalyzeConfig(min_gap=math.inf)
    config = tmp_path / "c.yaml"
    config.write_text("start_s: -3\n", encoding="utf-8")
    assert main(["analyze", "x.mp4", "-o", str(tmp_path / "o"), "--config", str(config)]) == 2
    assert AnalyzeConfig(start_s=0.0, end_s=2.5).start_s == 0.0


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert f"usage: videocam {command}" in _help(capsys, command)
