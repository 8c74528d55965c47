"""Settings come only from the environment, and a bad or missing one stops start-up
with a message naming the variable."""

from __future__ import annotations

import pytest

from bot.core.config import ConfigError, Settings, load_settings, validate

ALL_SOURCE_SECRETS = {
    "ORDER_WEBHOOK_SECRET": "a",
    "SHOPIFY_WEBHOOK_SECRET": "b",
    "WOOCOMMERCE_WEBHOOK_SECRET": "c",
}


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """An environment with no Dakiya variables, run from an empty folder (no .env)."""
    import os

    for name in list(os.environ):
        if name.upper() in {f.upper() for f in Settings.__dataclass_fields__}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults_need_only_the_source_secrets(clean_env):
    for name, value in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(name, value)
    settings = load_settings()
    assert settings.whatsapp_provider == "sandbox"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url == ""  # embedded Redis
    assert settings.order_webhook_secret == "a"


def test_missing_secrets_are_all_named_at_once(clean_env):
    clean_env.setenv("WHATSAPP_PROVIDER", "meta")
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    for name in (
        "META_ACCESS_TOKEN",
        "META_PHONE_NUMBER_ID",
        "META_APP_SECRET",
        "META_VERIFY_TOKEN",
        "ORDER_WEBHOOK_SECRET",
        "SHOPIFY_WEBHOOK_SECRET",
    ):
        assert name in message


def test_interakt_needs_its_key_and_webhook_secret(clean_env):
    for name, value in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(name, value)
    clean_env.setenv("WHATSAPP_PROVIDER", "interakt")
    clean_env.setenv("INTERAKT_API_KEY", "k")
    with pytest.raises(ConfigError, match="INTERAKT_WEBHOOK_SECRET"):
        load_settings()


def test_only_enabled_sources_need_secrets(clean_env):
    clean_env.setenv("ORDER_SOURCES", "shopify")
    clean_env.setenv("SHOPIFY_WEBHOOK_SECRET", "s")
    assert load_settings().order_sources == ("shopify",)


def test_blank_values_mean_the_default(clean_env):
    for name, value in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(name, value)
    clean_env.setenv("SEND_RATE_PER_SECOND", "")
    clean_env.setenv("NOTIFICATIONS_FILE", "  ")
    assert load_settings().send_rate_per_second == 80


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("SEND_RATE_PER_SECOND", "fast", "SEND_RATE_PER_SECOND"),
        ("SEND_RATE_PER_SECOND", "0", "SEND_RATE_PER_SECOND"),
        ("WHATSAPP_PROVIDER", "twilio", "WHATSAPP_PROVIDER"),
        ("ORDER_SOURCES", "shopify,magento", "ORDER_SOURCES"),
        ("NOTIFICATIONS_FILE", "/nowhere.toml", "NOTIFICATIONS_FILE"),
        ("CONTACT_REQUEST_LANGUAGES", "en,xx!", "CONTACT_REQUEST_LANGUAGES"),
    ],
)
def test_malformed_values_are_refused_by_name(clean_env, name, value, named):
    for secret, v in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(secret, v)
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_a_list_is_read_without_the_spaces_around_its_items(clean_env):
    for name, value in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(name, value)
    clean_env.setenv("CONTACT_REQUEST_LANGUAGES", " en, hi ,")
    assert load_settings().contact_request_languages == ("en", "hi")


def test_dotenv_file_is_read_in_development(clean_env, tmp_path):
    (tmp_path / ".env").write_text(
        "ORDER_WEBHOOK_SECRET=x\nSHOPIFY_WEBHOOK_SECRET=y\nWOOCOMMERCE_WEBHOOK_SECRET=z\nDEFAULT_LANGUAGE=hi\n"
    )
    assert load_settings().default_language == "hi"


def test_secrets_never_appear_in_the_settings_repr():
    settings = Settings(order_webhook_secret="s3cr3t-value", meta_access_token="tok3n-value")
    assert "s3cr3t-value" not in repr(settings) and "tok3n-value" not in repr(settings)


def test_validate_accepts_a_complete_meta_configuration():
    settings = Settings(
        whatsapp_provider="meta",
        meta_access_token="t",
        meta_phone_number_id="1",
        meta_app_secret="s",
        meta_verify_token="v",
        suppression_salt="salt",
        order_sources=(),
    )
    assert validate(settings) is settings


# --- ADMIN_USERS password hashes -------------------------------------------------------

WEAK_HASHES = {
    "pbkdf2 with 1,000 rounds": "pbkdf2:sha256:1000$salt$" + "ab" * 32,
    "pbkdf2 one round short": "pbkdf2:sha256:599999$salt$" + "ab" * 32,
    "pbkdf2 with sha1": "pbkdf2:sha1:1000000$salt$" + "ab" * 20,
    "cheap scrypt": "scrypt:16384:8:1$salt$" + "ab" * 64,
    "plain text with a $": "pa$$word",
    "md5 crypt": "$1$salt$hashhashhash",
}


@pytest.mark.parametrize("weak", WEAK_HASHES.values(), ids=WEAK_HASHES.keys())
def test_start_up_refuses_a_weak_admin_password_hash_naming_the_user(clean_env, weak):
    from werkzeug.security import generate_password_hash

    for name, value in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(name, value)
    strong = generate_password_hash("a long passphrase")
    clean_env.setenv("ADMIN_USERS", f"asha:admin:{strong},ravi:viewer:{weak}")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "'ravi'" in str(refused.value) and "'asha'" not in str(refused.value)
    assert weak.split("$", 1)[1] not in str(refused.value)  # salt and hash are not echoed


def test_start_up_names_every_user_with_a_weak_hash_at_once(clean_env):
    for name, value in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(name, value)
    clean_env.setenv(
        "ADMIN_USERS", ",".join(f"{n}:admin:pbkdf2:sha256:1000$s$ab" for n in ("asha", "ravi"))
    )
    with pytest.raises(ConfigError, match="'asha'.*'ravi'"):
        load_settings()


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256:600000", "pbkdf2", "pbkdf2:sha512"])
def test_start_up_accepts_strong_hashes(clean_env, method):
    from werkzeug.security import generate_password_hash

    for name, value in ALL_SOURCE_SECRETS.items():
        clean_env.setenv(name, value)
    clean_env.setenv("ADMIN_USERS", f"asha:admin:{generate_password_hash('pw', method=method)}")
    assert "asha:admin:" in load_settings().admin_users
