"""Load benchmark: our DICOM loader vs SimpleITK, vtkDICOMImageReader and a raw read.

Usage::

    .venv/bin/python benchmarks/bench_load.py            # 512x512x600 (about 315 MB int16)
    .venv/bin/python benchmarks/bench_load.py --quick    # 512x512x150
    .venv/bin/python benchmarks/bench_load.py --repeat 5 --slices 300

The series is generated once into /tmp/vessel-viewer-bench/ (kept between runs): with
``viewer.io.writers.write_dicom_series`` when that module exists, else with a plain
pydicom writer here (uncompressed Explicit VR Little Endian, CT headers of realistic
size). All readers then load the same files from a warm page cache, each in its own
subprocess so that its peak memory (VmHWM in /proc/self/status, minus the RSS after
imports) is its own. MB/s = int16 voxel bytes / wall time of the load call (best of
``--repeat`` runs; the median is printed too). Our voxels are compared with SimpleITK's
by SHA-1 of the int16 array. The last line prints the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("VESSEL_VIEWER_BENCH_DIR", "/tmp/vessel-viewer-bench"))


# ------------------------------------------------------------------------ data
def _synthetic_hu(nz: int, ny: int, nx: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """One CT-like slice: air, an elliptic body of soft tissue, two bones, noise."""
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float32)
    cy, cx = ny / 2, nx / 2
    body = ((x - cx) / (0.38 * nx)) ** 2 + ((y - cy) / (0.30 * ny)) ** 2 < 1
    s = np.full((ny, nx), -1000, np.float32)
    s[body] = 40
    for bx, r in ((cx - 0.1 * nx, 0.06 * nx), (cx + 0.12 * nx, 0.03 * nx)):
        d = np.hypot(x - bx, y - cy + 0.02 * k)
        s[(d < r) & (d > 0.7 * r)] = 1400
        s[d <= 0.7 * r] = -50
    s += rng.normal(0, 15, s.shape).astype(np.float32)
    return np.clip(np.rint(s), -1024, 3071).astype(np.int16)


def _write_with_pydicom(outdir: Path, nz: int, ny: int, nx: int) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(1)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    order = rng.permutation(nz)  # file names not in slice order, like real exports
    for k in range(nz):
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = CTImageStorage
        fm.MediaStorageSOPInstanceUID = generate_uid()
        fm.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = fm
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, fm.MediaStorageSOPInstanceUID
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyDate = ds.SeriesDate = "20240101"
        ds.Modality, ds.Manufacturer = "CT", "BENCH"
        ds.ManufacturerModelName, ds.InstitutionName = "Synthetic", "Benchmark"
        ds.StudyDescription, ds.SeriesDescription = "Bench CTA", "Bench 512"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Bench^Phantom", "B0", "", "O"
        ds.BodyPartExamined, ds.SliceThickness, ds.KVP = "LEG", 1.0, 100
        ds.DataCollectionDiameter, ds.ReconstructionDiameter = 500, 360
        ds.GantryDetectorTilt, ds.TableHeight, ds.RotationDirection = 0, 150, "CW"
        ds.ExposureTime, ds.XRayTubeCurrent, ds.Exposure = 500, 300, 150
        ds.ConvolutionKernel, ds.PatientPosition = "B30f", "FFS"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyID, ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = "1", 3, 1, k + 1
        ds.ImagePositionPatient = [-180.0, -180.0, -300.0 + k * 1.0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = -300.0 + k
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns, ds.PixelSpacing = ny, nx, [0.703125, 0.703125]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        # A private block the size of a typical vendor header (~2 kB), to be skipped.
        blk = ds.private_block(0x0019, "BENCH PRIVATE", create=True)
        blk.add_new(0x10, "OB", bytes(2048))
        ds.PixelData = _synthetic_hu(nz, ny, nx, k, rng).tobytes()
        ds.save_as(outdir / f"IM{order[k]:05d}", enforce_file_format=True)


def ensure_series(nz: int, ny: int = 512, nx: int = 512) -> tuple[Path, str]:
    """The cached benchmark series folder (generated on first use) and who wrote it.

    Preferred: the project's lower-leg phantom at its "large" size (512 x 512 x 640)
    cropped to ``nz`` slices, written by ``viewer.io.writers.write_dicom_series``.
    Fallback (those modules absent): a synthetic CT written by pydicom here.
    """
    sys.path.insert(0, str(ROOT))
    try:
        from viewer.core.volume import Volume
        from viewer.io.writers import write_dicom_series
        from viewer.phantom import generate
    except ImportError:
        write_dicom_series = None  # type: ignore[assignment]
    outdir = CACHE / (f"ct_{nx}x{ny}x{nz}_phantom" if write_dicom_series else f"ct_{nx}x{ny}x{nz}")
    done = outdir / ".complete"
    if done.exists():
        return outdir, done.read_text().strip()
    outdir.mkdir(parents=True, exist_ok=True)
    for f in outdir.iterdir():
        f.unlink()
    t = time.perf_counter()
    if write_dicom_series is not None:
        ph = generate("large").volume
        if ph.shape[0] < nz or ph.shape[1:] != (ny, nx):
            raise SystemExit(f"phantom 'large' is {ph.shape}, cannot crop to {(nz, ny, nx)}")
        vol = Volume(
            hu=np.ascontiguousarray(ph.hu[:nz]),
            spacing_mm=ph.spacing_mm,
            ijk_to_lps=ph.ijk_to_lps,
            description="Bench phantom",
            metadata=dict(ph.metadata),
        )
        write_dicom_series(vol, outdir, series_description="Bench phantom")
        writer = "viewer.phantom.generate('large') cropped, viewer.io.writers.write_dicom_series"
    else:
        _write_with_pydicom(outdir, nz, ny, nx)
        writer = "pydicom (benchmarks/bench_load.py)"
    print(f"generated {nz} slices into {outdir} with {writer} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    done.write_text(writer)
    return outdir, writer


# --------------------------------------------------------------------- workers
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _worker(reader: str, folder: Path, repeat: int) -> None:
    """Runs in a subprocess: load ``repeat`` times, print JSON with times and memory."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if reader == "ours":
        sys.path.insert(0, str(ROOT))
        import viewer.io.api as api
        from viewer.io import load_volume

        def load() -> np.ndarray:
            api._cache = None  # measure the whole load, header scan included
            return load_volume(folder).hu
    elif reader == "sitk":
        import SimpleITK as sitk

        keep: list = []

        def load() -> np.ndarray:
            r = sitk.ImageSeriesReader()
            r.SetFileNames(r.GetGDCMSeriesFileNames(str(folder)))
            img = r.Execute()
            keep[:] = [img]  # the array view below borrows the image's buffer
            return sitk.GetArrayViewFromImage(img)
    elif reader == "vtk":
        os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkIOImage import vtkDICOMImageReader

        keep_v: list = []

        def load() -> np.ndarray:
            r = vtkDICOMImageReader()
            r.SetDirectoryName(str(folder))
            r.Update()
            img = r.GetOutput()
            keep_v[:] = [r, img]  # the numpy view borrows VTK's buffer
            nx, ny, nz = img.GetDimensions()
            return vtk_to_numpy(img.GetPointData().GetScalars()).reshape(nz, ny, nx)
    elif reader == "raw":
        sizes = [f.stat().st_size for f in files]

        def load() -> np.ndarray:
            buf = np.empty(sum(sizes), np.uint8)
            mv, pos = memoryview(buf), 0
            for f, n in zip(files, sizes, strict=False):
                with open(f, "rb", buffering=0) as fh:
                    pos += fh.readinto(mv[pos : pos + n])
            return buf
    else:
        raise SystemExit(f"unknown reader {reader}")

    base_rss = _status_kb("VmRSS")
    times, digest, shape = [], "", ()
    for i in range(repeat):
        t = time.perf_counter()
        arr = load()
        times.append(time.perf_counter() - t)
        if i == 0:
            peak_kb = _status_kb("VmHWM")
            shape = tuple(int(s) for s in arr.shape)
            # Hash the values, not the dtype: SimpleITK returns int32 for unsigned data
            # with a negative intercept, we return int16 (measured after the peak).
            digest = hashlib.sha1(arr.astype(np.int32).tobytes()).hexdigest() if reader != "raw" else ""
            dtype = str(arr.dtype)
        del arr
    print(
        json.dumps(
            {
                "times": times,
                "peak_above_base_mb": (peak_kb - base_rss) * 1024 / 1e6,
                "sha1": digest,
                "shape": shape,
                "dtype": dtype,
            }
        )
    )


# ------------------------------------------------------------------------ main
def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                total = int(line.split()[1]) // 1024 // 1024
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {total} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="512x512x150 instead of 512x512x600")
    ap.add_argument("--slices", type=int, default=None, help="number of slices (overrides --quick)")
    ap.add_argument("--repeat", type=int, default=3, help="loads per reader (best is reported)")
    ap.add_argument("--readers", default="raw,ours,sitk,vtk")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker, Path(args.folder), args.repeat)
        return 0

    nz = args.slices or (150 if args.quick else 600)
    folder, writer = ensure_series(nz)
    files = [f for f in folder.iterdir() if not f.name.startswith(".")]
    for f in files:  # warm the page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass
    vol_mb = 512 * 512 * nz * 2 / 1e6
    file_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"machine: {machine()}")
    print(
        f"series: {folder} ({len(files)} files, {file_mb:.0f} MB on disk, int16 volume "
        f"{vol_mb:.0f} MB), written by {writer}; warm page cache; best of {args.repeat}"
    )
    results: dict[str, dict] = {}
    for reader in args.readers.split(","):
        env = dict(os.environ, VTK_SMP_BACKEND_IN_USE="STDThread")
        p = subprocess.run(
            [sys.executable, __file__, "--worker", reader, "--folder", str(folder), "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            env=env,
        )
        if p.returncode != 0:
            print(f"{reader:>6}: FAILED: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        mb = file_mb if reader == "raw" else vol_mb
        r["mbps"] = mb / min(r["times"])
        r["mbps_median"] = mb / statistics.median(r["times"])
        results[reader] = r
        print(
            f"{reader:>6}: {r['mbps']:7.0f} MB/s best ({r['mbps_median']:.0f} median), "
            f"{min(r['times']):.3f} s, peak {r['peak_above_base_mb']:.0f} MB above baseline "
            f"({r['peak_above_base_mb'] / vol_mb:.2f}x the int16 volume), shape {tuple(r['shape'])}"
        )
    same = "n/a"
    if "ours" in results and "sitk" in results:
        same = "yes" if results["ours"]["sha1"] == results["sitk"]["sha1"] else "NO"
        print(f"voxels identical to SimpleITK: {same}")

    def ratio(a: str, b: str) -> str:
        return f"{results[a]['mbps'] / results[b]['mbps']:.2f}x" if a in results and b in results else "n/a"

    mem = f"{results['ours']['peak_above_base_mb'] / vol_mb:.2f}x" if "ours" in results else "n/a"
    print(
        f"RATIOS ours/SimpleITK {ratio('ours', 'sitk')} (target >= 1.5x), ours/vtkDICOMImageReader "
        f"{ratio('ours', 'vtk')} (target > 1x), ours/raw {ratio('ours', 'raw')}, "
        f"peak memory {mem} of int16 volume (target <= 1.5x), same voxels as SimpleITK: {same}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
