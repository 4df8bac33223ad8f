"""The IOC operators' page: FastAPI routes over pages.py, Jinja2 templates (autoescaped),
the vendored chart library, and nothing that writes."""
from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import time
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from . import i18n, pages
from .db import DB_SECONDS, Warehouse

log = logging.getLogger("ioc_web")
HERE = Path(__file__).resolve().parent
INDICATOR_CODE = re.compile(r"[A-Z0-9_]{1,64}")
COMMUNE_CODE = re.compile(r"[0-9]{5}")
WALL_ROTATE_SECONDS = 30
# Scripts, styles and data only from this server: the page needs nothing from the internet.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(dsn: str, *, data_docs_dir: str | Path | None = None) -> FastAPI:
    """The page's application; `dsn` is a libpq DSN of a login IN ROLE ioc_reader (checked)."""
    warehouse = Warehouse(dsn)
    app = FastAPI(title="IOC Project 06 indicators", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.warehouse = warehouse
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(label=i18n.label, i18n=i18n)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    docs = Path(data_docs_dir) if data_docs_dir else None
    if docs and docs.is_dir():
        app.mount("/data-docs", StaticFiles(directory=str(docs), html=True), name="data-docs")

    @app.middleware("http")
    async def timing_and_headers(request: Request, call_next):
        t0, cpu0, db = time.perf_counter(), time.process_time(), [0.0]
        token = DB_SECONDS.set(db)
        try:
            response = await call_next(request)
        finally:
            DB_SECONDS.reset(token)
        ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - cpu0) * 1000
        # app: the request's time in the server; db: waiting for PostgreSQL; cpu: the server
        # process's CPU meanwhile (what the page itself costs, whatever else the machine runs)
        response.headers["Server-Timing"] = f"app;dur={ms:.1f}, db;dur={db[0] * 1000:.1f}, cpu;dur={cpu_ms:.1f}"
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        log.info("%s %s %d %.1f ms", request.method, request.url.path, response.status_code, ms)
        return response

    @app.on_event("shutdown")
    def _close():
        warehouse.close()

    def render(request: Request, template: str, ctx: pages.Context, **extra) -> HTMLResponse:
        return templates.TemplateResponse(request, template, {
            "ctx": ctx, "lang": ctx.lang, "other_lang": "en" if ctx.lang == "vi" else "vi",
            "has_docs": bool(docs and docs.is_dir()), "path": request.url.path, **extra})

    def context(s, lang: str, date: dt.date | None) -> pages.Context:
        return pages.load_context(s, lang if lang in i18n.LANGS else "vi", date)

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, date: dt.date | None = None, lang: str = "vi"):
        with warehouse.session() as s:
            ctx = context(s, lang, date)
            if ctx.as_of is None:
                return render(request, "empty.html", ctx)
            unit, cards = pages.province(s, ctx)
            return render(request, "overview.html", ctx, province=unit, cards=cards, sources=pages.sources(s, ctx),
                          reconciliation=s.rows("reconciliation", as_of=ctx.as_of))

    @app.get("/indicator/{code}", response_class=HTMLResponse)
    def indicator(request: Request, code: str, date: dt.date | None = None, lang: str = "vi"):
        with warehouse.session() as s:
            ctx = context(s, lang, date)
            model = _indicator(s, ctx, code)
            return render(request, "indicator.html", ctx, m=model)

    @app.get("/indicator/{code}/csv")
    def indicator_csv(code: str, date: dt.date | None = None, lang: str = "vi"):
        with warehouse.session() as s:
            ctx = context(s, lang, date)
            model = _indicator(s, ctx, code)
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(["indicator_code", "as_of_date", "admin_level", "admin_code", "admin_name", "rank_in_province",
                    "numerator", "denominator", "value", "target_value", "status"])
        card, unit = model["card"], model["province"]
        w.writerow([code, ctx.as_of, "province", unit["code"], unit["name"], "", card["numerator"],
                    _blank(card["denominator"]), _blank(card["value"]), _blank(card["target"]), card["status"]])
        for r in model["communes"]:
            w.writerow([code, ctx.as_of, "commune", r["admin_code"], r["admin_name"], _blank(r["rank_in_province"]),
                        r["numerator"], _blank(r["denominator"]), _blank(r["value"]), _blank(r["target_value"]),
                        r["status"]])
        # UTF-8 with a byte-order mark: spreadsheet programs then read the Vietnamese names right
        return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{code}_{ctx.as_of}.csv"'})

    def _indicator(s, ctx, code: str) -> dict:
        if not INDICATOR_CODE.fullmatch(code) or ctx.as_of is None:
            raise HTTPException(404)
        model = pages.indicator(s, ctx, code)
        if model is None:
            raise HTTPException(404)
        return model

    @app.get("/communes", response_class=HTMLResponse)
    def communes(request: Request, date: dt.date | None = None, lang: str = "vi"):
        with warehouse.session() as s:
            ctx = context(s, lang, date)
            rows = s.rows("communes", as_of=ctx.as_of) if ctx.as_of else []
            return render(request, "communes.html", ctx, communes=rows)

    @app.get("/commune/{code}", response_class=HTMLResponse)
    def commune(request: Request, code: str, date: dt.date | None = None, lang: str = "vi"):
        if not COMMUNE_CODE.fullmatch(code):
            raise HTTPException(404)
        with warehouse.session() as s:
            ctx = context(s, lang, date)
            model = pages.commune(s, ctx, code) if ctx.as_of else None
            if model is None:
                raise HTTPException(404)
            return render(request, "commune.html", ctx, m=model)

    @app.get("/wall", response_class=HTMLResponse)
    def wall(request: Request, date: dt.date | None = None, lang: str = "vi",
             rotate: int = Query(WALL_ROTATE_SECONDS, ge=2, le=3600)):
        with warehouse.session() as s:
            ctx = context(s, lang, date)
            if ctx.as_of is None:
                return render(request, "empty.html", ctx)
            model = pages.wall(s, ctx)
            return render(request, "wall.html", ctx, m=model, rotate=rotate, sources=pages.sources(s, ctx))

    @app.get("/healthz")
    def healthz():
        with warehouse.session() as s:
            latest = s.rows("latest_date")[0]["as_of_date"]
        return JSONResponse({"ok": True, "as_of_date": latest and latest.isoformat(), "login": warehouse.login})

    return app


def _blank(value):
    return "" if value is None else value
