"""Griffe extension for the API reference: the package's docstrings use Sphinx roles
(:func:`videocam.cam.compute_cam`, :class:`~videocam.analysis.Analysis`), which Markdown would
print as they are written. Each becomes inline code with the name the role shows (the last
component after ``~``, as Sphinx does)."""

from __future__ import annotations

import re
from typing import Any

import griffe

#: ``:role:`target``` and ``:py:role:`target```, ``~`` keeping the last component.
ROLE = re.compile(r":(?:py:)?(?:func|class|data|mod|meth|attr|exc|obj|const|term):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """``text`` with every Sphinx role turned into a Markdown code span."""

    def replace(match: re.Match[str]) -> str:
        target = match.group(2).strip().lstrip(".")
        if match.group(1):
            target = target.rsplit(".", 1)[-1]
        return f"`{target}`"

    return ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
