"""Probing real files into MediaInfo, refusing what is not usable video, and the farm's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.errors import InputError, ProbeError
from transcoder.media.probe import check_limits, media_info_from_probe, probe, probe_command

LAVFI_AV = ["-f", "lavfi", "-i", "testsrc2=s=96x64:r=15:d=0.5", "-f", "lavfi", "-i", "sine=d=0.5"]
NOTES = "Minutes of the meeting.\nNothing to see here.\n"
RED_SQUARE = ["-f", "lavfi", "-i", "color=c=red:s=32x32:d=0.04"]


@pytest.fixture(scope="module")
def small_clip(make_clip) -> Path:
    """96x64 H.264 at 15 fps with a mono AAC track, half a second long."""
    return make_clip("small.mp4", *LAVFI_AV, "-c:v", "libx264", "-c:a", "aac")


def stream(**fields) -> dict:
    """One ffprobe stream entry; a 64x48 H.264 video unless fields say otherwise."""
    defaults = {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 64, "height": 48}
    return defaults | fields


def probed(*streams: dict, duration: str | None = "2.0") -> dict:
    fmt = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2"}
    if duration is not None:
        fmt["duration"] = duration
    return {"format": fmt, "streams": list(streams)}


def test_probe_command_confines_ffprobe_to_local_media_before_i():
    args = probe_command(Path("/uploads/a.mp4"))

    i = args.index("-i")
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert args.index("-protocol_whitelist") < i
    assert args.index("-format_whitelist") < i
    assert args[i + 1] == "file:/uploads/a.mp4"


def test_big_buck_bunny_is_720p_with_six_channel_aac(sample, settings):
    info = probe(sample("bigbuckbunny.mp4"))

    assert "mp4" in info.container
    assert info.duration == pytest.approx(5.31, abs=0.01)
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 1280, 720)
    assert info.video.fps == 25
    assert info.video.rotation == 0
    assert not info.video.variable_frame_rate
    assert [(a.codec, a.channels) for a in info.audio] == [("aac", 6)]
    assert info.main_audio.index == 1
    check_limits(
        info, max_pixels=settings.max_input_pixels, max_duration=settings.max_duration_seconds
    )


def test_bikes_has_video_and_no_audio(sample):
    info = probe(sample("bikes.mp4"))

    assert (info.video.width, info.video.height) == (640, 272)
    assert info.audio == []
    assert info.main_audio is None


def test_carphone_keeps_its_non_square_sample_aspect_ratio(sample):
    info = probe(sample("carphone_pristine.mp4"))

    assert (info.video.width, info.video.height) == (176, 144)
    assert info.video.sar == "128:117"
    assert info.video.display_width == pytest.approx(176 * 128 / 117)
    assert info.video.display_height == 144


def test_synthesized_clip_is_described_exactly(small_clip):
    info = probe(small_clip)

    video = info.video
    assert (video.codec, video.width, video.height, video.fps) == ("h264", 96, 64, 15)
    assert (video.pix_fmt, video.bit_depth, video.has_alpha) == ("yuv420p", 8, False)
    assert not video.is_interlaced and not video.is_hdr
    assert [(a.codec, a.channels, a.sample_rate) for a in info.audio] == [("aac", 1, 44100)]
    assert info.duration == pytest.approx(0.53, abs=0.05)
    assert info.size == small_clip.stat().st_size


def test_rotation_is_read_from_the_display_matrix(make_clip, small_clip, ffprobe_streams):
    rotated = make_clip(
        "rotated.mp4", "-i", str(small_clip), "-c", "copy", "-metadata:s:v:0", "rotate=90"
    )
    [raw] = [s for s in ffprobe_streams(rotated)["streams"] if s["codec_type"] == "video"]
    assert "rotate" not in raw.get("tags", {}), "ffmpeg 5.1 reports rotation only as side data"

    video = probe(rotated).video

    assert video.rotation == 90
    assert (video.width, video.height) == (96, 64)
    assert (video.display_width, video.display_height) == (64, 96)


@pytest.mark.parametrize(("matrix", "expected"), [(-90, 270), (90, 90), (180, 180), (-180, 180)])
def test_display_matrix_rotation_is_normalised(matrix, expected):
    side_data = [{"side_data_type": "Display Matrix", "rotation": matrix}]

    info = media_info_from_probe(probed(stream(side_data_list=side_data)))

    assert info.video.rotation == expected


def test_legacy_rotate_tag_is_read_without_side_data():
    info = media_info_from_probe(probed(stream(tags={"rotate": "270"})))

    assert info.video.rotation == 270


def test_cover_art_in_mp4_is_not_taken_as_video(make_clip, small_clip):
    with_cover = make_clip(
        "cover.mp4",
        *["-i", str(small_clip), *RED_SQUARE, "-map", "0", "-map", "1", "-c", "copy"],
        *["-c:v:1", "png", "-frames:v:1", "1", "-disposition:v:1", "attached_pic"],
    )

    info = probe(with_cover)

    assert (info.video.index, info.video.codec, info.video.width) == (0, "h264", 96)


def test_song_with_cover_art_has_no_video_stream(make_clip):
    song = make_clip(
        "song.mp3",
        *["-f", "lavfi", "-i", "sine=d=0.5", *RED_SQUARE, "-map", "0", "-map", "1"],
        *["-c:a", "libmp3lame", "-c:v", "png", "-frames:v", "1", "-disposition:v", "attached_pic"],
    )

    info = probe(song)

    assert info.video is None
    with pytest.raises(InputError, match=r"^no video stream \(audio only\)$"):
        check_limits(info, max_pixels=10**8, max_duration=3600)


def test_cover_art_listed_first_and_default_is_still_not_chosen():
    cover = stream(codec_name="mjpeg", disposition={"default": 1, "attached_pic": 1})
    picture = stream(index=1, disposition={"default": 0, "attached_pic": 0})

    info = media_info_from_probe(probed(cover, picture))

    assert info.video.index == 1


def test_default_video_stream_is_preferred_over_the_first():
    first = stream(disposition={"default": 0})
    main = stream(index=1, width=1280, height=720, disposition={"default": 1})

    assert media_info_from_probe(probed(first, main)).video.index == 1


def test_audio_only_file_is_refused_as_having_no_video(make_clip):
    song = make_clip("audio.m4a", "-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac")

    info = probe(song)

    assert info.video is None and len(info.audio) == 1
    with pytest.raises(InputError, match=r"^no video stream \(audio only\)$"):
        check_limits(info, max_pixels=10**8, max_duration=3600)


def test_file_without_any_stream_is_refused_naming_both():
    info = media_info_from_probe(probed())

    with pytest.raises(InputError, match=r"no video stream \(no audio either\)"):
        check_limits(info, max_pixels=10**8, max_duration=3600)


def test_empty_file_is_refused_saying_it_is_empty(tmp_path):
    empty = tmp_path / "upload.mp4"
    empty.touch()

    with pytest.raises(InputError, match=r"the file is empty \(0 bytes\)"):
        probe(empty)


def test_missing_file_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match=r"source file is missing: gone\.mp4"):
        probe(tmp_path / "gone.mp4")


def test_text_file_is_refused_as_not_media(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text(NOTES)

    with pytest.raises(ProbeError) as caught:
        probe(text)

    assert isinstance(caught.value, InputError)
    assert caught.value.reason == (
        "could not decode the file: not a recognised audio/video format or damaged"
    )
    assert "Invalid data found" in caught.value.detail


def test_text_file_named_mp4_is_refused_as_undecodable(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text(NOTES)

    with pytest.raises(ProbeError, match=r"^could not decode the file: "):
        probe(text)


def test_truncated_mp4_is_refused_as_missing_its_index(tmp_path, small_clip):
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(small_clip.read_bytes()[:1500])

    with pytest.raises(ProbeError, match=r"the MP4 index is missing \(truncated upload\?\)"):
        probe(truncated)


def test_playlist_naming_a_local_file_is_refused(tmp_path, small_clip):
    playlist = tmp_path / "upload.mp4"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{small_clip}\n#EXT-X-ENDLIST\n"
    )

    with pytest.raises(ProbeError, match="refused: the file is not a supported media container"):
        probe(playlist)


def test_frame_size_over_the_pixel_limit_is_refused(sample):
    info = probe(sample("bigbuckbunny.mp4"))

    check_limits(info, max_pixels=1280 * 720, max_duration=60)
    with pytest.raises(InputError, match=r"frame size 1280x720 is over the limit of 921599 pixels"):
        check_limits(info, max_pixels=1280 * 720 - 1, max_duration=60)


def test_duration_over_the_limit_is_refused(sample):
    info = probe(sample("bigbuckbunny.mp4"))

    check_limits(info, max_pixels=10**8, max_duration=5.4)
    with pytest.raises(InputError, match=r"duration 5.3 s is over the limit of 4 s"):
        check_limits(info, max_pixels=10**8, max_duration=4)


def test_variable_frame_rate_is_detected_from_average_and_nominal_rates():
    vfr = stream(r_frame_rate="30/1", avg_frame_rate="24/1")
    ntsc = stream(r_frame_rate="30000/1001", avg_frame_rate="2997/100")

    assert media_info_from_probe(probed(vfr)).video.variable_frame_rate
    assert not media_info_from_probe(probed(ntsc)).video.variable_frame_rate


@pytest.mark.parametrize(
    ("pix_fmt", "depth", "alpha"),
    [
        ("yuv420p", 8, False),
        ("yuv420p10le", 10, False),
        ("yuva420p", 8, True),
        ("p010le", 8, False),
    ],
)
def test_bit_depth_and_alpha_come_from_the_pixel_format(pix_fmt, depth, alpha):
    video = media_info_from_probe(probed(stream(pix_fmt=pix_fmt))).video

    assert (video.bit_depth, video.has_alpha) == (depth, alpha)


def test_duration_falls_back_to_the_longest_stream():
    audio = {"index": 1, "codec_type": "audio", "channels": 2, "duration": "3.5"}

    info = media_info_from_probe(probed(stream(duration="3.0"), audio, duration=None))

    assert info.duration == 3.5


def test_file_without_any_duration_is_refused():
    with pytest.raises(ProbeError, match="could not determine the duration"):
        media_info_from_probe(probed(stream(), duration="N/A"))


def test_matroska_stream_duration_tag_is_not_trusted():
    tagged = stream(tags={"DURATION": "00:00:02.300000000"})

    info = media_info_from_probe(probed(tagged, duration="3.0"))

    assert info.video.duration is None
    assert info.media_duration == pytest.approx(3.0)


def test_matroska_stream_durations_are_measured_from_packets(make_clip, tmp_path):
    srt = tmp_path / "late.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:03,000\nLate caption\n")
    clip = make_clip(
        "captioned.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=96x64:r=25:d=1",
        "-i",
        str(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-c:v",
        "libx264",
        "-c:s",
        "srt",
    )

    info = probe(clip)

    assert info.duration == pytest.approx(3.0, abs=0.05)  # the container counts the caption
    assert info.video.duration == pytest.approx(1.0, abs=0.05)
    assert info.media_duration == pytest.approx(1.0, abs=0.05)


def test_wrong_matroska_duration_tag_is_overruled_by_packets(shared_media):
    # A real WebM whose muxer wrote DURATION=8.4 s for 17.6 s of packets.
    info = probe(shared_media / "odd_dimensions.webm")

    assert info.media_duration == pytest.approx(17.64, abs=0.05)
