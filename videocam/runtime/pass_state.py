"""What the single pass keeps per window until the target is known, and each batch's step: the
probabilities summed so far and the candidate classes they give, the per-window stores, and
what a batch of windows leaves there — the maps of the kept classes, or the layer output for
the head replay (see :mod:`videocam.runtime.single_pass`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from videocam.runtime.feed import HostCopies
from videocam.runtime.resources import AUTO_CANDIDATES
from videocam.temporal import RowStore

if TYPE_CHECKING:
    import torch

    from videocam.cam.replay import StandIn
    from videocam.cam.targets import ClassIndices
    from videocam.models import LoadedModel


@dataclass
class PassResult:
    """What the pass keeps per window until the target is known (stores in window order).

    The first ``n_kept`` windows keep their layer output (``kept``) for the head replay; the
    others the maps of their classes (``classes``, ``maps``).

    Attributes:
        probs: float32 rows (K,): each window's class probabilities (every window).
        classes: int64 rows (M,): the classes whose maps were kept for each later window.
        maps: float32 rows (M, *S): those maps, at the layer's resolution (S includes t').
        mean_probs: float32 (K,): mean class probability over windows.
        wins: int64 (K,): windows in which each class is the most probable.
        class_free: the method ignores the class (eigencam): ``maps[:, 0]`` serves every class.
        map_shape: one window's map, S.
        kept: float32 rows: the layer's output of each of the first windows, as it returned it.
        stand_in: what the replay runs the model on.
        input_shape: one model input's shape (C, ...).
    """

    probs: RowStore
    classes: RowStore | None
    maps: RowStore | None
    mean_probs: np.ndarray
    class_free: bool
    map_shape: tuple[int, ...]
    kept: RowStore | None = None
    stand_in: StandIn | None = None
    input_shape: tuple[int, ...] | None = None
    wins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def candidates(self) -> int:
        """Classes whose maps each window after the kept ones kept (0: none did)."""
        return 0 if self.classes is None else int(self.classes.row_shape[0])

    @property
    def n_kept(self) -> int:
        """Windows whose maps come from the head replay (the first ones)."""
        return 0 if self.kept is None else len(self.kept)

    def candidate_stores(self) -> tuple[RowStore, RowStore]:
        """``(maps, classes)`` of the windows after the kept ones."""
        if self.maps is None or self.classes is None:
            raise RuntimeError("no window kept the maps of its classes")
        return self.maps, self.classes

    def replay_inputs(self) -> tuple[RowStore, StandIn, tuple[int, ...]]:
        """``(kept layer outputs, stand-in, input shape)`` for the head replay."""
        if self.kept is None or self.stand_in is None or self.input_shape is None:
            raise RuntimeError("no window kept its layer output")
        return self.kept, self.stand_in, self.input_shape

    def close(self) -> None:
        """Close the stores (and remove their spill files)."""
        for store in (self.probs, self.classes, self.maps, self.kept):
            if store is not None:
                store.close()


class ClassTotals:
    """Class probabilities summed over the windows so far, and the candidate classes they give.

    Args:
        background: a class the model declares as background (never a candidate unless it is
            in ``always``), or None.
        always: classes every window keeps (an explicit target, named tracks), first.
        top: keep at least ``len(always) + top`` candidates (classes ranked after the pass;
            ``candidates`` otherwise).
        scores: the model output (b, K) as class scores (default: softmax probabilities).
        candidates: the fewest candidates kept
            (:func:`~videocam.runtime.resources.auto_candidates`).
    """

    def __init__(
        self,
        background: int | None,
        always: Sequence[int] = (),
        top: int = 0,
        scores: Callable[[torch.Tensor], torch.Tensor] | None = None,
        candidates: int = AUTO_CANDIDATES,
    ) -> None:
        self.background = background
        self.always = list(always)
        self.top = top
        self.scores = scores
        self.n_candidates = candidates
        self.total: torch.Tensor | None = None
        self.top_counts: torch.Tensor | None = None
        self.count = 0
        #: The candidates chosen for the latest batch (on the device).
        self.chosen: torch.Tensor | None = None
        self._always: torch.Tensor | None = None
        self._excluded: torch.Tensor | None = None  # bool (K,): never a free candidate
        self._n_excluded = 0

    def candidates(self, output: torch.Tensor) -> ClassIndices:
        """Top classes by mean probability so far (this batch included), on the device: the
        ``always`` classes first. No host synchronisation (the masks are made once)."""
        import torch

        from videocam.cam.targets import ClassIndices

        if self.scores is None:
            probs = torch.softmax(output.float(), dim=1).sum(0)
        else:
            probs = self.scores(output).sum(0)
        score = probs if self.total is None else self.total + probs
        n_classes = score.shape[0]
        if self._excluded is None:
            excluded = list(self.always)
            background = self.background
            if background is not None and 0 <= background < n_classes and n_classes > 1:
                excluded.append(background)
            mask = torch.zeros(n_classes, dtype=torch.bool)
            mask[excluded] = True
            self._excluded = mask.to(score.device)
            self._n_excluded = int(mask.sum())
            if self.always:
                self._always = ClassIndices.on(score.device, self.always, n_classes).tensor
        size = min(n_classes, max(self.n_candidates, len(self.always) + self.top))
        others = max(0, min(size - len(self.always), n_classes - self._n_excluded))
        top = score.masked_fill(self._excluded, -1.0).topk(others).indices
        if self._always is not None:
            top = torch.cat([self._always, top])
        self.chosen = top
        return ClassIndices(top)

    def latest(self, n_rows: int) -> torch.Tensor:
        """The candidates of the latest batch, (n_rows, M)."""
        if self.chosen is None:
            raise RuntimeError("no candidates were chosen yet")
        return self.chosen.expand(n_rows, -1)

    def add(self, probs: torch.Tensor) -> None:
        """Count a batch's probabilities (b, K)."""
        import torch

        batch_total = probs.sum(0)
        self.total = batch_total if self.total is None else self.total + batch_total
        won = torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1])
        self.top_counts = won if self.top_counts is None else self.top_counts + won
        self.count += len(probs)

    def mean(self) -> np.ndarray:
        """float32 (K,): the mean over every window counted."""
        if self.total is None:
            raise RuntimeError("no window was run")
        return (self.total / self.count).cpu().numpy()

    def wins(self) -> np.ndarray:
        """int64 (K,): per class, the windows counted in which it is the most probable."""
        if self.top_counts is None:
            raise RuntimeError("no window was run")
        return self.top_counts.cpu().numpy().astype(np.int64)


class WindowStores:
    """Named :class:`RowStore` objects of per-window arrays, each made at its first rows, when
    their shapes are known."""

    def __init__(self, n_windows: int, memory_bytes: int) -> None:
        self.n_windows = n_windows
        self.memory_bytes = memory_bytes
        self.stores: dict[str, RowStore] = {}

    def append(self, **arrays: np.ndarray) -> None:
        """Append a chunk of rows to each named store (created at first use)."""
        for name, values in arrays.items():
            store = self.stores.get(name)
            if store is None:
                store = self.stores[name] = RowStore(
                    values.shape[1:],
                    values.dtype,
                    capacity=self.n_windows,
                    memory_bytes=self.memory_bytes,
                )
            store.append(values)

    def get(self, name: str) -> RowStore | None:
        """The named store, or None when nothing was appended to it."""
        return self.stores.get(name)

    def close(self) -> None:
        """Close every store (and remove their spill files)."""
        for store in self.stores.values():
            store.close()


class PassState:
    """One pass's batches into its stores: each batch of windows either keeps its layer output
    (while ``room`` bytes remain, for the head replay) or the maps of its classes.

    Args:
        loaded: the model.
        method: the CAM method.
        autocast: run the model in reduced precision.
        n_windows: windows in the pass.
        fixed: the classes every window keeps, when known before the pass (else candidates).
        totals: the probabilities summed so far, and the candidates.
        stand_in: how the head replays, where the pass keeps layer outputs (None: it does not).
        room: bytes of layer outputs to keep at most.
        memory_bytes: per-window results held in memory per store before spilling.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        method: str,
        autocast: bool,
        n_windows: int,
        *,
        fixed: list[int] | None,
        totals: ClassTotals,
        stand_in: StandIn | None,
        room: int,
        memory_bytes: int,
    ) -> None:
        from videocam.cam import ClassIndices, get_method

        self.loaded, self.method, self.autocast = loaded, method, autocast
        self.class_free = get_method(method).class_free
        # Built once on the device: no host synchronisation per batch.
        self.fixed = None if fixed is None else ClassIndices.on(loaded.device, fixed)
        self.totals = totals
        self.stand_in = stand_in
        self.room = room if stand_in is not None else 0
        self.stores = WindowStores(n_windows, memory_bytes)
        self.copies = HostCopies(loaded.device)
        self.map_shape: tuple[int, ...] | None = None
        self.input_shape: tuple[int, ...] | None = None

    def step(self, rows: np.ndarray, inputs: torch.Tensor) -> None:
        """One batch of windows (``rows`` of the plan, their model input). An out-of-memory
        error leaves nothing behind: the caller runs the batch again in parts."""
        self.input_shape = tuple(inputs.shape[1:])
        if self.room > 0:
            self._keep(rows, inputs)
        else:
            self._explain(rows, inputs)

    def _keep(self, rows: np.ndarray, inputs: torch.Tensor) -> None:
        from videocam.cam.replay import forward_with_layer_output

        loaded = self.loaded
        output, raw = forward_with_layer_output(
            loaded.module, inputs, loaded.layer, autocast=self.autocast
        )
        probs = loaded.class_scores(output)
        self.totals.add(probs)
        self.room -= raw[0].numel() * 4 * len(rows)
        self._push("kept", rows, probs, raw.float())

    def _explain(self, rows: np.ndarray, inputs: torch.Tensor) -> None:
        from videocam.cam import cam_and_output_classes

        loaded = self.loaded
        result = cam_and_output_classes(
            loaded.module,
            inputs,
            loaded.layer,
            self.totals.candidates if self.fixed is None else self.fixed,
            self.method,
            reshape=loaded.reshape,
            autocast=self.autocast,
        )
        probs = loaded.class_scores(result.output)
        self.totals.add(probs)
        if self.fixed is not None:
            classes = self.fixed.tensor.expand(len(rows), -1)
        else:
            classes = self.totals.latest(len(rows))
        cams = result.cams[:, :1] if self.class_free else result.cams
        self.map_shape = tuple(cams.shape[2:])
        self._push("maps", rows, probs, classes, cams)

    def _push(self, kind: str, rows: np.ndarray, *tensors: torch.Tensor) -> None:
        for ready in self.copies.push((kind, rows), *tensors):
            self._store(*ready)  # batches arrive in window order

    def _store(self, tagged: tuple[str, np.ndarray], *arrays: np.ndarray) -> None:
        """One batch's results, as :class:`HostCopies` hands them back, into the stores."""
        kind, _ = tagged
        if kind == "kept":
            probs, raw = arrays
            self.stores.append(probs=probs, kept=raw)
        else:
            probs, classes, maps = arrays
            self.stores.append(probs=probs, classes=classes, maps=maps)

    def finish(self, replayed_map_shape: Callable[[PassResult], tuple[int, ...]]) -> PassResult:
        """The stores once every batch is in; ``replayed_map_shape`` gives the maps' shape
        where every window kept its layer output."""
        for ready in self.copies.flush():
            self._store(*ready)
        probs = self.stores.get("probs")
        if probs is None or self.input_shape is None:
            raise RuntimeError("no window was run")
        result = PassResult(
            probs=probs,
            classes=self.stores.get("classes"),
            maps=self.stores.get("maps"),
            mean_probs=self.totals.mean(),
            class_free=self.class_free,
            map_shape=self.map_shape or (),
            kept=self.stores.get("kept"),
            stand_in=self.stand_in,
            input_shape=self.input_shape,
            wins=self.totals.wins(),
        )
        if self.map_shape is None:
            result.map_shape = replayed_map_shape(result)
        return result

    def close(self) -> None:
        """Close the pass's stores."""
        self.stores.close()
