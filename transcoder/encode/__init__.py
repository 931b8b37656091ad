"""Making outputs: ffmpeg argument lists, running them with progress, checking the results."""
