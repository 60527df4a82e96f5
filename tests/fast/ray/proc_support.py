"""Process-table look-ups for the process-lifetime tests (Linux ``/proc``; empty answers elsewhere)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["child_pids"]


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid``, oldest first."""
    children_file = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return sorted(int(p) for p in children_file.read_text().split())
    except OSError:
        pass
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)
