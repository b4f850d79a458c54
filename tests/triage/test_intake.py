"""Registering images directly (no API): what two registrations at the same moment do."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.conftest import TESTDATA, Users
from tests.factories import case_with_exhibit, row_id
from triage import intake
from triage.context import Context
from triage.errors import ConflictError
from triage.models.exhibits import Exhibit
from triage.models.images import EvidenceImage, ImageRegister

E01 = TESTDATA / "ext2.E01"


def test_one_image_given_for_two_exhibits_at_the_same_moment_goes_to_one(
    engine: Engine, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both registrations looked for the path before either had inserted it, so both passed
    # and one device's files went on two exhibits of two cases (on PostgreSQL; SQLite's
    # transactions write one at a time).
    with Session(engine) as session:
        _, first = case_with_exhibit(session, row_id(users.investigator), "CR/A")
        _, second = case_with_exhibit(session, row_id(users.investigator), "CR/B")
        session.commit()
        first_id, second_id = row_id(first), row_id(second)
    ctx = Context(actor=users.manager)
    data = ImageRegister(path=str(E01), start_triage=False)
    opened = threading.Event()
    real_probe = intake.probe_image

    def probe(*args: Any) -> Any:
        probed = real_probe(*args)
        opened.set()
        return probed

    outcome: list[str] = []
    go, ready = threading.Event(), threading.Event()

    def register_second() -> None:
        with Session(engine) as session:
            exhibit = session.get_one(Exhibit, second_id)
            session.commit()  # on SQLite a transaction would wait for the first's to end
            ready.set()
            go.wait(60)
            try:
                intake.register_image(session, ctx, exhibit, data, [TESTDATA])
                session.commit()
                outcome.append("registered")
            except ConflictError as exc:
                outcome.append(str(exc))

    other = threading.Thread(target=register_second)
    other.start()
    assert ready.wait(60)
    with Session(engine) as session:
        intake.register_image(session, ctx, session.get_one(Exhibit, first_id), data, [TESTDATA])
        monkeypatch.setattr(intake, "probe_image", probe)
        go.set()
        assert opened.wait(60)
        time.sleep(0.5)  # the second is now at its check: it must wait for this transaction
        session.commit()
    other.join(60)
    assert outcome and "already the image of exhibit E/1 (case CR/A)" in outcome[0]
    with Session(engine) as session:
        assert [i.exhibit_id for i in session.exec(select(EvidenceImage))] == [first_id]
