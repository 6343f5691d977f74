"""Greedy and beam search on a hand-made Markov chain whose most likely first token leads
nowhere good: the scores are known, so the search's answers are too."""

import numpy as np
import pytest

from rnnlab.models.decoding import beam_search, greedy, max_lengths, take_rows

BOS, EOS, A, B = 0, 1, 2, 3
P = np.array([  # P[last token] = distribution of the next (bos, eos, a, b)
    [0.0, 0.0, 0.6, 0.4],       # after bos: a looks best
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.2, 0.4, 0.4],       # after a: nothing likely
    [0.0, 0.99, 0.005, 0.005],  # after b: surely the end
])


def markov_step(state, y):
    with np.errstate(divide="ignore"):
        return np.log(P[y]), state + 1, state.astype(int)   # state: steps taken; "attends" to it


def score(tokens):
    path = [BOS] + tokens + [EOS]
    return float(sum(np.log(P[a, b]) for a, b in zip(path, path[1:])))


def test_greedy_takes_the_likeliest_token_each_step():
    out = greedy(markov_step, np.zeros(2), BOS, EOS, np.array([3, 1]))
    assert out[0].tokens == [A, A, A]             # a, then a (tie with b: the first), to the limit
    assert out[0].align == [0, 1, 2] and out[0].length == 3
    assert out[0].score == pytest.approx(np.log(0.6 * 0.4 * 0.4))
    assert out[1].tokens == [A]


def test_beam_finds_a_better_sentence_than_greedy():
    hyps = beam_search(markov_step, np.zeros(1), BOS, EOS, np.array([3]), beam=2, length_penalty=0.0)
    best = hyps[0][0]
    assert best.tokens == [B] and best.score == pytest.approx(score([B]))
    assert best.score > score(greedy(markov_step, np.zeros(1), BOS, EOS, np.array([3]))[0].tokens)   # a a a
    assert [h.score for h in hyps[0]] == sorted((h.score for h in hyps[0]), reverse=True)


def test_beam_one_is_greedy_and_rows_are_independent():
    limits = np.array([1, 2, 5, 4])
    g = greedy(markov_step, np.zeros(4), BOS, EOS, limits)
    b = beam_search(markov_step, np.zeros(4), BOS, EOS, limits, beam=1)
    assert [h.tokens for h in g] == [h[0].tokens for h in b]
    assert [h.align for h in g] == [h[0].align for h in b]
    assert [h.score for h in g] == pytest.approx([h[0].score for h in b])
    for n in range(4):                            # each row alone gives its answer in the batch
        alone = beam_search(markov_step, np.zeros(1), BOS, EOS, limits[n:n + 1], beam=3)
        assert alone[0][0].tokens == beam_search(markov_step, np.zeros(4), BOS, EOS, limits, beam=3)[n][0].tokens


def test_length_normalisation_prefers_longer_sentences():
    raw = beam_search(markov_step, np.zeros(1), BOS, EOS, np.array([4]), beam=3, length_penalty=0.0)[0]
    mean = beam_search(markov_step, np.zeros(1), BOS, EOS, np.array([4]), beam=3, length_penalty=1.0)[0]
    assert raw[0].normalised(0.0) == max(h.score for h in raw)
    assert mean[0].normalised(1.0) == max(h.normalised(1.0) for h in mean)


def test_helpers():
    state = (np.arange(3), (np.arange(6).reshape(3, 2), None))
    picked = take_rows(state, np.array([2, 2, 0]))
    assert picked[0].tolist() == [2, 2, 0] and picked[1][0].tolist() == [[4, 5], [4, 5], [0, 1]] and picked[1][1] is None
    assert max_lengths(np.array([1, 4]), 1.5, 5).tolist() == [7, 11]
