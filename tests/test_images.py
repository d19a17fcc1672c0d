"""Decoding: bit depths, colour modes, DICOM, and every kind of bad file, each with a reason."""
import io

import numpy as np
import pytest
from PIL import Image

from cxrviz.data.images import (ImageSkip, decode_xray, display_jpeg, display_pixels,
                                model_input)


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def ramp(h=64, w=96, maxval=255, dtype=np.uint8):
    return (np.linspace(0, maxval, w)[None, :] * np.ones((h, 1))).astype(dtype)


def test_8bit_grey_rgb_rgba_palette_agree():
    grey = ramp()
    l = decode_xray(png_bytes(Image.fromarray(grey)))
    rgb = decode_xray(png_bytes(Image.fromarray(np.stack([grey] * 3, -1))))
    rgba = decode_xray(png_bytes(Image.fromarray(np.stack([grey] * 3 + [grey * 0 + 255], -1))))
    pal = decode_xray(png_bytes(Image.fromarray(grey).convert("P")))
    for img in (l, rgb, rgba, pal):
        assert img.maxval == 255 and img.pixels.shape == (64, 96)
        np.testing.assert_array_equal(img.pixels, grey)


def test_16bit_uses_its_true_range():
    raw = np.zeros((128, 128), np.uint16)
    raw[:, 64:] = 65535
    img = decode_xray(png_bytes(Image.fromarray(raw)))
    assert img.maxval == 65535 and img.pixels.max() == 65535
    x = model_input(img)
    assert x.shape == (1, 224, 224) and x.dtype == np.float32
    # black stays -1024 and white +1024: not saturated (a 255 maxval would fail to normalise)
    assert x[0, 112, 40] == pytest.approx(-1024, abs=1) and x[0, 112, 180] == pytest.approx(1024, abs=1)
    assert np.asarray(display_pixels(img)).max() == 255


def test_sample_dicoms_monochrome1_is_inverted(samples):
    m2 = decode_xray((samples / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
                     .read_bytes())
    m1 = decode_xray((samples / "Fake_MONOHR1.dcm").read_bytes())
    assert m2.maxval == 255 and m2.pixels.shape == (1024, 1024)
    np.testing.assert_array_equal(m1.pixels, 255 - m2.pixels)


def test_written_16bit_dicom(tmp_path):
    from tests.dicoms import write_dicom

    arr = ramp(80, 80, maxval=4095, dtype=np.uint16)
    path = write_dicom(tmp_path / "a.dcm", arr, bits_stored=12, photometric="MONOCHROME1")
    img = decode_xray(path.read_bytes())
    assert img.maxval == 4095
    np.testing.assert_array_equal(img.pixels, 4095 - arr)


def test_display_jpeg_is_small():
    img = decode_xray(png_bytes(Image.fromarray(ramp(1000, 800))))
    im = Image.open(io.BytesIO(display_jpeg(img)))
    assert im.format == "JPEG" and max(im.size) == 512


BAD = {
    "empty": (b"", "empty file"),
    "text": (b"patientid,offset\n1,2\n" * 10, "not an image"),
    "tiny": (None, "too small"),
    "bomb": (None, "too large"),
    "truncated": (None, "corrupt or truncated"),
    "broken dicom": (b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage", "DICOM"),
}


def bad_bytes(kind, samples) -> bytes:
    data, _ = BAD[kind]
    if data is not None:
        return data
    if kind == "tiny":
        return png_bytes(Image.fromarray(np.zeros((4, 4), np.uint8)))
    if kind == "bomb":  # 20000 x 20000 px in a few kB: a decompression bomb
        return png_bytes(Image.new("1", (20000, 20000)))
    full = (samples / "00000001_000.png").read_bytes()
    return full[: len(full) // 3]


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_files_raise_a_reason(kind, samples):
    with pytest.raises(ImageSkip, match=BAD[kind][1]):
        decode_xray(bad_bytes(kind, samples))


def test_pydicom_warnings_about_a_refused_file_are_in_its_reason():
    """The broken DICOM above: pydicom warns while it guesses the encoding; the reason says so
    and nothing is left on stderr."""
    import warnings

    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        with pytest.raises(ImageSkip, match=r"\(pydicom: Expected explicit VR"):
            decode_xray(BAD["broken dicom"][0])
    assert heard == []


def test_rgb_dicom_is_refused(tmp_path):
    from tests.dicoms import write_dicom

    path = write_dicom(tmp_path / "rgb.dcm", np.zeros((40, 40, 3), np.uint8), bits_stored=8,
                       photometric="RGB")
    with pytest.raises(ImageSkip, match="not a grey X-ray"):
        decode_xray(path.read_bytes())


def test_model_input_is_bit_identical_to_torchxrayvision_transforms(dataset):
    import torchxrayvision as xrv

    for name in sorted((dataset / "images").iterdir())[:25:3]:
        img = decode_xray(name.read_bytes())
        ref = xrv.utils.normalize(img.pixels, img.maxval)[None]
        ref = xrv.datasets.XRayResizer(224)(xrv.datasets.XRayCenterCrop()(ref))
        np.testing.assert_array_equal(model_input(img), ref)
