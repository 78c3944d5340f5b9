"""Run the creative director: ``python scripts/agent.py ckpt=PATH request="generate new art" policy=threshold``."""

from artdirector.agent import main

if __name__ == "__main__":
    main()
