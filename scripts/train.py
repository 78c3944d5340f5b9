"""Train a model: ``python scripts/train.py model=dcgan`` (see configs/train.yaml)."""

from artdirector.train import main

if __name__ == "__main__":
    main()
