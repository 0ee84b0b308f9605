"""Walk-forward calibration of every generator: trained up to 2014-12-31, tested on 2015-2018.

For each data set (S&P 500 and NASDAQ) and generator, train on the data up to the end of
2014 (from 2009-05-01; the deep models for their own default budget, 9.5 minutes, unless
``--time-budget`` says otherwise; conv1d_cgan with its context in training,
``context_window=64``), then run :func:`synthmarket.calibration.walkforward.calibrate` over
2015-01-01..2018-12-31 at horizons 1, 5 and 20 and print one Markdown table per data set:
VaR hit rates at 1 % and 5 % with Kupiec and Christoffersen p-values, the expected-shortfall
test, mean CRPS and its skill against ``garch`` (Student-t), the Diebold-Mariano test of its
CRPS against ``fhs``'s origin by origin, and the correlation of the predicted volatility over
each horizon with the realised. The tests count origins a horizon apart, the CRPS, the
Diebold-Mariano test and the correlation every origin.

Usage::

    python benchmarks/calibration.py [--generators gbm,garch,fhs,bootstrap] [--paths 1000] [--stride 1]
        [--time-budget 9.5m] [--models DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import time
from pathlib import Path

import synthmarket as sm
from synthmarket.calibration.scores import crps, crps_skill, diebold_mariano
from synthmarket.calibration.walkforward import calibrate

TRAIN = ("2009-05-01", "2014-12-31")
TEST = ("2015-01-01", "2018-12-31")
HORIZONS = (1, 5, 20)
REFERENCE = "garch"
PAIRED = "fhs"  # the risk industry's standard, which the Diebold-Mariano column compares with


CLASSICAL = ("gbm", "garch", "fhs", "bootstrap")
#: The deep models as one would train them for risk: with the context in training.
FOR_RISK = {"conv1d_cgan": {"context_window": 64}}


def run(
    data: str, generators: list[str], paths: int, stride: int, jobs: int, budget: str | None, models: Path | None
) -> list[dict]:
    bars = sm.sample_data(data)
    rows, results = [], {}
    for name in generators:
        began = time.perf_counter()
        model = trained(name, data, budget, None if models is None else models / f"{data}-{name}")
        result = calibrate(
            model, bars, start=TEST[0], end=TEST[1], horizons=HORIZONS, n_paths=paths, stride=stride, jobs=jobs
        )
        results[name] = result
        rows.append({"generator": name, "result": result, "seconds": time.perf_counter() - began})
    reference = results.get(REFERENCE)
    paired = None if PAIRED not in results else origin_crps(results[PAIRED])
    for row in rows:
        row["skill"] = {
            h: float("nan") if reference is None else crps_skill(mean_crps(row["result"], h), mean_crps(reference, h))
            for h in HORIZONS
        }
        own = origin_crps(row["result"])
        row["dm"] = {
            h: (float("nan"), float("nan")) if paired is None else diebold_mariano(own[j], paired[j], h)
            for j, h in enumerate(HORIZONS)
        }
    return rows


def origin_crps(result) -> list:
    """The CRPS of each origin, one array per horizon."""
    return [crps(result.samples[:, j, :].astype(float), result.realised[:, j]) for j in range(len(HORIZONS))]


def mean_crps(result, horizon: int) -> float:
    return result.summary["horizons"][str(horizon)]["crps_mean"]


def trained(name: str, data: str, budget: str | None, directory: Path | None):
    """The generator trained on ``data`` up to 2014; loaded from ``directory`` when it holds it already."""
    if directory is not None and (directory / "config.json").exists():
        return sm.load_model(directory)
    deep = {} if name in CLASSICAL or budget is None else {"time_budget": budget}
    return sm.train(name, data=data, start=TRAIN[0], end=TRAIN[1], out=directory, **deep, **FOR_RISK.get(name, {}))


def paired_test(statistic: float, pvalue: float) -> str:
    """``-1.23 (0.22)``: the statistic (negative: lower CRPS than fhs) and its p-value; ``-`` for fhs itself."""
    return "-" if math.isnan(statistic) else f"{statistic:+.2f} ({pvalue:.2f})"


def table(data: str, rows: list[dict]) -> str:
    head = (
        "| generator | h | origins tested | hits 1% (exp.) | Kupiec p | Chr. p | hits 5% (exp.) | Kupiec p | Chr. p "
        "| ES Z2 1% (p) | mean CRPS | CRPS skill vs garch | CRPS vs fhs, DM (p) | vol corr. |"
    )
    lines = [f"### {data}", "", head, "|" + "---|" * 14]
    for row in rows:
        for h in HORIZONS:
            s = row["result"].summary["horizons"][str(h)]
            one, five = s["levels"]["0.01"], s["levels"]["0.05"]
            lines.append(
                f"| {row['generator']} | {h} | {s['n']} | {one['hits']} ({one['expected_hits']:.1f}) | {one['kupiec_p']:.3f} "
                f"| {one['ind_p']:.3f} | {five['hits']} ({five['expected_hits']:.1f}) | {five['kupiec_p']:.3f} "
                f"| {five['ind_p']:.3f} | {one['es_z2']:.2f} ({one['es_p']:.2f}) | {s['crps_mean']:.5f} "
                f"| {row['skill'][h]:+.3f} | {paired_test(*row['dm'][h])} | {s['vol_pearson']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", default="gbm,garch,fhs,bootstrap")
    parser.add_argument("--data", default="sp500,nasdaq")
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--time-budget", help="training budget of the deep generators (default: their own)")
    parser.add_argument("--models", type=Path, help="keep the trained models here (DATA-NAME) and reuse them")
    args = parser.parse_args()
    print(f"# Calibration benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"{os.cpu_count()} CPU cores; trained {TRAIN[0]}..{TRAIN[1]}, origins {TEST[0]}..{TEST[1]} every "
        f"{args.stride} trading day(s), {args.paths} paths per origin, horizons {HORIZONS}; the VaR and ES tests of "
        f"horizon h use origins at least h bars apart, the CRPS and the volatility correlation every origin"
    )
    for data in args.data.split(","):
        rows = run(data, args.generators.split(","), args.paths, args.stride, args.jobs, args.time_budget, args.models)
        print()
        print(table(data, rows))
        print()
        print("seconds (train + calibrate): " + ", ".join(f"{r['generator']} {r['seconds']:.0f}" for r in rows))


if __name__ == "__main__":
    main()
