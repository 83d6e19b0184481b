"""The note guard against the clinical review's table of phrases (§3): what reads as a diagnosis
is flagged, observations and someone else's reported history are not. A warning, not a refusal."""

from __future__ import annotations

import pytest

from services.referrals.domain import diagnostic_wording

# (note, a phrase the warning must show). Every "should be flagged" row of the review's table, then
# its test ideas: assertive framing + a condition noun, and the guard's first-edition words.
FLAG = [
    ("You have a DVT", "you have"),
    ("Client has a DVT in left calf", "has a dvt"),
    ("Likely sciatica", "likely sciatica"),
    ("Probably a herniated disc at L5", "probably a herniated disc"),
    ("Looks like plantar fasciitis", "looks like plantar fasciitis"),
    ("Consistent with thoracic outlet syndrome", "consistent with thoracic outlet syndrome"),
    ("I think this is carpal tunnel", "i think this is carpal tunnel"),
    ("It's a blood clot", "it's a blood clot"),
    ("It\u2019s a blood clot", "it's a blood clot"),
    ("sounds like a stroke", "sounds like a stroke"),
    ("she has a UTI", "has a uti"),
    ("Rotator cuff tear", "rotator cuff tear"),
    ("Fractured wrist", "fractured"),
    ("broken rib", "broken rib"),
    ("Possible melanoma", "possible melanoma"),
    ("Dx: sciatica", "dx"),
    ("r/o DVT", "r/o"),
    ("you've got a pinched nerve", "you've got"),
    ("You probably have TMJ", "you probably have"),
    ("client is depressed", "is depressed"),
    ("she is anorexic", "is anorexic"),
    ("He is an alcoholic", "is an alcoholic"),
    ("SI joint out of place, misaligned pelvis", "out of place"),
    ("SI joint out of place, misaligned pelvis", "misaligned"),
    ("subluxation at C5", "subluxation"),
    # Assertive framing + a condition noun.
    ("Has cellulitis on the shin", "has cellulitis"),
    ("Probably an infection", "probably an infection"),
    ("It is a fracture", "it is a fracture"),
    ("Seems like tendonitis in the right elbow", "seems like tendonitis"),
    ("Suspected DVT, left calf", "suspected dvt"),
    ("Could be cancer", "could be cancer"),
    ("Tendinitis in the right elbow", "tendinitis"),
    ("Torn hamstring after the race", "torn hamstring"),
    # The therapist speaks again after reporting the client's words.
    ("Client reports tingling in the fingers, likely carpal tunnel", "likely carpal tunnel"),
    # The first edition's words (the spec names "you have", "diagnosed", "fracture of").
    ("Client was diagnosed last year", "diagnosed"),
    ("Diagnosis: bursitis", "diagnosis"),
    ("Fracture of the left radius", "fracture of"),
    ("Client suffers from migraines", "suffers from"),
]

# Observations, negations and attributed history: useful, legitimate, never flagged.
DO_NOT_FLAG = [
    "Client reports they were diagnosed with fibromyalgia in 2019",
    "Client has been confirmed for appointment on Monday",
    "Left calf warm, swollen, 3 cm larger than right",
    "Left calf warm to touch, client reports tingling",
    # Attributed history.
    "History of DVT in 2021, on blood thinners",
    "History of DVT, arthritis and migraines",
    "Was told by her GP that it is sciatica",
    "Diagnosed by Dr. Lee with plantar fasciitis",
    "Diagnosed in 2015 with rheumatoid arthritis",
    "Client says her doctor thinks it is carpal tunnel",
    "Client reports a history of depression",
    "Client is worried about a clot because her sister had one",
    # "undiagnosed" and confirmed appointments.
    "Ongoing neck pain, undiagnosed",
    "Confirmed appointment with the clinic for Tuesday at 3",
    "Appointment confirmed for Monday",
    # Negations.
    "Bruise on the shin, no fracture seen",
    "No redness, no swelling, no sign of infection",
    "Client denies any numbness; no diagnosis yet",
    # Safety advice in the second person is not an assertion.
    "Gave the client our card: if you have chest pain or trouble breathing, call 911",
    "Asked how you have been sleeping since the fall",
    # Observations that share words with conditions.
    "Used long strokes along the back; client relaxed",
    "Skin broken on the right heel, about 1 cm",
    "Client has tingling in the left hand",
    "Client is tired and stressed after a long week",
    "Client was in tears talking about work",
    "Client's mother had a stroke last year",
    "",
]


@pytest.mark.parametrize(("note", "phrase"), FLAG)
def test_diagnostic_wording_is_flagged(note: str, phrase: str) -> None:
    assert phrase in diagnostic_wording(note)


@pytest.mark.parametrize("note", DO_NOT_FLAG)
def test_observations_and_reported_history_are_not_flagged(note: str) -> None:
    assert diagnostic_wording(note) == []


def test_each_finding_is_named_once_in_a_longer_note() -> None:
    note = "Left calf warm and swollen. Client has a DVT and you have sciatica; history of sciatica."
    assert diagnostic_wording(note) == ["has a dvt", "you have"]
