"""ONNX Runtime execution providers: the GPU when this installation has it, else the CPU.

There is no GPU on the build machines: the provider list ONNX Runtime reports is monkeypatched.
"""

from __future__ import annotations

import pytest

from pavement.errors import ConfigError
from pipelines.detect import DEFAULT_MODEL, DetectorConfig, load_detector, onnx_providers

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
needs_model = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="models/damage_yolo.onnx not present")


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        ("auto", [CPU], [CPU]),  # the base install (onnxruntime): CPU only, as before
        ("auto", [CUDA, CPU], [CUDA, CPU]),
        ("auto", [TRT, CUDA, CPU], [CUDA, CPU]),  # TensorRT only when asked for
        ("cpu", [TRT, CUDA, CPU], [CPU]),
        ("cuda", [TRT, CUDA, CPU], [CUDA, CPU]),
        ("tensorrt", [TRT, CUDA, CPU], [TRT, CUDA, CPU]),
        ("tensorrt", [TRT, CPU], [TRT, CPU]),
    ],
)
def test_providers_for_each_device(device, available, expected):
    assert onnx_providers(device, available) == expected


@pytest.mark.parametrize(("device", "missing"), [("cuda", CUDA), ("tensorrt", TRT)])
def test_asking_for_a_gpu_that_is_not_there_says_what_to_install(device, missing):
    with pytest.raises(ConfigError, match=f"{missing}.*onnxruntime-gpu"):
        onnx_providers(device, [CPU])


def test_unknown_device_is_refused():
    with pytest.raises(ConfigError, match="device 'gpu' is unknown"):
        DetectorConfig(device="gpu")


@needs_model
def test_cpu_machine_keeps_the_cpu_provider():
    assert load_detector(DEFAULT_MODEL).provider == CPU


@needs_model
def test_cuda_is_requested_when_listed_and_the_provider_really_used_is_reported(monkeypatch):
    """ONNX Runtime lists CUDA (as onnxruntime-gpu does): the session is asked for CUDA first. This
    CPU build cannot start it and falls back; the detector reports the CPU, the provider that ran."""
    import onnxruntime as ort

    requested = []
    real_session = ort.InferenceSession

    def session(path, options, providers):
        requested.append(list(providers))
        return real_session(path, options, providers=[p for p in providers if p == CPU])

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", session)
    detector = load_detector(DEFAULT_MODEL)
    assert requested == [[CUDA, CPU]]
    assert detector.provider == CPU
