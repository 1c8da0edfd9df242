"""Governance: sensitive data stays on self-hosted models (fail closed), license and origin
policy, keys and budgets, rate limits, kill switches, output checks and the audit trail."""

from laneway.governance._budget import Reservation
from laneway.governance._engine import PRIVATE_HOSTING, Admission, DeploymentView, Governance
from laneway.governance._fast import secret_finder
from laneway.governance._hosting import on_private_network
from laneway.governance._injection import InjectionFinding, injection_score
from laneway.governance._keys import KeyRecord
from laneway.governance._kill import KillRecord, KillSwitchCache, check_kill_target
from laneway.governance._pinning import pin_problem, sha256_of
from laneway.governance._policy import (
    Check,
    EffectivePolicy,
    PolicyVerdict,
    deprecation_status,
    effective_policy,
    evaluate,
    validate_license_entries,
)
from laneway.governance._redact import Redaction, StreamRestorer, redact_request
from laneway.governance._sanitize import redact_text
from laneway.governance._scan import Finding, Scanner, ScanResult, scan_output
from laneway.governance._schema import ClientSchema
from laneway.governance._sent import unvisited_strings
from laneway.governance._store import GovernanceStore, KeyCache
from laneway.governance._wrappers import RedactingModel, SchemaCheckedModel

__all__ = [
    "PRIVATE_HOSTING",
    "Admission",
    "Check",
    "ClientSchema",
    "DeploymentView",
    "EffectivePolicy",
    "Finding",
    "Governance",
    "GovernanceStore",
    "InjectionFinding",
    "KeyCache",
    "KeyRecord",
    "KillRecord",
    "KillSwitchCache",
    "PolicyVerdict",
    "RedactingModel",
    "Redaction",
    "Reservation",
    "ScanResult",
    "Scanner",
    "SchemaCheckedModel",
    "StreamRestorer",
    "check_kill_target",
    "deprecation_status",
    "effective_policy",
    "evaluate",
    "injection_score",
    "on_private_network",
    "pin_problem",
    "redact_request",
    "redact_text",
    "scan_output",
    "secret_finder",
    "sha256_of",
    "unvisited_strings",
    "validate_license_entries",
]
