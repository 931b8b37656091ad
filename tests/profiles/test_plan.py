"""Ladder planning: which renditions a source gets, at what size, rate and with which audio."""

from __future__ import annotations

from fractions import Fraction

import pytest

from transcoder.media.info import AudioStream, MediaInfo, VideoStream
from transcoder.profiles import Profile, load_profile
from transcoder.profiles.plan import (
    even,
    output_frame_rate,
    plan_preview,
    plan_renditions,
    poster_position,
)

STEREO = AudioStream(index=1, codec="aac", channels=2, sample_rate=48000)


def video(width: int = 1920, height: int = 1080, **fields) -> VideoStream:
    """A progressive 25 fps H.264 stream; keyword arguments override any field."""
    defaults = {"index": 0, "codec": "h264", "frame_rate": "25/1", "avg_frame_rate": "25/1"}
    return VideoStream(**(defaults | {"width": width, "height": height} | fields))


def media(stream: VideoStream | None = None, *, audio=(STEREO,), duration=10.0) -> MediaInfo:
    return MediaInfo(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        duration=duration,
        video=video() if stream is None else stream,
        audio=list(audio),
    )


def sizes(plans) -> list[tuple[int, int]]:
    """Distinct (width, height) of the plans, in plan order."""
    return list(dict.fromkeys((p.width, p.height) for p in plans))


@pytest.fixture(scope="module")
def web() -> Profile:
    return load_profile("web")


def test_ladder_for_1080p_source_has_every_rung_in_every_format_largest_first(web):
    plans = plan_renditions(media(), web)

    assert [p.name for p in plans[:4]] == ["1080p-h264", "1080p-vp8", "720p-h264", "720p-vp8"]
    assert len(plans) == len(web.rungs) * len(web.formats)
    assert sizes(plans) == [(1920, 1080), (1280, 720), (854, 480), (640, 360), (426, 240)]


def test_ladder_skips_rungs_larger_than_source(web):
    plans = plan_renditions(media(video(1280, 720)), web)

    assert [p.rung for p in plans[::2]] == ["720p", "480p", "360p", "240p"]
    assert plans[0].width == 1280


def test_ladder_caps_bitrate_per_format_from_the_rung(web):
    plans = {p.name: p for p in plan_renditions(media(), web)}

    assert plans["720p-h264"].video_kbps == 3000
    assert plans["720p-vp8"].video_kbps == 3500


def test_ladder_never_upscales_small_source(web):
    plans = plan_renditions(media(video(320, 180)), web)

    assert [p.name for p in plans] == ["180p-h264", "180p-vp8"]
    assert sizes(plans) == [(320, 180)]
    smallest = web.rungs_by_size[-1]
    assert [p.video_kbps for p in plans] == [smallest.max_kbps["h264"], smallest.max_kbps["vp8"]]


@pytest.mark.parametrize(("width", "height"), [(161, 99), (175, 143), (33, 17), (1, 1)])
def test_ladder_gives_odd_small_source_one_even_rendition_at_its_own_size(web, width, height):
    plans = plan_renditions(media(video(width, height)), web)

    [(out_w, out_h)] = sizes(plans)
    assert out_w % 2 == 0 and out_h % 2 == 0
    assert abs(out_w - width) <= 1 and abs(out_h - height) <= 1


def test_ladder_sizes_are_even_for_odd_source(web):
    plans = plan_renditions(media(video(641, 361)), web)

    assert sizes(plans) == [(640, 360), (426, 240)]
    assert all(p.width % 2 == 0 and p.height % 2 == 0 for p in plans)


def test_ladder_applies_sample_aspect_ratio_for_square_pixel_output(web):
    carphone = video(176, 144, sar="128:117")

    [(width, height)] = sizes(plan_renditions(media(carphone), web))

    assert (width, height) == (192, 144)


def test_ladder_keeps_display_aspect_of_anamorphic_pal(web):
    widescreen_dvd = video(720, 576, sar="64:45")

    plans = plan_renditions(media(widescreen_dvd), web)

    assert sizes(plans) == [(854, 480), (640, 360), (426, 240)]
    assert all(abs(w / h - 16 / 9) < 0.01 for w, h in sizes(plans))


@pytest.mark.parametrize("rotation", [90, 270])
def test_ladder_swaps_sides_for_quarter_turn_rotation(web, rotation):
    phone = video(1920, 1080, rotation=rotation)

    plans = plan_renditions(media(phone), web)

    assert plans[0].name == "1080p-h264"
    assert sizes(plans)[:2] == [(1080, 1920), (720, 1280)]


def test_ladder_keeps_sides_for_half_turn_rotation(web):
    plans = plan_renditions(media(video(1920, 1080, rotation=180)), web)

    assert sizes(plans)[0] == (1920, 1080)


def test_ladder_rotation_and_sample_aspect_ratio_combine(web):
    stream = video(1440, 1080, sar="4:3", rotation=90)

    assert sizes(plan_renditions(media(stream), web))[0] == (1080, 1920)


def test_portrait_source_is_rung_on_its_short_side(web):
    plans = plan_renditions(media(video(1080, 1920)), web)

    assert plans[0].rung == "1080p"
    assert sizes(plans) == [(1080, 1920), (720, 1280), (480, 854), (360, 640), (240, 426)]


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("25/1", "25/1"),
        ("30000/1001", "30000/1001"),
        ("60/1", "60/1"),
        ("120/1", "60/1"),
        ("100/1", "50/1"),
        ("120000/1001", "60000/1001"),
        ("90/1", "45/1"),
        ("240/1", "60/1"),
    ],
)
def test_frame_rate_is_kept_or_divided_down_to_the_cap(web, rate, expected):
    stream = video(frame_rate=rate, avg_frame_rate=rate)

    plans = plan_renditions(media(stream), web)

    assert {p.fps for p in plans} == {expected}


@pytest.mark.parametrize(
    ("average", "expected"),
    [
        ("2920/100", Fraction(30000, 1001)),
        ("2350/100", Fraction(24000, 1001)),
        ("47/1", Fraction(50)),
        ("5994/100", Fraction(60000, 1001)),
        ("200/1", Fraction(60)),
    ],
)
def test_variable_frame_rate_is_snapped_to_a_standard_rate(average, expected):
    stream = video(frame_rate="90000/1", avg_frame_rate=average, variable_frame_rate=True)

    assert output_frame_rate(stream, cap=60) == expected


def test_source_without_any_frame_rate_gets_the_fallback_rate():
    stream = video(frame_rate="0/0", avg_frame_rate="0/0")

    assert output_frame_rate(stream, cap=60) == 30


@pytest.mark.parametrize(("rate", "keyint"), [("25/1", 50), ("30000/1001", 60), ("120/1", 120)])
def test_keyframe_interval_follows_output_rate(web, rate, keyint):
    plans = plan_renditions(media(video(frame_rate=rate, avg_frame_rate=rate)), web)

    assert {p.keyframe_interval for p in plans} == {keyint}


def test_source_without_audio_gets_no_audio(web):
    plans = plan_renditions(media(audio=()), web)

    assert {p.audio_index for p in plans} == {None}


def test_source_with_audio_maps_the_default_track(web):
    commentary = AudioStream(index=1, codec="aac", channels=2, sample_rate=48000)
    main = AudioStream(index=2, codec="ac3", channels=6, sample_rate=48000, default=True)

    plans = plan_renditions(media(audio=(commentary, main)), web)

    assert {p.audio_index for p in plans} == {2}


def test_source_without_default_audio_maps_the_first_track(web):
    first = AudioStream(index=3, codec="aac", channels=2, sample_rate=48000)
    second = AudioStream(index=4, codec="aac", channels=2, sample_rate=48000)

    assert {p.audio_index for p in plan_renditions(media(audio=(first, second)), web)} == {3}


def test_plan_carries_source_duration_and_filename(web):
    plans = plan_renditions(media(duration=5.312), web)

    assert {p.duration for p in plans} == {5.312}
    assert [p.filename for p in plans[:2]] == ["1080p-h264.mp4", "1080p-vp8.webm"]


def test_plan_duration_is_that_of_the_carried_streams_not_the_container(web):
    picture = video(duration=2.3)
    sound = AudioStream(index=1, codec="aac", channels=2, sample_rate=48000, duration=2.35)

    plans = plan_renditions(media(picture, audio=(sound,), duration=3.0), web)

    assert {p.duration for p in plans} == {2.35}


@pytest.mark.parametrize(
    ("field_order", "expected"), [("tt", True), ("bb", True), ("progressive", False), ("", False)]
)
def test_only_interlaced_sources_are_deinterlaced(web, field_order, expected):
    plans = plan_renditions(media(video(field_order=field_order)), web)

    assert {p.picture.deinterlace for p in plans} == {expected}


@pytest.mark.parametrize(
    ("transfer", "expected"),
    [("smpte2084", True), ("arib-std-b67", True), ("bt709", False), ("", False)],
)
def test_only_hdr_sources_are_tonemapped(web, transfer, expected):
    plans = plan_renditions(media(video(color_transfer=transfer)), web)

    assert {p.picture.tonemap for p in plans} == {expected}


def test_planning_without_video_is_refused(web):
    audio_only = MediaInfo(container="mp3", duration=3.0, audio=[STEREO])

    with pytest.raises(ValueError, match="video stream"):
        plan_renditions(audio_only, web)


def test_poster_is_taken_a_tenth_of_the_way_in(web):
    assert plan_preview(media(duration=10.0), web).position == 1.0


@pytest.mark.parametrize(
    ("duration", "fraction", "expected"), [(0.06, 0.1, 0.0), (0.2, 0.9, 0.12), (0.04, 0.5, 0.0)]
)
def test_poster_position_is_clamped_inside_very_short_clips(duration, fraction, expected):
    position = poster_position(duration, Fraction(25), fraction)

    assert position == expected
    assert position < duration


def test_poster_is_scaled_down_to_poster_max_keeping_display_aspect(web):
    preview = plan_preview(media(video(3840, 2160)), web)

    assert (preview.picture.width, preview.picture.height) == (1280, 720)


def test_poster_of_small_rotated_source_is_upright_and_not_upscaled(web):
    preview = plan_preview(media(video(640, 360, rotation=90)), web)

    assert (preview.picture.width, preview.picture.height) == (360, 640)


@pytest.mark.parametrize(("value", "expected"), [(0.4, 2), (3.1, 4), (639.4, 640), (853.3, 854)])
def test_even_rounds_to_nearest_even_size_of_at_least_two(value, expected):
    assert even(value) == expected
