"""Evaluate a generator checkpoint: ``python scripts/evaluate.py ckpt=PATH evaluator=fid_inception n_samples=10000``."""

from artdirector.evaluate import main

if __name__ == "__main__":
    main()
