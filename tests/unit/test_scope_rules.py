"""The scope-of-practice rules file and what it decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.referrals import rules
from shared.errors import InvalidInput

CONTRACT = {
    "calf_swelling_one_side": ("urgent", {"primary_care"}),
    "suspected_fracture": ("urgent", {"primary_care", "orthopedics"}),
    "radiating_numbness": ("soon", {"primary_care", "neurology", "orthopedics"}),
    "rehab_exercise_needed": ("routine", {"physical_therapy"}),
    "strength_posture_goals": ("routine", {"personal_training"}),
    "chest_pain_breathless": ("emergency", set()),
}


def test_contract_reasons_exist_with_their_urgency_and_categories() -> None:
    loaded = rules.load()
    for code, (urgency, categories) in CONTRACT.items():
        reason = loaded.reasons[code]
        assert (reason.urgency, set(reason.categories)) == (urgency, categories), code


def test_every_urgency_in_the_brief_is_covered() -> None:
    urgencies = {r.urgency for r in rules.load().reasons.values()}
    assert urgencies == {"emergency", "urgent", "soon", "routine"}


def test_assessment_takes_the_most_urgent_and_the_common_categories() -> None:
    assessment = rules.load().assess(["radiating_numbness", "suspected_fracture"])
    assert assessment.urgency == "urgent"
    assert assessment.categories == ["primary_care", "orthopedics"]


def test_emergency_gives_an_instruction_and_no_categories() -> None:
    assessment = rules.load().assess(["rehab_exercise_needed", "active_suicidal_intent"])
    assert assessment.urgency == "emergency" and assessment.categories == []
    assert "988" in assessment.instruction()


def test_unknown_reason_names_its_position() -> None:
    with pytest.raises(InvalidInput) as error:
        rules.load().assess(["rehab_exercise_needed", "gremlins"])
    assert error.value.field == "reasons[1]"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text('version = "t"\n\n' + body)
    return path


def test_unknown_category_stops_loading_with_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[reasons.ok]\nlabel="a"\ngroup="g"\nurgency="routine"\ncategories=["podiatry"]\n'
        'guidance="x"\n\n[reasons.bad]\nlabel="b"\ngroup="g"\nurgency="routine"\n'
        'categories=["astrology"]\nguidance="x"\n',
    )
    with pytest.raises(rules.RulesError, match=r"rules.toml:14: reason bad: unknown category 'astrology'"):
        rules.load(path)


def test_unknown_urgency_stops_loading_with_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, '[reasons.odd]\nlabel="a"\ngroup="g"\nurgency="whenever"\ncategories=["podiatry"]\nguidance="x"\n'
    )
    with pytest.raises(rules.RulesError, match=r"rules.toml:6: reason odd: .*urgency"):
        rules.load(path)


def test_emergency_without_instruction_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '[reasons.e]\nlabel="a"\ngroup="g"\nurgency="emergency"\nguidance="x"\n')
    with pytest.raises(rules.RulesError, match="instruction"):
        rules.load(path)
