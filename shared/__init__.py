"""Code every Handoff service may import: message contracts, queue names, codec, config, storage
helpers and the staff-token rules. Nothing here knows any one service's tables or routes."""
