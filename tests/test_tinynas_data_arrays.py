"""The user's own arrays as a tinynas dataset (tinynas/arrays.py): the layouts round-trip, the
test part given as x_test stays the test part, and every bad input is one line that names the
file and the array, from the library and from the `tinynas` command (exit 2, no traceback, no
output directory)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinynas.cli import main
from tinynas.data import load_dataset, split
from tinynas.errors import TinyNASError

from .conftest import ROOT


def _labels(n: int, k: int = 3) -> np.ndarray:
    return np.arange(n) % k


def _npz(tmp_path: Path, name: str = "data.npz", **arrays: np.ndarray) -> Path:
    return _save_npz(tmp_path / name, arrays)


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _npy_dir(tmp_path: Path, **arrays: np.ndarray) -> Path:
    d = tmp_path / "arrays"
    d.mkdir()
    for n, a in arrays.items():
        np.save(d / f"{n}.npy", a)
    return d


# -- layouts ------------------------------------------------------------------------------------

def test_images_nchw_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(12, 2, 5, 5)).astype(np.float32)
    y = _labels(12)
    d = load_dataset(_npz(tmp_path, x=x, y=y))
    assert d.kind == "image" and d.name == "data" and d.fixed_test is None
    assert d.x.dtype == np.float32 and d.y.dtype == np.int64
    np.testing.assert_array_equal(d.x, x)  # floats are kept as given: no scaling
    np.testing.assert_array_equal(d.y, y)
    assert (d.in_channels, d.native_resolution, d.classes) == (2, 5, ["0", "1", "2"])


def test_uint8_is_scaled_other_integers_are_not(tmp_path):
    x8 = np.random.default_rng(1).integers(0, 256, (6, 1, 3, 3), dtype=np.uint8)
    d = load_dataset(_npz(tmp_path, "u8.npz", x=x8, y=_labels(6, 2)))
    np.testing.assert_allclose(d.x, x8 / 255.0, rtol=0, atol=1e-7)
    x16 = np.arange(6 * 4, dtype=np.int16).reshape(6, 4) - 10
    d = load_dataset(_npz(tmp_path, "i16.npz", x=x16, y=_labels(6, 2)))
    np.testing.assert_array_equal(d.x[:, 0, :, 0], x16.astype(np.float32))


def test_sequences_nlc_are_stored_nc_l_1(tmp_path):
    x = np.random.default_rng(2).normal(size=(9, 7, 3))  # N x L x C, float64
    d = load_dataset(_npz(tmp_path, x=x, y=_labels(9)))
    assert d.kind == "sequence" and d.x.shape == (9, 3, 7, 1) and d.x.dtype == np.float32
    assert (d.in_channels, d.native_resolution) == (3, 7)
    for n, c, t in ((0, 0, 0), (4, 2, 6), (8, 1, 3)):  # sample t of channel c of example n
        assert d.x[n, c, t, 0] == np.float32(x[n, t, c])
    assert d.x.flags.c_contiguous


def test_one_channel_sequences_nl(tmp_path):
    x = np.random.default_rng(3).normal(size=(9, 11)).astype(np.float32)
    d = load_dataset(_npy_dir(tmp_path, x=x, y=_labels(9)))
    assert d.kind == "sequence" and d.x.shape == (9, 1, 11, 1) and d.name == "arrays"
    np.testing.assert_array_equal(d.x[:, 0, :, 0], x)


def test_x_test_is_the_test_part_and_classes_name_the_labels(tmp_path):
    rng = np.random.default_rng(4)
    x, x_test = rng.normal(size=(30, 8, 2)), rng.normal(size=(6, 8, 2))
    y, y_test = _labels(30), np.array([2, 1, 0, 0, 1, 2])
    for path in (_npz(tmp_path, x=x, y=y, x_test=x_test, y_test=y_test,
                      classes=np.array(["walk", "run", "sit"])),
                 _npy_dir(tmp_path, x=x, y=y, x_test=x_test, y_test=y_test,
                          classes=np.array(["walk", "run", "sit"]))):
        d = load_dataset(path)
        assert d.classes == ["walk", "run", "sit"] and len(d) == 36
        np.testing.assert_array_equal(d.fixed_test, np.arange(30, 36))
        s = split(d, val=0.2)
        np.testing.assert_allclose(s.test.x[:, :, :, 0], x_test.transpose(0, 2, 1), rtol=1e-6)
        np.testing.assert_array_equal(s.test.y, y_test)
        assert len(s.val) == round(0.2 * 36) and len(s.train) == 30 - len(s.val)
        # train and val are x's examples: every one of x exactly once
        got = np.concatenate([s.train.x, s.val.x])[:, :, :, 0].transpose(0, 2, 1)
        assert sorted(map(bytes, got.astype(np.float32))) == \
            sorted(map(bytes, x.astype(np.float32)))


def test_directory_dispatch(tmp_path):
    # a directory with x.npy is arrays, even beside sub-directories (ImageFolder's layout)
    d = _npy_dir(tmp_path, x=np.zeros((6, 4), np.float32), y=_labels(6, 2))
    (d / "cats").mkdir()
    assert load_dataset(d).kind == "sequence"


# -- bad inputs ---------------------------------------------------------------------------------

GOOD_X, GOOD_Y = np.zeros((6, 1, 4, 4), np.float32), _labels(6)


def _nan_x() -> np.ndarray:
    x = np.zeros((6, 5, 2), np.float32)
    x[2, 3, 1] = np.nan
    x[4, 0, 0] = np.inf
    return x


# name: (arrays, the array the message names, words it must contain)
BAD: dict[str, tuple[dict[str, np.ndarray], str, list[str]]] = {
    "rank 1": (dict(x=np.zeros(6), y=GOOD_Y), "x", ["rank 1", "N x C x H x W"]),
    "rank 5": (dict(x=np.zeros((6, 1, 2, 2, 2)), y=GOOD_Y), "x", ["rank 5"]),
    "N differs": (dict(x=GOOD_X, y=_labels(5)), "y", ["5 labels", "6"]),
    "float labels": (dict(x=GOOD_X, y=GOOD_Y.astype(np.float32)), "y", ["float32", "integers"]),
    "2-D labels": (dict(x=GOOD_X, y=GOOD_Y[:, None]), "y", ["(6, 1)"]),
    "negative label": (dict(x=GOOD_X, y=np.array([0, 1, 2, -1, 0, 1])), "y",
                       ["label -1 at index 3", "negative"]),
    "label >= classes": (dict(x=GOOD_X, y=np.array([0, 1, 2, 3, 0, 1]),
                              classes=np.array(["a", "b", "c"])), "y",
                         ["label 3 at index 3", "3 class names"]),
    "test label beyond y's": (dict(x=GOOD_X, y=GOOD_Y, x_test=GOOD_X[:2],
                                   y_test=np.array([0, 5])), "y_test",
                              ["label 5 at index 1", "0..2"]),
    "NaN": (dict(x=_nan_x(), y=GOOD_Y), "x", ["2 value(s)", "NaN or infinite", "[2, 3, 1]"]),
    "inf in x_test": (dict(x=GOOD_X, y=GOOD_Y, x_test=np.full((2, 1, 4, 4), -np.inf),
                           y_test=np.array([0, 1])), "x_test", ["32 value(s)", "[0, 0, 0, 0]"]),
    "float32 overflow": (dict(x=np.full((6, 4), 1e300), y=GOOD_Y), "x", ["24 value(s)",
                                                                         "float32"]),
    "empty x": (dict(x=np.zeros((0, 4)), y=np.zeros(0, np.int64)), "x", ["empty"]),
    "empty examples": (dict(x=np.zeros((6, 0)), y=GOOD_Y), "x", ["empty"]),
    "x_test shape": (dict(x=GOOD_X, y=GOOD_Y, x_test=np.zeros((2, 3, 4, 4)),
                          y_test=np.array([0, 1])), "x_test", ["(3, 4, 4)", "(1, 4, 4)"]),
    "x_test without y_test": (dict(x=GOOD_X, y=GOOD_Y, x_test=GOOD_X), "y_test", ["missing"]),
    "missing x": (dict(y=GOOD_Y), "x", ["missing"]),
    "missing y": (dict(x=GOOD_X), "y", ["missing"]),
    "non-square images": (dict(x=np.zeros((6, 1, 4, 5)), y=GOOD_Y), "x", ["4 x 5", "square"]),
    "string x": (dict(x=np.array(["a"] * 6), y=GOOD_Y), "x", ["dtype"]),
    "class without examples": (dict(x=GOOD_X, y=np.array([0, 2, 0, 2, 0, 2])), "y",
                               ["'1'", "no example"]),
    "one class": (dict(x=GOOD_X, y=np.zeros(6, np.int64)), "y", ["one class"]),
    "duplicate class names": (dict(x=GOOD_X, y=GOOD_Y, classes=np.array(["a", "b", "a"])),
                              "classes", ["'a' appears twice"]),
    "classes not strings": (dict(x=GOOD_X, y=GOOD_Y, classes=np.arange(3)), "classes",
                            ["string"]),
    "object array": (dict(x=GOOD_X, y=np.array([0, 1, 2, 0, 1, None], dtype=object)), "y",
                     ["object array"]),
}


def _check_one_line(e: pytest.ExceptionInfo, file: str, words: list[str]) -> None:
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert file in msg, msg
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_npz_is_one_line_naming_file_and_array(tmp_path, case):
    arrays, array, words = BAD[case]
    path = _save_npz(tmp_path / "data.npz", arrays)
    with pytest.raises(TinyNASError) as e:
        load_dataset(path)
    _check_one_line(e, f"{path} (array {array})", words)


@pytest.mark.parametrize("case", ["NaN", "N differs", "object array", "missing y",
                                  "x_test without y_test"])
def test_bad_npy_directory_names_the_file(tmp_path, case):
    arrays, array, words = BAD[case]
    d = _npy_dir(tmp_path, **{n: a for n, a in arrays.items() if a.dtype != object})
    if any(a.dtype == object for a in arrays.values()):  # np.save pickles an object array
        np.save(d / f"{array}.npy", arrays[array], allow_pickle=True)
    with pytest.raises(TinyNASError) as e:
        load_dataset(d)
    _check_one_line(e, str(d / f"{array}.npy"), words)


def test_unknown_arrays_are_named(tmp_path):
    path = _npz(tmp_path, x=GOOD_X, y=GOOD_Y, labels=GOOD_Y, x_tst=GOOD_X)
    with pytest.raises(TinyNASError) as e:
        load_dataset(path)
    _check_one_line(e, str(path), ["unknown", "'labels'", "'x_tst'"])
    d = _npy_dir(tmp_path, x=GOOD_X, y=GOOD_Y, y_tset=GOOD_Y)
    with pytest.raises(TinyNASError) as e:
        load_dataset(d)
    _check_one_line(e, str(d), ["unknown", "y_tset.npy"])


class _Boom:
    """Unpickling this would run code (create a file): the loader must refuse before."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickles_and_junk_are_refused_without_running_code(tmp_path):
    d = tmp_path / "pickled"
    d.mkdir()
    np.save(d / "y.npy", GOOD_Y)
    marker = tmp_path / "code-ran"
    (d / "x.npy").write_bytes(pickle.dumps(_Boom(marker)))
    with pytest.raises(TinyNASError) as e:
        load_dataset(d)
    _check_one_line(e, str(d / "x.npy"), ["not a .npy array", "never runs code"])
    assert not marker.exists()
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip archive at all")
    with pytest.raises(TinyNASError) as e:
        load_dataset(junk)
    _check_one_line(e, str(junk), ["not a readable .npz"])
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, GOOD_X)  # one array under a .npz name
    with pytest.raises(TinyNASError) as e:
        load_dataset(single)
    _check_one_line(e, str(single), ["one array"])


def test_too_few_examples_of_a_class_for_the_split(tmp_path):
    y = np.array([0] * 5 + [1] * 5 + [2] * 2)
    d = load_dataset(_npz(tmp_path, "few.npz", x=np.zeros((12, 6)), y=y))
    with pytest.raises(TinyNASError) as e:
        split(d)
    _check_one_line(e, "few", ["'2'", "2 example(s)", "at least 3"])
    # with a fixed test part, a class needs 2 outside it (train and val)
    d = load_dataset(_npz(tmp_path, "few2.npz", x=np.zeros((12, 6)), y=y,
                          x_test=np.zeros((3, 6)), y_test=np.arange(3)))
    s = split(d, val=0.2)
    assert len(s.test) == 3 and np.bincount(s.val.y, minlength=3).min() >= 1
    d = load_dataset(_npz(tmp_path, "few3.npz", x=np.zeros((11, 6)), y=y[:11],
                          x_test=np.zeros((3, 6)), y_test=np.arange(3)))
    with pytest.raises(TinyNASError) as e:
        split(d)
    _check_one_line(e, "few3", ["'2'", "1 example(s) outside the fixed test part"])


# -- through the command ------------------------------------------------------------------------

@pytest.mark.parametrize("case, words", [("rank 5", ["rank 5"]),
                                         ("label >= classes", ["label 3"]),
                                         ("NaN", ["NaN"])])
def test_cli_bad_arrays_exit_2_in_one_line(tmp_path, capsys, case, words):
    path = _save_npz(tmp_path / "data.npz", BAD[case][0])
    out = tmp_path / "out"
    code = main(["train", "-q", "--dataset", str(path), "--width", "0.5", "--epochs", "1",
                 "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("tinynas: error: "), err
    assert str(path) in err and all(w in err for w in words), err
    assert not out.exists()


def test_cli_bad_arrays_in_a_fresh_process(tmp_path):
    path = _save_npz(tmp_path / "data.npz", BAD["NaN"][0])
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "tinynas.cli", "pipeline", "-q", "--quick",
                          "--dataset", str(path), "-o", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"tinynas: error: {path} (array x): 2 value(s) are NaN")
    assert run.stdout == "" and not out.exists()
