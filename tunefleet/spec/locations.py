"""What ``output.storage`` may hold: a path, or a URI pyarrow resolves to a remote filesystem,
without credentials (they would be saved in spec.yaml, uploaded with the study and printed).
Checks the form only; tunefleet/storage.py reaches the storage."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["REMOTE_SCHEMES", "CREDENTIAL_QUERY_KEYS", "check_location", "is_uri", "uri_host"]

# Schemes pyarrow.fs.FileSystem.from_uri resolves to a remote filesystem.
REMOTE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs")

# Query keys that carry a secret: pyarrow's S3 options (access_key, secret_key, session_token,
# also fsspec's and boto's names), GCS (access_token), Azure (account_key, client_secret, a SAS
# token or its signature `sig`, which pyarrow's abfs URIs accept).
CREDENTIAL_QUERY_KEYS = frozenset({
    "access_key", "secret_key", "session_token", "key", "secret", "token",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "access_token", "json_credentials", "account_key", "client_secret", "sas_token", "sig",
    "password",
})

_USE_THE_ENVIRONMENT = (
    "would be saved in spec.yaml and printed; remove them and give them through the "
    "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    "GOOGLE_APPLICATION_CREDENTIALS, AZURE_CLIENT_ID / AZURE_CLIENT_SECRET) or a credentials "
    "profile")


def is_uri(location: str) -> bool:
    """True for ``scheme://...`` other than ``file://`` (a local path in URI dress)."""
    return "://" in location and not location.startswith("file://")


def uri_host(parts: Any) -> str:
    """The bucket of a split URI without anything before an ``@`` (credentials are refused)."""
    return str(parts.netloc).rpartition("@")[2]


def check_location(value: str) -> str:
    """``value`` if tunefleet can store a study there; ValueError naming the fix otherwise
    (never echoing a credential)."""
    if value.startswith("file://"):
        return urlsplit(value).path or "/"
    if not is_uri(value):
        return value
    parts = urlsplit(value)
    if "@" in parts.netloc:
        raise ValueError(f"credentials written in the URI ({parts.scheme}://***@"
                         f"{uri_host(parts)}...) {_USE_THE_ENVIRONMENT}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() in CREDENTIAL_QUERY_KEYS for key, _ in query):
        shown = "&".join(f"{key}=***" if key.lower() in CREDENTIAL_QUERY_KEYS else f"{key}={val}"
                         for key, val in query)
        raise ValueError(f"credentials written in the URI ({parts.scheme}://{parts.netloc}"
                         f"{parts.path}?{shown}) {_USE_THE_ENVIRONMENT}")
    if parts.scheme not in REMOTE_SCHEMES:
        raise ValueError(
            f"unsupported scheme '{parts.scheme}://' in {value!r}; use a path (local, "
            f"or on a filesystem every node mounts) or a URI with one of "
            f"{', '.join(s + '://' for s in REMOTE_SCHEMES)}")
    if not parts.netloc:
        raise ValueError(f"{value!r} names no bucket; write {parts.scheme}://BUCKET/path")
    return value
