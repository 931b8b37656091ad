"""The whole inline pipeline with its sources and outputs in an S3 bucket."""

from __future__ import annotations

from pathlib import Path

from transcoder.db import records
from transcoder.db.engine import session_scope
from transcoder.db.models import TaskStatus, VideoStatus
from transcoder.queue.context import build_context, install
from transcoder.storage import source_key, video_prefix
from transcoder.submit import submit_file

# 1 s of a 320x240 test pattern with a 440 Hz tone, H.264 and AAC in MP4.
CLIP_ARGS = (
    "-f",
    "lavfi",
    "-i",
    "testsrc2=s=320x240:r=25:d=1",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=48000:duration=1",
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-shortest",
)


def test_inline_pipeline_stores_decodable_renditions_in_the_bucket(
    s3_settings, s3_client, s3_bucket, make_clip, ffprobe_streams, tmp_path: Path
) -> None:
    clip = make_clip("testsrc2-320x240-1s.mp4", *CLIP_ARGS)
    ctx = install(build_context(s3_settings))

    video_id = submit_file(ctx, clip)

    with session_scope(ctx.engine) as session:
        video = records.get_video(session, video_id)
        renditions = list(records.renditions_of(session, video_id))
        preview = records.preview_of(session, video_id)
    assert video.status == VideoStatus.SUCCEEDED, video.error
    assert ctx.storage.exists(source_key(video_id))
    # The web ladder gives a 320x240 source its 240 rung only, in both formats.
    assert sorted(r.name for r in renditions) == ["240p-h264", "240p-vp8"]
    for rendition in renditions:
        assert rendition.status == TaskStatus.SUCCEEDED, rendition.error
        assert rendition.storage_key.startswith(video_prefix(video_id))
        local = tmp_path / "downloaded" / rendition.storage_key
        local.parent.mkdir(parents=True, exist_ok=True)
        s3_client.download_file(s3_bucket, rendition.storage_key, str(local))
        assert local.stat().st_size == rendition.size_bytes

        streams = ffprobe_streams(local)["streams"]
        picture = next(s for s in streams if s["codec_type"] == "video")
        sound = next(s for s in streams if s["codec_type"] == "audio")
        assert picture["codec_name"] == rendition.video_codec
        assert (picture["width"], picture["height"]) == (rendition.width, rendition.height)
        assert sound["codec_name"] == rendition.audio_codec
    assert preview is not None and preview.status == TaskStatus.SUCCEEDED
    for image in preview.images:
        assert s3_client.head_object(Bucket=s3_bucket, Key=image["key"])["ContentLength"] > 0
