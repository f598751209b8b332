"""Pure logic: volumes, transfer functions, extraction, state. No Qt, VTK or pydicom."""

from viewer.core.errors import LoadCancelled, ViewerError
from viewer.core.volume import Volume, axis_aligned_affine

__all__ = ["LoadCancelled", "ViewerError", "Volume", "axis_aligned_affine"]
