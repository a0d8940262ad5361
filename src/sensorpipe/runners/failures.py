"""The failure policy of a run (``run.on_unit_error``): stop at a unit's error, or skip the unit and go on.

A unit is one person of one study. Under ``skip`` its pass 1 or pass 2 error
is caught *in the process that ran it* (a worker, or the driver under the
local runner) and comes back as a small :class:`UnitFailure` in the unit's
place, so both runners see the same list in the same order and write the same
dataset without it. Under ``stop`` the stages run unwrapped, so the error
(which names the file and the fix) reaches the user as before.

A failed unit leaves no cache entry a later run would reuse: pass 1 writes the
unit's summary JSON last (its presence marks the entry complete) and pass 2
renames its spill into place last; what a failure leaves half-written is
unreferenced and ``sensorpipe cache clean`` removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sensorpipe.core.refs import UnitRef
from sensorpipe.privacy.pseudonym import pseudonym
from sensorpipe.processing.normalize import NormParams
from sensorpipe.runners.stages import EncodedUnit, RunContext, UnitSummary, encode_unit, prepare_unit
from sensorpipe.sources.study import PersonUnit

PREPARE, ENCODE = "prepare", "encode"


@dataclass(frozen=True)
class UnitFailure:
    """A unit left out under ``run.on_unit_error: skip``: who, which source and file (where the error names
    one), the pass that failed, and the error on one line."""

    study: str
    participant: str     # pseudonym
    source: str          # the failing source, or the person's sources comma-separated when it is not known
    source_file: str     # the file the error names ("" when it names none of the unit's files)
    stage: str           # prepare (pass 1) | encode (pass 2)
    error: str           # "<ExceptionType>: <message>", one line

    def line(self) -> str:
        where = f"{self.source} {self.source_file}" if self.source_file else self.source
        return f"{self.study}/{self.participant} ({where}, {self.stage}): {self.error}"


def one_line(e: BaseException) -> str:
    """The error as one line: its type and message with line breaks folded."""
    msg = " ".join(str(e).split()) or repr(e)
    return f"{type(e).__name__}: {msg}"


def _blame(e: BaseException, files_by_source: list[tuple[str, tuple[str, ...]]]) -> tuple[str, str]:
    """(source, file) the error is about: the file an OSError carries or the message names; else, for a
    unit of one file, that file; else every source of the unit and no file."""
    text, named = str(e), getattr(e, "filename", None)
    for source, files in files_by_source:
        for f in files:
            if f == named or f in text:
                return source, f
    if len(files_by_source) == 1 and len(files_by_source[0][1]) == 1:
        return files_by_source[0][0], files_by_source[0][1][0]
    return ",".join(s for s, _ in files_by_source), ""


def skipping(ctx: RunContext) -> bool:
    return ctx.cfg.run.on_unit_error == "skip"


def prepare_or_skip(ctx: RunContext, person: PersonUnit | UnitRef) -> UnitSummary | UnitFailure:
    """Pass 1 (:func:`~sensorpipe.runners.stages.prepare_unit`); under ``skip`` an error becomes a
    :class:`UnitFailure` (any ``Exception``: a user-fixable SourceError as much as a bug in a plugin)."""
    if not skipping(ctx):
        return prepare_unit(ctx, person)
    try:
        return prepare_unit(ctx, person)
    except Exception as e:  # noqa: BLE001 - the policy is to report any unit's error and go on
        p = PersonUnit.of(person)
        source, file = _blame(e, [(u.source.name, tuple(u.files)) for u in p.parts])
        return UnitFailure(p.study, pseudonym(ctx.key, p.study, p.participant_id), source, file, PREPARE,
                           one_line(e))


def encode_or_skip(ctx: RunContext, summary: UnitSummary, norm: NormParams) -> EncodedUnit | UnitFailure:
    """Pass 2 (:func:`~sensorpipe.runners.stages.encode_unit`); under ``skip`` an error becomes a
    :class:`UnitFailure`."""
    if not skipping(ctx):
        return encode_unit(ctx, summary, norm)
    try:
        return encode_unit(ctx, summary, norm)
    except Exception as e:  # noqa: BLE001 - the policy is to report any unit's error and go on
        files = [(p.source, tuple(f for f in summary.input_fingerprints if f in p.rows_in_by_file))
                 for p in summary.parts]
        source, file = _blame(e, files)
        return UnitFailure(summary.study, summary.participant, source, file, ENCODE, one_line(e))


def split_prepared(results: list[Any]) -> tuple[list[UnitSummary], list[UnitFailure]]:
    """Pass 1's results -> (the units that succeeded, in order; the failures, in order)."""
    return ([r for r in results if not isinstance(r, UnitFailure)],
            [r for r in results if isinstance(r, UnitFailure)])


def split_encoded(summaries: list[UnitSummary], results: list[Any]
                  ) -> tuple[list[UnitSummary], list[EncodedUnit], list[UnitFailure]]:
    """Pass 2's results -> (summaries and encodings of the units that succeeded, in order; the failures).

    A unit that fails pass 2 leaves the dataset whole: its windows, row accounting and quarantine go with
    it (its train statistics were already merged into the normalization, which pass 2 needs first).
    """
    kept = [(s, r) for s, r in zip(summaries, results) if not isinstance(r, UnitFailure)]
    return [s for s, _ in kept], [r for _, r in kept], [r for r in results if isinstance(r, UnitFailure)]
