"""Code of Connection settings: ``compliance.toml`` in central's home, with safe defaults."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from gcx.errors import ConfigError

SETTINGS_FILE = "compliance.toml"
ACCOUNT_TOKEN_PREFIX = "gcxc"  # noqa: S105 - a prefix, not a secret
MAX_TEXT = 20_000


@dataclass(frozen=True)
class ComplianceSettings:
    """Network-wide Code of Connection settings (``compliance.toml`` in central's home)."""

    certificate_validity_days: float = 365.0
    grace_period_days: float = 30.0
    max_extension_days: int = 90
    evidence_max_bytes: int = 10 * 1024 * 1024
    evidence_validity_days: int = 365

    @classmethod
    def load(cls, home: Path) -> ComplianceSettings:
        path = home / SETTINGS_FILE
        if not path.exists():
            return cls()
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}.") from exc
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"Unknown settings in {path}: {', '.join(sorted(unknown))}.")
        try:
            settings = cls(**raw)
        except TypeError as exc:
            raise ConfigError(f"{path} holds a setting of the wrong kind: {exc}.") from exc
        if settings.grace_period_days < 0 or settings.certificate_validity_days <= 0:
            raise ConfigError(f"{path}: validity must be positive and grace not negative.")
        return settings

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(days=self.grace_period_days)
