"""The learned triage layer (kmed.agent.triage.classifier_layer): which level a prediction raises, and when."""

from __future__ import annotations

import pytest

from kmed.agent import triage
from kmed.agent.classifier import Prediction

REPORT = "어제부터 한쪽 눈이 빨갛고 눈부셔서 잘 못 뜨겠어요"  # 20+ characters without spaces


class NothingAlike:
    """A classifier that knows no situation close enough to name."""

    def nearest_targets(self, text, level=None, k=2):
        return []


@pytest.fixture(autouse=True)
def urgent_level_on(monkeypatch):
    """The mechanism is tested switched on, whatever the shipped setting."""
    monkeypatch.setattr(triage, "URGENT_THRESHOLD", triage.URGENT_THRESHOLD or 0.5)


def prediction(emergency=0.0, urgent=0.0, self_harm=0.0):
    rest = max(0.0, 1.0 - emergency - urgent - self_harm)
    return Prediction({"emergency": emergency, "urgent": urgent, "self_harm": self_harm, "none": rest}, {})


def layer(kb, p, text=REPORT, report=True):
    return triage.classifier_layer(kb, NothingAlike(), text, p, None, report)


def test_an_urgent_report_is_raised_to_urgent_without_naming_a_department(kb):
    [escalation] = layer(kb, prediction(urgent=triage.URGENT_THRESHOLD))
    assert (escalation.level, escalation.layer, escalation.cite_id) == ("urgent", "classifier", "")
    assert escalation.departments == ()  # the reply names the departments of what the person said


def test_emergency_wins_over_urgent_and_goes_to_the_emergency_room(kb):
    [escalation] = layer(kb, prediction(emergency=0.8, urgent=0.9))
    assert escalation.level == "emergency" and escalation.departments == ("dept.emergency_medicine",)


@pytest.mark.parametrize("report, text", [(False, REPORT), (True, "눈이 빨개요")])
def test_urgent_needs_a_report_long_enough_to_judge(kb, report, text):
    assert layer(kb, prediction(urgent=0.95), text=text, report=report) == []


def test_below_the_threshold_or_switched_off_nothing_is_raised(kb, monkeypatch):
    assert layer(kb, prediction(urgent=triage.URGENT_THRESHOLD - 0.01)) == []
    monkeypatch.setattr(triage, "URGENT_THRESHOLD", None)
    assert layer(kb, prediction(urgent=0.99)) == []


def test_a_question_still_gets_the_emergency_level(kb):
    # Questions about a topic were training negatives for the emergency head, so it judges them too.
    assert layer(kb, prediction(emergency=0.9), report=False)[0].level == "emergency"
