"""The training report: one self-contained HTML page of a model directory's training: the losses
and validation scores of ``train_log.jsonl``, how it stopped, the snapshots and the settings.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from .errors import ModelFileError
from .figures import loss_keys, training_curves
from .outdir import write_text_atomic
from .page_parts import cards_html, figure_to_data_uri, file_to_data_uri, fmt_number, html_table, img_tag, page_html
from .runs import read_training_log
from .snapshots import snapshot_files

TRAINING_REPORT_FILE = "training.html"


def build_training_report(model_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write an HTML view of a model directory's training and return its path.

    Shows the losses and validation scores of ``train_log.jsonl`` against the step, how the
    training stopped, the hyper-parameters and the training data's fingerprint.

    Parameters
    ----------
    model_dir : str or Path
        A model directory (``synthmarket train --out``).
    out : str or Path, optional
        The HTML file; default ``model_dir/training.html``.

    Raises
    ------
    ModelFileError
        When ``model_dir`` is not a model directory and holds no training log either.
    """
    from .model_files import CONFIG_FILE, read_config
    from .training_progress import LOG_FILE

    model_dir = Path(model_dir)
    rows = read_training_log(model_dir)
    config: dict = {}
    if (model_dir / CONFIG_FILE).is_file():
        config = read_config(model_dir)
    elif not rows:
        raise ModelFileError(
            f"{str(model_dir)!r} holds neither {CONFIG_FILE} nor {LOG_FILE}: give a model directory "
            f"(`synthmarket train --out DIR`)."
        )
    generator = config.get("generator") or next(
        (r.get("model", {}).get("generator") for r in rows if "model" in r), "model"
    )
    sections: list[tuple[str, str, str]] = []
    report = config.get("train_report") or {}
    stop = next((r for r in reversed(rows) if r.get("event") == "stop"), {})
    start = next((r for r in rows if r.get("event") in ("start", "resume")), {})
    cards = [
        ("steps", fmt_number(report.get("steps", stop.get("step")))),
        ("seconds", fmt_number(report.get("seconds", stop.get("elapsed")))),
        ("stopped by", str(report.get("stopped", stop.get("reason", "-")))),
        ("best validation score", fmt_number(report.get("best_score", stop.get("best_score")))),
    ]
    sections.append(
        (
            "summary",
            "Summary",
            "<h2>At a glance</h2>"
            + cards_html(cards)
            + f"<p class='muted'>Device: {html.escape(str(report.get('device', start.get('device', '-'))))}. "
            "The validation score is the stylized-facts distance of sampled paths to the held-out real "
            "returns, relative to i.i.d. normal returns (1.0); the best-scoring weights are kept.</p>",
        )
    )
    fig = training_curves(rows)
    if fig is not None:
        body = "<h2>Training curves</h2>" + img_tag(figure_to_data_uri(fig), "training losses and validation score")
        logged = [r for r in rows if r.get("event") == "step"]
        losses = loss_keys(logged)
        if losses:
            values = {key: [r[key] for r in logged if isinstance(r.get(key), (int, float))] for key in losses}
            frame = pd.DataFrame(
                [
                    {"loss": key, "times logged": len(v), "first logged": v[0], "last logged": v[-1], "minimum": min(v)}
                    for key, v in values.items()
                    if v
                ]
            )
            body += html_table(frame)
        validations = [r for r in rows if r.get("event") == "validation"]
        if validations:
            frame = pd.DataFrame(validations).drop(columns=["event", "time"], errors="ignore")
            body += (
                "<details><summary>Every validation</summary>"
                + html_table(frame.astype({c: float for c in frame.columns if c not in ("best",)}, errors="ignore"))
                + "</details>"
            )
    else:
        body = (
            "<h2>Training curves</h2><p>This generator logged no losses or validation scores: it fits in one "
            "go (a classical model), so there is no curve to show.</p>"
        )
    sections.append(("curves", "Curves", body))
    snapshots = snapshot_files(model_dir)
    if snapshots:
        strip = "".join(f"<figure class='snapshot'>{img_tag(file_to_data_uri(p), p.stem)}</figure>" for p in snapshots)
        sections.append(
            (
                "snapshots",
                "Snapshots",
                "<h2>Snapshots</h2><p>Generated paths (colour) over real windows "
                "(grey), the same noise at every step: how the model learned the shape of the market.</p>"
                f"<div class='strip'>{strip}</div>",
            )
        )
    hparams = config.get("hyperparameters") or {}
    settings = [
        ("generator", generator),
        ("package version", config.get("package_version")),
        ("training data fingerprint", config.get("data_fingerprint")),
        ("regimes", None if not config.get("regimes") else ", ".join(config["regimes"].get("names", []))),
    ]
    settings += [(f"train: {k}", v) for k, v in (start.get("config") or {}).items() if v is not None]
    frame = pd.DataFrame([(k, str(v)) for k, v in settings if v is not None], columns=["setting", "value"])
    hp = pd.DataFrame({"hyper-parameter": list(hparams), "value": [str(v) for v in hparams.values()]})
    sections.append(
        (
            "config",
            "Configuration",
            "<h2>Configuration</h2>"
            + html_table(frame, text_columns=["value"])
            + "<h3>Hyper-parameters</h3>"
            + html_table(hp, text_columns=["value"]),
        )
    )
    out = Path(out) if out is not None else model_dir / TRAINING_REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page_html(f"Training of {generator}", str(model_dir), sections))
    return out
