"""rnnlab: recurrent neural networks in NumPy, exact and fast, with PyTorch's names."""

from . import threads
from .backends import backend
from .cell_modules import GRUCell, LSTMCell, RNNCell
from .errors import ConfigError, DTypeError, OrderError, RnnlabError, ShapeError, ValueRangeError
from .networks import GRU, LSTM, RNN, ClockworkRNN, DepthGatedLSTM
from .params import CellParams
from .streaming import Stream

__version__ = "0.1.0"

__all__ = [
    "RNN", "LSTM", "GRU", "ClockworkRNN", "DepthGatedLSTM", "RNNCell", "LSTMCell", "GRUCell", "CellParams", "Stream",
    "RnnlabError", "ShapeError", "DTypeError", "ValueRangeError", "ConfigError", "OrderError", "backend", "threads",
]
