"""ssdmobile's SSDlite320 MobileNetV3-Large against torchvision's own model on real images."""

import pytest
import torchvision

from torchvision_twins import (
    assert_detections_one_to_one,
    assert_raw_outputs_match,
    rgb_images,
    twins,
)

NUM_IMAGES = 16


@pytest.fixture(scope="module")
def models():
    return twins(
        torchvision.models.detection.ssdlite320_mobilenet_v3_large, "ssdlite320_mobilenet_v3_large"
    )


@pytest.fixture(scope="module")
def images(val_image_paths):
    return rgb_images(val_image_paths[:NUM_IMAGES])


def test_same_state_dict_keys(models):
    tv, ours = models
    assert list(tv.state_dict()) == list(ours.core.state_dict())


def test_raw_head_outputs_match(models, images):
    assert_raw_outputs_match(*models, images)


@pytest.mark.slow
def test_detections_match(models, images):
    assert_detections_one_to_one(*models, images)
