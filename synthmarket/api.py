"""The notebook API: one function per step of the workflow.

>>> import synthmarket as sm                                                     # doctest: +SKIP
>>> model = sm.train("garch", data="sp500", start="2009-01-01")                 # doctest: +SKIP
>>> paths = sm.generate(model, n_paths=200, n_steps=252, seed=1)                # doctest: +SKIP
>>> card = sm.scorecard(sm.load_data("sp500"), paths)                           # doctest: +SKIP
>>> result = sm.run_montecarlo("sma_cross", paths, jobs=1)                      # doctest: +SKIP

Each function builds on the modules that do the work (:mod:`~synthmarket.registry`,
:mod:`~synthmarket.generator`, :mod:`~synthmarket.training`, :mod:`~synthmarket.facts`,
:mod:`~synthmarket.montecarlo`, :mod:`~synthmarket.report`) and adds nothing they lack
except defaults that suit an interactive session.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import load_data
from .errors import ConfigError, TrainingDiverged
from .generator import Generator
from .model_files import CONFIG_FILE, WEIGHTS_FILE
from .paths import Paths
from .training_data import TrainingData

#: What a training run writes into its model directory (replaced when training again into it).
#: What a training run writes into its model directory (the training loop's checkpoints/ and
#: train_log.jsonl, snapshots/); replacing a model removes exactly these.
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, "checkpoints", "train_log.jsonl", "snapshots")


def remove_entries(directory: Path, names) -> None:
    """Delete the files or folders ``names`` of ``directory`` that exist (a fresh start for a run)."""
    for name in names:
        target = Path(directory) / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def generator_class(generator: str | type[Generator]) -> type[Generator]:
    """The generator class for a registered name, a ``module:Class`` reference or a class.

    Raises
    ------
    PluginError
        For an unknown name (the message lists the known ones).
    """
    if isinstance(generator, type) and issubclass(generator, Generator):
        return generator
    from .registry import get_registry

    return get_registry().get("generator", str(generator))


def train(
    generator: str | type[Generator] = "conv1d_cgan",
    data: str | Path | pd.DataFrame = "sp500",
    start: str | None = None,
    end: str | None = None,
    regimes: str | None = None,
    time_budget: float | str | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    *,
    steps: int | None = None,
    epochs: float | None = None,
    device: str = "auto",
    validation_fraction: float = 0.15,
    validation_blocks: int = 1,
    gaps: str = "split",
    date_format: str | None = None,
    progress: bool = False,
    train_options: dict[str, Any] | None = None,
    snapshots: int | None = None,
    **hparams: Any,
) -> Generator:
    """Train a generator on real OHLCV bars and return it fitted.

    Parameters
    ----------
    generator : str or Generator subclass
        A registered name (``sm.generators()`` lists them: ``conv1d_cgan``, ``rgan``,
        ``vae``, ``gbm``, ``garch``, ``bootstrap``, ...), ``module:Class``, or a class.
    data : str, Path or DataFrame
        A bundled data set (``"sp500"``, ``"nasdaq"``), a CSV/Parquet file or OHLCV bars.
    start, end : str, optional
        Inclusive date range of the training data (``YYYY-MM-DD``).
    regimes : str, optional
        Condition on regimes: ``"volatility"``, ``"trend"`` or a column of the data
        (conditional generators only).
    time_budget : float or str, optional
        Stop the training loop after this long (seconds, or ``"90s"``, ``"5m"``); the best
        weights so far are kept. Classical generators fit in one go and ignore it.
    seed : int
        Seed of the weights, the batches and the noise.
    out : str or Path, optional
        Model directory to save into (``config.json``, weights, checkpoints, training log);
        a model already there is replaced. Without it, nothing is written.
    steps, epochs : optional
        Training length (deep generators); default: the model's own.
    device : str
        ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda`` or ``mps``.
    validation_fraction : float
        Share of the bars held out for model selection.
    validation_blocks : int
        How many equal blocks the held-out bars form, evenly spread with the last ending at
        the latest bar (1: the latest bars; more: the model also learns from the later years).
    gaps : {"split", "keep"}
        A run of more than 5 business days without a bar is a gap in the data: "split" leaves
        out the return across it (no training window spans it), "keep" learns the bars on
        either side as consecutive days. A warning names the gaps found.
    date_format : str, optional
        The format of a data file's dates, e.g. ``"%d/%m/%Y"`` (needed only when the data do
        not say whether the day or the month comes first).
    progress : bool
        Show a progress bar while training.
    train_options : dict, optional
        Further :class:`~synthmarket.training.TrainConfig` fields, e.g.
        ``{"validate_every": 50, "batch_size": 64, "patience": None}``.
    snapshots : int, optional
        Every this many steps, save a figure of generated paths over real windows into
        ``out/snapshots/`` (needs ``out``; see :mod:`synthmarket.snapshots`).
    **hparams
        Hyper-parameters of the generator (``model.defaults`` lists them).

    Returns
    -------
    Generator
        The fitted model; ``model.report`` says how the training went.

    Raises
    ------
    PluginError, ConfigError, DataError
        Unknown generator or hyper-parameter, impossible options, unusable data.
    """
    from .train_config import TrainConfig

    gen_cls = generator_class(generator)
    bars = load_data(data, start=start, end=end, date_format=date_format)
    dataset = TrainingData.from_bars(
        bars, regimes=regimes, validation_fraction=validation_fraction, validation_blocks=validation_blocks, gaps=gaps
    )
    if dataset.gap_note():
        warnings.warn(dataset.gap_note(), stacklevel=2)
    model = gen_cls(**hparams)
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"out={str(out)!r} is a file; give a directory for the model.")
    options = dict(train_options or {})
    clashing = sorted(set(options) & {"steps", "epochs", "time_budget", "device", "seed", "out_dir", "progress"})
    if clashing:
        raise ConfigError(f"Give {', '.join(clashing)} as arguments of train(), not in train_options.")
    config = TrainConfig.from_any(
        {
            "steps": steps,
            "epochs": epochs,
            "time_budget": time_budget,
            "device": device,
            "seed": seed,
            "out_dir": out,
            "progress": progress,
            **options,
        }
    )
    if snapshots is not None and out is None:
        raise ConfigError("snapshots need a model directory to go into: give out=DIR.")
    fit_and_save(model, dataset, config, out, snapshots=snapshots, seed=seed)
    return model


def fit_and_save(
    model: Generator,
    dataset: TrainingData,
    config: Any,
    out: Path | None,
    *,
    snapshots: int | None = None,
    seed: int = 0,
) -> Any:
    """Fit ``model`` (with a snapshot figure every ``snapshots`` steps into ``out/snapshots/``)
    and, given ``out``, save it there with its training log; the :class:`TrainReport`.

    A generator that fits without the training loop gets a one-line log of its fit, so every
    model directory has one. The run holds ``out``'s lock (:func:`synthmarket.outdir.claim`).

    A model already in ``out`` (any of :data:`MODEL_FILES`) is replaced only once the new one
    is saved whole: the run trains in ``out/.training-PID`` and its files are moved in at the
    end. On any failure the old model stays as it was, and an interruption (Ctrl-C) raises
    KeyboardInterrupt with it kept too. A resumed run, and one into a directory without a
    model, train in place (an interrupted run's checkpoints stay there for resuming).
    """
    from .outdir import claim, replace_entries, scratch
    from .train_config import TrainConfig

    if out is None:
        return _fit(model, dataset, config, None, snapshots, seed)
    out = Path(out)
    config = TrainConfig.from_any(config)
    with claim(out):
        if config.resume or not any((out / name).exists() for name in MODEL_FILES):
            return _fit(model, dataset, config, out, snapshots, seed)
        with scratch(out, ".training") as staging:
            staging.mkdir()
            try:
                report = _fit(model, dataset, _retarget(config, out, staging), staging, snapshots, seed)
            except TrainingDiverged as exc:
                raise TrainingDiverged(
                    f"{str(exc).split('; ')[0]}; the model in {str(out)!r} is kept as it was. "
                    f"Lower the learning rate or change the seed."
                ) from None
            if report.stopped == "interrupted":
                raise KeyboardInterrupt(f"the model in {str(out)!r} is kept as it was")
            new = [name for name in os.listdir(staging) if name not in MODEL_FILES]
            replace_entries(out, staging, [*MODEL_FILES, *new])
    return report


def _fit(
    model: Generator, dataset: TrainingData, config: Any, out: Path | None, snapshots: int | None, seed: int
) -> Any:
    """:func:`fit_and_save` into ``out`` itself."""
    from .training_progress import LOG_FILE

    if snapshots is not None:
        from .snapshots import SNAPSHOT_DIR, SnapshotRecorder

        recorder = SnapshotRecorder(model, dataset, Path(out) / SNAPSHOT_DIR, snapshots, seed=seed)  # checks the model
        model.callbacks.append(recorder)
    report = model.fit(dataset, config)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if not (out / LOG_FILE).exists():
            (out / LOG_FILE).write_text(json.dumps({"event": "fit", **report.to_dict()}) + "\n")
        model.save(out)
    return report


def _retarget(config: Any, out: Path, staging: Path) -> Any:
    """``config`` with the checkpoints and training log it would write into ``out`` going into ``staging``."""
    from .training_progress import LOG_FILE

    def moved(path, old: Path, new: Path):
        return new if path is not None and Path(path).absolute() == old.absolute() else path

    return dataclasses.replace(
        config,
        out_dir=moved(config.out_dir, out, staging),
        log_file=moved(config.log_file, out / LOG_FILE, staging / LOG_FILE),
    )


def load_model(directory: str | Path) -> Generator:
    """Load a model directory written by :func:`train` or ``synthmarket train``.

    Raises
    ------
    ModelFileError
        For a missing, foreign, truncated or tampered directory.
    """
    return Generator.load(directory)


def generate(
    model: Generator | str | Path,
    n_paths: int,
    n_steps: int,
    regime: str | None = None,
    schedule: str | np.ndarray | None = None,
    seed: int | None = None,
    start: str | None = None,
    context="last",
) -> Paths:
    """Sample OHLCV paths from a fitted generator or a model directory.

    Parameters
    ----------
    model : Generator, str or Path
        A fitted generator (from :func:`train`), or a model directory.
    n_paths, n_steps : int
        How many paths, and bars per path (any length).
    regime : str, optional
        Sample every step in this regime (models trained with ``regimes``).
    schedule : str or array, optional
        A regime per stretch of steps, e.g. ``"calm:200,turbulent:52"`` (totals ``n_steps``).
    seed : int, optional
        The same seed gives the same paths on CPU.
    start : str, optional
        Date of the first bar; default the business day after the training data (or after
        the context's last bar).
    context : "last", None or DataFrame
        The market the paths start from (:mod:`synthmarket.context`): the end of the training
        data (default), no context (None), or real bars such as ``bars.loc[:"2008-09-12"]``.

    Returns
    -------
    Paths
        ``paths.plot()`` is not built in: use :func:`synthmarket.report.plot_paths`.
    """
    if not isinstance(model, Generator):
        model = Generator.load(model)
    return model.sample_paths(
        int(n_paths), int(n_steps), regime=regime, schedule=schedule, seed=seed, start=start, context=context
    )


def generators() -> pd.DataFrame:
    """The registered generators: name, description and whether they learn regimes."""
    from .registry import get_registry

    rows = [
        {
            "name": name,
            "conditional": bool(getattr(info.obj, "conditional", False)),
            "description": info.description,
            "origin": info.origin,
        }
        for name, info in sorted(get_registry().generators().items())
    ]
    return pd.DataFrame(rows, columns=["name", "conditional", "description", "origin"])


__all__ = ["generate", "generator_class", "generators", "load_model", "train"]


def run_pipeline(out: str | os.PathLike, *, quiet: bool = True, **options: Any):
    """Run the whole pipeline into the directory ``out``, as ``synthmarket demo`` does: train (or
    reuse the model in ``out/model`` trained with the same settings), sample, score the stylized
    facts, compare the regimes, backtest, and write the run directory and ``out/report.html``.

    ``options`` are the fields of :class:`synthmarket.pipeline.PipelineSettings` (``generator``,
    ``time_budget``, ``n_paths``, ``n_steps``, ``seed``, ``jobs``, ``data``, ``regimes``,
    ``strategy``, ``steps``, ``hparams``, ``retrain``, ``progress``), or ``settings=`` one of them,
    and ``on_event=`` a callable that receives each step's events (``on_event=print`` shows the
    command's progress lines). By default (``quiet=True``) it shows no progress bars either.

    Returns
    -------
    synthmarket.pipeline.PipelineResult
        The model, paths, scorecard, regime table, backtest result and the report's path.

    Examples
    --------
    >>> result = sm.run_pipeline("run", generator="garch", n_paths=200, jobs=1)  # doctest: +SKIP
    >>> result.report, result.card.summary()                                     # doctest: +SKIP
    """
    from .pipeline import run_pipeline as run

    if quiet and "settings" not in options:
        options.setdefault("progress", False)
    return run(out, **options)


__all__ += ["run_pipeline"]
