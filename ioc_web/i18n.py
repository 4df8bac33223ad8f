"""Vietnamese first, English on request: the page's labels and number and date formats."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

LANGS = ("vi", "en")

LABELS = {
    "title": ("Trung tâm điều hành: chỉ tiêu Đề án 06", "Operations center: Project 06 indicators"),
    "overview": ("Tổng quan", "Overview"),
    "communes": ("Xã, phường", "Communes"),
    "wall": ("Màn hình lớn", "Wall view"),
    "as_of": ("Số liệu đến ngày", "Data as of"),
    "show": ("Xem", "Show"),
    "indicator": ("Chỉ tiêu", "Indicator"),
    "value": ("Giá trị", "Value"),
    "target": ("Mục tiêu", "Target"),
    "status": ("Trạng thái", "Status"),
    "change_7": ("So với 7 ngày trước", "vs 7 days before"),
    "change_30": ("So với 30 ngày trước", "vs 30 days before"),
    "trend": ("Xu hướng", "Trend"),
    "communes_met": ("Xã đạt", "Communes met"),
    "sources": ("Nguồn dữ liệu", "Data sources"),
    "source": ("Nguồn", "Source"),
    "last_success": ("Tải thành công lần cuối", "Last successful load"),
    "last_attempt": ("Lần tải gần nhất", "Last attempt"),
    "last_status": ("Kết quả", "Result"),
    "rows_loaded": ("Dòng đã tải", "Rows loaded"),
    "rows_quarantined": ("Dòng cách ly", "Rows quarantined"),
    "share_valid": ("Tỷ lệ hợp lệ", "Share valid"),
    "expectations": ("Kiểm tra đạt", "Checks passed"),
    "data_quality": ("Chất lượng dữ liệu", "Data quality"),
    "data_docs": ("Báo cáo chất lượng dữ liệu (Data Docs)", "Data-quality report (Data Docs)"),
    "date": ("Ngày", "Date"),
    "never": ("chưa bao giờ", "never"),
    "fresh": ("kịp thời", "fresh"),
    "stale": ("quá hạn", "stale"),
    "province_trend": ("Xu hướng toàn tỉnh và mục tiêu", "Province trend and target"),
    "ranking": ("Xếp hạng các xã, phường", "Communes ranked"),
    "search": ("Tìm theo tên xã, phường", "Search by commune name"),
    "rank": ("Hạng", "Rank"),
    "commune": ("Xã, phường", "Commune"),
    "code": ("Mã", "Code"),
    "numerator": ("Tử số", "Numerator"),
    "denominator": ("Mẫu số", "Denominator"),
    "csv": ("Tải CSV", "Download CSV"),
    "met_count": ("{met} trên {total} xã, phường đạt mục tiêu", "{met} of {total} communes meet the target"),
    "rank_of": ("{rank}/{total}", "{rank} of {total}"),
    "period": ("Kỳ tính", "Period"),
    "definition": ("Định nghĩa (tiếng Anh)", "Definition"),
    "commune_page": ("Chỉ tiêu của xã, phường", "Commune indicators"),
    "no_history": ("chưa có", "n/a"),
    "flag_never": ("Nguồn {source} chưa từng tải thành công: số liệu chưa được xác nhận",
                   "Source {source} has never loaded successfully: the figure is unconfirmed"),
    "flag_stale": ("Nguồn {source} quá hạn cập nhật (thành công lần cuối {when})",
                   "Source {source} is stale (last success {when})"),
    "flag_partial": ("Lần tải gần nhất của nguồn {source} lỗi: số liệu có thể chỉ tải một phần",
                     "Source {source}'s last load failed: the figure may be only partly loaded"),
    "flags": ("Cảnh báo", "Warnings"),
    "province": ("Toàn tỉnh", "Province"),
    "freshness_note": ("Tình trạng nguồn là hiện tại, không theo ngày đã chọn",
                       "Source status is as of now, not of the chosen date"),
    "language": ("English", "Tiếng Việt"),
    "not_found": ("Không tìm thấy", "Not found"),
    "no_data_yet": ("Chưa có số liệu: chưa lần làm mới nào ghi vào ioc.indicator_history",
                    "No data yet: no refresh has written ioc.indicator_history"),
    "pct_points": ("điểm", "pts"),
    "next": ("Chỉ tiêu tiếp theo sau {s} giây", "Next indicator in {s} s"),
    "top": ("Cao nhất", "Highest"),
    "bottom": ("Thấp nhất", "Lowest"),
    "refreshed": ("Làm mới lúc", "Refreshed at"),
    "reconciliation": ("Cảnh báo đối soát giữa các nguồn", "Cross-source reconciliation warnings"),
    "check": ("Phép đối soát", "Check"),
    "rows_flagged": ("Dòng gắn cờ", "Rows flagged"),
}

STATUS = {
    "met": ("Đạt", "Met"),
    "below_target": ("Chưa đạt", "Below target"),
    "no_target": ("Không có mục tiêu", "No target"),
    "no_data": ("Không có số liệu", "No data"),
}
RUN_STATUS = {"success": ("thành công", "success"), "failed": ("lỗi", "failed"), "running": ("đang chạy", "running")}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[LANGS.index(lang)]


def label(key: str, lang: str, **fmt) -> str:
    text = pick(LABELS[key], lang)
    return text.format(**fmt) if fmt else text


def number(value, lang: str, decimals: int = 0) -> str:
    """1234.5 -> '1.234,50' (vi) or '1,234.50' (en); None -> '–'."""
    if value is None:
        return "–"
    text = f"{Decimal(value):,.{decimals}f}"
    if lang == "vi":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def indicator_value(value, unit: str, lang: str) -> str:
    if value is None:
        return "–"
    return f"{number(value, lang, 2)} %" if unit == "percent" else number(value, lang)


def change(delta, unit: str, lang: str) -> str:
    """A signed change: percentage points for percent indicators."""
    if delta is None:
        return label("no_history", lang)
    sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
    magnitude = abs(delta)
    if unit == "percent":
        return f"{sign}{number(magnitude, lang, 2)} {label('pct_points', lang)}"
    return f"{sign}{number(magnitude, lang)}"


def date(value: dt.date | None, lang: str) -> str:
    if value is None:
        return "–"
    return value.strftime("%d/%m/%Y") if lang == "vi" else value.isoformat()


def timestamp(value: dt.datetime | None, lang: str) -> str:
    """In the IOC's time zone (the sessions run in Asia/Ho_Chi_Minh)."""
    if value is None:
        return label("never", lang)
    return value.strftime("%H:%M %d/%m/%Y") if lang == "vi" else value.strftime("%Y-%m-%d %H:%M")
