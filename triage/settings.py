"""The one configuration object: every knob is an environment variable prefixed ``TRIAGE_``."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from triage.errors import ConfigurationError

DEFAULT_SECRET = "changethis"  # noqa: S105 - the sentinel that is refused
VAR_DIR = Path("var")


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class QueueBackend(StrEnum):
    local = "local"
    celery = "celery"
    rq = "rq"


class Settings(BaseSettings):
    """Read from the environment (``TRIAGE_*``) and an optional ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    environment: Environment = Environment.development
    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'triage.db'}",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    queue_backend: QueueBackend = QueueBackend.local
    broker_url: str = "redis://127.0.0.1:6379/0"
    evidence_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [VAR_DIR / "evidence"],
        description="The only directories evidence images may be read from.",
    )
    reference_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [VAR_DIR / "reference"],
        description="The only directories the API registers hash sets and YARA rules from by path "
        "(uploads and the CLI need none).",
    )
    artifact_dir: Path = VAR_DIR / "artifacts"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    token_lifetime_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60)
    max_body_bytes: int = 1024 * 1024
    page_size_default: int = 50
    page_size_max: int = 200
    max_upload_bytes: int = 4 * 1024 * 1024 * 1024
    # Triage runs and workers
    run_lease_seconds: float = Field(default=60.0, gt=0)
    run_max_attempts: int = Field(default=3, ge=1)
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    run_time_limit_seconds: int = Field(default=24 * 3600, ge=60)
    redispatch_after_seconds: float = Field(default=900.0, gt=0, description="re-send a queued run's message")
    scan_processes: int = Field(default=0, ge=0, description="0: one per core")
    yara_timeout_seconds: int = 30
    yara_max_file_bytes: int = 64 * 1024 * 1024
    # Prioritisation and the examination queue
    scoring_policy: Path | None = Field(
        default=None, description="a policy TOML file; default: the packaged one"
    )
    task_lease_seconds: float = Field(default=4 * 3600, gt=0, description="an examiner's hold on a job")
    rescore_interval_seconds: float = Field(default=3600, gt=0, description="rescoring for the clocks")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # API worker processes. 1 in the embedded shape; in production about one per core plus
    # one, so that a core does not idle while a worker waits on the database.
    api_workers: int = Field(default=1, ge=1)
    # Database connections each API worker keeps open. Each request being served holds one, so
    # size it to the requests a worker serves at once: beyond it SQLAlchemy opens a connection
    # for the request and closes it after (up to as many again), which on PostgreSQL starts and
    # ends a server process each time.
    database_pool_size: int = Field(default=10, ge=1, description="connections kept open per API worker")

    @field_validator("evidence_roots", "reference_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        # Accept "a:b" or "a,b" in an environment variable as well as a JSON list.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [p for p in value.replace(",", ":").split(":") if p]
        return value

    @model_validator(mode="after")
    def _rq_needs_redis(self) -> Settings:
        # Redis refused any other URL with a ValueError traceback at each worker's start, and
        # every run the API sent went nowhere. (Celery takes a bare word for a host name and
        # says it cannot connect, as for any broker that is down.)
        scheme = urlsplit(self.broker_url).scheme
        if self.queue_backend is QueueBackend.rq and scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(
                "TRIAGE_BROKER_URL: RQ needs a Redis URL (redis://host:6379/0, rediss://... or unix:///path)"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment is not Environment.development:
            if self.secret_key.get_secret_value() in ("", DEFAULT_SECRET):
                raise ConfigurationError(
                    "TRIAGE_SECRET_KEY is left at its default; set a long random value outside development"
                )
        return self

    @property
    def policy_path(self) -> str | None:
        """The scoring policy file as ``queue.policy`` takes it (None: the packaged one)."""
        return str(self.scoring_policy) if self.scoring_policy else None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def signing_key(self) -> str:
        """The key that signs tokens; in development a default key is replaced by one kept
        in ``var/secret.key`` so that tokens do not verify with a public string."""
        key = self.secret_key.get_secret_value()
        if key != DEFAULT_SECRET:
            return key
        path = VAR_DIR / "secret.key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key

    def check_artifact_dir(self) -> None:
        """Refuse, in one line, an artifact folder that cannot be made or written: each command
        and server that keeps files there asks at its start (a traceback, or every run
        failing, when the first file was written)."""
        folder = self.artifact_dir
        # Runs' results, uploads and kept hash sets are written there and old attempts removed:
        # inside an evidence root (or holding one) they would mix with the evidence, and a
        # result could be registered as an image.
        within = Path(folder).resolve()
        for root in self.resolved_evidence_roots():
            if within.is_relative_to(root) or root.is_relative_to(within):
                raise ConfigurationError(
                    f"TRIAGE_ARTIFACT_DIR {folder}: overlaps the evidence root {root}; evidence is "
                    "never written to: keep the artifact folder apart from every evidence root"
                )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable-"):
                pass
        except OSError as exc:
            raise ConfigurationError(
                f"TRIAGE_ARTIFACT_DIR {folder}: cannot keep files there: {exc.strerror or exc}"
            ) from None

    def artifact(self, name: str) -> Path:
        """The file that the database names ``name``: names are recorded relative to the
        artifact folder (see ``artifact_name``), so the folder can be restored to another
        place, or mounted at another on each worker; a whole path is taken as it is."""
        return self.artifact_dir / name

    def artifact_name(self, path: str | Path) -> str:
        """How the database names ``path``: relative to the artifact folder when it lies
        inside (always, for what this system writes), else whole."""
        whole = Path(os.path.abspath(path))
        try:
            return whole.relative_to(os.path.abspath(self.artifact_dir)).as_posix()
        except ValueError:
            return str(whole)

    def resolved_evidence_roots(self) -> list[Path]:
        return [Path(p).resolve() for p in self.evidence_roots]


@lru_cache
def get_settings() -> Settings:
    return Settings()


def without_password(url: str) -> str:
    """A database or broker URL as messages show it: its password, if any, as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
