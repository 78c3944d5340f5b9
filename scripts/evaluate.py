"""Evaluate a generator checkpoint: ``python scripts/evaluate.py ckpt=PATH evaluator=fid_inception n_samples=10000``."""

from artdirector.cli import evaluate

if __name__ == "__main__":
    evaluate()
