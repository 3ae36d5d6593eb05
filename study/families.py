"""The claims table (reports/claims.json): every claim row with its family, its raw verdict and its verdict after
Holm's correction over its family.

Exploratory claims (conf/study/claims.yaml) are tested on each profile/benchmark with data, on every split but
the confirmatory study's partitions. Confirmatory claims (conf/study/confirmatory.yaml) are tested only on that
study's partitions of each benchmark, paired over them (one seed per cell: the partition is the unit). A row is
``confirmatory`` only when it comes from the confirmatory study and every experiment behind it was launched after
the claim's registration (study/registration.py); any other row is ``exploratory``, whatever its text says.

Holm families (``holm_family``): the confirmatory rows together, sized by the study's plan (claims x benchmarks:
a row not tested yet counts as the largest p); each exploratory profile/benchmark and set of partitions (splits
that hold the same classes are one, study/partitions.py), with the rows that compare student schedules (SCHEDULE
variants) apart as the schedule study. A row without an interval takes
no part in its family; its verdicts are ``inconclusive``, or ``noise not measured`` (study/claims.py).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from study.claims import NOISE_NOT_MEASURED, Claim, compare, load_claims
from study.grid import SCHEDULE, recipe_variants
from study.partitions import partition
from study.registration import REPO, after_registration, claim_lines, registration_commit
from study.spec import CLAIMS_FILE, CONFIRMATORY_FILE, load
from study.stats import NOT_MEASURED, holm, holm_verdict, p_value, verdict

CONFIRMATORY = "confirmatory"
UNREGISTERED = "confirmatory study, launched before registration"


def _registration(repo: Path, path: Path, c: Claim, rows: list[dict], res: dict, profile: str, bench: str) -> dict:
    """The claim's registration commit and whether every experiment behind the row was launched after it."""
    line = claim_lines(path).get(c.id, "")
    registered = registration_commit(repo, _source(repo, path), line) if line else None
    behind = [r.get("baseline") for r in rows if (r["profile"], r["benchmark"]) == (profile, bench)
              and r["recipe_id"] in (c.a, c.b) and r["split"] in res["splits"]]
    return {"registered": registered, "launched_after_registration": after_registration(repo, registered, behind)}


def _source(repo: Path, path: Path) -> str:
    """A study file's path relative to the repository, as git names it."""
    return str(Path(path).resolve().relative_to(Path(repo).resolve()))


def claim_row(c: Claim, profile: str, bench: str, res: dict) -> dict:
    """One row: the claim, its comparison, the p-value against the margin and the raw verdict."""
    metric = c.metric if not c.metric_a else f"{c.metric} - {c.metric_a}"
    p = p_value(res["mean_diff"], res["se"], res["df"], c.margin) if res.get("ci95") else None
    raw = NOT_MEASURED if res["interval"] == NOISE_NOT_MEASURED else verdict(res["ci95"], c.direction, c.margin)
    return {"id": c.id, "text": c.text, "profile": profile, "benchmark": bench, "metric": metric, "a": c.a,
            "b": c.b, "direction": c.direction, "margin": c.margin, **res, "verdict": raw, "p": p}


def _family_key(row: dict) -> tuple:
    """What an exploratory row's Holm family is: its profile/benchmark, its partitions, whether a schedule study."""
    partitions = frozenset(partition(row["benchmark"], s) for s in row["splits"])
    schedule = bool((recipe_variants(row["a"]) | recipe_variants(row["b"])) & SCHEDULE)
    return row["profile"], row["benchmark"], partitions, schedule


def exploratory_family(row: dict, splits: list[int]) -> str:
    """The Holm family of an exploratory row, named by its profile/benchmark and the splits behind the family's rows
    (and their partitions where some hold the same classes), or the schedule study."""
    profile, bench, partitions, schedule = _family_key(row)
    where = f"{profile} / {bench} " + (f"split {splits[0]}" if len(splits) == 1 else
                                       f"splits {', '.join(map(str, splits))}")
    if len(partitions) < len(splits):
        where += f" ({len(partitions)} {'partition' if len(partitions) == 1 else 'partitions'})"
    return f"schedule study, {where}" if schedule else where


def exploratory_rows(rows: list[dict], repo: Path, path: Path, hidden: set[tuple]) -> list[dict]:
    """Every claim of `path` on every profile/benchmark with data, off the `hidden` (held-out) partitions."""
    rows = [r for r in rows if (r["profile"], r["benchmark"], r["split"]) not in hidden]
    out = []
    for c in load_claims(path):
        for profile, bench in sorted({(r["profile"], r["benchmark"]) for r in rows}):
            res = compare(rows, profile, bench, c.a, c.b, c.metric, c.metric_a)
            if res is not None:
                row = {**claim_row(c, profile, bench, res), "source": _source(repo, path), "family": "exploratory"}
                out.append({**row, **_registration(repo, path, c, rows, res, profile, bench)})
    behind = defaultdict(set)  # a family's splits: of every row on its partitions
    for row in out:
        behind[_family_key(row)].update(row["splits"])
    return [{**row, "holm_family": exploratory_family(row, sorted(behind[_family_key(row)]))} for row in out]


def confirmatory_rows(rows: list[dict], repo: Path, path: Path, study: dict) -> list[dict]:
    """Every claim of the confirmatory study on each benchmark's partitions, paired over them."""
    out = []
    for c in load_claims(path):
        for bench, parts in study["partitions"].items():
            here = [r for r in rows if (r["profile"], r["benchmark"]) == (study["profile"], bench)
                    and r["split"] in parts]
            res = compare(here, study["profile"], bench, c.a, c.b, c.metric, c.metric_a)
            if res is None:
                continue
            if res["n"] < 2:  # the partition is the unit of replication: no interval from one
                res = {**{k: v for k, v in res.items() if k not in ("se", "df")},
                       "interval": "none (fewer than two partitions)", "ci95": None}
            reg = _registration(repo, path, c, here, res, study["profile"], bench)
            family = CONFIRMATORY if reg["launched_after_registration"] else "exploratory"
            out.append({**claim_row(c, study["profile"], bench, res), "planned_splits": list(parts),
                        "source": _source(repo, path), "family": family, **reg,
                        "holm_family": CONFIRMATORY if family == CONFIRMATORY else UNREGISTERED})
    return out


def apply_holm(rows: list[dict], sizes: dict[str, int]) -> None:
    """Add p_holm and verdict_holm to every row, Holm-corrected within its holm_family (`sizes`: planned sizes)."""
    families = defaultdict(list)
    for r in rows:
        families[r["holm_family"]].append(r)
    for name, members in families.items():
        for r, p in zip(members, holm([r["p"] for r in members], sizes.get(name))):
            r["p_holm"] = p
            r["verdict_holm"] = NOT_MEASURED if r["verdict"] == NOT_MEASURED else \
                holm_verdict(p, r["mean_diff"], r["direction"], r["margin"])


def confirmatory_study(path: Path = CONFIRMATORY_FILE) -> dict:
    """The confirmatory study file: profile, partitions, recipes, claims."""
    return load(path, ("profile", "partitions", "recipes", "claims"))


def held_out(study: dict) -> set[tuple[str, str, int]]:
    """The (profile, benchmark, split) cells of the confirmatory partitions: no exploratory table reads them."""
    return {(study["profile"], b, s) for b, parts in study["partitions"].items() for s in parts}


def claims_table(rows: list[dict], repo: Path = REPO, claims_file: Path = CLAIMS_FILE,
                 study_file: Path = CONFIRMATORY_FILE) -> dict:
    """{"claims": confirmatory then exploratory rows, "families": Holm family -> size, "missing": the claims no
    data speaks to yet, as "<study file>: <id>"}."""
    study = confirmatory_study(study_file)
    planned = {CONFIRMATORY: len(study["claims"] or []) * len(study["partitions"])}
    out = confirmatory_rows(rows, repo, study_file, study) + exploratory_rows(rows, repo, claims_file, held_out(study))
    apply_holm(out, planned)
    sizes = {f: max(planned.get(f, 0), sum(r["holm_family"] == f and r["p"] is not None for r in out))
             for f in dict.fromkeys(r["holm_family"] for r in out)}
    spoken = {(r["source"], r["id"]) for r in out}
    ids = [(_source(repo, f), c.id) for f in (study_file, claims_file) for c in load_claims(f)]
    return {"interval": "95 % Student-t (see study/claims.py)", "units": "percentage points (Jacobian: raw)",
            "holm": "Holm step-down over each holm_family (see study/families.py)", "families": sizes,
            "claims": out, "missing": [f"{src}: {i}" for src, i in ids if (src, i) not in spoken]}
