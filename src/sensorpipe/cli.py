"""The ``sensorpipe`` command line: each command parses arguments and calls one library function.

Errors a user can fix (bad config, unreadable source, missing dataset) are
printed as one clear message with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys

from sensorpipe.config import ConfigError

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError, KeyError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from sensorpipe.integrity import DatasetIntegrityError
    from sensorpipe.metadata.readonly import MetadataReadOnly
    from sensorpipe.privacy.sealed import SealedFileError
    from sensorpipe.metadata.store import MetadataNotFound, MetadataVersionError
    from sensorpipe.quality.alerts import AlertError
    from sensorpipe.runners.driver import DiskFullError, StrictModeError
    from sensorpipe.runners.executors import RunnerError
    from sensorpipe.runners.preflight import DiskFullError
    from sensorpipe.runners.lifecycle import NoWindowsError, VersionConflict
    from sensorpipe.runners.lock import OutputLocked
    from sensorpipe.sources.base import SourceError
    from sensorpipe.units import UnitError
    from sensorpipe.storage.remote import RemoteVersionConflict
    from sensorpipe.urls import StorageError

    return USER_ERRORS + (SourceError, UnitError, MetadataNotFound, MetadataVersionError, IndexError, StrictModeError,
                          RunnerError, DiskFullError, DatasetIntegrityError, VersionConflict, NoWindowsError,
                          OutputLocked, StorageError, RemoteVersionConflict, MetadataReadOnly, SealedFileError,
                          AlertError)


def cmd_demo(args: argparse.Namespace) -> None:
    from sensorpipe.commands import demo

    print(demo(args.dir, seed=args.seed, scale=args.scale, runner=args.runner, workers=args.workers))


def cmd_run(args: argparse.Namespace) -> None:
    from sensorpipe.commands import run_and_summarize

    print(run_and_summarize(args.config, runner=args.runner, workers=args.workers, strict=args.strict or None,
                            on_unit_error=args.on_unit_error, overwrite=args.overwrite,
                            wait_lock_s=args.wait_lock, beam_options=args.beam_option))


def cmd_rotate_key(args: argparse.Namespace) -> None:
    from sensorpipe.runners.rotate import rotate_key

    print(rotate_key(args.config, key_from_env=args.key_from_env, runner=args.runner, workers=args.workers).text())


def cmd_wipeout(args: argparse.Namespace) -> int:
    from sensorpipe.runners.wipeout import verify_wipeout, wipeout

    who = {"participant": args.participant, "study": args.study, "pseudonym": args.pseudonym,
           "key_file": args.key_file, "config": args.config, "db_url": args.db,
           "quarantine_key_file": args.quarantine_key_file}
    if args.verify:
        report = verify_wipeout(args.dir, **who)
        print(report.text())
        return 0 if report.ok else 1
    print(wipeout(args.dir, keep_normalization=args.keep_normalization, dry_run=args.dry_run, **who).text())
    return 0


def cmd_cache(args: argparse.Namespace) -> None:
    from sensorpipe.commands import clean_cache

    print(clean_cache(args.dir, dry_run=args.dry_run))


def cmd_convert(args: argparse.Namespace) -> None:
    from sensorpipe.convert import convert, load_options, validation_options

    print(convert(args.source, args.paths, args.output, tz=args.tz, participant=args.participant,
                  options=load_options(args.options), participants=args.participants,
                  validation=validation_options(args.plausible_from, args.plausible_until)).summary())


def cmd_inspect(args: argparse.Namespace) -> None:
    from sensorpipe.commands import inspect_window

    if args.participant:
        from sensorpipe.commands import participant_windows

        print(participant_windows(args.dir, args.participant, key_file=args.key_file))
    else:
        print(inspect_window(args.dir, args.split, args.index, plot=args.plot))


def cmd_schema(args: argparse.Namespace) -> None:
    from sensorpipe.metadata.schema_views import diff_schema, show_schema

    if args.schema_command == "show":
        print(show_schema(args.name, args.dir, args.db, args.version))
    else:
        print(diff_schema(args.name, args.v1, args.v2, args.dir, args.db))


def cmd_sources(args: argparse.Namespace) -> None:
    from sensorpipe.commands import list_sources

    print(list_sources())


def cmd_versions(args: argparse.Namespace) -> None:
    from sensorpipe.commands import list_versions

    print(list_versions(args.dir, args.db, all_runs=args.all))


def cmd_db(args: argparse.Namespace) -> None:
    from sensorpipe.metadata.roles import setup_roles

    print(setup_roles(args.url, args.writer, args.reader, schema=args.schema, apply=args.apply))


def cmd_quarantine(args: argparse.Namespace) -> None:
    from sensorpipe.schema.quarantine import show_quarantine

    print(show_quarantine(args.file, key_file=args.key_file, head=args.head))


def cmd_verify(args: argparse.Namespace) -> int:
    from sensorpipe.commands_versions import verify

    text, status = verify(args.dir, version=args.version, name=args.name)
    print(text)
    return status


def cmd_version_query(args: argparse.Namespace) -> None:
    from sensorpipe import commands_versions as cv

    common = {"db_url": args.db, "as_json": args.json, "name": args.name}
    if args.command == "diff":
        print(cv.diff(args.dir, args.v1, args.v2, **common))
    elif args.command == "lineage":
        print(cv.lineage(args.dir, args.key, version=args.version, config=args.config, key_file=args.key_file,
                         **common))
    elif args.command == "stats":
        print(cv.stats(args.dir, version=args.version, split=args.split, **common))
    else:
        print(cv.quality(args.dir, version=args.version, **common))


def cmd_report(args: argparse.Namespace) -> None:
    from sensorpipe.reporting import regenerate

    print(regenerate(args.dir, version=args.version, against=args.against, output=args.output, db_url=args.db,
                     name=args.name))


def _add_report_command(sub) -> None:
    rp = sub.add_parser("report", help="rebuild the HTML quality report of a recorded version, compared with "
                                       "another; prints the report's path")
    rp.add_argument("dir", help="output directory holding metadata.db")
    rp.add_argument("--version", default=None, help="label or fingerprint (default: the newest version)")
    rp.add_argument("--against", default=None, metavar="V2",
                    help="the version to compare with (default: the newest other succeeded version)")
    rp.add_argument("-o", "--output", default=None, help="where to write it (default: DIR/report.html)")
    rp.add_argument("--name", default=None, help="dataset name, when the database holds several")
    rp.add_argument("--db", default=None, help="SQLAlchemy URL of the metadata database (overrides dir)")
    rp.set_defaults(fn=cmd_report)


def _add_version_commands(sub) -> None:
    """``verify``, ``diff``, ``lineage``, ``stats``, ``quality`` (commands_versions.py)."""
    vf = sub.add_parser("verify", help="check a dataset version's files against its manifest (sizes, record counts, "
                                       "sha256); exit 0 when all match, 1 when problems were found, 2 on user errors")
    vf.add_argument("dir", help="output directory of a run (or <out>/<name> or the version folder)")
    vf.add_argument("--version", default=None, help="version label (default: the newest)")
    vf.add_argument("--name", default=None, help="dataset name, when the folder holds several")
    vf.set_defaults(fn=cmd_verify)
    df = sub.add_parser("diff", help="what changed between two versions: config, schemas, code, windows, statistics")
    df.add_argument("dir", help="output directory holding metadata.db")
    df.add_argument("v1", help="old version: label (e.g. 1.0.0) or fingerprint (a unique prefix will do)")
    df.add_argument("v2", help="new version: label or fingerprint")
    ln = sub.add_parser("lineage", help="a window's source files and row ranges")
    ln.add_argument("dir", help="output directory holding metadata.db")
    ln.add_argument("key", help="the window's key, as `sensorpipe inspect` prints it")
    ln.add_argument("--config", default=None, help="the run's pipeline YAML: resolve the source-file tokens the "
                                                     "DB holds to paths under its sources (needs its key)")
    ln.add_argument("--key-file", default=None, help="the pseudonymization key file (default: the config's "
                                                       "privacy.key_file or key_env)")
    st = sub.add_parser("stats", help="per-split, per-channel statistics of a version")
    st.add_argument("dir", help="output directory holding metadata.db")
    st.add_argument("--split", default=None, help="only this split")
    ql = sub.add_parser("quality", help="quality metrics of a version")
    ql.add_argument("dir", help="output directory holding metadata.db")
    for q in (ln, st, ql):
        q.add_argument("--version", default=None, help="label or fingerprint (default: the newest version)")
    for q in (df, ln, st, ql):
        q.add_argument("--name", default=None, help="dataset name, when the database holds several")
        q.add_argument("--db", default=None, help="SQLAlchemy URL of the metadata database (overrides dir)")
        q.add_argument("--json", action="store_true", help="print JSON instead of text")
        q.set_defaults(fn=cmd_version_query)


def _add_wipeout(sub) -> None:
    """``wipeout`` (runners/wipeout.py)."""
    w = sub.add_parser("wipeout", help="erase one person from every version, the cache, quarantine and the metadata "
                                       "(--dry-run: list what would go; --verify: search everything for them)")
    w.add_argument("dir", help="output directory of a run (output.dir)")
    w.add_argument("--participant", default=None, help="the person's raw participant id (needs --study and the key)")
    w.add_argument("--study", default=None, help="the person's study (sources[].study)")
    w.add_argument("--pseudonym", default=None, help="the person's pseudonym, as the shards hold it")
    w.add_argument("--key-file", default=None, help="the pseudonymization key file (default: --config's key, else "
                                                      "the variable privacy.key_env names)")
    w.add_argument("--config", default=None, help="the run's pipeline YAML, for its pseudonymization key")
    w.add_argument("--db", default=None, help="SQLAlchemy URL of the metadata database (default: DIR/metadata.db)")
    w.add_argument("--quarantine-key-file", default=None,
                   help="the key of encrypted quarantine files (privacy.quarantine_key_file; default: --config's)")
    w.add_argument("--keep-normalization", action="store_true",
                   help="keep the normalization parameters when the person was in a train split (refitting would "
                        "change every other record; re-run the config after deleting their input to refit)")
    mode = w.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    mode.add_argument("--verify", action="store_true", help="search every file and table for the person's pseudonym "
                                                            "and raw id; exit 1 when any is found")
    w.set_defaults(fn=cmd_wipeout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sensorpipe", description="Wearable-sensor datasets -> one versioned, sharded training set.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate the sample sources, run the pipeline, print a summary")
    d.add_argument("--dir", default="demo_out", help="working folder for sources and output (default: demo_out)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--scale", type=float, default=1.0, help="multiply the number of demo participants")
    d.add_argument("--runner", choices=("local", "multiprocess"), default=None)
    d.add_argument("--workers", type=int, default=None)
    d.set_defaults(fn=cmd_demo)

    r = sub.add_parser("run", help="run a pipeline config (YAML)")
    r.add_argument("config")
    r.add_argument("--runner", choices=("local", "multiprocess", "beam"), default=None, help="override runner.name")
    r.add_argument("--workers", type=int, default=None, help="override runner.workers")
    r.add_argument("--beam-option", action="append", default=None, metavar="KEY=VALUE",
                   help="an Apache Beam pipeline option for --runner beam (repeatable; after runner.beam_options)")
    r.add_argument("--strict", action="store_true",
                   help="fail when a source's quarantine share passes validation.max_quarantine_rate, or when a "
                        "quality.alerts rule is breached (nothing is published; the previous version stays)")
    r.add_argument("--on-unit-error", choices=("stop", "skip"), default=None,
                   help="override run.on_unit_error: stop at a unit's error (default), or skip the unit, report it "
                        "and go on")
    r.add_argument("--overwrite", action="store_true",
                   help="replace the version at output.name/output.version even if it holds another fingerprint")
    r.add_argument("--wait-lock", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to SECONDS for another run writing the same output folder (default: fail at once)")
    r.set_defaults(fn=cmd_run)

    rk = sub.add_parser("rotate-key", help="write a new pseudonymization key to privacy.key_file, re-run with it, "
                                           "remove every trace of the old pseudonyms, record the rotation")
    rk.add_argument("config")
    rk.add_argument("--key-from-env", action="store_true",
                    help="the new key is already in privacy.key_env's variable: write no key file")
    rk.add_argument("--runner", choices=("local", "multiprocess"), default=None, help="override runner.name")
    rk.add_argument("--workers", type=int, default=None, help="override runner.workers")
    rk.set_defaults(fn=cmd_rotate_key)

    _add_wipeout(sub)
    ca = sub.add_parser("cache", help="manage the per-unit cache under OUT/.work")
    ca_sub = ca.add_subparsers(dest="cache_command", required=True)
    clean = ca_sub.add_parser("clean", help="remove cache entries that no published version's last successful "
                                            "run used; prints each and the bytes freed")
    clean.add_argument("dir", help="output directory of a run (output.dir)")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    ca.set_defaults(fn=cmd_cache)

    c = sub.add_parser("convert", help="one adapter + validation -> the canonical observation table (Parquet)")
    c.add_argument("--source", required=True, help="adapter name (see `sensorpipe sources`)")
    c.add_argument("paths", nargs="+", help="files or folders of that format")
    c.add_argument("-o", "--output", required=True, help="output Parquet file; quarantine goes next to it")
    c.add_argument("--tz", default=None, help="IANA zone for local-time sources without a participants table")
    c.add_argument("--participant", default=None, help="participant id when the files do not name one")
    c.add_argument("--participants", default=None, help="participants CSV (participant_id, tz, ...)")
    c.add_argument("--options", default=None, help="YAML file with the adapter's options (e.g. column mapping)")
    c.add_argument("--plausible-from", default=None, metavar="YYYY-MM-DD",
                   help="earliest plausible UTC date (default 2000-01-01; like validation.plausible_from)")
    c.add_argument("--plausible-until", default=None, metavar="YYYY-MM-DD",
                   help="first implausible UTC date (default 2040-01-01; like validation.plausible_until)")
    c.set_defaults(fn=cmd_convert)

    i = sub.add_parser("inspect", help="show one window: channels, coverage, caption, labels")
    i.add_argument("dir", help="output directory of a run (or the dataset version folder)")
    i.add_argument("--split", default="train")
    i.add_argument("--index", type=int, default=0)
    i.add_argument("--plot", default=None, help="write a PNG plot of the window (mask shaded) to this file")
    i.add_argument("--participant", default=None,
                   help="list this participant's windows in every split instead: a pseudonym, or a raw study "
                        "participant id when the pseudonymization key is available")
    i.add_argument("--key-file", default=None,
                   help="pseudonymization key file for --participant RAW_ID (default: the environment variable "
                        "named by the run's privacy.key_env)")
    i.set_defaults(fn=cmd_inspect)

    sc = sub.add_parser("schema", help="show or diff the source schemas recorded in the metadata database")
    sc_sub = sc.add_subparsers(dest="schema_command", required=True)
    show = sc_sub.add_parser("show", help="a source's schema (latest version unless --version)")
    show.add_argument("name", help="source (dataset) name, or adapter name")
    show.add_argument("--version", type=int, default=None)
    diff = sc_sub.add_parser("diff", help="what changed between two versions")
    diff.add_argument("name")
    diff.add_argument("v1", type=int)
    diff.add_argument("v2", type=int)
    for q in (show, diff):
        q.add_argument("dir", nargs="?", default=".", help="output directory holding metadata.db")
        q.add_argument("--db", default=None, help="SQLAlchemy URL of the metadata database")
    sc.set_defaults(fn=cmd_schema)

    s = sub.add_parser("sources", help="list the source adapters and their channels")
    s.set_defaults(fn=cmd_sources)

    v = sub.add_parser("versions", help="list dataset versions recorded in the metadata database")
    v.add_argument("dir", nargs="?", default=".", help="output directory holding metadata.db")
    v.add_argument("--db", default=None, help="SQLAlchemy URL of the metadata database (overrides dir)")
    v.add_argument("--all", action="store_true",
                   help="list every run (failed, interrupted, unchanged, running too) instead of published versions")
    v.set_defaults(fn=cmd_versions)
    _add_version_commands(sub)

    db = sub.add_parser("db", help="set up a PostgreSQL metadata database for a team")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    ro = db_sub.add_parser("roles", help="print (or --apply) the SQL for a writer role (the pipeline) and a "
                                         "read-only reader role (consumers), with default privileges")
    ro.add_argument("--url", required=True, help="an admin's SQLAlchemy URL of the database (postgresql+psycopg://)")
    ro.add_argument("--writer", required=True, help="role the pipeline connects as (metadata.url)")
    ro.add_argument("--reader", required=True, help="read-only role for consumers (versions, lineage, stats, ...)")
    ro.add_argument("--schema", default="public", help="schema holding sensorpipe's tables (default: public)")
    ro.add_argument("--apply", action="store_true", help="run the SQL as the admin (one transaction)")
    db.set_defaults(fn=cmd_db)

    qu = sub.add_parser("quarantine", help="a quarantine file's rows by reason and its first rows (decrypted with "
                                           "--key-file when the run encrypted it)")
    qu.add_argument("file", help="<output.dir>/quarantine/<source>.parquet (or convert's OUT.quarantine.parquet)")
    qu.add_argument("--key-file", default=None, help="the run's privacy.quarantine_key_file, for an encrypted file")
    qu.add_argument("--head", type=int, default=10, help="rows to print (default 10; 0: counts only)")
    qu.set_defaults(fn=cmd_quarantine)
    _add_report_command(sub)
    return p


def _freeze_before_exit() -> None:
    """At interpreter exit: collect what the command left, then freeze every object still alive.

    Exit tears down every imported module, and the garbage collector then
    walks all the objects of the libraries a run loads (scipy, pandas, TFDS,
    SQLAlchemy), a noticeable share of a short ``sensorpipe run`` (BENCHMARKS.md).
    Garbage is still collected (finalizers run) and atexit handlers still run
    (this one runs before those registered earlier, e.g. logging's flush);
    teardown still frees what reference counts free, and only cycles among
    the frozen objects are left to the operating system, as CPython leaves
    whatever it cannot free at exit.
    """
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    atexit.unregister(_freeze_before_exit)    # once per process, however often main runs (tests call it)
    atexit.register(_freeze_before_exit)
    args = build_parser().parse_args(argv)
    try:
        status = args.fn(args)     # None, or the exit status a command chooses (verify: 1 = problems found)
        sys.stdout.flush()        # here, where a closed pipe is caught, not at interpreter exit
    except BrokenPipeError:
        if _stdout_alive():
            raise                 # another pipe broke (a worker's): not the reader of our output
        return _stdout_gone(args.command)
    except _user_errors() as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"sensorpipe {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:
        from sensorpipe.runners.preflight import disk_full, is_disk_full

        if not is_disk_full(e):
            raise
        print(f"sensorpipe {args.command}: error: {disk_full(e, getattr(args, 'dir', None) or '.')}",
              file=sys.stderr)
        return 2
    return status or 0


def _stdout_alive() -> bool:
    """Whether stdout can still be written: its reader has not gone (a pipe's write end reports POLLERR once
    the read end is closed), and what is left in its buffer flushes."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0)):
            return False
    except (AttributeError, OSError, ValueError):   # no poll (Windows) or no descriptor: the flush decides
        pass
    try:
        sys.stdout.flush()
        return True
    except (BrokenPipeError, ValueError):
        return False


def _stdout_gone(command: str) -> int:
    """The reader of stdout went away (``sensorpipe versions | head -1``): one line on stderr, exit 2.

    Python's documented recipe: point stdout at /dev/null so the interpreter's
    final flush of the unwritten rest does not raise again. The line says the
    output was cut, as every other CLI error path says what went wrong.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):   # stdout without a descriptor (tests capture it): nothing to flush later
        pass
    print(f"sensorpipe {command}: error: the reader of the output closed it (broken pipe); the rest was not printed",
          file=sys.stderr)
    return 2


#: the status :func:`run` ends the process with from the last exit handler; None: the interpreter's usual exit
_EXIT_STATUS: int | None = None


def _exit_without_teardown() -> None:
    """The last exit handler (:func:`run` registers it before any other): flush the standard streams and end the
    process with :data:`_EXIT_STATUS`, skipping the interpreter's teardown of every imported module."""
    if _EXIT_STATUS is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # the reader went away, or the stream is closed: as at a normal exit
            pass
    os._exit(_EXIT_STATUS)


def run(argv: list[str] | None = None) -> None:
    """The ``sensorpipe`` program (the console script and ``python -m sensorpipe.cli``): :func:`main`, then the
    usual exit without the interpreter's teardown.

    Why: once the last exit handler has run, CPython still tears down every module the command imported
    (a run loads numpy, pyarrow, pandas, scipy, SQLAlchemy and TFDS: well over a thousand modules) and frees
    their objects one by one, a noticeable share of a short ``sensorpipe run`` (BENCHMARKS.md) that changes
    nothing the command wrote. Everything else of a normal exit still happens, in its order: non-daemon
    threads are joined (and thread pools shut down), every other exit handler runs (logging's flush,
    ``weakref.finalize``, multiprocessing's join of its children, :func:`_freeze_before_exit`'s collection of
    the garbage), and the standard streams are flushed; a run closes its own files, database and processes
    before it returns. Where another exit handler was registered before this function (so it would run after
    this one's), on an error that escapes :func:`main` and on a non-numeric ``SystemExit``, the process exits
    as usual. Tests and notebooks call :func:`main`, which returns.
    """
    global _EXIT_STATUS
    if getattr(atexit, "_ncallbacks", lambda: 1)() == 0:   # nothing would run after this handler
        atexit.register(_exit_without_teardown)
    try:
        status = main(argv)
    except SystemExit as e:   # argparse: --help (0), a bad argument (2)
        status = e.code
    if status is None or isinstance(status, int):
        _EXIT_STATUS = status or 0
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()

