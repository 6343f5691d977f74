"""Data: vocabularies, readers for the usual formats, padding, bucketing, stream batching."""

from .batching import bucket_batches, pad_sequences, stream_batches
from .readers import (DataError, read_conll_columns, read_conllu, read_csv_series, read_jsb_chorales, read_sst, read_text,
                      read_ts, split_lines)
from .vocab import Vocab

__all__ = ["Vocab", "DataError", "read_text", "split_lines", "read_conllu", "read_conll_columns", "read_sst", "read_csv_series",
           "read_ts", "read_jsb_chorales", "pad_sequences", "bucket_batches", "stream_batches"]
