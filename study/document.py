"""The study's documents, generated from the committed reports: docs/study.md, reports/answer.md, reports/answer.png.

    python -m study.document [--root .]

Reads `reports/claims.json` (claim rows: difference, 95 % interval, verdict), `reports/suite.json` (per-recipe
aggregates, run times), `reports/ablation.json` (the per-split ablation studies), the archived experiments
(`reports/experiments/*.json`: the answer's per-split values), the registered confirmatory study
(`conf/study/confirmatory.yaml`: its profile, benchmarks and recipes) and that profile's settings
(`conf/profile/<profile>.yaml`, `conf/config.yaml`). Every number in the outputs is formatted from those files when
this runs, so no figure in the documents can drift from the data; the same files give the same bytes.

The answer: per benchmark, the registered recipes' accuracy and AUROC (MLS) with a 95 % Student-t interval, on the
registered (held-out) partitions and, apart, on every other split (exploratory): over partitions where a recipe ran
on two or more (a partition's value is the mean over its seeds; splits that hold the same classes are one
partition), else over the seeds of its one partition; a single experiment has no interval.

The page's sections are study/study_page.py; the answer table and figure, study/answer.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli import guarded
from osr import OSRError
from osr.config import read_yaml
from osr.io import atomic_path, read_json
from study.answer import (
    ARCHIVES,
    REGISTERED,
    answer,
    answer_figure,
    answer_markdown,
    readme_block,
    splice_readme,
)
from study.experiments import nested, rows_from_archive
from study.study_page import confirmatory_summary, study_markdown

# report -> (its path, the list every such report holds, the keys each entry of that list needs)
REPORTS = {"claims": ("reports/claims.json", "claims",
                      ("id", "text", "benchmark", "a", "b", "n", "splits", "mean_diff", "ci95", "verdict")),
           "suite": ("reports/suite.json", "groups", ("profile", "benchmark", "recipe_id", "splits", "seeds", "n")),
           "ablation": ("reports/ablation.json", "studies", ("profile", "benchmark", "split", "entries", "best_ad"))}
BASE_CONFIG = "conf/config.yaml"
STUDY_MD, ANSWER_MD, ANSWER_PNG = "docs/study.md", "reports/answer.md", "reports/answer.png"


def _report(root: Path, name: str) -> dict:
    """One committed report, checked for the list and entry keys this module reads."""
    rel, key, fields = REPORTS[name]
    path = root / rel
    data = read_json(path)
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise OSRError(f"{path}: expected a JSON object with a `{key}` list")
    for i, item in enumerate(items):
        missing = [f for f in fields if not isinstance(item, dict) or f not in item]
        if missing:
            raise OSRError(f"{path}: `{key}[{i}]` lacks {', '.join(missing)}")
    return data


def _archived_rows(root: Path) -> list[dict]:
    """The experiments archived under reports/experiments, as study.experiments reads them."""
    records = []
    for path in sorted((root / ARCHIVES).glob("*.json")):
        record = read_json(path)
        if not isinstance(record, dict) or not isinstance(record.get("name"), str) or not all(
                isinstance(nested(record, ("metrics", part)), dict) for part in ("info", "student")):
            raise OSRError(f"{path}: not an experiment archive (needs `name`, `metrics.info`, `metrics.student`)")
        records.append(record)
    return rows_from_archive(records)


def load(root: Path) -> dict:
    """The three reports, the archived experiments, the registered study and its profile's settings."""
    out = {name: _report(root, name) for name in REPORTS} | {"rows": _archived_rows(root)}
    registered = read_yaml(root / REGISTERED)
    missing = [k for k in ("profile", "partitions", "recipes", "claims") if k not in registered]
    if missing:
        raise OSRError(f"{root / REGISTERED}: lacks {', '.join(missing)}")
    if not isinstance(registered["partitions"], dict) or not isinstance(registered["recipes"], list):
        raise OSRError(f"{root / REGISTERED}: `partitions` must map benchmarks to splits and `recipes` be a list")
    profile = read_yaml(root / "conf" / "profile" / f"{registered['profile']}.yaml")
    return {**out, "registered": registered, "profile": profile, "base": read_yaml(root / BASE_CONFIG)}


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_documents(root: Path) -> list[Path]:
    """Read the reports under `root`, write the three outputs there; returns their paths."""
    reports = load(root)
    entries = answer(reports)
    if not entries:
        raise OSRError(f"{root / ARCHIVES}: no experiment of profile `{reports['registered']['profile']}` "
                       f"with a recipe registered in {root / REGISTERED}")
    outputs = [root / STUDY_MD, root / ANSWER_MD, root / ANSWER_PNG]
    write_text(outputs[0], study_markdown(reports, entries))
    write_text(outputs[1], answer_markdown(reports, entries))
    answer_figure(entries, reports["registered"]["profile"], outputs[2])
    readme = root / "README.md"
    if readme.exists():
        reg = reports["registered"]
        block = readme_block(entries, reg["profile"], confirmatory_summary(reports["claims"]["claims"], reg))
        write_text(readme, splice_readme(readme.read_text(), block, str(readme)))
        outputs.append(readme)
    return outputs


PARSER = argparse.ArgumentParser(prog="python -m study.document", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
PARSER.add_argument("--root", type=Path, default=Path("."), help="the repository whose reports/ and conf/ to read")


def main() -> None:
    written = write_documents(PARSER.parse_args().root)
    print("study.document: wrote " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    sys.exit(guarded(main))
