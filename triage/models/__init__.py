"""Table models and API schemas, one module per concept. Importing this registers every table."""

from triage.models.accounts import Account, AccountPublic, Role, WithdrawnToken
from triage.models.audit import AuditEvent, AuditEventPublic
from triage.models.cases import Case, CaseMember, CasePublic
from triage.models.exhibits import CustodyEvent, Exhibit, ExhibitState
from triage.models.images import EvidenceImage, VerificationState
from triage.models.queue import CaseScore, ExaminationTask, PriorityOverride, TaskState
from triage.models.runs import HashSetRecord, RuleSetRecord, RunState, TriageHit, TriageRun
from triage.models.vendors import Budget, Outsourcing, Vendor

__all__ = [
    "Account",
    "AccountPublic",
    "AuditEvent",
    "Budget",
    "Outsourcing",
    "Vendor",
    "AuditEventPublic",
    "Case",
    "CaseMember",
    "CasePublic",
    "CustodyEvent",
    "EvidenceImage",
    "CaseScore",
    "ExaminationTask",
    "Exhibit",
    "PriorityOverride",
    "TaskState",
    "HashSetRecord",
    "RuleSetRecord",
    "RunState",
    "TriageHit",
    "TriageRun",
    "ExhibitState",
    "Role",
    "VerificationState",
    "WithdrawnToken",
]
