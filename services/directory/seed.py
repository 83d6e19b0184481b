"""``handoff seed --demo``: about forty clearly fictional partners around St. Petersburg, FL,
covering every category. Names are invented, phones are in the 555-01xx range reserved for
fiction, and every email and website is under ``.example``. Seeding twice stores them once (it
is an import, keyed on name + ZIP code)."""

from __future__ import annotations

from services.directory.domain import Address, PartnerDetails
from services.directory.domain import slugify
from services.directory.importing import ImportRow

# category, name, credentials, practice, street, ZIP, specialties, languages, accepting, telehealth
DEMO: tuple[tuple[str, str, str, str, str, str, str, str, str, bool], ...] = (
    ("primary_care", "Dr. Marisol Quintero", "MD", "Sunshine Family Medicine", "410 4th St N", "33701", "preventive care; sports medicine", "English; Spanish", "yes", True),
    ("primary_care", "Dr. Owen Castellane", "DO", "Bayfront Primary Care", "2200 9th St N", "33704", "osteopathic medicine; geriatrics", "English", "waitlist", False),
    ("primary_care", "Dr. Priya Venkataraman", "MD", "Gulfside Internal Medicine", "6800 Gulfport Blvd S", "33707", "internal medicine; diabetes care", "English; Tamil", "yes", True),
    ("orthopedics", "Dr. Harlan Okafor", "MD", "Tampa Bay Bone & Joint (demo)", "1100 34th St N", "33713", "sports injuries; knee and shoulder", "English", "yes", False),
    ("orthopedics", "Dr. Celeste Brandvold", "MD", "Pinellas Spine Center", "7800 66th St N", "33781", "spine; fracture follow-up", "English; Norwegian", "waitlist", False),
    ("orthopedics", "Dr. Ray Fennimore", "DO", "Clearwater Orthopedic Group", "455 Court St", "33756", "hand and wrist; hip", "English", "yes", True),
    ("neurology", "Dr. Ingrid Solvay", "MD", "Suncoast Neurology", "3000 1st Ave N", "33713", "neuropathy; headache", "English; German", "yes", True),
    ("neurology", "Dr. Tobias Wren", "MD, PhD", "Bayside Nerve & Spine", "9500 Seminole Blvd", "33772", "radiculopathy; EMG studies", "English", "no", False),
    ("neurology", "Dr. Amara Delacroix", "DO", "Gateway Neurology", "11200 Dr Martin Luther King Jr St N", "33716", "multiple sclerosis; balance disorders", "English; French", "yes", True),
    ("obgyn_midwife", "Leah Moravec", "CNM", "Driftwood Midwifery", "2600 Central Ave", "33712", "prenatal care; postpartum care", "English; Czech", "yes", True),
    ("obgyn_midwife", "Dr. Simone Achterberg", "MD, FACOG", "Coquina Women's Health", "1700 66th St N", "33710", "high-risk pregnancy; pelvic health", "English; Dutch", "waitlist", False),
    ("obgyn_midwife", "Rosa Estefan-Lake", "CPM", "Little Harbor Birth Center", "5200 Park St N", "33709", "home birth; lactation", "English; Spanish", "yes", False),
    ("oncology_lymphedema", "Dr. Nadia Ferrante", "MD", "Pelican Cancer Care", "600 7th St S", "33701", "breast oncology; survivorship", "English; Italian", "yes", True),
    ("oncology_lymphedema", "Keiko Hanamura", "PT, CLT", "Lighthouse Lymphedema Therapy", "3401 4th St N", "33704", "lymphedema; manual lymph drainage", "English; Japanese", "yes", False),
    ("oncology_lymphedema", "Martin Oyelaran", "OTR/L, CLT-LANA", "Crescent Lymphedema Clinic", "13000 Walsingham Rd", "33774", "compression therapy; post-surgical swelling", "English; Yoruba", "waitlist", False),
    ("dermatology", "Dr. Elise Marchbanks", "MD", "Seabreeze Dermatology", "2901 Tyrone Blvd N", "33710", "skin cancer screening; moles", "English", "yes", False),
    ("dermatology", "Dr. Javier Montalbán", "DO", "Saltmarsh Skin Clinic", "1200 Pasadena Ave S", "33707", "eczema; psoriasis", "English; Spanish", "waitlist", True),
    ("dermatology", "Dr. Yewande Adeyemi-Ross", "MD", "Pier Dermatology", "4500 Park Blvd", "33781", "acne; skin of colour", "English", "yes", True),
    ("physical_therapy", "Bay Physical Therapy (demo)", "DPT", "Bay Physical Therapy", "100 Central Ave", "33701", "post-operative rehab; low back pain", "English; Spanish", "yes", True),
    ("physical_therapy", "Theo Lindqvist", "PT, DPT, OCS", "Kinetic Coast PT", "2100 4th St N", "33704", "orthopedic rehab; running injuries", "English; Swedish", "yes", False),
    ("physical_therapy", "Dana Whitcombe", "DPT", "Harborline Physical Therapy", "8100 Seminole Blvd", "33772", "vestibular rehab; balance", "English", "waitlist", True),
    ("physical_therapy", "Rafael Ibarra-Cole", "PT, SCS", "Gulf Beaches Sports PT", "7000 Gulf Blvd", "33706", "sports rehab; ACL return to play", "English; Spanish", "yes", False),
    ("chiropractic", "Dr. Casey Holloway", "DC", "Palmetto Chiropractic", "3900 Central Ave", "33711", "spinal manipulation; headaches", "English", "yes", False),
    ("chiropractic", "Dr. Nikos Pappas", "DC", "Tides Chiropractic & Wellness", "1500 Belcher Rd S", "33764", "sports chiropractic; prenatal care", "English; Greek", "yes", False),
    ("chiropractic", "Dr. Aaliyah Brooks", "DC, CCSP", "Skyway Spine & Posture", "5800 34th St S", "33711", "posture; desk workers", "English", "no", False),
    ("personal_training", "Jonah Reyes-Whitfield", "NSCA-CPT", "Iron Pelican Strength", "800 1st Ave N", "33701", "strength basics; older adults", "English; Spanish", "yes", True),
    ("personal_training", "Margo Stellan", "ACE-CPT", "Boardwalk Movement Studio", "2400 Dr MLK Jr St N", "33704", "posture; post-rehab conditioning", "English", "yes", True),
    ("personal_training", "Dev Anand Kothari", "CSCS", "Mangrove Performance", "6600 Seminole Blvd", "33772", "athletes; mobility", "English; Hindi", "waitlist", False),
    ("dietitian", "Ana Ruiz-Holm", "RDN, LD", "Citrus Table Nutrition", "1300 Central Ave", "33705", "sports nutrition; weight management", "English; Spanish", "yes", True),
    ("dietitian", "Grace Obuya", "RD, CDCES", "Harvest Moon Dietetics", "3600 66th St N", "33710", "diabetes; heart health", "English; Swahili", "yes", True),
    ("dietitian", "Lukas Brenner", "MS, RDN", "Salt & Sprout Nutrition", "400 Cleveland St", "33755", "anti-inflammatory eating; gut health", "English; German", "waitlist", True),
    ("mental_health", "Dr. Corinne Ashby", "PsyD", "Quiet Harbor Counseling", "1000 4th St N", "33701", "anxiety; chronic pain coping", "English", "yes", True),
    ("mental_health", "Marcus Delgado-Finch", "LMHC", "Open Water Therapy", "2800 34th St N", "33713", "depression; trauma", "English; Spanish", "waitlist", True),
    ("mental_health", "Hana Takeda-Morrow", "LCSW", "Sandpiper Counseling Collective", "7500 Park Blvd", "33781", "grief; life transitions", "English; Japanese", "yes", True),
    ("acupuncture", "Wen Li", "L.Ac., DAOM", "Jade Current Acupuncture", "2300 Central Ave", "33712", "pain; stress", "English; Mandarin", "yes", False),
    ("acupuncture", "Sophie Aldana", "AP", "Moonfish Acupuncture", "5000 Gulf Blvd", "33706", "fertility support; headaches", "English; Spanish", "yes", False),
    ("acupuncture", "Ezra Goldfarb", "AP, DOM", "Pinecrest Acupuncture", "11500 Seminole Blvd", "33778", "sports injuries; insomnia", "English; Hebrew", "waitlist", False),
    ("podiatry", "Dr. Vivian Tranh", "DPM", "Sandbar Foot & Ankle", "2500 9th St N", "33704", "plantar fasciitis; diabetic foot care", "English; Vietnamese", "yes", False),
    ("podiatry", "Dr. Samuel Osei", "DPM, FACFAS", "Gulfport Podiatry", "5300 Gulfport Blvd S", "33707", "ankle sprains; custom orthotics", "English; Twi", "yes", False),
    ("podiatry", "Dr. Lorelei Banks", "DPM", "Causeway Foot Clinic", "1700 Gulf to Bay Blvd", "33755", "running injuries; bunions", "English", "no", False),
)

REFERRED_BY = ("massage therapist", "physician", "physical therapist")


def demo_rows() -> list[ImportRow]:
    rows = []
    for n, (category, name, credentials, practice, street, zip_code, specialties, languages, accepting, telehealth) in enumerate(DEMO):
        host = slugify(practice).replace("-demo", "") + ".example"
        rows.append(
            ImportRow(
                line=n + 1,
                details=PartnerDetails(
                    name=name,
                    category=category,
                    email=f"referrals@{host}",
                    credentials=credentials,
                    practice=practice,
                    phone=f"+1727555{100 + n:04d}",
                    website=f"https://{host}",
                    address=Address(line1=street, city=_city(zip_code), state="FL", postal_code=zip_code),
                    languages=tuple(part.strip() for part in languages.split(";")),
                    specialties=tuple(part.strip() for part in specialties.split(";")),
                    accepting_new_clients=accepting,
                    telehealth=telehealth,
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


_CITIES = {"33755": "Clearwater", "33756": "Clearwater", "33764": "Clearwater", "33772": "Seminole",
           "33774": "Largo", "33778": "Largo", "33781": "Pinellas Park", "33706": "St. Pete Beach",
           "33707": "Gulfport"}


def _city(zip_code: str) -> str:
    return _CITIES.get(zip_code, "St. Petersburg")
