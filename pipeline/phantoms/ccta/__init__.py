"""Realistic synthetic coronary CT angiograms (phantom kind ``ccta``): chest, heart, coronary trees, confounders."""

from pipeline.phantoms.ccta.case import CCTACase, draw_ccta_case
from pipeline.phantoms.ccta.config import CCTAConfig
from pipeline.phantoms.ccta.coronaries import SEGMENTS
from pipeline.phantoms.ccta.phantom import CCTAPhantom, make_ccta_phantom
from pipeline.phantoms.ccta.tissues import Tissue
from pipeline.phantoms.ccta.vessels import Vessel

__all__ = ["CCTACase", "CCTAConfig", "CCTAPhantom", "draw_ccta_case", "SEGMENTS", "Tissue", "Vessel", "make_ccta_phantom"]
