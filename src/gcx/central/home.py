"""Central's home directory: configuration, the root key and certificate, its TLS files.

Layout::

    central.toml           settings
    secrets/key-passphrase the key passphrase (0600), unless GCX_KEY_PASSPHRASE is set
    root.key               the network root key, encrypted PKCS#8 (0600)
    anchor.pem             the root certificate: the file every gateway pins
    tls.key, tls.pem       central's HTTPS key and certificate, issued by the root
    central.db             the SQLite database, unless database_url names PostgreSQL
    evidence/              files attached to Code of Connection statements
    compliance.toml        Code of Connection settings (optional)

Every file here is mode 0600 and every folder 0700, set by gcx.private_files
whatever the umask; ``gcx central serve`` refuses a home others can read.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from gcx import crypto
from gcx.config import CentralConfig, write_secret_file
from gcx.errors import ConfigError
from gcx.private_files import private_dir, write_private

ROOT_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class CentralKeys:
    root_key: crypto.SigningKey
    root: crypto.Certificate

    @property
    def root_key_id(self) -> str:
        return crypto.key_id(self.root_key.public)


def init_central(
    home: Path,
    network: str,
    *,
    now: dt.datetime,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8443,
    database_url: str = "",
) -> CentralConfig:
    """Create a new network: root key, anchor, TLS certificate, configuration."""
    if (home / "central.toml").exists():
        raise ConfigError(f"{home} already holds a central service; refusing to overwrite it.")
    private_dir(home)
    config = CentralConfig(
        home=home,
        network=network,
        listen_host=listen_host,
        listen_port=listen_port,
        database_url=database_url,
    )
    if not _passphrase_from_env():
        write_secret_file(home / "secrets" / "key-passphrase", secrets.token_urlsafe(32))
    passphrase = config.passphrase()
    root_key = crypto.SigningKey.generate()
    root = crypto.create_network_root(root_key, network, now, ROOT_VALIDITY)
    crypto.save_signing_key(home / "root.key", root_key, passphrase)
    write_private(home / "anchor.pem", root.pem)
    tls_key = crypto.SigningKey.generate()
    hosts = sorted({listen_host, *config.server_hosts})
    server = crypto.issue_server_certificate(
        root_key, root, f"{network} central", tls_key.public, hosts, now, ROOT_VALIDITY
    )
    crypto.save_signing_key(home / "tls.key", tls_key, passphrase)
    write_private(home / "tls.pem", server.pem)
    config = CentralConfig(
        home=home,
        network=network,
        listen_host=listen_host,
        listen_port=listen_port,
        database_url=database_url,
        server_hosts=hosts,
        key_passphrase_file=None if _passphrase_from_env() else "secrets/key-passphrase",
    )
    config.save()
    return config


def _passphrase_from_env() -> bool:
    import os

    return bool(os.environ.get("GCX_KEY_PASSPHRASE"))


def load_keys(config: CentralConfig) -> CentralKeys:
    passphrase = config.passphrase()
    root_key = crypto.load_signing_key(config.home / "root.key", passphrase)
    root = crypto.Certificate.from_pem((config.home / "anchor.pem").read_bytes())
    return CentralKeys(root_key, root)
