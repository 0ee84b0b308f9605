"""``synthmarket train``: fit any registered generator on real bars and write a model directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ..api import MODEL_FILES, fit_and_save
from ..data import load_data
from ..errors import ConfigError
from ..hyperparameters import parse_hparams
from ..outdir import claim
from ..registry import get_registry
from ..training_data import TrainingData
from .common import DATA_HELP, DATE_FORMAT_HELP, app, console

#: What a training run writes into ``--out``; only these are replaced by ``--force``.
OWNED = MODEL_FILES


def _check_out(out: Path, resume: bool, force: bool) -> bool:
    """Whether the run replaces a model or run already in ``out`` (only with --force)."""
    if resume and force:
        raise ConfigError("--resume continues a run and --force starts afresh; give one of them.")
    present = [name for name in OWNED if (out / name).exists()]
    if present and not resume and not force:
        raise ConfigError(
            f"{str(out)!r} already holds a model or a training run ({', '.join(present)}). "
            f"Continue it with --resume, overwrite it with --force, or choose another --out."
        )
    return bool(present) and not resume


@app.command()
def train(
    generator: str = typer.Option(
        ..., "--generator", "-g", help="Generator name (see `synthmarket plugins`) or module:Class."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Model directory to write (config.json, weights, checkpoints/, train_log.jsonl)."
    ),
    data: str = typer.Option("sp500", "--data", "-d", help=DATA_HELP),
    start: str | None = typer.Option(None, "--start", help="First date of the training data (YYYY-MM-DD)."),
    end: str | None = typer.Option(None, "--end", help="Last date of the training data (YYYY-MM-DD)."),
    regimes: str | None = typer.Option(
        None, "--regimes", help="Condition on regimes: volatility, trend, or a column of the data."
    ),
    epochs: float | None = typer.Option(None, "--epochs", help="Training length in epochs (deep generators)."),
    steps: int | None = typer.Option(None, "--steps", help="Training length in optimiser steps (wins over --epochs)."),
    time_budget: str | None = typer.Option(None, "--time-budget", help="Stop after this long, e.g. 90s, 5m, 1h."),
    device: str = typer.Option("auto", "--device", help="auto (cuda, then mps, then cpu), cpu, cuda or mps."),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, batches and noise."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run whose checkpoints are in --out."),
    force: bool = typer.Option(False, "--force", help="Overwrite a model or run already in --out."),
    hparam: list[str] = typer.Option([], "--hparam", "-H", help="A hyper-parameter, key=value (repeatable)."),
    validation_fraction: float = typer.Option(
        0.15, "--validation-fraction", help="Share of the bars held out for model selection."
    ),
    validation_blocks: int = typer.Option(
        1,
        "--validation-blocks",
        help="Held-out bars as N evenly spread blocks, the last at the end (1: the latest bars).",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Windows per optimiser step (default: the generator's)."
    ),
    validate_every: int = typer.Option(100, "--validate-every", help="Steps between validation scores."),
    patience: int = typer.Option(
        10, "--patience", help="Validations without improvement before stopping early (0: never)."
    ),
    select_after: int | None = typer.Option(
        None,
        "--select-after",
        help="Warm-up steps whose checkpoints are not kept once a later one is scored (default: a third of the steps).",
    ),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Steps between checkpoints."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for torch while training."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a live progress bar."),
    snapshots: int | None = typer.Option(
        None, "--snapshots", help="Every N steps, save a figure of generated paths over real windows (OUT/snapshots/)."
    ),
    gaps: str = typer.Option(
        "split",
        "--gaps",
        help="Gaps of more than 5 business days: split (no window spans one) or keep (learn across them).",
    ),
    date_format: str | None = typer.Option(None, "--date-format", help=DATE_FORMAT_HELP),
) -> None:
    """Train a generator on real OHLCV bars and save it as a model directory."""
    from ..checkpoints import CHECKPOINT_DIR, read_checkpoint  # torch loads only when training
    from ..train_config import TrainConfig

    gen_cls = get_registry().get("generator", generator)
    hparams = parse_hparams(hparam, gen_cls)
    bars = load_data(data, start=start, end=end, date_format=date_format)
    dataset = TrainingData.from_bars(
        bars, regimes=regimes, validation_fraction=validation_fraction, validation_blocks=validation_blocks, gaps=gaps
    )
    config = TrainConfig(
        steps=steps,
        epochs=epochs,
        time_budget=time_budget,
        device=device,
        seed=seed,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        out_dir=out,
        resume=resume,
        validate_every=validate_every,
        patience=patience or None,
        select_after=select_after,
        progress=progress,
        threads=threads,
    )
    with claim(out):  # one run per --out; an old model is replaced only by a finished new one
        replacing = _check_out(out, resume, force)
        if resume:
            record, _ = read_checkpoint(out)
            saved = record.get("model", {})
            if saved.get("generator") != gen_cls.name:
                raise ConfigError(f"The run in {str(out)!r} trains {saved.get('generator')!r}, not {gen_cls.name!r}.")
            stored = gen_cls.check_hparams(gen_cls.saved_hparams(saved.get("hyperparameters", {})))
            clashing = [k for k, v in hparams.items() if stored.get(k) != v]
            if clashing:
                raise ConfigError(
                    f"Cannot resume with other hyper-parameters ({', '.join(clashing)}); drop those -H options or start afresh with --force."
                )
            hparams = stored
        model = gen_cls(**hparams)
        if dataset.gap_note():
            console.print(f"[yellow]Note:[/] {dataset.gap_note()}", highlight=False)
        console.print(
            f"Training [bold]{gen_cls.name}[/] on {len(dataset.train)} bars "
            f"({bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d}, {len(dataset.validation)} held out"
            f"{f' in {validation_blocks} blocks' if validation_blocks > 1 else ''})"
        )
        try:
            report = fit_and_save(model, dataset, config, out, snapshots=snapshots, seed=seed)
        except KeyboardInterrupt:
            if not replacing:
                raise
            console.print(f"Interrupted: the model in {escape(str(out))} is kept as it was.", highlight=False)
            raise typer.Exit(130) from None
    console.print(report.summary(), highlight=False)
    console.print(f"Saved the model to {escape(str(out))}", highlight=False)
    if report.stopped == "interrupted":
        console.print(
            f"Interrupted: a checkpoint is in {escape(str(out / CHECKPOINT_DIR))}; run the same command with "
            f"--resume to continue.",
            highlight=False,
        )
        raise typer.Exit(130)
