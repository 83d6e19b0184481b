"""The new-referral form as the server reads it: the therapist's partner choice is capped at the
API's 20 before anything else is done with it (issue 16, item 2: 40,000 ids sorted with
``list.index`` froze the service)."""

from __future__ import annotations

import pytest
from litestar.datastructures import FormMultiDict

from services.referrals import rules
from services.referrals.web.referral_form import Intake
from shared.errors import InvalidInput

RULES = rules.load()


class CountingForm(FormMultiDict):
    """A form that counts how many values it was asked for."""

    asked = 0

    def get(self, key, default=None):  # type: ignore[no-untyped-def, override]
        CountingForm.asked += 1
        return super().get(key, default)


def test_partner_ids_are_capped_at_20_before_they_are_ranked() -> None:
    ids = [f"p{n:05d}" for n in range(40_000)]
    form = CountingForm([("partner_ids", pid) for pid in ids] + [("order_p00003", "1"), ("order_p00000", "3")])
    CountingForm.asked = 0
    intake = Intake.from_form(form)
    # Unnumbered partners keep their place in the list as their number.
    assert intake.partner_ids[:5] == ["p00001", "p00003", "p00002", "p00000", "p00004"]
    assert len(intake.partner_ids) == 20 and set(intake.partner_ids) <= set(ids[:20])
    assert CountingForm.asked < 100  # the work is the cap's, not the form's


def test_the_therapists_numbers_order_the_chosen_partners_and_ties_keep_the_ranking() -> None:
    form = FormMultiDict(
        [
            *[("partner_ids", pid) for pid in ("a", "b", "c", "b")],
            *[("order_c", "1"), ("order_a", "2"), ("order_b", "2")],
        ]
    )
    assert Intake.from_form(form).partner_ids == ["c", "a", "b"]


def test_each_proposed_referral_carries_its_own_partners_and_order() -> None:
    form = CountingForm(
        [
            ("partner_ids", "gp1"),
            ("partner_ids", "gp2"),
            ("order_gp2", "1"),
            ("order_gp1", "2"),
            ("partner_ids_1", "pt1"),
            ("partner_ids_1", "gp1"),
            ("order_1_gp1", "1"),
            ("order_1_pt1", "2"),
        ]
    )
    intake = Intake.from_form(form)
    assert intake.partners == [["gp2", "gp1"], ["gp1", "pt1"]] and intake.partner_ids == ["gp2", "gp1"]
    groups = RULES.groups(["rehab_exercise_needed", "calf_swelling_one_side"])
    assert intake.chosen_partners(groups) == [["gp2", "gp1"], ["gp1", "pt1"]]


def test_a_proposed_referral_without_a_partner_is_named() -> None:
    intake = Intake.from_form(CountingForm([("partner_ids", "gp1")]))
    groups = RULES.groups(["rehab_exercise_needed", "calf_swelling_one_side"])
    with pytest.raises(InvalidInput) as refused:
        intake.chosen_partners(groups)
    assert refused.value.field == "partner_ids_1" and "rehabilitation" in refused.value.detail
