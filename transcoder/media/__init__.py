"""Reading media: ffprobe into typed facts, and the safety options every ffmpeg input gets."""
