"""MLflow tracking that never stops training.

`Tracker` is a thin wrapper over `mlflow.MlflowClient` (not the fluent API, so two
trackers or a notebook's re-run cells never fight over a global "active run"). Every
call is guarded: a tracking server that is unreachable, slow, or dies mid-run costs one
warning (saying what was not logged), a list of `failures`, and a summary at `end()`;
it never raises into the training loop.

HTTP calls run with short MLflow timeouts (`MLFLOW_HTTP_REQUEST_TIMEOUT`,
`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, `MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`, read by
`mlflow.utils.rest_utils` at request time) unless the user set those variables
explicitly. After a few consecutive failures the tracker stops calling the server for
`cooldown_s` seconds, so a dead server costs milliseconds per step, not seconds.

Tags the pretraining code sets and notebooks read back are named in `TAG_*` below.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    import polars as pl

logger = logging.getLogger(__name__)

TAG_CHECKPOINT = "eegwb.checkpoint"  # path of the best checkpoint
TAG_CHECKPOINT_LAST = "eegwb.checkpoint_last"
TAG_KERNEL = "eegwb.kernel_path"
TAG_DATASET_FINGERPRINT = "eegwb.dataset_fingerprint"
TAG_INCOMPLETE = "eegwb.tracking_incomplete"  # what a run's record misses (calls that failed)
END_ATTEMPTS = 3  # ending a run: tries, END_WAIT_S, 2 END_WAIT_S apart (a server coming back)
END_WAIT_S = 1.0

MAX_PARAM_VALUE_CHARS = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH (MLflow 3)
MAX_KEY_CHARS = 250  # MAX_ENTITY_KEY_LENGTH
MAX_TAG_VALUE_CHARS = 8000  # MAX_TAG_VAL_LENGTH
PARAMS_PER_BATCH = 100  # MAX_PARAMS_TAGS_PER_BATCH
METRICS_PER_BATCH = 1000  # MAX_METRICS_PER_BATCH
MAX_FAILURES_KEPT = 200  # a dead server during a long run must not grow memory without bound

# Short HTTP settings for the tracker's own calls; a user's explicit env vars win.
# MLflow's defaults (7 retries, backoff 2, 120 s timeout) would stall a training step for
# minutes on a dead server.
HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # our own pause-after-failures replaces retries
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default cwd) holding pyproject.toml, else
    `start`."""
    start = Path(start or Path.cwd()).resolve()
    for d in (start, *start.parents):
        if (d / "pyproject.toml").is_file():
            return d
    return start


def default_tracking_uri(project_root: Path | None = None) -> str:
    """`sqlite:///<project_root>/mlflow.db`: MLflow 3's default store kind, kept in the project."""
    root = Path(project_root).resolve() if project_root is not None else find_project_root()
    return f"sqlite:///{root / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None) -> str:
    """`uri`, else $MLFLOW_TRACKING_URI, else the project's sqlite store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def flatten_config(cfg: Any, prefix: str = "") -> dict[str, str]:
    """Nested dataclasses/dicts -> {"model.d_model": "128", ...} as MLflow params.

    Lists and other leaves are stringified (JSON where possible); values longer than
    MLflow's limit are cut and end in "...".
    """
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        items: Mapping[str, Any] = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    elif isinstance(cfg, Mapping):
        items = cfg
    else:
        return {prefix or "value": _param_str(cfg)}
    out: dict[str, str] = {}
    for key, value in items.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if (dataclasses.is_dataclass(value) and not isinstance(value, type)) or (
            isinstance(value, Mapping) and value
        ):
            out.update(flatten_config(value, name))
        else:
            out[name[:MAX_KEY_CHARS]] = _param_str(value)
    return out


def _param_str(value: Any) -> str:
    if isinstance(value, Path):
        text = str(value)
    elif isinstance(value, (list, tuple, dict)):
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = str(value)
    else:
        text = str(value)
    if len(text) > MAX_PARAM_VALUE_CHARS:
        text = text[: MAX_PARAM_VALUE_CHARS - 3] + "..."
    return text


@contextlib.contextmanager
def _short_http_timeouts() -> Iterator[None]:
    added = [k for k in HTTP_ENV_DEFAULTS if k not in os.environ]
    for k in added:
        os.environ[k] = HTTP_ENV_DEFAULTS[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _metric_value(value: Any) -> float:
    if hasattr(value, "item"):  # torch / numpy scalars
        value = value.item()
    return float(value)


class Tracker:
    """One MLflow run; a context manager whose calls never raise.

    `uri=None` uses $MLFLOW_TRACKING_URI or the project's sqlite store. `enabled=False`
    makes every call a no-op (run_id stays None), for DDP ranks > 0 and `--no-track`.
    """

    def __init__(
        self,
        uri: str | None,
        experiment: str,
        *,
        run_name: str | None = None,
        tags: dict | None = None,
        enabled: bool = True,
        max_consecutive_failures: int = 3,
        cooldown_s: float = 60.0,
    ) -> None:
        self.tracking_uri = resolve_tracking_uri(uri)
        self.experiment = experiment
        self.enabled = enabled
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.failures: list[str] = []
        self.n_failures = 0
        self._warned = False
        self._ended = False
        self.end_status: str | None = None  # the status the run was ended with, once it was
        self._consecutive = 0
        self._max_consecutive = max_consecutive_failures
        self._cooldown_s = cooldown_s
        self._paused_until = 0.0
        self._client = None
        if enabled:
            self._start(run_name, tags or {})

    # -- lifecycle ---------------------------------------------------------------

    def _start(self, run_name: str | None, tags: dict) -> None:
        def start() -> None:
            from mlflow import MlflowClient

            db = _sqlite_path(self.tracking_uri)
            if db is not None:
                db.parent.mkdir(parents=True, exist_ok=True)
            client = MlflowClient(tracking_uri=self.tracking_uri)
            exp = client.get_experiment_by_name(self.experiment)
            if exp is None:
                # Keep a sqlite store's artifacts beside its db, not in ./mlruns of the cwd.
                location = None
                if db is not None:
                    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.experiment)
                    location = (db.parent / "mlartifacts" / safe).resolve().as_uri()
                try:
                    self.experiment_id = client.create_experiment(
                        self.experiment, artifact_location=location
                    )
                except Exception:  # created meanwhile by another process
                    exp = client.get_experiment_by_name(self.experiment)
                    if exp is None:
                        raise
                    self.experiment_id = exp.experiment_id
            else:
                self.experiment_id = exp.experiment_id
            run = client.create_run(
                self.experiment_id,
                run_name=run_name,
                tags={str(k): str(v)[:MAX_TAG_VALUE_CHARS] for k, v in tags.items()},
            )
            self._client = client
            self.run_id = run.info.run_id

        self._guard("start run", f"experiment {self.experiment!r}", start)

    def end(self, status: str = "FINISHED") -> None:
        """Close the run (FINISHED / FAILED / KILLED); warns once with a failure summary.

        A run whose record misses calls that failed ends as FAILED (not FINISHED), with
        the tag `eegwb.tracking_incomplete` saying what is missing. Ending ignores the
        pause after failures and tries `END_ATTEMPTS` times, so a server that died
        mid-run and is back by now gets its run closed; if it is still away, the summary
        says how to close the run (else it would show RUNNING forever)."""
        if self._ended:
            return
        self._ended = True
        if self.enabled and self.run_id is not None and self._client is not None:
            status = self._end_run(status)
        else:
            self._call("end run", f"status {status}", lambda c: None)
        if self.n_failures:
            if self.end_status is not None:
                outcome = f"the run was ended as {self.end_status}"
            else:
                outcome = (
                    "the run could not be ended and shows RUNNING; when the server is back, "
                    f"end it with: {self.end_command()}"
                )
            logger.warning(
                "MLflow tracking at %s: %d call(s) failed during run %s; not logged: %s%s; %s",
                self.tracking_uri,
                self.n_failures,
                self.run_id,
                "; ".join(self.failures[:3]),
                " ..." if self.n_failures > 3 else "",
                outcome,
            )

    def _end_run(self, status: str) -> str:
        missing = self.n_failures
        if missing and status == "FINISHED":
            status = "FAILED"  # the record is not the whole run
        for attempt in range(END_ATTEMPTS):
            try:
                with _short_http_timeouts():
                    if missing:
                        text = f"{missing} MLflow call(s) failed; not logged: " + "; ".join(
                            self.failures[:5]
                        )
                        self._client.set_tag(
                            self.run_id, TAG_INCOMPLETE, text[:MAX_TAG_VALUE_CHARS]
                        )
                    self._client.set_terminated(self.run_id, status)
            except Exception as err:  # noqa: BLE001 - still away: try again, then say how
                if attempt == END_ATTEMPTS - 1:
                    hint = f"status {status}; it shows RUNNING until: {self.end_command()}"
                    self._record("end run", hint, err, warn=False)
                else:
                    time.sleep(END_WAIT_S * (attempt + 1))
            else:
                self.end_status = status
                break
        return status

    def end_command(self) -> str:
        """A shell command that ends this run as FAILED (for a run left RUNNING)."""
        return (
            f"python -c \"from mlflow import MlflowClient; MlflowClient('{self.tracking_uri}')"
            f".set_terminated('{self.run_id}', 'FAILED')\""
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")

    @property
    def ok(self) -> bool:
        """True when a run exists and nothing has failed so far."""
        return self.run_id is not None and self.n_failures == 0

    # -- logging -----------------------------------------------------------------

    def log_params(self, params: dict) -> None:
        if not self.enabled:  # not even `import mlflow` (seconds) for a disabled tracker
            return
        flat = flatten_config(params)
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flat.items()]

        def log(c) -> None:
            for i in range(0, len(items), PARAMS_PER_BATCH):
                c.log_batch(self.run_id, params=items[i : i + PARAMS_PER_BATCH], synchronous=True)

        self._call("log_params", f"{len(items)} params", log)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        items = []
        for k, v in metrics.items():
            try:
                items.append(
                    Metric(str(k)[:MAX_KEY_CHARS], _metric_value(v), now_ms, int(step or 0))
                )
            except (TypeError, ValueError):
                self._record("log_metrics", f"metric {k!r}", TypeError(f"not a number: {v!r}"))
        if not items:
            return

        def log(c) -> None:
            for i in range(0, len(items), METRICS_PER_BATCH):
                c.log_batch(self.run_id, metrics=items[i : i + METRICS_PER_BATCH], synchronous=True)

        self._call("log_metrics", f"{', '.join(m.key for m in items)} at step {step}", log)

    def set_tags(self, tags: dict) -> None:
        if not self.enabled:
            return
        from mlflow.entities import RunTag

        items = [
            RunTag(str(k)[:MAX_KEY_CHARS], str(v)[:MAX_TAG_VALUE_CHARS]) for k, v in tags.items()
        ]

        def log(c) -> None:
            for i in range(0, len(items), PARAMS_PER_BATCH):
                c.log_batch(self.run_id, tags=items[i : i + PARAMS_PER_BATCH], synchronous=True)

        self._call("set_tags", ", ".join(t.key for t in items), log)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        path = Path(path)
        self._call(
            "log_artifact",
            str(path),
            lambda c: c.log_artifact(self.run_id, str(path), artifact_path),
        )

    def log_text(self, text: str, artifact_file: str) -> None:
        self._call(
            "log_text", artifact_file, lambda c: c.log_text(self.run_id, text, artifact_file)
        )

    def log_chart(self, chart: Any, artifact_file: str) -> None:
        """An Altair chart as `<artifact_file>` (HTML) and the same name with `.json` (the
        Vega-Lite spec)."""
        stem = artifact_file.removesuffix(".html")

        def log(c) -> None:
            with tempfile.TemporaryDirectory(prefix="eegwb-chart-") as tmp:
                html = Path(tmp) / Path(stem + ".html").name
                spec = Path(tmp) / Path(stem + ".json").name
                chart.save(str(html))
                spec.write_text(chart.to_json())
                parent = str(Path(stem).parent) if Path(stem).parent != Path(".") else None
                c.log_artifact(self.run_id, str(html), parent)
                c.log_artifact(self.run_id, str(spec), parent)

        self._call("log_chart", artifact_file, log)

    # -- guards ------------------------------------------------------------------

    def _call(self, what: str, detail: str, fn) -> None:
        if not self.enabled:
            return
        if self.run_id is None or self._client is None:
            self._record(
                what, detail, RuntimeError("no MLflow run (starting it failed)"), warn=False
            )
            return
        if time.monotonic() < self._paused_until:
            self._record(
                what,
                detail,
                RuntimeError("skipped: tracking server paused after failures"),
                warn=False,
            )
            return
        self._guard(what, detail, lambda: fn(self._client))

    def _guard(self, what: str, detail: str, fn) -> None:
        try:
            with _short_http_timeouts():
                fn()
        except Exception as err:  # noqa: BLE001 - any MLflow / network / filesystem failure
            self._consecutive += 1
            if self._consecutive >= self._max_consecutive:
                self._paused_until = time.monotonic() + self._cooldown_s
            self._record(what, detail, err)
        else:
            self._consecutive = 0

    def _record(self, what: str, detail: str, err: BaseException, warn: bool = True) -> None:
        self.n_failures += 1
        message = f"{what} ({detail}): {type(err).__name__}: {_short(err)}"
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(message)
        if warn and not self._warned:
            self._warned = True
            logger.warning(
                "MLflow tracking at %s failed; training continues. Not logged: %s. "
                "Later tracking failures are collected and summarised at the end of the run.",
                self.tracking_uri,
                message,
            )


def _short(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_runs(uri: str | None, experiment: str, params: list[str] | None = None) -> pl.DataFrame:
    """Runs of an experiment, newest first, for notebooks that pick one.

    Columns: run_id, run_name, status, start_time (datetime, UTC), checkpoint (tag
    `eegwb.checkpoint` or ""), then `params.<name>` (all, or those listed in `params`) and
    `metrics.<name>` (last value). An empty frame when the experiment does not exist, or
    the sqlite store does not yet: listing never creates a store.
    """
    import polars as pl
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(uri)
    store = _sqlite_path(uri)
    runs = []
    if store is None or store.is_file():
        client = MlflowClient(tracking_uri=uri)
        with _short_http_timeouts():
            exp = client.get_experiment_by_name(experiment)
            if exp is not None:
                runs = client.search_runs([exp.experiment_id], order_by=["start_time DESC"])
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name or "",
            "status": run.info.status,
            "start_time": run.info.start_time,
            "checkpoint": run.data.tags.get(TAG_CHECKPOINT, ""),
        }
        for k, v in run.data.params.items():
            if params is None or k in params:
                row[f"params.{k}"] = v
        for k, v in run.data.metrics.items():
            row[f"metrics.{k}"] = float(v)
        rows.append(row)
    base = {
        "run_id": pl.String,
        "run_name": pl.String,
        "status": pl.String,
        "start_time": pl.Int64,
        "checkpoint": pl.String,
    }
    if not rows:
        return pl.DataFrame(schema={**base, "start_time": pl.Datetime("ms", "UTC")})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    metric_cols = [c for c in frame.columns if c.startswith("metrics.")]
    frame = frame.with_columns(
        pl.from_epoch(pl.col("start_time"), time_unit="ms").dt.replace_time_zone("UTC"),
        *[pl.col(c).cast(pl.Float64) for c in metric_cols],
    )
    ordered = (
        list(base)
        + sorted(c for c in frame.columns if c.startswith("params."))
        + sorted(metric_cols)
    )
    return frame.select(ordered)
