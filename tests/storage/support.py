"""Helpers for the storage tests: S3 clients for the moto server, a request recorder."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from storagecore.objstore.s3 import default_client_config

REGION = "us-east-1"
ACCESS_KEY = "s2-test-access-key"
SECRET_KEY = "s2-test-secret-key"


def serve_env(s3_endpoint: str, database: Path) -> dict[str, str]:
    """The environment of a ``serve --bucket`` process using the moto server and ``database``."""
    return {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "DATABASE_URL": f"sqlite:///{database}",
    }


def make_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=default_client_config().merge(Config(s3={"addressing_style": "path"})),
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SentRequest:
    method: str
    path: str
    headers: dict[str, str]
    thread: str


class RequestLog:
    """Every HTTP request that a boto3 client sends, as it goes on the wire."""

    def __init__(self, client: Any) -> None:
        self.requests: list[SentRequest] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-send.s3.*", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        sent = SentRequest(
            request.method, urlsplit(request.url).path, headers, threading.current_thread().name
        )
        with self._lock:
            self.requests.append(sent)

    def of(self, method: str) -> list[SentRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
