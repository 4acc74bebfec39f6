"""Camera frames on disk: PNG bytes (dtype "image") and MP4 streams (dtype "video").

Frames are RGB uint8 (H, W, 3) everywhere in hiljax; OpenCV's BGR order stays inside this file.
Video goes through PyAV (FFmpeg); LeRobot's defaults are AV1 (libsvtav1), yuv420p, a keyframe
every 2 frames (cheap random access) and crf 30.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from hiljax.storage.files import write_atomic

from .format import DatasetError

DEFAULT_VCODEC = "libsvtav1"
VIDEO_CODECS = ("libsvtav1", "h264", "libx264", "hevc")
# SVT-AV1 prints a banner to stderr for every file unless told otherwise (1 = errors only).
os.environ.setdefault("SVT_LOG", "1")


def encode_png(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]))
    if not ok:
        raise DatasetError(f"could not encode a frame of shape {frame.shape} as PNG")
    return data.tobytes()


def decode_png(data: bytes, where: str) -> np.ndarray:
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise DatasetError(f"{where}: not a readable image")
    return frame[..., ::-1]


def encode_video(frames: np.ndarray, path: Path, fps: int, vcodec: str = DEFAULT_VCODEC,
                 crf: int = 30, gop: int = 2) -> None:
    """frames (T, H, W, 3) uint8 -> an MP4 at `path`, frame i at time i / fps."""
    import av

    if vcodec not in VIDEO_CODECS:
        raise DatasetError(f"video codec {vcodec!r}; expected one of {VIDEO_CODECS}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise DatasetError(f"yuv420p video needs even frame sizes, got {width}x{height}; "
                           "resize the camera or record images instead (video: false)")

    def write(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream(vcodec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"g": str(gop), "crf": str(crf)}
            for frame in frames:
                image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                container.mux(stream.encode(image))
            container.mux(stream.encode())

    write_atomic(path, write)


def decode_video(path: Path, start_s: float | None = None, end_s: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The frames of an MP4 between `start_s` and `end_s` (inclusive; None = the file's ends)
    and their presentation times (s): (T, H, W, 3) uint8, (T,).

    Seeks to the keyframe before `start_s` rather than decoding from the start: LeRobot packs
    many episodes (up to ~200 MB) into one file."""
    import av

    if not path.is_file():
        raise DatasetError(f"{path} is missing (a camera stream named in meta/episodes)")
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if start_s:
                container.seek(int(start_s / stream.time_base), stream=stream, backward=True,
                               any_frame=False)
            for frame in container.decode(stream):
                time_s = float(frame.pts * stream.time_base) if frame.pts is not None \
                    else len(times) / float(stream.average_rate or 1)
                if end_s is not None and time_s > end_s:
                    break
                if start_s is None or time_s >= start_s:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    times.append(time_s)
    except (av.FFmpegError, IndexError) as error:
        raise DatasetError(f"{path}: not a readable video ({error})") from None
    if not frames:
        raise DatasetError(f"{path}: the video holds no frames"
                           + ("" if start_s is None else f" between {start_s:.3f} and "
                              f"{end_s:.3f} s"))
    return np.stack(frames), np.asarray(times)


def frames_at(video: tuple[np.ndarray, np.ndarray], timestamps: np.ndarray, fps: float,
              where: str) -> np.ndarray:
    """The decoded frames nearest to `timestamps`; each must be within half a frame period."""
    frames, times = video
    index = np.clip(np.searchsorted(times, timestamps), 1, len(times) - 1)
    earlier = np.abs(times[index - 1] - timestamps) <= np.abs(times[index] - timestamps)
    index = np.where(earlier, index - 1, index) if len(times) > 1 else np.zeros_like(index)
    error = np.abs(times[index] - timestamps)
    if error.max(initial=0.0) > 0.5 / fps:
        worst = int(np.argmax(error))
        raise DatasetError(f"{where}: no video frame near t={timestamps[worst]:.3f}s (nearest "
                           f"{times[index[worst]]:.3f}s); the video and the frame table disagree")
    return frames[index]
