"""Figures, report sheets and movies built from offscreen renders (no Qt)."""
