"""Induction heads, built, trained, found, measured and ablated: the library behind the course."""

from induction_course.model import AttnOnlyTransformer, ModelConfig, cross_entropy_next_token, hook_name

__all__ = ["AttnOnlyTransformer", "ModelConfig", "cross_entropy_next_token", "hook_name"]
__version__ = "0.2.0"
