"""Loading profiles: the shipped ladder is valid, and a bad file is refused naming its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcoder.errors import ProfileError
from transcoder.profiles import available_profiles, load_profile

VALID = """\
name = "tiny"

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
size = 360
max_kbps = { h264 = 800, vp8 = 1000 }

[[rungs]]
size = 240
max_kbps = { h264 = 400, vp8 = 500 }
"""


@pytest.fixture
def write_profile(tmp_path: Path):
    """Write TOML text to a fresh file and return its path as load_profile takes it."""

    def write(text: str) -> str:
        path = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}.toml"
        path.write_text(text)
        return str(path)

    return write


def test_web_profile_is_shipped_and_valid():
    assert "web" in available_profiles()

    web = load_profile("web")

    assert [f.name for f in web.formats] == ["h264", "vp8"]
    assert [r.size for r in web.rungs_by_size] == [1080, 720, 480, 360, 240]
    assert all(set(r.max_kbps) == {"h264", "vp8"} for r in web.rungs)


def test_web_profile_formats_report_the_codec_names_ffprobe_uses():
    h264, vp8 = load_profile("web").formats

    assert (h264.video_codec_name, h264.audio_codec_name, h264.extension) == ("h264", "aac", "mp4")
    assert (vp8.video_codec_name, vp8.audio_codec_name, vp8.extension) == ("vp8", "opus", "webm")


def test_valid_profile_file_loads_with_defaults(write_profile):
    profile = load_profile(write_profile(VALID))

    assert profile.name == "tiny"
    assert profile.max_fps == 60
    assert profile.formats[0].crf == 23
    assert profile.preview.position == 0.1


def test_profile_file_with_bad_toml_is_refused(write_profile):
    path = write_profile(VALID + "\n[[rungs]\nsize = 1\n")

    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(path)


def test_missing_profile_file_is_refused_listing_builtin_profiles(tmp_path):
    with pytest.raises(ProfileError, match=r"cannot read it .*built-in profiles: .*web"):
        load_profile(str(tmp_path / "nope.toml"))


def test_unknown_field_is_refused_naming_it(write_profile):
    path = write_profile(VALID.replace('audio_codec = "aac"', 'audio_codec = "aac"\nbitrate = 5'))

    with pytest.raises(ProfileError, match=r"field formats\.0\.bitrate: Extra inputs"):
        load_profile(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'video_codec = "libx264"',
            'video_codec = "libvpx"',
            "video_codec libvpx cannot go in mp4",
        ),
        ('audio_codec = "aac"', 'audio_codec = "libopus"', "audio_codec libopus cannot go in mp4"),
    ],
)
def test_codec_that_cannot_go_in_its_container_is_refused(write_profile, old, new, message):
    path = write_profile(VALID.replace(old, new, 1))

    with pytest.raises(ProfileError, match=rf"field formats\.0: .*{message}"):
        load_profile(path)


def test_rung_missing_a_format_in_max_kbps_is_refused(write_profile):
    path = write_profile(VALID.replace("{ h264 = 400, vp8 = 500 }", "{ h264 = 400 }"))

    with pytest.raises(ProfileError, match=r"rung 240: max_kbps must name exactly the formats"):
        load_profile(path)


def test_rung_naming_an_unknown_format_is_refused(write_profile):
    path = write_profile(VALID.replace("vp8 = 500 }", "vp8 = 500, av1 = 300 }"))

    with pytest.raises(ProfileError, match=r"rung 240: max_kbps"):
        load_profile(path)


def test_rung_without_max_kbps_is_refused_naming_it(write_profile):
    path = write_profile(VALID.replace("max_kbps = { h264 = 400, vp8 = 500 }\n", ""))

    with pytest.raises(ProfileError, match=r"field rungs\.1\.max_kbps: Field required"):
        load_profile(path)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("size = 360", 'size = "big"', r"rungs\.0\.size"),
        ("size = 360", "size = 0", r"rungs\.0\.size"),
        ('container = "mp4"', 'container = "avi"', r"formats\.0\.container"),
        ('name = "h264"', 'name = "H 264"', r"formats\.0\.name"),
        ('name = "tiny"', 'name = "tiny"\nmax_fps = 0', "max_fps"),
    ],
)
def test_wrong_value_is_refused_naming_its_field(write_profile, old, new, field):
    path = write_profile(VALID.replace(old, new, 1))

    with pytest.raises(ProfileError, match=rf"field {field}: "):
        load_profile(path)


def test_duplicate_rung_sizes_are_refused(write_profile):
    path = write_profile(VALID.replace("size = 240", "size = 360"))

    with pytest.raises(ProfileError, match="rung sizes must be unique"):
        load_profile(path)


def test_duplicate_format_names_are_refused(write_profile):
    path = write_profile(VALID.replace('name = "vp8"', 'name = "h264"'))

    with pytest.raises(ProfileError, match="format names must be unique"):
        load_profile(path)


def test_profile_without_rungs_is_refused(write_profile):
    path = write_profile("rungs = []\n" + VALID.split("[[rungs]]")[0])

    with pytest.raises(ProfileError, match=r"field rungs: "):
        load_profile(path)


def test_odd_rung_size_is_refused(write_profile):
    path = write_profile(VALID.replace("size = 360", "size = 361"))

    with pytest.raises(ProfileError, match=r"field rungs.0.size: Input should be a multiple of 2"):
        load_profile(path)


def test_x264_crf_beyond_51_is_refused(write_profile):
    path = write_profile(VALID.replace('audio_codec = "aac"', 'audio_codec = "aac"\ncrf = 55'))

    with pytest.raises(ProfileError, match="crf 55 is out of libx264's range 0-51"):
        load_profile(path)
