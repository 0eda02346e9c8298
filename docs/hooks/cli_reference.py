"""MkDocs hook: the command-line reference page, rendered from the argument parser itself
(:func:`videocam.cli.build_parser`) each time the site is built, so it cannot go stale.

Every subcommand gets its usage, description, and one table per argument group: each option's
spellings, metavar and help text with the default the ``--help`` output shows (the help
formatter of :mod:`videocam.cli` fills in defaults from ``AnalyzeConfig`` and the method names
from the registry). ``render_cli_reference()`` returns the page's Markdown; the tests call it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

#: The page whose text is replaced by the rendered reference (relative to ``docs/``). Its source
#: holds only a note, so that links to it work where Markdown is read without building.
PAGE = "reference/cli.md"

#: Usage lines are wrapped at this width, whatever the terminal building the site (it fits the
#: page's column).
WIDTH = 80

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|>])")
#: A help text's `name` stays a code span, as ``--help`` readers read it.
_CODE_SPAN = re.compile(r"(`[^`]+`)")


def _text(value: str) -> str:
    """Help text as Markdown that shows it verbatim, on one line: backslash escapes, but for
    the text's own `code spans`, which stay code."""
    parts = _CODE_SPAN.split(" ".join(value.split()))
    return "".join(part if i % 2 else _plain(part) for i, part in enumerate(parts))


def _plain(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escaped)


def _code(value: str) -> str:
    """An inline code span that holds ``value`` whatever backticks it contains."""
    fence = "``" if "`" in value else "`"
    return f"{fence}{value}{fence}"


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return parser.formatter_class(prog=parser.prog, width=WIDTH)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """``-o OUT, --out OUT`` / ``--input-size H W`` / ``VIDEO``, as ``--help`` spells it."""
    return _formatter(parser)._format_action_invocation(action)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text ``--help`` shows for ``action``, its default included."""
    if action.help is None:
        return ""
    return _formatter(parser)._expand_help(action)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Each subcommand's name -> (its parser, its one-line help), in the parser's order."""
    found: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                found[name] = (sub, helps.get(name, ""))
    return found


def _shown(action: argparse.Action) -> bool:
    return action.help != argparse.SUPPRESS and not isinstance(
        action, (argparse._SubParsersAction, argparse._HelpAction)
    )


def _groups(parser: argparse.ArgumentParser) -> list[tuple[str, list[argparse.Action]]]:
    groups = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if _shown(a)]
        if actions:
            groups.append((group.title or "arguments", actions))
    return groups


def _table(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> list[str]:
    lines = ["| argument | meaning |", "|---|---|"]
    for action in actions:
        meaning = _text(_help(parser, action))
        if action.required and action.option_strings:
            meaning = f"**required**; {meaning}"
        lines.append(f"| {_code(_invocation(parser, action))} | {meaning} |")
    return lines


def _section(name: str, parser: argparse.ArgumentParser, summary: str) -> list[str]:
    lines = [f"## videocam {name}", "", _text(summary), "", "```text", _usage(parser), "```", ""]
    if parser.description:
        lines += ["```text", parser.description.rstrip(), "```", ""]
    for title, actions in _groups(parser):
        lines += [f"**{_text(title)}**", "", *_table(parser, actions), ""]
    return lines


def render_cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The command-line reference page, as Markdown, for ``parser`` (default: videocam's)."""
    from videocam.cli import EXIT_CODES, build_parser

    if parser is None:
        parser = build_parser()
    subs = subcommands(parser)
    lines = [
        "# Command line",
        "",
        "Generated from the argument parser (`videocam.cli.build_parser()`) when this site is "
        "built: the same options, defaults and help texts as `videocam SUBCOMMAND --help`. "
        "What the options mean in practice is in the [guides](../guides/analyze.md) and the "
        "[concepts](../concepts.md); names, files and columns that scripts may rely on are in "
        "the [interface contract](../contract.md).",
        "",
        "```text",
        _usage(parser),
        "```",
        "",
        _text(parser.description or ""),
        "",
        "| subcommand | what it does |",
        "|---|---|",
        *(
            f"| [`{name}`](#videocam-{name}) | {_text(help_)} |"
            for name, (_, help_) in subs.items()
        ),
        "",
        "`videocam --version` prints the version; `python -m videocam` is the same command.",
        "",
        "## Exit codes",
        "",
        "| code | meaning |",
        "|---|---|",
        *(f"| {code} | {_text(meaning)} |" for code, meaning in EXIT_CODES.items()),
        "",
    ]
    for name, (sub, help_) in subs.items():
        lines += _section(name, sub, help_)
    return "\n".join(lines).rstrip() + "\n"


def on_config(config: Any) -> Any:
    """Import the package of the checkout being documented (mkdocs.yml's folder) first."""
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """The page ``docs/reference/cli.md`` (a placeholder in the sources) gets the rendered
    reference instead of its text."""
    if page.file.src_uri == PAGE:
        return render_cli_reference()
    return markdown
