"""Pure ranking rules: scope first, then distance, accepting, language, telehealth, history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec

from services.referrals import matching, rules
from shared.messages import Address, Location, PartnerSnapshot

RULES = rules.load()
ST_PETE = Location(lat=27.7731, lon=-82.6400)


def snapshot(pid: str, category: str = "physical_therapy", **fields: object) -> PartnerSnapshot:
    return PartnerSnapshot(
        id=pid,
        slug=pid,
        name=fields.pop("name", pid),
        category=category,
        email=f"{pid}@p.example",
        status=fields.pop("status", "active"),
        **fields,
    )


def ids(suggestions: list) -> list[str]:
    return [s.partner_id for s in suggestions]


def test_only_active_in_scope_partners_are_suggested_and_those_not_taking_clients_last() -> None:
    partners = [
        snapshot("pt"),
        snapshot("gp", "primary_care"),
        snapshot("paused", status="paused"),
        snapshot("full", accepting_new_clients="no"),
        snapshot("trainer", "personal_training"),
    ]
    assert ids(matching.rank(partners, RULES.assess(["rehab_exercise_needed"]))) == ["pt", "full"]


def test_a_partner_not_taking_clients_ranks_after_every_one_that_is_and_says_until_when() -> None:
    assessment = RULES.assess(["radiating_numbness"])  # primary_care, neurology, orthopedics
    partners = [
        snapshot("full-gp", "primary_care", accepting_new_clients="no", accepting_until=date(2027, 1, 15)),
        snapshot("far-ortho", "orthopedics", location=Location(lat=28.5383, lon=-81.3792)),
        snapshot("waitlist-neuro", "neurology", accepting_new_clients="waitlist"),
    ]

    ranked = matching.rank(partners, assessment, near=ST_PETE)

    assert ids(ranked) == ["waitlist-neuro", "far-ortho", "full-gp"]
    assert "ranked last: not accepting new clients until January 15, 2027" in ranked[-1].why


def test_a_partner_whose_licence_expired_is_not_suggested() -> None:
    today = date(2026, 11, 30)
    partners = [
        snapshot("expired", licence_expires_on=date(2026, 11, 29)),
        snapshot("expires-today", licence_expires_on=today),
        snapshot("no-date"),
    ]

    ranked = matching.rank(partners, RULES.assess(["rehab_exercise_needed"]), today=today)

    assert sorted(ids(ranked)) == ["expires-today", "no-date"]


def test_category_preference_outweighs_distance() -> None:
    assessment = RULES.assess(["radiating_numbness"])  # primary_care, neurology, orthopedics
    far_gp = snapshot("gp", "primary_care", location=Location(lat=28.5383, lon=-81.3792))
    near_neuro = snapshot("neuro", "neurology", location=ST_PETE)
    ranked = matching.rank([near_neuro, far_gp], assessment, near=ST_PETE, near_label="33701")
    assert ids(ranked) == ["gp", "neuro"]
    assert ranked[0].why[0] == "first choice for these reasons"
    assert ranked[1].why[0].startswith("in scope (neurology, choice 2")


def test_nearer_ranks_higher_and_the_distance_is_given() -> None:
    near = snapshot("near", location=ST_PETE)
    mid = snapshot("mid", location=Location(lat=27.9506, lon=-82.4572))
    by_zip = snapshot("zip", address=Address(postal_code="33701"))
    nowhere = snapshot("nowhere")
    ranked = matching.rank(
        [nowhere, mid, near, by_zip], RULES.assess(["rehab_exercise_needed"]), near=ST_PETE, near_label="33701"
    )
    assert ids(ranked)[:2] in (["near", "zip"], ["zip", "near"]) and ids(ranked)[2:] == ["mid", "nowhere"]
    mid_suggestion = ranked[2]
    assert (
        20 < mid_suggestion.distance_km < 35 and f"{mid_suggestion.distance_km:g} km from 33701" in mid_suggestion.why
    )
    assert ranked[3].distance_km is None and "distance unknown (no address on file)" in ranked[3].why


def test_language_telehealth_and_accepting_each_count_and_say_so() -> None:
    plain = snapshot("plain", accepting_new_clients="waitlist")
    fit = snapshot("fit", languages=["Spanish"], telehealth=True)
    ranked = matching.rank([plain, fit], RULES.assess(["rehab_exercise_needed"]), language="spanish", telehealth=True)
    assert ids(ranked) == ["fit", "plain"]
    assert {"accepting new clients", "speaks spanish", "offers telehealth"} <= set(ranked[0].why)
    assert "waitlist for new clients" in ranked[1].why


def test_history_rewards_partners_who_accept_and_answer_quickly() -> None:
    start = datetime(2026, 11, 2, 14, tzinfo=UTC)
    keen = matching.history_from([("accepted", start, start + timedelta(hours=2))] * 4)
    reluctant = matching.history_from(
        [
            ("declined", start, start),
            ("expired", start, None),
            ("accepted", start, start + timedelta(days=3)),
            ("withdrawn", start, None),
        ]
    )
    assert (keen.answered, keen.accepted, keen.median_hours_to_accept) == (4, 4, 2.0)
    assert (reluctant.answered, reluctant.accepted) == (3, 1)
    partners = [snapshot("reluctant"), snapshot("new"), snapshot("keen")]
    ranked = matching.rank(
        partners, RULES.assess(["rehab_exercise_needed"]), history={"keen": keen, "reluctant": reluctant}
    )
    assert ids(ranked) == ["keen", "new", "reluctant"]
    assert "accepted 4 of 4 offers (100%), usually within 2 h" in ranked[0].why
    assert "no referral history yet" in ranked[1].why
    assert "accepted 1 of 3 offers (33%), usually within 3 days" in ranked[2].why


def test_too_little_history_is_treated_as_none() -> None:
    one_decline = matching.history_from([("declined", None, None)])
    ranked = matching.rank(
        [snapshot("a"), snapshot("b")], RULES.assess(["rehab_exercise_needed"]), history={"a": one_decline}
    )
    assert ranked[0].score == ranked[1].score and "little referral history yet" in ranked[0].why


def test_limit_and_stable_order_by_name() -> None:
    partners = [snapshot(f"p{i}", name=f"Physio {chr(90 - i)}") for i in range(8)]
    ranked = matching.rank(partners, RULES.assess(["rehab_exercise_needed"]), limit=3)
    assert [s.name for s in ranked] == ["Physio S", "Physio T", "Physio U"]


def test_partners_who_close_the_loop_rank_higher() -> None:
    start = datetime(2026, 11, 2, 14, tzinfo=UTC)
    accepted = matching.history_from([("accepted", start, start + timedelta(hours=5))] * 4)
    closes_loop = msgspec.structs.replace(accepted, completed=4)
    silent = msgspec.structs.replace(accepted, completed=0)
    ranked = matching.rank(
        [snapshot("silent"), snapshot("closes")],
        RULES.assess(["rehab_exercise_needed"]),
        history={"silent": silent, "closes": closes_loop},
    )
    assert ids(ranked) == ["closes", "silent"]
    assert "reported a completed visit for 4 of 4 accepted referrals" in ranked[0].why
    assert ranked[0].score - ranked[1].score == matching.LOOP_MAX


def test_a_waitlist_is_never_suggested_for_an_urgent_reason() -> None:
    """Clinical review §4: a waitlisted partner cannot see the client today."""
    waiting = snapshot("waiting", "primary_care", accepting_new_clients="waitlist")
    open_now = snapshot("open", "primary_care")
    urgent = matching.rank([waiting, open_now], RULES.assess(["calf_swelling_one_side"]))
    assert ids(urgent) == ["open"]
    soon = matching.rank([waiting, open_now], RULES.assess(["radiating_numbness"]))
    assert ids(soon) == ["open", "waiting"] and "waitlist for new clients" in soon[1].why
