"""int8 for every target, in one scheme (int8, per-channel symmetric weights, per-tensor asymmetric
activations: QNNPACK / XNNPACK): post-training quantization of a detector's core (ptq.py: PT2E for
ExecuTorch; eager.py: torch.ao eager mode with the qnnpack engine for TorchScript), of an exported
file (onnx_int8.py: onnxruntime's quantizer; coreml_int8.py: coremltools), sensitivity ranking
(sensitivity.py) and the fake quantization of quantization-aware training (qat.py; its data,
loss and checkpoints are ssdmobile.training's).

Which method serves which target, and the export around it, is the target table's business
(ssdmobile.targets); this package never writes artifacts.
"""

from dataclasses import dataclass

# The one int8 scheme every target's record states (here, not in ptq.py: the target table reads it
# through onnx_int8.FORMATS without importing torch)
SCHEME = {
    "dtype": "int8",
    "weights": "per-channel symmetric (-127..127)",
    "activations": "per-tensor asymmetric (-128..127)",
}


# activation range choices of every calibrated int8 method
OBSERVERS = ("histogram", "minmax")


@dataclass(frozen=True)
class Calibration:
    """Where int8 activation ranges are calibrated: `num_images` images of `split` of the
    COCO-format (or VOC) dataset at `data`, with the `observer`'s range choice."""

    data: str
    split: str = "train2017"
    num_images: int = 128
    observer: str = "histogram"
