"""Image loading: real films, synthetic PNG/DICOM edge cases, and one-line errors for bad input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from medgemma_tui.data.images import ImageError, LoadedImage, load_image

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-cxr"
if not REAL.is_dir():
    REAL = Path("/work/shared/data/real-cxr")


def real(name: str) -> Path:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"real chest X-ray {name} not available at {REAL}")
    return path


def write_dicom(path: Path, array: np.ndarray, preamble: bool = True, **attrs) -> Path:
    """A minimal single-frame grayscale DICOM, written with pydicom."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if array.ndim == 3:
        ds.NumberOfFrames = array.shape[0]
    ds.Rows, ds.Columns = array.shape[-2:]
    bits = 8 if array.dtype == np.uint8 else 16
    ds.BitsAllocated = bits
    ds.BitsStored = attrs.pop("BitsStored", bits)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if array.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(array).tobytes()
    for name, value in attrs.items():
        setattr(ds, name, value)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.file_meta = FileMetaDataset()  # no preamble, no file meta: a bare implicit-VR dataset
        ds.save_as(path, implicit_vr=True, little_endian=True)
    return path


def ramp(height: int, width: int, low: int, high: int) -> np.ndarray:
    return np.linspace(low, high, height * width).reshape(height, width).round().astype(np.uint16)


def assert_consistent(image: LoadedImage) -> None:
    height, width = image.pixels.shape
    assert image.pixels.dtype == np.uint8
    assert image.size == (width, height)
    assert image.rgb.mode == "RGB"
    assert image.rgb.size == image.size


# --- real films -------------------------------------------------------------------------------------


def test_real_nih_png_loads_as_8bit_gray_512():
    image = load_image(real("nih_00000001_000.png"))
    assert_consistent(image)
    assert image.kind == "png"
    assert image.size == (512, 512)
    with Image.open(real("nih_00000001_000.png")) as raw:
        np.testing.assert_array_equal(image.pixels, np.asarray(raw.convert("L")))
    rgb = np.asarray(image.rgb)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], image.pixels)


def test_real_tbx11k_rgb_png_keeps_colour_for_processor_and_gray_for_display():
    path = real("tbx11k_h0001.png")
    image = load_image(path)
    assert_consistent(image)
    assert image.kind == "png"
    with Image.open(path) as raw:
        assert raw.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image.rgb), np.asarray(raw))
        np.testing.assert_array_equal(image.pixels, np.asarray(raw.convert("L")))


def test_real_siim_jpeg_baseline_dicom_decodes_to_uint8_0_to_254():
    path = real("siim_pa_chest.dcm")
    image = load_image(path)
    assert_consistent(image)
    assert image.kind == "dicom"
    assert image.size == (1024, 1024)
    assert (int(image.pixels.min()), int(image.pixels.max())) == (0, 254)
    np.testing.assert_array_equal(image.pixels, pydicom.dcmread(path).pixel_array)


# --- synthetic PNG / JPEG ---------------------------------------------------------------------------


def test_16bit_png_is_stretched_min_to_max(tmp_path):
    values = ramp(64, 80, 1000, 5000)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert_consistent(image)
    assert image.size == (80, 64)
    assert image.pixels[0, 0] == 0 and image.pixels[-1, -1] == 255
    expected = np.rint((values.astype(np.float64) - 1000) * 255 / 4000).astype(np.uint8)
    assert np.abs(image.pixels.astype(int) - expected.astype(int)).max() <= 1
    assert np.all(np.diff(image.pixels.ravel().astype(int)) >= 0)


def test_large_16bit_png_loads_quickly(tmp_path):
    yy, xx = np.mgrid[0:4000, 0:4000]
    values = ((yy * 7 + xx * 3) % 4096).astype(np.uint16) * 16
    path = tmp_path / "large.png"
    Image.fromarray(values).save(path, compress_level=1)
    start = time.perf_counter()
    image = load_image(path)
    elapsed = time.perf_counter() - start
    assert image.size == (4000, 4000)
    assert elapsed < 2.0, f"4000x4000 16-bit PNG took {elapsed:.2f}s"


def film_ramp(height: int = 8, width: int = 16) -> np.ndarray:
    return np.tile(np.linspace(10, 250, width).round().astype(np.uint8), (height, 1))


@pytest.mark.parametrize("alpha", [128, 0, 255])
def test_rgba_png_keeps_the_film_at_full_brightness_whatever_its_alpha(tmp_path, alpha):
    gray = film_ramp()
    rgba = np.stack([gray, gray, gray, np.full_like(gray, alpha)], axis=-1)
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    assert_consistent(image)
    np.testing.assert_array_equal(image.pixels, gray)
    np.testing.assert_array_equal(np.asarray(image.rgb), rgba[..., :3])


def test_rgba_png_with_mixed_alpha_keeps_every_pixels_colour(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = np.array([0, 64, 128, 255], dtype=np.uint8)[:, None]
    path = tmp_path / "mixed.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    assert (np.asarray(image.rgb) == (200, 100, 50)).all()
    # ITU-R 601 luma, Pillow's L conversion: (200*299 + 100*587 + 50*114) / 1000 = 124.4
    assert (image.pixels == 124).all()


def test_gray_png_with_alpha_keeps_the_film_at_full_brightness(tmp_path):
    gray = film_ramp()
    la = np.stack([gray, np.full_like(gray, 128)], axis=-1)
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    image = load_image(path)
    assert_consistent(image)
    np.testing.assert_array_equal(image.pixels, gray)
    np.testing.assert_array_equal(np.asarray(image.rgb), np.repeat(gray[..., None], 3, axis=-1))


def test_palette_png_with_transparency_keeps_its_palette_values(tmp_path):
    gray = film_ramp()
    palette_image = Image.fromarray(gray).convert("P")
    indices = np.asarray(palette_image)
    path = tmp_path / "trns.png"
    # every palette entry half transparent, the darkest one fully transparent
    alphas = bytes([0 if i == indices.min() else 128 for i in range(256)])
    palette_image.save(path, transparency=alphas)
    with Image.open(path) as check:
        assert check.mode == "P" and "transparency" in check.info
    image = load_image(path)
    assert_consistent(image)
    np.testing.assert_array_equal(image.pixels, np.asarray(palette_image.convert("L")))
    np.testing.assert_array_equal(image.pixels, gray)


def test_palette_png_loads_as_its_gray_values(tmp_path):
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1))
    palette_image = Image.fromarray(gray).convert("P")
    path = tmp_path / "palette.png"
    palette_image.save(path)
    image = load_image(path)
    assert_consistent(image)
    np.testing.assert_array_equal(image.pixels, np.asarray(palette_image.convert("L")))


def test_jpeg_loads_with_kind_jpeg(tmp_path):
    gray = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (24, 1))
    path = tmp_path / "film.jpg"
    Image.fromarray(gray).save(path, quality=95)
    image = load_image(path)
    assert_consistent(image)
    assert image.kind == "jpeg"
    assert image.size == (32, 24)
    assert np.abs(image.pixels.astype(int) - gray.astype(int)).max() <= 8


# --- synthetic DICOM --------------------------------------------------------------------------------


def test_monochrome1_dicom_is_inverted_brightest_stored_value_becomes_darkest_pixel(tmp_path):
    values = ramp(16, 16, 100, 3000)
    path = write_dicom(tmp_path / "mono1.dcm", values, PhotometricInterpretation="MONOCHROME1",
                       BitsStored=12)
    image = load_image(path)
    assert_consistent(image)
    brightest = np.unravel_index(np.argmax(values), values.shape)
    darkest = np.unravel_index(np.argmin(values), values.shape)
    assert image.pixels[brightest] == 0
    assert image.pixels[darkest] == 255


def test_monochrome2_dicom_without_window_is_stretched_min_to_max(tmp_path):
    values = ramp(16, 16, 100, 3000)
    image = load_image(write_dicom(tmp_path / "mono2.dcm", values, BitsStored=12))
    assert image.pixels[0, 0] == 0 and image.pixels[-1, -1] == 255


def test_dicom_window_centre_and_width_are_applied(tmp_path):
    values = np.array([[0, 899, 900, 1000], [1100, 1101, 2000, 4095]], dtype=np.uint16)
    path = write_dicom(tmp_path / "window.dcm", values, BitsStored=12, WindowCenter=1000, WindowWidth=201)
    image = load_image(path)
    # linear window: (x - (c - 0.5)) / (w - 1) + 0.5, clipped to [0, 1], times 255
    expected = np.clip((values.astype(float) - 999.5) / 200 + 0.5, 0, 1) * 255
    np.testing.assert_array_equal(image.pixels, np.rint(expected).astype(np.uint8))
    assert image.pixels[0, :2].tolist() == [0, 0]
    assert image.pixels[1, 1:].tolist() == [255, 255, 255]
    assert image.pixels[0, 3] == 128


def test_dicom_window_is_in_rescaled_units(tmp_path):
    values = np.array([[0, 1024, 1074, 2048]], dtype=np.uint16)  # HU = stored - 1024
    path = write_dicom(tmp_path / "ct.dcm", values, RescaleSlope=1, RescaleIntercept=-1024,
                       WindowCenter=0, WindowWidth=101)
    image = load_image(path)
    assert image.pixels[0].tolist() == [0, 129, 255, 255]  # 0 HU: (0 + 0.5) / 100 + 0.5 -> 0.505


def test_multi_valued_window_uses_the_first_preset(tmp_path):
    values = np.array([[899, 1000, 1101]], dtype=np.uint16)
    path = write_dicom(tmp_path / "multi.dcm", values, BitsStored=12,
                       WindowCenter=[1000, 3000], WindowWidth=[201, 50])
    assert load_image(path).pixels[0].tolist() == [0, 128, 255]


def test_8bit_dicom_without_window_is_kept_as_stored(tmp_path):
    values = np.array([[10, 20], [30, 200]], dtype=np.uint8)
    image = load_image(write_dicom(tmp_path / "eight.dcm", values))
    np.testing.assert_array_equal(image.pixels, values)


def test_dicom_is_detected_by_content_not_extension(tmp_path):
    values = ramp(8, 8, 0, 1000)
    path = write_dicom(tmp_path / "misnamed.png", values)
    assert path.read_bytes()[128:132] == b"DICM"
    assert load_image(path).kind == "dicom"


def test_dicom_without_preamble_loads_by_extension(tmp_path):
    values = ramp(8, 8, 0, 1000)
    path = write_dicom(tmp_path / "old.dcm", values, preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    image = load_image(path)
    assert image.kind == "dicom"
    assert image.pixels[0, 0] == 0 and image.pixels[-1, -1] == 255


# --- bad input ---------------------------------------------------------------------------------------


def assert_one_line_error(path: Path, *phrases: str) -> None:
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for phrase in phrases:
        assert phrase in message, message
    assert isinstance(info.value, ValueError)


def test_missing_file_is_named(tmp_path):
    assert_one_line_error(tmp_path / "nope.png", "not found")


def test_directory_is_rejected(tmp_path):
    assert_one_line_error(tmp_path, "directory")


def test_text_file_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 20)
    assert_one_line_error(path, "not a recognised image")


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert_one_line_error(path, "empty")


def test_truncated_png_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:2000])
    assert_one_line_error(path, "truncated or corrupt")


def test_truncated_jpeg_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:1500])
    assert_one_line_error(path, "truncated or corrupt")


def test_dicom_without_pixel_data_is_rejected(tmp_path):
    path = write_dicom(tmp_path / "nopixels.dcm", ramp(4, 4, 0, 10))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    assert_one_line_error(path, "no pixel data")


def test_multi_frame_dicom_is_unsupported(tmp_path):
    frames = np.stack([ramp(4, 4, 0, 10), ramp(4, 4, 10, 20)])
    path = write_dicom(tmp_path / "cine.dcm", frames)
    assert_one_line_error(path, "multi-frame", "2 frames")


def test_text_file_named_dcm_is_not_dicom(tmp_path):
    path = tmp_path / "report.dcm"
    path.write_text("Impression: no acute cardiopulmonary process.\n" * 10)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert "not a DICOM file" in str(info.value)
