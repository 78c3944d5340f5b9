"""Run the creative director: ``python scripts/agent.py "a 3, a 5 and a 9"`` (the request first, then any
overrides) or ``python scripts/agent.py ckpt=PATH request="generate new art" policy=threshold``."""

import sys

from artdirector.errors import exit_user_error
from artdirector.prompts import PromptError
from artdirector.prompts.argv import request_argv

if __name__ == "__main__":
    # the request made one Hydra-safe override (commas, quotes), and refused here when the grammar cannot
    # read it: before the agents, torch or any model is imported (one line, as every user error)
    try:
        sys.argv = request_argv(sys.argv)
    except PromptError as err:
        exit_user_error(str(err), traceback_hint=False)
    from artdirector.agent import main

    main()
