from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COCO128 = SHARED / "data" / "coco128"
VAL_IMAGES = COCO128 / "images" / "val2017"


def pytest_configure(config):
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def val_image_paths():
    paths = sorted(VAL_IMAGES.glob("*.jpg"))
    if not paths:
        pytest.fail(f"no images under {VAL_IMAGES}: ../shared must sit beside the repository")
    return paths


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random parameters and BatchNorm statistics, so outputs are far from trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            else:  # weights: scale by fan-in to keep activations in range
                fan_in = t[0].numel() if t.dim() > 1 else 1
                t.copy_(torch.randn(t.shape, generator=g) * (1.5 / fan_in) ** 0.5)
    return model
