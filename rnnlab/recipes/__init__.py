"""Recipes: plain typed functions that build a task and a model and train, evaluate, sample
or predict. The CLI only parses arguments and calls these; they work from Python too."""

from .common import describe_checkpoint, load_model

__all__ = ["load_model", "describe_checkpoint"]
