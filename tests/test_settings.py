"""Settings: documented, validated, one clear line per bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from photobot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^(PHOTOBOT_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    fields = {f"PHOTOBOT_{name.upper()}" for name in Settings.model_fields}
    assert fields - documented == set(), "undocumented settings"
    assert documented - fields == set(), "documented settings that do not exist"


def test_defaults_give_the_embedded_setup(tmp_path: Path) -> None:
    settings = load_settings(env_file=None, var_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'photobot.db'}"
    assert settings.resolved_storage_url.startswith("file://")
    assert settings.resolved_provider == "simulator"
    assert settings.job_timeout_s == 300 and settings.reconcile_after_s == 45
    assert settings.kie_result_hosts == ["tempfile.aiquickdraw.com", "tempfile.redpandaai.co", "file.kie.ai"]


def test_csv_lists_and_kie_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOBOT_KIE_API_KEYS", "key-one-1234, key-two-5678")
    monkeypatch.setenv("PHOTOBOT_KIE_RESULT_HOSTS", "a.example,b.example:8443")
    settings = load_settings(env_file=None)
    assert [k.get_secret_value() for k in settings.kie_api_keys] == ["key-one-1234", "key-two-5678"]
    assert settings.resolved_provider == "kie"
    assert settings.kie_result_hosts == ["a.example", "b.example:8443"]
    assert "key-one" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PHOTOBOT_PORT", "eighty", "PHOTOBOT_PORT"),
        ("PHOTOBOT_PROVIDER", "openai", "PHOTOBOT_PROVIDER"),
        ("PHOTOBOT_STORAGE_URL", "ftp://x", "PHOTOBOT_STORAGE_URL: must start with file:// or s3://"),
        ("PHOTOBOT_DATABASE_URL", "mysql://x", "PHOTOBOT_DATABASE_URL"),
        ("PHOTOBOT_PUBLIC_BASE_URL", "not a url", "PHOTOBOT_PUBLIC_BASE_URL: must be an http(s) URL"),
        ("PHOTOBOT_JOB_TIMEOUT_S", "1", "PHOTOBOT_JOB_TIMEOUT_S"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_webhook_retry_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(env_file=None).webhook_retry_schedule == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    monkeypatch.setenv("PHOTOBOT_WEBHOOK_RETRY_SCHEDULE", "0, 0.2,0.2")
    assert load_settings(env_file=None).webhook_retry_schedule == [0.0, 0.2, 0.2]
    monkeypatch.setenv("PHOTOBOT_WEBHOOK_RETRY_SCHEDULE", "")  # empty, like every variable: the default
    assert load_settings(env_file=None).webhook_retry_schedule == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    for bad, message in (("5,10", "the first delay must be 0"), ("0,x", "numbers of seconds"), (" , ", "1 to 50"),
                         ("0,-1", "between 0 and 604800"), ("0,nan", "between 0 and 604800"),
                         (",".join(["0"] * 51), "1 to 50")):  # fmt: skip
        monkeypatch.setenv("PHOTOBOT_WEBHOOK_RETRY_SCHEDULE", bad)
        with pytest.raises(SettingsError) as info:
            load_settings(env_file=None)
        assert str(info.value).startswith("PHOTOBOT_WEBHOOK_RETRY_SCHEDULE: ") and message in str(info.value), bad


def test_production_requires_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOBOT_ENV", "production")
    with pytest.raises(SettingsError, match="PHOTOBOT_SECRET_KEY is required"):
        load_settings(env_file=None)


def test_dev_secret_is_generated_once_and_persisted(tmp_path: Path) -> None:
    first = load_settings(env_file=None, var_dir=tmp_path).secret_keys()
    second = load_settings(env_file=None, var_dir=tmp_path).secret_keys()
    assert first == second and len(first[0]) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_env_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PHOTOBOT_PORT=9123\nPHOTOBOT_JOB_TIMEOUT_S=600\n")
    settings = load_settings(env_file=str(env))
    assert settings.port == 9123 and settings.job_timeout_s == 600


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PHOTOBOT_PORT": "8765"}, "http://127.0.0.1:8765"),
        ({"PHOTOBOT_HOST": "0.0.0.0", "PHOTOBOT_PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"PHOTOBOT_HOST": "::1", "PHOTOBOT_PORT": "9001"}, "http://[::1]:9001"),
        ({"PHOTOBOT_HOST": "booth.local"}, "http://booth.local:8000"),
        (
            {"PHOTOBOT_PORT": "8765", "PHOTOBOT_PUBLIC_BASE_URL": "https://booth.example.com/"},
            "https://booth.example.com",
        ),
        ({"PHOTOBOT_PORT": "8765", "PHOTOBOT_PUBLIC_BASE_URL": ""}, "http://127.0.0.1:8765"),
    ],
)
def test_the_public_address_follows_the_listener_unless_set(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings(env_file=None).public_base_url == expected


def test_an_explicit_public_base_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOBOT_PORT", "8765")
    monkeypatch.setenv("PHOTOBOT_PUBLIC_BASE_URL", "https://booth.example.com/")
    settings = load_settings(env_file=None)
    assert settings.public_base_url == "https://booth.example.com"
    assert settings.public_base_url_source == "PHOTOBOT_PUBLIC_BASE_URL"


def test_env_example_copied_to_env_gives_the_defaults(tmp_path: Path) -> None:
    """`.env.example` says "copy to .env": as shipped (empty values included) it must load, and give the defaults."""
    loaded = load_settings(env_file=str(ROOT / ".env.example"), var_dir=tmp_path)
    defaults = load_settings(env_file=None, var_dir=tmp_path)
    assert loaded.model_dump() == defaults.model_dump()
