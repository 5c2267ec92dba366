"""Key loading (pgsafe.repo.keys): the PGSAFE_AGE_* variables and files, interoperable key
text (age-keygen), and secrets that never show in reprs or messages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pgsafe.errors import BadInput
from pgsafe.repo import bech32
from pgsafe.repo.keys import AgeKeys, X25519Identity, X25519Recipient, load_age_keys


def keygen(path: Path) -> tuple[str, str]:
    """(secret key line, public key) from the stock age-keygen."""
    if shutil.which("age-keygen") is None:
        pytest.fail("age-keygen is missing: run scripts/system-deps.sh as root")
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    secret = next(ln for ln in path.read_text().splitlines() if ln.startswith("AGE-SECRET-KEY-1"))
    public = subprocess.run(
        ["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return secret, public


def test_identity_file_from_age_keygen_gives_the_same_public_key(tmp_path: Path) -> None:
    secret, public = keygen(tmp_path / "k.txt")
    keys = load_age_keys({"PGSAFE_AGE_IDENTITY_FILE": str(tmp_path / "k.txt")})
    assert [str(i.recipient) for i in keys.identities] == [public]
    assert [str(r) for r in keys.encryption_recipients()] == [public]
    assert keys.identities[0].to_secret_string().reveal().decode() == secret
    text = repr(keys) + str(keys)
    assert secret not in text and secret.lower() not in text
    assert "k.txt" in text  # the source is named, for messages


def test_passphrase_from_env_and_file(tmp_path: Path) -> None:
    assert load_age_keys({"PGSAFE_AGE_PASSPHRASE": "s3cret"}).passphrase is not None
    f = tmp_path / "pp"
    f.write_text("s3cret pass\nignored second line\n")
    keys = load_age_keys({"PGSAFE_AGE_PASSPHRASE_FILE": str(f)})
    assert keys.passphrase is not None and keys.passphrase.reveal() == b"s3cret pass"
    assert "s3cret" not in repr(keys)
    explicit = load_age_keys({}, passphrase_file=f)
    assert explicit.passphrase == keys.passphrase


@pytest.mark.parametrize("case", ["both", "empty-file", "missing-file"])
def test_passphrase_mistakes_are_bad_input(tmp_path: Path, case: str) -> None:
    f = tmp_path / "pp"
    f.write_text("\n" if case == "empty-file" else "x\n")
    env = {"PGSAFE_AGE_PASSPHRASE_FILE": str(f if case != "missing-file" else tmp_path / "no")}
    if case == "both":
        env["PGSAFE_AGE_PASSPHRASE"] = "y"
    with pytest.raises(BadInput) as err:
        load_age_keys(env)
    assert err.value.exit_code == 2


def test_recipients_from_env_and_file(tmp_path: Path) -> None:
    a, b, c = (X25519Identity.generate().recipient for _ in range(3))
    f = tmp_path / "recipients.txt"
    f.write_text(f"# team keys\n{c}  # ops\n\n")
    keys = load_age_keys(
        {"PGSAFE_AGE_RECIPIENTS": f"{a}, {b}", "PGSAFE_AGE_RECIPIENTS_FILE": str(f)}
    )
    assert keys.recipients == (a, b, c)
    assert keys.identities == () and keys.passphrase is None


def test_bad_identity_line_is_reported_without_its_content(tmp_path: Path) -> None:
    f = tmp_path / "k.txt"
    f.write_text("# comment\nAGE-SECRET-KEY-1NOTAREALKEYATALLQQQQQQQQ\n")
    with pytest.raises(BadInput) as err:
        load_age_keys({"PGSAFE_AGE_IDENTITY_FILE": str(f)})
    assert "line 2" in str(err.value)
    assert "NOTAREALKEY" not in str(err.value) + str(err.value.hint)


def test_identity_in_env_and_bad_recipient() -> None:
    ident = X25519Identity.generate()
    secret = ident.to_secret_string().reveal().decode()
    keys = load_age_keys({"PGSAFE_AGE_IDENTITY": secret})
    assert keys.identities == (ident,)
    assert secret not in repr(keys)
    with pytest.raises(BadInput):
        load_age_keys({"PGSAFE_AGE_RECIPIENTS": "age1notarecipient"})
    with pytest.raises(BadInput):  # a secret key given where a public one belongs
        X25519Recipient.parse(secret)


def test_nothing_configured_is_empty() -> None:
    assert load_age_keys({}) == AgeKeys()
    assert AgeKeys().empty


def test_bech32_reference_vectors() -> None:
    # BIP 173 valid strings
    for s in [
        "A12UEL5L",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    ]:
        hrp, data = bech32.decode(s)
        assert bech32.encode(hrp, data) == s.lower() or len(data) == 0
    for bad in ["A1G7SGD8", "a12UEL5L", "x1b4n0q5v", "10a06t8", "1qzzfhee"]:
        with pytest.raises(bech32.Bech32Error):
            bech32.decode(bad)
