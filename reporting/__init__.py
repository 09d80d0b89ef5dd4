"""Monthly evaluation reports for officials (XLSX workbook and PDF, in Chinese), read from serving.duckdb."""
