"""Which dataset columns a training job uses as features, and why.

With ``features`` unset a job uses every column but the target, except those whose role
(:mod:`mlserve.datasets.roles`) is ``id`` or ``constant``; ``features`` given explicitly
always wins, whatever the roles. Each decision is kept with its reason on the job and
the version (:class:`mlserve.store.documents.TrainingReport`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlserve.datasets.roles import LEFT_OUT_ROLES, role_from_summary
from mlserve.store.documents import ColumnDecision, ColumnSummary


def choose_features(
    columns: Mapping[str, ColumnSummary],
    *,
    target: str,
    features: Sequence[str] | None,
    n_rows: int,
) -> tuple[list[str], list[ColumnDecision]]:
    """The features a job trains on, and a decision for every column but the target.

    Parameters
    ----------
    columns : mapping
        Column name -> summary (:func:`mlserve.datasets.stats.column_summary`), in the
        dataset's column order.
    target : str
    features : sequence of str or None
        The spec's explicit features (used as given), or ``None`` for the defaults.
    n_rows : int
        Rows in the dataset (roles of datasets stored before roles existed).

    Returns
    -------
    features : list of str
        In the dataset's column order (explicit features: in the order given).
    decisions : list of dict
        ``{"name", "role", "used", "reason"}`` per column but the target.
    """
    decisions: list[ColumnDecision] = []
    for name, summary in columns.items():
        if name == target:
            continue
        role, why = role_from_summary(summary, n_rows)
        if features is not None:
            used = name in features
            reason = "named in features" if used else "not named in features"
        else:
            used = role not in LEFT_OUT_ROLES
            reason = f"left out: {role} column, {why}" if not used else why
        decisions.append({"name": name, "role": role, "used": used, "reason": reason})
    if features is not None:
        return list(features), decisions
    return [d["name"] for d in decisions if d["used"]], decisions
