"""Models built from the recurrent core and the layers; `load_model` restores any of them."""

from .base import CELLS, Model, RecurrentConfig
from .language_model import LanguageModel, LanguageModelConfig

MODEL_KINDS: dict[str, type] = {LanguageModel.kind: LanguageModel}

__all__ = ["CELLS", "Model", "RecurrentConfig", "LanguageModel", "LanguageModelConfig",
           "MODEL_KINDS"]
