"""`InputError` is the one "your input is wrong" type: commands exit 2 on it and on nothing
else, so a bug (a shape `ValueError` deep in the code) surfaces as a bug, not as bad input."""

from __future__ import annotations

import pytest

from eegwb.atomic import OutputExistsError
from eegwb.cli import main
from eegwb.config import ConfigError
from eegwb.data.layout import DatasetError
from eegwb.data.montage import MontageError
from eegwb.errors import InputError, MissingInputError
from eegwb.evaluation.metrics import MetricsError
from eegwb.train.checkpoints import CheckpointError
from eegwb.train.labels import LabelError
from eegwb.validation.leakage import LeakageError


@pytest.mark.parametrize(
    "error",
    [
        ConfigError,
        DatasetError,
        MontageError,
        CheckpointError,
        LabelError,
        LeakageError,
        MetricsError,
        OutputExistsError,
        MissingInputError,
    ],
)
def test_every_input_error_derives_from_input_error_and_stays_what_it_was(error) -> None:
    assert issubclass(error, InputError) and issubclass(error, ValueError)


def test_file_errors_keep_their_os_types() -> None:
    assert issubclass(OutputExistsError, FileExistsError)
    assert issubclass(MissingInputError, FileNotFoundError)
    assert issubclass(LeakageError, RuntimeError)


def test_bad_input_exits_2_with_one_line(tmp_path, capsys) -> None:
    assert main(["validate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "Traceback" not in err


def test_a_bug_is_not_reported_as_bad_input(tiny_dataset, monkeypatch) -> None:
    from eegwb.validation import validation

    def broken(*args, **kwargs):
        raise ValueError("shapes (3,) and (4,) do not match")  # a bug, not the user's input

    monkeypatch.setattr(validation, "validate", broken)
    with pytest.raises(ValueError, match="do not match"):
        main(["validate", str(tiny_dataset)])
