"""A job as people name it: its id, a unique prefix of the id, or its name (the newest job so named)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from console.records import JobRecord
from console.store import Store, UnknownJob


class AmbiguousJob(UnknownJob):
    """A prefix several job ids share."""

    def __init__(self, reference: str, matches: list[str]) -> None:
        UnknownJob.__init__(self, reference)
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        self.args = (f"{reference!r} is the start of {len(matches)} job ids ({shown}): give more of it",)


@dataclass(frozen=True)
class FoundJob:
    job: JobRecord
    note: str = ""
    """Said when the choice was not exact: `tiny_local: the newest of 3 jobs with that name`."""
    by: Literal["id", "prefix", "name"] = "id"
    """How the reference named it."""


def find_job(store: Store, reference: str) -> FoundJob:
    """Raises UnknownJob (with the closest id as a hint) or AmbiguousJob."""
    jobs = store.jobs()  # newest first
    exact = [job for job in jobs if job.id == reference]
    if exact:
        return FoundJob(exact[0])
    prefixed = [job for job in jobs if job.id.startswith(reference)]
    if len(prefixed) == 1:
        return FoundJob(prefixed[0], by="prefix")
    if len(prefixed) > 1:
        raise AmbiguousJob(reference, [job.id for job in prefixed])
    named = [job for job in jobs if job.name == reference]
    if named:
        note = "" if len(named) == 1 else (f"{reference}: the newest of {len(named)} jobs with that name "
                                           f"({named[0].id})")
        return FoundJob(named[0], note, by="name")
    raise UnknownJob(reference)


def unknown_job_text(missing: UnknownJob, store: Store) -> str:
    if isinstance(missing, AmbiguousJob):
        return str(missing)
    known = [job.id for job in store.jobs()] + sorted({job.name for job in store.jobs()})
    close = difflib.get_close_matches(missing.job_id, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; `ascend-console jobs --all` lists every job"
    return f"no job {missing.job_id!r} (by id, id prefix or name) in the store{hint}"
