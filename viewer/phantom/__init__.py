"""The synthetic lower-leg CT angiography phantom: built-in demo scan and ground truth.

``generate(size="default", seed=0, feet_first=False, progress=None) -> Phantom`` makes a
deterministic CTA of a left lower leg, knee to ankle, with a calcific myonecrosis mass
eroding the middle third of tibia and fibula and collateral arteries winding around the
defect; ``Phantom.labels`` is the exact ground truth (values in ``LEGEND``). See
``docs/phantom.md`` for the anatomy, the HU values and their sources.
"""

from viewer.phantom.generator import LEGEND, LEGEND_HU, SIZES, Phantom, PhantomSize, generate, phantom_grid

__all__ = ["LEGEND", "LEGEND_HU", "SIZES", "Phantom", "PhantomSize", "generate", "phantom_grid"]
