"""Inference on full-size volumes: sliding windows that skip what cannot be vessel lumen."""

from pipeline.inference.candidates import CandidateRegion, hu_to_intensity
from pipeline.inference.heart import HeartLocator
from pipeline.inference.sliding_window import PRECISIONS, CandidateSlidingWindowInferer, WindowStats

__all__ = ["PRECISIONS", "CandidateRegion", "CandidateSlidingWindowInferer", "HeartLocator", "WindowStats", "hu_to_intensity"]
