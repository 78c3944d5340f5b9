"""artdirector: a DCGAN creator directed by generation, evaluation and refinement agents."""

__version__ = "0.1.0"
