"""HTTP for the referrals service: staff JSON API, partner response pages."""
