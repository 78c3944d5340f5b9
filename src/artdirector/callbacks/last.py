"""``last.ckpt`` after every epoch, beside the periodic checkpoints: what a requeued job resumes from."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class LastCheckpoint(ModelCheckpoint):
    """Overwrites ``<dirpath>/last.ckpt`` at the end of every ``every_n_epochs``-th epoch (epoch ends only:
    a resume from there is exact, a mid-epoch one is not). Its state key differs from any other
    ``ModelCheckpoint``'s, so it can sit beside the periodic one whatever that one's settings."""

    def __init__(self, dirpath: str, every_n_epochs: int = 1) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="last",
            save_top_k=1,
            every_n_epochs=every_n_epochs,
            enable_version_counter=False,
            save_on_train_epoch_end=True,
        )

    @property
    def state_key(self) -> str:
        return self._generate_state_key(role="last", every_n_epochs=self._every_n_epochs)
