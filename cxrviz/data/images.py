"""Decoding X-ray files into arrays, the model's 224 px input, and the artifact's display JPEG.

Preprocessing follows torchxrayvision's own dataset classes (normalize with the image's real bit
depth, first channel, centre crop, skimage resize to 224) by calling its functions, so our inputs
are torchxrayvision's inputs. Anything that is not a readable X-ray raises ImageSkip with a reason a
person can act on; callers record it and go on.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from cxrviz.schema import DISPLAY_MAX_SIDE

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # one image placed by a user (app upload or place CLI)
MAX_PIXELS = 40_000_000  # ~6300 x 6300: far above any CXR, far below a decompression bomb
MIN_SIDE = 32
MODEL_SIZE = 224
DISPLAY_QUALITY = 85


class ImageSkip(Exception):
    """A file that cannot be used; str(exc) is the reason recorded in the manifest."""


@dataclass
class XrayImage:
    pixels: np.ndarray  # 2-D, native integer (or float) values
    maxval: int  # the largest value the encoding can hold (255, 65535, 2**BitsStored - 1)


def is_dicom(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def decode_xray(data: bytes) -> XrayImage:
    """Bytes of a PNG / JPEG / TIFF / DICOM file -> a 2-D grey image and its bit-depth maximum."""
    if not data:
        raise ImageSkip("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageSkip(f"file too large ({len(data) / 2**20:.0f} MB > {MAX_FILE_BYTES // 2**20} MB)")
    image = _decode_dicom(data) if is_dicom(data) else _decode_raster(data)
    h, w = image.pixels.shape
    if min(h, w) < MIN_SIDE:
        raise ImageSkip(f"image too small ({w}x{h} px; at least {MIN_SIDE} px a side)")
    return image


def _decode_raster(data: bytes) -> XrayImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageSkip(f"image too large ({w}x{h} px > {MAX_PIXELS:,} px; "
                                "possible decompression bomb)")
            im.load()
    except ImageSkip:
        raise
    except UnidentifiedImageError:
        raise ImageSkip("not an image (unrecognised file format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageSkip(f"image too large (possible decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageSkip(f"corrupt or truncated image: {exc}") from None
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA")
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("L")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return XrayImage(np.asarray(im).astype(np.uint16, copy=False), 65535)
    if im.mode in ("I", "F"):
        arr = np.asarray(im)
        if arr.min() < 0 or arr.max() > 65535:
            raise ImageSkip(f"unsupported pixel range for mode {im.mode} "
                            f"({arr.min()}..{arr.max()})")
        return XrayImage(arr.astype(np.uint16), 65535)
    arr = np.asarray(im)
    if arr.ndim == 3:  # RGB(A), LA: torchxrayvision uses the first channel
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        raise ImageSkip(f"unsupported image mode {mode}")
    return XrayImage(arr, 255)


def _decode_dicom(data: bytes) -> XrayImage:
    """pydicom's warnings about a file it then cannot read become part of the skip's reason
    (one line in the manifest, not a burst on stderr per broken file); those about a file that
    decodes are passed on, so they are seen."""
    import pydicom

    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
            photometric = str(ds.get("PhotometricInterpretation", ""))
            if photometric not in ("MONOCHROME1", "MONOCHROME2"):
                raise ImageSkip(f"DICOM photometric interpretation {photometric or 'missing'} "
                                "is not a grey X-ray (MONOCHROME1/2 only)")
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            if frames > 1:
                raise ImageSkip(f"multi-frame DICOM ({frames} frames); single frame only")
            rows, cols = int(ds.Rows), int(ds.Columns)
            if rows * cols > MAX_PIXELS:
                raise ImageSkip(f"image too large ({cols}x{rows} px > {MAX_PIXELS:,} px)")
            bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)))
            pixels = ds.pixel_array
        except Exception as exc:  # pydicom raises many types for broken files
            said = f" (pydicom: {heard[0].message})" if heard else ""
            reason = (str(exc) if isinstance(exc, ImageSkip)
                      else f"unreadable DICOM: {type(exc).__name__}: {exc}")
            raise ImageSkip(reason + said) from None
    for w in heard:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if pixels.ndim != 2:
        raise ImageSkip(f"DICOM pixel data has shape {pixels.shape}; expected one grey frame")
    if pixels.min() < 0:
        raise ImageSkip("DICOM with signed pixel values is not supported")
    maxval = 2 ** bits - 1
    pixels = np.minimum(pixels, maxval)
    if photometric == "MONOCHROME1":  # bones dark, air bright: invert to MONOCHROME2
        pixels = maxval - pixels
    return XrayImage(pixels, maxval)


def model_input(image: XrayImage) -> np.ndarray:
    """(1, 224, 224) float32 in [-1024, 1024], exactly as torchxrayvision's datasets prepare it.

    The same operations as normalize -> XRayCenterCrop -> XRayResizer(224), reordered where that
    changes nothing: the crop (a slice) comes first so only kept pixels are converted, and the
    resize runs on the 2-D array with XRayResizer's own skimage arguments. The result is
    bit-identical to torchxrayvision's (tests/test_images.py checks it on real images).
    """
    import skimage.transform
    import torchxrayvision as xrv

    cropped = xrv.datasets.XRayCenterCrop()(image.pixels[None])[0]
    arr = xrv.utils.normalize(cropped, image.maxval)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = skimage.transform.resize(arr, (MODEL_SIZE, MODEL_SIZE), mode="constant",
                                       preserve_range=True)
    return out.astype(np.float32)[None]


def display_pixels(image: XrayImage, max_side: int = DISPLAY_MAX_SIDE) -> Image.Image:
    """An 8-bit grey PIL image, long side at most max_side: what people look at."""
    arr = image.pixels
    if image.maxval != 255 or arr.dtype != np.uint8:
        arr = np.clip(arr.astype(np.float64) * (255.0 / image.maxval), 0, 255).round().astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(arr))
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return im


def display_jpeg(image: XrayImage, max_side: int = DISPLAY_MAX_SIDE) -> bytes:
    buf = io.BytesIO()
    display_pixels(image, max_side).save(buf, format="JPEG", quality=DISPLAY_QUALITY)
    return buf.getvalue()


def notice_jpeg(text: str, size: tuple = (DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE * 3 // 4)) -> bytes:
    """A grey card with `text` on it, where an image cannot be shown (the app's display route
    for a map built with --display none whose dataset folder is not reachable)."""
    import textwrap

    from PIL import ImageDraw, ImageFont

    im = Image.new("L", size, 40)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=18)
    lines = textwrap.wrap(text, width=max(10, size[0] // 11))
    draw.multiline_text((16, 16), "\n".join(lines), fill=235, font=font, spacing=6)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=DISPLAY_QUALITY)
    return buf.getvalue()
