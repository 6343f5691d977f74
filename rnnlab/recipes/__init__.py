"""Recipes: plain typed functions that build a task and a model and train, evaluate, sample
or predict. The CLI only parses arguments and calls these; they work from Python too."""

from __future__ import annotations

from pathlib import Path

from .common import describe_checkpoint, load_model


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, *, column: int | str | None = None,
                        held_out: bool = False, beam: int | None = None,
                        transcripts: str | Path | None = None, vtln: bool = False) -> dict[str, float]:
    """Metrics of any checkpoint on a data file of its kind's format. Forecasters also take the
    CSV `column` (default: the one they were trained on) and `held_out` (score only the part of
    the series held out from training); translators and speech models the `beam` of the
    decoding scored; speech models the `transcripts` of recordings not named the FSDD way and
    `vtln` (each speaker decoded at the warp estimated from their recordings)."""
    from ..errors import RnnlabError
    from .classifier import evaluate_classifier
    from .language_model import evaluate_language_model
    from .series import evaluate_forecaster, evaluate_music
    from .tagger import evaluate_tagger
    model, meta = load_model(checkpoint)
    kind = meta["kind"]
    if kind == "forecaster":
        return evaluate_forecaster(model, data, column, held_out)
    if column is not None or held_out:
        raise RnnlabError(f"column, held_out: only forecasters take them; {checkpoint} is a {kind}")
    if kind == "translator":
        from .translator import evaluate_translator
        return evaluate_translator(model, data, beam=beam or 1)
    if kind == "speech":
        from .speech import evaluate_speech
        return evaluate_speech(model, data, transcripts=transcripts, beam=beam or 1, vtln=vtln)
    if transcripts is not None or vtln:
        raise RnnlabError(f"transcripts, vtln: only speech models take them; {checkpoint} is a {kind}")
    if beam is not None:
        raise RnnlabError(f"beam: only translators and speech models take it; {checkpoint} is a {kind}")
    if kind == "language_model":
        return evaluate_language_model(checkpoint, data)
    run = {"sequence_classifier": evaluate_classifier, "tagger": evaluate_tagger,
           "piano_roll": evaluate_music}.get(kind)
    if run is None:
        raise RnnlabError(f"{checkpoint}: no evaluation for model kind {kind!r}")
    return run(model, data)


def predict_checkpoint(checkpoint: str | Path, inputs: list[str] | str | Path, *,
                       column: int | str | None = None) -> list:
    """Predictions of a classifier or tagger (lines of text) or a forecaster (a CSV path and
    its `column`, by default the one it was trained on)."""
    from ..errors import RnnlabError
    from .classifier import predict_classifier
    from .series import predict_forecaster
    from .tagger import predict_tagger
    model, meta = load_model(checkpoint)
    kind = meta["kind"]
    if kind == "forecaster":
        return predict_forecaster(model, inputs, column)
    if kind == "sequence_classifier":
        return predict_classifier(model, list(inputs))
    if kind == "tagger":
        return predict_tagger(model, list(inputs))
    if kind == "translator":
        raise RnnlabError(f"{checkpoint}: a translator; use `rnnlab translate`")
    if kind == "speech":
        raise RnnlabError(f"{checkpoint}: a speech model; use `rnnlab transcribe`")
    raise RnnlabError(f"{checkpoint}: a {kind} does not predict from input; "
                      + ("use `rnnlab sample`" if kind == "language_model" else "use `rnnlab evaluate`"))


__all__ = ["load_model", "describe_checkpoint", "evaluate_checkpoint", "predict_checkpoint"]
