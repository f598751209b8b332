"""Vessel-bone CTA viewer: bone and contrast-filled vessels from one CT angiogram,
separated by threshold transfer functions and rendered together in 3D."""

__version__ = "0.1.0"
