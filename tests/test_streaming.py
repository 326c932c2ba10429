"""Commands that produce N outputs check their output first and stream a .npy, so memory does not grow
with N (benchmarks/bench_memory.py measures the peak); a PNG of too many images is refused up front."""

from __future__ import annotations

import numpy as np

from conftest import run_cli


def test_sample_and_traverse_stream_to_npy_with_the_same_values(tmp_path):
    import vaezoo

    pipe = vaezoo.load("dp-factor-mnist5k")
    r = run_cli("sample", "dp-factor-mnist5k", "-n", "9000", "--seed", "5", "-o", str(tmp_path / "s.npy"))
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "s.npy", mmap_mode="r")
    assert got.shape == (9000, 1, 28, 28) and got.dtype == np.float32
    assert np.abs(got[:2000] - pipe.sample(2000, seed=5)).max() <= 1e-5        # the same stream, however batched
    r = run_cli("traverse", "dp-factor-mnist5k", "--dims", "0,3", "--steps", "4500", "--seed", "2", "-o", str(tmp_path / "t.npy"))
    assert r.returncode == 0, r.stderr
    t = np.load(tmp_path / "t.npy", mmap_mode="r")
    assert t.shape == (9000, 1, 28, 28)
    assert np.abs(t[4490:4510] - pipe.traverse(None, 2, [0, 3], 4500)[4490:4510]).max() <= 1e-5


def test_outputs_are_checked_before_any_work(tmp_path):
    big = tmp_path / "big.png"
    r = run_cli("sample", "dp-factor-mnist5k", "-n", "2000000", "-o", str(big))
    assert r.returncode == 2 and "do not fit one PNG" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("traverse", "dp-factor-mnist5k", "--steps", "100000", "-o", str(big))
    assert r.returncode == 2 and "do not fit one PNG" in r.stderr and not big.exists()
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"mine")
    for cmd in (["sample", "no-such-model-mnist5k"], ["traverse", "no-such-model-mnist5k"]):
        r = run_cli(*cmd, "-o", str(kept))   # the output is refused before the model is even looked up
        assert r.returncode == 2 and "exists; pass --force" in r.stderr, r.stderr
    assert kept.read_bytes() == b"mine"
    r = run_cli("sample", "dp-factor-mnist5k", "-o", str(tmp_path / "x.gif"))
    assert r.returncode == 2 and "use .png or .npy" in r.stderr


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """ENOSPC while writing: one line, exit 1, no temp file left (a 64 KiB tmpfs; needs root to mount)."""
    import subprocess

    import pytest

    disk = tmp_path / "full"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        for args in (["sample", "dp-factor-mnist5k", "-n", "2000", "-o", str(disk / "s.npy")],
                     ["traverse", "dp-factor-mnist5k", "--steps", "200", "-o", str(disk / "t.npy")]):
            r = run_cli(*args)
            assert r.returncode == 1 and "No space left on device" in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
            assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
