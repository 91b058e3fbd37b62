"""Quantization-aware training: recipes, the SSD loss, and two DDP steps under torchrun (2 CPU
processes, gloo) that end with identical weights on both ranks."""

import copy
import os
import subprocess
import sys

import pytest
import torch

from ssdmobile.commands.train import load_recipe
from ssdmobile.config import ConfigError
from ssdmobile.errors import SSDMobileError
from ssdmobile.spec import BoxCoder
from ssdmobile.training.loss import SSDLossConfig, encode_boxes, match, ssd_loss

from conftest import COCO128, PERSON_GRAPH, REPO

RECIPE = REPO / "recipes" / "qat_ssdlite_person_coco128.yaml"


def test_recipes_load_with_nested_overrides():
    module, r = load_recipe(
        RECIPE,
        [
            "train.steps=2",
            "optimizer.lr=3e-5",
            "export=[]",
            "model.name=ssdlite320_mobilenet_v3_small",
        ],
    )
    assert (
        r.train.steps == 2
        and r.optimizer["lr"] == 3e-5
        and r.export == []
        and r.data.split == "train2017"
    )
    assert (
        r.model.name == "ssdlite320_mobilenet_v3_small"
        and r.optimizer["_component_"] == "torch.optim.Adam"
    )
    assert module.__name__.endswith("qat")
    # full COCO is not here: its recipe loads and type-checks; its data checks need the data
    _, v3 = load_recipe(
        REPO / "recipes" / "qat_ssdlite320_mobilenet_v3_large_coco.yaml", ["eval.data=null"]
    )
    assert (
        v3.model.name == "ssdlite320_mobilenet_v3_large"
        and v3.optimizer["_component_"] == "torch.optim.SGD"
    )


@pytest.mark.parametrize(
    "override,message",
    [
        (["train.stepz=2"], "train.stepz.*not in 'TrainConfig'"),
        (["stepz=2"], "stepz.*not in 'QATConfig'"),
        (["train.steps=two"], "train.steps.*could not be converted to Integer"),
        (
            ["optimizer._component_=torch.optim.Nope"],
            "optimizer._component_: cannot import 'torch.optim.Nope'",
        ),
        (["optimizer.lrr=1e-4"], "optimizer: .*lrr.*torch.optim.Adam"),
        (["loss.distill_wieght=1"], "loss: .*distill_wieght.*DetectionLoss"),
        (["data.split=val2017"], "training images include 128 of the 128 evaluation images"),
        (["data.hflip=maybe"], "data.hflip.*not a valid bool"),
        (["nonsense"], "key=value"),
        (["quant.observer=percentile"], "minmax or histogram"),
        (["quant.calibrate_images=null"], "needs a calibration pass"),
        (["quant.freeze_observers_after=3"], "calibrated once and frozen"),
        (["train.steps=-1"], "at least 0"),
        (["export=[coreml]"], "QAT exports executorch, onnx, torchscript"),
    ],
)
def test_bad_recipe_values_are_one_line(override, message):
    with pytest.raises(SSDMobileError, match=message) as e:
        load_recipe(RECIPE, override)
    assert "\n" not in str(e.value)


def test_bad_recipe_file(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("_recipe_: qat.py\nsteps: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    no_script = tmp_path / "s.yaml"
    no_script.write_text("train:\n  steps: 2\n")
    with pytest.raises(ConfigError, match="_recipe_"):
        load_recipe(no_script)


@pytest.mark.parametrize("order", ["xywh", "yxhw"])
def test_encode_inverts_decode(order):
    from ssdmobile.ops.boxes import decode_boxes

    coder = BoxCoder(order=order, clamp=None)
    anchors = torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.2, 0.7, 0.1, 0.1]])
    boxes = torch.tensor([[0.35, 0.3, 0.62, 0.71], [0.1, 0.6, 0.3, 0.8]])
    enc = encode_boxes(boxes, anchors, coder)
    assert torch.allclose(decode_boxes(enc[None], anchors, coder)[0], boxes, atol=1e-6)


def test_ssd_loss_matching_and_mining():
    anchors = torch.tensor(
        [
            [0.25, 0.25, 0.5, 0.5],
            [0.75, 0.75, 0.5, 0.5],
            [0.75, 0.25, 0.5, 0.5],
            [0.25, 0.75, 0.5, 0.5],
            [0.5, 0.5, 0.2, 0.2],
        ]
    )
    gt = {"boxes": torch.tensor([[0.0, 0.0, 0.5, 0.5]]), "labels": torch.tensor([1])}
    assert match(anchors, gt["boxes"], 0.5).tolist() == [0, -1, -1, -1, -1]
    coder = BoxCoder(clamp=None)
    perfect_enc = torch.zeros(1, 5, 4)
    logits = torch.full((1, 5, 2), -8.0)
    logits[0, 0, 1], logits[0, 1:, 0] = 8.0, 8.0
    good, parts = ssd_loss(perfect_enc, logits, [gt], anchors, coder, "sigmoid")
    bad, _ = ssd_loss(perfect_enc + 1, -logits, [gt], anchors, coder, "sigmoid")
    assert parts["num_pos"] == 1 and good < 0.01 < bad
    # 3:1 mining: with one positive, only the 3 hardest of 4 negatives count
    logits2 = logits.clone()
    logits2[0, 4, 1] = 8.0  # one very wrong negative
    mined, _ = ssd_loss(
        perfect_enc, logits2, [gt], anchors, coder, "sigmoid", SSDLossConfig(neg_pos_ratio=0.0)
    )
    assert mined < 0.01  # ratio 0: no negatives at all
    focal, _ = ssd_loss(
        perfect_enc, logits2, [gt], anchors, coder, "softmax", SSDLossConfig(focal=True)
    )
    assert torch.isfinite(focal)


def _free_port() -> int:
    """A port nothing listens on now, so two runs of this test never share a rendezvous."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_identical_weights(tmp_path):
    out = tmp_path / "qat"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "ssdmobile",
        "train",
        "--recipe",
        str(RECIPE),
        "train.steps=2",
        "data.batch_size=2",
        "data.num_images=8",
        "train.threads=1",
        "export=[]",
        "eval.data=null",
        f"out_dir={out}",
        "train.log_every=1",
        "train.checkpoint_every=2",
        "quant.calibrate_images=2",
        f"data.root={COCO128}",
        f"model.weights={PERSON_GRAPH}",  # the shared graph, imported offline
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 2/2" in proc.stdout
    sha0, sha1 = (out / "rank0.sha256").read_text(), (out / "rank1.sha256").read_text()
    assert sha0 == sha1
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    # the trained float weights load into the registry's model (they feed PTQ of every target)
    from ssdmobile.models import create_model
    from ssdmobile.models.weights import load_state_dict_file

    sd = load_state_dict_file(out / "float.pth")
    base = create_model("ssdlite_mobilenet_v2_person", None)
    assert set(sd) == set(base.core.state_dict())


@pytest.mark.slow
def test_prepared_qat_model_is_the_float_model():
    """torchao's PT2E QAT rewrites Conv+BatchNorm with eps 1e-5 whatever the model's eps; the person
    model's BatchNorms use TF's 1e-3. With fake quantization off, the prepared model (BatchNorm in
    eval mode) must still compute the float model's outputs on a real image, and the trained float
    weights handed back must be the model's own (the eps shift taken back out of running_var)."""
    from torchao.quantization.pt2e import disable_fake_quant

    from ssdmobile.data import load_image
    from ssdmobile.models import create_model
    from ssdmobile.quant.ptq import _evaluable
    from ssdmobile.quant.qat import float_state_dict, prepare_qat, set_bn_frozen

    from conftest import VAL_IMAGES

    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH).eval()
    assert {m.eps for m in det.core.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}
    x = det.preprocess([load_image(sorted(VAL_IMAGES.glob("*.jpg"))[0])])
    prepared = prepare_qat(det.core, x)
    set_bn_frozen(prepared, True)
    prepared.apply(disable_fake_quant)
    with torch.no_grad():
        want, got = det.core(x), _evaluable(prepared)(x)
    for w, g in zip(want, got):
        assert (w - g).abs().max() < 1e-3, float((w - g).abs().max())  # 5.3 without the eps fix
    back = float_state_dict(prepared, det.core)
    own = det.core.state_dict()
    for k, v in own.items():
        if k.endswith("running_var"):
            assert torch.allclose(back[k], v, rtol=1e-6, atol=1e-7), k
    # the caller's model is not touched
    assert {m.eps for m in det.core.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}


@pytest.mark.slow
def test_calibrated_ranges_are_those_of_a_forward_per_image():
    """calibrate_ranges feeds the histogram observers only and sets each activation's scale and zero
    point once at the end (the search over the bins after every image was most of its time): the
    same values the FakeQuantize's own forward leaves after the last image."""
    from torchao.quantization.pt2e import disable_fake_quant, enable_fake_quant, enable_observer
    from torchao.quantization.pt2e.fake_quantize import FakeQuantize

    from ssdmobile.models import create_model
    from ssdmobile.quant.ptq import calibrate, calibration_inputs
    from ssdmobile.quant.qat import calibrate_ranges, prepare_qat, set_bn_frozen

    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH).eval()
    inputs = calibration_inputs(det, COCO128, "train2017", 2)
    fast = prepare_qat(det.core, inputs[0], "histogram")
    slow = copy.deepcopy(fast)
    set_bn_frozen(slow, True)
    slow.apply(disable_fake_quant)
    slow.apply(enable_observer)
    calibrate(slow, inputs, progress=False)
    slow.apply(enable_fake_quant)
    calibrate_ranges(fast, inputs, progress=False)
    pairs = [
        (a, b)
        for a, b in zip(slow.modules(), fast.modules())
        if type(a) is FakeQuantize  # the activations' (weights have their own fused kind)
    ]
    assert len(pairs) > 50  # 93 for this model
    for a, b in pairs:
        assert torch.equal(a.scale, b.scale) and torch.equal(a.zero_point, b.zero_point)
        assert bool(b.observer_enabled[0]) and bool(b.fake_quant_enabled[0])


def _train_command(out, steps=6):
    """A tiny QAT run (random SSDlite320 MobileNetV3 Small, 4 images, batches of 2, a StepLR
    scheduler), checkpointed every 2 steps, every step logged (about 2 s a step here)."""
    return [
        sys.executable,
        "-m",
        "ssdmobile",
        "train",
        "--recipe",
        str(RECIPE),
        "model.name=ssdlite320_mobilenet_v3_small",
        "model.weights=null",
        f"data.root={COCO128}",
        "data.num_images=4",
        "data.batch_size=2",
        f"train.steps={steps}",
        "train.log_every=1",
        "train.checkpoint_every=2",
        "train.threads=1",
        "quant.calibrate_images=2",
        # min/max ranges that go on updating (the histogram observer crawls on a random model's
        # activations), the SSD loss on the labels and a high rate: every step changes the weights
        "quant.observer=minmax",
        "quant.freeze_observers_after=null",
        "loss.ssd_weight=1.0",
        "optimizer.lr=0.01",
        "scheduler={_component_: torch.optim.lr_scheduler.StepLR, step_size: 2, gamma: 0.5}",
        "export=[]",
        "eval.data=null",
        f"out_dir={out}",
    ]


def _step_lines(stdout: str) -> dict[int, str]:
    """{step: its log line without the timing}: loss and its parts, BatchNorm mode."""
    lines = {}
    for line in stdout.splitlines():
        if line.startswith("step "):
            lines[int(line.split()[1].split("/")[0])] = line.split(" s/step")[0].rsplit("  ", 1)[0]
    return lines


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_weights(tmp_path):
    """`ssdmobile train` killed with SIGKILL mid-run and started again with the same recipe goes on
    from its last complete checkpoint (model, optimizer, scheduler, step, RNG states) and ends with
    the very weights, losses and learning rate of a run that was never interrupted."""
    import signal

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    whole = subprocess.run(
        _train_command(tmp_path / "whole"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert whole.returncode == 0, whole.stderr[-3000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_command(out),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stdout:  # step 3 is logged after the step-2 checkpoint, before step 4's
        seen.append(line)
        if line.startswith("step 3/6"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close(), proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-2000:]
    killed_at = torch.load(out / "last.pt", weights_only=True)["step"]
    assert 2 <= killed_at < 6
    assert not (out / "rank0.sha256").exists()  # it did not finish

    resumed = subprocess.run(
        _train_command(out), cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {out / 'last.pt'} at step {killed_at}" in resumed.stdout
    assert not list(out.glob(".*.part*"))  # no temporary left by the kill
    # the same weights, bit for bit, and the same losses on the steps both runs took
    assert (out / "rank0.sha256").read_text() == (tmp_path / "whole" / "rank0.sha256").read_text()
    want, got = _step_lines(whole.stdout), _step_lines(resumed.stdout)
    assert got[6] == want[6] and all(got[s] == want[s] for s in got), (want, got)
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(out / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    assert a["scheduler"] == b["scheduler"] and a["scheduler"]["_last_lr"] == [0.01 / 8]
