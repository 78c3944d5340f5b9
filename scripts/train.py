"""Train a model: ``python scripts/train.py model=dcgan`` (see configs/train.yaml)."""

from artdirector.cli import train

if __name__ == "__main__":
    train()
