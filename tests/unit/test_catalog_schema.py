"""Catalog entries as untrusted input: the schema check, DAMAGED entries, names, output.

The property tests mutate a real manifest body (random JSON values in place of fields,
random keys, deleted keys) and re-checksum it as an attacker would, or feed random
bytes: decoding raises nothing but pgsafe's own errors, and whatever it accepts is a
manifest every consumer can use.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgsafe import confined
from pgsafe.cli.common import json_text, visible
from pgsafe.errors import PgsafeError, VerificationFailed
from pgsafe.jsonshape import backup as backup_json
from pgsafe.models.backup import PhysicalDetails
from pgsafe.repo import catalog
from pgsafe.repo.catalog import CatalogDamaged, DamagedEntry, Manifest
from pgsafe.repo.catalog_names import backup_id_problem, object_name_problem
from pgsafe.repo.catalog_schema import MAX_SIZE
from tests.unit.test_catalog import manifest, repo_with_marker

GOOD_ID = "20240115T103000Z-shop-custom"


def body() -> dict[str, Any]:
    m = manifest(GOOD_ID)
    m.options = {"tables": [["public", "t"]], "roles": ["app"], "jobs": 1}
    m.physical = PhysicalDetails(start_lsn="0/2000028", timeline=1, start_wal="0" * 23 + "2")
    return m.to_dict()


def signed(b: Any) -> bytes:
    """A manifest document whose checksum matches ``b`` (what an attacker writes)."""
    canonical = json.dumps(b, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return json.dumps({"manifest": b, "sha256": digest}).encode()  # \\uXXXX for any text


# -- the schema --------------------------------------------------------------------------
def test_unknown_keys_are_kept_through_a_resave() -> None:
    b = body()
    b["future"] = {"a": [1]}
    b["objects"][0]["future_obj"] = 7
    b["verifications"][0]["future_v"] = "x"
    m = catalog.decode(signed(b), "x")
    assert m.extra == {"future": {"a": [1]}} and m.objects[0].extra == {"future_obj": 7}
    again = json.loads(catalog.encode(m))["manifest"]
    assert again == b


BAD: list[tuple[str, Any, str]] = [
    ("id", "../x", "id"),
    ("id", "20240115T103000Z-a/b", "id"),
    ("id", "20240115T103000Z-" + "a" * 300, "id"),
    ("id", 5, "id"),
    ("kind", "incremental", "kind"),
    ("objects", "x", "objects"),
    ("objects", None, "objects"),
    ("objects", [{"name": "a"}], "objects[0]"),
    ("verifications", [{"at": "yesterday", "ok": True}], "verifications[0].at"),
    ("started_at", "2024-01-15T10:30:00", "started_at"),  # no offset
    ("keep", "yes", "keep"),
    ("options", {"tables": [["public"]]}, "options.tables[0]"),
    ("physical", {"start_lsn": ["0/1"]}, "physical.start_lsn"),
    ("physical", {"timeline": -1}, "physical.timeline"),
    ("fingerprint", {"": []}, "fingerprint"),
    ("format_version", 99, "format_version"),
]


@pytest.mark.parametrize(
    ("key", "value", "needle"), BAD, ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD]
)
def test_a_wrong_field_is_damage_naming_the_field(key: str, value: Any, needle: str) -> None:
    b = body()
    b[key] = value
    with pytest.raises(CatalogDamaged, match="is damaged: " + needle.replace("[", r"\[")):
        catalog.decode(signed(b), "main/backups/x/manifest.json")


@pytest.mark.parametrize(
    "size", [-1, MAX_SIZE, 2**64, 1.0, True, "10", None], ids=lambda v: repr(v)
)
def test_sizes_are_bounded_integers(size: Any) -> None:
    b = body()
    b["objects"][0]["size"] = size
    with pytest.raises(CatalogDamaged, match=r"objects\[0\]\.size"):
        catalog.decode(signed(b), "x")


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/", "", "a\x00b", "a\nb", "a\x1b[2J",
     "a\\b", "/".join(["d"] * 9), "x" * 256, "\udcff"],
)  # fmt: skip
def test_object_names_that_could_leave_their_folder_are_refused(name: str) -> None:
    assert object_name_problem(name) is not None
    b = body()
    b["objects"][0]["name"] = name
    with pytest.raises(CatalogDamaged):
        catalog.decode(signed(b), "x")


def test_ordinary_names_and_ids_pass() -> None:
    for name in ("shop.dump.zst", "shop.dir/toc.dat.zst", "databases/café ü.dump.lz4.age"):
        assert object_name_problem(name) is None
    for bid in (GOOD_ID, "20240115T103000Z-physical-2", "20240115T103000Z"):
        assert backup_id_problem(bid) is None


def test_an_id_that_is_not_its_folder_is_damage() -> None:
    with pytest.raises(CatalogDamaged, match="not the folder"):
        catalog.decode(signed(body()), "x", expected_id="20240116T103000Z-shop-custom")


def test_json_that_is_not_a_manifest_is_damage() -> None:
    for data in (b"", b"\xff\xfe", b"[]", b"null", b'{"manifest": {}}', b"[" * 100_000):
        with pytest.raises(CatalogDamaged):
            catalog.decode(data, "x")


# -- the repository ----------------------------------------------------------------------
def test_a_damaged_entry_is_listed_as_such_and_the_rest_works() -> None:
    r = repo_with_marker()
    r.save(manifest(GOOD_ID))
    bad = "20240116T103000Z-shop-custom"
    b = body()
    b["id"] = bad
    b["objects"] = None
    r.storage.put(f"main/backups/{bad}/manifest.json", [signed(b)])
    r.storage.put("main/backups/not-an-id/manifest.json", [signed(body())])
    entries = r.entries()
    assert [type(e).__name__ for e in entries] == ["Manifest", "DamagedEntry", "DamagedEntry"]
    assert [m.id for m in r.list_backups()] == [GOOD_ID]
    with pytest.raises(CatalogDamaged, match="objects"):
        r.resolve(bad)
    with pytest.raises(CatalogDamaged, match="objects"):  # latest is the damaged one: said
        r.resolve("latest")
    with pytest.raises(CatalogDamaged, match="not a pgsafe backup id"):
        r.resolve("not-an-id")
    assert r.resolve(GOOD_ID).id == GOOD_ID
    assert all(isinstance(d, DamagedEntry) for d in r.damaged())


# -- files from catalog names --------------------------------------------------------------
def test_confined_files_stay_inside_and_are_private(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(outside)
    (dest / "existing").write_bytes(b"keep")
    fd = confined.open_dir(dest)
    try:
        with confined.create_file(fd, "a/b/c.dat") as f:
            f.write(b"data")
        for rel in ("link/x", "../outside/x", "/abs", "existing", "a//b"):
            with pytest.raises(VerificationFailed):
                confined.create_file(fd, rel)
    finally:
        os.close(fd)
    assert list(outside.iterdir()) == [] and (dest / "existing").read_bytes() == b"keep"
    assert stat.S_IMODE((dest / "a/b/c.dat").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "a").stat().st_mode) == 0o700
    (tmp_path / "dirlink").symlink_to(dest)
    with pytest.raises(PgsafeError):
        confined.open_dir(tmp_path / "dirlink")


# -- terminal output -------------------------------------------------------------------
def test_escape_sequences_are_made_visible() -> None:
    assert (
        visible("a\x1b[2Jb\tc\nd\r\x9b\u202e\udcff") == "a\\x1b[2Jb\tc\nd\\x0d\\x9b\\u202e\\udcff"
    )
    text = json_text({"label": "x\x1b\x9b\u202e\udcff"})
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "\udcff" not in text
    assert json.loads(text.replace("\\udcff", "")) == {"label": "x\x1b\x9b\u202e"}


# -- properties ------------------------------------------------------------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TOP_KEYS = [*body().keys(), "surprise"]
OBJ_KEYS = [*body()["objects"][0].keys(), "surprise"]


def _accepted(m: Manifest) -> None:
    """Whatever decode accepts, every consumer can use."""
    assert backup_id_problem(m.id) is None
    for o in m.objects:
        assert object_name_problem(o.name) is None
        assert isinstance(o.size, int) and 0 <= o.size < MAX_SIZE
    assert m.size_bytes >= 0
    json.loads(json_text(backup_json(m)))
    assert catalog.decode(catalog.encode(m), "again") == m


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["top", "object", "delete", "add"]),
            st.sampled_from(TOP_KEYS),
            st.sampled_from(OBJ_KEYS),
            JSON,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_manifests_raise_only_pgsafe_errors(edits: list[tuple[str, str, str, Any]]) -> None:
    b = body()
    for how, top, obj_key, value in edits:
        if how == "top":
            b[top] = value
        elif how == "object" and isinstance(b.get("objects"), list) and b["objects"]:
            if isinstance(b["objects"][0], dict):
                b["objects"][0][obj_key] = value
        elif how == "delete":
            b.pop(top, None)
        else:
            b[str(value)[:20]] = value
    try:
        m = catalog.decode(signed(b), "fuzz", expected_id=GOOD_ID)
    except PgsafeError:
        return
    _accepted(m)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_random_bytes_raise_only_pgsafe_errors(data: bytes) -> None:
    try:
        m = catalog.decode(data, "fuzz")
    except PgsafeError:
        return
    _accepted(m)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=1, max_size=40), at=st.integers(min_value=0))
def test_flipped_bytes_of_a_real_manifest_raise_only_pgsafe_errors(data: bytes, at: int) -> None:
    raw = bytearray(catalog.encode(manifest(GOOD_ID)))
    i = at % len(raw)
    raw[i : i + len(data)] = data
    try:
        m = catalog.decode(bytes(raw), "fuzz")
    except PgsafeError:
        return
    _accepted(m)


# -- typed parts: what earlier pgsafe wrote decodes to typed models, and back unchanged --
OLD_PHYSICAL = {
    "start_lsn": "0/2000028", "stop_lsn": "0/2000138", "timeline": 1, "stop_timeline": 1,
    "start_wal": "000000010000000000000002", "stop_wal": "000000010000000000000002",
    "wal_segment_size": 16777216,
    "wal_ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000138"}],
    "backup_label": "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
    "checkpoint_lsn": "0/2000060", "server_start_time": "2024-01-15 10:30:00 UTC",
    "next_xid": 742, "timezone": "Etc/UTC", "compression": "client-zstd",
}  # fmt: skip
OLD_FINGERPRINT = {
    "": {
        "public.t": {"rows": 3, "hash": "123", "method": "named-record", "columns": "ab12"},
        "public.mv": {"columns": "cd34", "kind": "matview", "populated": False},
        "public.old": {"rows": 9, "hash": "-42"},
    }
}
OLD_CHECKS = [{"name": "checksums", "ok": True, "detail": "2 objects"}]


def test_an_earlier_catalog_entry_decodes_to_typed_models_and_back_unchanged() -> None:
    b = body()
    b["physical"] = OLD_PHYSICAL
    b["fingerprint"] = OLD_FINGERPRINT
    b["verifications"][0]["checks"] = OLD_CHECKS
    m = catalog.decode(signed(b), "x")
    assert m.physical.start_lsn == "0/2000028" and m.physical.timeline == 1
    assert m.physical.next_xid == 742 and m.physical.raw_sha256 is None
    t = m.fingerprint[""]["public.t"]
    assert (t.rows, t.hash, t.method, t.columns) == (3, "123", "named-record", "ab12")
    mv = m.fingerprint[""]["public.mv"]
    assert mv.kind == "matview" and mv.populated is False and mv.rows is None
    assert m.verifications[0].checks[0].name == "checksums"
    assert json.loads(catalog.encode(m))["manifest"] == b


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("physical", "timeline"), "1"),
        (("physical", "next_xid"), -1),
        (("physical", "checkpoint_lsn"), 7),
        (("fingerprint", "", "public.t", "hash"), 123),
        (("fingerprint", "", "public.t", "populated"), "yes"),
        (("verifications", 0, "checks", 0, "ok"), "true"),
    ],
)
def test_a_typed_part_of_the_wrong_type_is_damaged(path: tuple[Any, ...], value: object) -> None:
    b = body()
    b["physical"] = dict(OLD_PHYSICAL)
    b["fingerprint"] = json.loads(json.dumps(OLD_FINGERPRINT))
    b["verifications"][0]["checks"] = json.loads(json.dumps(OLD_CHECKS))
    node = b
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(CatalogDamaged, match="is damaged"):
        catalog.decode(signed(b), "x")
