"""`sitrep backup DEST` and `sitrep restore SRC`: a consistent copy of the state database and the vectors.

A backup is a folder:

- ``state.db``: the whole state database (articles, passages, lexical index, tombstones, the Slack bot's
  state, feeds, digests), copied with SQLite's online backup API in one step: a snapshot of one moment,
  taken while other processes go on reading and writing.
- ``vectors.npy`` and ``vector_ids.txt``: the vector of every passage live in that snapshot (float32, one
  row per id, in id order).
- ``manifest.json``: format version, counts and checksums. It is written last and the folder is renamed
  into place after it, so a folder without a manifest is never a backup.

Why the vectors are read through Chroma rather than its files copied: a passage's id carries its text's
hash and the store records its model, so a live passage has exactly one vector, and "the vectors of the
passages live in the snapshot" is as consistent as the snapshot itself. They are read after the snapshot
(an embedded Chroma opened later sees every vector written before), without any lock, so ingests, feed
polls and ``sitrep serve`` carry on. A passage that an ingest replaced after the snapshot, and whose vector
is already deleted, is embedded again from its text in the snapshot: same text, same model, same vector.
With ``CHROMA_HOST`` the same export reads from the server; the server's own files, its other collections
and its settings are not part of the backup.

Restore checks the manifest (format, checksums, model), refuses a target that holds anything unless
forced, loads the vectors into a fresh collection, then installs the state database in one step (the
SQLite backup API again), and compares the counts with the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.chunking import embedding_text
from retrieval.corpus import VECTOR_GENERATION, Corpus, CorpusConfig, disk_full
from retrieval.embeddings import model_label
from retrieval.errors import EmbeddingMismatchError, StoreError
from retrieval.ingest import chunk_metadata, ingest_lock
from retrieval.state import StateDB, now_iso
from retrieval.statedb import STATE_DB_NAME, copy_database, read_only, state_path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STATE_FILE = "state.db"
VECTORS_FILE = "vectors.npy"
IDS_FILE = "vector_ids.txt"
BATCH = 1000
# Tables whose rows mean a target data directory is in use (restore refuses it without --force).
_CONTENT_TABLES = ("documents", "tombstones", "slack_answers", "slack_feedback", "feeds_registry",
                   "digest_deliveries")


# -- backup ------------------------------------------------------------------------------------------------


def backup(config: CorpusConfig, dest: Path) -> dict[str, Any]:
    """Write a backup of the corpus in ``config.data_dir`` to the new folder ``dest``; return its manifest.

    Raises StoreError (one line, nothing left behind) when ``dest`` is in use or cannot be written.
    """
    _refuse_postgres(config, "back up")
    dest = dest.expanduser().absolute()
    source = state_path(config.data_dir)
    if not source.is_file():
        raise StoreError(f"Nothing to back up: there is no state database in {config.data_dir} (check "
                         "SITREP_DATA_DIR).")
    _check_new_folder(dest)
    work = _work_folder(dest)
    try:
        snapshot(source, work / STATE_FILE)
        corpus = Corpus.open(config)  # after the snapshot, so it sees every vector the snapshot needs
        try:
            vectors, re_embedded = export_vectors(corpus, work)
            manifest = _manifest(corpus, work, vectors, re_embedded)
        finally:
            corpus.close()
        _write_last(work / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        os.rename(work, dest)
        _sync_folder(dest.parent)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError | sqlite3.Error):
            raise StoreError(_write_failure(dest, exc)) from exc
        raise
    return manifest


def _refuse_postgres(config: CorpusConfig, verb: str) -> None:
    """Backups are of the SQLite file: with PostgreSQL the state is not in it, so refuse instead of copying
    an empty or stale file."""
    if config.database_url:
        raise StoreError(
            f"sitrep cannot {verb} the state while it lives in PostgreSQL (SITREP_DATABASE_URL is set): use the "
            "database's own backups (e.g. pg_dump / pg_restore) together with a copy of the Chroma store "
            f"({'the Chroma server' if config.chroma_host else config.data_dir / 'chroma'}).")


def _check_new_folder(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise StoreError(f"{dest} already exists and is not an empty folder; back up to a new folder.")


def _work_folder(dest: Path) -> Path:
    """A hidden temporary folder next to ``dest`` (same file system, so the final rename is atomic)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    except (FileExistsError, NotADirectoryError) as exc:
        raise StoreError(f"Cannot write the backup to {dest}: {exc.filename or dest.parent} is not a folder.") from exc
    except OSError as exc:
        raise StoreError(_write_failure(dest, exc)) from exc


def _write_failure(dest: Path, exc: BaseException) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    hint = "the disk looks full: free some space or choose another disk" if disk_full(exc) else (
        "choose a folder you can write to")
    return f"Cannot write the backup to {dest} ({reason}); nothing was written: {hint}, then run it again."


def snapshot(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to ``target`` as of one moment (online backup API, one step)."""
    if not copy_database(source, target, standalone=True):
        raise StoreError(f"The state database {source} failed SQLite's integrity check; nothing was backed up.")


def _snapshot_passages(path: Path) -> Iterator[list[tuple[str, str, str]]]:
    """(chunk_id, title, text) of every live passage in a snapshot, in id order, in batches."""
    conn = read_only(path)
    try:
        cursor = conn.execute("SELECT c.chunk_id, d.title, c.text FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
                              " ORDER BY c.chunk_id")
        while rows := cursor.fetchmany(BATCH):
            yield rows
    finally:
        conn.close()


def export_vectors(corpus: Corpus, work: Path) -> tuple[int, int]:
    """Write the vectors of the snapshot's live passages to ``work``; return (vectors, re-embedded)."""
    total = _count(work / STATE_FILE, "chunks")
    matrix: np.ndarray | None = None
    row = re_embedded = 0
    with open(work / IDS_FILE, "w", encoding="utf-8") as ids_out:
        for rows in _snapshot_passages(work / STATE_FILE):
            ids = [r[0] for r in rows]
            found = _stored_vectors(corpus, ids)
            missing = [r for r in rows if r[0] not in found]
            if missing:  # replaced since the snapshot: the same text gives the same vector
                vectors = corpus.embed([embedding_text(title, text) for _, title, text in missing])
                found.update(zip([r[0] for r in missing], vectors, strict=True))
                re_embedded += len(missing)
            batch = np.stack([found[i] for i in ids]).astype(np.float32)
            if matrix is None:
                matrix = np.lib.format.open_memmap(work / VECTORS_FILE, mode="w+", dtype=np.float32,
                                                   shape=(total, batch.shape[1]))
            matrix[row : row + len(ids)] = batch
            row += len(ids)
            ids_out.write("".join(f"{i}\n" for i in ids))
        _sync(ids_out)
    if matrix is None:
        np.save(work / VECTORS_FILE, np.zeros((0, 0), dtype=np.float32))
    else:
        matrix.flush()
        del matrix
    if row != total:
        raise StoreError(f"The snapshot changed while it was read ({row} of {total} passages); run the backup again.")
    _sync_file(work / VECTORS_FILE)
    return total, re_embedded


def _stored_vectors(corpus: Corpus, ids: list[str]) -> dict[str, np.ndarray]:
    """The vectors the store has for ``ids``; one at a time when a batch fails (an id just replaced)."""
    try:
        return corpus.chunk_vectors(ids)
    except StoreError:
        found: dict[str, np.ndarray] = {}
        for chunk_id in ids:
            with contextlib.suppress(StoreError):
                found.update(corpus.chunk_vectors([chunk_id]))
        return found


def _count(path: Path, table: str) -> int:
    conn = read_only(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def _manifest(corpus: Corpus, work: Path, vectors: int, re_embedded: int) -> dict[str, Any]:
    state = work / STATE_FILE
    not_included = ["logs", "settings and secrets (.env and the environment)"]
    if corpus.config.chroma_host:
        not_included.append("the Chroma server's own files, its other collections and its settings (only the "
                            "vectors of sitrep's live passages are in this backup)")
    return {
        "format": FORMAT_VERSION,
        "created": now_iso(),
        "sitrep_version": _sitrep_version(),
        "embedding_model": corpus.model,
        "collection": corpus.config.collection,
        "store": corpus.store.description,
        "counts": {"documents": _count(state, "documents"), "chunks": _count(state, "chunks"),
                   "sources": _count(state, "sources"), "vectors": vectors,
                   "tombstones": _count(state, "tombstones")},
        "re_embedded": re_embedded,
        "files": {name: _file_facts(work / name) for name in (STATE_FILE, VECTORS_FILE, IDS_FILE)},
        "not_included": not_included,
    }


def _sitrep_version() -> str:
    try:
        return version("sitrep")
    except PackageNotFoundError:
        return "unknown"


def _file_facts(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _sync(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _sync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _sync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_last(path: Path, text: str) -> None:
    """Write the manifest, after making the files before it durable; leave every file readable by the owner
    only (the state holds people's questions) and sync the folder."""
    _sync_file(path.parent / STATE_FILE)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        _sync(fh)
    for written in path.parent.iterdir():
        written.chmod(0o600)
    _sync_folder(path.parent)


# -- restore -----------------------------------------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup in ``src``, checked: complete, a format this sitrep reads, files intact."""
    path = src / MANIFEST
    if not path.is_file():
        raise StoreError(f"{src} is not a complete sitrep backup: it has no {MANIFEST} (an interrupted backup "
                         "never gets one).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        found = int(manifest["format"])
        files = dict(manifest["files"])
        counts = {k: int(v) for k, v in manifest["counts"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path} is unreadable ({exc}); it is not a sitrep backup manifest.") from exc
    if found > FORMAT_VERSION:
        raise StoreError(f"{src} was written by a newer sitrep (backup format {found}; this sitrep reads up to "
                         f"{FORMAT_VERSION}). Upgrade sitrep to restore it.")
    for name in (STATE_FILE, VECTORS_FILE, IDS_FILE):
        facts = files.get(name) or {}
        if not (src / name).is_file() or _file_facts(src / name) != facts:
            raise StoreError(f"{src / name} is missing or damaged (its size or checksum differs from the "
                             "manifest); this backup cannot be restored.")
    manifest["counts"] = counts
    return manifest


def held_in(corpus: Corpus) -> dict[str, int]:
    """What the corpus's data directory holds: rows of the tables that mean it is in use, and vectors."""
    conn = corpus.state.conn
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    held = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in _CONTENT_TABLES if t in tables}
    held["vectors"] = corpus.store.count()
    return {k: v for k, v in held.items() if v}


def restore(config: CorpusConfig, src: Path, *, force: bool = False) -> dict[str, Any]:
    """Restore the backup in ``src`` into ``config.data_dir`` (and its vector store); return its manifest.

    Refuses a target that holds anything unless ``force``; raises StoreError when the counts afterwards
    differ from the manifest.
    """
    _refuse_postgres(config, "restore")
    src = src.expanduser().absolute()
    manifest = read_manifest(src)
    wanted = model_label(config.embedding_model)
    if manifest.get("embedding_model") != wanted:
        raise EmbeddingMismatchError(
            f"{src} holds vectors of embedding model {manifest.get('embedding_model')!r} but SITREP_EMBEDDING_MODEL "
            f"selects {wanted!r}; set it to match the backup to restore it (`sitrep reindex` can switch later).")
    corpus = Corpus.open(config)
    staged = config.data_dir / f".{STATE_DB_NAME}.restoring"
    try:
        with ingest_lock(config.data_dir):
            held = held_in(corpus)
            if held and not force:
                what = ", ".join(f"{n} {name}" for name, n in held.items())
                raise StoreError(f"{config.data_dir} is not empty ({what}); restore into an empty folder (set "
                                 "SITREP_DATA_DIR), or pass --force to replace what it holds.")
            shutil.copyfile(src / STATE_FILE, staged)
            _load_vectors(corpus, staged, src)
            install_state(staged, state_path(config.data_dir))
        check_counts(corpus, manifest["counts"])
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"Cannot restore into {config.data_dir} ({reason}); free space or fix permissions, then "
                         "run the restore again with --force.") from exc
    finally:
        corpus.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            staged.with_name(staged.name + suffix).unlink(missing_ok=True)
    return manifest


def _load_vectors(corpus: Corpus, staged: Path, src: Path) -> None:
    """Replace the vector store's collection with the backup's vectors (metadata from the staged state)."""
    ids = (src / IDS_FILE).read_text(encoding="utf-8").splitlines()
    matrix = np.load(src / VECTORS_FILE, mmap_mode="r")
    state = StateDB(staged)
    try:
        state.conn.execute("DELETE FROM vector_journal")  # entries of processes on the machine backed up
        store = corpus.store
        store.recreate(corpus.embedder)  # type: ignore[arg-type]
        # The restored state names the generation the vectors go to, whichever one the backup was taken at.
        state.set_meta(VECTOR_GENERATION, str(store.generation))
        done = 0
        for rows in state.all_chunks(batch=BATCH):
            chunk_ids = [r[0] for r in rows]
            if chunk_ids != ids[done : done + len(rows)]:
                raise StoreError(f"{src} is inconsistent: its vectors do not match its passages; it cannot be used.")
            metadatas = [chunk_metadata(r[3]) for r in rows]
            store.upsert(chunk_ids, np.asarray(matrix[done : done + len(rows)]), metadatas)
            done += len(rows)
        if done != len(ids):
            raise StoreError(f"{src} is inconsistent: it has {len(ids)} vectors for {done} passages.")
    finally:
        state.close()


def install_state(staged: Path, target: Path) -> None:
    """Replace the state database at ``target`` with ``staged`` in one step (readers see old or new)."""
    copy_database(staged, target)


def check_counts(corpus: Corpus, expected: dict[str, int]) -> None:
    """Compare the restored corpus with the manifest's counts (StoreError naming every difference)."""
    documents, chunks, sources, _ = corpus.state.counts()
    got = {"documents": documents, "chunks": chunks, "sources": sources, "vectors": corpus.store.count(),
           "tombstones": corpus.state.tombstone_count()}
    wrong = [f"{k} {got[k]} (backup: {expected[k]})" for k in got if k in expected and got[k] != expected[k]]
    if wrong:
        raise StoreError(f"The restore finished but its counts differ from the backup's: {', '.join(wrong)}. "
                         "Run it again with --force; if that repeats, the backup is damaged.")
