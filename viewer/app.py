"""Composition root: the one place that wires Qt, the window and the data together.

``run_gui(argv)`` is what ``vessel-viewer`` (no sub-command) and ``python -m viewer``
run. GUI options:

``PATH``                 open a DICOM folder/file or a NIfTI / NRRD / MHA file
``--small``              start on the small phantom (faster) instead of the full one
``--layout 3d|2x2``      start layout
``--screenshot FILE``    save a PNG of the whole window once everything on its way to
                         the picture is drawn (masks, shading: a full-quality frame
                         of the settled window), then quit (headless checks, docs)
``--quit-after-ms N``    quit after N ms at the latest (screenshot taken then if not yet)
``--print-timing``       print ``first_frame_s=...`` (the volume first drawn: unshaded, or
                         bone only before its separation), ``first_separated_frame_s=...``
                         (separated mode: bone and vessels first told apart, possibly
                         coarsely from preview masks) and ``first_full_frame_s=...``
                         (seconds since the process started) to stdout, for
                         ``benchmarks/bench_gui.py``
``--exit-after-first-frame``  quit once the first full-quality frame is shown
``--separated``          start in separated bone / vessel mode
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

#: Monotonic time when this module was imported: a fallback for the process start.
_T_IMPORT = time.monotonic()

ORG_NAME = "vessel-viewer"
APP_NAME = "vessel-viewer"


def process_age_s() -> float:
    """Seconds since this process started (from /proc on Linux, else since import)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = float(fields[19])  # field 22 (starttime), after pid and comm
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _T_IMPORT


def build_gui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vessel-viewer", description="Vessel-bone CTA viewer (desktop application).")
    p.add_argument("path", nargs="?", help="DICOM folder or file, NIfTI, NRRD or MHA/MHD file")
    p.add_argument("--small", action="store_true", help="start on the small phantom")
    p.add_argument("--layout", choices=("3d", "2x2"), help="start layout")
    p.add_argument(
        "--screenshot",
        metavar="FILE",
        help="save a PNG of the window once its picture is final (masks, shading), then quit",
    )
    p.add_argument("--quit-after-ms", type=int, metavar="N", help="quit after N milliseconds")
    p.add_argument("--print-timing", action="store_true", help="print first_frame_s and first_full_frame_s on stdout")
    p.add_argument("--exit-after-first-frame", action="store_true", help="quit once the first full frame is shown")
    p.add_argument("--separated", action="store_true", help="start in separated bone/vessel mode")
    return p


def _prepare_environment() -> None:
    # VTK's SMP backend defaults to Sequential in the wheel; STDThread made the ray
    # caster and FlyingEdges use both cores (DESIGN.md). Must be set before VTK loads.
    os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
    # A Qt window with a VTK view needs a real X server (xcb): the offscreen platform
    # fails to initialise OpenGL for the VTK widget (DESIGN.md). Prefer xcb when a
    # display exists and nobody chose.
    if "QT_QPA_PLATFORM" not in os.environ and os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "xcb"


def save_window_png(window: object, path: str | Path) -> Path:
    """PNG of the whole window as on screen.

    Qt widgets come from ``QWidget.grab()``; the VTK view's pixels come from VTK
    (``vtkWindowToImageFilter``), because grabbing the native GL widget through Qt
    returns garbage (DESIGN.md). They are composed at the view's position."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QImage, QPainter

    pix = window.grab()  # type: ignore[attr-defined]
    view = window.view3d  # type: ignore[attr-defined]
    rgb = view.grab_image()
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    dpr = pix.devicePixelRatio()
    p = QPainter(pix)
    top_left: QPoint = view.vtk_widget.mapTo(window, QPoint(0, 0))
    p.drawImage(top_left, img.scaled(int(view.vtk_widget.width() * dpr), int(view.vtk_widget.height() * dpr)))
    p.end()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not pix.save(str(out), "PNG"):
        raise OSError(f"could not write {out}")
    return out


def _prefetch_phantom(size: str) -> Future[Any]:
    """Generate the phantom's volume on a daemon thread; returns its future."""
    fut: Future[Any] = Future()

    def work() -> None:
        try:
            from viewer.phantom import generate

            fut.set_result(generate(size=size).volume)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting load
            fut.set_exception(exc)

    threading.Thread(target=work, name="phantom-prefetch", daemon=True).start()
    return fut


def run_gui(argv: Sequence[str] | None = None) -> int:
    """Start the desktop application; returns the exit code."""
    args = build_gui_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    _prepare_environment()
    # Start-up time: generate the phantom on a plain thread right now, while Qt,
    # VTK and the window are still being imported and built (about 1 s of the 4 s
    # budget on a 2-core machine); the window's load then only waits for it.
    prefetched = None if args.path else _prefetch_phantom("small" if args.small else "default")
    # Likewise a scan given on the command line is read from now on (issue 9: start to
    # first frame); the window's load waits for it.
    prefetched_load = None
    if args.path and Path(args.path).exists():
        from viewer.io.prefetch import PrefetchedLoad

        prefetched_load = PrefetchedLoad(args.path)

    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    icon_path = Path(__file__).resolve().parents[1] / "assets" / "icon.png"
    if icon_path.is_file():
        QApplication.setWindowIcon(QIcon(str(icon_path)))  # static: the instance may be a QCoreApplication

    from viewer.ui.main_window import MainWindow

    window = MainWindow()
    if args.layout:
        window.set_layout(args.layout)
    if args.separated:
        window.set_separated(True)
    window.show()
    window.view3d.initialize()

    exit_code = {"code": 0}
    done = {"shot": False}

    def take_screenshot_and_quit() -> None:
        if done["shot"]:
            return
        done["shot"] = True
        if args.screenshot:
            try:
                out = save_window_png(window, args.screenshot)
                print(f"screenshot: {out}", flush=True)
            except OSError as exc:
                print(f"vessel-viewer: error: {exc}", file=sys.stderr)
                exit_code["code"] = 1
        window.close()

    def on_first_frame() -> None:
        if args.print_timing:
            print(f"first_full_frame_s={process_age_s():.3f}", flush=True)
        if args.exit_after_first_frame:
            QTimer.singleShot(0, window.close)

    window.first_full_frame.connect(on_first_frame)
    if args.print_timing:
        window.first_frame.connect(lambda: print(f"first_frame_s={process_age_s():.3f}", flush=True))
        window.first_separated_frame.connect(
            lambda: print(f"first_separated_frame_s={process_age_s():.3f}", flush=True)
        )
    if args.screenshot:
        # The final picture: masks, scene and shading done (a big scan is drawn coarse,
        # bone-only or unshaded first), status bar and slice views given 0.5 s to follow.
        window.call_when_settled(take_screenshot_and_quit)
    window.load_failed.connect(lambda _m: exit_code.__setitem__("code", 2) if args.screenshot else None)
    if args.quit_after_ms:
        QTimer.singleShot(int(args.quit_after_ms), take_screenshot_and_quit if args.screenshot else window.close)

    if args.path:
        QTimer.singleShot(0, lambda: window.open_path(args.path, prefetched=prefetched_load))
    else:
        QTimer.singleShot(0, lambda: window.open_phantom("small" if args.small else "default", prefetched=prefetched))
    app.exec()
    window.shutdown()
    return int(exit_code["code"])


__all__ = ["build_gui_parser", "process_age_s", "run_gui", "save_window_png"]
