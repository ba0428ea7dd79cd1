"""Typed settings: round trips, unknown settings and the key passphrase, failing closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcx.config import (
    CENTRAL_FILE,
    GATEWAY_FILE,
    CentralConfig,
    GatewayConfig,
    read_passphrase,
    write_secret_file,
)
from gcx.errors import ConfigError

PASSPHRASE = "a-long-enough-passphrase-for-tests"


@pytest.fixture(autouse=True)
def _no_env_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCX_KEY_PASSPHRASE", raising=False)


def test_central_config_round_trips(tmp_path: Path) -> None:
    """A saved CentralConfig loads back equal, including lists and awkward strings."""
    config = CentralConfig(
        home=tmp_path,
        network="test-net",
        listen_port=9000,
        database_url='postgresql://u:p"a\\ss@db/gcx',
        directory_validity_seconds=900,
        server_hosts=["127.0.0.1", "central.example"],
    )
    config.save()
    assert CentralConfig.load(tmp_path) == config


def test_gateway_config_round_trips(tmp_path: Path) -> None:
    """A saved GatewayConfig loads back equal."""
    config = GatewayConfig(
        home=tmp_path,
        name="alpha",
        organisations=["E09000030", "DWP"],
        central_url="https://127.0.0.1:8443",
        peer_port=9444,
        directory_poll_seconds=2.5,
        network="test-net",
        key_passphrase_file="keys/pp",
    )
    config.save()
    assert GatewayConfig.load(tmp_path) == config


@pytest.mark.parametrize("cls", [CentralConfig, GatewayConfig])
def test_no_passphrase_file_round_trips(tmp_path: Path, cls: type) -> None:
    """key_passphrase_file=None (passphrase from the environment only) survives save and load."""
    values = (
        {"network": "n"}
        if cls is CentralConfig
        else {"name": "alpha", "organisations": ["DWP"], "central_url": "https://c"}
    )
    config = cls(home=tmp_path, key_passphrase_file=None, **values)
    config.save()
    assert cls.load(tmp_path).key_passphrase_file is None


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    """A setting the code does not know is a ConfigError, not silently ignored."""
    CentralConfig(home=tmp_path, network="n").save()
    with (tmp_path / CENTRAL_FILE).open("a") as handle:
        handle.write("debug_skip_checks = true\n")
    with pytest.raises(ConfigError, match="debug_skip_checks"):
        CentralConfig.load(tmp_path)


def test_unknown_gateway_setting_is_refused(tmp_path: Path) -> None:
    """Unknown settings are refused for gateways too."""
    (tmp_path / GATEWAY_FILE).write_text(
        'name = "alpha"\norganisations = ["DWP"]\ncentral_url = "https://c"\ncolour = "red"\n'
    )
    with pytest.raises(ConfigError, match="colour"):
        GatewayConfig.load(tmp_path)


def test_missing_required_setting_is_refused(tmp_path: Path) -> None:
    """A configuration without a required setting is a ConfigError."""
    (tmp_path / GATEWAY_FILE).write_text('name = "alpha"\n')
    with pytest.raises(ConfigError):
        GatewayConfig.load(tmp_path)


def test_missing_or_invalid_file_is_refused(tmp_path: Path) -> None:
    """No configuration file, or one that is not TOML, is a ConfigError."""
    with pytest.raises(ConfigError):
        CentralConfig.load(tmp_path)
    (tmp_path / CENTRAL_FILE).write_text("network = \n")
    with pytest.raises(ConfigError):
        CentralConfig.load(tmp_path)


def test_directory_validity_must_exceed_republish_interval(tmp_path: Path) -> None:
    """A directory that expires before the next publication is refused at load."""
    CentralConfig(
        home=tmp_path, network="n", directory_validity_seconds=60, republish_interval_seconds=60
    ).save()
    with pytest.raises(ConfigError):
        CentralConfig.load(tmp_path)


def test_directories_must_be_kept_at_least_a_day(tmp_path: Path) -> None:
    CentralConfig(home=tmp_path, network="n", directory_keep_days=0).save()
    with pytest.raises(ConfigError, match="directory_keep_days"):
        CentralConfig.load(tmp_path)


def test_the_sign_in_limit_per_address_is_not_below_the_account_lockout(tmp_path: Path) -> None:
    CentralConfig(home=tmp_path, network="n", web_sign_in_failures_per_address=4).save()
    with pytest.raises(ConfigError, match="web_sign_in_failures_per_address"):
        CentralConfig.load(tmp_path)


def test_a_gateway_writes_gcx_transfer_2_unless_told_the_older_format(tmp_path: Path) -> None:
    """gcx.transfer/2 by default; /1 may be chosen for older peers; anything else is refused."""

    def saved(**chosen: str) -> None:
        GatewayConfig(
            home=tmp_path, name="gw", organisations=["DWP"], central_url="https://c", **chosen
        ).save()

    saved()
    assert GatewayConfig.load(tmp_path).transfer_format == "gcx.transfer/2"
    saved(transfer_format="gcx.transfer/1")
    assert GatewayConfig.load(tmp_path).transfer_format == "gcx.transfer/1"
    saved(transfer_format="gcx.transfer/3")
    with pytest.raises(ConfigError, match="transfer_format"):
        GatewayConfig.load(tmp_path)


def test_passphrase_read_from_private_file(tmp_path: Path) -> None:
    """A 0600 passphrase file is read, without its trailing newline."""
    write_secret_file(tmp_path / "secrets" / "key-passphrase", PASSPHRASE)
    config = CentralConfig(home=tmp_path, network="n")
    assert config.passphrase() == PASSPHRASE.encode()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_passphrase_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A passphrase file that group or others can read is a ConfigError."""
    path = tmp_path / "secrets" / "key-passphrase"
    write_secret_file(path, PASSPHRASE)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_passphrase(tmp_path, "secrets/key-passphrase")


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    """A passphrase shorter than 16 characters is a ConfigError."""
    write_secret_file(tmp_path / "pp", "fifteen-chars!!")
    with pytest.raises(ConfigError, match="16"):
        read_passphrase(tmp_path, "pp")


def test_missing_passphrase_file_is_refused(tmp_path: Path) -> None:
    """A configured passphrase file that does not exist is a ConfigError."""
    with pytest.raises(ConfigError):
        read_passphrase(tmp_path, "secrets/key-passphrase")


def test_no_passphrase_at_all_is_refused(tmp_path: Path) -> None:
    """With neither the environment variable nor a file configured, there is no default."""
    with pytest.raises(ConfigError, match="GCX_KEY_PASSPHRASE"):
        GatewayConfig(
            home=tmp_path,
            name="a",
            organisations=["DWP"],
            central_url="https://c",
            key_passphrase_file=None,
        ).passphrase()


def test_environment_passphrase_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GCX_KEY_PASSPHRASE wins over the configured file, even an unsafe or missing one."""
    path = tmp_path / "secrets" / "key-passphrase"
    write_secret_file(path, PASSPHRASE)
    path.chmod(0o644)
    monkeypatch.setenv("GCX_KEY_PASSPHRASE", "from-the-environment")
    assert CentralConfig(home=tmp_path, network="n").passphrase() == b"from-the-environment"
    assert read_passphrase(tmp_path, "does-not-exist") == b"from-the-environment"
    assert read_passphrase(tmp_path, None) == b"from-the-environment"


def test_write_secret_file_is_private_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """Secret files are created 0600 and never overwrite an existing one."""
    path = tmp_path / "s" / "secret"
    write_secret_file(path, "value")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == "value\n"
    with pytest.raises(FileExistsError):
        write_secret_file(path, "other")


def test_derived_urls(tmp_path: Path) -> None:
    """URLs and the default SQLite database are derived from the settings and the home."""
    central = CentralConfig(home=tmp_path, network="n", listen_host="c.example", listen_port=1)
    assert central.url == "https://c.example:1"
    assert central.db_url == f"sqlite:///{tmp_path / 'central.db'}"
    gateway = GatewayConfig(
        home=tmp_path,
        name="a",
        organisations=["DWP"],
        central_url="https://c",
        peer_host="g",
        peer_port=2,
        database_url="postgresql://x/y",
    )
    assert gateway.peer_address == "g:2"
    assert gateway.db_url == "postgresql://x/y"
