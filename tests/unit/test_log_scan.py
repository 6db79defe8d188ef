"""The log scan finds what it must (so a clean suite means something) and nothing else."""

from tests.log_scan import leaks, remember_secret

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJyb2xlIjoiYWRtaW4ifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


def test_a_token_in_a_log_line_is_a_leak() -> None:
    assert leaks(f'{{"level":"INFO","message":"calling","authorization":"Bearer {JWT}"}}')


def test_a_registered_secret_is_a_leak_and_is_not_repeated() -> None:
    remember_secret("sq0atp-PLAINTEXT-TOKEN-123")
    found = leaks("stored token sq0atp-PLAINTEXT-TOKEN-123 for merchant")
    assert found
    assert "PLAINTEXT" not in " ".join(found)


def test_a_password_in_a_connection_url_is_a_leak() -> None:
    assert leaks("connecting to postgresql://pos_gateway_admin:hunter22@db:5432/pos")


def test_ordinary_log_lines_are_clean() -> None:
    line = '{"level":"WARNING","message":"request refused","code":"stale_version","wallet_id":"5b1c..."}'
    assert leaks(line) == []
    assert leaks("postgresql://db.internal:5432/pos") == []
