"""Verifying outputs: a real rendition passes; one that differs from its plan is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.encode.command import rendition_command
from transcoder.encode.runner import run_ffmpeg
from transcoder.encode.verify import DURATION_TOLERANCE, verify_rendition
from transcoder.errors import VerifyError
from transcoder.media.probe import probe
from transcoder.profiles import load_profile
from transcoder.profiles.plan import RenditionPlan, plan_renditions


@pytest.fixture(scope="module")
def source(make_clip) -> Path:
    """A 96x64 clip with a mono tone, one second long."""
    return make_clip(
        "verify-source.mp4",
        *["-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=1", "-f", "lavfi", "-i", "sine=d=1"],
        *["-c:v", "libx264", "-c:a", "aac"],
    )


@pytest.fixture(scope="module")
def plans(source) -> dict[str, RenditionPlan]:
    return {p.format.name: p for p in plan_renditions(probe(source), load_profile("web"))}


@pytest.fixture(scope="module")
def rendered(plans, source, tmp_path_factory) -> dict[str, Path]:
    """Each format's rendition of the source, made by the real command and runner."""
    out_dir = tmp_path_factory.mktemp("renditions")
    outputs = {}
    for name, plan in plans.items():
        output = out_dir / plan.filename
        run_ffmpeg(rendition_command(plan, source, output, threads=1), timeout=60)
        outputs[name] = output
    return outputs


def changed(plan: RenditionPlan, **fields) -> RenditionPlan:
    """The plan with some fields replaced; `width`/`height` change its picture."""
    picture = {k: fields.pop(k) for k in ("width", "height") if k in fields}
    return plan.model_copy(update=fields | {"picture": plan.picture.model_copy(update=picture)})


@pytest.mark.parametrize("fmt", ["h264", "vp8"])
def test_correct_rendition_passes(plans, rendered, fmt):
    plan = plans[fmt]

    info = verify_rendition(rendered[fmt], plan)

    assert (info.video.width, info.video.height) == (plan.width, plan.height) == (96, 64)
    assert info.main_audio is not None


@pytest.mark.parametrize(("width", "height"), [(48, 64), (96, 32)])
def test_wrong_dimensions_are_refused(plans, rendered, width, height):
    plan = changed(plans["h264"], width=width, height=height)

    with pytest.raises(VerifyError, match=rf"output is 96x64, expected {width}x{height}"):
        verify_rendition(rendered["h264"], plan)


def test_missing_audio_is_refused(plans, make_clip):
    silent = make_clip(
        "verify-silent.mp4",
        *["-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=1", "-c:v", "libx264"],
        "-pix_fmt",
        "yuv420p",
    )

    with pytest.raises(VerifyError, match="output has no audio track"):
        verify_rendition(silent, plans["h264"])


def test_audio_that_was_not_planned_is_refused(plans, rendered):
    with pytest.raises(VerifyError, match="output has an audio track but none was planned"):
        verify_rendition(rendered["h264"], changed(plans["h264"], audio_index=None))


@pytest.mark.parametrize("off_by", [DURATION_TOLERANCE + 0.1, -(DURATION_TOLERANCE + 0.1), 0.5])
def test_duration_off_by_more_than_the_tolerance_is_refused(plans, rendered, off_by):
    plan = plans["h264"]
    expected = changed(plan, duration=plan.duration + off_by)

    with pytest.raises(VerifyError, match="the source may be truncated or damaged"):
        verify_rendition(rendered["h264"], expected)


def test_duration_within_the_tolerance_passes(plans, rendered):
    plan = plans["h264"]
    info = verify_rendition(rendered["h264"], plan)
    slightly_off = changed(plan, duration=info.duration + DURATION_TOLERANCE - 0.05)

    verify_rendition(rendered["h264"], slightly_off)


def test_wrong_video_codec_is_refused(plans, rendered):
    with pytest.raises(VerifyError, match="output video codec is vp8, expected h264"):
        verify_rendition(rendered["vp8"], plans["h264"])


def test_unreadable_output_is_refused_with_the_reason(plans, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()

    with pytest.raises(VerifyError, match=r"output is not readable: the file is empty"):
        verify_rendition(empty, plans["h264"])
