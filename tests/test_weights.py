"""Weight resolution and loading with checkpoint files the tests write themselves."""

import hashlib
import logging
from pathlib import Path

import pytest
import torch

from ssdmobile.errors import UnknownModelError, WeightsError
from ssdmobile.models import create_model, get_entry, list_models, weights as W


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache, and no network: a download attempt
    fails like an offline machine."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url, dst, *a, **k):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    model = create_model("ssdlite320_mobilenet_v3_small", num_classes=3)
    path = tmp_path_factory.mktemp("ckpt") / "small.pth"
    torch.save(model.core.state_dict(), path)
    return path, model


def test_explicit_path_loads_exactly(small_checkpoint):
    path, model = small_checkpoint
    loaded = create_model("ssdlite320_mobilenet_v3_small", weights=path, num_classes=3)
    for k, v in model.core.state_dict().items():
        assert torch.equal(loaded.core.state_dict()[k], v), k
    assert (
        loaded.weights.path == str(path)
        and loaded.weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    # a user's file: the registered metadata does not describe it
    assert loaded.weights.meta is None


def test_training_checkpoint_with_model_key(small_checkpoint, tmp_path):
    _path, model = small_checkpoint
    wrapped = tmp_path / "train.pth"
    torch.save({"model": model.core.state_dict(), "epoch": 3}, wrapped)
    loaded = create_model("ssdlite320_mobilenet_v3_small", weights=wrapped, num_classes=3)
    assert torch.equal(
        next(iter(loaded.core.state_dict().values())), next(iter(model.core.state_dict().values()))
    )


def test_num_classes_mismatch_names_the_tensor(small_checkpoint):
    path, _ = small_checkpoint
    with pytest.raises(WeightsError, match=r"head\.classification_head.*shape.*num_classes"):
        create_model("ssdlite320_mobilenet_v3_small", weights=path, num_classes=91)


def test_other_architecture_is_rejected(small_checkpoint):
    path, _ = small_checkpoint
    with pytest.raises(WeightsError, match="missing keys"):
        create_model("ssdlite320_mobilenet_v3_large", weights=path, num_classes=3)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all\n" * 10, "truncated"])
def test_corrupt_files(small_checkpoint, tmp_path, content):
    path, _ = small_checkpoint
    bad = tmp_path / "bad.pth"
    bad.write_bytes(
        path.read_bytes()[: len(path.read_bytes()) // 2] if content == "truncated" else content
    )
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        create_model("ssdlite320_mobilenet_v3_small", weights=bad, num_classes=3)


class Arbitrary:
    pass


def test_pickled_object_is_refused_by_weights_only(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "obj": Arbitrary()}, evil)
    with pytest.raises(WeightsError):
        W.load_state_dict_file(evil)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        create_model("ssdlite320_mobilenet_v3_small", weights=tmp_path / "nope.pth")


def test_default_weights_from_hub_cache_verified(hub, small_checkpoint):
    path, _model = small_checkpoint
    data = path.read_bytes()
    source = W.Weights(
        "official.pth",
        url="https://example.invalid/official.pth",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    hub.mkdir(parents=True)
    (hub / "official.pth").write_bytes(data)
    assert W.resolve_weights(source) == hub / "official.pth"
    (hub / "official.pth").write_bytes(data[:-10] + b"0123456789")  # same size, other content
    with pytest.raises(WeightsError, match="sha256"):
        W.resolve_weights(source)


def test_offline_without_file_names_file_and_place(hub):
    entry = get_entry("ssdlite320_mobilenet_v3_large")
    with pytest.raises(WeightsError) as e:
        create_model("ssdlite320_mobilenet_v3_large", weights="default")
    msg = str(e.value)
    assert entry.weights.filename in msg and str(hub) in msg and "--weights" in msg
    assert not list(hub.glob("*")), "a failed download leaves nothing in the cache"


def test_download_is_verified_and_atomic(hub, small_checkpoint, monkeypatch):
    path, _ = small_checkpoint
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", lambda url, dst, **k: Path(dst).write_bytes(b"junk")
    )
    source = W.Weights(
        "official.pth",
        url="https://example.invalid/official.pth",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    with pytest.raises(WeightsError, match="sha256"):
        W.resolve_weights(source)
    assert not list(hub.glob("*")), "nothing half-written under the cache"
    monkeypatch.setattr(
        torch.hub,
        "download_url_to_file",
        lambda url, dst, **k: Path(dst).write_bytes(path.read_bytes()),
    )
    assert W.resolve_weights(source).read_bytes() == path.read_bytes()


def test_official_checkpoint_layout_loads(hub):
    """The official file's keys and shapes: a torchvision-built state_dict under the official
    file name in the hub cache loads through the registered source (sha256 check aside)."""
    import torchvision

    tv = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None
    )
    entry = get_entry("ssdlite320_mobilenet_v3_large")
    hub.mkdir(parents=True)
    torch.save(tv.state_dict(), hub / entry.weights.filename)
    with pytest.raises(WeightsError, match="sha256"):  # not the official bytes
        create_model("ssdlite320_mobilenet_v3_large", weights="default")
    m = create_model("ssdlite320_mobilenet_v3_large", weights=hub / entry.weights.filename)
    assert torch.equal(
        m.core.state_dict()["head.regression_head.module_list.0.1.weight"],
        tv.state_dict()["head.regression_head.module_list.0.1.weight"],
    )


def test_unknown_model():
    with pytest.raises(
        UnknownModelError, match=r"unknown model 'ssd9000'.*ssdlite320_mobilenet_v3_large"
    ):
        create_model("ssd9000")


def test_backbone_knobs_change_the_model():
    base = sum(p.numel() for p in create_model("ssdlite320_mobilenet_v3_large").parameters())
    narrow = sum(
        p.numel()
        for p in create_model("ssdlite320_mobilenet_v3_large", width_mult=0.5).parameters()
    )
    full_tail = sum(
        p.numel()
        for p in create_model("ssdlite320_mobilenet_v3_large", reduced_tail=False).parameters()
    )
    assert narrow < base < full_tail


def test_published_hash_prefix_is_checked(hub, small_checkpoint):
    """torchvision publishes only a sha256 prefix (in the file name);
    that prefix is what is checked."""
    path, _ = small_checkpoint
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    hub.mkdir(parents=True)
    (hub / "official.pth").write_bytes(data)
    assert W.resolve_weights(W.Weights("official.pth", sha256=digest[:8])) == hub / "official.pth"
    other = "0" if digest[0] != "0" else "1"
    with pytest.raises(WeightsError, match="sha256"):
        W.resolve_weights(W.Weights("official.pth", sha256=other + digest[1:8]))
    with pytest.raises(ValueError, match="at least 8"):
        W.Weights("x.pth", sha256="abc")


@pytest.mark.slow
def test_declared_parameter_counts_are_the_models():
    """`ssdmobile models` prints the registry's declared counts without building anything; they must
    be what the builders make."""
    from ssdmobile.models import list_models

    for entry in list_models():
        built = sum(p.numel() for p in entry.builder().core.parameters())
        assert built == entry.num_params, (entry.name, built, entry.num_params)
        if entry.weights is not None and entry.weights.categories:
            assert len(entry.weights.categories) == len(entry.builder().spec.class_names), (
                entry.name
            )


@pytest.mark.slow  # builds, saves and loads every registered model (VGG16: 100 MB)
@pytest.mark.parametrize("name", [e.name for e in list_models()])
def test_detector_state_dict_round_trip(name, tmp_path, caplog):
    """torch.save(detector.state_dict()) (keys under "core.") loads back with weights=PATH, said in
    one info line, for every registered model; so does the same inside a {"model": ...} dict. (Two
    builds draw different random weights, so equality shows the file was loaded.)"""
    model = create_model(name)
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    with caplog.at_level(logging.INFO, logger="ssdmobile"):
        loaded = create_model(name, weights=path)
    said = [r.getMessage() for r in caplog.records if "detector's state_dict" in r.getMessage()]
    assert len(said) == 1 and str(path) in said[0]
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, expected[k]), k
    if name == "ssdlite320_mobilenet_v3_small":
        torch.save({"model": model.state_dict(), "epoch": 1}, path)
        wrapped = create_model(name, weights=path)
        assert all(torch.equal(v, expected[k]) for k, v in wrapped.state_dict().items())


def test_core_prefix_mixed_with_other_keys_is_refused(small_checkpoint, tmp_path):
    """Only a state_dict whose every key is under "core." is a detector's: a stray key still gets
    the one-line mismatch."""
    _path, model = small_checkpoint
    mixed = {f"core.{k}": v for k, v in model.core.state_dict().items()} | {"x": torch.zeros(1)}
    path = tmp_path / "mixed.pth"
    torch.save(mixed, path)
    with pytest.raises(WeightsError, match="does not fit the model"):
        create_model("ssdlite320_mobilenet_v3_small", weights=path, num_classes=3)
