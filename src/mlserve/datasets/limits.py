"""What an uploaded dataset may hold: rows, columns, decoded bytes."""

from __future__ import annotations

from dataclasses import dataclass

from mlserve.errors import ValidationFailed
from mlserve.settings import Settings


@dataclass(frozen=True, kw_only=True)
class UploadLimits:
    """What an uploaded dataset may hold.

    Attributes
    ----------
    max_columns : int
        Most columns (``max_dataset_columns``).
    max_rows : int
        Most data rows (``max_dataset_rows``).
    max_uncompressed_bytes : int
        Most bytes of decoded Parquet data (``max_dataset_uncompressed_bytes``),
        by the footer and by the batches read.
    """

    max_columns: int
    max_rows: int = Settings.model_fields["max_dataset_rows"].default
    max_uncompressed_bytes: int = Settings.model_fields["max_dataset_uncompressed_bytes"].default

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        """The limits ``settings`` configure."""
        return cls(
            max_columns=settings.max_dataset_columns,
            max_rows=settings.max_dataset_rows,
            max_uncompressed_bytes=settings.max_dataset_uncompressed_bytes,
        )


def too_many_rows(limit: int) -> ValidationFailed:
    """The error for more than ``limit`` data rows."""
    return ValidationFailed(
        f"file has more than max_dataset_rows={limit} rows", {"field": "file", "limit": limit}
    )


def check_columns(columns: list[str], max_columns: int) -> None:
    """Refuse more than ``max_columns`` columns, an empty name or a duplicate name.

    Raises
    ------
    ValidationFailed
    """
    if len(columns) > max_columns:
        raise ValidationFailed(
            f"file has {len(columns)} columns, over max_dataset_columns={max_columns}",
            {"field": "file", "columns": len(columns), "limit": max_columns},
        )
    seen: set[str] = set()
    for index, name in enumerate(columns):
        if not str(name).strip():
            raise ValidationFailed(
                f"column {index + 1} has an empty name", {"field": "file", "column": index + 1}
            )
        if name in seen:
            raise ValidationFailed(
                f"duplicate column name {name!r}", {"field": "file", "column": name}
            )
        seen.add(name)
