"""The codec pipeline: every compression x encryption combination roundtrips, stored objects
decode with the stock CLIs layer by layer (``age -d | zstd -d``), key problems are caught
before anything is written or read, and memory stays bounded on large streams."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from pgsafe.errors import BadInput, VerificationFailed
from pgsafe.repo.codec.pipeline import (
    AgeSpec,
    CodecSpec,
    Compression,
    Pipeline,
    pipeline_for,
    split_suffix,
)
from pgsafe.repo.keys import AgeKeys, Secret, X25519Identity, load_age_keys
from pgsafe.repo.storage.memory import MemoryStorage

IDENT = X25519Identity.generate()
KEYS = AgeKeys(passphrase=Secret(b"pw for tests"), identities=(IDENT,))
ENCRYPTIONS = {"plain": None, "x25519": AgeSpec("x25519"), "passphrase": AgeSpec("passphrase", 10)}
CLI = {"zstd": ["zstd", "-d", "-c"], "lz4": ["lz4", "-d", "-c"], "gzip": ["gzip", "-d", "-c"]}


def sample(n: int) -> bytes:
    rows = b"".join(
        b"%d\t%d\tfiller text for row %d\n" % (i, i % 97, i) for i in range(n // 30 + 1)
    )
    return rows[:n]


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip", "none"])
@pytest.mark.parametrize("encryption", ENCRYPTIONS)
@pytest.mark.parametrize("size", [0, 100, 3_000_000])
def test_roundtrip_through_storage(compression: Compression, encryption: str, size: int) -> None:
    spec = CodecSpec(compression, None, ENCRYPTIONS[encryption])
    pipe = Pipeline(spec, KEYS)
    data = sample(size)
    storage = MemoryStorage()
    key = "obj" + pipe.suffix
    storage.put(key, pipe.encode(data[i : i + 65536] for i in range(0, len(data), 65536)))
    with storage.open(key) as f:
        assert b"".join(pipe.decode(f, what=key)) == data
    # a reader that knows only the name decodes it too
    with storage.open(key) as f:
        assert b"".join(pipeline_for(key, KEYS).decode(f)) == data


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip"])
def test_stock_clis_read_an_encrypted_object_layer_by_layer(
    tmp_path: Path, compression: Compression
) -> None:
    keyfile = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(keyfile)], check=True, capture_output=True)
    keys = load_age_keys({"PGSAFE_AGE_IDENTITY_FILE": str(keyfile)})
    pipe = Pipeline(CodecSpec(compression, None, AgeSpec()), keys)
    data = sample(4_000_000)
    obj = tmp_path / ("dump" + pipe.suffix)
    obj.write_bytes(b"".join(pipe.encode([data])))
    assert obj.name.endswith({"zstd": ".zst", "lz4": ".lz4", "gzip": ".gz"}[compression] + ".age")
    age = subprocess.Popen(["age", "-d", "-i", str(keyfile), str(obj)], stdout=subprocess.PIPE)
    assert age.stdout is not None
    with age.stdout:
        out = subprocess.run(CLI[compression], stdin=age.stdout, capture_output=True, check=True)
    assert age.wait() == 0
    assert out.stdout == data


def test_age_constants_match_the_age_module() -> None:
    from pgsafe.repo.codec import age, pipeline

    assert pipeline.AGE_EXTENSION == age.EXTENSION
    assert pipeline.AGE_DEFAULT_WORK_FACTOR == age.DEFAULT_WORK_FACTOR
    assert pipeline.AGE_MAX_WORK_FACTOR == age.MAX_WORK_FACTOR


def test_codec_tables_match_the_compression_modules() -> None:
    from pgsafe.repo.codec import gzip, lz4, none, pipeline, zstdstream

    mods: dict[Compression, ModuleType] = {
        "zstd": zstdstream,
        "lz4": lz4,
        "gzip": gzip,
        "none": none,
    }
    for comp, mod in mods.items():
        assert pipeline._SUFFIX[comp] == mod.EXTENSION
        if comp != "none":
            assert pipeline._DEFAULT_LEVEL[comp] == mod.DEFAULT_LEVEL
            assert pipeline._LEVELS[comp] == mod.LEVELS


def test_naming_imports_no_compression_module() -> None:
    code = ("import sys; from pgsafe.repo.codec.pipeline import CodecSpec, split_suffix; "
            "split_suffix('x.lz4'); split_suffix('y.gz.age'); CodecSpec('gzip', 9).suffix; "
            "print(sorted(m for m in sys.modules if m.startswith(('lz4', 'zstandard', "
            "'pgsafe.repo.codec.', 'pgsafe.repo.keys'))))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['pgsafe.repo.codec.pipeline']"


def test_unencrypted_use_does_not_import_age_or_cryptography() -> None:
    code = ("import sys; from pgsafe.repo.codec.pipeline import CodecSpec, Pipeline; "
            "p = Pipeline(CodecSpec('zstd')); b''.join(p.decode_chunks(p.encode([b'x']))); "
            "print('pgsafe.repo.codec.age' in sys.modules or "
            "'cryptography' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_suffixes_and_names() -> None:
    assert CodecSpec().suffix == ".zst"
    assert CodecSpec("lz4", encryption=AgeSpec()).suffix == ".lz4.age"
    assert CodecSpec("gzip").suffix == ".gz"
    assert CodecSpec("none").suffix == ""
    assert CodecSpec("none", encryption=AgeSpec("passphrase")).suffix == ".age"
    assert CodecSpec("zstd", 3, AgeSpec()).suffix == ".zst.age"
    assert split_suffix("000000010000000000000001.zst.age") == (
        "000000010000000000000001",
        CodecSpec("zstd", None, AgeSpec()),
    )
    assert split_suffix("base.tar.gz") == ("base.tar", CodecSpec("gzip"))
    assert split_suffix("dump.custom") == ("dump.custom", CodecSpec("none"))


def test_spec_serialises_without_secrets_and_parses_config_words() -> None:
    spec = CodecSpec.parse("lz4", None, "age-passphrase")
    assert spec == CodecSpec("lz4", None, AgeSpec("passphrase"))
    doc = spec.to_dict()
    assert doc == {
        "compression": "lz4",
        "level": 0,
        "encryption": {"format": "age", "mode": "passphrase", "work_factor": 15},
    }
    assert CodecSpec.from_dict(doc) == CodecSpec("lz4", 0, AgeSpec("passphrase"))
    assert CodecSpec.from_dict(CodecSpec().to_dict()) == CodecSpec("zstd", 3)
    assert CodecSpec.parse("zstd", 19, "age") == CodecSpec("zstd", 19, AgeSpec("x25519"))


@pytest.mark.parametrize(
    "bad",
    [
        ("brotli", None, None),
        ("zstd", 23, None),
        ("gzip", 0, None),
        ("none", 1, None),
        ("zstd", None, "aes"),
    ],
)
def test_bad_specs_are_bad_input(bad: tuple[str, int | None, str | None]) -> None:
    with pytest.raises(BadInput):
        CodecSpec.parse(*bad)


def test_missing_keys_are_refused_before_anything_is_written() -> None:
    storage = MemoryStorage()
    consumed = []

    def source() -> Iterator[bytes]:
        consumed.append(1)
        yield b"data"

    for spec in (
        CodecSpec(encryption=AgeSpec("x25519")),
        CodecSpec(encryption=AgeSpec("passphrase")),
    ):
        with pytest.raises(BadInput) as err:
            storage.put("x", Pipeline(spec, AgeKeys()).encode(source()))
        assert err.value.exit_code == 2
    assert consumed == [] and list(storage.list()) == []
    with open(os.devnull, "rb") as f, pytest.raises(BadInput):
        Pipeline(CodecSpec(encryption=AgeSpec()), AgeKeys()).decode(f)


def test_recipients_alone_encrypt_but_cannot_decrypt() -> None:
    writer = Pipeline(CodecSpec(encryption=AgeSpec()), AgeKeys(recipients=(IDENT.recipient,)))
    stored = b"".join(writer.encode([b"x" * 1000]))
    with pytest.raises(BadInput):
        b"".join(writer.decode_chunks([stored]))
    reader = Pipeline(CodecSpec(encryption=AgeSpec()), AgeKeys(identities=(IDENT,)))
    assert b"".join(reader.decode_chunks([stored])) == b"x" * 1000


def test_wrong_key_exit_2_and_flipped_byte_exit_3() -> None:
    pipe = Pipeline(CodecSpec("zstd", 3, AgeSpec()), KEYS)
    stored = bytearray(b"".join(pipe.encode([sample(500_000)])))
    other = Pipeline(pipe.spec, AgeKeys(identities=(X25519Identity.generate(),)))
    with pytest.raises(BadInput) as bad:
        b"".join(other.decode_chunks([bytes(stored)], what="seg.zst.age"))
    assert bad.value.exit_code == 2 and "seg.zst.age" in str(bad.value)
    stored[len(stored) // 2] ^= 0x40
    with pytest.raises(VerificationFailed) as damaged:
        b"".join(pipe.decode_chunks([bytes(stored)], what="seg.zst.age"))
    assert damaged.value.exit_code == 3


def test_repr_shows_no_secret() -> None:
    pipe = Pipeline(CodecSpec(encryption=AgeSpec("passphrase")), KEYS)
    secret = IDENT.to_secret_string().reveal().decode()
    assert "pw for tests" not in repr(pipe) and secret not in repr(pipe)


MEMORY_PROBE = textwrap.dedent(
    """
    import os, resource, sys
    from pgsafe.repo.codec.pipeline import AgeSpec, CodecSpec, Pipeline
    from pgsafe.repo.keys import AgeKeys, X25519Identity
    ident = X25519Identity.generate()
    comp = sys.argv[1]
    spec = CodecSpec(comp, 1 if comp != "lz4" else 0, AgeSpec())
    pipe = Pipeline(spec, AgeKeys(identities=(ident,)))
    block = os.urandom(1 << 20)
    def source():
        for i in range(int(sys.argv[2])):
            yield block if i % 2 else bytes(1 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = sum(len(p) for p in pipe.decode_chunks(pipe.encode(source())))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(total, (after - before) // 1024)
    """
)


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip"])
def test_memory_stays_bounded_on_a_large_stream(compression: str) -> None:
    """Hundreds of MiB through compress + encrypt + decrypt + decompress grow the peak RSS by
    well under the stream's size (zstd's worker threads take ~40-80 MiB, whatever the size)."""
    mib = 384 if compression != "gzip" else 192  # gzip is slow
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, compression, str(mib)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    total, grown_mib = map(int, proc.stdout.split())
    assert total == mib << 20
    assert grown_mib < 128, f"RSS grew by {grown_mib} MiB for a {mib} MiB stream"
