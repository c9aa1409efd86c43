"""Small hand-made ledgers. Every expected figure in the tests is worked out by hand from these rows."""

from __future__ import annotations

REGIONS = [
    {"code": "130000", "name": "河北省", "level": "province", "parent_code": ""},
    {"code": "130100", "name": "石家庄市", "level": "city", "parent_code": "130000"},
    {"code": "130102", "name": "长安区", "level": "county", "parent_code": "130100"},
    {"code": "130102001", "name": "建北街道", "level": "township", "parent_code": "130102"},
    {"code": "130102001001", "name": "东村", "level": "village", "parent_code": "130102001"},  # V1
    {"code": "130102001002", "name": "西村", "level": "village", "parent_code": "130102001"},  # V2
    {"code": "130200", "name": "唐山市", "level": "city", "parent_code": "130000"},
    {"code": "130202", "name": "路南区", "level": "county", "parent_code": "130200"},
    {"code": "130202001", "name": "学院南路街道", "level": "township", "parent_code": "130202"},
    {"code": "130202001001", "name": "南村", "level": "village", "parent_code": "130202001"},  # V3
]
V1, V2, V3 = "130102001001", "130102001002", "130202001001"

UNITS = [
    {"unit_id": "U1", "name": "省财政厅", "level": "province", "region_code": "130000"},
    {"unit_id": "U2", "name": "石家庄市教育局", "level": "city", "region_code": "130100"},
    {"unit_id": "U3", "name": "长安区农业农村局", "level": "county", "region_code": "130102"},
    {"unit_id": "U4", "name": "路南区民政局", "level": "county", "region_code": "130202"},
]

HELPERS = [
    {"helper_id": "A", "name": "张三", "unit_id": "U3", "category": "cadre", "phone": "13800001111"},
    {"helper_id": "B", "name": "李四", "unit_id": "U3", "category": "village_committee"},
    {"helper_id": "C", "name": "王五", "unit_id": "U2", "category": "cadre", "department": "办公室"},
    {"helper_id": "C2", "name": "赵六", "unit_id": "U2", "category": "rich_leader"},
    {"helper_id": "D1", "name": "钱七", "unit_id": "U1", "category": "cadre", "department": "综合处"},
    {"helper_id": "D2", "name": "孙八", "unit_id": "U1", "category": "cadre", "department": "综合处"},
    {"helper_id": "D3", "name": "周九", "unit_id": "U1", "category": "cadre", "department": "规划处"},
    {"helper_id": "E", "name": "吴十", "unit_id": "U1", "category": "cadre"},
    {"helper_id": "F", "name": "郑一", "unit_id": "U4", "category": "cadre"},
]


def hh(hid: str, village: str, status: str = "not_lifted") -> dict:
    return {"household_id": hid, "head_name": "户主" + hid, "village_code": village, "status": status,
            "id_number": "130102199001011237", "size": 3}


def pr(pid: str, helper: str, household: str, start: str, end: str | None = None, reason: str | None = None,
       approved: str | None = None) -> dict:
    return {"pairing_id": pid, "helper_id": helper, "household_id": household, "start_date": start,
            "end_date": end, "end_reason": reason, "approved": approved}


def base(**tables) -> dict[str, list[dict]]:
    out = {"regions": REGIONS, "units": UNITS, "helpers": HELPERS}
    out.update(tables)
    return out
