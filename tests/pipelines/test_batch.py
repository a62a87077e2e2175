"""``pavement batch`` on three tiny synthetic runs and a corrupt one: the local process pool and a
Ray cluster started on this machine give the same segments; a failed run is reported while the
others complete; a Ray worker killed half-way through a run is replaced and the run done once; a
service job handed to Ray gives the local result; runs that share detector actors (the model
loaded once, the frames sent to it) give the local results too, and a killed actor is restarted."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from pavement.errors import ConfigError, ModelError, VideoUnreadable
from pipelines.batch import (
    BatchConfig,
    Engine,
    plan_outputs,
    process_run,
    ray_process_function,
    run_batch,
)
from pipelines.detect import DEFAULT_MODEL, DetectorConfig, load_detector
from pipelines.inference import RemoteDetector, start_detector_pool, stop_detector_pool
from pipelines.process import ProcessConfig, run_process
from pipelines.synth import SynthConfig, run_synth
from tests.conftest import pavement_cli

SEEDS = (31, 32, 33)
RUNS = tuple(f"RUN{s}" for s in SEEDS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Three 60 m runs (320x180 at 10 fps, rendered at half size) and BAD, whose video is cut off."""
    root = tmp_path_factory.mktemp("batch_runs")
    for seed, name in zip(SEEDS, RUNS, strict=True):
        config = SynthConfig(
            length_m=60.0, seed=seed, fps=10.0, width_px=320, height_px=180, render_scale=0.5
        )
        run_synth(root / name, config)
    shutil.copytree(root / RUNS[0], root / "BAD")
    video = root / "BAD" / "video.mp4"
    video.write_bytes(video.read_bytes()[:3000])
    return root


def _batch(runs: Path, out: Path, *args: str):
    dirs = [str(runs / name) for name in (*RUNS, "BAD")]
    return pavement_cli("batch", *dirs, "--out", str(out), "--workers", "2", *args, timeout=600)


@pytest.fixture(scope="module")
def local_batch(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_local")
    return _batch(runs, out, "--engine", "local"), out


@pytest.fixture(scope="module")
def ray_batch(runs, tmp_path_factory):
    pytest.importorskip("ray", reason="the 'cluster' extra (ray) is not installed")
    out = tmp_path_factory.mktemp("batch_ray")
    return _batch(runs, out, "--engine", "ray"), out


def _segments(out: Path) -> dict[str, dict]:
    """segment id -> its properties and geometry, failing on a segment written twice."""
    features = json.loads((out / "segments.geojson").read_text(encoding="utf-8"))["features"]
    ids = [f["properties"]["segment_id"] for f in features]
    assert len(ids) == len(set(ids)), f"duplicate segments in {out}: {ids}"
    return {f["properties"]["segment_id"]: {**f["properties"], "geometry": f["geometry"]} for f in features}


def _files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*"))


# --------------------------------------------------------------------------------------------
# Planning and settings (no processing)
# --------------------------------------------------------------------------------------------


def test_runs_with_the_same_folder_name_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="same folder name 'RUN'"):
        plan_outputs([tmp_path / "a" / "RUN", tmp_path / "b" / "RUN"], tmp_path / "out")


def test_each_run_goes_to_its_own_folder_by_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert plan_outputs([Path("x/RUN1")], Path("out")) == [(tmp_path / "x/RUN1", tmp_path / "out/RUN1")]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(workers=0),
        dict(max_retries=-1),
        dict(cpus_per_run=0),
        dict(engine=Engine.LOCAL, address="auto"),
        dict(engine=Engine.RAY, detector_actors=-1),
        dict(engine=Engine.RAY, detector_actors=1, gpus_per_actor=-1),
        dict(engine=Engine.LOCAL, detector_actors=1),
    ],
)
def test_bad_batch_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        BatchConfig(**kwargs)


def test_ray_engine_without_ray_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pavement-inspection\[cluster\]"):
        run_batch([tmp_path / "RUN"], tmp_path / "out", batch=BatchConfig(engine=Engine.RAY))


def test_a_failed_attempts_leftovers_are_removed_before_the_run(tmp_path):
    out = tmp_path / "out" / "RUN"
    (out.parent / ".RUN.partial-999").mkdir(parents=True)

    def fine(run_dir, out_dir, config):
        return None

    outcome = process_run(tmp_path / "RUN", out, ProcessConfig(), fine)
    assert outcome.ok and not (out.parent / ".RUN.partial-999").exists()
    assert "earlier attempt" in outcome.notes[0]


# --------------------------------------------------------------------------------------------
# The local engine
# --------------------------------------------------------------------------------------------


def test_local_batch_reports_the_corrupt_run_and_completes_the_others(local_batch):
    done, out = local_batch
    assert done.returncode == 1, done.stderr
    report = json.loads((out / "batch_report.json").read_text())
    by_name = {Path(r["run_dir"]).name: r for r in report["runs"]}
    assert [Path(r["run_dir"]).name for r in report["runs"]] == [*RUNS, "BAD"]  # the order given
    assert by_name["BAD"]["ok"] is False and by_name["BAD"]["error"].startswith("VideoUnreadable")
    assert all(by_name[n]["ok"] and by_name[n]["segments"] >= 1 and by_name[n]["wall_s"] > 0 for n in RUNS)
    assert (report["runs_ok"], report["runs_failed"]) == (3, 1)
    assert "[4/4]" in done.stdout and "3 of 4 runs ok, 1 failed" in done.stdout
    assert "VideoUnreadable" in done.stderr
    assert not (out / "BAD").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([*RUNS, "batch_report.json"])  # no leftovers


def test_local_batch_writes_what_process_writes(runs, local_batch, tmp_path):
    _, out = local_batch
    single = tmp_path / "single"
    run_process(runs / RUNS[0], single, ProcessConfig())
    assert _files(out / RUNS[0]) == _files(single)
    assert _segments(out / RUNS[0]) == _segments(single)


# --------------------------------------------------------------------------------------------
# The Ray engine (a cluster started on this machine)
# --------------------------------------------------------------------------------------------


def test_ray_batch_gives_the_same_segments_as_local(local_batch, ray_batch):
    (_, local_out), (ray_done, ray_out) = local_batch, ray_batch
    assert ray_done.returncode == 1, ray_done.stderr  # BAD failed there too
    report = json.loads((ray_out / "batch_report.json").read_text())
    assert report["engine"] == "ray" and (report["runs_ok"], report["runs_failed"]) == (3, 1)
    for name in RUNS:
        assert _segments(ray_out / name) == _segments(local_out / name), name
        assert _files(ray_out / name) == _files(local_out / name)


def dies_once(run_dir: Path, out_dir: Path, config: ProcessConfig):
    """run_process, except that the first attempt at RUN31 kills its own worker process half-way
    through the video (SIGKILL: no cleanup, its temporary output folder stays behind)."""
    marker = run_dir.parent / f"killed-{run_dir.name}"

    def progress(stage: str, done: int, total: int, km: float | None = None) -> None:
        if run_dir.name == RUNS[0] and done > total // 2 and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    return run_process(run_dir, out_dir, config, progress)


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray cluster on this machine, in this process, shared by the tests below."""
    ray = pytest.importorskip("ray", reason="the 'cluster' extra (ray) is not installed")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 1024**2)
    yield ray
    ray.shutdown()


def test_killed_ray_worker_is_retried_without_duplicates(runs, local_batch, ray_cluster, tmp_path):
    _, local_out = local_batch
    work = tmp_path / "runs"
    shutil.copytree(runs, work, ignore=shutil.ignore_patterns("BAD"))  # a marker per test run
    result = run_batch(
        [work / n for n in RUNS],
        tmp_path / "out",
        batch=BatchConfig(engine=Engine.RAY, workers=2, max_retries=2),
        process=dies_once,
    )
    assert (work / f"killed-{RUNS[0]}").exists()  # the first attempt did die
    assert all(o.ok for o in result.outcomes), [o.error for o in result.outcomes]
    killed = result.outcomes[0]
    assert any("partial" in note for note in killed.notes)  # the retry found and removed its leftovers
    assert sorted(p.name for p in result.out_dir.iterdir()) == sorted([*RUNS, "batch_report.json"])
    for name in RUNS:
        assert _segments(result.out_dir / name) == _segments(local_out / name), name


def test_a_service_job_handed_to_ray_gives_the_local_result(runs, local_batch, ray_cluster, tmp_path):
    _, local_out = local_batch
    process = ray_process_function()
    result = process(runs / RUNS[1], tmp_path / "job", ProcessConfig(), None)
    assert _segments(tmp_path / "job") == _segments(local_out / RUNS[1])
    assert len(result.segments) == len(_segments(tmp_path / "job"))
    with pytest.raises(VideoUnreadable):  # the job's own error, not Ray's wrapper
        process(runs / "BAD", tmp_path / "bad", ProcessConfig(), None)


# --------------------------------------------------------------------------------------------
# Detector actors: the model loaded once per actor, the runs' frames sent to it
# --------------------------------------------------------------------------------------------


def test_detector_actors_need_the_ray_engine(runs, tmp_path):
    done = pavement_cli("batch", str(runs / RUNS[0]), "--out", str(tmp_path), "--detector-actors", "1")
    assert done.returncode == 1 and "ConfigError" in done.stderr and "--engine ray" in done.stderr


def with_remote_detector(run_dir: Path, out_dir: Path, config: ProcessConfig, detector=None):
    """run_process, checking that the batch handed the run its actors' detector."""
    assert isinstance(detector, RemoteDetector), detector
    return run_process(run_dir, out_dir, config, detector=detector)


def test_runs_sharing_detector_actors_give_the_local_results(runs, local_batch, ray_cluster, tmp_path):
    _, local_out = local_batch
    result = run_batch(
        [runs / n for n in RUNS],
        tmp_path / "out",
        # the fixture's cluster has 2 CPUs, both for runs; the actor's model threads share them
        batch=BatchConfig(engine=Engine.RAY, workers=2, detector_actors=1, cpus_per_actor=0),
        process=with_remote_detector,
    )
    assert all(o.ok for o in result.outcomes), [o.error for o in result.outcomes]
    assert json.loads(result.report_json.read_text())["detector_actors"] == 1
    for name in RUNS:
        ours, local = result.out_dir / name, local_out / name
        assert _segments(ours) == _segments(local), name
        for file in ("detections.json", "potholes.geojson"):
            assert (ours / file).read_bytes() == (local / file).read_bytes(), (name, file)
        report, local_report = (json.loads((o / "report.json").read_text()) for o in (ours, local))
        for key in ("model", "detector_provider", "detected_frames", "detections", "potholes"):
            assert report[key] == local_report[key], (name, key)
    assert sum(json.loads((result.out_dir / n / "report.json").read_text())["detected_frames"] for n in RUNS)


def test_a_killed_detector_actor_is_restarted_and_answers_again(ray_cluster):
    import numpy as np

    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (180, 320, 3), dtype=np.uint8) for _ in range(3)]
    expected = load_detector(DEFAULT_MODEL).detect_batch(images)
    pool = start_detector_pool(1, DEFAULT_MODEL, DetectorConfig(), num_cpus=0.5, max_restarts=1)
    try:
        pid = ray_cluster.get(pool.actors[0].__ray_call__.remote(lambda _actor: os.getpid()))
        os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
        for _ in range(2):
            got = pool.detect_batch(images)
            assert [d.xyxy.tolist() for d in got] == [d.xyxy.tolist() for d in expected]
        assert ray_cluster.get(pool.actors[0].__ray_call__.remote(lambda _actor: os.getpid())) != pid
    finally:
        stop_detector_pool(pool)


def test_a_model_the_actors_cannot_load_or_gpus_the_cluster_lacks_stop_the_batch(ray_cluster, tmp_path):
    with pytest.raises(ModelError, match="missing"):
        start_detector_pool(1, tmp_path / "none.onnx", DetectorConfig(), num_cpus=0.5)
    with pytest.raises(ConfigError, match="0 GPUs"):
        start_detector_pool(1, DEFAULT_MODEL, DetectorConfig(), num_cpus=0.5, num_gpus=1)
