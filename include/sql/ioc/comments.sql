-- Descriptions of every ioc view and column, Vietnamese then English ("<vi> — <en>"), shown
-- by BI tools and psql's \d+. Applied after the migrations whenever one was applied or this file
-- changed (warehouse.migrate), so a view re-created by a later migration gets them back.
-- tests/integration/test_ioc_comments.py fails when an ioc view or column has none.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        WITH views(view_name, comment) AS (VALUES
            ('indicator_values', 'Giá trị mới nhất của mọi chỉ tiêu Đề án 06, toàn tỉnh và từng xã/phường (ngày số liệu lớn nhất đã làm mới) — The latest value of every Project 06 indicator, for the province and each commune (greatest as-of date refreshed)'),
            ('indicator_history', 'Lịch sử giá trị chỉ tiêu: một bộ dòng cho mỗi ngày số liệu đã làm mới — Indicator history: one row set per as-of date refreshed'),
            ('indicator_catalog', 'Danh mục 19 chỉ tiêu: tên, lĩnh vực, đơn vị, mục tiêu, nguồn — The catalog of the 19 indicators: names, sector, unit, target, sources'),
            ('source_freshness', 'Tình trạng cập nhật của từng nguồn dữ liệu ngành — Freshness of each sector source'),
            ('data_quality', 'Chất lượng dữ liệu theo nguồn và ngày: kiểm tra đạt, dòng tải, dòng cách ly, tỷ lệ hợp lệ — Data quality per source and date: checks passed, rows loaded, rows quarantined, share valid'),
            ('data_quality_reconciliation', 'Cảnh báo đối soát giữa các nguồn, đếm theo xã/phường và ngày — Cross-source reconciliation warnings counted per commune and date')
        )
        SELECT v.* FROM views v JOIN pg_views p ON p.schemaname = 'ioc' AND p.viewname = v.view_name
    LOOP
        EXECUTE format('COMMENT ON VIEW ioc.%I IS %L', r.view_name, r.comment);
    END LOOP;

    FOR r IN
        WITH indicator_columns(column_name, comment) AS (VALUES
            ('indicator_code', 'Mã chỉ tiêu (ioc.indicator_catalog) — Indicator code (ioc.indicator_catalog)'),
            ('admin_level', 'Cấp hành chính: province (tỉnh) hoặc commune (xã/phường) — Administrative level: province or commune'),
            ('admin_code', 'Mã đơn vị hành chính theo danh mục từ 1/7/2025: tỉnh 2 chữ số, xã/phường 5 chữ số — Administrative unit code, post-July-2025 scheme: 2-digit province, 5-digit commune'),
            ('admin_name', 'Tên đơn vị hành chính (tiếng Việt, NFC) — Administrative unit name (Vietnamese, NFC)'),
            ('as_of_date', 'Ngày số liệu mà giá trị mô tả — The data date the value describes'),
            ('period_start', 'Ngày đầu kỳ tính (chỉ tiêu luồng, từ 1/1); trống với chỉ tiêu tồn — First day counted (flow indicators, from January 1); null for stock indicators'),
            ('numerator', 'Tử số — Numerator'),
            ('denominator', 'Mẫu số; trống với chỉ tiêu đếm — Denominator; null for count indicators'),
            ('value', 'Giá trị: phần trăm (100 × tử số / mẫu số, làm tròn 2 chữ số) hoặc số đếm — Value: percent (100 × numerator / denominator, rounded half-up to 2 decimals) or the count'),
            ('target_value', 'Mục tiêu; trống nếu danh mục không đặt — Target; null where the catalog gives none'),
            ('status', 'Trạng thái: met (đạt), below_target (chưa đạt), no_target (không có mục tiêu), no_data (không có số liệu) — Status: met, below_target, no_target, no_data'),
            ('rank_in_province', 'Hạng của xã/phường trong tỉnh theo giá trị (giảm dần); trống với no_data và dòng tỉnh — Commune rank in the province by value (descending); null for no_data and province rows'),
            ('source_fresh_at', 'Thời điểm tải thành công cũ nhất trong các nguồn của chỉ tiêu — Oldest last-successful-load time among the indicator''s sources'),
            ('refreshed_at', 'Thời điểm tính bộ dòng này — When this row set was computed')
        ),
        columns(view_name, column_name, comment) AS (
            SELECT v, c.column_name, c.comment FROM indicator_columns c
                 CROSS JOIN (VALUES ('indicator_values'), ('indicator_history')) vs(v)
            UNION ALL VALUES
            ('indicator_catalog', 'indicator_code', 'Mã chỉ tiêu — Indicator code'),
            ('indicator_catalog', 'name_vi', 'Tên chỉ tiêu tiếng Việt — Indicator name in Vietnamese'),
            ('indicator_catalog', 'name_en', 'Tên chỉ tiêu tiếng Anh — Indicator name in English'),
            ('indicator_catalog', 'sector', 'Lĩnh vực — Sector'),
            ('indicator_catalog', 'unit', 'Đơn vị: percent (phần trăm) hoặc count (số đếm) — Unit: percent or count'),
            ('indicator_catalog', 'kind', 'Loại: stock (tồn, mọi bản ghi hiện hành) hoặc flow (luồng, từ 1/1 đến ngày số liệu) — Kind: stock (every current record) or flow (January 1 to the as-of date)'),
            ('indicator_catalog', 'levels', 'Cấp tính: province hoặc province,commune — Levels computed: province or province,commune'),
            ('indicator_catalog', 'target_value', 'Mục tiêu; trống nếu không đặt — Target; null where none'),
            ('indicator_catalog', 'source_codes', 'Mã các nguồn dữ liệu, cách nhau bởi dấu phẩy — Source codes, comma-separated'),
            ('indicator_catalog', 'definition', 'Định nghĩa một câu (tiếng Anh) — One-sentence definition (English)'),
            ('source_freshness', 'source_code', 'Mã nguồn dữ liệu — Source code'),
            ('source_freshness', 'last_success_at', 'Kết thúc lần chạy gần nhất mà mọi lô của nguồn đều được ghi; trống nếu chưa từng — End of the last run in which every batch of the source committed; null if never'),
            ('source_freshness', 'last_attempt_at', 'Bắt đầu lần chạy gần nhất — Start of the latest run'),
            ('source_freshness', 'last_status', 'Kết quả lần chạy gần nhất: success, failed, running — Latest run''s status: success, failed, running'),
            ('source_freshness', 'last_rows_loaded', 'Số dòng đã tải ở lần chạy gần nhất — Rows loaded by the latest run'),
            ('source_freshness', 'last_rows_quarantined', 'Số dòng bị cách ly ở lần chạy gần nhất — Rows quarantined by the latest run'),
            ('source_freshness', 'last_error', 'Lỗi ngắn của lần chạy gần nhất (không có dữ liệu cá nhân) — Short error of the latest run (no personal data)'),
            ('source_freshness', 'stale', 'Quá hạn: lần thành công cuối cũ hơn chu kỳ của nguồn cộng 6 giờ — Stale: last success older than the source''s cadence plus 6 hours'),
            ('data_quality', 'source_code', 'Mã nguồn dữ liệu — Source code'),
            ('data_quality', 'date', 'Ngày số liệu — As-of date'),
            ('data_quality', 'batch_status', 'committed (đã ghi) hoặc failed (có lô lỗi trong ngày) — committed, or failed when a batch of the date failed'),
            ('data_quality', 'expectations_evaluated', 'Số kiểm tra đã chạy — Expectations evaluated'),
            ('data_quality', 'expectations_passed', 'Số kiểm tra đạt — Expectations passed'),
            ('data_quality', 'rows_read', 'Số dòng đọc từ nguồn — Rows read from the source'),
            ('data_quality', 'rows_loaded', 'Số dòng hợp lệ đã tải — Valid rows loaded'),
            ('data_quality', 'rows_quarantined', 'Số dòng bị cách ly — Rows quarantined'),
            ('data_quality', 'share_valid', 'Tỷ lệ hợp lệ dạng phân số 0–1 (0,9731 = 97,31 %) của các lô đã ghi — Share valid as a fraction 0-1 (0.9731 = 97.31 %) of the committed batches'),
            ('data_quality', 'finished_at', 'Thời điểm kết thúc lô cuối của ngày — When the date''s last batch finished'),
            ('data_quality_reconciliation', 'as_of_date', 'Ngày số liệu — As-of date'),
            ('data_quality_reconciliation', 'check_code', 'Mã phép đối soát — Reconciliation check code'),
            ('data_quality_reconciliation', 'commune_code', 'Mã xã/phường (danh mục từ 1/7/2025) — Commune code (post-July-2025 scheme)'),
            ('data_quality_reconciliation', 'rows_flagged', 'Số dòng bị gắn cờ — Rows flagged')
        )
        SELECT c.* FROM columns c
          JOIN information_schema.columns i
            ON i.table_schema = 'ioc' AND i.table_name = c.view_name AND i.column_name = c.column_name
    LOOP
        EXECUTE format('COMMENT ON COLUMN ioc.%I.%I IS %L', r.view_name, r.column_name, r.comment);
    END LOOP;
END
$$;
