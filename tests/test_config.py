from __future__ import annotations

from pathlib import Path

import pytest

from raven.config import ConfigError, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_loopback_and_documented_ports() -> None:
    config = load_config(None, environ={})
    assert config.server.port == 50051
    assert config.monitoring.metrics_port == 9090
    assert config.monitoring.health_check_port == 9091
    assert config.exchanges.binance_futures.ws_url == "ws://127.0.0.1:8800"


@pytest.mark.parametrize("name", ["example.toml", "development.toml", "production.toml"])
def test_shipped_config_files_load(name: str) -> None:
    config = load_config(ROOT / "config" / name, environ={})
    assert config.exchanges.binance_futures.symbols


def test_example_config_lists_every_default() -> None:
    assert load_config(ROOT / "config" / "example.toml", environ={}) == load_config(
        None, environ={}
    )


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "raven.toml"
    path.write_text("[server]\nprot = 50051\n")
    with pytest.raises(ConfigError, match=r"unknown key 'server\.prot'"):
        load_config(path, environ={})


def test_unknown_section_is_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'exchanges\.binance_futurs'"):
        config_from_dict({"exchanges": {"binance_futurs": {}}})


@pytest.mark.parametrize(
    ("value", "message"),
    [(70000, r"server\.port: Expected `int` <= 65535"), ("50051", r"server\.port: Expected `int`")],
)
def test_bad_port_is_named(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"server": {"port": value}})


def test_bad_url_is_named() -> None:
    with pytest.raises(ConfigError, match=r"exchanges\.binance_futures: 'x' must start with ws"):
        config_from_dict({"exchanges": {"binance_futures": {"ws_url": "x"}}})


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "raven.toml"
    path.write_text('[server]\nport = 1\n[exchanges.binance_futures]\nsymbols = ["A"]\n')
    env = {
        "RAVEN__SERVER__PORT": "50052",
        "RAVEN__EXCHANGES__BINANCE_FUTURES__SYMBOLS": '["BTCUSDT", "SOLUSDT"]',
        "RAVEN__SERVER__HOST": "::1",
        "UNRELATED": "x",
    }
    config = load_config(path, environ=env)
    assert config.server.port == 50052
    assert config.server.host == "::1"
    assert config.exchanges.binance_futures.symbols == ("BTCUSDT", "SOLUSDT")


def test_misspelt_environment_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"RAVEN__SERVER__PROT.*unknown key 'server\.prot'"):
        load_config(None, environ={"RAVEN__SERVER__PROT": "1"})


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "raven.toml"
    path.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})


def test_config_is_frozen() -> None:
    config = load_config(None, environ={})
    with pytest.raises(AttributeError):
        config.server.port = 1  # type: ignore[misc]
