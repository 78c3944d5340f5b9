"""Plain ``nn.Module`` networks: no Lightning, no Hydra."""

from artdirector.models.nets.dcgan import (
    ConditionalGenerator,
    Discriminator,
    Generator,
    ProjectionDiscriminator,
)
from artdirector.models.nets.lenet import LeNet

__all__ = ["ConditionalGenerator", "Discriminator", "Generator", "LeNet", "ProjectionDiscriminator"]
