"""Run by tests/train/test_distributed.py, as one process or under `mpiexec -n N`: a short
training of a language model, a tagger or a classifier on tiny data, dropout off.

    python tests/train/mpi_script.py KIND DATA_DIR RUN_DIR [--die-at-step K | --fail-at-step K]

KIND: lm, tagger, classifier, or cli (`rnnlab train-classifier` through the command line).
--die-at-step K: rank 1 kills itself (SIGKILL) in its K-th training step, as a crashed process
would; --fail-at-step K: rank 1 raises an error there instead; test scaffolding only."""

import os
import signal
import sys
from pathlib import Path

import numpy as np

from rnnlab.train import TrainConfig


def data(folder: Path) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    words = "the cat sat on a mat and dog ran to big red house".split()
    (folder / "lm.txt").write_text("".join(" ".join(rng.choice(words, 8)) + "\n" for _ in range(60)))
    tags = {w: ("DET" if w in ("the", "a") else "NOUN" if w in ("cat", "mat", "dog", "house") else "X") for w in words}
    (folder / "t.conllu").write_text("".join(
        "".join(f"{i + 1}\t{w}\t_\t{tags[w]}\t_\t_\t_\t_\t_\t_\n" for i, w in enumerate(rng.choice(words, rng.integers(2, 9))))
        + "\n" for _ in range(50)))
    (folder / "sst.txt").write_text("".join(f"{int(rng.integers(2))} {' '.join(rng.choice(words, rng.integers(2, 9)))}\n"
                                            for _ in range(70)))


def main() -> None:
    kind, folder, run = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    die, fail = (int(sys.argv[sys.argv.index(o) + 1]) if o in sys.argv else None
                 for o in ("--die-at-step", "--fail-at-step"))
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    if (die is not None or fail is not None) and rank == 1:
        from rnnlab.models import LanguageModel, SequenceClassifier, Tagger
        for cls in (LanguageModel, SequenceClassifier, Tagger):
            original, calls = cls.forward_backward, [0]

            def dying(self, batch, carry=None, original=original, calls=calls):
                calls[0] += 1
                if calls[0] == die:
                    os.kill(os.getpid(), signal.SIGKILL)
                if calls[0] == fail:
                    raise RuntimeError(f"rank 1 failed in step {fail}")
                return original(self, batch, carry)
            cls.forward_backward = dying
    if kind == "cli":
        from rnnlab.cli import cli
        cli(["train-classifier", str(folder / "sst.txt"), "--epochs", "3", "--hidden-size", "8", "--batch-size", "8",
             "--run-dir", str(run), "--quiet"])
    tc = TrainConfig(epochs=3, lr=3e-3, seed=0, checkpoint_every=2)
    common = dict(train_config=tc, progress=False, hidden_size=8)
    if kind == "lm":
        from rnnlab.recipes.language_model import train_language_model
        train_language_model(folder / "lm.txt", run, level="word", embedding_dim=8, num_layers=1, batch_size=4,
                             bptt=5, **common)
    elif kind == "tagger":
        from rnnlab.recipes.tagger import train_tagger
        train_tagger(folder / "t.conllu", folder / "t.conllu", run, word_dim=6, char_dim=4, char_hidden=3,
                     dropout=0.0, min_freq=1, batch_size=8, **common)
    else:
        from rnnlab.recipes.classifier import train_classifier
        train_classifier(folder / "sst.txt", None, run, embedding_dim=6, bidirectional=True, batch_size=8, **common)


if __name__ == "__main__":
    if sys.argv[1] == "data":
        data(Path(sys.argv[2]))
    else:
        main()
