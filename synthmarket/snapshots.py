"""Training made visible: every N steps, generated paths drawn over real windows.

``synthmarket train --snapshots N`` adds a :class:`SnapshotRecorder` to the training loop's
callbacks. Each snapshot is a PNG in ``MODEL_DIR/snapshots/``: cumulative log returns of a
few generated paths (colour) over real training windows of the same length (grey). The
same noise is used at every snapshot, so the strip shows one set of paths taking the shape
of the market. ``synthmarket report --model DIR`` shows the strip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError

SNAPSHOT_DIR = "snapshots"


class SnapshotRecorder:
    """A training callback that saves a figure of generated vs real windows every ``every`` steps.

    Parameters
    ----------
    model : a generator trained step by step (it has ``sample_scaled`` and ``callbacks``)
    dataset : synthmarket.training_data.TrainingData
        The training data; real windows come from ``dataset.train``.
    directory : Path
        Where the PNG files go (``step_000100.png``, ...).
    every : int
        Steps between snapshots.
    n_paths, n_real, window : int
        Generated paths, real windows, and their length in bars.
    """

    def __init__(
        self,
        model,
        dataset,
        directory: str | Path,
        every: int,
        *,
        n_paths: int = 8,
        n_real: int = 40,
        window: int = 250,
        seed: int = 0,
    ) -> None:
        if every < 1:
            raise ConfigError(f"--snapshots must be a positive number of steps; got {every}.")
        if not (hasattr(model, "sample_scaled") and hasattr(model, "callbacks")):
            raise ConfigError(f"{model.name} fits in one go, not step by step: it has no training to snapshot.")
        self.model, self.every, self.n_paths, self.seed = model, int(every), n_paths, seed
        self.directory = Path(directory)
        self.window = min(window, dataset.longest_segment)
        self.std = dataset.scaler.std[0]
        self.mean = dataset.scaler.mean[0]
        returns = dataset.train[:, 0] * self.std + self.mean
        starts = np.random.default_rng(seed).choice(dataset.window_starts(self.window), size=n_real)
        self.real = np.stack([np.cumsum(returns[s : s + self.window]) for s in starts])

    def __call__(self, step: int, losses: dict) -> None:
        if step % self.every:
            return
        scaled = self.model.sample_scaled(self.n_paths, None, np.random.default_rng([self.seed, 7]), self.window)
        generated = np.cumsum(np.asarray(scaled, dtype=float)[..., 0] * self.std + self.mean, axis=1)
        self.save(step, generated, losses)

    def save(self, step: int, generated: np.ndarray, losses: dict) -> Path:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.2, 3.0))
        ax.plot(self.real.T, color="0.7", lw=0.6)
        ax.plot(generated.T, lw=0.9)
        low, high = np.quantile(self.real, [0.005, 0.995])
        span = high - low
        ax.set_ylim(low - 0.25 * span, high + 0.25 * span)
        shown = ", ".join(f"{k} {v:.3g}" for k, v in list(losses.items())[:2])
        ax.set_title(f"step {step}" + (f" ({shown})" if shown else ""), fontsize=8)
        ax.set_xlabel("bars", fontsize=7)
        ax.set_ylabel("cumulative log return", fontsize=7)
        ax.tick_params(labelsize=6)
        fig.tight_layout()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step_{step:06d}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return path


def snapshot_files(model_dir: str | Path) -> list[Path]:
    """The snapshot figures of a model directory, in step order."""
    return sorted((Path(model_dir) / SNAPSHOT_DIR).glob("step_*.png"))
