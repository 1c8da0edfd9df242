"""Building :class:`Settings`: YAML file + environment, validated once.

Lookup order for the file: ``--config`` > ``LANEWAY_CONFIG`` > ``./laneway.yaml`` >
built-in defaults (the embedded model plus one deployment per provider whose key is in
the environment). An invalid file fails with the file, line and reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from laneway.errors import ConfigError
from laneway.settings._model import (
    DEFAULT_TIERS,
    DatabaseSettings,
    DeploymentSettings,
    Settings,
)

__all__ = [
    "Vendor",
    "api_key_ref",
    "check_environment",
    "default_settings",
    "find_config",
    "load_settings",
    "read_user_text",
    "resolve_secret",
    "vendors",
    "yaml_line",
    "yaml_problem",
]


@dataclass(frozen=True, slots=True)
class Vendor:
    """A row of ``vendors.yaml``."""

    id: str
    format: str
    api_base: str
    key_env: str | None
    hosting: str
    default_model: str | None
    upstream_model: str | None
    default_tier: str | None
    quirks: Mapping[str, Any]


@cache
def vendors() -> Mapping[str, Vendor]:
    text = resources.files("laneway.providers").joinpath("vendors.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)["vendors"]
    return {
        key: Vendor(
            id=key,
            format=row.get("format", "openai"),
            api_base=row["api_base"],
            key_env=row.get("key_env"),
            hosting=row["hosting"],
            default_model=row.get("default_model"),
            upstream_model=row.get("upstream_model"),
            default_tier=row.get("default_tier"),
            quirks=dict(row.get("quirks") or {}),
        )
        for key, row in raw.items()
    }


def find_config(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    from_env = env.get("LANEWAY_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"LANEWAY_CONFIG points to a missing file: {path}")
        return path
    local = Path("laneway.yaml")
    return local if local.is_file() else None


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the config file found by :func:`find_config`, else the defaults.

    ``LANEWAY_DATABASE_URL`` overrides ``database.url``.
    """
    env = os.environ if env is None else env
    found = find_config(path, env)
    settings = default_settings(env) if found is None else _from_file(found)
    db_url = env.get("LANEWAY_DATABASE_URL")
    if db_url:
        settings = settings.model_copy(update={"database": DatabaseSettings(url=db_url)})
    return settings


def default_settings(env: Mapping[str, str]) -> Settings:
    """The embedded model as ``local``, plus a deployment per vendor key in ``env``."""
    deployments = [
        DeploymentSettings(
            name="local",
            model="smollm2-135m-instruct",
            provider="local",
            hosting="embedded",
            hourly_cost_usd=Decimal(0),
        )
    ]
    tiers: dict[str, list[str]] = {tier: [] for tier in DEFAULT_TIERS}
    tiers["simple"].append("local")
    for vendor in vendors().values():
        if not vendor.key_env or not env.get(vendor.key_env) or not vendor.default_model:
            continue
        if vendor.hosting == "self_hosted":
            continue
        kind = (
            vendor.format
            if vendor.format in ("anthropic", "gemini")
            else ("openai" if vendor.id == "openai" else "openai_compatible")
        )
        deployments.append(
            DeploymentSettings(
                name=vendor.id,
                model=vendor.default_model,
                provider=kind,  # type: ignore[arg-type]
                vendor=None if kind in ("openai", "anthropic", "gemini") else vendor.id,
                api_key=f"env:{vendor.key_env}",
            )
        )
        tiers[vendor.default_tier or "standard"].append(vendor.id)
    return Settings(
        deployments=tuple(deployments),
        tiers={k: tuple(v) for k, v in tiers.items() if v},
        default_tier="simple",
    )


def _from_file(path: Path) -> Settings:
    text = read_user_text(path, "config file")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config file must be a mapping of settings")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = yaml_line(node, loc)
            field = ".".join(str(p) for p in loc) or "(top level)"
            lines.append(f"{path}:{line}: {field}: {error['msg']}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines)) from None


def yaml_line(node: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the YAML node at ``loc`` (or of its closest parent)."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            return line
        node = child
    return line


def resolve_secret(ref: str | None, env: Mapping[str, str]) -> str | None:
    """The secret behind ``env:VAR`` or ``file:/path``; ``ConfigError`` when missing."""
    if ref is None:
        return None
    kind, _, target = ref.partition(":")
    if kind == "env":
        value = env.get(target)
        if not value:
            raise ConfigError(f"environment variable {target} is not set (needed for an api_key)")
        return value
    try:
        return Path(target).read_text("utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the api_key file {target}: {exc.strerror}") from exc


def api_key_ref(deployment: DeploymentSettings) -> str | None:
    """The secret reference a deployment's calls use: its ``api_key``, else its vendor's
    key variable (none for the embedded model or a self-hosted vendor)."""
    if deployment.api_key is not None or deployment.provider == "local":
        return deployment.api_key
    vendor_id = deployment.vendor if deployment.provider == "openai_compatible" else None
    vendor = vendors().get(vendor_id or deployment.provider)
    if vendor is None or not vendor.key_env or vendor.hosting == "self_hosted":
        return None
    return f"env:{vendor.key_env}"


def check_environment(settings: Settings, env: Mapping[str, str]) -> None:
    """Every problem a start-up would meet outside the file itself, reported at once:
    unset key variables, unreadable key files, unknown vendors. ``ConfigError`` listing
    all of them; nothing is read but the environment and the key files."""
    table = vendors()
    missing: dict[str, list[str]] = {}
    problems: list[str] = []
    for d in settings.deployments:
        if d.provider == "openai_compatible" and d.vendor and d.vendor not in table:
            problems.append(
                f"deployment {d.name!r}: unknown vendor {d.vendor!r} "
                f"(known: {', '.join(sorted(table))})"
            )
            continue
        ref = api_key_ref(d)
        if ref is None:
            continue
        kind, _, target = ref.partition(":")
        if kind == "env":
            if not env.get(target):
                missing.setdefault(target, []).append(d.name)
            continue
        try:
            resolve_secret(ref, env)
        except ConfigError as exc:
            problems.append(f"deployment {d.name!r}: {exc.message}")
    if missing:
        names = ", ".join(f"{var} ({', '.join(users)})" for var, users in missing.items())
        s = "s" if len(missing) > 1 else ""
        problems.insert(0, f"environment variable{s} not set: {names}")
    if problems:
        hint = (
            "set them, or remove the deployments that need them "
            "(examples/local.yaml runs with no keys at all)"
        )
        if len(problems) == 1:
            raise ConfigError(f"{problems[0]}; {hint}")
        raise ConfigError(f"{len(problems)} problems:\n  " + "\n  ".join(problems) + f"\n{hint}")


# A config or workload file: read with this bound (they are a few kB; YAML parsing of a
# large file is slow and memory-hungry).
MAX_USER_FILE_BYTES = 4 * 1024 * 1024


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n} bytes"


def read_user_text(path: Path, what: str, limit: int = MAX_USER_FILE_BYTES) -> str:
    """The UTF-8 text of a file the user named (``what``: "suite file", ...), read with a
    bound (never more than ``limit`` + 1 bytes, whatever the file's size); a one-line
    ``ConfigError`` for a file over ``limit`` bytes, a directory, a missing file, bytes
    that are not UTF-8 or a read error."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a {what}")
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise ConfigError(f"{path}: the {what} is larger than its limit of {_size(limit)}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start : exc.start + 1].hex()
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{byte} at offset {exc.start}); save it as UTF-8"
        ) from None


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line (when known) and a one-line description of a YAML error."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return None, f"unacceptable character #x{char:04x} at offset {exc.position}"
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return line, " ".join(str(problem).split())
