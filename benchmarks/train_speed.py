"""Training speed of the deep generators on a device: seconds per optimiser step, AMP on CUDA.

Run: ``python benchmarks/train_speed.py [--device cuda] [--steps 300]``. Each deep generator
with its default hyper-parameters trains ``--steps`` steps (validation at the end only) on
the bundled S&P 500 bars 2009-05-01..2018-12-31, with and without volatility regimes; the
table gives the device the loop chose, whether mixed precision was on, seconds per step
(the first validation included), the validation score, and whether the trained model then
samples finite paths (sampling always runs on the CPU, so samples are the same everywhere).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from classical_speed import print_table

from synthmarket import sample_data
from synthmarket.registry import get_registry
from synthmarket.train_config import TrainConfig


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generators", default="conv1d_cgan,rgan,vae")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    bars = sample_data("sp500").loc["2009-05-01":"2018-12-31"]
    amp = torch.cuda.is_available() and args.device in ("auto", "cuda")
    columns = ["generator", "regimes", "device", "amp", "steps", "s/step", "validation", "sampled 200 x 1,000"]
    table = []
    for name in args.generators.split(","):
        for regimes in (None, "volatility"):
            model = get_registry().get("generator", name)()
            began = time.perf_counter()
            try:
                report = model.fit(
                    bars,
                    TrainConfig(steps=args.steps, validate_every=args.steps, device=args.device, seed=0, patience=None),
                    regimes=regimes,
                )
            except Exception as exc:  # report it and go on with the other models
                table.append([name, regimes or "-", args.device, "-", "-", "-", "-", f"FAILED: {exc}"[:120]])
                continue
            per_step = (time.perf_counter() - began) / max(report.steps, 1)
            sample = model.sample(200, 1000, seed=0, regime="turbulent" if regimes else None)
            table.append(
                [
                    name,
                    regimes or "-",
                    report.device,
                    "yes" if amp and report.device.startswith("cuda") else "no",
                    str(report.steps),
                    f"{per_step:.3f}",
                    f"{report.best_score:.3f}",
                    "finite" if np.isfinite(sample).all() else "NOT FINITE",
                ]
            )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    print(f"torch {torch.__version__}, {gpu}")
    print_table(columns, table)


if __name__ == "__main__":
    main()
