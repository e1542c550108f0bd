"""Soft morphology on shifted slices: the erosion, dilation and soft skeleton of :mod:`monai.losses.cldice`, fast.

MONAI builds the soft skeleton of clDice from ``max_pool3d`` calls (a 3x3x3 pool per dilation, three 1-D pools per
erosion) and lets autograd record every pool. Here the same operators are computed on shifted slices of the tensor,
in place, and the skeleton has its own autograd function:

* erosion (minimum over the voxel and its face neighbours) and dilation (maximum over the 3x3x3 box, done as three
  1-D passes) compare each voxel with its neighbours through ``narrow`` views. A neighbour outside the image is
  simply not compared, which is exactly the implicit ``-inf`` padding of ``max_pool``.
* for the prediction, each value travels with the flat index of the voxel it came from, packed into one ``int64``
  key (order-preserving bits of the float in the high half, index in the low half), so one ``minimum``/``maximum``
  moves both. The backward pass then needs no chain of pool backwards: every eroded or opened value *is* one input
  voxel, so its gradient is added straight to that voxel (``scatter_add_``).
* those keys (and the binary label) live on a flat grid with a one-voxel border (:class:`_PaddedGrid`): a neighbour
  is then a fixed offset, each pass is one contiguous operation over the whole batch, and a small pool of buffers is
  reused (on CPU a fresh multi-MB tensor costs more in page faults than the pass that fills it).
* the erosion computed for one iteration's opening is the next iteration's image, so it is computed once (MONAI
  computes it twice).
* a binary label's skeleton (no gradient needed) is computed on ``uint8``.

Values equal MONAI's for float32 input (the same float operations in the same order; other float types are computed
in float32); first-order gradients with respect to the input equal MONAI's except where two
different voxels hold exactly the same value and both could be the minimum or maximum, where any choice is a valid
subgradient and MONAI itself splits the gradient arbitrarily.
"""

from __future__ import annotations

import torch

from pipeline.errors import InputError, SettingsError

__all__ = ["soft_erode", "soft_dilate", "soft_skeleton"]

_ABS31 = 0x7FFFFFFF
_LOW32 = 0xFFFFFFFF


def _neighbour_reduce_(acc: torch.Tensor, src: torch.Tensor, dim: int, op, step: int = 1) -> None:
    """``acc[v] = op(acc[v], src[v - step], src[v + step])`` along ``dim`` where those exist, in place."""
    n = src.shape[dim]
    if n <= step:
        return
    upper, lower = acc.narrow(dim, step, n - step), acc.narrow(dim, 0, n - step)
    op(upper, src.narrow(dim, 0, n - step), out=upper)
    op(lower, src.narrow(dim, step, n - step), out=lower)


def _window3_(out: torch.Tensor, src: torch.Tensor, dim: int, op, step: int = 1) -> torch.Tensor:
    """``out[v] = op(src[v - step], src[v], src[v + step])`` along ``dim`` (existing neighbours only), no copy."""
    n = src.shape[dim]
    if n <= step:
        return out.copy_(src)
    out.narrow(dim, 0, step).copy_(src.narrow(dim, 0, step))
    op(src.narrow(dim, step, n - step), src.narrow(dim, 0, n - step), out=out.narrow(dim, step, n - step))
    lower = out.narrow(dim, 0, n - step)
    op(lower, src.narrow(dim, step, n - step), out=lower)
    return out


def soft_erode(img: torch.Tensor) -> torch.Tensor:
    """Minimum over each voxel and its face neighbours (2 per spatial axis), as ``monai.losses.cldice.soft_erode``.

    Args:
        img: ``B, C, *spatial`` tensor of any ordered dtype (float, integer keys, ``uint8``).

    Returns:
        a new tensor of the same shape and dtype (no autograd history is recorded through the in-place steps).
    """
    out = _window3_(torch.empty_like(img), img, 2, torch.minimum)
    for dim in range(3, img.ndim):
        _neighbour_reduce_(out, img, dim, torch.minimum)
    return out


def soft_dilate(img: torch.Tensor) -> torch.Tensor:
    """Maximum over the 3x3(x3) box around each voxel, as ``monai.losses.cldice.soft_dilate``: one 1-D pass per
    axis, ping-ponging between two buffers.

    Args:
        img: ``B, C, *spatial`` tensor of any ordered dtype.

    Returns:
        a new tensor of the same shape and dtype.
    """
    src, spare = img, None
    for dim in range(2, img.ndim):
        out = _window3_(spare if spare is not None else torch.empty_like(img), src, dim, torch.maximum)
        spare, src = (None if src is img else src), out
    return src


class _PaddedGrid:
    """Volumes with a one-voxel border, flattened: the neighbour along an axis is a fixed offset in the flat array, so
    each min/max is one contiguous operation over the whole batch. Before an erosion the border must hold the largest
    key and before a dilation the smallest (:meth:`set_border_`); interior results are then exact."""

    def __init__(self, shape: torch.Size) -> None:
        self._spare: list[torch.Tensor] = []
        self.shape = (shape[0] * shape[1], *(s + 2 for s in shape[2:]))
        self.offsets = [int(torch.tensor(self.shape[d + 1 :]).prod()) for d in range(1, len(self.shape))]
        self.inside = (slice(None),) + tuple(slice(1, -1) for _ in shape[2:])

    def embed(self, values: torch.Tensor, border: int) -> torch.Tensor:
        out = torch.full(self.shape, border, dtype=values.dtype, device=values.device)
        out[self.inside] = values.reshape(self.shape[0], *values.shape[2:])
        return out

    def keys(self, prob: torch.Tensor) -> torch.Tensor:
        """``int64`` keys ordered like the float32 values of ``prob`` (bits made order-preserving in the high half,
        flat voxel index in the low half, so ties go to the lower index), the largest key on the border."""
        bits = prob.view(torch.int32)
        ordered = (bits >> 31).bitwise_and_(_ABS31).bitwise_xor_(bits)
        keys = torch.full(self.shape, _KEY_MAX, dtype=torch.int64, device=prob.device)
        inside = keys[self.inside]
        inside.copy_(ordered.view(inside.shape))
        inside <<= 32
        inside |= torch.arange(prob.numel(), dtype=torch.int64, device=prob.device).view(inside.shape)
        return keys

    def sources(self, keys: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Flat ``int64`` index of the voxel each interior key came from (the low 32 bits; ``int64`` because
        ``scatter_add_``, the backward's scatter, is several times faster than ``index_add_`` and takes no other)."""
        return keys[self.inside].bitwise_and(_LOW32).reshape(shape)

    @staticmethod
    def set_border_(t: torch.Tensor, value: int) -> torch.Tensor:
        for d in range(1, t.ndim):
            t.narrow(d, 0, 1).fill_(value)
            t.narrow(d, t.shape[d] - 1, 1).fill_(value)
        return t

    def release(self, *buffers: torch.Tensor) -> None:
        """Hand buffers back for reuse: a fresh multi-MB tensor costs more in page faults than the min/max itself."""
        self._spare.extend(buffers)

    def _buffer(self, like: torch.Tensor) -> torch.Tensor:
        return self._spare.pop() if self._spare else torch.empty_like(like)

    def erode(self, x: torch.Tensor) -> torch.Tensor:
        src, out = x.view(-1), self._buffer(x)
        _window3_(out.view(-1), src, 0, torch.minimum, self.offsets[0])
        for step in self.offsets[1:]:
            _neighbour_reduce_(out.view(-1), src, 0, torch.minimum, step)
        return out

    def dilate(self, x: torch.Tensor) -> torch.Tensor:
        src = x
        for step in self.offsets:
            out = _window3_(self._buffer(x).view(-1), src.view(-1), 0, torch.maximum, step).view(x.shape)
            if src is not x:
                self.release(src)
            src = out
        return src

    def dilated_sources(self, eroded: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Sources of the dilation of ``eroded`` (its border is set to the smallest key first)."""
        dilated = self.dilate(self.set_border_(eroded, _KEY_MIN))
        sources = self.sources(dilated, shape)
        self.release(dilated)
        return sources


_KEY_MAX = torch.iinfo(torch.int64).max
_KEY_MIN = torch.iinfo(torch.int64).min


def _gather(flat: torch.Tensor, source: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Values of ``flat`` at the indices ``source``, shaped like ``source`` (written to ``out`` if given)."""
    if out is None:
        return flat.index_select(0, source.reshape(-1)).view(source.shape)
    return torch.index_select(flat, 0, source.reshape(-1), out=out.view(-1)).view(source.shape)


def _skeleton_values(img: torch.Tensor, iter_: int) -> torch.Tensor:
    """The soft skeleton without gradient, for any dtype whose ``-`` and ``*`` behave like MONAI's floats."""
    eroded = soft_erode(img)
    skel = torch.relu(img - soft_dilate(eroded))
    for _ in range(iter_):
        img, eroded = eroded, soft_erode(eroded)
        delta = torch.relu(img - soft_dilate(eroded))
        skel = skel + torch.relu(delta - skel * delta)
    return skel


def _binary_skeleton(label: torch.Tensor, iter_: int) -> torch.Tensor:
    """The soft skeleton of a {0, 1} image on ``uint8``: there ``relu(img - open)`` is ``img > open`` and
    ``skel + relu(delta - skel * delta)`` is ``skel | delta``; returned in ``label``'s dtype."""
    grid = _PaddedGrid(label.shape)
    eroded = grid.embed((label != 0).to(torch.uint8), 1)
    skel = torch.zeros(grid.shape, dtype=torch.bool, device=label.device)[grid.inside]
    for _ in range(iter_ + 1):
        img, eroded = eroded, grid.erode(grid.set_border_(eroded, 1))
        opened = grid.dilate(grid.set_border_(eroded, 0))
        skel |= img[grid.inside] > opened[grid.inside]
        grid.release(img, opened)
    return skel.reshape(label.shape).to(label.dtype)


class _SoftSkeleton(torch.autograd.Function):
    """Soft skeleton of probabilities with a gradient routed through the source index of every min/max."""

    @staticmethod
    def forward(ctx, prob: torch.Tensor, iter_: int) -> torch.Tensor:  # type: ignore[override]
        flat, grid = prob.reshape(-1), _PaddedGrid(prob.shape)
        keys = grid.keys(prob)
        eroded = grid.erode(keys)
        grid.release(keys)
        opened = grid.dilated_sources(eroded, prob.shape)
        # MONAI's float operations in MONAI's order, in place where the operand is not kept
        skel = _gather(flat, opened)
        torch.sub(prob, skel, out=skel).relu_()
        saved: list[torch.Tensor] = [opened, skel]
        for _ in range(iter_):
            img_keys, eroded = eroded, grid.erode(grid.set_border_(eroded, _KEY_MAX))
            img_src = grid.sources(img_keys, prob.shape)
            grid.release(img_keys)
            opened = grid.dilated_sources(eroded, prob.shape)
            delta, step = _gather(flat, img_src), _gather(flat, opened)
            delta.sub_(step).relu_()
            torch.sub(delta, torch.mul(skel, delta, out=step), out=step)
            saved += [img_src, opened, skel, delta, step > 0]
            skel = step.relu_().add_(skel)
        ctx.iter_ = iter_
        ctx.save_for_backward(*saved)
        return skel

    @staticmethod
    def backward(ctx, grad_skel: torch.Tensor):  # type: ignore[override]
        if torch.is_grad_enabled():  # create_graph=True: a gradient of this gradient was asked for
            raise RuntimeError(
                "the fast soft skeleton (clDice) has first-order gradients only; for second-order gradients (e.g. a "
                "gradient penalty) use monai.losses.SoftclDiceLoss"
            )
        saved = ctx.saved_tensors
        grad_prob = torch.zeros(grad_skel.numel(), dtype=grad_skel.dtype, device=grad_skel.device)
        grad, scratch = grad_skel, None
        for i in range(ctx.iter_, 0, -1):
            img_src, opened, skel_before, delta, step_on = saved[5 * i - 3 : 5 * i + 2]
            # skel = skel_before + relu(step), step = delta - skel_before * delta; step > 0 implies delta > 0
            grad_step = torch.mul(grad, step_on, out=scratch)
            if grad is grad_skel:
                grad = torch.addcmul(grad, grad_step, delta, value=-1)
            else:
                grad.addcmul_(grad_step, delta, value=-1)
            grad_delta = grad_step.addcmul_(grad_step, skel_before, value=-1).reshape(-1)
            grad_prob.scatter_add_(0, img_src.reshape(-1), grad_delta)
            grad_prob.scatter_add_(0, opened.reshape(-1), grad_delta.neg_())
            scratch = grad_step
        grad_first = torch.mul(grad, saved[1] > 0, out=scratch).reshape(-1)
        grad_prob += grad_first
        grad_prob.scatter_add_(0, saved[0].reshape(-1), grad_first.neg_())
        return grad_prob.view(grad_skel.shape), None


def soft_skeleton(img: torch.Tensor, iter_: int = 3, binary: bool | None = None) -> torch.Tensor:
    """Soft skeleton of Shit et al. (2021), equal to ``monai.losses.cldice.soft_skel(img, iter_)``.

    With a gradient (``img.requires_grad``) the skeleton is computed in float32 by :class:`_SoftSkeleton`;
    without one, a {0, 1} image takes the ``uint8`` path and any other image the plain float path.

    Args:
        img: ``B, C, *spatial`` probabilities (2 or 3 spatial dimensions).
        iter_: erosion iterations (non-negative); thicker structures need more.
        binary: without gradient, whether ``img`` is known to hold only 0 and 1 (``None``: look).

    Returns:
        the soft skeleton, same shape and dtype as ``img``.
    """
    if iter_ < 0:
        raise SettingsError(f"iter_ must be a non-negative integer, got {iter_}.")
    if img.requires_grad and torch.is_grad_enabled():
        if img.numel() >= 2**31:
            raise InputError(f"soft_skeleton indexes voxels with 31 bits; got {img.numel()} voxels, split the batch.")
        return _SoftSkeleton.apply(img.float().contiguous(), iter_).to(img.dtype)
    with torch.no_grad():
        if binary is None:
            binary = bool(((img == 0) | (img == 1)).all())
        if binary:
            return _binary_skeleton(img, iter_)
        return _skeleton_values(img, iter_)
