"""The Data Agent: ``python scripts/prepare.py data=image_folder data.path=DIR`` writes the data card."""

from artdirector.prepare import main

if __name__ == "__main__":
    main()
