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

Where the model has more classes than candidates (ImageNet's 1,000, Kinetics' 400), a class that
becomes the video's only late in it was no candidate of the early windows: efficientnet_lite0 on
a 377-frame street clip explained 80 frames again (cab is in nobody's top 128 before frame 80),
and the 32 candidates' maps cost 20 % more than one class's. There, with a gradient method and a
head that replays alone (:func:`~videocam.cam.replay.replay_stand_in`: nothing of the input
reaches the logits but through the target layer), each window keeps its layer output instead,
from a forward without gradients, up to :data:`KEPT_OUTPUTS_BYTES`; the chosen class's maps of
those windows come from replaying the head alone on them at the end, and every replayed output
is checked against the window's own (a window that differs is decoded and explained again).
Windows past the bound keep candidates as above.

"Probabilities" are the model's class scores (:meth:`~videocam.models.LoadedModel.class_scores`):
softmax probabilities of a classifier, the detection masses of an object detector.

Memory does not grow with the video beyond the per-frame maps: per-window results past a bound
spill to an anonymous temporary file (:class:`~videocam.temporal.RowStore`), and so do the
decoded frames when the caller keeps them (``keep_frames``, for perturbation re-scoring).
"""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from videocam.io import FrameSource, stand_ins
from videocam.runtime import resources
from videocam.runtime.feed import model_input, window_inputs
from videocam.runtime.pass_state import ClassTotals, PassResult, PassState
from videocam.temporal import FrameAccumulator, FrameMaps, RowStore

if TYPE_CHECKING:
    import torch

    from videocam.cam import CamOutput
    from videocam.cam.replay import StandIn
    from videocam.models import LoadedModel

logger = logging.getLogger(__name__)

#: Bytes of per-window results (each store) held in memory before spilling to a temporary file.
STORE_MEMORY_BYTES = 16 * 2**20
#: Bytes of kept decoded frames held in memory before spilling to a temporary file.
FRAME_MEMORY_BYTES = 16 * 2**20
#: Bytes of kept window maps read back at once when fusing.
FUSE_CHUNK_BYTES = 8 * 2**20
#: Bytes of layer outputs kept for the head replay (see the module docstring): in memory up to
#: :data:`STORE_MEMORY_BYTES`, then in the temporary file. Windows past it keep candidates.
KEPT_OUTPUTS_BYTES = 2**30
#: Bytes of kept layer outputs replayed at once.
REPLAY_CHUNK_BYTES = 16 * 2**20

#: How a model's head replays (None: it does not), per (layer, input shape, device, autocast).
_REPLAYS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], StandIn | None]] = (
    weakref.WeakKeyDictionary()
)


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
        """Append a chunk of decoded frames and add them to the running total."""
        self.store.append(chunk)
        chunk_sum = chunk.sum(axis=0, dtype=np.float64)
        self.total = chunk_sum if self.total is None else self.total + chunk_sum

    def close(self) -> None:
        """Close the store of frames (and of per-window maps, when kept)."""
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
        n_replayed: windows whose maps came from the head replay of their kept layer output.
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
    n_replayed: int = 0
    frames: KeptFrames | None = field(default=None, repr=False)
    tracks: list[TrackCurves] = field(default_factory=list, repr=False)
    class_wins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    @property
    def target_score(self) -> np.ndarray:
        """float64 (n_positions,): the target's probability per position."""
        return self.maps.scores


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
        #: Windows whose maps came from the head replay.
        self.n_replayed = 0
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
            candidates_per_window=None if target is not None else result.candidates,
            n_recomputed=self.n_recomputed,
            n_replayed=self.n_replayed,
            seconds={
                "model_pass_s": passed - started,
                "fuse_s": time.perf_counter() - passed,
            },
            frames=kept,
            tracks=curves,
        )

    def _track(
        self, result: PassResult, class_index: int, target: int, target_maps: FrameMaps
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
    ) -> PassResult:
        """Every window through the model once: probabilities and maps of the kept classes.

        The classes each window keeps: the target and ``always`` when they are all known (and
        ``top`` is 0); else the candidates (see :class:`~videocam.runtime.pass_state.
        ClassTotals`), which include them, or, where the head replays, the layer output.
        Methods that ignore the class keep one map, which serves every class.

        Args:
            target: the class to explain, or None for ``auto`` (decided after the pass).
            tap: called with each decoded chunk of frames (see :func:`window_inputs`).
            always: classes every window keeps besides the target.
            top: keep enough candidates for ``top`` classes ranked after the pass.
        """
        from videocam.cam import get_method

        loaded = self.loaded
        known = list(dict.fromkeys([*([] if target is None else [target]), *always]))
        fixed: list[int] | None = None
        if get_method(self.method).class_free:
            fixed = [0]
        elif target is not None and not top:
            fixed = known
        n_candidates = resources.auto_candidates(loaded)
        # The head replay (module docstring): while the kept outputs fit their bound.
        stand_in = None if fixed is not None else self.replays(max(n_candidates, len(known) + top))
        state = PassState(
            loaded,
            self.method,
            self.autocast,
            len(self.plan),
            fixed=fixed,
            totals=ClassTotals(
                loaded.background_class, known, top, loaded.class_scores, n_candidates
            ),
            stand_in=stand_in,
            room=KEPT_OUTPUTS_BYTES,
            memory_bytes=STORE_MEMORY_BYTES,
        )
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
            for rows, inputs in batches:
                self._in_parts(len(rows), functools.partial(_step_part, state, rows, inputs))
            return state.finish(self._replayed_map_shape)
        except BaseException:
            state.close()
            raise
        finally:
            batches.close()

    def _in_parts(self, n_rows: int, step: Callable[[int, int], None]) -> None:
        """``step(start, stop)`` over ``n_rows`` rows in parts of :attr:`chunk` rows, halved
        after each out-of-memory error (the failed part runs again in halves)."""
        import torch

        start = 0
        while start < n_rows:
            stop = min(start + self.chunk, n_rows)
            try:
                step(start, stop)
            except torch.OutOfMemoryError as error:
                self._shrink_chunk(error)
                continue
            start = stop

    def _replayed_map_shape(self, result: PassResult) -> tuple[int, ...]:
        """S of one window's map, from replaying the first kept layer output."""
        kept, stand_in, input_shape = result.replay_inputs()
        return tuple(self._replay(kept.read(0, 1), stand_in, input_shape, 0).cams.shape[2:])

    def replays(self, n_candidates: int) -> StandIn | None:
        """How the pass replays the head, where it keeps layer outputs (None: it does not):
        a gradient method, a classifier with more classes than ``n_candidates``, and a head
        that replays alone (probed once per model, layer, input shape and autocast, on a
        random input; see :func:`~videocam.cam.replay.replay_stand_in`)."""
        import torch

        from videocam.cam import get_method
        from videocam.cam.replay import replay_stand_in

        loaded = self.loaded
        method = get_method(self.method)
        if loaded.detector is not None or not method.needs_gradients:
            return None
        if loaded.categories is not None and len(loaded.categories) <= n_candidates:
            return None
        height, width = loaded.preprocess.size
        frames = () if loaded.kind == "frame" else (int(self.plan.shape[1]),)
        shape = (3, *frames, height, width)
        key = (loaded.layer, shape, str(loaded.device), self.autocast)
        known = _REPLAYS.setdefault(loaded.module, {})
        if key not in known:
            generator = torch.Generator().manual_seed(0)
            sample = torch.rand((1, *shape), generator=generator).to(loaded.device)
            n_classes = len(loaded.categories) if loaded.categories is not None else None
            if n_classes is None:  # only the output says how many classes the model scores
                with torch.inference_mode():
                    n_classes = int(loaded.module(sample).shape[-1])
            known[key] = (
                replay_stand_in(loaded.module, sample, loaded.layer, autocast=self.autocast)
                if n_classes > n_candidates
                else None
            )
        return known[key]

    # -- from windows to frames ----------------------------------------------------------------

    def _window_store(self, result: PassResult) -> RowStore:
        """An empty store for one map of the target per window, (t', h, w)."""
        map_shape = result.map_shape
        if self.loaded.kind == "frame":
            map_shape = (1, *map_shape)
        return RowStore(
            map_shape, np.float32, capacity=len(self.plan), memory_bytes=STORE_MEMORY_BYTES
        )

    def fuse_into(
        self,
        result: PassResult,
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
        if len(result.probs) != n_windows:
            raise RuntimeError(f"kept {len(result.probs)} windows of {n_windows}")
        map_shape = result.map_shape
        if self.loaded.kind == "frame":
            map_shape = (1, *map_shape)  # one time step per "window"
        accumulator = FrameAccumulator(len(self.indices), map_shape[1:], 1)
        row_bytes = result.maps.row_bytes if result.maps is not None else 0
        row_bytes = max(row_bytes, int(np.prod(map_shape)) * 4)
        chunk = max(1, FUSE_CHUNK_BYTES // row_bytes)
        for start in range(0, n_windows, chunk):
            stop = min(start + chunk, n_windows)
            picked = self._picked(result, start, stop, target)
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

    def _picked(self, result: PassResult, start: int, stop: int, target: int) -> np.ndarray:
        """The maps of ``target`` of windows ``start:stop``: float32 (stop - start, *S)."""
        n_kept = result.n_kept
        parts = []
        if start < n_kept:
            parts.append(self._replayed(result, start, min(stop, n_kept), target))
        if stop > n_kept:
            first = max(start, n_kept)
            maps_store, classes_store = result.candidate_stores()
            maps = maps_store.read(first - n_kept, stop - n_kept)
            if result.class_free:
                picked = maps[:, 0]
            else:
                hit = classes_store.read(first - n_kept, stop - n_kept) == target
                picked = maps[np.arange(stop - first), hit.argmax(axis=1)]
                missed = np.flatnonzero(~hit.any(axis=1))
                if len(missed):
                    picked[missed] = self._recompute(first + missed, target)
            parts.append(picked)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _replayed(self, result: PassResult, start: int, stop: int, target: int) -> np.ndarray:
        """The maps of ``target`` of kept windows ``start:stop`` from the head replay; windows
        whose replayed probabilities differ from their own are decoded and explained again."""
        kept_store, stand_in, input_shape = result.replay_inputs()
        tolerance = 3e-2 if self.autocast else 1e-4
        step = max(1, REPLAY_CHUNK_BYTES // max(1, kept_store.row_bytes))
        out = []
        for first in range(start, stop, step):
            last = min(first + step, stop)
            replay = self._replay(kept_store.read(first, last), stand_in, input_shape, target)
            maps = replay.cams[:, 0].float().cpu().numpy()
            replayed = self.loaded.class_scores(replay.output).float().cpu().numpy()
            differs = np.abs(replayed - result.probs.read(first, last)).max(axis=1) > tolerance
            if differs.any():
                rows = first + np.flatnonzero(differs)
                logger.debug("%d replayed windows differ: explained again", len(rows))
                maps[differs] = self._recompute(rows, target)
            self.n_replayed += last - first - int(differs.sum())
            out.append(maps)
        return np.concatenate(out)

    def _replay(
        self, kept: np.ndarray, stand_in: StandIn, input_shape: tuple[int, ...], target: int
    ) -> CamOutput:
        """The head replayed on kept layer outputs (b, ...), the maps of ``target``."""
        import torch

        from videocam.cam.replay import replay_classes

        return replay_classes(
            self.loaded.module,
            self.loaded.layer,
            torch.from_numpy(kept).to(self.loaded.device),
            [target],
            self.method,
            stand_in=stand_in,
            input_shape=input_shape,
            reshape=self.loaded.reshape,
            autocast=self.autocast,
        )

    def _frame_maps(self, result: PassResult, *, keep_maps: bool = True) -> FrameMaps:
        spatial = result.map_shape if self.loaded.kind == "frame" else result.map_shape[1:]
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
        out: list[np.ndarray] = []

        def explain(start: int, stop: int) -> None:
            positions = np.unique(self.plan[rows[start:stop]])
            frames = self.source.read(decodable[positions], size=loaded.preprocess.size)
            block = frames[np.searchsorted(positions, self.plan[rows[start:stop]])]
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

        self._in_parts(len(rows), explain)
        self.n_recomputed += len(rows)
        return np.concatenate(out)


def _step_part(
    state: PassState, rows: np.ndarray, inputs: torch.Tensor, start: int, stop: int
) -> None:
    """Rows ``start:stop`` of one batch through :meth:`PassState.step`."""
    state.step(rows[start:stop], inputs[start:stop])
