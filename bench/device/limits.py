"""The device tool's limits on what comes back from $OUT: at most 8 files, 16 MiB each, 64 MiB together, no
more than 2 folders down, plain files only, names of letters, digits, '.', '_' and '-'. A file beyond them does
not come back, so the device check and `make device-rehearsal` check their $OUT against them.

`python -m bench.device.limits OUT`: one line per problem, exit status 1 if any."""
from __future__ import annotations

import re
import sys
from pathlib import Path

MAX_FILES, MAX_FILE_MIB, MAX_TOTAL_MIB, MAX_DEPTH = 8, 16, 64, 2
NAME = re.compile(r"[A-Za-z0-9._-]+")


def problems(out: Path) -> list[str]:
    """What under `out` would not come back (empty: everything would)."""
    found, files, total = [], [], 0
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if not NAME.fullmatch(path.name):
            found.append(f"{rel}: name outside letters, digits, '.', '_' and '-'")
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            found.append(f"{rel}: not a plain file or folder")
        elif path.is_file():
            files.append(rel)
            size = path.stat().st_size
            total += size
            if len(rel.parts) - 1 > MAX_DEPTH:
                found.append(f"{rel}: more than {MAX_DEPTH} folders down")
            if size > MAX_FILE_MIB * 2**20:
                found.append(f"{rel}: {size / 2**20:.1f} MiB, over {MAX_FILE_MIB} MiB")
    if len(files) > MAX_FILES:
        found.append(f"{len(files)} files, over {MAX_FILES}: {', '.join(map(str, files))}")
    if total > MAX_TOTAL_MIB * 2**20:
        found.append(f"{total / 2**20:.1f} MiB in all, over {MAX_TOTAL_MIB} MiB")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m bench.device.limits OUT_FOLDER", file=sys.stderr)
        return 2
    found = problems(Path(args[0]))
    for line in found:
        print(f"$OUT: {line}")
    print(f"$OUT: {'within' if not found else 'OUTSIDE'} the device tool's return limits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
