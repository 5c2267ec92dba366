"""What the S3 backend does beyond the conformance suite, against moto's S3 server on
127.0.0.1: URLs and settings, no multipart upload left behind, lease expiry and renewal,
errors that say what is wrong without credentials, and the repository on S3."""

from __future__ import annotations

import json
import os
import time

import pytest

from pgsafe.errors import BadInput, NotFound, OperationFailed, RepositoryError
from pgsafe.repo.repository import Repository, open_storage
from pgsafe.repo.storage.base import read_all
from pgsafe.repo.storage.s3 import S3Settings, S3Storage, parse_s3_url, part_size_for
from tests.fixtures_s3 import SECRET_KEY, S3Server
from tests.storage.s3_settings import PART_SIZE, s3_settings

from .test_conformance import Boom, failing_stream


def test_urls() -> None:
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    for bad in ("s3://", "s3:///x", "s3://b/a//b", "s3://b/../x", "http://b/x", "s3://bu cket/x"):
        with pytest.raises(BadInput):
            parse_s3_url(bad)


def test_settings_from_env() -> None:
    s = S3Settings.from_env(
        {"AWS_ENDPOINT_URL": "http://minio:9000", "PGSAFE_S3_PART_SIZE_MB": "16"}
    )
    assert s.endpoint_url == "http://minio:9000" and s.addressing_style == "path"
    assert s.part_size == 16 << 20
    assert (
        S3Settings.from_env(
            {"PGSAFE_S3_ENDPOINT": "http://x", "AWS_ENDPOINT_URL": "http://y"}
        ).endpoint_url
        == "http://x"
    )
    assert S3Settings.from_env({}).addressing_style == "auto"
    with pytest.raises(BadInput):
        S3Settings.from_env({"PGSAFE_S3_PART_SIZE_MB": "1"})
    with pytest.raises(BadInput):
        S3Settings.from_env({"PGSAFE_S3_MAX_ATTEMPTS": "many"})


def test_part_sizes_grow_so_big_objects_fit() -> None:
    base = 8 << 20
    assert part_size_for(1, base) == base and part_size_for(1000, base) == base
    assert part_size_for(1001, base) == 2 * base
    total = sum(part_size_for(n, base) for n in range(1, 10_001))
    assert total > 8 * 10**12  # 8 TB in S3's 10,000 parts


def test_failed_multipart_upload_is_aborted(s3_server: S3Server, s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/r", s3_settings())
    with pytest.raises(Boom):
        storage.put("big", failing_stream(3 * PART_SIZE))
    client = s3_server.client()
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_multipart_object_is_one_object_with_parts(s3_server: S3Server, s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/r", s3_settings())
    data = os.urandom(2 * PART_SIZE + 7)
    storage.put("big", [data])
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="r/big")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')  # a multipart ETag: three parts
    assert read_all(storage, "big") == data


def test_keys_live_under_the_prefix(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="other/x", Body=b"not ours")
    client.put_object(Bucket=s3_bucket, Key="r/prefixed-not-ours", Body=b"no")
    storage = S3Storage(f"s3://{s3_bucket}/r/prefix", s3_settings())
    storage.put("a/b", [b"1"])
    assert [
        o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="r/prefix/")["Contents"]
    ] == ["r/prefix/a/b"]
    assert list(storage.list("")) == ["a/b"]


def test_expired_lease_is_taken_over(s3_server: S3Server, s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/r", s3_settings())
    client = s3_server.client()
    # a live holder's lease is honoured (a long time to live: no timing in this half)
    live = json.dumps({"ttl": 600, "host": "elsewhere", "pid": 1}).encode()
    client.put_object(Bucket=s3_bucket, Key="r/.lock-other-catalog", Body=live)
    with pytest.raises(RepositoryError), storage.lock("other-catalog", wait=False):
        pass
    # a holder that died: its lease says 1 s and is never renewed
    dead = json.dumps({"ttl": 1, "host": "gone", "pid": 1}).encode()
    client.put_object(Bucket=s3_bucket, Key="r/.lock-main-catalog", Body=dead)
    time.sleep(2.2)  # the server's clock has whole seconds
    with storage.lock("main-catalog", wait=False):
        body = client.get_object(Bucket=s3_bucket, Key="r/.lock-main-catalog")["Body"].read()
        assert json.loads(body)["pid"] == os.getpid()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert keys == ["r/.lock-other-catalog"]


def test_lease_is_renewed_while_held(s3_bucket: str) -> None:
    holder = S3Storage(f"s3://{s3_bucket}/r", s3_settings(lock_ttl=1.5))
    other = S3Storage(f"s3://{s3_bucket}/r", s3_settings(lock_ttl=1.5))
    with holder.lock("job"):
        time.sleep(3.5)  # more than twice the time to live: only renewals keep it
        with pytest.raises(RepositoryError), other.lock("job", wait=False):
            pass
    with other.lock("job", wait=False):
        pass


def test_check_then_put_mode_still_refuses_existing_keys(s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/r", s3_settings(conditional_writes="off"))
    storage.put("k", [b"1"])
    with pytest.raises(Exception, match="already exists"):
        storage.put("k", [b"2"])
    other = S3Storage(storage.url, s3_settings(conditional_writes="off"))
    with storage.lock("x"), pytest.raises(RepositoryError), other.lock("x", wait=False):
        pass
    assert read_all(storage, "k") == b"1"


def test_missing_bucket_is_a_repository_error(s3_server: S3Server) -> None:
    storage = S3Storage("s3://pgsafe-no-such-bucket/r", s3_settings())
    with pytest.raises(RepositoryError, match="does not exist"):
        storage.put("k", [b"1"])
    with pytest.raises(RepositoryError):
        list(storage.list(""))
    with pytest.raises(NotFound):  # open of a key: the bucket is part of "missing"
        S3Storage(f"s3://{s3_server.new_bucket()}/r", s3_settings()).open("nope")


def test_unreachable_endpoint_fails_fast_and_says_where(s3_bucket: str) -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    storage = S3Storage(
        f"s3://{s3_bucket}/r", s3_settings(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=2)
    )
    t0 = time.monotonic()
    with pytest.raises(OperationFailed) as err:
        storage.put("k", [b"1"])
    assert time.monotonic() - t0 < 20
    assert "PGSAFE_S3_ENDPOINT" in str(err.value.hint)
    assert SECRET_KEY not in str(err.value) + str(err.value.hint)


def test_repository_on_s3(s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/pgsafe"
    storage = open_storage(url, create=True)
    assert isinstance(storage, S3Storage) and storage.url == url
    with pytest.raises(RepositoryError, match="not a pgsafe repository"):
        Repository.open(url)
    repo = Repository.open(url, create=True)
    assert Repository.open(url).storage.url == url
    assert repo.backup_ids() == []
    assert SECRET_KEY not in repr(storage)
