"""The documentation's sources: the README stays a short front door, every relative link and
anchor in the README, the changelog and docs/ resolves, nothing points outside the repository,
and the generated command-line reference covers the whole parser (its render function called
directly, as the site's build hook calls it)."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import unicodedata
from pathlib import Path
from types import ModuleType

import pytest

from videocam.cli import EXIT_CODES, build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS = DOCS / "hooks"


def _hook(name: str) -> ModuleType:
    """A module of docs/hooks/, loaded from its file (docs/ is no package)."""
    module_name = f"videocam_docs_hook_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, HOOKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.rglob("*.md"))]


def _without_code(text: str) -> str:
    """Markdown without fenced blocks and inline code, where a ``](`` is no link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(path: Path) -> list[str]:
    links = _LINK.findall(_without_code(path.read_text(encoding="utf-8")))
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I)]


def _slug(heading: str) -> str:
    """A heading's anchor as Python-Markdown's toc extension (MkDocs) makes it."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(path: Path) -> set[str]:
    if path == DOCS / "reference" / "cli.md":  # its text is rendered at build time
        text = _hook("cli_reference").render_cli_reference()
    else:
        text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)}


def test_readme_is_a_short_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    # The two commands, the CPU-only install and a picture of the review page.
    assert "pip install -e . && videocam demo -o demo-out" in readme
    assert 'pip install -e ".[dev]" && python -m pytest' in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    assert "](docs/images/review-page.png)" in readme


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    """Every relative link names a file of the repository, and an anchor into a Markdown page
    names one of its headings: the links work on GitHub as in the built site."""
    broken = []
    for link in _relative_links(path):
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.is_relative_to(ROOT) or not file.exists():
            broken.append(f"{link}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{link}: no heading #{anchor}")
    assert broken == []


def test_the_pages_have_links() -> None:
    """The link check above reads links at all (a pattern that matched nothing would pass)."""
    links = _relative_links(ROOT / "README.md")
    assert "docs/concepts.md" in links
    assert "docs/images/review-page.png" in links
    assert "../concepts.md#evidence" in _relative_links(DOCS / "guides" / "review-page.md")


def test_nothing_points_outside_the_repository() -> None:
    sources = [*_markdown_files(), ROOT / "mkdocs.yml", *sorted(HOOKS.glob("*.py"))]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, path
        assert "/work/" not in text, path
        for link in _relative_links(path) if path.suffix == ".md" else []:
            target = (path.parent / link.partition("#")[0]).resolve()
            assert target.is_relative_to(ROOT), (path, link)


def test_images_stay_small() -> None:
    images = sorted((DOCS / "images").glob("*.png"))
    assert images, "docs/images has the review page's picture"
    for image in images:
        assert image.stat().st_size < 300 * 1024, image


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_cli_reference_covers_every_subcommand_and_option() -> None:
    page = _hook("cli_reference").render_cli_reference()
    subcommands = _subparsers(build_parser())
    assert set(subcommands) == {"analyze", "demo", "evaluate", "batch", "models", "info", "export"}
    sections = dict(
        zip(
            re.findall(r"^## videocam (\S+)$", page, flags=re.M),
            re.split(r"^## videocam \S+$", page, flags=re.M)[1:],
            strict=True,
        )
    )
    assert list(sections) == list(subcommands)
    for name, sub in subcommands.items():
        section = sections[name]
        assert f"usage: videocam {name}" in section
        # The first cell of each table row: how the argument is spelt (`-o OUT, --out OUT`).
        rows = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            positional = action.metavar or action.dest
            if action.choices and not action.metavar:  # argparse shows {a,b,c}
                positional = "{" + ",".join(map(str, action.choices)) + "}"
            for spelling in action.option_strings or [positional]:
                token = rf"(?:^|[\s,]){re.escape(spelling)}(?![\w-])"
                assert any(re.search(token, row) for row in rows), (
                    f"videocam {name}: {spelling} has no row in the reference"
                )
    for code in EXIT_CODES:
        assert f"| {code} |" in page


def test_cli_reference_shows_defaults_and_method_names() -> None:
    """The help formatter's defaults (from AnalyzeConfig) and the registry's method names."""
    from videocam.cam import METHODS

    analyze = re.split(
        r"^## videocam \S+$", _hook("cli_reference").render_cli_reference(), flags=re.M
    )[1]
    topk = next(line for line in analyze.splitlines() if line.startswith("| `--topk K`"))
    assert topk.endswith("number of keyframes (default: 5) |")
    method = next(line for line in analyze.splitlines() if line.startswith("| `--method METHOD`"))
    assert ", ".join(METHODS) in method
    assert "| `-o OUT, --out OUT` | **required**; output folder |" in analyze


def test_cli_reference_keeps_help_text_literal() -> None:
    hook = _hook("cli_reference")
    assert hook._text("a|b *x* <b> & `code|span`") == r"a\|b \*x\* &lt;b\> &amp; `code|span`"


def test_repository_pages_links_rewritten_for_the_site() -> None:
    hook = _hook("repo_pages")
    readme = "[c](docs/concepts.md#evidence) ![p](docs/images/review-page.png) [l](CHANGELOG.md)"
    assert hook.rewrite_links(readme, "README.md", "index.md") == (
        "[c](concepts.md#evidence) ![p](images/review-page.png) [l](changelog.md)"
    )
    page = "[r](../../README.md#install) [e](../concepts.md) [x](https://example.org/a.md)"
    assert hook.rewrite_links(page, "docs/guides/analyze.md", "guides/analyze.md") == (
        "[r](../index.md#install) [e](../concepts.md) [x](https://example.org/a.md)"
    )
    # A file outside docs/ without a page stays as written, for the strict build to report.
    assert hook.rewrite_links("[s](../LICENSE)", "docs/x.md", "x.md") == "[s](../LICENSE)"


def test_sphinx_roles_become_code_in_the_api_reference() -> None:
    pytest.importorskip("griffe")
    hook = _hook("griffe_roles")
    text = "see :func:`~videocam.models.load_model`, :data:`videocam.cam.METHODS` and :class:`.X`"
    assert hook.plain_roles(text) == "see `load_model`, `videocam.cam.METHODS` and `X`"
