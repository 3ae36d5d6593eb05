"""The documentation: the README's size, what it links and quotes, and no development history in shipped files.

A shipped file states what is true of the code it ships with; when and in which round of work a fact was
measured belongs in git log. These tests read the repository's own files (no pipeline runs).
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# wording that dates a fact by a round of work, or tells how the project came to be, instead of what is true now
HISTORY = re.compile(
    r"\bsessions?\s+#?\d+"                                 # "session 10", "sessions 3-5", across a line break
    r"|\b(?:early|earlier|previous|later|last|this|that|one) session\b"
    r"|\bmeasured in (?:an? |the )?(?:\w+ )?session\b"
    r"|\bissues? #?\d+\b"                                  # "(issue 12)", "in issue 13" as the source of a fact
    r"|\b(?:was|were|been|be) lent\b"                      # "no GPU was lent"
    r"|\bthe pin is gone\b"
    r"|\(measured: ",                                      # an anecdote as the source of a fact
    re.IGNORECASE)
# documents the user of a clone does not have: the project notes beside the repository
OUTSIDE = re.compile(r"\.\./shared/docs|\b(?:stack|design)\.md\b")
MD_LINK = re.compile(r"\]\((?!https?://|#)([^)\s#]+)")
QUOTE = re.compile(r"`([a-z]+-[a-z]+(?:\+[a-z0-9_]+)*)` (\d+\.\d) / (\d+\.\d)")
SECTION_CITE = re.compile(r"methods\.md §(\d+(?:\.\d+)?)")


def shipped_files() -> list[Path]:
    """README.md, docs/, bench/, conf/ and every .py outside tests/: tracked or new, never git-ignored."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    text_suffixes = {".md", ".py", ".yaml", ".yml", ".sh", ".txt", ".toml"}

    def shipped(p: str) -> bool:
        if p.startswith("tests/"):
            return False
        if p == "README.md" or p.endswith(".py"):
            return True
        return p.split("/")[0] in {"docs", "bench", "conf"} and Path(p).suffix in text_suffixes
    return [ROOT / p for p in sorted(set(out)) if shipped(p) and (ROOT / p).is_file()]


def offending_lines(pattern: re.Pattern) -> list[str]:
    """`file:line: match` for every match in the shipped files (a match may span a line break)."""
    hits = []
    for path in shipped_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
                 for m in pattern.finditer(text)]
    return hits


def test_readme_is_short_and_narrow():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines (at most 200)"
    wide = [f"{n}: {len(line)}" for n, line in enumerate(lines, 1) if len(line) > 120]
    assert not wide, f"README.md lines over 120 characters: {wide}"


def test_history_pattern_flags_history_and_spares_technical_words():
    for text in ("measured in session 12", "an early session on older code", "(issue 13)", "in issue 4 we saw",
                 "no GPU was lent", "not run: no GPU has been lent", "dvclive is not used (the pin is gone)",
                 "288 tests in 33 min (session\n13)", "a second worker (measured: session 9)"):
        assert HISTORY.search(text), text
    for text in ("subprocess.Popen(cmd, start_new_session=True)", "a SQLAlchemy session per trial",
                 "the issue is that ties break differently", "sessionmaker()"):
        assert not HISTORY.search(text), text


def test_no_development_history_in_shipped_files():
    hits = offending_lines(HISTORY)
    assert not hits, "development history (belongs in git log):\n" + "\n".join(hits)


def test_no_document_outside_the_repository_is_cited():
    hits = offending_lines(OUTSIDE)
    assert not hits, "cites a document a clone does not have:\n" + "\n".join(hits)


def test_every_local_link_of_the_readme_and_docs_exists():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    missing = sorted({f"{page.relative_to(ROOT)} -> {target}" for page in pages
                      for target in MD_LINK.findall(page.read_text(encoding="utf-8"))
                      if not (page.parent / target).exists()})
    assert not missing, "links to missing files:\n" + "\n".join(missing)


def test_the_readme_indexes_every_docs_page():
    text = README.read_text(encoding="utf-8")
    for page in ("methods", "study", "tuning", "scale-out", "guarantees", "performance", "own-data"):
        assert f"(docs/{page}.md)" in text, f"README.md does not link docs/{page}.md"


def test_every_methods_section_the_code_cites_exists():
    headings = set(re.findall(r"^#+ (\d+(?:\.\d+)?)\.? ", (ROOT / "docs/methods.md").read_text(encoding="utf-8"),
                              re.MULTILINE))
    cited = {(f"{p.relative_to(ROOT)}", s) for p in shipped_files() if p.suffix == ".py"
             for s in SECTION_CITE.findall(p.read_text(encoding="utf-8"))}
    assert cited, "no code cites docs/methods.md: the pattern no longer matches the citations"
    missing = sorted(f"{path}: §{s}" for path, s in cited if s not in headings)
    assert not missing, f"cited sections missing from docs/methods.md (headings {sorted(headings)}): {missing}"


@pytest.mark.parametrize("page", [README, ROOT / "docs/methods.md"], ids=lambda p: p.name)
def test_quoted_quick_profile_figures_match_the_committed_experiments(page):
    """`recipe` acc / AUROC on the quick profile, CIFAR-10 split 0, as the archived experiment records them."""
    quotes = QUOTE.findall(page.read_text(encoding="utf-8"))
    if page == README:
        assert len(quotes) >= 3, "README.md no longer quotes the quick-profile recipes this test checks"
    for recipe, acc, auroc in quotes:
        path = ROOT / "reports/experiments" / f"quick-cifar10-s0-{recipe}.json"
        assert path.exists(), f"{page.name} quotes {recipe}, which has no committed file {path.relative_to(ROOT)}"
        test = json.loads(path.read_text())["metrics"]["student"]["test"]
        assert (f"{100 * test['acc']:.1f}", f"{100 * test['mls']['auroc']:.1f}") == (acc, auroc), \
            f"{page.name} quotes {recipe} {acc} / {auroc}; {path.name} holds {test['acc']} / {test['mls']['auroc']}"


PROFILE_ROW = re.compile(r"^\| `([a-z0-9_]+)`[^|]*\|([^|]*)\|[^|]*\|([^|]*)\|$", re.MULTILINE)


def test_the_readme_profile_table_states_each_profiles_networks_and_epochs():
    rows = {name: (nets, epochs) for name, nets, epochs in PROFILE_ROW.findall(README.read_text(encoding="utf-8"))
            if (ROOT / "conf/profile" / f"{name}.yaml").exists()}
    assert set(rows) == {p.stem for p in (ROOT / "conf/profile").glob("*.yaml")}, "a profile is missing its row"
    for name, (nets, epochs) in rows.items():
        conf = yaml.safe_load((ROOT / "conf/profile" / f"{name}.yaml").read_text())
        if "teacher" not in conf or "epochs" not in conf["teacher"]:
            continue  # a profile that only changes another's settings ("as `paper`")
        t, s = conf["teacher"], conf["student"]
        assert re.search(rf"\b{t['epochs']} \+ {s['epochs']}\b", epochs), f"{name}: epochs {epochs.strip()!r}"
        assert f"width {s['width']}" in nets and f"width {t['width']}" in nets, f"{name}: networks {nets.strip()!r}"
        for arch in {t["arch"], s["arch"]}:
            assert arch.replace("resnet", "ResNet-") in nets, f"{name}: {arch} not in {nets.strip()!r}"


def test_the_tuning_page_states_the_search_space():
    space = yaml.safe_load((ROOT / "conf/search/asym.yaml").read_text())
    page = (ROOT / "docs/tuning.md").read_text(encoding="utf-8")
    for name, dim in space["tuned"].items():
        low, high = (f"{v:g}" for v in (dim["low"], dim["high"]))
        assert re.search(rf"\| `{name}` \| `{re.escape(dim['key'])}` \| {low}–{high}\b", page), \
            f"docs/tuning.md does not state {name}: {dim}"
    for key, value in space["fixed"].items():
        assert f"`{key}={value}`" in page, f"docs/tuning.md does not state the fixed {key}={value}"


def test_the_tuning_study_on_record_is_quoted_from_its_report():
    """docs/tuning.md's figures of the committed study are its report's: trial counts, the best trial's settings
    and validation figures, the plots it shows."""
    report = json.loads((ROOT / "reports" / "tuning" / "tune-asym.json").read_text())
    text = (ROOT / "docs" / "tuning.md").read_text()
    states, best = report["n_trials_by_state"], report["best"]
    assert report["n_trials"] >= 20 and f"a study of {report['n_trials']} trials" in text
    epochs = report["params"]["student"]["epochs"]
    assert f"{states['COMPLETE']} ran their {epochs} epochs" in text and f"{states['PRUNED']} were stopped" in text
    p = best["params"]
    assert (f"The best is trial {best['number']}: τ = {p['tau']:.1f}, threshold = {p['threshold']:.2f}, "
            f"smoothing = {p['smoothing']:.1f}") in " ".join(text.split())
    assert f"proxy AUROC {100 * best['proxy_auroc']:.1f} %" in text
    assert f"validation accuracy {100 * best['val_acc']:.1f} %" in " ".join(text.split())
    assert all(f"../{plot}" in text for plot in report["plots"])


def test_the_tuning_report_regenerates_from_its_committed_journal(tmp_path):
    """reports/tuning/tune-asym.json is what `python -m flows.tune_report` writes from the journal committed beside
    it (with conf/, whose defaults the replay command is written against): no pipeline output, no server."""
    import shutil
    import sys

    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "reports" / "tuning").mkdir(parents=True)
    shutil.copy(ROOT / "reports" / "tuning" / "tune-asym.journal", tmp_path / "reports" / "tuning")
    subprocess.run([sys.executable, "-m", "flows.tune_report", "--study", "tune-asym", "--project", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True)
    written = json.loads((tmp_path / "reports" / "tuning" / "tune-asym.json").read_text())
    assert written == json.loads((ROOT / "reports" / "tuning" / "tune-asym.json").read_text())


def block(page: Path, name: str) -> str:
    text = page.read_text(encoding="utf-8")
    return text.split(f"<!-- {name}:begin -->")[1].split(f"<!-- {name}:end -->")[0]


def test_the_tuning_replay_table_is_its_committed_report():
    """The best trial's replay in docs/tuning.md: the test metrics `-p run_best=true` wrote, after the run it
    replaced, for the report's best trial and command; the teacher is the same model in both runs."""
    replay = json.loads((ROOT / "reports/tuning/tune-asym/replay.json").read_text())
    report = json.loads((ROOT / "reports/tuning/tune-asym.json").read_text())
    assert replay["trial"] == report["best"]["number"] and replay["command"] == report["best_command"]
    before, after = replay["metrics_before"], replay["metrics"]
    assert before["teacher"] == after["teacher"]

    def cells(model: dict) -> str:
        t, mls = model["test"], model["test"]["mls"]
        low, high = mls["auroc_ci95"]
        return (f"{100 * t['acc']:.1f} | {100 * mls['auroc']:.1f} [{100 * low:.1f}, {100 * high:.1f}] | "
                f"{100 * mls['oscr']:.1f} |")

    table = [line for line in block(ROOT / "docs/tuning.md", "replay").splitlines() if line.startswith("| ")]
    assert [line.split(" | ", 1)[1] for line in table[1:]] == [cells(before["student"]), cells(after["student"]),
                                                                 cells(after["teacher"])]


def test_the_frontier_table_is_the_committed_benchmark():
    rows = json.loads((ROOT / "bench/results/frontier.json").read_text())["rows"]
    expected = [f"| {r['recipe']} | {r['epochs']} | {100 * r['acc']:.1f} | {100 * r['auroc']:.1f} | "
                f"{100 * r['unknown_rejected']:.1f} | {100 * r['known_accuracy_accepted']:.1f} | {r['minutes']:.1f} |"
                for r in rows]
    table = [line for line in block(ROOT / "docs/performance.md", "frontier").splitlines() if line.startswith("| ")]
    assert table[1:] == expected  # after the header row (the separator does not start with "| ")


def test_the_recipes_table_is_the_committed_benchmark():
    rows = json.loads((ROOT / "bench/results/recipes.json").read_text())["rows"]
    expected = [f"| {name} | {r['shipped']} | {100 * r['acc']:.1f} | {100 * r['auroc']:.1f} | "
                f"{100 * r['unknown_rejected']:.1f} | {100 * r['known_accuracy_accepted']:.1f} | "
                f"{100 * r['candidates'][r['shipped']]['noise_accepted']:.1f} | {r['minutes']:.1f} |"
                for name, r in rows.items()]
    table = [line for line in block(ROOT / "docs/performance.md", "recipes").splitlines() if line.startswith("| ")]
    assert table[1:] == expected


def test_the_own_folder_figures_are_the_committed_report():
    r = json.loads((ROOT / "reports/own-folder.json").read_text())
    floor, ft, compared = r["floor"], r["floor"]["test"], r["compared"]
    text = " ".join(block(ROOT / "docs/own-data.md", "own-folder").split())

    def exported(label: str, ran: dict) -> str:
        e = ran["export"]
        m, t = ran["models"][e["role"]], e["test"]
        return (f"| {label} ({e['role']}) | {100 * m['acc']:.1f} | {100 * m['mls']['auroc']:.1f} | "
                f"{100 * t['unknown_rejected']:.1f} | {100 * t['known_accuracy_accepted']:.1f} | "
                f"{100 * e['noise_accepted']:.1f} |")
    rows = (exported("exported, quick", r),
            exported(f"exported, quick with {' '.join(compared['overrides'])}", compared),
            f"| logistic regression on pixels | {100 * floor['test_acc']:.1f} | "
            f"{100 * floor['test_auroc_msp']:.1f} | {100 * ft['unknown_rejected']:.1f} | "
            f"{100 * ft['known_accuracy_accepted']:.1f} | |",
            f"{r['minutes']:.1f} min end to end",
            f"trained {r['epochs']['teacher']} epochs and the student {r['epochs']['student']}",
            r["export"]["chosen_because"], compared["export"]["chosen_because"])
    for row in rows:
        assert row in text, row


GRADMIX_ROWS = {  # docs/methods.md's row -> (the archived experiment, its model)
    "GradMix as published (`teacher.loss=gradmix_con`)": ("quick-cifar10-s0-ce-none-tgradmix_con+no_noise", "teacher"),
    "CE adaptation (`augment.method=gradmix`)": ("quick-cifar10-s0-ce-gradmix+no_noise+s_e10", "student"),
    "CE without mixing (that run's teacher)": ("quick-cifar10-s0-ce-gradmix+no_noise+s_e10", "teacher"),
}


def test_the_gradmix_table_is_the_archived_experiments():
    expected = []
    for label, (name, role) in GRADMIX_ROWS.items():
        t = json.loads((ROOT / "reports/experiments" / f"{name}.json").read_text())["metrics"][role]["test"]
        (lo, hi), mls = t["mls"]["auroc_ci95"], t["mls"]
        auroc = f"{100 * mls['auroc']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        expected.append(f"| {label} | {100 * t['acc']:.1f} | {auroc} | {100 * mls['oscr']:.1f} |")
    table = [line for line in block(ROOT / "docs/methods.md", "gradmix").splitlines() if line.startswith("| ")]
    assert table[1:] == expected

