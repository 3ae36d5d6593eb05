"""Image files as users have them, read one way for the folder benchmark (osr/folder.py) and `osr predict`
(osr/predict.py), so a deployed model sees what the pipeline trained on.

Pillow opens the file; the first frame of an animated image is read; the EXIF orientation is applied; 16-bit
values (Pillow modes I;16, I;16B, I) are scaled to 8 bits by value × 255 / 65535 (Pillow reads 16-bit colour
images as 8-bit RGB itself); transparency (RGBA, LA, a palette's transparent colour) is composited on white;
then the image is converted to L or RGB (palette, CMYK, 1-bit and the rest by Pillow's conversions) and resized
to the size asked, whatever its aspect ratio.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms.v2 import functional as TF

WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # one channel of 16-bit values (I: Pillow's 32-bit integers)
MODES = {1: "L", 3: "RGB"}


def to_8bit(a: np.ndarray) -> np.ndarray:
    """uint8 of 16-bit values: value × 255 / 65535, rounded (values outside 0…65535 saturate)."""
    return np.clip(np.rint(a.astype(np.float64) * (255 / 65535)), 0, 255).astype(np.uint8)


def decode(path: str | Path, channels: int = 3) -> Image.Image:
    """The image of a file, upright, as mode L (`channels` 1) or RGB (3); OSError/ValueError if the file is not
    a readable image."""
    with Image.open(path) as im:
        img = ImageOps.exif_transpose(im)  # a new image of the first frame, whatever the orientation
    if img.mode in WIDE:
        img = Image.fromarray(to_8bit(np.asarray(img)))
    if img.has_transparency_data:
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
    return img.convert(MODES[channels])


def read_image(path: str | Path, size: int, channels: int = 3) -> np.ndarray:
    """uint8 [size, size, channels] of an image file (any size, any mode Pillow reads); OSError/ValueError if
    the file is not a readable image."""
    img = decode(path, channels)
    x = torch.from_numpy(np.asarray(img).copy()).reshape(img.height, img.width, channels).permute(2, 0, 1)
    if x.shape[1:] != (size, size):
        x = TF.resize(x, [size, size], antialias=True)
    return x.permute(1, 2, 0).contiguous().numpy()


def reason(e: Exception) -> str:
    """Why an image could not be read, in a few words (Pillow's messages repeat the file object)."""
    text = str(e).split(" <")[0].splitlines()[0] if str(e) else "unreadable"
    return f"{type(e).__name__}: {text}"
