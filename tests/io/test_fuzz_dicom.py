"""Seeded DICOM header fuzzing (issue 11): every outcome is a right volume, a volume whose
wrong slices are named in its warnings, or a ViewerError that names the file.

The CI tier runs ``VESSEL_FUZZ_CASES`` cases (default 240, about 20 s on two cores);
a long run: ``VESSEL_FUZZ_CASES=1600 VESSEL_FUZZ_REPORT=/tmp/fuzz.json pytest
tests/io/test_fuzz_dicom.py``. ``VESSEL_FUZZ_SEED`` shifts the seeds (default 0), so a
failing case is reproduced from the seed printed with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dicom_fuzz as fz
import numpy as np
import pytest

from viewer.cli import main as cli_main
from viewer.io import load_volume

N_CASES = int(os.environ.get("VESSEL_FUZZ_CASES", "240"))
SEED0 = int(os.environ.get("VESSEL_FUZZ_SEED", "0"))
CASE_TIMEOUT_S = 20


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang(f"no result within {CASE_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def clean() -> tuple[list[str], dict[str, list[fz.EncodedFile]]]:
    syntaxes = fz.available_syntaxes()
    return syntaxes, {ts: fz.clean_series(ts) for ts in syntaxes}


def test_clean_series_loads_exactly_in_every_syntax(tmp_path: Path, clean) -> None:
    """The oracle's baseline: unmutated, each syntax gives the exact volume, no warning."""
    syntaxes, files = clean
    assert {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"} <= set(
        syntaxes
    )
    for n, ts in enumerate(syntaxes):
        d = tmp_path / f"s{n}"
        d.mkdir()
        for k, f in enumerate(files[ts]):
            (d / fz.file_name(k)).write_bytes(f.to_bytes())
        vol = load_volume(d)
        np.testing.assert_array_equal(vol.hu, fz.truth_volume())
        np.testing.assert_allclose(vol.ijk_to_lps, fz.truth_affine(), atol=1e-6)
        assert not vol.warnings, (ts, vol.warnings)
        assert vol.metadata["TransferSyntax"]


def test_judge_rejects_silent_errors(clean) -> None:
    """The oracle itself can fail: a wrong unnamed slice, a foreign exception, an
    unnamed error are all failures."""
    from dataclasses import replace

    from viewer.core.errors import ViewerError
    from viewer.core.volume import Volume

    case = fz.Case(0, "1.2.840.10008.1.2.1", {3: "value: x"})
    hu = fz.truth_volume().copy()
    ok = Volume(
        hu=hu,
        spacing_mm=(0.6, 0.8, 2.0),
        ijk_to_lps=fz.truth_affine(),
        description="",
        source="",
        warnings=(),
        metadata={},
        identity={},
    )
    assert fz.judge(case, ok).kind == "clean"
    bad = hu.copy()
    bad[3] -= 2048
    assert fz.judge(case, replace(ok, hu=bad)).kind == "FAIL"
    assert fz.judge(case, replace(ok, hu=bad, warnings=("odd values in img003",))).kind == "warned"
    assert fz.judge(case, replace(ok, hu=hu[1:], ijk_to_lps=fz.truth_affine() @ np.diag([1, 1, 1, 1.0]))).kind == "FAIL"
    assert fz.judge(case, OverflowError("x")).kind == "FAIL"
    assert fz.judge(case, ViewerError("bad series")).kind == "FAIL"
    assert fz.judge(case, ViewerError("img003: bad")).kind == "error"


def run_case(seed: int, root: Path, clean) -> tuple[fz.Case, fz.Outcome, fz.Outcome]:
    syntaxes, files = clean
    folder = root / f"case{seed}"
    case = fz.make_case(seed, syntaxes, files, folder)
    result = _guarded(lambda: load_volume(folder))
    out = fz.judge(case, result)
    # The same mutated file on its own: a series of one, where most faults become errors
    # (so this tier checks that errors, too, name the file).
    k = min(case.mutated)
    single = _guarded(lambda: load_volume(folder / fz.file_name(k)))
    out1 = fz.judge_single(case, k, single)
    shutil.rmtree(folder, ignore_errors=True)
    return case, out, out1


def _guarded(fn) -> object:
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - judged by the caller
        return exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_fuzzed_headers(tmp_path: Path, clean) -> None:
    outcomes: Counter[str] = Counter()
    single: Counter[str] = Counter()
    errors_named = [0, 0]  # [naming the file, all errors]
    failures: list[str] = []
    records = []
    for seed in range(SEED0, SEED0 + N_CASES):
        case, out, out1 = run_case(seed, tmp_path, clean)
        outcomes[out.kind] += 1
        single[out1.kind] += 1
        for o in (out, out1):
            if o.kind == "error" or "ViewerError" in o.detail:
                errors_named[1] += 1
                errors_named[0] += o.names_file
        records.append(
            {
                "seed": seed,
                "case": case.describe(),
                "series": out.kind,
                "series_detail": out.detail[:400],
                "single": out1.kind,
                "single_detail": out1.detail[:400],
            }
        )
        for what, o in (("series", out), ("single file", out1)):
            if o.kind == "FAIL":
                failures.append(f"{case.describe()} ({what})\n    -> {o.detail[:600]}")
    summary = {
        "cases": N_CASES,
        "series_outcomes": dict(outcomes),
        "single_file_outcomes": dict(single),
        "errors": errors_named[1],
        "errors_naming_file": errors_named[0],
        "syntaxes": clean[0],
    }
    print(json.dumps(summary))
    if os.environ.get("VESSEL_FUZZ_REPORT"):
        Path(os.environ["VESSEL_FUZZ_REPORT"]).write_text(json.dumps({**summary, "records": records}, indent=1))
    assert not failures, f"{len(failures)} of {2 * N_CASES} loads failed:\n" + "\n".join(failures[:25])
    # The mix must exercise every acceptable outcome, or the fuzzer is too tame.
    assert outcomes["clean"] and outcomes["warned"], outcomes
    assert single["clean"] and single["error"], single


def test_info_never_prints_a_traceback(tmp_path: Path, clean, capsys: pytest.CaptureFixture[str]) -> None:
    """``vessel-viewer info`` on fuzzed series: exit 0 or 2 with a message, never a
    traceback (in-process for most cases, a real subprocess for a few)."""
    n = max(10, N_CASES // 16)
    for seed in range(SEED0 + 10_000, SEED0 + 10_000 + n):
        syntaxes, files = clean
        folder = tmp_path / f"info{seed}"
        case = fz.make_case(seed, syntaxes, files, folder)
        if seed < SEED0 + 10_003:
            p = subprocess.run(
                [sys.executable, "-m", "viewer", "info", str(folder)], capture_output=True, text=True, timeout=120
            )
            rc, err = p.returncode, p.stderr
        else:
            rc = cli_main(["info", str(folder)])
            err = capsys.readouterr().err
        assert "Traceback" not in err, f"{case.describe()}\n{err}"
        assert rc in (0, 2), f"{case.describe()}: exit {rc}\n{err}"
        if rc == 2:
            assert "error:" in err, err
        shutil.rmtree(folder, ignore_errors=True)
