"""SELFHOSTED_API_URL with several servers, and SELFHOSTED_COST_PER_HOUR."""

from __future__ import annotations

import pytest

from pixery_widgets import ConfigurationError, Settings, load_settings
from pixery_widgets.core.config import normalize_urls


def load(tmp_path, **env: str) -> Settings:
    return load_settings(env, cwd=tmp_path, home=tmp_path)


@pytest.mark.parametrize(
    "raw",
    [
        "http://10.0.0.1:8000,http://10.0.0.2:8000",
        "http://10.0.0.1:8000, http://10.0.0.2:8000/",
        "http://10.0.0.1:8000 http://10.0.0.2:8000",
        "  http://10.0.0.1:8000/\n\thttp://10.0.0.2:8000  ",
        "http://10.0.0.1:8000,,http://10.0.0.2:8000,",
        "http://10.0.0.1:8000, http://10.0.0.2:8000, http://10.0.0.1:8000/",
    ],
)
def test_several_urls_split_on_commas_or_whitespace_normalised_and_deduplicated(tmp_path, raw):
    settings = load(tmp_path, SELFHOSTED_API_URL=raw)
    assert settings.selfhosted_urls == ("http://10.0.0.1:8000", "http://10.0.0.2:8000")
    assert settings.selfhosted_url == "http://10.0.0.1:8000"  # the first, as before
    assert settings.url_error is None


@pytest.mark.parametrize(
    ("raw", "urls"),
    [
        ("http://a:1/?token=x,y", ("http://a:1?token=x,y",)),
        ("http://a:1?token=x,y,http://b:2", ("http://a:1?token=x,y", "http://b:2")),
        (
            "http://a:1?token=x,y, http://b:2?token=z",
            ("http://a:1?token=x,y", "http://b:2?token=z"),
        ),
        ("http://a:1?k=1,2 http://b:2", ("http://a:1?k=1,2", "http://b:2")),
    ],
)
def test_a_comma_inside_a_query_stays_in_its_address(raw, urls):
    assert normalize_urls(raw) == urls


def test_one_url_behaves_exactly_as_before(tmp_path):
    settings = load(tmp_path, SELFHOSTED_API_URL=" http://203.0.113.7:8000/ ")
    assert settings.selfhosted_url == "http://203.0.113.7:8000"
    assert settings.selfhosted_urls == ("http://203.0.113.7:8000",)
    assert repr(settings) == (
        "Settings(selfhosted_url='http://203.0.113.7:8000', keys={}, "
        f"archive_dir={settings.archive_dir!r}, url_error=None)"
    )
    assert load(tmp_path).selfhosted_urls == ()


@pytest.mark.parametrize(
    ("raw", "place", "shown", "words"),
    [
        ("http://a:8000, ftp://b:8000", "address 2", "'ftp://b:8000'", "http:// or https://"),
        ("203.0.113.7:8000 http://b:1", "address 1", "'203.0.113.7:8000'", "http://"),
        ("http://a:1,http://b:notaport", "address 2", "'http://b:notaport'", "invalid port"),
    ],
)
def test_a_bad_address_in_the_list_is_named_in_the_error(tmp_path, raw, place, shown, words):
    settings = load(tmp_path, SELFHOSTED_API_URL=raw)
    assert settings.selfhosted_urls == () and settings.selfhosted_url is None
    assert settings.url_error is not None
    assert place in settings.url_error and shown in settings.url_error
    assert words in settings.url_error
    with pytest.raises(ConfigurationError, match=place):
        load_settings({"SELFHOSTED_API_URL": raw}, cwd=tmp_path, home=tmp_path, strict=True)


def test_credentials_in_any_address_stay_masked(tmp_path):
    settings = load(tmp_path, SELFHOSTED_API_URL="http://u:hunter2@a:1, http://v:swordfish@b:2")
    assert "hunter2" not in repr(settings) and "swordfish" not in repr(settings)
    assert "http://***@b:2" in repr(settings)
    with pytest.raises(ConfigurationError) as info:
        normalize_urls("http://a:1, ftp://v:swordfish@b:2")
    assert "swordfish" not in str(info.value) and "***@b:2" in str(info.value)


def test_settings_built_by_hand_keep_the_first_url_and_the_list_in_step():
    assert Settings(selfhosted_url="http://a:1").selfhosted_urls == ("http://a:1",)
    pool = Settings(selfhosted_urls=("http://a:1", "http://b:2"))
    assert pool.selfhosted_url == "http://a:1"
    member = pool.for_server("http://b:2")
    assert (member.selfhosted_url, member.selfhosted_urls) == ("http://b:2", ("http://b:2",))
    assert Settings().selfhosted_urls == ()
    with pytest.raises(ValueError, match="first of selfhosted_urls"):
        Settings(selfhosted_url="http://c:3", selfhosted_urls=("http://a:1",))


@pytest.mark.parametrize(
    ("raw", "rate"), [("0.30", 0.30), ("$0.45", 0.45), (" 1 ", 1.0), ("0", 0.0)]
)
def test_cost_per_hour_is_read_in_dollars(tmp_path, raw, rate):
    settings = load(tmp_path, SELFHOSTED_COST_PER_HOUR=raw)
    assert settings.selfhosted_cost_per_hour == pytest.approx(rate)
    assert settings.cost_error is None
    assert load(tmp_path).selfhosted_cost_per_hour is None


@pytest.mark.parametrize("raw", ["abc", "-0.3", "nan", "inf", "0,30"])
def test_a_cost_that_is_not_a_rate_is_shown_and_counts_as_unset(tmp_path, raw):
    settings = load(tmp_path, SELFHOSTED_COST_PER_HOUR=raw)
    assert settings.selfhosted_cost_per_hour is None
    assert settings.cost_error is not None and "SELFHOSTED_COST_PER_HOUR" in settings.cost_error
    assert repr(raw.strip()) in settings.cost_error
    with pytest.raises(ConfigurationError, match="US dollars per hour"):
        load_settings({"SELFHOSTED_COST_PER_HOUR": raw}, cwd=tmp_path, home=tmp_path, strict=True)


def test_the_rate_is_read_from_a_dotenv_file_too(tmp_path):
    (tmp_path / ".env").write_text(
        "SELFHOSTED_API_URL=http://a:8000 http://b:8000\nSELFHOSTED_COST_PER_HOUR=0.35\n"
    )
    settings = load_settings({}, cwd=tmp_path, home=tmp_path)
    assert settings.selfhosted_urls == ("http://a:8000", "http://b:8000")
    assert settings.selfhosted_cost_per_hour == pytest.approx(0.35)
