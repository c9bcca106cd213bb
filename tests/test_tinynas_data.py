"""Datasets for the search: loaders (digits, CIFAR-10 python batches, ImageFolder), the seeded
stratified split, resizing, augmentation and (sharded) batches."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinynas.data import (
    Dataset,
    augment,
    batches,
    distorted,
    load_cifar10,
    load_dataset,
    load_digits,
    load_image_folder,
    resize,
    resize_numpy,
    split,
)
from tinynas.errors import TinyNASError

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


def _tagged(y: np.ndarray, classes: list[str] | None = None) -> Dataset:
    """A dataset whose image i is the constant i, so that a part's images name their indices."""
    x = np.broadcast_to(np.arange(len(y), dtype=np.float32)[:, None, None, None],
                        (len(y), 1, 2, 2)).copy()
    classes = classes if classes is not None else [str(c) for c in range(int(y.max()) + 1)]
    return Dataset(x, np.asarray(y, np.int64), classes, "tagged")


def _ids(part: Dataset) -> np.ndarray:
    return part.x[:, 0, 0, 0].astype(np.int64)


# -- digits -------------------------------------------------------------------------------------

def test_digits_are_sklearns_images_in_nchw_and_0_1(digits):
    from sklearn.datasets import load_digits as sk_digits

    assert len(digits) == 1797 and digits.x.shape == (1797, 1, 8, 8)
    assert digits.x.dtype == np.float32 and digits.y.dtype == np.int64
    assert digits.x.min() == 0.0 and digits.x.max() == 1.0
    assert sorted(set(digits.y.tolist())) == list(range(10))
    assert digits.classes == [str(i) for i in range(10)] and digits.num_classes == 10
    assert (digits.in_channels, digits.native_resolution) == (1, 8)
    ref = sk_digits()
    np.testing.assert_array_equal(digits.x[:, 0] * 16, ref.images)  # pixel values 0..16
    np.testing.assert_array_equal(digits.y, ref.target)


def test_dataset_refuses_mismatched_or_empty_arrays():
    with pytest.raises(TinyNASError, match="3 images but 2 labels"):
        Dataset(np.zeros((3, 1, 2, 2), np.float32), np.zeros(2, np.int64), ["a"], "d")
    with pytest.raises(TinyNASError):
        Dataset(np.zeros((0, 1, 2, 2), np.float32), np.zeros(0, np.int64), ["a"], "d")


# -- split --------------------------------------------------------------------------------------

def test_split_is_a_stratified_partition(digits):
    data = _tagged(digits.y)
    s = split(data)
    train, val, test = _ids(s.train), _ids(s.val), _ids(s.test)
    for part, ids in ((s.train, train), (s.val, val), (s.test, test)):
        np.testing.assert_array_equal(part.y, digits.y[ids])  # labels travel with images
        assert list(ids) == sorted(ids) and part.classes == data.classes
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert sorted(np.concatenate([train, val, test])) == list(range(len(data)))
    assert len(test) >= 0.2 * len(data) and len(test) == math.ceil(0.2 * len(data))
    assert abs(len(val) - 0.15 * len(data)) <= 2
    counts = np.bincount(digits.y)
    for part, frac in ((s.train, 0.65), (s.val, 0.15), (s.test, 0.2)):
        per_class = np.bincount(part.y, minlength=10)
        assert per_class.min() >= 1  # every class in every part
        assert np.all(np.abs(per_class - frac * counts) <= 2), (part.name, per_class)
    assert (s.train.name, s.val.name, s.test.name) == ("tagged:train", "tagged:val",
                                                       "tagged:test")


def test_split_is_seeded_and_the_test_part_ignores_val(digits):
    data = _tagged(digits.y)
    a, b = split(data, seed=3), split(data, seed=3)
    for pa, pb in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(_ids(pa), _ids(pb))
    other_val = split(data, val=0.3, seed=3)
    np.testing.assert_array_equal(_ids(other_val.test), _ids(a.test))
    assert len(other_val.val) > len(a.val)
    other_seed = split(data, seed=4)
    assert set(_ids(other_seed.test)) != set(_ids(a.test))
    assert set(_ids(other_seed.val)) != set(_ids(a.val))


@pytest.mark.parametrize("test, val", [(0.0, 0.15), (1.0, 0.15), (0.2, 0.0), (0.2, 1.0),
                                       (0.5, 0.5), (0.6, 0.5), (-0.1, 0.1), (0.2, -0.1)])
def test_split_refuses_bad_fractions(test, val):
    with pytest.raises(TinyNASError, match="split fractions"):
        split(_tagged(np.repeat(np.arange(3), 10)), test=test, val=val)


def test_split_needs_three_images_per_class():
    y = np.array([0] * 10 + [1] * 10 + [2] * 2)
    with pytest.raises(TinyNASError) as e:
        split(_tagged(y, ["cat", "dog", "eel"]))
    assert "'eel'" in str(e.value) and "2 image(s)" in str(e.value)
    assert "at least 3" in str(e.value)
    # a class with no image at all
    with pytest.raises(TinyNASError, match="'eel' has 0 image"):
        split(_tagged(np.array([0] * 10 + [1] * 10), ["cat", "dog", "eel"]))


def test_split_of_a_small_dataset_is_a_split_or_a_clear_error():
    for classes, per_class in ((2, 3), (3, 3), (10, 5)):
        y = np.repeat(np.arange(classes), per_class)
        try:
            s = split(_tagged(y))
        except TinyNASError:
            continue
        for part in (s.train, s.val, s.test):
            assert np.bincount(part.y, minlength=classes).min() >= 1


# -- ImageFolder --------------------------------------------------------------------------------

def _write_folder(root: Path, classes: list[str], per_class: int, size: int, mode: str,
                  seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Random images written as PNG; returns the pixels per class in file-name order."""
    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {}
    for name in classes:
        (root / name).mkdir(parents=True)
        written[name] = []
        for i in range(per_class):
            shape = (size, size) if mode == "L" else (size, size, 3)
            a = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(a, mode).save(root / name / f"img{i:02d}.png")
            written[name].append(a)
    return written


def test_image_folder_greyscale(tmp_path):
    classes = ["zebra", "apple", "mango"]  # created unsorted: labels follow the sorted names
    written = _write_folder(tmp_path, classes, 4, 6, "L")
    (tmp_path / "apple" / "notes.txt").write_text("not an image")  # ignored
    (tmp_path / ".cache").mkdir()  # hidden: not a class
    (tmp_path / "README.md").write_text("a file beside the classes")  # not a class
    d = load_image_folder(tmp_path)
    assert d.classes == ["apple", "mango", "zebra"] and d.name == tmp_path.name
    assert d.x.shape == (12, 1, 6, 6) and d.x.dtype == np.float32 and d.y.dtype == np.int64
    assert d.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    expected = np.stack([a for name in d.classes for a in written[name]])[:, None]
    np.testing.assert_allclose(d.x, expected / 255.0, rtol=0, atol=1e-7)
    assert d.x.min() >= 0 and d.x.max() <= 1


def test_image_folder_rgb_is_channel_major(tmp_path):
    written = _write_folder(tmp_path, ["b", "a", "c"], 4, 5, "RGB", seed=1)
    d = load_image_folder(tmp_path)
    assert d.x.shape == (12, 3, 5, 5) and d.in_channels == 3 and d.native_resolution == 5
    assert d.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    expected = np.stack([a for name in ("a", "b", "c") for a in written[name]])
    np.testing.assert_allclose(d.x, expected.transpose(0, 3, 1, 2) / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(d.x[5, 1], written["b"][1][:, :, 1] / 255.0, rtol=0, atol=1e-7)


def test_image_folder_converts_to_the_first_images_mode_and_size(tmp_path):
    written = _write_folder(tmp_path, ["a", "b"], 2, 6, "L", seed=2)
    # other sizes and an RGB image; constant images so that the expected resize is exact
    Image.fromarray(np.full((9, 9), 200, np.uint8), "L").save(tmp_path / "a" / "z_big.png")
    Image.fromarray(np.full((4, 4), 50, np.uint8), "L").save(tmp_path / "b" / "z_small.png")
    Image.fromarray(np.full((6, 6, 3), 90, np.uint8), "RGB").save(tmp_path / "b" / "z_rgb.png")
    d = load_image_folder(tmp_path)
    assert d.x.shape == (7, 1, 6, 6)
    assert d.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(d.x[0, 0], written["a"][0] / 255.0, rtol=0, atol=1e-7)
    for i, v in ((2, 200), (5, 90), (6, 50)):  # b: img00, img01, z_rgb, z_small
        np.testing.assert_allclose(d.x[i], v / 255.0, rtol=0, atol=1.5 / 255)


def test_image_folder_with_a_greyscale_image_in_an_rgb_dataset(tmp_path):
    _write_folder(tmp_path, ["a", "b"], 2, 4, "RGB", seed=3)
    Image.fromarray(np.full((4, 4), 77, np.uint8), "L").save(tmp_path / "b" / "z_grey.png")
    d = load_image_folder(tmp_path)
    assert d.x.shape == (5, 3, 4, 4)
    np.testing.assert_allclose(d.x[4], 77 / 255.0, rtol=0, atol=1e-7)  # grey in every channel


def test_image_folder_images_are_square(tmp_path):
    # resize() and native_resolution take images to be square: a non-square first image sets
    # a square size (its shorter side) for all
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(np.full((4, 7), 10 * i, np.uint8), "L").save(
                tmp_path / name / f"{i}.png")
    d = load_image_folder(tmp_path)
    assert d.x.shape == (4, 1, 4, 4) and d.native_resolution == 4


# -- CIFAR-10 python batches --------------------------------------------------------------------

def _write_cifar(root: Path, sizes: dict[str, int], meta: bool = True,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fake batches with the official layout: each row R(1024) G(1024) B(1024), each plane row
    by row. Returns the images as (N, 32, 32, 3) and the labels, in file order."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for name, n in sizes.items():
        img = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        lab = [int(v) for v in rng.integers(0, 10, n)]
        data = np.concatenate([img[..., c].reshape(n, 1024) for c in range(3)], axis=1)
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": lab}, f,
                        protocol=2)
        images.append(img)
        labels += lab
    if meta:
        with open(root / "batches.meta", "wb") as f:
            pickle.dump({b"label_names": [n.encode() for n in CIFAR_NAMES],
                         b"num_vis": 3072}, f, protocol=2)
    return np.concatenate(images), np.asarray(labels)


def test_cifar10_batches(tmp_path):
    img, lab = _write_cifar(tmp_path / "cifar", {"data_batch_1": 4, "data_batch_2": 3,
                                                 "test_batch": 2})
    d = load_cifar10(tmp_path / "cifar")
    assert d.x.shape == (9, 3, 32, 32) and d.x.dtype == np.float32 and d.y.dtype == np.int64
    assert d.classes == CIFAR_NAMES and d.name == "cifar"
    np.testing.assert_array_equal(d.y, lab)
    np.testing.assert_allclose(d.x, img.transpose(0, 3, 1, 2) / 255.0, rtol=0, atol=1e-7)
    # the layout spelled out: pixel (h, w) of channel c is column c * 1024 + h * 32 + w
    with open(tmp_path / "cifar" / "data_batch_2", "rb") as f:
        row = pickle.load(f, encoding="bytes")[b"data"][1]
    for c, h, w in ((0, 0, 0), (0, 5, 31), (1, 17, 2), (2, 31, 31)):
        assert d.x[5, c, h, w] == np.float32(row[c * 1024 + h * 32 + w]) / np.float32(255)


def test_cifar10_without_meta_uses_indices(tmp_path):
    _write_cifar(tmp_path, {"data_batch_1": 3, "test_batch": 2}, meta=False)
    d = load_cifar10(tmp_path)
    assert d.classes == [str(i) for i in range(10)] and len(d) == 5


@pytest.mark.parametrize("content, words", [
    (b"\x00garbage, not a pickle", ["data_batch_2", "not a CIFAR-10 python batch"]),
    (b"", ["data_batch_2", "not a CIFAR-10 python batch"]),
    (pickle.dumps({b"labels": [1, 2]}), ["data_batch_2", "not a CIFAR-10 python batch"]),
    (pickle.dumps([1, 2, 3]), ["data_batch_2", "not a CIFAR-10 python batch"]),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}),
     ["data_batch_2", "N x 3072"]),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}),
     ["data_batch_2", "N x 3072"]),
])
def test_corrupt_cifar_batch(tmp_path, content, words):
    _write_cifar(tmp_path, {"data_batch_1": 2, "test_batch": 2})
    (tmp_path / "data_batch_2").write_bytes(content)
    with pytest.raises(TinyNASError) as e:
        load_dataset(tmp_path)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_cifar_labels_out_of_range(tmp_path):
    _write_cifar(tmp_path, {"data_batch_1": 2})
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, f)
    with pytest.raises(TinyNASError, match="labels outside 0..9"):
        load_cifar10(tmp_path)


# -- load_dataset -------------------------------------------------------------------------------

def test_load_dataset_dispatch(tmp_path):
    d = load_dataset("digits")
    assert d.name == "digits" and len(d) == 1797
    _write_cifar(tmp_path / "c", {"data_batch_1": 2, "test_batch": 1})
    (tmp_path / "c" / "extra").mkdir()  # a directory beside the batches: still CIFAR
    c = load_dataset(tmp_path / "c")
    assert c.x.shape == (3, 3, 32, 32) and c.classes == CIFAR_NAMES
    c2 = load_dataset(str(tmp_path / "c"))
    np.testing.assert_array_equal(c2.x, c.x)
    _write_folder(tmp_path / "f", ["x", "y"], 2, 3, "L")
    f = load_dataset(tmp_path / "f")
    assert f.classes == ["x", "y"] and f.x.shape == (4, 1, 3, 3)


def test_missing_path_and_a_file(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(TinyNASError) as e:
        load_dataset(missing)
    assert str(missing) in str(e.value) and "no such directory" in str(e.value)
    (tmp_path / "file.bin").write_bytes(b"123")
    with pytest.raises(TinyNASError) as e:
        load_dataset(tmp_path / "file.bin")
    assert str(tmp_path / "file.bin") in str(e.value) and "not a directory" in str(e.value)


def test_folder_without_classes(tmp_path):
    (tmp_path / "loose.png").write_bytes(b"")
    (tmp_path / ".hidden").mkdir()
    with pytest.raises(TinyNASError) as e:
        load_dataset(tmp_path)
    assert str(tmp_path) in str(e.value) and "no class sub-directories" in str(e.value)


def test_class_without_images(tmp_path):
    _write_folder(tmp_path, ["a"], 2, 3, "L")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(TinyNASError) as e:
        load_dataset(tmp_path)
    assert str(tmp_path / "b") in str(e.value) and "'b' has no images" in str(e.value)


def test_a_single_class_is_refused(tmp_path):
    _write_folder(tmp_path, ["only"], 3, 3, "L")
    with pytest.raises(TinyNASError, match="one class only"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_unreadable_image_names_the_file(tmp_path, kind):
    _write_folder(tmp_path, ["a", "b"], 2, 16, "L")
    bad = tmp_path / "b" / "broken.png"
    if kind == "garbage":
        bad.write_bytes(b"this is not a PNG at all" * 4)
    else:
        buf = tmp_path / "full.png"
        noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
        Image.fromarray(noise, "L").save(buf)
        bad.write_bytes(buf.read_bytes()[:200])
        buf.unlink()
    with pytest.raises(TinyNASError) as e:
        load_dataset(tmp_path)
    assert str(bad) in str(e.value) and "cannot read the image" in str(e.value)


# -- resize and augment -------------------------------------------------------------------------

def test_resize_shapes_and_identity():
    x = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    for r in (4, 8, 12, 16):
        assert resize(x, r).shape == (3, 2, r, r)
        assert resize_numpy(x.numpy(), r).shape == (3, 2, r, r)
    assert torch.equal(resize(x, 8), x)
    np.testing.assert_array_equal(resize_numpy(x.numpy(), 8), x.numpy())
    const = torch.full((1, 1, 8, 8), 0.4)
    for r in (5, 16):  # bilinear (antialiased downwards) keeps a flat image flat
        torch.testing.assert_close(resize(const, r), torch.full((1, 1, r, r), 0.4))
    assert resize_numpy(x.numpy(), 12).dtype == np.float32


def test_resize_sequences_follow_the_image_rule():
    # A sequence (N, C, L, 1) is resized along L with the rule an image gets along each side:
    # every column of a square image whose columns are the sequence. (torch's antialiased
    # filter once returned the sequence's mean in every sample for a width of 1, which made
    # every subnet below the native length train and score at chance.)
    seq = torch.rand(2, 3, 40, 1, generator=torch.Generator().manual_seed(1))
    for r in (20, 24, 32, 48):
        image = resize(seq.expand(2, 3, 40, 40).contiguous(), r)
        got = resize(seq, r)
        assert got.shape == (2, 3, r, 1)
        torch.testing.assert_close(got[..., 0], image[..., 0])
    ramp = torch.arange(40.0).view(1, 1, 40, 1)
    assert bool((resize(ramp, 24).diff(dim=2) > 0).all())


def test_augment(digits):
    x = torch.from_numpy(digits.x[:16])
    a = augment(x, 12, torch.Generator().manual_seed(5))
    b = augment(x, 12, torch.Generator().manual_seed(5))
    c = augment(x, 12, torch.Generator().manual_seed(6))
    assert a.shape == (16, 1, 12, 12) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    for out in (a, c, augment(x, 8, torch.Generator().manual_seed(1))):
        assert out.min() >= 0 and out.max() <= 1 + 1e-6
    rgb = torch.rand(4, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    out = augment(rgb, 6, torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 6, 6) and out.min() >= 0 and out.max() <= 1 + 1e-6
    # no distortion at the native size: the image itself
    same = augment(x, 8, torch.Generator().manual_seed(0), shift=0, rotate=0, scale=0)
    torch.testing.assert_close(same, x, rtol=0, atol=1e-5)


def test_distorted_views(digits):
    data = digits.subset(np.arange(40), "part")
    assert distorted(data, 10, 0) is data  # 0 views: the clean images
    a, b = distorted(data, 10, 3), distorted(data, 10, 3)
    assert a.x.shape == (120, 1, 10, 10) and a.x.dtype == np.float32
    assert np.array_equal(a.y, np.tile(data.y, 3)) and a.classes == data.classes
    assert np.array_equal(a.x, b.x)  # the same views for every subnet measured
    assert not np.array_equal(a.x[:40], a.x[40:80])  # each view distorts anew
    assert not np.array_equal(a.x, distorted(data, 10, 3, seed=1).x)
    # the same distortion at every resolution: a view at r is the view at 16, resized
    big, small = distorted(data, 16, 1).x, distorted(data, 8, 1).x
    assert np.corrcoef(resize_numpy(big, 8).ravel(), small.ravel())[0, 1] > 0.9
    assert 0 <= a.x.min() and a.x.max() <= 1 + 1e-6
    with pytest.raises(TinyNASError, match="fitness views"):
        distorted(data, 10, -1)


# -- batches ------------------------------------------------------------------------------------

def _indexed(n: int, size: int = 4) -> Dataset:
    """Labels 0..n-1 name the images; image i has pixels i / n."""
    x = np.broadcast_to((np.arange(n, dtype=np.float32) / n)[:, None, None, None],
                        (n, 1, size, size)).copy()
    return Dataset(x, np.arange(n, dtype=np.int64), [str(i) for i in range(n)], "indexed")


def test_batches_in_order_cover_every_image_once():
    data = _indexed(23)
    parts = batches(data, 6, 4)
    assert [len(y) for _, y in parts] == [6, 6, 6, 5]
    assert torch.cat([y for _, y in parts]).tolist() == list(range(23))
    torch.testing.assert_close(torch.cat([x for x, _ in parts]), torch.from_numpy(data.x),
                               rtol=0, atol=0)
    resized = batches(data, 6, 7)
    assert all(x.shape[1:] == (1, 7, 7) for x, _ in resized)
    assert torch.cat([y for _, y in resized]).tolist() == list(range(23))


def test_shuffled_batches_are_a_seeded_permutation():
    data = _indexed(23)
    a = torch.cat([y for _, y in batches(data, 6, 4, torch.Generator().manual_seed(1))])
    b = torch.cat([y for _, y in batches(data, 6, 4, torch.Generator().manual_seed(1))])
    c = torch.cat([y for _, y in batches(data, 6, 4, torch.Generator().manual_seed(2))])
    assert sorted(a.tolist()) == list(range(23)) and torch.equal(a, b)
    assert a.tolist() != list(range(23)) and not torch.equal(a, c)
    for x, y in batches(data, 6, 4, torch.Generator().manual_seed(1)):  # images follow labels
        torch.testing.assert_close(x[:, 0, 0, 0], y.float() / 23)


@pytest.mark.parametrize("seed", [None, 3])
def test_shards_split_each_global_batch(seed):
    data = _indexed(23)

    def gen():
        return None if seed is None else torch.Generator().manual_seed(seed)

    full = batches(data, 6, 4, gen())
    shards = [batches(data, 6, 4, gen(), shard=(rank, 2)) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(full)
    for (_, g), (x0, y0), (x1, y1) in zip(full, *shards):
        assert not set(y0.tolist()) & set(y1.tolist())
        assert sorted(y0.tolist() + y1.tolist()) == sorted(g.tolist())
        assert abs(len(y0) - len(y1)) <= 1
        torch.testing.assert_close(x0[:, 0, 0, 0], y0.float() / 23)
        torch.testing.assert_close(x1[:, 0, 0, 0], y1.float() / 23)


def test_every_rank_gets_the_same_number_of_batches():
    data = _indexed(25)  # 25 = 4 x 6 + 1: the last global batch has one image for two ranks
    counts = [len(batches(data, 6, 4, shard=(rank, 2))) for rank in range(2)]
    assert counts[0] == counts[1]
