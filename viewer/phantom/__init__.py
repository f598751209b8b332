"""The synthetic lower-leg CT angiography phantom: built-in demo scan and ground truth.

``generate(size="default", seed=0, feet_first=False, progress=None, clean=False) ->
Phantom`` makes a deterministic CTA of both lower legs, knee to ankle, on a CT couch:
the left one with a calcific myonecrosis mass eroding the middle third of tibia and
fibula and collateral arteries winding around the defect, plus the confounders of a
real run-off CTA (the other leg, the couch, calcified plaques, enhancing deep veins,
nutrient arteries, low-density bone ends touching arteries, correlated noise).
``clean=True`` gives the earlier one-leg phantom without them. ``Phantom.labels`` is the
exact ground truth (values in ``LEGEND``). See ``docs/phantom.md`` for the anatomy,
the HU values and their sources.
"""

from viewer.phantom.generator import (
    CLEAN_LEGEND,
    CLEAN_LEGEND_HU,
    CLEAN_SIZES,
    LEGEND,
    LEGEND_HU,
    SIZES,
    Phantom,
    PhantomSize,
    generate,
    legend_hu,
    phantom_grid,
)

__all__ = [
    "CLEAN_LEGEND",
    "CLEAN_LEGEND_HU",
    "CLEAN_SIZES",
    "LEGEND",
    "LEGEND_HU",
    "SIZES",
    "Phantom",
    "PhantomSize",
    "generate",
    "legend_hu",
    "phantom_grid",
]
