"""Image perturbations of the robustness study: seeded, reproducible, and a no-op at zero strength."""

from __future__ import annotations

import numpy as np
import pytest

from medgemma_tui.analysis import perturbations as pt
from medgemma_tui.config import Config


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    """A non-square 8-bit film, 300 rows x 400 columns, with a bright 'body' in the middle."""
    rng = np.random.default_rng(7)
    pixels = (rng.random((300, 400)) * 60).astype(np.uint8)
    pixels[40:260, 80:320] += 120
    return pixels


@pytest.fixture(scope="module")
def body(gray) -> np.ndarray:
    mask = np.zeros(gray.shape, dtype=bool)
    mask[40:260, 80:320] = True
    return mask


ZERO = [
    ("gaussian_noise", 0.0),
    ("contrast", 1.0),
    ("brightness", 0.0),
    ("gaussian_blur", 0.0),
    ("rotation", 0.0),
    ("changed_pixels", 0),
]


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize(("name", "strength"), ZERO)
def test_zero_strength_changes_nothing_bit_for_bit(gray, body, name, strength, channels):
    pixels = gray if channels is None else np.repeat(gray[..., None], channels, axis=-1)
    before = pixels.copy()
    out = getattr(pt, name)(pixels, strength, 5)
    assert out.dtype == np.uint8 and out.shape == pixels.shape
    assert np.array_equal(out, pixels)
    assert out is not pixels
    assert np.array_equal(pixels, before)  # the input is never modified


@pytest.mark.parametrize("mode", pt.SQUARE_MODES)
def test_pad_and_crop_of_a_square_film_change_nothing(gray, mode):
    square = np.ascontiguousarray(gray[:, :300])
    assert np.array_equal(pt.to_square(square, mode), square)


def test_every_perturbation_at_zero_strength_is_the_identity_and_the_config_leaves_it_out(gray, body):
    zero = [pt.Perturbation("noise", 0.0, ""), pt.Perturbation("contrast", 1.0, ""),
            pt.Perturbation("brightness", 0.0, ""), pt.Perturbation("blur", 0.0, ""),
            pt.Perturbation("rotation", 0.0, ""), pt.Perturbation("pixels", 0, ""), pt.Perturbation("resize", "", "")]
    for perturbation in zero:
        assert np.array_equal(perturbation.apply(gray, seed=3, body=body), gray), perturbation.name
    off = Config().with_overrides({"robustness.noise_sigma": 0, "robustness.contrast": 1, "robustness.brightness": 0,
                                   "robustness.blur_sigma": 0, "robustness.rotation_deg": 0,
                                   "robustness.pixels_changed": 0, "robustness.preprocessing": ["resize"]})
    assert [p.name for p in pt.from_config(off.robustness)] == ["resize"]


def test_non_zero_strength_changes_the_film(gray, body):
    for perturbation in pt.from_config(Config().robustness):
        out = perturbation.apply(gray, seed=0, body=body)
        assert out.shape != gray.shape or not np.array_equal(out, gray), perturbation.name


def test_same_seed_same_bytes_other_seed_other_bytes(gray, body):
    for fn, strength in ((pt.gaussian_noise, 8.0), (pt.changed_pixels, 20)):
        a = fn(gray, strength, 11, body) if fn is pt.changed_pixels else fn(gray, strength, 11)
        b = fn(gray, strength, 11, body) if fn is pt.changed_pixels else fn(gray, strength, 11)
        c = fn(gray, strength, 12, body) if fn is pt.changed_pixels else fn(gray, strength, 12)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)


def test_noise_has_the_asked_sigma_and_keeps_a_gray_film_gray():
    flat = np.full((200, 300, 3), 128, dtype=np.uint8)
    out = pt.gaussian_noise(flat, 8.0, seed=0).astype(np.float64)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert abs(out[..., 0].std() - 8.0) < 0.2
    assert abs(out.mean() - 128.0) < 0.2


def test_changed_pixels_change_exactly_that_many_inside_the_body(gray, body):
    out = pt.changed_pixels(gray, 20, seed=1, body=body)
    changed = out != gray
    assert changed.sum() == 20
    assert not (changed & ~body).any()
    assert (np.abs(out.astype(int) - gray.astype(int))[changed] >= 128).all()
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    out_rgb = pt.changed_pixels(rgb, 20, seed=1, body=body)
    assert np.array_equal(out_rgb[..., 0], out) and np.array_equal(out_rgb[..., 2], out)


def test_contrast_and_brightness_known_values():
    pixels = np.array([[100, 200], [0, 100]], dtype=np.uint8)  # mean 100
    assert pt.contrast(pixels, 0.5).tolist() == [[100, 150], [50, 100]]
    assert pt.contrast(pixels, 2.0).tolist() == [[100, 255], [0, 100]]
    assert pt.brightness(pixels, 60).tolist() == [[160, 255], [60, 160]]
    assert pt.brightness(pixels, -150).tolist() == [[0, 50], [0, 0]]


def test_rotation_turns_counter_clockwise_and_blur_spreads():
    pixels = np.zeros((101, 101), dtype=np.uint8)
    pixels[50, 70:100] = 255  # a bar pointing right from the centre
    turned = pt.rotation(pixels, 90.0)
    assert turned[1:31, 50].mean() > 200 and turned[50, 70:100].mean() < 20  # now it points up
    spot = np.zeros((41, 41), dtype=np.uint8)
    spot[20, 20] = 255
    blurred = pt.gaussian_blur(spot, 2.0)
    assert blurred[20, 20] < 255 and blurred[20, 23] > 0


def test_pad_and_crop_geometry_of_a_wide_film(gray):
    height, width = gray.shape  # 300 x 400
    assert pt.square_box(width, height, "pad") == (0, -50, 400, 350)
    assert pt.square_box(width, height, "crop") == (50, 0, 350, 300)
    assert pt.square_box(width, height, "resize") == (0, 0, 400, 300)
    padded = pt.to_square(gray, "pad")
    assert padded.shape == (400, 400)
    assert np.array_equal(padded[50:350], gray) and not padded[:50].any() and not padded[350:].any()
    cropped = pt.to_square(np.repeat(gray[..., None], 3, axis=-1), "crop")
    assert cropped.shape == (300, 300, 3) and np.array_equal(cropped[..., 1], gray[:, 50:350])
    with pytest.raises(ValueError, match="square mode"):
        pt.to_square(gray, "stretch")


def test_from_config_names_every_perturbation_in_order():
    found = pt.from_config(Config().robustness)
    assert [p.name for p in found] == ["noise", "contrast", "brightness", "blur", "rotation", "pixels", "pad", "crop"]
    assert found[0].strength == 8.0 and found[5].strength == 20
    assert [p.changes_frame for p in found][-2:] == [True, True]


def test_bad_input_is_refused(gray):
    with pytest.raises(ValueError, match="uint8"):
        pt.gaussian_noise(gray.astype(np.float32), 1.0)
    with pytest.raises(ValueError, match="contrast"):
        pt.contrast(gray, 0.0)
