"""Anatomy masks: against phantom ground truth, on real films, and under the usual film defects."""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from medgemma_tui.analysis.masks import AnatomyMasks, anatomy_masks, mask_to_grid

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-cxr"
REAL_FILES = ["nih_00000001_000.png", "tbx11k_h0001.png", "tbx11k_tb0005.png", "siim_pa_chest.dcm"]


def _phantoms():
    from tests.support import builder

    return builder("phantoms")


P = _phantoms()


def dice(a, b):
    return 2.0 * (a & b).sum() / max(1, a.sum() + b.sum())


def assert_plausible(am: AnatomyMasks, shape):
    assert am.body.shape == am.lung_right.shape == am.lung_left.shape == shape
    h, w = shape
    for lung in (am.lung_right, am.lung_left):
        assert 0.03 < lung.mean() < 0.35
        assert (lung & ~am.body).sum() == 0
    assert 0.10 <= am.lungs.mean() <= 0.50
    assert np.nonzero(am.lung_right)[1].mean() < w / 2 < np.nonzero(am.lung_left)[1].mean()


# ---------------------------------------------------------------- phantoms


@pytest.fixture(scope="module")
def phantom_batch():
    films = [P.make_phantom(500 + s, (None, *P.FINDINGS)[s % 7]) for s in range(14)]
    return [(ph, anatomy_masks(ph.image)) for ph in films]


def test_lung_dice_is_at_least_0_8_on_every_phantom(phantom_batch):
    for ph, am in phantom_batch:
        for side in ("right", "left"):
            d = dice(getattr(am, f"lung_{side}"), ph.masks[f"lung_{side}"])
            assert d >= 0.8, (ph.finding, side, d, am.fallback)


def test_body_dice_is_at_least_0_9_on_every_phantom(phantom_batch):
    for ph, am in phantom_batch:
        assert dice(am.body, ph.masks["body"]) >= 0.9, (ph.finding, am.fallback)


def test_phantom_masks_need_no_fallback(phantom_batch):
    assert all(am.fallback == () for _, am in phantom_batch)


def test_rgb_and_uint16_inputs_give_the_same_masks():
    img = P.make_phantom(3, None).image
    ref = anatomy_masks(img)
    for variant in (np.stack([img] * 3, axis=2), img.astype(np.uint16) * 257 + 1000, img.astype(float) / 255):
        am = anatomy_masks(variant)
        assert dice(am.lungs, ref.lungs) > 0.98 and dice(am.body, ref.body) > 0.98


def test_white_collimation_frame_and_text_marker_do_not_break_the_lungs():
    ph = P.make_phantom(9, None, collimation=0, marker=0)
    img = ph.image.copy()
    img[:30, :] = 235  # shutter along the top and the right
    img[:, -25:] = 235
    img[40:60, 20:34] = 255  # burnt-in marker in the air
    am = anatomy_masks(img)
    assert_plausible(am, img.shape)
    assert dice(am.lung_left, ph.masks["lung_left"] & (np.arange(448)[None, :] < 448 - 25)) > 0.8
    assert not am.body[:30, :].any() and not am.body[:, -25:].any()
    assert not am.body[45:55, 22:32].any()


def test_tilted_and_cropped_films_still_give_two_plausible_lungs():
    tilted = P.make_phantom(4, None, tilt=8.0)
    am = anatomy_masks(tilted.image)
    assert dice(am.lungs, tilted.masks["lung_right"] | tilted.masks["lung_left"]) > 0.8
    big = P.make_phantom(6, None, scale=1.15)
    cropped = big.image[40:400, 30:]  # lungs close to the edges, no air above the shoulders
    am = anatomy_masks(cropped)
    assert_plausible(am, cropped.shape)
    truth = (big.masks["lung_right"] | big.masks["lung_left"])[40:400, 30:]
    assert dice(am.lungs, truth) > 0.8


def test_an_image_without_lungs_falls_back_and_says_so():
    # a bright body with no dark lungs in it (another body part, or a fully opacified chest)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:200, :240]
    body = ((x - 120) / 100.0) ** 2 + ((y - 110) / 120.0) ** 2 < 1
    img = np.where(body, 180.0, 15.0) + ndimage.gaussian_filter(rng.normal(0, 20, (200, 240)), 4)
    am = anatomy_masks(img)
    assert am.fallback  # never a silent replacement
    assert am.lung_right.any() and am.lung_left.any()
    assert (am.lungs & ~am.body).sum() == 0
    assert am.lungs.mean() < 0.5
    flat = anatomy_masks(np.full((64, 64), 7, dtype=np.uint8))
    assert flat.fallback and flat.lung_right.any() and flat.lung_left.any()


def test_zones_are_thirds_of_each_lungs_height_and_partition_it():
    lung = np.zeros((30, 20), dtype=bool)
    lung[3:27, 2:8] = True  # rows 3..26: 24 rows, thirds of 8
    am = AnatomyMasks(body=np.ones_like(lung), lung_right=lung, lung_left=np.zeros_like(lung))
    z = am.zones()
    assert set(z) == {f"{s}_{t}" for s in ("right", "left") for t in ("upper", "middle", "lower")}
    assert [np.flatnonzero(z[f"right_{t}"].any(axis=1)).tolist() for t in ("upper", "middle", "lower")] == [
        list(range(3, 11)), list(range(11, 19)), list(range(19, 27))]
    assert not z["left_upper"].any()
    assert np.array_equal(z["right_upper"] | z["right_middle"] | z["right_lower"], lung)


# ---------------------------------------------------------------- grid coverage


def test_mask_to_grid_on_an_exact_multiple():
    m = np.zeros((32, 32), dtype=bool)
    m[:, :16] = True
    g = mask_to_grid(m)
    assert g.shape == (16, 16)
    assert np.all(g[:, :8] == 1.0) and np.all(g[:, 8:] == 0.0)


def test_mask_to_grid_splits_pixels_cut_by_cell_edges():
    m = np.zeros((20, 20))
    m[:10, :10] = 1.0
    g = mask_to_grid(m, (3, 3))  # cells of 6.67 px: the square ends a third of the way into cell 1
    assert g[0, 0] == pytest.approx(1.0)
    assert g[0, 1] == pytest.approx(0.5) and g[1, 0] == pytest.approx(0.5)
    assert g[1, 1] == pytest.approx(0.25)
    assert g[2, 2] == 0.0
    assert g.mean() == pytest.approx(m.mean())  # area is conserved


def test_mask_to_grid_on_odd_sizes_conserves_area():
    rng = np.random.default_rng(3)
    m = rng.random((101, 77)) > 0.6
    g = mask_to_grid(m, (16, 16))
    assert g.min() >= 0 and g.max() <= 1
    assert g.mean() == pytest.approx(m.mean())


# ---------------------------------------------------------------- real films


def _load_real(name):
    if not REAL.is_dir():
        pytest.skip(f"real films not present at {REAL}")
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    if name.endswith(".dcm"):
        pydicom = pytest.importorskip("pydicom")
        return pydicom.dcmread(path).pixel_array
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im)


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_film_gives_two_plausible_lungs_inside_the_body(name):
    img = _load_real(name)
    am = anatomy_masks(img)
    assert_plausible(am, img.shape[:2])
    assert am.fallback == ()
    assert 0.5 < am.body.mean() < 1.0
