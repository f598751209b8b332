"""Scene work split into prepare (any thread) and apply (issue 9), without a window:
``viewer.render.scene_data.prepare_scene`` on a worker thread gives what the synchronous
setters give; ``pending_work`` says which edits need it; stale results are refused."""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from render_helpers import Leg
from vtkmodules.util.numpy_support import vtk_to_numpy

from viewer.core.errors import LoadCancelled
from viewer.core.extraction import ClassMasks
from viewer.core.lesion import Lesion
from viewer.core.presets import default_preset
from viewer.core.transfer import TransferFunction
from viewer.export.lesion_report import scene_class_masks
from viewer.render.scene import Scene
from viewer.render.scene_data import PreparedScene, pending_work, prepare_scene


@pytest.fixture(scope="module")
def tf() -> TransferFunction:
    return default_preset().with_changes(separated=True)


@pytest.fixture(scope="module")
def masks(leg: Leg, tf: TransferFunction) -> ClassMasks:
    return scene_class_masks(leg.volume, tf)


@pytest.fixture(scope="module")
def lesion(leg: Leg) -> Lesion:
    lo, hi = leg.volume.bounds_lps()
    return Lesion.sphere(tuple((lo + hi) / 2.0), 15.0)


def _scene(leg: Leg, tf: TransferFunction, masks: ClassMasks) -> Scene:
    s = Scene(offscreen=True)
    s.set_volume(leg.volume)
    s.set_class_masks(masks)
    s.set_transfer_function(tf)
    return s


@pytest.fixture()
def pair(leg: Leg, tf: TransferFunction, masks: ClassMasks) -> Iterator[tuple[Scene, Scene]]:
    a, b = _scene(leg, tf, masks), _scene(leg, tf, masks)
    yield a, b
    a.close()
    b.close()


def _distances(s: Scene) -> np.ndarray:
    mesh = s._vessel_mesh.mesh
    assert mesh is not None
    return np.asarray(vtk_to_numpy(mesh.GetPointData().GetScalars()))


def test_worker_thread_preparation_equals_the_synchronous_setters(pair: tuple[Scene, Scene], lesion: Lesion) -> None:
    sync, threaded = pair
    sync.set_lesion(lesion)
    sync.set_keyhole(True)
    sync.set_vessel_colouring("bone", 20.0)
    inputs = threaded.scene_inputs(lesion=lesion, keyhole=True, colouring=("bone", 20.0))
    assert set(pending_work(inputs)) >= {"encode", "vessel_mesh", "distances"}
    with ThreadPoolExecutor(1) as pool:
        prepared = pool.submit(prepare_scene, inputs).result()
    assert threaded.keyhole is False, "preparing changes nothing in the scene"
    assert threaded.apply_prepared(prepared)
    assert threaded.keyhole and threaded.lesion == lesion and threaded.vessel_colouring == ("bone", 20.0)
    assert sync._buffer is not None and threaded._buffer is not None
    np.testing.assert_array_equal(threaded._buffer, sync._buffer)
    np.testing.assert_allclose(_distances(threaded), _distances(sync))
    assert threaded._vessel_mesh.visible and threaded.lesion_overlay.colour_bar == ("mm to bone", 20.0)
    # Now applied: the same request needs no work, and a vessel colour edit is a restyle.
    assert pending_work(threaded.scene_inputs()) == ()
    tf2 = threaded.transfer_function
    recoloured = tf2.with_changes(vessel=replace(tf2.vessel, color=(0.2, 0.9, 0.2)))
    assert pending_work(threaded.scene_inputs(tf=recoloured)) == ()


def test_a_vessel_window_edit_only_restyles_without_distance_colouring(
    pair: tuple[Scene, Scene], tf: TransferFunction
) -> None:
    s, _ = pair
    lo, hi = tf.vessel_window_hu
    assert pending_work(s.scene_inputs(tf=tf.with_changes(vessel_window_hu=(lo + 20, hi)))) == ()
    key = s._buffer_key
    s.set_transfer_function(tf.with_changes(vessel_window_hu=(lo + 20, hi)))
    assert s._buffer_key == key, "no re-encode for a window edit"
    # With distance colouring the window decides which voxels leave the volume: work.
    s.set_vessel_colouring("bone")
    assert "encode" in pending_work(s.scene_inputs(tf=tf))


def test_a_stale_result_is_refused(pair: tuple[Scene, Scene], leg: Leg, lesion: Lesion) -> None:
    s, _ = pair
    s.set_lesion(lesion)
    old = prepare_scene(s.scene_inputs(keyhole=True))
    # The buffer the result was planned against is replaced meanwhile ...
    s.set_vessel_colouring("lesion")
    nothing = PreparedScene(old.inputs, old.masks)  # a result that relies on the old buffer
    assert not s.apply_prepared(nothing)
    assert s.keyhole is False
    # ... or another volume arrives: refused, the scene untouched.
    s.set_volume(replace(leg.volume, hu=leg.volume.hu.copy()))
    buf = s._buffer
    assert not s.apply_prepared(old)
    assert s._buffer is buf and s.keyhole is False


def test_a_cancelled_preparation_stops(pair: tuple[Scene, Scene], lesion: Lesion) -> None:
    s, _ = pair
    calls: list[str] = []

    def progress(fraction: float, message: str = "") -> None:
        calls.append(message)
        raise LoadCancelled("superseded")

    with pytest.raises(LoadCancelled):
        prepare_scene(s.scene_inputs(lesion=lesion, keyhole=True), progress)
    assert calls == ["encoding the volume"]


def test_a_deferred_volume_stays_hidden_until_its_scalars_arrive(leg: Leg, tf: TransferFunction) -> None:
    with Scene(offscreen=True) as s:
        s.set_volume(leg.volume, prepare=False)
        assert s._buffer is None and not s.vtk_volume.GetVisibility()
        inputs = s.scene_inputs(tf=tf.with_changes(separated=False))
        assert pending_work(inputs) == ("encode",)
        assert s.apply_prepared(prepare_scene(inputs))
        assert s._buffer is not None and s.vtk_volume.GetVisibility()
        np.testing.assert_array_equal(s._buffer[1:-1, 1:-1, 1:-1], np.clip(leg.volume.hu, -1024, 3071))


def test_bone_surface_index_matches_the_distance_transform(leg: Leg, masks: ClassMasks) -> None:
    from viewer.core.lesion import distance_to_bone_mm
    from viewer.render.lesion_visual import BoneSurfaceIndex

    v = leg.volume
    field = distance_to_bone_mm(v, masks.bone)
    rng = np.random.default_rng(1)
    nz, ny, nx = v.shape
    kji = np.stack([rng.integers(0, n, 4000) for n in (nz, ny, nx)], axis=1)
    lps = v.lps_of_ijk(kji[:, ::-1].astype(float))
    got = BoneSurfaceIndex(v, masks.bone).distances_mm(lps)
    np.testing.assert_allclose(got, field[kji[:, 0], kji[:, 1], kji[:, 2]], atol=1e-3)
    assert (got == 0).any() and (got > 10).any()
    empty = BoneSurfaceIndex(v, np.zeros(v.shape, bool)).distances_mm(lps[:5])
    assert np.all(empty > 0) and np.all(empty == empty[0])


def test_bone_surface_index_of_a_packed_mask_reads_it_by_slices(
    leg: Leg, masks: ClassMasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real-CT masks' bone is packed: the index reads it a few slices at a time
    (two here, so every halo matters) and looks voxels up in the bits; its distances
    are those of the same mask as a bool array."""
    from viewer.core.packed import PackedMask
    from viewer.render import lesion_visual
    from viewer.render.lesion_visual import BoneSurfaceIndex

    assert isinstance(masks.bone, PackedMask)
    monkeypatch.setattr(lesion_visual, "_BOUNDARY_SLICES", 2)
    v = leg.volume
    rng = np.random.default_rng(2)
    kji = np.stack([rng.integers(0, n, 3000) for n in v.shape], axis=1)
    lps = v.lps_of_ijk(kji[:, ::-1].astype(float))
    packed = BoneSurfaceIndex(v, masks.bone)
    plain = BoneSurfaceIndex(v, np.asarray(masks.bone))
    assert isinstance(packed._bone, PackedMask)
    np.testing.assert_array_equal(packed.distances_mm(lps), plain.distances_mm(lps))
    # the surface voxels read by slabs are those of the whole mask
    from viewer.core.separation import dilate6

    b = np.asarray(masks.bone)
    want = np.nonzero(b & dilate6(~b))
    for got, w in zip(lesion_visual._boundary_voxels(masks.bone), want, strict=True):
        np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("two_layers", [False, True])
def test_the_slab_encode_equals_the_whole_volume_encode(
    leg: Leg, tf: TransferFunction, masks: ClassMasks, two_layers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The buffer is encoded in one slab pass (no full-size temporaries) and, with voxels
    removed, only in the box round the rest; embedded in air it must equal the whole
    buffer and the whole-volume steps: rendered bone, grown shell plus hidden voxels,
    removed air."""
    from viewer.core import separation
    from viewer.core.classmap import RAW_MIN_HU, encode_classes
    from viewer.core.separation import dilate6
    from viewer.render import content
    from viewer.render.scene_data import encode_buffer, render_bone

    # slabs of two slices: every slab's halo matters
    monkeypatch.setattr(separation, "_SLAB_VOXELS", 2 * leg.volume.shape[1] * leg.volume.shape[2])

    m = replace(masks, bone_display_low_hu=150.0 if two_layers else None)
    assert m.calcification is not None and m.calcification.any()
    # a hidden and a removed layer too, so every input of the pass is exercised
    hu = leg.volume.hu
    m = replace(m, hidden=(hu > 100) & (hu < 140) & ~m.bone, removed=np.zeros(hu.shape, bool))
    m.removed[:, :3] = True
    part, _, box = encode_buffer(leg.volume, tf, m, None, False)
    # the removed rows are left out of the buffer (viewer.render.content): outside its
    # box the whole buffer would hold air only
    assert box is not None and box[2] == 3 + 1 - content.MARGIN
    buf = np.full(tuple(n + 2 for n in hu.shape), RAW_MIN_HU, dtype=np.int16)
    buf[box[0] : box[1], box[2] : box[3], box[4] : box[5]] = part
    whole, _, no_box = encode_buffer(leg.volume, tf, m, None, False, cut=False)
    assert no_box is None
    np.testing.assert_array_equal(buf, whole)
    bone = render_bone(hu, m)
    hidden = (dilate6(m.calcification) & ~m.bone) | m.hidden
    want = encode_classes(hu, bone, hidden_mask=hidden, air_mask=m.removed)
    np.testing.assert_array_equal(buf[1:-1, 1:-1, 1:-1], want)
    monkeypatch.undo()
    np.testing.assert_array_equal(render_bone(hu, m), bone)
    # and the growth did something: the rendered bone is larger than the mask
    assert bone.sum() > m.bone.sum()


def test_the_raw_buffer_is_the_clipped_hu_inside_a_frame_of_air(
    leg: Leg, tf: TransferFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without masks the buffer is encoded slab by slab on the pool, into memory that is
    not pre-filled: every voxel of it must be written -- the clipped HU inside, one voxel
    of air (RAW_MIN_HU) on each of the six faces."""
    from viewer.core import separation
    from viewer.core.classmap import RAW_MIN_HU, encode_classes
    from viewer.render.scene_data import encode_buffer

    monkeypatch.setattr(separation, "_SLAB_VOXELS", 2 * leg.volume.shape[1] * leg.volume.shape[2])
    monkeypatch.setattr(separation, "_PARALLEL_VOXELS", 1)
    real = np.empty
    # fresh memory full of a value no encoding writes, so a voxel left unwritten shows
    monkeypatch.setattr(np, "empty", lambda shape, dtype=float: np.full(shape, 12345, dtype=dtype))
    buf, vessel, box = encode_buffer(leg.volume, tf, None, None, False)
    monkeypatch.setattr(np, "empty", real)
    assert vessel is None and box is None
    np.testing.assert_array_equal(buf[1:-1, 1:-1, 1:-1], encode_classes(leg.volume.hu, None))
    frame = np.ones(buf.shape, bool)
    frame[1:-1, 1:-1, 1:-1] = False
    assert (buf[frame] == RAW_MIN_HU).all()


def test_masks_with_a_bone_mask_not_of_bool_keep_their_other_classes(leg: Leg, tf: TransferFunction) -> None:
    """A bone mask handed in as another dtype is made a bool array; the masks' other
    classes and settings (removed, hidden, contrast...) stay as they were."""
    masks = scene_class_masks(leg.volume, tf)
    assert masks.removed is not None
    odd = replace(masks, bone=np.asarray(masks.bone).astype(np.uint8))
    s = Scene(offscreen=True)
    try:
        s.set_volume(leg.volume)
        s.set_class_masks(odd)
        got = s.class_masks
        assert got is not None and got.bone.dtype == np.bool_
        assert np.array_equal(got.bone, masks.bone)
        assert got.removed is masks.removed and got.hidden is masks.hidden and got.vessel is masks.vessel
        assert got.contrast == masks.contrast and got.bone_display_low_hu == masks.bone_display_low_hu
    finally:
        s.close()


def test_a_packed_bone_mask_stays_packed_and_encodes_as_the_array(leg: Leg, tf: TransferFunction) -> None:
    """The real-CT masks hand the bone class on packed (one bit a voxel): the scene keeps
    it packed (no whole bool array made of it), and the render buffer, the rendered bone
    and the vessel count are those of the same mask as a bool array."""
    from viewer.core.packed import PackedMask
    from viewer.core.vessel_count import count_vessels_near
    from viewer.render.scene_data import encode_buffer, render_bone

    masks = scene_class_masks(leg.volume, tf)
    assert isinstance(masks.bone, PackedMask)
    plain = replace(masks, bone=np.asarray(masks.bone))
    hu = leg.volume.hu
    np.testing.assert_array_equal(render_bone(hu, masks), render_bone(hu, plain))
    got, _, box = encode_buffer(leg.volume, tf, masks, None, False)
    want, _, box_w = encode_buffer(leg.volume, tf, plain, None, False)
    assert box == box_w
    np.testing.assert_array_equal(got, want)
    # the count that reads the bone mask (masks without a vessel class of their own)
    centre = tuple(float(v) for v in leg.volume.lps_of_ijk(np.array([s // 2 for s in leg.volume.dims_xyz], float)))
    n_packed = count_vessels_near(leg.volume, centre, 40.0, (170.0, 600.0), replace(masks, vessel=None))
    n_plain = count_vessels_near(leg.volume, centre, 40.0, (170.0, 600.0), replace(plain, vessel=None))
    assert n_packed == n_plain
    s = Scene(offscreen=True)
    try:
        s.set_volume(leg.volume)
        s.set_class_masks(masks)
        got_m = s.class_masks
        assert got_m is not None and got_m.bone is masks.bone and s.bone_mask is masks.bone
    finally:
        s.close()
