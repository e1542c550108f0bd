"""Settings of the ``ccta`` phantoms: the ranges each case draws its anatomy, contrast and scanner from.

Every range is ``(low, high)``; a case draws one value uniformly inside it (``numpy.random.default_rng``), so a
dataset has variety while each case stays inside published figures (see ``docs/data.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from pipeline.errors import SettingsError

__all__ = ["CCTAConfig", "SPACING_RANGE_MM", "MIN_CROP"]

#: voxel sizes accepted for a fixed ``spacing`` (mm): coronary CT reconstructions lie well inside
SPACING_RANGE_MM = (0.1, 2.0)
#: smallest crop edge (voxels)
MIN_CROP = 16


@dataclass(frozen=True)
class CCTAConfig:
    """Parameters of a synthetic coronary CT angiogram (kind ``ccta``).

    Args:
        matrix: in-plane size of the full reconstruction (voxels), 512 as on clinical scanners.
        slices: allowed number of slices; a case takes ``z_extent_mm / slice thickness`` clipped to this range.
        z_extent_mm: cranio-caudal coverage (carina to below the apex).
        pixel_mm: in-plane pixel size (field of view / matrix).
        slice_mm: slice increment.
        shape: a fixed full grid shape instead of ``matrix`` x ``slices``.
        spacing: a fixed voxel size instead of ``pixel_mm`` / ``slice_mm``.
        crop: shape of the window rendered around the heart (small mode for tests and the demo); ``None`` renders the
            full grid.
        crop_at: where the crop goes: ``"heart"`` (a random place on the coronary tree, pulled towards a blood
            pool) or ``"root"`` (centred on the aortic root, where both ostia are).
        heart_long_mm: semi-axis of the epicardial ellipsoid along the base-apex axis.
        heart_short_mm: the two other semi-axes.
        lumen_hu: contrast in the aortic root, the left heart and the proximal coronary lumen.
        right_heart_hu: contrast in the right heart and pulmonary artery (depends on the timing of the bolus).
        vein_ratio: cardiac-vein contrast as a fraction of ``lumen_hu`` (arterial phase: veins dimmer).
        myocardium_hu, epicardial_fat_hu, fat_hu, soft_tissue_hu, lung_hu: tissue attenuations.
        bone_hu: cortical bone; the cancellous core is 35-45 % of it.
        plaque_hu: non-calcified plaque.
        calcium_hu: calcified plaque.
        lesions: (fewest, most) stenoses per case.
        occlusion_probability: chance that a case has one total occlusion.
        psf_fwhm_mm: full width at half maximum of the in-plane point-spread function (the slice profile is 1.25x).
        noise_hu: standard deviation of the (PSF-correlated) image noise in a uniform region.
        motion_probability: chance that one segment of the right coronary artery is blurred by motion.
    """

    matrix: int = 512
    slices: tuple[int, int] = (224, 288)
    z_extent_mm: tuple[float, float] = (125.0, 150.0)
    pixel_mm: tuple[float, float] = (0.35, 0.45)
    slice_mm: tuple[float, float] = (0.5, 0.625)
    shape: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    crop: tuple[int, int, int] | None = None
    crop_at: str = "heart"
    heart_long_mm: tuple[float, float] = (54.0, 64.0)
    heart_short_mm: tuple[float, float] = (40.0, 48.0)
    lumen_hu: tuple[float, float] = (300.0, 500.0)
    right_heart_hu: tuple[float, float] = (120.0, 320.0)
    vein_ratio: tuple[float, float] = (0.4, 0.8)
    myocardium_hu: tuple[float, float] = (80.0, 110.0)
    epicardial_fat_hu: tuple[float, float] = (-95.0, -65.0)
    fat_hu: tuple[float, float] = (-110.0, -85.0)
    soft_tissue_hu: tuple[float, float] = (40.0, 60.0)
    lung_hu: tuple[float, float] = (-870.0, -820.0)
    bone_hu: tuple[float, float] = (700.0, 1200.0)
    plaque_hu: tuple[float, float] = (50.0, 150.0)
    calcium_hu: tuple[float, float] = (700.0, 1200.0)
    lesions: tuple[int, int] = (0, 3)
    occlusion_probability: float = 0.15
    psf_fwhm_mm: tuple[float, float] = (0.6, 0.9)
    noise_hu: tuple[float, float] = (15.0, 45.0)
    motion_probability: float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("shape", "spacing", "crop") and isinstance(value, tuple):
                if len(value) != 2 or not value[0] <= value[1]:
                    raise SettingsError(f"{f.name} must be a range (low, high) with low <= high, got {value}.")
        if self.spacing is not None:
            lo, hi = SPACING_RANGE_MM
            if len(self.spacing) != 3 or not all(lo <= s <= hi for s in self.spacing):
                raise SettingsError(f"spacing must be three sizes in [{lo}, {hi}] mm, got {tuple(self.spacing)}.")
        for name, (lo, hi) in (("pixel_mm", SPACING_RANGE_MM), ("slice_mm", SPACING_RANGE_MM)):
            value = getattr(self, name)
            if not lo <= value[0] <= value[1] <= hi:
                raise SettingsError(f"{name} must lie in [{lo}, {hi}] mm, got {value}.")
        if self.shape is not None and (len(self.shape) != 3 or any(int(s) < MIN_CROP for s in self.shape)):
            raise SettingsError(f"shape must be three sizes of at least {MIN_CROP} voxels, got {tuple(self.shape)}.")
        if not 64 <= self.matrix <= 1024:
            raise SettingsError(f"matrix must be in [64, 1024] voxels, got {self.matrix}.")
        if not 1 <= self.slices[0]:
            raise SettingsError(f"slices must be a range of positive counts, got {self.slices}.")
        if self.crop is not None and (len(self.crop) != 3 or any(int(c) < MIN_CROP for c in self.crop)):
            raise SettingsError(f"crop must be three sizes of at least {MIN_CROP} voxels, got {tuple(self.crop)}.")
        if self.crop_at not in ("heart", "root"):
            raise SettingsError(f"crop_at must be 'heart' or 'root', got {self.crop_at!r}.")
        if self.heart_short_mm[1] > self.heart_long_mm[1]:
            raise SettingsError(
                f"heart_short_mm must not exceed heart_long_mm, got {self.heart_short_mm} and {self.heart_long_mm}."
            )
        if not 10.0 <= self.heart_short_mm[0]:
            raise SettingsError(f"heart_short_mm must be at least 10 mm, got {self.heart_short_mm}.")
        if self.noise_hu[0] < 0 or self.psf_fwhm_mm[0] <= 0:
            raise SettingsError(
                f"noise_hu must be >= 0 and psf_fwhm_mm > 0, got {self.noise_hu} and {self.psf_fwhm_mm}."
            )
        if self.lesions[0] < 0:
            raise SettingsError(f"lesions must be a range of counts >= 0, got {self.lesions}.")
        for name in ("occlusion_probability", "motion_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SettingsError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        self._check_heart_fits()

    def _check_heart_fits(self) -> None:
        """The largest heart allowed, with its fat and the aortic root, must fit in the smallest field of view.

        In-plane the heart needs ``2 * heart_long_mm + 20`` mm; along z, where its long axis is tilted about 55
        degrees, ``1.6 * heart_long_mm + 20`` mm.
        """
        in_plane = min(self.shape[:2]) if self.shape else self.matrix
        in_plane_mm = in_plane * (min(self.spacing[:2]) if self.spacing else self.pixel_mm[0])
        if self.shape is not None:
            z_mm = self.shape[2] * (self.spacing[2] if self.spacing else self.slice_mm[0])
        elif self.spacing is not None:
            z_mm = min(max(self.z_extent_mm[0], self.slices[0] * self.spacing[2]), self.slices[1] * self.spacing[2])
        else:
            z_mm = min(max(self.z_extent_mm[0], self.slices[0] * self.slice_mm[0]), self.slices[1] * self.slice_mm[0])
        long_mm = self.heart_long_mm[1]
        for axis, fov, need, factor in (("in-plane", in_plane_mm, 2.0 * long_mm + 20.0, 2.0), ("z", z_mm, 1.6 * long_mm + 20.0, 1.6)):
            if need > fov:
                raise SettingsError(
                    f"heart_long_mm={self.heart_long_mm} does not fit: the heart needs {need:.0f} mm {axis} but the "
                    f"volume gives {fov:.0f} mm; valid: heart_long_mm <= {(fov - 20.0) / factor:.0f} mm for this grid "
                    "(or a larger shape/spacing)."
                )
