"""dvc.yaml declares exactly the project files a stage's code imports, so "up to date" means what the code says.

Each stage's import closure inside the project is computed from the code's own imports (ast, followed
transitively through `osr.*`, `stages.*` and `cli`, function-level imports included; not those under
`if TYPE_CHECKING:`, which never run, nor the runner a stage's `__main__` block imports, stages/common.py, which
hands `main` the validated params and publishes its outputs: it is check_params' dep); a file of it missing from
the stage's `deps` would let an edit leave stale outputs behind, and a file beyond it would rerun the stage for an
edit that cannot change its outputs. The check_params stage also imports the name registries that
`osr.config.validate` checks against (`REGISTRY_MODULES`, imported when a value is checked).

`PYTHONPATH=. python tests/test_dvc_deps.py --write` rewrites every stage's code deps in dvc.yaml (without
`--write`: prints them).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, clone, needs_mirror, ran_stages, sh
from osr.config import REGISTERED, REGISTRY_MODULES, get
from stages import SHARED

PACKAGES = ("osr", "stages", "cli")
PARAMS_OK = "data/params.ok"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def runs_apart(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` (never runs) and `if __name__ == "__main__":` (a stage's runner, stages/common.py)."""
    if not isinstance(node, ast.If):
        return False
    test = ast.unparse(node.test)
    return test == "TYPE_CHECKING" or test in ("__name__ == '__main__'", '__name__ == "__main__"')


def imports_of(tree: ast.AST, every: bool = False) -> list[ast.AST]:
    """The import nodes of `tree`: all of them with `every`, else those outside the blocks that `runs_apart`."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        todo += [c for c in ast.iter_child_nodes(node) if every or not runs_apart(c)]
    return found


def imported_files(path: Path, packages: tuple[str, ...] = PACKAGES, every: bool = False) -> set[Path]:
    """Project files of `packages` that `path` imports when it runs as a stage's code, with the packages they sit
    in (`from osr import data` included): not under `if TYPE_CHECKING:`, nor in the `__main__` block that hands
    a stage to its runner (`every`: those too)."""
    modules = set()
    for node in imports_of(ast.parse(path.read_text()), every):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    parts = [m.split(".") for m in modules if m.split(".")[0] in packages]
    found = {module_file(".".join(p[:i])) for p in parts for i in range(1, len(p) + 1)}
    return found - {None}


def import_closure(module: str) -> set[str]:
    todo, seen = [module_file(module)], set()
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += imported_files(f)
    return {str(f.relative_to(ROOT)) for f in seen}


RUNNER = "stages.common"  # what runs every stage: the gate's dep, so an edit to it reruns the check alone


def code_deps(stage: str) -> list[str]:
    """The project files stage `stage` of dvc.yaml computes with: its module's import closure (with the registries
    and the runner for check_params)."""
    gate = (*REGISTRY_MODULES, RUNNER) if stage == "check_params" else ()
    modules = [stage_module(STAGES[stage]["cmd"]), *gate]
    return sorted(set().union(*map(import_closure, modules)))


def is_code(dep: str) -> bool:
    return dep.endswith(".py") and dep.split("/")[0] in PACKAGES


def stage_module(cmd: str) -> str:
    m = re.fullmatch(r"python -m (stages\.\w+)", cmd.strip())
    assert m, f"unexpected stage command {cmd!r}"
    return m.group(1)


def test_closure_follows_imports_transitively():
    closure = import_closure("stages.split")
    assert {"stages/split.py", "stages/reports.py", "osr/data.py", "osr/expectations.py", "osr/__init__.py"} <= closure
    assert not {"stages/common.py", "osr/config.py", "cli/__init__.py"} & closure  # the runner; annotations
    assert not {f for f in closure if f.startswith("study/")}


def test_validating_params_imports_no_registry():
    """Names are checked against the registries only when a value is checked: the schema itself (and so every
    stage's closure) holds none of them, and only check_params lists them."""
    assert import_closure("osr.config") == {"osr/__init__.py", "osr/config.py"}
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, registry in REGISTERED.items():  # each names a registry that holds the default composition's names
        value = get(defaults, key)
        assert set(value if isinstance(value, list) else [value]) <= set(registry.names()), key
    assert {"osr/scores.py", "osr/losses.py", "osr/models.py"} <= set(code_deps("check_params"))
    assert "osr/scores.py" not in code_deps("train_teacher") and "osr/losses.py" not in code_deps("split")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_code_deps_are_its_import_closure(name):
    listed = sorted(d for d in STAGES[name]["deps"] if is_code(d))
    expected = code_deps(name)
    assert listed == expected, (f"dvc.yaml: stage {name} lists {sorted(set(listed) - set(expected))} beyond and "
                                f"lacks {sorted(set(expected) - set(listed))}; its code deps are {expected}")


def test_stages_holds_only_dvc_stages_and_what_they_share():
    """Entry points that DVC does not run (the suite, its report) live in cli/."""
    modules = {f"stages.{p.stem}" for p in (ROOT / "stages").glob("*.py") if p.stem not in SHARED}
    assert modules == {stage_module(stage["cmd"]) for stage in STAGES.values()}


@pytest.mark.parametrize("name", sorted(set(STAGES) - {"check_params"}))
def test_every_stage_waits_for_the_params_check(name):
    assert PARAMS_OK in STAGES[name]["deps"], f"dvc.yaml: stage {name} must depend on {PARAMS_OK}"


def test_params_check_reads_all_of_params_yaml():
    stage = STAGES["check_params"]
    assert stage["params"] == [{"params.yaml": None}] and stage["outs"] == [{PARAMS_OK: {"persist": True}}]


def test_every_training_stage_can_be_restored_from_the_run_cache():
    """DVC saves no run-cache entry for a stage with an uncached output that is neither a metric nor a plot, or
    with a persistent output: a queued experiment would then retrain the teacher every suite cell shares."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        blockers = {st.addressing: [o.def_path for o in st.outs
                                    if o.persist or not (o.use_cache or o.is_metric or o.is_plot)]
                    for st in repo.index.stages if st.addressing != "check_params"}
    assert not any(blockers.values()), f"dvc.yaml: outputs that switch off the run-cache: {blockers}"


# `dvc status` names the stages whose own deps changed; the stages after them follow only if those outputs change.
LIBRARY_EDITS = {
    "osr/scores.py": {"check_params", "evaluate", "export"},
    "osr/losses.py": {"check_params", "train_teacher", "relabel", "distill"},
    "osr/models.py": {"check_params", "train_teacher", "relabel", "distill", "evaluate", "export"},
    "osr/config.py": {"check_params"},  # the schema: the stages read the sections it validated, as annotations
    "stages/common.py": {"check_params"},  # the runner, imported in each stage's `__main__` block
}


@needs_mirror
@pytest.mark.slow
def test_a_library_edit_changes_only_the_stages_that_run_it(tiny_repro, tmp_path):
    """In a reproduced tiny project, an edit of a score, a loss or a model marks only the stages that import it.

    check_params is in every set: it validates params.yaml's names against the registries, which these modules
    hold, so its deps list them (a registry edit that removes a name in use must fail there, before any stage
    deletes its outputs). Its output is a constant stamp, so its rerun changes nothing downstream: after the
    score edit `dvc repro` reruns check_params, evaluate and export (which computes the exported score) only, and
    the stamp is unchanged."""
    proj = clone(tiny_repro, tmp_path / "proj")
    assert json.loads(sh(["dvc", "status", "--json"], proj).stdout) == {}
    edit = "# an edit that changes no behaviour\n"
    for rel, expected in LIBRARY_EDITS.items():
        original = (proj / rel).read_text()
        (proj / rel).write_text(original + edit)
        changed = set(json.loads(sh(["dvc", "status", "--json"], proj).stdout))
        assert changed == expected, f"editing {rel} changed {sorted(changed)}"
        (proj / rel).write_text(original)
    with open(proj / "osr" / "scores.py", "a") as f:
        f.write(edit)
    stamp = (proj / PARAMS_OK).read_bytes()
    assert ran_stages(sh(["dvc", "repro"], proj).stdout) == {"check_params", "evaluate", "export"}
    assert (proj / PARAMS_OK).read_bytes() == stamp
    assert json.loads(sh(["dvc", "status", "--json"], proj).stdout) == {}


def with_code_deps(text: str) -> str:
    """dvc.yaml's text with each stage's code deps replaced by `code_deps` (in place of the listed ones, the
    other deps and every other line as they were)."""
    out, stage, in_deps, written = [], None, False, False
    for line in text.splitlines(keepends=True):
        if m := re.fullmatch(r"  (\w+):\s*", line):
            stage = m.group(1)
        if re.fullmatch(r"    deps:\s*", line):
            in_deps, written = True, False
        elif in_deps and (dep := re.fullmatch(r"      - (\S+)\s*", line)):
            if is_code(dep.group(1)):
                out += [] if written else [f"      - {d}\n" for d in code_deps(stage)]
                written = True
                continue
        else:
            in_deps = False
        out.append(line)
    return "".join(out)


def test_rewriting_the_code_deps_keeps_the_committed_dvc_yaml():
    text = (ROOT / "dvc.yaml").read_text()
    assert with_code_deps(text) == text


if __name__ == "__main__":  # PYTHONPATH=. python tests/test_dvc_deps.py [--write]: print (or write) the code deps
    import sys

    if sys.argv[1:] == ["--write"]:
        (ROOT / "dvc.yaml").write_text(with_code_deps((ROOT / "dvc.yaml").read_text()))
    for name in STAGES:
        print(f"{name}:\n" + "".join(f"      - {d}\n" for d in code_deps(name)))


# what each package may import besides itself: the library nothing else, the stages and the study the library and
# the command-line runner, the flows also the study
MAY_IMPORT = {"osr": set(), "cli": {"osr"}, "stages": {"osr", "cli"}, "study": {"osr", "cli"},
              "flows": {"osr", "cli", "study"}}


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_packages_import_only_what_they_sit_on(package):
    """No import runs back up or sideways: the study reads experiments, it does not run stage code."""
    for f in sorted((ROOT / package).rglob("*.py")):
        files = imported_files(f, (*MAY_IMPORT, "bench"), every=True)  # a runner or an annotation counts too
        reached = {p.relative_to(ROOT).parts[0] for p in files} - {package}
        assert reached <= MAY_IMPORT[package], f"{f.relative_to(ROOT)} imports {sorted(reached - MAY_IMPORT[package])}"
