"""Quality benchmark: every generator against real returns, as ratios to GARCH(1,1)-normal.

For each data set (S&P 500 and NASDAQ, 2009-05-01..2018-12-31, the Quant GANs period) every
chosen generator is trained with its default configuration (the latest 15% of the bars are
held out for the deep models' model selection), then 500 paths as long as the real series
are sampled per seed and scored with :func:`synthmarket.distances.return_distances`:
W1 at horizons 1, 5, 20, 100 days, ACF distances of r, |r|, r^2 over lags 1..250, and the
leverage distance, each divided by the same distance for a GARCH(1,1) with normal errors
(the classical ``garch`` plugin, ``dist=normal``) trained the same way. Also printed:
excess kurtosis (real; synthetic median and 5-95% band over paths), skewness (real; synthetic
median over paths), the stylized-facts scorecard of the same paths against the real bars
(facts passed per seed, and the facts failed on any seed; * where the real bars fail the
fact's rule too), training time, device,
and sampling speed in bars per second (sampling plus conversion to OHLCV bars).

Modes:

- ``--out-of-sample``: train on 2009-05-01..2016-12-31, score on 2017-01-01..2018-12-31.
- ``--noise-floor K``: also score each model against K of its own paths, each as long as the
  real series, instead of the real one (same ratios to GARCH-normal's distance to the real
  data): what a model would score if the real history were one of its own paths, so a ratio
  near a model's floor is as close as one history lets a model of that kind be told apart;
  p is the share of those paths at least as far from the model as the real history.
- ``--conditioning``: train the conditional generators with volatility regimes and compare
  the mean realized volatility of paths sampled under calm / normal / turbulent with the
  real bars of each regime.

Examples::

    python benchmarks/quality.py                                   # everything, default budgets
    python benchmarks/quality.py --generators conv1d_cgan,garch --seeds 0,1,2
    python benchmarks/quality.py --time-budget 2m --data sp500 --out-of-sample --conditioning
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import kurtosis, skew

from synthmarket import ContextUnreadable
from synthmarket.data import sample_data
from synthmarket.distances import DEFAULT_MAX_LAG, dependence_curves, return_distances
from synthmarket.facts import scorecard
from synthmarket.generator import Generator, TrainReport
from synthmarket.hyperparameters import parse_hparams
from synthmarket.paths import Paths
from synthmarket.registry import get_registry
from synthmarket.training import TrainConfig
from synthmarket.training_data import TrainingData

START, END = "2009-05-01", "2018-12-31"
OOS_TRAIN_END, OOS_TEST_START = "2016-12-31", "2017-01-01"
DISTANCES = ("w1_1", "w1_5", "w1_20", "w1_100", "acf_r", "acf_abs", "acf_sq", "leverage")
BASELINE = ("garch", {"dist": "normal"})
console = Console(width=250)


@dataclass
class Run:
    """One generator on one data set: ratios per seed and the rest."""

    data: str
    generator: str
    ratios: list[dict[str, float]] = field(default_factory=list)
    kurtosis: list[np.ndarray] = field(default_factory=list)
    skewness: list[np.ndarray] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    bars_per_second: list[float] = field(default_factory=list)
    floors: list[list[dict[str, float]]] = field(default_factory=list)  # per seed, per stand-in path
    facts: list[tuple[int, int, list[str]]] = field(default_factory=list)  # per seed: passed, judged, failed
    facts_failing_real: set[str] = field(default_factory=set)  # failed facts whose rule the real bars fail too
    validations: list[list[tuple[int, float]]] = field(default_factory=list)  # per seed: (step, validation score)
    best_steps: list[int | None] = field(default_factory=list)  # per seed: the step whose weights were kept
    unreadable: list[int] = field(default_factory=list)  # seeds whose model cannot start from the context
    device: str = "cpu"
    note: str = ""


def make(name: str, hparams: dict | None = None) -> Generator:
    return get_registry().get("generator", name)(**(hparams or {}))


def variant(name: str, items: list[str]) -> dict:
    """The ``key=value`` hyper-parameters of ``items`` that generator ``name`` has, typed like its defaults."""
    defaults = get_registry().get("generator", name).defaults
    return parse_hparams([i for i in items if i.partition("=")[0].strip() in defaults], defaults)


def train(model: Generator, dataset: TrainingData, seed: int, options: dict) -> tuple[float, TrainReport]:
    """Fit with the model's default configuration (plus seed and ``TrainConfig`` options); (seconds, the fit's report)."""
    began = time.perf_counter()
    report = model.fit(dataset, TrainConfig(seed=seed, **options))
    return time.perf_counter() - began, report


def sample_paths(model: Generator, n_paths: int, n_steps: int, seed: int) -> tuple[Paths, float]:
    """OHLCV paths and bars per second including the conversion to bars."""
    began = time.perf_counter()
    features = model.sample(n_paths, n_steps, seed=seed)
    paths = Paths.from_features(features, model.anchor)
    return paths, n_paths * n_steps / (time.perf_counter() - began)


def sample_returns(model: Generator, n_paths: int, n_steps: int, seed: int) -> tuple[np.ndarray, float]:
    """Close-to-close log returns (n_paths, n_steps) and bars per second including OHLCV conversion."""
    paths, speed = sample_paths(model, n_paths, n_steps, seed)
    return paths.log_returns(), speed


def real_returns(bars) -> np.ndarray:
    return np.diff(np.log(bars["close"].to_numpy(dtype=float)))


def evaluate(
    name: str,
    hparams: dict,
    dataset: TrainingData,
    real_bars,
    seeds,
    options,
    n_paths,
    baseline,
    label,
    keep: str | None = None,
    floor_paths: int = 0,
):
    run = Run(label, name)
    real = real_returns(real_bars)
    for seed in seeds:
        model = make(name, hparams)
        seconds, report = train(model, dataset, seed, options)
        run.device = report.device
        run.note = f"{report.steps} steps, {report.stopped}, kept step {report.best_step}" if report.steps > 1 else ""
        run.best_steps.append(report.best_step)
        run.validations.append([(row["step"], row["validation"]) for row in report.history if "validation" in row])
        if keep:
            model.save(f"{keep}/{label}_{name}_{seed}")
        try:
            paths, speed = sample_paths(model, n_paths, len(real), seed=1000 + seed)
        except ContextUnreadable as err:
            run.unreadable.append(seed)
            console.log(f"{label} {name} seed {seed}: not scored. {err}")
            continue
        synthetic = paths.log_returns()
        distances = return_distances(real, synthetic)
        card = scorecard(real_bars, paths, scores=False)
        judged = [r for r in card.results if r.passed is not None]
        run.facts.append((sum(bool(r.passed) for r in judged), len(judged), card.failed))
        run.facts_failing_real |= {r.name for r in judged if not r.passed and r.holds_on_real is False}
        run.ratios.append({k: distances[k] / baseline[k] for k in DISTANCES})
        run.kurtosis.append(kurtosis(synthetic, axis=1))
        run.skewness.append(skew(synthetic, axis=1))
        run.train_seconds.append(seconds)
        run.bars_per_second.append(speed)
        if floor_paths:
            run.floors.append(noise_floor(model, synthetic, floor_paths, baseline, seed=2000 + seed))
        console.log(
            f"{label} {name} seed {seed}: trained in {seconds:.0f}s ({run.note or 'closed form'}), "
            f"sampling {speed / 1e6:.2f}M bars/s"
        )
    return run


def noise_floor(model: Generator, synthetic: np.ndarray, k: int, baseline: dict, seed: int) -> list[dict[str, float]]:
    """Ratios of ``synthetic``'s distances to ``k`` fresh paths of the same model (each in the real one's place)."""
    stand_ins, _ = sample_returns(model, k, synthetic.shape[1], seed=seed)
    max_lag = min(DEFAULT_MAX_LAG, synthetic.shape[1] - 1)
    curves = dependence_curves(synthetic, max_lag)
    out = []
    for path in stand_ins:
        distances = return_distances(path, synthetic, curves=(dependence_curves(path, max_lag), curves))
        out.append({key: distances[key] / baseline[key] for key in DISTANCES})
    return out


def baseline_distances(dataset: TrainingData, real: np.ndarray, n_paths: int, seed: int = 0) -> dict[str, float]:
    model = make(*BASELINE)
    model.fit(dataset, TrainConfig(seed=seed))
    synthetic, _ = sample_returns(model, n_paths, len(real), seed=999)
    return return_distances(real, synthetic)


COLUMNS = (
    "data",
    "generator",
    "seeds",
    *(k.replace("_", "@", 1) if k.startswith("w1") else k for k in DISTANCES),
    "kurt real",
    "kurt synth [5-95%]",
    "skew real",
    "skew synth",
    "facts",
    "train s",
    "device",
    "Mbars/s",
)


def print_table(
    title: str, runs: list[Run], real_moments: dict[str, tuple[float, float]], markdown: bool = False
) -> None:
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="right" if column not in ("data", "generator", "device") else "left")
    rows = []
    for run in runs:
        seeds = str(len(run.ratios)) + (f" (+{len(run.unreadable)} unreadable)" if run.unreadable else "")
        if not run.ratios:
            rows.append((run.data, run.generator, seeds, *[""] * (len(COLUMNS) - 3)))
            table.add_row(*rows[-1])
            continue
        med = {k: float(np.median([r[k] for r in run.ratios])) for k in DISTANCES}
        k_all = np.concatenate(run.kurtosis)
        lo, mid, hi = np.percentile(k_all, [5, 50, 95])
        rows.append(
            (
                run.data,
                run.generator,
                seeds,
                *(f"{med[k]:.2f}" for k in DISTANCES),
                f"{real_moments[run.data][0]:.2f}",
                f"{mid:.1f} [{lo:.1f}, {hi:.1f}]",
                f"{real_moments[run.data][1]:.2f}",
                f"{np.median(np.concatenate(run.skewness)):.2f}",
                facts_cell(run),
                f"{np.median(run.train_seconds):.0f}",
                run.device,
                f"{np.median(run.bars_per_second) / 1e6:.2f}",
            )
        )
        table.add_row(*rows[-1])
    console.print(table)
    if markdown:
        _print_markdown(title, COLUMNS, rows)
    floors = [run for run in runs if run.floors]
    if floors:
        print_floors(title, floors, markdown)


def facts_cell(run: Run) -> str:
    """Facts passed per seed, and those failed on any seed: ``9/9, 8/9 (-volume_volatility)``.

    A * marks a failed fact whose rule the real bars fail too.
    """
    counts = ", ".join(f"{passed}/{judged}" for passed, judged, _ in run.facts)
    failed = sorted({name for _, _, names in run.facts for name in names})
    marked = [name + "*" * (name in run.facts_failing_real) for name in failed]
    return counts + (f" (-{', -'.join(marked)})" if failed else "")


def print_floors(title: str, runs: list[Run], markdown: bool) -> None:
    """Per model and distance: the median [10%, 90%] of its stand-in histories' ratios, and p,
    the share of them at least as far from the model as the real history (mean over seeds): a
    Monte-Carlo test of "the real history is one of this model's paths" (see ``--noise-floor``)."""
    title = (
        title.replace("Quality", "Noise floor", 1)
        + "; each model scored against its own paths: median [10-90%], p = share at least as far as the real data"
    )
    columns = ("data", "generator", "stand-ins", *COLUMNS[3 : 3 + len(DISTANCES)])
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in ("data", "generator") else "right")
    rows = []
    for run in runs:
        cells = []
        for key in DISTANCES:
            lo, mid, hi = np.percentile([f[key] for seed in run.floors for f in seed], [10, 50, 90])
            p = np.mean([np.mean([f[key] >= real[key] for f in seed]) for seed, real in zip(run.floors, run.ratios)])
            cells.append(f"{mid:.2f} [{lo:.2f}, {hi:.2f}] p {p:.2f}")
        rows.append((run.data, run.generator, str(sum(map(len, run.floors))), *cells))
        table.add_row(*rows[-1])
    console.print(table)
    if markdown:
        _print_markdown(title, columns, rows)


def _print_markdown(title: str, columns, rows) -> None:
    print(f"\n{title}\n\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def conditioning(names, data: str, seeds, options) -> None:
    bars = sample_data(data).loc[START:END]
    dataset = TrainingData.from_bars(bars, regimes="volatility")
    labels = dataset.scheme.label(bars)[1:]
    returns = real_returns(bars)
    table = Table(title=f"Conditioning check ({data}): mean realized daily volatility, % (250-step paths)")
    for column in ("generator", *dataset.scheme.names, "ordered", "worst error vs real"):
        table.add_column(column)
    real = [100 * returns[labels == i].std() for i in range(len(dataset.scheme.names))]
    table.add_row("real bars", *(f"{v:.2f}" for v in real), "yes" if real[0] < real[1] < real[2] else "no", "")
    for name in names:
        cls = get_registry().get("generator", name)
        if not cls.conditional:
            continue
        vols = np.zeros(len(dataset.scheme.names))
        for seed in seeds:
            model = make(name)
            seconds, report = train(model, dataset, seed, options)
            console.log(
                f"conditioning {name} seed {seed}: trained in {seconds:.0f}s ({report.steps} steps, "
                f"{report.stopped}, kept step {report.best_step})"
            )
            for i, regime in enumerate(dataset.scheme.names):
                sample = model.sample(200, 250, regime=regime, seed=seed)[..., 0]
                vols[i] += 100 * sample.std(axis=1).mean() / len(seeds)
        ordered = "yes" if np.all(np.diff(vols) > 0) else "no"
        worst = np.max(np.abs(vols / np.asarray(real) - 1))
        table.add_row(name, *(f"{v:.2f}" for v in vols), ordered, f"{100 * worst:.0f}%")
    console.print(table)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generators", default="", help="comma-separated names (default: every registered generator)")
    parser.add_argument("--data", default="sp500,nasdaq", help="bundled data sets, comma-separated")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--paths", type=int, default=500, help="synthetic paths per seed")
    parser.add_argument("--time-budget", default=None, help="cap on each deep model's training, e.g. 2m")
    parser.add_argument(
        "--select-after",
        type=int,
        default=None,
        help="warm-up steps before a checkpoint may be kept (default: the training loop's, a third)",
    )
    parser.add_argument("--out-of-sample", action="store_true", help="also train to 2016 and score on 2017-2018")
    parser.add_argument(
        "--no-in-sample", action="store_true", help="skip the in-sample run (e.g. to run modes in parallel)"
    )
    parser.add_argument("--conditioning", action="store_true", help="also check regime conditioning")
    parser.add_argument(
        "--validation-blocks",
        type=int,
        default=1,
        help="the held-out 15%% as this many evenly spread blocks (1: the latest bars)",
    )
    parser.add_argument(
        "--hparam",
        "-H",
        action="append",
        default=[],
        help="a hyper-parameter of the deep generators, key=value (repeatable; e.g. to measure a variant)",
    )
    parser.add_argument(
        "--noise-floor",
        type=int,
        default=0,
        metavar="K",
        help="also score each model against K of its own paths in the real series' place",
    )
    parser.add_argument("--keep", default=None, help="save every trained model under this directory")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    parser.add_argument("--json", default=None, help="write the per-seed results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    names = [n for n in args.generators.split(",") if n] or sorted(get_registry().generators())
    seeds = [int(s) for s in args.seeds.split(",")]
    options = {"time_budget": args.time_budget, "select_after": args.select_after}
    console.print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), cuda={torch.cuda.is_available()}"
    )
    results = []
    modes = [] if args.no_in_sample else [("in-sample", START, END, None)]
    if args.out_of_sample:
        modes.append(("out-of-sample", START, OOS_TRAIN_END, OOS_TEST_START))
    for mode, start, train_end, test_start in modes:
        runs, real_moments = [], {}
        for data in args.data.split(","):
            bars = sample_data(data)
            train_bars = bars.loc[start:train_end]
            real_bars = bars.loc[test_start:END] if test_start else train_bars
            real = real_returns(real_bars)
            real_moments[data] = (float(kurtosis(real)), float(skew(real)))
            dataset = TrainingData.from_bars(train_bars, validation_blocks=args.validation_blocks)
            baseline = baseline_distances(dataset, real, args.paths)
            for name in names:
                hparams = BASELINE[1] if name == BASELINE[0] else variant(name, args.hparam)
                runs.append(
                    evaluate(
                        name,
                        hparams,
                        dataset,
                        real_bars,
                        seeds,
                        options,
                        args.paths,
                        baseline,
                        data,
                        args.keep and f"{args.keep}/{mode}",
                        args.noise_floor,
                    )
                )
        print_table(
            f"Quality, {mode}: distance ratios to GARCH(1,1)-normal (lower is better; garch row is garch dist=normal)",
            runs,
            real_moments,
            args.markdown,
        )
        results.append(
            {
                "mode": mode,
                "runs": [
                    {
                        "data": r.data,
                        "generator": r.generator,
                        "ratios": r.ratios,
                        "train_seconds": r.train_seconds,
                        "bars_per_second": r.bars_per_second,
                        "device": r.device,
                        "kurtosis_median": [float(np.median(k)) for k in r.kurtosis],
                        "skewness_median": [float(np.median(s)) for s in r.skewness],
                        "noise_floor": r.floors,
                        "facts": [{"passed": p, "judged": j, "failed": f} for p, j, f in r.facts],
                        "best_steps": r.best_steps,
                        "unreadable_seeds": r.unreadable,
                        "validations": r.validations,
                    }
                    for r in runs
                ],
            }
        )
    if args.conditioning:
        conditioning(names, args.data.split(",")[0], seeds, options)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
