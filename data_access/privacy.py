"""Display masks for personal data (GB/T 35273 §7.2): applied in data_access, before anything
reaches a page or a file, unless the caller is allowed to see the clear values."""

from __future__ import annotations

import pandas as pd


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    name = str(name)
    return name[0] + "**"  # fixed width: the length of a name is not shown either


def mask_id(number: str | None) -> str | None:
    """130102********123X: the first 6 and the last 4 characters."""
    if not number:
        return number
    s = str(number)
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


def mask_phone(phone: str | None) -> str | None:
    """138****5678 for a mobile number; otherwise all but the last 4 characters hidden."""
    if not phone:
        return phone
    s = str(phone)
    if len(s) == 11 and s.isdigit():
        return s[:3] + "****" + s[-4:]
    if len(s) <= 4:
        return "*" * len(s)
    return "*" * (len(s) - 4) + s[-4:]


MASKS = {"name": mask_name, "id": mask_id, "phone": mask_phone}


def mask_frame(df: pd.DataFrame, columns: dict[str, str], unmasked: bool = False) -> pd.DataFrame:
    """columns: column -> kind ('name' | 'id' | 'phone')."""
    if unmasked or df.empty:
        return df
    df = df.copy()
    for col, kind in columns.items():
        if col in df.columns:
            df[col] = df[col].map(MASKS[kind])
    return df
