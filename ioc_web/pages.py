"""What each page shows, built from the ioc views (ioc_web/sql) for one as-of date and language.
The templates only lay these models out."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from . import i18n
from .db import Session

TREND_DAYS = 365


@dataclass
class Flag:
    level: str      # never | stale | partial
    text: str


@dataclass
class Context:
    lang: str
    as_of: dt.date | None
    dates: list[dt.date]
    catalog: dict[str, dict]
    freshness: dict[str, dict]
    flags: dict[str, list[Flag]] = field(default_factory=dict)


def load_context(s: Session, lang: str, as_of: dt.date | None) -> Context:
    """The as-of date (default: what ioc.indicator_values holds), the dates to choose from, the
    catalog, each source's freshness and the flags it puts on each indicator."""
    dates = [r["as_of_date"] for r in s.rows("as_of_dates")]
    if as_of is None:
        as_of = s.rows("latest_date")[0]["as_of_date"]
    catalog = {r["indicator_code"]: r for r in s.rows("catalog")}
    freshness = {r["source_code"]: r for r in s.rows("source_freshness")}
    ctx = Context(lang, as_of, dates, catalog, freshness)
    ctx.flags = {code: source_flags(row["source_codes"], freshness, lang) for code, row in catalog.items()}
    return ctx


def source_flags(source_codes: str, freshness: dict[str, dict], lang: str) -> list[Flag]:
    """Why a number may not be trusted: a source never loaded successfully (its number counts
    what partial runs committed), is stale, or failed its last load (partly loaded)."""
    flags = []
    for code in (c.strip() for c in source_codes.split(",") if c.strip()):
        f = freshness.get(code)
        if f is None or f["last_success_at"] is None:
            flags.append(Flag("never", i18n.label("flag_never", lang, source=code)))
            continue
        if f["stale"]:
            flags.append(Flag("stale", i18n.label("flag_stale", lang, source=code,
                                                  when=i18n.timestamp(f["last_success_at"], lang))))
        if f["last_status"] == "failed":
            flags.append(Flag("partial", i18n.label("flag_partial", lang, source=code)))
    return flags


def name(ctx: Context, code: str) -> str:
    row = ctx.catalog[code]
    return row["name_vi"] if ctx.lang == "vi" else row["name_en"]


def sparkline(values: list, width: int = 140, height: int = 32, target=None, max_points: int = 70) -> dict:
    """SVG polyline points of a series (None gaps skipped), scaled to its own range (and the
    target's); a long series is thinned to `max_points` (its last point always kept)."""
    n = len(values)
    step = max(1, -(-n // max_points))
    keep = [(i, values[i]) for i in range(n - 1, -1, -step)][::-1]
    pts = [(i, float(v)) for i, v in keep if v is not None]
    if not pts:
        return {"points": "", "target_y": None, "width": width, "height": height}
    ys = [y for _, y in pts] + ([float(target)] if target is not None else [])
    lo, hi = min(ys), max(ys)
    scale_y = (height - 4) / ((hi - lo) or 1.0)
    scale_x = width / max(n - 1, 1)
    points = " ".join(f"{i * scale_x:.1f},{height - 2 - (y - lo) * scale_y:.1f}" for i, y in pts)
    target_y = None if target is None else float(f"{height - 2 - (float(target) - lo) * scale_y:.1f}")
    return {"points": points, "target_y": target_y, "width": width, "height": height}


def _series(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["indicator_code"], []).append(r)
    return out


def trends(s: Session, ctx: Context, admin_level: str, admin_code: str,
           indicator_code: str | None = None) -> dict[str, dict]:
    """Per indicator (all, or one): {"dates": [...], "values": [...]} over the TREND_DAYS up to ctx.as_of."""
    rows = s.rows("trends", admin_level=admin_level, admin_code=admin_code, indicator_code=indicator_code,
                  since=ctx.as_of - dt.timedelta(days=TREND_DAYS), as_of=ctx.as_of)
    return {r["indicator_code"]: {"dates": r["dates"], "values": r["trend_values"]} for r in rows}


def _delta(now, before):
    return None if now is None or before is None else now - before


def indicator_card(ctx: Context, row: dict, trend: dict | None) -> dict:
    """One indicator's figures as shown; `trend` None: no trend line wanted (saves the year's read)."""
    trend = trend or {"dates": [], "values": []}
    code, unit, lang = row["indicator_code"], ctx.catalog[row["indicator_code"]]["unit"], ctx.lang
    week, month = _delta(row["value"], row["week_value"]), _delta(row["value"], row["month_value"])
    return {
        "code": code, "name": name(ctx, code), "unit": unit, "sector": ctx.catalog[code]["sector"],
        "value": row["value"], "value_text": i18n.indicator_value(row["value"], unit, lang),
        "target_text": i18n.indicator_value(row["target_value"], unit, lang),
        "status": row["status"], "status_text": i18n.pick(i18n.STATUS[row["status"]], lang),
        "week": week, "week_text": i18n.change(week, unit, lang), "week_date": i18n.date(row["week_date"], lang),
        "month": month, "month_text": i18n.change(month, unit, lang), "month_date": i18n.date(row["month_date"], lang),
        "communes": row["communes"], "communes_met": row["communes_met"],
        "has_communes": "commune" in ctx.catalog[code]["levels"],
        "spark": sparkline(trend["values"], target=row["target_value"]),
        "trend": list(zip(trend["dates"], trend["values"])),
        "target": None if row["target_value"] is None else float(row["target_value"]),
        "flags": ctx.flags.get(code, []),
        "numerator": row["numerator"], "denominator": row["denominator"],
    }


def province(s: Session, ctx: Context, indicator_code: str | None = None,
             with_trends: bool = True) -> tuple[dict | None, list[dict]]:
    """The province (code, name) and a card per indicator (all, or one) on ctx.as_of."""
    rows = s.rows("province_rows", as_of=ctx.as_of, indicator_code=indicator_code)
    if not rows:
        return None, []
    unit = {"code": rows[0]["admin_code"], "name": rows[0]["admin_name"]}
    lines = trends(s, ctx, "province", unit["code"], indicator_code) if with_trends else {}
    return unit, [indicator_card(ctx, r, lines.get(r["indicator_code"])) for r in rows]


def sources(s: Session, ctx: Context) -> list[dict]:
    """Each source's freshness (now) and data-quality figures of its latest date up to ctx.as_of."""
    quality = {r["source_code"]: r for r in s.rows("data_quality", as_of=ctx.as_of, days=8, sources=None)}
    behind = sorted(set(ctx.freshness) - set(quality))   # weekly and monthly sources, or none lately
    if behind:
        quality.update((r["source_code"], r) for r in s.rows("data_quality", as_of=ctx.as_of, days=35, sources=behind))
    out = []
    for code in sorted(set(ctx.freshness) | set(quality)):
        f, q = ctx.freshness.get(code, {}), quality.get(code, {})
        share = q.get("share_valid")
        state = ("never" if not f.get("last_success_at") else "stale" if f.get("stale")
                 else "partial" if f.get("last_status") == "failed" else "fresh")
        out.append({
            "code": code, "state": state,
            "state_text": i18n.label("stale" if state in ("never", "stale") else "fresh", ctx.lang),
            "last_success": i18n.timestamp(f.get("last_success_at"), ctx.lang),
            "last_attempt": i18n.timestamp(f.get("last_attempt_at"), ctx.lang),
            "last_status": i18n.pick(i18n.RUN_STATUS.get(f.get("last_status"), ("–", "–")), ctx.lang),
            "last_error": f.get("last_error") or "",
            "quality_date": i18n.date(q.get("date"), ctx.lang),
            # ioc.data_quality keeps share_valid as a fraction; the page shows percents throughout
            "share_valid": share, "share_valid_text": i18n.indicator_value(None if share is None else share * 100,
                                                                            "percent", ctx.lang),
            "rows_quarantined": i18n.number(q.get("rows_quarantined"), ctx.lang),
            "rows_loaded": i18n.number(q.get("rows_loaded"), ctx.lang),
            "expectations": (f"{i18n.number(q['expectations_passed'], ctx.lang)}/"
                             f"{i18n.number(q['expectations_evaluated'], ctx.lang)}") if q else "–",
        })
    return out


def commune_rows(s: Session, ctx: Context, *, indicator_code: str | None = None,
                 admin_code: str | None = None) -> list[dict]:
    rows = s.rows("commune_rows", as_of=ctx.as_of, indicator_code=indicator_code, admin_code=admin_code)
    for r in rows:
        unit = ctx.catalog[r["indicator_code"]]["unit"]
        r["value_text"] = i18n.indicator_value(r["value"], unit, ctx.lang)
        r["target_text"] = i18n.indicator_value(r["target_value"], unit, ctx.lang)
        r["status_text"] = i18n.pick(i18n.STATUS[r["status"]], ctx.lang)
        r["numerator_text"] = i18n.number(r["numerator"], ctx.lang)
        r["denominator_text"] = i18n.number(r["denominator"], ctx.lang)
    return rows


def indicator(s: Session, ctx: Context, code: str) -> dict | None:
    """One indicator: the province's card and trend, and every commune ranked."""
    unit, cards = province(s, ctx, code)
    card = next((c for c in cards if c["code"] == code), None)
    if card is None:
        return None
    communes = commune_rows(s, ctx, indicator_code=code)
    return {"province": unit, "card": card, "communes": communes,
            "met": sum(r["status"] == "met" for r in communes), "total": len(communes),
            "chart": {"names": [r["admin_name"] for r in communes if r["value"] is not None],
                      "values": [float(r["value"]) for r in communes if r["value"] is not None],
                      "status": [r["status"] for r in communes if r["value"] is not None],
                      "target": card["target"], "trend": card["trend"], "unit": card["unit"],
                      "series_name": i18n.label("province", ctx.lang), "target_name": i18n.label("target", ctx.lang)}}


def commune(s: Session, ctx: Context, code: str) -> dict | None:
    """One commune: every commune-level indicator with its trend, rank and the province's value."""
    rows = commune_rows(s, ctx, admin_code=code)
    if not rows:
        return None
    unit, cards = province(s, ctx, with_trends=False)
    by_code = {c["code"]: c for c in cards}
    ranked = {r["indicator_code"]: r for r in s.rows("ranked_communes", as_of=ctx.as_of)}
    lines = trends(s, ctx, "commune", code)
    for r in rows:
        c = r["indicator_code"]
        r["name"] = name(ctx, c)
        r["province_text"] = by_code[c]["value_text"] if c in by_code else "–"
        total = ranked.get(c, {}).get("ranked") or 0
        r["rank_text"] = (i18n.label("rank_of", ctx.lang, rank=r["rank_in_province"], total=total)
                          if r["rank_in_province"] else "–")
        r["spark"] = sparkline(lines.get(c, {"values": []})["values"], target=r["target_value"])
        r["flags"] = ctx.flags.get(c, [])
    return {"province": unit, "code": code, "name": rows[0]["admin_name"], "rows": rows}


def wall(s: Session, ctx: Context) -> dict:
    """Every indicator for the rotating wall view: the province card, trend, best and worst communes."""
    unit, cards = province(s, ctx)
    ends = _series(s.rows("wall_communes", as_of=ctx.as_of))
    slides = []
    for card in cards:
        best = [[r["admin_name"], i18n.indicator_value(r["value"], card["unit"], ctx.lang)]
                for r in ends.get(card["code"], []) if r["best"] <= 5]
        worst = sorted((r for r in ends.get(card["code"], []) if r["worst"] <= 5), key=lambda r: r["worst"])
        slides.append({**{k: card[k] for k in ("code", "name", "value_text", "target_text", "status", "status_text",
                                                "week_text", "month_text", "trend", "target", "unit")},
                       "flags": [f.text for f in card["flags"]],
                       "met": (f"{card['communes_met']}/{card['communes']}" if card["has_communes"] else ""),
                       "top": best,
                       "bottom": [[r["admin_name"], i18n.indicator_value(r["value"], card["unit"], ctx.lang)]
                                  for r in worst]})
    return {"province": unit, "slides": slides}
