"""ControlReport JSON: written atomically, and an existing file is replaced only on request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_verdict import MASK1_BOTH_ON, _diag, _floors

from eegwb.atomic import OutputExistsError
from eegwb.experiments.control import ControlReport, save_reports_json
from eegwb.experiments.verdict import decide


def _report(name: str) -> ControlReport:
    floors = _floors(1.0, 1.0)
    diagnostics = _diag(floors.mse("nothing", unbiased=True))
    return ControlReport(
        name, MASK1_BOTH_ON, floors, diagnostics, decide(floors, diagnostics, MASK1_BOTH_ON)
    )


def test_save_json_refuses_an_existing_file_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    _report("first").save_json(path)
    with pytest.raises(OutputExistsError, match=str(path)):
        _report("second").save_json(path)
    assert json.loads(path.read_text())["name"] == "first"
    _report("second").save_json(path, overwrite=True)
    assert json.loads(path.read_text())["name"] == "second"


def test_several_reports_as_one_list(tmp_path: Path) -> None:
    path = save_reports_json([_report("a"), _report("b")], tmp_path / "reports.json")
    data = json.loads(path.read_text())
    assert [r["name"] for r in data] == ["a", "b"] and data[0]["verdict"][
        "label"
    ] == "no_information"
    with pytest.raises(OutputExistsError):
        save_reports_json([_report("c")], path)
