"""MNIST-1D as tinynas loads it (the issue's protocol: the package's generator with its default
seed, 12,000 samples, its own 9,600 / 2,400 split), and the sequence paths of the data helpers:
resize and augment along L, batches, distorted views."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from tinynas.data import (
    Dataset,
    _mnist1d_arrays,
    augment,
    augment_sequence,
    batches,
    distorted,
    load_dataset,
    resize,
    resize_numpy,
    split,
)
from tinynas.errors import TinyNASError


def _package_reference() -> dict:
    """The package's own generation, called here without tinynas's code."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = 12000
    state, py_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:  # make_dataset seeds the global generators: leave them as the other tests had them
        np.random.set_state(state)
        random.setstate(py_state)


@pytest.fixture(scope="module")
def mnist1d() -> Dataset:
    _mnist1d_arrays.cache_clear()  # generate here, so that the checks below see a generation
    state, py_state = pickle.dumps(np.random.get_state()), random.getstate()
    data = load_dataset("mnist1d")
    # loading leaves the process's global random streams where they were
    assert pickle.dumps(np.random.get_state()) == state and random.getstate() == py_state
    return data


def _tagged(data: Dataset) -> Dataset:
    """The same labels and fixed test part, example i the constant i: parts name their
    indices."""
    x = np.broadcast_to(np.arange(len(data), dtype=np.float32)[:, None, None, None],
                        (len(data), 1, 2, 1)).copy()
    return Dataset(x, data.y, data.classes, "tagged", "sequence", data.fixed_test)


def _ids(part: Dataset) -> np.ndarray:
    return part.x[:, 0, 0, 0].astype(np.int64)


def test_mnist1d_is_the_packages_data(mnist1d):
    assert mnist1d.x.shape == (12000, 1, 40, 1) and mnist1d.x.dtype == np.float32
    assert mnist1d.y.dtype == np.int64 and mnist1d.kind == "sequence"
    assert (mnist1d.in_channels, mnist1d.native_resolution, mnist1d.num_classes) == (1, 40, 10)
    assert mnist1d.classes == [str(i) for i in range(10)] and mnist1d.name == "mnist1d"
    np.testing.assert_array_equal(mnist1d.fixed_test, np.arange(9600, 12000))
    ref = _package_reference()  # a second generation: the data is deterministic
    assert len(ref["y"]) == 9600 and len(ref["y_test"]) == 2400
    np.testing.assert_array_equal(mnist1d.x[:9600, 0, :, 0], ref["x"].astype(np.float32))
    np.testing.assert_array_equal(mnist1d.x[9600:, 0, :, 0], ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(mnist1d.y[:9600], ref["y"])
    np.testing.assert_array_equal(mnist1d.y[9600:], ref["y_test"])


def test_two_loads_agree_and_do_not_share_arrays(mnist1d):
    again = load_dataset("mnist1d")
    np.testing.assert_array_equal(again.x, mnist1d.x)
    np.testing.assert_array_equal(again.y, mnist1d.y)
    again.x[0] = 99.0  # a caller editing its copy leaves the cache alone
    assert load_dataset("mnist1d").x[0, 0, 0, 0] != 99.0


def test_split_keeps_the_packages_test_part(mnist1d):
    s = split(mnist1d)
    assert (len(s.train), len(s.val), len(s.test)) == (7800, 1800, 2400)
    np.testing.assert_array_equal(s.test.x, mnist1d.x[9600:])
    np.testing.assert_array_equal(s.test.y, mnist1d.y[9600:])
    assert s.train.kind == s.val.kind == s.test.kind == "sequence"
    assert s.test.fixed_test is None  # the parts are plain datasets
    t = split(_tagged(mnist1d), seed=0)
    train, val, test = _ids(t.train), _ids(t.val), _ids(t.test)
    assert list(test) == list(range(9600, 12000))
    assert not set(val) & set(test) and not set(train) & set(test) and not set(train) & set(val)
    assert sorted(np.concatenate([train, val])) == list(range(9600))
    # val is stratified over the 9,600: each class in proportion (1,800 of 9,600)
    per_class = np.bincount(mnist1d.y[val], minlength=10)
    expected = np.bincount(mnist1d.y[:9600], minlength=10) * 1800 / 9600
    assert np.all(np.abs(per_class - expected) <= 1), per_class


def test_split_with_a_fixed_test_part_is_seeded_and_ignores_test(mnist1d):
    data = _tagged(mnist1d)
    a, b, c = split(data, seed=1), split(data, seed=1), split(data, seed=2)
    np.testing.assert_array_equal(_ids(a.val), _ids(b.val))
    assert set(_ids(a.val)) != set(_ids(c.val))
    np.testing.assert_array_equal(_ids(a.test), _ids(c.test))
    other = split(data, test=0.4, val=0.1, seed=1)  # --test has no say; val is of the whole
    np.testing.assert_array_equal(_ids(other.test), _ids(a.test))
    assert (len(other.val), len(other.train)) == (1200, 8400)


def test_split_refuses_a_val_larger_than_the_rest():
    y = np.tile(np.arange(2), 20)  # 40 examples, 30 of them the fixed test part
    data = Dataset(np.zeros((40, 1, 3, 1), np.float32), y, ["a", "b"], "d.npz", "sequence",
                   np.arange(10, 40))
    with pytest.raises(TinyNASError) as e:
        split(data, val=0.3)  # 12 val examples from 10
    assert "d.npz" in str(e.value) and "fixed test part" in str(e.value)
    assert len(split(data, val=0.1).val) == 4


def test_dataset_checks_its_fixed_test_part():
    x, y = np.zeros((6, 1, 3, 1), np.float32), np.array([0, 1] * 3)
    for bad in (np.array([6]), np.array([-1]), np.array([1, 1]), np.array([], np.int64)):
        with pytest.raises(TinyNASError, match="fixed test part"):
            Dataset(x, y, ["a", "b"], "d", "sequence", bad)
    with pytest.raises(TinyNASError, match="kind"):
        Dataset(x, y, ["a", "b"], "d", "audio")
    with pytest.raises(TinyNASError, match=r"\(N, C, L, 1\)"):
        Dataset(np.zeros((6, 1, 3, 3), np.float32), y, ["a", "b"], "d", "sequence")


# -- sequences in resize, augment, batches ------------------------------------------------------

def test_resize_a_sequence_is_linear_along_l():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 10, 1)).astype(np.float32)
    np.testing.assert_array_equal(resize_numpy(x, 10), x)  # at its own length: itself
    up = resize_numpy(x, 25)
    assert up.shape == (3, 2, 25, 1)
    # half-pixel centres (align_corners=False): output i samples input (i + 0.5) * 10/25 - 0.5
    pos = np.clip((np.arange(25) + 0.5) * 10 / 25 - 0.5, 0, 9)
    for n in range(3):
        for c in range(2):
            expected = np.interp(pos, np.arange(10), x[n, c, :, 0])
            np.testing.assert_allclose(up[n, c, :, 0], expected, rtol=0, atol=1e-5)
    down = resize(torch.full((2, 3, 40, 1), 0.7), 16)  # antialiased downwards: flat stays flat
    assert down.shape == (2, 3, 16, 1)
    torch.testing.assert_close(down, torch.full((2, 3, 16, 1), 0.7))


def test_augment_sequence_shifts_and_scales():
    x = torch.zeros(64, 1, 40, 1)
    x[:, 0, 20, 0] = 1.0  # an impulse in the middle of every window
    gen = torch.Generator().manual_seed(0)
    out = augment_sequence(x, 40, gen, shift=0.1, scale=0.2)
    assert out.shape == (64, 1, 40, 1)
    pos = torch.arange(40, dtype=torch.float32)
    mass = out[:, 0, :, 0].sum(1)
    centre = (out[:, 0, :, 0] * pos).sum(1) / mass
    # linear interpolation keeps an impulse's mass; the amplitude scale is within 1 +- 0.2
    assert mass.min() >= 0.8 - 1e-5 and mass.max() <= 1.2 + 1e-5
    assert mass.std() > 0.01  # and does scale
    # the shift is at most 10% of 40 samples, and does move the impulse
    assert (centre - 20).abs().max() <= 4 + 1e-4 and (centre - 20).abs().max() > 1
    # nothing shifts in but zeros: the far ends of the window stay empty
    assert out[:, 0, :10, 0].abs().max() == 0 and out[:, 0, 31:, 0].abs().max() == 0
    # no distortion at the native length: the sequence itself
    same = augment_sequence(x, 40, gen, shift=0, scale=0)
    torch.testing.assert_close(same, x, rtol=0, atol=1e-6)


def test_augment_dispatches_on_w_1(mnist1d):
    x = torch.from_numpy(mnist1d.x[:16])
    a = augment(x, 32, torch.Generator().manual_seed(5))
    b = augment_sequence(x, 32, torch.Generator().manual_seed(5))
    c = augment(x, 32, torch.Generator().manual_seed(6))
    assert a.shape == (16, 1, 32, 1) and torch.equal(a, b) and not torch.equal(a, c)


def test_batches_and_distorted_views_of_sequences(mnist1d):
    part = mnist1d.subset(np.arange(50), "part")
    out = batches(part, 16, 32)
    assert [tuple(x.shape) for x, _ in out] == [(16, 1, 32, 1)] * 3 + [(2, 1, 32, 1)]
    np.testing.assert_array_equal(torch.cat([y for _, y in out]).numpy(), part.y)
    native = batches(part, 64, 40)
    np.testing.assert_array_equal(native[0][0].numpy(), part.x)
    views = distorted(part, 32, 2)
    assert views.x.shape == (100, 1, 32, 1) and views.kind == "sequence"
    assert np.array_equal(views.x, distorted(part, 32, 2).x)
    assert not np.array_equal(views.x[:50], views.x[50:])
