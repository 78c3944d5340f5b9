"""Plain ``nn.Module`` networks: no Lightning, no Hydra."""

from artdirector.models.nets.dcgan import Discriminator, Generator
from artdirector.models.nets.lenet import LeNet

__all__ = ["Discriminator", "Generator", "LeNet"]
