"""Load a profile by name (one shipped in this package) or from a TOML file path."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from transcoder.errors import ProfileError
from transcoder.profiles.models import Profile


def available_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    files = resources.files("transcoder.profiles").iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))


@lru_cache(maxsize=32)
def load_profile(name_or_path: str) -> Profile:
    """Return the validated profile; a ProfileError names the first bad field."""
    if name_or_path in available_profiles():
        source = resources.files("transcoder.profiles").joinpath(f"{name_or_path}.toml")
        label = f"profile {name_or_path!r}"
        text = source.read_text()
    else:
        path = Path(name_or_path)
        label = f"profile file {path}"
        try:
            text = path.read_text()
        except OSError as exc:
            known = ", ".join(available_profiles())
            raise ProfileError(
                f"{label}: cannot read it ({exc.strerror}); built-in profiles: {known}"
            ) from exc

    try:
        return Profile.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{label}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ProfileError(f"{label}: field {field}: {first['msg']}") from exc
