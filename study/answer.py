"""The answer to the study's question, per benchmark: the registered recipes' accuracy and AUROC (MLS) with 95 %
Student-t intervals, as a table (reports/answer.md, shown in README.md) and a figure (reports/answer.png).

Over partitions where a recipe ran on two or more (a partition's value is the mean over its seeds; splits that hold
the same classes are one partition, study/partitions.py), else over the seeds of its one partition; a single
experiment has no interval. The registered (held-out) partitions come first, every other split apart
(exploratory).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from osr import OSRError
from osr.plots import plt, save_figure
from study.claims import values_by_split
from study.partitions import alike, partition, same_classes

REGISTERED, ARCHIVES = "conf/study/confirmatory.yaml", "reports/experiments"
ANSWER_METRICS = {"acc": "acc", "auroc": "auroc_mls"}  # answer key -> study.claims.METRICS name
LABELS = {"ce-none": "no mixing", "ce-cutmix": "CutMix", "asym-cutmix": "AD as specified",
          "kd-cutmix+tau4": "symmetric KD, τ = 4", "asym-cutmix+tau4+all_hard": "best AD variant"}
COLOURS = {"ce-none": "0.35", "ce-cutmix": "C0", "asym-cutmix": "C1", "kd-cutmix+tau4": "C2",
           "asym-cutmix+tau4+all_hard": "C3"}
BENCH_NAMES = {"cifar10": "CIFAR-10", "tinyimagenet32": "Tiny-ImageNet 32 × 32"}


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95 % Student-t interval (None for one experiment) over `n` partitions or seeds."""
    mean: float
    low: float | None
    high: float | None
    n: int
    over: str  # splits | seeds | one experiment


def _t(mean: float, sd: float, n: int, over: str) -> Estimate:
    half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, over)


def estimate(by_split: dict[int, list[float]]) -> Estimate:
    """Over the partition means where there are two or more partitions (values_by_split's keys), else over the
    runs of the one partition."""
    if len(by_split) >= 2:
        means = np.array([np.mean(v) for v in by_split.values()])
        return _t(float(means.mean()), float(means.std(ddof=1)), len(means), "splits")
    seeds = np.asarray(next(iter(by_split.values())), dtype=float)
    if len(seeds) >= 2:
        return _t(float(seeds.mean()), float(seeds.std(ddof=1)), len(seeds), "seeds")
    return Estimate(float(seeds[0]), None, None, 1, "one experiment")


def answer(reports: dict) -> list[dict]:
    """Per registered benchmark: its held-out partitions (those registered) first, then the exploratory ones (every
    other split); one entry per registered recipe that ran there, in registered order. The held-out rows use only
    the partitions every registered recipe ran on, and are shown once there are two or more of them: before that
    they compare nothing."""
    reg = reports["registered"]
    values = {key: values_by_split(reports["rows"], metric) for key, metric in ANSWER_METRICS.items()}
    out = []
    for bench, held_out in reg["partitions"].items():
        ran = {recipe: {key: by_recipe.get((reg["profile"], bench, recipe), {}) for key, by_recipe in values.items()}
               for recipe in reg["recipes"]}
        registered = {partition(bench, s) for s in held_out}
        common = registered.intersection(*(r["acc"] for r in ran.values()))  # like with like
        other = set().union(*(r["acc"] for r in ran.values())) - registered
        for partitions, keep in (("held-out", common), ("exploratory", other)):
            group = []
            for recipe, r in ran.items():
                here = {key: {s: v for s, v in by_split.items() if s in keep} for key, by_split in r.items()}
                splits = sorted({row["split"] for row in reports["rows"] if (row["profile"], row["benchmark"],
                                 row["recipe_id"]) == (reg["profile"], bench, recipe)
                                 and partition(bench, row["split"]) in keep})
                if all(here.values()):
                    group.append({"benchmark": bench, "partitions": partitions, "recipe": recipe,
                                  "splits": splits, **{key: estimate(v) for key, v in here.items()},
                                  **({"planned": len(held_out)} if partitions == "held-out" else {})})
            complete = len(group) == len(reg["recipes"]) and all(len(e["splits"]) >= 2 for e in group)
            out += group if partitions == "exploratory" or complete else []
    return out


def span(values: list[int]) -> str:
    """`0–4` for a run of consecutive integers, else `0, 2, 5`."""
    values = sorted(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    return ", ".join(str(v) for v in values)


def plural(word: str, items: list) -> str:
    return word if len(items) == 1 else word + "s"


def bench_name(bench: str) -> str:
    return BENCH_NAMES.get(bench, bench)


def estimate_text(e: Estimate) -> str:
    """`mean [low, high]` in %; the interval cut to [0, 100], where every accuracy and AUROC lies (a t interval over
    two partitions, df 1, reaches past it; the cut keeps its coverage)."""
    if e.low is None:
        return f"{e.mean:.1f}"
    return f"{e.mean:.1f} [{max(e.low, 0.0):.1f}, {min(e.high, 100.0):.1f}]"


def partitions_text(n: int | str, splits: list[int], groups: list[list[int]], short: bool = False) -> str:
    """`4 partitions (splits 0–4; 0 and 1 hold the same classes)`, `one partition (splits 0 and 1 hold the same
    classes)`: what an interval over splits that share partitions (`groups`, study/partitions.py) counted; `short`:
    `4 partitions (splits 0–4)`."""
    if n == 1:
        return "one partition" + ("" if short else f" (splits {alike(groups)})")
    return f"{n} partitions (splits {span(splits)}" + ("" if short else f"; {alike(groups)}") + ")"


def basis(entry: dict, short: bool = False) -> str:
    """What an answer entry's interval is taken over: `5 splits (0–4)`, `3 seeds of split 0`, `1 run, split 0`;
    where some of the splits hold the same classes, `4 partitions (splits 0–4; 0 and 1 hold the same classes)`
    (`short`: without the part after the semicolon)."""
    e, splits = entry["acc"], span(entry["splits"])
    groups = same_classes(entry["benchmark"], entry["splits"])
    if e.over == "splits":
        of = f" of {entry['planned']}" if entry.get("planned", e.n) > e.n else ""  # held-out partitions still running
        n = f"{e.n}{of}"
        return partitions_text(n, entry["splits"], groups, short) if groups else f"{n} splits ({splits})"
    where = f"{plural('split', entry['splits'])} {splits}" + (f"; {alike(groups)}" if groups and not short else "")
    return f"{e.n} seeds of {where}" if e.n > 1 else f"1 run, {where}"


def answer_table(entries: list[dict]) -> list[str]:
    lines = ["| benchmark | partitions | recipe | accuracy (%) | AUROC, MLS (%) | interval over |",
             "|---|---|---|---|---|---|"]
    for e in entries:
        label = LABELS.get(e["recipe"], e["recipe"])
        lines.append(f"| {bench_name(e['benchmark'])} | {e['partitions']} | {label} (`{e['recipe']}`) | "
                     f"{estimate_text(e['acc'])} | {estimate_text(e['auroc'])} | {basis(e)} |")
    return lines


def answer_caption(profile: str) -> str:
    return (f"Profile `{profile}`. Mean and 95 % Student-t interval over partitions (a partition's value is the mean "
            "over its seeds; splits that hold the same classes are one partition, counted once), or over the seeds "
            "of a benchmark's one partition; one run has no interval. Held-out: the partitions registered in "
            f"`{REGISTERED}`; exploratory: every other split.")


def answer_markdown(reports: dict, entries: list[dict]) -> str:
    """`reports/answer.md`: the README's answer table."""
    head = [answer_caption(reports["registered"]["profile"]) + " Generated by `python -m study.document` from "
            f"`{ARCHIVES}/`.", ""]
    return "\n".join(head + answer_table(entries)) + "\n"


def _point(ax, x: int, e: Estimate, colour: str) -> None:
    """One recipe's mean with its interval as an error bar, labelled with the mean and n."""
    err = [[e.mean - e.low], [e.high - e.mean]] if e.low is not None else None
    ax.errorbar([x], [e.mean], yerr=err, fmt="o", color=colour, capsize=5, ms=7, lw=2)
    top = e.high if e.high is not None else e.mean
    ax.annotate(f"{e.mean:.1f}\nn={e.n}", (x, top), xytext=(0, 5), textcoords="offset points", ha="center",
                va="bottom", fontsize=8, bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1})


def _panel(ax, entries: list[dict], key: str, ylabel: str) -> None:
    """One metric of one benchmark: a point per recipe; dotted lines at the no-mix and CutMix means."""
    for recipe, style in (("ce-none", ":"), ("ce-cutmix", "--")):
        ref = next((e[key] for e in entries if e["recipe"] == recipe), None)
        if ref:
            ax.axhline(ref.mean, color=COLOURS[recipe], ls=style, lw=1, label=f"{LABELS[recipe]} mean")
    for x, e in enumerate(entries):
        _point(ax, x, e[key], COLOURS.get(e["recipe"], "k"))
    ax.set_xticks(range(len(entries)), [LABELS.get(e["recipe"], e["recipe"]).replace(", ", ",\n") for e in entries],
                  fontsize=8)
    lows = [e[key].low if e[key].low is not None else e[key].mean for e in entries]
    highs = [e[key].high if e[key].high is not None else e[key].mean for e in entries]
    pad = 0.25 * (max(highs) - min(lows) or 1.0)
    ax.set(ylabel=ylabel, ylim=(min(lows) - pad, max(highs) + 1.6 * pad), xlim=(-0.5, len(entries) - 0.5))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def answer_figure(entries: list[dict], profile: str, path: Path) -> None:
    """Accuracy (top) and AUROC (bottom) per benchmark (columns), 95 % intervals as error bars."""
    panels = list(dict.fromkeys((e["benchmark"], e["partitions"]) for e in entries))
    fig, axes = plt.subplots(2, len(panels), figsize=(5.6 * len(panels), 8), squeeze=False)
    for col, (bench, partitions) in enumerate(panels):
        here = [e for e in entries if (e["benchmark"], e["partitions"]) == (bench, partitions)]
        _panel(axes[0, col], here, "acc", "closed-set accuracy (%)")
        _panel(axes[1, col], here, "auroc", "AUROC, MLS (%)")
        axes[0, col].set_title(f"{bench_name(bench)}, {partitions}: {basis(here[0], short=True)}", fontsize=10)
    fig.suptitle(f"What mixing costs and what distillation recovers (profile {profile}; mean, 95 % t-interval, "
                 "n = partitions or seeds)\nAn interval over partitions also holds how much they differ in "
                 "difficulty; the paired differences between recipes (docs/study.md) are narrower", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


README_BEGIN, README_END = "<!-- answer:begin -->", "<!-- answer:end -->"


def readme_block(entries: list[dict], profile: str, summary: list[str]) -> list[str]:
    """The answer table as README.md shows it (narrow enough for its 120-character lines), then `summary`."""
    lines = [f"Profile `{profile}`: mean and 95 % t-interval over partitions (splits that hold the same classes count "
             "once) or seeds", f"(generated by `make report` from `{ARCHIVES}/`; held-out: the partitions in "
             f"`{REGISTERED}`).", "",
             "| benchmark: partitions | recipe | accuracy (%) | AUROC, MLS (%) |", "|---|---|---|---|"]
    for e in entries:
        where = f"{bench_name(e['benchmark'])}: {e['partitions']}, {basis(e, short=True)}"
        lines.append(f"| {where} | {LABELS.get(e['recipe'], e['recipe'])} | {estimate_text(e['acc'])} | "
                     f"{estimate_text(e['auroc'])} |")
    return lines + ([""] + summary if summary else [])


def splice_readme(text: str, block: list[str], path: str = "README.md") -> str:
    """`text` with the lines between the answer markers replaced by `block`."""
    try:
        head, rest = text.split(README_BEGIN + "\n", 1)
        _, tail = rest.split(README_END, 1)
    except ValueError:
        raise OSRError(f"{path}: lacks the {README_BEGIN} ... {README_END} block") from None
    return head + README_BEGIN + "\n" + "\n".join(block) + "\n" + README_END + tail
