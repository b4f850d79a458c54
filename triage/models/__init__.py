"""Table models and API schemas, one module per concept. Importing this registers every table."""

from triage.models.accounts import Account, AccountPublic, Role
from triage.models.audit import AuditEvent, AuditEventPublic
from triage.models.cases import Case, CaseMember, CasePublic
from triage.models.exhibits import CustodyEvent, Exhibit, ExhibitState
from triage.models.images import EvidenceImage, VerificationState

__all__ = [
    "Account",
    "AccountPublic",
    "AuditEvent",
    "AuditEventPublic",
    "Case",
    "CaseMember",
    "CasePublic",
    "CustodyEvent",
    "EvidenceImage",
    "Exhibit",
    "ExhibitState",
    "Role",
    "VerificationState",
]
