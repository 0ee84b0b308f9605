"""The shared training loop: config, seeds, checkpoints and resume, divergence, selection, logs."""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from synthmarket.bars import to_features
from synthmarket.checkpoints import CHECKPOINT_DIR, LAST_FILE, read_checkpoint
from synthmarket.errors import ConfigError, ModelFileError, TrainingDiverged
from synthmarket.testing import corrupt
from synthmarket.train_config import TrainConfig, parse_duration, resolve_device
from synthmarket.trainable import Batch, StepContext, WindowSampler
from synthmarket.training import Trainer
from synthmarket.training_data import TrainingData
from synthmarket.training_progress import LOG_FILE
from synthmarket.validation_score import ValidationScore
from synthmarket_plugins.conv1d_cgan import Conv1DCGAN

torch.set_num_threads(1)

TINY_GAN = dict(hidden=8, d_hidden=8, dilations="1,2", d_dilations="1,2", window=32, batch_size=8)


class GaussianModel:
    """A real (if tiny) trainable: per-channel mean and log-scale fitted by Gaussian likelihood."""

    name = "gaussian"

    def __init__(self, n_channels: int, lr: float = 0.05, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.net = nn.Linear(1, 2 * n_channels)
        self.lr = lr
        self.optimizers = {}

    def training_plan(self):
        return {"steps": 20, "batch_size": 8, "window": 16}

    def prepare(self, device):
        self.net.to(device)
        self.optimizers = {"adam": torch.optim.Adam(self.net.parameters(), lr=self.lr)}

    def training_modules(self):
        return {"net": self.net}

    def training_optimizers(self):
        return self.optimizers

    def params(self):
        mean, log_scale = self.net(torch.ones(1, 1, device=self.net.weight.device)).chunk(2, dim=-1)
        return mean, log_scale

    def train_step(self, batch: Batch, ctx: StepContext):
        mean, log_scale = self.params()
        nll = (0.5 * ((batch.x - mean) * torch.exp(-log_scale)) ** 2 + log_scale).mean()
        ctx.optimize("adam", nll, self.optimizers["adam"])
        return {"nll": float(nll.detach())}

    def sample_scaled(self, n, labels, rng, n_steps):
        with torch.no_grad():
            mean, log_scale = (p.cpu().numpy()[0] for p in self.params())
        return mean + np.exp(log_scale) * rng.standard_normal((n, n_steps, mean.shape[0]))

    def checkpoint_meta(self):
        return {"generator": self.name, "hyperparameters": {"lr": self.lr}}


@pytest.fixture(scope="module")
def dataset(sp500_recent):
    return TrainingData.from_bars(sp500_recent.loc["2014-01-01":"2016-12-31"])


@pytest.fixture(scope="module")
def regime_dataset(sp500_recent):
    return TrainingData.from_bars(sp500_recent.loc["2014-01-01":"2016-12-31"], regimes="volatility")


def weights(model) -> dict[str, np.ndarray]:
    return {
        f"{n}.{k}": v.detach().cpu().numpy().copy()
        for n, m in model.training_modules().items()
        for k, v in m.state_dict().items()
    }


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


# -- the validation split --------------------------------------------------------------------
def test_one_validation_block_holds_out_the_latest_bars(sp500_recent):
    bars = sp500_recent.loc["2014-01-01":"2016-12-31"]
    data = TrainingData.from_bars(bars, regimes="volatility")
    n = len(bars) - 1
    n_val = round(0.15 * n)
    assert len(data.validation) == n_val and data.train_segments == (n - n_val,)
    np.testing.assert_array_equal(data.window_starts(32), np.arange(n - n_val - 31))
    assert (
        data.scheme
        == TrainingData.from_bars(bars.iloc[: n - n_val + 1], regimes="volatility", validation_fraction=0).scheme
    )  # regimes fitted on the training bars


def test_validation_blocks_spread_the_held_out_bars_and_windows_stay_inside_one_stretch(sp500_recent):
    bars = sp500_recent.loc["2014-01-01":"2016-12-31"]
    data = TrainingData.from_bars(bars, validation_blocks=3, regimes="volatility")
    one = TrainingData.from_bars(bars, regimes="volatility")
    assert len(data.validation) == len(one.validation) and len(data.train) == len(one.train)
    assert len(data.train_segments) == 3 and sum(data.train_segments) == len(data.train)
    assert max(data.train_segments) - min(data.train_segments) <= 1
    # the held-out rows are three blocks, the last one ending at the latest bar
    scaled = data.scaler.transform(to_features(bars)).astype(np.float32)
    np.testing.assert_array_equal(data.validation[-5:], scaled[-5:])
    np.testing.assert_array_equal(data.train[:5], scaled[:5])
    starts = data.window_starts(64)
    ends = np.cumsum(data.train_segments)
    for s in starts:
        assert np.searchsorted(ends, s, side="right") == np.searchsorted(ends, s + 63, side="right")
    assert len(starts) == sum(n - 63 for n in data.train_segments)
    with pytest.raises(ConfigError, match="No training stretch"):
        data.window_starts(data.longest_segment + 1)


@pytest.mark.parametrize("blocks", [0, -1, 1.5, True])
def test_validation_blocks_must_be_a_positive_whole_number(sp500_recent, blocks):
    with pytest.raises(ConfigError, match="validation_blocks"):
        TrainingData.from_bars(sp500_recent.loc["2014-01-01":"2016-12-31"], validation_blocks=blocks)


def test_training_windows_never_span_two_stretches(sp500_recent):
    data = TrainingData.from_bars(sp500_recent.loc["2014-01-01":"2016-12-31"], validation_blocks=4)
    sampler = WindowSampler(data, 48, 256, "cpu", seed=0)
    ends = np.cumsum(data.train_segments)
    for _ in range(4):
        x = sampler.next().x.numpy()
        for window in x:
            start = int(np.flatnonzero((data.train == window[0]).all(axis=1))[0])
            assert np.searchsorted(ends, start, side="right") == np.searchsorted(ends, start + 47, side="right")


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("5m", 300), ("1h", 3600), ("1.5h", 5400), ("2 min", 120), (45, 45), ("30", 30)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 days", "-3m", "0s", ""])
def test_parse_duration_rejects_nonsense(text):
    with pytest.raises(ConfigError, match="duration|positive"):
        parse_duration(text)


def test_config_checks_its_fields(tmp_path):
    assert TrainConfig(time_budget="2m").time_budget == 120
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device="tpu")
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="out_dir"):
        TrainConfig(resume=True)
    with pytest.raises(ConfigError, match="Unknown training option"):
        TrainConfig.from_any({"stpes": 3})
    assert TrainConfig(out_dir=tmp_path).log_file == tmp_path / LOG_FILE


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    with pytest.raises(ConfigError, match="Unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


# -- the loop ----------------------------------------------------------------------------------
def test_training_lowers_the_loss_and_logs_jsonl(dataset, tmp_path):
    model = GaussianModel(dataset.n_channels)
    report = Trainer(TrainConfig(steps=60, validate_every=20, out_dir=tmp_path, log_every=5)).fit(model, dataset)
    assert report.steps == 60 and report.stopped == "finished"
    rows = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    events = [r["event"] for r in rows]
    assert events[0] == "start" and events[-1] == "stop"
    losses = [r["nll"] for r in rows if r["event"] == "step"]
    assert losses[-1] < losses[0]
    validations = [r for r in rows if r["event"] == "validation"]
    assert [r["step"] for r in validations] == [20, 40, 60]
    assert all(r["validation"] > 0 and "acf_abs" in r for r in validations)
    assert report.best_step in (20, 40, 60) and report.history[-1]["step"] == 60


def test_same_seed_same_weights_and_other_seed_differs(regime_dataset):
    config = dict(steps=6, validate_every=3, seed=3)
    runs = []
    for seed in (3, 3, 4):
        model = Conv1DCGAN(**TINY_GAN)
        model.fit(regime_dataset, TrainConfig(**{**config, "seed": seed}))
        runs.append(model)
    assert_same_weights(runs[0], runs[1])
    with pytest.raises(AssertionError):
        assert_same_weights(runs[0], runs[2])


def test_checkpoints_are_safetensors_and_json(dataset, tmp_path):
    model = GaussianModel(dataset.n_channels)
    Trainer(TrainConfig(steps=10, checkpoint_every=4, out_dir=tmp_path)).fit(model, dataset)
    folder = tmp_path / CHECKPOINT_DIR
    assert sorted(p.name for p in folder.iterdir()) == ["ckpt-00000010.safetensors", LAST_FILE]
    record, file = read_checkpoint(tmp_path)
    assert record["state"]["step"] == 10 and file.name == record["file"]
    corrupt(file)
    with pytest.raises(ModelFileError, match="checksum"):
        read_checkpoint(tmp_path)
    with pytest.raises(ModelFileError, match="Nothing to resume"):
        read_checkpoint(tmp_path / "elsewhere")


@pytest.mark.parametrize("damage", ["tensors", "state"])
def test_a_damaged_checkpoint_whose_checksum_matches_is_one_message(dataset, tmp_path, damage):
    """Someone rewrote the checkpoint and its record together: resume refuses it by name, no traceback."""
    import json

    from synthmarket.model_files import file_sha256

    Trainer(TrainConfig(steps=4, checkpoint_every=4, out_dir=tmp_path)).fit(GaussianModel(dataset.n_channels), dataset)
    record, file = read_checkpoint(tmp_path)
    if damage == "tensors":
        file.write_bytes(b"not safetensors at all")
    else:
        record["state"]["no_such_field"] = 1
    record["sha256"] = file_sha256(file)
    (tmp_path / CHECKPOINT_DIR / LAST_FILE).write_text(json.dumps(record))
    with pytest.raises(ModelFileError, match="damaged or does not fit"):
        Trainer(TrainConfig(steps=8, out_dir=tmp_path, resume=True)).fit(GaussianModel(dataset.n_channels), dataset)


def test_resume_after_interruption_gives_the_uninterrupted_result(regime_dataset, tmp_path):
    """SIGINT at step 7 stops at a step boundary with a checkpoint; resuming ends where one run ends."""
    config = dict(steps=12, validate_every=4, checkpoint_every=5, seed=1, patience=None)
    whole = Conv1DCGAN(**TINY_GAN)
    whole_report = whole.fit(regime_dataset, TrainConfig(**config, out_dir=tmp_path / "whole"))

    def interrupt(step, losses):
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    first = Conv1DCGAN(**TINY_GAN)
    first.callbacks.append(interrupt)
    stopped = first.fit(regime_dataset, TrainConfig(**config, out_dir=tmp_path / "split"))
    assert stopped.stopped == "interrupted" and stopped.steps == 7
    assert read_checkpoint(tmp_path / "split")[0]["state"]["step"] == 7

    resumed = Conv1DCGAN(**TINY_GAN)
    report = resumed.fit(regime_dataset, TrainConfig(**config, out_dir=tmp_path / "split", resume=True))
    assert report.steps == 12 and report.stopped == "finished"
    assert report.best_step == whole_report.best_step
    assert report.best_score == pytest.approx(whole_report.best_score, rel=0, abs=0)
    assert_same_weights(whole, resumed)
    log = [json.loads(line) for line in (tmp_path / "split" / LOG_FILE).read_text().splitlines()]
    assert [r["event"] for r in log if r["event"] in ("start", "resume")] == ["start", "resume"]


def test_resume_refuses_other_data_or_hyperparameters(dataset, regime_dataset, tmp_path):
    Conv1DCGAN(**TINY_GAN).fit(dataset, TrainConfig(steps=2, out_dir=tmp_path))
    with pytest.raises(ConfigError, match="hyper-parameters"):
        Conv1DCGAN(**{**TINY_GAN, "lr_g": 1e-3}).fit(dataset, TrainConfig(steps=4, out_dir=tmp_path, resume=True))
    other = TrainingData.from_bars(regime_dataset.bars.iloc[:-20])
    with pytest.raises(ConfigError, match="training data"):
        Conv1DCGAN(**TINY_GAN).fit(other, TrainConfig(steps=4, out_dir=tmp_path, resume=True))


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(dataset, tmp_path):
    seen = []
    model = GaussianModel(dataset.n_channels, lr=1e6)
    trainer = Trainer(
        TrainConfig(steps=200, checkpoint_every=1, out_dir=tmp_path, max_loss=1e4),
        callbacks=[lambda step, losses: seen.append(step)],
    )
    with pytest.raises(TrainingDiverged, match=r"diverged at step \d+: loss 'nll'.*last good checkpoint \(step \d+\)"):
        trainer.fit(model, dataset)
    record, _ = read_checkpoint(tmp_path)
    assert record["state"]["step"] == seen[-1]  # the step before the bad one
    rows = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert all(math.isfinite(r["nll"]) and abs(r["nll"]) <= 1e4 for r in rows if r["event"] == "step")


def test_a_nan_loss_diverges(dataset):
    with pytest.raises(TrainingDiverged, match="not finite"):
        # A learning rate of infinity is a real (if absurd) setting: the first update makes NaN weights.
        Trainer(TrainConfig(steps=5)).fit(GaussianModel(dataset.n_channels, lr=float("inf")), dataset)


def test_time_budget_stops_and_checkpoints(dataset, tmp_path):
    report = Trainer(TrainConfig(steps=10**7, time_budget=0.5, validate_every=10**6, out_dir=tmp_path)).fit(
        GaussianModel(dataset.n_channels), dataset
    )
    assert report.stopped == "time budget" and 0 < report.steps < 10**7
    assert read_checkpoint(tmp_path)[0]["state"]["step"] == report.steps


def _select(dataset, scores, **config):
    """Train with scripted validation scores; (report, the weights at every step)."""
    scores, snapshots = iter(scores), {}
    model = GaussianModel(dataset.n_channels)

    def remember(step, losses):
        snapshots[step] = weights(model)

    report = Trainer(
        TrainConfig(steps=100, validate_every=5, **config),
        score=lambda sample: (next(scores), {}),
        callbacks=[remember],
    ).fit(model, dataset)
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, snapshots[report.best_step][key])  # the kept weights are the best step's
    return report


def test_model_selection_keeps_the_best_weights_and_stops_early(dataset):
    report = _select(dataset, [3.0, 1.0, 2.0, 4.0, 5.0, 0.5], patience=3, select_after=0)
    assert report.stopped == "early stopping" and report.steps == 25
    assert report.best_step == 10 and report.best_score == 1.0


def test_model_selection_ignores_the_warm_up_once_it_is_over(dataset):
    # the warm-up (20 steps) holds the lowest score; it neither wins nor counts towards patience
    report = _select(dataset, [0.5, 3.0, 2.0, 4.0, 3.5, 5.0, 6.0, 0.1], patience=2, select_after=20)
    assert report.stopped == "early stopping" and report.steps == 35
    assert report.best_step == 25 and report.best_score == 3.5
    assert [row["best"] for row in report.history] == [True, False, False, True, True, False, False]


def test_model_selection_warm_up_is_a_third_of_the_planned_steps_by_default(dataset):
    scores = iter([0.1, 2.0, 1.0, 3.0, 4.0, 5.0])
    report = Trainer(
        TrainConfig(steps=30, validate_every=5, patience=None), score=lambda sample: (next(scores), {})
    ).fit(GaussianModel(dataset.n_channels), dataset)
    assert report.best_step == 15 and report.best_score == 1.0
    with pytest.raises(ConfigError, match="select_after"):
        TrainConfig(select_after=-1)


def test_a_time_budget_shortens_the_warm_up_to_a_third_of_the_steps_it_allows(dataset):
    """3,000 steps are planned, but at 10 ms a step the 2-second budget holds at most 200: the
    warm-up ends by step 70 instead of 1,000, so its best gives way to a later checkpoint."""
    import time

    scores = iter([0.1, *np.arange(1.0, 100.0)])
    report = Trainer(
        TrainConfig(steps=3000, validate_every=10, time_budget=2.0, patience=None),
        score=lambda sample: (next(scores), {}),
        callbacks=[lambda step, losses: time.sleep(0.01)],
    ).fit(GaussianModel(dataset.n_channels), dataset)
    assert report.stopped == "time budget" and report.steps <= 200
    assert 10 < report.best_step <= 70 and report.best_score > 0.1


def test_validation_score_is_zero_for_the_real_path_and_near_one_for_a_random_walk(dataset):
    score = ValidationScore(dataset, n_paths=32)
    held_out = dataset.validation
    real_scaled = (held_out - held_out.mean(axis=0, dtype=np.float64)) / held_out.std(
        axis=0, dtype=np.float64
    )  # at the training level

    def copy_real(n, labels, rng, n_steps):
        return np.repeat(real_scaled[None, :n_steps], n, axis=0)

    def random_walk(n, labels, rng, n_steps):
        return rng.standard_normal((n, n_steps, dataset.n_channels))

    assert score(copy_real)[0] == pytest.approx(0.0, abs=1e-12)
    walk, distances = score(random_walk)
    assert 0.6 < walk < 1.6
    assert {"w1_1", "w1_5", "w1_20", "acf_abs", "acf_sq", "leverage"} <= set(distances)


@pytest.fixture(scope="module")
def crash_dataset(sp500):
    """2004-2009, the last quarter held out in two blocks: 2006-07 and 2008-09."""
    return TrainingData.from_bars(sp500.loc["2004":"2009"], validation_fraction=0.25, validation_blocks=2)


def test_validation_forecasts_start_inside_the_held_out_blocks(crash_dataset):
    score = ValidationScore(crash_dataset, n_paths=8, context_length=100)
    forecasts = score.forecasts
    assert forecasts.horizons == (1, 5, 20) and len(forecasts.contexts) == 48
    series, held_out = crash_dataset.series, crash_dataset.held_out
    returns = series[:, 0].astype(np.float64) * score.std + score.mean
    for context, realised in zip(forecasts.contexts, forecasts.realised):
        (origin,) = [o for o in range(100, len(series)) if np.array_equal(series[o - 100 : o], context)]
        assert held_out[origin : origin + 20].all()
        np.testing.assert_allclose(realised, [returns[origin : origin + h].sum() for h in (1, 5, 20)], rtol=1e-6)
    assert ValidationScore(crash_dataset, n_paths=8).forecasts is None  # a model without a context


def test_validation_forecasts_reward_a_model_that_reads_its_context(crash_dataset):
    """The forecast half of the validation score, with garch (fitted by arch): forecasting the
    held-out days from the bars before each beats forecasting them from its stationary state."""
    from synthmarket.registry import get_registry

    garch = get_registry().get("generator", "garch")()
    garch.fit(crash_dataset)
    scaler = crash_dataset.scaler
    score = ValidationScore(crash_dataset, n_paths=64, context_length=100)

    def garch_forecasts(read_context: bool):
        def sample(n, labels, rng, n_steps, context=None):
            starts = (
                [None] if context is None else [scaler.inverse_transform(c) if read_context else None for c in context]
            )
            seeds = rng.integers(2**31, size=len(starts))
            return np.concatenate(
                [scaler.transform(garch.sample(n, n_steps, seed=int(s), context=c)) for s, c in zip(seeds, starts)]
            )

        return sample

    (reading, read), (ignoring, ignored) = score(garch_forecasts(True)), score(garch_forecasts(False))
    for h in (1, 5, 20):
        assert read[f"crps_{h}"] < ignored[f"crps_{h}"]
    assert read["crps_1"] < 0.95 < ignored["crps_1"]  # beats the normal forecast with the training volatility
    assert reading < ignoring


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "name, hparams",
    [
        ("conv1d_cgan", TINY_GAN),
        ("rgan", dict(hidden=8, d_hidden=8, window=32, warmup=8, batch_size=8)),  # R1 through a cuDNN GRU critic
        ("vae", dict(hidden=8, encoder_hidden=8, window=32, batch_size=8)),
    ],
)
def test_mixed_precision_on_cuda(regime_dataset, name, hparams):
    from synthmarket.registry import get_registry

    model = get_registry().get("generator", name)(**hparams)
    report = model.fit(regime_dataset, TrainConfig(steps=20, validate_every=10, device="cuda"))
    assert report.device.startswith("cuda") and report.steps == 20
    assert np.isfinite(model.sample(4, 50, seed=0)).all()
