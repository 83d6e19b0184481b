-- Run once by the postgres image, on an empty data volume, as POSTGRES_USER (who then owns
-- both databases). Each Handoff service owns its own database; they never share one.
-- Tables are created by `handoff db upgrade` (the compose `migrate` job), not here.
CREATE DATABASE directory;
CREATE DATABASE referrals;
