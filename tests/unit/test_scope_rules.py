"""The scope-of-practice rules file and what it decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.referrals import rules
from services.referrals.domain import diagnostic_wording
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
    # Second edition (issue 17): abuse disclosure added the `advice` urgency to the brief's four.
    assert urgencies == {"emergency", "urgent", "soon", "routine", "advice"}


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


# ------------------------------------------------------------------ second edition: the data

# Every code the clinical review's §5 proposes, with its proposed urgency. Abuse disclosure is
# proposed as an emergency "ideally a non-911 resource urgency": issue 17 makes it `advice`.
REVIEW_PROPOSED = {
    **dict.fromkeys(
        [
            "thunderclap_headache",
            "fever_stiff_neck_rash",
            "pulsating_belly_mass_with_pain",
            "severe_allergic_reaction",
            "low_blood_sugar_signs",
            "head_injury_danger_signs",
            "sepsis_signs",
            "cold_pale_limb",
            "neck_pain_with_neuro_signs",
            "pregnancy_warning_signs_now",
            "chest_pain_breathless",
            "face_droop_slurred_speech",
            "bowel_bladder_saddle_numbness",
            "active_suicidal_intent",
        ],
        "emergency",
    ),
    "immediate_danger_abuse": "advice",
    **dict.fromkeys(
        [
            "calf_swelling_one_side",
            "fever_hot_joint",
            "spreading_skin_redness",
            "suspected_fracture",
            "complicated_pregnancy",
            "cancer_history_new_pain",
            "passive_suicidal_thoughts",
            "diabetic_foot_wound",
            "pulsating_belly_mass",
            "new_weakness",
            "post_surgery_wound",
            "both_legs_swollen_breathless",
            "head_injury_recent",
        ],
        "urgent",
    ),
    **dict.fromkeys(
        [
            "skin_changes",
            "rash_or_contagious_skin",
            "radiating_numbness",
            "lymphedema_support",
            "headache_new_pattern",
            "eating_disorder_signs",
            "substance_use_concern",
            "osteoporosis_falls",
            "concussion_lingering",
            "dizziness_balance",
            "other_concern",
        ],
        "soon",
    ),
    **dict.fromkeys(
        ["pregnancy_support", "diabetic_reduced_foot_feeling", "jaw_pain_tmj", "sleep_problems", "wants_manipulation"],
        "routine",
    ),
}


def test_every_code_the_review_proposes_exists_at_its_urgency_or_a_stricter_one() -> None:
    loaded = rules.load().reasons
    for code, proposed in REVIEW_PROPOSED.items():
        assert code in loaded, code
        if proposed == "advice":
            assert loaded[code].urgency == "advice", code
        else:
            assert rules.URGENCY_ORDER.index(loaded[code].urgency) <= rules.URGENCY_ORDER.index(proposed), code


def test_every_rule_has_sources_and_awaits_a_clinicians_review() -> None:
    for reason in rules.load().reasons.values():
        assert reason.sources and all(s.startswith(("https://", "http://")) for s in reason.sources), reason.code
        assert reason.review_status == "proposed", reason.code
    assert "licensed clinician" in rules.DEFAULT_PATH.read_text().split("version =")[0]


def test_urgent_care_takes_the_same_day_reasons_but_not_the_contracts() -> None:
    loaded = rules.load().reasons
    with_urgent_care = {code for code, r in loaded.items() if "urgent_care" in r.categories}
    same_day = {"spreading_skin_redness", "fever_hot_joint", "diabetic_foot_wound", "post_surgery_wound"}
    assert same_day <= with_urgent_care
    assert not with_urgent_care & set(CONTRACT)
    assert all(loaded[code].urgency == "urgent" for code in with_urgent_care)


def test_urgencies_the_review_raised() -> None:
    loaded = rules.load().reasons
    assert loaded["cancer_history_new_pain"].urgency == "urgent"
    assert loaded["cancer_history_new_pain"].categories[0] == "oncology_lymphedema"
    assert loaded["passive_suicidal_thoughts"].urgency == "urgent"
    assert loaded["skin_changes"].urgency == "soon"


def test_abuse_disclosure_is_advice_with_the_hotline_and_no_printed_handout() -> None:
    abuse = rules.load().reasons["immediate_danger_abuse"]
    assert (abuse.urgency, abuse.categories, abuse.printed_handout) == ("advice", [], False)
    for needed in ("1-800-799-7233", "START", "88788", "911"):
        assert needed in abuse.instruction
    assert "1-800-799-7233" in abuse.client_advice.en and "1-800-799-7233" in abuse.client_advice.es


def test_every_reason_but_an_emergency_tells_the_client_what_to_do_in_two_languages() -> None:
    for reason in rules.load().reasons.values():
        if reason.urgency == "emergency":
            continue
        advice = reason.client_advice
        assert advice is not None and advice.en and advice.es and advice.en != advice.es, reason.code
        assert reason.lay_wording, reason.code
        # Plain words, never a diagnosis: the note guard finds nothing in what the client reads.
        assert diagnostic_wording(advice.en) == [], reason.code
        assert diagnostic_wording(reason.lay_wording) == [], reason.code
        assert advice.text("es-MX") == advice.es and advice.text("fr") == advice.en


def test_advice_alone_sends_nothing_and_advice_with_a_referral_lets_it_proceed() -> None:
    loaded = rules.load()
    alone = loaded.assess(["immediate_danger_abuse"])
    assert (alone.urgency, alone.categories, alone.groups, alone.emergencies) == ("advice", [], [], [])
    assert "88788" in alone.advice_instruction()

    with_referral = loaded.assess(["immediate_danger_abuse", "calf_swelling_one_side"])
    assert (with_referral.urgency, with_referral.categories) == ("urgent", ["primary_care"])
    assert [r.code for r in with_referral.advice] == ["immediate_danger_abuse"]
    assert [[r.code for r in g.reasons] for g in with_referral.groups] == [["calf_swelling_one_side"]]

    with_emergency = loaded.assess(["immediate_danger_abuse", "chest_pain_breathless"])
    assert (with_emergency.urgency, with_emergency.groups) == ("emergency", [])
    assert "911" in with_emergency.instruction()


# ------------------------------------------------------------------ second edition: refused at start

# A complete routine rule; each test below breaks one thing. Its header is line 3 of the file.
COMPLETE = """[reasons.ok]
label = "a"
group = "g"
urgency = "routine"
categories = ["podiatry"]
guidance = "x"
lay_wording = "y"
sources = ["https://example.org/a"]
review_status = "proposed"

[reasons.ok.client_advice]
en = "e"
es = "s"
"""
# Line numbers in a file written by _write.
HEADER, CATEGORIES, SOURCES, REVIEW_STATUS, CLIENT_ADVICE = 3, 7, 10, 11, 13


def _complete(tmp_path: Path, *, drop: str = "", **changes: str) -> Path:
    """COMPLETE with ``drop`` (a line prefix) removed and ``key = value`` lines replaced or added."""
    lines = [line for line in COMPLETE.splitlines() if not (drop and line.startswith(drop))]
    for key, value in changes.items():
        at = next((i for i, line in enumerate(lines) if line.startswith(f"{key} =")), None)
        if at is None:
            lines.insert(lines.index("") if "" in lines else len(lines), f"{key} = {value}")
        else:
            lines[at] = f"{key} = {value}"
    return _write(tmp_path, "\n".join(lines) + "\n")


def test_a_complete_rule_loads(tmp_path: Path) -> None:
    reason = rules.load(_complete(tmp_path)).reasons["ok"]
    assert (reason.review_status, reason.sources, reason.client_advice) == (
        "proposed",
        ["https://example.org/a"],
        rules.ClientAdvice(en="e", es="s"),
    )


def test_a_rule_without_sources_is_refused(tmp_path: Path) -> None:
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{HEADER}: reason ok: every rule needs `sources`"):
        rules.load(_complete(tmp_path, drop="sources"))


def test_a_source_that_is_not_a_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{SOURCES}: reason ok: 'NICE CG75' is not a URL"):
        rules.load(_complete(tmp_path, sources='["NICE CG75"]'))


def test_a_rule_without_review_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{HEADER}: reason ok: every rule needs a `review_status`"):
        rules.load(_complete(tmp_path, drop="review_status"))


def test_an_unknown_review_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{REVIEW_STATUS}: reason ok: .*review_status"):
        rules.load(_complete(tmp_path, review_status='"approved"'))


def test_reviewed_needs_both_reviewer_and_date(tmp_path: Path) -> None:
    for changes in ({"reviewed_by": '"Dr. A. Lee, MD"'}, {"reviewed_on": "2026-12-01"}, {}):
        path = _complete(tmp_path, review_status='"reviewed"', **changes)
        with pytest.raises(rules.RulesError, match=rf"rules.toml:{REVIEW_STATUS}: reason ok: .*`reviewed_by`"):
            rules.load(path)
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{REVIEW_STATUS}: reason ok: .*`reviewed_on`"):
        rules.load(_complete(tmp_path, reviewed_by='"Dr. A. Lee, MD"', reviewed_on="2026-12-01"))
    signed = _complete(tmp_path, review_status='"reviewed"', reviewed_by='"Dr. A. Lee, MD"', reviewed_on="2026-12-01")
    reason = rules.load(signed).reasons["ok"]
    assert (reason.reviewed_by, reason.reviewed_on.isoformat()) == ("Dr. A. Lee, MD", "2026-12-01")


@pytest.mark.parametrize("urgency", ["urgent", "soon"])
def test_an_urgent_or_soon_reason_needs_a_clinical_category(tmp_path: Path, urgency: str) -> None:
    path = _complete(tmp_path, urgency=f'"{urgency}"', categories='["personal_training"]')
    refusal = rf"rules.toml:{CATEGORIES}: reason ok: {urgency} reasons need a clinical category"
    with pytest.raises(rules.RulesError, match=refusal):
        rules.load(path)


@pytest.mark.parametrize("category", ["personal_training", "chiropractic", "acupuncture"])
def test_an_urgent_reason_never_goes_to_a_partner_who_cannot_assess_a_red_flag(tmp_path: Path, category: str) -> None:
    path = _complete(tmp_path, urgency='"urgent"', categories=f'["primary_care", "{category}"]')
    refusal = rf"rules.toml:{CATEGORIES}: reason ok: urgent reasons cannot go to '{category}'"
    with pytest.raises(rules.RulesError, match=refusal):
        rules.load(path)


def test_a_soon_reason_may_list_a_trainer_after_a_clinical_category(tmp_path: Path) -> None:
    path = _complete(tmp_path, urgency='"soon"', categories='["primary_care", "personal_training"]')
    assert rules.load(path).reasons["ok"].categories == ["primary_care", "personal_training"]


def test_a_reason_without_lay_wording_is_refused(tmp_path: Path) -> None:
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{HEADER}: reason ok: routine reasons need `lay_wording`"):
        rules.load(_complete(tmp_path, drop="lay_wording"))


def test_a_reason_without_client_advice_in_both_languages_is_refused(tmp_path: Path) -> None:
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{CLIENT_ADVICE}: reason ok: .*`client_advice` in both"):
        rules.load(_complete(tmp_path, drop="es ="))
    without = _write(tmp_path, COMPLETE.split("[reasons.ok.client_advice]")[0])
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{HEADER}: reason ok: .*`client_advice` in both"):
        rules.load(without)


def test_a_misspelt_key_is_refused_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(rules.RulesError, match=rf"rules.toml:{HEADER + 9}: reason ok: .*unknown field `sorces`"):
        rules.load(_complete(tmp_path, sorces='["https://example.org/b"]'))


def test_advice_and_emergency_reasons_take_no_categories_and_need_an_instruction(tmp_path: Path) -> None:
    for urgency in ("advice", "emergency"):
        path = _complete(tmp_path, urgency=f'"{urgency}"')
        with pytest.raises(rules.RulesError) as refused:
            rules.load(path)
        assert f"rules.toml:{CATEGORIES}: reason ok: {urgency} reasons send nothing" in str(refused.value)
        assert f"rules.toml:{HEADER}: reason ok: {urgency} reasons need an `instruction`" in str(refused.value)
    advice = _complete(tmp_path, drop="categories", urgency='"advice"', instruction='"Share the hotline."')
    assert rules.load(advice).reasons["ok"].urgency == "advice"


def test_a_contraindication_must_name_a_known_reason(tmp_path: Path) -> None:
    path = _complete(tmp_path, contraindicated_with='["gremlins"]')
    with pytest.raises(rules.RulesError, match=r"rules.toml:\d+: reason ok: unknown reason 'gremlins'"):
        rules.load(path)


def test_every_problem_in_the_file_is_named_at_once(tmp_path: Path) -> None:
    second = COMPLETE.replace("reasons.ok", "reasons.two").replace('sources = ["https://example.org/a"]\n', "")
    path = _write(tmp_path, COMPLETE.replace('"podiatry"', '"astrology"') + "\n" + second)
    with pytest.raises(rules.RulesError) as refused:
        rules.load(path)
    assert f"rules.toml:{CATEGORIES}: reason ok: unknown category 'astrology'" in str(refused.value)
    assert f"rules.toml:{HEADER + 14}: reason two: every rule needs `sources`" in str(refused.value)
