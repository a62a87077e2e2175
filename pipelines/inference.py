"""Damage detection on Ray actors that hold the model: a batch's runs share a few detectors.

``start_detector_pool`` starts ``n`` ``DetectorActor`` s on a Ray cluster: each loads the damage
detector once (``load_detector``; on a GPU when it is given one, by ``onnx_providers``' choice) and
answers batches of images. It returns a ``RemoteDetector``, the ``BatchDetector`` a run's
``run_process(..., detector=...)`` uses in place of its own model: it letterboxes the frames where
the run decodes them (exactly as ``OnnxDetector.detect_batch`` does) and sends only the
(input_size, input_size, 3) squares through Ray's object store, 0.5 MB an image for a 416 px model
instead of 6 MB for a 1080p frame; the actor runs the same ``detect_letterboxed``, so the
detections are those of a local detector on the same provider. Calls go round robin over the pool.

An actor that dies (killed, out of memory, node lost) is restarted by Ray up to ``max_restarts``
times, and the calls it had not answered are sent again (``max_task_retries``).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pavement.boxes import Letterbox
from pavement.detections import Detections
from pavement.errors import ConfigError, ModelError, PavementError
from pipelines.detect import DetectorConfig, OnnxDetector, letterbox_images, load_detector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorInfo:
    """What a pool's detectors are: for the runs' reports and the letterbox."""

    name: str  # the model file's name
    provider: str  # the execution provider(s) that run it, e.g. "CUDAExecutionProvider"
    input_size: int  # the network's input square, pixels
    hosts: tuple[str, ...]  # where the actors run


class DetectorActor:
    """The body of a Ray actor: one damage detector, loaded once, for every run of a batch."""

    def __init__(self, model_path: Path, config: DetectorConfig) -> None:
        # A model that cannot be loaded is reported by ``describe`` as its ModelError: Ray reports
        # an exception of the constructor itself as its own ActorDiedError, without the cause.
        self._detector: OnnxDetector | None = None
        self._error: PavementError | None = None
        try:
            self._detector = load_detector(model_path, config)
        except PavementError as exc:
            self._error = exc

    def describe(self) -> DetectorInfo:
        if self._detector is None:
            raise self._error
        d = self._detector
        return DetectorInfo(d.name, d.provider, d.input_size, (socket.gethostname(),))

    def detect_letterboxed(self, boxed: Sequence[tuple[np.ndarray, Letterbox]]) -> list[Detections]:
        return self._detector.detect_letterboxed(boxed)


class RemoteDetector:
    """A ``BatchDetector`` whose model runs on a pool of ``DetectorActor`` s (see the module
    docstring). Picklable: a batch hands one to each run's Ray task; ``first`` spreads the runs'
    calls over the pool."""

    def __init__(self, actors: Sequence, info: DetectorInfo, first: int = 0) -> None:
        if not actors:
            raise ConfigError("a RemoteDetector needs at least one detector actor")
        self.actors = tuple(actors)
        self.info = info
        self.name = info.name
        self.provider = info.provider
        self.input_size = info.input_size
        self._calls = first

    def for_run(self, n: int) -> RemoteDetector:
        """The same pool, starting with actor ``n`` (modulo the pool's size)."""
        return RemoteDetector(self.actors, self.info, first=n % len(self.actors))

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each (H, W, 3) uint8 BGR image, in that image's pixels."""
        if not len(images):
            return []
        import ray

        boxed = letterbox_images(images, self.input_size)
        actor = self.actors[self._calls % len(self.actors)]
        self._calls += 1
        return ray.get(actor.detect_letterboxed.remote(boxed))


def start_detector_pool(
    n: int,
    model_path: Path,
    config: DetectorConfig,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_restarts: int = 2,
) -> RemoteDetector:
    """Start ``n`` detector actors on the connected Ray cluster (``ray.init`` first), each
    reserving ``num_cpus`` CPUs and ``num_gpus`` GPUs, and wait until every one has its model
    loaded. A model that cannot be loaded raises its ``ModelError`` here; GPUs asked of a cluster
    that has none raise ``ConfigError`` (the actors would wait for them forever)."""
    import ray

    if n < 1:
        raise ConfigError(f"detector actors {n} must be >= 1")
    cluster_gpus = ray.cluster_resources().get("GPU", 0.0)
    if num_gpus > 0 and cluster_gpus < num_gpus:
        raise ConfigError(
            f"detector actors asked for {num_gpus} GPU each, but the Ray cluster has {cluster_gpus:g} GPUs; "
            "start the cluster's GPU nodes, or run the actors on CPUs (gpus per actor 0)"
        )
    actor_class = ray.remote(DetectorActor).options(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        max_restarts=max_restarts,
        max_task_retries=max_restarts,
    )
    actors = [actor_class.remote(Path(model_path), config) for _ in range(n)]
    try:
        infos = ray.get([actor.describe.remote() for actor in actors])
    except ray.exceptions.RayError as exc:
        for actor in actors:
            ray.kill(actor)
        cause = _pavement_cause(exc)
        if cause is not None:
            raise cause from None
        raise ModelError(f"the detector actors did not start: {exc}") from exc
    providers = sorted({i.provider for i in infos})
    info = DetectorInfo(
        infos[0].name, ", ".join(providers), infos[0].input_size, tuple(h for i in infos for h in i.hosts)
    )
    logger.info("%d detector actors of %s on %s (%s)", n, info.name, info.provider, ", ".join(info.hosts))
    return RemoteDetector(actors, info)


def _pavement_cause(exc: BaseException) -> PavementError | None:
    """The project's own error behind a Ray error (``describe`` of an actor whose model failed)."""
    cause = getattr(exc, "cause", None)  # RayTaskError: the exception the actor method raised
    return cause if isinstance(cause, PavementError) else None


def stop_detector_pool(detector: RemoteDetector) -> None:
    """Kill the pool's actors (they would otherwise live as long as the Ray job)."""
    import ray

    for actor in detector.actors:
        ray.kill(actor)
