"""Layers beside the recurrent core: embedding, dense per time step, dropout."""

from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding

__all__ = ["Dense", "Dropout", "Embedding"]
