"""LightningDataModules for the image data the GAN learns and the evaluator compares against."""

from artdirector.data.datamodules import (
    ConcatDataModule,
    DatasetUnavailableError,
    FakeDataModule,
    ImageDataModule,
    Mnist5kDataModule,
    TorchvisionDataModule,
)
from artdirector.data.folder import ImageFolderDataModule

__all__ = [
    "ConcatDataModule",
    "DatasetUnavailableError",
    "FakeDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "Mnist5kDataModule",
    "TorchvisionDataModule",
]
