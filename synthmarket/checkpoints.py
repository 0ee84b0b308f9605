"""Training checkpoints: where a run stands, written without pickle so that it can resume exactly.

Tensors go to safetensors, everything else to JSON::

    OUT/checkpoints/ckpt-00000400.safetensors   networks, optimiser tensors, RNG states, best weights
    OUT/checkpoints/last.json                   step, optimiser scalars, data RNG, scores, file checksum

Resuming restores networks, optimisers, gradient scalers, every random generator, the step
and the model-selection state, so an interrupted run continues to the same weights as an
uninterrupted one (on CPU).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import ConfigError, ModelFileError
from .jsonutil import json_default
from .model_files import file_sha256, publish

if TYPE_CHECKING:
    from .trainable import StepContext, Trainable

CHECKPOINT_FORMAT = "synthmarket-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LAST_FILE = "last.json"

#: Copies of every network's weights, by network name (the best weights so far, say).
Weights = dict[str, dict[str, torch.Tensor]]


@dataclass
class TrainingState:
    """Where a run stands: steps done, seconds trained, the model selection so far, the last checkpoint."""

    step: int = 0
    elapsed: float = 0.0
    best_score: float | None = None
    best_step: int | None = None
    bad_validations: int = 0
    last_checkpoint: int | None = None


def save_checkpoint(
    out_dir: Path,
    model: Trainable,
    ctx: StepContext,
    data_rng: np.random.Generator,
    state: TrainingState,
    best: Weights | None,
    meta: dict,
) -> None:
    """Write a checkpoint of the run into ``out_dir/checkpoints``, replacing the previous one.

    ``data_rng`` draws the training windows; ``meta`` describes the model and data, and is checked on resume.
    """
    from safetensors.torch import save_file

    folder = Path(out_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in model.training_modules().items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value
    if best is not None:
        for name, module_state in best.items():
            for key, value in module_state.items():
                tensors[f"best.{name}.{key}"] = value
    optim_json = {}
    for name, optimizer in model.training_optimizers().items():
        flat, rest = _flatten_optimizer(optimizer.state_dict())
        tensors.update({f"optim.{name}.{k}": v for k, v in flat.items()})
        optim_json[name] = rest
    tensors["rng.noise"] = ctx.noise.get_state()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    file = folder / f"ckpt-{state.step:08d}.safetensors"
    tmp = file.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    publish(tmp, file)
    record = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "file": file.name,
        "sha256": file_sha256(file),
        **meta,
        "state": asdict(state) | {"last_checkpoint": state.step},
        "optimizers": optim_json,
        "scalers": {k: v.state_dict() for k, v in ctx.scalers.items()},
        "data_rng": data_rng.bit_generator.state,
        "has_best": best is not None,
    }
    tmp = folder / (LAST_FILE + ".tmp")
    tmp.write_text(json.dumps(record, default=json_default))
    tmp.replace(folder / LAST_FILE)
    state.last_checkpoint = state.step
    for old in folder.glob("ckpt-*.safetensors"):
        if old.name != file.name:
            old.unlink()


def load_checkpoint(
    out_dir: Path,
    model: Trainable,
    ctx: StepContext,
    data_rng: np.random.Generator,
    meta: dict,
) -> tuple[TrainingState, Weights | None]:
    """Restore the run saved in ``out_dir`` into ``model``, ``ctx`` and ``data_rng``; its state and best weights.

    Raises
    ------
    ConfigError
        When the checkpoint was made with another model, data, window or batch size than ``meta`` says.
    ModelFileError
        When the checkpoint is missing, damaged or does not fit the model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    record, file = read_checkpoint(Path(out_dir))
    for key, what in (
        ("model", "generator and hyper-parameters"),
        ("data_fingerprint", "training data"),
        ("window", "training window"),
        ("batch_size", "batch size"),
    ):
        if _jsonable(record.get(key)) != _jsonable(meta[key]):
            raise ConfigError(
                f"Cannot resume: the checkpoint in {file.parent} was made with other {what} "
                f"({record.get(key)!r} there, {meta[key]!r} now). Use the same options, or start afresh with --force."
            )
    try:
        tensors = load_file(str(file))
        for name, module in model.training_modules().items():
            module.load_state_dict(_with_prefix(tensors, f"module.{name}."))
        for name, optimizer in model.training_optimizers().items():
            flat = _with_prefix(tensors, f"optim.{name}.")
            optimizer.load_state_dict(_unflatten_optimizer(flat, record["optimizers"][name], ctx.device))
        ctx.noise.set_state(tensors["rng.noise"])
        for name, scaler_state in record.get("scalers", {}).items():
            scaler = ctx.scalers[name] = torch.amp.GradScaler(ctx.device.type)
            scaler.load_state_dict(scaler_state)
        data_rng.bit_generator.state = record["data_rng"]
        best = None
        if record.get("has_best"):
            best = {name: _with_prefix(tensors, f"best.{name}.") for name in model.training_modules()}
        state = TrainingState(**record["state"])
    except (KeyError, RuntimeError, ValueError, TypeError, SafetensorError) as exc:
        raise ModelFileError(
            f"The checkpoint {file} is damaged or does not fit this model ({type(exc).__name__}: "
            f"{exc}). Start afresh with --force."
        ) from None
    return state, best


def read_checkpoint(out_dir: Path) -> tuple[dict, Path]:
    """The ``last.json`` record of ``out_dir/checkpoints`` and its verified tensor file."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    last = folder / LAST_FILE
    if not last.is_file():
        raise ModelFileError(f"Nothing to resume: {last} does not exist. Train without --resume first.")
    try:
        record = json.loads(last.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{last} is not valid JSON ({exc}); start afresh with --force.") from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{last} is not a synthmarket checkpoint record.")
    file = folder / str(record.get("file", ""))
    if Path(record.get("file", "")).name != record.get("file") or not file.is_file():
        raise ModelFileError(f"The checkpoint tensors {file} are missing; start afresh with --force.")
    if file_sha256(file) != record.get("sha256"):
        raise ModelFileError(f"{file} does not match its checksum (truncated or corrupted); start afresh with --force.")
    return record, file


def copy_weights(model: Trainable) -> Weights:
    """A copy of the weights of every network of ``model``."""
    return {
        name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in model.training_modules().items()
    }


def load_weights(model: Trainable, weights: Weights) -> None:
    """Put weights that :func:`copy_weights` took back into ``model``'s networks."""
    for name, module in model.training_modules().items():
        module.load_state_dict(weights[name])


def _with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose names start with ``prefix``, under the rest of their names."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict, device: torch.device) -> dict:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(rest["scalars"].items()):
        index, name = key.split(".", 1)
        if torch.is_tensor(value) and name != "step":
            value = value.to(device)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=json_default))
