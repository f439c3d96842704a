"""Induction heads, built, trained, found, measured and ablated: the library behind the course."""

from induction_course.model import AttnOnlyTransformer, ModelConfig, cross_entropy_next_token

__all__ = ["AttnOnlyTransformer", "ModelConfig", "cross_entropy_next_token"]
__version__ = "0.1.0"
