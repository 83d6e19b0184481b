from __future__ import annotations

import pytest

from shared.geo import centroid, distance_km, is_zip
from shared.messages import Location


def test_known_zip_has_a_centroid_in_st_petersburg() -> None:
    location = centroid("33701")
    assert location is not None and 27.6 < location.lat < 27.9 and -82.8 < location.lon < -82.5


@pytest.mark.parametrize("value", ["00000", "abcde", "3370", ""])
def test_unknown_or_malformed_zip_has_none(value: str) -> None:
    assert centroid(value) is None


def test_distance_between_st_petersburg_and_tampa() -> None:
    km = distance_km(Location(lat=27.7676, lon=-82.6403), Location(lat=27.9506, lon=-82.4572))
    assert 25 < km < 30


def test_zip_shapes() -> None:
    assert is_zip("33701") and is_zip("33701-1234") and not is_zip("3370a")
