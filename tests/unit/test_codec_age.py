"""age encryption: our streams are standard age files (the stock ``age`` CLI and pyrage read
them, and we read theirs), a wrong key is BadInput (exit 2), damage is VerificationFailed
(exit 3), and no plaintext comes out of a header that did not open."""

from __future__ import annotations

import os
import pickle
import select
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pyrage  # type: ignore[import-untyped]  # pyrage ships no type stubs nor py.typed
import pytest

from pgsafe.errors import BadInput, VerificationFailed
from pgsafe.repo.codec import age
from pgsafe.repo.keys import Secret, X25519Identity, X25519Recipient, parse_identities

PASS = Secret(b"correct horse battery staple")
SIZES = [0, 1, age.CHUNK - 1, age.CHUNK, age.CHUNK + 1, 2 * age.CHUNK, 3 * age.CHUNK + 17]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"the {tool} CLI is missing: run scripts/system-deps.sh as root")
    return path


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An identity file written by the stock age-keygen."""
    path = tmp_path_factory.mktemp("age") / "key.txt"
    subprocess.run([need("age-keygen"), "-o", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def ident(keyfile: Path) -> X25519Identity:
    (i,) = parse_identities(keyfile.read_text(), source="test key")
    return i


def enc(
    data: bytes,
    chunk: int = 100_000,
    *,
    recipients: Sequence[X25519Recipient] = (),
    passphrase: Secret | None = None,
    work_factor: int = age.DEFAULT_WORK_FACTOR,
) -> bytes:
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return b"".join(
        age.encrypt(parts, recipients=recipients, passphrase=passphrase, work_factor=work_factor)
    )


def dec(
    data: bytes,
    chunk: int = 100_000,
    *,
    identities: Sequence[X25519Identity] = (),
    passphrase: Secret | None = None,
    what: str = "the object",
) -> bytes:
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return b"".join(age.decrypt(parts, identities=identities, passphrase=passphrase, what=what))


def run_with_tty(argv: list[str], answers: list[bytes], stdin_data: bytes | None = None) -> int:
    """Run ``argv`` with a pseudo-terminal as its controlling terminal (age reads the
    passphrase from /dev/tty) and type each answer when a prompt appears."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        ["setsid", "--ctty", *argv], stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    seen = b""
    todo = list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
            if todo and seen.lower().count(b"passphrase") > len(answers) - len(todo):
                os.write(master, todo.pop(0) + b"\n")
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


# -- roundtrips -----------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("chunk", [1000, age.CHUNK, 1 << 20])
def test_x25519_roundtrip(ident: X25519Identity, size: int, chunk: int) -> None:
    data = os.urandom(size)
    stored = enc(data, chunk, recipients=[ident.recipient])
    assert stored.startswith(age.INTRO)
    assert data not in stored or size < 8
    assert dec(stored, chunk, identities=[ident]) == data


@pytest.mark.parametrize("size", [0, age.CHUNK, 2 * age.CHUNK + 5])
def test_passphrase_roundtrip(size: int) -> None:
    data = os.urandom(size)
    stored = enc(data, passphrase=PASS, work_factor=10)
    assert b"-> scrypt " in stored[:200]
    assert dec(stored, passphrase=PASS) == data


def test_several_recipients_each_can_read(ident: X25519Identity) -> None:
    other = X25519Identity.generate()
    stored = enc(b"payload", recipients=[other.recipient, ident.recipient])
    assert dec(stored, identities=[ident]) == b"payload"
    assert dec(stored, identities=[other]) == b"payload"


def test_memory_stays_bounded_for_large_streams(ident: X25519Identity) -> None:
    """A 64 MiB stream encrypts and decrypts in pieces of about one input chunk."""
    block = os.urandom(1 << 20)
    biggest = 0
    total = 0
    stream = age.encrypt((block for _ in range(64)), recipients=[ident.recipient])
    for piece in age.decrypt(stream, identities=[ident]):
        biggest = max(biggest, len(piece))
        total += len(piece)
    assert total == 64 << 20
    assert biggest <= (1 << 20) + age.CHUNK


# -- interoperability ------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, age.CHUNK, 3 * age.CHUNK + 17, 5 << 20])
def test_age_cli_decrypts_ours(keyfile: Path, ident: X25519Identity, size: int) -> None:
    data = os.urandom(size)
    stored = enc(data, recipients=[ident.recipient])
    out = subprocess.run(
        [need("age"), "-d", "-i", str(keyfile)], input=stored, capture_output=True, check=True
    )
    assert out.stdout == data


@pytest.mark.parametrize("size", [0, age.CHUNK, 3 * age.CHUNK + 17, 5 << 20])
def test_we_decrypt_age_cli_output(keyfile: Path, ident: X25519Identity, size: int) -> None:
    data = os.urandom(size)
    stored = subprocess.run(
        [need("age"), "-e", "-r", str(ident.recipient)], input=data, capture_output=True, check=True
    ).stdout
    assert dec(stored, chunk=7777, identities=[ident]) == data


def test_age_cli_decrypts_our_passphrase_object(tmp_path: Path) -> None:
    data = os.urandom(3 * age.CHUNK + 1)
    src, out = tmp_path / "x.age", tmp_path / "x.out"
    src.write_bytes(enc(data, passphrase=PASS, work_factor=age.DEFAULT_WORK_FACTOR))
    rc = run_with_tty([need("age"), "-d", "-o", str(out), str(src)], [PASS.reveal()])
    assert rc == 0
    assert out.read_bytes() == data


def test_we_decrypt_age_cli_passphrase_object(tmp_path: Path) -> None:
    data = os.urandom(2 * age.CHUNK + 3)
    src, out = tmp_path / "x", tmp_path / "x.age"
    src.write_bytes(data)
    rc = run_with_tty([need("age"), "-p", "-o", str(out), str(src)], [PASS.reveal()] * 2)
    assert rc == 0
    assert dec(out.read_bytes(), passphrase=PASS) == data


def test_pyrage_interop_both_ways(ident: X25519Identity) -> None:
    data = os.urandom(2 * age.CHUNK + 9)
    pw = PASS.reveal().decode()
    assert pyrage.passphrase.decrypt(enc(data, passphrase=PASS, work_factor=12), pw) == data
    assert dec(pyrage.passphrase.encrypt(data, pw), passphrase=PASS) == data
    secret = ident.to_secret_string().reveal().decode()
    rage_ident = pyrage.x25519.Identity.from_str(secret)
    assert pyrage.decrypt(enc(data, recipients=[ident.recipient]), [rage_ident]) == data
    rage_recip = pyrage.x25519.Recipient.from_str(str(ident.recipient))
    assert dec(pyrage.encrypt(data, [rage_recip]), identities=[ident]) == data


# -- wrong keys: BadInput, nothing yielded ---------------------------------------------------------
def test_wrong_identity_is_bad_input(ident: X25519Identity) -> None:
    stored = enc(b"x" * 100_000, recipients=[ident.recipient])
    gen = age.decrypt([stored], identities=[X25519Identity.generate()], what="obj.age")
    with pytest.raises(BadInput) as err:
        next(gen)
    assert err.value.exit_code == 2
    assert "obj.age" in str(err.value)
    assert not isinstance(err.value, VerificationFailed)


def test_wrong_passphrase_is_bad_input() -> None:
    stored = enc(b"data", passphrase=PASS, work_factor=10)
    with pytest.raises(BadInput, match="wrong passphrase") as err:
        dec(stored, passphrase=Secret(b"not it"))
    assert err.value.exit_code == 2
    assert PASS.reveal().decode() not in str(err.value) + str(err.value.hint)


def test_missing_key_kind_says_what_to_set(ident: X25519Identity) -> None:
    with pytest.raises(BadInput, match="passphrase") as err:
        dec(enc(b"d", passphrase=PASS, work_factor=10), identities=[ident])
    assert "PGSAFE_AGE_PASSPHRASE" in str(err.value.hint)
    with pytest.raises(BadInput, match="identity") as err:
        dec(enc(b"d", recipients=[ident.recipient]), passphrase=PASS)
    assert "PGSAFE_AGE_IDENTITY_FILE" in str(err.value.hint)


def test_hostile_work_factor_is_refused_before_scrypt_runs() -> None:
    stored = enc(b"d", passphrase=PASS, work_factor=10)
    header_end = stored.index(b"\n---")
    forged = stored[:header_end].replace(b" 10\n", b" 30\n") + stored[header_end:]
    t0 = time.monotonic()
    with pytest.raises(BadInput, match="work factor 30"):
        dec(forged, passphrase=PASS)
    assert time.monotonic() - t0 < 1


def test_encrypt_refuses_both_or_no_key_kind(ident: X25519Identity) -> None:
    with pytest.raises(BadInput):
        enc(b"x")
    with pytest.raises(BadInput):
        enc(b"x", recipients=[ident.recipient], passphrase=PASS)


# -- damage: VerificationFailed -----------------------------------------------------------------
def _payload_start(stored: bytes) -> int:
    return stored.index(b"\n", stored.index(b"\n---")) + 1 + 16


@pytest.mark.parametrize("where", ["nonce", "first", "middle", "last-chunk", "last-byte", "mac"])
def test_flipped_byte_is_verification_failed(ident: X25519Identity, where: str) -> None:
    data = os.urandom(4 * age.CHUNK + 100)
    stored = bytearray(enc(data, recipients=[ident.recipient]))
    start = _payload_start(bytes(stored))
    pos = {
        "nonce": start - 5,
        "first": start + 10,
        "middle": start + 2 * age.CIPHER_CHUNK + 5,
        "last-chunk": len(stored) - 60,
        "last-byte": len(stored) - 1,
        "mac": bytes(stored).index(b"\n--- ") + 8,
    }[where]
    stored[pos] ^= 0x01
    with pytest.raises(VerificationFailed) as err:
        dec(bytes(stored), identities=[ident], what="seg.zst.age")
    assert err.value.exit_code == 3
    assert "seg.zst.age" in str(err.value)


@pytest.mark.parametrize(
    "cut",
    [
        "chunk-boundary",
        "mid-chunk",
        "tag-only",
        "extra-byte",
        "extra-chunk",
        "header-only",
        "no-header",
    ],
)
def test_truncation_and_extension_are_detected(ident: X25519Identity, cut: str) -> None:
    data = os.urandom(3 * age.CHUNK)
    stored = enc(data, recipients=[ident.recipient])
    start = _payload_start(stored)
    bad = {
        "chunk-boundary": stored[: start + 2 * age.CIPHER_CHUNK],
        "mid-chunk": stored[: start + age.CIPHER_CHUNK + 500],
        "tag-only": stored[: start + 2 * age.CIPHER_CHUNK + age.TAG],
        "extra-byte": stored + b"\0",
        "extra-chunk": stored + stored[start : start + age.CIPHER_CHUNK],
        "header-only": stored[:start],
        "no-header": stored[start:],
    }[cut]
    with pytest.raises(VerificationFailed):
        dec(bad, identities=[ident])


def test_no_plaintext_before_the_first_chunk_checks_out(ident: X25519Identity) -> None:
    data = os.urandom(3 * age.CHUNK)
    stored = bytearray(enc(data, recipients=[ident.recipient]))
    stored[_payload_start(bytes(stored)) + 3] ^= 1
    got = []
    with pytest.raises(VerificationFailed):
        for piece in age.decrypt([bytes(stored)], identities=[ident]):
            got.append(piece)
    assert got == []


# -- keys stay hidden ----------------------------------------------------------------------
def test_reprs_do_not_show_secrets(ident: X25519Identity) -> None:
    secret_text = ident.to_secret_string().reveal().decode()
    for obj in (ident, PASS, ident.to_secret_string()):
        assert secret_text not in repr(obj) and secret_text not in str(obj)
        assert PASS.reveal().decode() not in repr(obj)
    assert str(ident.recipient) in repr(ident)
    with pytest.raises(TypeError):
        pickle.dumps(PASS)
    assert X25519Recipient.parse(str(ident.recipient)) == ident.recipient
