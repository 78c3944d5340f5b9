"""The Data Agent: ``python scripts/prepare.py data=image_folder data.path=DIR`` writes the data card."""

from artdirector.cli import prepare

if __name__ == "__main__":
    prepare()
