"""Put back every output dvc.lock records, after a failed `dvc repro` removed some (`make restore`).

    python -m cli.restore [--repo .]

DVC removes a stage's outputs just before it runs the stage's command. When that command then fails (a full disk,
a file-size limit, a folder it cannot write), the stage publishes nothing (`osr.io.publication`), but its previous
outputs are already gone while dvc.lock still records them. The cached ones come back with `dvc checkout`. Those
declared `cache: false` (metrics, plots, diagnostics) DVC does not check out, but its run-cache stored a copy of
each in the DVC cache when their stage last ran: they are copied back from there by the md5 dvc.lock records, or
from git's HEAD where the committed file has that md5. An output found in neither is named, and nothing else is
touched.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
from pathlib import Path

from cli import entry_point
from cli.tools import dvc
from osr import OSRError
from osr.config import read_yaml
from osr.io import atomic_path

LOCK = "dvc.lock"


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def recorded_files(repo: Path) -> dict[str, str]:
    """path -> md5 of every file output in dvc.lock (folder outputs, `<md5>.dir`, are all cached)."""
    lock = read_yaml(repo / LOCK, missing=" (no pipeline has run here: nothing to restore)")
    return {o["path"]: o["md5"] for stage in lock.get("stages", {}).values() for o in stage.get("outs", [])
            if "md5" in o and not o["md5"].endswith(".dir")}


def saved_copy(repo: Path, cache: Path, path: str, md5: str) -> tuple[bytes, str] | None:
    """(the bytes dvc.lock records for `path`, where they were found): the DVC cache, else git's HEAD."""
    obj = cache / "files" / "md5" / md5[:2] / md5[2:]
    if obj.is_file():
        return obj.read_bytes(), "cache"
    committed = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=repo, capture_output=True)
    if committed.returncode == 0 and md5_of(committed.stdout) == md5:
        return committed.stdout, "git"
    return None


def restore(repo: Path) -> dict[str, list[str]]:
    """Restore `repo`'s outputs to what dvc.lock records; returns the paths by where they came from."""
    recorded = recorded_files(repo)
    dvc(["checkout", "--quiet", "--force"], repo)
    cache = Path(dvc(["cache", "dir"], repo).strip())
    done: dict[str, list[str]] = {"cache": [], "git": [], "in place": [], "missing": []}
    for path, md5 in sorted(recorded.items()):
        target = repo / path
        if target.is_file() and md5_of(target.read_bytes()) == md5:
            done["in place"].append(path)
            continue
        found = saved_copy(repo, cache, path, md5)
        if found is None:
            done["missing"].append(path)
            continue
        with atomic_path(target) as tmp:
            tmp.write_bytes(found[0])
        done[found[1]].append(path)
    return done


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m cli.restore", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path("."), help="the project's root (default: here)")

    def work() -> None:
        done = restore(ap.parse_args(argv).repo)
        print(f"restore: dvc checkout, then {len(done['cache'])} outputs from the DVC cache and {len(done['git'])} "
              f"from git; {len(done['in place'])} were in place")
        if done["missing"]:
            raise OSRError(f"{LOCK}: no saved copy of {', '.join(done['missing'])} (neither in the DVC cache nor "
                           "committed): `dvc repro` writes them again")
    entry_point(work, ap, argv)


if __name__ == "__main__":
    main()
