"""The key layout: videos/<id>/<name>, built only from parts that cannot climb or nest."""

from __future__ import annotations

import pytest

from transcoder.storage import rendition_key, source_key, video_prefix

UNSAFE_PARTS = ["", "..", "../etc", "a/b", "/abs", "a..b", ".hidden", "-rf", "sp ace", "name\n"]


def test_keys_live_under_the_video_prefix() -> None:
    assert video_prefix("0a1b") == "videos/0a1b/"
    assert source_key("0a1b") == "videos/0a1b/source"
    assert rendition_key("0a1b", "240p-h264.mp4") == "videos/0a1b/240p-h264.mp4"


@pytest.mark.parametrize("part", UNSAFE_PARTS)
def test_source_key_refuses_an_unsafe_video_id(part: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage key part"):
        source_key(part)


@pytest.mark.parametrize("part", UNSAFE_PARTS)
def test_rendition_key_refuses_an_unsafe_video_id(part: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage key part"):
        rendition_key(part, "240p-h264.mp4")


@pytest.mark.parametrize("part", UNSAFE_PARTS)
def test_rendition_key_refuses_an_unsafe_file_name(part: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage key part"):
        rendition_key("0a1b", part)
