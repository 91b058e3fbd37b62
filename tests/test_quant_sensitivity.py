"""Sensitivity ranking (ssdmobile.quant.sensitivity) on one real calibration image."""

import math

import pytest
import torch

from ssdmobile.models import create_model
from ssdmobile.quant.ptq import calibration_inputs
from ssdmobile.quant.sensitivity import quant_units, rank_layers, sqnr_db

from conftest import COCO128, PERSON_GRAPH


def test_units_cover_every_conv():
    det = create_model("ssdlite_mobilenet_v2_person", None)
    units = quant_units(det.core)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in det.core.modules())
    assert len(units) == convs == 88
    # Conv+BN+ReLU6 unit, bare prediction conv
    assert "backbone.0" in units and "box_head.0.1" in units


def test_sqnr():
    a = [torch.ones(10)]
    assert sqnr_db(a, a) == math.inf
    assert abs(sqnr_db(a, [torch.ones(10) * 1.1]) - 20.0) < 1e-4


def test_rank_on_real_image():
    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)
    inputs = calibration_inputs(det, COCO128, "train2017", 1)
    # a dozen units from input to heads keeps this test short (every unit: `ssdmobile sensitivity`)
    names = [n for i, n in enumerate(quant_units(det.core)) if i % 16 == 0]
    ranked = rank_layers(det, inputs, progress=False, only=names)
    assert sorted(u.name for u in ranked) == sorted(names)
    sq = [u.sqnr_db for u in ranked]
    assert sq == sorted(sq)  # most sensitive first
    # quantizing one layer alone is mild but real: finite SQNR, and the layers differ a lot
    assert 10 < sq[0] < 70 and sq[-1] - sq[0] > 10


@pytest.mark.slow
def test_float_fallback_keeps_named_layers_in_float():
    """--float-fallback K: the convs of the named modules keep float weights; every other conv is
    still int8. (executorch's set_module_name(name, None) asserts; this goes through a filter.)"""
    from ssdmobile.quant.ptq import quantize_core_pt2e

    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)
    inputs = calibration_inputs(det, COCO128, "train2017", 2)
    keep = ["backbone.0", "backbone.1.conv.0"]

    def quantized_conv_weights(gm):
        """Module names of the convs whose weight comes out of a dequantize (int8 weights)."""
        return {
            list(n.meta["nn_module_stack"].values())[-1][0]
            for n in gm.graph.nodes
            if n.op == "call_function"
            and "conv2d" in str(n.target)
            and "dequantize" in str(n.args[1].target)
        }

    everything = quantize_core_pt2e(det.core, inputs, progress=False)
    mixed = quantize_core_pt2e(det.core, inputs, float_modules=keep, progress=False)
    all_q, mixed_q = quantized_conv_weights(everything), quantized_conv_weights(mixed)
    assert len(all_q) == 88
    assert all_q - mixed_q == {"backbone.0.1", "backbone.1.conv.0.0"}  # the two convs inside `keep`
    assert mixed_q < all_q
