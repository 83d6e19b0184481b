from services.referrals.storage import metadata
from shared.database import run_migrations_online

run_migrations_online(metadata)
