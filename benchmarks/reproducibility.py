"""How far a deep model's paths move when the math kernels change, and what that changes downstream.

Run: ``python benchmarks/reproducibility.py [--generators conv1d_cgan,rgan,vae] [--steps 300]``
(a few minutes on a 2-core CPU). Each model keeps its default hyper-parameters and is trained
for ``--steps`` steps on the bundled S&P 500 bars 2009-05-01..2018-12-31 and saved. Then a
fresh process samples the same 500 one-year paths (seed 0) under each setting below, and each
setting's paths are compared with the first's:

- torch threads 1 or 2, ``OMP_NUM_THREADS`` unset or 1: promised bit for bit the same;
- ``ATEN_CPU_CAPABILITY=default`` (torch's kernels without SIMD) and ``MKL_CBWR=COMPATIBLE``
  (MKL's portable code path): the kernels another CPU would run, so the float32 rounding of
  another machine.

Columns: the largest difference of any feature (log-return units), the largest relative
difference of any close, and downstream the SMA-crossover backtest (fast 10, slow 50) on both
sets of paths: the largest relative difference of a path's final portfolio value, on how many
paths the number of trades differs, and whether every stylized fact gets the same verdict.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

N_PATHS, N_STEPS, SEED = 500, 252, 0
SETTINGS = {
    "2 threads": ({}, 2),
    "1 thread": ({}, 1),
    "OMP_NUM_THREADS=1": ({"OMP_NUM_THREADS": "1"}, 2),
    "ATEN_CPU_CAPABILITY=default": ({"ATEN_CPU_CAPABILITY": "default"}, 2),
    "MKL_CBWR=COMPATIBLE": ({"MKL_CBWR": "COMPATIBLE"}, 2),
}


def sample_in_fresh_process(model_dir: Path, out: Path, env: dict[str, str], threads: int) -> np.ndarray:
    code = (
        "import sys, numpy as np, torch; from synthmarket.generator import Generator;"
        f"torch.set_num_threads({threads});"
        f"np.save(sys.argv[2], Generator.load(sys.argv[1]).sample({N_PATHS}, {N_STEPS}, seed={SEED}))"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_CBWR")} | env
    subprocess.run([sys.executable, "-c", code, str(model_dir), str(out)], env=environment, check=True)
    return np.load(out)


def downstream(features: np.ndarray, model, real):
    import synthmarket as sm
    from synthmarket.paths import Paths

    paths = Paths.from_features(features, model.anchor)
    result = sm.run_montecarlo("sma_cross", paths, params={"fast": 10, "slow": 50}, jobs=1, progress=False)
    verdicts = [r.passed for r in sm.scorecard(real, paths, scores=False).results]
    return paths, result.synthetic, verdicts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generators", default="conv1d_cgan,rgan,vae")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)

    import torch

    from synthmarket import sample_data
    from synthmarket.registry import get_registry
    from synthmarket.training import TrainConfig

    real = sample_data("sp500").loc["2009-05-01":"2018-12-31"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.generators.split(","):
            model = get_registry().get("generator", name)()
            model.fit(real, TrainConfig(steps=args.steps, validate_every=args.steps, progress=False))
            directory = model.save(Path(scratch) / name)
            results = {
                label: sample_in_fresh_process(directory, Path(scratch) / f"{name}-{i}.npy", env, threads)
                for i, (label, (env, threads)) in enumerate(SETTINGS.items())
            }
            base_features = results["2 threads"]
            base_paths, base_runs, base_verdicts = downstream(base_features, model, real)
            for label, features in results.items():
                paths, runs, verdicts = downstream(features, model, real)
                rel_close = np.abs(paths.close / base_paths.close - 1).max()
                rel_value = np.abs(runs["final_value"] / base_runs["final_value"] - 1).max()
                rows.append(
                    [
                        name,
                        label,
                        f"{np.abs(features - base_features).max():.1e}",
                        f"{rel_close:.1e}",
                        f"{rel_value:.1e}",
                        f"{int((runs['n_trades'] != base_runs['n_trades']).sum())}/{N_PATHS}",
                        "yes" if verdicts == base_verdicts else "NO",
                    ]
                )
    columns = [
        "generator",
        "setting",
        "max |d feature|",
        "max rel d close",
        "max rel d final value",
        "trades moved",
        "same verdicts",
    ]
    print(
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{N_PATHS} paths x {N_STEPS} bars, trained {args.steps} steps"
    )
    widths = [max(len(str(r[i])) for r in rows + [columns]) for i in range(len(columns))]
    for row in [columns] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))


if __name__ == "__main__":
    main()
