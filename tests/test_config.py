"""Settings come from the environment and .env files, afresh on every load."""

from __future__ import annotations

import pytest

from pixery_widgets import ConfigurationError, Secret, load_settings
from pixery_widgets.core.config import mask_url, normalize_url

SENTINEL = "sk-SENTINEL-config-0123456789"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://203.0.113.7:8000", "http://203.0.113.7:8000"),
        ("  http://203.0.113.7:8000/  ", "http://203.0.113.7:8000"),
        ("http://localhost:8000///", "http://localhost:8000"),
        ("https://host.example/proxy/8000/", "https://host.example/proxy/8000"),
        ("HTTP://Host:8000", "http://Host:8000"),
    ],
)
def test_url_is_normalised_and_a_path_prefix_kept(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("203.0.113.7:8000", "http:// or https://"),
        ("ftp://203.0.113.7", "http:// or https://"),
        ("http://", "no host"),
        ("http://:8000", "no host"),
        ("http://host:notaport", "invalid port"),
        ("   ", "empty"),
    ],
)
def test_bad_urls_are_refused_with_a_sentence(raw, words):
    with pytest.raises(ConfigurationError, match=words):
        normalize_url(raw)


def test_credentials_in_a_url_are_masked_in_errors_and_display():
    with pytest.raises(ConfigurationError) as info:
        normalize_url("ftp://user:hunter2@host")
    assert "hunter2" not in str(info.value)
    assert mask_url("http://user:hunter2@host:8000/x") == "http://***@host:8000/x"
    settings = load_settings({"SELFHOSTED_API_URL": "http://u:hunter2@h:8000"}, cwd=None)
    assert settings.display_url == "http://***@h:8000"


def test_env_files_are_read_home_then_cwd_and_the_real_environment_wins(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    (home / ".env").write_text("SELFHOSTED_API_URL=http://home:8000\nFAL_KEY=from-home\n")
    (cwd / ".env").write_text("SELFHOSTED_API_URL=http://cwd:8000/\n")
    settings = load_settings({}, cwd=cwd, home=home)
    assert settings.selfhosted_url == "http://cwd:8000"
    assert settings.key_for("fal") == Secret("from-home")
    env_wins = load_settings({"SELFHOSTED_API_URL": "http://env:1"}, cwd=cwd, home=home)
    assert env_wins.selfhosted_url == "http://env:1"


def test_settings_are_read_afresh_each_time(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SELFHOSTED_API_URL=http://first:8000\n")
    assert load_settings({}, cwd=tmp_path, home=tmp_path).selfhosted_url == "http://first:8000"
    env_file.write_text("SELFHOSTED_API_URL=http://second:8000\n")
    assert load_settings({}, cwd=tmp_path, home=tmp_path).selfhosted_url == "http://second:8000"


@pytest.mark.parametrize(
    ("env", "provider"),
    [
        ({"GEMINI_API_KEY": SENTINEL}, "gemini"),
        ({"GEMINI_API_SECRET_KEY": SENTINEL}, "gemini"),
        ({"OPENAI_API_KEY": SENTINEL}, "openai"),
        ({"OPENAI_API_SECRET_KEY": SENTINEL}, "openai"),
        ({"FAL_KEY": SENTINEL}, "fal"),
    ],
)
def test_each_key_name_is_found_and_never_shown(env, provider, tmp_path):
    settings = load_settings(env, cwd=tmp_path, home=tmp_path)
    assert settings.has_key(provider)
    assert settings.key_for(provider).reveal() == SENTINEL
    for text in (
        repr(settings),
        str(settings),
        f"{settings.key_for(provider)}",
        repr(settings.keys),
    ):
        assert SENTINEL not in text
    assert settings.redact(f"the key {SENTINEL} leaked") == "the key *** leaked"


def test_a_malformed_url_is_noted_not_raised_unless_strict(tmp_path):
    settings = load_settings({"SELFHOSTED_API_URL": "localhost:8000"}, cwd=tmp_path, home=tmp_path)
    assert settings.selfhosted_url is None
    assert "http://" in (settings.url_error or "")
    with pytest.raises(ConfigurationError):
        load_settings(
            {"SELFHOSTED_API_URL": "localhost:8000"}, cwd=tmp_path, home=tmp_path, strict=True
        )


def test_archive_dir_defaults_and_follows_the_environment(tmp_path):
    assert str(load_settings({}, cwd=tmp_path, home=tmp_path).archive_dir) == "pixery-out"
    custom = load_settings({"PIXERY_ARCHIVE_DIR": str(tmp_path / "a")}, cwd=tmp_path, home=tmp_path)
    assert custom.archive_dir == tmp_path / "a"


def test_a_secret_cannot_be_pickled_into_a_file():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Secret(SENTINEL))
