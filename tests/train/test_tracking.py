"""Tracking: a real sqlite store, a real `mlflow server`, and outages that never raise."""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from eegwb.train.tracking import (
    MAX_PARAM_VALUE_CHARS,
    TAG_CHECKPOINT,
    Tracker,
    default_tracking_uri,
    find_runs,
    flatten_config,
)


@dataclasses.dataclass
class _Model:
    d_model: int = 128
    n_layers: int = 6


@dataclasses.dataclass
class _Cfg:
    model: _Model = dataclasses.field(default_factory=_Model)
    lr: float = 3e-4
    data: Path = Path("data/synthetic")
    gates: list = dataclasses.field(default_factory=lambda: [{"epoch": 2, "max": 0.9}])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flatten_config_nested_and_limits() -> None:
    flat = flatten_config({"cfg": _Cfg(), "long": "x" * 10_000})
    assert flat["cfg.model.d_model"] == "128"
    assert flat["cfg.model.n_layers"] == "6"
    assert flat["cfg.lr"] == "0.0003"
    assert flat["cfg.data"] == "data/synthetic"
    assert flat["cfg.gates"] == '[{"epoch": 2, "max": 0.9}]'
    assert len(flat["long"]) == MAX_PARAM_VALUE_CHARS and flat["long"].endswith("...")
    assert all(isinstance(v, str) for v in flat.values())


def test_default_uri_is_project_sqlite(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert default_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert (
        default_tracking_uri(tmp_path / "x")
        == f"sqlite:///{(tmp_path / 'x').resolve() / 'mlflow.db'}"
    )


def _read_back(uri: str, run_id: str, tmp: Path) -> tuple:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    history = client.get_metric_history(run_id, "loss")
    arts = {a.path for a in client.list_artifacts(run_id)}
    arts |= {a.path for a in client.list_artifacts(run_id, "charts")}
    text = Path(client.download_artifacts(run_id, "notes/summary.txt", str(tmp))).read_text()
    return run, history, arts, text


def _log_everything(tracker: Tracker, tmp: Path) -> None:
    import altair as alt
    import polars as pl

    tracker.log_params({"cfg": _Cfg()})
    for step, loss in enumerate([1.0, 0.7, 0.5]):
        tracker.log_metrics({"loss": loss, "lr": 1e-3}, step=step)
    tracker.set_tags({TAG_CHECKPOINT: "/ckpt/best.pt"})
    cfg_file = tmp / "config.yaml"
    cfg_file.write_text("lr: 0.0003\n")
    tracker.log_artifact(cfg_file)
    tracker.log_text("hello", "notes/summary.txt")
    chart = (
        alt.Chart(pl.DataFrame({"step": [0, 1], "loss": [1.0, 0.5]}))
        .mark_line()
        .encode(x="step", y="loss")
    )
    tracker.log_chart(chart, "charts/loss.html")


def _check_read_back(uri: str, tracker: Tracker, tmp: Path) -> None:
    run, history, arts, text = _read_back(uri, tracker.run_id, tmp / "dl")
    assert run.info.status == "FINISHED"
    assert run.data.params["cfg.model.d_model"] == "128"
    assert run.data.tags[TAG_CHECKPOINT] == "/ckpt/best.pt"
    assert run.data.tags["purpose"] == "test"
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (0, 1.0),
        (1, 0.7),
        (2, 0.5),
    ]
    assert {"config.yaml", "notes", "charts", "charts/loss.html", "charts/loss.json"} <= arts
    assert text == "hello"


def test_sqlite_round_trip(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    with Tracker(uri, "roundtrip", run_name="r1", tags={"purpose": "test"}) as tracker:
        assert tracker.run_id is not None and tracker.experiment_id is not None
        _log_everything(tracker, tmp_path)
    assert tracker.failures == []
    _check_read_back(uri, tracker, tmp_path)
    # artifacts live beside the db, not in the cwd's ./mlruns
    assert (tmp_path / "store" / "mlartifacts" / "roundtrip").is_dir()
    runs = find_runs(uri, "roundtrip")
    assert runs.height == 1
    row = runs.row(0, named=True)
    assert row["run_id"] == tracker.run_id and row["run_name"] == "r1"
    assert row["checkpoint"] == "/ckpt/best.pt" and row["status"] == "FINISHED"
    assert row["metrics.loss"] == 0.5 and row["params.cfg.lr"] == "0.0003"
    assert find_runs(uri, "no-such-experiment").height == 0


def test_listing_runs_of_a_missing_store_does_not_create_it(tmp_path: Path) -> None:
    db = tmp_path / "never-written.db"
    runs = find_runs(f"sqlite:///{db}", "pretrain")
    assert runs.height == 0 and "run_id" in runs.columns
    assert not db.exists()


def test_disabled_tracker_does_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with Tracker(uri, "off", enabled=False) as tracker:
        tracker.log_params({"cfg": _Cfg()})
        tracker.log_metrics({"loss": 1.0}, step=0)
        tracker.set_tags({"a": "b"})
        tracker.log_text("x", "x.txt")
    assert tracker.run_id is None and tracker.failures == []
    assert not (tmp_path / "m.db").exists()
    # a disabled tracker never imports mlflow (seconds of start-up for a tracking-off run)
    code = (
        "import sys; from eegwb.train.tracking import Tracker; "
        "t = Tracker(None, 'x', enabled=False); t.log_params({'a': 1}); "
        "t.log_metrics({'l': 1.0}, 0); t.set_tags({'a': 1}); t.end(); "
        "sys.exit(int('mlflow' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=False).returncode == 0


def _start_server(tmp: Path, port: int) -> tuple[str, subprocess.Popen]:
    """A real `mlflow server` on 127.0.0.1:port over the sqlite store in `tmp`, answering."""
    exe = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
    if not Path(exe).exists():
        pytest.skip("the mlflow CLI is not installed beside this Python")
    proc = subprocess.Popen(
        [
            exe,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp / 'm.db'}",
            "--artifacts-destination",
            str(tmp / "art"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 150  # a loaded 2-core CI box
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return url, proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            _stop_server(proc)
            raise RuntimeError("mlflow server did not answer /health within 150 s")
        time.sleep(0.5)


def _stop_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    store, port = tmp_path_factory.mktemp("mlflow-server"), _free_port()
    url, proc = _start_server(store, port)
    server = {"url": url, "proc": proc, "store": store, "port": port}
    try:
        yield server
    finally:
        _stop_server(server["proc"])


@pytest.mark.timeout(300)
def test_real_mlflow_server_round_trip_killed_then_back(mlflow_server, tmp_path, caplog) -> None:
    from mlflow import MlflowClient

    url, proc = mlflow_server["url"], mlflow_server["proc"]
    with Tracker(url, "served", run_name="http", tags={"purpose": "test"}) as tracker:
        _log_everything(tracker, tmp_path)
    assert tracker.failures == [], tracker.failures
    _check_read_back(url, tracker, tmp_path)
    assert find_runs(url, "served")["run_id"].to_list() == [tracker.run_id]

    # The server dies mid-run: later calls fail softly, within a bounded time.
    live = Tracker(url, "served", run_name="dies")
    comes_back = Tracker(url, "served", run_name="comes-back")
    for run in (live, comes_back):
        run.log_metrics({"loss": 1.0}, step=0)
        assert run.failures == []
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    caplog.set_level(logging.WARNING, logger="eegwb.train.tracking")
    start = time.monotonic()
    for step in range(1, 30):
        live.log_metrics({"loss": 1.0 / step}, step=step)
    live.log_text("after death", "late.txt")
    live.end()
    assert time.monotonic() - start < 60
    assert live.n_failures >= 30  # 29 metric steps + text (+ end)
    assert any("log_metrics" in f and "step 1" in f for f in live.failures)
    warnings = [r for r in caplog.records if r.name == "eegwb.train.tracking"]
    # one warning at the first failure, one summary at end; not one per step
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "Not logged: log_metrics" in warnings[0].getMessage()
    assert "failed during run" in warnings[1].getMessage()
    # Ended while the server is away: the run shows RUNNING, and the summary says how to end it.
    assert live.end_status is None
    assert "shows RUNNING" in warnings[1].getMessage()
    assert live.end_command() in warnings[1].getMessage()

    # The server comes back on the same store before the other run ends: that run is ended
    # (as FAILED, its record misses what failed), not left RUNNING; the printed command
    # ends the first. (Before: ending was skipped while calls were paused after failures.)
    for step in range(1, 6):
        comes_back.log_metrics({"loss": 1.0 / step}, step=step)
    url, mlflow_server["proc"] = _start_server(mlflow_server["store"], mlflow_server["port"])
    comes_back.end()
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(comes_back.run_id)
    assert comes_back.end_status == "FAILED" and run.info.status == "FAILED"
    assert "not logged: log_metrics" in run.data.tags["eegwb.tracking_incomplete"]
    assert client.get_run(live.run_id).info.status == "RUNNING"
    cmd = shlex.split(live.end_command())[1:]
    subprocess.run([sys.executable, *cmd], check=True, timeout=120)
    assert client.get_run(live.run_id).info.status == "FAILED"


@pytest.mark.timeout(120)
def test_unreachable_server_never_raises(tmp_path: Path, caplog) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # closed port: connection refused
    caplog.set_level(logging.WARNING, logger="eegwb.train.tracking")
    env_before = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    }
    start = time.monotonic()
    with Tracker(url, "nowhere") as tracker:
        tracker.log_params({"lr": 0.1})
        for step in range(20):
            tracker.log_metrics({"loss": 1.0}, step=step)
        tracker.set_tags({"a": "b"})
        tracker.log_text("x", "x.txt")
    elapsed = time.monotonic() - start
    assert elapsed < 60, f"unreachable server stalled the caller for {elapsed:.0f} s"
    assert tracker.run_id is None
    assert tracker.failures[0].startswith("start run")
    assert tracker.n_failures >= 23
    messages = [r.getMessage() for r in caplog.records if r.name == "eegwb.train.tracking"]
    assert len(messages) == 2 and "training continues" in messages[0]
    # the process environment is as it was (the short timeouts apply only inside calls)
    assert {k: os.environ.get(k) for k in env_before} == env_before


def test_broken_sqlite_store_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with Tracker(f"sqlite:///{blocker / 'm.db'}", "broken") as tracker:
        tracker.log_metrics({"loss": 1.0}, step=0)
    assert tracker.run_id is None
    assert [f.split(" (")[0] for f in tracker.failures] == ["start run", "log_metrics", "end run"]
