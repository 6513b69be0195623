"""The result store: every finished run, kept in one SQLite file.

The file (by default ``ROBUSTCORE_HOME/runs.sqlite``) has three tables:

* ``runs``: one row per spec key with the spec, status (``done``, ``failed`` or
  ``cancelled``), timings, seed, library versions, metrics (JSON), error and label.
* ``tables``: the pandas DataFrames of a run, one row each.
* ``artifacts``: the binary outputs of a run (numpy arrays, images, text), one row each.

Beside them, ``cells`` holds the *parts* of runs (one attack's sweep, one sanity check)
that experiments compute once and assemble runs from (:mod:`robustcore.runs.cells`): one
row per cell key with its spec, metrics (JSON) and arrays (one ``.npz`` blob, read
without pickle). Cells are not runs: ``get`` and ``list_runs`` never see them.

``leases`` holds the claims of specs being computed right now (:mod:`robustcore.runs.leases`):
one row per claimed key with its holder, the holder's host and process id, and a heartbeat
time the holder renews every few seconds. A claim whose heartbeat is too old belongs to a
process that died and may be taken over. Leases are not results: nothing else reads them.

``reports`` holds report drafts (:mod:`robustcore.reports`): an id, a title, a summary and
the ordered run keys. Deleting a run takes its key out of every report in the same
transaction, so no report ever names a run the store does not hold.

A run is always written in a single transaction, so the store never holds half of a run:
if anything fails while saving, nothing of that save is kept and an earlier version of the
run (if any) stays as it was.

The store can be used from several threads and several processes at once: it keeps a small
pool of connections (one is never used by two threads at the same time), the database is
in WAL mode so readers do not block the writer, and a busy database is waited on for up to
30 seconds.

DataFrames are stored as JSON (parquet needs pyarrow, which is not guaranteed). The JSON
holds the column names, the values column by column, each column's dtype and the index, and
loading restores the dtypes: int, float, bool, string, object, nullable, categorical,
datetime (also with a time zone) and timedelta columns come back with their dtype. Cells
must hold plain values (numbers, strings, booleans, None, timestamps, or lists of those);
MultiIndex rows or columns are refused (call ``reset_index()`` or flatten them first).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import mimetypes
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RobustcoreError, ValidationError
from ..paths import home
from ..versions import library_versions
from .spec import canonical_json

STATUSES = ("done", "failed", "cancelled")
"""The statuses a stored run can have. Only ``done`` runs count as results."""

MAX_ARTIFACT_BYTES = 20 * 1024 * 1024
"""Default size limit of one artifact (20 MiB)."""

MAX_LABEL = 200
"""The longest label a person can give a run."""

NPY_MIME = "application/x-npy"
TEXT_MIME = "text/plain; charset=utf-8"
BINARY_MIME = "application/octet-stream"
TABLE_FORMAT = "robustcore.table.v1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed', 'cancelled')),
    created REAL NOT NULL,
    finished REAL NOT NULL,
    seconds REAL NOT NULL,
    seed INTEGER NULL,
    versions_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    error TEXT NULL,
    label TEXT NULL
);
CREATE INDEX IF NOT EXISTS runs_kind_created ON runs (kind, created);
CREATE TABLE IF NOT EXISTS tables (
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, name)
);
CREATE TABLE IF NOT EXISTS artifacts (
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    mime TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, name)
);
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    created REAL NOT NULL,
    seconds REAL NOT NULL,
    versions_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    arrays BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    taken REAL NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    keys_json TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""

ArtifactValue = bytes | str | np.ndarray


class MissingResultError(RobustcoreError, KeyError):
    """A run, table or artifact that was asked for is not in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass
class RunResult:
    """What a job function returns: the outputs of one run.

    Attributes:
        metrics: JSON-able summary values (numbers, strings, booleans, lists, dicts). Numpy
            scalars are accepted and stored as Python numbers.
        tables: named pandas DataFrames.
        artifacts: named binary outputs. A value is a numpy array (stored in ``.npy`` form,
            never pickled), ``bytes`` (stored as-is; the MIME type is guessed from the name),
            a ``str`` (stored as UTF-8 text), or a ``(bytes, mime)`` pair to set the MIME
            type yourself.
        label: an optional short name shown in run lists.
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    label: str | None = None


@dataclass
class CellRecord:
    """One stored cell (a part of a run, see :mod:`robustcore.runs.cells`)."""

    key: str
    kind: str
    spec: dict[str, Any]
    created: float
    seconds: float
    versions: dict[str, str]
    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray]


@dataclass
class LeaseRecord:
    """Who holds the lease of a key (see :meth:`ResultStore.claim`).

    Attributes:
        key: the leased key.
        holder: the holder's id (unique per process and claim).
        host: the host name of the holder's process.
        pid: the process id of the holder's process.
        taken: when the holder claimed the key (``time.time()``).
        heartbeat: when the holder last renewed its claim (``time.time()``).
    """

    key: str
    holder: str
    host: str
    pid: int
    taken: float
    heartbeat: float

    @property
    def age(self) -> float:
        """Seconds since the last heartbeat (by this machine's clock)."""
        return max(0.0, time.time() - self.heartbeat)


@dataclass
class RunRecord:
    """One stored run, as read back from the store.

    Tables and artifacts are not loaded with the record; :meth:`table` and :meth:`artifact`
    read them when asked, and :meth:`result` loads everything. ``table_names`` and
    ``artifact_names`` list what is there (``tables`` is the same list as ``table_names``).
    """

    key: str
    kind: str
    spec: dict[str, Any]
    status: str
    created: float
    finished: float
    seconds: float
    seed: int | None
    versions: dict[str, str]
    metrics: dict[str, Any]
    error: str | None
    label: str | None
    table_names: list[str] = field(default_factory=list)
    artifact_names: list[str] = field(default_factory=list)
    store: ResultStore | None = field(default=None, repr=False, compare=False)

    @property
    def tables(self) -> list[str]:
        """Names of the stored tables of this run."""
        return list(self.table_names)

    @property
    def ok(self) -> bool:
        """True when the run finished and counts as a result (status ``done``)."""
        return self.status == "done"

    def _need_store(self) -> ResultStore:
        if self.store is None:
            raise RobustcoreError("this record is not attached to a result store")
        return self.store

    def table(self, name: str) -> pd.DataFrame:
        """The stored DataFrame ``name`` of this run."""
        return self._need_store().load_table(self.key, name)

    def artifact(self, name: str) -> ArtifactValue:
        """The stored artifact ``name``, decoded: a numpy array, a str, or bytes."""
        return self._need_store().load_artifact_value(self.key, name)

    def result(self) -> RunResult:
        """Everything of the run loaded into a :class:`RunResult` (arrays decoded)."""
        store = self._need_store()
        return RunResult(
            metrics=json.loads(json.dumps(self.metrics)),
            tables={name: store.load_table(self.key, name) for name in self.table_names},
            artifacts={
                name: store.load_artifact_value(self.key, name) for name in self.artifact_names
            },
            label=self.label,
        )


# --------------------------------------------------------------------------------------
# JSON helpers


def _plain_metric(value: Any, where: str) -> Any:
    """A JSON-able copy of a metric value; numpy scalars and arrays become Python values."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.generic):
        return _plain_metric(value.item(), where)
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.dtype.kind in "biuf":
        return value.tolist()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{where} has a key {key!r}; metric dictionaries must have string keys"
                )
            out[key] = _plain_metric(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_plain_metric(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ValidationError(
        f"{where} has type {type(value).__name__}; metrics must be plain JSON values "
        "(numbers, strings, booleans, lists, dicts); store arrays as artifacts"
    )


def _dumps(value: Any) -> str:
    # NaN/inf in metrics are kept (Python's json reads them back).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------
# DataFrame <-> JSON


def _cell(value: Any, where: str) -> Any:
    """A plain JSON value for one cell of an object-like column."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, np.generic):
        return _cell(value.item(), where)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_cell(item, where) for item in value]
    raise ValidationError(
        f"{where} holds a {type(value).__name__} value; tables can hold numbers, strings, "
        "booleans, None, timestamps and lists of those"
    )


def _encode_series(series: pd.Series, where: str) -> dict[str, Any]:
    dtype = series.dtype
    out: dict[str, Any] = {"dtype": str(dtype)}
    if isinstance(dtype, pd.CategoricalDtype):
        out["categories"] = [_cell(c, f"{where} categories") for c in dtype.categories]
        out["categories_dtype"] = str(dtype.categories.dtype)
        out["ordered"] = bool(dtype.ordered)
        out["values"] = [_cell(v, where) for v in series.astype(object).tolist()]
    elif isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        out["values"] = series.to_numpy().tolist()
    elif isinstance(dtype, np.dtype) and dtype.kind == "c":
        raise ValidationError(f"{where} is complex; tables cannot hold complex numbers")
    elif isinstance(dtype, pd.DatetimeTZDtype) or (
        isinstance(dtype, np.dtype) and dtype.kind == "M"
    ):
        out["values"] = [None if pd.isna(v) else v.isoformat() for v in series.tolist()]
    elif isinstance(dtype, np.dtype) and dtype.kind == "m":
        nanos = series.astype("timedelta64[ns]")
        out["values"] = [None if pd.isna(v) else int(v.value) for v in nanos.tolist()]
    else:
        out["values"] = [_cell(v, where) for v in series.astype(object).tolist()]
    return out


def _decode_series(data: Mapping[str, Any], name: Any = None) -> pd.Series:
    dtype_text: str = data["dtype"]
    values = data["values"]
    try:
        if "categories" in data:
            categories = pd.Index(data["categories"])
            with contextlib.suppress(TypeError, ValueError):
                categories = categories.astype(data.get("categories_dtype", "object"))
            cat = pd.Categorical(values, categories=categories, ordered=data["ordered"])
            return pd.Series(cat, name=name)
        if dtype_text.startswith("datetime64"):
            if "," in dtype_text:  # time zone aware, e.g. "datetime64[ns, UTC]"
                tz = dtype_text.split(",", 1)[1].rstrip("]").strip()
                parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
                return parsed.dt.tz_convert(tz).astype(dtype_text).rename(name)
            parsed = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")
            return parsed.astype(dtype_text).rename(name)
        if dtype_text.startswith("timedelta64"):
            parsed = pd.to_timedelta(pd.Series(values, dtype=object), unit="ns")
            return parsed.astype(dtype_text).rename(name)
        return pd.Series(values, dtype=object, name=name).astype(dtype_text)
    except (TypeError, ValueError):
        # An unusual dtype that cannot be rebuilt from JSON: keep the values as they are.
        return pd.Series(values, dtype=object, name=name)


def _encode_index(index: pd.Index, where: str) -> dict[str, Any]:
    if isinstance(index, pd.MultiIndex):
        raise ValidationError(f"{where} has a MultiIndex; call reset_index() before storing it")
    if isinstance(index, pd.RangeIndex):
        return {
            "range": [int(index.start), int(index.stop), int(index.step)],
            "name": _cell(index.name, f"{where} name"),
        }
    encoded = _encode_series(pd.Series(index), f"{where}")
    encoded["name"] = _cell(index.name, f"{where} name")
    return encoded


def _decode_index(data: Mapping[str, Any]) -> pd.Index:
    if "range" in data:
        start, stop, step = data["range"]
        return pd.RangeIndex(start, stop, step, name=data.get("name"))
    return pd.Index(_decode_series(data), name=data.get("name"))


def _encode_table(name: str, frame: pd.DataFrame) -> bytes:
    """The JSON bytes stored for one DataFrame (see the module notes)."""
    where = f"table {name!r}"
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"{where} is a {type(frame).__name__}; tables must be DataFrames")
    if isinstance(frame.columns, pd.MultiIndex):
        raise ValidationError(f"{where} has MultiIndex columns; flatten the column names first")
    columns = []
    for position in range(frame.shape[1]):
        label = frame.columns[position]
        plain_label = _cell(label, f"{where} column name")
        column = frame.iloc[:, position]
        columns.append(_encode_series(column, f"{where} column {label!r}"))
        columns[-1]["name"] = plain_label
    payload = {
        "format": TABLE_FORMAT,
        "rows": int(frame.shape[0]),
        "columns_dtype": str(frame.columns.dtype),
        "columns": columns,
        "index": _encode_index(frame.index, f"{where} index"),
    }
    return _dumps(payload).encode("utf-8")


def _decode_table(blob: bytes) -> pd.DataFrame:
    payload = json.loads(bytes(blob).decode("utf-8"))
    if payload.get("format") != TABLE_FORMAT:
        raise RobustcoreError(f"stored table has unknown format {payload.get('format')!r}")
    index = _decode_index(payload["index"])
    series = [_decode_series(col) for col in payload["columns"]]
    frame = pd.DataFrame({i: s.reset_index(drop=True) for i, s in enumerate(series)})
    if not series:
        frame = pd.DataFrame(index=range(payload["rows"]))
    labels = pd.Index([col["name"] for col in payload["columns"]])
    with contextlib.suppress(TypeError, ValueError):
        labels = labels.astype(payload.get("columns_dtype", "object"))
    frame.columns = labels
    frame.index = index
    return frame


# --------------------------------------------------------------------------------------
# Artifacts


def _encode_artifact(name: str, value: Any, limit: int) -> tuple[str, bytes]:
    """``(mime, bytes)`` for one artifact value."""
    where = f"artifact {name!r}"
    mime: str | None = None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        value, mime = value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        buffer = io.BytesIO()
        try:
            np.save(buffer, value, allow_pickle=False)
        except ValueError as exc:
            raise ValidationError(
                f"{where} is an array of dtype {value.dtype}, which needs pickling; "
                "store numeric or string arrays only"
            ) from exc
        data, mime = buffer.getvalue(), NPY_MIME
    elif isinstance(value, str):
        data, mime = value.encode("utf-8"), mime or TEXT_MIME
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        mime = mime or mimetypes.guess_type(name)[0] or BINARY_MIME
    else:
        raise ValidationError(
            f"{where} has type {type(value).__name__}; artifacts must be bytes, str, a numpy "
            "array or a (bytes, mime) pair"
        )
    if len(data) > limit:
        raise ValidationError(
            f"{where} is {len(data) / 1e6:.1f} MB; one artifact may be at most {limit / 1e6:.1f} MB"
        )
    return mime, data


def decode_artifact(mime: str, data: bytes) -> ArtifactValue:
    """An artifact's stored bytes turned back into an array (npy), a str (text) or bytes."""
    if mime == NPY_MIME:
        return np.load(io.BytesIO(data), allow_pickle=False)
    if mime.startswith("text/plain"):
        return bytes(data).decode("utf-8")
    return bytes(data)


# --------------------------------------------------------------------------------------
# The store


class ResultStore:
    """A SQLite file holding finished runs, their tables and their artifacts.

    Args:
        path: the database file; ``None`` means ``ROBUSTCORE_HOME/runs.sqlite``.
        max_artifact_bytes: the size limit of one artifact (default 20 MiB).

    Safe to share between threads; several processes may open the same file.
    """

    _POOL_SIZE = 4

    def __init__(
        self, path: Path | str | None = None, *, max_artifact_bytes: int = MAX_ARTIFACT_BYTES
    ) -> None:
        self.path = Path(path) if path is not None else home() / "runs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_artifact_bytes = int(max_artifact_bytes)
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("PRAGMA journal_mode=WAL")
            self._transaction_script(conn, _SCHEMA)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection used by this thread alone until the block ends."""
        with self._pool_lock:
            if self._closed:
                raise RobustcoreError(f"the result store {self.path} is closed")
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._open()
        healthy = True
        try:
            yield conn
        except sqlite3.Error:
            healthy = False
            raise
        finally:
            keep = False
            if healthy and not conn.in_transaction:
                with self._pool_lock:
                    if not self._closed and len(self._pool) < self._POOL_SIZE:
                        self._pool.append(conn)
                        keep = True
            if not keep:
                conn.close()

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
        """All statements of the block commit together, or none do."""
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _transaction_script(self, conn: sqlite3.Connection, script: str) -> None:
        with self._transaction(conn, write=True):
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def close(self) -> None:
        """Close the pooled connections; the store cannot be used afterwards."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()

    # -- writing -------------------------------------------------------------------

    def save(
        self,
        key: str,
        spec: Mapping[str, Any],
        result: RunResult,
        *,
        seconds: float,
        status: str = "done",
        error: str | None = None,
        created: float | None = None,
        versions: Mapping[str, str] | None = None,
        keep_done: bool = False,
    ) -> bool:
        """Store a run under ``key``, replacing whatever was stored under that key.

        The run row, its tables and its artifacts are written in one transaction; old
        tables and artifacts of the key are removed in the same transaction. If anything
        fails (a table that cannot be serialised, an artifact over the size limit, a disk
        error) the transaction is rolled back and the store is left as it was.

        Args:
            key: the run key, normally ``spec_key(spec)``.
            spec: the run's spec (must have a ``"kind"``).
            result: the outputs to store.
            seconds: how long the computation took.
            status: ``"done"``, ``"failed"`` or ``"cancelled"``.
            error: the error text of a failed run.
            created: when the run was asked for (default: ``finished - seconds``).
            versions: library versions (default: :func:`library_versions`).
            keep_done: when True and a ``done`` run is already stored under ``key``, a
                ``failed``/``cancelled`` save leaves it in place (returns False).

        Returns:
            True if the run was written, False if ``keep_done`` kept an existing result.

        Raises:
            ValidationError: bad status, spec, metrics, table or artifact.
        """
        if status not in STATUSES:
            raise ValidationError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        if not isinstance(result, RunResult):
            raise ValidationError(f"result must be a RunResult, got {type(result).__name__}")
        spec_text = canonical_json(spec)
        plain_spec = json.loads(spec_text)
        metrics = _plain_metric(dict(result.metrics or {}), "metrics")
        metrics_text = _dumps(metrics)
        versions_text = _dumps(dict(versions) if versions is not None else library_versions())
        seed = plain_spec.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            seed = None
        finished = time.time()
        seconds = float(seconds)
        created = float(created) if created is not None else finished - seconds
        label = None if result.label is None else str(result.label)
        for kind_of, names in (("table", result.tables), ("artifact", result.artifacts)):
            for name in names:
                if not isinstance(name, str) or not name:
                    raise ValidationError(f"{kind_of} name {name!r} must be a non-empty string")

        with self._connection() as conn, self._transaction(conn, write=True):
            if keep_done and status != "done":
                row = conn.execute("SELECT status FROM runs WHERE key = ?", (key,)).fetchone()
                if row is not None and row[0] == "done":
                    return False
            conn.execute("DELETE FROM tables WHERE key = ?", (key,))
            conn.execute("DELETE FROM artifacts WHERE key = ?", (key,))
            conn.execute(
                "INSERT OR REPLACE INTO runs (key, kind, spec_json, status, created, finished,"
                " seconds, seed, versions_json, metrics_json, error, label)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    plain_spec["kind"],
                    spec_text,
                    status,
                    created,
                    finished,
                    seconds,
                    seed,
                    versions_text,
                    metrics_text,
                    error,
                    label,
                ),
            )
            for name, frame in result.tables.items():
                blob = _encode_table(name, frame)
                conn.execute(
                    "INSERT INTO tables (key, name, data) VALUES (?, ?, ?)",
                    (key, name, sqlite3.Binary(blob)),
                )
            for name, value in result.artifacts.items():
                mime, data = _encode_artifact(name, value, self.max_artifact_bytes)
                conn.execute(
                    "INSERT INTO artifacts (key, name, mime, data) VALUES (?, ?, ?, ?)",
                    (key, name, mime, sqlite3.Binary(data)),
                )
        return True

    def delete(self, key: str) -> bool:
        """Remove a run with its tables and artifacts, and take its key out of every
        report, all in one transaction. Returns True if it was there."""
        with self._connection() as conn, self._transaction(conn, write=True):
            gone = conn.execute("DELETE FROM runs WHERE key = ?", (key,)).rowcount
            conn.execute("DELETE FROM tables WHERE key = ?", (key,))
            conn.execute("DELETE FROM artifacts WHERE key = ?", (key,))
            rows = conn.execute("SELECT id, keys_json FROM reports").fetchall()
            for report_id, keys_json in rows:
                keys = json.loads(keys_json)
                if key in keys:
                    conn.execute(
                        "UPDATE reports SET keys_json = ?, updated = ? WHERE id = ?",
                        (_dumps([k for k in keys if k != key]), time.time(), report_id),
                    )
        return gone > 0

    def set_label(self, key: str, label: str | None) -> bool:
        """Give run ``key`` a new label (``None`` or blank: back to none). Returns False
        when the store holds no such run.

        Raises:
            ValidationError: a label longer than :data:`MAX_LABEL` characters.
        """
        text = None if label is None or not str(label).strip() else str(label).strip()
        if text is not None and len(text) > MAX_LABEL:
            raise ValidationError(
                f"A run label is at most {MAX_LABEL} characters; this one has {len(text)}."
            )
        with self._connection() as conn, self._transaction(conn, write=True):
            changed = conn.execute("UPDATE runs SET label = ? WHERE key = ?", (text, key)).rowcount
        return changed > 0

    # -- reports -------------------------------------------------------------------

    def save_report(self, report_id: str, title: str, summary: str, keys: list[str]) -> None:
        """Store a report draft (replacing the one with the same id)."""
        if not report_id or not isinstance(report_id, str):
            raise ValidationError("A report needs a non-empty id.")
        now = time.time()
        with self._connection() as conn, self._transaction(conn, write=True):
            row = conn.execute("SELECT created FROM reports WHERE id = ?", (report_id,)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO reports (id, title, summary, keys_json, created,"
                " updated) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    report_id,
                    str(title),
                    str(summary),
                    _dumps([str(k) for k in keys]),
                    row[0] if row else now,
                    now,
                ),
            )

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        """A stored report draft (``id``, ``title``, ``summary``, ``keys``, ``created``,
        ``updated``), or None."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT id, title, summary, keys_json, created, updated FROM reports WHERE id = ?",
                (report_id,),
            ).fetchone()
        if row is None:
            return None
        return {
            "id": row[0],
            "title": row[1],
            "summary": row[2],
            "keys": json.loads(row[3]),
            "created": row[4],
            "updated": row[5],
        }

    def list_reports(self) -> pd.DataFrame:
        """The stored report drafts (``id``, ``title``, ``runs``, ``updated``), newest first."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, title, keys_json, updated FROM reports ORDER BY updated DESC"
            ).fetchall()
        return pd.DataFrame(
            [(r[0], r[1], len(json.loads(r[2])), r[3]) for r in rows],
            columns=["id", "title", "runs", "updated"],
        )

    def delete_report(self, report_id: str) -> bool:
        """Remove a report draft (never its runs). Returns True if it was there."""
        with self._connection() as conn, self._transaction(conn, write=True):
            return conn.execute("DELETE FROM reports WHERE id = ?", (report_id,)).rowcount > 0

    # -- leases --------------------------------------------------------------------

    def claim(self, key: str, holder: str, *, stale_after: float) -> bool:
        """Claim the lease of ``key`` for ``holder``, in one write transaction.

        The claim is taken when nobody holds the key, when ``holder`` holds it already
        (its heartbeat is renewed), or when the current holder's heartbeat is older than
        ``stale_after`` seconds: that holder died (or hung), and its claim is taken over.
        Many processes may call this at once; exactly one of them gets a free key.

        Args:
            key: what is claimed (the lease helpers use ``"run:<key>"`` and
                ``"cell:<key>"``).
            holder: the claimer's id, unique per process and claim
                (:func:`robustcore.runs.leases.new_holder`).
            stale_after: seconds without a heartbeat after which a claim counts as dead.

        Returns:
            True if ``holder`` holds the lease now, False if another live holder does.
        """
        now = time.time()
        current = self.lease_holder(key)  # a read first: a held key needs no write lock
        if current is not None and current.holder != holder:
            if now - current.heartbeat <= stale_after:
                return False
        with self._connection() as conn, self._transaction(conn, write=True):
            now = time.time()
            row = conn.execute(
                "SELECT holder, heartbeat, taken FROM leases WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[0] != holder and now - row[1] <= stale_after:
                return False
            taken = row[2] if row is not None and row[0] == holder else now
            conn.execute(
                "INSERT OR REPLACE INTO leases (key, holder, host, pid, taken, heartbeat)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, holder, socket.gethostname(), os.getpid(), taken, now),
            )
        return True

    def renew(self, key: str, holder: str) -> bool:
        """Renew ``holder``'s claim of ``key`` (its heartbeat).

        Returns:
            False when ``holder`` no longer holds the key: it was released, or it went
            stale and another holder took it over.
        """
        with self._connection() as conn, self._transaction(conn, write=True):
            changed = conn.execute(
                "UPDATE leases SET heartbeat = ? WHERE key = ? AND holder = ?",
                (time.time(), key, holder),
            ).rowcount
        return changed > 0

    def release(self, key: str, holder: str) -> bool:
        """Give up ``holder``'s claim of ``key``; a claim of another holder is left alone.

        Returns:
            True if ``holder`` held the key (and now nobody does).
        """
        with self._connection() as conn, self._transaction(conn, write=True):
            gone = conn.execute(
                "DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder)
            ).rowcount
        return gone > 0

    def lease_holder(self, key: str) -> LeaseRecord | None:
        """Who holds the lease of ``key`` (also a stale holder, see
        :attr:`LeaseRecord.age`), or None when nobody does."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT key, holder, host, pid, taken, heartbeat FROM leases WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return LeaseRecord(
            key=row[0], holder=row[1], host=row[2], pid=row[3], taken=row[4], heartbeat=row[5]
        )

    # -- cells ---------------------------------------------------------------------

    def save_cell(
        self,
        key: str,
        spec: Mapping[str, Any],
        metrics: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        *,
        seconds: float,
    ) -> None:
        """Store one cell under ``key`` (replacing an earlier one), in one statement.

        ``metrics`` must be plain JSON values; ``arrays`` numeric or boolean numpy arrays
        (saved in one ``.npz`` blob without pickle).
        """
        spec_text = canonical_json(spec)
        plain_spec = json.loads(spec_text)
        metrics_text = _dumps(_plain_metric(dict(metrics), "cell metrics"))
        buffer = io.BytesIO()
        for name, value in arrays.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
                raise ValidationError(f"cell array {name!r} must be a numeric numpy array")
        np.savez(buffer, **dict(arrays))
        data = buffer.getvalue()
        if len(data) > self.max_artifact_bytes:
            raise ValidationError(
                f"cell {key} is {len(data) / 1e6:.1f} MB; a cell may be at most "
                f"{self.max_artifact_bytes / 1e6:.1f} MB"
            )
        with self._connection() as conn, self._transaction(conn, write=True):
            conn.execute(
                "INSERT OR REPLACE INTO cells (key, kind, spec_json, created, seconds,"
                " versions_json, metrics_json, arrays) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    plain_spec["kind"],
                    spec_text,
                    time.time(),
                    float(seconds),
                    _dumps(library_versions()),
                    metrics_text,
                    sqlite3.Binary(data),
                ),
            )

    def get_cell(self, key: str) -> CellRecord | None:
        """The stored cell ``key`` with its arrays loaded, or None."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT key, kind, spec_json, created, seconds, versions_json, metrics_json,"
                " arrays FROM cells WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        with np.load(io.BytesIO(bytes(row[7])), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return CellRecord(
            key=row[0],
            kind=row[1],
            spec=json.loads(row[2]),
            created=row[3],
            seconds=row[4],
            versions=json.loads(row[5]),
            metrics=json.loads(row[6]),
            arrays=arrays,
        )

    def list_cells(self, kind: str | None = None) -> pd.DataFrame:
        """The stored cells (``key``, ``kind``, ``created``, ``seconds``), newest first."""
        where, params = ("WHERE kind = ?", (kind,)) if kind is not None else ("", ())
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT key, kind, created, seconds FROM cells {where}"
                " ORDER BY created DESC, rowid DESC",
                params,
            ).fetchall()
        return pd.DataFrame(rows, columns=["key", "kind", "created", "seconds"])

    def delete_cells(self, kind: str | None = None) -> int:
        """Remove every cell (of ``kind``); the runs stay. Returns how many went."""
        where, params = ("WHERE kind = ?", (kind,)) if kind is not None else ("", ())
        with self._connection() as conn, self._transaction(conn, write=True):
            return conn.execute(f"DELETE FROM cells {where}", params).rowcount

    # -- reading -------------------------------------------------------------------

    def get(self, key: str, any_status: bool = False) -> RunRecord | None:
        """The stored run ``key``, or None.

        Only runs with status ``done`` are results; ``any_status=True`` also returns failed
        and cancelled runs.
        """
        with self._connection() as conn, self._transaction(conn, write=False):
            row = conn.execute(
                "SELECT key, kind, spec_json, status, created, finished, seconds, seed,"
                " versions_json, metrics_json, error, label FROM runs WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None or (row[3] != "done" and not any_status):
                return None
            table_names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM tables WHERE key = ? ORDER BY rowid", (key,)
                )
            ]
            artifact_names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM artifacts WHERE key = ? ORDER BY rowid", (key,)
                )
            ]
        return RunRecord(
            key=row[0],
            kind=row[1],
            spec=json.loads(row[2]),
            status=row[3],
            created=row[4],
            finished=row[5],
            seconds=row[6],
            seed=row[7],
            versions=json.loads(row[8]),
            metrics=json.loads(row[9]),
            error=row[10],
            label=row[11],
            table_names=table_names,
            artifact_names=artifact_names,
            store=self,
        )

    def list_runs(
        self,
        kind: str | None = None,
        limit: int = 200,
        *,
        status: str | None = None,
        with_spec: bool = False,
    ) -> pd.DataFrame:
        """The newest stored runs, one row each, newest first.

        Columns: ``key``, ``kind``, ``status``, ``created``, ``finished``, ``seconds``,
        ``seed``, ``label``, ``error``, ``dataset`` (from the spec), then one ``m.<name>``
        column per scalar metric (number, string or boolean; lists and dicts are left out).

        Args:
            kind: only runs of this kind.
            limit: at most this many rows.
            status: only runs with this status.
            with_spec: add a ``spec`` column (the run's spec as a dict) after ``dataset``.
        """
        clauses, params = [], []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = (
            "SELECT key, kind, status, created, finished, seconds, seed, label, error,"
            " json_extract(spec_json, '$.dataset'), spec_json, metrics_json"
            f" FROM runs{where} ORDER BY created DESC, rowid DESC LIMIT ?"
        )
        with self._connection() as conn:
            rows = conn.execute(query, (*params, int(limit))).fetchall()
        base = ["key", "kind", "status", "created", "finished", "seconds", "seed", "label", "error"]
        base.append("dataset")
        records = []
        for row in rows:
            record = dict(zip(base, row[:-2], strict=True))
            if with_spec:
                record["spec"] = json.loads(row[-2])
            for name, value in json.loads(row[-1]).items():
                if value is None or isinstance(value, bool | int | float | str):
                    record[f"m.{name}"] = value
            records.append(record)
        frame = pd.DataFrame.from_records(records, columns=None if records else base)
        for col in base:
            if col not in frame.columns:
                frame[col] = None
        frame["seed"] = frame["seed"].astype("Int64")
        for col in ("created", "finished", "seconds"):
            frame[col] = frame[col].astype("float64")
        if with_spec:
            base.append("spec")
            if "spec" not in frame.columns:
                frame["spec"] = None
        metric_cols = sorted(c for c in frame.columns if c not in base)
        return frame[base + metric_cols]

    def keys_on(self, target: Mapping[str, Any] | None, fingerprint: str) -> list[str]:
        """Keys of the ``done`` runs whose spec names ``target`` (a target's spec) and the
        data fingerprint ``fingerprint``, newest first."""
        wanted = _dumps(target)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT key, json_extract(spec_json, '$.target') FROM runs WHERE status = 'done'"
                " AND json_extract(spec_json, '$.fingerprint') = ?"
                " ORDER BY created DESC, rowid DESC",
                (fingerprint,),
            ).fetchall()
        out = []
        for key, found in rows:
            if _dumps(None if found is None else json.loads(found)) == wanted:
                out.append(key)
        return out

    def load_table(self, key: str, name: str) -> pd.DataFrame:
        """The stored DataFrame ``name`` of run ``key``."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT data FROM tables WHERE key = ? AND name = ?", (key, name)
            ).fetchone()
        if row is None:
            raise MissingResultError(f"run {key} has no stored table named {name!r}")
        return _decode_table(row[0])

    def _artifact_row(self, key: str, name: str) -> tuple[str, bytes]:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT mime, data FROM artifacts WHERE key = ? AND name = ?", (key, name)
            ).fetchone()
        if row is None:
            raise MissingResultError(f"run {key} has no stored artifact named {name!r}")
        return row[0], bytes(row[1])

    def load_artifact(self, key: str, name: str) -> bytes:
        """The raw stored bytes of artifact ``name`` (``.npy`` bytes for an array)."""
        return self._artifact_row(key, name)[1]

    def artifact_mime(self, key: str, name: str) -> str:
        """The MIME type the artifact was stored with."""
        return self._artifact_row(key, name)[0]

    def load_artifact_value(self, key: str, name: str) -> ArtifactValue:
        """The artifact decoded: a numpy array (loaded without pickle), a str, or bytes."""
        mime, data = self._artifact_row(key, name)
        return decode_artifact(mime, data)
