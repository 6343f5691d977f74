"""`rnnlab` commands. No math and no training logic here: parse, call, report."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import click

from ..errors import RnnlabError
from ..models.base import CELLS, Regularisers
from ..optim import OPTIMIZERS
from ..optim.schedules import SCHEDULES
from ..train import TrainConfig


class InputError(click.ClickException):
    """An rnnlab error about what the user gave (an option, a file): one line, exit code 2."""
    exit_code = 2


class _Group(click.Group):
    """Turn rnnlab's own errors into one clear line, never a traceback: bad input (an
    `RnnlabError`) exits with 2, what the machine refused (a full disk, no memory) with 1."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """As click's, but a usage error is one line too (click's own adds the usage above it)."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from ..train.distributed import ends_job_on_error
        with ends_job_on_error():                 # under mpiexec, one rank's error ends every rank
            self._standalone(*args, **kwargs)

    def _standalone(self, *args, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {_one_line(exc.format_message())}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except EOFError:
            sys.exit(1)
        except BrokenPipeError:                   # quietly, as other command-line tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        from contextlib import ExitStack

        from ..threads import limited, shared_pool
        from ..train.distributed import launch_rank, launched, local_ranks
        try:
            with ExitStack() as stack:
                stack.enter_context(shared_pool())    # rnnlab's own process: the fastest loops
                per_rank = ctx.params.get("threads_per_rank")
                if per_rank or launched():            # mpiexec's ranks share the machine's cores
                    stack.enter_context(limited(per_rank or max(1, (os.cpu_count() or 1) // local_ranks())))
                if launched() and launch_rank() != 0:   # rank 0 alone reports; errors still show
                    stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
                return super().invoke(ctx)
        except RnnlabError as exc:
            raise InputError(_one_line(exc)) from None
        except MemoryError:
            raise click.ClickException("out of memory: try smaller sizes (--hidden-size, --batch-size, "
                                       "--bptt) or less data") from None
        except BrokenPipeError:                   # `rnnlab predict ... | head`: the reader left
            raise
        except OSError as exc:                    # a full disk, a run directory under a file, ...
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


def _one_line(exc: BaseException) -> str:
    """The message on one line; a KeyError's repr quotes taken off (str() of one adds them)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split())


POSITIVE = click.IntRange(min=1)
NATURAL = click.IntRange(min=0)
PROBABILITY = click.FloatRange(0.0, 1.0, max_open=True)
POSITIVE_FLOAT = click.FloatRange(min=0.0, min_open=True)


@click.group(cls=_Group)
@click.version_option(package_name="rnnlab")
@click.option("--threads-per-rank", type=click.IntRange(min=1), default=None,
              help="Threads of each process (NumPy's BLAS and rnnlab's loops). Default: unchanged; "
                   "under mpiexec, the cores divided among the ranks on this machine.")
def cli(threads_per_rank) -> None:
    """Recurrent neural networks in NumPy: train, evaluate, sample and inspect models."""


def train_options(f):
    """Options every training command shares (the TrainConfig)."""
    opts = [
        click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Where checkpoints and the metrics log go (default: runs/<command>)."),
        click.option("--epochs", type=POSITIVE, default=None,
                     help="Passes over the training data (raise it to extend a finished run)."),
        click.option("--optimizer", type=click.Choice(sorted(OPTIMIZERS)), default="adam", show_default=True),
        click.option("--lr", type=POSITIVE_FLOAT, default=None, help="Learning rate."),
        click.option("--weight-decay", type=click.FloatRange(min=0.0), default=0.0, show_default=True),
        click.option("--clip", type=click.FloatRange(min=0.0), default=5.0, show_default=True,
                     help="Global gradient-norm clip (0: none)."),
        click.option("--schedule", type=click.Choice(sorted(SCHEDULES)), default="constant", show_default=True),
        click.option("--schedule-arg", "schedule_args", multiple=True, metavar="KEY=VALUE",
                     help="Schedule settings, e.g. gamma=0.5 start=4."),
        click.option("--patience", type=NATURAL, default=None, help="Stop after this many epochs without improvement."),
        click.option("--monitor", default="loss", show_default=True, metavar="METRIC",
                     help="The validation metric that picks the best checkpoint and counts patience "
                          "(a val_ name of the metrics log without val_, e.g. entity_f1)."),
        click.option("--mode", type=click.Choice(["auto", "min", "max"]), default="auto", show_default=True,
                     help="Whether the monitored metric should fall or rise (auto: rise for accuracy, F1, BLEU)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--checkpoint-every", type=NATURAL, default=0, show_default=True,
                     help="Also checkpoint every N steps (0: at epoch ends only)."),
        click.option("--max-steps-per-epoch", type=POSITIVE, default=None),
        click.option("--minutes", type=click.FloatRange(min=0.0, min_open=True), default=None,
                     help="Stop after this much training time, checkpointed mid-epoch; run again to continue."),
        click.option("--no-resume", is_flag=True, help="Start afresh even if the run directory has a checkpoint."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--cell", type=click.Choice(CELLS), default="lstm", show_default=True),
        click.option("--hidden-size", type=POSITIVE, default=None),
        click.option("--num-layers", type=POSITIVE, default=None),
        click.option("--dropout", type=PROBABILITY, default=None),
        click.option("--zoneout", type=PROBABILITY, default=0.0, show_default=True,
                     help="Zoneout of h (and c): each unit keeps its previous value with this probability."),
        click.option("--input-dropout", type=PROBABILITY, default=0.0, show_default=True,
                     help="Variational dropout of the recurrent layers' inputs (one mask per sequence)."),
        click.option("--recurrent-dropout", type=PROBABILITY, default=0.0, show_default=True,
                     help="Variational dropout of h where each step's matmuls read it (one mask per sequence)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _schedule_args(items: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--schedule-arg")
        try:
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            raise click.BadParameter(f"{key}: expected a number, got {value!r}", param_hint="--schedule-arg") from None
    return out


def _given(value, default):
    """The option's value when given (0 included), else the command's default."""
    return default if value is None else value


def _train_config(kw: dict, epochs: int, lr: float) -> TrainConfig:
    return TrainConfig(
        epochs=_given(kw["epochs"], epochs), optimizer=kw["optimizer"], lr=_given(kw["lr"], lr),
        weight_decay=kw["weight_decay"], clip=kw["clip"] if kw["clip"] > 0 else None, schedule=kw["schedule"],
        schedule_args=_schedule_args(kw["schedule_args"]), patience=kw["patience"], monitor=kw["monitor"],
        mode=kw["mode"], seed=kw["seed"],
        checkpoint_every=kw["checkpoint_every"], max_steps_per_epoch=kw["max_steps_per_epoch"],
        max_minutes=kw["minutes"])


def _metrics(record: dict) -> str:
    """`val_loss 1.2345, val_accuracy 0.8100`: a metrics-log record's validation figures."""
    return ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_") and isinstance(v, float))


def _report(result, extra: str = "") -> None:
    if result.stopped == "time":
        click.echo(f"stopped at --minutes after epoch {result.epochs_run} and some steps; run the same "
                   "command again to continue")
    best = next((r for r in result.history if r["epoch"] == result.best_epoch), None)
    if best is not None:
        click.echo(f"best validation: {_metrics(best)} (epoch {best['epoch']} of {result.epochs_run})")
    else:
        click.echo(f"best validation loss: {result.best_val_loss:.4f} after {result.epochs_run} epoch(s)")
    click.echo(f"best checkpoint: {result.best_checkpoint}")
    click.echo(f"last checkpoint: {result.last_checkpoint}")
    click.echo(f"metrics log:     {result.metrics_log}")
    if extra:
        click.echo(extra)


@cli.command("train-lm")
@click.argument("text", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--level", type=click.Choice(["char", "word"]), default="char", show_default=True,
              help="Characters, or words (each line then ends with an <eos> token).")
@click.option("--valid", "valid_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Validation text (then all of TEXT trains; default: the last --valid-fraction of TEXT).")
@click.option("--init-range", type=POSITIVE_FLOAT, default=None,
              help="Every parameter starts as U(-R, R) (Zaremba et al.: 0.1 small, 0.05 medium).")
@click.option("--embedding-dim", type=POSITIVE, default=32, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@click.option("--bptt", type=POSITIVE, default=64, show_default=True, help="Truncated BPTT length.")
@click.option("--valid-fraction", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.1,
              show_default=True)
@click.option("--min-freq", type=POSITIVE, default=1, show_default=True, help="Rarer tokens become <unk>.")
@click.option("--max-chars", type=POSITIVE, default=None, help="Use only the first N characters.")
@click.option("--sample-length", type=NATURAL, default=300, show_default=True)
@train_options
def train_lm_cmd(text, level, valid_file, init_range, embedding_dim, batch_size, bptt, valid_fraction, min_freq, max_chars,
                 sample_length, **kw):
    """Train a character or word language model on TEXT (default: Python's own standard-library
    sources, which every installation has), then sample from it."""
    from ..recipes.language_model import sample_text, train_language_model
    run_dir = kw["run_dir"] or Path("runs/lm")
    if text is None:
        click.echo("no TEXT given: training on Python's standard-library sources")
    result = train_language_model(
        text, run_dir, level=level, cell=kw["cell"], hidden_size=_given(kw["hidden_size"], 128),
        num_layers=_given(kw["num_layers"], 2), embedding_dim=embedding_dim, dropout=_given(kw["dropout"], 0.0),
        batch_size=batch_size, bptt=bptt, valid_fraction=valid_fraction, valid_path=valid_file,
        init_range=init_range, min_freq=min_freq,
        train_config=_train_config(kw, epochs=3, lr=3e-3), resume=not kw["no_resume"],
        progress=not kw["quiet"], max_chars=max_chars,
        regularisers=Regularisers(kw["zoneout"], kw["input_dropout"], kw["recurrent_dropout"]))
    prime = "def " if text is None else "\n"
    sample = sample_text(result.best_checkpoint, prime if level == "char" else "the",
                         sample_length, temperature=0.8, seed=kw["seed"])
    _report(result, f"--- sample (temperature 0.8) ---\n{sample}")


@cli.command("sample")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prime", default="\n", show_default="a newline", help="Text to start from.")
@click.option("--length", type=NATURAL, default=300, show_default=True, help="Tokens to generate.")
@click.option("--temperature", type=POSITIVE_FLOAT, default=0.8, show_default=True)
@click.option("--top-k", type=POSITIVE, default=None)
@click.option("--seed", type=int, default=None)
def sample_cmd(checkpoint, prime, length, temperature, top_k, seed):
    """Sample text from a language-model CHECKPOINT."""
    from ..recipes.language_model import sample_text
    click.echo(sample_text(checkpoint, prime, length, temperature=temperature, top_k=top_k, seed=seed))


@cli.command("describe")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
def describe_cmd(checkpoint):
    """Show what a CHECKPOINT holds: model kind, config, parameter shapes, training progress."""
    from ..recipes.common import describe_checkpoint
    click.echo(json.dumps(describe_checkpoint(checkpoint), indent=2))


def _rnn_kw(kw: dict, hidden: int, layers: int) -> dict:
    return dict(cell=kw["cell"], hidden_size=_given(kw["hidden_size"], hidden),
                num_layers=_given(kw["num_layers"], layers), resume=not kw["no_resume"], progress=not kw["quiet"],
                regularisers=Regularisers(kw["zoneout"], kw["input_dropout"], kw["recurrent_dropout"]))


@cli.command("train-classifier")
@click.argument("train_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--valid", "valid_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Validation file (default: 10% of TRAIN_FILE).")
@click.option("--bidirectional/--unidirectional", default=False, show_default=True)
@click.option("--pooling", type=click.Choice(["last", "mean", "max"]), default="last", show_default=True)
@click.option("--embedding-dim", type=POSITIVE, default=128, show_default=True)
@click.option("--embedding-init-std", type=POSITIVE_FLOAT, default=0.05, show_default=True,
              help="Embeddings start as N(0, std^2); 0.05 trains much better on SST than torch's 1.")
@click.option("--word-dropout", type=PROBABILITY, default=0.0, show_default=True,
              help="Training: each token becomes <unk> with this probability.")
@click.option("--min-freq", type=POSITIVE, default=1, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@click.option("--pretrain-epochs", type=click.IntRange(min=0), default=0, show_default=True,
              help="First train the embedding and the bidirectional network as a bidirectional "
                   "language model on the training sentences for this many epochs.")
@train_options
def train_classifier_cmd(train_file, valid_file, bidirectional, pooling, embedding_dim, embedding_init_std,
                         word_dropout, min_freq, batch_size, pretrain_epochs, **kw):
    """Many-to-one classification of TRAIN_FILE: sentences as `<label> <tokens>` (SST) or a
    `.ts` file of multivariate series."""
    from ..recipes.classifier import train_classifier
    result = train_classifier(train_file, valid_file, kw["run_dir"] or Path("runs/classifier"),
                              bidirectional=bidirectional, pooling=pooling, embedding_dim=embedding_dim,
                              embedding_init_std=embedding_init_std, word_dropout=word_dropout,
                              dropout=_given(kw["dropout"], 0.0), min_freq=min_freq, batch_size=batch_size,
                              pretrain_epochs=pretrain_epochs,
                              train_config=_train_config(kw, epochs=10, lr=2e-3), **_rnn_kw(kw, 128, 1))
    _report(result)


@cli.command("train-tagger")
@click.argument("train_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("valid_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scheme", type=click.Choice(["none", "iob2", "bmes"]), default="none", show_default=True,
              help="How tags make spans: none (POS; CoNLL-U or token<TAB>tag files), iob2 (named "
                   "entities; token<TAB>tag files), bmes (Chinese word segmentation; segmented "
                   "CoNLL-U, id<TAB>word files or space-separated words).")
@click.option("--crf", is_flag=True, help="A linear-chain CRF on top instead of a softmax per token.")
@click.option("--column", type=click.Choice(["upos", "xpos"]), default="upos", show_default=True,
              help="The tag column of CoNLL-U files (scheme none).")
@click.option("--word-dim", type=POSITIVE, default=100, show_default=True)
@click.option("--char-dim", type=POSITIVE, default=32, show_default=True)
@click.option("--char-hidden", type=NATURAL, default=None,
              help="0: no character model. [default: 32; 0 with --scheme bmes]")
@click.option("--bigram-dim", type=NATURAL, default=0, show_default=True,
              help="> 0: embeddings of each token's left and right bigrams too (segmentation).")
@click.option("--lowercase", is_flag=True, help="Look words up lower-cased (the character model reads them as written).")
@click.option("--case-dim", type=NATURAL, default=0, show_default=True,
              help="> 0: an embedding of each word's casing (lower, Title, UPPER, digits, @mention, #hashtag, URL).")
@click.option("--word-dropout", type=PROBABILITY, default=0.0, show_default=True,
              help="Training: each word becomes <unk> with this probability.")
@click.option("--embedding-init-std", type=POSITIVE_FLOAT, default=1.0, show_default=True,
              help="Every embedding (words, characters, bigrams, casing) starts as N(0, std^2).")
@click.option("--min-freq", type=POSITIVE, default=2, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@train_options
def train_tagger_cmd(train_file, valid_file, scheme, crf, column, word_dim, char_dim, char_hidden, bigram_dim,
                     lowercase, case_dim, word_dropout, embedding_init_std, min_freq, batch_size, **kw):
    """Bidirectional tagger (word embeddings + character BiLSTM, softmax or CRF): POS tags,
    named entities or Chinese word segmentation."""
    from ..recipes.tagger import train_tagger
    result = train_tagger(train_file, valid_file, kw["run_dir"] or Path("runs/tagger"), column=column,
                          scheme=scheme, crf=crf, word_dim=word_dim, char_dim=char_dim, char_hidden=char_hidden,
                          bigram_dim=bigram_dim, lowercase=lowercase, case_dim=case_dim, word_dropout=word_dropout,
                          embedding_init_std=embedding_init_std, dropout=_given(kw["dropout"], 0.25),
                          min_freq=min_freq, batch_size=batch_size, train_config=_train_config(kw, epochs=10, lr=2e-3),
                          **_rnn_kw(kw, 128, 1))
    _report(result)


@cli.command("train-forecaster")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--column", default="-1", show_default=True, help="Column name or index (-1: the last).")
@click.option("--window", type=POSITIVE, default=48, show_default=True)
@click.option("--horizon", type=POSITIVE, default=1, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@train_options
def train_forecaster_cmd(csv_file, column, window, horizon, batch_size, **kw):
    """Multi-step forecaster on one column of CSV_FILE (last 20% held out for validation).
    `--dropout` acts between stacked layers (with --num-layers 2 or more)."""
    from ..recipes.series import train_forecaster
    result = train_forecaster(csv_file, kw["run_dir"] or Path("runs/forecaster"), column=_column(column),
                              window=window, horizon=horizon, batch_size=batch_size,
                              dropout=_given(kw["dropout"], 0.0),
                              train_config=_train_config(kw, epochs=20, lr=3e-3), **_rnn_kw(kw, 32, 1))
    _report(result)


@cli.command("train-music")
@click.argument("json_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--batch-size", type=POSITIVE, default=8, show_default=True)
@train_options
def train_music_cmd(json_file, batch_size, **kw):
    """Polyphonic next-step model on a JSB-Chorales-style JSON file. `--dropout` acts between
    stacked layers (with --num-layers 2 or more)."""
    from ..recipes.series import train_music
    result = train_music(json_file, kw["run_dir"] or Path("runs/music"), batch_size=batch_size,
                         dropout=_given(kw["dropout"], 0.0),
                         train_config=_train_config(kw, epochs=50, lr=3e-3), **_rnn_kw(kw, 64, 1))
    _report(result)


@cli.command("train-translator")
@click.argument("pairs_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reverse", is_flag=True, help="Translate the second column into the first.")
@click.option("--tutorial", is_flag=True,
              help="The PyTorch tutorial's pairs: both sides under 10 words, English starting "
                   "\"i am\", \"he is\", ...")
@click.option("--max-tokens", type=POSITIVE, default=15, show_default=True,
              help="Keep pairs whose sides have at most this many tokens.")
@click.option("--min-freq", type=POSITIVE, default=1, show_default=True)
@click.option("--max-vocab", type=POSITIVE, default=None, help="Words kept per language (most frequent).")
@click.option("--embedding-dim", type=POSITIVE, default=256, show_default=True)
@click.option("--unidirectional", is_flag=True, help="A one-directional encoder.")
@click.option("--decoder-hidden", type=NATURAL, default=0, show_default=True,
              help="0: the encoder's output width (no bridge).")
@click.option("--attention", type=click.Choice(["general", "dot", "additive", "none"]), default="general",
              show_default=True)
@click.option("--no-input-feeding", is_flag=True)
@click.option("--tie-embeddings", is_flag=True, help="The output layer is the target embedding.")
@click.option("--label-smoothing", type=click.FloatRange(0.0, 1.0), default=0.1, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=64, show_default=True)
@click.option("--test-fraction", type=click.FloatRange(0.0, 0.5, min_open=True), default=0.1, show_default=True,
              help="English sentences held out (with all their translations) for test.tsv.")
@click.option("--limit", type=POSITIVE, default=None, help="Read only the first N pairs of the file.")
@train_options
def train_translator_cmd(pairs_file, reverse, tutorial, max_tokens, min_freq, max_vocab, embedding_dim,
                         unidirectional, decoder_hidden, attention, no_input_feeding, tie_embeddings,
                         label_smoothing, batch_size, test_fraction, limit, **kw):
    """Encoder-decoder with attention on PAIRS_FILE (`source<TAB>target` lines); writes the
    held-out valid.tsv and test.tsv into the run directory."""
    from ..recipes.translator import train_translator
    rnn = _rnn_kw(kw, 256, 1)
    if rnn["cell"] not in ("lstm", "gru", "gru_reset_before", "rnn"):
        raise click.BadParameter(f"the decoder steps lstm, gru, gru_reset_before or rnn cells, got {rnn['cell']!r}",
                                 param_hint="--cell")
    for name in ("zoneout", "input_dropout", "recurrent_dropout"):
        if kw[name]:
            raise click.BadParameter("the translator's decoder does not take it; use --dropout",
                                     param_hint=f"--{name.replace('_', '-')}")
    result = train_translator(pairs_file, kw["run_dir"] or Path("runs/translator"), reverse=reverse, tutorial=tutorial,
                              max_tokens=max_tokens, min_freq=min_freq, max_vocab=max_vocab, cell=rnn["cell"],
                              hidden_size=rnn["hidden_size"], num_layers=rnn["num_layers"],
                              bidirectional=not unidirectional, embedding_dim=embedding_dim,
                              decoder_hidden=decoder_hidden, attention=attention,
                              input_feeding=not no_input_feeding, tie_embeddings=tie_embeddings,
                              dropout=_given(kw["dropout"], 0.1), label_smoothing=label_smoothing,
                              batch_size=batch_size, test_fraction=test_fraction, limit=limit,
                              train_config=_train_config(kw, epochs=10, lr=1e-3), resume=not kw["no_resume"],
                              progress=not kw["quiet"])
    _report(result, f"held-out pairs: {Path(result.run_dir) / 'test.tsv'} (score with `rnnlab evaluate`)")


@cli.command("train-speech")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--transcripts", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="path<TAB>labels lines (default: labels from {digit}_{speaker}_{take}.wav names).")
@click.option("--exclude", type=click.Path(path_type=Path), default=None,
              help="A folder or list of recordings never trained on (e.g. FSDD's splits/test.txt).")
@click.option("--held-out-speaker", default=None, help="Leave this FSDD speaker out of training.")
@click.option("--connected", type=NATURAL, default=0, show_default=True,
              help="> 0: train on this many connected-digit utterances an epoch, joined from the recordings.")
@click.option("--features", "feature", type=click.Choice(["mfcc", "logmel"]), default="mfcc", show_default=True)
@click.option("--n-mels", type=POSITIVE, default=40, show_default=True)
@click.option("--n-mfcc", type=POSITIVE, default=13, show_default=True)
@click.option("--no-deltas", is_flag=True, help="No first and second time derivatives.")
@click.option("--preemphasis", type=float, default=0.0, show_default=True,
              help="Filter y[n] - A y[n-1] before the spectrum (HTK and Kaldi: 0.97); 0: none.")
@click.option("--per-utterance-norm", is_flag=True, help="Normalise each utterance by its own mean and variance.")
@click.option("--stack", type=POSITIVE, default=2, show_default=True, help="Frames side by side (and the stride).")
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@click.option("--noise-snr", default=None, metavar="LOW,HIGH", help="Augment: white noise at an SNR (dB) drawn from LOW..HIGH.")
@click.option("--speed", default=None, metavar="LOW,HIGH", help="Augment: a speed factor drawn from LOW..HIGH, e.g. 0.9,1.1.")
@click.option("--spec-augment", is_flag=True, help="Augment: SpecAugment time and frequency masks.")
@click.option("--gain-db", default=None, metavar="LOW,HIGH",
              help="Augment: recordings made louder or quieter by a gain (dB) drawn from LOW..HIGH before joining.")
@click.option("--vtlp", default=None, metavar="LOW,HIGH",
              help="Augment: frequencies warped by a vocal tract length factor drawn from LOW..HIGH, e.g. 0.9,1.1.")
@train_options
def train_speech_cmd(data, transcripts, exclude, held_out_speaker, connected, feature, n_mels, n_mfcc, no_deltas,
                     preemphasis, per_utterance_norm, stack, batch_size, noise_snr, speed, spec_augment, gain_db,
                     vtlp, **kw):
    """Speech recognition with CTC: a BiLSTM/BiGRU on MFCC or log-mel features of the WAV files in
    DATA (a folder, or a list of paths)."""
    from ..recipes.speech import Augment, train_speech
    augment = Augment(_pair(noise_snr, "--noise-snr"), _pair(speed, "--speed"), spec_augment,
                      _pair(gain_db, "--gain-db"), _pair(vtlp, "--vtlp"))
    result = train_speech(data, kw["run_dir"] or Path("runs/speech"), transcripts=transcripts, exclude=exclude,
                          held_out_speaker=held_out_speaker, connected=connected, feature=feature, n_mels=n_mels,
                          n_mfcc=n_mfcc, deltas=not no_deltas, preemphasis=preemphasis,
                          per_utterance_norm=per_utterance_norm, stack=stack,
                          dropout=_given(kw["dropout"], 0.2), batch_size=batch_size, augment=augment,
                          train_config=_train_config(kw, epochs=20, lr=1e-3), **_rnn_kw(kw, 128, 2))
    _report(result)


def _pair(value: str | None, name: str) -> tuple[float, float] | None:
    """"LOW,HIGH" -> (low, high)."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected LOW,HIGH (two numbers), got {value!r}", param_hint=name) from None
    return low, high


@cli.command("transcribe")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--beam", type=POSITIVE, default=1, show_default=True, help="1: best path; more: prefix beam search.")
@click.option("--vtln", is_flag=True,
              help="The files are one speaker's: decode them at the vocal tract length warp (0.80-1.20) "
                   "the model is surest of (estimated from the files, no labels).")
def transcribe_cmd(checkpoint, files, beam, vtln):
    """The labels (digits) spoken in each WAV file, one line each: FILE<TAB>labels."""
    from ..recipes.common import load_model
    from ..recipes.speech import transcribe
    model, _ = load_model(checkpoint, expect_kind="speech")
    for f, labels in zip(files, transcribe(model, list(files), beam=beam, vtln=vtln)):
        click.echo(f"{f}\t{' '.join(labels)}")


@cli.command("translate")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("input_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--beam", type=POSITIVE, default=1, show_default=True, help="1: greedy; more: beam search.")
@click.option("--length-penalty", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Beam search ranks score / length^this.")
@click.option("--attention-plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the first sentence's attention weights into this PNG.")
def translate_cmd(checkpoint, input_file, beam, length_penalty, attention_plot):
    """Translate the lines of INPUT_FILE or standard input, one translation a line."""
    from ..recipes.common import load_model
    from ..recipes.translator import attention_heatmap, translate
    model, _ = load_model(checkpoint, expect_kind="translator")
    lines = [line for line in _input_lines(input_file) if line.strip()]
    for out in translate(model, lines, beam=beam, length_penalty=length_penalty):
        click.echo(out)
    if attention_plot is not None:
        attention_heatmap(model, lines[0], attention_plot)
        click.echo(f"attention: {attention_plot}", err=True)


@cli.command("evaluate")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--column", default=None, help="Forecasters: the CSV column (default: the one it was trained on).")
@click.option("--held-out", is_flag=True,
              help="Forecasters: score only the part of the series held out from training.")
@click.option("--beam", type=POSITIVE, default=None,
              help="Translators and speech models: the beam of the decoding scored (default 1: greedy).")
@click.option("--transcripts", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Speech models: a file of path<TAB>labels lines, for recordings not named {digit}_{speaker}_{take}.wav.")
@click.option("--vtln", is_flag=True,
              help="Speech models: decode each speaker at the vocal tract length warp (0.80-1.20) estimated "
                   "from their recordings, no labels (speakers from FSDD names; other names: one speaker).")
def evaluate_cmd(checkpoint, data, column, held_out, beam, transcripts, vtln):
    """Metrics of CHECKPOINT on DATA (a file in the format its model was trained on; speech
    models: a folder or list of WAV files, scored as they are and joined into connected digits)."""
    from ..recipes import evaluate_checkpoint
    options = {"column": _column(column), "held_out": held_out} if column is not None or held_out else {}
    if beam is not None:
        options["beam"] = beam
    if transcripts is not None:
        options["transcripts"] = transcripts
    if vtln:
        options["vtln"] = True
    click.echo(json.dumps(evaluate_checkpoint(checkpoint, data, **options), indent=2))


@cli.command("predict")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("input_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--column", default=None, help="Forecasters: the CSV column (default: the one it was trained on).")
def predict_cmd(checkpoint, input_file, column):
    """Labels (classifier), tags (tagger) for the lines of INPUT_FILE or standard input, or the
    next values of the series in INPUT_FILE (forecaster)."""
    from ..recipes import predict_checkpoint
    from ..recipes.common import load_model
    _, meta = load_model(checkpoint)
    if meta["kind"] == "forecaster":
        if input_file is None:
            raise click.UsageError("a forecaster needs INPUT_FILE: a CSV series")
        click.echo(json.dumps(predict_checkpoint(checkpoint, input_file, column=_column(column))))
        return
    if column is not None:
        raise click.BadParameter(f"only forecasters read a CSV column; this is a {meta['kind']}",
                                 param_hint="--column")
    from ..data import read_conllu
    if input_file is not None and input_file.suffix == ".conllu":        # its words, not its lines
        lines = [" ".join(words) for words, _ in read_conllu(input_file, column=None)]
    else:
        lines = _input_lines(input_file)
    for out in predict_checkpoint(checkpoint, lines):
        click.echo(out)


@cli.command("segment")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("input_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def segment_cmd(checkpoint, input_file):
    """Raw Chinese text (INPUT_FILE or standard input) as words separated by spaces, by a
    segmenter (`train-tagger --scheme bmes`)."""
    from ..recipes.common import load_model
    from ..recipes.tagger import segment
    model, _ = load_model(checkpoint, expect_kind="tagger")
    for out in segment(model, _input_lines(input_file)):
        click.echo(out)


def _input_lines(input_file: Path | None) -> list[str]:
    """The lines of INPUT_FILE, or of standard input when there is none."""
    from ..data import read_text, split_lines
    if input_file is not None:
        return split_lines(read_text(input_file))
    with click.open_file("-", encoding="utf-8") as stdin:
        return split_lines(stdin.read())


@cli.command("compare")
@click.option("--task", type=click.Choice(["adding", "copy", "reber", "first_token"]), default="adding", show_default=True)
@click.option("--length", type=int, default=100, show_default=True, help="Sequence length or gap.")
@click.option("--cells", default="rnn,lstm,gru", show_default=True, help="Comma-separated cells.")
@click.option("--seeds", type=int, default=3, show_default=True)
@click.option("--hidden-size", type=int, default=64, show_default=True)
@click.option("--n-train", type=int, default=10_000, show_default=True)
@click.option("--n-test", type=int, default=1_000, show_default=True)
@click.option("--batch-size", type=int, default=50, show_default=True)
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--clip", type=float, default=1.0, show_default=True)
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/compare"), show_default=True)
@click.option("--quiet", is_flag=True)
def compare_cmd(task, length, cells, seeds, hidden_size, n_train, n_test, batch_size, epochs, lr, clip, run_dir, quiet):
    """Train several cells on a long-dependency task and report why gates work."""
    from ..recipes.compare import compare_cells
    names = _names(cells, "--cells", CELLS)
    res = compare_cells(task, length, names, seeds, hidden_size, n_train, n_test, batch_size,
                        TrainConfig(epochs=epochs, lr=lr, clip=clip or None), run_dir, progress=not quiet)
    click.echo(res.table.read_text())
    click.echo(f"report: {res.report}")


@cli.command("gradient-flow")
@click.option("--cells", default="rnn,lstm,gru", show_default=True)
@click.option("--length", type=POSITIVE, default=100, show_default=True)
@click.option("--hidden-size", type=POSITIVE, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("runs/gradient-flow/gradient_flow.png"),
              show_default=True)
def gradient_flow_cmd(cells, length, hidden_size, seed, out):
    """||dL/dh_k|| against distance for freshly initialised cells on random input (the
    chain-rule product through time), as a table of decay rates and a PNG plot."""
    import numpy as np

    from ..diagnostics import network_gradient_flow
    from ..diagnostics.plots import plot_gradient_flow
    from ..models.base import RecurrentConfig, make_rnn
    x = np.random.default_rng(seed).standard_normal((length, 32, 8)).astype(np.float32)
    norms = {}
    for cell in _names(cells, "--cells", CELLS):
        net = make_rnn(RecurrentConfig(cell, hidden_size), 8, np.dtype(np.float32), np.random.default_rng(seed))
        flow = network_gradient_flow(net, x)
        norms[cell] = flow.h_norm[0]
        d = flow.decay(last=min(50, length))
        click.echo(f"{cell:18s} per-step factor {d['per_step_factor']:.3f}, "
                   f"{d['orders_per_50_steps']:.2f} orders of magnitude per 50 steps")
        if flow.c_norm is not None:                                 # LSTM: through the cell state
            dc = flow.decay("c", last=min(50, length))
            click.echo(f"{'  cell state c':18s} per-step factor {dc['per_step_factor']:.3f}, "
                       f"{dc['orders_per_50_steps']:.2f} orders of magnitude per 50 steps")
    plot_gradient_flow(norms, out)
    click.echo(f"plot: {out}")


@cli.command("inspect")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--text", "text", default=None, help="Text to run through the model.")
@click.option("--text-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--signal", default="quotes", show_default=True,
              help="quotes, line_position, brackets or regex:PATTERN: find the units that follow it.")
@click.option("--units", type=POSITIVE, default=3, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("runs/inspect/inspect.html"),
              show_default=True)
def inspect_cmd(checkpoint, text, text_file, signal, units, out):
    """Gates, saturation, units correlated with a signal, and gradient flow of a character
    language model on a text, as one HTML report; for a translator, each line's translations
    and attention."""
    from ..data import read_text, split_lines
    from ..recipes.common import load_model
    from ..recipes.inspect import inspect_language_model
    if (text is None) == (text_file is None):
        raise click.UsageError("give exactly one of --text and --text-file")
    if load_model(checkpoint)[1]["kind"] == "translator":
        from ..recipes.translator import translation_report
        lines = split_lines(text if text is not None else read_text(text_file))
        click.echo(f"report: {translation_report(checkpoint, lines, out)}")
        return
    res = inspect_language_model(checkpoint, text if text is not None else read_text(text_file), out,
                                 signal=signal, units=units)
    for t in res.top_units:
        click.echo(f"{t['layer']} {t['state']}: " + ", ".join(f"unit {u} r={r:+.2f}" for u, r in t["units"]))
    click.echo(f"report: {res.report}")


@cli.command("convert")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--nonlinearity", type=click.Choice(["tanh", "relu"]), default=None,
              help="For a torch nn.RNN state dict, whose weights cannot tell (default: tanh, with a warning).")
def convert_cmd(source, target, nonlinearity):
    """Convert SOURCE to TARGET by extension: PyTorch state dicts (.pt/.pth/.safetensors),
    rnnlab checkpoints and ONNX models (.onnx)."""
    from ..recipes.convert import convert
    click.echo(convert(source, target, nonlinearity=nonlinearity))


def _column(value: str | None) -> int | str | None:
    """A CSV column option: an integer index ("-1", "2") or a header name."""
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _names(value: str, name: str, options: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated names, each one of `options`."""
    out = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in out if v not in options]
    if bad or not out:
        raise click.BadParameter(f"expected some of {', '.join(options)}, got {value!r}", param_hint=name)
    return out


def _int_list(value: str, name: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}", param_hint=name) from None
    if not out or min(out) < 1:
        raise click.BadParameter(f"expected positive integers, got {value!r}", param_hint=name)
    return out


@cli.command("bench")
@click.option("--cells", "--kinds", "kinds", default="RNN,LSTM,GRU", show_default=True,
              help="Also LSTM_LN, GRU_LN, CLOCKWORK, DG_LSTM, LSTM_ZONEOUT (timed without peers).")
@click.option("--hidden-sizes", "--hidden", "hs", default="64,256,1024", show_default=True,
              help="Hidden sizes H (D = H).")
@click.option("--batch-sizes", "--batch", "bs", default="1,32,128", show_default=True, help="Batch sizes B.")
@click.option("--steps", "ts", default="50,200", show_default=True, help="Sequence lengths T.")
@click.option("--modes", default="inference,training,stream", show_default=True)
@click.option("--rounds", type=POSITIVE, default=5, show_default=True, help="Interleaved rounds; the median is reported.")
@click.option("--threads", type=POSITIVE, default=2, show_default=True, help="Threads for torch and onnxruntime.")
@click.option("--no-memory", is_flag=True, help="Skip the peak-memory measurement (H=1024, B=128).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table (Markdown) here.")
@click.option("--models", default=None, metavar="NAMES",
              help="Whole models instead of the layer grid: 'all' or some of char lstm, char gru, "
                   "word small, word medium, tagger, classifier, forecaster, translator (comma-separated); "
                   "training and evaluation steps against the same model in torch.")
@click.pass_context
def bench_cmd(ctx, kinds, hs, bs, ts, modes, rounds, threads, no_memory, out, models):
    """Time rnnlab against torch.nn and onnxruntime (those installed) on a grid; print ratios
    and rnnlab's share of the measured GEMM peak. With --models: whole models' steps."""
    if models is not None:
        options = {"kinds": "--cells", "hs": "--hidden-sizes", "bs": "--batch-sizes", "ts": "--steps", "modes": "--modes"}
        grid = [o for n, o in options.items() if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]
        if grid:
            raise click.UsageError(f"--models: times whole models; the layer grid's {', '.join(grid)} "
                                   f"does not apply, got both")
        return _bench_models(models, rounds, threads, no_memory, out)
    from ..recipes.bench import KINDS, MODES, available_peers, format_report, format_row, run_bench
    cells = _names(kinds, "--cells", tuple(KINDS))
    grid = _int_list(hs, "--hidden-sizes"), _int_list(bs, "--batch-sizes"), _int_list(ts, "--steps")
    mode_names = _names(modes, "--modes", tuple(MODES))
    peers = available_peers()
    click.echo(f"peers: {', '.join(peers) or 'none installed (pip install torch==2.13.0 onnxruntime)'}")
    report = run_bench(cells, *grid, mode_names, rounds, threads, peers,
                       memory=not no_memory, on_row=lambda r, peak: click.echo(format_row(r, peak, peers)))
    text = format_report(report)
    click.echo("\n" + text)
    if out is not None:
        out.write_text(text + "\n")
        click.echo(f"table: {out}")


def _bench_models(models: str, rounds: int, threads: int, no_memory: bool, out: Path | None) -> None:
    from ..recipes.bench_models import CASES, HEADER, format_models, format_result, run_models
    names = tuple(CASES) if models.strip() == "all" else _names(models, "--models", tuple(CASES))
    click.echo(HEADER + "\n|" + "---|" * (HEADER.count("|") - 1))
    results = run_models(names, rounds, threads, memory=not no_memory,
                         on_result=lambda r: click.echo(format_result(r)))
    text = format_models(results, rounds, threads)
    click.echo("\n" + text)
    if out is not None:
        out.write_text(text + "\n")
        click.echo(f"table: {out}")
