"""ONNX int8: onnxruntime's static quantizer on the fp32 ONNX export, calibrated on the same
preprocessed images as every other target, in one of a few named formats (FORMATS).

Why several formats: the ONNX Runtime quantization guide leaves the choice to the hardware.
- QDQ (QuantizeLinear/DequantizeLinear around float ops, fused into int8 kernels when the session
  loads) is what ONNX Runtime Mobile and its XNNPACK and NNAPI execution providers take; signed
  int8 activations with per-channel weights (`qdq`) is the project's one scheme, the same as
  ExecuTorch's XNNPACK int8.
- On x86-64 CPUs without VNNI (AVX2 here) onnxruntime's fast int8 GEMM multiplies uint8
  activations by int8 weights with an instruction whose 16-bit sums can saturate; the guide's
  remedy is 7-bit weights (reduce_range). Signed activations (`qdq`) measured slower than fp32
  on this CPU (benchmarks/bench_onnx_int8.py), uint8 ones faster.
- QOperator (QLinearConv and friends written into the file) is what older onnxruntime builds
  and some converters read.
onnxruntime's own advice (quantize_static's docstring, "Choosing parameters for CPU inference"):
QDQ; on x86 without VNNI uint8 activations, int8 weights and reduce_range; on ARM int8 for both.
No U8U8 format: with per-channel weights (this project's scheme) onnxruntime's quantizer writes
int8 Conv weights whatever weight_type says (operators/conv.py), so "U8U8" came out as U8S8
without reduce_range: the saturating layout, measured 5-10 dB below qdq-u8s8.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import QuantizationError
from . import SCHEME

if TYPE_CHECKING:  # the target table reads FORMATS: no torch at import time
    from torch import Tensor

# ssdmobile observer name -> onnxruntime CalibrationMethod name
ORT_CALIBRATION = {
    "minmax": "MinMax",
    "histogram": "Percentile",
    "entropy": "Entropy",
    "percentile": "Percentile",
}


@dataclass(frozen=True)
class OnnxInt8Format:
    """One onnxruntime quantize_static setting: container format, activation and weight types
    (onnxruntime QuantType names), reduce_range (7-bit weights). Weights are always per-channel
    symmetric and activations per-tensor asymmetric, as on every other target."""

    name: str
    summary: str
    quant_format: str  # "QDQ" | "QOperator"
    activations: str  # "QInt8" | "QUInt8"
    reduce_range: bool = False
    weights: str = "QInt8"  # per-channel Conv weights are int8 in onnxruntime whatever this says

    def record(self) -> dict:
        act = (
            "int8 per-tensor asymmetric (-128..127)"
            if self.activations == "QInt8"
            else "uint8 per-tensor asymmetric (0..255)"
        )
        w = (
            "per-channel symmetric (-64..63, reduce_range)"
            if self.reduce_range
            else SCHEME["weights"]
        )
        return {
            "dtype": "int8",
            "weights": w,
            "activations": act,
            "format": self.name,
            "reduce_range": self.reduce_range,
            "method": f"onnxruntime quantize_static ({self.quant_format}, "
            f"{'U8' if self.activations == 'QUInt8' else 'S8'}S8)",
        }


FORMATS: dict[str, OnnxInt8Format] = {
    f.name: f
    for f in (
        OnnxInt8Format(
            "qdq",
            "QDQ, int8 activations, int8 per-channel weights: ONNX Runtime Mobile / XNNPACK, "
            "the scheme of every other target (slower than fp32 on x86 CPUs without VNNI)",
            "QDQ",
            "QInt8",
        ),
        OnnxInt8Format(
            "qdq-u8s8",
            "QDQ, uint8 activations, 7-bit int8 per-channel weights (reduce_range): "
            "fast and unsaturated on x86 CPUs without VNNI; NNAPI's uint8 layout",
            "QDQ",
            "QUInt8",
            reduce_range=True,
        ),
        OnnxInt8Format(
            "qoperator-u8s8",
            "QOperator (QLinearConv...), uint8 activations, 7-bit int8 weights "
            "(reduce_range): for tools and older runtimes that read QOperator",
            "QOperator",
            "QUInt8",
            reduce_range=True,
        ),
    )
}
DEFAULT_FORMAT = "qdq"


def get_format(name: str) -> OnnxInt8Format:
    if name not in FORMATS:
        raise QuantizationError(
            f"unknown ONNX int8 format {name!r}; choose one of {', '.join(FORMATS)}"
        )
    return FORMATS[name]


class _Reader:
    """onnxruntime CalibrationDataReader over feed dicts ({input name: array}), one per image."""

    def __init__(self, items):
        self._items = iter(items)

    def get_next(self):
        return next(self._items, None)

    def rewind(self):  # pragma: no cover - onnxruntime calls it for some methods only
        pass


def _scopes(node) -> set[str]:
    """Module names in a torch.onnx node's "namespace" metadata (the module scope of each node),
    relative to the network core (the exporters' wrappers hold it as `.core`): e.g. {"", "backbone",
    "backbone.features.0", ...}; empty for nodes outside the core (decode, NMS)."""
    namespace = next((p.value for p in node.metadata_props if p.key == "namespace"), "")
    scopes = {seg.split(": ")[0] for seg in namespace.split("/")}
    return {
        s[len("core.") :] if s != "core" else ""
        for s in scopes
        if s == "core" or s.startswith("core.")
    }


def core_node_names(model) -> list[str]:
    """Names of the nodes the network core produced. Decode and NMS nodes are not among them."""
    return [node.name for node in model.graph.node if _scopes(node)]


def nodes_for_modules(model, names: Sequence[str]) -> list[str]:
    """Names of the ONNX nodes that the named core modules (as `ssdmobile sensitivity` ranks them)
    produced: what quantize_static's nodes_to_exclude keeps in float."""
    wanted, found, hit = set(names), [], set()
    for node in model.graph.node:
        match = _scopes(node) & wanted
        if match:
            found.append(node.name)
            hit |= match
    missing = [n for n in names if n not in hit]
    if missing:
        raise QuantizationError(
            f"cannot keep in float, no ONNX node carries the module scope of {', '.join(missing)} "
            "(not a module of this core, or exported without torch.onnx's metadata)"
        )
    return found


def _tensors_of(path: Path, node_names: Sequence[str]) -> set[str]:
    """Every input and output tensor of the named nodes (the core's: what gets quantized)."""
    import onnx  # lazy: heavy optional runtime (onnx)

    names = set(node_names)
    return {
        t
        for node in onnx.load(str(path)).graph.node
        if node.name in names
        for t in (*node.input, *node.output)
        if t
    }


@contextlib.contextmanager
def _calibrating_only(tensors: set[str] | None):
    """Calibrate only `tensors`. onnxruntime's calibrators pick the tensors to observe by op type
    over the whole graph, never by node, even when nodes_to_quantize names only the core's: with NMS
    in the graph they also observe the NMS section's tensors, whose shapes change from image to
    image (the number of kept boxes), and the histogram calibrators then fail ("inhomogeneous
    shape", SSDlite320 MobileNetV3 with 90 classes). No option of quantize_static narrows it, so for
    the length of one call the selection is intersected with the core's tensors (onnxruntime 1.31's
    CalibraterBase.select_tensors_to_calibrate; a change of it fails
    tests/test_quant_mobilenet_v3.py::test_onnx_int8_with_nms_histogram_calibration)."""
    if tensors is None:
        yield
        return
    from onnxruntime.quantization.calibrate import CalibraterBase  # lazy: heavy optional runtime

    original = CalibraterBase.select_tensors_to_calibrate

    def select(self, model):
        chosen, value_infos = original(self, model)
        return chosen & tensors, value_infos

    CalibraterBase.select_tensors_to_calibrate = select
    try:
        yield
    finally:
        CalibraterBase.select_tensors_to_calibrate = original


# Images whose intermediate outputs are held at once while calibrating (~125 MB each for the person
# detector): the peak no longer grows with the number of calibration images.
CALIBRATION_CHUNK = 8


def _seed_histograms(calibrater, batches) -> None:
    """Put in `calibrater.collector` an empty histogram per observed tensor on exactly the bins
    onnxruntime's one pass over all `batches` would make (its HistogramCollector: on |x| from
    min |x| to max |x| for the symmetric percentile, on x over [-max |x|, max |x|] otherwise), so
    that the chunks' counts add into them as into the one pass's."""
    import numpy as np  # lazy: the target table imports this module, and the CLI loads no numpy

    names = [o.name for o in calibrater.infer_session.get_outputs()]
    ranges: dict[str, list] = {}  # name -> [min x, max x, min |x|, max |x|]
    for batch in batches:
        for inputs in batch:
            for name, value in zip(names, calibrater.infer_session.run(None, inputs)):
                if name not in calibrater.tensors_to_calibrate or not value.size:
                    continue
                found = [np.nanmin(value), np.nanmax(value)]
                found += [np.nanmin(np.abs(value)), np.nanmax(np.abs(value))]
                r = ranges.setdefault(name, found)
                r[0], r[1] = min(r[0], found[0]), max(r[1], found[1])
                r[2], r[3] = min(r[2], found[2]), max(r[3], found[3])
    collector = calibrater.collector
    absolute = collector.method == "percentile" and collector.symmetric
    for name, (lo, hi, abs_lo, abs_hi) in ranges.items():
        hist = np.zeros(collector.num_bins, dtype=np.int64)
        if absolute:  # collect_absolute_value: np.histogram(|x|, bins=num_bins)
            edges = np.histogram(np.array([abs_lo, abs_hi]), bins=collector.num_bins)[1]
            collector.histogram_dict[name] = (hist, edges.astype(lo.dtype), lo, hi)
        else:  # collect_value: over [-threshold, threshold]
            threshold = np.array(max(abs(lo), abs(hi)), dtype=lo.dtype)
            edges = np.histogram(
                np.zeros(0, lo.dtype), collector.num_bins, range=(-threshold, threshold)
            )[1]
            collector.histogram_dict[name] = (hist, edges, lo, hi, threshold)


@contextlib.contextmanager
def _streaming_calibration(chunk: int):
    """Calibration in chunks of `chunk` images, with the ranges onnxruntime's one pass computes.

    Why: onnxruntime's calibrators run every calibration image and keep every observed tensor of
    every image before computing anything: 16.5 GB of resident memory for the person detector at
    128 images with the histogram (Percentile) calibrator (issue 23). quantize_static makes one
    collect_data call with the whole reader; its one option for this, CalibMaxIntermediateOutputs,
    is MinMax's only, and onnxruntime 1.31 drops each full chunk without computing its ranges
    (MinMaxCalibrater.collect_data clears before compute_data: with 128 images in chunks of 8 it
    fails with "No data is collected"). So for the length of one call collect_data is fed `chunk`
    images at a time (onnxruntime 1.31's calibrate.py; tests/test_onnx_calibration.py compares
    the calibrated files with one pass, benchmarks/bench_calib_memory.py measures the peak):
    - MinMax merges the ranges of successive calls: min of mins, max of maxes, exact.
    - The histogram collector merges too, but re-bins when a later chunk reaches further than the
      first, so the percentile would move a little. A first pass over the same chunks finds each
      tensor's full range; its empty histogram on exactly the one pass's bins is put in the
      collector first, and each chunk's counts then add into the same bins: the one pass's
      histogram, count for count."""
    # lazy: heavy optional runtime
    from onnxruntime.quantization.calibrate import (
        HistogramCalibrater,
        HistogramCollector,
        MinMaxCalibrater,
    )

    originals = {c: c.collect_data for c in (HistogramCalibrater, MinMaxCalibrater)}

    def batches(data_reader):
        items = iter(data_reader.get_next, None)
        while batch := list(itertools.islice(items, chunk)):
            yield batch

    def minmax_collect(self, data_reader):
        for batch in batches(data_reader):
            originals[MinMaxCalibrater](self, _Reader(batch))

    def histogram_collect(self, data_reader):
        batches_ = list(batches(data_reader))  # the inputs themselves: ~1 MB an image
        if self.collector is None:
            self.collector = HistogramCollector(
                method=self.method,
                symmetric=self.symmetric,
                num_bins=self.num_bins,
                num_quantized_bins=self.num_quantized_bins,
                percentile=self.percentile,
                scenario=self.scenario,
            )
            _seed_histograms(self, batches_)
        for batch in batches_:
            originals[HistogramCalibrater](self, _Reader(batch))

    MinMaxCalibrater.collect_data = minmax_collect
    HistogramCalibrater.collect_data = histogram_collect
    try:
        yield
    finally:
        for c, original in originals.items():
            c.collect_data = original


def quantize_onnx_file(
    fp32_path: Path,
    int8_path: Path,
    inputs: Sequence[Tensor],
    observer: str = "histogram",
    float_modules: Sequence[str] = (),
    core_only: bool = False,
    fmt: str = DEFAULT_FORMAT,
) -> dict:
    """core_only: quantize the network core's nodes only, keeping box decoding, scores and NMS in
    float (quantize_static would otherwise put the decoded boxes and the output
    scores on 256 levels).
    float_modules: core modules whose nodes stay float (mixed precision). fmt: a name in FORMATS."""
    # lazy: heavy optional runtime (onnxruntime), only for ONNX int8
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    # lazy: heavy optional runtime
    from onnxruntime.quantization.shape_inference import quant_pre_process

    form = get_format(fmt)
    if observer not in ORT_CALIBRATION:
        raise QuantizationError(
            f"unknown observer {observer!r} for onnx; choose one of {', '.join(ORT_CALIBRATION)}"
        )
    method = ORT_CALIBRATION[observer]
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(
        [{"input": x.numpy()} for x in inputs]
    )
    only, exclude = None, []
    if core_only or float_modules:
        import onnx  # lazy: heavy optional runtime (onnx)

        model = onnx.load(str(fp32_path))
        exclude = nodes_for_modules(model, float_modules) if float_modules else []
    if core_only:
        only = core_node_names(model)
        if not only:
            raise QuantizationError(
                f"{fp32_path}: no node carries the core's scope metadata, so the decode "
                "and NMS nodes cannot be kept in float"
            )
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        extra = {
            "ActivationSymmetric": False,
            "WeightSymmetric": True,
        }
        if method == "Percentile":
            extra["CalibPercentile"] = 99.999
        with (
            _calibrating_only(_tensors_of(pre, only) if only else None),
            _streaming_calibration(CALIBRATION_CHUNK),
        ):
            quantize_static(
                str(pre),
                str(int8_path),
                reader,
                quant_format=getattr(QuantFormat, form.quant_format),
                per_channel=True,
                reduce_range=form.reduce_range,
                activation_type=getattr(QuantType, form.activations),
                weight_type=getattr(QuantType, form.weights),
                calibrate_method=getattr(CalibrationMethod, method),
                nodes_to_exclude=exclude,
                nodes_to_quantize=only,
                extra_options=extra,
            )
    record = form.record()
    if core_only:
        record["method"] += ", core only (decode and NMS float)"
    return {
        **record,
        "observer": observer,
        "ort_calibrate_method": method,
        "float_modules": list(float_modules),
        "float_nodes": exclude,
    }


def quantize_exported_file(
    src: Path,
    dst: Path,
    inputs: Sequence[Tensor],
    observer: str,
    nms: bool,
    float_modules: Sequence[str],
    fmt: str,
) -> dict:
    """The target table's file-stage int8 for ONNX: with NMS in the graph only the network core is
    quantized (decoded boxes and output scores stay float)."""
    return quantize_onnx_file(src, dst, inputs, observer, float_modules, core_only=nms, fmt=fmt)
