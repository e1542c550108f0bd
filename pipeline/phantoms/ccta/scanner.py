"""The scanner's part: point-spread blur with noise correlated by it, optional motion blur, HU quantisation."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["psf_sigma_vox", "acquire", "motion_blur", "quantise", "FWHM_PER_SIGMA", "SLICE_PROFILE_RATIO"]

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: slice sensitivity profile width relative to the in-plane PSF
SLICE_PROFILE_RATIO = 1.25
_TRUNCATE = 3.0


def psf_sigma_vox(fwhm_mm: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """Gaussian standard deviation of the PSF in voxels along each axis."""
    sigma_mm = np.array([1.0, 1.0, SLICE_PROFILE_RATIO]) * fwhm_mm / FWHM_PER_SIGMA
    return sigma_mm / np.asarray(spacing)


def _kernel_l2(sigma: float) -> float:
    """L2 norm of the normalised Gaussian kernel ``ndimage.gaussian_filter`` uses for ``sigma``."""
    radius = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    w /= w.sum()
    return float(np.sqrt((w**2).sum()))


def acquire(image: np.ndarray, sigma_vox: np.ndarray, noise_hu: float, rng: np.random.Generator) -> np.ndarray:
    """Blur ``image`` by the PSF with white noise added first, so the noise comes out correlated like CT noise.

    The white noise is scaled so that the blurred noise has standard deviation ``noise_hu`` (the kernel's L2 norm
    is exact for a separable Gaussian). ``image`` is consumed (used as work space).

    Returns:
        the blurred, noisy image (float32).
    """
    gain = noise_hu / float(np.prod([_kernel_l2(s) for s in sigma_vox]))
    noisy = rng.standard_normal(image.shape, dtype=np.float32)
    noisy *= np.float32(gain)
    noisy += image
    del image
    return ndimage.gaussian_filter(noisy, sigma_vox, truncate=_TRUNCATE)


def motion_blur(image: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int, sigma_vox: float) -> None:
    """Blur the box ``[lo, hi)`` along ``axis`` (in place), faded in and out with a cosine window so no edge shows."""
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    view = image[box]
    blurred = ndimage.gaussian_filter1d(view, sigma_vox, axis=axis, truncate=_TRUNCATE)
    weight = np.ones(view.shape, np.float32)
    for a, n in enumerate(view.shape):
        w = np.sin(np.pi * (np.arange(n) + 0.5) / n).astype(np.float32) ** 2
        shape = [1, 1, 1]
        shape[a] = n
        weight *= w.reshape(shape)
    view += weight * (blurred - view)


def quantise(image: np.ndarray) -> np.ndarray:
    """Round to integer HU in the range of a CT image (int16)."""
    np.rint(image, out=image)
    np.clip(image, -1024, 3071, out=image)
    return image.astype(np.int16)
