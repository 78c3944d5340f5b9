"""Finetuning: the creator's own training continued for a few batches, and the same samples redrawn."""

from __future__ import annotations

from typing import Any

import torch

from artdirector.agents.refiners.base import Context, Refiner
from artdirector.agents.types import Candidate, Samples
from artdirector.io import atomic_write
from artdirector.models.checkpoint import checkpoint_kind, load_module, module_class, read_checkpoint


def _stop_at(ctx: Context):
    """A Lightning callback that ends training after the batch during which the run's budget was spent."""
    import lightning as L

    class StopAt(L.Callback):
        def on_train_batch_end(self, trainer, *args: Any) -> None:
            if ctx.out_of_time():
                trainer.should_stop = True

    return StopAt()


class Finetune(Refiner):
    """Continue the creator's own training from its checkpoint for ``steps`` batches (optimiser state
    included), write the result as a new checkpoint under the run's directory (the source is never
    touched) and redraw the same samples with it: the same latents (and labels) for a GAN, the same seeds,
    labels and sampling options for a diffusion model. The Generation Agent stays on its model unless the
    Director accepts the candidate. A weights-only checkpoint (a shipped zoo model) starts its optimisers
    afresh. Paired with the input when the samples have latents or a seed."""

    name = "finetune"
    requires = frozenset({"trainable"})

    def apply(self, samples: Samples, ctx: Context, steps: int = 50, precision: str = "32-true") -> Candidate:
        if ctx.datamodule is None:
            raise ValueError("finetune needs a data module to train on")
        # the batches and the noise the training draws come from the run's seed, so the same run repeats bit for
        # bit; the RNG is forked so that finetuning leaves the process's global stream as it found it
        seed = int(torch.randint(0, 2**31 - 1, (), generator=ctx.gen.generator))
        with torch.random.fork_rng(devices=[ctx.gen.device] if ctx.gen.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return self._finetune(samples, ctx, steps, precision)

    def _finetune(self, samples: Samples, ctx: Context, steps: int, precision: str) -> Candidate:
        import lightning as L  # loaded only when a run finetunes

        gen = ctx.gen
        src = gen.ckpt  # the model in effect: the source, or the last accepted finetune
        ckpt = read_checkpoint(src)
        kind = checkpoint_kind(ckpt)
        cls = module_class(kind)
        resumable = "optimizer_states" in ckpt
        start = int(ckpt.get("global_step", 0)) if resumable else 0
        model = cls(**ckpt["hyper_parameters"])
        if not resumable:
            model.load_state_dict(ckpt["state_dict"])
        accel = "gpu" if gen.device.type == "cuda" else "cpu"
        per_batch = 2 if kind == "gan" else 1  # a GAN's global step counts G's and D's optimiser steps
        trainer = L.Trainer(
            accelerator=accel,
            devices=1,
            precision=precision,
            max_steps=start + per_batch * steps,
            max_epochs=-1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            callbacks=[_stop_at(ctx)] if ctx.deadline is not None else None,
        )
        trainer.fit(
            model, datamodule=ctx.datamodule, ckpt_path=str(src) if resumable else None, weights_only=True
        )
        done = (trainer.global_step - start) // per_batch
        if done < steps:
            ctx.stopped(done, steps, "batches")
        ctx.state["finetunes"] = ctx.state.get("finetunes", 0) + 1
        out = ctx.output_dir / "checkpoints" / f"finetune_{ctx.state['finetunes']:02d}.ckpt"
        atomic_write(out, lambda p: trainer.save_checkpoint(p, weights_only=False))  # full state: resumable
        new = gen.with_model(load_module(out, kinds=(kind,), map_location=gen.device), out)
        action = ctx.what(f"finetune(steps={steps}")
        if samples.latents is not None or samples.seed is None:
            z = samples.latents if samples.latents is not None else gen.latents(len(samples))
            images = gen.from_latents(z, creator=new, labels=samples.labels).images
            redrawn = samples.derived(images, z.cpu(), action, model=str(out))
        elif samples.source is not None:  # image-to-image: the same edit of the same input, new weights
            images = gen.sdedit(samples.source, samples.labels, samples.seed, creator=new, **samples.options)
            redrawn = samples.derived(images, None, action, model=str(out))
        else:  # the same seeds, labels and options through the new weights
            d = new.sample(len(samples), samples.labels, seed=samples.seed, **samples.options)
            redrawn = samples.derived(d.images, None, action, model=str(out), options=d.options)
        return Candidate(
            redrawn,
            creator=new,
            model_path=str(out),
            paired=samples.latents is not None or samples.seed is not None,
        )
