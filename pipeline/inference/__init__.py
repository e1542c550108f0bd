"""Inference on full-size volumes: sliding windows that skip what cannot be vessel lumen."""

from pipeline.inference.candidates import CandidateRegion, hu_to_intensity
from pipeline.inference.sliding_window import CandidateSlidingWindowInferer, WindowStats

__all__ = ["CandidateRegion", "CandidateSlidingWindowInferer", "WindowStats", "hu_to_intensity"]
