"""Real clips from other projects' test data (../shared/media); skipped where absent.

A one-rung profile keeps this quick: the point is that every real file is read correctly
(containers, codecs, rotation, alpha, cover art), not the size of the ladder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.submit import submit_file

ONE_RUNG = """
name = "one-rung"
[[formats]]
name = "h264"
container = "mp4"
video_codec = "libx264"
audio_codec = "aac"
[[formats]]
name = "vp8"
container = "webm"
video_codec = "libvpx"
audio_codec = "libopus"
[[rungs]]
size = 240
max_kbps = { h264 = 400, vp8 = 500 }
"""

# file: (upright display width > height?, has audio) or the error for files without video.
EXPECTED = {
    "alpha.webm": (True, False),
    "in1.mp4": (True, True),
    "meta_segfault.mp4": (True, True),
    "no_sound.flv": (True, False),
    "no_sound.ogg": (True, False),
    "no_sound.wmv": (True, False),
    "no_sound_90.mp4": (False, False),
    "odd_dimensions.webm": (False, False),
    "rare_brand.mp4": (None, False),
    "start_black.webm": (True, True),
    "title.webm": (True, False),
    "with_sound.avi": (True, True),
    "with_sound.mkv": (True, True),
    "with_sound.mov": (True, True),
    "with_sound_90.mp4": (False, True),
    "with_sound_hevc.mp4": (True, True),
    "with_sound_vp9.webm": (True, True),
    "no_cover.mp4": "no video stream (audio only)",
    "with_cover.mp3": "no video stream (audio only)",
}


@pytest.fixture
def one_rung_ctx(ctx, tmp_path):
    profile = tmp_path / "one-rung.toml"
    profile.write_text(ONE_RUNG)
    ctx.settings.profile = str(profile)
    return ctx


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_clip_is_transcoded_or_refused_as_expected(
    name, shared_media, one_rung_ctx, ffprobe_streams
):
    ctx = one_rung_ctx
    video_id = submit_file(ctx, shared_media / name)

    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        renditions = list(records.renditions_of(session, video_id))
    expected = EXPECTED[name]
    if isinstance(expected, str):
        assert video.status == VideoStatus.ERROR and video.error == expected
        return
    landscape, has_audio = expected
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert len(renditions) == 2
    for r in renditions:
        assert r.status == TaskStatus.SUCCEEDED
        info = ffprobe_streams(ctx.storage.fetch(r.storage_key, Path("/unused")))
        v = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert min(v["width"], v["height"]) == 240
        if landscape is not None:
            assert (v["width"] > v["height"]) == landscape
        assert any(s["codec_type"] == "audio" for s in info["streams"]) == has_audio
        assert abs(float(info["format"]["duration"]) - video.probe["duration"]) <= 0.25
