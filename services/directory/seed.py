"""``handoff seed --demo``: about forty clearly fictional partners around St. Petersburg, FL,
covering every category. Names are invented, phones are in the 555-01xx range reserved for
fiction, and every email and website is under ``.example``. Seeding twice stores them once (it
is an import, keyed on name + ZIP code)."""

from __future__ import annotations

import csv
from pathlib import Path

from services.directory.domain import PartnerDetails
from services.directory.fields import Address, slugify
from services.directory.importing import ImportRow

# The demo partners, one a line: category, name, credentials, practice, street, postal code,
# specialties and languages (";"-separated), accepting new clients, telehealth (yes/no).
DEMO_FILE = Path(__file__).with_name("demo_partners.csv")

REFERRED_BY = ("massage therapist", "physician", "physical therapist")


def demo_rows() -> list[ImportRow]:
    rows = []
    with DEMO_FILE.open(encoding="utf-8", newline="") as handle:
        demo = list(csv.DictReader(handle))
    for n, line in enumerate(demo):
        practice, zip_code = line["practice"], line["postal_code"]
        host = slugify(practice).replace("-demo", "") + ".example"
        rows.append(
            ImportRow(
                line=n + 1,
                details=PartnerDetails(
                    name=line["name"],
                    category=line["category"],
                    email=f"referrals@{host}",
                    credentials=line["credentials"],
                    practice=practice,
                    phone=f"+1727555{100 + n:04d}",
                    website=f"https://{host}",
                    address=Address(line1=line["street"], city=_city(zip_code), state="FL", postal_code=zip_code),
                    languages=tuple(part.strip() for part in line["languages"].split(";")),
                    specialties=tuple(part.strip() for part in line["specialties"].split(";")),
                    accepting_new_clients=line["accepting_new_clients"],
                    telehealth=line["telehealth"] == "yes",
                    hours="Mon–Fri 8:00–17:00" if n % 3 else "Mon–Thu 9:00–18:00, Sat 9:00–12:00",
                    bio=f"A fictional {practice} for the Handoff demo directory; not a real practice.",
                    accepts_referrals_from=REFERRED_BY[: 1 + n % 3],
                    response_window_days=1 + n % 5,
                    insurance_notes="Most major plans; self-pay rates on request." if n % 2 else "",
                    accessibility_notes="Step-free entrance; accessible restroom." if n % 4 else "",
                ),
            )
        )
    return rows


_CITIES = {
    "33755": "Clearwater",
    "33756": "Clearwater",
    "33764": "Clearwater",
    "33772": "Seminole",
    "33774": "Largo",
    "33778": "Largo",
    "33781": "Pinellas Park",
    "33706": "St. Pete Beach",
    "33707": "Gulfport",
}


def _city(zip_code: str) -> str:
    return _CITIES.get(zip_code, "St. Petersburg")
