"""Options that confine what ffmpeg and ffprobe may open when they read an upload.

A media file can name other files or URLs (HLS and concat playlists, image sequences,
reference MOVs). Every read is therefore limited to the file protocol and to demuxers for
real audio/video containers, so a crafted upload can neither read local files nor reach
the network.
"""

from __future__ import annotations

# Demuxers for media people upload. Names are matched against ffmpeg's demuxer names,
# so "mov" also admits mp4/m4a/3gp and "matroska" admits webm.
ALLOWED_DEMUXERS = (
    "mov",
    "matroska",
    "avi",
    "flv",
    "asf",
    "mpegts",
    "mpeg",
    "mpegvideo",
    "ogg",
    "mp3",
    "aac",
    "ac3",
    "eac3",
    "wav",
    "flac",
    "h264",
    "hevc",
    "m4v",
    "dv",
    "mxf",
    "gif",
    "ivf",
    "yuv4mpegpipe",
)


def safe_input_options() -> dict[str, str]:
    """Input options for ffmpeg-python's `input()` (and ffprobe) that allow only local media."""
    return {
        "protocol_whitelist": "file",
        "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    }
