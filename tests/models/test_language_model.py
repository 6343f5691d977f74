import numpy as np
import pytest

from rnnlab.data import Vocab
from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
from tests.helpers import gradcheck_model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_forward_backward_gradcheck_with_dropout_fixed(cell):
    vocab = Vocab(list("abcde"))
    cfg = LanguageModelConfig("char", 4, RecurrentConfig(cell, 5, 2, dropout=0.2), dropout=0.3)
    m = LanguageModel(vocab, cfg, dtype=np.float64, rng=0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, (4, 3)), rng.integers(0, 5, (4, 3))
    carry = (rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5)))
    carry = carry if cell == "lstm" else carry[0]

    gradcheck_model(m, (x, y), carry)


def test_sampling_is_seeded_and_respects_top_k():
    vocab = Vocab(list("abcdefgh"))
    m = LanguageModel(vocab, LanguageModelConfig("char", 4, RecurrentConfig("gru", 8)), rng=0)
    a = m.sample("ab", 50, rng=1)
    assert a == m.sample("ab", 50, rng=1) and len(a) == 50
    greedy = m.sample("ab", 20, top_k=1, rng=2)
    assert greedy == m.sample("ab", 20, top_k=1, rng=3)    # top-1 is deterministic
    with pytest.raises(ValueError, match="temperature"):
        m.sample("a", 5, temperature=0)
    with pytest.raises(ValueError, match=r"prime: 'z' is not in the vocabulary"):
        m.sample("z", 5)


def test_padded_sequences_with_lengths_gradcheck():
    """Reber-style batches (x, y, lengths): padded positions neither count nor leak."""
    from tests.helpers import gradcheck_model
    vocab = Vocab(list("abcd"))
    m = LanguageModel(vocab, LanguageModelConfig("char", 3, RecurrentConfig("gru", 4)), dtype=np.float64, rng=0)
    rng = np.random.default_rng(1)
    x, y, lengths = rng.integers(0, 4, (5, 3)), rng.integers(0, 4, (5, 3)), np.array([5, 2, 3])
    gradcheck_model(m, (x, y, lengths))
    m.eval()
    a = m.evaluate_batch((x, y, lengths))
    x[4:, 1:] = 0
    y[4:, 1:] = 3
    assert m.evaluate_batch((x, y, lengths))[0] == a[0]
