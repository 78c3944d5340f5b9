"""Plain ``nn.Module`` networks: no Lightning, no Hydra."""

from artdirector.models.nets.dcgan import (
    ConditionalGenerator,
    Discriminator,
    Generator,
    ProjectionDiscriminator,
)
from artdirector.models.nets.detector import CenterNet
from artdirector.models.nets.judge import JudgeNet
from artdirector.models.nets.lenet import LeNet
from artdirector.models.nets.sngan import CBNGenerator, SNProjectionDiscriminator
from artdirector.models.nets.sr import ESPCN

__all__ = [
    "ESPCN",
    "CBNGenerator",
    "CenterNet",
    "ConditionalGenerator",
    "Discriminator",
    "Generator",
    "JudgeNet",
    "LeNet",
    "ProjectionDiscriminator",
    "SNProjectionDiscriminator",
]
