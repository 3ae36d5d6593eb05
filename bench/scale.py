"""Teacher-step epoch time on 10 / 50 / 100 % of the 30,000 split-0 known-class training images
(`python -m bench.throughput --scale`): results/scale_<device>.json and .png."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.common import KNOWN, SEED, load_known, resident, time_block
from bench.variants import Teacher
from osr.io import atomic_path, write_json
from osr.machine import device_name, peak_rss_mib

SCALE_FRACTIONS = (0.1, 0.5, 1.0)


def scale_row(x_all: torch.Tensor, y_all: torch.Tensor, frac: float, args, dev: torch.device) -> dict:
    """Teacher-step epoch time on a seeded `frac` of the images, timed over at most `--scale-steps` steps (the
    rest of the epoch extrapolated at the measured rate)."""
    n = int(round(frac * len(x_all)))
    sel = torch.from_numpy(np.sort(np.random.default_rng(SEED).choice(len(x_all), n, replace=False)))
    x, y = x_all[sel].to(dev), y_all[sel].to(dev)
    v = Teacher(x, y, args, dev)
    steps_epoch = n // args.batch
    for _ in range(args.warmup):
        v.step()
    measured = min(steps_epoch, args.scale_steps)
    ips, rss, gpu = time_block(v, measured, dev)
    epoch_s = steps_epoch * args.batch / ips
    print(f"{frac:4.0%} ({n} images): {ips:.0f} img/s, epoch {epoch_s:.1f}s "
          f"({'extrapolated from' if measured < steps_epoch else 'measured over'} {measured}/{steps_epoch} steps),"
          f" rss {rss:.0f} MiB", flush=True)
    return {"fraction": frac, "images": n, "steps_per_epoch": steps_epoch, "steps_measured": measured,
            "extrapolated": measured < steps_epoch, "images_per_s": ips,
            "s_per_image": 1.0 / ips, "epoch_s": epoch_s, "rss_mb": rss,
            "device_peak_mb": gpu if dev.type == "cuda" else None,
            "resident_uint8_mb": x.numel() / 2**20}


def scale_figure(rows: list[dict], args, dev: torch.device, png: Path) -> None:
    """Epoch time against training images (with the line linear from 10%) and images/s per fraction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    n_img = [r["images"] for r in rows]
    a1.plot(n_img, [r["epoch_s"] for r in rows], "o-", label="teacher step")
    a1.plot([0, n_img[-1]], [0, n_img[-1] * rows[0]["s_per_image"]], "k:", lw=1, label="linear from 10%")
    for r in rows:
        a1.annotate("extrap." if r["extrapolated"] else "measured", (r["images"], r["epoch_s"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    a1.set(xlabel="training images", ylabel="epoch time (s)", title=f"{args.arch} w{args.width}, batch {args.batch}")
    a1.legend(fontsize=8)
    a2.bar([f"{r['fraction']:.0%}" for r in rows], [r["images_per_s"] for r in rows])
    a2.set(ylabel="images / s", title=f"{dev.type}: {device_name(dev)[:40]}")
    a2.title.set_fontsize(8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def scale(args, dev: torch.device) -> dict:
    """Teacher-step epoch time on 10/50/100% of the 30k split-0 known-class images (measured or extrapolated)."""
    x_all, y_all = resident(*load_known(0), torch.device("cpu"))  # each fraction's subset moves to `dev`
    rows = [scale_row(x_all, y_all, frac, args, dev) for frac in SCALE_FRACTIONS]
    out = {"device": device_name(dev), "device_type": dev.type, "torch": torch.__version__, "arch": args.arch,
           "width": args.width, "batch": args.batch, "split": 0, "known": KNOWN, "rows": rows,
           "process_peak_rss_mb": peak_rss_mib(),
           "note": "epoch_s = steps_per_epoch * batch / measured images_per_s (last partial batch dropped, as "
                   "osr.augment.epoch_order); train images = all 30k known-class images (the pipeline's val split "
                   "would take its fraction out)."}
    path, png = args.out / f"scale_{dev.type}.json", args.out / f"scale_{dev.type}.png"
    write_json(path, out)
    scale_figure(rows, args, dev, png)
    print(f"wrote {path} and {png}")
    return out
