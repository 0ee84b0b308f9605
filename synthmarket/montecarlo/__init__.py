"""Monte-Carlo backtests: one backtrader strategy over many price paths, in parallel, streamed to disk.

:func:`run_montecarlo` runs a strategy on every path of a scenario set (and on the real
history, for comparison) and returns a :class:`MonteCarloResult`: one row of metrics per
path and a :class:`Summary` of their distribution.

How the work is shaped, one module a step:

- :mod:`.strategy`: strategies travel as strings (a registered name, ``package.module:Class``
  or ``/abs/path/file.py:Class``), which every worker resolves for itself; parameters are
  checked and converted to the types of their defaults;
- :mod:`.scenarios`: the paths, in memory or sampled from a generator chunk by chunk, cut by the
  main process into batches of arrays (:class:`BatchTask`);
- :mod:`.batch`: what a worker (a local process or Ray, through :mod:`synthmarket.executor`) does
  with a batch, :func:`run_batch`; it and the modules it imports load no pandas;
- :mod:`.settings`: what a backtrader user sets on Cerebro (broker, sizer, cheats, resampled
  feeds, analyzers, a ``setup(cerebro)`` hook), checked once and applied to every path;
- :mod:`.metrics`: one path, one small Cerebro, a few numbers back (the metrics are listed there);
- :mod:`.output`: each path's printed output, captured apart and capped;
- :mod:`.failures`: errors before the run, where a path failed in the user's code, ``max_failures``;
- :mod:`.storage`: each finished batch becomes one Parquet part file in ``out/results/``; at
  the end (also after Ctrl-C, a failure or a dead worker) the parts are compacted into
  ``out/results.parquet``. ``resume=True`` skips the paths already stored, so a killed run
  loses at most the batches in flight and never counts a path twice;
- :mod:`.summary`: the distribution of the metrics and the :class:`MonteCarloResult`;
- :mod:`.runner`: :func:`run_montecarlo`, which puts these together.

Every name below is imported from its module on first use, so that
``from synthmarket.montecarlo import strategy_params`` costs only :mod:`.strategy`.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

#: The modules a worker process needs: its server imports them before it forks the workers.
WORKER_MODULES = ("synthmarket.montecarlo.batch",)

#: Public name -> the module of this package that defines it.
_MODULES = {
    "WorkerDied": "..executor",
    "REAL": "..paths",
    **dict.fromkeys(("BatchResult", "BatchTask", "run_batch"), ".batch"),
    **dict.fromkeys(
        (
            "BARS_PER_YEAR",
            "COLUMNS",
            "INT_METRICS",
            "METRICS",
            "PathRun",
            "backtest_path",
            "compute_metrics",
            "run_path",
        ),
        ".metrics",
    ),
    **dict.fromkeys(("COMMISSION_SCHEMES", "RESAMPLE", "Settings"), ".settings"),
    **dict.fromkeys(("TooManyFailures", "check_failures"), ".failures"),
    **dict.fromkeys(("PathFailed", "run_montecarlo"), ".runner"),
    **dict.fromkeys(("GeneratedScenarios", "InMemoryScenarios", "ScenarioSet", "as_scenarios"), ".scenarios"),
    **dict.fromkeys(
        (
            "FORMAT",
            "MANIFEST_FILE",
            "PARTS_DIR",
            "RESULTS_FILE",
            "SUMMARY_FILE",
            "ResultStore",
            "read_results",
            "tidy_results",
        ),
        ".storage",
    ),
    **dict.fromkeys(("coerce_params", "parse_param_items", "resolve_strategy", "strategy_params"), ".strategy"),
    **dict.fromkeys(("PERCENTILES", "MonteCarloResult", "Summary"), ".summary"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _MODULES)

__all__ = [
    "BatchResult",
    "BatchTask",
    "COLUMNS",
    "GeneratedScenarios",
    "InMemoryScenarios",
    "METRICS",
    "MonteCarloResult",
    "PathFailed",
    "REAL",
    "ResultStore",
    "ScenarioSet",
    "Settings",
    "TooManyFailures",
    "check_failures",
    "run_path",
    "PathRun",
    "Summary",
    "WorkerDied",
    "as_scenarios",
    "backtest_path",
    "coerce_params",
    "compute_metrics",
    "parse_param_items",
    "read_results",
    "resolve_strategy",
    "run_batch",
    "run_montecarlo",
    "strategy_params",
    "tidy_results",
]
