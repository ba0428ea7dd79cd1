"""Typed settings for central and gateways, read from a TOML file in their home.

Settings fail closed: there is no default key passphrase, and a passphrase
file readable by others is refused. Paths in the file are relative to the
home directory so a home can be moved as one folder.
"""

from __future__ import annotations

import os
import stat
import tomllib
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gcx.errors import ConfigError
from gcx.private_files import open_private, private_dir, write_private
from gcx.protocol.transfer import FORMAT_2 as TRANSFER_FORMAT_2
from gcx.protocol.transfer import transfer_format

CENTRAL_FILE = "central.toml"
GATEWAY_FILE = "gateway.toml"


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"No configuration at {path}; run the init command first.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from exc


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _write(path: Path, values: dict[str, Any]) -> None:
    # TOML has no null: an unset optional setting is written as "" and read back as None.
    lines = [
        f"{key} = {_toml_value('' if value is None else value)}" for key, value in values.items()
    ]
    write_private(path, ("\n".join(lines) + "\n").encode())


def _build(cls: type[Any], home: Path, raw: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)} - {"home"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"Unknown settings in {home}: {', '.join(sorted(unknown))}.")
    raw = {k: (None if v == "" and k.endswith("_file") else v) for k, v in raw.items()}
    try:
        return cls(home=home, **raw)
    except TypeError as exc:
        raise ConfigError(f"The configuration in {home} is missing a setting: {exc}.") from exc


def read_secret_file(path: Path, what: str) -> str:
    """A secret kept in a file only its owner may read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"The {what} file {path} does not exist.") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"The {what} file {path} is readable by other users; chmod 600 it.")
    value = path.read_text().strip()
    if not value:
        raise ConfigError(f"The {what} file {path} is empty.")
    return value


def read_passphrase(home: Path, passphrase_file: str | None) -> bytes:
    """The key passphrase: ``GCX_KEY_PASSPHRASE`` if set, else the configured file."""
    from_env = os.environ.get("GCX_KEY_PASSPHRASE")
    if from_env:
        return from_env.encode()
    if not passphrase_file:
        raise ConfigError(
            "No key passphrase: set GCX_KEY_PASSPHRASE or key_passphrase_file in the config."
        )
    path = home / passphrase_file
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"The key passphrase file {path} does not exist.") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"The key passphrase file {path} is readable by other users; chmod 600 it."
        )
    value = path.read_bytes().strip()
    if len(value) < 16:
        raise ConfigError(f"The key passphrase in {path} is shorter than 16 characters.")
    return value


@dataclass(frozen=True)
class CentralConfig:
    home: Path
    network: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 8443
    database_url: str = ""
    key_passphrase_file: str | None = "secrets/key-passphrase"  # noqa: S105 - a path
    directory_validity_seconds: int = 600
    republish_interval_seconds: int = 60
    # Published directories are kept this many days after they expire, then
    # deleted (the newest always stays); the audit log keeps each one's hash.
    directory_keep_days: int = 30
    certificate_validity_days: int = 365
    server_hosts: list[str] = field(default_factory=lambda: ["127.0.0.1", "localhost"])
    # Enrolment approval needs a current certificate of compliance (or a granted
    # extension) for every organisation the gateway hosts, unless the operator
    # overrides with a recorded reason. False turns the Code of Connection gate
    # off for networks (and tests) that do not run it; it fails closed by default.
    require_compliance: bool = True
    # The browser interface (gcx.web); port 0 turns it off. It speaks plain HTTP,
    # so it may only listen on a loopback address, behind a TLS-terminating proxy
    # for anyone else (check_web_listener refuses anything else).
    web_host: str = "127.0.0.1"
    web_port: int = 0
    # The address people's browsers use, at the proxy ("https://gcx.example.gov.uk");
    # empty for a browser on this machine. See check_web_public_url.
    web_public_url: str = ""
    # Wrong passwords allowed from one client address in five minutes, across
    # accounts, before it is refused for a while (gcx.web.throttle).
    web_sign_in_failures_per_address: int = 20
    # Who people call when they cannot sign in or something is wrong, shown on
    # every page and on the sign-in help page (gcx.web.site.ServiceDesk). Empty
    # fields are left out; with none, pages say to contact the IT service desk.
    service_desk_name: str = ""
    service_desk_phone: str = ""
    service_desk_email: str = ""
    service_desk_hours: str = ""

    @classmethod
    def load(cls, home: Path) -> CentralConfig:
        config: CentralConfig = _build(cls, home, _read(home / CENTRAL_FILE))
        if config.directory_validity_seconds <= config.republish_interval_seconds:
            raise ConfigError(
                "directory_validity_seconds must be longer than republish_interval_seconds, "
                "or gateways would hold expired directories between publications."
            )
        if config.directory_keep_days < 1:
            raise ConfigError("directory_keep_days must be 1 or more.")
        check_web_sign_in_limit(config.web_sign_in_failures_per_address)
        return config

    def save(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "home"}
        _write(self.home / CENTRAL_FILE, values)

    @property
    def url(self) -> str:
        return f"https://{self.listen_host}:{self.listen_port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'central.db'}"

    def passphrase(self) -> bytes:
        return read_passphrase(self.home, self.key_passphrase_file)


@dataclass(frozen=True)
class GatewayConfig:
    home: Path
    name: str
    organisations: list[str]
    central_url: str
    peer_host: str = "127.0.0.1"
    peer_port: int = 9443
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    database_url: str = ""
    key_passphrase_file: str | None = "secrets/key-passphrase"  # noqa: S105 - a path
    directory_poll_seconds: float = 30.0
    checkpoint_interval_seconds: float = 60.0
    network: str = ""
    # Bulk file transfer. Quotas are defaults per hosted organisation; the
    # transfer_policies table overrides them per organisation (gcx.gateway.transfers.policy).
    transfer_max_file_bytes: int = 100 * 1024**3
    transfer_max_batch_bytes: int = 200 * 1024**3
    transfer_storage_bytes: int = 1024**4
    transfer_retention_days: float = 30.0
    transfer_min_free_bytes: int = 256 * 1024**2
    # 16 bytes (the AEAD tag) short of 2 MiB, so each sealed chunk fills a 2 MiB slot
    # exactly and chunk files can be written around the page cache (gcx.store.direct_io).
    # 2 MiB, not 1: half the chunk requests, 20 % less CPU per GiB on each gateway; 4 MiB
    # gained little more and took the sender's peak memory near 256 MiB (bench/README.md).
    transfer_segment_bytes: int = 2 * 1024**2 - 16
    transfer_parallel_chunks: int = 4
    # The format new transfers are written in. gcx.transfer/2 (BLAKE3 chunk digests) is
    # refused by gateways older than it: write gcx.transfer/1 until every peer has moved.
    transfer_format: str = TRANSFER_FORMAT_2
    # Bytes a peer gateway may push here ahead of their manifests (0: none); see
    # gcx.gateway.transfers.early_chunks.
    transfer_early_bytes: int = 8 * 1024**3
    transfer_housekeeping_seconds: float = 300.0
    # The browser interface (gcx.web); port 0 turns it off. Plain HTTP, so loopback
    # only, behind a TLS-terminating proxy for anyone else (see check_web_listener).
    web_host: str = "127.0.0.1"
    web_port: int = 0
    # The address people's browsers use, at the proxy ("https://gcx.example.gov.uk");
    # empty for a browser on this machine. See check_web_public_url.
    web_public_url: str = ""
    # Wrong passwords allowed from one client address in five minutes, across
    # accounts, before it is refused for a while (gcx.web.throttle).
    web_sign_in_failures_per_address: int = 20
    # Signing in through the organisation's own identity provider (OpenID Connect),
    # off while oidc_issuer is empty. The client secret lives in a 0600 file.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret_file: str | None = None
    oidc_username_claim: str = "preferred_username"
    oidc_provider_name: str = "your organisation"
    # Who people call when they cannot sign in or something is wrong, shown on
    # every page and on the sign-in help page (gcx.web.site.ServiceDesk). Empty
    # fields are left out; with none, pages say to contact the IT service desk.
    service_desk_name: str = ""
    service_desk_phone: str = ""
    service_desk_email: str = ""
    service_desk_hours: str = ""
    # Email alerts to people's ordinary addresses (gcx.gateway.notifications), sent
    # through the organisation's own mail relay; off while smtp_host is empty. The
    # relay's password, if it needs one, lives in a 0600 file; smtp_ca_file names
    # the certificate authority to trust for it (the system's when empty).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password_file: str | None = None
    smtp_ca_file: str | None = None
    smtp_from: str = ""

    @classmethod
    def load(cls, home: Path) -> GatewayConfig:
        config: GatewayConfig = _build(cls, home, _read(home / GATEWAY_FILE))
        check_web_sign_in_limit(config.web_sign_in_failures_per_address)
        try:
            transfer_format(config.transfer_format)
        except ValueError as exc:
            raise ConfigError(f"transfer_format: {exc}.") from None
        return config

    def save(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "home"}
        _write(self.home / GATEWAY_FILE, values)

    @property
    def peer_address(self) -> str:
        return f"{self.peer_host}:{self.peer_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'gateway.db'}"

    def passphrase(self) -> bytes:
        return read_passphrase(self.home, self.key_passphrase_file)

    def oidc_client_secret(self) -> str:
        if not self.oidc_client_secret_file:
            raise ConfigError("oidc_issuer is set but oidc_client_secret_file is not.")
        return read_secret_file(self.home / self.oidc_client_secret_file, "OpenID Connect secret")


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def check_web_listener(host: str) -> None:
    """Refuse to serve the web pages in plain HTTP beyond this machine.

    Session cookies and passwords must never cross a network in the clear;
    the pages are meant to sit behind the organisation's own TLS proxy.
    """
    if host not in _LOOPBACK:
        raise ConfigError(
            f"web_host {host!r} is not a loopback address; the web interface speaks plain "
            "HTTP and must sit behind a TLS-terminating proxy on this machine."
        )


def check_web_sign_in_limit(limit: int) -> None:
    # Below the per-account lockout (5) one person's typos would block their office.
    if limit < 5:
        raise ConfigError("web_sign_in_failures_per_address must be 5 or more.")


def check_web_public_url(url: str) -> str | None:
    """The web pages' public origin (scheme, host, port), or None to use the request's.

    Behind a TLS-terminating proxy the pages see plain HTTP on loopback, but a
    browser checks passkeys against, and an identity provider sends people back
    to, the address it used. Configuring that address is safer than believing
    forwarded headers, which anyone reaching the listener could set.
    """
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"web_public_url {url!r} is not an http or https address.")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError(
            f"web_public_url {url!r} is plain HTTP; people's browsers must reach the web "
            "pages over HTTPS."
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(
            f"web_public_url {url!r} must be only a scheme, host and port; the pages are "
            "served from the root of that address."
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"web_public_url {url!r} has a port that is not a number.") from exc
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # IPv6
    # As browsers send Origin: without the scheme's default port.
    if port is None or port == {"https": 443, "http": 80}[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def write_secret_file(path: Path, value: str) -> None:
    """Write a secret with mode 0600 from the moment it exists, in a folder of mode 0700."""
    private_dir(path.parent)
    with open_private(path, "xb") as handle:
        handle.write((value + "\n").encode())
