"""One decoder for every image mode Pillow opens: a real photo saved as 16-bit or 32-bit grayscale,
float, LA, RGBA, palette with transparency, CMYK or with an EXIF rotation decodes to the very
pixels of its 8-bit RGB equivalent, so the person detector finds the very same people (a 16-bit
PNG used to decode as a white image: AP 0.0 against 0.193)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ssdmobile.data import load_image
from ssdmobile.errors import ImageError
from ssdmobile.models import create_model

from conftest import PERSON_GRAPH, VAL_IMAGES


@pytest.fixture(scope="module")
def photo():
    """A real val2017 photo with people in it (000000000872.jpg: the person model finds one at 0.99
    in colour and in gray)."""
    return Image.open(VAL_IMAGES / "000000000872.jpg").convert("RGB")


def _gray(photo):
    return np.asarray(photo.convert("L"))


def variants(photo, tmp):
    """(name, file, the 8-bit RGB pixels it stands for)."""
    rgb = np.asarray(photo)
    gray = _gray(photo)
    gray_rgb = np.repeat(gray[..., None], 3, -1)
    out = []

    def save(name, image, expected, fmt="PNG", **kw):
        path = tmp / f"{name}.{fmt.lower()}"
        image.save(path, fmt, **kw)
        out.append((name, path, expected))

    save("rgb8", photo, rgb)
    save("gray16", Image.fromarray(gray.astype(np.uint16) * 257), gray_rgb)
    save("gray32_int", Image.fromarray(gray.astype(np.int32) * 257, mode="I"), gray_rgb, fmt="TIFF")
    save(
        "gray_float",
        Image.fromarray(gray.astype(np.float32) / 255.0, mode="F"),
        gray_rgb,
        fmt="TIFF",
    )
    alpha = Image.fromarray(np.full(gray.shape, 128, np.uint8))
    save("la", Image.merge("LA", (Image.fromarray(gray), alpha)), gray_rgb)
    save("rgba", Image.merge("RGBA", (*photo.split(), alpha)), rgb)
    pal = photo.quantize(64)
    pal.info["transparency"] = 0
    save("palette_transparent", pal, np.asarray(pal.convert("RGB")))
    save(
        "cmyk", photo.convert("CMYK"), np.asarray(photo.convert("CMYK").convert("RGB")), fmt="TIFF"
    )
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation: rotated 90 clockwise when shown, so stored 90 counter-clockwise
    save("exif_rotated", photo.transpose(Image.Transpose.ROTATE_270), rgb, exif=exif)
    return out


def test_every_mode_decodes_to_its_8bit_rgb_pixels(photo, tmp_path):
    for name, path, expected in variants(photo, tmp_path):
        got = load_image(path).permute(1, 2, 0).numpy()
        assert got.dtype == np.uint8 and got.shape == expected.shape, name
        assert np.array_equal(got, expected), (name, int(np.abs(got.astype(int) - expected).max()))


def test_the_detector_sees_the_same_people_in_every_mode(photo, tmp_path):
    det = create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH)
    cases = {name: path for name, path, _ in variants(photo, tmp_path)}
    with torch.no_grad():
        ref_gray, ref_rgb = (
            det([torch.from_numpy(np.repeat(_gray(photo)[..., None], 3, -1)).permute(2, 0, 1)]),
            det([load_image(cases["rgb8"])]),
        )
        # people found
        assert float(ref_gray[0]["scores"][0]) > 0.5 and float(ref_rgb[0]["scores"][0]) > 0.5
        for name, ref in (
            ("gray16", ref_gray),
            ("gray32_int", ref_gray),
            ("gray_float", ref_gray),
            ("la", ref_gray),
            ("rgba", ref_rgb),
            ("exif_rotated", ref_rgb),
        ):
            got = det([load_image(cases[name])])[0]
            for k in ("boxes", "scores", "labels"):
                assert torch.equal(got[k], ref[0][k]), (name, k)


def test_what_has_no_rgb_meaning_is_one_error(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageError, match="cannot decode image"):
        load_image(bad)
    with pytest.raises(ImageError, match="image not found"):
        load_image(tmp_path / "nope.png")
