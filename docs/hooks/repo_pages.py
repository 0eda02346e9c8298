"""MkDocs hook: the repository's own README.md and CHANGELOG.md are the site's home page and
changelog, so each is written once, and relative links work both on GitHub and in the site.

The README links into ``docs/`` (``docs/concepts.md``) and the pages of ``docs/`` link back to
``../README.md`` and ``../CHANGELOG.md``: as files of the repository, these resolve anywhere
Markdown is read. At build time every relative link is resolved against the page's place in the
repository and rewritten to the site's page for that file; a link to a file that is not part of
the site is left as it is, so that ``mkdocs build --strict`` reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

#: Repository files shown as site pages: their path in the repository -> their page in the site.
ROOT_PAGES = {"README.md": "index.md", "CHANGELOG.md": "changelog.md"}

#: ``[text](target)`` and ``![alt](target)``: the target up to a space, ``)`` or ``#``.
LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")

_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def site_target(page_repo_path: str, target: str, docs_dir: str = "docs") -> str | None:
    """The site path (relative to ``docs_dir``) of the file a relative link on the page at
    ``page_repo_path`` (a path in the repository) points to; None when it is not a page or
    file of the site (an external link, or a file outside ``docs_dir`` without a page)."""
    if _EXTERNAL.match(target) or target.startswith("/"):
        return None
    repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(page_repo_path), target))
    if repo_path in ROOT_PAGES:
        return ROOT_PAGES[repo_path]
    if repo_path.startswith(docs_dir + "/"):
        return repo_path[len(docs_dir) + 1 :]
    return None


def rewrite_links(markdown: str, page_repo_path: str, page_site_path: str) -> str:
    """``markdown`` of the page at ``page_repo_path`` with each relative link rewritten to
    point, from the page's place in the site (``page_site_path``), at the same file."""

    def replace(match: re.Match[str]) -> str:
        target = site_target(page_repo_path, match.group(2))
        if target is None:
            return match.group(0)
        relative = posixpath.relpath(target, posixpath.dirname(page_site_path) or ".")
        return f"{match.group(1)}{relative}{match.group(3)}"

    return LINK.sub(replace, markdown)


def _repo_root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_files(files: Any, config: Any) -> Any:
    """Add README.md and CHANGELOG.md as the pages ``index.md`` and ``changelog.md``."""
    from mkdocs.structure.files import File

    root = _repo_root(config)
    for repo_path, site_path in ROOT_PAGES.items():
        content = (root / repo_path).read_text(encoding="utf-8")
        files.append(File.generated(config, site_path, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Resolve the page's relative links as the repository does, then point them at the site."""
    site_path = page.file.src_uri
    repo_paths = {site: repo for repo, site in ROOT_PAGES.items()}
    docs_dir = Path(config.docs_dir).resolve().relative_to(_repo_root(config)).as_posix()
    repo_path = repo_paths.get(site_path, f"{docs_dir}/{site_path}")
    return rewrite_links(markdown, repo_path, site_path)
