"""Profiles: which renditions to make, as validated data, and the plan for one source."""

from transcoder.profiles.loader import available_profiles, load_profile
from transcoder.profiles.models import OutputFormat, PreviewSpec, Profile, Rung

__all__ = ["OutputFormat", "PreviewSpec", "Profile", "Rung", "available_profiles", "load_profile"]
