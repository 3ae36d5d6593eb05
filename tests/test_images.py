"""Images as users have them (osr/images.py): 16-bit values scaled to 8 bits, EXIF orientation, palette, CMYK,
transparency and animation read into L or RGB, by the one function the folder benchmark and `osr predict` share;
and the folder benchmark's one line naming the files that are not images."""
from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import composed
from osr import OSRError, folder, images, predict
from osr.images import decode, read_image

WIDE = np.array([[0, 257], [32768, 65535]], np.uint16)
EIGHT = np.array([[0, 1], [128, 255]], np.uint8)  # value × 255 / 65535, rounded


def png16_rgb(path: Path, a: np.ndarray) -> Path:
    """A 16-bit RGB PNG of uint16 [h, w, 3] (Pillow writes none)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = a.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in a)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("name,mode,array", [
    ("gray16.png", "I;16", WIDE),
    ("gray16.tif", "I;16B", WIDE.astype(">u2")),
    ("int32.tif", "I", WIDE.astype(np.int32)),
])
def test_16_bit_gray_is_scaled_by_its_depth_not_clipped(tmp_path, name, mode, array):
    path = tmp_path / name
    Image.fromarray(array).save(path)
    assert Image.open(path).mode == mode
    assert np.array_equal(read_image(path, 2, channels=1)[..., 0], EIGHT)
    assert np.array_equal(read_image(path, 2), np.repeat(EIGHT[..., None], 3, axis=2))


def test_16_bit_rgb_keeps_its_high_byte(tmp_path):
    a = np.stack([WIDE, WIDE[::-1], WIDE.T], axis=2)
    x = read_image(png16_rgb(tmp_path / "rgb16.png", a), 2)
    assert np.abs(x.astype(int) - np.stack([EIGHT, EIGHT[::-1], EIGHT.T], axis=2)).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("L", (32, 16), 0)
    img.paste(255, (16, 0, 32, 16))  # left half black, right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shown rotated 90° clockwise
    img.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    x = np.asarray(decode(tmp_path / "phone.jpg"))
    assert x.shape == (32, 16, 3)  # upright: taller than wide
    assert x[:12].mean() < 20 and x[-12:].mean() > 235  # the left half is on top


def test_palette_cmyk_transparency_and_animation(tmp_path):
    palette = Image.new("P", (6, 4), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.save(tmp_path / "p.png")
    palette.save(tmp_path / "p_clear.png", transparency=1)
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")
    rgba = Image.new("RGBA", (6, 4), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (0, 0, 3, 4))  # left half transparent
    rgba.save(tmp_path / "rgba.png")
    Image.new("LA", (6, 4), (0, 128)).save(tmp_path / "la.png")
    frames = [Image.new("RGB", (6, 4), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(tmp_path / "anim.gif").n_frames == 2

    red, white = [255, 0, 0], [255, 255, 255]
    expected = {"p.png": red, "p_clear.png": white, "cmyk.tif": red, "anim.gif": red}
    for name, rgb in expected.items():
        x = read_image(tmp_path / name, 4)
        assert x.shape == (4, 4, 3) and np.abs(x.astype(int) - rgb).max() <= 2, name
    x = np.asarray(decode(tmp_path / "rgba.png"))
    assert x[:, :3].tolist() == [[white] * 3] * 4 and x[:, 3:].tolist() == [[red] * 3] * 4  # on white
    assert np.asarray(decode(tmp_path / "la.png", channels=1)).tolist() == [[127] * 6] * 4  # half black on white
    for name in [*expected, "rgba.png", "la.png"]:
        assert read_image(tmp_path / name, 5, channels=1).shape == (5, 5, 1)


def test_the_folder_benchmark_and_predict_read_with_the_same_function():
    assert folder.read_image is predict.read_image is images.read_image


def test_a_folder_names_the_files_that_are_not_images_in_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(root / "cat" / "4.png")  # 16-bit
    Image.new("RGB", (8, 8), "red").save(root / "dog" / "4.jfif", "JPEG")  # an image, whatever its name
    (root / "README.txt").write_text("my pets")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG truncated")
    section = replace(composed(["benchmark=folder"]).data, root=str(root), image_size=8, test_fraction=0.2)
    arrays, source = folder.read_folder(section)
    assert capsys.readouterr().err == ("folder: skipped 3 files that are not images in a class folder "
                                       "(README.txt, cat/.DS_Store, dog/broken.png)\n")
    assert source["images"] == 10 and source["skipped"] == 3
    files = [*arrays["files_train"], *arrays["files_test"]]
    assert sorted(files) == sorted([f"cat/{i}.png" for i in range(5)] + [f"dog/{i}.png" for i in range(4)]
                                   + ["dog/4.jfif"])
    x = np.concatenate([arrays["x_train"], arrays["x_test"]])
    assert (x[files.index("cat/4.png")] == 128).all()
    for f in (root / "cat").iterdir():
        if f.suffix == ".png":
            f.unlink()
    for f in [*(root / "dog").iterdir(), root / "README.txt"]:
        f.unlink()
    with pytest.raises(OSRError, match=r"pets: no images \(expected <root>/<class>/<image>; skipped 1 file that is "
                                       r"not an image in a class folder \(cat/.DS_Store\)\)$"):
        folder.read_folder(section)
