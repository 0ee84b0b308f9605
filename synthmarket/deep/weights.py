"""Networks' weights as named numpy arrays, and numpy noise as tensors.

:meth:`synthmarket.generator.Generator.save` writes a model's weights as safetensors of
named numpy arrays; these two functions turn ``state_dict`` s into such arrays and back.
A tensor is named ``"<network>.<tensor>"``, e.g. ``"generator.head.vol.weight"``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def module_arrays(modules: dict[str, nn.Module]) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``modules`` as ``"<module>.<tensor>"`` numpy arrays."""
    out = {}
    for name, module in modules.items():
        for key, tensor in module.state_dict().items():
            out[f"{name}.{key}"] = tensor.detach().to("cpu").numpy().copy()
    return out


def load_module_arrays(modules: dict[str, nn.Module], arrays: dict[str, np.ndarray], *, strict: bool = True) -> None:
    """Load what :func:`module_arrays` wrote; shapes, names and finiteness are checked.

    Raises
    ------
    ValueError
        When a tensor is missing, unexpected, of the wrong shape or not finite.
    """
    claimed = set()
    for name, module in modules.items():
        own = module.state_dict()
        state = {}
        for key, current in own.items():
            full = f"{name}.{key}"
            if full not in arrays:
                raise ValueError(f"the weights lack {full!r}")
            value = np.asarray(arrays[full])
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"{full!r} has shape {tuple(value.shape)}, expected {tuple(current.shape)}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"{full!r} holds NaN or infinite values")
            state[key] = torch.from_numpy(np.array(value)).to(current.dtype)
            claimed.add(full)
        module.load_state_dict(state, strict=True)
    if strict:
        extra = sorted(k for k in arrays if k.split(".", 1)[0] in modules and k not in claimed)
        if extra:
            raise ValueError(f"the weights hold unexpected tensors {extra[:5]}")


def numpy_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal float32 noise drawn from ``rng`` (so a seed fixes every sample)."""
    return torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
