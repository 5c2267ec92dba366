"""Logging without secrets: the formatter every handler of the CLI uses.

No credential reaches a log line at any level.  Two layers:

- the HTTP and AWS libraries (``botocore``, ``s3transfer``, ``urllib3``) never log below
  INFO, even with ``-vv``: their DEBUG lines are wire dumps (canonical requests, headers
  with ``Authorization`` and ``X-Amz-Security-Token``, signatures) that no pgsafe user
  needs and that are too varied to scrub reliably;
- every formatted line (exceptions included) passes through :func:`scrub`, which blanks
  ``Authorization`` and ``X-Amz-Security-Token`` headers, the ``X-Amz-Credential`` /
  ``X-Amz-Signature`` / ``X-Amz-Security-Token`` parameters of presigned URLs, AWS secret
  variables, and passwords in connection strings (:func:`pgsafe.pg.redact.redact`).
"""

from __future__ import annotations

import logging
import re

from pgsafe.pg.redact import redact

# Libraries whose DEBUG output is a wire dump: never below INFO.
WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")

_MASK = "***"
_HEADER_IN_REPR = re.compile(  # 'Authorization': b'AWS4-HMAC-SHA256 ...' in a dict's repr
    r"""(['"](?:authorization|x-amz-security-token|x-amz-credential)['"]\s*:\s*b?)(['"]).*?\2""",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(  # header: value, as in a canonical request or an HTTP dump
    r"(\b(?:authorization|x-amz-security-token|x-amz-credential)\s*:\s*)[^\r\n'\",}]+",
    re.IGNORECASE,
)
_URL_PARAM = re.compile(
    r"(\bX-Amz-(?:Credential|Signature|Security-Token)=)[^&\s'\"]+", re.IGNORECASE
)
_SIGNATURE = re.compile(r"(\b(?:Signature|Credential)=)[^,\s'\"&]+")
_SECRET_VAR = re.compile(
    r"(\b(?:aws_secret_access_key|aws_session_token|aws_security_token)\b['\"]?\s*[=:]\s*b?['\"]?)"
    r"[^\s'\",}&]+",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """``text`` with every credential pattern above replaced by ``***``."""
    text = _HEADER_IN_REPR.sub(rf"\1\2{_MASK}\2", text)
    text = _HEADER_LINE.sub(rf"\1{_MASK}", text)
    text = _URL_PARAM.sub(rf"\1{_MASK}", text)
    text = _SIGNATURE.sub(rf"\1{_MASK}", text)
    text = _SECRET_VAR.sub(rf"\1{_MASK}", text)
    return redact(text)


class ScrubbingFormatter(logging.Formatter):
    """A formatter whose output (message, arguments and traceback) is scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def quiet_wire_loggers() -> None:
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def setup(level: int, fmt: str) -> None:
    """The root handler on stderr, scrubbed; the wire loggers kept at INFO or above."""
    import sys

    root = logging.getLogger()
    if not any(isinstance(h.formatter, ScrubbingFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(ScrubbingFormatter(fmt))
        root.addHandler(handler)
    root.setLevel(level)
    quiet_wire_loggers()
