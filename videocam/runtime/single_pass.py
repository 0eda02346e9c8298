"""The single pass: every window of a video through the model once, the maps of the target
(or of the candidate classes while it is unknown) kept, and fused into per-frame maps.

Each batch of windows goes through :func:`~videocam.cam.cam_and_output_classes`, which runs the
forward once and takes, in one batched backward through the head, the maps of M classes: the
explicit target, or, with the target unknown until the end (``auto``), the
:data:`~videocam.runtime.resources.AUTO_CANDIDATES` classes with the highest mean probability
so far (all of them for models with few classes; for object detectors,
:data:`~videocam.runtime.resources.DETECTOR_AUTO_CANDIDATES`). :meth:`SinglePass.explain` then
picks each window's map of the video-level target; the rare window whose candidates missed it
is decoded and explained again, so the maps are exactly those of a forward-only scan followed by
a CAM pass with the chosen target, at the cost of one pass.

"Probabilities" are the model's class scores (:meth:`~videocam.models.LoadedModel.class_scores`):
softmax probabilities of a classifier, the detection masses of an object detector.

Memory does not grow with the video beyond the per-frame maps: per-window results past a bound
spill to an anonymous temporary file (:class:`~videocam.temporal.RowStore`), and so do the
decoded frames when the caller keeps them (``keep_frames``, for perturbation re-scoring).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from videocam.io import FrameSource, stand_ins
from videocam.runtime import resources
from videocam.runtime.feed import HostCopies, model_input, window_inputs
from videocam.temporal import FrameAccumulator, FrameMaps, RowStore

if TYPE_CHECKING:
    import torch

    from videocam.cam.targets import ClassIndices
    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: Bytes of per-window results (each store) held in memory before spilling to a temporary file.
STORE_MEMORY_BYTES = 16 * 2**20
#: Bytes of kept decoded frames held in memory before spilling to a temporary file.
FRAME_MEMORY_BYTES = 16 * 2**20
#: Bytes of kept window maps read back at once when fusing.
FUSE_CHUNK_BYTES = 8 * 2**20


@dataclass
class KeptFrames:
    """The decoded frames the pass fed the model, kept for a later pass over the same windows.

    Attributes:
        store: uint8 rows (H, W, 3), one per sampled position, stand-ins included (position
            ``p`` holds the frame the model saw there).
        total: float64 (H, W, 3): the sum of the stored rows.
        window_maps: float32 rows (t', h, w), one per window (t' = 1 for frame models): each
            window's own map of the target at the layer's resolution, raw scale, before the
            fusion into frames; filled once the target is known.
    """

    store: RowStore
    total: np.ndarray | None = None
    window_maps: RowStore | None = None

    def add(self, chunk: np.ndarray) -> None:
        self.store.append(chunk)
        chunk_sum = chunk.sum(axis=0, dtype=np.float64)
        self.total = chunk_sum if self.total is None else self.total + chunk_sum

    def close(self) -> None:
        self.store.close()
        if self.window_maps is not None:
            self.window_maps.close()


@dataclass(frozen=True)
class TrackCurves:
    """One class followed over the video (``--tracks``), from the same pass as the target.

    Attributes:
        class_index: the class.
        map_mean: float64, shape (n_positions,): the mean of each position's fused map of this
            class, on the maps' raw scale (divide by one scale shared by all tracks).
        map_max: float32, shape (n_positions,): the maximum of each position's map.
        target_score: float, shape (n_positions,): the class's probability, averaged over the
            windows covering each position.
    """

    class_index: int
    map_mean: np.ndarray = field(repr=False)
    map_max: np.ndarray = field(repr=False)
    target_score: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Explained:
    """What the single pass gives for one video and one target.

    Attributes:
        target: the explained class.
        maps: each sampled position's fused map at the layer's spatial resolution (raw scale,
            >= 0), in a temporary file past a bound, with its mean, maximum and the target's
            probability (averaged over the windows covering it); the caller closes it.
        class_probs: float32, shape (K,): mean class probability over the windows.
        class_wins: int64, shape (K,): the windows in which each class is the most probable
            (the first on ties).
        layer_shape: the layer's map shape per window (t', h, w); t' = 1 for frame models.
        candidates_per_window: classes whose maps each window kept while the target was
            unknown; None for an explicit target.
        n_recomputed: windows decoded and explained again (their candidates missed the target).
        seconds: ``model_pass_s`` (the pass) and ``fuse_s`` (picking and fusing the maps).
        frames: the decoded frames, when kept (the caller closes them).
        tracks: the classes followed besides the target, in the order asked.
    """

    target: int
    maps: FrameMaps = field(repr=False)
    class_probs: np.ndarray = field(repr=False)
    layer_shape: tuple[int, ...]
    candidates_per_window: int | None
    n_recomputed: int
    seconds: dict[str, float]
    frames: KeptFrames | None = field(default=None, repr=False)
    tracks: list[TrackCurves] = field(default_factory=list, repr=False)
    class_wins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    @property
    def target_score(self) -> np.ndarray:
        """float64 (n_positions,): the target's probability per position."""
        return self.maps.scores


@dataclass
class _PassResult:
    """What the pass keeps per window until the target is known (stores in window order).

    Attributes:
        probs: float32 rows (K,): each window's class probabilities.
        classes: int64 rows (M,): the classes whose maps were kept for each window.
        maps: float32 rows (M, *S): those maps, at the layer's resolution (S includes t').
        mean_probs: float32 (K,): mean class probability over windows.
        wins: int64 (K,): windows in which each class is the most probable.
        class_free: the method ignores the class (eigencam): ``maps[:, 0]`` serves every class.
    """

    probs: RowStore
    classes: RowStore
    maps: RowStore
    mean_probs: np.ndarray
    class_free: bool
    wins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def close(self) -> None:
        for store in (self.probs, self.classes, self.maps):
            store.close()


class _ClassTotals:
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
        candidates: int = resources.AUTO_CANDIDATES,
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


class _WindowStores:
    """One :class:`RowStore` per per-window array (probabilities, classes, maps), made at the
    first batch, when their shapes are known."""

    def __init__(self, n_windows: int) -> None:
        self.n_windows = n_windows
        self.stores: list[RowStore] = []

    def append(self, *arrays: np.ndarray) -> None:
        if not self.stores:
            self.stores = [
                RowStore(
                    a.shape[1:], a.dtype, capacity=self.n_windows, memory_bytes=STORE_MEMORY_BYTES
                )
                for a in arrays
            ]
        for store, values in zip(self.stores, arrays, strict=True):
            store.append(values)

    def close(self) -> None:
        for store in self.stores:
            store.close()


class SinglePass:
    """Runs the model once over every window of ``plan`` and fuses the maps per frame.

    Args:
        loaded: the model, on its device.
        source: the open video.
        indices: int64, shape (n_positions,): the sampled source frames, increasing.
        plan: int64, shape (n_windows, T): positions of each window (T = 1 for frame models).
        method: the CAM method (see :data:`videocam.cam.METHODS`).
        batch: windows (or frames) per forward.
        autocast: run the model in reduced precision (CAM arithmetic stays float32).
        progress: show a progress bar.
        keep_frames: keep the decoded frames and each window's map of the target
            (:attr:`Explained.frames`).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        source: FrameSource,
        indices: np.ndarray,
        plan: np.ndarray,
        *,
        method: str,
        batch: int,
        autocast: bool = False,
        progress: bool = False,
        keep_frames: bool = False,
    ) -> None:
        self.loaded = loaded
        self.source = source
        self.indices = indices
        self.plan = plan
        self.method = method
        self.batch = batch
        self.autocast = autocast
        self.progress = progress
        self.keep_frames = keep_frames
        self.n_recomputed = 0
        #: Windows per forward: ``batch``, halved after each out-of-memory error.
        self.chunk = batch
        #: Out-of-memory errors the pass recovered from.
        self.oom_splits = 0
        self.background_decoding = resources.background_decoding(loaded.device)

    def explain(
        self,
        target: int | None,
        choose: Callable[[np.ndarray], int],
        *,
        tracks: Sequence[int] = (),
        top_tracks: int = 0,
        rank: Callable[[np.ndarray], Sequence[int]] | None = None,
    ) -> Explained:
        """The pass, the target, and the fused maps of that target (and of the tracks).

        Args:
            target: the class to explain, or None to decide after the pass.
            choose: with ``target`` None, the video-level class from the mean class
                probabilities (float32 (K,)).
            tracks: classes to follow besides the target, known before the pass.
            top_tracks: also follow the first ``top_tracks`` classes of ``rank(mean class
                probabilities)``, known after the pass.
            rank: classes from the most to the least probable (needed with ``top_tracks``).
        """
        if top_tracks and rank is None:
            raise ValueError("top_tracks needs rank")
        kept = self._frame_keeper() if self.keep_frames else None
        fused: FrameMaps | None = None
        try:
            started = time.perf_counter()
            result = self.run(
                target, tap=None if kept is None else kept.add, always=tracks, top=top_tracks
            )
            try:
                passed = time.perf_counter()
                chosen = target if target is not None else choose(result.mean_probs)
                fused = self._frame_maps(result)
                if kept is not None:
                    kept.window_maps = self._window_store(result)
                layer_shape = self.fuse_into(
                    result, chosen, fused, windows=None if kept is None else kept.window_maps
                )
                followed = list(dict.fromkeys(tracks))
                if top_tracks and rank is not None:
                    ranked = [c for c in rank(result.mean_probs) if c not in followed]
                    followed += ranked[:top_tracks]
                curves = [self._track(result, c, chosen, fused) for c in followed]
            finally:
                result.close()
        except BaseException:
            for owned in (kept, fused):
                if owned is not None:
                    owned.close()
            raise
        return Explained(
            target=chosen,
            maps=fused,
            class_probs=result.mean_probs,
            class_wins=result.wins,
            layer_shape=layer_shape,
            candidates_per_window=None if target is not None else int(result.classes.row_shape[0]),
            n_recomputed=self.n_recomputed,
            seconds={
                "model_pass_s": passed - started,
                "fuse_s": time.perf_counter() - passed,
            },
            frames=kept,
            tracks=curves,
        )

    def _track(
        self, result: _PassResult, class_index: int, target: int, target_maps: FrameMaps
    ) -> TrackCurves:
        """The per-frame numbers of one followed class (its maps are not kept)."""
        if class_index == target:
            numbers = target_maps
        else:
            numbers = self._frame_maps(result, keep_maps=False)
            self.fuse_into(result, class_index, numbers)
        return TrackCurves(
            class_index=int(class_index),
            map_mean=numbers.means,
            map_max=numbers.maxes,
            target_score=numbers.scores,
        )

    def _shrink_chunk(self, error: BaseException) -> None:
        """After an out-of-memory error: free the allocator's cache and halve the windows per
        forward for the rest of the pass (the failed batch runs again in halves); ``error``
        again when one window does not fit."""
        import torch

        if self.chunk == 1:
            raise error
        if self.loaded.device.type == "cuda":
            torch.cuda.empty_cache()
        self.chunk = max(1, self.chunk // 2)
        self.oom_splits += 1
        device = self.loaded.device
        logger.warning(
            "out of memory on %s: %d windows per forward from now on", device, self.chunk
        )

    def _frame_keeper(self) -> KeptFrames:
        height, width = self.loaded.preprocess.size
        store = RowStore(
            (height, width, 3),
            np.uint8,
            capacity=len(self.indices),
            memory_bytes=FRAME_MEMORY_BYTES,
        )
        return KeptFrames(store)

    # -- the pass -------------------------------------------------------------------------------

    def run(
        self,
        target: int | None,
        *,
        tap: Callable[[np.ndarray], None] | None = None,
        always: Sequence[int] = (),
        top: int = 0,
    ) -> _PassResult:
        """Every window through the model once: probabilities and maps of the kept classes.

        The classes each window keeps: the target and ``always`` when they are all known (and
        ``top`` is 0); else the candidates (see :class:`_ClassTotals`), which include them.
        Methods that ignore the class keep one map, which serves every class.

        Args:
            target: the class to explain, or None for ``auto`` (decided after the pass).
            tap: called with each decoded chunk of frames (see :func:`window_inputs`).
            always: classes every window keeps besides the target.
            top: keep enough candidates for ``top`` classes ranked after the pass.
        """
        import torch

        from videocam.cam import ClassIndices, cam_and_output_classes, get_method

        loaded = self.loaded
        class_free = get_method(self.method).class_free
        known = list(dict.fromkeys([*([] if target is None else [target]), *always]))
        fixed: list[int] | None = None
        if class_free:
            fixed = [0]
        elif target is not None and not top:
            fixed = known
        # Built once on the device: no host synchronisation per batch.
        fixed_classes = None if fixed is None else ClassIndices.on(loaded.device, fixed)
        probs_so_far = _ClassTotals(
            loaded.background_class,
            known,
            top,
            loaded.class_scores,
            resources.auto_candidates(loaded),
        )
        stores = _WindowStores(len(self.plan))
        copies = HostCopies(loaded.device)
        batches = window_inputs(
            loaded,
            self.source,
            self.indices,
            self.plan,
            self.batch,
            background=self.background_decoding,
            progress=self.progress,
            tap=tap,
        )
        try:
            for batch_rows, batch_inputs in batches:
                start = 0
                while start < len(batch_rows):  # a batch is split only after an out-of-memory
                    rows = batch_rows[start : start + self.chunk]
                    inputs = batch_inputs[start : start + self.chunk]
                    try:
                        result = cam_and_output_classes(
                            loaded.module,
                            inputs,
                            loaded.layer,
                            probs_so_far.candidates if fixed_classes is None else fixed_classes,
                            self.method,
                            reshape=loaded.reshape,
                            autocast=self.autocast,
                        )
                    except torch.OutOfMemoryError as error:
                        self._shrink_chunk(error)
                        continue
                    start += len(rows)
                    probs = loaded.class_scores(result.output)
                    probs_so_far.add(probs)
                    if fixed_classes is not None:
                        classes = fixed_classes.tensor.expand(len(rows), -1)
                    else:
                        assert probs_so_far.chosen is not None
                        classes = probs_so_far.chosen.expand(len(rows), -1)
                    cams = result.cams[:, :1] if class_free else result.cams
                    for ready in copies.push(rows, probs, classes, cams):
                        stores.append(*ready[1:])  # batches arrive in window order
            for ready in copies.flush():
                stores.append(*ready[1:])
        except BaseException:
            stores.close()
            raise
        finally:
            batches.close()
        probs_store, classes_store, maps_store = stores.stores
        return _PassResult(
            probs=probs_store,
            classes=classes_store,
            maps=maps_store,
            mean_probs=probs_so_far.mean(),
            class_free=class_free,
            wins=probs_so_far.wins(),
        )

    # -- from windows to frames ----------------------------------------------------------------

    def _window_store(self, result: _PassResult) -> RowStore:
        """An empty store for one map of the target per window, (t', h, w)."""
        map_shape = result.maps.row_shape[1:]
        if self.loaded.kind == "frame":
            map_shape = (1, *map_shape)
        return RowStore(
            map_shape, np.float32, capacity=len(self.plan), memory_bytes=STORE_MEMORY_BYTES
        )

    def fuse_into(
        self,
        result: _PassResult,
        target: int,
        sink: FrameMaps,
        *,
        windows: RowStore | None = None,
    ) -> tuple[int, ...]:
        """Stream the per-frame maps and scores of ``target`` into ``sink``, frame by frame as
        each becomes final (no later window covers it): memory holds the windows in flight.
        With ``windows``, each window's own map (t', h, w) is appended there too.

        Returns:
            The layer's map shape per window (t', h, w); t' = 1 for frame models.
        """
        n_windows = len(self.plan)
        if len(result.maps) != n_windows:
            raise RuntimeError(f"kept {len(result.maps)} windows of {n_windows}")
        map_shape = result.maps.row_shape[1:]
        if self.loaded.kind == "frame":
            map_shape = (1, *map_shape)  # one time step per "window"
        accumulator = FrameAccumulator(len(self.indices), map_shape[1:], 1)
        chunk = max(1, FUSE_CHUNK_BYTES // max(1, result.maps.row_bytes))
        for start in range(0, n_windows, chunk):
            stop = min(start + chunk, n_windows)
            maps = result.maps.read(start, stop)
            if result.class_free:
                picked = maps[:, 0]
            else:
                hit = result.classes.read(start, stop) == target
                picked = maps[np.arange(stop - start), hit.argmax(axis=1)]
                missed = np.flatnonzero(~hit.any(axis=1))
                if len(missed):
                    picked[missed] = self._recompute(start + missed, target)
            scores = result.probs.read(start, stop)[:, target : target + 1]
            window_maps = picked.reshape(stop - start, *map_shape)
            if windows is not None:
                windows.append(window_maps.astype(np.float32, copy=False))
            accumulator.add(self.plan[start:stop], window_maps, scores)
            # Windows start in order: frames before the next window's first one are final.
            final = int(self.plan[stop, 0]) if stop < n_windows else len(self.indices)
            positions, frame_maps, frame_scores = accumulator.pop_final(final)
            sink.add(positions, frame_maps, frame_scores[:, 0])
        return tuple(map_shape)

    def _frame_maps(self, result: _PassResult, *, keep_maps: bool = True) -> FrameMaps:
        spatial = (
            result.maps.row_shape[1:]
            if self.loaded.kind == "frame"
            else (result.maps.row_shape[2:])
        )
        return FrameMaps(len(self.indices), spatial, keep_maps=keep_maps)

    def _recompute(self, rows: np.ndarray, target: int) -> np.ndarray:
        """Maps of ``target`` for windows whose candidates missed it: decoded and run again.

        Returns:
            float32, shape (len(rows), *S) as kept by the pass.
        """
        from videocam.cam import cam_and_output_classes

        loaded = self.loaded
        # The frames the pass used: undecodable ones replaced by the same stand-ins.
        decodable = self.indices[stand_ins(self.indices, self.source.skipped_indices)]
        out = []
        for start in range(0, len(rows), self.chunk):
            batch_rows = rows[start : start + self.chunk]
            positions = np.unique(self.plan[batch_rows])
            frames = self.source.read(decodable[positions], size=loaded.preprocess.size)
            block = frames[np.searchsorted(positions, self.plan[batch_rows])]
            result = cam_and_output_classes(
                loaded.module,
                model_input(loaded, block),
                loaded.layer,
                [target],
                self.method,
                reshape=loaded.reshape,
                autocast=self.autocast,
            )
            out.append(result.cams[:, 0].float().cpu().numpy())
        self.n_recomputed += len(rows)
        return np.concatenate(out)
