"""The control verdict: what information a trained model's loss shows it uses.

The floor comparison is the core. The model's loss is scored on the same tokens as the
floors (eegwb.evaluation.floors), so:

1. Target collapse first: when the targets barely vary across tokens every floor is ~0
   and a low loss says nothing.
2. Leak: the inputs carry some information (`InputInfo.available`): at mask 1.0 that is
   position (from the temporal encoding, or implicitly from a recurrent backbone) and/or
   the electrode (spatial encoding). A loss below the *exact* floor of that information
   is impossible without more, so something else reaches the model.
3. Otherwise the loss is placed on the ladder of floors a model could reach
   (`Floors.reference`: transfer floors, group means learnt on the training participants
   and scored on these, else the unbiased in-sample ones): at or above the nothing
   floor, or inputs that carry nothing -> no information; clearly below the channel x
   position floor (mask < 1) -> uses context; clearly below both single floors ->
   position + channel; below one only -> that one; when either alone could explain it,
   the prediction variance explained by position and by channel (model diagnostics)
   decides.

Every threshold is a field of `VerdictConfig` with its reason, and the verdict reports
the numbers it compared.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from eegwb.evaluation.floors import LABELS as FLOOR_LABELS
from eegwb.evaluation.floors import Floors

if TYPE_CHECKING:
    from eegwb.experiments.model_probe import ModelDiagnostics

VERDICTS = {
    "no_information": "no information: the model predicts the dataset mean",
    "position_only": "position only",
    "channel_only": "channel only",
    "position_and_channel": "position + channel",
    "uses_context": "uses context",
    "target_collapse": "target collapse",
    "leak_suspected": "leak suspected",
}
RECURRENT_BACKBONES = ("mamba2",)  # their state knows position even with encodings off


@dataclass(frozen=True)
class VerdictConfig:
    leak_tolerance: float = 0.02  # loss may sit 2% under the exact floor (float/bf16 noise)
    gain_margin: float = 0.05  # "clearly below" a floor = lower by more than 5% of it
    context_margin: float = 0.10  # uses context = 10% under the channel x position floor
    reach_tolerance: float = 0.05  # a floor is "reached" when the loss is within 5% above it
    collapse_ratio: float = 0.01  # targets collapsed: variance < 1% of their mean square
    collapse_var: float = 1e-4  # learned targets (LayerNorm scale ~1) collapsed: variance below
    # this (eegwb.train.collapse's check); not applied to signal targets, whose units are the data's
    eta2_used: float = 0.10  # predictions "vary with" a key when it explains >= 10% of them

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value < 1.0:
                raise ValueError(f"VerdictConfig.{name}: must be in [0, 1), got {value}")


@dataclass(frozen=True)
class InputInfo:
    """What the model's inputs can tell it about a masked token."""

    mask_ratio: float
    temporal_encoding: bool
    spatial_encoding: bool
    implicit_position: bool  # a recurrent backbone knows position from its state alone
    target: str = "signal"
    mask_style: str = "mae"  # bert leaves 10% of masked windows unchanged: context, even at 100%

    @classmethod
    def from_config(cls, model_cfg: Any, masking_cfg: Any) -> InputInfo:
        return cls(
            mask_ratio=float(masking_cfg.mask_ratio),
            temporal_encoding=not model_cfg.disable_temporal_encoding,
            spatial_encoding=not model_cfg.disable_spatial_encoding,
            implicit_position=model_cfg.backbone in RECURRENT_BACKBONES,
            target=str(model_cfg.target),
            mask_style=str(getattr(masking_cfg, "style", "mae")),
        )

    @property
    def context_visible(self) -> bool:
        """Whether other (or the same) windows' content reaches the model: mask < 100%, or
        BERT-style masking, which leaves 10% of the masked windows as they were."""
        return self.mask_ratio < 1.0 or self.mask_style == "bert"

    @property
    def knows_position(self) -> bool:
        return self.temporal_encoding or self.implicit_position

    @property
    def available(self) -> str | None:
        """Floor kind of the information the inputs carry; None when context is visible too."""
        if self.context_visible:
            return None
        if self.spatial_encoding:
            return "channel_position" if self.knows_position else "channel"
        return "position" if self.knows_position else "nothing"


@dataclass
class Verdict:
    label: str  # a key of VERDICTS
    headline: str  # one sentence in plain words
    implicit: bool = False  # position_only although the temporal encoding is off
    notes: list[str] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)  # what was compared

    @property
    def title(self) -> str:
        return VERDICTS[self.label] + (" (implicit)" if self.implicit else "")

    def text(self) -> str:
        return "\n".join([f"Verdict: {self.title}", self.headline, *[f"- {n}" for n in self.notes]])

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "title": self.title,
            "implicit": self.implicit,
            "headline": self.headline,
            "notes": list(self.notes),
            "numbers": dict(self.numbers),
        }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def decide(
    floors: Floors, diag: ModelDiagnostics, inputs: InputInfo, cfg: VerdictConfig | None = None
) -> Verdict:
    """The verdict for one model on one split (see the module docstring for the order)."""
    cfg = cfg or VerdictConfig()
    loss = float(diag.val_loss)
    u = {k: floors.reference(k) for k in FLOOR_LABELS}
    e = {k: floors.mse(k) for k in FLOOR_LABELS}
    numbers = {
        "loss": loss,
        **{f"floor_{k}": v for k, v in e.items()},
        **{f"floor_{k}_unbiased": floors.mse(k, unbiased=True) for k in FLOOR_LABELS},
        **{f"floor_{k}_transfer": floors[k].mse_transfer for k in FLOOR_LABELS},
        **{f"floor_{k}_reference": v for k, v in u.items()},
    }
    notes = _data_notes(u, floors, cfg)
    if not math.isfinite(loss):
        return Verdict(
            "no_information",
            "The loss is not finite; nothing can be concluded.",
            notes=notes,
            numbers=numbers,
        )

    ratio = floors.target_var / floors.target_power if floors.target_power > 0 else 0.0
    numbers["target_var_ratio"] = ratio
    learned = inputs.target != "signal"
    if ratio < cfg.collapse_ratio or (learned and floors.target_var < cfg.collapse_var):
        return Verdict(
            "target_collapse",
            f"The targets barely vary across tokens (variance {floors.target_var:.3g} is "
            f"{_pct(ratio)} of their mean square {floors.target_power:.3g}): every floor is ~0, "
            "so a low loss shows "
            f"nothing learned. {other_targets(inputs.target)}",
            notes=notes,
            numbers=numbers,
        )

    available = inputs.available
    if available is not None:
        bound = e[available] * (1.0 - cfg.leak_tolerance)
        numbers["leak_bound"] = bound
        if loss < bound:
            return Verdict(
                "leak_suspected",
                f"The loss {loss:.4f} is below {e[available]:.4f}, the exact floor of the only "
                f"information the inputs carry ({FLOOR_LABELS[available]}, mask "
                f"{inputs.mask_ratio:.0%}): the masked content reaches the model some other way.",
                notes=notes,
                numbers=numbers,
            )
    elif inputs.context_visible and loss < u["channel_position"] * (1.0 - cfg.context_margin):
        gain = 1.0 - loss / u["channel_position"]
        return Verdict(
            "uses_context",
            f"The loss {loss:.4f} is {_pct(gain)} below the channel x position floor "
            f"{u['channel_position']:.4f} (margin {_pct(cfg.context_margin)}): the model "
            "uses the visible windows, not only where and when a window is.",
            notes=notes,
            numbers=numbers,
        )

    label, why = _rank(loss, u, diag, inputs, cfg)
    implicit = label in ("position_only", "position_and_channel") and not inputs.temporal_encoding
    if implicit:
        notes.append(
            "Predictions vary with position although the temporal encoding is off: "
            "the backbone's state tells position (it builds up from the sequence "
            "start; the reversed pass starts at the true end)."
        )
    elif not inputs.temporal_encoding and diag.position_eta2 >= cfg.eta2_used:
        notes.append(
            f"Predictions vary with position ({_pct(diag.position_eta2)} of their "
            "variance) although the temporal encoding is off (implicit position)."
        )
    reach_kind = {
        "position_only": "position",
        "channel_only": "channel",
        "position_and_channel": "channel_position",
        "no_information": "nothing",
    }[label]
    reached = loss <= u[reach_kind] * (1.0 + cfg.reach_tolerance)
    numbers["reached"] = float(reached)
    if label == "position_and_channel" or (
        inputs.spatial_encoding and u["channel_position"] < u["position"] * (1 - cfg.gain_margin)
    ):
        notes.append(_channel_gain_note(loss, u))
    if label == "no_information":
        headline = why
    else:
        headline = (
            f"{why} It {'reaches' if reached else 'has not reached'} the "
            f"{FLOOR_LABELS[reach_kind]} floor (loss {loss:.4f}, floor {u[reach_kind]:.4f})."
        )
    return Verdict(label, headline, implicit=implicit, notes=notes, numbers=numbers)


def _rank(
    loss: float, u: dict[str, float], diag: ModelDiagnostics, inputs: InputInfo, cfg: VerdictConfig
) -> tuple[str, str]:
    """(label, the sentence saying why, in plain words)."""
    m = cfg.gain_margin
    mean_floor = f"the dataset-mean floor ({u['nothing']:.4f})"
    if not loss < u["nothing"] * (1 - m):
        return "no_information", (
            f"Its loss {loss:.4f} is not clearly below {mean_floor}: nothing beyond the mean "
            "is learnt."
        )
    # At mask 1.0 only what the inputs carry can be used; with context visible, anything.
    can_pos = inputs.knows_position or inputs.context_visible
    can_chan = inputs.spatial_encoding or inputs.context_visible
    if not (can_pos or can_chan):  # a constant; below the exact floor was caught as a leak
        return "no_information", (
            "The inputs carry neither position nor channel (mask 100%, "
            "encodings off, no recurrent state), so the model can only "
            "predict a constant; its loss is not below the exact "
            "dataset-mean floor (the best constant) by more than the "
            f"{cfg.leak_tolerance:.0%} leak tolerance."
        )
    if can_pos and can_chan and loss < min(u["position"], u["channel"]) * (1 - m):
        return "position_and_channel", (
            "The model uses both position and channel: its loss is lower than knowing either "
            "alone allows."
        )
    pos_explains = can_pos and loss >= u["position"] * (1 - m)
    chan_explains = can_chan and loss >= u["channel"] * (1 - m)
    if pos_explains and chan_explains:  # either alone could: what do predictions vary with?
        pos_used = diag.position_eta2 >= cfg.eta2_used
        chan_used = diag.channel_eta2 >= cfg.eta2_used
        if pos_used and chan_used:
            return "position_and_channel", (
                "The model uses position and channel: either alone could give its loss, and "
                "its predictions vary with both."
            )
        pos_explains = pos_used or (not chan_used and diag.position_eta2 >= diag.channel_eta2)
        chan_explains = not pos_explains
    if pos_explains or (can_pos and not chan_explains):
        return "position_only", (
            f"The model uses where a window sits in the sequence, nothing else: its loss "
            f"{loss:.4f} is below {mean_floor} by about what knowing position allows, and "
            "channel adds nothing."
        )
    return "channel_only", (
        f"The model uses which channel a window comes from, nothing else: its loss {loss:.4f} "
        f"is below {mean_floor} by about what knowing the channel allows, and position adds "
        "nothing."
    )


def other_targets(used: str) -> str:
    """Advice on the target that never names the one in use."""
    options = [t for t in ("signal", "embedding_stopgrad", "ema") if t != used]
    return f"The model uses {used!r} targets; try {' or '.join(repr(t) for t in options)}."


def _data_notes(u: dict[str, float], floors: Floors, cfg: VerdictConfig) -> list[str]:
    m = cfg.gain_margin
    basis = (
        f"floors learnt on {floors.n_train_participants} training participants, scored on "
        f"{floors.n_participants or 'these'} others"
        if floors.has_transfer
        else "unbiased in-sample floors: no training split, tokens taken as independent"
    )
    notes = [f"Floors compared: {basis}."]
    # A share at or below 0 (the floor is not below the mean's: group means fit noise, or
    # do not transfer to new people) is said in words, never as a negative percentage.
    for kind in ("position", "channel", "channel_position"):
        gain = 1.0 - u[kind] / u["nothing"] if u["nothing"] > 0 else 0.0
        name, vs = (
            FLOOR_LABELS[kind],
            f"floor {u[kind]:.4f} vs the dataset mean's {u['nothing']:.4f}",
        )
        if not math.isfinite(gain):
            notes.append(
                f"In this data, what {name} is worth cannot be estimated (each group holds "
                "one token: no floor)."
            )
        elif gain >= m:
            notes.append(
                f"In this data, {name} is worth {_pct(gain)} of the target variance ({vs})."
            )
        elif gain > 0:
            notes.append(
                f"In this data, {name} is worth little: {_pct(gain)} of the target variance ({vs})."
            )
        else:
            notes.append(
                f"In this data, {name} is worth nothing ({vs}: on new data its group means "
                "would predict no better than the overall mean)."
            )
    return notes + floors.notes()


def _channel_gain_note(loss: float, u: dict[str, float]) -> str:
    gap = u["position"] - u["channel_position"]
    if gap <= 0:
        return (
            "Channel adds nothing beyond position in this data (channel x position floor "
            "is not below the position floor)."
        )
    captured = (u["position"] - loss) / gap
    return (
        f"Channel beyond position is worth {gap:.4f} here (position floor {u['position']:.4f}, "
        f"channel x position floor {u['channel_position']:.4f}); the model captured "
        f"{_pct(max(0.0, captured))} of it."
    )
