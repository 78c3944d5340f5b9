"""An Optuna sweep that resumes: a driver killed mid-sweep (a login node rebooted, a SLURM driver job
preempted) is started again with the same command, and only the trials still to go run.

``hydra-optuna-sweeper`` loads an existing study from its storage (``load_if_exists``) but then runs
``n_trials`` *more*. This subclass counts the trials that already finished in the storage, marks the ones
a dead driver left running as failed (they are rerun: their jobs died with it or their results were never
reported), and runs ``n_trials`` minus the finished ones.

It lives in the ``hydra_plugins`` namespace because Hydra only instantiates sweepers from there.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

try:  # the [sweep] extra; without it Hydra's plugin scan must still import this module quietly
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # pragma: no cover
    OptunaSweeper = None


class ResumableOptunaSweeper(OptunaSweeper or object):
    def sweep(self, arguments: list[str]) -> None:
        impl: Any = self.sweeper
        if impl.storage and impl.study_name:
            import optuna
            from optuna.trial import TrialState

            try:
                study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
            except KeyError:  # no such study yet: a fresh sweep
                study = None
            if study is not None:
                trials = study.get_trials(deepcopy=False)
                for t in trials:
                    if t.state == TrialState.RUNNING:
                        study._storage.set_trial_state(t._trial_id, TrialState.FAIL)
                done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
                interrupted = sum(t.state == TrialState.RUNNING for t in trials)
                impl.n_trials = max(0, impl.n_trials - done)
                log.info(
                    "study %r in %s: %d trial(s) finished, %d interrupted (marked failed, rerun); %d to go",
                    impl.study_name,
                    impl.storage,
                    done,
                    interrupted,
                    impl.n_trials,
                )
        return super().sweep(arguments)
