"""A seeded mutation corpus of damaged and hostile video files, made from clean clips.

Every mutant is a plain byte-level change of a real file, the kind storage, transfers and
half-finished recordings produce: cut short at many offsets, bytes flipped in the head, the
middle and the tail (where an mp4 keeps its index unless it is "faststart"), blocks zeroed,
chunks duplicated, two files joined, one container's bytes under another's extension, junk
before the first byte. The same seed gives the same corpus.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Where in the file a region-based mutation lands: the first, the middle and the last 8 %.
REGIONS = ("head", "middle", "tail")
#: Truncation points, as fractions of the file size.
CUTS = (0.01, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 0.99, 0.999)


@dataclass(frozen=True)
class Mutant:
    """One damaged file: where it is, what was done to which original."""

    path: Path
    kind: str
    source: str


def _region(size: int, region: str, rng: random.Random) -> int:
    """A random offset inside ``region`` of a file of ``size`` bytes."""
    span = max(1, int(size * 0.08))
    if region == "head":
        lo = 0
    elif region == "middle":
        lo = max(0, size // 2 - span // 2)
    else:
        lo = max(0, size - span)
    return min(size - 1, lo + rng.randrange(span))


def mutations(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """``(kind, bytes)`` of every mutation of ``data``."""
    size = len(data)
    for cut in CUTS:
        yield f"cut-{cut:g}", data[: max(1, int(size * cut))]
    for region in REGIONS:
        for n_bytes in (1, 16, 256):
            mutated = bytearray(data)
            for _ in range(n_bytes):
                mutated[_region(size, region, rng)] ^= rng.randrange(1, 256)
            yield f"flip-{region}-{n_bytes}", bytes(mutated)
        mutated = bytearray(data)
        at = _region(size, region, rng)
        mutated[at : at + 4096] = bytes(len(mutated[at : at + 4096]))
        yield f"zero-{region}", bytes(mutated)
    for k in range(2):
        start = rng.randrange(size)
        chunk = data[start : start + rng.randrange(512, 8192)]
        at = rng.randrange(size)
        yield f"duplicate-{k}", data[:at] + chunk + data[at:]
    for n_bytes in (1, 17, 600):
        yield f"junk-first-{n_bytes}", bytes(rng.randrange(256) for _ in range(n_bytes)) + data


def make_corpus(sources: list[Path], folder: Path, seed: int = 0) -> list[Mutant]:
    """Write every mutation of every source into ``folder`` (one file each, the source's
    extension), two joined files and renamed containers; returns them in a stable order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    corpus: list[Mutant] = []

    def write(name: str, data: bytes, kind: str, source: Path) -> None:
        path = folder / name
        path.write_bytes(data)
        corpus.append(Mutant(path, kind, source.name))

    for n, source in enumerate(sources):
        data = source.read_bytes()
        for kind, mutated in mutations(data, rng):
            write(f"{n:02d}-{kind}{source.suffix}", mutated, kind, source)
    for n, (first, second) in enumerate(itertools.pairwise(sources)):
        joined = first.read_bytes() + second.read_bytes()
        write(f"joined-{n:02d}{first.suffix}", joined, "joined", first)
    suffixes = [".mp4", ".mkv", ".avi", ".gif", ".mov"]
    for n, source in enumerate(sources):
        wrong = next(s for s in suffixes if s != source.suffix.lower())
        write(f"renamed-{n:02d}{wrong}", source.read_bytes(), f"renamed-to{wrong}", source)
    return corpus
