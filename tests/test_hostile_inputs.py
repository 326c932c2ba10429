"""Hostile input (issue 16): every failure is one line, no row or file is lost.

* A table of CLI cases (classify, encode, reconstruct, decode, sample, traverse against missing, empty,
  damaged, non-finite, complex and oddly named inputs, and outputs that must not be written): each
  runs the installed `vaezoo` as a user would and checks the exit code, the message, that stderr has no
  traceback and one line for an error, and that no file in the input folder changed, vanished or
  appeared (an existing output stays byte for byte; nothing half-written is left).
* classify's row accounting: one row per item, in order, in CSV, JSONL and logits.npy, with a bad
  file among the inputs, and shards that still join up.
* Property-based tests (Hypothesis) for the readers: whatever bytes or arrays are fed as a .npy, an
  IDX file or an image to the classify engine and to vaezoo.io.images, the result is rows (error rows
  included) or a VaezooError, never another exception.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from conftest import run_cli

M2, VAE = "m2-mnist5k", "vae-mnist5k"        # bundled starters: ONNX graphs, no training, offline
BAD_NAME = os.fsdecode(b"bad\xff.png")       # a file name that is not valid UTF-8
SCALE_LINE = re.compile(r".*: .* read as (0-1|0-255|0/1)")


# ---------------------------------------------------------------- the input folder
@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    from vaezoo.data import load_dataset

    d = tmp_path_factory.mktemp("hostile")
    x = load_dataset("mnist5k", "val").x[::50][:6, 0]              # 6 real digits, one per class or so
    np.save(d / "ok.npy", x)
    Image.fromarray(x[0]).save(d / "ok.png")
    Image.fromarray(x[0].astype(np.uint16) * 257).save(d / "d16.png")    # 16-bit grey (I;16)
    (d / "empty.npy").write_bytes(b"")
    (d / "empty.png").write_bytes(b"")
    (d / "folder.png").mkdir()                                     # a folder named like a file
    (d / "folder.npy").mkdir()
    (d / "emptydir").mkdir()
    (d / "emptydir" / "notes.txt").write_text("no images here")
    np.save(d / "wrongshape.npy", np.zeros((4, 32, 32), np.uint8))
    f = x[:5].astype(np.float32) / 255
    nan, inf = f.copy(), f.copy()
    nan[2, 3, 4] = np.nan
    inf[1, 0, 0] = np.inf
    np.save(d / "nan.npy", nan)
    np.save(d / "inf.npy", inf)
    late = np.repeat(f, 240, axis=0)                               # 1,200 rows; row 1,100 is NaN
    late[1100, 5, 5] = np.nan
    np.save(d / "nanlate.npy", late)
    np.save(d / "neg.npy", -f)
    np.save(d / "cplx.npy", f.astype(np.complex64))
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 784)})
    (d / "trunc.npy").write_bytes(hdr.getvalue() + b"\0" * 100)   # the header promises 3 TB
    np.save(d / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (d / "names").mkdir()
    Image.fromarray(x[1]).save(d / "names" / BAD_NAME)
    (d / "loop").mkdir()
    Image.fromarray(x[2]).save(d / "loop" / "a.png")
    os.symlink(d / "loop", d / "loop" / "up")                      # leads back to its own folder
    os.symlink("self.png", d / "loop" / "self.png")                # a link to itself (ELOOP)
    z = np.zeros((5, 16), np.float32)
    np.save(d / "lat.npy", z)
    zn, zi = z.copy(), z.copy()
    zn[3, 2] = np.nan
    zi[0, 0] = -np.inf
    np.save(d / "lat_nan.npy", zn)
    np.save(d / "lat_inf.npy", zi)
    np.save(d / "lat_cplx.npy", z.astype(np.complex64))
    np.save(d / "lat_wrong.npy", np.zeros((5, 3), np.float32))
    (d / "afile").write_text("a file, not a folder")
    for ext in ("png", "csv", "npy"):
        (d / f"existing.{ext}").write_bytes(b"keep me, byte for byte\n")
    return d


def snapshot(d: Path) -> dict[str, bytes]:
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(root) / name
            out[str(p.relative_to(d))] = p.read_bytes() if p.is_file() and not p.is_symlink() else b"<dir/link>"
    return out


# ---------------------------------------------------------------- the table
# (id, arguments, exit code, a substring of the message, rows of classify's output or None; or
# (rows, "error:" lines) where more than one input fails)
# {d}: the input folder; {out}: a fresh output path without extension in the test's own folder.
E = "existing"
CASES = [
    # classify: an unreadable input is an error row (exit 3); usage errors exit 2
    ("classify-missing", ["classify", M2, "{d}/nope.png", "{d}/ok.npy"], 3, "nope.png does not exist", 7),
    ("classify-empty-npy", ["classify", M2, "{d}/empty.npy", "{d}/ok.npy"], 3, "cannot read", 7),
    ("classify-empty-png", ["classify", M2, "{d}/empty.png"], 3, "cannot read image", 1),
    ("classify-folder-as-file", ["classify", M2, "{d}/folder.png"], 2, "no images, .npy or IDX files found in folder", None),
    ("classify-empty-folder", ["classify", M2, "{d}/ok.npy", "{d}/emptydir"], 2, "no images, .npy or IDX files found in folder", None),
    ("classify-wrong-shape", ["classify", M2, "{d}/wrongshape.npy", "{d}/ok.npy"], 3, "has shape (4, 32, 32)", 10),
    ("classify-nan", ["classify", M2, "{d}/nan.npy"], 3, "row 2", 5),
    ("classify-inf", ["classify", M2, "{d}/inf.npy"], 3, "row 1", 5),
    ("classify-nan-after-1000", ["classify", M2, "{d}/nanlate.npy"], 3, "row 1100", 1200),
    ("classify-negative", ["classify", M2, "{d}/neg.npy"], 3, "has values", 5),
    ("classify-complex", ["classify", M2, "{d}/cplx.npy"], 3, "complex", 5),
    ("classify-truncated", ["classify", M2, "{d}/trunc.npy", "{d}/ok.npy"], 3, "is truncated", 7),
    ("classify-pickled", ["classify", M2, "{d}/objects.npy"], 3, "never unpickled", 1),
    ("classify-non-utf8-name", ["classify", M2, "{d}/names"], 0, "", 1),
    ("classify-symlink-loop", ["classify", M2, "{d}/loop"], 3, "symlink loop", (3, 2)),   # two bad links: two lines
    ("classify-existing-output", ["classify", M2, "{d}/ok.npy", "-o", "{d}/existing.csv"], 2, "exists; pass --force", None),
    ("classify-existing-npy", ["classify", M2, "{d}/ok.npy", "-o", "{d}/existing.npy"], 2, "exists; pass --force", None),
    ("classify-parent-is-file", ["classify", M2, "{d}/ok.npy", "-o", "{d}/afile/p.csv"], 2, "is a file, not a folder", None),
    ("classify-output-is-folder", ["classify", M2, "{d}/ok.npy", "-o", "{d}/folder.npy", "--force"], 2, "is a folder", None),
    ("classify-top-k-beyond-classes", ["classify", M2, "{d}/ok.npy", "--top-k", "11"], 0, "--top-k 11 is more than the 10 classes", 6),
    # encode: every failure is one line (exit 2)
    ("encode-missing", ["encode", VAE, "{d}/nope.png"], 2, "nope.png does not exist", None),
    ("encode-empty-npy", ["encode", VAE, "{d}/empty.npy"], 2, "cannot read", None),
    ("encode-empty-png", ["encode", VAE, "{d}/empty.png"], 2, "cannot read image", None),
    ("encode-folder-as-file", ["encode", VAE, "{d}/folder.png"], 2, "no images or .npy files found in folder", None),
    ("encode-wrong-shape", ["encode", VAE, "{d}/wrongshape.npy"], 2, "has shape (4, 32, 32)", None),
    ("encode-nan", ["encode", VAE, "{d}/nan.npy", "-o", "{out}.csv"], 2, "nan.npy row 2 is not finite", None),
    ("encode-inf", ["encode", VAE, "{d}/inf.npy"], 2, "inf.npy row 1 is not finite", None),
    ("encode-complex", ["encode", VAE, "{d}/cplx.npy"], 2, "complex arrays are refused", None),
    ("encode-truncated", ["encode", VAE, "{d}/trunc.npy"], 2, "is truncated", None),
    ("encode-pickled", ["encode", VAE, "{d}/objects.npy"], 2, "never unpickled", None),
    ("encode-non-utf8-name", ["encode", VAE, "{d}/names", "-o", "{out}.csv"], 0, "", None),
    ("encode-symlink-loop", ["encode", VAE, "{d}/loop", "-o", "{out}.csv"], 0, "", None),
    ("encode-existing-output", ["encode", VAE, "{d}/ok.npy", "-o", "{d}/existing.csv"], 2, "exists; pass --force", None),
    ("encode-parent-is-file", ["encode", VAE, "{d}/ok.npy", "-o", "{d}/afile/z.npy"], 2, "is a file, not a folder", None),
    # reconstruct
    ("reconstruct-missing", ["reconstruct", VAE, "{d}/nope.png", "-o", "{out}.png"], 2, "does not exist", None),
    ("reconstruct-nan", ["reconstruct", VAE, "{d}/nan.npy", "-o", "{out}.png"], 2, "row 2 is not finite", None),
    ("reconstruct-complex", ["reconstruct", VAE, "{d}/cplx.npy", "-o", "{out}.png"], 2, "complex", None),
    ("reconstruct-16-bit", ["reconstruct", VAE, "{d}/d16.png", "-o", "{out}.png"], 0, "scaled I;16 to 0-1", None),
    ("reconstruct-existing-output", ["reconstruct", VAE, "{d}/ok.png", "-o", "{d}/existing.png"], 2, "exists; pass --force", None),
    ("reconstruct-parent-is-file", ["reconstruct", VAE, "{d}/ok.png", "-o", "{d}/afile/r.png"], 2, "is a file, not a folder", None),
    # decode
    ("decode-missing", ["decode", VAE, "{d}/nope.npy", "-o", "{out}.png"], 2, "does not exist", None),
    ("decode-folder-as-file", ["decode", VAE, "{d}/folder.npy", "-o", "{out}.png"], 2, "is a folder", None),
    ("decode-empty-file", ["decode", VAE, "{d}/empty.npy", "-o", "{out}.png"], 2, "cannot read", None),
    ("decode-nan", ["decode", VAE, "{d}/lat_nan.npy", "-o", "{out}.png"], 2, "lat_nan.npy row 3 is not finite", None),
    ("decode-inf", ["decode", VAE, "{d}/lat_inf.npy", "-o", "{out}.npy"], 2, "lat_inf.npy row 0 is not finite", None),
    ("decode-complex", ["decode", VAE, "{d}/lat_cplx.npy", "-o", "{out}.png"], 2, "must be real floating point", None),
    ("decode-wrong-shape", ["decode", VAE, "{d}/lat_wrong.npy", "-o", "{out}.png"], 2, "must have shape N x 16", None),
    ("decode-truncated", ["decode", VAE, "{d}/trunc.npy", "-o", "{out}.png"], 2, "is truncated", None),
    ("decode-pickled", ["decode", VAE, "{d}/objects.npy", "-o", "{out}.png"], 2, "never unpickled", None),
    ("decode-existing-output", ["decode", VAE, "{d}/lat.npy", "-o", "{d}/existing.npy"], 2, "exists; pass --force", None),
    ("decode-parent-is-file", ["decode", VAE, "{d}/lat.npy", "-o", "{d}/afile/x.png"], 2, "is a file, not a folder", None),
    # sample and traverse: non-finite numbers are usage errors
    ("sample-temperature-nan", ["sample", VAE, "-n", "4", "--temperature", "nan", "-o", "{out}.png"], 2, "Invalid value for '--temperature'", None),
    ("sample-temperature-inf", ["sample", VAE, "-n", "4", "--temperature", "inf", "-o", "{out}.png"], 2, "--temperature must be a finite number", None),
    ("sample-temperature-negative", ["sample", VAE, "-n", "4", "--temperature", "-1", "-o", "{out}.png"], 2, "Invalid value for '--temperature'", None),
    ("sample-existing-output", ["sample", VAE, "-n", "4", "-o", "{d}/existing.png"], 2, "exists; pass --force", None),
    ("sample-parent-is-file", ["sample", VAE, "-n", "4", "-o", "{d}/afile/s.png"], 2, "is a file, not a folder", None),
    ("traverse-span-nan", ["traverse", VAE, "--span", "nan", "-o", "{out}.png"], 2, "--span must be a finite number", None),
    ("traverse-span-inf", ["traverse", VAE, "--span", "inf", "-o", "{out}.png"], 2, "--span must be a finite number", None),
    ("traverse-input-missing", ["traverse", VAE, "--input", "{d}/nope.png", "-o", "{out}.png"], 2, "does not exist", None),
    ("traverse-input-nan", ["traverse", VAE, "--input", "{d}/nan.npy", "-o", "{out}.png"], 2, "row 2 is not finite", None),
    ("traverse-existing-output", ["traverse", VAE, "--dims", "0", "-o", "{d}/existing.png"], 2, "exists; pass --force", None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_cli_case(case, d, tmp_path):
    name, args, code, message, rows = case
    out = tmp_path / "out"
    argv = [a.format(d=d, out=out) for a in args]
    classify = argv[0] == "classify"
    if classify and "-o" not in argv:
        argv += ["-o", f"{out}.csv"]
    if classify:
        argv.append("-q")
    before = snapshot(d)
    r = run_cli(*argv)
    assert r.returncode == code, (r.returncode, r.stdout[-500:], r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = r.stderr.splitlines()
    assert message in r.stderr, r.stderr
    assert snapshot(d) == before                                    # nothing changed, lost or half-written there
    written = sorted(p.name for p in tmp_path.iterdir())
    if code in (1, 2):
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        assert written == [], written                             # no output, not even a temp file
        return
    errors = [ln for ln in lines if ln.startswith("error: ")]
    others = [ln for ln in lines if not ln.startswith(("error: ", "warning: ", "classified ")) and not SCALE_LINE.match(ln)]
    assert others == [], lines
    if classify:
        # one "error:" line per failed file (or chunk of rows), then the summary line
        rows, n_errors = rows if isinstance(rows, tuple) else (rows, 1 if code == 3 else 0)
        assert len(errors) == n_errors, lines
        assert lines[-1].startswith("classified ") and (("FAILED" in lines[-1]) == (code == 3)), lines
        got = list(csv.DictReader(open(f"{out}.csv", encoding="utf-8", newline="")))
        assert [int(g["item"]) for g in got] == list(range(rows))      # every item accounted for, in order
        assert (sum(bool(g["error"]) for g in got) > 0) == (code == 3)
        assert all(bool(g["error"]) != bool(g["label"]) for g in got)
    else:
        assert errors == [], lines


def test_classify_non_utf8_name_is_written_escaped(d, tmp_path):
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"p.{fmt}"
        r = run_cli("classify", M2, str(d / "names"), "-o", str(out), "-q")
        assert r.returncode == 0, r.stderr
        text = out.read_text(encoding="utf-8")                    # valid UTF-8
        src = json.loads(text.splitlines()[0])["source"] if fmt == "jsonl" else next(csv.DictReader(io.StringIO(text)))["source"]
        assert src.endswith("bad\\xff.png")
    r = run_cli("encode", VAE, str(d / "names"))                  # CSV on stdout
    assert r.returncode == 0 and "bad\\xff.png" in r.stdout, r.stderr


def test_classify_symlink_loop_rows(d, tmp_path):
    out = tmp_path / "p.csv"
    r = run_cli("classify", M2, str(d / "loop"), "-o", str(out), "-q")
    assert r.returncode == 3, r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [Path(x["source"]).name for x in rows] == ["a.png", "self.png", "up"]
    assert rows[0]["label"] and "symlink loop" in rows[1]["error"] and "leads back to" in rows[2]["error"]
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errs) == 2 and "FAILED" in r.stderr.splitlines()[-1]


# ---------------------------------------------------------------- classify: every item is one row
def test_classify_unreadable_array_gives_an_error_row_per_item(d, tmp_path):
    """The issue's case: a wrong-shape file before a good one gave one error row for its 4 items, so
    logits.npy promised 10 rows and held 7 (np.load failed) and item numbers shifted."""
    inputs = [str(d / "wrongshape.npy"), str(d / "ok.npy"), str(d / "nan.npy"), str(d / "trunc.npy")]
    n = 4 + 6 + 5 + 1
    outs = {fmt: tmp_path / f"p.{fmt}" for fmt in ("npy", "csv", "jsonl")}
    for fmt, out in outs.items():
        r = run_cli("classify", M2, *inputs, "-o", str(out), "-q")
        assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
        assert "(4 error rows)" in r.stderr
    logits = np.load(outs["npy"])
    assert logits.shape == (n, 10) and logits.dtype == np.float32
    bad = np.isnan(logits).all(axis=1)
    assert bad.tolist() == [True] * 4 + [False] * 6 + [False, False, True, False, False] + [True]
    assert np.isfinite(logits[~bad]).all()
    rows = list(csv.DictReader(outs["csv"].open(encoding="utf-8")))
    recs = [json.loads(line) for line in outs["jsonl"].read_text().splitlines()]
    for got in (rows, recs):
        assert [int(g["item"]) for g in got] == list(range(n))
        assert [bool(g["error"]) for g in got] == bad.tolist()
        assert [str(g["index"]) if g["index"] not in ("", None) else "" for g in got] == \
            [str(i) for i in range(4)] + [str(i) for i in range(6)] + [str(i) for i in range(5)] + [""]
    assert recs[12]["error"].endswith("row 2 is not finite (NaN or inf)") and recs[12]["label"] is None
    assert "is truncated" in recs[15]["error"] and recs[15]["index"] is None


def test_shards_join_up_with_bad_files_among_the_inputs(d, tmp_path):
    inputs = [str(d / "ok.png"), str(d / "wrongshape.npy"), str(d / "nope.png"), str(d / "nan.npy"),
              str(d / "ok.npy"), str(d / "empty.png")]
    n = 1 + 4 + 1 + 5 + 6 + 1
    for fmt in ("jsonl", "npy"):
        full = tmp_path / f"full.{fmt}"
        r = run_cli("classify", M2, *inputs, "-o", str(full), "-q")
        assert r.returncode == 3, r.stderr
        parts = []
        for i in (1, 2, 3):
            part = tmp_path / f"part{i}.{fmt}"
            r = run_cli("classify", M2, *inputs, "-o", str(part), "-q", "--shard", f"{i}/3")
            assert r.returncode in (0, 3) and "Traceback" not in r.stderr, r.stderr
            parts.append(part)
        if fmt == "jsonl":
            assert "".join(p.read_text() for p in parts) == full.read_text()
            assert len(full.read_text().splitlines()) == n
        else:
            joined = np.concatenate([np.load(p) for p in parts])
            assert joined.shape == (n, 10) and [len(np.load(p)) for p in parts] == [6, 6, 6]
            np.testing.assert_array_equal(joined, np.load(full))      # NaN rows equal too


def test_error_rows_are_written_in_batches(tmp_path):
    """A million-row array of the wrong shape is a million error rows, written batch by batch."""
    from vaezoo.runtime import classify as engine

    pipe = fake_pipe()
    path = tmp_path / "huge.npy"
    n = 1_000_000
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (n, 5)})
        fh.truncate(fh.tell() + 5 * n)                           # sparse: no data written
    sizes = []

    class Counter:
        def begin(self, n_, k):
            self.n = n_

        def write(self, rows, logits):
            sizes.append(len(rows))

        def end(self):
            pass

    w = Counter()
    notes = io.StringIO()
    s = engine.run(pipe, [str(path)], w, batch_size=4096, progress=False, notes=engine.Notes(stream=notes))
    assert w.n == n and sum(sizes) == n and max(sizes) == 4096 and s.failed == n
    assert len(notes.getvalue().splitlines()) == 1                  # one line for the file


def test_non_finite_rows_everywhere_give_bounded_stderr(tmp_path):
    """NaN in every 7th row: an error row each, and a few stderr lines, not one per chunk of rows."""
    from vaezoo.runtime import classify as engine

    a = np.full((8 * 1024, 784), 0.5, np.float16)
    a[::7, 3] = np.nan
    np.save(tmp_path / "sprinkled.npy", a)
    buf, notes = io.StringIO(), io.StringIO()
    s = engine.run(fake_pipe(), [str(tmp_path / "sprinkled.npy")], engine.RowWriter(buf, "csv", [str(i) for i in range(10)], 1),
                   batch_size=256, progress=False, notes=engine.Notes(stream=notes))
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert s.failed == len(range(0, len(a), 7)) and len(rows) == len(a)
    assert [bool(r["error"]) for r in rows] == [i % 7 == 0 for i in range(len(a))]
    assert [int(r["index"]) for r in rows] == list(range(len(a)))
    errs = [ln for ln in notes.getvalue().splitlines() if ln.startswith("error: ")]
    assert len(errs) == 5 + 2 and errs[-1] == "error: 8 in all: chunks with rows that are not finite"


def test_encode_csv_is_quoted(d, tmp_path):
    folder = tmp_path / "weird"
    folder.mkdir()
    names = ["a,b.png", 'q"uote.png', "new\nline.png", "cr\rx.png", "plain.png"]
    for nm in names:
        Image.open(d / "ok.png").save(folder / nm)
    out = tmp_path / "codes.csv"
    r = run_cli("encode", VAE, str(folder), "-o", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(open(out, encoding="utf-8", newline="")))
    assert rows[0] == ["source"] + [f"z{i}" for i in range(16)]
    assert [len(x) for x in rows] == [17] * (len(names) + 1)
    assert sorted(Path(x[0]).name for x in rows[1:]) == sorted(names)
    assert all(len(set(tuple(x[1:]) for x in rows[1:])) == 1 for _ in [0])   # the same digit each time
    plain = [x for x in rows[1:] if x[0].endswith("plain.png")][0]
    assert all(re.fullmatch(r"-?[0-9.e+-]+", v) for v in plain[1:])          # %.6g numbers as before
    r2 = run_cli("encode", VAE, str(folder))
    assert r2.returncode == 0 and r2.stdout.replace("\r\n", "\n") == out.read_text(encoding="utf-8").replace("\r\n", "\n")


def test_16_bit_png_reads_like_the_8_bit_one(d, tmp_path):
    """A 16-bit PNG (I;16) was clipped to pure white by encode/reconstruct; it is scaled to [0, 1]."""
    r = run_cli("encode", VAE, str(d / "d16.png"), str(d / "ok.png"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[1][1:] == rows[2][1:]
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert run_cli("reconstruct", VAE, str(d / "d16.png"), "-o", str(a)).returncode == 0
    assert run_cli("reconstruct", VAE, str(d / "ok.png"), "-o", str(b)).returncode == 0
    np.testing.assert_allclose(np.load(a), np.load(b), atol=1e-6)
    from vaezoo.io.images import read_image

    x16, x8 = read_image(d / "d16.png", (1, 28, 28)), read_image(d / "ok.png", (1, 28, 28))
    np.testing.assert_allclose(x16, x8, atol=1e-6)


# ---------------------------------------------------------------- property-based: the readers
def fake_pipe():
    """The m2-mnist5k pipeline over a numpy 'classifier' that checks what reaches it."""
    from vaezoo.runtime.pipeline import Pipeline
    from vaezoo.store.checkpoint import read_config
    from vaezoo.store.resolution import bundled_dir

    class Backend:
        name = "numpy"

        def run(self, part, x):
            assert part == "classifier" and x.dtype == np.float32 and x.shape[1:] == (1, 28, 28)
            assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1   # only finite [0, 1] pixels get here
            return (np.repeat(x.reshape(len(x), -1).mean(1, keepdims=True), 10, 1) * np.arange(10, dtype=np.float32),)

    return Pipeline(read_config(bundled_dir(M2)), Backend())


# 60 fixed examples per reader in the suite; VAEZOO_FUZZ_EXAMPLES=5000 for a longer, random search
_LONG = int(os.environ.get("VAEZOO_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_LONG or 60, deadline=None, derandomize=not _LONG,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def pipe():
    return fake_pipe()


def check_engine(pipe, path: Path) -> None:
    """classify's engine on one file: rows (one per counted item, in order, CSV and logits.npy agreeing)
    or a VaezooError; never another exception."""
    from vaezoo.errors import VaezooError
    from vaezoo.runtime import classify as engine

    try:
        buf, npy = io.StringIO(), io.BytesIO()
        s = engine.run(pipe, [str(path)], engine.RowWriter(buf, "csv", pipe.labels, 2), batch_size=64,
                       progress=False, notes=engine.Notes(stream=io.StringIO()))
        engine.run(pipe, [str(path)], engine.NpyWriter(npy), batch_size=64, progress=False,
                   notes=engine.Notes(stream=io.StringIO()))
    except VaezooError:
        event("engine: refused")
        return
    event(f"engine: {'some' if s.classified else 'no'} rows classified, {'some' if s.failed else 'no'} error rows")
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(rows) == s.items == s.total == s.classified + s.failed
    assert [int(r["item"]) for r in rows] == list(range(len(rows)))
    logits = np.load(io.BytesIO(npy.getvalue()))
    assert logits.shape == (len(rows), 10)
    assert np.isnan(logits).all(1).tolist() == [bool(r["error"]) for r in rows]


def check_images_io(path: Path) -> None:
    """vaezoo.io.images: an array of finite values in [0, 1], or a UsageError."""
    from vaezoo.errors import VaezooError
    from vaezoo.io.images import load_inputs, read_array, read_image

    for reader in (lambda p: read_array(p, (1, 28, 28)), lambda p: read_image(p, (1, 28, 28)),
                   lambda p: load_inputs([str(p)], (1, 28, 28))[0]):
        try:
            x = reader(path)
        except VaezooError:
            continue
        event("vaezoo.io.images: read")
        assert x.dtype == np.float32 and np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


DESCRS = ["|u1", "<f4", ">f8", "<f2", "<i2", ">i4", "|b1", "<c8", "|O", "<U3", "|V4", "<M8[s]", [("a", "<f4")]]
MODEL_SHAPES = [(28, 28), (784,), (1, 28, 28), (28, 28, 1)]


@st.composite
def npy_files(draw) -> bytes:
    """A .npy header (any version, dtype, shape, order) and a body of the right, a wrong or no length;
    half the time a plausible one (images of a model shape, the exact length, random bytes)."""
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 4)), *draw(st.sampled_from(MODEL_SHAPES)))
        descr = draw(st.sampled_from(["|u1", "<f4", ">f8", "<i2"]))
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape})
        body = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).bytes(int(np.prod(shape)) * np.dtype(descr).itemsize)
        return head.getvalue() + body[: len(body) - draw(st.sampled_from([0, 0, 0, 1, 100]))]
    n = draw(st.one_of(st.integers(0, 4), st.sampled_from([2**31, 2**40, 2**62])))
    rest = draw(st.one_of(st.sampled_from(MODEL_SHAPES), st.lists(st.integers(0, 40), max_size=3).map(tuple)))
    shape = (n, *rest) if draw(st.booleans()) or not rest else rest
    descr = draw(st.sampled_from(DESCRS))
    head = io.BytesIO()
    write = draw(st.sampled_from([np.lib.format.write_array_header_1_0, np.lib.format.write_array_header_2_0]))
    write(head, {"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape})
    need = int(np.prod(shape, dtype=object)) * np.dtype(descr if isinstance(descr, str) else descr).itemsize
    size = draw(st.one_of(st.just(need), st.integers(0, 64), st.just(max(need - 1, 0)), st.just(need + 3))) if need < 50_000 else draw(st.integers(0, 64))
    body = draw(st.one_of(st.just(b"\0" * size), st.binary(min_size=size, max_size=size))) if size <= 4096 else b"\x7f" * size
    return head.getvalue() + body


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.bool_, np.complex64, np.float16]),
    shape=st.one_of(st.sampled_from([(3, 28, 28), (2, 784), (2, 1, 28, 28), (1, 28, 28, 1)]),
                    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)),
    elements=None,
)


@st.composite
def typed_arrays(draw):
    """Anything numpy can save without pickling; half the time images of a model shape in 0-1 or 0-255
    with NaN or inf planted in some rows (so some rows are read and some are error rows)."""
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 5)), *draw(st.sampled_from(MODEL_SHAPES)))
        dtype = draw(st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.bool_, np.complex64, np.float16]))
        top = draw(st.sampled_from([1.0, 255.0]))
        a = (np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(shape) * top).astype(dtype)
        specials = [np.nan, np.inf, -np.inf]
    else:
        a = draw(arrays)
        specials = [0.0, 0.5, 1.0, 200.0, -1.0, np.nan, np.inf, -np.inf, 1e30]
    if a.dtype.kind in "fc" and a.size and draw(st.booleans()):
        vals = draw(st.lists(st.sampled_from(specials), min_size=1, max_size=3))
        idx = draw(st.lists(st.integers(0, a.size - 1), min_size=len(vals), max_size=len(vals)))
        with np.errstate(over="ignore", invalid="ignore"):
            a.reshape(-1)[idx] = np.asarray(vals).astype(a.dtype)
    return a


@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"\x93NUMPY" + b), npy_files()))
@FUZZ
def test_any_npy_bytes(pipe, fuzz_dir, data):
    path = fuzz_dir / "fuzz.npy"
    path.write_bytes(data)
    check_engine(pipe, path)
    check_images_io(path)


@given(a=typed_arrays(), fortran=st.booleans())
@FUZZ
def test_any_npy_array(pipe, fuzz_dir, a, fortran):
    path = fuzz_dir / "arr.npy"
    np.save(path, np.asfortranarray(a) if fortran else a)
    check_engine(pipe, path)
    check_images_io(path)


@st.composite
def idx_files(draw) -> bytes:
    if draw(st.booleans()):   # plausible: n images of 28 x 28 (or 784), the exact length, random bytes
        code = draw(st.sampled_from([0x08, 0x0D, 0x0E]))
        dims = [draw(st.integers(1, 4)), *draw(st.sampled_from([[28, 28], [784]]))]
        itemsize = {0x08: 1, 0x0D: 4, 0x0E: 8}[code]
        body = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).bytes(int(np.prod(dims)) * itemsize)
        return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body
    code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]))
    dims = draw(st.one_of(st.just([3, 28, 28]), st.just([2, 784]),
                          st.lists(st.one_of(st.integers(0, 30), st.just(2**32 - 1)), max_size=4)))
    head = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    size = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1) * int(np.prod(dims, dtype=object) if dims else 1)
    body = draw(st.one_of(st.binary(max_size=64), st.just(b"\x01" * size if size <= 20_000 else b""),
                          st.just(b"\x00" * max(min(size, 20_000) - 1, 0))))
    return head + body if draw(st.booleans()) else head[: draw(st.integers(0, len(head)))]


@given(data=idx_files(), gz=st.booleans(), cut=st.integers(0, 40))
@FUZZ
def test_any_idx_file(pipe, fuzz_dir, data, gz, cut):
    path = fuzz_dir / ("x-images-idx3-ubyte.gz" if gz else "x-images-idx3-ubyte")
    blob = gzip.compress(data) if gz else data
    path.write_bytes(blob[: len(blob) - cut] if gz and cut else blob)   # a cut gzip stream is truncated
    check_engine(pipe, path)


SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"II*\x00", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP"]


@st.composite
def image_files(draw) -> tuple[str, bytes]:
    if draw(st.booleans()):
        return ".png", draw(st.sampled_from(SIGNATURES)) + draw(st.binary(max_size=200))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "F", "CMYK"]))
    w, h = draw(st.one_of(st.just((28, 28)), st.just((56, 56)), st.tuples(st.integers(1, 64), st.integers(1, 64))))
    if mode == "F":
        arr = np.full((h, w), draw(st.sampled_from([0.0, 0.5, 3.0, -2.0, np.nan, np.inf])), np.float32)
        im = Image.fromarray(arr)
        fmt = ".tiff"
    elif mode in ("I;16", "I"):
        im = Image.new(mode, (w, h), draw(st.integers(0, 65535)))
        fmt = draw(st.sampled_from([".png", ".tiff"]))
    else:
        im = Image.new(mode, (w, h))
        fmt = draw(st.sampled_from([".png", ".tiff", ".bmp", ".gif", ".webp"])) if mode != "CMYK" else ".tiff"
    buf = io.BytesIO()
    try:
        im.save(buf, format={".tiff": "TIFF", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF", ".webp": "WEBP"}[fmt])
    except Exception:   # a mode the format cannot hold
        buf = io.BytesIO(b"not saved")
    data = buf.getvalue()
    cut = draw(st.integers(0, 3))
    return fmt, data[: len(data) * cut // 4] if cut else data


@pytest.mark.filterwarnings("ignore::UserWarning")   # Pillow on a damaged TIFF ("Corrupt EXIF data")
@given(img=image_files())
@FUZZ
def test_any_image_file(pipe, fuzz_dir, img):
    ext, data = img
    path = fuzz_dir / f"img{ext}"
    path.write_bytes(data)
    check_engine(pipe, path)
    check_images_io(path)


def test_edited_checkpoint_files_and_a_missing_data_dir_are_one_line(tmp_path):
    """An invalid metrics.json (info), a config whose latent_dim or input.shape was edited into nonsense,
    and a --data-dir that is not there: one line each, no traceback."""
    import shutil

    from vaezoo.store.resolution import bundled_dir

    folder = tmp_path / "ck"
    shutil.copytree(bundled_dir("vae-mnist5k"), folder)
    (folder / "metrics.json").write_text("{not json")
    r = run_cli("info", str(folder))
    assert r.returncode == 1 and "cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    for key, value in (("latent_dim", "16"), ("latent_dim", 2.5), ("input", {"kind": "image"})):
        cfg = json.loads((bundled_dir("vae-mnist5k") / "config.json").read_text())
        cfg[key] = value
        (folder / "config.json").write_text(json.dumps(cfg))
        for backend in ("torch", "onnx"):
            r = run_cli("sample", str(folder), "-n", "2", "--backend", backend, "-o", str(tmp_path / "s.npy"))
            assert r.returncode == 1 and ("latent_dim must be" in r.stderr or "input.shape must be" in r.stderr), r.stderr
            assert "Traceback" not in r.stderr and not (tmp_path / "s.npy").exists()
    r = run_cli("train", "vae-mnist", "--data-dir", str(tmp_path / "nowhere"), "--steps", "1")
    assert r.returncode == 2 and "is not a folder" in r.stderr and "Traceback" not in r.stderr


def test_an_edited_or_unsealed_config_is_refused_by_both_backends(tmp_path):
    """config.json vouches for its own settings (config_sha256): a changed likelihood or label list, or a
    removed digest, is one line and nothing is written; write_manifest re-seals a folder the user trusts."""
    import shutil

    from vaezoo.store.checkpoint import DIGEST_KEY, write_manifest
    from vaezoo.store.resolution import bundled_dir

    folder, out = tmp_path / "ck", tmp_path / "s.npy"
    shutil.copytree(bundled_dir("vae-mnist5k"), folder)
    sealed = json.loads((folder / "config.json").read_text())
    edits = {"likelihood": lambda c: c["output"].update(likelihood="gaussian"),
             "labels": lambda c: c.update(labels=list(reversed(c["labels"]))),
             "unsealed": lambda c: c.pop(DIGEST_KEY)}
    for name, edit in edits.items():
        cfg = json.loads(json.dumps(sealed))
        edit(cfg)
        (folder / "config.json").write_text(json.dumps(cfg))
        for backend in ("torch", "onnx"):
            r = run_cli("sample", str(folder), "-n", "2", "--backend", backend, "-o", str(out))
            expected = "has no 'config_sha256'" if name == "unsealed" else "does not match its own 'config_sha256'"
            assert r.returncode == 1 and expected in r.stderr, (name, backend, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    write_manifest(folder)   # the last edit (digest removed, settings as they were): trusted and sealed again
    r = run_cli("sample", str(folder), "-n", "2", "--seed", "0", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads((folder / "config.json").read_text())[DIGEST_KEY] == sealed[DIGEST_KEY]
