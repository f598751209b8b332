"""The VTK modules ``viewer.render`` uses, imported once with the right SMP backend.

The vtk wheel's SMP backend defaults to Sequential; with ``STDThread`` VTK's
multi-threaded filters use every core (measured 1.7x faster FlyingEdges on 2 cores,
see DESIGN.md). The environment variable is read when vtkCommonCore loads, so it is set
here before the first ``vtkmodules`` import; if VTK was already imported by someone
else, the backend is switched explicitly.
"""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")
# With no display (CLI, CI, a server), go straight to EGL: VTK's runtime window
# selection otherwise tries X first and logs "bad X server connection" before falling
# back to EGL, which reads like an error to someone running `vessel-viewer render`.
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

from vtkmodules.vtkCommonCore import vtkSMPTools  # noqa: E402

if vtkSMPTools.GetBackend() != os.environ["VTK_SMP_BACKEND_IN_USE"]:
    vtkSMPTools.SetBackend(os.environ["VTK_SMP_BACKEND_IN_USE"])

# Registers the OpenGL2 implementations of the rendering factories (render window,
# GPU volume mapper, ...); without these imports vtkRenderWindow() is abstract.
import vtkmodules.vtkRenderingFreeType  # noqa: E402,F401
import vtkmodules.vtkRenderingOpenGL2  # noqa: E402,F401
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: E402,F401
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy  # noqa: E402
from vtkmodules.vtkCommonCore import vtkCommand  # noqa: E402
from vtkmodules.vtkCommonDataModel import (  # noqa: E402
    vtkImageData,
    vtkPiecewiseFunction,  # noqa: E402
    vtkPlane,
    vtkPlaneCollection,
)
from vtkmodules.vtkCommonMath import vtkMatrix4x4  # noqa: E402
from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor  # noqa: E402
from vtkmodules.vtkRenderingCore import (  # noqa: E402
    vtkActor,
    vtkColorTransferFunction,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkRenderWindow,
    vtkVolume,
    vtkVolumeProperty,
    vtkWindowToImageFilter,
)
from vtkmodules.vtkRenderingVolume import (  # noqa: E402
    vtkFixedPointVolumeRayCastMapper,
    vtkGPUVolumeRayCastMapper,
)

__all__ = [
    "vtkActor",
    "vtkPolyDataMapper",
    "numpy_to_vtk",
    "vtk_to_numpy",
    "vtkAnnotatedCubeActor",
    "vtkColorTransferFunction",
    "vtkCommand",
    "vtkFixedPointVolumeRayCastMapper",
    "vtkGPUVolumeRayCastMapper",
    "vtkImageData",
    "vtkMatrix4x4",
    "vtkPiecewiseFunction",
    "vtkPlane",
    "vtkPlaneCollection",
    "vtkRenderWindow",
    "vtkRenderer",
    "vtkSMPTools",
    "vtkVolume",
    "vtkVolumeProperty",
    "vtkWindowToImageFilter",
]
