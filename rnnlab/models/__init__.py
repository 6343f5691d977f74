"""Models built from the recurrent core and the layers; `load_model` restores any of them."""

from .base import CELLS, Model, RecurrentConfig
from .classifier import ClassifierConfig, SequenceClassifier
from .language_model import LanguageModel, LanguageModelConfig
from .sequence_regression import (Forecaster, ForecasterConfig, PianoRollConfig, PianoRollModel,
                                  RegressorConfig, SequenceRegressor)
from .speech import SpeechBatch, SpeechConfig, SpeechRecognizer
from .tagger import TagBatch, Tagger, TaggerConfig
from .translator import TranslationBatch, Translator, TranslatorConfig

MODEL_KINDS: dict[str, type] = {m.kind: m for m in (LanguageModel, SequenceClassifier, Tagger,
                                                    Forecaster, PianoRollModel, SequenceRegressor, Translator,
                                                    SpeechRecognizer)}

__all__ = ["CELLS", "Model", "RecurrentConfig", "LanguageModel", "LanguageModelConfig",
           "SequenceClassifier", "ClassifierConfig", "Tagger", "TaggerConfig", "TagBatch",
           "Forecaster", "ForecasterConfig", "SequenceRegressor", "RegressorConfig", "PianoRollModel", "PianoRollConfig",
           "Translator", "TranslatorConfig", "TranslationBatch", "SpeechRecognizer", "SpeechConfig", "SpeechBatch",
           "MODEL_KINDS"]
