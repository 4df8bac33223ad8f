"""Quality reports: Data Docs, the quarantine report and the analysts' suite check."""
