"""Electrode positions: MNE's standard montage and a user's .elc, both on the unit sphere."""

import numpy as np
import pytest

from eegwb.data.montage import (
    MONTAGES,
    MontageError,
    electrode_positions,
    fit_sphere,
    known_channels,
    plot_layout,
)


@pytest.mark.parametrize("name", sorted(MONTAGES))
def test_montage_positions_unit_norm(name):
    channels = MONTAGES[name]
    assert len(set(channels)) == len(channels)
    pos = electrode_positions(channels)
    assert list(pos) == channels
    xyz = np.array(list(pos.values()))
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0, atol=1e-9)


def test_montage_sizes_and_geometry():
    assert len(MONTAGES["standard_1020"]) == 19
    assert len(MONTAGES["standard_1010_64"]) == 64
    assert MONTAGES["muse"] == ["TP9", "AF7", "AF8", "TP10"]
    pos = electrode_positions(["FP1", "O1", "T7", "T8", "CZ", "TP9"])
    assert pos["FP1"][1] > 0.8 and pos["O1"][1] < -0.8  # +y towards the nose
    assert pos["T7"][0] < -0.9 and pos["T8"][0] > 0.9  # +x to the right
    assert pos["CZ"][2] > 0.95  # vertex on top
    assert pos["TP9"][2] < 0  # below the 10-20 equator, behind the ear


def test_same_site_same_position_in_every_montage():
    small = electrode_positions(MONTAGES["standard_1020"])
    big = electrode_positions(MONTAGES["standard_1010_64"])
    for ch in set(small) & set(big):
        assert small[ch] == big[ch]


def test_lowercase_and_old_names_resolve():
    assert electrode_positions(["fp1"])["FP1"] == electrode_positions(["FP1"])["FP1"]
    np.testing.assert_allclose(electrode_positions(["T3"])["T3"], electrode_positions(["T7"])["T7"])
    assert "AFF1H" in known_channels()


def test_unknown_names_raise_with_close_matches():
    with pytest.raises(MontageError) as info:
        electrode_positions(["FP1", "FPP1", "QQQ"])
    err = info.value
    assert err.unknown == ["FPP1", "QQQ"]
    assert "FP1" in err.suggestions["FPP1"]
    assert err.suggestions["QQQ"] == []
    message = str(err)
    assert "'FPP1'" in message and "'QQQ'" in message and "FP1" in message
    assert "'FP1' (closest" not in message  # a known name is not reported as unknown


def test_fit_sphere_recovers_centre_and_radius():
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(50, 3))
    dirs[:, 2] = np.abs(dirs[:, 2])  # a cap: upper hemisphere only, as electrodes are
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    centre = np.array([0.004, -0.012, 0.03])
    got_centre, got_radius = fit_sphere(centre + 0.09 * dirs)
    np.testing.assert_allclose(got_centre, centre, atol=1e-9)
    assert got_radius == pytest.approx(0.09, rel=1e-9)


def _write_elc(path, names, points_mm):
    """A valid ASA .elc file (old style: one position per line, then one label per line)."""
    lines = ["# ASA electrode file", "ReferenceLabel\tavg", "UnitPosition\tmm"]
    lines.append(f"NumberPositions=\t{len(names)}")
    lines.append("Positions")
    lines += [" ".join(f"{v:.6f}" for v in p) for p in points_mm]
    lines.append("Labels")
    lines += list(names)
    path.write_text("\n".join(lines) + "\n")


def test_elc_file_read_by_mne_and_normalised(tmp_path):
    rng = np.random.default_rng(1)
    names = [f"Cap{i}" for i in range(12)]
    dirs = rng.normal(size=(12, 3))
    dirs[:, 2] = np.abs(dirs[:, 2]) + 0.2
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    centre_mm = np.array([5.0, -10.0, 30.0])  # an off-centre head: the sphere fit must undo it
    points = centre_mm + 92.0 * dirs
    fiducials = {"Nz": [5.0, 102.0, 0.0], "LPA": [-87.0, -10.0, 0.0], "RPA": [97.0, -10.0, 0.0]}
    elc = tmp_path / "cap.elc"
    _write_elc(elc, names + list(fiducials), np.vstack([points, list(fiducials.values())]))

    pos = electrode_positions(["CAP0", "cap5", "CAP11"], elc_path=elc)
    assert list(pos) == ["CAP0", "CAP5", "CAP11"]
    for i, name in [(0, "CAP0"), (5, "CAP5"), (11, "CAP11")]:
        np.testing.assert_allclose(pos[name], dirs[i], atol=1e-5)
    assert "NZ" not in known_channels(elc_path=elc)  # fiducials are not channels

    with pytest.raises(MontageError) as info:
        electrode_positions(["CAP1", "CAP99", "FP1"], elc_path=elc)
    assert info.value.unknown == ["CAP99", "FP1"]  # the .elc replaces the standard montage
    assert str(elc) in str(info.value)
    assert info.value.suggestions["CAP99"]


def test_missing_elc_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.elc"):
        electrode_positions(["FP1"], elc_path=tmp_path / "nope.elc")


def test_plot_layout_draws_every_channel():
    pytest.importorskip("matplotlib")
    fig = plot_layout(electrode_positions(MONTAGES["muse"]), title="Muse")
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert set(MONTAGES["muse"]) <= texts
    assert fig._suptitle is not None and fig._suptitle.get_text() == "Muse"
