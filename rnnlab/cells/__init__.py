"""Recurrent cells: one file per family, each a frozen config with pure step functions."""

from .base import Cell
from .gru import GRUCellConfig
from .layernorm import LayerNormGRUCellConfig, LayerNormLSTMCellConfig
from .lstm import LSTMCellConfig
from .rnn import RNNCellConfig

__all__ = ["Cell", "GRUCellConfig", "LSTMCellConfig", "RNNCellConfig", "LayerNormLSTMCellConfig",
           "LayerNormGRUCellConfig"]
