"""Pointer tools, the measurement list and the slice overlays, without a 3D view.

Real widgets (a :class:`SliceViewWidget`, the :class:`MeasureToolsWidget`) on the small
phantom's volume, bound to a bare :class:`ViewerState`; clicks go through Qt's mouse
events like a user's.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402

from viewer.core.lesion import Branch, EntryPoint, Lesion, LesionAnalysis  # noqa: E402
from viewer.core.measure import Angle, Ruler  # noqa: E402
from viewer.core.state import ViewerState  # noqa: E402
from viewer.ui.measure_tools import MeasureToolsWidget, PointerTools  # noqa: E402
from viewer.ui.slice_view import MARKER_DEPTH_MM, SliceViewWidget  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture()
def setup(qtbot, small_phantom):  # type: ignore[no-untyped-def]
    state = ViewerState()
    tools = PointerTools(state)
    view = SliceViewWidget(state, "axial")
    vol = small_phantom.volume
    lo, hi = vol.bounds_lps()
    state.volume = vol
    state.crosshair_lps = tuple(float(v) for v in (lo + hi) / 2)
    view.set_tools(tools)
    view.resize(400, 400)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    panel = MeasureToolsWidget(state, tools)
    qtbot.addWidget(panel)
    return state, tools, view, panel


def small_phantom_slice_mm(state: ViewerState) -> float:
    return float(state.volume.spacing_mm[2])


def click(qtbot, view: SliceViewWidget, lps) -> None:  # type: ignore[no-untyped-def]
    pos = view.lps_to_widget(tuple(lps))
    assert pos is not None
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos.toPoint())


def test_ruler_and_angle_from_clicks(setup, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, tools, view, panel = setup
    c = state.crosshair_lps
    qtbot.mouseClick(panel.tool_buttons["ruler"], Qt.MouseButton.LeftButton)
    assert tools.tool == "ruler"
    click(qtbot, view, (c[0] - 12, c[1], c[2]))
    assert state.measurements == () and len(tools.pending_lps) == 1
    click(qtbot, view, (c[0] + 12, c[1], c[2]))
    assert len(state.measurements) == 1 and tools.pending_lps == []
    r = state.measurements[0]
    assert isinstance(r, Ruler) and r.length_mm == pytest.approx(24.0, abs=1.6)  # a pixel is 1.5 mm
    # The clicks lie in the slice shown (the voxel plane nearest the crosshair).
    s_mm = view.slice_position_mm
    assert r.a_lps[2] == pytest.approx(s_mm) and r.b_lps[2] == pytest.approx(s_mm)
    assert abs(s_mm - c[2]) <= 0.5 * small_phantom_slice_mm(state)
    assert state.crosshair_lps == c, "measuring must not move the crosshair"
    qtbot.mouseClick(panel.tool_buttons["angle"], Qt.MouseButton.LeftButton)
    for p in ((c[0] + 15, c[1], c[2]), c, (c[0], c[1] - 15, c[2])):
        click(qtbot, view, p)
    a = state.measurements[1]
    assert isinstance(a, Angle) and a.angle_deg == pytest.approx(90.0, abs=6.0)
    assert panel.list.count() == 2 and "Angle" in panel.list.item(1).text()


def test_angle_with_its_vertex_picked_twice_is_refused(setup, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, tools, view, _panel = setup
    c = state.crosshair_lps
    messages: list[str] = []
    tools.message.connect(messages.append)
    tools.set_tool("angle")
    for p in (c, c, (c[0] + 10, c[1], c[2])):
        click(qtbot, view, p)
    assert state.measurements == ()
    assert messages and "zero length" in messages[-1]


def test_delete_one_keeps_the_others(setup, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, _tools, _view, panel = setup
    ms = (
        Ruler((0, 0, 0), (10, 0, 0)),
        Ruler((0, 0, 0), (0, 20, 0)),
        Angle((1, 0, 0), (0, 0, 0), (0, 1, 0)),
    )
    state.measurements = ms
    assert panel.list.count() == 3
    panel.list.setCurrentRow(1)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert state.measurements == (ms[0], ms[2])
    assert [panel.list.item(i).text() for i in range(2)] == ["1. Ruler 10.0 mm", "2. Angle 90.0\N{DEGREE SIGN}"]
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    assert state.measurements == () and not panel.delete_button.isEnabled()


def test_slice_draws_measurements_projected_and_entry_points_near_the_slice(setup, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, _tools, view, _panel = setup
    c = np.asarray(state.crosshair_lps)
    near = EntryPoint(1, tuple(c + (5.0, 0.0, 0.5 * MARKER_DEPTH_MM)), 3.0, None, 2.0)
    far = EntryPoint(2, tuple(c + (0.0, 5.0, 4.0 * MARKER_DEPTH_MM)), 9.0, None, 2.0)
    lesion = Lesion.sphere(tuple(c), 20.0)
    branch = Branch(1, 10.0, 2.0, np.stack([c, c + (10.0, 0.0, 0.0)]), True)
    state.lesion = lesion
    state.lesion_analysis = LesionAnalysis(lesion, (near, far), (branch,), 0.1, 1, "")
    # One ruler in the slice, one far above it (drawn projected, dashed).
    state.measurements = (Ruler(tuple(c), tuple(c + (10, 0, 0))), Ruler(tuple(c + (0, 0, 30)), tuple(c + (0, 8, 40))))
    # grab() paints the widget whether or not the X server has it exposed just now
    # (repaint() paints nothing while it is not: a full-suite run once saw no paint)
    view.grab()
    assert view.drawn_entry_numbers == [1]
    assert view.drawn_measurements == 2
    # The lesion circle, its radius in pixels as the sphere's in mm.
    img = view.grab().toImage()
    centre = view.lps_to_widget(tuple(c))
    r_px = 20.0 * view._px_per_mm()
    x = int(round(centre.x() + r_px))
    ring = [img.pixelColor(xx, int(centre.y())).getRgb()[:3] for xx in range(x - 2, x + 3)]
    assert any(g > 180 and b > 200 and r < 120 for r, g, b in ring), ring


def test_lesion_click_sphere_drag_box_and_bad_radius(setup, qtbot) -> None:  # type: ignore[no-untyped-def]
    state, tools, view, _panel = setup
    c = state.crosshair_lps
    tools.set_tool("lesion")
    tools.radius_mm = 12.0
    click(qtbot, view, c)
    assert state.lesion is not None and state.lesion.radius_mm == 12.0
    assert np.allclose(state.lesion.center_lps, c, atol=1.6)
    a = view.lps_to_widget((c[0] - 9, c[1] - 6, c[2])).toPoint()
    b = view.lps_to_widget((c[0] + 9, c[1] + 6, c[2])).toPoint()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(view, pos=b)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
    box = state.lesion.box_lps
    assert box is not None
    assert box[1] - box[0] == pytest.approx(18.0, abs=3.2) and box[3] - box[2] == pytest.approx(12.0, abs=3.2)
    s_mm = view.slice_position_mm
    assert (box[4], box[5]) == pytest.approx((s_mm - 12.0, s_mm + 12.0))
    kept = state.lesion
    messages: list[str] = []
    tools.message.connect(messages.append)
    tools.radius_mm = 0.0
    click(qtbot, view, c)
    assert state.lesion == kept and "radius" in messages[-1]
