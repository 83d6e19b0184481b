"""Combining reasons (clinical review §2c): a set of reasons splits into groups that can each go to
one kind of partner, most urgent first, and a less urgent reason never blocks or dilutes a more
urgent one."""

from __future__ import annotations

from itertools import combinations

import pytest

from services.referrals import rules

RULES = rules.load()
REFERABLE = [code for code, r in RULES.reasons.items() if r.urgency not in ("emergency", "advice")]
PAIRS = list(combinations(REFERABLE, 2))


def rank(urgency: str) -> int:
    return rules.URGENCY_ORDER.index(urgency)


def codes(groups: list[rules.Group]) -> list[list[str]]:
    return [[r.code for r in g.reasons] for g in groups]


def test_the_pairs_cover_every_referral_reason() -> None:
    assert len(REFERABLE) >= 30 and len(PAIRS) == len(REFERABLE) * (len(REFERABLE) - 1) // 2


@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(p) for p in PAIRS])
def test_every_pair_can_be_sent_without_diluting_the_more_urgent_reason(pair: tuple[str, str]) -> None:
    groups = RULES.groups(list(pair))
    assert sorted(c for group in codes(groups) for c in group) == sorted(pair), "each reason in exactly one group"
    assert [rank(g.urgency) for g in groups] == sorted(rank(g.urgency) for g in groups), "most urgent first"
    for group in groups:
        assert group.categories, f"{codes([group])} has no category"
        assert group.urgency == min((r.urgency for r in group.reasons), key=rank)
        leader = group.reasons[0]
        # The group's categories follow its most urgent reason's order of preference.
        assert group.categories == [c for c in leader.categories if c in group.categories]
        for reason in group.reasons:
            if set(reason.contraindicated_with) & set(pair):
                continue  # rides with the reason that rules it out: that partner decides
            assert set(group.categories) <= set(reason.categories), f"{group.categories} out of scope for {reason.code}"
            if reason.urgency == group.urgency:
                assert reason.categories[0] in group.categories, f"{reason.code} lost its first choice"
    first, second = (RULES.reasons[c] for c in pair)
    if rank(first.urgency) != rank(second.urgency):
        higher = min(first, second, key=lambda r: rank(r.urgency))
        home = next(g for g in groups if higher in g.reasons)
        assert home.categories == higher.categories, f"{higher.code}'s specialists were dropped"


def test_a_single_kind_set_is_one_group() -> None:
    groups = RULES.groups(["radiating_numbness", "suspected_fracture", "pain_not_improving"])
    assert codes(groups) == [["suspected_fracture", "radiating_numbness", "pain_not_improving"]]
    assert (groups[0].urgency, groups[0].categories) == ("urgent", ["primary_care", "orthopedics"])
    assert codes(RULES.groups(["rehab_exercise_needed"])) == [["rehab_exercise_needed"]]
    assert not RULES.assess(["rehab_exercise_needed"]).mixed


def test_a_routine_reason_no_longer_blocks_an_urgent_one() -> None:
    # First edition: no category in common, so nothing could be sent.
    assessment = RULES.assess(["foot_problems", "calf_swelling_one_side"])
    assert assessment.categories == [] and assessment.mixed
    assert [(g.urgency, g.categories) for g in assessment.groups] == [
        ("urgent", ["primary_care"]),
        ("routine", ["podiatry"]),
    ]
    assert codes(assessment.groups) == [["calf_swelling_one_side"], ["foot_problems"]]


def test_the_urgent_reasons_specialist_stays() -> None:
    # First edition: pregnancy + fever went to primary care only, losing the OB/GYN.
    pregnancy_fever = RULES.groups(["fever_hot_joint", "complicated_pregnancy"])
    assert [g.categories[0] for g in pregnancy_fever] == ["primary_care", "obgyn_midwife"]
    # First edition: cancer history + radiating numbness lost oncology.
    cancer = RULES.groups(["radiating_numbness", "cancer_history_new_pain"])
    assert [(g.urgency, g.categories) for g in cancer] == [
        ("urgent", ["oncology_lymphedema", "primary_care"]),
        ("soon", ["primary_care", "neurology", "orthopedics"]),
    ]
    # First edition: anxiety + radiating numbness lost mental health.
    anxiety = RULES.groups(["radiating_numbness", "persistent_anxiety_depression"])
    assert [g.categories[0] for g in anxiety] == ["primary_care", "mental_health"]


def test_equally_urgent_reasons_that_share_their_first_choice_share_a_group() -> None:
    groups = RULES.groups(["calf_swelling_one_side", "fever_hot_joint", "suspected_fracture"])
    assert codes(groups) == [["calf_swelling_one_side", "fever_hot_joint", "suspected_fracture"]]
    assert groups[0].categories == ["primary_care"]


def test_manipulation_is_never_proposed_beside_numbness() -> None:
    groups = RULES.groups(["wants_manipulation", "radiating_numbness"])
    assert codes(groups) == [["radiating_numbness", "wants_manipulation"]]
    assert "chiropractic" not in groups[0].categories
    # Without a contraindication it keeps its own first choice, beside a reason of the same urgency.
    alone = RULES.groups(["wants_manipulation", "rehab_exercise_needed"])
    assert [g.categories for g in alone] == [["chiropractic", "physical_therapy"], ["physical_therapy"]]


def test_emergencies_and_advice_form_no_group() -> None:
    assert RULES.groups(["immediate_danger_abuse"]) == []
    assert RULES.groups(["chest_pain_breathless", "calf_swelling_one_side"]) == [
        rules.Group("urgent", [RULES.reasons["calf_swelling_one_side"]], ["primary_care"])
    ]
    assert RULES.assess(["chest_pain_breathless", "calf_swelling_one_side"]).groups == []


def test_a_reason_given_twice_counts_once() -> None:
    assert codes(RULES.groups(["foot_problems", "foot_problems"])) == [["foot_problems"]]


@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(p) for p in PAIRS])
def test_each_group_assessed_alone_is_one_referral_with_the_same_scope(pair: tuple[str, str]) -> None:
    """The new-referral page asks for each group's suggestions by its reasons alone."""
    for group in RULES.groups(list(pair)):
        alone = RULES.assess(group.codes)
        assert (codes(alone.groups), alone.categories, alone.urgency) == (
            [group.codes],
            group.categories,
            group.urgency,
        )


def test_one_referral_takes_its_groups_categories_and_a_mixed_set_none() -> None:
    # Manipulation rides with numbness: one referral, in numbness's scope (no chiropractor).
    rider = RULES.assess(["wants_manipulation", "radiating_numbness"])
    assert not rider.mixed and rider.categories == ["primary_care", "neurology", "orthopedics"]
    assert [r.code for r in rider.referral_reasons] == ["radiating_numbness", "wants_manipulation"]
    mixed = RULES.assess(["rehab_exercise_needed", "calf_swelling_one_side", "immediate_danger_abuse"])
    assert mixed.mixed and mixed.categories == []
    assert [r.code for r in mixed.referral_reasons] == ["calf_swelling_one_side", "rehab_exercise_needed"]
    assert mixed.groups[0].summary() == {
        "reasons": ["calf_swelling_one_side"],
        "urgency": "urgent",
        "categories": ["primary_care"],
    }
