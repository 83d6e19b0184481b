"""The referrals service: staff identity, scope-of-practice rules, consent, the referral
lifecycle, offers to partners and their answers, fed by a replica of directory's partners."""
