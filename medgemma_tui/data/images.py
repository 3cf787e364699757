"""Load a chest X-ray (PNG, JPEG, DICOM, or anything else Pillow reads) for display and for the processor.

Every loader ends in the same two views of the film:

- ``pixels``: uint8 ``[H, W]`` grayscale, what the screen, the masks and the overlays use;
- ``rgb``: a PIL RGB image, what the processor gets (for a grayscale film, the gray repeated three times).

Mapping to 8 bits: 8-bit data is kept as stored; deeper data (16-bit PNG, 12/16-bit DICOM) is stretched
from its own minimum to its maximum, unless a DICOM carries a VOI LUT or a window, which then decides.
MONOCHROME1 DICOM (bright = low values) is inverted so bone is always bright. An alpha channel (RGBA,
LA, a palette with transparency) is dropped: the stored colour is the film.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medgemma_tui.errors import MedtuiError, first_line

DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


class ImageError(MedtuiError, ValueError):
    """An image that cannot be loaded; the message is one line naming the file and the problem."""


@dataclass(frozen=True, eq=False)
class LoadedImage:
    pixels: np.ndarray  # [H, W] uint8, bone bright
    rgb: Image.Image  # mode "RGB", same size as pixels
    size: tuple[int, int]  # (width, height)
    source: Path
    kind: str  # "png", "jpeg", "dicom", or Pillow's format name in lower case

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]


def load_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read one film; raise ImageError with one line naming the file and what is wrong."""
    source = Path(path)
    if not source.exists():
        raise ImageError(f"{source}: file not found")
    if source.is_dir():
        raise ImageError(f"{source}: is a directory, not an image file")
    try:
        with source.open("rb") as handle:
            head = handle.read(DICOM_MAGIC_OFFSET + len(DICOM_MAGIC))
    except OSError as exc:
        raise ImageError(f"{source}: cannot read file ({first_line(exc)})") from exc
    if not head:
        raise ImageError(f"{source}: file is empty")
    if head[DICOM_MAGIC_OFFSET:] == DICOM_MAGIC:
        return _load_dicom(source, force=False)
    if source.suffix.lower() in DICOM_SUFFIXES:
        # DICOM without the 128-byte preamble (older files) still parses with force=True.
        return _load_dicom(source, force=True)
    return _load_pillow(source)


# --- Pillow formats --------------------------------------------------------------------------------


def _load_pillow(source: Path) -> LoadedImage:
    try:
        with Image.open(source) as im:
            im.load()
            kind = (im.format or source.suffix.lstrip(".") or "image").lower()
            if kind == "mpo":  # a camera JPEG with preview frames: the first frame is the photo
                kind = "jpeg"
            elif getattr(im, "n_frames", 1) > 1:
                raise ImageError(
                    f"{source}: has {im.n_frames} frames; only single-frame images are supported"
                )
            pixels, rgb = _views_from_pillow(im)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{source}: not a recognised image (expected PNG, JPEG or DICOM content)"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{source}: image too large to decode safely ({first_line(exc)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{source}: truncated or corrupt image ({first_line(exc)})") from exc
    return LoadedImage(pixels=pixels, rgb=rgb, size=(pixels.shape[1], pixels.shape[0]), source=source,
                       kind=kind)


def _views_from_pillow(im: Image.Image) -> tuple[np.ndarray, Image.Image]:
    mode = im.mode
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in im.info):
        im = _drop_alpha(im)
        mode = im.mode
    if mode == "L":
        pixels = np.array(im, dtype=np.uint8)
        return pixels, _gray_to_rgb(pixels)
    if mode == "1":
        pixels = np.array(im.convert("L"), dtype=np.uint8)
        return pixels, _gray_to_rgb(pixels)
    if mode.startswith("I") or mode == "F":
        # 16-bit ("I;16", "I;16B") or 32-bit integer / float gray: stretch to 8 bits.
        pixels = _stretch(np.asarray(im))
        return pixels, _gray_to_rgb(pixels)
    rgb = im.convert("RGB")  # RGB, P, CMYK, YCbCr, LAB, HSV
    pixels = np.array(rgb.convert("L"), dtype=np.uint8)
    return pixels, rgb


def _drop_alpha(im: Image.Image) -> Image.Image:
    """The colour (or gray) channels as stored, the alpha channel dropped.

    An exported film with an alpha channel (a half-transparent PNG from a viewer or a converter) still
    stores the film in its colour channels; compositing over a background would dim it by the alpha.
    Premultiplied modes (``La``, ``RGBa``) are converted back to straight colour first (Pillow's
    ``Image.convert``), a palette image is expanded through its palette.
    """
    if im.mode in ("LA", "La"):
        return (im if im.mode == "LA" else im.convert("LA")).getchannel("L")
    return im.convert("RGBA").convert("RGB")


# --- DICOM -----------------------------------------------------------------------------------------


def _load_dicom(source: Path, *, force: bool) -> LoadedImage:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(source, force=force)
    except InvalidDicomError as exc:
        raise ImageError(f"{source}: not a valid DICOM file ({first_line(exc)})") from exc
    except Exception as exc:  # pydicom raises many types on damaged headers
        raise ImageError(f"{source}: corrupt DICOM header ({first_line(exc)})") from exc
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if force:
            raise ImageError(f"{source}: not a DICOM file with an image (no 'DICM' marker, no pixel data)")
        raise ImageError(f"{source}: DICOM has no pixel data")
    if force and "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        # Preamble-less files are normally implicit VR little endian; say so, or pydicom will not decode.
        from pydicom.uid import ImplicitVRLittleEndian

        ds.file_meta = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset())
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    try:
        stored = ds.pixel_array
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", None) or str(syntax or "unknown transfer syntax")
        raise ImageError(f"{source}: cannot decode DICOM pixel data ({name}): {first_line(exc)}") from exc

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1 and stored.ndim >= 3 and stored.shape[0] == frames:
        raise ImageError(f"{source}: multi-frame DICOM ({frames} frames); only single-frame is supported")

    if samples == 3 and stored.ndim == 3 and stored.shape[-1] == 3:
        # Colour DICOM: pydicom has already converted YBR to RGB; no VOI for colour data.
        rgb_array = _to_uint8_colour(stored)
        rgb = Image.fromarray(rgb_array)
        pixels = np.array(rgb.convert("L"), dtype=np.uint8)
    elif stored.ndim == 2:
        pixels = _dicom_gray_to_uint8(stored, ds)
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
        rgb = _gray_to_rgb(pixels)
    else:
        raise ImageError(
            f"{source}: unsupported DICOM pixel array of shape {tuple(stored.shape)} "
            f"({photometric}, {samples} samples per pixel); expected a single 2-D frame"
        )
    return LoadedImage(pixels=pixels, rgb=rgb, size=(pixels.shape[1], pixels.shape[0]), source=source,
                       kind="dicom")


def _dicom_gray_to_uint8(stored: np.ndarray, ds) -> np.ndarray:
    """Modality LUT (rescale) -> VOI LUT or window -> 8 bits; else stored 8-bit as is, or min-max."""
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom 2.x
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

    has_rescale = "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds
    values = apply_modality_lut(stored, ds) if has_rescale else stored

    if "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0:
        return _stretch(apply_voi_lut(values, ds, index=0, prefer_lut=True))
    window = _first_window(ds)
    if window is not None:
        centre, width = window
        function = str(ds.get("VOILUTFunction", "LINEAR")).upper()
        return _window(values, centre, width, function)
    if stored.dtype == np.uint8 and not has_rescale:
        return np.array(stored, dtype=np.uint8)
    return _stretch(values)


def _first_window(ds) -> tuple[float, float] | None:
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    centre, width = ds.WindowCenter, ds.WindowWidth
    # Multi-valued windows (several presets) come as sequences; the first is the primary one.
    centre = centre[0] if _is_multi(centre) else centre
    width = width[0] if _is_multi(width) else width
    try:
        centre, width = float(centre), float(width)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(centre) or not np.isfinite(width) or width <= 0:
        return None
    return centre, width


def _is_multi(value) -> bool:
    return not isinstance(value, str | bytes) and hasattr(value, "__len__") and hasattr(value, "__getitem__")


def _window(values: np.ndarray, centre: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing straight to 0..255."""
    x = values.astype(np.float64)
    if function == "SIGMOID":
        y = 1.0 / (1.0 + np.exp(-4.0 * (x - centre) / width))
    elif function == "LINEAR_EXACT":
        y = (x - centre) / width + 0.5
    else:  # LINEAR
        if width < 1:
            width = 1.0  # the standard requires width >= 1 for LINEAR
        y = (x - (centre - 0.5)) / (width - 1) + 0.5 if width > 1 else (x >= centre).astype(np.float64)
    return np.rint(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


# --- shared -----------------------------------------------------------------------------------------


def _stretch(values: np.ndarray) -> np.ndarray:
    """Min-max to uint8; a flat image becomes all zeros."""
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D gray image, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            arr = np.where(finite, arr, np.nanmin(arr[finite]) if finite.any() else 0.0)
    low, high = arr.min(), arr.max()
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    scale = np.float32(255.0 / (float(high) - float(low)))
    out = (arr.astype(np.float32) - np.float32(low)) * scale
    np.rint(out, out=out)
    return out.astype(np.uint8)


def _to_uint8_colour(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    flat = _stretch(arr.reshape(arr.shape[0], -1))
    return flat.reshape(arr.shape)


def _gray_to_rgb(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels).convert("RGB")
